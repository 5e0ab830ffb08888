//! net-unix/cluster's accept-and-pass loop, on a thread of its own so that a connection costs
//! the primary no JS at all: the thread accepts on each listener's readiness, hands the fd to
//! the least-loaded worker over that worker's seqpacket channel (several fds per `sendmsg`), and
//! keeps its copy until the worker's acknowledgement says it took it. The JS thread tells it
//! which listeners and workers there are (`dispatch*` below); it tells JS, through an eventfd,
//! only what JS must decide: connections for a `distribute` hook, and "all delivered" once
//! retired. The wire is `lib/cluster/wire.ts`'s.
//!
//! Every fd number here is owned by JS (listeners, channels) except the accepted connections;
//! JS removes a listener or channel here before it closes it, and the thread only touches fds
//! under the lock, looked up by id, so a closed and reused number is never used.

use crate::error::{neg, retry};
use crate::sock;
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, SockFlag};
use std::collections::{HashMap, HashSet, VecDeque};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// Connections in flight (sent, not yet acknowledged) to one worker, at most.
pub const WINDOW: usize = 32;
/// A worker's acknowledgements are read when its load reaches this (or by the sweep): reading
/// them at every wake-up would cost a syscall per worker per connection at low rates.
const COLLECT_AT: usize = WINDOW / 2;
/// Connections accepted per readiness event of a listener before the others get a turn.
const ACCEPT_BUDGET: usize = 128;
/// Acknowledgements are read at least this often while connections are in flight. Until then
/// the primary's copy keeps a connection open: a worker's `destroy()` (no FIN of its own) only
/// reaches the client when that copy is closed. Busy, this costs nothing more (the thread wakes
/// more often for connections); idle, one wake-up after the last connection. A listener whose
/// `accept` found no fd free is tried again this often too.
const SWEEP: Duration = Duration::from_millis(2);
/// Connections waiting for the `distribute` hook, at most, before a listener stops accepting.
const HOOK_QUEUE: usize = 256;

const CONNS: u8 = 1;
const ACK: u8 = 2;
const REFUSED_FULL: u32 = 2;
/// Acknowledgements read per `recvmmsg`, and the room for each (a full one is 12 + 8 × WINDOW).
const ACK_BATCH: usize = 16;
const ACK_ROOM: usize = 1024;

const LISTENER: u64 = 1;
const LINK: u64 = 2;
const KICK: u64 = 3;

fn token(kind: u64, id: u32) -> u64 {
    (kind << 32) | u64::from(id)
}

struct Listener {
    fd: RawFd,
    /// Links of the workers listening on this key, in the order they joined.
    members: Vec<u32>,
    /// Accepted connections no worker could take yet.
    waiting: VecDeque<OwnedFd>,
    /// Connections go to JS's `distribute` hook first.
    hook: bool,
    rotor: usize,
    armed: bool,
    /// `accept` failed for want of fds or memory: not watched until the next sweep, or a
    /// level-triggered listener would wake the thread again at once, for ever.
    stalled: bool,
}

struct Link {
    fd: RawFd,
    /// Sent and not yet acknowledged, in sending order, with their listener.
    inflight: VecDeque<(u32, OwnedFd)>,
    /// Chosen this turn, not sent yet.
    queued: usize,
    /// Listeners whose server in this worker is at its `maxConnections`.
    full: HashSet<u32>,
    /// The channel was full at the last send: nothing more until it is writable.
    blocked: bool,
    /// The channel failed: nothing more, ever (JS removes it when the worker exits).
    broken: bool,
    mask: EpollFlags,
    /// In the thread's epoll set (a broken channel leaves it: its hang-up is always reported).
    registered: bool,
}

impl Link {
    fn load(&self) -> usize {
        self.inflight.len() + self.queued
    }
}

struct State {
    listeners: HashMap<u32, Listener>,
    links: HashMap<u32, Link>,
    /// (link, listener, fds) chosen this turn, sent together at its end.
    outgoing: Vec<(u32, u32, Vec<OwnedFd>)>,
    /// (listener, fd) for the `distribute` hook.
    for_hook: Vec<(u32, RawFd)>,
    /// Given to JS for the hook and not assigned back yet.
    lent: usize,
    retired: bool,
    delivered_told: bool,
    told: bool,
    /// The thread waits without a timeout: a JS-side send must wake it for the sweep.
    sleeping: bool,
    last_sweep: Instant,
}

pub struct Dispatcher {
    epoll: Epoll,
    /// Readable when JS has something to do (`dispatch_events`).
    tell: EventFd,
    /// Wakes the thread (a sweep is due now that connections are in flight).
    kick: EventFd,
    state: Mutex<State>,
}

static DISPATCHER: OnceLock<Result<&'static Dispatcher, Errno>> = OnceLock::new();

fn get() -> Result<&'static Dispatcher, Errno> {
    *DISPATCHER.get_or_init(|| {
        let d: &'static Dispatcher = Box::leak(Box::new(Dispatcher {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            tell: EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?,
            kick: EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?,
            state: Mutex::new(State {
                listeners: HashMap::new(),
                links: HashMap::new(),
                outgoing: Vec::new(),
                for_hook: Vec::new(),
                lent: 0,
                retired: false,
                delivered_told: false,
                told: false,
                sleeping: false,
                last_sweep: Instant::now(),
            }),
        }));
        d.epoll.add(
            &d.kick,
            EpollEvent::new(EpollFlags::EPOLLIN, token(KICK, 0)),
        )?;
        std::thread::Builder::new()
            .name("net-unix-cluster".into())
            .spawn(move || d.run())
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EAGAIN)))?;
        Ok(d)
    })
}

fn borrow(fd: RawFd) -> BorrowedFd<'static> {
    // SAFETY: only for one epoll_ctl; JS keeps `fd` open while it is registered here.
    unsafe { BorrowedFd::borrow_raw(fd) }
}

impl Dispatcher {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&'static self) {
        let mut events = [EpollEvent::empty(); 64];
        loop {
            let timeout = {
                let mut s = self.lock();
                s.sleeping = !s.links.values().any(|k| !k.inflight.is_empty())
                    && !s.listeners.values().any(|l| l.stalled);
                if s.sleeping {
                    EpollTimeout::NONE
                } else {
                    EpollTimeout::from(SWEEP.as_millis() as u16)
                }
            };
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(_) => return,
            };
            let mut s = self.lock();
            s.sleeping = false;
            for ev in &events[..n] {
                let (kind, id) = (ev.data() >> 32, ev.data() as u32);
                match kind {
                    LISTENER => s.accept(id),
                    LINK => s.link_ready(id, ev.events()),
                    _ => {
                        let _ = self.kick.read();
                    }
                }
            }
            if s.last_sweep.elapsed() >= SWEEP {
                s.sweep();
            }
            self.settle(&mut s);
        }
    }

    /// The end of every change: waiting connections placed, sends made, interest updated, JS
    /// told what it must know.
    fn settle(&self, s: &mut State) {
        s.pump();
        s.flush();
        s.arm(&self.epoll);
        let mut tell = false;
        if !s.for_hook.is_empty() && !s.told {
            s.told = true;
            tell = true;
        }
        if s.retired && !s.delivered_told && s.delivered() {
            s.delivered_told = true;
            tell = true;
        }
        if tell {
            let _ = self.tell.write(1);
        }
        if s.sleeping && s.links.values().any(|l| !l.inflight.is_empty()) {
            s.sleeping = false;
            let _ = self.kick.write(1);
        }
    }
}

impl State {
    fn accept(&mut self, id: u32) {
        if self.retired {
            return;
        }
        for _ in 0..ACCEPT_BUDGET {
            let Some(l) = self.listeners.get(&id) else {
                return;
            };
            let fd = match sock::accept(l.fd, SockFlag::SOCK_CLOEXEC) {
                Ok(fd) => fd,
                Err(Errno::ECONNABORTED) => continue,
                Err(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM) => {
                    if let Some(l) = self.listeners.get_mut(&id) {
                        l.stalled = true;
                    }
                    return;
                }
                // EAGAIN: all taken.
                Err(_) => return,
            };
            if !self.place(id, fd) {
                return;
            }
        }
    }

    /// Gives an accepted connection a worker (or the hook); false when it had to wait.
    fn place(&mut self, id: u32, fd: OwnedFd) -> bool {
        let Some(l) = self.listeners.get_mut(&id) else {
            return false;
        };
        if l.hook {
            self.for_hook.push((id, fd.into_raw_fd()));
            return self.for_hook.len() < HOOK_QUEUE;
        }
        match self.choose(id, 0) {
            Some(link) => {
                self.queue(link, id, fd);
                true
            }
            None => {
                if let Some(l) = self.listeners.get_mut(&id) {
                    l.waiting.push_back(fd);
                }
                false
            }
        }
    }

    fn has_room(&self, link: u32, id: u32) -> bool {
        self.links
            .get(&link)
            .is_some_and(|k| !k.blocked && !k.broken && !k.full.contains(&id) && k.load() < WINDOW)
    }

    /// The member with room and the fewest connections in flight, from the listener's rotor on.
    fn least_loaded(&mut self, id: u32) -> Option<(u32, usize)> {
        let l = self.listeners.get_mut(&id)?;
        let start = l.rotor;
        l.rotor = l.rotor.wrapping_add(1);
        let l = &self.listeners[&id];
        let n = l.members.len();
        let mut best: Option<(u32, usize)> = None;
        for k in 0..n {
            let link = l.members[(start + k) % n];
            if !self.has_room(link, id) {
                continue;
            }
            let load = self.links[&link].load();
            if best.is_none_or(|(_, b)| load < b) {
                best = Some((link, load));
            }
        }
        best
    }

    /// `preferred` (the hook's pick) when it has room, else the least-loaded member.
    fn choose(&mut self, id: u32, preferred: u32) -> Option<u32> {
        let members = &self.listeners.get(&id)?.members;
        if preferred != 0 && members.contains(&preferred) && self.has_room(preferred, id) {
            return Some(preferred);
        }
        match self.least_loaded(id) {
            Some((link, load)) if load < COLLECT_AT => Some(link),
            _ => {
                // Loads as last read: read the acknowledgements that came since, and look again.
                let members = self.listeners.get(&id)?.members.clone();
                for link in members {
                    self.collect(link);
                }
                self.least_loaded(id).map(|(link, _)| link)
            }
        }
    }

    fn queue(&mut self, link: u32, id: u32, fd: OwnedFd) {
        if let Some(k) = self.links.get_mut(&link) {
            k.queued += 1;
        }
        match self
            .outgoing
            .iter_mut()
            .find(|(k, l, _)| *k == link && *l == id)
        {
            Some((_, _, fds)) => fds.push(fd),
            None => self.outgoing.push((link, id, vec![fd])),
        }
    }

    fn give_back(&mut self, id: u32, fds: impl IntoIterator<Item = OwnedFd>) {
        // A listener that is gone takes its connections with it (dropping closes them).
        if let Some(l) = self.listeners.get_mut(&id) {
            l.waiting.extend(fds);
        }
    }

    /// Sends what this turn chose: one message per worker and listener.
    fn flush(&mut self) {
        for (link, id, mut fds) in std::mem::take(&mut self.outgoing) {
            let Some(k) = self.links.get_mut(&link) else {
                self.give_back(id, fds);
                continue;
            };
            k.queued -= fds.len();
            let mut failed = false;
            while !fds.is_empty() && !k.blocked && !k.broken && !failed {
                let n = fds.len().min(crate::msg::MAX_FDS);
                let raw: Vec<RawFd> = fds[..n].iter().map(AsRawFd::as_raw_fd).collect();
                let mut header = [0u8; 12];
                header[0] = CONNS;
                header[4..8].copy_from_slice(&id.to_le_bytes());
                header[8..12].copy_from_slice(&(n as u32).to_le_bytes());
                let flags = MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT;
                let sent = retry(|| {
                    sendmsg::<()>(
                        k.fd,
                        &[IoSlice::new(&header)],
                        &[ControlMessage::ScmRights(&raw)],
                        flags,
                        None,
                    )
                });
                match sent {
                    Ok(_) => k.inflight.extend(fds.drain(..n).map(|fd| (id, fd))),
                    Err(Errno::EAGAIN | Errno::ENOBUFS | Errno::ETOOMANYREFS) => k.blocked = true,
                    // The worker closed its end: what it had not acknowledged goes elsewhere.
                    Err(
                        Errno::EPIPE | Errno::ECONNRESET | Errno::ECONNREFUSED | Errno::ENOTCONN,
                    ) => failed = true,
                    // Anything else (ENOMEM...) may pass: the worker is alive and may still read
                    // what it was sent, so nothing is taken back; tried again when writable.
                    Err(_) => k.blocked = true,
                }
            }
            self.give_back(id, fds);
            if failed {
                self.break_link(link);
            }
        }
    }

    /// Reads the worker's acknowledgements without waiting; a channel that failed is broken.
    fn collect(&mut self, link: u32) {
        if self.read_acks(link).is_err() {
            self.break_link(link);
        }
    }

    /// Reads the worker's acknowledgements without waiting; `Err` when its channel is done
    /// (the worker closed its end, or sent what no worker sends).
    fn read_acks(&mut self, link: u32) -> Result<(), ()> {
        loop {
            let Some(k) = self.links.get(&link) else {
                return Ok(());
            };
            if k.broken || (k.inflight.is_empty() && !k.blocked) {
                return Ok(());
            }
            let mut room = [[0u8; ACK_ROOM]; ACK_BATCH];
            let mut iov: [libc::iovec; ACK_BATCH] = std::array::from_fn(|i| libc::iovec {
                iov_base: room[i].as_mut_ptr().cast(),
                iov_len: ACK_ROOM,
            });
            // SAFETY: zeroed mmsghdrs are valid (no name, no control); each points at its iovec.
            let mut msgs: [libc::mmsghdr; ACK_BATCH] = unsafe { std::mem::zeroed() };
            for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
                m.msg_hdr.msg_iov = v;
                m.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: the headers and buffers above outlive the call.
            let n = retry(|| {
                Errno::result(unsafe {
                    libc::recvmmsg(
                        k.fd,
                        msgs.as_mut_ptr(),
                        ACK_BATCH as _,
                        libc::MSG_DONTWAIT as _,
                        std::ptr::null_mut(),
                    )
                })
            });
            let n = match n {
                Ok(n) => n as usize,
                Err(Errno::EAGAIN) => break,
                Err(_) => return Err(()),
            };
            for i in 0..n {
                let len = msgs[i].msg_len as usize;
                if len == 0 || msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                    return Err(());
                }
                self.ack(link, &room[i][..len]);
            }
            if n < ACK_BATCH {
                break;
            }
        }
        // The worker read its channel: there is room in it again.
        if let Some(k) = self.links.get_mut(&link) {
            k.blocked = false;
        }
        Ok(())
    }

    fn ack(&mut self, link: u32, data: &[u8]) {
        if data.len() < 12 || data[0] != ACK {
            return;
        }
        let u32_at = |at: usize| {
            data.get(at..at + 4)
                .map_or(u32::MAX, |b| u32::from_le_bytes(b.try_into().unwrap()))
        };
        let Some(k) = self.links.get_mut(&link) else {
            return;
        };
        let taken = (u32_at(4) as usize).min(k.inflight.len());
        let mut done: Vec<(u32, Option<OwnedFd>)> = k
            .inflight
            .drain(..taken)
            .map(|(id, fd)| (id, Some(fd)))
            .collect();
        for r in 0..(u32_at(8) as usize).min(taken) {
            let (offset, reason) = (u32_at(12 + r * 8) as usize, u32_at(16 + r * 8));
            let Some((id, fd)) = done.get_mut(offset) else {
                continue;
            };
            let (id, Some(fd)) = (*id, fd.take()) else {
                continue;
            };
            let member = self
                .listeners
                .get(&id)
                .is_some_and(|l| l.members.contains(&link));
            if reason == REFUSED_FULL && member {
                if let Some(k) = self.links.get_mut(&link) {
                    k.full.insert(id);
                }
            }
            self.give_back(id, [fd]);
        }
        let mut close: Vec<RawFd> = done
            .into_iter()
            .filter_map(|(_, fd)| fd.map(IntoRawFd::into_raw_fd))
            .collect();
        // Accepted in a row, they are mostly consecutive numbers: one close_range each run.
        sock::close_owned(&mut close);
    }

    fn link_ready(&mut self, link: u32, events: EpollFlags) {
        if events.intersects(EpollFlags::EPOLLOUT) {
            if let Some(k) = self.links.get_mut(&link) {
                k.blocked = false;
            }
        }
        if events.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP) {
            // The worker closed its end: reported whatever the mask, so never watched again.
            self.break_link(link);
        } else if events.intersects(EpollFlags::EPOLLIN) {
            self.collect(link);
        }
    }

    /// The channel failed: its unacknowledged connections go to other workers. Those it did
    /// acknowledge (the last acknowledgements may still be queued) it took, and may have read
    /// from: they must not go to another.
    fn break_link(&mut self, link: u32) {
        if self.links.get(&link).is_none_or(|k| k.broken) {
            return;
        }
        let _ = self.read_acks(link);
        let Some(k) = self.links.get_mut(&link) else {
            return;
        };
        k.broken = true;
        let back: Vec<(u32, OwnedFd)> = k.inflight.drain(..).collect();
        for (id, fd) in back {
            self.give_back(id, [fd]);
        }
    }

    fn sweep(&mut self) {
        self.last_sweep = Instant::now();
        for l in self.listeners.values_mut() {
            l.stalled = false;
        }
        let busy: Vec<u32> = self
            .links
            .iter()
            .filter(|(_, k)| !k.inflight.is_empty())
            .map(|(&id, _)| id)
            .collect();
        for link in busy {
            self.collect(link);
        }
    }

    /// Waiting connections to workers with room (or to the hook).
    fn pump(&mut self) {
        // Again while anything moved: choosing reads acknowledgements, which may give back
        // connections of a listener already passed over.
        while self.pump_once() {}
    }

    fn pump_once(&mut self) -> bool {
        let mut moved = false;
        let ids: Vec<u32> = self
            .listeners
            .iter()
            .filter(|(_, l)| !l.waiting.is_empty())
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            while let Some(l) = self.listeners.get(&id) {
                if l.hook {
                    let room = l.members.iter().any(|&k| self.has_room(k, id));
                    if !room || self.for_hook.len() >= HOOK_QUEUE {
                        break;
                    }
                    let Some(fd) = self.listeners.get_mut(&id).unwrap().waiting.pop_front() else {
                        break;
                    };
                    self.for_hook.push((id, fd.into_raw_fd()));
                    moved = true;
                    continue;
                }
                if l.waiting.is_empty() {
                    break;
                }
                let Some(link) = self.choose(id, 0) else {
                    break;
                };
                let Some(fd) = self
                    .listeners
                    .get_mut(&id)
                    .and_then(|l| l.waiting.pop_front())
                else {
                    break;
                };
                self.queue(link, id, fd);
                moved = true;
            }
        }
        moved
    }

    /// Listeners accept while some worker has room; channels are watched when full or blocked.
    fn arm(&mut self, epoll: &Epoll) {
        let hook_full = self.for_hook.len() >= HOOK_QUEUE;
        let mut want: Vec<(u32, bool)> = Vec::new();
        for (&id, l) in &self.listeners {
            let off = self.retired || l.stalled || !l.waiting.is_empty() || (l.hook && hook_full);
            let on = !off && l.members.iter().any(|&k| self.has_room(k, id));
            if on != l.armed {
                want.push((id, on));
            }
        }
        for (id, on) in want {
            let l = self.listeners.get_mut(&id).unwrap();
            let flags = if on {
                EpollFlags::EPOLLIN
            } else {
                EpollFlags::empty()
            };
            let mut ev = EpollEvent::new(flags, token(LISTENER, id));
            if epoll.modify(borrow(l.fd), &mut ev).is_ok() {
                l.armed = on;
            }
        }
        for (&id, k) in self.links.iter_mut() {
            if k.broken {
                if k.registered {
                    let _ = epoll.delete(borrow(k.fd));
                    k.registered = false;
                }
                continue;
            }
            let mask = if k.blocked {
                EpollFlags::EPOLLOUT | EpollFlags::EPOLLIN
            } else if k.load() >= WINDOW {
                EpollFlags::EPOLLIN
            } else {
                EpollFlags::empty()
            };
            if mask != k.mask {
                let mut ev = EpollEvent::new(mask, token(LINK, id));
                if epoll.modify(borrow(k.fd), &mut ev).is_ok() {
                    k.mask = mask;
                }
            }
        }
    }

    fn delivered(&self) -> bool {
        self.outgoing.is_empty()
            && self.for_hook.is_empty()
            && self.lent == 0
            && self.listeners.values().all(|l| l.waiting.is_empty())
            && self.links.values().all(|k| k.inflight.is_empty())
    }
}

/// Runs `f` on the dispatcher's state and settles; a negative errno when there is none.
fn with<T>(f: impl FnOnce(&mut State, &Epoll) -> T) -> Result<T, i32> {
    let d = get().map_err(neg)?;
    let mut s = d.lock();
    let r = f(&mut s, &d.epoll);
    d.settle(&mut s);
    Ok(r)
}

fn status(r: Result<nix::Result<()>, i32>) -> i32 {
    match r {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => neg(e),
        Err(e) => e,
    }
}

/// Starts the dispatcher (once per process); the fd readable when [`dispatch_events`] has
/// news, or a negative errno.
pub fn init() -> i32 {
    match get() {
        Ok(d) => d.tell.as_raw_fd(),
        Err(e) => neg(e),
    }
}

/// Registers `fd` with the thread's epoll, watching nothing yet (`arm` decides).
fn register(epoll: &Epoll, fd: RawFd, kind: u64, id: u32) -> nix::Result<()> {
    epoll.add(
        borrow(fd),
        EpollEvent::new(EpollFlags::empty(), token(kind, id)),
    )
}

/// Accepts on listening socket `fd` as listener `id`; `hook`: connections go to JS first.
pub fn listener(id: u32, fd: RawFd, hook: bool) -> i32 {
    status(with(|s, epoll| {
        register(epoll, fd, LISTENER, id)?;
        let l = Listener {
            fd,
            members: Vec::new(),
            waiting: VecDeque::new(),
            hook,
            rotor: 0,
            armed: false,
            stalled: false,
        };
        s.listeners.insert(id, l);
        Ok(())
    }))
}

/// Forgets listener `id` (its fd stays open, JS's to close), closing the connections waiting.
pub fn listener_close(id: u32) {
    let _ = with(|s, epoll| {
        if let Some(l) = s.listeners.remove(&id) {
            let _ = epoll.delete(borrow(l.fd));
        }
        for k in s.links.values_mut() {
            k.full.remove(&id);
        }
        // The hook's connections of this listener are ours until JS assigns them.
        let (mine, rest): (Vec<_>, Vec<_>) = s.for_hook.drain(..).partition(|(l, _)| *l == id);
        s.for_hook = rest;
        let mut close: Vec<RawFd> = mine.into_iter().map(|(_, fd)| fd).collect();
        sock::close_owned(&mut close);
    });
}

/// Whether connections of listener `id` go to JS's hook first.
pub fn set_hook(id: u32, on: bool) {
    let _ = with(|s, _| {
        if let Some(l) = s.listeners.get_mut(&id) {
            l.hook = on;
        }
    });
}

/// Sends connections over channel `fd` (a worker's) as link `id`.
pub fn link(id: u32, fd: RawFd) -> i32 {
    status(with(|s, epoll| {
        register(epoll, fd, LINK, id)?;
        let k = Link {
            fd,
            inflight: VecDeque::new(),
            queued: 0,
            full: HashSet::new(),
            blocked: false,
            broken: false,
            mask: EpollFlags::empty(),
            registered: true,
        };
        s.links.insert(id, k);
        Ok(())
    }))
}

/// The worker of `link` is gone: the acknowledgements it sent still count, the rest of what
/// was in flight to it goes to others. Its fd stays open (JS's to close).
pub fn link_gone(link: u32) {
    let _ = with(|s, epoll| {
        s.break_link(link);
        if let Some(k) = s.links.remove(&link) {
            if k.registered {
                let _ = epoll.delete(borrow(k.fd));
            }
        }
        for l in s.listeners.values_mut() {
            l.members.retain(|&k| k != link);
        }
    });
}

/// Adds (`on`) or removes the worker of `link` as a member of listener `id`.
pub fn member(id: u32, link: u32, on: bool) {
    let _ = with(|s, _| {
        let Some(l) = s.listeners.get_mut(&id) else {
            return;
        };
        l.members.retain(|&k| k != link);
        if on && s.links.contains_key(&link) {
            l.members.push(link);
        } else if let Some(k) = s.links.get_mut(&link) {
            k.full.remove(&id);
        }
    });
}

/// The worker of `link` has room again on listener `id` (it was at `maxConnections`).
pub fn room(id: u32, link: u32) {
    let _ = with(|s, _| {
        // The refusal that made it full may still be unread: read it first, or it would
        // mark the worker full again after this, for good.
        s.collect(link);
        if let Some(k) = s.links.get_mut(&link) {
            k.full.remove(&id);
        }
    });
}

/// Accepts nothing more; true when every accepted connection is already delivered (else
/// [`dispatch_events`] says so once it is).
pub fn retire() -> bool {
    with(|s, _| {
        s.retired = true;
        s.delivered()
    })
    .unwrap_or(true)
}

/// What JS must act on: `[delivered (0 | 1), listener, fd, listener, fd, ...]` (the fds for
/// the hook, to be given back by [`assign`]).
pub fn events() -> Vec<i32> {
    let Ok(d) = get() else {
        return vec![0];
    };
    let _ = d.tell.read();
    let mut s = d.lock();
    s.told = false;
    let mut out = vec![i32::from(s.retired && s.delivered_told)];
    for (id, fd) in std::mem::take(&mut s.for_hook) {
        out.extend([id as i32, fd]);
        s.lent += 1;
    }
    d.settle(&mut s);
    out
}

/// The hook's picks: `[link (0: any), listener, fd, ...]`.
pub fn assign(picks: &[i32]) {
    let _ = with(|s, _| {
        for p in picks.chunks_exact(3) {
            let (link, id) = (p[0] as u32, p[1] as u32);
            // SAFETY: JS gives back each fd `events` gave it, once.
            let fd = unsafe { OwnedFd::from_raw_fd(p[2]) };
            s.lent = s.lent.saturating_sub(1);
            if !s.listeners.contains_key(&id) {
                continue; // closed meanwhile: the connection goes with it
            }
            match s.choose(id, link) {
                Some(k) => s.queue(k, id, fd),
                None => s.give_back(id, [fd]),
            }
        }
    });
}

/// `[listeners, links, waiting, in flight, for the hook]`, for tests and drains.
pub fn stats() -> Vec<u32> {
    with(|s, _| {
        vec![
            s.listeners.len() as u32,
            s.links.len() as u32,
            s.listeners.values().map(|l| l.waiting.len() as u32).sum(),
            s.links.values().map(|k| k.inflight.len() as u32).sum(),
            s.for_hook.len() as u32,
        ]
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{recvmsg, send, ControlMessageOwned, SockType};
    use std::io::IoSliceMut;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    /// The worker's end: the next CONNS message, as (listener id, fds), within 5 s.
    fn next_conns(fd: &OwnedFd) -> (u32, Vec<OwnedFd>) {
        let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        assert_eq!(
            poll(&mut p, PollTimeout::from(5000u16)),
            Ok(1),
            "a CONNS message"
        );
        let mut buf = [0u8; 64];
        let mut iov = [IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([RawFd; 8]);
        let m = recvmsg::<()>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .unwrap();
        let mut fds = Vec::new();
        for c in m.cmsgs().unwrap() {
            if let ControlMessageOwned::ScmRights(r) = c {
                // SAFETY: received just now, ours.
                fds.extend(r.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
            }
        }
        let bytes = m.bytes;
        assert_eq!(bytes, 12);
        assert_eq!(buf[0], CONNS);
        let id = u32::from_le_bytes(buf[4..8].try_into().unwrap());
        let count = u32::from_le_bytes(buf[8..12].try_into().unwrap());
        assert_eq!(count as usize, fds.len());
        (id, fds)
    }

    fn ack(fd: &OwnedFd, taken: u32, refused: &[(u32, u32)]) {
        let mut m = vec![ACK, 0, 0, 0];
        m.extend(taken.to_le_bytes());
        m.extend((refused.len() as u32).to_le_bytes());
        for (offset, reason) in refused {
            m.extend(offset.to_le_bytes());
            m.extend(reason.to_le_bytes());
        }
        send(fd.as_raw_fd(), &m, MsgFlags::empty()).unwrap();
    }

    fn in_flight(link: u32) -> usize {
        get().unwrap().lock().links[&link].inflight.len()
    }

    /// Polls `f` (the sweep reads acknowledgements every 2 ms) for up to 5 s.
    fn eventually(what: &str, f: impl Fn() -> bool) {
        let until = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < until, "{what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A listening TCP socket on 127.0.0.1 (non-blocking, as the primary's) and its address.
    fn tcp_listener() -> (TcpListener, std::net::SocketAddr) {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        server.set_nonblocking(true).unwrap();
        let at = server.local_addr().unwrap();
        (server, at)
    }

    /// A worker's channel: (the primary's end, the worker's end).
    fn channel() -> (OwnedFd, OwnedFd) {
        sock::socketpair_typed(
            SockType::SeqPacket,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        )
        .unwrap()
    }

    #[test]
    fn accepts_passes_keeps_until_acknowledged_and_resends() {
        assert!(init() >= 0);
        let (server, at) = tcp_listener();
        let (a_mine, a_worker) = channel();
        let (b_mine, b_worker) = channel();
        let (id, a, b) = (901, 911, 912);
        assert_eq!(listener(id, server.as_raw_fd(), false), 0);
        assert_eq!(link(a, a_mine.as_raw_fd()), 0);
        member(id, a, true);

        // Accepted, passed with its listener's id, kept until acknowledged, then closed here.
        let _c1 = TcpStream::connect(at).unwrap();
        let (got, fds) = next_conns(&a_worker);
        assert_eq!((got, fds.len()), (id, 1));
        assert_eq!(in_flight(a), 1);
        ack(&a_worker, 1, &[]);
        eventually("the acknowledgement is read", || in_flight(a) == 0);

        // Refused at maxConnections: back to the listener, nothing more to that worker until
        // it has room again, then sent again.
        let _c2 = TcpStream::connect(at).unwrap();
        let (_, fds) = next_conns(&a_worker);
        drop(fds);
        ack(&a_worker, 1, &[(0, REFUSED_FULL)]);
        eventually("the refused connection waits", || {
            get().unwrap().lock().listeners[&id].waiting.len() == 1
        });
        assert!(get().unwrap().lock().links[&a].full.contains(&id));
        room(id, a);
        let (_, fds) = next_conns(&a_worker);
        assert_eq!(fds.len(), 1, "sent again once there is room");
        ack(&a_worker, 1, &[]);

        // A worker that dies before acknowledging: what it was sent goes to another.
        assert_eq!(link(b, b_mine.as_raw_fd()), 0);
        member(id, b, true);
        member(id, a, false);
        let _c3 = TcpStream::connect(at).unwrap();
        let (_, fds) = next_conns(&b_worker);
        drop(fds);
        member(id, a, true);
        link_gone(b);
        let (_, fds) = next_conns(&a_worker);
        assert_eq!(fds.len(), 1, "re-sent to the worker left");
        ack(&a_worker, 1, &[]);
        eventually("acknowledged", || in_flight(a) == 0);

        // A worker that exits right after acknowledging one of two (its acknowledgement still
        // unread here): that one it took, and may have read from, so only the other goes to
        // another worker.
        let (c_mine, c_worker) = channel();
        let c = 913;
        assert_eq!(link(c, c_mine.as_raw_fd()), 0);
        member(id, c, true);
        member(id, a, false);
        let first = TcpStream::connect(at).unwrap();
        let second = TcpStream::connect(at).unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            got.extend(next_conns(&c_worker).1);
        }
        let peer = |fd: &OwnedFd| crate::fdinfo::inet_peer(fd.as_raw_fd()).unwrap().1;
        assert_eq!(peer(&got[0]), u32::from(first.local_addr().unwrap().port()));
        member(id, a, true);
        ack(&c_worker, 1, &[]);
        link_gone(c);
        let (_, fds) = next_conns(&a_worker);
        assert_eq!(fds.len(), 1, "only the unacknowledged one is sent again");
        assert_eq!(
            peer(&fds[0]),
            u32::from(second.local_addr().unwrap().port())
        );
        ack(&a_worker, 1, &[]);
        eventually("acknowledged", || in_flight(a) == 0);

        listener_close(id);
        link_gone(a);
        let s = get().unwrap().lock();
        assert!(!s.listeners.contains_key(&id) && !s.links.contains_key(&a));
    }

    #[test]
    fn hook_gets_connections_and_a_closed_listener_closes_what_it_had_not_assigned() {
        use std::io::Read;
        assert!(init() >= 0);
        let (server, at) = tcp_listener();
        let (mine, worker) = channel();
        let (id, w) = (921, 931);
        assert_eq!(listener(id, server.as_raw_fd(), true), 0);
        assert_eq!(link(w, mine.as_raw_fd()), 0);
        member(id, w, true);
        let held = |n: usize| {
            move || {
                get()
                    .unwrap()
                    .lock()
                    .for_hook
                    .iter()
                    .filter(|(l, _)| *l == id)
                    .count()
                    == n
            }
        };

        // The hook's pick (0: any) sends it like any other.
        let _c1 = TcpStream::connect(at).unwrap();
        eventually("the connection waits for the hook", held(1));
        let picks: Vec<i32> = {
            let mut s = get().unwrap().lock();
            let (mine, rest): (Vec<_>, Vec<_>) = s.for_hook.drain(..).partition(|(l, _)| *l == id);
            s.for_hook = rest;
            mine.into_iter()
                .flat_map(|(l, fd)| [w as i32, l as i32, fd])
                .collect()
        };
        assign(&picks);
        let (got, fds) = next_conns(&worker);
        assert_eq!((got, fds.len()), (id, 1));
        ack(&worker, 1, &[]);

        // Closed before the hook ran: the connection is closed, not leaked.
        let mut c2 = TcpStream::connect(at).unwrap();
        eventually("the second waits for the hook", held(1));
        listener_close(id);
        c2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(
            c2.read(&mut [0u8; 1]).unwrap(),
            0,
            "closed: the client sees its end"
        );
        link_gone(w);
    }

    /// The `schedstat` of this process's thread named `name`, opened (before fds run out). A
    /// new thread names itself once it runs: looked for until then.
    fn thread_stat(name: &str) -> std::fs::File {
        let find = || {
            std::fs::read_dir("/proc/self/task").unwrap().find_map(|t| {
                let dir = t.unwrap().path();
                let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
                (comm.trim() == name).then(|| std::fs::File::open(dir.join("schedstat")).unwrap())
            })
        };
        eventually("the thread has its name", || find().is_some());
        find().unwrap()
    }

    /// Its CPU time so far, in ns.
    fn cpu_ns(stat: &std::fs::File) -> u64 {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 128];
        let n = stat.read_at(&mut buf, 0).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        text.split(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn out_of_fds_it_waits_instead_of_spinning_then_accepts() {
        if !crate::alone("dispatch::tests::out_of_fds_it_waits_instead_of_spinning_then_accepts") {
            return;
        }
        assert!(init() >= 0);
        let (server, at) = tcp_listener();
        let (mine, worker) = channel();
        let (id, w) = (941, 951);
        assert_eq!(listener(id, server.as_raw_fd(), false), 0);
        assert_eq!(link(w, mine.as_raw_fd()), 0);
        // Queued in the backlog before any worker is there to take them.
        let clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(at).unwrap()).collect();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: reads and sets this process's fd limit.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        let stat = thread_stat("net-unix-cluste");
        // The lowest free fd number becomes the limit: no number is left for accept.
        // SAFETY: dup of stdin, closed at once; only the number is kept.
        let free = unsafe { libc::dup(0) };
        unsafe { libc::close(free) };
        let low = libc::rlimit {
            rlim_cur: free as u64,
            rlim_max: limit.rlim_max,
        };
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &low) }, 0);
        let cpu = cpu_ns(&stat);
        member(id, w, true);
        std::thread::sleep(Duration::from_millis(300));
        let spent = cpu_ns(&stat) - cpu;
        assert!(
            spent < 60_000_000,
            "EMFILE: the thread spent {spent} ns of 300 ms"
        );
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) }, 0);
        let mut got = 0;
        while got < clients.len() {
            got += next_conns(&worker).1.len();
        }
        assert_eq!(got, 3, "accepted once fds are free again");
    }

    #[test]
    fn room_right_after_a_refusal_still_unread_is_not_lost() {
        assert!(init() >= 0);
        let (server, at) = tcp_listener();
        let (mine, worker) = channel();
        let (id, w) = (961, 971);
        assert_eq!(listener(id, server.as_raw_fd(), false), 0);
        assert_eq!(link(w, mine.as_raw_fd()), 0);
        member(id, w, true);
        let _c = TcpStream::connect(at).unwrap();
        drop(next_conns(&worker));
        // Refused at maxConnections, and room again at once (as 'room' can come by IPC before
        // the primary has read the refusal).
        ack(&worker, 1, &[(0, REFUSED_FULL)]);
        room(id, w);
        let (_, fds) = next_conns(&worker);
        assert_eq!(
            fds.len(),
            1,
            "sent again: the worker is not left marked full"
        );
        ack(&worker, 1, &[]);
        listener_close(id);
        link_gone(w);
    }

    #[test]
    fn a_worker_that_closes_its_channel_does_not_spin_the_thread() {
        if !crate::alone(
            "dispatch::tests::a_worker_that_closes_its_channel_does_not_spin_the_thread",
        ) {
            return;
        }
        assert!(init() >= 0);
        let (server, _) = tcp_listener();
        let (mine, worker) = channel();
        let (id, w) = (981, 991);
        assert_eq!(listener(id, server.as_raw_fd(), false), 0);
        assert_eq!(link(w, mine.as_raw_fd()), 0);
        member(id, w, true);
        let stat = thread_stat("net-unix-cluste");
        let cpu = cpu_ns(&stat);
        drop(worker); // a hang-up, reported whatever the mask, until JS hears of the exit
        std::thread::sleep(Duration::from_millis(300));
        let spent = cpu_ns(&stat) - cpu;
        assert!(
            spent < 60_000_000,
            "hang-up: the thread spent {spent} ns of 300 ms"
        );
        link_gone(w);
    }
}
