//! Link-time layout of the release binary (no effect on debug builds).
//!
//! The kernel maps a file-backed text page together with its neighbours
//! (fault-around: 64 KiB windows), so a process's resident size is the
//! number of 64 KiB windows its executed code touches, not the size of that
//! code. Scattered over the whole text, the small part a `run` executes
//! touched nearly every window (README.md, Benchmark). Two linker options
//! fix that:
//! - `--symbol-ordering-file=link/hot.order`: the functions the runtime
//!   executes (listed by `scripts/hot-order.sh`, which profiles a real
//!   create/run/exec/delete) are laid out first and together. Names the
//!   build no longer has are skipped (`--no-warn-symbol-ordering`), so a
//!   stale list only costs RSS, never correctness.
//! - `-z pack-relative-relocs`: RELR relocations; the static-pie binary's
//!   RELA entries, read at every start, shrink to a small fraction
//!   (`scripts/bench.sh` prints both sections' sizes).
//!
//! Both need lld, the toolchain's default linker on x86_64 Linux.
//! `SKIFF_NO_LAYOUT=1` turns them off (e.g. to link with GNU ld).
//!
//! In every profile, the binary starts at `skiff_entry` (src/seal.rs): the
//! seal's re-exec happens there, before the C library's start-up, which it
//! would otherwise run twice. That code then jumps to the usual `_start`.
use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=link/hot.order");
    println!("cargo:rerun-if-env-changed=SKIFF_NO_LAYOUT");
    println!("cargo:rerun-if-changed=build.rs");
    let x86_64 = env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("x86_64");
    let linux = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if x86_64 && linux {
        println!("cargo:rustc-link-arg-bins=-Wl,--entry=skiff_entry");
    }
    let release = env::var("PROFILE").as_deref() == Ok("release");
    if !release || !linux || env::var_os("SKIFF_NO_LAYOUT").is_some() {
        return;
    }
    if env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl") {
        // The musl target links with the system's GNU ld by default, which
        // has neither option: use the toolchain's own lld, as the gnu
        // target does (its gcc-ld/ld.lld wrapper, through cc's -B).
        let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let host = env::var("HOST").expect("cargo sets HOST");
        let out = std::process::Command::new(rustc)
            .args(["--print", "sysroot"])
            .output()
            .expect("rustc --print sysroot");
        let sysroot = String::from_utf8(out.stdout).expect("sysroot path is UTF-8");
        println!(
            "cargo:rustc-link-arg-bins=-B{}/lib/rustlib/{host}/bin/gcc-ld",
            sysroot.trim()
        );
        println!("cargo:rustc-link-arg-bins=-fuse-ld=lld");
    }
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let order = Path::new(&dir).join("link/hot.order");
    if order.exists() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
