//! Unit tests of mount.rs: option tables and spec mount compilation.

use super::*;

fn p(opts: &str) -> Result<Opts, String> {
    parse_options(&opts.split(',').map(String::from).collect::<Vec<_>>())
}

#[test]
fn rbind_ro_is_recursive_bind_then_ro() {
    let o = p("rbind,ro").unwrap();
    assert_eq!(
        o.flags,
        MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
    );
    assert!(o.data.is_empty());
}

#[test]
fn unknown_options_become_data() {
    let o = p("nosuid,mode=755,size=65536k").unwrap();
    assert_eq!(o.flags, MsFlags::MS_NOSUID);
    assert_eq!(o.data, "mode=755,size=65536k");
}

#[test]
fn later_options_win_and_propagation_is_separate() {
    let o = p("ro,rw,nodev,dev,noexec,rslave,private").unwrap();
    assert_eq!(o.flags, MsFlags::MS_NOEXEC);
    assert_eq!(
        o.propagation,
        vec![MsFlags::MS_SLAVE | MsFlags::MS_REC, MsFlags::MS_PRIVATE]
    );
}

/// mount_setattr(2) takes an atime change only with the whole
/// MOUNT_ATTR__ATIME mask cleared: clearing one mode returns to relatime.
#[test]
fn recursive_atime_modes_clear_the_whole_field() {
    let o = p("ratime").unwrap();
    assert_eq!((o.rec_set, o.rec_clr), (ATTR_RELATIME, ATTR_ATIME));
    let o = p("rnostrictatime").unwrap();
    assert_eq!((o.rec_set, o.rec_clr), (ATTR_RELATIME, ATTR_ATIME));
    let o = p("rnoatime,ratime").unwrap();
    assert_eq!((o.rec_set, o.rec_clr), (ATTR_RELATIME, ATTR_ATIME));
    let o = p("rnoatime,rstrictatime").unwrap();
    assert_eq!((o.rec_set, o.rec_clr), (ATTR_STRICTATIME, ATTR_ATIME));
    let o = p("rstrictatime,ratime").unwrap();
    assert_eq!((o.rec_set, o.rec_clr), (ATTR_STRICTATIME, ATTR_ATIME));
    assert_eq!(p("rnorelatime").unwrap().rec_clr, 0);
    assert_eq!(p("rdiratime").unwrap().rec_clr, ATTR_NODIRATIME);
}

#[test]
fn recursive_attributes() {
    let o = p("rro,rnoatime").unwrap();
    assert_eq!(o.rec_set, ATTR_RDONLY | ATTR_NOATIME);
    assert_eq!(o.rec_clr, ATTR_ATIME);
    assert_eq!(p("rrw").unwrap().rec_clr, ATTR_RDONLY);
}

/// runtime-spec config.md "mounts": the options it lists. Each must be
/// applied (a flag, propagation, a recursive attribute or idmap) or
/// refused: never passed on as filesystem data, which drops it silently.
const SPEC_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "iversion",
    "lazytime",
    "loud",
    "mand",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "nomand",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "ratime",
    "rbind",
    "rdev",
    "rdiratime",
    "relatime",
    "remount",
    "rexec",
    "rnoatime",
    "rnodev",
    "rnodiratime",
    "rnoexec",
    "rnorelatime",
    "rnostrictatime",
    "rnosuid",
    "rnosymfollow",
    "ro",
    "rprivate",
    "rrelatime",
    "rro",
    "rrw",
    "rshared",
    "rslave",
    "rstrictatime",
    "rsuid",
    "rsymfollow",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "tmpcopyup",
    "unbindable",
    "idmap",
    "ridmap",
];

#[test]
fn every_spec_option_is_applied_or_refused() {
    for opt in SPEC_OPTIONS {
        match p(opt) {
            Ok(o) => assert!(o.data.is_empty(), "{opt} became data {:?}", o.data),
            Err(e) => assert!(e.contains(opt), "{opt}: {e}"),
        }
    }
}

/// `skiff features` lists exactly what the parser takes by name: every
/// listed option is applied (never data), every spec option is listed, and
/// anything else becomes data.
#[test]
fn known_options_are_the_parsers() {
    let known = known_options();
    assert!(
        known.windows(2).all(|w| w[0] < w[1]),
        "sorted, no duplicates"
    );
    for opt in &known {
        let o = p(opt).unwrap_or_else(|e| panic!("{opt}: {e}"));
        assert!(o.data.is_empty(), "{opt} became data");
    }
    for opt in SPEC_OPTIONS {
        assert!(known.contains(opt), "{opt} is not listed");
    }
    assert_eq!(p("mode=755").unwrap().data, "mode=755");
    assert!(!known.contains(&"mode=755"));
}

#[test]
fn nosymfollow_plain_and_recursive() {
    let o = p("bind,nosymfollow").unwrap();
    assert_eq!(o.flags, MsFlags::MS_BIND | MS_NOSYMFOLLOW);
    assert_eq!(o.flags.bits(), libc::MS_BIND | 0x100);
    assert_eq!(p("nosymfollow,symfollow").unwrap().flags, MsFlags::empty());
    let o = p("rnosymfollow").unwrap();
    assert_eq!((o.rec_set, o.rec_clr), (ATTR_NOSYMFOLLOW, 0));
    assert_eq!(p("rsymfollow").unwrap().rec_clr, ATTR_NOSYMFOLLOW);
    assert_eq!(ATTR_NOSYMFOLLOW, libc::MOUNT_ATTR_NOSYMFOLLOW);
}

#[test]
fn unsupported_options_are_rejected() {
    assert!(p("tmpcopyup").unwrap().copy_up);
    assert_eq!(p("ridmap").unwrap().idmap, Some(true));
    assert!(p("ro,,nodev").unwrap_err().contains("invalid mount option"));
}

#[test]
fn compile_names_the_field() {
    let m: Mount = serde_json::from_str(
        r#"{"destination":"/x","type":"bind","source":"/tmp","options":["tmpcopyup"]}"#,
    )
    .unwrap();
    let e = compile(3, &m, Path::new("/"), None)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("mounts[3]"), "{e}");
    let m: Mount =
        serde_json::from_str(r#"{"destination":"/x","type":"bind","source":"/tmp"}"#).unwrap();
    let s = compile(0, &m, Path::new("/"), None).unwrap();
    assert_eq!(
        (s.kind, s.opts.flags, s.src_is_dir),
        (Kind::Bind, MsFlags::MS_BIND, true)
    );
    let m: Mount = serde_json::from_str(
        r#"{"destination":"/proc/kcore","type":"bind","source":"/tmp","options":["rbind"]}"#,
    )
    .unwrap();
    assert!(
        compile(1, &m, Path::new("/"), None)
            .unwrap_err()
            .to_string()
            .contains("inside /proc")
    );
}
