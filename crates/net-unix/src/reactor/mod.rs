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
//! - `turn`: the per-turn budget and the next-turn list.

#![deny(unsafe_op_in_unsafe_fn)]

mod turn;
mod waiter;
mod watcher;

use crate::io::{self, Bufs, Done, Op};
use crate::js::{self, Env, Value};
use crate::{error, nonblock, sock, uv};
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
    uv: &'static uv::Uv,
    uv_loop: *mut c_void,
    async_ctx: sys::napi_async_context,
    resource: js::Ref,
    make_errno: js::Ref,
    make_closed: js::Ref,
    watchers: HashMap<RawFd, *mut Watcher>,
    tokens: HashMap<u32, RawFd>,
    /// Watchers with nothing queued, closed by `reap` (a check handle: at the end of the loop
    /// turn they went idle in, after the microtasks of their last settlement ran) unless an
    /// operation came for them first.
    idle: Vec<*mut Watcher>,
    reap: *mut c_void,
    fast_this_turn: u32,
    turn_check: *mut c_void,
    /// Operations that found this turn's budget spent, tried again after the next turn's timers
    /// by `next_turn` (an idle handle, active while any wait).
    later: VecDeque<Later>,
    next_turn: *mut c_void,
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
fn immediate(result: nix::Result<Done>, out: &mut [i32]) -> i32 {
    match result {
        Ok(Done::Fd(fd)) => fd.into_raw_fd(),
        Ok(Done::Bytes(n)) => n as i32,
        Ok(Done::Recv(rcv)) => rcv.write_into(out),
        Ok(many @ (Done::RecvMany(_) | Done::SentMany(_))) => write_many(many, out),
        Err(e) => error::neg(e),
    }
}

/// Copies a many-message result into `out` and returns its count. The facade sizes `out` for
/// the batch it asked for (`1 + n × (3 + maxFds)`); were it short, the fds would be closed (by
/// dropping them) rather than leaked, and the call fail with `ENOBUFS`.
fn write_many(done: Done, out: &mut [i32]) -> i32 {
    let need = match &done {
        Done::RecvMany(rs) => 1 + rs.iter().map(|r| 3 + r.fds.len()).sum::<usize>(),
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
    ///
    /// # Safety
    /// Called on the env's JS thread with valid function values.
    pub unsafe fn install(
        env: Env,
        make_errno: Value,
        make_closed: Value,
    ) -> Result<(), &'static str> {
        let uv = uv::get().ok_or("libuv is not available in this runtime")?;
        let mut uv_loop = null_mut();
        // SAFETY: JS thread of env.
        if unsafe { sys::napi_get_uv_event_loop(env, &mut uv_loop) } != sys::Status::napi_ok
            || uv_loop.is_null()
        {
            return Err("no libuv event loop in this runtime");
        }
        // SAFETY: JS thread of env; the handles are allocated for their kinds and initialised
        // on this loop before any use; the reactor outlives them (closed in `teardown`).
        unsafe {
            let resource = js::object(env);
            let mut async_ctx = null_mut();
            if sys::napi_async_init(env, resource, js::string(env, "net-unix"), &mut async_ctx)
                != sys::Status::napi_ok
            {
                return Err("napi_async_init failed");
            }
            let turn_check = uv.alloc_handle(uv::UV_CHECK);
            (uv.check_init)(uv_loop.cast(), turn_check);
            (uv.unref)(turn_check);
            let next_turn = uv.alloc_handle(uv::UV_IDLE);
            (uv.idle_init)(uv_loop.cast(), next_turn);
            let reap = uv.alloc_handle(uv::UV_CHECK);
            (uv.check_init)(uv_loop.cast(), reap);
            (uv.unref)(reap);
            let r = Box::into_raw(Box::new(Reactor {
                env,
                uv,
                uv_loop: uv_loop.cast(),
                async_ctx,
                resource: js::Ref::new(env, resource),
                make_errno: js::Ref::new(env, make_errno),
                make_closed: js::Ref::new(env, make_closed),
                watchers: HashMap::new(),
                tokens: HashMap::new(),
                idle: Vec::new(),
                reap,
                fast_this_turn: 0,
                turn_check,
                later: VecDeque::new(),
                next_turn,
            }));
            for h in [turn_check, next_turn, reap] {
                (uv.handle_set_data)(h, r.cast());
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
            Op::RecvMany { slot, max_fds } => Wait::RecvMany { slot, max_fds },
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
        error::to_js(sock::close(fd).map(|_| 0))
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

    /// Runs `f` inside a callback scope (see [`js::CallbackScope`]).
    ///
    /// # Safety
    /// `this` is live; called from a libuv callback on the JS thread.
    unsafe fn in_callback_scope(this: *mut Reactor, f: impl FnOnce(&mut Reactor)) {
        // SAFETY: as the function's contract.
        let scope =
            unsafe { js::CallbackScope::open((*this).env, &(*this).resource, (*this).async_ctx) };
        // SAFETY: no other borrow of the reactor is live during a libuv callback.
        f(unsafe { &mut *this });
        // Microtasks run here and may call back into the reactor: no borrow of it lives past this.
        drop(scope);
    }
}

/// Close-on-exec dups of the fds a waiting send will carry (the caller may close its own).
fn dup_all(fds: &[RawFd]) -> nix::Result<Vec<std::os::fd::OwnedFd>> {
    fds.iter().map(|f| sock::dup_cloexec(*f)).collect()
}

/// The reactor a handle of its own points to.
///
/// # Safety
/// `handle` is one of the reactor's handles (its data is the reactor).
unsafe fn reactor_of(handle: *mut c_void) -> *mut Reactor {
    // SAFETY: libuv is loaded (the handle exists); data was set in `install`.
    unsafe { (uv::get().expect("loaded").handle_get_data)(handle) as *mut Reactor }
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
    unsafe {
        let r = Box::from_raw(data as *mut Reactor);
        for w in r.watchers.values() {
            (**w).close_handle(r.uv);
        }
        (r.uv.close)(r.turn_check, on_check_closed);
        (r.uv.close)(r.next_turn, on_idle_closed);
        (r.uv.close)(r.reap, on_check_closed);
        // What `install` allocated in the env (valgrind counted them as lost at exit).
        let Reactor {
            env,
            resource,
            make_errno,
            make_closed,
            async_ctx,
            ..
        } = *r;
        for value in [resource, make_errno, make_closed] {
            value.delete(env);
        }
        sys::napi_async_destroy(env, async_ctx);
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
