//! Native core of net-unix. Exports take plain numbers and typed arrays and report failure as a
//! negative errno; the TypeScript facade owns validation, defaults and error shaping.

pub mod addr;
pub mod dgram;
pub mod error;
mod js;
pub mod msg;
mod reactor;
pub mod sock;
mod uv;

use error::to_js;
use napi::bindgen_prelude::{Env, Object, Result};
use napi::sys;
use napi::JsValue;
use napi_derive::napi;
use reactor::{Kind, Reactor};
use smallvec::SmallVec;
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

/// `accept4` on `fd`, blocking unless the listener is non-blocking.
#[napi]
pub fn accept_sync(fd: i32, flags: i32) -> i32 {
    raw(sock::accept(fd, sock_flags(flags)))
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

/// Largest number of fds one message may carry (`SCM_MAX_FD`).
#[napi]
pub const MAX_FDS: u32 = msg::MAX_FDS as u32;

// ---- raw exports: typed arrays held across turns, promises settled from libuv callbacks ----

type Cb = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

#[napi(module_exports)]
pub fn register(exports: Object, env: Env) -> Result<()> {
    let table: [(&str, Cb); 9] = [
        ("init", init),
        ("acceptAsync", accept_async),
        ("recvmsgAsync", recvmsg_async),
        ("sendmsgAsync", sendmsg_async),
        ("cancel", cancel),
        ("close", close),
        ("pending", pending),
        ("recvmsgSync", recvmsg_sync),
        ("sendmsgSync", sendmsg_sync),
    ];
    for (name, f) in table {
        // SAFETY: registering functions on the exports object during module init.
        unsafe { js::export(env.raw(), exports.raw(), name, Some(f)) };
    }
    // SAFETY: as above.
    unsafe { dgram::register(env.raw(), exports.raw()) };
    Ok(())
}

/// SCM_RIGHTS group sizes from a JS array of numbers.
pub(crate) unsafe fn groups_of(env: js::Env, v: js::Value) -> SmallVec<[u32; 2]> {
    js::i32s(env, v).into_iter().map(|g| g as u32).collect()
}

/// The buffers of a call: one typed array (the common single-buffer case, no JS array to
/// read), or each typed array of a JS array.
pub(crate) unsafe fn buf_values(env: js::Env, v: js::Value) -> SmallVec<[js::Value; 4]> {
    if js::is_typedarray(env, v) {
        return SmallVec::from_elem(v, 1);
    }
    (0..js::array_len(env, v))
        .map(|i| js::element(env, v, i))
        .collect()
}

/// `init(makeErrnoError, makeClosedError)`: sets up this env's reactor (throws where no libuv).
unsafe extern "C" fn init(env: js::Env, info: sys::napi_callback_info) -> js::Value {
    let [make_errno, make_closed] = js::args(env, info);
    if !Reactor::of(env).is_null() {
        return js::undefined(env);
    }
    match Reactor::install(env, make_errno, make_closed) {
        Ok(()) => js::undefined(env),
        Err(msg) => js::throw(env, msg),
    }
}

pub(crate) unsafe fn reactor_or_throw(env: js::Env) -> Option<*mut Reactor> {
    let r = Reactor::of(env);
    if r.is_null() {
        js::throw(
            env,
            "net-unix: async operations are not initialised in this environment",
        );
        None
    } else {
        Some(r)
    }
}

/// `acceptAsync(fd, flags, token) -> fd | -errno | Promise<fd>`: a number when it completed at
/// once, a promise when it waits.
unsafe extern "C" fn accept_async(env: js::Env, info: sys::napi_callback_info) -> js::Value {
    let [fd, flags, token] = js::args(env, info);
    let Some(r) = reactor_or_throw(env) else {
        return std::ptr::null_mut();
    };
    let kind = Kind::Accept {
        flags: sock_flags(js::get_i32(env, flags)),
    };
    Reactor::submit(
        r,
        js::get_i32(env, fd),
        js::get_u32(env, token),
        kind,
        &[],
        &mut [],
    )
}

/// Room for fds in an `out` array of `[truncated, nfds, ...fds]`, as asked but never beyond it.
unsafe fn fd_room(env: js::Env, max_fds: js::Value, out: &[i32]) -> usize {
    (js::get_u32(env, max_fds) as usize).min(out.len().saturating_sub(2))
}

/// `recvmsgAsync(fd, bufs, maxFds, token, out) -> bytes | -errno | Promise<[bytes, truncated,
/// ...fds]>`: completed at once, it leaves `[truncated, nfds, ...fds]` in the Int32Array `out`.
unsafe extern "C" fn recvmsg_async(env: js::Env, info: sys::napi_callback_info) -> js::Value {
    let [fd, bufs, max_fds, token, out] = js::args(env, info);
    let Some(r) = reactor_or_throw(env) else {
        return std::ptr::null_mut();
    };
    let out = js::i32s_mut(env, out);
    let kind = Kind::Recv {
        max_fds: fd_room(env, max_fds, out),
    };
    Reactor::submit(
        r,
        js::get_i32(env, fd),
        js::get_u32(env, token),
        kind,
        &buf_values(env, bufs),
        out,
    )
}

/// `sendmsgAsync(fd, bufs, fds, groups, token) -> bytes | -errno | Promise<bytes>`
unsafe extern "C" fn sendmsg_async(env: js::Env, info: sys::napi_callback_info) -> js::Value {
    let [fd, bufs, fds, groups, token] = js::args(env, info);
    let Some(r) = reactor_or_throw(env) else {
        return std::ptr::null_mut();
    };
    let fds = js::i32s(env, fds);
    let groups = groups_of(env, groups);
    let kind = Kind::Send {
        fds: &fds,
        groups: &groups,
    };
    Reactor::submit(
        r,
        js::get_i32(env, fd),
        js::get_u32(env, token),
        kind,
        &buf_values(env, bufs),
        &mut [],
    )
}

/// `cancel(token, reason) -> boolean`
unsafe extern "C" fn cancel(env: js::Env, info: sys::napi_callback_info) -> js::Value {
    let [token, reason] = js::args(env, info);
    let r = Reactor::of(env);
    js::boolean(
        env,
        !r.is_null() && (*r).cancel(js::get_u32(env, token), reason),
    )
}

/// `close(fd) -> 0 | -errno`, rejecting what is pending on it first.
unsafe extern "C" fn close(env: js::Env, info: sys::napi_callback_info) -> js::Value {
    let [fd] = js::args(env, info);
    let fd = js::get_i32(env, fd);
    let r = Reactor::of(env);
    let rc = if r.is_null() {
        to_js(sock::close(fd).map(|_| 0))
    } else {
        (*r).close(fd)
    };
    js::int(env, rc)
}

/// `pending(fd) -> number` of operations waiting on it.
unsafe extern "C" fn pending(env: js::Env, info: sys::napi_callback_info) -> js::Value {
    let [fd] = js::args(env, info);
    let r = Reactor::of(env);
    js::int(
        env,
        if r.is_null() {
            0
        } else {
            (*r).pending(js::get_i32(env, fd)) as i32
        },
    )
}

/// The memory of each typed array in a JS array.
pub(crate) unsafe fn buf_bytes(env: js::Env, arr: js::Value) -> SmallVec<[(*mut u8, usize); 4]> {
    buf_values(env, arr)
        .into_iter()
        .map(|v| js::bytes(env, v))
        .collect()
}

/// `recvmsgSync(fd, bufs, maxFds, out) -> bytes | -errno` (blocking), leaving `[truncated, nfds,
/// ...fds]` in the Int32Array `out`.
unsafe extern "C" fn recvmsg_sync(env: js::Env, info: sys::napi_callback_info) -> js::Value {
    let [fd, bufs, max_fds, out] = js::args(env, info);
    let out = js::i32s_mut(env, out);
    let received = reactor::recv_bufs(
        js::get_i32(env, fd),
        &buf_bytes(env, bufs),
        fd_room(env, max_fds, out),
        false,
    );
    js::int(
        env,
        match received {
            Ok(r) => r.write_into(out),
            Err(e) => error::neg(e),
        },
    )
}

/// `sendmsgSync(fd, bufs, fds, groups) -> bytes | -errno` (blocking).
unsafe extern "C" fn sendmsg_sync(env: js::Env, info: sys::napi_callback_info) -> js::Value {
    let [fd, bufs, fds, groups] = js::args(env, info);
    let fds = js::i32s(env, fds);
    let groups = groups_of(env, groups);
    let n = reactor::send_bufs(
        js::get_i32(env, fd),
        &buf_bytes(env, bufs),
        &fds,
        &groups,
        false,
    );
    js::int(env, to_js(n.map(|n| n as i32)))
}
