//! Readiness where libuv is not real for addons (Bun stubs `uv_poll_*` with a panic; Deno's
//! `uv_poll` fires once): one epoll thread of ours per env waits, and wakes the JS thread through
//! a threadsafe function with `(watcher id, events)`. Every registration is `EPOLLONESHOT`, so
//! the thread reports each arm at most once and the JS thread re-arms what is still wanted; the
//! syscalls themselves still run on the JS thread. Ends of turns (the budget, the next-turn
//! list, reaping idle watchers) come from the runtime's `setImmediate`, through a JS function
//! the facade passes in.

use crate::js::{self, Env, Value};
use crate::uv;
use napi::sys;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::ffi::{c_int, c_void};
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::ptr::null_mut;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The epoll key of the shutdown eventfd; watcher ids start above it.
const WAKE: u64 = 0;

pub(super) struct Poller {
    epoll: Arc<Epoll>,
    wake: Arc<EventFd>,
    thread: Option<JoinHandle<()>>,
    tsfn: sys::napi_threadsafe_function,
    /// `() => setImmediate(turn)`, the facade's.
    pub schedule: js::Ref,
    turn_scheduled: bool,
    /// Watchers with waiters: while any, the threadsafe function keeps the process alive.
    busy: usize,
    next_id: u64,
}

/// `(id, events)` packed into the threadsafe function's data pointer (no allocation per event).
fn pack(id: u64, events: c_int) -> *mut c_void {
    ((id << 2) | (events as u64 & 3)) as usize as *mut c_void
}

pub(super) fn unpack(data: *mut c_void) -> (u64, c_int) {
    let v = data as usize as u64;
    (v >> 2, (v & 3) as c_int)
}

fn epoll_flags(events: c_int) -> EpollFlags {
    let mut f = EpollFlags::EPOLLONESHOT;
    if events & uv::READABLE != 0 {
        f |= EpollFlags::EPOLLIN;
    }
    if events & uv::WRITABLE != 0 {
        f |= EpollFlags::EPOLLOUT;
    }
    f
}

impl Poller {
    /// Starts the thread and the threadsafe function whose `call_js` gets each event.
    ///
    /// # Safety
    /// JS thread of `env`; `schedule` is a function.
    pub unsafe fn start(
        env: Env,
        schedule: Value,
        call_js: sys::napi_threadsafe_function_call_js,
    ) -> Result<Poller, &'static str> {
        let epoll = Arc::new(
            Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(|_| "epoll_create failed")?,
        );
        let wake = Arc::new(
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC)
                .map_err(|_| "eventfd failed")?,
        );
        epoll
            .add(wake.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE))
            .map_err(|_| "epoll_ctl failed")?;
        let mut tsfn = null_mut();
        // SAFETY: JS thread; no JS function (call_js does the work), no context.
        let st = unsafe {
            sys::napi_create_threadsafe_function(
                env,
                null_mut(),
                null_mut(),
                js::string(env, "net-unix poll"),
                0,
                1,
                null_mut(),
                None,
                null_mut(),
                call_js,
                &mut tsfn,
            )
        };
        if st != sys::Status::napi_ok {
            return Err("napi_create_threadsafe_function failed");
        }
        // SAFETY: JS thread; a live tsfn. Only busy watchers keep the process alive.
        unsafe { sys::napi_unref_threadsafe_function(env, tsfn) };
        let (ep, wk) = (epoll.clone(), wake.clone());
        let send = tsfn as usize;
        let thread = std::thread::Builder::new()
            .name("net-unix poll".into())
            .spawn(move || wait_loop(&ep, &wk, send as sys::napi_threadsafe_function))
            .map_err(|_| "could not start the poll thread")?;
        Ok(Poller {
            epoll,
            wake,
            thread: Some(thread),
            tsfn,
            // SAFETY: JS thread.
            schedule: unsafe { js::Ref::new(env, schedule) },
            turn_scheduled: false,
            busy: 0,
            next_id: WAKE + 1,
        })
    }

    /// Registers `fd` (disarmed) and returns its id.
    pub fn add(&mut self, fd: RawFd) -> Result<u64, Errno> {
        let id = self.next_id;
        self.next_id += 1;
        // SAFETY: the watcher's dup, open until `remove`.
        let b = unsafe { BorrowedFd::borrow_raw(fd) };
        self.epoll
            .add(b, EpollEvent::new(EpollFlags::EPOLLONESHOT, id))?;
        Ok(id)
    }

    /// Arms `fd` for `events` (one report), or disarms it for 0.
    pub fn arm(&mut self, fd: RawFd, id: u64, events: c_int) -> Result<(), Errno> {
        // SAFETY: the watcher's dup, open until `remove`.
        let b = unsafe { BorrowedFd::borrow_raw(fd) };
        let flags = if events == 0 {
            EpollFlags::EPOLLONESHOT
        } else {
            epoll_flags(events)
        };
        self.epoll.modify(b, &mut EpollEvent::new(flags, id))
    }

    /// Unregisters `fd` (before its dup is closed); an event already on its way finds no
    /// watcher with that id and is dropped.
    pub fn remove(&mut self, fd: RawFd) {
        // SAFETY: the watcher's dup, still open.
        let b = unsafe { BorrowedFd::borrow_raw(fd) };
        let _ = self.epoll.delete(b);
    }

    /// A watcher gained (or lost) its waiters: the first keeps the process alive, the last
    /// lets it go.
    ///
    /// # Safety
    /// JS thread of `env`.
    pub unsafe fn set_busy(&mut self, env: Env, busy: bool) {
        let before = self.busy;
        self.busy = if busy {
            before + 1
        } else {
            before.saturating_sub(1)
        };
        // SAFETY: JS thread; a live tsfn.
        unsafe {
            if before == 0 && self.busy == 1 {
                sys::napi_ref_threadsafe_function(env, self.tsfn);
            } else if before == 1 && self.busy == 0 {
                sys::napi_unref_threadsafe_function(env, self.tsfn);
            }
        }
    }

    /// Asks for one `turn` call at the runtime's next `setImmediate`.
    ///
    /// # Safety
    /// JS thread of `env`.
    pub unsafe fn schedule_turn(&mut self, env: Env) {
        if !self.turn_scheduled {
            self.turn_scheduled = true;
            // SAFETY: JS thread; `schedule` is the facade's function.
            unsafe { self.schedule.call(env, &[]) };
        }
    }

    /// The scheduled turn came.
    pub fn turn_came(&mut self) {
        self.turn_scheduled = false;
    }

    /// Stops the thread and releases the threadsafe function. No Node-API call that makes a
    /// handle: env cleanup runs without a handle scope in some runtimes.
    pub fn shutdown(&mut self) {
        let _ = self.wake.write(1);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // SAFETY: the thread that called it has ended; released once.
        unsafe {
            sys::napi_release_threadsafe_function(
                self.tsfn,
                sys::ThreadsafeFunctionReleaseMode::abort,
            )
        };
    }
}

/// The poll thread: report every event to the JS thread until the eventfd says stop.
fn wait_loop(epoll: &Epoll, wake: &EventFd, tsfn: sys::napi_threadsafe_function) {
    let mut events = [EpollEvent::empty(); 64];
    loop {
        let n = match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        };
        for ev in &events[..n] {
            if ev.data() == WAKE {
                let _ = wake.read();
                return;
            }
            let flags = ev.events();
            let mut mask = 0;
            let err = EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP;
            if flags.intersects(EpollFlags::EPOLLIN | err) {
                mask |= uv::READABLE;
            }
            if flags.intersects(EpollFlags::EPOLLOUT | err) {
                mask |= uv::WRITABLE;
            }
            // SAFETY: the tsfn lives until `shutdown`, which joins this thread first.
            unsafe {
                sys::napi_call_threadsafe_function(
                    tsfn,
                    pack(ev.data(), mask),
                    sys::ThreadsafeFunctionCallMode::nonblocking,
                )
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_events_survive_packing() {
        for (id, ev) in [(1, 1), (2, 2), (u64::MAX >> 2, 3), (7, 0)] {
            assert_eq!(unpack(pack(id, ev)), (id, ev));
        }
    }
}
