/**
 * net-unix: Unix-domain sockets for Node.js with Hare's `net::unix` API.
 *
 * Sockets are plain file descriptors (numbers), usable with `new net.Socket({ fd })`,
 * `server.listen({ fd })`, `fs.closeSync` and `child_process` stdio. Promise forms wait on
 * Node's own event loop and never block it; each has a blocking `*Sync` twin with Hare's
 * semantics. Errors are shaped like Node's own.
 *
 * @packageDocumentation
 */

import { binding } from './lib/binding'
import { EAGAIN, ETIMEDOUT, SOCK_NONBLOCK, SOCK_SEQPACKET, U32_MAX } from './lib/constants'
import { AbortError, abortError, argTypeError, check, errnoError, invalid, outOfRange } from './lib/errors'
import type { ErrnoError } from './lib/errors'
import { encodeAddr } from './lib/address'
import { asyncOptions, kBacklog, kSeqpacket, parseOptions } from './lib/options'
import { got, gotItems, operate, operateRecv } from './lib/promises'
import { allFds, bytesOf, validateFd, validateFds, validateFunction, validateInteger } from './lib/validators'
import { UnixServer, UnixSocket, kConnecting } from './lib/stream'
import type { UnixServerOptions, UnixSocketOptions } from './lib/stream'

export { AbortError, invalid }
export type { ErrnoError }

// Datagram sockets (API.md §8) and systemd (§9): lib/dgram.ts, lib/systemd.ts.
export {
  createSocket,
  dgramSocket,
  localaddr,
  recvfrom,
  recvfromMany,
  recvfromSync,
  send,
  sendSync,
  sendto,
  sendtoSync,
  UnixDgramSocket,
} from './lib/dgram'
export type { Datagram, DgramSocketOptions, RecvOptions, RemoteInfo, SendOptions, UnixDgramOptions } from './lib/dgram'
export { listenFds, notify, notifyBarrier } from './lib/systemd'
// Hand-over (§12): lib/handover.ts, the wire format in lib/handover/wire.ts.
export { Handover } from './lib/handover'
export type { Drained, HandoverOptions } from './lib/handover'
import { handover as handoverImpl } from './lib/handover'
import type { Handover, HandoverOptions } from './lib/handover'

/**
 * Replaces a running server with no failed request (API.md §12). The same call in every
 * generation: `path` names the control socket (a filesystem path, created mode 0600, or an
 * abstract name `"\0name"`). With a predecessor listening there, its listeners (and later its
 * idle HTTP keep-alive connections) arrive over `SCM_RIGHTS` and the result is generation
 * predecessor + 1; with none, it is generation 0. A path that refuses connections
 * (`ECONNREFUSED`: every process died) is stale and removed; `EACCES` is never stale.
 *
 * ```js
 * const h = await handover('/run/app/handover.sock')
 * const server = http.createServer(app)
 * await h.listen(server, 'http', 8080)  // inherited, or listen(8080) in generation 0
 * await h.ready()                       // a successor: the old process stopped accepting
 * h.once('handover', () => {})          // old side: the successor took over
 * h.drained.then(() => process.exit(0)) // old side: the last request was answered
 * ```
 *
 * @returns a promise of the {@link Handover} of this process.
 * @rejects {Error} `ERR_HANDOVER_PEER` (the predecessor runs as another user, neither ours nor
 * root, or refused ours), `ERR_HANDOVER_BUSY` (another successor is taking over),
 * `ERR_HANDOVER_VERSION` (another protocol version), `ERR_HANDOVER_PREDECESSOR_GONE` (the
 * predecessor died before every listener arrived; nothing is kept: see `onPredecessorLost`),
 * an {@link ErrnoError} (`EACCES`, …) from connecting; {@link invalid} for a bad path;
 * `ERR_INVALID_ARG_TYPE` / `ERR_OUT_OF_RANGE` for bad options.
 */
export function handover(path: addr, options?: HandoverOptions): Promise<Handover> {
  return handoverImpl(path, options)
}

export type { ListenFd, NotifyOptions } from './lib/systemd'
// Knowing and adopting an fd (API.md §11): lib/fdinfo.ts, lib/adopt.ts.
export { fdinfo } from './lib/fdinfo'
export type { FdInfo, InetAddress } from './lib/fdinfo'
export { adopt } from './lib/adopt'
export type { AdoptOptions, Adopted } from './lib/adopt'
// Race-free peer identity (API.md §11): lib/pidfd.ts.
export { peerpidfd, pidfdInfo, pidfdSendSignal, pidfdWait } from './lib/pidfd'
export type { PidfdExit, PidfdInfo } from './lib/pidfd'

/** The most fds one message may carry (Linux `SCM_MAX_FD`). */
export const MAX_FDS: number = binding.MAX_FDS

// Promise forms report every error, argument errors included, by rejecting (as fs.promises).

// ---------------------------------------------------------------------------------------------
// Values

/** A socket: a file descriptor. Hare's `net::socket`. */
export type socket = number

/** A Unix socket address: a filesystem path, or a Linux abstract name written `"\0name"`. */
export type addr = string

/**
 * Socket flags (Hare's `net::sockflag`), combinable with `|`. Sockets are close-on-exec unless
 * `NOCLOEXEC` is given; `NONBLOCK` makes them non-blocking.
 */
export enum sockflag {
  /** Do not set close-on-exec on the new socket. */
  NOCLOEXEC = 0o2000000,
  /** Make the new socket non-blocking. */
  NONBLOCK = 0o4000,
}

/** The listen backlog option, made by {@link backlog}. Hare's `backlog = u32`. */
export interface backlog {
  readonly [kBacklog]: true
  /** The queue length handed to `listen(2)` (the kernel clamps it to `somaxconn`). */
  readonly value: number
}

/**
 * The backlog option for {@link listen}: `listen(path, backlog(128))`. Without one the backlog
 * is 10; when several are given the last wins.
 *
 * @throws {TypeError} `ERR_INVALID_ARG_TYPE` if `n` is not a number.
 * @throws {RangeError} `ERR_OUT_OF_RANGE` if `n` is not an integer in `[0, 2**32-1]`.
 */
export function backlog(n: number): backlog {
  validateInteger(n, 'n', 0, U32_MAX)
  return Object.freeze({ [kBacklog]: true as const, value: n })
}

/** The option that makes a `SOCK_SEQPACKET` socket; see {@link seqpacket}. */
export interface seqpacket_option {
  readonly [kSeqpacket]: true
}

/**
 * The option for {@link listen}, {@link connect}, {@link connectSync} and {@link socketpair}
 * that makes a `SOCK_SEQPACKET` socket instead of a stream: connection-oriented and reliable like
 * a stream, but every send is one message whose boundaries {@link recvmsg} / {@link recvfds}
 * keep (a message longer than the receive buffer sets `dataTruncated`; the rest is dropped).
 * {@link accept} on a seqpacket listener makes seqpacket sockets. `listen(path, seqpacket)`.
 */
export const seqpacket: seqpacket_option = Object.freeze({ [kSeqpacket]: true as const })

/** Options for {@link connect}: socket flags, or {@link seqpacket}. */
export type connect_option = sockflag | seqpacket_option
/** Options for {@link listen}: socket flags, a {@link backlog}, or {@link seqpacket}. */
export type listen_option = backlog | sockflag | seqpacket_option

/** Trailing options object of the Promise forms. */
export interface AsyncOptions {
  /** Aborts the operation: it rejects with an `AbortError` and leaves nothing open or pending. */
  signal?: AbortSignal
}

/** Trailing options object of {@link connect}. */
export interface ConnectOptions extends AsyncOptions {
  /** Give up after this many milliseconds (rejects with `ETIMEDOUT`). */
  timeout?: number
}

// ---------------------------------------------------------------------------------------------
// net::unix

/**
 * Binds a Unix stream socket to `address` and listens on it. Hare's `net::unix::listen`.
 * Options: {@link sockflag} values and at most one effective {@link backlog} (default 10, last
 * wins). An existing path is not removed (`EADDRINUSE`). The socket file is created with the
 * process umask. Synchronous: none of `socket`, `bind`, `listen` waits.
 *
 * @returns the listening socket.
 * @throws {invalid} for a bad address, before any syscall.
 * @throws {ErrnoError} what the kernel refused (`EADDRINUSE`, `EACCES`, `ENOENT`, …); nothing is
 * left open, and a socket file created by `bind` is removed again.
 */
export function listen(address: addr, ...options: listen_option[]): socket {
  const bytes = encodeAddr(address)
  const o = parseOptions(options, 1, 'listen', { backlog: true, seqpacket: true })
  const fd = o.seqpacket
    ? binding.listenTyped(bytes, SOCK_SEQPACKET, o.flags, o.backlog)
    : binding.listen(bytes, o.flags, o.backlog)
  return check(fd, 'listen', address)
}

/**
 * Opens a stream connection to `address`. Hare's `net::unix::connect`, as a Promise that never
 * blocks the event loop. When the listener's backlog is full it keeps trying (short back-off)
 * until connected, refused, aborted, or timed out; it never fails with `EAGAIN`.
 *
 * @param options socket flags, optionally followed by `{ signal, timeout }`.
 * @returns a promise of the connected socket (blocking unless `NONBLOCK` was given).
 * @rejects {invalid} for a bad address, before any syscall.
 * @rejects {ErrnoError} `ENOENT`, `ECONNREFUSED`, `EACCES`, `ETIMEDOUT` (after `timeout`).
 * @rejects {AbortError} when `signal` aborts; the socket is closed.
 */
export async function connect(address: addr, ...options: (connect_option | ConnectOptions)[]): Promise<socket> {
  const bytes = encodeAddr(address)
  const o = parseOptions(options, 1, 'connect', { trailing: 'signal+timeout', seqpacket: true })
  if (o.signal?.aborted) throw abortError(o.signal)
  const flags = o.flags | SOCK_NONBLOCK
  const fd = check(o.seqpacket ? binding.socketTyped(SOCK_SEQPACKET, flags) : binding.socket(flags), 'socket', address)
  return new Promise<socket>((resolve, reject) => {
    let timer: NodeJS.Timeout | NodeJS.Immediate | undefined
    let delay = 0
    const deadline = o.timeout === undefined ? Infinity : Date.now() + o.timeout
    const settle = (error: Error | null): void => {
      if (timer !== undefined) {
        clearTimeout(timer as NodeJS.Timeout)
        clearImmediate(timer as NodeJS.Immediate)
      }
      o.signal?.removeEventListener('abort', onAbort)
      if (error) {
        binding.close(fd)
        reject(error)
      } else {
        resolve(fd)
      }
    }
    const onAbort = (): void => settle(abortError(o.signal as AbortSignal))
    const attempt = (): void => {
      timer = undefined
      const rc = binding.tryConnect(fd, bytes)
      if (rc === 0) {
        // The socket was made non-blocking only to try; give back what was asked for.
        settle(o.nonblock ? null : rc2err(binding.setNonblocking(fd, false)))
      } else if (rc !== EAGAIN) {
        settle(errnoError(rc, 'connect', address))
      } else if (Date.now() >= deadline) {
        settle(errnoError(ETIMEDOUT, 'connect', address))
      } else {
        // Backlog full: no readiness event exists for this, so retry on a timer.
        timer = delay === 0 ? setImmediate(attempt) : setTimeout(attempt, Math.min(delay, deadline - Date.now()))
        delay = delay === 0 ? 1 : Math.min(delay * 2, 50)
      }
    }
    const rc2err = (rc: number): Error | null => (rc < 0 ? errnoError(rc, 'fcntl', address) : null)
    o.signal?.addEventListener('abort', onAbort, { once: true })
    attempt()
  })
}

/**
 * Opens a stream connection to `address`, blocking until it is established (Hare's `connect`).
 * With `NONBLOCK` a full backlog fails with `EAGAIN`, as the kernel says.
 *
 * @returns the connected socket.
 * @throws {invalid} for a bad address; {@link ErrnoError} for what the kernel refused.
 */
export function connectSync(address: addr, ...options: connect_option[]): socket {
  const bytes = encodeAddr(address)
  const o = parseOptions(options, 1, 'connectSync', { seqpacket: true })
  const fd = o.seqpacket
    ? binding.connectSyncTyped(bytes, SOCK_SEQPACKET, o.flags)
    : binding.connectSync(bytes, o.flags)
  return check(fd, 'connect', address)
}

/**
 * Accepts the next connection on a listening socket (`accept4` with the combined flags).
 * Pending accepts on one listener are served in call order. `accept4` has no `MSG_DONTWAIT`,
 * so a blocking listener is non-blocking only while an accept of ours runs or waits on it, and
 * blocking again after.
 *
 * @param flags socket flags for the new socket, optionally followed by `{ signal }`.
 * @returns a promise of the accepted socket.
 * @rejects {ErrnoError} `EBADF`, `ENOTSOCK`, `EINVAL` (not listening), …
 * @rejects {AbortError} when `signal` aborts. `ERR_SOCKET_CLOSED` when {@link close}d meanwhile.
 */
export async function accept(sock: socket, ...flags: (sockflag | AsyncOptions)[]): Promise<socket> {
  validateFd(sock)
  const o = parseOptions(flags, 1, 'accept', { trailing: 'signal' })
  return operate('accept', 'accept', o.signal, (token) => binding.acceptAsync(sock, o.flags, token))
}

/**
 * Accepts the next connection, blocking until one arrives (Hare's `accept`), even while a
 * Promise {@link accept} waits on the same listener. On a socket non-blocking by its owner's
 * choice (`NONBLOCK`) with nothing pending: `EAGAIN`.
 *
 * @returns the accepted socket.
 * @throws {ErrnoError} what the kernel refused.
 */
export function acceptSync(sock: socket, ...flags: sockflag[]): socket {
  validateFd(sock)
  const o = parseOptions(flags, 1, 'acceptSync', {})
  return check(binding.acceptSync(sock, o.flags), 'accept')
}

/**
 * An unnamed, connected pair of stream sockets (`socketpair(AF_UNIX, SOCK_STREAM)`), or of
 * seqpacket sockets with the {@link seqpacket} option.
 *
 * @returns the two sockets.
 * @throws {ErrnoError} `EMFILE`, `ENFILE`.
 */
export function socketpair(...flags: (sockflag | seqpacket_option)[]): [socket, socket] {
  const o = parseOptions(flags, 0, 'socketpair', { seqpacket: true })
  const r = o.seqpacket ? binding.socketpairTyped(SOCK_SEQPACKET, o.flags) : binding.socketpair(o.flags)
  check(r[0], 'socketpair')
  return [r[0], r[1]]
}

// ---------------------------------------------------------------------------------------------
// net::msghdr

/**
 * A message for {@link sendmsg} / {@link recvmsg} (Hare's `net::msghdr`), made with
 * {@link newmsg}: data vectors, fds to send, room for fds to receive.
 */
export class msghdr {
  /** @internal */ vectors: Uint8Array[] = []
  /** @internal */ sendFds: number[] = []
  /** @internal */ sendGroups: number[] = []
  /** @internal */ fdRoom = 0
  /** @internal */ received: number[] = []
  /** @internal */ claimed = 0
  /**
   * After a receive: the ancillary data did not fit (`MSG_CTRUNC`) or more fds came than
   * {@link allocfiles} made room for. The fds that did fit are still returned by {@link recvfiles}.
   */
  truncated = false
  /**
   * After a receive on a datagram or seqpacket socket: the message was longer than the vectors
   * (`MSG_TRUNC`); what did not fit is gone. Never set on a stream socket.
   */
  dataTruncated = false
  /** @internal */
  constructor() {}
}

/** A new, empty message. */
export function newmsg(): msghdr {
  return new msghdr()
}

function validateMsg(msg: unknown): asserts msg is msghdr {
  if (!(msg instanceof msghdr)) throw argTypeError('msg', 'an instance of msghdr (from newmsg())', msg)
}

/**
 * Appends a buffer to the message's scatter/gather list: data to send, or room to receive into.
 * Any `ArrayBufferView` (Buffer, Uint8Array, DataView, …) or `ArrayBuffer`; the memory is used
 * in place.
 */
export function addvector(msg: msghdr, buf: ArrayBufferView | ArrayBuffer): void {
  validateMsg(msg)
  msg.vectors.push(bytesOf(buf, 'buf'))
}

/**
 * Adds fds to the message's ancillary data, as one `SCM_RIGHTS` control message. Several calls
 * send several, but Linux merges them: the receiver sees one list, in call order. The fds stay
 * the caller's.
 *
 * @throws {RangeError} more than {@link MAX_FDS} fds in one message.
 */
export function addfiles(msg: msghdr, ...files: number[]): void {
  validateMsg(msg)
  validateFds(files, 'files')
  if (msg.sendFds.length + files.length > MAX_FDS) {
    throw outOfRange('files.length', `at most ${MAX_FDS} fds per message in all`, msg.sendFds.length + files.length)
  }
  msg.sendFds.push(...files)
  msg.sendGroups.push(files.length)
}

/**
 * Reserves room in the message to receive up to `nfile` more fds (calls add up).
 *
 * @throws {RangeError} more than {@link MAX_FDS} in all.
 */
export function allocfiles(msg: msghdr, nfile: number): void {
  validateMsg(msg)
  validateInteger(nfile, 'nfile', 0, MAX_FDS - msg.fdRoom)
  msg.fdRoom += nfile
}

/**
 * After a receive, the fds that arrived and were not yet handed out: at most `nfile`, `[]` when
 * none came. The caller owns them (they are close-on-exec). Fds never handed out are closed by
 * {@link finish}.
 */
export function recvfiles(msg: msghdr, nfile: number): number[] {
  validateMsg(msg)
  validateInteger(nfile, 'nfile', 0, U32_MAX)
  const out = msg.received.slice(msg.claimed, msg.claimed + nfile)
  msg.claimed += out.length
  return out
}

/**
 * Releases the message: every received fd that {@link recvfiles} did not hand out is closed,
 * and the message is emptied.
 */
export function finish(msg: msghdr): void {
  validateMsg(msg)
  dropUnclaimed(msg)
  msg.vectors = []
  msg.sendFds = []
  msg.sendGroups = []
  msg.fdRoom = 0
  msg.truncated = false
  msg.dataTruncated = false
}

function dropUnclaimed(msg: msghdr): void {
  for (const fd of msg.received.slice(msg.claimed)) binding.close(fd)
  msg.received = []
  msg.claimed = 0
}

function validateSend(msg: msghdr): void {
  if (msg.sendFds.length > 0 && !msg.vectors.some((v) => v.byteLength > 0)) {
    // The kernel silently drops fds sent with no data byte on a stream socket.
    throw outOfRange('msg', 'at least one data byte when fds are sent (the kernel drops fds sent with none)', 0)
  }
}

/** Stores what a receive delivered (`[bytes, truncated, ...fds]`) and returns the byte count. */
function received(msg: msghdr, r: number[], syscall: string): number {
  check(r[0], syscall)
  dropPidfd(r, 1)
  dropUnclaimed(msg) // a message reused without finish() must not leak the previous fds
  msg.truncated = (r[1] & 1) !== 0
  msg.dataTruncated = (r[1] & 2) !== 0
  msg.received = r.slice(2)
  return r[0]
}

/**
 * Sends the message's vectors and fds. `MSG_NOSIGNAL` always: a closed peer is an `EPIPE`
 * error, never a signal. Never blocks the event loop.
 *
 * @returns a promise of the number of bytes sent. As with `sendmsg(2)` on a stream socket, that
 * can be fewer than given when the socket buffer fills; the fds always go with the first byte.
 * @rejects {RangeError} for fds with no data byte, more than {@link MAX_FDS} fds.
 * @rejects {ErrnoError} `EPIPE`, `ECONNRESET`, `EBADF`, … ; {@link AbortError}; `ERR_SOCKET_CLOSED`.
 */
export async function sendmsg(sock: socket, msg: msghdr, options?: AsyncOptions): Promise<number> {
  validateFd(sock)
  validateMsg(msg)
  validateSend(msg)
  const signal = asyncOptions(options)
  return operate('sendmsg', 'sendmsg', signal, (t) =>
    binding.sendmsgAsync(sock, msg.vectors, msg.sendFds, msg.sendGroups, t),
  )
}

/**
 * Receives into the message's vectors and fd room. Received fds are close-on-exec
 * (`MSG_CMSG_CLOEXEC`); take them with {@link recvfiles}. Never blocks the event loop.
 *
 * @returns a promise of the number of bytes received (0: the peer closed).
 * @rejects {ErrnoError} `ECONNRESET`, `EBADF`, … ; {@link AbortError} (nothing was consumed);
 * `ERR_SOCKET_CLOSED`.
 */
export async function recvmsg(sock: socket, msg: msghdr, options?: AsyncOptions): Promise<number> {
  validateFd(sock)
  validateMsg(msg)
  const signal = asyncOptions(options)
  const r = operateRecv('recvmsg', signal, (t) => binding.recvmsgAsync(sock, msg.vectors, msg.fdRoom, t, got))
  return received(msg, Array.isArray(r) ? r : await r, 'recvmsg')
}

/** Blocking {@link sendmsg} (Hare's `net::sendmsg`); `EAGAIN` on a non-blocking socket that is full. */
export function sendmsgSync(sock: socket, msg: msghdr): number {
  validateFd(sock)
  validateMsg(msg)
  validateSend(msg)
  return check(binding.sendmsgSync(sock, msg.vectors, msg.sendFds, msg.sendGroups), 'sendmsg')
}

/** Blocking {@link recvmsg} (Hare's `net::recvmsg`); `EAGAIN` on a non-blocking socket with nothing to read. */
export function recvmsgSync(sock: socket, msg: msghdr): number {
  validateFd(sock)
  validateMsg(msg)
  return received(msg, gotItems(binding.recvmsgSync(sock, msg.vectors, msg.fdRoom, got)), 'recvmsg')
}

/**
 * Closes a socket (or any fd). Operations of this library pending on it reject with
 * `code: 'ERR_SOCKET_CLOSED'`.
 *
 * @throws {ErrnoError} `EBADF` for an fd that is not open.
 */
export function close(sock: socket): void {
  validateFd(sock)
  check(binding.close(sock), 'close')
}

// ---------------------------------------------------------------------------------------------
// Additions

/**
 * Sends `data` with `fds` attached in one message (Python's `socket.send_fds`).
 *
 * @returns a promise of the number of data bytes sent (possibly fewer than `data` holds, as
 * {@link sendmsg}).
 * @rejects {RangeError} fds with empty data, or more than {@link MAX_FDS} fds.
 */
export async function sendfds(
  sock: socket,
  data: ArrayBufferView | ArrayBuffer,
  fds: readonly number[],
  options?: AsyncOptions,
): Promise<number> {
  validateFd(sock)
  const bytes = bytesOf(data, 'data')
  if (!Array.isArray(fds)) throw argTypeError('fds', 'an instance of Array', fds)
  validateFds(fds, 'fds')
  if (fds.length > MAX_FDS) throw outOfRange('fds.length', `<= ${MAX_FDS}`, fds.length)
  if (fds.length > 0 && bytes.byteLength === 0) {
    throw outOfRange('data.byteLength', '>= 1 when fds are sent (the kernel drops fds sent with no data)', 0)
  }
  const signal = asyncOptions(options)
  return operate('sendfds', 'sendmsg', signal, (t) =>
    binding.sendmsgAsync(sock, bytes, fds as number[], fds.length ? [fds.length] : [], t),
  )
}

/** What {@link recvfds} delivers. */
export interface RecvFdsResult {
  /** The bytes read (empty: the peer closed). */
  data: Buffer
  /** The fds that arrived (close-on-exec); the caller owns them. */
  fds: number[]
  /** More fds came than `maxFds`; the extra ones were closed. */
  truncated: boolean
  /** Datagram and seqpacket sockets: the message was longer than `maxBytes`; the rest is gone. */
  dataTruncated: boolean
}

/**
 * Receives up to `maxBytes` bytes and up to `maxFds` fds in one message (Python's
 * `socket.recv_fds`).
 */
export async function recvfds(
  sock: socket,
  maxBytes: number,
  maxFds: number,
  options?: AsyncOptions,
): Promise<RecvFdsResult> {
  validateFd(sock)
  validateInteger(maxBytes, 'maxBytes', 0, 2 ** 31 - 1)
  validateInteger(maxFds, 'maxFds', 0, MAX_FDS)
  const signal = asyncOptions(options)
  const data = Buffer.allocUnsafe(maxBytes)
  const rc = operateRecv('recvfds', signal, (t) => binding.recvmsgAsync(sock, data, maxFds, t, got))
  const r = Array.isArray(rc) ? rc : await rc
  dropPidfd(r, 1)
  return { data: data.subarray(0, r[0]), fds: r.slice(2), truncated: (r[1] & 1) !== 0, dataTruncated: (r[1] & 2) !== 0 }
}

// ---------------------------------------------------------------------------------------------
// Batched fd passing (beyond Hare): many messages per native call

/** Most messages one native call of {@link recvfdsMany} / {@link sendfdsMany} moves. */
export const MAX_BATCH: number = binding.MAX_BATCH

/** Flags bit of a receive: its first fd is the sender's pidfd (`SCM_PIDFD`; msg.rs). */
const HAS_PIDFD = 8

/**
 * Closes and removes the sender's pidfd from a receive's `[bytes, flags, ...fds]` (flags at
 * `items[at]`): it comes only on a socket with `SO_PASSPIDFD` (made for a `UnixSocket` or a
 * datagram socket with `pidfd: true`), and these functions do not report it.
 */
function dropPidfd(items: number[], at: number): void {
  if (items[0] >= 0 && items[at] & HAS_PIDFD) binding.close(items.splice(at + 1, 1)[0])
}

/** Where a batched call that completed at once leaves its numbers; grown on demand. */
let manyOut = new Int32Array(1 + 64 * 4)
function manyOutFor(size: number): Int32Array {
  if (manyOut.length < size) manyOut = new Int32Array(size)
  return manyOut
}

/** The messages of `[n, (bytes, truncated, nfds, ...fds) × n]`, message `i` read into `data` at `i × slot`. */
function manyResults(items: ArrayLike<number>, data: Buffer, slot: number): RecvFdsResult[] {
  const n = items[0]
  const out: RecvFdsResult[] = new Array(n)
  for (let i = 0, at = 1; i < n; i++) {
    const bytes = items[at]
    const nfds = items[at + 2]
    const fds: number[] = new Array(nfds)
    for (let k = 0; k < nfds; k++) fds[k] = items[at + 3 + k]
    if (items[at + 1] & HAS_PIDFD) binding.close(fds.shift() as number) // see dropPidfd
    const flags = items[at + 1]
    out[i] = {
      data: data.subarray(i * slot, i * slot + bytes),
      fds,
      truncated: (flags & 1) !== 0,
      dataTruncated: (flags & 2) !== 0,
    }
    at += 3 + nfds
  }
  return out
}

/**
 * Receives up to `maxMessages` messages in one native call (`recvmmsg(2)`), each of up to
 * `maxBytes` bytes with up to `maxFds` fds: the batched {@link recvfds}. Waits for the first
 * message, then takes what has arrived, so it resolves with 1 to `maxMessages` results (on a
 * stream socket, bytes that carry fds are never merged with other writes' bytes into one
 * result). Beyond Hare; for receivers of many small fd-carrying messages, where one native call
 * per message is the cost. Received fds are close-on-exec and the caller's; close many at once
 * with {@link closeFds}.
 *
 * @returns a promise of the messages, in order; an empty `data` in the last one means the peer
 * closed.
 * @rejects {RangeError} `maxMessages` outside `[1, MAX_BATCH]`, `maxBytes` < 1, `maxFds` >
 * {@link MAX_FDS}. {@link ErrnoError} (`syscall: 'recvmmsg'`), {@link AbortError},
 * `ERR_SOCKET_CLOSED`, as {@link recvfds}.
 */
export async function recvfdsMany(
  sock: socket,
  maxMessages: number,
  maxBytes: number,
  maxFds: number,
  options?: AsyncOptions,
): Promise<RecvFdsResult[]> {
  validateFd(sock)
  validateInteger(maxMessages, 'maxMessages', 1, MAX_BATCH)
  validateInteger(maxBytes, 'maxBytes', 1, Math.floor((2 ** 31 - 1) / maxMessages))
  validateInteger(maxFds, 'maxFds', 0, MAX_FDS)
  const signal = asyncOptions(options)
  const data = Buffer.allocUnsafe(maxMessages * maxBytes)
  const out = manyOutFor(1 + maxMessages * (3 + maxFds + 1))
  const r = operate('recvfdsMany', 'recvmmsg', signal, (t) =>
    binding.recvManyAsync(sock, data, maxBytes, maxFds, t, out),
  )
  return manyResults(typeof r === 'number' ? out : await r, data, maxBytes)
}

const NO_FDS: readonly number[] = []

/** One message of {@link sendfdsMany}. */
export interface FdMessage {
  /** The bytes; at least one when `fds` is not empty. */
  data: ArrayBufferView | ArrayBuffer
  /** fds to attach to the message's first byte; they stay the caller's. */
  fds?: readonly number[]
}

/**
 * Sends the messages in order, up to {@link MAX_BATCH} per native call (`sendmmsg(2)`), each
 * with its own fds on its first byte: the batched {@link sendfds}. Waits for room as needed and
 * resolves once every byte of every message is sent. Beyond Hare.
 *
 * @returns a promise of the bytes sent in all.
 * @rejects {TypeError}/{RangeError} for a bad message, before anything is sent.
 * @rejects {ErrnoError} (`syscall: 'sendmmsg'`), {@link AbortError} or `ERR_SOCKET_CLOSED`,
 * with `sent` set to the number of messages that went whole before it.
 */
export async function sendfdsMany(
  sock: socket,
  messages: readonly FdMessage[],
  options?: AsyncOptions,
): Promise<number> {
  validateFd(sock)
  if (!Array.isArray(messages)) throw argTypeError('messages', 'an instance of Array', messages)
  const datas: Uint8Array[] = new Array(messages.length)
  const counts = new Int32Array(messages.length)
  const fdList: number[] = []
  for (let i = 0; i < messages.length; i++) {
    const m: unknown = messages[i]
    if (typeof m !== 'object' || m === null) throw argTypeError(`messages[${i}]`, 'of type object', m)
    // Argument names are built only for an error: this runs per message.
    const raw = (m as FdMessage).data
    const data = raw instanceof Uint8Array ? raw : bytesOf(raw, `messages[${i}].data`)
    const own = (m as FdMessage).fds ?? NO_FDS
    if (!Array.isArray(own)) throw argTypeError(`messages[${i}].fds`, 'an instance of Array', own)
    if (!allFds(own)) validateFds(own, `messages[${i}].fds`)
    if (own.length > MAX_FDS) throw outOfRange(`messages[${i}].fds.length`, `<= ${MAX_FDS}`, own.length)
    if (own.length > 0 && data.byteLength === 0) {
      throw outOfRange(
        `messages[${i}].data.byteLength`,
        '>= 1 when fds are sent (the kernel drops fds sent with no data)',
        0,
      )
    }
    datas[i] = data
    counts[i] = own.length
    for (const fd of own) fdList.push(fd)
  }
  // Typed arrays reach the native side in one read each, not one per item.
  const fds = Int32Array.from(fdList)
  const signal = asyncOptions(options)
  let sent = 0
  let fdAt = 0
  let bytes = 0
  try {
    while (sent < datas.length) {
      const end = Math.min(datas.length, sent + MAX_BATCH)
      const whole = sent === 0 && end === datas.length
      const batch = whole ? datas : datas.slice(sent, end)
      const batchCounts = whole ? counts : counts.subarray(sent, end)
      const nfds = batchCounts.reduce((a, b) => a + b, 0)
      const batchFds = whole ? fds : fds.subarray(fdAt, fdAt + nfds)
      const out = manyOutFor(2)
      const r = operate('sendfdsMany', 'sendmmsg', signal, (t) =>
        binding.sendManyAsync(sock, batch, batchFds, batchCounts, t, out),
      )
      const [n, lastBytes] = typeof r === 'number' ? [out[0], out[1]] : await r
      for (let k = 0; k < n; k++) {
        fdAt += counts[sent + k]
        bytes += k < n - 1 ? datas[sent + k].byteLength : lastBytes
      }
      const last = datas[sent + n - 1]
      sent += n
      // A stream socket's buffer filled inside the last message: its fds went with its first
      // byte; the rest of its bytes follow alone, before any later message.
      for (let at = lastBytes; at < last.byteLength;) {
        const rest = last.subarray(at)
        const w = operate('sendfdsMany', 'sendmsg', signal, (t) => binding.sendmsgAsync(sock, rest, [], [], t))
        const m = typeof w === 'number' ? w : await w
        at += m
        bytes += m
      }
    }
  } catch (e) {
    if (typeof e === 'object' && e !== null && !(e instanceof TypeError) && !(e instanceof RangeError)) {
      ;(e as { sent?: number }).sent = sent
    }
    throw e
  }
  return bytes
}

/**
 * Closes every fd in `fds` in one native call (received fds a receiver does not keep); pending
 * operations of this library on them reject as with {@link close}.
 *
 * @throws {ErrnoError} the first failure (`EBADF`), after every fd was tried.
 */
export function closeFds(fds: readonly number[]): void {
  if (!Array.isArray(fds)) throw argTypeError('fds', 'an instance of Array', fds)
  validateFds(fds, 'fds')
  check(binding.closeAll(fds), 'close')
}

/** The credentials of the peer of a connected Unix socket (`SO_PEERCRED`). */
export interface Credentials {
  pid: number
  uid: number
  gid: number
}

/**
 * Who is on the other end of a connected socket (`SO_PEERCRED`), as of connect time.
 *
 * @throws {ErrnoError} `ENOTSOCK`, `EBADF`, …
 */
export function peercred(sock: socket): Credentials {
  validateFd(sock)
  const r = binding.peercred(sock)
  check(r[0], 'getsockopt')
  return { pid: r[0], uid: r[1], gid: r[2] }
}

/** Operations of this library still pending on `sock` (0 means it may be handed to `net.Socket`). */
export function pending(sock: socket): number {
  validateFd(sock)
  return binding.pending(sock)
}

// ---------------------------------------------------------------------------------------------
// net::dial

/** A protocol provider for {@link dial}. */
export type dialer = (address: string, service: string) => Promise<socket>

const dialers = new Map<string, dialer>()

/** Registers a provider for `proto` with {@link dial} (Hare's `net::dial::registerproto`). */
export function registerproto(name: string, provider: dialer): void {
  if (typeof name !== 'string') throw argTypeError('name', 'of type string', name)
  validateFunction(provider, 'dialer')
  dialers.set(name, provider)
}

/**
 * Connects to `address` with the provider registered for `proto` (Hare's `net::dial::dial`).
 * Importing net-unix registers `"unix"`, which is {@link connect}.
 *
 * @rejects {Error} `code: 'ERR_UNKNOWN_PROTOCOL'` when no provider is registered.
 */
export async function dial(proto: string, address: string, service = ''): Promise<socket> {
  if (typeof proto !== 'string') throw argTypeError('proto', 'of type string', proto)
  const provider = dialers.get(proto)
  if (!provider) {
    throw Object.assign(new Error(`Unsupported protocol "${proto}"`), { code: 'ERR_UNKNOWN_PROTOCOL' })
  }
  return provider(address, service)
}

registerproto('unix', (address) => connect(address))

// ---------------------------------------------------------------------------------------------
// Streams (API.md §7): the surface protocol libraries written for Node streams build on

export { UnixSocket, UnixServer } from './lib/stream'
export type { UnixSocketOptions, UnixServerOptions, UnixListenOptions, PeerCredentials } from './lib/stream'

/** Options of {@link createConnection}. */
export interface CreateConnectionOptions extends UnixSocketOptions {
  /** Give up connecting after this many milliseconds (`'error'` with `ETIMEDOUT`). */
  timeout?: number
}

/**
 * Connects to `address` as `net.createConnection(path)` does and returns the {@link UnixSocket}
 * at once: `'connect'` (then `'ready'`) follows, or `'error'` (`ENOENT`, `ECONNREFUSED`,
 * `ETIMEDOUT`, an {@link invalid} address). While the listener's backlog is full it keeps
 * trying, as {@link connect}. Writes (with or without fds) made before `'connect'` are
 * buffered and sent once connected; if the connect fails they are called back as `net` does
 * (the one in flight with `ERR_SOCKET_CLOSED_BEFORE_CONNECTION`, the rest with the connect
 * error) and their dups are closed.
 *
 * @param connectListener added as a `'connect'` listener.
 * @throws {TypeError} for options of the wrong type.
 */
export function createConnection(
  address: addr,
  options?: CreateConnectionOptions | (() => void),
  connectListener?: () => void,
): UnixSocket {
  if (typeof options === 'function') {
    connectListener = options
    options = undefined
  }
  const o = options ?? {}
  if (typeof o !== 'object' || o === null) throw argTypeError('options', 'of type object', o)
  if (connectListener !== undefined) validateFunction(connectListener, 'connectListener')
  const { timeout, fd: _fd, ...rest } = o
  const socket = new UnixSocket({ ...rest, [kConnecting]: String(address) } as UnixSocketOptions)
  if (connectListener) socket.once('connect', connectListener)
  const abort = new AbortController()
  const trailing: ConnectOptions = { signal: abort.signal }
  if (timeout !== undefined) trailing.timeout = timeout
  socket[kConnecting](connect(address, trailing), abort)
  return socket
}

/**
 * A {@link UnixServer}, as `net.createServer`: call `listen(path | { path } | { fd })`; each
 * connection arrives as a {@link UnixSocket} on `'connection'`.
 *
 * @param connectionListener added as a `'connection'` listener.
 */
export function createServer(
  options?: UnixServerOptions | ((socket: UnixSocket) => void),
  connectionListener?: (socket: UnixSocket) => void,
): UnixServer {
  if (typeof options === 'function') return new UnixServer({}, options)
  return new UnixServer(options, connectionListener)
}

// ---------------------------------------------------------------------------------------------
// CommonJS exports as plain data properties. TypeScript compiles `export { x } from` to getters,
// which ignore assignment: `require('unix-dgram').createSocket = mock` (hot-shots' tests) and
// `sinon.stub(require('net-unix'), 'x')` replace exports, as they can in any CommonJS module.
// Last in the file, so that every re-export above is covered. (index.mjs's namespace stays
// read-only, as every ES module's is. Bun, in a checkout, resolves a lib file's '../index' to
// this .ts and runs it as an ES module, where there is no `exports`.)
if (typeof exports === 'object') {
  for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(exports))) {
    if (d.get)
      Object.defineProperty(exports, name, { value: d.get(), writable: true, enumerable: true, configurable: true })
  }
}
