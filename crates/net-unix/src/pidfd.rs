//! Pidfds (API.md §11): the peer's pidfd of a connected Unix socket (`SO_PEERPIDFD`), the
//! sender's on every received message (`SO_PASSPIDFD` → `SCM_PIDFD`, parsed in `msg`), and what
//! can be done with one: signal it, read who it is, learn how it exited. Linux 6.5+; every call
//! reports the kernel's errno as it is (the facade names the kernel version). Never
//! `pidfd_open(pid)`: that reintroduces the race these exist to close.

use crate::error::{neg, to_js};
use napi_derive::napi;
use nix::errno::Errno;
use nix::sys::socket::{self, sockopt};
use std::os::fd::{BorrowedFd, IntoRawFd};

/// `SO_PASSPIDFD` (Linux 6.5, asm-generic numbering: x86-64, arm64).
const SO_PASSPIDFD: libc::c_int = 76;

/// `PIDFD_GET_INFO` = `_IOWR(0xFF, 11, struct pidfd_info)` with the 64 bytes of its first
/// version (Linux 6.13); the kernel accepts any size from that one up.
const PIDFD_GET_INFO: libc::c_ulong = (3 << 30) | (64 << 16) | (0xFF << 8) | 11;
const PIDFD_INFO_PID: u64 = 1;
const PIDFD_INFO_CREDS: u64 = 2;
/// Linux 6.15: the exit status, once the process has been reaped.
const PIDFD_INFO_EXIT: u64 = 8;

/// `struct pidfd_info`, first version.
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    rgid: u32,
    euid: u32,
    egid: u32,
    suid: u32,
    sgid: u32,
    fsuid: u32,
    fsgid: u32,
    exit_code: i32,
}

/// The peer's pidfd (`SO_PEERPIDFD`), close-on-exec, or a negative errno: `ENOPROTOOPT` (or
/// `EINVAL`) before Linux 6.5, `ENODATA` when not a connected Unix socket.
#[napi]
pub fn peer_pidfd(fd: i32) -> i32 {
    // SAFETY: borrowed only for this call; an fd that is not open fails with EBADF.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    to_js(socket::getsockopt(&b, sockopt::PeerPidfd).map(IntoRawFd::into_raw_fd))
}

/// Turns `SO_PASSPIDFD` on or off; 0 or a negative errno.
#[napi]
pub fn set_passpidfd(fd: i32, on: bool) -> i32 {
    let v: libc::c_int = on.into();
    // SAFETY: `v` is an int the kernel reads for the option's length.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_PASSPIDFD,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    to_js(Errno::result(rc))
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)`; 0 or a negative errno (`ESRCH`: it has exited).
#[napi]
pub fn pidfd_send_signal(pidfd: i32, sig: i32) -> i32 {
    // SAFETY: plain integers and a null siginfo, as the call allows.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    to_js(Errno::result(rc as i32))
}

/// `PIDFD_GET_INFO`: `[pid, ppid, ruid, rgid, exited, exitCode]` (pid -1 once reaped, when the
/// kernel keeps only the exit status; exited 1 with the wait status in exitCode), or
/// `[-errno]`: `ENOTTY`/`EINVAL` before Linux 6.13, `ESRCH` for a process gone without an exit
/// status or in a PID namespace we cannot see.
#[napi]
pub fn pidfd_info(pidfd: i32) -> Vec<i64> {
    let mut info = PidfdInfo {
        mask: PIDFD_INFO_PID | PIDFD_INFO_CREDS | PIDFD_INFO_EXIT,
        ..Default::default()
    };
    // SAFETY: `info` is the 64-byte struct the request number says; the kernel writes into it.
    let rc = unsafe { libc::ioctl(pidfd, PIDFD_GET_INFO as _, &mut info as *mut PidfdInfo) };
    if rc < 0 {
        return vec![neg(Errno::last()).into()];
    }
    let has = |bit| info.mask & bit != 0;
    let pid: i64 = if has(PIDFD_INFO_PID) {
        info.pid.into()
    } else {
        -1
    };
    let (uid, gid) = if has(PIDFD_INFO_CREDS) {
        (info.ruid.into(), info.rgid.into())
    } else {
        (-1, -1)
    };
    let ppid: i64 = if has(PIDFD_INFO_PID) {
        info.ppid.into()
    } else {
        -1
    };
    let exited = has(PIDFD_INFO_EXIT);
    vec![
        pid,
        ppid,
        uid,
        gid,
        exited.into(),
        if exited { info.exit_code.into() } else { 0 },
    ]
}

/// The wait status of our own child that has exited, without reaping it (`waitid(P_PIDFD,
/// WEXITED | WNOWAIT | WNOHANG)`): `[status]` with `si_code` and `si_status` as a wait status,
/// `[]` when it is not our child or not exited, `[-errno]` otherwise.
#[napi]
pub fn pidfd_child_status(pidfd: i32) -> Vec<i32> {
    // SAFETY: zeroed siginfo is its empty value; the kernel fills it.
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `si` is valid for the kernel to write.
    let rc = unsafe {
        libc::waitid(
            libc::P_PIDFD,
            pidfd as libc::id_t,
            &mut si,
            libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
        )
    };
    if rc < 0 {
        let e = Errno::last();
        return if e == Errno::ECHILD {
            vec![]
        } else {
            vec![neg(e)]
        };
    }
    // SAFETY: after a successful waitid the pid and status fields are the ones filled in.
    let (pid, status) = unsafe { (si.si_pid(), si.si_status()) };
    if pid == 0 {
        return vec![]; // WNOHANG: not exited yet
    }
    let code = si.si_code;
    // As a wait status: exited → code << 8, killed → the signal (with 0x80 for a core dump).
    vec![match code {
        libc::CLD_EXITED => (status & 0xff) << 8,
        libc::CLD_DUMPED => status | 0x80,
        _ => status,
    }]
}

/// Whether `fd` is a pidfd (`/proc/self/fdinfo` shows a `Pid:` line only for those).
#[napi]
pub fn is_pidfd(fd: i32) -> bool {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
        .map(|s| s.lines().any(|l| l.starts_with("Pid:")))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sock;
    use nix::sys::socket::SockFlag;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    #[test]
    fn a_socketpair_peer_is_this_process() {
        let (a, _b) = sock::socketpair(SockFlag::SOCK_CLOEXEC).unwrap();
        let p = peer_pidfd(a.as_raw_fd());
        assert!(p >= 0, "SO_PEERPIDFD: {p}");
        // SAFETY: a new fd of ours.
        let p = unsafe { OwnedFd::from_raw_fd(p) };
        assert!(is_pidfd(p.as_raw_fd()));
        let info = pidfd_info(p.as_raw_fd());
        assert_eq!(info[0], i64::from(std::process::id()));
        assert_eq!(pidfd_send_signal(p.as_raw_fd(), 0), 0, "signal 0 probes");
    }

    #[test]
    fn the_request_number_is_the_kernels() {
        assert_eq!(size_of::<PidfdInfo>(), 64);
        assert_eq!(PIDFD_GET_INFO, 0xC040_FF0B);
    }
}
