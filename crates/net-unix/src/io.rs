//! One operation on a socket, without the event loop: the non-blocking attempt the reactor
//! makes, and the blocking calls of the `*Sync` exports. Both share the buffer plumbing here.

use crate::{dgram, error, mmsg, msg, nonblock, sock};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::SockFlag;
use smallvec::SmallVec;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

/// Where the buffers of one call are, as `js::bytes` reported them.
pub type Bufs = SmallVec<[(*mut u8, usize); 4]>;

/// What an operation does, with borrowed fds to send.
pub enum Op<'a> {
    Accept {
        flags: SockFlag,
    },
    Recv {
        max_fds: usize,
    },
    Send {
        fds: &'a [RawFd],
        groups: &'a [u32],
    },
    /// Many messages into one buffer cut in slots of `slot` bytes, as [`mmsg::Many`] says.
    RecvMany(mmsg::Many),
    /// One message per buffer, message `i` carrying the next `counts[i]` of `fds`.
    SendMany {
        fds: &'a [RawFd],
        counts: &'a [u32],
    },
    /// A receive that reports the sender's address and, with `creds`, its credentials.
    RecvFrom {
        max_fds: usize,
        creds: bool,
    },
    /// A send to an address (`None`: the connected peer), with credentials when `creds`.
    SendTo {
        to: Option<&'a [u8]>,
        fds: &'a [RawFd],
        groups: &'a [u32],
        creds: bool,
    },
    /// No I/O: done once the socket is readable (or writable), with `poll(2)`'s revents.
    Ready {
        writes: bool,
    },
}

impl Op<'_> {
    pub fn writes(&self) -> bool {
        match self {
            Op::Send { .. } | Op::SendMany { .. } | Op::SendTo { .. } => true,
            Op::Ready { writes } => *writes,
            _ => false,
        }
    }
}

/// A finished operation, before it becomes a JS value.
pub enum Done {
    Fd(OwnedFd),
    Bytes(usize),
    Recv(msg::Received),
    /// The messages, and whether their senders were asked for (the layout JS reads).
    RecvMany(Vec<dgram::From>, bool),
    SentMany(mmsg::SentMany),
    From(dgram::From),
}

impl Done {
    /// Items of a many-message result, count included.
    pub fn many_len(rs: &[dgram::From], from: bool) -> usize {
        1 + rs
            .iter()
            .map(|f| {
                if from {
                    f.many_len()
                } else {
                    3 + f.rcv.fds.len()
                }
            })
            .sum::<usize>()
    }

    /// The result as the numbers JS reads: a receive's `[bytes, truncated, ...fds]`; many
    /// messages' `[n, (bytes, truncated, nfds, ...fds) × n]`, or with senders `[n, (bytes,
    /// flags, nfds, pid, uid, gid, addrLen, ...addr, ...fds) × n]`; many sends' `[messages,
    /// lastBytes]`; the fds become the caller's.
    pub fn into_items(self) -> Vec<i32> {
        match self {
            Done::Fd(fd) => vec![std::os::fd::IntoRawFd::into_raw_fd(fd)],
            Done::Bytes(n) => vec![n as i32],
            Done::Recv(r) => r.into_items(),
            Done::RecvMany(rs, from) => {
                let mut out = Vec::with_capacity(Done::many_len(&rs, from));
                out.push(rs.len() as i32);
                for f in rs {
                    if from {
                        f.push_many(&mut out);
                    } else {
                        let r = f.rcv;
                        out.extend_from_slice(&[r.bytes as i32, r.flag_bits(), r.fds.len() as i32]);
                        out.extend(r.fds.into_iter().map(std::os::fd::IntoRawFd::into_raw_fd));
                    }
                }
                out
            }
            Done::SentMany(s) => vec![s.messages as i32, s.last_bytes as i32],
            Done::From(f) => f.into_items(),
        }
    }
}

/// Runs the operation once without blocking: message calls pass `MSG_DONTWAIT`; `accept4` has
/// no such flag, so the caller holds the listener non-blocking (see [`nonblock::Hold`]).
///
/// # Safety
/// The buffer pointers come from live typed arrays fetched in this same JS turn.
pub unsafe fn attempt(fd: RawFd, op: &Op, bufs: &[(*mut u8, usize)]) -> nix::Result<Done> {
    match op {
        Op::Accept { flags } => sock::accept(fd, *flags).map(Done::Fd),
        // SAFETY: as this function's contract.
        Op::Recv { max_fds } => unsafe { recv_bufs(fd, bufs, *max_fds, true) }.map(Done::Recv),
        // SAFETY: as this function's contract.
        Op::Send { fds, groups } => {
            unsafe { send_bufs(fd, bufs, fds, groups, true) }.map(Done::Bytes)
        }
        Op::RecvMany(how) => {
            let first = bufs.first().copied().unwrap_or((std::ptr::null_mut(), 0));
            // SAFETY: as this function's contract.
            let all = unsafe { bytes_mut(first) };
            let mut slots: SmallVec<[&mut [u8]; 16]> = all.chunks_mut(how.slot.max(1)).collect();
            mmsg::recv_many(fd, &mut slots, how, true).map(|rs| Done::RecvMany(rs, how.from))
        }
        Op::SendMany { fds, counts } => {
            let datas: SmallVec<[&[u8]; 16]> = bufs
                .iter()
                // SAFETY: as this function's contract (only read).
                .map(|&b| &*unsafe { bytes_mut(b) })
                .collect();
            let groups = split_groups(fds, counts);
            mmsg::send_many(fd, &datas, &groups, true).map(Done::SentMany)
        }
        Op::RecvFrom { max_fds, creds } => {
            // SAFETY: as this function's contract.
            unsafe { recv_bufs_from(fd, bufs, *max_fds, *creds, true) }.map(Done::From)
        }
        Op::SendTo {
            to,
            fds,
            groups,
            creds,
        } => {
            // SAFETY: as this function's contract.
            unsafe { send_bufs_to(fd, bufs, *to, fds, groups, *creds, true) }.map(Done::Bytes)
        }
        Op::Ready { writes } => ready_now(fd, *writes).map(|r| Done::Bytes(r as usize)),
    }
}

/// The memory `js::bytes` reported; empty for a detached buffer.
///
/// # Safety
/// `(p, n)` comes from a typed array fetched in this same JS turn.
unsafe fn bytes_mut<'a>((p, n): (*mut u8, usize)) -> &'a mut [u8] {
    if p.is_null() {
        &mut []
    } else {
        // SAFETY: a live typed array's memory, as the contract says.
        unsafe { std::slice::from_raw_parts_mut(p, n) }
    }
}

/// `recvmsg` into the given buffers, blocking or not.
///
/// # Safety
/// As [`bytes_mut`], for every buffer.
pub unsafe fn recv_bufs(
    fd: RawFd,
    bufs: &[(*mut u8, usize)],
    max_fds: usize,
    dontwait: bool,
) -> nix::Result<msg::Received> {
    let mut iov: SmallVec<[IoSliceMut; 4]> = bufs
        .iter()
        // SAFETY: as this function's contract.
        .map(|&b| IoSliceMut::new(unsafe { bytes_mut(b) }))
        .collect();
    msg::recv(fd, &mut iov, max_fds, dontwait)
}

/// `sendmsg` of the given buffers with `fds` in `groups`, blocking or not.
///
/// # Safety
/// As [`bytes_mut`], for every buffer.
pub unsafe fn send_bufs(
    fd: RawFd,
    bufs: &[(*mut u8, usize)],
    fds: &[RawFd],
    groups: &[u32],
    dontwait: bool,
) -> nix::Result<usize> {
    let iov: SmallVec<[IoSlice; 4]> = bufs
        .iter()
        // SAFETY: as this function's contract.
        .map(|&b| IoSlice::new(unsafe { bytes_mut(b) }))
        .collect();
    msg::send(fd, &iov, &split_groups(fds, groups), dontwait)
}

/// [`recv_bufs`] with the sender's address and credentials (datagram sockets).
///
/// # Safety
/// As [`bytes_mut`], for every buffer.
pub unsafe fn recv_bufs_from(
    fd: RawFd,
    bufs: &[(*mut u8, usize)],
    max_fds: usize,
    creds: bool,
    dontwait: bool,
) -> nix::Result<dgram::From> {
    let mut iov: SmallVec<[IoSliceMut; 4]> = bufs
        .iter()
        // SAFETY: as this function's contract.
        .map(|&b| IoSliceMut::new(unsafe { bytes_mut(b) }))
        .collect();
    dgram::recv_from(fd, &mut iov, max_fds, creds, dontwait)
}

/// [`send_bufs`] to an address, with credentials when `creds` (datagram sockets).
///
/// # Safety
/// As [`bytes_mut`], for every buffer.
pub unsafe fn send_bufs_to(
    fd: RawFd,
    bufs: &[(*mut u8, usize)],
    to: Option<&[u8]>,
    fds: &[RawFd],
    groups: &[u32],
    creds: bool,
    dontwait: bool,
) -> nix::Result<usize> {
    let iov: SmallVec<[IoSlice; 4]> = bufs
        .iter()
        // SAFETY: as this function's contract.
        .map(|&b| IoSlice::new(unsafe { bytes_mut(b) }))
        .collect();
    dgram::send_to(fd, &iov, to, &split_groups(fds, groups), creds, dontwait)
}

/// `poll(2)` with no wait: the revents when `fd` is readable (or writable) or in error now,
/// `EAGAIN` when not yet, `EBADF` when it is not open.
fn ready_now(fd: RawFd, writes: bool) -> nix::Result<i16> {
    let got = poll_one(fd, writes, PollTimeout::ZERO)?;
    if got.intersects(interest(writes) | PollFlags::POLLERR | PollFlags::POLLHUP) {
        Ok(got.bits())
    } else {
        Err(Errno::EAGAIN)
    }
}

fn interest(writes: bool) -> PollFlags {
    if writes {
        PollFlags::POLLOUT
    } else {
        PollFlags::POLLIN
    }
}

/// One `poll(2)` on `fd` for reading (or writing), retrying `EINTR`: its revents, `EBADF`
/// when `fd` is not open.
fn poll_one(fd: RawFd, writes: bool, timeout: PollTimeout) -> nix::Result<PollFlags> {
    // SAFETY: borrowed only for this call; a closed fd makes poll report POLLNVAL.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    let mut fds = [PollFd::new(b, interest(writes))];
    error::retry(|| poll(&mut fds, timeout))?;
    let got = fds[0].revents().unwrap_or(PollFlags::empty());
    if got.contains(PollFlags::POLLNVAL) {
        Err(Errno::EBADF)
    } else {
        Ok(got)
    }
}

/// `fds` cut into consecutive groups of the given sizes (one SCM_RIGHTS message each).
pub fn split_groups<'a>(fds: &'a [RawFd], groups: &[u32]) -> SmallVec<[&'a [RawFd]; 2]> {
    let mut out = SmallVec::new();
    let mut at = 0;
    for &g in groups {
        let end = (at + g as usize).min(fds.len());
        out.push(&fds[at..end]);
        at = end;
    }
    out
}

/// Hare's blocking semantics for the `*Sync` calls: `f` runs as a blocking call; if it says
/// `EAGAIN` only because a Promise operation of ours holds the socket non-blocking right now,
/// wait with `poll(2)` and try again. A socket non-blocking by its owner's choice still says
/// `EAGAIN`.
pub fn blocking<T>(
    fd: RawFd,
    writes: bool,
    mut f: impl FnMut() -> nix::Result<T>,
) -> nix::Result<T> {
    loop {
        match f() {
            Err(Errno::EAGAIN) if nonblock::held(fd) => wait_ready(fd, writes)?,
            other => return other,
        }
    }
}

/// Blocks until `fd` is readable (or writable), retrying `EINTR`.
fn wait_ready(fd: RawFd, writes: bool) -> nix::Result<()> {
    poll_one(fd, writes, PollTimeout::NONE).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_cut_in_order_and_clamped() {
        let fds = [10, 11, 12, 13];
        let g = split_groups(&fds, &[1, 2, 5]);
        assert_eq!(g.as_slice(), &[&fds[0..1], &fds[1..3], &fds[3..4]]);
        assert!(split_groups(&fds, &[]).is_empty());
    }
}
