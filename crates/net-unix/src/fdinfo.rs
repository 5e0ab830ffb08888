//! What an fd is: `fstat`, its fd and file-status flags, and for a socket its domain, type,
//! `SO_ACCEPTCONN` and both addresses. Read-only: nothing here changes the fd. The facade
//! (lib/fdinfo.ts) names the values and shapes the addresses as `net` reports them.

use crate::error::neg;
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::sys::socket::{self, sockopt, SockaddrLike, SockaddrStorage};
use std::os::fd::{BorrowedFd, RawFd};

/// One socket address: `family` (`AF_*`), `address` (an IP address as text, or a Unix path /
/// `\0name`, empty when unnamed; empty for other families), `port` (IP only).
#[napi(object)]
pub struct FdAddress {
    pub family: i32,
    pub address: Buffer,
    pub port: u32,
}

/// What [`fd_info`] found. `errno` < 0: the call named by `syscall` failed, nothing else is set.
#[napi(object)]
pub struct FdInfo {
    pub errno: i32,
    pub syscall: String,
    /// `st_mode & S_IFMT`.
    pub mode: u32,
    pub cloexec: bool,
    pub nonblock: bool,
    /// `SO_DOMAIN`, or -1 when not a socket.
    pub domain: i32,
    /// `SO_TYPE`, or -1.
    pub socktype: i32,
    pub listening: bool,
    pub local: Option<FdAddress>,
    pub remote: Option<FdAddress>,
}

fn failed(e: Errno, syscall: &str) -> FdInfo {
    FdInfo {
        errno: neg(e),
        syscall: syscall.into(),
        mode: 0,
        cloexec: false,
        nonblock: false,
        domain: -1,
        socktype: -1,
        listening: false,
        local: None,
        remote: None,
    }
}

/// An IP socket address as `net` writes it (a link-local IPv6 address with its interface, as
/// Node's `address()`), and its port; `None` for other families.
fn ip_of(sa: &SockaddrStorage) -> Option<(String, u32)> {
    if let Some(v4) = sa.as_sockaddr_in() {
        return Some((v4.ip().to_string(), v4.port().into()));
    }
    let v6 = sa.as_sockaddr_in6()?;
    let mut text = v6.ip().to_string();
    if v6.scope_id() != 0 {
        let name = nix::net::if_::if_indextoname(v6.scope_id())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|_| v6.scope_id().to_string());
        text = format!("{text}%{name}");
    }
    Some((text, v6.port().into()))
}

/// The address in the facade's terms (an empty address for a family it has no shape for).
fn address_of(sa: &SockaddrStorage) -> FdAddress {
    let family = sa.family().map_or(-1, |f| f as i32);
    let (text, port): (Vec<u8>, u32) = if let Some(u) = sa.as_unix_addr() {
        let bytes = if let Some(name) = u.as_abstract() {
            [&[0u8][..], name].concat()
        } else if let Some(p) = u.path() {
            p.as_os_str().as_encoded_bytes().to_vec()
        } else {
            Vec::new()
        };
        (bytes, 0)
    } else if let Some((text, port)) = ip_of(sa) {
        (text.into_bytes(), port)
    } else {
        (Vec::new(), 0)
    };
    FdAddress {
        family,
        address: text.into(),
        port,
    }
}

/// The peer of a connected TCP (IP) socket as `net` writes it, and its port; `None` when it has
/// none (not connected, not IP). One `getpeername`: for routing each connection by client.
pub fn inet_peer(fd: RawFd) -> Option<(String, u32)> {
    ip_of(&socket::getpeername::<SockaddrStorage>(fd).ok()?)
}

/// What `fd` is, without changing anything about it.
#[napi]
pub fn fd_info(fd: i32) -> FdInfo {
    info(fd).unwrap_or_else(|(e, syscall)| failed(e, syscall))
}

fn info(fd: RawFd) -> Result<FdInfo, (Errno, &'static str)> {
    if fd < 0 {
        return Err((Errno::EBADF, "fstat"));
    }
    // SAFETY: borrowed only for these calls; a closed number makes each fail with EBADF.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    let st = nix::sys::stat::fstat(b).map_err(|e| (e, "fstat"))?;
    let fd_flags = fcntl(b, FcntlArg::F_GETFD).map_err(|e| (e, "fcntl"))?;
    let fl_flags = fcntl(b, FcntlArg::F_GETFL).map_err(|e| (e, "fcntl"))?;
    let mut out = failed(Errno::UnknownErrno, "");
    out.errno = 0;
    out.mode = st.st_mode & libc::S_IFMT;
    out.cloexec = fd_flags & libc::FD_CLOEXEC != 0;
    out.nonblock = fl_flags & libc::O_NONBLOCK != 0;
    if out.mode != libc::S_IFSOCK {
        return Ok(out);
    }
    let gso = |e| (e, "getsockopt");
    out.domain = int_opt(fd, libc::SO_DOMAIN).map_err(gso)?;
    out.socktype = int_opt(fd, libc::SO_TYPE).map_err(gso)?;
    out.listening = socket::getsockopt(&b, sockopt::AcceptConn).map_err(gso)?;
    out.local = Some(address_of(
        &socket::getsockname::<SockaddrStorage>(fd).map_err(|e| (e, "getsockname"))?,
    ));
    out.remote = match socket::getpeername::<SockaddrStorage>(fd) {
        Ok(sa) => Some(address_of(&sa)),
        // Not connected (or a family without peers): no remote address.
        Err(Errno::ENOTCONN) | Err(Errno::EOPNOTSUPP) => None,
        Err(e) => return Err((e, "getpeername")),
    };
    Ok(out)
}

/// An `int` socket option at `SOL_SOCKET`.
fn int_opt(fd: RawFd, opt: libc::c_int) -> nix::Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `v` and `len` are valid for the kernel to write an int into.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    Errno::result(rc).map(|_| v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sock;
    use nix::sys::socket::{SockFlag, SockType};
    use std::os::fd::AsRawFd;

    #[test]
    fn a_socketpair_is_connected_and_unnamed() {
        let (a, _b) = sock::socketpair_typed(SockType::SeqPacket, SockFlag::SOCK_CLOEXEC).unwrap();
        let i = info(a.as_raw_fd()).unwrap();
        assert_eq!(i.mode, libc::S_IFSOCK);
        assert_eq!(
            (i.domain, i.socktype),
            (libc::AF_UNIX, libc::SOCK_SEQPACKET)
        );
        assert!(i.cloexec && !i.nonblock && !i.listening);
        assert_eq!(i.remote.map(|r| r.address.len()), Some(0));
    }

    #[test]
    fn a_closed_number_is_ebadf_from_fstat() {
        let i = fd_info(i32::MAX);
        assert_eq!((i.errno, i.syscall.as_str()), (-libc::EBADF, "fstat"));
    }

    #[test]
    fn inet_peer_names_the_client_and_nothing_else() {
        use std::os::fd::AsRawFd;
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let (conn, _) = server.accept().unwrap();
        let me = client.local_addr().unwrap();
        assert_eq!(
            inet_peer(conn.as_raw_fd()),
            Some((me.ip().to_string(), u32::from(me.port())))
        );
        assert_eq!(
            inet_peer(server.as_raw_fd()),
            None,
            "a listener has no peer"
        );
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(
            inet_peer(a.as_raw_fd()),
            None,
            "nor has a Unix socket an IP one"
        );
    }
}
