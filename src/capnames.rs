//! Capability names as runc reads them: only the canonical `CAP_*`
//! spelling of a capability this kernel has. Anything else ("SYS_ADMIN",
//! "cap_chown", a capability newer than the kernel or than skiff) is
//! skipped with a warning, never granted and never fatal: a policy engine
//! that screens configs for `CAP_SYS_ADMIN` must not miss a
//! `SYS_ADMIN` that the runtime would still grant, and a newer engine's
//! default set must still run on an older kernel.
//! Runs in: the runtime process, before the typed parse (oci-spec alone
//! would accept any case and a missing prefix, and fail on unknown names).
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::str::FromStr;

const SETS: [&str; 5] = [
    "bounding",
    "effective",
    "inheritable",
    "permitted",
    "ambient",
];

#[derive(Deserialize, Default)]
struct Sets {
    bounding: Option<Vec<String>>,
    effective: Option<Vec<String>>,
    inheritable: Option<Vec<String>>,
    permitted: Option<Vec<String>>,
    ambient: Option<Vec<String>>,
}

impl Sets {
    fn all(&self) -> [(&'static str, &Option<Vec<String>>); 5] {
        [
            (SETS[0], &self.bounding),
            (SETS[1], &self.effective),
            (SETS[2], &self.inheritable),
            (SETS[3], &self.permitted),
            (SETS[4], &self.ambient),
        ]
    }
}

#[derive(Deserialize)]
struct ProcessCaps {
    capabilities: Option<Sets>,
}

#[derive(Deserialize)]
struct SpecCaps {
    process: Option<ProcessCaps>,
}

/// The highest capability number the running kernel knows.
fn cap_last_cap() -> u8 {
    crate::procfs::read_text("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u8::MAX)
}

/// Why `name` is not granted, or None when it is a capability to apply.
/// `last` is the kernel's last capability number (read only when needed).
pub fn refusal(name: &str, last: &mut Option<u8>) -> Option<&'static str> {
    let canonical = name.strip_prefix("CAP_").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    });
    if !canonical {
        return Some("not a canonical capability name (CAP_* in upper case)");
    }
    let Ok(cap) = caps::Capability::from_str(name) else {
        return Some("unknown capability");
    };
    // oci-spec must read it too (it knows fewer than the kernel may).
    if serde_json::from_value::<oci_spec::runtime::Capability>(Value::from(name)).is_err() {
        return Some("unknown capability");
    }
    // Every kernel skiff runs on has 0..=37 (CAP_AUDIT_READ, Linux 3.16).
    if cap.index() > 37 && cap.index() > *last.get_or_insert_with(cap_last_cap) {
        return Some("not available on this kernel");
    }
    None
}

/// Why `name` cannot be granted by this runtime process, or None: first
/// `refusal`, then whether skiff's own bounding set holds it. What the
/// runtime lacks (root without CAP_SYS_RESOURCE on a locked-down host) no
/// container of it can get, and the spec says a runtime SHOULD NOT fail
/// on such a request but warn: capset would fail with a bare EPERM.
/// `held` caches the bounding-set answers (bit per capability) so each
/// name costs at most one prctl.
pub fn grant_refusal(name: &str, last: &mut Option<u8>, held: &mut Held) -> Option<&'static str> {
    if let Some(why) = refusal(name, last) {
        return Some(why);
    }
    let cap = caps::Capability::from_str(name).ok()?;
    let bit = 1u64 << cap.index();
    if held.checked & bit == 0 {
        held.checked |= bit;
        // An error (a kernel without PR_CAPBSET_READ) counts as held: the
        // later capset then says what is wrong.
        if caps::has_cap(None, caps::CapSet::Bounding, cap).unwrap_or(true) {
            held.held |= bit;
        }
    }
    (held.held & bit == 0).then_some("not in skiff's own bounding set, so it cannot be granted")
}

/// The runtime's bounding set, as far as `grant_refusal` has looked.
#[derive(Default)]
pub struct Held {
    checked: u64,
    held: u64,
}

/// Every name `refusal` accepts on a kernel that has it (the kernel check
/// aside), in capability-number order: `skiff features` lists them.
pub fn known() -> Vec<String> {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    all.into_iter()
        .map(|c| c.to_string())
        .filter(|n| refusal(n, &mut Some(u8::MAX)).is_none())
        .collect()
}

/// Screens the capability sets of config.json text (`in_spec`: under
/// `process.capabilities`) or of a process.json (`capabilities`): the
/// text as it was when every name is acceptable (the usual case, one
/// light pass), else with the others removed, each named in a warning.
/// Text that does not parse is returned as it was, for the real parse to
/// report.
pub fn screen(text: &[u8], in_spec: bool) -> Cow<'_, [u8]> {
    let sets = if in_spec {
        serde_json::from_slice::<SpecCaps>(text)
            .ok()
            .and_then(|s| s.process)
            .and_then(|p| p.capabilities)
    } else {
        serde_json::from_slice::<ProcessCaps>(text)
            .ok()
            .and_then(|p| p.capabilities)
    };
    let Some(sets) = sets else {
        return Cow::Borrowed(text);
    };
    let (mut last, mut held) = (None, Held::default());
    let bad = sets.all().iter().any(|(_, names)| {
        names
            .iter()
            .flatten()
            .any(|n| grant_refusal(n, &mut last, &mut held).is_some())
    });
    if !bad {
        return Cow::Borrowed(text);
    }
    let Ok(mut v) = serde_json::from_slice::<Value>(text) else {
        return Cow::Borrowed(text);
    };
    let prefix = if in_spec {
        "process.capabilities"
    } else {
        "capabilities"
    };
    let caps = if in_spec {
        v.pointer_mut("/process/capabilities")
    } else {
        v.pointer_mut("/capabilities")
    };
    if let Some(caps) = caps {
        for set in SETS {
            if let Some(Value::Array(names)) = caps.get_mut(set) {
                names.retain(|n| {
                    let name = n.as_str().unwrap_or_default();
                    match grant_refusal(name, &mut last, &mut held) {
                        None => true,
                        Some(why) => {
                            crate::log::warn(&format!("{prefix}.{set}: ignoring {name:?}: {why}"));
                            false
                        }
                    }
                });
            }
        }
    }
    serde_json::to_vec(&v).map_or(Cow::Borrowed(text), Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_known_names_pass() {
        let mut last = Some(40);
        assert_eq!(refusal("CAP_CHOWN", &mut last), None);
        assert_eq!(refusal("CAP_SYS_ADMIN", &mut last), None);
        assert_eq!(refusal("CAP_CHECKPOINT_RESTORE", &mut last), None);
        for bad in [
            "SYS_ADMIN",
            "cap_chown",
            "CAP_chown",
            "CAP_",
            "chown",
            "CAP_CAP_CHOWN",
        ] {
            assert!(refusal(bad, &mut last).is_some(), "{bad}");
        }
        assert_eq!(
            refusal("CAP_NEWTHING", &mut last),
            Some("unknown capability")
        );
        // A kernel older than CAP_BPF (Linux 5.8).
        let mut old = Some(37);
        assert_eq!(
            refusal("CAP_BPF", &mut old),
            Some("not available on this kernel")
        );
        assert_eq!(refusal("CAP_AUDIT_READ", &mut old), None);
    }

    #[test]
    fn known_names_are_canonical_and_ordered() {
        let k = known();
        assert_eq!(k.first().map(String::as_str), Some("CAP_CHOWN"));
        assert!(k.len() >= 41, "{k:?}");
        assert!(k.contains(&"CAP_CHECKPOINT_RESTORE".to_string()));
        for (i, n) in k.iter().enumerate() {
            assert_eq!(caps::Capability::from_str(n).unwrap().index() as usize, i);
        }
    }

    #[test]
    fn screen_keeps_good_text_and_drops_the_rest() {
        let good = br#"{"process":{"capabilities":{"bounding":["CAP_CHOWN"]}},"x":1}"#;
        assert!(matches!(screen(good, true), Cow::Borrowed(_)));
        let bad = br#"{"process":{"capabilities":{"bounding":["CAP_CHOWN","SYS_ADMIN"],
            "effective":["cap_kill","CAP_KILL","CAP_PZFOO"]}},"x":1}"#;
        let v: Value = serde_json::from_slice(&screen(bad, true)).unwrap();
        assert_eq!(
            v["process"]["capabilities"]["bounding"],
            serde_json::json!(["CAP_CHOWN"])
        );
        assert_eq!(
            v["process"]["capabilities"]["effective"],
            serde_json::json!(["CAP_KILL"])
        );
        assert_eq!(v["x"], 1);
        let p = br#"{"capabilities":{"permitted":["SYS_ADMIN"]},"args":["sh"]}"#;
        let v: Value = serde_json::from_slice(&screen(p, false)).unwrap();
        assert_eq!(v["capabilities"]["permitted"], serde_json::json!([]));
        // Not JSON: left for the real parse to report.
        assert!(matches!(screen(b"{nope", true), Cow::Borrowed(_)));
    }
}
