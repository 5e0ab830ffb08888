//! A stream's persistent read, as libuv's `uv_read_start` is for `net`: while it is on, the
//! socket stays watched, and each readiness is read at once and handed to one JS callback: no
//! promise, no identity check and no re-registration per read. The callback answers `true` to
//! read on, anything else to stop (backpressure, EOF, an error).
//!
//! The readers of one copy of the JS facade read into one pool (`ReadPool`), from the offset JS
//! keeps in it, and leave their results in one array: reads and their callbacks never
//! interleave, and a socket that only waits holds no buffer (as libuv asks for one only once data
//! is there). A second copy of the facade on the same addon (a test runner that loads modules
//! afresh per file) registers a pool of its own.
//!
//! A read is one `recvmsg` into the pool's rest until a read delivers fds, then, on a reader
//! started with a slot size, a `recvmmsg` of up to `MAX_BATCH` messages in slots of that size
//! (Linux ends a stream read at each message that carries fds). Both leave the batch layout. A
//! read that leaves the socket drained (fewer bytes or messages than there was room for) waits
//! for the next readiness instead of paying a read that says `EAGAIN`.
//!
//! A reader with no slot size reads a message-framed (seqpacket) socket, where a `recvmsg` into
//! too small a buffer loses the message's rest for good: it peeks at the next message's length
//! first (`MSG_PEEK | MSG_TRUNC`), and when the pool's rest is shorter, asks JS for a pool with
//! room for it (`-EMSGSIZE`, the length in `out[0]`) instead of reading.

use super::watcher::Watcher;
use super::Reactor;
use crate::io::{self, Done, Op};
use crate::js::{self, Env, Value};
use crate::mmsg::{Many, MAX_BATCH};
use crate::msg::MAX_FDS;
use crate::{error, uv};
use nix::errno::Errno;
use nix::sys::socket::{recv, MsgFlags};
use std::ffi::c_int;
use std::os::fd::RawFd;

/// The next message's whole length, left queued (its fds stay in the kernel: no control buffer).
fn peek_flags() -> MsgFlags {
    MsgFlags::MSG_PEEK | MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT
}

/// Reads per readiness (libuv's bound for a stream), so one busy socket cannot starve the loop.
const READS_PER_READY: usize = 32;

/// Where every read goes (`setReadPool`): `pool[at[0]..]`, the result in `out`.
pub(super) struct ReadPool {
    pool: js::Ref,
    at: js::Ref,
    out: js::Ref,
}

impl ReadPool {
    /// # Safety
    /// JS thread of `env`, which made the references.
    pub unsafe fn delete(self, env: Env) {
        for r in [self.pool, self.at, self.out] {
            // SAFETY: as the function's contract.
            unsafe { r.delete(env) };
        }
    }
}

pub(super) struct Reader {
    id: u64,
    /// Its pool, an index into `Reactor::read_pools`.
    pool: usize,
    on_read: js::Ref,
    /// Slot size of batched reads; 0: a seqpacket socket, never batched (a slot would cut a
    /// record) and each message read whole (see the module docs).
    slot: usize,
    /// The last read delivered fds: the next one is batched.
    batch: bool,
}

/// One read's result as JS gets it (the message count or a negative errno) and whether the
/// socket is very likely drained.
struct Outcome {
    n: i32,
    drained: bool,
}

impl Reader {
    /// The callback: to tell it that its socket was closed, or to delete when it stops.
    pub fn into_callback(self) -> js::Ref {
        self.on_read
    }

    /// One read of `fd` into the pool, its result written to the pool's `out` in the layout of
    /// [`Done::into_items`]; `None` when there was nothing to read.
    ///
    /// # Safety
    /// JS thread of `env`, inside a handle scope.
    unsafe fn read(&mut self, env: Env, fd: RawFd, to: &ReadPool) -> Option<Outcome> {
        // SAFETY: as the function's contract; the arrays are used only during this call.
        let (pool, at, out) = unsafe {
            (
                js::bytes(env, to.pool.get(env)),
                js::i32s_mut(env, to.at.get(env)),
                js::i32s_mut(env, to.out.get(env)),
            )
        };
        let at = at.first().map_or(usize::MAX, |&a| a as usize);
        let buf = if at < pool.1 {
            // SAFETY: `at` is inside the pool's memory.
            (unsafe { pool.0.add(at) }, pool.1 - at)
        } else {
            (std::ptr::null_mut(), 0)
        };
        let len = buf.1;
        if len == 0 {
            // A detached pool, or no room left in it: nothing to read into.
            return Some(Outcome {
                n: error::neg(Errno::ENOBUFS),
                drained: true,
            });
        }
        if self.slot == 0 {
            // An error here is the read's own too: the `recvmsg` below reports it.
            match error::retry(|| recv(fd, &mut [], peek_flags())) {
                Err(Errno::EAGAIN) => return None,
                Ok(need) if need > len && !out.is_empty() => {
                    out[0] = i32::try_from(need).unwrap_or(i32::MAX);
                    return Some(Outcome {
                        n: error::neg(Errno::EMSGSIZE),
                        drained: false,
                    });
                }
                _ => {}
            }
        }
        let batched = self.batch && self.slot > 0 && len >= 2 * self.slot;
        let op = if batched {
            Op::RecvMany(Many {
                slot: self.slot,
                max_fds: MAX_FDS,
                from: false,
                creds: false,
            })
        } else {
            Op::Recv { max_fds: MAX_FDS }
        };
        // SAFETY: the buffer was fetched in this turn and is not used past the call.
        let outcome = match unsafe { io::attempt(fd, &op, &[buf]) } {
            Err(Errno::EAGAIN) => return None,
            // One message, written straight into the batch layout with no allocation.
            Ok(Done::Recv(rcv)) if out.len() > 4 => {
                let fds = !rcv.fds.is_empty();
                self.batch = fds;
                let drained = !fds && rcv.bytes < len;
                out[0] = 1;
                out[1] = rcv.write_into(&mut out[2..]);
                Outcome { n: 1, drained }
            }
            Ok(Done::RecvMany(rs, from)) => {
                self.batch = rs.iter().any(|m| !m.rcv.fds.is_empty());
                let drained = rs.len() < (len / self.slot).min(MAX_BATCH);
                Outcome {
                    n: super::immediate(Ok(Done::RecvMany(rs, from)), out),
                    drained,
                }
            }
            Ok(_) => Outcome {
                // `out` cannot hold a message: its fds are closed (dropped).
                n: error::neg(Errno::ENOBUFS),
                drained: true,
            },
            Err(e) => Outcome {
                n: error::neg(e),
                drained: true,
            },
        };
        Some(outcome)
    }
}

impl Reactor {
    /// Makes `pool[at[0]..]` where the reads of pool `id` go from now on, their results in
    /// `out`; a new pool when `id` is not one. Returns the pool's id.
    ///
    /// # Safety
    /// JS thread, live reactor; the values belong to the current call.
    pub unsafe fn set_read_pool(&mut self, id: i32, pool: Value, at: Value, out: Value) -> i32 {
        let env = self.env;
        // SAFETY: as this function's contract.
        let new = unsafe {
            ReadPool {
                pool: js::Ref::new(env, pool),
                at: js::Ref::new(env, at),
                out: js::Ref::new(env, out),
            }
        };
        match usize::try_from(id)
            .ok()
            .filter(|&i| i < self.read_pools.len())
        {
            Some(i) => {
                // SAFETY: JS thread; references of this env.
                unsafe { std::mem::replace(&mut self.read_pools[i], new).delete(env) };
                id
            }
            None => {
                self.read_pools.push(new);
                self.read_pools.len() as i32 - 1
            }
        }
    }

    /// Starts the persistent read of `fd` into read pool `pool` (see the module docs):
    /// `on_read(n)` gets each read's message count (or a negative errno), the messages in the
    /// pool's `out`, and returns whether to read on. 0, or a negative errno (`EALREADY` when one
    /// is on already, `EINVAL` for a pool that is not one).
    ///
    /// # Safety
    /// JS thread, live reactor; the values belong to the current call.
    pub unsafe fn read_start(
        &mut self,
        fd: RawFd,
        pool: usize,
        slot: usize,
        on_read: Value,
    ) -> i32 {
        let env = self.env;
        if pool >= self.read_pools.len() {
            return error::neg(Errno::EINVAL);
        }
        // SAFETY: as this function's contract.
        let w = match unsafe { self.watcher_for(fd) } {
            Ok(w) => w,
            Err(e) => return error::neg(e),
        };
        // SAFETY: just found or made, so live.
        let wt = unsafe { &mut *w };
        if wt.reader.is_some() {
            return error::neg(Errno::EALREADY);
        }
        self.readers_started += 1;
        // SAFETY: JS thread; values of the current call.
        wt.reader = Some(unsafe {
            Reader {
                id: self.readers_started,
                pool,
                on_read: js::Ref::new(env, on_read),
                slot,
                batch: false,
            }
        });
        // SAFETY: a live watcher.
        unsafe { self.rearm(w, false) };
        0
    }

    /// The reader `id` of the watcher `w` of `fd`, if both are still there (a callback may have
    /// closed the socket, and with it the watcher).
    fn reader_of<'a>(&self, w: *mut Watcher, fd: RawFd, id: u64) -> Option<&'a mut Reader> {
        if self.watchers.get(&fd) != Some(&w) {
            return None;
        }
        // SAFETY: in the map, so live; the reference is dropped before any JS runs.
        unsafe { (*w).reader.as_mut().filter(|rd| rd.id == id) }
    }

    /// Readiness for one watcher, from either backend: its queued operations, then its reader.
    ///
    /// # Safety
    /// JS thread, called from the loop; `this` and `w` are live.
    pub(super) unsafe fn readiness(
        this: *mut Reactor,
        w: *mut Watcher,
        status: c_int,
        events: c_int,
    ) {
        // SAFETY: as the function's contract.
        let (fd, reader) = unsafe {
            let wt = &*w;
            let readable = events & uv::READABLE != 0 || status < 0;
            (
                wt.user_fd,
                wt.reader.as_ref().filter(|_| readable).map(|rd| rd.id),
            )
        };
        // SAFETY: as the function's contract; each borrow of the reactor ends before JS runs.
        unsafe {
            Reactor::in_callback_scope(this, |this| {
                (*this).ready(w, status, events, reader.is_none());
                if let Some(id) = reader {
                    Reactor::read_ready(this, w, fd, id);
                    let r = &mut *this;
                    if r.watchers.get(&fd) == Some(&w) {
                        r.rearm(w, status < 0);
                    }
                }
                Reactor::tell_closed_readers(this);
            })
        };
    }

    /// Serves the reader after readiness while the socket has data, the callback asks for
    /// more, and the per-readiness bound allows. An exception from the callback goes to
    /// `'uncaughtException'` and the reader stays on, as `net`'s read does.
    ///
    /// # Safety
    /// JS thread, inside a callback scope; `this` is live and not borrowed.
    unsafe fn read_ready(this: *mut Reactor, w: *mut Watcher, fd: RawFd, id: u64) {
        for _ in 0..READS_PER_READY {
            // SAFETY: no other borrow of the reactor is live.
            let r = unsafe { &mut *this };
            let env = r.env;
            let Some(rd) = r.reader_of(w, fd, id) else {
                return;
            };
            // SAFETY: the watcher is live (`reader_of`); JS thread, handle scope open.
            // `read_start` checked the index, and pools are never removed.
            let pool = &r.read_pools[rd.pool];
            let Some(outcome) = (unsafe { rd.read(env, (*w).poll_fd_raw(), pool) }) else {
                return;
            };
            // SAFETY: as above.
            let (on_read, n) = unsafe { (rd.on_read.get(env), js::int(env, outcome.n)) };
            // SAFETY: JS thread; no borrow of the reactor or watcher lives across the call.
            let answer = unsafe { js::call_catching(env, on_read, &[n]) };
            // SAFETY: no other borrow of the reactor is live.
            let r = unsafe { &mut *this };
            let more = match answer {
                // SAFETY: JS thread.
                Ok(v) => (unsafe { js::get_bool(env, v) }) == Some(true),
                Err(_) => true,
            };
            if !more && r.reader_of(w, fd, id).is_some() {
                // SAFETY: the watcher is live (`reader_of` found it).
                unsafe { r.read_stop(w) };
            }
            if let Err(e) = answer {
                // SAFETY: JS thread, no borrow live (this runs `'uncaughtException'` handlers).
                unsafe { js::fatal_exception(env, e) };
                return;
            }
            if !more || outcome.drained {
                return;
            }
        }
    }

    /// Tells each reader whose socket was closed under it (through `close`, or a reused number
    /// noticed) with `EBADF` from its read, so that nothing waits on a socket that is gone.
    ///
    /// # Safety
    /// JS thread, inside a callback scope or a call from JS; `this` is live and not borrowed.
    pub unsafe fn tell_closed_readers(this: *mut Reactor) {
        loop {
            // SAFETY: no other borrow of the reactor is live.
            let (env, f) = unsafe { ((*this).env, (*this).closed_readers.pop()) };
            let Some(f) = f else { return };
            // SAFETY: JS thread; no borrow of the reactor lives across the call.
            unsafe {
                let n = js::int(env, error::neg(Errno::EBADF));
                let answer = js::call_catching(env, f.get(env), &[n]);
                f.delete(env);
                if let Err(e) = answer {
                    js::fatal_exception(env, e);
                }
            }
        }
    }

    /// Ends the reader of `w`.
    ///
    /// # Safety
    /// JS thread; `w` is live.
    unsafe fn read_stop(&mut self, w: *mut Watcher) {
        // SAFETY: as the function's contract.
        unsafe {
            if let Some(rd) = (*w).reader.take() {
                rd.into_callback().delete(self.env);
            }
            self.rearm(w, false);
        }
    }
}
