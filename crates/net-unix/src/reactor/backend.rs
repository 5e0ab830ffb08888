//! Where readiness and ends of turns come from: Node's own libuv loop (`uv_poll`, check and
//! idle handles), or, where libuv is not real for addons, our poll thread (`thread`). The
//! reactor asks through the methods here and never names either.

use super::thread::{self, Poller};
use super::watcher::{self, Watcher};
use super::Reactor;
use crate::js::{self, Env, Value};
use crate::uv;
use napi::sys;
use nix::errno::Errno;
use std::ffi::{c_int, c_void};
use std::os::fd::RawFd;
use std::ptr::null_mut;

pub(super) enum Backend {
    Uv(UvLoop),
    Thread(Poller),
}

/// Node's loop: the handles the reactor owns on it.
pub(super) struct UvLoop {
    pub uv: &'static uv::Uv,
    uv_loop: *mut c_void,
    pub async_ctx: sys::napi_async_context,
    pub resource: js::Ref,
    /// Resets the per-turn budget at the end of a turn with immediate completions.
    pub turn_check: *mut c_void,
    /// Retries the next-turn list after the next turn's timers (active while it holds any).
    pub next_turn: *mut c_void,
    /// Closes watchers still idle at the end of the turn they went idle in.
    pub reap: *mut c_void,
}

/// A watcher's registration.
pub(super) enum Handle {
    Uv(*mut c_void),
    Thread(u64),
}

impl UvLoop {
    /// # Safety
    /// JS thread of `env`.
    pub unsafe fn new(env: Env) -> Result<UvLoop, &'static str> {
        let uv = uv::get().ok_or("libuv is not available in this runtime")?;
        let mut uv_loop: *mut sys::uv_loop_s = null_mut();
        // SAFETY: JS thread of env.
        if unsafe { sys::napi_get_uv_event_loop(env, &mut uv_loop) } != sys::Status::napi_ok
            || uv_loop.is_null()
        {
            return Err("no libuv event loop in this runtime");
        }
        let uv_loop: *mut c_void = uv_loop.cast();
        // SAFETY: JS thread of env; each handle is allocated for its kind and initialised on
        // this loop before any use; closed in `teardown`.
        unsafe {
            let resource = js::object(env);
            let mut async_ctx = null_mut();
            if sys::napi_async_init(env, resource, js::string(env, "net-unix"), &mut async_ctx)
                != sys::Status::napi_ok
            {
                return Err("napi_async_init failed");
            }
            let turn_check = uv.alloc_handle(uv::UV_CHECK);
            (uv.check_init)(uv_loop, turn_check);
            (uv.unref)(turn_check);
            let next_turn = uv.alloc_handle(uv::UV_IDLE);
            (uv.idle_init)(uv_loop, next_turn);
            let reap = uv.alloc_handle(uv::UV_CHECK);
            (uv.check_init)(uv_loop, reap);
            (uv.unref)(reap);
            Ok(UvLoop {
                uv,
                uv_loop,
                async_ctx,
                resource: js::Ref::new(env, resource),
                turn_check,
                next_turn,
                reap,
            })
        }
    }

    /// Points the loop's own handles at the reactor, once it has its final address.
    ///
    /// # Safety
    /// The handles are initialised; `r` outlives them.
    pub unsafe fn link(&self, r: *mut Reactor) {
        for h in [self.turn_check, self.next_turn, self.reap] {
            // SAFETY: as the function's contract.
            unsafe { (self.uv.handle_set_data)(h, r.cast()) };
        }
    }
}

/// The reactor a handle of its own points to.
///
/// # Safety
/// `handle` is one of the reactor's uv handles (its data is the reactor).
pub(super) unsafe fn reactor_of(handle: *mut c_void) -> *mut Reactor {
    // SAFETY: libuv is loaded (the handle exists); data was set by `link`.
    unsafe { (uv::get().expect("loaded").handle_get_data)(handle) as *mut Reactor }
}

impl Reactor {
    /// Registers a watcher's dup with the backend (disarmed).
    ///
    /// # Safety
    /// JS thread.
    /// Also says whether the new registration already holds the process (a libuv handle is
    /// ref'd from birth; the thread backend counts only what it is told).
    pub(super) unsafe fn backend_watch(&mut self, fd: RawFd) -> Result<(Handle, bool), Errno> {
        match &mut self.backend {
            Backend::Uv(l) => {
                let handle = l.uv.alloc_handle(uv::UV_POLL);
                // SAFETY: a fresh handle of the right size, initialised once on this loop.
                let rc = unsafe { (l.uv.poll_init)(l.uv_loop, handle, fd) };
                if rc < 0 {
                    // Never hand a handle whose init failed back to libuv.
                    // SAFETY: libuv never took the handle.
                    unsafe { l.uv.free_handle(handle, uv::UV_POLL) };
                    return Err(Errno::from_raw(-rc));
                }
                Ok((Handle::Uv(handle), true))
            }
            Backend::Thread(p) => p.add(fd).map(|id| (Handle::Thread(id), false)),
        }
    }

    /// Links a new watcher to its handle (the backend finds it from events by this).
    ///
    /// # Safety
    /// JS thread; `w` is live.
    pub(super) unsafe fn backend_link(&mut self, w: *mut Watcher) {
        // SAFETY: as the function's contract.
        match unsafe { &(*w).handle } {
            Handle::Uv(h) => {
                if let Backend::Uv(l) = &self.backend {
                    // SAFETY: an initialised handle; its data is the watcher until closed.
                    unsafe { (l.uv.handle_set_data)(*h, w.cast()) };
                }
            }
            Handle::Thread(id) => {
                self.by_id.insert(*id, w);
            }
        }
    }

    /// Asks for `events` on the watcher (0: none); negative errno on failure.
    ///
    /// # Safety
    /// JS thread; `w` is live.
    pub(super) unsafe fn backend_arm(
        &mut self,
        w: *mut Watcher,
        events: c_int,
    ) -> Result<(), Errno> {
        // SAFETY: as the function's contract.
        let wt = unsafe { &mut *w };
        match (&mut self.backend, &wt.handle) {
            (Backend::Uv(l), Handle::Uv(h)) => {
                // SAFETY: a live, initialised poll handle.
                let rc = unsafe {
                    if events == 0 {
                        (l.uv.poll_stop)(*h)
                    } else {
                        (l.uv.poll_start)(*h, events, watcher::on_ready)
                    }
                };
                if rc < 0 {
                    Err(Errno::from_raw(-rc))
                } else {
                    Ok(())
                }
            }
            (Backend::Thread(p), Handle::Thread(id)) => p.arm(wt.poll_fd_raw(), *id, events),
            _ => Err(Errno::EINVAL),
        }
    }

    /// Makes the watcher keep the process alive (`true`) or not, as a pending `net` read does
    /// or does not; see [`Reactor::sync_hold`].
    ///
    /// # Safety
    /// JS thread; `w` is live.
    unsafe fn backend_hold(&mut self, w: *mut Watcher, hold: bool) {
        let env = self.env;
        // SAFETY: as the function's contract.
        match (&mut self.backend, unsafe { &(*w).handle }) {
            // SAFETY: a live handle.
            (Backend::Uv(l), Handle::Uv(h)) => unsafe {
                if hold {
                    (l.uv.ref_)(*h)
                } else {
                    (l.uv.unref)(*h)
                }
            },
            // SAFETY: JS thread.
            (Backend::Thread(p), _) => unsafe { p.set_busy(env, hold) },
            _ => {}
        }
    }

    /// Brings the watcher's hold on the process in line with its state: only a watcher with
    /// waiters holds it, unless its socket was `setRef(fd, false)`'d (an unref'd stream).
    ///
    /// # Safety
    /// JS thread; `w` is live.
    pub(super) unsafe fn sync_hold(&mut self, w: *mut Watcher) {
        // SAFETY: as the function's contract.
        let wt = unsafe { &mut *w };
        let unrefd = self.unrefd.get(&wt.user_fd) == Some(&wt.ident);
        let waiting = wt.wanted() != 0;
        let want = waiting && !wt.idle && !unrefd;
        if want != wt.holds {
            wt.holds = want;
            // SAFETY: as above.
            unsafe { self.backend_hold(w, want) };
        }
    }

    /// Closes the watcher's registration and dup; its memory goes now (thread) or in libuv's
    /// close callback (uv). `w` must not be used after.
    ///
    /// # Safety
    /// JS thread; `w` is live and unlinked from the reactor's maps and lists.
    pub(super) unsafe fn backend_close(&mut self, w: *mut Watcher) {
        // SAFETY: as the function's contract.
        let wt = unsafe { &mut *w };
        match (&mut self.backend, &wt.handle) {
            (Backend::Uv(l), Handle::Uv(h)) => {
                // SAFETY: the handle is initialised and closed once.
                unsafe { (l.uv.close)(*h, watcher::on_closed) };
                wt.poll_fd = None;
            }
            (Backend::Thread(p), Handle::Thread(id)) => {
                p.remove(wt.poll_fd_raw());
                self.by_id.remove(id);
                // SAFETY: nothing else points at the watcher any more.
                drop(unsafe { Box::from_raw(w) });
            }
            _ => {}
        }
    }

    /// The per-turn budget was first used this turn: reset it at the turn's end.
    pub(super) fn want_turn_reset(&mut self) {
        let env = self.env;
        match &mut self.backend {
            // SAFETY: the reactor's own check handle.
            Backend::Uv(l) => unsafe {
                (l.uv.check_start)(l.turn_check, super::turn::on_turn);
            },
            // SAFETY: JS thread (every reactor call is on it).
            Backend::Thread(p) => unsafe { p.schedule_turn(env) },
        };
    }

    /// The next-turn list became non-empty (`true`) or empty.
    pub(super) fn want_next_turn(&mut self, on: bool) {
        let env = self.env;
        match &mut self.backend {
            // SAFETY: the reactor's own idle handle.
            Backend::Uv(l) => unsafe {
                if on {
                    (l.uv.idle_start)(l.next_turn, super::turn::on_next_turn);
                } else {
                    (l.uv.idle_stop)(l.next_turn);
                }
            },
            // SAFETY: JS thread.
            Backend::Thread(p) if on => unsafe { p.schedule_turn(env) },
            Backend::Thread(_) => {}
        }
    }

    /// Watchers went idle (`true`), or none is left to reap.
    pub(super) fn want_reap(&mut self, on: bool) {
        let env = self.env;
        match &mut self.backend {
            // SAFETY: the reactor's own check handle.
            Backend::Uv(l) => unsafe {
                if on {
                    (l.uv.check_start)(l.reap, watcher::on_reap);
                } else {
                    (l.uv.check_stop)(l.reap);
                }
            },
            // SAFETY: JS thread.
            Backend::Thread(p) if on => unsafe { p.schedule_turn(env) },
            Backend::Thread(_) => {}
        }
    }

    /// Runs `f` as a callback from the loop: inside a callback scope on Node (so microtasks,
    /// async hooks and uncaught-exception routing behave as for Node's own I/O); the thread
    /// backend is called by the runtime with its own scope already.
    ///
    /// # Safety
    /// `this` is live; called from the loop on the JS thread, no borrow of the reactor live.
    pub(super) unsafe fn in_callback_scope(this: *mut Reactor, f: impl FnOnce(*mut Reactor)) {
        // SAFETY: as the function's contract.
        let scope = match unsafe { &(*this).backend } {
            Backend::Uv(l) => {
                Some(unsafe { js::CallbackScope::open((*this).env, &l.resource, l.async_ctx) })
            }
            Backend::Thread(_) => None,
        };
        // `f` borrows the reactor only between the JS calls it makes (a reader's callback may
        // call back into it).
        f(this);
        // Microtasks run here and may call back into the reactor: no borrow of it lives past this.
        drop(scope);
    }

    /// The thread backend's end of turn (from `setImmediate`): the budget starts again, the
    /// next-turn list is retried, idle watchers are reaped.
    ///
    /// # Safety
    /// JS thread, live reactor.
    pub unsafe fn turn(&mut self) {
        if let Backend::Thread(p) = &mut self.backend {
            p.turn_came();
        }
        self.fast_this_turn = 0;
        // SAFETY: as the function's contract.
        unsafe {
            if !self.later.is_empty() {
                self.retry_later();
            }
            if !self.idle.is_empty() {
                self.reap();
            }
        }
    }
}

/// The thread backend's events, on the JS thread: `data` packs the watcher id and events.
pub(super) unsafe extern "C" fn on_thread_event(
    env: Env,
    _js_cb: Value,
    _context: *mut c_void,
    data: *mut c_void,
) {
    if env.is_null() {
        return; // the threadsafe function is being torn down
    }
    // SAFETY: the runtime calls this on the env's JS thread.
    let r = unsafe { Reactor::of(env) };
    if r.is_null() {
        return;
    }
    let (id, events) = thread::unpack(data);
    // SAFETY: the env's live reactor.
    let Some(&w) = (unsafe { (*r).by_id.get(&id) }) else {
        return; // closed while the event was on its way
    };
    // SAFETY: a live watcher of a live reactor; one-shot: the report disarmed it.
    unsafe {
        (*w).armed = 0;
        Reactor::readiness(r, w, 0, events);
    }
}
