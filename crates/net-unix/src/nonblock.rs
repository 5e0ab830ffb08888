//! `O_NONBLOCK` belongs to the file description, which other fds and other processes share, so
//! the reactor sets it only while an `accept` of ours needs it (`accept4` has no
//! `MSG_DONTWAIT`) and gives it back as it found it. Holds are counted per process: two
//! Workers accepting on one listener share one flag.

use crate::sock;
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::sync::{Mutex, PoisonError};

struct Held {
    ident: (u64, u64),
    count: u32,
}

static HOLDS: Mutex<Option<HashMap<RawFd, Held>>> = Mutex::new(None);

fn with_holds<T>(f: impl FnOnce(&mut HashMap<RawFd, Held>) -> T) -> T {
    let mut guard = HOLDS.lock().unwrap_or_else(PoisonError::into_inner);
    f(guard.get_or_insert_with(HashMap::new))
}

/// Keeps `fd` non-blocking while it lives; on drop the last hold makes it blocking again. A
/// socket that was non-blocking before we touched it (its owner's choice) is left alone.
#[must_use]
pub struct Hold(Option<RawFd>);

impl Hold {
    pub fn acquire(fd: RawFd) -> nix::Result<Hold> {
        with_holds(|holds| {
            if let Some(h) = holds.get_mut(&fd) {
                h.count += 1;
                return Ok(Hold(Some(fd)));
            }
            if sock::is_nonblocking(fd)? {
                return Ok(Hold(None));
            }
            let ident = sock::identity(fd)?;
            sock::set_nonblocking(fd, true)?;
            holds.insert(fd, Held { ident, count: 1 });
            Ok(Hold(Some(fd)))
        })
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        let Some(fd) = self.0 else { return };
        with_holds(|holds| {
            let Some(h) = holds.get_mut(&fd) else { return };
            h.count -= 1;
            if h.count == 0 {
                let h = holds.remove(&fd).expect("present");
                // Closed and reused meanwhile: the new file's flag is not ours to change.
                if sock::identity(fd) == Ok(h.ident) {
                    let _ = sock::set_nonblocking(fd, false);
                }
            }
        })
    }
}

/// Whether `fd` is non-blocking only because a hold of ours says so.
pub fn held(fd: RawFd) -> bool {
    with_holds(|holds| holds.contains_key(&fd))
}
