//! errno plumbing. Native calls report failure as a negative errno (what Node's own errors carry
//! in `errno`); the facade turns that into an Error with `code`, `errno`, `syscall`, `address`.

use nix::errno::Errno;

/// Runs `f` again while it fails with `EINTR`, so an interrupted call never surfaces.
pub fn retry<T>(mut f: impl FnMut() -> nix::Result<T>) -> nix::Result<T> {
    loop {
        match f() {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}

/// The negative errno Node reports for `e` (`-111` for `ECONNREFUSED`).
pub fn neg(e: Errno) -> i32 {
    -(e as i32)
}

/// `Ok(n)` as `n`, `Err(e)` as the negative errno: one number for JS to test with `< 0`.
pub fn to_js(r: nix::Result<i32>) -> i32 {
    r.unwrap_or_else(neg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_is_negative_like_node() {
        assert_eq!(neg(Errno::ECONNREFUSED), -111);
        assert_eq!(to_js(Ok(5)), 5);
        assert_eq!(to_js(Err(Errno::ENOENT)), -2);
    }

    #[test]
    fn retry_hides_eintr() {
        let mut calls = 0;
        let r = retry(|| {
            calls += 1;
            if calls < 3 {
                Err(Errno::EINTR)
            } else {
                Ok(calls)
            }
        });
        assert_eq!(r, Ok(3));
    }

    #[test]
    fn retry_passes_other_errors() {
        assert_eq!(retry(|| Err::<(), _>(Errno::EAGAIN)), Err(Errno::EAGAIN));
    }
}
