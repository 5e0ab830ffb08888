//! Small raw Node-API helpers for the exports that napi-rs's macros cannot express (promises
//! settled from libuv callbacks, buffers held across loop turns). Failures of these calls mean
//! the environment is going away; they degrade to null / zero rather than panic.

use napi::sys;
use smallvec::SmallVec;
use std::ffi::c_void;
use std::ptr::null_mut;

pub type Value = sys::napi_value;
pub type Env = sys::napi_env;

/// The first `N` arguments of a call (missing ones are `undefined`).
pub unsafe fn args<const N: usize>(env: Env, info: sys::napi_callback_info) -> [Value; N] {
    let mut argc = N;
    let mut argv = [null_mut(); N];
    sys::napi_get_cb_info(
        env,
        info,
        &mut argc,
        argv.as_mut_ptr(),
        null_mut(),
        null_mut(),
    );
    argv
}

pub unsafe fn get_i32(env: Env, v: Value) -> i32 {
    let mut x = 0;
    sys::napi_get_value_int32(env, v, &mut x);
    x
}

pub unsafe fn get_u32(env: Env, v: Value) -> u32 {
    let mut x = 0;
    sys::napi_get_value_uint32(env, v, &mut x);
    x
}

pub unsafe fn array_len(env: Env, v: Value) -> u32 {
    let mut n = 0;
    sys::napi_get_array_length(env, v, &mut n);
    n
}

pub unsafe fn element(env: Env, v: Value, i: u32) -> Value {
    let mut e = null_mut();
    sys::napi_get_element(env, v, i, &mut e);
    e
}

/// The elements of a JS array of numbers, as i32.
pub unsafe fn i32s(env: Env, v: Value) -> SmallVec<[i32; 8]> {
    (0..array_len(env, v))
        .map(|i| get_i32(env, element(env, v, i)))
        .collect()
}

/// Whether `v` is a typed array (of any element type).
pub unsafe fn is_typedarray(env: Env, v: Value) -> bool {
    let mut b = false;
    sys::napi_is_typedarray(env, v, &mut b);
    b
}

/// A typed array's element type, memory and length right now; `None` if it is detached or not
/// a typed array.
unsafe fn typedarray(
    env: Env,
    v: Value,
) -> Option<(sys::napi_typedarray_type, *mut c_void, usize)> {
    let mut ty = 0;
    let mut len = 0usize;
    let mut data: *mut c_void = null_mut();
    let st =
        sys::napi_get_typedarray_info(env, v, &mut ty, &mut len, &mut data, null_mut(), null_mut());
    (st == sys::Status::napi_ok && !data.is_null()).then_some((ty, data, len))
}

/// The bytes a Uint8Array views right now: `(null, 0)` if it is detached or not a typed array.
pub unsafe fn bytes(env: Env, v: Value) -> (*mut u8, usize) {
    typedarray(env, v).map_or((null_mut(), 0), |(_, data, len)| (data.cast(), len))
}

/// The items of an Int32Array right now: empty if it is detached or not an Int32Array.
pub unsafe fn i32s_mut<'a>(env: Env, v: Value) -> &'a mut [i32] {
    match typedarray(env, v) {
        Some((sys::TypedarrayType::int32_array, data, len)) => {
            std::slice::from_raw_parts_mut(data.cast(), len)
        }
        _ => &mut [],
    }
}

pub unsafe fn int(env: Env, n: i32) -> Value {
    let mut v = null_mut();
    sys::napi_create_int32(env, n, &mut v);
    v
}

pub unsafe fn boolean(env: Env, b: bool) -> Value {
    let mut v = null_mut();
    sys::napi_get_boolean(env, b, &mut v);
    v
}

pub unsafe fn undefined(env: Env) -> Value {
    let mut v = null_mut();
    sys::napi_get_undefined(env, &mut v);
    v
}

pub unsafe fn array_of(env: Env, items: &[i32]) -> Value {
    let mut a = null_mut();
    sys::napi_create_array_with_length(env, items.len(), &mut a);
    for (i, n) in items.iter().enumerate() {
        sys::napi_set_element(env, a, i as u32, int(env, *n));
    }
    a
}

pub unsafe fn new_ref(env: Env, v: Value) -> sys::napi_ref {
    let mut r = null_mut();
    sys::napi_create_reference(env, v, 1, &mut r);
    r
}

pub unsafe fn deref(env: Env, r: sys::napi_ref) -> Value {
    let mut v = null_mut();
    sys::napi_get_reference_value(env, r, &mut v);
    v
}

pub unsafe fn drop_ref(env: Env, r: sys::napi_ref) {
    sys::napi_delete_reference(env, r);
}

/// Calls a JS function kept in `f` with numeric/string-free arguments.
pub unsafe fn call(env: Env, f: sys::napi_ref, argv: &[Value]) -> Value {
    let mut out = null_mut();
    sys::napi_call_function(
        env,
        undefined(env),
        deref(env, f),
        argv.len(),
        argv.as_ptr(),
        &mut out,
    );
    out
}

pub unsafe fn throw(env: Env, msg: &str) -> Value {
    let mut s = msg.as_bytes().to_vec();
    s.push(0);
    sys::napi_throw_error(env, null_mut(), s.as_ptr().cast());
    null_mut()
}

/// Defines `name` on `exports` as the raw callback `f`.
pub unsafe fn export(env: Env, exports: Value, name: &str, f: sys::napi_callback) {
    let mut func = null_mut();
    sys::napi_create_function(
        env,
        name.as_ptr().cast(),
        name.len() as isize,
        f,
        null_mut(),
        &mut func,
    );
    let mut key = null_mut();
    sys::napi_create_string_utf8(env, name.as_ptr().cast(), name.len() as isize, &mut key);
    sys::napi_set_property(env, exports, key, func);
}
