//! Many messages per syscall: `recvmmsg` / `sendmmsg`, each message with its own SCM_RIGHTS fds.
//! Beyond Hare; what the batched JS calls use to pay one native call for many messages. The
//! same guarantees as `msg`: `MSG_NOSIGNAL`, `MSG_CMSG_CLOEXEC`, every installed fd returned or
//! closed.

use crate::dgram::{self, From};
use crate::error::retry;
use crate::msg::{control_space, MAX_FDS, PIDFD_SPACE};
use nix::errno::Errno;
use smallvec::SmallVec;
use std::cell::RefCell;
use std::mem::{size_of, zeroed};
use std::os::fd::RawFd;

/// The most messages one call moves (the kernel's `UIO_MAXIOV` bounds `vlen`; this keeps the
/// per-call buffers small).
pub const MAX_BATCH: usize = 64;

thread_local! {
    /// The control areas of batched receives, kept across calls (a stream socket's batch asks
    /// room for 253 fds in each of 64 slots: 66 KB, which zeroing per call made a cost of its
    /// own). Zeroed once when grown; each message's area is read only as far as the kernel
    /// says it wrote (`msg_controllen`), so what an earlier call left there is never read.
    static CONTROL: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// The bytes of area `i` of control areas of `space` bytes each (`CMSG_SPACE` is a multiple of
/// 8, so `u64` words keep every area aligned for `cmsghdr`).
fn area(words: &mut [u64], i: usize, space: usize) -> &mut [u8] {
    let area = &mut words[i * space / 8..(i + 1) * space / 8];
    // SAFETY: plain memory; viewing `u64`s as bytes is always valid, and `space` bytes fit.
    unsafe { std::slice::from_raw_parts_mut(area.as_mut_ptr().cast(), space) }
}

/// What a batched receive takes per message: up to `max_fds` fds; with `from`, the sender's
/// address, and its credentials when `creds` (the socket needs `SO_PASSCRED` for the kernel to
/// attach them).
#[derive(Clone, Copy, Debug)]
pub struct Many {
    pub slot: usize,
    pub max_fds: usize,
    pub from: bool,
    pub creds: bool,
}

/// Receives up to `slots.len()` messages, each into its own slot, as `how` says. Fails only if
/// not even the first message could be received (as `recvmmsg` does).
pub fn recv_many(
    fd: RawFd,
    slots: &mut [&mut [u8]],
    how: &Many,
    dontwait: bool,
) -> nix::Result<Vec<From>> {
    CONTROL.with_borrow_mut(|words| recv_many_with(fd, slots, how, dontwait, words))
}

fn recv_many_with(
    fd: RawFd,
    slots: &mut [&mut [u8]],
    how: &Many,
    dontwait: bool,
    words: &mut Vec<u64>,
) -> nix::Result<Vec<From>> {
    let n = slots.len().min(MAX_BATCH);
    let max_fds = how.max_fds.min(MAX_FDS);
    let creds = how.from && how.creds;
    let space = control_space(max_fds) + if creds { dgram::cred_space() } else { 0 } + PIDFD_SPACE;
    if words.len() < n * space / 8 {
        words.resize(n * space / 8, 0);
    }
    let control = &mut words[..n * space / 8];
    // SAFETY: plain C structs, all-zero is their empty value.
    let mut iovs: SmallVec<[libc::iovec; MAX_BATCH]> =
        (0..n).map(|_| unsafe { zeroed() }).collect();
    let mut hdrs: SmallVec<[libc::mmsghdr; MAX_BATCH]> =
        (0..n).map(|_| unsafe { zeroed() }).collect();
    let mut names: SmallVec<[libc::sockaddr_un; 4]> = (0..if how.from { n } else { 0 })
        // SAFETY: as above.
        .map(|_| unsafe { zeroed() })
        .collect();
    for i in 0..n {
        iovs[i].iov_base = slots[i].as_mut_ptr().cast();
        iovs[i].iov_len = slots[i].len();
    }
    for i in 0..n {
        let h = &mut hdrs[i].msg_hdr;
        h.msg_iov = &mut iovs[i];
        h.msg_iovlen = 1;
        if space > 0 {
            h.msg_control = area(control, i, space).as_mut_ptr().cast();
            h.msg_controllen = space as _;
        }
        if how.from {
            h.msg_name = (&mut names[i] as *mut libc::sockaddr_un).cast();
            h.msg_namelen = size_of::<libc::sockaddr_un>() as _;
        }
    }
    let mut flags = libc::MSG_CMSG_CLOEXEC;
    if dontwait {
        flags |= libc::MSG_DONTWAIT;
    }
    let got = retry(|| {
        // SAFETY: every header points at live iovecs, names and control areas of the sizes
        // given, which outlive the call.
        let rc = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                n as _,
                flags as _,
                std::ptr::null_mut(),
            )
        };
        Errno::result(rc)
    })? as usize;
    let mut out = Vec::with_capacity(got);
    for (i, h) in hdrs.iter().enumerate().take(got) {
        #[allow(clippy::unnecessary_cast)] // socklen_t (u32) on musl
        let written = (h.msg_hdr.msg_controllen as usize).min(space);
        let control = if space > 0 {
            &mut area(control, i, space)[..written]
        } else {
            &mut []
        };
        let name = names.get(i).map(|a| (a, h.msg_hdr.msg_namelen as usize));
        out.push(dgram::From::parse(
            h.msg_len as usize,
            h.msg_hdr.msg_flags,
            name,
            control,
            max_fds,
        ));
    }
    Ok(out)
}

/// What `send_many` did: whole messages sent, and the bytes sent of the last one (fewer than it
/// holds when a stream socket's buffer filled in the middle of it; its fds went with its first
/// byte).
#[derive(Debug, PartialEq, Eq)]
pub struct SentMany {
    pub messages: usize,
    pub last_bytes: usize,
}

/// Sends `datas.len()` messages, message `i` carrying `fds_of[i]`, in one `sendmmsg`. Fails only
/// if not even the first message could be sent.
pub fn send_many(
    fd: RawFd,
    datas: &[&[u8]],
    fds_of: &[&[RawFd]],
    dontwait: bool,
) -> nix::Result<SentMany> {
    let n = datas.len().min(fds_of.len()).min(MAX_BATCH);
    let groups: SmallVec<[&[RawFd]; 16]> = fds_of[..n]
        .iter()
        .map(|g| &g[..g.len().min(MAX_FDS)])
        .collect();
    // One control area per message, as large as its own fds need (none for none).
    let spaces: SmallVec<[usize; 16]> = groups.iter().map(|g| control_space(g.len())).collect();
    let mut control: SmallVec<[u64; 256]> =
        SmallVec::from_elem(0, spaces.iter().sum::<usize>() / 8);
    // SAFETY: plain C structs, all-zero is their empty value.
    let mut iovs: SmallVec<[libc::iovec; MAX_BATCH]> =
        (0..n).map(|_| unsafe { zeroed() }).collect();
    let mut hdrs: SmallVec<[libc::mmsghdr; MAX_BATCH]> =
        (0..n).map(|_| unsafe { zeroed() }).collect();
    for i in 0..n {
        iovs[i].iov_base = datas[i].as_ptr() as *mut _;
        iovs[i].iov_len = datas[i].len();
    }
    let mut at = 0;
    for i in 0..n {
        let h = &mut hdrs[i].msg_hdr;
        h.msg_iov = &mut iovs[i];
        h.msg_iovlen = 1;
        let fds = groups[i];
        if fds.is_empty() {
            continue;
        }
        h.msg_control = control[at / 8..].as_mut_ptr().cast();
        h.msg_controllen = spaces[i] as _;
        at += spaces[i];
        // SAFETY: the area holds CMSG_SPACE(fds) bytes, so the first header and its data lie
        // inside it.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(h);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
            let data = libc::CMSG_DATA(c) as *mut RawFd;
            for (k, f) in fds.iter().enumerate() {
                data.add(k).write_unaligned(*f);
            }
        }
    }
    let mut flags = libc::MSG_NOSIGNAL;
    if dontwait {
        flags |= libc::MSG_DONTWAIT;
    }
    let sent = retry(|| {
        // SAFETY: every header points at live iovecs and control areas that outlive the call;
        // the data is only read.
        let rc = unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as _, flags as _) };
        Errno::result(rc)
    })? as usize;
    Ok(SentMany {
        messages: sent,
        last_bytes: if sent > 0 {
            hdrs[sent - 1].msg_len as usize
        } else {
            0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sock::socketpair;
    use nix::sys::socket::SockFlag;
    use std::os::fd::AsRawFd;

    fn fds_only(max_fds: usize) -> Many {
        Many {
            slot: 0,
            max_fds,
            from: false,
            creds: false,
        }
    }

    #[test]
    fn many_messages_with_their_own_fds_in_two_calls() {
        let (a, b) = socketpair(SockFlag::SOCK_CLOEXEC).unwrap();
        let (x, y) = socketpair(SockFlag::SOCK_CLOEXEC).unwrap();
        let datas: Vec<&[u8]> = vec![b"a", b"b", b"c"];
        let one = [x.as_raw_fd()];
        let two = [x.as_raw_fd(), y.as_raw_fd()];
        let fds: Vec<&[RawFd]> = vec![&one, &[], &two];
        let sent = send_many(a.as_raw_fd(), &datas, &fds, true).unwrap();
        assert_eq!(
            sent,
            SentMany {
                messages: 3,
                last_bytes: 1
            }
        );
        let mut bufs = [[0u8; 4]; 4];
        let mut slots: Vec<&mut [u8]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        let got: Vec<_> = recv_many(b.as_raw_fd(), &mut slots, &fds_only(4), true)
            .unwrap()
            .into_iter()
            .map(|f| f.rcv)
            .collect();
        // A stream socket never merges bytes that carry fds with others into one read.
        let counts: Vec<(usize, usize)> = got.iter().map(|r| (r.bytes, r.fds.len())).collect();
        let total_fds: usize = counts.iter().map(|c| c.1).sum();
        assert_eq!(total_fds, 3);
        assert_eq!(got[0].fds.len(), 1, "the first byte's fd stays with it");
        assert!(got.iter().all(|r| !r.truncated));
        assert_eq!(
            recv_many(b.as_raw_fd(), &mut slots, &fds_only(4), true).unwrap_err(),
            Errno::EAGAIN
        );
    }

    #[test]
    fn too_little_room_truncates_and_closes_the_rest() {
        let (a, b) = socketpair(SockFlag::SOCK_CLOEXEC).unwrap();
        let (x, _y) = socketpair(SockFlag::SOCK_CLOEXEC).unwrap();
        let three = [x.as_raw_fd(); 3];
        send_many(a.as_raw_fd(), &[b"z"], &[&three], true).unwrap();
        let mut buf = [0u8; 1];
        let mut slots: Vec<&mut [u8]> = vec![&mut buf[..]];
        let got = recv_many(b.as_raw_fd(), &mut slots, &fds_only(1), true).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rcv.fds.len(), 1);
        assert!(got[0].rcv.truncated);
    }

    #[test]
    fn datagrams_come_with_their_senders_and_credentials() {
        use crate::dgram::{bind_addr, set_passcred, socket_typed};
        let name = format!("\0net-unix-mmsg-{}", std::process::id());
        let rx = socket_typed(libc::SOCK_DGRAM, libc::SOCK_CLOEXEC);
        let tx = socket_typed(libc::SOCK_DGRAM, libc::SOCK_CLOEXEC);
        assert_eq!(bind_addr(rx, name.as_bytes()), 0);
        assert_eq!(set_passcred(rx, true), 0);
        let from = format!("{name}-tx");
        assert_eq!(bind_addr(tx, from.as_bytes()), 0);
        let to = crate::addr::to_sockaddr(name.as_bytes()).unwrap();
        for m in [&b"one"[..], b"two!"] {
            nix::sys::socket::sendto(tx, m, &to, nix::sys::socket::MsgFlags::empty()).unwrap();
        }
        let mut bufs = [[0u8; 8]; 4];
        let mut slots: Vec<&mut [u8]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
        let how = Many {
            slot: 8,
            max_fds: 0,
            from: true,
            creds: true,
        };
        let got = recv_many(rx, &mut slots, &how, true).unwrap();
        assert_eq!(got.len(), 2, "both datagrams in one call");
        assert_eq!((got[0].rcv.bytes, got[1].rcv.bytes), (3, 4));
        assert!(got.iter().all(|f| f.addr.as_slice() == from.as_bytes()));
        let me = std::process::id() as i32;
        assert!(got.iter().all(|f| f.cred.map(|c| c.0) == Some(me)));
        let mut items = Vec::new();
        for f in got {
            f.push_many(&mut items);
        }
        assert_eq!(items[0], 3);
        assert_eq!(items[6] as usize, items.len() / 2 - 7, "two equal records");
        for fd in [rx, tx] {
            crate::sock::close(fd).unwrap();
        }
    }
}
