//! Datagram and seqpacket sockets: socket types, `bind`, `sendto` / `recvfrom` with the peer's
//! address, fds (`SCM_RIGHTS`) and credentials (`SO_PASSCRED`, `SCM_CREDENTIALS`). Mechanical
//! only: the facade decides defaults, options and error messages; the raw exports that wait are
//! in `raw.rs`, through the reactor like every other operation.

use crate::addr::to_sockaddr;
use crate::error::{neg, retry, to_js};
use crate::msg::{self, Received};
use crate::sock;
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use nix::errno::Errno;
use nix::sys::socket::{
    self, sendmsg, sockopt, ControlMessage, MsgFlags, SockType, SockaddrLike, UnixAddr,
    UnixCredentials,
};
use smallvec::SmallVec;
use std::io::{IoSlice, IoSliceMut};
use std::mem::size_of;
use std::os::fd::{BorrowedFd, IntoRawFd, RawFd};

/// Room for an address in the result layout: `sun_path` (108 bytes).
pub const ADDR_ROOM: usize = 108;
/// The most items before the fds in the result layout (see [`From::push_many`]):
/// `[bytes, flags, nfds, pid, uid, gid, addrLen, ...addr]` with the longest address.
pub const HEAD: usize = 7 + ADDR_ROOM;
/// `flags` bit 2: credentials arrived (bits 0 and 1 are [`Received::flag_bits`]).
const HAS_CRED: i32 = 4;

/// What one `recvfrom` delivered: the message, its sender's address, its credentials.
#[derive(Debug)]
pub struct From {
    pub rcv: Received,
    /// The sender's address as the facade writes it: a path, `\0name`, or empty (unnamed).
    pub addr: SmallVec<[u8; 32]>,
    pub cred: Option<(i32, u32, u32)>,
}

impl From {
    /// What one received message delivered: `msg_flags` and the control area as the kernel
    /// left them, the sender's name when one was asked for. Fds beyond `max_fds` are closed.
    pub fn parse(
        bytes: usize,
        msg_flags: i32,
        name: Option<(&libc::sockaddr_un, usize)>,
        control: &mut [u8],
        max_fds: usize,
    ) -> From {
        let mut fds = msg::rights_in(control);
        let extra = fds.len() > max_fds;
        fds.truncate(max_fds); // drops (closes) any fd beyond what was asked for
        From {
            rcv: Received {
                bytes,
                fds,
                truncated: extra || msg_flags & libc::MSG_CTRUNC != 0,
                data_truncated: msg_flags & libc::MSG_TRUNC != 0,
                pidfd: false,
            }
            .with_pidfd(msg::pidfd_in(control)),
            addr: name
                .map(|(sa, len)| name_bytes(sa, len))
                .unwrap_or_default(),
            cred: creds_in(control),
        }
    }

    /// Items of this message in the result layout, `[bytes, flags, nfds, pid, uid, gid,
    /// addrLen, ...addr, ...fds]`: one receive's, and one message's of a batch with senders.
    pub fn many_len(&self) -> usize {
        7 + self.addr.len() + self.rcv.fds.len()
    }

    /// Appends [`From::many_len`] items; the fds become the caller's.
    pub fn push_many(self, out: &mut Vec<i32>) {
        out.extend_from_slice(&self.head());
        out.extend(self.addr.iter().map(|&b| b as i32));
        out.extend(self.rcv.fds.into_iter().map(IntoRawFd::into_raw_fd));
    }

    /// `[bytes, flags, nfds, pid, uid, gid, addrLen]`.
    fn head(&self) -> [i32; 7] {
        let (pid, uid, gid) = self.cred.unwrap_or((0, 0, 0));
        let flags = self.rcv.flag_bits() | if self.cred.is_some() { HAS_CRED } else { 0 };
        [
            self.rcv.bytes as i32,
            flags,
            self.rcv.fds.len() as i32,
            pid,
            uid as i32,
            gid as i32,
            self.addr.len() as i32,
        ]
    }

    /// Writes the result layout into `out` (no allocation: a receive that completed at once)
    /// and returns the byte count; the fds become the caller's (those beyond the room in `out`
    /// are closed, and reported as truncated).
    pub fn write_into(mut self, out: &mut [i32]) -> i32 {
        let at = 7 + self.addr.len();
        let room = out.len().saturating_sub(at);
        if self.rcv.fds.len() > room {
            self.rcv.fds.truncate(room);
            self.rcv.truncated = true;
        }
        if out.len() >= at {
            out[..7].copy_from_slice(&self.head());
            for (slot, b) in out[7..at].iter_mut().zip(&self.addr) {
                *slot = *b as i32;
            }
            for (slot, fd) in out[at..].iter_mut().zip(self.rcv.fds.drain(..)) {
                *slot = fd.into_raw_fd();
            }
        }
        self.rcv.bytes as i32
    }

    /// What a waiting receive resolves with, the same layout; each item becomes an element of
    /// a JS array, which is what a wait costs most, so no room is kept for a longer address.
    pub fn into_items(self) -> Vec<i32> {
        let mut items = Vec::with_capacity(self.many_len());
        self.push_many(&mut items);
        items
    }
}

/// The `len` bytes of a `sockaddr_un` the kernel filled in, as the facade writes addresses: a
/// path (up to its NUL), `\0name`, or empty for an unnamed socket.
fn name_bytes(sa: &libc::sockaddr_un, len: usize) -> SmallVec<[u8; 32]> {
    let at = std::mem::offset_of!(libc::sockaddr_un, sun_path);
    let n = len.saturating_sub(at).min(sa.sun_path.len());
    let raw: SmallVec<[u8; 32]> = sa.sun_path[..n].iter().map(|&c| c as u8).collect();
    match raw.first() {
        None => raw,
        Some(0) => raw, // abstract: the exact length is the name
        Some(_) => raw.iter().copied().take_while(|&c| c != 0).collect(),
    }
}

/// The address of a `recvmsg` as the facade writes addresses.
fn addr_bytes(a: Option<&UnixAddr>) -> SmallVec<[u8; 32]> {
    let mut out = SmallVec::new();
    match a {
        Some(a) if a.as_abstract().is_some() => {
            out.push(0);
            out.extend_from_slice(a.as_abstract().unwrap_or_default());
        }
        Some(a) => {
            if let Some(p) = a.path() {
                out.extend_from_slice(p.as_os_str().as_encoded_bytes());
            }
        }
        None => {}
    }
    out
}

/// Control buffer with room for [`msg::MAX_FDS`] fds and one `ucred`, aligned for `cmsghdr`.
#[repr(C, align(8))]
struct Control([u8; 16 + 4 * msg::MAX_FDS + 4 + 32 + msg::PIDFD_SPACE]);

/// `recvmsg` with the sender's address, up to `max_fds` fds, and credentials when `creds` (the
/// socket must have `SO_PASSCRED` for the kernel to attach them).
pub fn recv_from(
    fd: RawFd,
    bufs: &mut [IoSliceMut],
    max_fds: usize,
    creds: bool,
    dontwait: bool,
) -> nix::Result<From> {
    let mut space = Control([0; 16 + 4 * msg::MAX_FDS + 4 + 32 + msg::PIDFD_SPACE]);
    let len = msg::control_space(max_fds.min(msg::MAX_FDS))
        + if creds { cred_space() } else { 0 }
        + msg::PIDFD_SPACE;
    let control = &mut space.0[..len];
    let mut flags = libc::MSG_CMSG_CLOEXEC;
    if dontwait {
        flags |= libc::MSG_DONTWAIT;
    }
    // libc, not nix: nix's address conversion asserts on the zero-length name an unnamed
    // peer (a socketpair) yields.
    // SAFETY: every pointer in `mhdr` refers to live memory of the stated length for the call.
    let (bytes, mhdr, name) = unsafe {
        let mut name: libc::sockaddr_un = std::mem::zeroed();
        let mut mhdr: libc::msghdr = std::mem::zeroed();
        mhdr.msg_name = (&mut name as *mut libc::sockaddr_un).cast();
        mhdr.msg_namelen = size_of::<libc::sockaddr_un>() as libc::socklen_t;
        mhdr.msg_iov = bufs.as_mut_ptr().cast();
        mhdr.msg_iovlen = bufs.len() as _;
        if !control.is_empty() {
            mhdr.msg_control = control.as_mut_ptr().cast();
            mhdr.msg_controllen = control.len() as _;
        }
        let n = retry(|| Errno::result(libc::recvmsg(fd, &mut mhdr, flags)))?;
        (n as usize, mhdr, name)
    };
    Ok(From::parse(
        bytes,
        mhdr.msg_flags,
        Some((&name, mhdr.msg_namelen as usize)),
        control,
        max_fds,
    ))
}

/// Bytes of ancillary buffer that hold one `SCM_CREDENTIALS`.
pub fn cred_space() -> usize {
    // SAFETY: CMSG_SPACE is pure arithmetic.
    unsafe { libc::CMSG_SPACE(size_of::<libc::ucred>() as u32) as usize }
}

/// The `SCM_CREDENTIALS` of a zero-filled control buffer after `recvmsg`, if any came.
fn creds_in(control: &mut [u8]) -> Option<(i32, u32, u32)> {
    let mut cred = None;
    msg::each_cmsg(control, |kind, data| {
        if kind == libc::SCM_CREDENTIALS && cred.is_none() && data.len() >= size_of::<libc::ucred>()
        {
            // SAFETY: `data` holds a whole ucred (checked above); read_unaligned needs no alignment.
            let u = unsafe { (data.as_ptr() as *const libc::ucred).read_unaligned() };
            cred = Some((u.pid, u.uid, u.gid));
        }
    });
    cred
}

/// `sendmsg` to `to` (or the connected peer), with fds in `fd_groups` and, when `creds`, this
/// process's credentials (`SCM_CREDENTIALS`). `MSG_NOSIGNAL` always.
pub fn send_to(
    fd: RawFd,
    bufs: &[IoSlice],
    to: Option<&[u8]>,
    fd_groups: &[&[RawFd]],
    creds: bool,
    dontwait: bool,
) -> nix::Result<usize> {
    let addr = to.map(to_sockaddr).transpose()?;
    // Only when asked: filling it in costs three syscalls (getpid, getuid, getgid).
    let me = creds.then(UnixCredentials::new);
    let mut cmsgs: SmallVec<[ControlMessage; 3]> = fd_groups
        .iter()
        .map(|g| ControlMessage::ScmRights(g))
        .collect();
    if let Some(me) = &me {
        cmsgs.push(ControlMessage::ScmCredentials(me));
    }
    let mut flags = MsgFlags::MSG_NOSIGNAL;
    if dontwait {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    retry(|| sendmsg(fd, bufs, &cmsgs, flags, addr.as_ref()))
}

/// The socket type of a number the facade passes (`SOCK_STREAM` 1, `SOCK_DGRAM` 2,
/// `SOCK_SEQPACKET` 5).
fn sock_type(ty: i32) -> nix::Result<SockType> {
    SockType::try_from(ty).map_err(|_| Errno::EINVAL)
}

/// A new unbound, unconnected socket of type `ty`.
#[napi]
pub fn socket_typed(ty: i32, flags: i32) -> i32 {
    to_js(
        sock_type(ty).and_then(|t| {
            sock::unix_socket(t, sock::sock_flags(flags)).map(IntoRawFd::into_raw_fd)
        }),
    )
}

/// `socket` + `bind` + `listen` for a socket of type `ty`.
#[napi]
pub fn listen_typed(addr: &[u8], ty: i32, flags: i32, backlog: u32) -> i32 {
    to_js(sock_type(ty).and_then(|t| {
        sock::listen_typed(addr, t, sock::sock_flags(flags), backlog).map(IntoRawFd::into_raw_fd)
    }))
}

/// A socket of type `ty` connected to `addr`, blocking while the listener's backlog is full.
#[napi]
pub fn connect_sync_typed(addr: &[u8], ty: i32, flags: i32) -> i32 {
    to_js(sock_type(ty).and_then(|t| {
        sock::connect_typed(addr, t, sock::sock_flags(flags)).map(IntoRawFd::into_raw_fd)
    }))
}

/// `[fd0, fd1]` of type `ty`, or `[-errno]`.
#[napi]
pub fn socketpair_typed(ty: i32, flags: i32) -> Vec<i32> {
    match sock_type(ty).and_then(|t| sock::socketpair_typed(t, sock::sock_flags(flags))) {
        Ok((a, b)) => vec![a.into_raw_fd(), b.into_raw_fd()],
        Err(e) => vec![neg(e)],
    }
}

/// Binds `fd` to `addr`; 0 or a negative errno.
#[napi]
pub fn bind_addr(fd: i32, addr: &[u8]) -> i32 {
    to_js(to_sockaddr(addr).and_then(|sa| retry(|| socket::bind(fd, &sa)).map(|_| 0)))
}

/// Binds `fd` to a fresh abstract name of the kernel's choosing (Linux autobind); 0 or -errno.
#[napi]
pub fn autobind(fd: i32) -> i32 {
    let sa = libc::sockaddr_un {
        sun_family: libc::AF_UNIX as libc::sa_family_t,
        sun_path: [0; 108],
    };
    // SAFETY: a valid sockaddr_un and a length covering just its family: the autobind request.
    let rc = unsafe {
        libc::bind(
            fd,
            (&sa as *const libc::sockaddr_un).cast(),
            size_of::<libc::sa_family_t>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        0
    } else {
        neg(Errno::last())
    }
}

/// Connects `fd` (any type) to `addr`; 0 or a negative errno.
#[napi]
pub fn connect_addr(fd: i32, addr: &[u8]) -> i32 {
    to_js(sock::connect_fd(fd, addr).map(|_| 0))
}

/// Turns `SO_PASSCRED` on or off; 0 or a negative errno.
#[napi]
pub fn set_passcred(fd: i32, on: bool) -> i32 {
    // SAFETY: borrowed only for this call.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    to_js(socket::setsockopt(&b, sockopt::PassCred, &on).map(|_| 0))
}

/// The socket's own address (`getsockname`) as the facade writes addresses; empty when unbound.
#[napi]
pub fn local_address(fd: i32) -> napi::Result<Buffer> {
    socket::getsockname::<UnixAddr>(fd)
        .map(|a| {
            let unnamed = a.len() as usize <= size_of::<libc::sa_family_t>();
            Buffer::from(if unnamed {
                Vec::new()
            } else {
                addr_bytes(Some(&a)).to_vec()
            })
        })
        .map_err(|e| napi::Error::from_reason(format!("{}", neg(e))))
}

/// `SO_TYPE` (1 stream, 2 dgram, 5 seqpacket), or a negative errno (`-ENOTSOCK`).
#[napi]
pub fn socket_type(fd: i32) -> i32 {
    // SAFETY: borrowed only for this call.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    to_js(socket::getsockopt(&b, sockopt::SockType).map(|t| t as i32))
}

/// `SO_ACCEPTCONN`: 1 when `fd` is listening, 0 when not, or a negative errno (`-ENOTSOCK`).
#[napi]
pub fn accepts_connections(fd: i32) -> i32 {
    // SAFETY: borrowed only for this call.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    to_js(socket::getsockopt(&b, sockopt::AcceptConn).map(i32::from))
}

/// Sets close-on-exec on `fd`; 0 or a negative errno.
#[napi]
pub fn set_cloexec(fd: i32) -> i32 {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    // SAFETY: borrowed only for these calls.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    to_js(
        fcntl(b, FcntlArg::F_GETFD)
            .and_then(|f| {
                fcntl(
                    b,
                    FcntlArg::F_SETFD(FdFlag::from_bits_truncate(f) | FdFlag::FD_CLOEXEC),
                )
            })
            .map(|_| 0),
    )
}

/// `[read, write]` ends of a new close-on-exec pipe, or `[-errno]` (for `BARRIER=1`).
#[napi]
pub fn pipe_cloexec() -> Vec<i32> {
    match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok((r, w)) => vec![r.into_raw_fd(), w.into_raw_fd()],
        Err(e) => vec![neg(e)],
    }
}

// ---- raw exports ----

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::SockFlag;
    use std::os::fd::{AsRawFd, OwnedFd};

    fn dgram_pair() -> (OwnedFd, OwnedFd) {
        sock::socketpair_typed(SockType::Datagram, SockFlag::SOCK_CLOEXEC).unwrap()
    }

    #[test]
    fn datagram_keeps_boundaries_and_reports_truncation() {
        let (a, b) = dgram_pair();
        send_to(
            a.as_raw_fd(),
            &[IoSlice::new(b"hello")],
            None,
            &[],
            false,
            false,
        )
        .unwrap();
        let mut buf = [0u8; 3];
        let f = recv_from(
            b.as_raw_fd(),
            &mut [IoSliceMut::new(&mut buf)],
            0,
            false,
            false,
        )
        .unwrap();
        assert_eq!((f.rcv.bytes, f.rcv.data_truncated), (3, true));
        assert!(f.addr.is_empty(), "an unnamed peer has no address");
    }

    #[test]
    fn credentials_arrive_with_passcred() {
        let (a, b) = dgram_pair();
        socket::setsockopt(&b, sockopt::PassCred, &true).unwrap();
        send_to(a.as_raw_fd(), &[IoSlice::new(b"x")], None, &[], true, false).unwrap();
        let mut buf = [0u8; 4];
        let f = recv_from(
            b.as_raw_fd(),
            &mut [IoSliceMut::new(&mut buf)],
            0,
            true,
            false,
        )
        .unwrap();
        let (pid, uid, _) = f.cred.expect("credentials");
        assert_eq!(pid as u32, std::process::id());
        assert_eq!(uid, nix::unistd::getuid().as_raw());
        let mut out = [0i32; HEAD];
        assert_eq!(f.write_into(&mut out), 1);
        assert_eq!(out[0], 1, "the layout starts with the byte count");
        assert_eq!(out[1] & HAS_CRED, HAS_CRED);
    }

    #[test]
    fn sender_address_is_reported() {
        let name = format!("\0net-unix-dgram-test-{}", std::process::id());
        let rx = sock::unix_socket(SockType::Datagram, SockFlag::SOCK_CLOEXEC).unwrap();
        socket::bind(rx.as_raw_fd(), &to_sockaddr(name.as_bytes()).unwrap()).unwrap();
        let tx = sock::unix_socket(SockType::Datagram, SockFlag::SOCK_CLOEXEC).unwrap();
        assert_eq!(autobind(tx.as_raw_fd()), 0);
        send_to(
            tx.as_raw_fd(),
            &[IoSlice::new(b"x")],
            Some(name.as_bytes()),
            &[],
            false,
            false,
        )
        .unwrap();
        let mut buf = [0u8; 4];
        let f = recv_from(
            rx.as_raw_fd(),
            &mut [IoSliceMut::new(&mut buf)],
            0,
            false,
            false,
        )
        .unwrap();
        assert_eq!(f.addr.first(), Some(&0), "autobind gives an abstract name");
        assert_eq!(f.addr.len(), 6, "five hex digits after the NUL");
    }
}
