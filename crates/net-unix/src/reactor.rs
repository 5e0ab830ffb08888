//! Readiness on Node's own libuv loop: one `uv_poll_t` per socket with pending operations,
//! watching a private close-on-exec dup of it, closed as soon as nothing waits.
//!
//! Every syscall runs on the JS thread. An operation is tried at once and waits on a watcher
//! only on `EAGAIN`; past a budget of immediate completions per loop turn it is retried on the
//! next turn instead. Operations on one fd and direction are served in call order. Cancelling unlinks a
//! waiter before any syscall ran for it, so an aborted receive consumes nothing. Everything here
//! belongs to one `napi_env` and is torn down by that env's cleanup hook (worker_threads).

use crate::js::{self, Env, Value};
use crate::{dgram, error, msg, sock, uv};
use napi::sys;
use nix::errno::Errno;
use nix::sys::socket::SockFlag;
use smallvec::SmallVec;
use std::collections::{HashMap, VecDeque};
use std::ffi::{c_int, c_void};
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::ptr::null_mut;

/// Completions allowed without yielding to the loop: libuv's own bound for stream reads, which
/// keeps `for (;;) await recvmsg()` from starving timers and I/O.
const FAST_PER_TURN: u32 = 32;
/// Waiters served per readiness callback and direction, for the same reason.
const READY_BATCH: usize = 32;

/// Where the buffers of one call are, as `js::bytes` reported them.
type Bufs = SmallVec<[(*mut u8, usize); 4]>;

/// What an operation does, with borrowed fds (the fast path) or owned dups (a waiter).
pub enum Kind<'a> {
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
}

impl Kind<'_> {
    fn writes(&self) -> bool {
        matches!(self, Kind::Send { .. } | Kind::SendTo { .. })
    }
}

/// A finished operation, before it becomes a JS value.
pub enum Done {
    Fd(OwnedFd),
    Bytes(usize),
    Recv(msg::Received),
    From(dgram::From),
}

/// Runs the operation once without blocking.
pub fn attempt(fd: RawFd, kind: &Kind, bufs: &[(*mut u8, usize)]) -> nix::Result<Done> {
    // SAFETY: the pointers come from live typed arrays fetched in this same JS turn.
    unsafe {
        match kind {
            Kind::Accept { flags } => sock::accept(fd, *flags).map(Done::Fd),
            Kind::Recv { max_fds } => recv_bufs(fd, bufs, *max_fds, true).map(Done::Recv),
            Kind::Send { fds, groups } => send_bufs(fd, bufs, fds, groups, true).map(Done::Bytes),
            Kind::RecvFrom { max_fds, creds } => {
                recv_bufs_from(fd, bufs, *max_fds, *creds, true).map(Done::From)
            }
            Kind::SendTo {
                to,
                fds,
                groups,
                creds,
            } => send_bufs_to(fd, bufs, *to, fds, groups, *creds, true).map(Done::Bytes),
        }
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
        std::slice::from_raw_parts_mut(p, n)
    }
}

/// `recvmsg` into the given buffers, blocking or not (the sync and async paths share it).
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
        .map(|&b| IoSliceMut::new(bytes_mut(b)))
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
    let iov: SmallVec<[IoSlice; 4]> = bufs.iter().map(|&b| IoSlice::new(bytes_mut(b))).collect();
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
        .map(|&b| IoSliceMut::new(bytes_mut(b)))
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
    let iov: SmallVec<[IoSlice; 4]> = bufs.iter().map(|&b| IoSlice::new(bytes_mut(b))).collect();
    dgram::send_to(fd, &iov, to, &split_groups(fds, groups), creds, dontwait)
}

/// `fds` cut into consecutive groups of the given sizes (one SCM_RIGHTS message each).
fn split_groups<'a>(fds: &'a [RawFd], groups: &[u32]) -> SmallVec<[&'a [RawFd]; 2]> {
    let mut out = SmallVec::new();
    let mut at = 0;
    for &g in groups {
        let end = (at + g as usize).min(fds.len());
        out.push(&fds[at..end]);
        at = end;
    }
    out
}

/// An operation that completed at once, as the number JS gets back: the new fd, the byte count,
/// or a negative errno. A receive leaves `[truncated, nfds, ...fds]` in `out`, which has room
/// for every fd it asked for (the caller bounds `max_fds` by it).
fn immediate(result: nix::Result<Done>, out: &mut [i32]) -> i32 {
    match result {
        Ok(Done::Fd(fd)) => fd.into_raw_fd(),
        Ok(Done::Bytes(n)) => n as i32,
        Ok(Done::Recv(rcv)) => rcv.write_into(out),
        Ok(Done::From(f)) => f.write_into(out),
        Err(e) => error::neg(e),
    }
}

/// What a queued operation does. It owns dups of the fds it will send, so closing them after the
/// call cannot change what is sent.
enum Wait {
    Accept(SockFlag),
    Recv(usize),
    Send(Vec<OwnedFd>, Vec<u32>),
    RecvFrom(usize, bool),
    SendTo(Box<SendTo>),
}

/// A queued [`Kind::SendTo`] (boxed: it would double the size of every waiter).
struct SendTo {
    to: Option<Vec<u8>>,
    fds: Vec<OwnedFd>,
    groups: Vec<u32>,
    creds: bool,
}

/// A queued operation, holding references to its buffers: their memory is looked up again when
/// the syscall runs, so a buffer moved or detached meanwhile is never read through a stale pointer.
struct Waiter {
    token: u32,
    deferred: sys::napi_deferred,
    bufs: Vec<sys::napi_ref>,
    wait: Wait,
}

impl Waiter {
    fn run(&self, env: Env, fd: RawFd) -> nix::Result<Done> {
        // SAFETY: refs are live until the waiter is dropped; values are read in this turn.
        let bufs: Bufs = self
            .bufs
            .iter()
            .map(|r| unsafe { js::bytes(env, js::deref(env, *r)) })
            .collect();
        match &self.wait {
            Wait::Accept(flags) => attempt(fd, &Kind::Accept { flags: *flags }, &bufs),
            Wait::Recv(max_fds) => attempt(fd, &Kind::Recv { max_fds: *max_fds }, &bufs),
            Wait::Send(fds, groups) => {
                let raw: SmallVec<[RawFd; 8]> = fds.iter().map(|f| f.as_raw_fd()).collect();
                attempt(fd, &Kind::Send { fds: &raw, groups }, &bufs)
            }
            Wait::RecvFrom(max_fds, creds) => attempt(
                fd,
                &Kind::RecvFrom {
                    max_fds: *max_fds,
                    creds: *creds,
                },
                &bufs,
            ),
            Wait::SendTo(st) => {
                let raw: SmallVec<[RawFd; 8]> = st.fds.iter().map(|f| f.as_raw_fd()).collect();
                let kind = Kind::SendTo {
                    to: st.to.as_deref(),
                    fds: &raw,
                    groups: &st.groups,
                    creds: st.creds,
                };
                attempt(fd, &kind, &bufs)
            }
        }
    }

    fn syscall(&self) -> &'static str {
        match self.wait {
            Wait::Accept(_) => "accept",
            Wait::Recv(_) => "recvmsg",
            Wait::Send(..) => "sendmsg",
            Wait::RecvFrom(..) => "recvmsg",
            Wait::SendTo(..) => "sendmsg",
        }
    }

    fn writes(&self) -> bool {
        matches!(self.wait, Wait::Send(..) | Wait::SendTo(..))
    }
}

/// A waiter taken off its queue with what its syscall returned, to be settled.
type Ran = (Waiter, Result<Done, Errno>);

struct Watcher {
    reactor: *mut Reactor,
    handle: *mut c_void,
    user_fd: RawFd,
    /// The dup libuv watches; closed as soon as the handle is closed (libuv allows that), not
    /// in the close callback a loop turn later, so a tight open/close loop cannot pile up fds.
    poll_fd: Option<OwnedFd>,
    ident: (u64, u64),
    readers: VecDeque<Waiter>,
    writers: VecDeque<Waiter>,
    armed: c_int,
}

impl Watcher {
    fn queue(&mut self, writes: bool) -> &mut VecDeque<Waiter> {
        if writes {
            &mut self.writers
        } else {
            &mut self.readers
        }
    }
    /// Closes the libuv handle: the dup goes at once, the memory in `on_closed`.
    unsafe fn close_handle(&mut self, uv: &uv::Uv) {
        (uv.close)(self.handle, on_closed);
        self.poll_fd = None;
    }
    fn wanted(&self) -> c_int {
        (if self.readers.is_empty() {
            0
        } else {
            uv::READABLE
        }) | (if self.writers.is_empty() {
            0
        } else {
            uv::WRITABLE
        })
    }
}

pub struct Reactor {
    env: Env,
    uv: &'static uv::Uv,
    uv_loop: *mut c_void,
    async_ctx: sys::napi_async_context,
    resource: sys::napi_ref,
    make_errno: sys::napi_ref,
    make_closed: sys::napi_ref,
    watchers: HashMap<RawFd, *mut Watcher>,
    tokens: HashMap<u32, RawFd>,
    fast_this_turn: u32,
    turn_check: *mut c_void,
    /// Operations that found this turn's budget spent. They are tried again after the next
    /// turn's timers (`retry`, an idle handle, active while any wait), which yields to the loop
    /// as a poll watcher would, without making one.
    later: VecDeque<Later>,
    retry: *mut c_void,
}

/// An operation deferred to the next loop turn, on the caller's fd as it was then.
struct Later {
    fd: RawFd,
    ident: (u64, u64),
    waiter: Waiter,
}

/// Where an operation goes: tried now, retried next turn, or queued on the fd's poll watcher.
enum Route {
    Now,
    Later,
    Watcher,
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
        if sys::napi_get_uv_event_loop(env, &mut uv_loop) != sys::Status::napi_ok
            || uv_loop.is_null()
        {
            return Err("no libuv event loop in this runtime");
        }
        let mut resource = null_mut();
        sys::napi_create_object(env, &mut resource);
        let mut name = null_mut();
        sys::napi_create_string_utf8(env, c"net-unix".as_ptr(), 8, &mut name);
        let mut async_ctx = null_mut();
        sys::napi_async_init(env, resource, name, &mut async_ctx);
        let turn_check = uv.alloc_handle(uv::UV_CHECK);
        (uv.check_init)(uv_loop.cast(), turn_check);
        (uv.unref)(turn_check);
        let retry = uv.alloc_handle(uv::UV_IDLE);
        (uv.idle_init)(uv_loop.cast(), retry);
        let r = Box::into_raw(Box::new(Reactor {
            env,
            uv,
            uv_loop: uv_loop.cast(),
            async_ctx,
            resource: js::new_ref(env, resource),
            make_errno: js::new_ref(env, make_errno),
            make_closed: js::new_ref(env, make_closed),
            watchers: HashMap::new(),
            tokens: HashMap::new(),
            fast_this_turn: 0,
            turn_check,
            later: VecDeque::new(),
            retry,
        }));
        (uv.handle_set_data)(turn_check, r.cast());
        (uv.handle_set_data)(retry, r.cast());
        sys::napi_set_instance_data(env, r.cast(), None, null_mut());
        sys::napi_add_env_cleanup_hook(env, Some(teardown), r.cast());
        Ok(())
    }

    /// This env's reactor, if `install` ran.
    ///
    /// # Safety
    /// Called on the env's JS thread; the pointer is valid until the env's cleanup hook.
    pub unsafe fn of(env: Env) -> *mut Reactor {
        let mut data = null_mut();
        sys::napi_get_instance_data(env, &mut data);
        data.cast()
    }

    /// Starts an operation. Tried at once when nothing is queued ahead of it and the per-turn
    /// budget allows: then the result comes back as a number (see [`immediate`]) and no promise
    /// is made. Otherwise it is deferred to the next turn or queued behind a poll watcher (see
    /// [`Reactor::route`]) and a promise is returned.
    ///
    /// # Safety
    /// `this` is a live reactor; `buf_values` are typed arrays of the current call; `out` is
    /// the memory of a typed array of the current call.
    pub unsafe fn submit(
        this: *mut Reactor,
        fd: RawFd,
        token: u32,
        kind: Kind,
        buf_values: &[Value],
        out: &mut [i32],
    ) -> Value {
        let r = &mut *this;
        let env = r.env;
        if matches!(kind, Kind::Accept { .. }) {
            // accept4 has no MSG_DONTWAIT: the listener itself must not block the loop.
            if let Err(e) = sock::set_nonblocking(fd, true) {
                return js::int(env, error::neg(e));
            }
        }
        let mut route = r.route(fd, kind.writes());
        if matches!(route, Route::Now) {
            let bufs: Bufs = buf_values.iter().map(|v| js::bytes(env, *v)).collect();
            match attempt(fd, &kind, &bufs) {
                Err(Errno::EAGAIN) => route = Route::Watcher,
                result => {
                    r.count_fast();
                    return js::int(env, immediate(result, out));
                }
            }
        }
        let wait = match kind {
            Kind::Accept { flags } => Wait::Accept(flags),
            Kind::Recv { max_fds } => Wait::Recv(max_fds),
            Kind::Send { fds, groups } => match fds.iter().map(|f| sock::dup_cloexec(*f)).collect()
            {
                Ok(dups) => Wait::Send(dups, groups.to_vec()),
                Err(e) => return js::int(env, error::neg(e)),
            },
            Kind::RecvFrom { max_fds, creds } => Wait::RecvFrom(max_fds, creds),
            Kind::SendTo {
                to,
                fds,
                groups,
                creds,
            } => match fds.iter().map(|f| sock::dup_cloexec(*f)).collect() {
                Ok(dups) => Wait::SendTo(Box::new(SendTo {
                    to: to.map(<[u8]>::to_vec),
                    fds: dups,
                    groups: groups.to_vec(),
                    creds,
                })),
                Err(e) => return js::int(env, error::neg(e)),
            },
        };
        let mut deferred = null_mut();
        let mut promise = null_mut();
        sys::napi_create_promise(env, &mut deferred, &mut promise);
        let bufs = buf_values.iter().map(|v| js::new_ref(env, *v)).collect();
        let waiter = Waiter {
            token,
            deferred,
            bufs,
            wait,
        };
        let queued = if matches!(route, Route::Later) {
            r.defer(fd, waiter)
        } else {
            r.enqueue(fd, waiter)
        };
        if let Err((e, w)) = queued {
            r.settle(w, Err(e));
        }
        promise
    }

    /// Where a new operation on `fd` goes so that operations on one fd and direction stay in
    /// call order and the per-turn budget holds.
    fn route(&self, fd: RawFd, writes: bool) -> Route {
        // SAFETY: watchers in the map are live.
        if self
            .watchers
            .get(&fd)
            .is_some_and(|w| unsafe { !(**w).queue(writes).is_empty() })
        {
            Route::Watcher
        } else if self.fast_this_turn >= FAST_PER_TURN
            || self
                .later
                .iter()
                .any(|l| l.fd == fd && l.waiter.writes() == writes)
        {
            Route::Later
        } else {
            Route::Now
        }
    }

    /// Puts `w` on the next-turn list, noting which socket `fd` names now.
    unsafe fn defer(&mut self, fd: RawFd, w: Waiter) -> Result<(), (Errno, Waiter)> {
        let ident = match sock::identity(fd) {
            Ok(id) => id,
            Err(e) => return Err((e, w)),
        };
        if w.token != 0 {
            self.tokens.insert(w.token, fd);
        }
        if self.later.is_empty() {
            (self.uv.idle_start)(self.retry, on_retry);
        }
        self.later.push_back(Later {
            fd,
            ident,
            waiter: w,
        });
        Ok(())
    }

    /// Retries the deferred operations in order (see `later`): each runs, waits on a watcher
    /// after `EAGAIN`, or stays deferred once this turn's budget is spent again.
    unsafe fn retry_later(&mut self) {
        let env = self.env;
        for l in std::mem::take(&mut self.later) {
            let queued = match self.route(l.fd, l.waiter.writes()) {
                Route::Watcher => self.enqueue(l.fd, l.waiter),
                Route::Later => {
                    self.later.push_back(l);
                    Ok(())
                }
                Route::Now => {
                    // The number may have been closed and reused meanwhile.
                    let result = match sock::identity(l.fd) {
                        Ok(id) if id == l.ident => l.waiter.run(env, l.fd),
                        Ok(_) => Err(Errno::EBADF),
                        Err(e) => Err(e),
                    };
                    if matches!(result, Err(Errno::EAGAIN)) {
                        self.enqueue(l.fd, l.waiter)
                    } else {
                        self.count_fast();
                        self.tokens.remove(&l.waiter.token);
                        self.settle(l.waiter, result);
                        Ok(())
                    }
                }
            };
            if let Err((e, w)) = queued {
                self.tokens.remove(&w.token);
                self.settle(w, Err(e));
            }
        }
        if self.later.is_empty() {
            (self.uv.idle_stop)(self.retry);
        }
    }

    fn count_fast(&mut self) {
        if self.fast_this_turn == 0 {
            // SAFETY: the check handle lives as long as the reactor.
            unsafe { (self.uv.check_start)(self.turn_check, on_turn) };
        }
        self.fast_this_turn += 1;
    }

    /// Queues `w` on the watcher for `fd`, creating it (or replacing a stale one) as needed.
    unsafe fn enqueue(&mut self, fd: RawFd, w: Waiter) -> Result<(), (Errno, Waiter)> {
        let ident = match sock::identity(fd) {
            Ok(id) => id,
            Err(e) => return Err((e, w)),
        };
        if let Some(&old) = self.watchers.get(&fd) {
            if (*old).ident != ident {
                // The number was closed behind our back and reused: the old waiters belong to a
                // socket nobody can name any more.
                self.fail_all(old, Errno::EBADF);
            }
        }
        let watcher = match self.watchers.get(&fd) {
            Some(&w) => w,
            None => match self.new_watcher(fd, ident) {
                Ok(nw) => nw,
                Err(e) => return Err((e, w)),
            },
        };
        if w.token != 0 {
            self.tokens.insert(w.token, fd);
        }
        (*watcher).queue(w.writes()).push_back(w);
        self.rearm(watcher, false);
        Ok(())
    }

    unsafe fn new_watcher(&mut self, fd: RawFd, ident: (u64, u64)) -> Result<*mut Watcher, Errno> {
        let poll_fd = sock::dup_cloexec(fd)?;
        let handle = self.uv.alloc_handle(uv::UV_POLL);
        let rc = (self.uv.poll_init)(self.uv_loop, handle, poll_fd.as_raw_fd());
        if rc < 0 {
            // Never hand a handle whose init failed back to libuv.
            self.uv.free_handle(handle, uv::UV_POLL);
            return Err(Errno::from_raw(-rc));
        }
        let w = Box::into_raw(Box::new(Watcher {
            reactor: self,
            handle,
            user_fd: fd,
            poll_fd: Some(poll_fd),
            ident,
            readers: VecDeque::new(),
            writers: VecDeque::new(),
            armed: 0,
        }));
        (self.uv.handle_set_data)(handle, w.cast());
        self.watchers.insert(fd, w);
        Ok(w)
    }

    /// Starts the watcher for what its queues need, or closes it when nothing waits.
    unsafe fn rearm(&mut self, w: *mut Watcher, force: bool) {
        let want = (*w).wanted();
        if want == 0 {
            self.close_watcher(w);
        } else if want != (*w).armed || force {
            let rc = (self.uv.poll_start)((*w).handle, want, on_ready);
            if rc < 0 {
                self.fail_all(w, Errno::from_raw(-rc));
            } else {
                (*w).armed = want;
            }
        }
    }

    /// Unregisters and closes the watcher; its memory and dup go in the close callback.
    unsafe fn close_watcher(&mut self, w: *mut Watcher) {
        if self.watchers.get(&(*w).user_fd) == Some(&w) {
            self.watchers.remove(&(*w).user_fd);
        }
        (*w).close_handle(self.uv);
    }

    /// Unlinks every waiter of `w` and closes the watcher.
    unsafe fn take_all(&mut self, w: *mut Watcher) -> Vec<Waiter> {
        let waiters: Vec<Waiter> = (*w)
            .readers
            .drain(..)
            .chain((*w).writers.drain(..))
            .collect();
        self.close_watcher(w);
        for wt in &waiters {
            self.tokens.remove(&wt.token);
        }
        waiters
    }

    /// Settles every waiter of `w` with the error `e` and closes the watcher.
    unsafe fn fail_all(&mut self, w: *mut Watcher, e: Errno) {
        for wt in self.take_all(w) {
            self.settle(wt, Err(e));
        }
    }

    /// Rejects a waiter that never ran with a JS value (abort reason, "socket closed").
    unsafe fn reject(&mut self, wt: Waiter, reason: Value) {
        for r in wt.bufs {
            js::drop_ref(self.env, r);
        }
        sys::napi_reject_deferred(self.env, wt.deferred, reason);
    }

    /// Settles a waiter that ran (or could not be queued) with `result`.
    unsafe fn settle(&mut self, w: Waiter, result: Result<Done, Errno>) {
        let env = self.env;
        let syscall = w.syscall();
        for r in w.bufs {
            js::drop_ref(env, r);
        }
        let value = match result {
            Ok(Done::Fd(fd)) => js::int(env, fd.into_raw_fd()),
            Ok(Done::Bytes(n)) => js::int(env, n as i32),
            Ok(Done::Recv(rcv)) => js::array_of(env, &rcv.into_items()),
            Ok(Done::From(f)) => js::array_of(env, &f.into_items()),
            Err(e) => {
                let mut name = null_mut();
                sys::napi_create_string_utf8(
                    env,
                    syscall.as_ptr().cast(),
                    syscall.len() as isize,
                    &mut name,
                );
                let err = js::call(env, self.make_errno, &[js::int(env, -(e as i32)), name]);
                sys::napi_reject_deferred(env, w.deferred, err);
                return;
            }
        };
        sys::napi_resolve_deferred(env, w.deferred, value);
    }

    /// Serves up to a batch of waiters in one direction; stops at the first `EAGAIN`.
    unsafe fn drain(&mut self, w: *mut Watcher, writes: bool, out: &mut Vec<Ran>) {
        let env = self.env;
        let Some(fd) = (*w).poll_fd.as_ref().map(AsRawFd::as_raw_fd) else {
            return;
        };
        for _ in 0..READY_BATCH {
            let Some(head) = (*w).queue(writes).front() else {
                break;
            };
            let result = head.run(env, fd);
            if matches!(result, Err(Errno::EAGAIN)) {
                break;
            }
            let head = (*w).queue(writes).pop_front().expect("front existed");
            self.tokens.remove(&head.token);
            out.push((head, result));
        }
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
            self.reject(l.waiter, reason);
            return true;
        }
        let Some(&w) = self.watchers.get(&fd) else {
            return false;
        };
        for writes in [false, true] {
            let q = (*w).queue(writes);
            if let Some(i) = q.iter().position(|x| x.token == token) {
                let wt = q.remove(i).expect("position is in range");
                self.reject(wt, reason);
                self.rearm(w, false);
                return true;
            }
        }
        false
    }

    /// Rejects everything pending on `fd` with the "socket closed" error, then closes `fd`.
    ///
    /// # Safety
    /// JS thread, live reactor.
    pub unsafe fn close(&mut self, fd: RawFd) -> i32 {
        let mut gone: Vec<Waiter> = Vec::new();
        if self.later.iter().any(|l| l.fd == fd) {
            let (mine, rest) = std::mem::take(&mut self.later)
                .into_iter()
                .partition::<Vec<_>, _>(|l| l.fd == fd);
            self.later = rest.into();
            for l in mine {
                self.tokens.remove(&l.waiter.token);
                gone.push(l.waiter);
            }
        }
        if let Some(&w) = self.watchers.get(&fd) {
            gone.extend(self.take_all(w));
        }
        for wt in gone {
            let err = js::call(self.env, self.make_closed, &[]);
            self.reject(wt, err);
        }
        crate::error::to_js(sock::close(fd).map(|_| 0))
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

/// Readiness for one watcher: serve its queues, settle inside a callback scope, re-arm.
unsafe extern "C" fn on_ready(handle: *mut c_void, status: c_int, events: c_int) {
    let w = (uv::get().expect("loaded").handle_get_data)(handle) as *mut Watcher;
    in_callback_scope((*w).reactor, |r| {
        let mut done = Vec::new();
        if events & uv::READABLE != 0 || status < 0 {
            r.drain(w, false, &mut done);
        }
        if events & uv::WRITABLE != 0 || status < 0 {
            r.drain(w, true, &mut done);
        }
        if status < 0 && done.is_empty() {
            // libuv stopped the handle on POLLERR; a pending socket error ends the head waiters.
            let err = (*w)
                .poll_fd
                .as_ref()
                .map_or(Errno::EBADF, |fd| sock::socket_error(fd.as_raw_fd()));
            if err != Errno::UnknownErrno {
                for writes in [false, true] {
                    if let Some(h) = (*w).queue(writes).pop_front() {
                        r.tokens.remove(&h.token);
                        done.push((h, Err(err)));
                    }
                }
            }
        }
        for (wt, result) in done {
            r.settle(wt, result);
        }
        r.rearm(w, status < 0);
    });
}

/// Runs `f` inside a callback scope (so microtasks, async hooks and uncaught-exception routing
/// behave as for any Node I/O callback).
unsafe fn in_callback_scope(this: *mut Reactor, f: impl FnOnce(&mut Reactor)) {
    let env = (*this).env;
    let mut hscope = null_mut();
    sys::napi_open_handle_scope(env, &mut hscope);
    let mut cscope = null_mut();
    sys::napi_open_callback_scope(
        env,
        js::deref(env, (*this).resource),
        (*this).async_ctx,
        &mut cscope,
    );
    f(&mut *this);
    // Microtasks run here and may call back into the reactor: no borrow of it lives past this.
    sys::napi_close_callback_scope(env, cscope);
    sys::napi_close_handle_scope(env, hscope);
}

/// The turn after the budget was spent, past its timers: retry what was deferred.
unsafe extern "C" fn on_retry(handle: *mut c_void) {
    let r = (uv::get().expect("loaded").handle_get_data)(handle) as *mut Reactor;
    in_callback_scope(r, |r| r.retry_later());
}

unsafe extern "C" fn on_closed(handle: *mut c_void) {
    let uv = uv::get().expect("loaded");
    drop(Box::from_raw((uv.handle_get_data)(handle) as *mut Watcher));
    uv.free_handle(handle, uv::UV_POLL);
}

unsafe extern "C" fn on_turn(handle: *mut c_void) {
    let uv = uv::get().expect("loaded");
    let r = (uv.handle_get_data)(handle) as *mut Reactor;
    (*r).fast_this_turn = 0;
    (uv.check_stop)(handle);
}

unsafe extern "C" fn on_check_closed(handle: *mut c_void) {
    uv::get().expect("loaded").free_handle(handle, uv::UV_CHECK);
}

unsafe extern "C" fn on_idle_closed(handle: *mut c_void) {
    uv::get().expect("loaded").free_handle(handle, uv::UV_IDLE);
}

/// Env cleanup hook: close every handle so the loop can end (a Worker aborts on open handles).
/// Promises are not settled: no JS can run any more.
unsafe extern "C" fn teardown(data: *mut c_void) {
    let r = Box::from_raw(data as *mut Reactor);
    for w in r.watchers.values() {
        (**w).close_handle(r.uv);
    }
    (r.uv.close)(r.turn_check, on_check_closed);
    (r.uv.close)(r.retry, on_idle_closed);
    // What `install` allocated in the env (valgrind counted them as lost at exit).
    for value in [r.resource, r.make_errno, r.make_closed] {
        js::drop_ref(r.env, value);
    }
    sys::napi_async_destroy(r.env, r.async_ctx);
    sys::napi_set_instance_data(r.env, null_mut(), None, null_mut());
}
