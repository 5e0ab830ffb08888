//! Poll watchers: one `uv_poll_t` per busy socket on a private dup of it, with the queues of
//! operations waiting on it. A watcher outlives its last waiter until the end of that loop turn
//! (the check phase, `reap`), so a request/response loop, whose next wait starts in the
//! microtasks of the last settlement, reuses it instead of paying a dup, a poll registration
//! and a close on every round trip. An fd the user closes behind our back still reaches EOF at
//! the peer within that turn.

use super::backend::{reactor_of, Handle};
use super::reader::Reader;
use super::waiter::{Ran, Waiter};
use super::Reactor;
use crate::{sock, uv};
use nix::errno::Errno;
use std::collections::VecDeque;
use std::ffi::{c_int, c_void};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Waiters served per readiness callback and direction, so one busy socket cannot starve the
/// loop.
const READY_BATCH: usize = 32;

pub(super) struct Watcher {
    reactor: *mut Reactor,
    pub handle: Handle,
    pub user_fd: RawFd,
    /// The dup the backend watches; closed as soon as the handle is closed (libuv allows that),
    /// not in the close callback a loop turn later, so a tight open/close loop cannot pile up fds.
    pub poll_fd: Option<OwnedFd>,
    /// The socket `user_fd` named when the watcher was made (device, inode).
    pub ident: (u64, u64),
    pub readers: VecDeque<Waiter>,
    pub writers: VecDeque<Waiter>,
    /// A stream's persistent read (`readStart`): served after `readers`, whenever readable.
    pub reader: Option<Reader>,
    /// The events libuv is asked for. An idle watcher may stay armed (no syscall to stop it)
    /// until an event comes for nobody.
    pub armed: c_int,
    /// Nothing is queued; on the reactor's `idle` list.
    pub idle: bool,
    /// It keeps the process alive now (see `Reactor::sync_hold`).
    pub holds: bool,
}

impl Watcher {
    pub fn queue(&mut self, writes: bool) -> &mut VecDeque<Waiter> {
        if writes {
            &mut self.writers
        } else {
            &mut self.readers
        }
    }

    /// The dup's number (-1 once closed).
    pub fn poll_fd_raw(&self) -> RawFd {
        self.poll_fd.as_ref().map_or(-1, AsRawFd::as_raw_fd)
    }

    pub fn wanted(&self) -> c_int {
        let r = if self.readers.is_empty() && self.reader.is_none() {
            0
        } else {
            uv::READABLE
        };
        let w = if self.writers.is_empty() {
            0
        } else {
            uv::WRITABLE
        };
        r | w
    }
}

impl Reactor {
    /// Queues `w` on the watcher for `fd`, creating it (or replacing a stale one) as needed.
    ///
    /// # Safety
    /// JS thread, live reactor.
    pub(super) unsafe fn enqueue(&mut self, fd: RawFd, w: Waiter) -> Result<(), (Errno, Waiter)> {
        // SAFETY: as this function's contract.
        let watcher = match unsafe { self.watcher_for(fd) } {
            Ok(watcher) => watcher,
            Err(e) => return Err((e, w)),
        };
        if w.token != 0 {
            self.tokens.insert(w.token, fd);
        }
        // SAFETY: `watcher` is live (just found or made).
        unsafe {
            (*watcher).queue(w.writes()).push_back(w);
            self.rearm(watcher, false);
        }
        Ok(())
    }

    /// The watcher of the socket `fd` names now, made (or a stale one replaced) as needed.
    ///
    /// # Safety
    /// JS thread, live reactor.
    pub(super) unsafe fn watcher_for(&mut self, fd: RawFd) -> Result<*mut Watcher, Errno> {
        let ident = sock::identity(fd)?;
        if let Some(&old) = self.watchers.get(&fd) {
            // SAFETY: watchers in the map are live.
            if unsafe { (*old).ident } == ident {
                return Ok(old);
            }
            // The number was closed behind our back and reused: the old waiters belong to a
            // socket nobody can name any more.
            // SAFETY: as above.
            unsafe { self.fail_all(old, Errno::EBADF) };
        }
        // SAFETY: JS thread.
        unsafe { self.new_watcher(fd, ident) }
    }

    /// A watcher on a dup of `fd`, registered under `fd`.
    ///
    /// # Safety
    /// JS thread, live reactor.
    unsafe fn new_watcher(&mut self, fd: RawFd, ident: (u64, u64)) -> Result<*mut Watcher, Errno> {
        let poll_fd = sock::dup_cloexec(fd)?;
        let was_nonblocking = sock::is_nonblocking(fd)?;
        // SAFETY: JS thread.
        let (handle, holds) = unsafe { self.backend_watch(poll_fd.as_raw_fd()) }?;
        if !was_nonblocking {
            // uv_poll_init made the shared file description non-blocking; message calls pass
            // MSG_DONTWAIT and need none of it, and other holders of the socket must not see it.
            let _ = sock::set_nonblocking(fd, false);
        }
        let w = Box::into_raw(Box::new(Watcher {
            reactor: self,
            handle,
            user_fd: fd,
            poll_fd: Some(poll_fd),
            ident,
            readers: VecDeque::new(),
            writers: VecDeque::new(),
            reader: None,
            armed: 0,
            idle: false,
            holds,
        }));
        // SAFETY: a live watcher; JS thread.
        unsafe { self.backend_link(w) };
        self.watchers.insert(fd, w);
        Ok(w)
    }

    /// Arms the watcher for what its queues need; with nothing queued it turns idle.
    ///
    /// # Safety
    /// JS thread; `w` is live.
    pub(super) unsafe fn rearm(&mut self, w: *mut Watcher, force: bool) {
        // SAFETY: as the function's contract.
        let wt = unsafe { &mut *w };
        let want = wt.wanted();
        if want == 0 {
            if !wt.idle {
                wt.idle = true;
                if self.idle.is_empty() {
                    self.want_reap(true);
                }
                self.idle.push(w);
            }
            // SAFETY: a live watcher.
            unsafe { self.sync_hold(w) };
            return;
        }
        if wt.idle {
            wt.idle = false;
            self.idle.retain(|&x| x != w);
        }
        // SAFETY: a live watcher.
        unsafe { self.sync_hold(w) };
        if want != wt.armed || force {
            // SAFETY: a live watcher.
            match unsafe { self.backend_arm(w, want) } {
                // SAFETY: as above.
                Err(e) => unsafe { self.fail_all(w, e) },
                Ok(()) => wt.armed = want,
            }
        }
    }

    /// Unregisters and closes the watcher; its memory goes in the close callback.
    ///
    /// # Safety
    /// JS thread; `w` is live and is not used after this.
    unsafe fn close_watcher(&mut self, w: *mut Watcher) {
        // SAFETY: as the function's contract.
        let fd = unsafe { (*w).user_fd };
        if self.watchers.get(&fd) == Some(&w) {
            self.watchers.remove(&fd);
        }
        self.idle.retain(|&x| x != w);
        // SAFETY: as above; unlinked from the map and the idle list.
        unsafe {
            if let Some(rd) = (*w).reader.take() {
                // Its socket is gone: the reader is told (`tell_closed_readers`) once no borrow
                // of the reactor is live.
                self.closed_readers.push(rd.into_callback());
            }
            (*w).idle = true;
            self.sync_hold(w);
            self.backend_close(w)
        };
    }

    /// Unlinks every waiter of `w` and closes the watcher.
    ///
    /// # Safety
    /// JS thread; `w` is live and is not used after this.
    pub(super) unsafe fn take_all(&mut self, w: *mut Watcher) -> Vec<Waiter> {
        // SAFETY: as the function's contract.
        let waiters: Vec<Waiter> = unsafe {
            let wt = &mut *w;
            wt.readers.drain(..).chain(wt.writers.drain(..)).collect()
        };
        // SAFETY: as above.
        unsafe { self.close_watcher(w) };
        for wt in &waiters {
            self.tokens.remove(&wt.token);
        }
        waiters
    }

    /// Settles every waiter of `w` with the error `e` and closes the watcher.
    ///
    /// # Safety
    /// JS thread; `w` is live and is not used after this.
    unsafe fn fail_all(&mut self, w: *mut Watcher, e: Errno) {
        // SAFETY: as the function's contract.
        for wt in unsafe { self.take_all(w) } {
            // SAFETY: JS thread.
            unsafe { self.settle(wt, Err(e)) };
        }
    }

    /// Serves up to a batch of waiters in one direction; stops at the first `EAGAIN`.
    ///
    /// # Safety
    /// JS thread, inside a callback scope; `w` is live.
    unsafe fn drain(&mut self, w: *mut Watcher, writes: bool, out: &mut Vec<Ran>) {
        let env = self.env;
        // SAFETY: as the function's contract.
        let wt = unsafe { &mut *w };
        let Some(fd) = wt.poll_fd.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        for _ in 0..READY_BATCH {
            let Some(head) = wt.queue(writes).front() else {
                break;
            };
            // SAFETY: JS thread, handle scope open.
            let result = unsafe { head.run(env, fd) };
            if matches!(result, Err(Errno::EAGAIN)) {
                break;
            }
            let head = wt.queue(writes).pop_front().expect("front existed");
            self.tokens.remove(&head.token);
            out.push((head, result));
        }
    }

    /// Closes the watchers still idle at the end of the turn they went idle in.
    ///
    /// # Safety
    /// JS thread, live reactor.
    pub(super) unsafe fn reap(&mut self) {
        for w in std::mem::take(&mut self.idle) {
            // SAFETY: watchers on the idle list are live and idle (closing one, or giving it a
            // waiter, takes it off the list).
            unsafe { self.close_watcher(w) };
        }
        self.want_reap(false);
    }

    /// Readiness for one watcher: serve its queues, settle, and re-arm unless told not to (its
    /// reader reads next, and re-arms after).
    ///
    /// # Safety
    /// JS thread, inside a callback scope; `w` is live.
    pub(super) unsafe fn ready(
        &mut self,
        w: *mut Watcher,
        status: c_int,
        events: c_int,
        rearm: bool,
    ) {
        // SAFETY: as the function's contract.
        unsafe {
            let mut done = Vec::new();
            let wanted_before = (*w).wanted();
            if events & uv::READABLE != 0 || status < 0 {
                self.drain(w, false, &mut done);
            }
            if events & uv::WRITABLE != 0 || status < 0 {
                self.drain(w, true, &mut done);
            }
            let queued = !(*w).readers.is_empty() || !(*w).writers.is_empty();
            if status < 0 && done.is_empty() && queued {
                // libuv stopped the handle on POLLERR; a pending socket error ends the head
                // waiters (taking it, so with none it is left for the reader's read).
                let err = (*w)
                    .poll_fd
                    .as_ref()
                    .map_or(Errno::EBADF, |fd| sock::socket_error(fd.as_raw_fd()));
                if err != Errno::UnknownErrno {
                    for writes in [false, true] {
                        if let Some(h) = (*w).queue(writes).pop_front() {
                            self.tokens.remove(&h.token);
                            done.push((h, Err(err)));
                        }
                    }
                }
            }
            if events & !wanted_before != 0 && (*w).armed != 0 {
                // An event for nobody (a watcher left armed after its queue emptied): stop, and
                // let `rearm` ask for exactly what is queued, before level-triggered readiness
                // calls again.
                let _ = self.backend_arm(w, 0);
                (*w).armed = 0;
            }
            for (wt, result) in done {
                self.settle(wt, result);
            }
            // Settling ran no JS yet (microtasks run when the scope closes), so `w` is live.
            if rearm {
                self.rearm(w, status < 0);
            }
        }
    }
}

/// libuv's readiness for one watcher.
pub(super) unsafe extern "C" fn on_ready(handle: *mut c_void, status: c_int, events: c_int) {
    // SAFETY: the handle's data is its live watcher (set in `backend_link`, freed on close).
    let w = unsafe { (uv::get().expect("loaded").handle_get_data)(handle) } as *mut Watcher;
    // SAFETY: libuv calls this on the JS thread; the watcher's reactor is live.
    unsafe { Reactor::readiness((*w).reactor, w, status, events) };
}

/// The end of a turn in which watchers went idle: close those still idle.
pub(super) unsafe extern "C" fn on_reap(handle: *mut c_void) {
    // SAFETY: the handle is the reactor's; libuv calls this on the JS thread.
    unsafe { Reactor::in_callback_scope(reactor_of(handle), |r| (*r).reap()) };
}

pub(super) unsafe extern "C" fn on_closed(handle: *mut c_void) {
    let uv = uv::get().expect("loaded");
    // SAFETY: libuv is done with the handle; its data is the boxed watcher, freed once here.
    unsafe {
        drop(Box::from_raw((uv.handle_get_data)(handle) as *mut Watcher));
        uv.free_handle(handle, uv::UV_POLL);
    }
}
