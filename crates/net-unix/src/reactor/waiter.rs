//! A queued operation and how it settles into its promise.

use super::Reactor;
use crate::io::{self, Bufs, Done, Op};
use crate::js::{self, Env, Value};
use crate::nonblock;
use nix::errno::Errno;
use nix::sys::socket::SockFlag;
use smallvec::SmallVec;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};

/// What a queued operation does. It owns dups of the fds it will send, so closing them after the
/// call cannot change what is sent; an accept holds its listener non-blocking while it waits.
pub(super) enum Wait {
    Accept {
        flags: SockFlag,
        /// Kept, not read: dropping it gives the listener its blocking mode back.
        _nonblocking: nonblock::Hold,
    },
    Recv(usize),
    Send(Vec<OwnedFd>, Vec<u32>),
    RecvMany(crate::mmsg::Many),
    SendMany(Vec<OwnedFd>, Vec<u32>),
    RecvFrom {
        max_fds: usize,
        creds: bool,
    },
    SendTo(Box<SendTo>),
    Ready {
        writes: bool,
    },
}

/// A queued send to an address (boxed: it would double the size of every waiter).
pub(super) struct SendTo {
    pub to: Option<Vec<u8>>,
    pub fds: Vec<OwnedFd>,
    pub groups: Vec<u32>,
    pub creds: bool,
}

/// A queued operation, holding references to its buffers: their memory is looked up again when
/// the syscall runs, so a buffer moved or detached meanwhile is never read through a stale pointer.
pub(super) struct Waiter {
    pub token: u32,
    pub deferred: js::Deferred,
    pub bufs: Vec<js::Ref>,
    pub wait: Wait,
}

/// A waiter taken off its queue with what its syscall returned, to be settled.
pub(super) type Ran = (Waiter, Result<Done, Errno>);

impl Waiter {
    /// Tries the operation on `fd` (the caller's fd, or the watcher's dup of it).
    ///
    /// # Safety
    /// JS thread of `env`, inside a handle scope.
    pub unsafe fn run(&self, env: Env, fd: RawFd) -> nix::Result<Done> {
        // SAFETY: refs are live until the waiter is dropped; values are read in this turn.
        let bufs: Bufs = self
            .bufs
            .iter()
            .map(|r| unsafe { js::bytes(env, r.get(env)) })
            .collect();
        // SAFETY: the buffers were just fetched in this turn.
        unsafe {
            match &self.wait {
                Wait::Accept { flags, .. } => io::attempt(fd, &Op::Accept { flags: *flags }, &bufs),
                Wait::Recv(max_fds) => io::attempt(fd, &Op::Recv { max_fds: *max_fds }, &bufs),
                Wait::Send(fds, groups) => {
                    let raw: SmallVec<[RawFd; 8]> = fds.iter().map(|f| f.as_raw_fd()).collect();
                    io::attempt(fd, &Op::Send { fds: &raw, groups }, &bufs)
                }
                Wait::RecvMany(how) => io::attempt(fd, &Op::RecvMany(*how), &bufs),
                Wait::SendMany(fds, counts) => {
                    let raw: SmallVec<[RawFd; 8]> = fds.iter().map(|f| f.as_raw_fd()).collect();
                    io::attempt(fd, &Op::SendMany { fds: &raw, counts }, &bufs)
                }
                Wait::RecvFrom { max_fds, creds } => {
                    let op = Op::RecvFrom {
                        max_fds: *max_fds,
                        creds: *creds,
                    };
                    io::attempt(fd, &op, &bufs)
                }
                Wait::SendTo(st) => {
                    let raw: SmallVec<[RawFd; 8]> = st.fds.iter().map(|f| f.as_raw_fd()).collect();
                    let op = Op::SendTo {
                        to: st.to.as_deref(),
                        fds: &raw,
                        groups: &st.groups,
                        creds: st.creds,
                    };
                    io::attempt(fd, &op, &bufs)
                }
                Wait::Ready { writes } => io::attempt(fd, &Op::Ready { writes: *writes }, &bufs),
            }
        }
    }

    pub fn syscall(&self) -> &'static str {
        match self.wait {
            Wait::Accept { .. } => "accept",
            Wait::Recv(_) => "recvmsg",
            Wait::Send(..) => "sendmsg",
            Wait::RecvMany(_) => "recvmmsg",
            Wait::SendMany(..) => "sendmmsg",
            Wait::RecvFrom { .. } => "recvmsg",
            Wait::SendTo(..) => "sendmsg",
            Wait::Ready { .. } => "poll",
        }
    }

    pub fn writes(&self) -> bool {
        match self.wait {
            Wait::Send(..) | Wait::SendMany(..) | Wait::SendTo(..) => true,
            Wait::Ready { writes } => writes,
            _ => false,
        }
    }
}

impl Reactor {
    /// Rejects a waiter that never ran with a JS value (abort reason, "socket closed").
    ///
    /// # Safety
    /// JS thread, inside a handle scope.
    pub(super) unsafe fn reject(&mut self, wt: Waiter, reason: Value) {
        let env = self.env;
        for r in wt.bufs {
            // SAFETY: JS thread of the env that made the reference.
            unsafe { r.delete(env) };
        }
        // SAFETY: as above; the deferred is consumed once.
        unsafe { wt.deferred.reject(env, reason) };
    }

    /// Settles a waiter that ran (or could not be queued) with `result`.
    ///
    /// # Safety
    /// JS thread, inside a handle scope.
    pub(super) unsafe fn settle(&mut self, w: Waiter, result: Result<Done, Errno>) {
        let env = self.env;
        let syscall = w.syscall();
        for r in w.bufs {
            // SAFETY: JS thread of the env that made the reference.
            unsafe { r.delete(env) };
        }
        // SAFETY: JS thread, handle scope open; each deferred is consumed once.
        unsafe {
            match result {
                Ok(Done::Fd(fd)) => w.deferred.resolve(env, js::int(env, fd.into_raw_fd())),
                Ok(Done::Bytes(n)) => w.deferred.resolve(env, js::int(env, n as i32)),
                Ok(
                    done @ (Done::Recv(_) | Done::RecvMany(..) | Done::SentMany(_) | Done::From(_)),
                ) => w
                    .deferred
                    .resolve(env, js::array_of(env, &done.into_items())),
                Err(e) => {
                    let args = [js::int(env, -(e as i32)), js::string(env, syscall)];
                    let err = self.make_errno.call(env, &args);
                    w.deferred.reject(env, err)
                }
            }
        }
    }
}
