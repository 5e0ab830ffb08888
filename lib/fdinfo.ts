// What an fd is (API.md §11): the core reads fstat, the fd flags and, for a socket, its
// options and addresses (crates/…/src/fdinfo.rs); this names them and shapes the addresses as
// `net` reports them. Nothing here changes the fd.
import { binding } from './binding'
import { errnoError } from './errors'
import { validateFd } from './validators'

/** A socket address as `net` reports it (`socket.address()`), for IPv4 and IPv6 sockets. */
export interface InetAddress {
  address: string
  port: number
  family: 'IPv4' | 'IPv6'
}

/** What {@link fdinfo} reports. */
export interface FdInfo {
  /** From `fstat`: what kind of file the fd is (anonymous inodes such as eventfd and epoll are `'unknown'`). */
  type: 'socket' | 'file' | 'directory' | 'fifo' | 'character' | 'block' | 'unknown'
  /** `FD_CLOEXEC` is set on this fd. */
  cloexec: boolean
  /** `O_NONBLOCK` is set on the open file description (shared with every dup of it). */
  nonblock: boolean
  /** Sockets: `'unix'`, `'inet'`, `'inet6'`, or the `AF_*` number of another domain (netlink: 16). */
  domain?: 'unix' | 'inet' | 'inet6' | number
  /** Sockets: `'stream'`, `'dgram'`, `'seqpacket'`, `'raw'`, or the `SOCK_*` number. */
  socktype?: 'stream' | 'dgram' | 'seqpacket' | 'raw' | number
  /** Sockets: listening for connections (`SO_ACCEPTCONN`). */
  listening?: boolean
  /** Sockets: connected to a peer (it has a peer address). */
  connected?: boolean
  /**
   * Sockets: the local address — `{ address, port, family }` for IP, a path or `'\0name'` for
   * Unix (`''` when unnamed), `null` for other domains.
   */
  local?: InetAddress | string | null
  /** Sockets: the peer's address, in the same shapes; `null` when not connected. */
  remote?: InetAddress | string | null
}

const AF_UNIX = 1
const AF_INET = 2
const AF_INET6 = 10
const DOMAINS: Record<number, FdInfo['domain']> = { [AF_UNIX]: 'unix', [AF_INET]: 'inet', [AF_INET6]: 'inet6' }
const SOCKTYPES: Record<number, FdInfo['socktype']> = { 1: 'stream', 2: 'dgram', 3: 'raw', 5: 'seqpacket' }
const TYPES: Record<number, FdInfo['type']> = {
  0o140000: 'socket',
  0o100000: 'file',
  0o040000: 'directory',
  0o010000: 'fifo',
  0o020000: 'character',
  0o060000: 'block',
}

interface RawAddress {
  family: number
  address: Buffer
  port: number
}

function shape(a: RawAddress | null | undefined): InetAddress | string | null {
  if (a == null) return null
  if (a.family === AF_UNIX) return a.address.toString('utf8')
  if (a.family === AF_INET || a.family === AF_INET6) {
    return { address: a.address.toString('latin1'), port: a.port, family: a.family === AF_INET ? 'IPv4' : 'IPv6' }
  }
  return null
}

/** {@link fdinfo} without the argument check, for callers that validated `fd` already. */
export function describeFd(fd: number): FdInfo {
  const r = binding.fdInfo(fd)
  if (r.errno < 0) throw errnoError(r.errno, r.syscall)
  const out: FdInfo = { type: TYPES[r.mode] ?? 'unknown', cloexec: r.cloexec, nonblock: r.nonblock }
  if (out.type !== 'socket') return out
  out.domain = DOMAINS[r.domain] ?? r.domain
  out.socktype = SOCKTYPES[r.socktype] ?? r.socktype
  out.listening = r.listening
  out.connected = r.remote != null
  out.local = shape(r.local)
  out.remote = shape(r.remote)
  return out
}

/**
 * What `fd` is (API.md §11): its type from `fstat`, `cloexec` and `nonblock`, and for a socket
 * its domain, socket type, whether it is listening (`SO_ACCEPTCONN`) or connected, and its local
 * and remote addresses in `net`'s shapes. Changes nothing about the fd.
 *
 * @throws {TypeError} / {RangeError} for an `fd` that is not an fd number.
 * @throws {ErrnoError} `EBADF` (`syscall: 'fstat'`) for an fd that is not open.
 */
export function fdinfo(fd: number): FdInfo {
  validateFd(fd, 'fd')
  return describeFd(fd)
}
