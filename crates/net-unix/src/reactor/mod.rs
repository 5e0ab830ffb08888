//! Readiness on Node's own libuv loop: one `uv_poll_t` per busy socket, watching a private
//! close-on-exec dup of it, kept across waits and closed at the end of the loop turn in which
//! nothing waits any more.
//!
//! Every syscall runs on the JS thread. An operation is tried at once and waits on a watcher
//! only on `EAGAIN`; past a budget of immediate completions per loop turn it is retried on the
//! next turn instead. Operations on one fd and direction are served in call order. Cancelling
//! unlinks a waiter before any syscall ran for it, so an aborted receive consumes nothing.
//! Everything here belongs to one `napi_env` and is torn down by that env's cleanup hook
//! (worker_threads).
//!
//! - `waiter`: a queued operation and how it settles;
//! - `watcher`: the poll handles, their queues, readiness, and reaping idle ones;
//! - `turn`: the per-turn budget and the next-turn list;
//! - `reader`: a stream's persistent read, with one JS callback per read.

#![deny(unsafe_op_in_unsafe_fn)]

mod backend;
mod reader;
mod thread;
mod turn;
mod waiter;
mod watcher;

use crate::io::{self, Bufs, Done, Op};
use crate::js::{self, Env, Value};
use crate::{error, nonblock, sock, uv};
use backend::{Backend, UvLoop};
use napi::sys;
use nix::errno::Errno;
use std::collections::{HashMap, VecDeque};
use std::ffi::c_void;
use std::os::fd::{IntoRawFd, RawFd};
use std::ptr::null_mut;
use turn::Later;
use waiter::{Wait, Waiter};
use watcher::Watcher;

pub struct Reactor {
    env: Env,
    backend: Backend,
    make_errno: js::Ref,
    make_closed: js::Ref,
    watchers: HashMap<RawFd, *mut Watcher>,
    /// Watchers by id, for the thread backend's events.
    by_id: HashMap<u64, *mut Watcher>,
    /// Sockets whose waits must not keep the process alive (`setRef(fd, false)`), with the
    /// identity they had then, so a reused number is not unref'd by mistake.
    unrefd: HashMap<RawFd, (u64, u64)>,
    tokens: HashMap<u32, RawFd>,
    /// Watchers with nothing queued, closed at the end of the loop turn they went idle in
    /// (after the microtasks of their last settlement ran) unless an operation came for them
    /// first.
    idle: Vec<*mut Watcher>,
    fast_this_turn: u32,
    /// Operations that found this turn's budget spent, tried again after the next turn's timers.
    later: VecDeque<Later>,
    /// Persistent reads started so far: each one's id, so a callback that closed its socket
    /// (and maybe started another on the same number) is noticed.
    readers_started: u64,
    /// Where persistent reads go (`setReadPool`): one pool per copy of the JS facade.
    read_pools: Vec<reader::ReadPool>,
    /// The callbacks of readers whose socket was closed, to be told (`tell_closed_readers`).
    closed_readers: Vec<js::Ref>,
}

/// Where an operation goes: tried now, retried next turn, or queued on the fd's poll watcher.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Now,
    Later,
    Watcher,
}

/// The route of a new operation, so that operations on one fd and direction stay in call order
/// and the per-turn budget holds.
fn route(queued_on_watcher: bool, budget_spent: bool, queued_for_next_turn: bool) -> Route {
    if queued_on_watcher {
        Route::Watcher
    } else if budget_spent || queued_for_next_turn {
        Route::Later
    } else {
        Route::Now
    }
}

/// An operation that completed at once, as the number JS gets back: the new fd, the byte count,
/// or a negative errno. A receive leaves `[truncated, nfds, ...fds]` in `out`, which has room
/// for every fd it asked for (the caller bounds `max_fds` by it).
pub fn immediate(result: nix::Result<Done>, out: &mut [i32]) -> i32 {
    match result {
        Ok(Done::Fd(fd)) => fd.into_raw_fd(),
        Ok(Done::Bytes(n)) => n as i32,
        Ok(Done::Recv(rcv)) => rcv.write_into(out),
        Ok(Done::From(f)) => f.write_into(out),
        Ok(many @ (Done::RecvMany(..) | Done::SentMany(_))) => write_many(many, out),
        Err(e) => error::neg(e),
    }
}

/// Copies a many-message result into `out` and returns its count. The facade sizes `out` for
/// the batch it asked for (`1 + n × (3 + maxFds)`); were it short, the fds would be closed (by
/// dropping them) rather than leaked, and the call fail with `ENOBUFS`.
fn write_many(done: Done, out: &mut [i32]) -> i32 {
    let need = match &done {
        Done::RecvMany(rs, from) => Done::many_len(rs, *from),
        _ => 2,
    };
    if out.len() < need {
        return error::neg(Errno::ENOBUFS);
    }
    let items = done.into_items();
    out[..items.len()].copy_from_slice(&items);
    items[0]
}

impl Reactor {
    /// Creates this env's reactor, stored as its instance data and torn down by its cleanup hook.
    /// With `schedule` (a JS function calling `setImmediate(turn)`), readiness comes from a
    /// poll thread of ours (runtimes without a real libuv); without it, from Node's loop.
    ///
    /// # Safety
    /// Called on the env's JS thread with valid function values.
    pub unsafe fn install(
        env: Env,
        make_errno: Value,
        make_closed: Value,
        schedule: Option<Value>,
    ) -> Result<(), &'static str> {
        // SAFETY (both): JS thread of env.
        let backend = match schedule {
            None => Backend::Uv(unsafe { UvLoop::new(env) }?),
            Some(f) => Backend::Thread(unsafe {
                thread::Poller::start(env, f, Some(backend::on_thread_event))
            }?),
        };
        // SAFETY: JS thread of env.
        let r = Box::into_raw(Box::new(Reactor {
            env,
            backend,
            make_errno: unsafe { js::Ref::new(env, make_errno) },
            make_closed: unsafe { js::Ref::new(env, make_closed) },
            watchers: HashMap::new(),
            by_id: HashMap::new(),
            unrefd: HashMap::new(),
            tokens: HashMap::new(),
            idle: Vec::new(),
            fast_this_turn: 0,
            later: VecDeque::new(),
            readers_started: 0,
            read_pools: Vec::new(),
            closed_readers: Vec::new(),
        }));
        // SAFETY: `r` is the reactor's final address; JS thread of env.
        unsafe {
            if let Backend::Uv(l) = &(*r).backend {
                l.link(r);
            }
            sys::napi_set_instance_data(env, r.cast(), None, null_mut());
            sys::napi_add_env_cleanup_hook(env, Some(teardown), r.cast());
        }
        Ok(())
    }

    /// This env's reactor, if `install` ran.
    ///
    /// # Safety
    /// Called on the env's JS thread; the pointer is valid until the env's cleanup hook.
    pub unsafe fn of(env: Env) -> *mut Reactor {
        let mut data = null_mut();
        // SAFETY: JS thread of env.
        unsafe { sys::napi_get_instance_data(env, &mut data) };
        data.cast()
    }

    /// Starts an operation. Tried at once when nothing is queued ahead of it and the per-turn
    /// budget allows: then the result comes back as a number (see [`immediate`]) and no promise
    /// is made. Otherwise it is deferred to the next turn or queued behind a poll watcher (see
    /// [`route`]) and a promise is returned.
    ///
    /// # Safety
    /// `this` is a live reactor; `buf_values` are typed arrays of the current call; `out` is
    /// the memory of a typed array of the current call.
    pub unsafe fn submit(
        this: *mut Reactor,
        fd: RawFd,
        token: u32,
        op: Op,
        buf_values: &[Value],
        out: &mut [i32],
    ) -> Value {
        // SAFETY: the caller passes a live reactor, used only on its JS thread.
        let r = unsafe { &mut *this };
        let env = r.env;
        // accept4 has no MSG_DONTWAIT: the listener is non-blocking while an accept of ours
        // runs or waits, and given back as found after.
        let hold = match op {
            Op::Accept { .. } => match nonblock::Hold::acquire(fd) {
                Ok(h) => Some(h),
                // SAFETY: JS thread.
                Err(e) => return unsafe { js::int(env, error::neg(e)) },
            },
            _ => None,
        };
        let mut route = r.route_of(fd, op.writes());
        if route == Route::Now {
            // SAFETY: the values are typed arrays of this call, read in this turn.
            let bufs: Bufs = buf_values
                .iter()
                .map(|v| unsafe { js::bytes(env, *v) })
                .collect();
            // SAFETY: as above.
            match unsafe { io::attempt(fd, &op, &bufs) } {
                Err(Errno::EAGAIN) => route = Route::Watcher,
                result => {
                    r.count_fast();
                    // SAFETY: JS thread.
                    return unsafe { js::int(env, immediate(result, out)) };
                }
            }
        }
        let wait = match op {
            Op::Accept { flags } => Wait::Accept {
                flags,
                _nonblocking: hold.expect("held for accept"),
            },
            Op::Recv { max_fds } => Wait::Recv(max_fds),
            Op::Send { fds, groups } => match dup_all(fds) {
                Ok(dups) => Wait::Send(dups, groups.to_vec()),
                // SAFETY: JS thread.
                Err(e) => return unsafe { js::int(env, error::neg(e)) },
            },
            Op::RecvMany(how) => Wait::RecvMany(how),
            Op::RecvFrom { max_fds, creds } => Wait::RecvFrom { max_fds, creds },
            Op::Ready { writes } => Wait::Ready { writes },
            Op::SendTo {
                to,
                fds,
                groups,
                creds,
            } => match dup_all(fds) {
                Ok(dups) => Wait::SendTo(Box::new(waiter::SendTo {
                    to: to.map(<[u8]>::to_vec),
                    fds: dups,
                    groups: groups.to_vec(),
                    creds,
                })),
                // SAFETY: JS thread.
                Err(e) => return unsafe { js::int(env, error::neg(e)) },
            },
            Op::SendMany { fds, counts } => match dup_all(fds) {
                Ok(dups) => Wait::SendMany(dups, counts.to_vec()),
                // SAFETY: JS thread.
                Err(e) => return unsafe { js::int(env, error::neg(e)) },
            },
        };
        // SAFETY: JS thread; the values belong to this env.
        let (deferred, promise) = unsafe { js::Deferred::new(env) };
        let bufs = buf_values
            .iter()
            .map(|v| unsafe { js::Ref::new(env, *v) })
            .collect();
        let waiter = Waiter {
            token,
            deferred,
            bufs,
            wait,
        };
        // SAFETY: JS thread, live reactor.
        unsafe {
            let queued = if route == Route::Later {
                r.defer(fd, waiter)
            } else {
                r.enqueue(fd, waiter)
            };
            if let Err((e, w)) = queued {
                r.settle(w, Err(e));
            }
        }
        promise
    }

    /// See [`route`].
    fn route_of(&self, fd: RawFd, writes: bool) -> Route {
        // SAFETY: watchers in the map are live.
        let on_watcher = self
            .watchers
            .get(&fd)
            .is_some_and(|w| unsafe { !(**w).queue(writes).is_empty() });
        let next_turn = self
            .later
            .iter()
            .any(|l| l.fd == fd && l.waiter.writes() == writes);
        route(on_watcher, self.budget_spent(), next_turn)
    }

    /// Removes the waiter with `token` and rejects it with `reason`. False if it already settled.
    ///
    /// # Safety
    /// JS thread, live reactor.
    pub unsafe fn cancel(&mut self, token: u32, reason: Value) -> bool {
        let Some(fd) = self.tokens.remove(&token) else {
            return false;
        };
        if let Some(i) = self.later.iter().position(|l| l.waiter.token == token) {
            let l = self.later.remove(i).expect("position is in range");
            // SAFETY: JS thread.
            unsafe { self.reject(l.waiter, reason) };
            return true;
        }
        let Some(&w) = self.watchers.get(&fd) else {
            return false;
        };
        for writes in [false, true] {
            // SAFETY: watchers in the map are live.
            let q = unsafe { (*w).queue(writes) };
            if let Some(i) = q.iter().position(|x| x.token == token) {
                let wt = q.remove(i).expect("position is in range");
                // SAFETY: JS thread, live watcher.
                unsafe {
                    self.reject(wt, reason);
                    self.rearm(w, false);
                }
                return true;
            }
        }
        false
    }

    /// Rejects everything pending on `fd` with the "socket closed" error, closes its watcher,
    /// then closes `fd`.
    ///
    /// # Safety
    /// JS thread, live reactor.
    pub unsafe fn close(&mut self, fd: RawFd) -> i32 {
        // SAFETY: as this function's contract.
        unsafe { self.forget(fd) };
        error::to_js(sock::close(fd).map(|_| 0))
    }

    /// What closing `fd` ends for the reactor, without the `close` itself: waits on it reject
    /// with `ERR_SOCKET_CLOSED`, its watcher closes, its unref is dropped.
    ///
    /// # Safety
    /// JS thread, live reactor.
    pub unsafe fn forget(&mut self, fd: RawFd) {
        self.unrefd.remove(&fd);
        let mut gone: Vec<Waiter> = self.take_later(fd);
        if let Some(&w) = self.watchers.get(&fd) {
            // SAFETY: watchers in the map are live.
            gone.extend(unsafe { self.take_all(w) });
        }
        for wt in gone {
            // SAFETY: JS thread.
            unsafe {
                let err = self.make_closed.call(self.env, &[]);
                self.reject(wt, err);
            }
        }
    }

    /// Whether waits on `fd` keep the process alive (they do unless turned off, as a pending
    /// `net` read does until `unref()`); 0 or a negative errno.
    ///
    /// # Safety
    /// JS thread, live reactor.
    pub unsafe fn set_ref(&mut self, fd: RawFd, on: bool) -> i32 {
        if on {
            self.unrefd.remove(&fd);
        } else {
            match sock::identity(fd) {
                Ok(id) => {
                    self.unrefd.insert(fd, id);
                }
                Err(e) => return error::neg(e),
            }
        }
        if let Some(&w) = self.watchers.get(&fd) {
            // SAFETY: watchers in the map are live.
            unsafe { self.sync_hold(w) };
        }
        0
    }

    /// Operations waiting on `fd`.
    pub fn pending(&self, fd: RawFd) -> u32 {
        // SAFETY: watchers in the map are live.
        let waiting = self
            .watchers
            .get(&fd)
            .map_or(0, |w| unsafe { (**w).readers.len() + (**w).writers.len() });
        (waiting + self.later.iter().filter(|l| l.fd == fd).count()) as u32
    }
}

/// Close-on-exec dups of the fds a waiting send will carry (the caller may close its own).
fn dup_all(fds: &[RawFd]) -> nix::Result<Vec<std::os::fd::OwnedFd>> {
    fds.iter().map(|f| sock::dup_cloexec(*f)).collect()
}

unsafe extern "C" fn on_check_closed(handle: *mut c_void) {
    // SAFETY: libuv is done with the handle; it was allocated as a check handle.
    unsafe { uv::get().expect("loaded").free_handle(handle, uv::UV_CHECK) };
}

unsafe extern "C" fn on_idle_closed(handle: *mut c_void) {
    // SAFETY: libuv is done with the handle; it was allocated as an idle handle.
    unsafe { uv::get().expect("loaded").free_handle(handle, uv::UV_IDLE) };
}

/// Env cleanup hook: close every handle so the loop can end (a Worker aborts on open handles).
/// Promises are not settled: no JS can run any more.
unsafe extern "C" fn teardown(data: *mut c_void) {
    // SAFETY: `data` is the reactor `install` boxed; the hook runs once, on the JS thread.
    let mut r = unsafe { Box::from_raw(data as *mut Reactor) };
    let watchers: Vec<*mut Watcher> = r.watchers.values().copied().collect();
    for w in watchers {
        // SAFETY: live watchers, each closed once; their waiters are dropped unsettled.
        unsafe { r.backend_close(w) };
    }
    match &mut r.backend {
        // SAFETY: the reactor's own handles, closed once; what `install` allocated in the env
        // is released (valgrind counted it as lost at exit).
        Backend::Uv(l) => unsafe {
            (l.uv.close)(l.turn_check, on_check_closed);
            (l.uv.close)(l.next_turn, on_idle_closed);
            (l.uv.close)(l.reap, on_check_closed);
            sys::napi_async_destroy(r.env, l.async_ctx);
        },
        // No Node-API call that makes a handle here: some runtimes run cleanup hooks without
        // a handle scope (deleting a reference makes none).
        Backend::Thread(p) => p.shutdown(),
    }
    let Reactor {
        env,
        backend,
        make_errno,
        make_closed,
        read_pools,
        closed_readers,
        ..
    } = *r;
    // SAFETY: JS thread of env, during its cleanup.
    unsafe {
        match backend {
            Backend::Uv(l) => l.resource.delete(env),
            Backend::Thread(p) => p.schedule.delete(env),
        }
        for value in [make_errno, make_closed] {
            value.delete(env);
        }
        for p in read_pools {
            p.delete(env);
        }
        for f in closed_readers {
            f.delete(env);
        }
        sys::napi_set_instance_data(env, null_mut(), None, null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_work_on_the_watcher_comes_first() {
        for budget in [false, true] {
            for next in [false, true] {
                assert_eq!(route(true, budget, next), Route::Watcher);
            }
        }
    }

    #[test]
    fn spent_budget_or_earlier_deferral_waits_for_the_next_turn() {
        assert_eq!(route(false, true, false), Route::Later);
        assert_eq!(route(false, false, true), Route::Later);
        assert_eq!(route(false, false, false), Route::Now);
    }
}
