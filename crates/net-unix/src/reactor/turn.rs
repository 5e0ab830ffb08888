//! The per-turn budget: at most `FAST_PER_TURN` operations complete at once per loop turn, so
//! `for (;;) await recvmsg()` cannot starve timers and I/O. Operations past it wait on the
//! next-turn list, retried after the next turn's timers, which yields to the loop as a poll
//! watcher would, without making one.

use super::backend::reactor_of;
use super::waiter::Waiter;
use super::{route, Reactor, Route};
use crate::{sock, uv};
use nix::errno::Errno;
use std::ffi::c_void;
use std::os::fd::RawFd;

/// Completions allowed without yielding to the loop: libuv's own bound for stream reads.
const FAST_PER_TURN: u32 = 32;

/// An operation deferred to the next loop turn, on the caller's fd as it was then.
pub(super) struct Later {
    pub fd: RawFd,
    pub ident: (u64, u64),
    pub waiter: Waiter,
}

impl Reactor {
    pub(super) fn budget_spent(&self) -> bool {
        self.fast_this_turn >= FAST_PER_TURN
    }

    pub(super) fn count_fast(&mut self) {
        if self.fast_this_turn == 0 {
            self.want_turn_reset();
        }
        self.fast_this_turn += 1;
    }

    /// Puts `w` on the next-turn list, noting which socket `fd` names now.
    ///
    /// # Safety
    /// JS thread, live reactor.
    pub(super) unsafe fn defer(&mut self, fd: RawFd, w: Waiter) -> Result<(), (Errno, Waiter)> {
        let ident = match sock::identity(fd) {
            Ok(id) => id,
            Err(e) => return Err((e, w)),
        };
        if w.token != 0 {
            self.tokens.insert(w.token, fd);
        }
        if self.later.is_empty() {
            self.want_next_turn(true);
        }
        self.later.push_back(Later {
            fd,
            ident,
            waiter: w,
        });
        Ok(())
    }

    /// Takes the waiters deferred on `fd` off the list (for `close`).
    pub(super) fn take_later(&mut self, fd: RawFd) -> Vec<Waiter> {
        if !self.later.iter().any(|l| l.fd == fd) {
            return Vec::new();
        }
        let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.later)
            .into_iter()
            .partition(|l| l.fd == fd);
        self.later = rest.into();
        mine.into_iter()
            .map(|l| {
                self.tokens.remove(&l.waiter.token);
                l.waiter
            })
            .collect()
    }

    /// Retries the deferred operations in order: each runs, waits on a watcher after `EAGAIN`,
    /// or stays deferred once this turn's budget is spent again.
    ///
    /// # Safety
    /// JS thread, inside a callback scope.
    pub(super) unsafe fn retry_later(&mut self) {
        let env = self.env;
        for l in std::mem::take(&mut self.later) {
            let on_watcher = self
                .watchers
                .get(&l.fd)
                // SAFETY: watchers in the map are live.
                .is_some_and(|w| unsafe { !(**w).queue(l.waiter.writes()).is_empty() });
            let earlier = self
                .later
                .iter()
                .any(|o| o.fd == l.fd && o.waiter.writes() == l.waiter.writes());
            // SAFETY (whole match): JS thread, live reactor.
            let queued = match route(on_watcher, self.budget_spent(), earlier) {
                Route::Watcher => unsafe { self.enqueue(l.fd, l.waiter) },
                Route::Later => {
                    self.later.push_back(l);
                    Ok(())
                }
                Route::Now => {
                    // The number may have been closed and reused meanwhile.
                    let result = match sock::identity(l.fd) {
                        Ok(id) if id == l.ident => unsafe { l.waiter.run(env, l.fd) },
                        Ok(_) => Err(Errno::EBADF),
                        Err(e) => Err(e),
                    };
                    if matches!(result, Err(Errno::EAGAIN)) {
                        unsafe { self.enqueue(l.fd, l.waiter) }
                    } else {
                        self.count_fast();
                        self.tokens.remove(&l.waiter.token);
                        unsafe { self.settle(l.waiter, result) };
                        Ok(())
                    }
                }
            };
            if let Err((e, w)) = queued {
                self.tokens.remove(&w.token);
                // SAFETY: JS thread.
                unsafe { self.settle(w, Err(e)) };
            }
        }
        if self.later.is_empty() {
            self.want_next_turn(false);
        }
    }
}

/// The turn after the budget was spent, past its timers: retry what was deferred.
pub(super) unsafe extern "C" fn on_next_turn(handle: *mut c_void) {
    // SAFETY: the handle is the reactor's; libuv calls this on the JS thread.
    unsafe {
        Reactor::in_callback_scope(reactor_of(handle), |r| {
            (*r).retry_later();
            Reactor::tell_closed_readers(r);
        })
    };
}

/// The end of a turn in which operations completed at once: the budget starts again.
pub(super) unsafe extern "C" fn on_turn(handle: *mut c_void) {
    // SAFETY: the handle is the reactor's; libuv calls this on the JS thread.
    unsafe {
        let r = reactor_of(handle);
        (*r).fast_this_turn = 0;
        (uv::get().expect("loaded").check_stop)(handle);
    }
}
