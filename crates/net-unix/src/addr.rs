//! Unix socket addresses: a filesystem path, or a Linux abstract name written with a leading NUL.

use nix::errno::Errno;
use nix::sys::socket::UnixAddr;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// Longest name `sun_path` holds, in bytes: 108 less the path's terminating NUL, or less the
/// leading NUL of an abstract name.
pub const MAX_NAME: usize = 107;

/// Builds the `sockaddr_un` for `addr`, with the exact address length (what Node, Python and C
/// peers use), so abstract names interoperate. `EINVAL` for an empty address, an embedded NUL, or
/// a name longer than [`MAX_NAME`]. The facade checks the same rules first, with a better error.
///
/// ```
/// let a = net_unix::addr::to_sockaddr(b"\0demo").unwrap();
/// assert_eq!(a.as_abstract(), Some(&b"demo"[..]));
/// ```
pub fn to_sockaddr(addr: &[u8]) -> Result<UnixAddr, Errno> {
    match addr.split_first() {
        Some((0, name)) if !name.is_empty() && name.len() <= MAX_NAME && !name.contains(&0) => {
            UnixAddr::new_abstract(name)
        }
        Some((first, _)) if *first != 0 && addr.len() <= MAX_NAME && !addr.contains(&0) => {
            UnixAddr::new(OsStr::from_bytes(addr))
        }
        _ => Err(Errno::EINVAL),
    }
}

/// The filesystem path of `addr`, if it names one (abstract names have none).
pub fn fs_path(addr: &[u8]) -> Option<&OsStr> {
    (addr.first() != Some(&0)).then(|| OsStr::from_bytes(addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::SockaddrLike;
    use std::mem::offset_of;

    const PATH_OFFSET: usize = offset_of!(libc::sockaddr_un, sun_path);

    /// The path's own bytes and nothing more: no padding to the size of `sun_path`.
    #[test]
    fn path_has_exact_length() {
        let a = to_sockaddr(b"/tmp/x.sock").unwrap();
        assert_eq!(a.path().unwrap(), std::path::Path::new("/tmp/x.sock"));
        assert_eq!(a.len() as usize, PATH_OFFSET + 11);
    }

    #[test]
    fn abstract_name_is_not_padded() {
        let a = to_sockaddr(b"\0name").unwrap();
        assert_eq!(a.as_abstract(), Some(&b"name"[..]));
        assert_eq!(a.len() as usize, PATH_OFFSET + 1 + 4);
    }

    #[test]
    fn longest_names_fit() {
        let path = vec![b'p'; MAX_NAME];
        assert!(to_sockaddr(&path).is_ok());
        let mut abs = vec![0u8];
        abs.extend(vec![b'a'; MAX_NAME]);
        assert_eq!(
            to_sockaddr(&abs).unwrap().as_abstract().unwrap().len(),
            MAX_NAME
        );
    }

    #[test]
    fn rejects_bad_addresses() {
        let long_path = vec![b'p'; MAX_NAME + 1];
        let mut long_abs = vec![0u8];
        long_abs.extend(vec![b'a'; MAX_NAME + 1]);
        for bad in [&b""[..], b"\0", b"a\0b", b"\0a\0b", &long_path, &long_abs] {
            assert_eq!(to_sockaddr(bad).unwrap_err(), Errno::EINVAL, "{bad:?}");
        }
    }

    #[test]
    fn fs_path_only_for_paths() {
        assert_eq!(fs_path(b"/a"), Some(OsStr::new("/a")));
        assert_eq!(fs_path(b"\0a"), None);
    }
}
