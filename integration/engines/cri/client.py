"""A minimal CRI client: one pod lifecycle through containerd's CRI plugin
with the runtime handler given on the command line (the Kubernetes
RuntimeClass path). Prints one JSON object with what it observed; the Rust
test (integration/engines/cri.rs) asserts on it.

api.proto is the CRI v1 proto shipped by the k8s-cri crate (Apache-2.0,
The Kubernetes Authors). Stubs are generated into OUTDIR with grpcio-tools.

Usage: client.py SOCKET HANDLER CGROUP_PARENT OUTDIR
"""
import json
import os
import subprocess
import sys

sock, handler, cgroup_parent, outdir = sys.argv[1:5]
here = os.path.dirname(os.path.abspath(__file__))
subprocess.check_call([sys.executable, "-m", "grpc_tools.protoc", "-I", here,
                       "--python_out", outdir, "--grpc_python_out", outdir, "api.proto"])
sys.path.insert(0, outdir)
import grpc  # noqa: E402
import api_pb2 as pb  # noqa: E402
import api_pb2_grpc as rpc  # noqa: E402

ch = grpc.insecure_channel("unix://" + sock)
rt = rpc.RuntimeServiceStub(ch)
out = {}

node = pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER, ipc=pb.POD)
pod_cfg = pb.PodSandboxConfig(
    metadata=pb.PodSandboxMetadata(name="skiffpod", uid="uid-skiffpod", namespace="default"),
    linux=pb.LinuxPodSandboxConfig(
        cgroup_parent=cgroup_parent,
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=node)),
)
pod = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=pod_cfg, runtime_handler=handler)).pod_sandbox_id
out["pod"] = pod
st = rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod)).status
out["pod_state"] = pb.PodSandboxState.Name(st.state)

ctr_cfg = pb.ContainerConfig(
    metadata=pb.ContainerMetadata(name="main"),
    image=pb.ImageSpec(image="localhost/busybox:latest"),
    command=["sleep", "1000"],
    linux=pb.LinuxContainerConfig(
        security_context=pb.LinuxContainerSecurityContext(namespace_options=node)),
)
cid = rt.CreateContainer(pb.CreateContainerRequest(
    pod_sandbox_id=pod, config=ctr_cfg, sandbox_config=pod_cfg)).container_id
out["container"] = cid
rt.StartContainer(pb.StartContainerRequest(container_id=cid))
st = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
out["container_state"] = pb.ContainerState.Name(st.state)

r = rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", "echo in-exec; hostname; exit 7"], timeout=20))
out["exec"] = {"code": r.exit_code, "stdout": r.stdout.decode(), "stderr": r.stderr.decode()}

res = pb.LinuxContainerResources(memory_limit_in_bytes=64 << 20, cpu_period=100000, cpu_quota=50000)
rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(container_id=cid, linux=res))
r = rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=[
    "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes; echo ok > /dev/null && echo devnull-ok"], timeout=20))
out["after_update"] = r.stdout.decode()

rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=1))
st = rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid)).status
out["stopped_state"] = pb.ContainerState.Name(st.state)
out["stopped_exit"] = st.exit_code
rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod))
st = rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod)).status
out["pod_stopped_state"] = pb.PodSandboxState.Name(st.state)
rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod))
out["pods_left"] = len(rt.ListPodSandbox(pb.ListPodSandboxRequest()).items)
print(json.dumps(out))
