//! The libuv functions the reactor needs, looked up in the host process at first use.
//! Looking them up (instead of linking) keeps `cargo test` linkable and lets a host without a
//! real libuv be detected. Only functions are used, never a libuv struct layout: handles are
//! opaque blocks of `uv_handle_size` bytes.

use std::ffi::{c_int, c_void};
use std::sync::OnceLock;

pub const UV_CHECK: c_int = 2;
pub const UV_IDLE: c_int = 6;
pub const UV_POLL: c_int = 8;
pub const READABLE: c_int = 1;
pub const WRITABLE: c_int = 2;

pub type PollCb = unsafe extern "C" fn(*mut c_void, c_int, c_int);
pub type HandleCb = unsafe extern "C" fn(*mut c_void);

pub struct Uv {
    pub handle_size: unsafe extern "C" fn(c_int) -> usize,
    pub poll_init: unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int,
    pub poll_start: unsafe extern "C" fn(*mut c_void, c_int, PollCb) -> c_int,
    pub close: unsafe extern "C" fn(*mut c_void, HandleCb),
    pub handle_set_data: unsafe extern "C" fn(*mut c_void, *mut c_void),
    pub handle_get_data: unsafe extern "C" fn(*const c_void) -> *mut c_void,
    pub check_init: unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int,
    pub check_start: unsafe extern "C" fn(*mut c_void, HandleCb) -> c_int,
    pub check_stop: unsafe extern "C" fn(*mut c_void) -> c_int,
    pub idle_init: unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int,
    pub idle_start: unsafe extern "C" fn(*mut c_void, HandleCb) -> c_int,
    pub idle_stop: unsafe extern "C" fn(*mut c_void) -> c_int,
    pub unref: unsafe extern "C" fn(*mut c_void),
    pub ref_: unsafe extern "C" fn(*mut c_void),
    pub poll_stop: unsafe extern "C" fn(*mut c_void) -> c_int,
}

type Ptr = *mut c_void;

macro_rules! sym {
    ($name:literal, $ty:ty) => {{
        let p = libc::dlsym(libc::RTLD_DEFAULT, concat!($name, "\0").as_ptr().cast());
        if p.is_null() {
            return None;
        }
        std::mem::transmute::<Ptr, $ty>(p)
    }};
}

unsafe fn load() -> Option<Uv> {
    Some(Uv {
        handle_size: sym!("uv_handle_size", unsafe extern "C" fn(c_int) -> usize),
        poll_init: sym!(
            "uv_poll_init",
            unsafe extern "C" fn(Ptr, Ptr, c_int) -> c_int
        ),
        poll_start: sym!(
            "uv_poll_start",
            unsafe extern "C" fn(Ptr, c_int, PollCb) -> c_int
        ),
        close: sym!("uv_close", unsafe extern "C" fn(Ptr, HandleCb)),
        handle_set_data: sym!("uv_handle_set_data", unsafe extern "C" fn(Ptr, Ptr)),
        handle_get_data: sym!(
            "uv_handle_get_data",
            unsafe extern "C" fn(*const c_void) -> Ptr
        ),
        check_init: sym!("uv_check_init", unsafe extern "C" fn(Ptr, Ptr) -> c_int),
        check_start: sym!(
            "uv_check_start",
            unsafe extern "C" fn(Ptr, HandleCb) -> c_int
        ),
        check_stop: sym!("uv_check_stop", unsafe extern "C" fn(Ptr) -> c_int),
        idle_init: sym!("uv_idle_init", unsafe extern "C" fn(Ptr, Ptr) -> c_int),
        idle_start: sym!(
            "uv_idle_start",
            unsafe extern "C" fn(Ptr, HandleCb) -> c_int
        ),
        idle_stop: sym!("uv_idle_stop", unsafe extern "C" fn(Ptr) -> c_int),
        unref: sym!("uv_unref", unsafe extern "C" fn(Ptr)),
        ref_: sym!("uv_ref", unsafe extern "C" fn(Ptr)),
        poll_stop: sym!("uv_poll_stop", unsafe extern "C" fn(Ptr) -> c_int),
    })
}

/// The host's libuv, or `None` when the process exports none.
pub fn get() -> Option<&'static Uv> {
    static UV: OnceLock<Option<Uv>> = OnceLock::new();
    // SAFETY: dlsym with RTLD_DEFAULT only reads the loaded symbol tables.
    UV.get_or_init(|| unsafe { load() }).as_ref()
}

impl Uv {
    fn words(&self, kind: c_int) -> usize {
        // SAFETY: uv_handle_size only reads a table.
        unsafe { (self.handle_size)(kind) }.div_ceil(8)
    }

    /// Zeroed, 8-aligned memory for a handle of `kind`; freed with [`Uv::free_handle`].
    pub fn alloc_handle(&self, kind: c_int) -> *mut c_void {
        Box::into_raw(vec![0u64; self.words(kind)].into_boxed_slice()).cast()
    }

    /// # Safety
    /// `h` came from `alloc_handle(kind)` and libuv is done with it (closed, or never initialised).
    pub unsafe fn free_handle(&self, h: *mut c_void, kind: c_int) {
        let words = self.words(kind);
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
            h.cast::<u64>(),
            words,
        )));
    }
}
