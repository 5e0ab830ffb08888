//! Socket calls, each a thin, EINTR-safe wrapper over nix. Flags arrive as kernel bits
//! (`SOCK_CLOEXEC`, `SOCK_NONBLOCK`): the facade has already applied Hare's option rules.

use crate::addr::{fs_path, to_sockaddr};
use crate::error::retry;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::socket::{self, sockopt, AddressFamily, Backlog, SockFlag, SockType};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Kernel socket flags from the bits the facade passes (unknown bits dropped).
pub fn sock_flags(bits: i32) -> SockFlag {
    SockFlag::from_bits_truncate(bits)
}

/// A new, unconnected `AF_UNIX` stream socket.
pub fn stream_socket(flags: SockFlag) -> nix::Result<OwnedFd> {
    unix_socket(SockType::Stream, flags)
}

/// A new, unconnected `AF_UNIX` socket of type `ty` (stream, datagram or seqpacket).
pub fn unix_socket(ty: SockType, flags: SockFlag) -> nix::Result<OwnedFd> {
    socket::socket(AddressFamily::Unix, ty, flags, None)
}

/// Hare's backlog is a u32 handed to the kernel, which clamps anything over `somaxconn`; -1 asks
/// for that same limit without nix refusing the value.
fn backlog_of(n: u32) -> Backlog {
    i32::try_from(n)
        .ok()
        .and_then(|n| Backlog::new(n).ok())
        .unwrap_or(Backlog::MAXALLOWABLE)
}

/// `socket` + `bind` + `listen`. Never unlinks an existing path (`EADDRINUSE`, as Hare). On
/// failure the socket is closed, and a socket file that `bind` created is removed.
pub fn listen(addr: &[u8], flags: SockFlag, backlog: u32) -> nix::Result<OwnedFd> {
    listen_typed(addr, SockType::Stream, flags, backlog)
}

/// [`listen`] for a socket of type `ty` (stream or seqpacket).
pub fn listen_typed(
    addr: &[u8],
    ty: SockType,
    flags: SockFlag,
    backlog: u32,
) -> nix::Result<OwnedFd> {
    let sa = to_sockaddr(addr)?;
    let fd = unix_socket(ty, flags)?;
    retry(|| socket::bind(fd.as_raw_fd(), &sa))?;
    if let Err(e) = socket::listen(&fd, backlog_of(backlog)) {
        if let Some(path) = fs_path(addr) {
            let _ = nix::unistd::unlink(path);
        }
        return Err(e);
    }
    Ok(fd)
}

/// One `connect` attempt of `fd` to `addr`; EINTR is retried (an interrupted Unix connect
/// leaves the socket unconnected, so trying again is safe).
pub fn connect_fd(fd: RawFd, addr: &[u8]) -> nix::Result<()> {
    let sa = to_sockaddr(addr)?;
    retry(|| socket::connect(fd, &sa))
}

/// A new socket connected to `addr`; closed again if the connect fails.
pub fn connect(addr: &[u8], flags: SockFlag) -> nix::Result<OwnedFd> {
    connect_typed(addr, SockType::Stream, flags)
}

/// [`connect`] for a socket of type `ty`.
pub fn connect_typed(addr: &[u8], ty: SockType, flags: SockFlag) -> nix::Result<OwnedFd> {
    to_sockaddr(addr)?;
    let fd = unix_socket(ty, flags)?;
    connect_fd(fd.as_raw_fd(), addr)?;
    Ok(fd)
}

/// `accept4` with the given flags; the peer address is not fetched (as Hare).
pub fn accept(fd: RawFd, flags: SockFlag) -> nix::Result<OwnedFd> {
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    retry(|| socket::accept4(fd, flags)).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An unnamed, connected pair of stream sockets.
pub fn socketpair(flags: SockFlag) -> nix::Result<(OwnedFd, OwnedFd)> {
    socketpair_typed(SockType::Stream, flags)
}

/// [`socketpair`] of type `ty`.
pub fn socketpair_typed(ty: SockType, flags: SockFlag) -> nix::Result<(OwnedFd, OwnedFd)> {
    socket::socketpair(AddressFamily::Unix, ty, None, flags)
}

/// `SO_PEERCRED`: the pid, uid and gid of the peer at connect time.
pub fn peercred(fd: RawFd) -> nix::Result<(i32, u32, u32)> {
    // SAFETY: borrowed only for this call; an invalid fd makes getsockopt fail with EBADF.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let c = socket::getsockopt(&fd, sockopt::PeerCredentials)?;
    Ok((c.pid(), c.uid(), c.gid()))
}

/// Sets or clears `O_NONBLOCK` on the file description (shared by every dup of it, as in libuv).
pub fn set_nonblocking(fd: RawFd, on: bool) -> nix::Result<()> {
    // SAFETY: borrowed only for these calls.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let fl = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    if fl.contains(OFlag::O_NONBLOCK) != on {
        fcntl(fd, FcntlArg::F_SETFL(fl ^ OFlag::O_NONBLOCK))?;
    }
    Ok(())
}

/// Whether `O_NONBLOCK` is set on the file description.
pub fn is_nonblocking(fd: RawFd) -> nix::Result<bool> {
    // SAFETY: borrowed only for this call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    Ok(OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?).contains(OFlag::O_NONBLOCK))
}

/// A close-on-exec duplicate of `fd`.
pub fn dup_cloexec(fd: RawFd) -> nix::Result<OwnedFd> {
    // SAFETY: borrowed only for this call; the result is a fresh descriptor we own.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    fcntl(b, FcntlArg::F_DUPFD_CLOEXEC(0)).map(|n| unsafe { OwnedFd::from_raw_fd(n) })
}

/// The (device, inode) identity of the open file behind `fd`, to notice a number reused.
pub fn identity(fd: RawFd) -> nix::Result<(u64, u64)> {
    // SAFETY: borrowed only for this call.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    nix::sys::stat::fstat(b).map(|st| (st.st_dev, st.st_ino))
}

/// The socket's pending error (`SO_ERROR`), or `UnknownErrno` (0) when there is none.
pub fn socket_error(fd: RawFd) -> nix::errno::Errno {
    // SAFETY: borrowed only for this call.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    match socket::getsockopt(&b, sockopt::SocketError) {
        Ok(e) => nix::errno::Errno::from_raw(e),
        Err(e) => e,
    }
}

/// Closes `fd`. EINTR is not retried: on Linux the descriptor is gone either way.
pub fn close(fd: RawFd) -> nix::Result<()> {
    nix::unistd::close(fd)
}

/// Closes every fd of `fds`, a run of consecutive numbers in one `close_range(2)`: for fds this
/// library owns and knows to be open (dups it made, fds it received), where nothing needs an
/// error per fd. Falls back to one `close` each where `close_range` is missing (Linux < 5.9).
pub fn close_owned(fds: &mut [RawFd]) {
    fds.sort_unstable();
    let mut i = 0;
    while i < fds.len() {
        let mut j = i;
        while j + 1 < fds.len() && fds[j + 1] <= fds[j] + 1 {
            j += 1;
        }
        let (first, last) = (fds[i], fds[j]);
        // SAFETY: close_range takes plain integers; every fd in [first, last] is in `fds`.
        let ranged = first >= 0
            && last > first
            && unsafe { libc::syscall(libc::SYS_close_range, first as u32, last as u32, 0u32) }
                == 0;
        if !ranged {
            for &fd in &fds[i..=j] {
                let _ = close(fd);
            }
        }
        i = j + 1;
    }
}

/// Whether bytes wait to be read on a connected socket, without taking them (`MSG_PEEK |
/// MSG_DONTWAIT`): `Some(true)` bytes, `Some(false)` end of stream, `None` nothing yet.
pub fn has_input(fd: RawFd) -> nix::Result<Option<bool>> {
    let mut byte = [0u8; 1];
    let flags = socket::MsgFlags::MSG_PEEK | socket::MsgFlags::MSG_DONTWAIT;
    match retry(|| socket::recv(fd, &mut byte, flags)) {
        Ok(n) => Ok(Some(n > 0)),
        Err(nix::errno::Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Shuts down the sending side (`write_only`) or both sides of a connected socket.
pub fn shutdown(fd: RawFd, write_only: bool) -> nix::Result<()> {
    let how = if write_only {
        socket::Shutdown::Write
    } else {
        socket::Shutdown::Both
    };
    socket::shutdown(fd, how)
}

#[cfg(test)]
mod close_owned_tests {
    use super::*;

    fn is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
    }

    #[test]
    fn closes_runs_and_singles_and_nothing_between() {
        let pipes: Vec<[RawFd; 2]> = (0..4)
            .map(|_| {
                let mut p = [0; 2];
                // SAFETY: p has room for two fds.
                assert_eq!(unsafe { libc::pipe(p.as_mut_ptr()) }, 0);
                p
            })
            .collect();
        let all: Vec<RawFd> = pipes.iter().flatten().copied().collect();
        // Every other fd: runs of one, with fds that must stay open between them.
        let mut some: Vec<RawFd> = all.iter().copied().step_by(2).collect();
        let kept: Vec<RawFd> = all.iter().copied().skip(1).step_by(2).collect();
        close_owned(&mut some);
        assert!(some.iter().all(|&fd| !is_open(fd)));
        assert!(
            kept.iter().all(|&fd| is_open(fd)),
            "fds between the closed ones stay open"
        );
        let mut rest = kept.clone();
        rest.reverse(); // unsorted input, consecutive once sorted where they were
        close_owned(&mut rest);
        assert!(kept.iter().all(|&fd| !is_open(fd)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> SockFlag {
        SockFlag::SOCK_CLOEXEC
    }

    #[test]
    fn listen_connect_accept_abstract() {
        let name = format!("\0net-unix-test-{}", std::process::id());
        let l = listen(name.as_bytes(), flags(), 10).unwrap();
        let c = connect(name.as_bytes(), flags()).unwrap();
        let a = accept(l.as_raw_fd(), flags()).unwrap();
        let (pid, uid, _) = peercred(a.as_raw_fd()).unwrap();
        assert_eq!(pid as u32, std::process::id());
        assert_eq!(uid, nix::unistd::getuid().as_raw());
        drop(c);
    }

    fn open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    #[test]
    fn listen_does_not_unlink_and_closes_on_failure() {
        if !crate::alone("sock::tests::listen_does_not_unlink_and_closes_on_failure") {
            return;
        }
        let dir = std::env::temp_dir().join(format!("nu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("s");
        std::fs::write(&p, b"x").unwrap();
        let before = open_fds();
        let err = listen(p.as_os_str().as_encoded_bytes(), flags(), 10).unwrap_err();
        assert_eq!(err, nix::errno::Errno::EADDRINUSE);
        assert_eq!(
            open_fds(),
            before,
            "the socket of the failed listen is closed"
        );
        assert_eq!(
            std::fs::read(&p).unwrap(),
            b"x",
            "the existing file is untouched"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn huge_backlog_is_clamped_not_refused() {
        let name = format!("\0net-unix-bk-{}", std::process::id());
        assert!(listen(name.as_bytes(), flags(), u32::MAX).is_ok());
    }

    #[test]
    fn connect_refused_and_missing() {
        assert_eq!(
            connect(b"\0net-unix-nobody-here", flags()).unwrap_err(),
            nix::errno::Errno::ECONNREFUSED
        );
        assert_eq!(
            connect(b"/nonexistent/x", flags()).unwrap_err(),
            nix::errno::Errno::ENOENT
        );
    }

    #[test]
    fn closed_fd_is_ebadf() {
        // A just-closed number can be reused at once by a parallel test
        // thread; a number above any rlimit never is.
        assert_eq!(peercred(i32::MAX).unwrap_err(), nix::errno::Errno::EBADF);
    }
}

#[cfg(test)]
mod has_input_tests {
    use super::*;

    #[test]
    fn tells_nothing_yet_bytes_and_end_of_stream_apart_without_reading() {
        let (a, b) = socketpair(SockFlag::SOCK_CLOEXEC).unwrap();
        assert_eq!(has_input(b.as_raw_fd()), Ok(None));
        socket::send(a.as_raw_fd(), b"x", socket::MsgFlags::empty()).unwrap();
        assert_eq!(has_input(b.as_raw_fd()), Ok(Some(true)));
        // Peeked, not taken: the byte is still there.
        assert_eq!(has_input(b.as_raw_fd()), Ok(Some(true)));
        let mut byte = [0u8; 1];
        assert_eq!(
            socket::recv(b.as_raw_fd(), &mut byte, socket::MsgFlags::empty()),
            Ok(1)
        );
        drop(a);
        assert_eq!(has_input(b.as_raw_fd()), Ok(Some(false)));
    }
}
