//! The Kubernetes RuntimeClass path: containerd's CRI plugin with the
//! README's runtime `skiff` (`runtimes.skiff.options.BinaryName`, see the
//! config in containerd.rs), driven by a small Python CRI client
//! (cri/client.py, grpcio-tools from PyPI, the CRI v1 proto from the
//! k8s-cri crate) with the handler of the README's RuntimeClass (parsed
//! with PyYAML: its Pod uses the class, and the handler names the
//! containerd block's runtime).
//!
//! One pod on the host network (no CNI here) whose sandbox image is the
//! local busybox `pause` tag: RunPodSandbox, CreateContainer, Start,
//! ExecSync, UpdateContainerResources (CRI's update carries a deny-all
//! device rule that must not be applied), Stop, Remove, StopPodSandbox,
//! RemovePodSandbox.

use crate::{Ctx, run};
use std::path::Path;

pub fn tests() -> Vec<(&'static str, crate::TestFn)> {
    vec![("cri_pod_lifecycle", pod_lifecycle)]
}

fn pod_lifecycle(ctx: &mut Ctx) {
    if !run("python3", &["-c", "import grpc, grpc_tools, yaml"]).ok() {
        crate::skip!("python3 grpcio/grpcio-tools/yaml missing (pip install grpcio-tools pyyaml)");
    }
    let handler = runtime_class_handler();
    let tar = ctx.images().oci_tar.clone();
    let c = crate::containerd::containerd(ctx);
    let a = ["-a", c.sock.as_str(), "-n", "k8s.io", "images", "import"];
    let t = tar.to_str().unwrap();
    run(
        "ctr",
        &[&a[..], &["--base-name", "localhost/busybox", t]].concat(),
    )
    .check("import");
    let out = c.dir.join("cri-py");
    std::fs::create_dir_all(&out).unwrap();
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/engines/cri/client.py");
    let o = run(
        "python3",
        &[
            client.to_str().unwrap(),
            &c.sock,
            &handler,
            "/skiff-eng-cri",
            out.to_str().unwrap(),
        ],
    );
    let o = o.check("cri client");
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["pod_state"], "SANDBOX_READY", "{v}");
    assert_eq!(v["container_state"], "CONTAINER_RUNNING", "{v}");
    assert_eq!(v["exec"]["code"], 7, "{v}");
    let host = nix_hostname();
    assert_eq!(v["exec"]["stdout"], format!("in-exec\n{host}\n"), "{v}");
    assert_eq!(v["after_update"], "67108864\ndevnull-ok\n", "{v}");
    assert_eq!(v["stopped_state"], "CONTAINER_EXITED", "{v}");
    assert_eq!(v["stopped_exit"], 137, "{v}");
    assert_eq!(v["pod_stopped_state"], "SANDBOX_NOTREADY", "{v}");
    assert_eq!(v["pods_left"], 0, "{v}");
    // The shim ran the runtime under test: its --root is the Root option.
    assert!(
        c.dir.join("cri-runc-root/k8s.io").is_dir(),
        "runtime root not used"
    );
}

/// Host network: the pod's hostname is the host's (CRI sets none then).
fn nix_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

/// The handler of the README's RuntimeClass, after checking that the
/// block parses as Kubernetes YAML, that its Pod uses the class and that
/// the README's containerd block defines a runtime of that name.
fn runtime_class_handler() -> String {
    let yaml = crate::readme::snippet("runtimeclass");
    let parse = "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(sys.argv[1]))))";
    let o = run("python3", &["-c", parse, &yaml]).check("parse the RuntimeClass");
    let docs: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let (class, pod) = (&docs[0], &docs[1]);
    assert_eq!(class["apiVersion"], "node.k8s.io/v1", "{docs}");
    assert_eq!(class["kind"], "RuntimeClass", "{docs}");
    assert_eq!(pod["kind"], "Pod", "{docs}");
    assert_eq!(
        pod["spec"]["runtimeClassName"], class["metadata"]["name"],
        "{docs}"
    );
    let handler = class["handler"].as_str().expect("a handler").to_owned();
    let table = format!("containerd.runtimes.{handler}]");
    let ctd = crate::readme::snippet("containerd");
    assert!(ctd.contains(&table), "no runtime {handler} in {ctd}");
    handler
}
