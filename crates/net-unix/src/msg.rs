//! sendmsg / recvmsg with SCM_RIGHTS. Sends always pass `MSG_NOSIGNAL`; receives always pass
//! `MSG_CMSG_CLOEXEC`, and every fd the kernel installed is either returned or closed.

use crate::error::retry;
use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, MsgFlags};
use smallvec::SmallVec;
use std::io::{IoSlice, IoSliceMut};
use std::mem::{size_of, zeroed};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};

/// The most fds Linux accepts in one message (`SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;

/// Fds of one message, held inline for the usual few.
pub type Fds = SmallVec<[OwnedFd; 4]>;

/// What one `recvmsg` delivered.
#[derive(Debug)]
pub struct Received {
    /// Data bytes read; 0 means the peer closed.
    pub bytes: usize,
    /// The fds that arrived, at most the number asked for, each close-on-exec.
    pub fds: Fds,
    /// The control data did not fit (`MSG_CTRUNC`), or more fds came than were asked for
    /// (those were closed).
    pub truncated: bool,
    /// The message was longer than the buffers (`MSG_TRUNC`, datagram and seqpacket sockets):
    /// the rest of it is gone.
    pub data_truncated: bool,
    /// `fds[0]` is the sender's pidfd (`SCM_PIDFD`, on a socket with `SO_PASSPIDFD`), not one
    /// it sent: every layout carries it as the first fd, and JS tells it apart by this bit.
    pub pidfd: bool,
}

impl Received {
    /// `[bytes, truncated, ...fds]`, the shape both receive paths hand to JS; the fds become the
    /// caller's.
    pub fn into_items(self) -> Vec<i32> {
        let mut items = vec![self.bytes as i32, self.flag_bits()];
        items.extend(self.fds.into_iter().map(IntoRawFd::into_raw_fd));
        items
    }

    /// `truncated` as bit 0, `data_truncated` as bit 1, `pidfd` as bit 3 (bit 2 is the
    /// datagram layouts' credentials): the "truncated" item JS reads.
    pub fn flag_bits(&self) -> i32 {
        self.truncated as i32 | (self.data_truncated as i32) << 1 | (self.pidfd as i32) << 3
    }

    /// Puts the sender's pidfd, if one came, first among the fds (after any truncation, so it
    /// is the one fd never dropped for want of room).
    pub fn with_pidfd(mut self, pidfd: Option<OwnedFd>) -> Received {
        if let Some(p) = pidfd {
            self.fds.insert(0, p);
            self.pidfd = true;
        }
        self
    }

    /// Writes `[truncated, nfds, ...fds]` into `out` and returns the byte count; the fds become
    /// the caller's. Fds beyond the room in `out` are closed and the message reported truncated.
    pub fn write_into(mut self, out: &mut [i32]) -> i32 {
        let room = out.len().saturating_sub(2);
        if self.fds.len() > room {
            self.fds.truncate(room);
            self.truncated = true;
        }
        if let [truncated, nfds, rest @ ..] = out {
            *truncated = self.flag_bits();
            *nfds = self.fds.len() as i32;
            for (slot, fd) in rest.iter_mut().zip(self.fds) {
                *slot = fd.into_raw_fd();
            }
        }
        self.bytes as i32
    }
}

/// Bytes of ancillary buffer that hold `nfds` descriptors in one SCM_RIGHTS message.
pub fn control_space(nfds: usize) -> usize {
    if nfds == 0 {
        return 0;
    }
    // SAFETY: CMSG_SPACE is pure arithmetic.
    unsafe { libc::CMSG_SPACE((nfds * size_of::<RawFd>()) as u32) as usize }
}

fn flags_for(base: MsgFlags, dontwait: bool) -> MsgFlags {
    if dontwait {
        base | MsgFlags::MSG_DONTWAIT
    } else {
        base
    }
}

/// Sends the buffers and, per group, one SCM_RIGHTS control message (several groups are
/// several messages, as Hare's repeated `addfiles`; the kernel delivers them together).
pub fn send(
    fd: RawFd,
    bufs: &[IoSlice],
    fd_groups: &[&[RawFd]],
    dontwait: bool,
) -> nix::Result<usize> {
    let cmsgs: SmallVec<[ControlMessage; 2]> = fd_groups
        .iter()
        .map(|g| ControlMessage::ScmRights(g))
        .collect();
    let flags = flags_for(MsgFlags::MSG_NOSIGNAL, dontwait);
    if let ([buf], []) = (bufs, fd_groups) {
        // One buffer, no fds: `send`, which spares the kernel the msghdr (a stream's writes).
        return retry(|| nix::sys::socket::send(fd, buf, flags));
    }
    retry(|| sendmsg::<()>(fd, bufs, &cmsgs, flags, None))
}

/// `SCM_PIDFD` (Linux 6.5): the kernel attaches the sender's pidfd to every message received
/// on a socket with `SO_PASSPIDFD`.
pub const SCM_PIDFD: i32 = 4;

/// Bytes of ancillary buffer one `SCM_PIDFD` takes. Every receive keeps this much room beyond
/// its fds: without it, a socket with `SO_PASSPIDFD` would see `MSG_CTRUNC` on every message.
pub const PIDFD_SPACE: usize = 24;

/// Control buffer with room for [`MAX_FDS`] descriptors and a pidfd, aligned for `cmsghdr`: on
/// the stack, so a receive allocates nothing for it.
#[repr(C, align(8))]
struct Control([u8; 16 + 4 * MAX_FDS + 4 + PIDFD_SPACE]);

/// Receives into `bufs` and up to `max_fds` (at most [`MAX_FDS`]) descriptors.
pub fn recv(
    fd: RawFd,
    bufs: &mut [IoSliceMut],
    max_fds: usize,
    dontwait: bool,
) -> nix::Result<Received> {
    let mut space = Control([0; 16 + 4 * MAX_FDS + 4 + PIDFD_SPACE]);
    let control = &mut space.0[..control_space(max_fds.min(MAX_FDS)) + PIDFD_SPACE];
    let flags = flags_for(MsgFlags::MSG_CMSG_CLOEXEC, dontwait);
    let (bytes, ctrunc, trunc) = loop {
        let cmsg = if control.is_empty() {
            None
        } else {
            Some(&mut control[..])
        };
        match recvmsg::<()>(fd, bufs, cmsg, flags) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(m) => {
                break (
                    m.bytes,
                    m.flags.contains(MsgFlags::MSG_CTRUNC),
                    m.flags.contains(MsgFlags::MSG_TRUNC),
                )
            }
        }
    };
    let mut fds = rights_in(control);
    let extra = fds.len() > max_fds;
    fds.truncate(max_fds); // drops (closes) any fd beyond what was asked for
    Ok(Received {
        bytes,
        fds,
        truncated: ctrunc || extra,
        data_truncated: trunc,
        pidfd: false,
    }
    .with_pidfd(pidfd_in(control)))
}

/// The `SCM_PIDFD` of a control buffer after `recvmsg`, taking ownership of it.
pub fn pidfd_in(control: &mut [u8]) -> Option<OwnedFd> {
    let mut pidfd = None;
    each_cmsg(control, |kind, data| {
        if kind == SCM_PIDFD && pidfd.is_none() {
            if let Some(fd) = data.chunks_exact(size_of::<RawFd>()).next() {
                // SAFETY: the kernel installed this fd for us with the message; nothing else owns it.
                pidfd = Some(unsafe {
                    OwnedFd::from_raw_fd(RawFd::from_ne_bytes(fd.try_into().unwrap()))
                });
            }
        }
    });
    pidfd
}

/// Every SCM_RIGHTS descriptor in a zero-filled control buffer after `recvmsg`, taking ownership
/// so none can leak.
pub fn rights_in(control: &mut [u8]) -> Fds {
    let mut fds = Fds::new();
    each_cmsg(control, |kind, data| {
        if kind == libc::SCM_RIGHTS {
            for fd in data.chunks_exact(size_of::<RawFd>()) {
                // SAFETY: the kernel installed these fds for us with the message; nothing else owns them.
                fds.push(unsafe {
                    OwnedFd::from_raw_fd(RawFd::from_ne_bytes(fd.try_into().unwrap()))
                });
            }
        }
    });
    fds
}

/// Calls `each(cmsg_type, data)` for every `SOL_SOCKET` control message in a zero-filled control
/// buffer after `recvmsg`. nix's iterator refuses to walk a buffer flagged MSG_CTRUNC, yet the
/// kernel still installed the fds that fit, so the walk uses libc's CMSG helpers instead.
pub fn each_cmsg(control: &mut [u8], mut each: impl FnMut(i32, &[u8])) {
    if control.len() < size_of::<libc::cmsghdr>() {
        return;
    }
    let end = control.as_ptr() as usize + control.len();
    // SAFETY: the header walks stay inside `control`: CMSG_FIRSTHDR/NXTHDR check against
    // msg_controllen, and each data span is bounded by its cmsg_len, checked against `end`.
    unsafe {
        let mut mhdr: libc::msghdr = zeroed();
        mhdr.msg_control = control.as_mut_ptr().cast();
        mhdr.msg_controllen = control.len() as _;
        let mut c = libc::CMSG_FIRSTHDR(&mhdr);
        while !c.is_null() {
            let len = (*c).cmsg_len as usize;
            let data = libc::CMSG_DATA(c);
            let head = data as usize - c as usize;
            if len < head || c as usize + len > end {
                break;
            }
            if (*c).cmsg_level == libc::SOL_SOCKET {
                each((*c).cmsg_type, std::slice::from_raw_parts(data, len - head));
            }
            c = libc::CMSG_NXTHDR(&mhdr, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sock::{identity, socketpair};
    use nix::sys::socket::SockFlag;
    use std::os::fd::AsRawFd;
    use std::ptr::null_mut;

    fn pair() -> (OwnedFd, OwnedFd) {
        socketpair(SockFlag::SOCK_CLOEXEC).unwrap()
    }

    /// One receive of up to one byte with room for `max_fds`.
    fn recv_byte(fd: &OwnedFd, max_fds: usize, dontwait: bool) -> nix::Result<Received> {
        let mut buf = [0u8; 1];
        recv(
            fd.as_raw_fd(),
            &mut [IoSliceMut::new(&mut buf)],
            max_fds,
            dontwait,
        )
    }

    #[test]
    fn control_space_matches_kernel_layout() {
        assert_eq!(control_space(0), 0);
        assert_eq!(control_space(1), 24);
        assert_eq!(control_space(2), 24);
        assert_eq!(control_space(3), 32);
        assert_eq!(control_space(253), 16 + 1016);
        assert!(control_space(MAX_FDS) <= size_of::<Control>());
    }

    #[test]
    fn fds_round_trip_with_data() {
        let (a, b) = pair();
        let (x, y) = pair();
        let n = send(
            a.as_raw_fd(),
            &[IoSlice::new(b"hi")],
            &[&[x.as_raw_fd(), y.as_raw_fd()]],
            false,
        )
        .unwrap();
        assert_eq!(n, 2);
        let mut buf = [0u8; 8];
        let r = recv(b.as_raw_fd(), &mut [IoSliceMut::new(&mut buf)], 4, false).unwrap();
        assert_eq!((r.bytes, r.fds.len(), r.truncated), (2, 2, false));
        let fl = nix::fcntl::fcntl(&r.fds[0], nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(fl & libc::FD_CLOEXEC, 0, "received fds are close-on-exec");
    }

    #[test]
    fn two_groups_arrive_together_in_order() {
        let (a, b) = pair();
        let (x, y) = pair();
        let g1 = [x.as_raw_fd()];
        let g2 = [y.as_raw_fd(), x.as_raw_fd()];
        send(a.as_raw_fd(), &[IoSlice::new(b"z")], &[&g1, &g2], false).unwrap();
        let r = recv_byte(&b, 3, false).unwrap();
        let ident = |fd: &OwnedFd| identity(fd.as_raw_fd()).unwrap();
        let got: Vec<_> = r.fds.iter().map(ident).collect();
        assert_eq!(got, vec![ident(&x), ident(&y), ident(&x)]);
        assert!(!r.truncated);
    }

    /// One byte sent with `n` copies of a socket's fd, received with room for `max_fds`.
    fn byte_with_fds(n: usize, max_fds: usize) -> Received {
        let (a, b) = pair();
        let (x, _y) = pair();
        let fds = vec![x.as_raw_fd(); n];
        send(a.as_raw_fd(), &[IoSlice::new(b"z")], &[&fds], false).unwrap();
        recv_byte(&b, max_fds, false).unwrap()
    }

    #[test]
    fn truncation_keeps_what_fit_and_reports_it() {
        let r = byte_with_fds(4, 1);
        // CMSG_SPACE(4) has room for two fds; one is returned, the other closed.
        assert_eq!(r.fds.len(), 1);
        assert!(r.truncated);
    }

    #[test]
    fn no_room_for_fds_is_truncated() {
        let r = byte_with_fds(1, 0);
        assert_eq!((r.bytes, r.fds.len(), r.truncated), (1, 0, true));
    }

    #[test]
    fn write_into_hands_over_what_fits_and_closes_the_rest() {
        let r = byte_with_fds(3, 3);
        let mut out = [-1; 4];
        assert_eq!(r.write_into(&mut out), 1);
        assert_eq!(&out[..2], &[1, 2], "truncated, two fds handed over");
        for fd in &out[2..] {
            let owned = unsafe { OwnedFd::from_raw_fd(*fd) };
            assert!(nix::fcntl::fcntl(&owned, nix::fcntl::FcntlArg::F_GETFD).is_ok());
        }
        let whole = Received {
            bytes: 2,
            fds: Fds::new(),
            truncated: false,
            data_truncated: false,
            pidfd: false,
        };
        let mut out = [-1; 2];
        assert_eq!(whole.write_into(&mut out), 2);
        assert_eq!(out, [0, 0]);
    }

    #[test]
    fn dontwait_says_eagain() {
        let (_a, b) = pair();
        let e = recv_byte(&b, 0, true).unwrap_err();
        assert_eq!(e, Errno::EAGAIN);
    }

    /// The test runner ignores SIGPIPE, so this thread blocks it instead: a blocked signal is
    /// never discarded, so one raised by the send would stay pending here, where it is looked for.
    #[test]
    fn closed_peer_is_epipe_not_sigpipe() {
        // SAFETY: plain signal-mask calls on this thread's own sets.
        unsafe {
            let mut pipe: libc::sigset_t = zeroed();
            libc::sigemptyset(&mut pipe);
            libc::sigaddset(&mut pipe, libc::SIGPIPE);
            let mut old: libc::sigset_t = zeroed();
            assert_eq!(libc::pthread_sigmask(libc::SIG_BLOCK, &pipe, &mut old), 0);
            let (a, b) = pair();
            drop(b);
            let e = send(a.as_raw_fd(), &[IoSlice::new(b"x")], &[], false).unwrap_err();
            let e2 = send(a.as_raw_fd(), &[IoSlice::new(b"x")], &[], true).unwrap_err();
            let mut pending: libc::sigset_t = zeroed();
            libc::sigpending(&mut pending);
            let raised = libc::sigismember(&pending, libc::SIGPIPE) == 1;
            if raised {
                let none = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                libc::sigtimedwait(&pipe, null_mut(), &none); // take it, so it dies with the test
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, null_mut());
            assert_eq!((e, e2), (Errno::EPIPE, Errno::EPIPE));
            assert!(!raised, "the send raised SIGPIPE");
        }
    }
}
