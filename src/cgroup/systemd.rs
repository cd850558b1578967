//! The systemd cgroup driver (`--systemd-cgroup`), with runc 1.1's
//! semantics; the pure half: cgroupsPath, slice expansion, unit names, the
//! unit's properties (from the planned cgroup writes, the device rules and
//! the `org.systemd.property.*` annotations). `bus.rs` talks to systemd.
//! Runs in: the runtime process (P).
//!
//! The rules, and where they come from (runc 1.1 libcontainer/specconv and
//! cgroups/systemd):
//! - cgroupsPath is `slice:prefix:name` (exactly three fields, else runc's
//!   error); the unit is `prefix-name.scope`; empty or absent means slice
//!   system.slice, prefix "runc", name the container id, as in runc.
//! - A slice `a-b-c.slice` lives at /a.slice/a-b.slice/a-b-c.slice
//!   (runc's ExpandSlice, with its "invalid slice name" errors); `-.slice`
//!   is the root. The container's directory is `<mount>/<slice path>/<unit>`
//!   in every hierarchy (systemd makes the ones it manages, we make the
//!   others on v1: cpuset, freezer, net_cls, perf_event, hugetlb, ...).
//! - Properties: what systemd has a property for is derived from the very
//!   writes the fs driver plans (`props_from_writes`), so systemd's view and
//!   the files cannot disagree; the files are then written as without
//!   systemd (runc's managers call the fs manager's Set after
//!   SetUnitProperties too), and stay authoritative where systemd rounds
//!   (CPUQuotaPerSecUSec is kept in whole percents of a CPU).
use super::resources::{DeviceRule, Version, Write};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The slice a unit goes in when the cgroupsPath names none (runc: root's).
pub const DEFAULT_SLICE: &str = "system.slice";
/// The unit prefix runc uses without a cgroupsPath.
const DEFAULT_PREFIX: &str = "runc";

/// The container's systemd unit, recorded in state.json so every later
/// command (with or without the flag) knows the driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// `prefix-name.scope`.
    pub name: String,
    /// The parent slice, e.g. `system.slice`.
    pub slice: String,
    /// org.systemd.property.* annotations, sent when the unit starts.
    #[serde(skip)]
    pub extra: Vec<Prop>,
    /// runc's "libcontainer container <name>".
    #[serde(skip)]
    pub description: String,
}

/// One unit property (D-Bus `(sv)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prop {
    pub name: String,
    pub value: Value,
}

/// The D-Bus values the driver sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Byte(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    /// An f64, as its bits (keeps `Eq`).
    Double(u64),
    Str(String),
    /// `as`
    Strs(Vec<String>),
    /// `ay` (AllowedCPUs, AllowedMemoryNodes)
    Bytes(Vec<u8>),
    /// `au` (PIDs)
    U32s(Vec<u32>),
    /// `a(ss)` (DeviceAllow)
    Pairs(Vec<(String, String)>),
}

fn prop(name: &str, value: Value) -> Prop {
    Prop {
        name: name.to_string(),
        value,
    }
}

/// Whether systemd makes (and removes) a unit's directory in this
/// hierarchy: cgroup2 (pure, or a hybrid's unified one), name=systemd and
/// the v1 controllers it has properties for.
pub fn manages(v: Version, controllers: &[String]) -> bool {
    const V1: [&str; 7] = [
        "cpu",
        "cpuacct",
        "blkio",
        "memory",
        "devices",
        "pids",
        "name=systemd",
    ];
    v == Version::V2 || controllers.iter().any(|c| V1.contains(&c.as_str()))
}

/// sd_booted(3), as runc's IsRunningSystemd: /run/systemd/system is a directory.
pub fn booted() -> bool {
    std::fs::symlink_metadata("/run/systemd/system").is_ok_and(|m| m.is_dir())
}

/// The error for `create --systemd-cgroup` on a host without systemd
/// (runc 1.1's words).
pub fn not_booted() -> anyhow::Error {
    anyhow::anyhow!("systemd not running on this host, cannot use systemd cgroups manager")
}

/// `linux.cgroupsPath` for the systemd driver → (slice, unit). The slice
/// is checked (`expand_slice`) and the unit name too, so a bad path fails
/// before anything exists.
pub fn parse_path(cgroups_path: Option<&str>, id: &str) -> Result<Unit> {
    let (slice, prefix, name) = match cgroups_path.filter(|p| !p.is_empty()) {
        None => ("", DEFAULT_PREFIX, id),
        Some(p) => match p.split(':').collect::<Vec<_>>()[..] {
            [s, pre, n] => (s, pre, n),
            _ => bail!(
                "linux.cgroupsPath: expected cgroupsPath to be of format \"slice:prefix:name\" for systemd cgroups, got {p:?} instead"
            ),
        },
    };
    let slice = if slice.is_empty() {
        DEFAULT_SLICE
    } else {
        slice
    };
    expand_slice(slice).context("linux.cgroupsPath")?;
    if name.ends_with(".slice") {
        // runc would ask systemd for a slice unit holding the container's
        // pid, which systemd refuses (slices hold no processes).
        bail!(
            "linux.cgroupsPath: {name:?}: a container's unit must be a scope, not a slice (only kubelet-style slice management names a .slice)"
        );
    }
    let unit = format!("{prefix}-{name}.scope");
    check_unit_name(&unit).context("linux.cgroupsPath")?;
    Ok(Unit {
        name: unit,
        slice: slice.to_string(),
        extra: Vec::new(),
        description: format!("libcontainer container {name}"),
    })
}

/// systemd's unit name rules (unit_name_is_valid): at most 255
/// characters of `[A-Za-z0-9:_.\-]`, one `@` at most (an instance name).
pub fn check_unit_name(unit: &str) -> Result<()> {
    let ok_chars = unit
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b));
    if unit.len() > 255 || !ok_chars || unit.matches('@').count() > 1 || unit.starts_with('.') {
        bail!(
            "invalid systemd unit name {unit:?} (allowed: at most 255 letters, digits and \":-_.\\@\")"
        );
    }
    Ok(())
}

/// runc's ExpandSlice: `a-b-c.slice` → `/a.slice/a-b.slice/a-b-c.slice`,
/// `-.slice` → `/`.
pub fn expand_slice(slice: &str) -> Result<String> {
    const SUFFIX: &str = ".slice";
    let invalid = || anyhow::anyhow!("invalid slice name: {slice}");
    let name = slice.strip_suffix(SUFFIX).ok_or_else(invalid)?;
    if slice.contains('/') {
        return Err(invalid());
    }
    if name == "-" {
        return Ok("/".to_string());
    }
    let (mut path, mut prefix) = (String::new(), String::new());
    for part in name.split('-') {
        if part.is_empty() {
            return Err(invalid());
        }
        path += &format!("/{prefix}{part}{SUFFIX}");
        prefix += &format!("{part}-");
    }
    Ok(path)
}

/// The properties every unit of ours starts with (runc's Apply): the
/// description, the slice, the pid that holds it, delegation, accounting,
/// no default dependencies.
pub fn base_props(unit: &Unit, pid: u32, v: Version) -> Vec<Prop> {
    let io = match v {
        Version::V1 => "BlockIOAccounting",
        Version::V2 => "IOAccounting",
    };
    vec![
        prop("Description", Value::Str(unit.description.clone())),
        prop("Slice", Value::Str(unit.slice.clone())),
        prop("PIDs", Value::U32s(vec![pid])),
        prop("Delegate", Value::Bool(true)),
        prop("MemoryAccounting", Value::Bool(true)),
        prop("CPUAccounting", Value::Bool(true)),
        prop(io, Value::Bool(true)),
        prop("TasksAccounting", Value::Bool(true)),
        prop("DefaultDependencies", Value::Bool(false)),
    ]
}

/// systemd's "infinity" for limits (USEC_INFINITY, CGROUP_LIMIT_MAX).
const INFINITY: u64 = u64::MAX;

fn limit(value: &str) -> Option<u64> {
    match value.trim() {
        "max" | "-1" => Some(INFINITY),
        v => v.parse().ok(),
    }
}

/// The properties systemd has for these planned writes (pure: the files
/// say what the container gets, systemd is told the same). Writes with no
/// property (hugetlb, rdma, throttles, swappiness, ...) stay file-only.
pub fn props_from_writes(writes: &[Write], v: Version) -> Result<Vec<Prop>> {
    let mut out = Vec::new();
    let (mut quota, mut period): (Option<&str>, Option<&str>) = (None, None);
    for w in writes {
        let Some((file, value)) = w.file() else {
            continue;
        };
        let mem = |name: &str| limit(value).map(|n| prop(name, Value::U64(n)));
        let p = match (v, file) {
            (Version::V2, "memory.max") => mem("MemoryMax"),
            (Version::V2, "memory.low") => mem("MemoryLow"),
            (Version::V2, "memory.high") => mem("MemoryHigh"),
            (Version::V2, "memory.min") => mem("MemoryMin"),
            (Version::V2, "memory.swap.max") => mem("MemorySwapMax"),
            (Version::V1, "memory.limit_in_bytes") => mem("MemoryLimit"),
            (_, "pids.max") => mem("TasksMax"),
            (Version::V2, "cpu.weight") => {
                value.parse().ok().map(|n| prop("CPUWeight", Value::U64(n)))
            }
            (Version::V1, "cpu.shares") => {
                value.parse().ok().map(|n| prop("CPUShares", Value::U64(n)))
            }
            (Version::V2, "io.weight") => {
                value.parse().ok().map(|n| prop("IOWeight", Value::U64(n)))
            }
            (Version::V1, "blkio.weight") => value
                .parse()
                .ok()
                .map(|n| prop("BlockIOWeight", Value::U64(n))),
            (Version::V2, "cpu.max") => {
                let mut it = value.split_whitespace();
                quota = it.next();
                period = it.next().or(period);
                None
            }
            (Version::V1, "cpu.cfs_quota_us") => {
                quota = Some(value);
                None
            }
            (Version::V1, "cpu.cfs_period_us") => {
                period = Some(value);
                None
            }
            (_, "cpuset.cpus") => Some(prop("AllowedCPUs", Value::Bytes(cpuset_bits(value)?))),
            (_, "cpuset.mems") => Some(prop(
                "AllowedMemoryNodes",
                Value::Bytes(cpuset_bits(value)?),
            )),
            _ => None,
        };
        out.extend(p);
    }
    if quota.is_some() || period.is_some() {
        let period = match period {
            Some(p) => Some(
                p.parse::<u64>()
                    .with_context(|| format!("cpu period {p:?}"))?,
            ),
            None => None,
        };
        let quota = match quota {
            None | Some("max") => -1,
            Some(q) => q
                .parse::<i64>()
                .with_context(|| format!("cpu quota {q:?}"))?,
        };
        if let Some(p) = period {
            out.push(prop("CPUQuotaPeriodUSec", Value::U64(p)));
        }
        out.push(prop(
            "CPUQuotaPerSecUSec",
            Value::U64(quota_per_sec(quota, period)),
        ));
    }
    Ok(out)
}

/// runc's addCpuQuota: quota per period → microseconds per CPU-second,
/// rounded *up* to whole percents (10ms), as systemd keeps CPUQuota in
/// percents and the cgroup must get at least the configured quota; no
/// positive quota is infinity.
pub fn quota_per_sec(quota: i64, period: Option<u64>) -> u64 {
    if quota <= 0 {
        return INFINITY;
    }
    let period = period.filter(|&p| p != 0).unwrap_or(100_000);
    let per_sec = (quota as u64).saturating_mul(1_000_000) / period;
    per_sec.div_ceil(10_000) * 10_000
}

/// runc's RangeToBits: a cpuset list ("0-3,8") → systemd's byte array,
/// CPU n at bit n%8 of byte n/8, with no trailing zero bytes.
pub fn cpuset_bits(list: &str) -> Result<Vec<u8>> {
    const MAX: usize = 1 << 16;
    let mut bytes: Vec<u8> = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| -> Result<usize> {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n < MAX)
                .with_context(|| format!("cpuset {list:?}: invalid number {s:?}"))
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if lo > hi {
            bail!("cpuset {list:?}: invalid range: {part}");
        }
        for n in lo..=hi {
            if bytes.len() <= n / 8 {
                bytes.resize(n / 8 + 1, 0);
            }
            bytes[n / 8] |= 1 << (n % 8);
        }
    }
    if bytes.is_empty() {
        bail!("cpuset {list:?}: empty value");
    }
    Ok(bytes)
}

/// DevicePolicy/DeviceAllow for the device rules (config rules then runc's
/// defaults), as runc's generateDeviceProperties: the rules are replayed
/// like the kernel's v1 device cgroup; a whitelist becomes DevicePolicy
/// "strict" and its entries, allow-all becomes "auto". systemd has no
/// blacklist: a deny list under allow-all is sent as deny-all (with
/// runc's warning) and the files (v1) or our own BPF filter (v2) carry the
/// real rules. `proc_devices` is /proc/devices, for `c 136:*`-style rules.
pub fn device_props(rules: &[DeviceRule], proc_devices: &str) -> Vec<Prop> {
    let (allow_all, list) = replay(rules);
    if allow_all {
        if list.is_empty() {
            return vec![
                prop("DevicePolicy", Value::Str("auto".into())),
                prop("DeviceAllow", Value::Pairs(Vec::new())),
            ];
        }
        crate::log::warn(
            "systemd doesn't support blacklist device rules -- applying temporary deny-all rule",
        );
        return vec![
            prop("DevicePolicy", Value::Str("strict".into())),
            prop("DeviceAllow", Value::Pairs(Vec::new())),
        ];
    }
    let mut allow = Vec::new();
    for r in &list {
        let kind = if r.kind == 'b' { "block" } else { "char" };
        let path = match (r.major, r.minor) {
            (None, None) => format!("{kind}-*"),
            (None, Some(_)) => {
                crate::log::warn(&format!(
                    "systemd doesn't support '*:n' device rules -- temporarily ignoring rule {r}"
                ));
                continue;
            }
            (Some(major), None) => match device_group(proc_devices, r.kind, major) {
                Some(g) => format!("{kind}-{g}"),
                None => {
                    crate::log::warn(&format!(
                        "could not find device group for '{r}' in /proc/devices -- temporarily ignoring rule"
                    ));
                    continue;
                }
            },
            (Some(major), Some(minor)) => format!("/dev/{kind}/{major}:{minor}"),
        };
        allow.push((path, r.access.to_string()));
    }
    vec![
        prop("DevicePolicy", Value::Str("strict".into())),
        // An empty list first: SetUnitProperties appends otherwise.
        prop("DeviceAllow", Value::Pairs(Vec::new())),
        prop("DeviceAllow", Value::Pairs(allow)),
    ]
}

/// Replays rules as the v1 device cgroup does: `a` resets to allow-all
/// or deny-all; a rule of the default's kind removes access from an
/// exception of the same device, the other kind adds one. Returns
/// (default allows, exceptions).
fn replay(rules: &[DeviceRule]) -> (bool, Vec<DeviceRule>) {
    let mut allow_all = false;
    let mut list: Vec<DeviceRule> = Vec::new();
    for r in rules {
        if r.kind == 'a' {
            allow_all = r.allow;
            list.clear();
            continue;
        }
        let same = |e: &DeviceRule| e.kind == r.kind && e.major == r.major && e.minor == r.minor;
        let pos = list.iter().position(same);
        if r.allow == allow_all {
            if let Some(i) = pos {
                let left = access_of(list[i].access.chars().filter(|c| !r.access.contains(*c)));
                match left {
                    "" => {
                        list.remove(i);
                    }
                    a => list[i].access = a,
                }
            }
        } else {
            match pos {
                Some(i) => {
                    list[i].access = access_of(list[i].access.chars().chain(r.access.chars()))
                }
                None => list.push(DeviceRule {
                    allow: !allow_all,
                    ..*r
                }),
            }
        }
    }
    (allow_all, list)
}

/// The canonical (static) access string for a set of r, w, m.
fn access_of(chars: impl Iterator<Item = char>) -> &'static str {
    let s: Vec<char> = chars.collect();
    let has = |c| s.contains(&c);
    match (has('r'), has('w'), has('m')) {
        (true, true, true) => "rwm",
        (true, true, false) => "rw",
        (true, false, true) => "rm",
        (true, false, false) => "r",
        (false, true, true) => "wm",
        (false, true, false) => "w",
        (false, false, true) => "m",
        (false, false, false) => "",
    }
}

/// The /proc/devices name of a major number ("136" → "pts"), in the
/// character or block section.
fn device_group(proc_devices: &str, kind: char, major: i64) -> Option<String> {
    let section = if kind == 'b' {
        "Block devices:"
    } else {
        "Character devices:"
    };
    let mut inside = false;
    for line in proc_devices.lines() {
        let line = line.trim();
        if line.ends_with(':') {
            inside = line == section;
            continue;
        }
        if !inside {
            continue;
        }
        if let Some((n, name)) = line.split_once(char::is_whitespace)
            && n.parse::<i64>().ok() == Some(major)
        {
            return Some(name.trim().to_string());
        }
    }
    None
}

/// runc's org.systemd.property.* annotations: `org.systemd.property.Name`
/// = a GVariant text value. Supported here: booleans, numbers (int32 by
/// default, or typed: `byte`, `int16`, `uint16`, `int32`, `uint32`,
/// `int64`, `uint64`, `double`, or `@t`-style), strings in single or
/// double quotes, and arrays of strings; anything else is refused by
/// name, never dropped. `...Sec` names become `...USec` (seconds to
/// microseconds), as in runc.
pub fn annotation_props<'a>(
    annotations: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Result<Vec<Prop>> {
    const PREFIX: &str = "org.systemd.property.";
    let mut list: Vec<(&String, &String)> = annotations
        .into_iter()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .collect();
    list.sort();
    let mut out = Vec::new();
    for (k, v) in list {
        let mut name = k[PREFIX.len()..].to_string();
        if name.len() < 3 || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            bail!(
                "annotation {k} name incorrect: a systemd property name is at least 3 ASCII letters"
            );
        }
        let mut value =
            parse_gvariant(v).with_context(|| format!("annotation {k}={v} value parse error"))?;
        if let Some(base) = name.strip_suffix("Sec")
            && base.ends_with(|c: char| c.is_ascii_lowercase())
        {
            value =
                Value::U64(sec_to_usec(&value).with_context(|| {
                    format!("annotation {k}={v} value parse error: not a number")
                })?);
            name = format!("{base}USec");
        }
        out.push(Prop { name, value });
    }
    Ok(out)
}

fn sec_to_usec(v: &Value) -> Option<u64> {
    const M: u64 = 1_000_000;
    let n = match *v {
        Value::Byte(n) => u64::from(n),
        Value::I16(n) => u64::try_from(n).ok()?,
        Value::U16(n) => u64::from(n),
        Value::I32(n) => u64::try_from(n).ok()?,
        Value::U32(n) => u64::from(n),
        Value::I64(n) => u64::try_from(n).ok()?,
        Value::U64(n) => n,
        Value::Double(bits) => {
            let f = f64::from_bits(bits);
            return (f >= 0.0).then_some((f * M as f64) as u64);
        }
        _ => return None,
    };
    n.checked_mul(M)
}

/// The subset of GVariant's text format described at `annotation_props`.
pub fn parse_gvariant(text: &str) -> Result<Value> {
    let t = text.trim();
    match t {
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    if let Some(s) = quoted(t) {
        return Ok(Value::Str(s?));
    }
    if let Some(inner) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        let inner = inner.trim();
        let inner = inner.strip_prefix("@as").map_or(inner, str::trim);
        let mut out = Vec::new();
        if !inner.is_empty() {
            for item in split_list(inner)? {
                match quoted(item.trim()) {
                    Some(s) => out.push(s?),
                    None => bail!("only arrays of strings are supported, got {item:?}"),
                }
            }
        }
        return Ok(Value::Strs(out));
    }
    let (ty, num) = match t.split_once(char::is_whitespace) {
        Some((ty, n)) => (ty, n.trim()),
        None => ("int32", t),
    };
    let bad = || {
        anyhow::anyhow!(
            "unsupported GVariant text {text:?} (skiff takes booleans, numbers with an optional type such as \"uint64 5\", quoted strings and arrays of strings)"
        )
    };
    let v = match ty {
        "byte" | "@y" => Value::Byte(num.parse().map_err(|_| bad())?),
        "int16" | "@n" => Value::I16(num.parse().map_err(|_| bad())?),
        "uint16" | "@q" => Value::U16(num.parse().map_err(|_| bad())?),
        "int32" | "@i" => Value::I32(num.parse().map_err(|_| bad())?),
        "uint32" | "@u" => Value::U32(num.parse().map_err(|_| bad())?),
        "int64" | "@x" => Value::I64(num.parse().map_err(|_| bad())?),
        "uint64" | "@t" => Value::U64(num.parse().map_err(|_| bad())?),
        "double" | "@d" => Value::Double(num.parse::<f64>().map_err(|_| bad())?.to_bits()),
        "boolean" | "@b" => match num {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    Ok(v)
}

/// A quoted string ('…' or "…", with backslash escapes), or None if `t`
/// is not one.
fn quoted(t: &str) -> Option<Result<String>> {
    let q = t.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let body = t
        .get(1..t.len().checked_sub(1)?)
        .filter(|_| t.len() >= 2 && t.ends_with(q))?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(e) => out.push(e),
                None => return Some(Err(anyhow::anyhow!("trailing backslash in {t:?}"))),
            },
            c if c == q => return Some(Err(anyhow::anyhow!("unescaped quote in {t:?}"))),
            c => out.push(c),
        }
    }
    Some(Ok(out))
}

/// Splits "'a', 'b,c'" at the commas outside quotes.
fn split_list(s: &str) -> Result<Vec<&str>> {
    let mut out = Vec::new();
    let (mut start, mut quote, mut escaped) = (0, None, false);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (_, _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, ',') => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quote.is_some() {
        bail!("unterminated string in [{s}]");
    }
    out.push(&s[start..]);
    Ok(out)
}

#[cfg(test)]
#[path = "systemd_tests.rs"]
mod tests;
