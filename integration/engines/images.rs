//! A local busybox image in the three forms the engines import (there is
//! no registry here): a rootfs tarball (`podman import`), an OCI image
//! layout tar made with umoci (`ctr images import`), and a docker-archive
//! tar written by hand (`docker load`).
//!
//! The OCI layout has two tags: `latest` (cmd `sh`) and `pause` (entrypoint
//! `sleep 2147483647`), the sandbox image of the CRI test.

use crate::run;
use std::fs;
use std::path::{Path, PathBuf};

pub struct Images {
    /// The busybox rootfs as a plain tar (also the one docker layer).
    pub rootfs_tar: PathBuf,
    /// OCI image layout as a tar; refs `latest` and `pause`.
    pub oci_tar: PathBuf,
    /// docker-archive tar, tagged `localhost/busybox:latest`.
    pub docker_tar: PathBuf,
}

fn busybox() -> &'static str {
    ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|b| Path::new(b).exists())
        .expect("static busybox (apt busybox-static)")
}

fn sha256(p: &Path) -> String {
    let o = run("sha256sum", &[p.to_str().unwrap()]).check("sha256sum");
    o.stdout.split_whitespace().next().unwrap().to_owned()
}

fn make_rootfs(dir: &Path) {
    let bb = busybox();
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::copy(bb, dir.join("bin/busybox")).unwrap();
    let list = run(bb, &["--list"]).check("busybox --list");
    for a in list.stdout.lines().filter(|a| *a != "busybox") {
        std::os::unix::fs::symlink("busybox", dir.join("bin").join(a)).unwrap();
    }
    fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    fs::write(dir.join("etc/group"), "root:x:0:\n").unwrap();
}

fn umoci(args: &[&str]) {
    run("umoci", args).check("umoci");
}

impl Images {
    pub fn build(work: &Path) -> Images {
        let dir = work.join("images");
        let rootfs = dir.join("rootfs");
        make_rootfs(&rootfs);
        let rootfs_tar = dir.join("rootfs.tar");
        let (r, t) = (rootfs.to_str().unwrap(), rootfs_tar.to_str().unwrap());
        run("tar", &["-C", r, "-cf", t, "."]).check("tar rootfs");

        assert!(crate::have("umoci"), "umoci is missing (apt umoci)");
        let layout = dir.join("oci");
        let l = layout.to_str().unwrap();
        let img = format!("{l}:latest");
        umoci(&["init", "--layout", l]);
        umoci(&["new", "--image", &img]);
        umoci(&["insert", "--image", &img, r, "/"]);
        umoci(&["config", "--image", &img, "--config.cmd", "sh"]);
        umoci(&["config", "--image", &img, "--config.env", "PATH=/bin"]);
        umoci(&[
            "config",
            "--image",
            &img,
            "--tag",
            "pause",
            "--config.entrypoint",
            "/bin/sleep",
            "--config.cmd",
            "2147483647",
        ]);
        let oci_tar = dir.join("oci.tar");
        run("tar", &["-C", l, "-cf", oci_tar.to_str().unwrap(), "."]).check("tar oci");

        let docker_tar = docker_archive(&dir, &rootfs_tar);
        Images {
            rootfs_tar,
            oci_tar,
            docker_tar,
        }
    }
}

/// The docker-archive format of `docker save`: `manifest.json` naming the
/// image config (`<sha256>.json`) and the layer tars by path, with the
/// layer's sha256 as its diff_id.
fn docker_archive(dir: &Path, layer: &Path) -> PathBuf {
    let da = dir.join("docker");
    let lsum = sha256(layer);
    fs::create_dir_all(da.join(&lsum)).unwrap();
    fs::copy(layer, da.join(&lsum).join("layer.tar")).unwrap();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{lsum}")]},
    });
    let cfg = da.join("config.json");
    fs::write(&cfg, config.to_string()).unwrap();
    let csum = sha256(&cfg);
    fs::rename(&cfg, da.join(format!("{csum}.json"))).unwrap();
    let manifest = serde_json::json!([{
        "Config": format!("{csum}.json"),
        "RepoTags": ["localhost/busybox:latest"],
        "Layers": [format!("{lsum}/layer.tar")],
    }]);
    fs::write(da.join("manifest.json"), manifest.to_string()).unwrap();
    let tar = dir.join("docker.tar");
    let d = da.to_str().unwrap();
    run("tar", &["-C", d, "-cf", tar.to_str().unwrap(), "."]).check("tar docker");
    tar
}
