//! SCMP_ACT_NOTIFY hand-over, runtime side: init sends its listener fd
//! over the sync socket (SCM_RIGHTS); the runtime connects to
//! `listenerPath` and sends the agent one message: the JSON
//! `ContainerProcessState` (`fds: ["seccompFd"]`, pid, `listenerMetadata`,
//! the container state) with the fd attached, as runc does. Doing this in
//! the runtime, not in init, means init never waits on an agent that may
//! itself wait on a call the filter intercepts.
//! Runs in: the runtime process (P).
use anyhow::{Context, Result};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use serde_json::{Value, json};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// The message runc sends to the agent (runtime-spec `ContainerProcessState`).
pub fn process_state(state: &Value, metadata: Option<&str>) -> Value {
    let mut v = json!({
        "ociVersion": state["ociVersion"],
        "fds": ["seccompFd"],
        "pid": state["pid"],
        "state": state,
    });
    if let Some(m) = metadata.filter(|m| !m.is_empty()) {
        v["metadata"] = m.into();
    }
    v
}

/// Connects to the agent and sends the state with the listener fd.
pub fn send_to_agent(l: &super::Listener, state: &Value, fd: &OwnedFd) -> Result<()> {
    let path = &l.path;
    let sock = UnixStream::connect(path).with_context(|| {
        format!(
            "linux.seccomp.listenerPath: failed to connect with seccomp agent at {}",
            path.display()
        )
    })?;
    let body = serde_json::to_vec(&process_state(state, l.metadata.as_deref()))?;
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(&body)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .with_context(|| format!("linux.seccomp.listenerPath: send to {}", path.display()))?;
    Ok(())
}
