//! Raw Node-API exports: the calls that hold typed arrays across loop turns and settle promises
//! from libuv callbacks, which napi-rs's macros cannot express. Typed by hand in
//! `lib/binding.ts`. An argument that is not what it should be reads as -1 for an fd (every
//! syscall refuses it with `EBADF`) and 0 otherwise: never as a usable fd.
//!
//! Each callback runs on the JS thread of `env` with Node's handle scope open: the contract of
//! every `js` helper, which is why their bodies are one `unsafe` block each.

use crate::dgram;
use crate::error::{self, to_js};
use crate::io::{self, Op};
use crate::js::{self, Env, Value};
use crate::mmsg::Many;
use crate::reactor::Reactor;
use crate::sock::{self, sock_flags};
use napi::sys::napi_callback_info as Info;
use smallvec::SmallVec;

type Cb = unsafe extern "C" fn(Env, Info) -> Value;

/// Defines every raw export on `exports`.
///
/// # Safety
/// Module init, on the JS thread of `env`.
pub unsafe fn register(env: Env, exports: Value) {
    let table: [(&str, Cb); 22] = [
        ("init", init),
        ("acceptAsync", accept_async),
        ("recvmsgAsync", recvmsg_async),
        ("sendmsgAsync", sendmsg_async),
        ("cancel", cancel),
        ("close", close),
        ("pending", pending),
        ("recvmsgSync", recvmsg_sync),
        ("sendmsgSync", sendmsg_sync),
        ("recvManyAsync", recv_many_async),
        ("sendManyAsync", send_many_async),
        ("recvManyNow", recv_many_now),
        ("closeAll", close_all),
        ("turn", turn),
        ("setRef", set_ref),
        ("recvfromAsync", recvfrom_async),
        ("sendtoAsync", sendto_async),
        ("recvfromSync", recvfrom_sync),
        ("sendtoSync", sendto_sync),
        ("readyAsync", ready_async),
        ("setReadPool", set_read_pool),
        ("readStart", read_start),
    ];
    for (name, f) in table {
        // SAFETY: module init on the JS thread.
        unsafe { js::export(env, exports, name, Some(f)) };
    }
}

/// SCM_RIGHTS group sizes from a JS array of numbers.
unsafe fn groups_of(env: Env, v: Value) -> SmallVec<[u32; 2]> {
    // SAFETY: JS thread (callers are callbacks).
    unsafe { js::i32s(env, v) }
        .into_iter()
        .map(|g| g.max(0) as u32)
        .collect()
}

/// The buffers of a call: one typed array (the common single-buffer case, no JS array to
/// read), or each typed array of a JS array.
unsafe fn buf_values(env: Env, v: Value) -> SmallVec<[Value; 4]> {
    // SAFETY: JS thread (callers are callbacks).
    unsafe {
        if js::is_typedarray(env, v) {
            return SmallVec::from_elem(v, 1);
        }
        (0..js::array_len(env, v))
            .map(|i| js::element(env, v, i))
            .collect()
    }
}

/// The memory of each typed array of a call, for a blocking call made right now.
unsafe fn buf_bytes(env: Env, v: Value) -> io::Bufs {
    // SAFETY: JS thread (callers are callbacks).
    unsafe {
        buf_values(env, v)
            .into_iter()
            .map(|v| js::bytes(env, v))
            .collect()
    }
}

/// Room for fds in an `out` array of `[truncated, nfds, ...fds]`, as asked but never beyond it.
unsafe fn fd_room(env: Env, max_fds: Value, out: &[i32]) -> usize {
    // SAFETY: JS thread (callers are callbacks).
    (unsafe { js::get_u32(env, max_fds) } as usize).min(out.len().saturating_sub(2))
}

/// This env's reactor, or a thrown error (the facade calls `init` first, so only misuse).
unsafe fn reactor_or_throw(env: Env) -> Option<*mut Reactor> {
    // SAFETY: JS thread (callers are callbacks).
    unsafe {
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
}

/// Submits `op` on the fd and token of a call's arguments to this env's reactor (see
/// [`Reactor::submit`]), or throws where there is none.
unsafe fn start(
    env: Env,
    fd: Value,
    token: Value,
    op: Op,
    bufs: &[Value],
    out: &mut [i32],
) -> Value {
    // SAFETY: JS thread (callers are callbacks); `bufs` and `out` belong to the current call.
    unsafe {
        let Some(r) = reactor_or_throw(env) else {
            return std::ptr::null_mut();
        };
        let (fd, token) = (js::fd(env, fd), js::get_u32(env, token));
        let v = Reactor::submit(r, fd, token, op, bufs, out);
        Reactor::tell_closed_readers(r);
        v
    }
}

/// `init(makeErrnoError, makeClosedError, scheduleTurn?)`: sets up this env's reactor: on
/// Node's loop, or with `scheduleTurn` (`() => setImmediate(turn)`) on a poll thread of ours.
/// Throws where neither can work.
unsafe extern "C" fn init(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [make_errno, make_closed, schedule] = js::args(env, info);
        if !Reactor::of(env).is_null() {
            return js::undefined(env);
        }
        let schedule = js::is_function(env, schedule).then_some(schedule);
        match Reactor::install(env, make_errno, make_closed, schedule) {
            Ok(()) => js::undefined(env),
            Err(msg) => js::throw(env, msg),
        }
    }
}

/// `acceptAsync(fd, flags, token) -> fd | -errno | Promise<fd>`: a number when it completed at
/// once, a promise when it waits.
unsafe extern "C" fn accept_async(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [fd, flags, token] = js::args(env, info);
        let flags = sock_flags(js::get_i32(env, flags).unwrap_or(0));
        let op = Op::Accept { flags };
        start(env, fd, token, op, &[], &mut [])
    }
}

/// `recvmsgAsync(fd, bufs, maxFds, token, out) -> bytes | -errno | Promise<[bytes, truncated,
/// ...fds]>`: completed at once, it leaves `[truncated, nfds, ...fds]` in the Int32Array `out`.
unsafe extern "C" fn recvmsg_async(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [fd, bufs, max_fds, token, out] = js::args(env, info);
        let out = js::i32s_mut(env, out);
        let op = Op::Recv {
            max_fds: fd_room(env, max_fds, out),
        };
        let bufs = buf_values(env, bufs);
        start(env, fd, token, op, &bufs, out)
    }
}

/// `sendmsgAsync(fd, bufs, fds, groups, token) -> bytes | -errno | Promise<bytes>`
unsafe extern "C" fn sendmsg_async(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [fd, bufs, fds, groups, token] = js::args(env, info);
        let fds = js::i32s(env, fds);
        let groups = groups_of(env, groups);
        let op = Op::Send {
            fds: &fds,
            groups: &groups,
        };
        let bufs = buf_values(env, bufs);
        start(env, fd, token, op, &bufs, &mut [])
    }
}

/// `cancel(token, reason) -> boolean`
unsafe extern "C" fn cancel(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [token, reason] = js::args(env, info);
        let r = Reactor::of(env);
        let cancelled = !r.is_null() && (*r).cancel(js::get_u32(env, token), reason);
        js::boolean(env, cancelled)
    }
}

/// `close(fd) -> 0 | -errno`, rejecting what is pending on it first.
unsafe extern "C" fn close(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [fd] = js::args(env, info);
        let fd = js::fd(env, fd);
        let r = Reactor::of(env);
        let rc = if r.is_null() {
            to_js(sock::close(fd).map(|_| 0))
        } else {
            let rc = (*r).close(fd);
            Reactor::tell_closed_readers(r);
            rc
        };
        js::int(env, rc)
    }
}

/// `pending(fd) -> number` of operations waiting on it.
unsafe extern "C" fn pending(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [fd] = js::args(env, info);
        let r = Reactor::of(env);
        let n = if r.is_null() {
            0
        } else {
            (*r).pending(js::fd(env, fd))
        };
        js::int(env, n as i32)
    }
}

/// `recvmsgSync(fd, bufs, maxFds, out) -> bytes | -errno` (blocking, see [`io::blocking`]),
/// leaving `[truncated, nfds, ...fds]` in the Int32Array `out`.
unsafe extern "C" fn recvmsg_sync(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs. The buffers are read in this
    // call and used only during it.
    unsafe {
        let [fd, bufs, max_fds, out] = js::args(env, info);
        let fd = js::fd(env, fd);
        let out = js::i32s_mut(env, out);
        let room = fd_room(env, max_fds, out);
        let bufs = buf_bytes(env, bufs);
        let received = io::blocking(fd, false, || io::recv_bufs(fd, &bufs, room, false));
        js::int(
            env,
            match received {
                Ok(r) => r.write_into(out),
                Err(e) => error::neg(e),
            },
        )
    }
}

/// `sendmsgSync(fd, bufs, fds, groups) -> bytes | -errno` (blocking, see [`io::blocking`]).
unsafe extern "C" fn sendmsg_sync(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs. The buffers are read in this
    // call and used only during it.
    unsafe {
        let [fd, bufs, fds, groups] = js::args(env, info);
        let fd = js::fd(env, fd);
        let fds = js::i32s(env, fds);
        let groups = groups_of(env, groups);
        let bufs = buf_bytes(env, bufs);
        let n = io::blocking(fd, true, || io::send_bufs(fd, &bufs, &fds, &groups, false));
        js::int(env, to_js(n.map(|n| n as i32)))
    }
}

/// How a batched receive reads, from its JS arguments.
unsafe fn many_of(env: Env, slot: Value, max_fds: Value, from: Value, creds: Value) -> Many {
    // SAFETY: JS thread (callers are callbacks).
    unsafe {
        Many {
            slot: js::get_u32(env, slot) as usize,
            max_fds: (js::get_u32(env, max_fds) as usize).min(crate::msg::MAX_FDS),
            from: js::get_bool(env, from).unwrap_or(false),
            creds: js::get_bool(env, creds).unwrap_or(false),
        }
    }
}

/// `recvManyAsync(fd, buf, slot, maxFds, token, out, from?, creds?) -> n | -errno |
/// Promise<items>`: up to `buf.length / slot` messages, message `i` in `buf[i*slot ..]`; at
/// once, it leaves the layout of [`io::Done::into_items`] (with senders when `from`) in the
/// Int32Array `out`, which the caller sized.
unsafe extern "C" fn recv_many_async(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [fd, buf, slot, max_fds, token, out, from, creds] = js::args(env, info);
        let op = Op::RecvMany(many_of(env, slot, max_fds, from, creds));
        let out = js::i32s_mut(env, out);
        start(env, fd, token, op, &[buf], out)
    }
}

/// `recvManyNow(fd, buf, slot, maxFds, from, creds, out) -> n | -errno`: [`recv_many_async`]
/// that never waits (`EAGAIN` when nothing is queued), for a caller that watches readiness
/// itself (the evented datagram socket).
unsafe extern "C" fn recv_many_now(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs. The buffer is used only during
    // this call.
    unsafe {
        let [fd, buf, slot, max_fds, from, creds, out] = js::args(env, info);
        let op = Op::RecvMany(many_of(env, slot, max_fds, from, creds));
        let out = js::i32s_mut(env, out);
        let bufs: io::Bufs = SmallVec::from_elem(js::bytes(env, buf), 1);
        let done = io::attempt(js::fd(env, fd), &op, &bufs);
        js::int(env, crate::reactor::immediate(done, out))
    }
}

/// `sendManyAsync(fd, bufs, fds, counts, token, out) -> messages | -errno | Promise<[messages,
/// lastBytes]>`: message `i` is `bufs[i]` with the next `counts[i]` of `fds`; at once, it leaves
/// `[messages, lastBytes]` in `out`.
unsafe extern "C" fn send_many_async(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [fd, bufs, fds, counts, token, out] = js::args(env, info);
        let fds = js::i32s(env, fds);
        let counts = groups_of(env, counts);
        let op = Op::SendMany {
            fds: &fds,
            counts: &counts,
        };
        let bufs = buf_values(env, bufs);
        let out = js::i32s_mut(env, out);
        start(env, fd, token, op, &bufs, out)
    }
}

/// `closeAll(fds, owned?) -> 0 | -errno`: closes every fd of an array in one call (received fds
/// a receiver does not keep); the first error is reported after all were tried. With `owned`
/// (fds this library made or received and knows to be open: dups, unclaimed fds), runs of
/// consecutive numbers go in one `close_range` and no error is reported.
unsafe extern "C" fn close_all(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [fds, owned] = js::args(env, info);
        let r = Reactor::of(env);
        let mut fds = js::i32s(env, fds);
        if js::get_bool(env, owned).unwrap_or(false) {
            if !r.is_null() {
                for &fd in fds.iter() {
                    (*r).forget(fd);
                }
            }
            sock::close_owned(&mut fds);
            if !r.is_null() {
                Reactor::tell_closed_readers(r);
            }
            return js::int(env, 0);
        }
        let mut rc = 0;
        for fd in fds {
            let one = if r.is_null() {
                to_js(sock::close(fd).map(|_| 0))
            } else {
                (*r).close(fd)
            };
            if rc == 0 {
                rc = one.min(0);
            }
        }
        if !r.is_null() {
            Reactor::tell_closed_readers(r);
        }
        js::int(env, rc)
    }
}

/// `turn()`: the poll-thread backend's end of a turn, called by the facade's `setImmediate`.
unsafe extern "C" fn turn(env: Env, _info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let r = Reactor::of(env);
        if !r.is_null() {
            (*r).turn();
        }
        js::undefined(env)
    }
}

/// `setRef(fd, on) -> 0 | -errno`: whether waits on `fd` keep the process alive.
unsafe extern "C" fn set_ref(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [fd, on] = js::args(env, info);
        let r = Reactor::of(env);
        let on = js::get_bool(env, on).unwrap_or(true);
        let rc = if r.is_null() {
            0
        } else {
            (*r).set_ref(js::fd(env, fd), on)
        };
        js::int(env, rc)
    }
}

/// Room for fds in an `out` of the datagram layout (see [`dgram::HEAD`]), as asked but never
/// beyond it.
unsafe fn from_room(env: Env, max_fds: Value, out: &[i32]) -> usize {
    // SAFETY: JS thread (callers are callbacks).
    (unsafe { js::get_u32(env, max_fds) } as usize)
        .min(out.len().saturating_sub(dgram::HEAD))
        .min(crate::msg::MAX_FDS)
}

/// The bytes of an address argument, or `None` for anything that is not a typed array.
unsafe fn addr_arg<'a>(env: Env, v: Value) -> Option<&'a [u8]> {
    // SAFETY: JS thread; the bytes are used during the current call only.
    unsafe {
        if !js::is_typedarray(env, v) {
            return None;
        }
        let (p, n) = js::bytes(env, v);
        Some(if p.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(p, n)
        })
    }
}

/// `recvfromAsync(fd, bufs, maxFds, creds, token, out) -> bytes | -errno | Promise<layout>`:
/// completed at once, it leaves the layout (see [`dgram::From::push_many`]) in `out`.
unsafe extern "C" fn recvfrom_async(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [fd, bufs, max_fds, creds, token, out] = js::args(env, info);
        let out = js::i32s_mut(env, out);
        let op = Op::RecvFrom {
            max_fds: from_room(env, max_fds, out),
            creds: js::get_bool(env, creds).unwrap_or(false),
        };
        let bufs = buf_values(env, bufs);
        start(env, fd, token, op, &bufs, out)
    }
}

/// `sendtoAsync(fd, bufs, addr | null, fds, groups, creds, token) -> bytes | -errno |
/// Promise<bytes>`
unsafe extern "C" fn sendto_async(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [fd, bufs, to, fds, groups, creds, token] = js::args(env, info);
        let fds = js::i32s(env, fds);
        let groups = groups_of(env, groups);
        let op = Op::SendTo {
            to: addr_arg(env, to),
            fds: &fds,
            groups: &groups,
            creds: js::get_bool(env, creds).unwrap_or(false),
        };
        let bufs = buf_values(env, bufs);
        start(env, fd, token, op, &bufs, &mut [])
    }
}

/// `recvfromSync(fd, bufs, maxFds, creds, out, dontwait) -> bytes | -errno`, leaving the layout
/// in `out`; without `dontwait` it blocks (see [`io::blocking`]).
unsafe extern "C" fn recvfrom_sync(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs. The buffers are read in this
    // call and used only during it.
    unsafe {
        let [fd, bufs, max_fds, creds, out, dontwait] = js::args(env, info);
        let fd = js::fd(env, fd);
        let out = js::i32s_mut(env, out);
        let room = from_room(env, max_fds, out);
        let creds = js::get_bool(env, creds).unwrap_or(false);
        let dontwait = js::get_bool(env, dontwait).unwrap_or(false);
        let bufs = buf_bytes(env, bufs);
        let got = io::blocking(fd, false, || {
            io::recv_bufs_from(fd, &bufs, room, creds, dontwait)
        });
        js::int(
            env,
            match got {
                Ok(f) => f.write_into(out),
                Err(e) => error::neg(e),
            },
        )
    }
}

/// `sendtoSync(fd, bufs, addr | null, fds, groups, creds, dontwait) -> bytes | -errno`; without
/// `dontwait` it blocks (see [`io::blocking`]).
unsafe extern "C" fn sendto_sync(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs. The buffers are read in this
    // call and used only during it.
    unsafe {
        let [fd, bufs, to, fds, groups, creds, dontwait] = js::args(env, info);
        let fd = js::fd(env, fd);
        let fds = js::i32s(env, fds);
        let groups = groups_of(env, groups);
        let to = addr_arg(env, to);
        let creds = js::get_bool(env, creds).unwrap_or(false);
        let dontwait = js::get_bool(env, dontwait).unwrap_or(false);
        let bufs = buf_bytes(env, bufs);
        let n = io::blocking(fd, true, || {
            io::send_bufs_to(fd, &bufs, to, &fds, &groups, creds, dontwait)
        });
        js::int(env, to_js(n.map(|n| n as i32)))
    }
}

/// `readyAsync(fd, writes, token) -> revents | -errno | Promise<revents>`: no I/O, done once
/// `fd` is readable (or writable); the evented datagram socket and `notifyBarrier` wait so.
unsafe extern "C" fn ready_async(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [fd, writes, token] = js::args(env, info);
        let op = Op::Ready {
            writes: js::get_bool(env, writes).unwrap_or(false),
        };
        start(env, fd, token, op, &[], &mut [])
    }
}

/// `setReadPool(id, pool, at, out) -> id`: the persistent reads started with read pool `id` (a
/// new one when `id` is -1) go into `pool` from `at[0]` on (the Int32Array `at` is read before
/// each read), and leave `[n, (bytes, flags, nfds, ...fds) × n]` in the Int32Array `out`, which
/// has room for `MAX_BATCH` messages of `MAX_FDS` fds; message `i` of a batch is in slot `i` of
/// the pool's rest.
unsafe extern "C" fn set_read_pool(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [id, pool, at, out] = js::args(env, info);
        let Some(r) = reactor_or_throw(env) else {
            return std::ptr::null_mut();
        };
        let id = js::get_i32(env, id).unwrap_or(-1);
        js::int(env, (*r).set_read_pool(id, pool, at, out))
    }
}

/// `readStart(fd, pool, slot, onRead) -> 0 | -errno`: reads `fd` into read pool `pool` whenever
/// it is readable until `onRead(n)` (`n` messages, or a negative errno) returns anything but `true`
/// (see the reactor's `reader`). `slot` is the slot size of a batched read (0: a seqpacket
/// socket, never batched, each message read whole: `-EMSGSIZE` with its length in `out[0]` asks
/// for a pool with room for it). Closing `fd` through `close` ends it.
unsafe extern "C" fn read_start(env: Env, info: Info) -> Value {
    // SAFETY: a callback on the JS thread; see the module docs.
    unsafe {
        let [fd, pool, slot, on_read] = js::args(env, info);
        let Some(r) = reactor_or_throw(env) else {
            return std::ptr::null_mut();
        };
        if !js::is_function(env, on_read) {
            return js::throw(env, "readStart: onRead must be a function");
        }
        let pool = js::get_u32(env, pool) as usize;
        let slot = js::get_u32(env, slot) as usize;
        let rc = (*r).read_start(js::fd(env, fd), pool, slot, on_read);
        Reactor::tell_closed_readers(r);
        js::int(env, rc)
    }
}
