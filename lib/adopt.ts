// The Node object an fd becomes (API.md §11): decided from what the fd is (lib/fdinfo.ts), before
// anything touches it, so an fd refused is left exactly as it was.
import * as net from 'node:net'
import * as nodeDgram from 'node:dgram'
import { argTypeError } from './errors'
import { describeFd } from './fdinfo'
import type { FdInfo } from './fdinfo'
import { validateFd } from './validators'
import { UnixServer, UnixSocket } from './stream'
import { UnixDgramSocket, kAdopt } from './dgram'

/** Options of {@link adopt}. */
export interface AdoptOptions {
  /**
   * A Unix stream socket becomes a `net.Server` (listening) or `net.Socket` (connected) instead
   * of a {@link UnixServer} / {@link UnixSocket}: no fd passing, but every `net` API.
   */
  net?: boolean
  /** Stream sockets and servers (for their connections): as `net`'s option; default `false`. */
  allowHalfOpen?: boolean
  /** Unix datagram sockets: receive fds in `rinfo.fds` (as `createSocket`'s option). */
  fds?: boolean
  /** Unix datagram sockets: receive senders' credentials in `rinfo.cred`. */
  credentials?: boolean
  /**
   * Unix sockets: receive senders' pidfds (`SO_PASSPIDFD`, Linux 6.5+) — `rinfo.pidfd` on a
   * datagram socket, a `'pidfd'` event on a {@link UnixSocket} and a {@link UnixServer}'s connections.
   */
  pidfd?: boolean
}

/** What {@link adopt} returns, by the kind of fd. */
export type Adopted = net.Server | net.Socket | UnixServer | UnixSocket | UnixDgramSocket | nodeDgram.Socket

function bool(o: Record<string, unknown>, key: string): boolean | undefined {
  const v = o[key]
  if (v !== undefined && typeof v !== 'boolean') throw argTypeError(`options.${key}`, 'of type boolean', v)
  return v as boolean | undefined
}

const NOT_SOCKETS: Record<string, string> = {
  file: 'a regular file',
  directory: 'a directory',
  fifo: 'a pipe or FIFO',
  character: 'a character device',
  block: 'a block device',
  unknown: 'not a socket (an eventfd, epoll, timerfd or other anonymous inode)',
}

/** What the fd is, in words, for the refusal. */
function described(info: FdInfo): string {
  if (info.type !== 'socket') return NOT_SOCKETS[info.type]
  const kind = `${typeof info.domain === 'number' ? `domain ${info.domain}` : info.domain} ${info.socktype} socket`
  return info.socktype === 'stream' || info.socktype === 'seqpacket'
    ? `a ${kind} neither listening nor connected`
    : `a ${kind}`
}

function refuse(fd: number, what: string): TypeError {
  const e = new TypeError(`Unsupported fd type: fd ${fd} is ${what}`)
  return Object.assign(e, { code: 'ERR_INVALID_FD_TYPE' })
}

/**
 * The Node object for the socket `fd` (API.md §11): a listening TCP socket → a `net.Server`
 * listening on it; a listening Unix stream or seqpacket socket → a {@link UnixServer} (a
 * `net.Server` with `{ net: true }`, stream only); a connected TCP socket → a `net.Socket`; a
 * connected Unix stream or seqpacket socket → a {@link UnixSocket}; a Unix datagram socket → a
 * {@link UnixDgramSocket}; a UDP socket → a `dgram.Socket`. On success the object owns the fd.
 *
 * @throws {TypeError} `ERR_INVALID_FD_TYPE` for anything else (files, pipes, devices, other
 * domains, a stream socket neither listening nor connected); the fd is left open and unchanged.
 * `ERR_INVALID_ARG_TYPE` for bad arguments.
 * @throws {ErrnoError} `EBADF` for an fd that is not open.
 */
export function adopt(fd: number, options?: AdoptOptions): Adopted {
  validateFd(fd, 'fd')
  if (options !== undefined && (typeof options !== 'object' || options === null))
    throw argTypeError('options', 'of type object', options)
  const o = (options ?? {}) as Record<string, unknown>
  const asNet = bool(o, 'net') ?? false
  const allowHalfOpen = bool(o, 'allowHalfOpen') ?? false
  const fds = bool(o, 'fds')
  const credentials = bool(o, 'credentials')
  const pidfd = bool(o, 'pidfd')
  const info = describeFd(fd)
  if (info.type !== 'socket') throw refuse(fd, described(info))
  const { domain, socktype, listening, connected } = info
  if (domain === 'inet' || domain === 'inet6') {
    if (socktype === 'stream' && listening) return net.createServer({ allowHalfOpen }).listen({ fd })
    if (socktype === 'stream' && connected) return new net.Socket({ fd, allowHalfOpen, readable: true, writable: true })
    if (socktype === 'dgram') return nodeDgram.createSocket(domain === 'inet' ? 'udp4' : 'udp6').bind({ fd })
  } else if (domain === 'unix') {
    if (asNet && socktype === 'seqpacket') throw refuse(fd, 'a unix seqpacket socket, which net cannot use')
    if (socktype === 'stream' || socktype === 'seqpacket') {
      if (listening) {
        return asNet
          ? net.createServer({ allowHalfOpen }).listen({ fd })
          : new UnixServer({ allowHalfOpen, pidfd }).listen({ fd })
      }
      if (connected) {
        return asNet
          ? new net.Socket({ fd, allowHalfOpen, readable: true, writable: true })
          : new UnixSocket({ fd, allowHalfOpen, pidfd })
      }
    }
    if (socktype === 'dgram') {
      return new UnixDgramSocket({
        type: 'unix_dgram',
        fds,
        credentials,
        [kAdopt]: { fd, connected: connected === true },
      })
    }
  }
  throw refuse(fd, described(info))
}
