//! Fuzzes the config.json loader and validator: `spec::parse` (the typed
//! parse, collecting the unknown fields) and `spec::plan_at` (validation,
//! namespaces, rootfs and cgroup plans, seccomp compile), everything `create`
//! decides before the first fork except canonicalising the rootfs. Any
//! input must give Ok or Err, never a panic.
//! Run: cargo +nightly fuzz run config fuzz/corpus/config
#![no_main]
#![allow(dead_code, unused_imports)]

// skiff's modules, compiled in place under the same names, so their
// `crate::…` paths resolve (launch, cmd and tty need main's Globals: left out).
#[path = "../../src/capnames.rs"]
mod capnames;
#[path = "../../src/cgroup/mod.rs"]
mod cgroup;
#[path = "../../src/container.rs"]
mod container;
#[path = "../../src/every.rs"]
mod every;
#[path = "../../src/fork.rs"]
mod fork;
#[path = "../../src/hooks.rs"]
mod hooks;
#[path = "../../src/init/mod.rs"]
mod init;
#[path = "../../src/log.rs"]
mod log;
#[path = "../../src/mountinfo.rs"]
mod mountinfo;
#[path = "../../src/netdev.rs"]
mod netdev;
#[path = "../../src/pidfd.rs"]
mod pidfd;
#[path = "../../src/procfs.rs"]
mod procfs;
#[path = "../../src/rdt.rs"]
mod rdt;
#[path = "../../src/rootfs/mod.rs"]
mod rootfs;
#[path = "../../src/seccomp/mod.rs"]
mod seccomp;
#[path = "../../src/sigpipe.rs"]
mod sigpipe;
#[path = "../../src/spec/mod.rs"]
mod spec;
#[path = "../../src/sync.rs"]
mod sync;
#[path = "../../src/uidmap.rs"]
mod uidmap;

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = spec::parse(data, Path::new("config.json")) else {
        return;
    };
    let _ = spec::plan_at("fuzz", Path::new("/b"), s, Path::new("/b/rootfs").into(), false, false, 0);
});
