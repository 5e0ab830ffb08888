//! Native core of net-unix. Exports take plain numbers and typed arrays and report failure as a
//! negative errno; the TypeScript facade owns validation, defaults and error shaping.

pub mod addr;
pub mod dgram;
pub mod dispatch;
pub mod error;
pub mod fdinfo;
pub mod io;
mod js;
pub mod mmsg;
pub mod msg;
pub mod nonblock;
pub mod pidfd;
mod raw;
mod reactor;
pub mod sock;
mod uv;

use error::to_js;
use napi::bindgen_prelude::{Env, Object, Result};
use napi::JsValue;
use napi_derive::napi;
use sock::sock_flags;
use std::os::fd::{IntoRawFd, OwnedFd};

fn raw(r: nix::Result<OwnedFd>) -> i32 {
    to_js(r.map(IntoRawFd::into_raw_fd))
}

/// `socket` + `bind` + `listen`; the new fd or a negative errno.
#[napi]
pub fn listen(addr: &[u8], flags: i32, backlog: u32) -> i32 {
    raw(sock::listen(addr, sock_flags(flags), backlog))
}

/// A socket connected to `addr`, blocking while the listener's backlog is full.
#[napi]
pub fn connect_sync(addr: &[u8], flags: i32) -> i32 {
    raw(sock::connect(addr, sock_flags(flags)))
}

/// A new unconnected stream socket.
#[napi]
pub fn socket(flags: i32) -> i32 {
    raw(sock::stream_socket(sock_flags(flags)))
}

/// One connect attempt: 0, or a negative errno (`-EAGAIN` while the backlog is full).
#[napi]
pub fn try_connect(fd: i32, addr: &[u8]) -> i32 {
    to_js(sock::connect_fd(fd, addr).map(|_| 0))
}

/// `accept4` on `fd`, blocking unless the listener is non-blocking by its owner's choice.
#[napi]
pub fn accept_sync(fd: i32, flags: i32) -> i32 {
    raw(io::blocking(fd, false, || {
        sock::accept(fd, sock_flags(flags))
    }))
}

/// `[fd0, fd1]`, or `[-errno]`.
#[napi]
pub fn socketpair(flags: i32) -> Vec<i32> {
    match sock::socketpair(sock_flags(flags)) {
        Ok((a, b)) => vec![a.into_raw_fd(), b.into_raw_fd()],
        Err(e) => vec![error::neg(e)],
    }
}

/// `[pid, uid, gid]`, or `[-errno]`.
#[napi]
pub fn peercred(fd: i32) -> Vec<i64> {
    match sock::peercred(fd) {
        Ok((pid, uid, gid)) => vec![pid.into(), uid.into(), gid.into()],
        Err(e) => vec![error::neg(e).into()],
    }
}

/// Sets (`on`) or clears `O_NONBLOCK`; 0 or a negative errno.
#[napi]
pub fn set_nonblocking(fd: i32, on: bool) -> i32 {
    to_js(sock::set_nonblocking(fd, on).map(|_| 0))
}

/// A close-on-exec duplicate of `fd` (the streams' `writeWithFds` keeps its own copies), or a
/// negative errno.
#[napi]
pub fn dup(fd: i32) -> i32 {
    raw(sock::dup_cloexec(fd))
}

/// `shutdown(fd, SHUT_WR)` (`write_only`) or `shutdown(fd, SHUT_RDWR)`; 0 or a negative errno.
#[napi]
pub fn shutdown(fd: i32, write_only: bool) -> i32 {
    to_js(sock::shutdown(fd, write_only).map(|_| 0))
}

/// The peer of a connected TCP socket as `[address, port]` (addresses written as `net` writes
/// them), or `[]` when it has none (not TCP, not connected).
#[napi]
pub fn inet_peer(fd: i32) -> Vec<String> {
    match fdinfo::inet_peer(fd) {
        Some((address, port)) => vec![address, port.to_string()],
        None => vec![],
    }
}

/// Peeks at a connected socket: 1 bytes wait, 0 end of stream, `-EAGAIN` nothing yet, or
/// another negative errno (the hand-over's test that a connection's next request has begun).
#[napi]
pub fn has_input(fd: i32) -> i32 {
    to_js(sock::has_input(fd).map(|r| match r {
        Some(true) => 1,
        Some(false) => 0,
        None => -(nix::errno::Errno::EAGAIN as i32),
    }))
}

/// Largest number of fds one message may carry (`SCM_MAX_FD`).
#[napi]
pub const MAX_FDS: u32 = msg::MAX_FDS as u32;

/// Most messages one batched call moves.
#[napi]
pub const MAX_BATCH: u32 = mmsg::MAX_BATCH as u32;

/// Whether this is the copy of the test binary that runs `test` alone. Otherwise runs that copy
/// (one test, one thread) and checks that it passed: a test that counts this process's fds, or
/// limits them, cannot share the process with tests opening and closing theirs meanwhile.
#[cfg(test)]
pub(crate) fn alone(test: &str) -> bool {
    if std::env::var_os("NET_UNIX_TEST_ALONE").is_some() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--test-threads=1"])
        .env("NET_UNIX_TEST_ALONE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{stdout}"
    );
    false
}

/// Registers the raw exports (see `raw`) beside the generated ones.
#[napi(module_exports)]
pub fn register(exports: Object, env: Env) -> Result<()> {
    // SAFETY: module init, on the JS thread, with this module's exports object.
    unsafe { raw::register(env.raw(), exports.raw()) };
    Ok(())
}

/// Starts net-unix/cluster's accept-and-pass thread (see `dispatch`); the fd that is readable
/// when `dispatchEvents` has news, or a negative errno.
#[napi]
pub fn dispatch_init() -> i32 {
    dispatch::init()
}

/// Accepts on listening socket `fd` as listener `id`; 0 or a negative errno.
#[napi]
pub fn dispatch_listener(id: u32, fd: i32, hook: bool) -> i32 {
    dispatch::listener(id, fd, hook)
}

/// Forgets listener `id` (its fd stays the caller's), closing the connections waiting on it.
#[napi]
pub fn dispatch_listener_close(id: u32) {
    dispatch::listener_close(id)
}

/// Whether listener `id`'s connections go to the `distribute` hook first.
#[napi]
pub fn dispatch_hook(id: u32, on: bool) {
    dispatch::set_hook(id, on)
}

/// Sends connections over the channel `fd` as link `id`; 0 or a negative errno.
#[napi]
pub fn dispatch_link(id: u32, fd: i32) -> i32 {
    dispatch::link(id, fd)
}

/// The worker of `link` is gone (its fd stays the caller's).
#[napi]
pub fn dispatch_link_gone(link: u32) {
    dispatch::link_gone(link)
}

/// Adds (`on`) or removes the worker of `link` as a member of listener `id`.
#[napi]
pub fn dispatch_member(id: u32, link: u32, on: bool) {
    dispatch::member(id, link, on)
}

/// The worker of `link` has room again on listener `id`.
#[napi]
pub fn dispatch_room(id: u32, link: u32) {
    dispatch::room(id, link)
}

/// Accepts nothing more; true when everything accepted is delivered already.
#[napi]
pub fn dispatch_retire() -> bool {
    dispatch::retire()
}

/// `[delivered, listener, fd, ...]`: what JS must act on.
#[napi]
pub fn dispatch_events() -> Vec<i32> {
    dispatch::events()
}

/// The `distribute` hook's picks: `[link (0: any), listener, fd, ...]`.
#[napi]
pub fn dispatch_assign(picks: Vec<i32>) {
    dispatch::assign(&picks)
}

/// `[listeners, links, waiting, in flight, for the hook]`.
#[napi]
pub fn dispatch_stats() -> Vec<u32> {
    dispatch::stats()
}
