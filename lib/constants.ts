// Kernel numbers the facade needs (Linux, all architectures it ships for).
export const SOCK_CLOEXEC = 0o2000000
export const SOCK_NONBLOCK = 0o4000
export const EAGAIN = -11
export const ETIMEDOUT = -110
/** Bytes of a path, or of an abstract name after its NUL, that `sun_path` holds. */
export const MAX_NAME = 107
export const U32_MAX = 2 ** 32 - 1
export const FD_MAX = 2 ** 31 - 1
export const SOCK_STREAM = 1
export const SOCK_DGRAM = 2
export const SOCK_SEQPACKET = 5
export const ENOBUFS = -105
export const ENOTSOCK = -88
