//! Handing a seccomp notify listener to the agent at `listenerPath`.
//!
//! The runtime (parent), not the container process, must do this: once the
//! filter is loaded, the container's own write/sendmsg may be notified and
//! would wait for an agent that has not got the listener yet.

use crate::error::{Context, Error, Result};
use rustix::net::{
    AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix,
    SocketFlags, SocketType,
};
use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::BorrowedFd;

/// The runtime-spec `containerProcessState` document sent with the fd.
/// `state` is the container's state (as `runway state` prints it).
pub fn build_process_state(pid: i32, metadata: &str, state: &serde_json::Value) -> Result<Vec<u8>> {
    let doc = serde_json::json!({
        "ociVersion": crate::spec::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "metadata": metadata,
        "state": state,
    });
    serde_json::to_vec(&doc).map_err(|e| Error::msg(format!("encode seccomp process state: {e}")))
}

/// Connect to the unix stream socket at `listener_path` and send
/// `state_json` with `fd` attached (SCM_RIGHTS), as runc does.
pub fn send_listener(listener_path: &str, fd: BorrowedFd<'_>, state_json: &[u8]) -> Result<()> {
    let what = || format!("send seccomp listener to {listener_path}");
    let sock = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .ctx(what)?;
    let addr = SocketAddrUnix::new(listener_path).ctx(what)?;
    rustix::net::connect(&sock, &addr).ctx(what)?;

    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    if !cmsg.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(Error::msg(format!("{}: control buffer too small", what())));
    }
    let mut sent = rustix::net::sendmsg(
        &sock,
        &[IoSlice::new(state_json)],
        &mut cmsg,
        SendFlags::NOSIGNAL,
    )
    .ctx(what)?;
    while sent < state_json.len() {
        sent += rustix::net::send(&sock, &state_json[sent..], SendFlags::NOSIGNAL).ctx(what)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::io::IoSliceMut;
    use std::os::fd::{AsFd, OwnedFd};
    use std::os::unix::net::UnixListener;

    #[test]
    fn sends_state_and_fd_to_the_agent() {
        let dir =
            std::env::temp_dir().join(format!("runway-seccomp-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();

        let (r, w) = rustix::pipe::pipe().unwrap();
        let state = serde_json::json!({"id": "c1", "status": "creating", "pid": 42});
        let doc = build_process_state(42, "meta=1", &state).unwrap();
        send_listener(path.to_str().unwrap(), w.as_fd(), &doc).unwrap();
        drop(w);

        let (conn, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 4096];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut cmsg = RecvAncillaryBuffer::new(&mut space);
        let n = rustix::net::recvmsg(
            &conn,
            &mut [IoSliceMut::new(&mut buf)],
            &mut cmsg,
            RecvFlags::empty(),
        )
        .unwrap()
        .bytes;
        let got: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(got["fds"], serde_json::json!(["seccompFd"]));
        assert_eq!(got["pid"], 42);
        assert_eq!(got["metadata"], "meta=1");
        assert_eq!(got["state"], state);
        assert_eq!(got["ociVersion"], crate::spec::OCI_VERSION);

        let mut fds: Vec<OwnedFd> = Vec::new();
        for m in cmsg.drain() {
            if let RecvAncillaryMessage::ScmRights(it) = m {
                fds.extend(it);
            }
        }
        assert_eq!(fds.len(), 1);
        rustix::io::write(&fds[0], b"hi").unwrap();
        drop(fds);
        let mut out = [0u8; 4];
        assert_eq!(rustix::io::read(&r, &mut out).unwrap(), 2);
        assert_eq!(&out[..2], b"hi");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn missing_agent_is_a_clear_error() {
        let (_r, w) = rustix::pipe::pipe().unwrap();
        let e = send_listener("/nonexistent/runway/agent.sock", w.as_fd(), b"{}").unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent/runway/agent.sock"),
            "{e}"
        );
    }
}
