//! buildah 1.28 (apt `buildah`) builds Containerfiles whose `RUN` steps
//! run under the runtime under test, chosen the three ways the README's
//! "Podman and Buildah" shows: its containers.conf, `--runtime`, and
//! `BUILDAH_RUNTIME`.
//!
//! Storage (`--root`, `--runroot`), TMPDIR (the step bundles) and the
//! containers.conf are in a tempdir; the base image is the local busybox
//! OCI archive (`FROM oci-archive:...`, no registry). Every build gets a
//! unique `--cgroup-parent` (buildah makes it the step's cgroup) and passes
//! `--runtime-flag root=<dir>` with that dir bind-mounted into the steps at
//! `/rt`: a step prints the state file the runtime wrote for it, and the
//! runtime under test must read that file back with `state`, so the step
//! really ran under it (runc cannot read skiff's state and vice versa).

use crate::{Ctx, Out, TempDir, readme, run, run_env, runtime};
use std::fs;
use std::path::{Path, PathBuf};

pub struct Buildah {
    dir: TempDir,
    /// containers.conf: the README's block plus the test's keys.
    conf_readme: String,
    /// containers.conf with no runtime: the default would be crun.
    conf_plain: String,
    /// `FROM` of every Containerfile.
    base: String,
}

pub fn tests() -> Vec<(&'static str, crate::TestFn)> {
    vec![
        ("buildah_build_run_steps", run_steps),
        ("buildah_build_failing_run", failing_run),
        ("buildah_build_runtime_flag", runtime_flag),
    ]
}

/// The test's own `[engine]` keys: no systemd here, events to a file.
fn engine_keys(d: &Path) -> String {
    format!(
        "cgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nevents_logfile_path = \"{}/events.log\"\n",
        d.display()
    )
}

impl Buildah {
    fn start(ctx: &mut Ctx) -> Buildah {
        if !crate::have("buildah") {
            crate::skip!("buildah not installed (apt buildah)");
        }
        let dir = TempDir::new("buildah");
        let keys = engine_keys(dir.path());
        let conf_readme = dir.join("containers.conf");
        fs::write(&conf_readme, readme::containers_conf(&keys, "")).unwrap();
        let conf_plain = dir.join("plain.conf");
        fs::write(&conf_plain, format!("[engine]\n{keys}")).unwrap();
        fs::create_dir_all(dir.join("tmp")).unwrap();
        let oci = ctx.images().oci_tar.display().to_string();
        Buildah {
            conf_readme: conf_readme.display().to_string(),
            conf_plain: conf_plain.display().to_string(),
            base: format!("oci-archive:{oci}:latest"),
            dir,
        }
    }

    /// `buildah --root ... --runroot ... args` with containers.conf `conf`
    /// and the extra environment `env`.
    fn bh(&self, conf: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
        let root = self.dir.join("root").display().to_string();
        let runroot = self.dir.join("runroot").display().to_string();
        let tmp = self.dir.join("tmp").display().to_string();
        let mut a = vec![
            "--root",
            &root,
            "--runroot",
            &runroot,
            "--storage-driver",
            "overlay",
        ];
        a.extend_from_slice(args);
        let mut e = vec![("CONTAINERS_CONF", conf), ("TMPDIR", tmp.as_str())];
        e.extend_from_slice(env);
        run_env("buildah", &a, &e)
    }

    /// A build context `tag` whose Containerfile is `FROM <base>` and
    /// `steps`; returns its directory.
    fn context(&self, tag: &str, steps: &str) -> PathBuf {
        let d = self.dir.join(&crate::unique(tag));
        fs::create_dir_all(&d).unwrap();
        fs::write(
            d.join("Containerfile"),
            format!("FROM {}\n{steps}", self.base),
        )
        .unwrap();
        d
    }
}

impl Drop for Buildah {
    fn drop(&mut self) {
        let _ = self.bh(&self.conf_plain, &["rm", "-a"], &[]);
        let _ = self.bh(&self.conf_plain, &["rmi", "-af"], &[]);
    }
}

fn buildah(ctx: &mut Ctx) -> &Buildah {
    if ctx.buildah.is_none() {
        ctx.buildah = Some(Buildah::start(ctx));
    }
    ctx.buildah.as_ref().unwrap()
}

/// The flags of every build: no network, a cgroup parent, and the
/// runtime's root bind-mounted at `/rt` (see the module doc).
struct BuildFlags {
    rt_root: TempDir,
    cgroup_parent: String,
    args: Vec<String>,
}

impl BuildFlags {
    fn new() -> BuildFlags {
        let rt_root = TempDir::new("bh-rt");
        let cgroup_parent = format!("/{}", crate::unique("buildah"));
        let r = rt_root.path().display();
        let args = [
            "--network",
            "none",
            "--layers=false",
            "--cgroup-parent",
            &cgroup_parent,
            "--runtime-flag",
            &format!("root={r}"),
            "-v",
            &format!("{r}:/rt:ro"),
        ]
        .map(String::from)
        .to_vec();
        BuildFlags {
            rt_root,
            cgroup_parent,
            args,
        }
    }

    /// The runtime deleted every step's state and cgroup.
    fn check_nothing_left(&self) {
        let left: Vec<_> = fs::read_dir(self.rt_root.path()).unwrap().collect();
        assert!(left.is_empty(), "runtime state left: {left:?}");
        let cg = format!("/sys/fs/cgroup/memory{}", self.cgroup_parent);
        assert!(!Path::new(&cg).exists(), "cgroup left: {cg}");
    }
}

impl Drop for BuildFlags {
    fn drop(&mut self) {
        crate::remove_cgroup(&self.cgroup_parent);
    }
}

/// A step prints (or saves) this: the state file of the step's own
/// container, one line of JSON, as the runtime wrote it under `/rt`.
pub const SHOW_STATE: &str = "{ cat /rt/*/state.json; echo; }";

/// Asserts that the runtime under test reads `state` (the file a step
/// found under its runtime's root) as the state of the step's container.
pub fn check_runtime_wrote(state: &str) {
    let line = state
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no state JSON in {state:?}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("buildah-"), "{v}");
    let root = TempDir::new("bh-state");
    fs::create_dir_all(root.join(&id)).unwrap();
    fs::write(root.join(&id).join("state.json"), line).unwrap();
    let r = root.path().to_str().unwrap();
    let o = run(runtime().to_str().unwrap(), &["--root", r, "state", &id]);
    let st: serde_json::Value = serde_json::from_str(&o.check("state").stdout).unwrap();
    assert_eq!(st["id"], id.as_str(), "{st}");
}

/// RUN steps with a shell (`&&`, pipes, variables, arithmetic, a loop, an
/// ENV from the Containerfile) write files; the image has them, read from
/// its mounted layers and through `buildah run` (the runtime again). The
/// runtime is the one of the README's containers.conf.
fn run_steps(ctx: &mut Ctx) {
    let b = buildah(ctx);
    let steps = format!(
        r#"ENV GREETING=hi
RUN echo hello > /built && n=2; n=$((n * 21)); echo "n=$n" | tr n N >> /built
RUN set -e; for f in a b c; do echo $f > /data-$f; done; ls /data-* | wc -l > /count
RUN echo "$GREETING from $(head -n 1 /built), pid $$" > /greeting; {SHOW_STATE} > /state.json
"#
    );
    let dir = b.context("bh-ok", &steps);
    let flags = BuildFlags::new();
    let tag = format!("localhost/{}", crate::unique("bh-img"));
    let mut a: Vec<&str> = vec!["build"];
    a.extend(flags.args.iter().map(String::as_str));
    a.extend(["-t", &tag, dir.to_str().unwrap()]);
    let o = b.bh(&b.conf_readme, &a, &[]).check("buildah build");
    assert!(o.stdout.contains("STEP 5/5: RUN"), "{o:?}");
    flags.check_nothing_left();

    let c = b.bh(&b.conf_plain, &["from", &tag], &[]).check("from");
    let c = c.stdout.trim();
    let m = b.bh(&b.conf_plain, &["mount", c], &[]).check("mount");
    let m = Path::new(m.stdout.trim());
    let read = |f: &str| fs::read_to_string(m.join(f)).unwrap();
    assert_eq!(read("built"), "hello\nN=42\n");
    assert_eq!(read("count").trim(), "3");
    assert_eq!(read("data-b"), "b\n");
    assert_eq!(read("greeting"), "hi from hello, pid 1\n");
    check_runtime_wrote(&read("state.json"));
    b.bh(&b.conf_plain, &["umount", c], &[]).check("umount");

    let o = b.bh(
        &b.conf_readme,
        &["run", "--network", "none", c, "cat", "/built"],
        &[],
    );
    assert_eq!(o.check("buildah run").stdout, "hello\nN=42\n");
    b.bh(&b.conf_plain, &["rm", c], &[]).check("rm");
}

/// A RUN that exits 7 fails the build: buildah names the step and the
/// status and exits with it; the steps before it ran, under the runtime
/// the README's `BUILDAH_RUNTIME` names (containers.conf names none).
fn failing_run(ctx: &mut Ctx) {
    let b = buildah(ctx);
    let env = readme::snippet("buildah");
    let rt = env
        .lines()
        .find_map(|l| l.strip_prefix("export BUILDAH_RUNTIME="))
        .expect("an `export BUILDAH_RUNTIME=` line");
    let dir = b.context("bh-fail", &format!("RUN {SHOW_STATE}; exit 7\n"));
    let flags = BuildFlags::new();
    let mut a: Vec<&str> = vec!["build"];
    a.extend(flags.args.iter().map(String::as_str));
    a.push(dir.to_str().unwrap());
    let o = b.bh(&b.conf_plain, &a, &[("BUILDAH_RUNTIME", rt)]);
    assert_eq!(o.code, 7, "{o:?}");
    let want = format!(
        "Error: building at STEP \"RUN {SHOW_STATE}; exit 7\": while running runtime: exit status 7"
    );
    assert!(o.stderr.contains(&want), "want {want:?}: {o:?}");
    check_runtime_wrote(&o.stdout);
    flags.check_nothing_left();
}

/// The README's `buildah build --runtime <skiff> -t myimage .` line, run
/// as written in the build context (containers.conf names no runtime).
fn runtime_flag(ctx: &mut Ctx) {
    let b = buildah(ctx);
    let dir = b.context("bh-flag", &format!("RUN {SHOW_STATE} > /state.json\n"));
    let tag = format!("localhost/{}", crate::unique("bh-flag"));
    let line = readme::command("buildah", "buildah");
    let flags = BuildFlags::new();
    let d = dir.display().to_string();
    let mut a: Vec<&str> = vec![line[0].as_str()];
    a.extend(flags.args.iter().map(String::as_str));
    a.extend(line[1..].iter().map(|w| match w.as_str() {
        "myimage" => tag.as_str(),
        "." => d.as_str(),
        w => w,
    }));
    b.bh(&b.conf_plain, &a, &[])
        .check("buildah build --runtime");
    flags.check_nothing_left();
    let c = b.bh(&b.conf_plain, &["from", &tag], &[]).check("from");
    let c = c.stdout.trim();
    let m = b.bh(&b.conf_plain, &["mount", c], &[]).check("mount");
    let state = fs::read_to_string(Path::new(m.stdout.trim()).join("state.json")).unwrap();
    check_runtime_wrote(&state);
    b.bh(&b.conf_plain, &["umount", c], &[]).check("umount");
    b.bh(&b.conf_plain, &["rm", c], &[]).check("rm");
}
