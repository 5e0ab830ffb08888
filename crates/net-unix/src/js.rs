//! The only module that calls Node-API directly, for the exports napi-rs's macros cannot express
//! (promises settled from libuv callbacks, buffers held across loop turns). Every call's status
//! is checked: a failure means the environment is going away (a Worker terminating), so these
//! helpers degrade to null / `None` / a value that makes the caller fail cleanly, and assert in
//! debug builds. A failed argument read never becomes a usable fd number (see [`fd`]).
//!
//! Every function here is `unsafe` for the same reason: it must run on the JS thread of `env`,
//! inside a handle scope, with values that belong to that env.

#![deny(unsafe_op_in_unsafe_fn)]

use napi::sys;
use smallvec::SmallVec;
use std::ffi::c_void;
use std::os::fd::RawFd;
use std::ptr::null_mut;

pub type Value = sys::napi_value;
pub type Env = sys::napi_env;

/// Whether a Node-API call succeeded; asserts in debug builds (see the module docs).
fn ok(status: sys::napi_status) -> bool {
    let ok = status == sys::Status::napi_ok;
    debug_assert!(
        ok || status == sys::Status::napi_pending_exception,
        "Node-API status {status}"
    );
    ok
}

/// The first `N` arguments of a call (missing ones are `undefined`).
///
/// # Safety
/// See the module docs; `info` is the current call's.
pub unsafe fn args<const N: usize>(env: Env, info: sys::napi_callback_info) -> [Value; N] {
    let mut argc = N;
    let mut argv = [null_mut(); N];
    // SAFETY: argv has room for argc values.
    let st = unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            null_mut(),
            null_mut(),
        )
    };
    ok(st);
    argv
}

/// A number argument as i32; `None` when it is not a number.
///
/// # Safety
/// See the module docs.
pub unsafe fn get_i32(env: Env, v: Value) -> Option<i32> {
    let mut x = 0;
    // SAFETY: see the module docs.
    (unsafe { sys::napi_get_value_int32(env, v, &mut x) } == sys::Status::napi_ok).then_some(x)
}

/// A boolean argument; `None` when it is not a boolean.
///
/// # Safety
/// See the module docs.
pub unsafe fn get_bool(env: Env, v: Value) -> Option<bool> {
    let mut b = false;
    // SAFETY: see the module docs.
    (unsafe { sys::napi_get_value_bool(env, v, &mut b) } == sys::Status::napi_ok).then_some(b)
}

/// An fd argument; -1 (which every syscall refuses with `EBADF`) when it is not a number, so a
/// missing argument can never name fd 0.
///
/// # Safety
/// See the module docs.
pub unsafe fn fd(env: Env, v: Value) -> RawFd {
    // SAFETY: see the module docs.
    unsafe { get_i32(env, v) }.unwrap_or(-1)
}

/// A count or token argument; 0 when it is not a number.
///
/// # Safety
/// See the module docs.
pub unsafe fn get_u32(env: Env, v: Value) -> u32 {
    let mut x = 0;
    // SAFETY: see the module docs.
    if unsafe { sys::napi_get_value_uint32(env, v, &mut x) } != sys::Status::napi_ok {
        return 0;
    }
    x
}

/// The length of a JS array; 0 for anything else.
///
/// # Safety
/// See the module docs.
pub unsafe fn array_len(env: Env, v: Value) -> u32 {
    let mut n = 0;
    // SAFETY: see the module docs.
    if unsafe { sys::napi_get_array_length(env, v, &mut n) } != sys::Status::napi_ok {
        return 0;
    }
    n
}

/// Element `i` of an array.
///
/// # Safety
/// See the module docs.
pub unsafe fn element(env: Env, v: Value, i: u32) -> Value {
    let mut e = null_mut();
    // SAFETY: see the module docs.
    ok(unsafe { sys::napi_get_element(env, v, i, &mut e) });
    e
}

/// The elements of a JS array of fds (-1 for an item that is not a number), or of an Int32Array.
///
/// # Safety
/// See the module docs.
pub unsafe fn i32s(env: Env, v: Value) -> SmallVec<[i32; 8]> {
    // SAFETY: see the module docs.
    unsafe {
        // An Int32Array is read in one call (the batched paths pass fds so), an array per item.
        if let Some((sys::TypedarrayType::int32_array, data, len)) = typedarray(env, v) {
            return SmallVec::from_slice(std::slice::from_raw_parts(data.cast::<i32>(), len));
        }
        (0..array_len(env, v))
            .map(|i| fd(env, element(env, v, i)))
            .collect()
    }
}

/// Whether `v` is a function.
///
/// # Safety
/// See the module docs.
pub unsafe fn is_function(env: Env, v: Value) -> bool {
    let mut t = 0;
    // SAFETY: see the module docs.
    ok(unsafe { sys::napi_typeof(env, v, &mut t) }) && t == sys::ValueType::napi_function
}

/// Whether `v` is a typed array (of any element type).
///
/// # Safety
/// See the module docs.
pub unsafe fn is_typedarray(env: Env, v: Value) -> bool {
    let mut b = false;
    // SAFETY: see the module docs.
    ok(unsafe { sys::napi_is_typedarray(env, v, &mut b) }) && b
}

/// A typed array's element type, memory and length right now; `None` if it is detached or not
/// a typed array.
///
/// # Safety
/// See the module docs.
unsafe fn typedarray(
    env: Env,
    v: Value,
) -> Option<(sys::napi_typedarray_type, *mut c_void, usize)> {
    let mut ty = 0;
    let mut len = 0usize;
    let mut data: *mut c_void = null_mut();
    // SAFETY: see the module docs; the out-pointers are valid locals.
    let st = unsafe {
        sys::napi_get_typedarray_info(env, v, &mut ty, &mut len, &mut data, null_mut(), null_mut())
    };
    (st == sys::Status::napi_ok && !data.is_null()).then_some((ty, data, len))
}

/// The bytes a Uint8Array views right now: `(null, 0)` if it is detached or not a typed array.
///
/// # Safety
/// See the module docs.
pub unsafe fn bytes(env: Env, v: Value) -> (*mut u8, usize) {
    // SAFETY: see the module docs.
    unsafe { typedarray(env, v) }.map_or((null_mut(), 0), |(_, data, len)| (data.cast(), len))
}

/// The items of an Int32Array right now: empty if it is detached or not an Int32Array.
///
/// # Safety
/// See the module docs; the slice is used only during the current call.
pub unsafe fn i32s_mut<'a>(env: Env, v: Value) -> &'a mut [i32] {
    // SAFETY: see the module docs; an Int32Array's memory holds `len` aligned i32s.
    unsafe {
        match typedarray(env, v) {
            Some((sys::TypedarrayType::int32_array, data, len)) => {
                std::slice::from_raw_parts_mut(data.cast(), len)
            }
            _ => &mut [],
        }
    }
}

/// A JS number.
///
/// # Safety
/// See the module docs.
pub unsafe fn int(env: Env, n: i32) -> Value {
    let mut v = null_mut();
    // SAFETY: see the module docs.
    ok(unsafe { sys::napi_create_int32(env, n, &mut v) });
    v
}

/// A JS boolean.
///
/// # Safety
/// See the module docs.
pub unsafe fn boolean(env: Env, b: bool) -> Value {
    let mut v = null_mut();
    // SAFETY: see the module docs.
    ok(unsafe { sys::napi_get_boolean(env, b, &mut v) });
    v
}

/// `undefined`.
///
/// # Safety
/// See the module docs.
pub unsafe fn undefined(env: Env) -> Value {
    let mut v = null_mut();
    // SAFETY: see the module docs.
    ok(unsafe { sys::napi_get_undefined(env, &mut v) });
    v
}

/// A JS string.
///
/// # Safety
/// See the module docs.
pub unsafe fn string(env: Env, s: &str) -> Value {
    let mut v = null_mut();
    // SAFETY: see the module docs; the length bounds the read.
    ok(unsafe { sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut v) });
    v
}

/// A new empty object.
///
/// # Safety
/// See the module docs.
pub unsafe fn object(env: Env) -> Value {
    let mut v = null_mut();
    // SAFETY: see the module docs.
    ok(unsafe { sys::napi_create_object(env, &mut v) });
    v
}

/// A JS array of numbers.
///
/// # Safety
/// See the module docs.
pub unsafe fn array_of(env: Env, items: &[i32]) -> Value {
    let mut a = null_mut();
    // SAFETY: see the module docs.
    unsafe {
        ok(sys::napi_create_array_with_length(env, items.len(), &mut a));
        for (i, n) in items.iter().enumerate() {
            ok(sys::napi_set_element(env, a, i as u32, int(env, *n)));
        }
    }
    a
}

/// Calls the function `f` with `argv` and `this` undefined from a loop callback: its result,
/// or what it threw (taken, so no later Node-API call sees it pending).
///
/// # Safety
/// See the module docs; `f` is a function.
pub unsafe fn call_catching(env: Env, f: Value, argv: &[Value]) -> Result<Value, Value> {
    let mut out = null_mut();
    // SAFETY: see the module docs; argv is a valid slice.
    let st = unsafe {
        sys::napi_call_function(env, undefined(env), f, argv.len(), argv.as_ptr(), &mut out)
    };
    if st == sys::Status::napi_ok {
        return Ok(out);
    }
    let mut err = null_mut();
    // SAFETY: see the module docs.
    unsafe { sys::napi_get_and_clear_last_exception(env, &mut err) };
    Err(err)
}

/// Reports `err` as Node does an exception thrown by an I/O callback: `'uncaughtException'`,
/// or the process ends.
///
/// # Safety
/// See the module docs; called from a loop callback (no JS on the stack).
pub unsafe fn fatal_exception(env: Env, err: Value) {
    // SAFETY: see the module docs.
    unsafe { sys::napi_fatal_exception(env, err) };
}

/// Throws an `Error` with `msg`; returns null, what a callback returns after throwing.
///
/// # Safety
/// See the module docs.
pub unsafe fn throw(env: Env, msg: &str) -> Value {
    let mut s = msg.as_bytes().to_vec();
    s.push(0);
    // SAFETY: see the module docs; `s` is NUL-terminated.
    ok(unsafe { sys::napi_throw_error(env, null_mut(), s.as_ptr().cast()) });
    null_mut()
}

/// Defines `name` on `exports` as the raw callback `f`.
///
/// # Safety
/// See the module docs.
pub unsafe fn export(env: Env, exports: Value, name: &str, f: sys::napi_callback) {
    let mut func = null_mut();
    // SAFETY: see the module docs; the name's length bounds the read.
    unsafe {
        ok(sys::napi_create_function(
            env,
            name.as_ptr().cast(),
            name.len() as isize,
            f,
            null_mut(),
            &mut func,
        ));
        ok(sys::napi_set_property(
            env,
            exports,
            string(env, name),
            func,
        ));
    }
}

/// A strong reference that keeps a JS value alive across loop turns. Deleted explicitly with
/// [`Ref::delete`] (deleting needs the env, so there is no `Drop`).
pub struct Ref(sys::napi_ref);

impl Ref {
    /// # Safety
    /// See the module docs.
    pub unsafe fn new(env: Env, v: Value) -> Ref {
        let mut r = null_mut();
        // SAFETY: see the module docs.
        ok(unsafe { sys::napi_create_reference(env, v, 1, &mut r) });
        Ref(r)
    }

    /// The value; null if the reference could not be made.
    ///
    /// # Safety
    /// See the module docs; the reference belongs to `env`.
    pub unsafe fn get(&self, env: Env) -> Value {
        let mut v = null_mut();
        if !self.0.is_null() {
            // SAFETY: see the module docs.
            ok(unsafe { sys::napi_get_reference_value(env, self.0, &mut v) });
        }
        v
    }

    /// Calls the function this refers to with `argv` and `this` undefined; null if it threw.
    ///
    /// # Safety
    /// See the module docs; the referenced value is a function.
    pub unsafe fn call(&self, env: Env, argv: &[Value]) -> Value {
        let mut out = null_mut();
        // SAFETY: see the module docs; argv is a valid slice.
        unsafe {
            sys::napi_call_function(
                env,
                undefined(env),
                self.get(env),
                argv.len(),
                argv.as_ptr(),
                &mut out,
            );
        }
        out
    }

    /// # Safety
    /// See the module docs; the reference belongs to `env`.
    pub unsafe fn delete(self, env: Env) {
        if !self.0.is_null() {
            // SAFETY: see the module docs; consumed, so deleted once.
            ok(unsafe { sys::napi_delete_reference(env, self.0) });
        }
    }
}

/// The resolving end of a promise; consumed by settling it, so it settles exactly once.
pub struct Deferred(sys::napi_deferred);

impl Deferred {
    /// A new promise and its deferred.
    ///
    /// # Safety
    /// See the module docs.
    pub unsafe fn new(env: Env) -> (Deferred, Value) {
        let mut deferred = null_mut();
        let mut promise = null_mut();
        // SAFETY: see the module docs.
        ok(unsafe { sys::napi_create_promise(env, &mut deferred, &mut promise) });
        (Deferred(deferred), promise)
    }

    /// # Safety
    /// See the module docs.
    pub unsafe fn resolve(self, env: Env, v: Value) {
        // SAFETY: see the module docs; consumed, so settled once.
        ok(unsafe { sys::napi_resolve_deferred(env, self.0, v) });
    }

    /// # Safety
    /// See the module docs.
    pub unsafe fn reject(self, env: Env, v: Value) {
        // SAFETY: see the module docs; consumed, so settled once.
        ok(unsafe { sys::napi_reject_deferred(env, self.0, v) });
    }
}

/// A handle scope plus a callback scope around code run from a libuv callback, so microtasks,
/// async hooks and uncaught-exception routing behave as for Node's own I/O callbacks. Closed
/// (and the microtasks run) on drop.
pub struct CallbackScope {
    env: Env,
    handles: sys::napi_handle_scope,
    callback: sys::napi_callback_scope,
}

impl CallbackScope {
    /// # Safety
    /// JS thread of `env`, called from a libuv callback (no JS on the stack); `resource` and
    /// `context` belong to `env`.
    pub unsafe fn open(env: Env, resource: &Ref, context: sys::napi_async_context) -> Self {
        let mut handles = null_mut();
        let mut callback = null_mut();
        // SAFETY: see the function's contract.
        unsafe {
            ok(sys::napi_open_handle_scope(env, &mut handles));
            ok(sys::napi_open_callback_scope(
                env,
                resource.get(env),
                context,
                &mut callback,
            ));
        }
        CallbackScope {
            env,
            handles,
            callback,
        }
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        // SAFETY: opened by `open` on this thread, closed once, in reverse order.
        unsafe {
            if !self.callback.is_null() {
                sys::napi_close_callback_scope(self.env, self.callback);
            }
            if !self.handles.is_null() {
                sys::napi_close_handle_scope(self.env, self.handles);
            }
        }
    }
}
