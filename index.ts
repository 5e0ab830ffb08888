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

import { getSystemErrorName } from 'node:util'
import * as native from './binding.js'

// ---------------------------------------------------------------------------------------------
// Native surface not described by the generated binding.d.ts (raw Node-API exports).

interface RawExports {
  init(makeErrnoError: (errno: number, syscall: string) => Error, makeClosedError: () => Error): void
  // The *Async calls return a number (result or -errno) when they completed at once.
  acceptAsync(fd: number, flags: number, token: number): number | Promise<number>
  recvmsgAsync(fd: number, bufs: Uint8Array | Uint8Array[], maxFds: number, token: number, out: Int32Array): number | Promise<number[]>
  sendmsgAsync(fd: number, bufs: Uint8Array | Uint8Array[], fds: number[], groups: number[], token: number): number | Promise<number>
  cancel(token: number, reason: unknown): boolean
  close(fd: number): number
  pending(fd: number): number
  recvmsgSync(fd: number, bufs: Uint8Array[], maxFds: number, out: Int32Array): number
  sendmsgSync(fd: number, bufs: Uint8Array[], fds: number[], groups: number[]): number
}
const raw = native as unknown as typeof native & RawExports

const SOCK_CLOEXEC = 0o2000000
const SOCK_NONBLOCK = 0o4000
const EAGAIN = -11
const ETIMEDOUT = -110
const MAX_NAME = 107
const U32_MAX = 2 ** 32 - 1
/** The most fds one message may carry (Linux `SCM_MAX_FD`). */
export const MAX_FDS: number = native.MAX_FDS

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
  NOCLOEXEC = SOCK_CLOEXEC,
  /** Make the new socket non-blocking. */
  NONBLOCK = SOCK_NONBLOCK,
}
const KNOWN_FLAGS = sockflag.NOCLOEXEC | sockflag.NONBLOCK

const kBacklog = Symbol('net-unix.backlog')

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

/** Options for {@link connect}: socket flags. */
export type connect_option = sockflag
/** Options for {@link listen}: socket flags or a {@link backlog}. */
export type listen_option = backlog | sockflag

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

/**
 * Thrown (or, by Promise forms, rejected with) for an invalid socket address: empty, containing a NUL byte (other than the leading one
 * of an abstract name), or longer than 107 bytes of UTF-8. Hare's `net::unix::invalid`.
 */
export class invalid extends Error {
  /** Always `'ERR_INVALID_UNIX_PATH'`. */
  readonly code = 'ERR_INVALID_UNIX_PATH'
  /** The address that was refused. */
  readonly address: string
  constructor(address: string, reason: string) {
    super(`Invalid Unix socket address ${JSON.stringify(address)}: ${reason}`)
    this.name = 'invalid'
    this.address = address
  }
}

/** The rejection of an aborted operation; `cause` is the signal's reason (as in `fs.promises`). */
export class AbortError extends Error {
  /** Always `'ABORT_ERR'`. */
  readonly code = 'ABORT_ERR'
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AbortError'
  }
}

/** A kernel error, shaped like Node's `ErrnoException`. */
export interface ErrnoError extends Error {
  /** `'ENOENT'`, `'ECONNREFUSED'`, … */
  code: string
  /** The negative errno, as Node reports it (`-111`). */
  errno: number
  /** The system call that failed (`'connect'`, `'bind'`, `'sendmsg'`, …). */
  syscall: string
  /** The socket address involved, when there is one. */
  address?: string
}

// ---------------------------------------------------------------------------------------------
// Errors and validators (the shapes of Node's internal/errors.js and internal/validators.js)

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name
    return name ? `an instance of ${name}` : 'an object'
  }
  let shown = String(value)
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`
  if (typeof value === 'string') shown = `'${shown}'`
  return `type ${typeof value} (${shown})`
}

function argTypeError(name: string, expected: string, value: unknown): TypeError {
  const e = new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(value)}`)
  return Object.assign(e, { code: 'ERR_INVALID_ARG_TYPE' })
}

function outOfRange(name: string, range: string, value: unknown): RangeError {
  const e = new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${String(value)}`)
  return Object.assign(e, { code: 'ERR_OUT_OF_RANGE' })
}

function validateInteger(value: unknown, name: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number') throw argTypeError(name, 'of type number', value)
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value)
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value)
}

function validateFd(fd: unknown, name = 'sock'): asserts fd is number {
  validateInteger(fd, name, 0, 2 ** 31 - 1)
}

/** Every item an fd; the argument name is only built for the error (this runs per message). */
function validateFds(fds: readonly unknown[], name: string): void {
  for (let i = 0; i < fds.length; i++) {
    const fd = fds[i]
    if (!Number.isInteger(fd) || (fd as number) < 0 || (fd as number) > 2 ** 31 - 1) validateFd(fd, `${name}[${i}]`)
  }
}

/** A combination of {@link sockflag} values and nothing else. */
function isSockflags(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && (value & ~KNOWN_FLAGS) === 0
}

function validateFlag(value: unknown, name: string): number {
  if (typeof value !== 'number') throw argTypeError(name, 'a sockflag', value)
  if (!isSockflags(value)) throw outOfRange(name, 'a combination of sockflag values', value)
  return value
}

function validateSignal(signal: unknown, name: string): asserts signal is AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw argTypeError(name, 'an instance of AbortSignal', signal)
  }
}

/** Node's ErrnoException shape, from a negative errno returned by the native layer. */
function errnoError(errno: number, syscall: string, address?: string): ErrnoError {
  const code = getSystemErrorName(errno)
  const e = new Error(address === undefined ? `${syscall} ${code}` : `${syscall} ${code} ${address}`) as ErrnoError
  e.code = code
  e.errno = errno
  e.syscall = syscall
  if (address !== undefined) e.address = address
  Error.captureStackTrace(e, errnoError)
  return e
}

function closedError(): Error {
  return Object.assign(new Error('Socket is closed'), { code: 'ERR_SOCKET_CLOSED' })
}

function abortError(signal: AbortSignal): AbortError {
  return new AbortError(undefined, { cause: signal.reason })
}

/** Returns `rc` when it is not an error, throws the errno error otherwise. */
function check(rc: number, syscall: string, address?: string): number {
  if (rc < 0) throw errnoError(rc, syscall, address)
  return rc
}

// ---------------------------------------------------------------------------------------------
// Addresses and option lists

/** The address as bytes for the kernel, or `invalid`, checked before any syscall. */
function encodeAddr(address: unknown, name = 'addr'): Buffer {
  if (typeof address !== 'string') throw argTypeError(name, 'of type string', address)
  const bytes = Buffer.from(address, 'utf8')
  if (bytes.length === 0) throw new invalid(address, 'the address is empty')
  const abstract = bytes[0] === 0
  const nameBytes = abstract ? bytes.subarray(1) : bytes
  if (nameBytes.length === 0) throw new invalid(address, 'the abstract name is empty')
  if (nameBytes.includes(0)) throw new invalid(address, 'the address contains a NUL byte')
  if (nameBytes.length > MAX_NAME) {
    throw new invalid(address, `${nameBytes.length} bytes is longer than the ${MAX_NAME} bytes sun_path allows`)
  }
  return bytes
}

interface Parsed {
  /** Kernel flags: the options OR-ed, with close-on-exec toggled (Hare's `f ^= SOCK_CLOEXEC`). */
  flags: number
  /** The user asked for NONBLOCK. */
  nonblock: boolean
  backlog: number
  signal?: AbortSignal
  timeout?: number
}

function isPlainOptions(value: unknown): value is ConnectOptions {
  return typeof value === 'object' && value !== null && !(kBacklog in value) && !Array.isArray(value)
}

/**
 * Hare's variadic options: flags OR-ed together then close-on-exec toggled; for `listen`, the
 * last backlog wins (default 10). Promise forms may end with one `{ signal, timeout }` object.
 */
function parseOptions(
  options: readonly unknown[],
  first: number,
  fn: string,
  accepts: { backlog?: boolean; trailing?: 'signal' | 'signal+timeout' },
): Parsed {
  const out: Parsed = { flags: 0, nonblock: false, backlog: 10 }
  let n = options.length
  if (accepts.trailing && n > 0 && isPlainOptions(options[n - 1])) {
    const o = options[--n] as ConnectOptions
    validateSignal(o.signal, 'options.signal')
    out.signal = o.signal
    if (accepts.trailing === 'signal+timeout' && o.timeout !== undefined) {
      validateInteger(o.timeout, 'options.timeout', 0, 2 ** 31 - 1)
      out.timeout = o.timeout
    }
  }
  let or = 0
  for (let i = 0; i < n; i++) {
    const opt = options[i]
    const name = `${fn} option ${first + i}`
    if (accepts.backlog && typeof opt === 'object' && opt !== null && kBacklog in opt) {
      out.backlog = (opt as backlog).value
    } else if (accepts.backlog && typeof opt === 'number' && !isSockflags(opt)) {
      // A bare number here is most likely a backlog: ambiguous with a flag, so refused.
      throw argTypeError(name, `a sockflag or backlog(n) (for a backlog of ${opt}, pass backlog(${opt}))`, opt)
    } else if (typeof opt !== 'number') {
      throw argTypeError(name, accepts.backlog ? 'a sockflag or backlog(n)' : 'a sockflag', opt)
    } else {
      or |= validateFlag(opt, name)
    }
  }
  out.nonblock = (or & SOCK_NONBLOCK) !== 0
  out.flags = or ^ SOCK_CLOEXEC
  return out
}

// ---------------------------------------------------------------------------------------------
// Asynchrony: the native reactor, AbortSignal plumbing

/** Why the Promise API is unavailable here, or `null` when it works. */
const asyncUnavailable: string | null = (() => {
  const versions = process.versions as Record<string, string | undefined>
  if (versions.bun) return 'Bun has no working libuv for addons'
  if ('Deno' in globalThis) return 'Deno has no working libuv for addons'
  try {
    raw.init(errnoError, closedError)
    return null
  } catch (e) {
    return (e as Error).message
  }
})()

function unsupported(fn: string): Promise<never> {
  const e = new Error(`net-unix: ${fn}() needs Node's libuv event loop (${asyncUnavailable}); use ${fn}Sync()`)
  return Promise.reject(Object.assign(e, { code: 'ERR_RUNTIME_UNSUPPORTED' }))
}

let lastToken = 0

/**
 * Starts a native operation: its number (result or -errno) when it completed at once, which
 * costs no promise of its own; otherwise its promise, with `signal` wired to cancel it while it
 * waits.
 */
function start<T>(signal: AbortSignal | undefined, run: (token: number) => number | Promise<T>): number | Promise<T> {
  if (!signal) return run(0)
  if (signal.aborted) throw abortError(signal)
  lastToken = lastToken >= U32_MAX ? 1 : lastToken + 1
  const token = lastToken
  const promise = run(token)
  if (typeof promise === 'number') return promise
  const onAbort = (): void => {
    raw.cancel(token, abortError(signal))
  }
  signal.addEventListener('abort', onAbort, { once: true })
  const off = (): void => signal.removeEventListener('abort', onAbort)
  promise.then(off, off)
  return promise
}

/** A number from {@link start} checked, or its promise. */
function outcome<T>(r: number | Promise<T>, syscall: string): number | Promise<T> {
  return typeof r === 'number' ? check(r, syscall) : r
}

/** Where a receive that completed at once leaves `[truncated, nfds, ...fds]`. */
const got = new Int32Array(2 + MAX_FDS)

/** `[bytes, truncated, ...fds]` of a receive that returned `rc` (-errno: `[rc]`), read from {@link got}. */
function gotItems(rc: number): number[] {
  if (rc < 0) return [rc]
  const items = [rc, got[0]]
  for (let i = 0, n = got[1]; i < n; i++) items.push(got[2 + i])
  return items
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
  const o = parseOptions(options, 1, 'listen', { backlog: true })
  return check(native.listen(bytes, o.flags, o.backlog), 'listen', address)
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
  const o = parseOptions(options, 1, 'connect', { trailing: 'signal+timeout' })
  if (o.signal?.aborted) throw abortError(o.signal)
  const fd = check(native.socket(o.flags | SOCK_NONBLOCK), 'socket', address)
  return new Promise<socket>((resolve, reject) => {
    let timer: NodeJS.Timeout | NodeJS.Immediate | undefined
    let delay = 0
    const deadline = o.timeout === undefined ? Infinity : Date.now() + o.timeout
    const finish = (error: Error | null): void => {
      if (timer !== undefined) {
        clearTimeout(timer as NodeJS.Timeout)
        clearImmediate(timer as NodeJS.Immediate)
      }
      o.signal?.removeEventListener('abort', onAbort)
      if (error) {
        raw.close(fd)
        reject(error)
      } else {
        resolve(fd)
      }
    }
    const onAbort = (): void => finish(abortError(o.signal as AbortSignal))
    const attempt = (): void => {
      timer = undefined
      const rc = native.tryConnect(fd, bytes)
      if (rc === 0) {
        // The socket was made non-blocking only to try; give back what was asked for.
        finish(o.nonblock ? null : rc2err(native.setNonblocking(fd, false)))
      } else if (rc !== EAGAIN) {
        finish(errnoError(rc, 'connect', address))
      } else if (Date.now() >= deadline) {
        finish(errnoError(ETIMEDOUT, 'connect', address))
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
  const o = parseOptions(options, 1, 'connectSync', {})
  return check(native.connectSync(bytes, o.flags), 'connect', address)
}

/**
 * Accepts the next connection on a listening socket (`accept4` with the combined flags).
 * Pending accepts on one listener are served in call order. The listener is made non-blocking
 * (as libuv does), so a later {@link acceptSync} on it fails with `EAGAIN` when nothing waits.
 *
 * @param flags socket flags for the new socket, optionally followed by `{ signal }`.
 * @returns a promise of the accepted socket.
 * @rejects {ErrnoError} `EBADF`, `ENOTSOCK`, `EINVAL` (not listening), …
 * @rejects {AbortError} when `signal` aborts. `ERR_SOCKET_CLOSED` when {@link close}d meanwhile.
 */
export async function accept(sock: socket, ...flags: (sockflag | AsyncOptions)[]): Promise<socket> {
  validateFd(sock)
  const o = parseOptions(flags, 1, 'accept', { trailing: 'signal' })
  if (asyncUnavailable) return unsupported('accept')
  return outcome(start(o.signal, (token) => raw.acceptAsync(sock, o.flags, token)), 'accept')
}

/**
 * Accepts the next connection, blocking until one arrives (Hare's `accept`). On a non-blocking
 * socket with nothing pending: `EAGAIN`.
 *
 * @returns the accepted socket.
 * @throws {ErrnoError} what the kernel refused.
 */
export function acceptSync(sock: socket, ...flags: sockflag[]): socket {
  validateFd(sock)
  const o = parseOptions(flags, 1, 'acceptSync', {})
  return check(native.acceptSync(sock, o.flags), 'accept')
}

/**
 * An unnamed, connected pair of stream sockets (`socketpair(AF_UNIX, SOCK_STREAM)`).
 *
 * @returns the two sockets.
 * @throws {ErrnoError} `EMFILE`, `ENFILE`.
 */
export function socketpair(...flags: sockflag[]): [socket, socket] {
  const o = parseOptions(flags, 0, 'socketpair', {})
  const r = native.socketpair(o.flags)
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

/** A Uint8Array over the same memory as any ArrayBufferView or ArrayBuffer. */
function bytesOf(buf: unknown, name: string): Uint8Array {
  if (buf instanceof Uint8Array) return buf
  if (ArrayBuffer.isView(buf)) return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
  if (buf instanceof ArrayBuffer || buf instanceof SharedArrayBuffer) return new Uint8Array(buf)
  throw argTypeError(name, 'an instance of Buffer, TypedArray, DataView or ArrayBuffer', buf)
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
 * Adds fds to the message's ancillary data, as one `SCM_RIGHTS` control message (several calls
 * add several; the kernel delivers them together). The fds stay the caller's.
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
}

function dropUnclaimed(msg: msghdr): void {
  for (const fd of msg.received.slice(msg.claimed)) raw.close(fd)
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
  dropUnclaimed(msg) // a message reused without finish() must not leak the previous fds
  msg.truncated = r[1] === 1
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
  if (asyncUnavailable) return unsupported('sendmsg')
  return outcome(start(signal, (t) => raw.sendmsgAsync(sock, msg.vectors, msg.sendFds, msg.sendGroups, t)), 'sendmsg')
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
  if (asyncUnavailable) return unsupported('recvmsg')
  const r = start(signal, (t) => raw.recvmsgAsync(sock, msg.vectors, msg.fdRoom, t, got))
  return received(msg, typeof r === 'number' ? gotItems(r) : await r, 'recvmsg')
}

/** Blocking {@link sendmsg} (Hare's `net::sendmsg`); `EAGAIN` on a non-blocking socket that is full. */
export function sendmsgSync(sock: socket, msg: msghdr): number {
  validateFd(sock)
  validateMsg(msg)
  validateSend(msg)
  return check(raw.sendmsgSync(sock, msg.vectors, msg.sendFds, msg.sendGroups), 'sendmsg')
}

/** Blocking {@link recvmsg} (Hare's `net::recvmsg`); `EAGAIN` on a non-blocking socket with nothing to read. */
export function recvmsgSync(sock: socket, msg: msghdr): number {
  validateFd(sock)
  validateMsg(msg)
  return received(msg, gotItems(raw.recvmsgSync(sock, msg.vectors, msg.fdRoom, got)), 'recvmsg')
}

function asyncOptions(options: unknown): AbortSignal | undefined {
  if (options === undefined) return undefined
  if (typeof options !== 'object' || options === null) throw argTypeError('options', 'of type object', options)
  const signal = (options as AsyncOptions).signal
  validateSignal(signal, 'options.signal')
  return signal
}

/**
 * Closes a socket (or any fd). Operations of this library pending on it reject with
 * `code: 'ERR_SOCKET_CLOSED'`.
 *
 * @throws {ErrnoError} `EBADF` for an fd that is not open.
 */
export function close(sock: socket): void {
  validateFd(sock)
  check(raw.close(sock), 'close')
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
export async function sendfds(sock: socket, data: ArrayBufferView | ArrayBuffer, fds: readonly number[], options?: AsyncOptions): Promise<number> {
  validateFd(sock)
  const bytes = bytesOf(data, 'data')
  if (!Array.isArray(fds)) throw argTypeError('fds', 'an instance of Array', fds)
  validateFds(fds, 'fds')
  if (fds.length > MAX_FDS) throw outOfRange('fds.length', `<= ${MAX_FDS}`, fds.length)
  if (fds.length > 0 && bytes.byteLength === 0) {
    throw outOfRange('data.byteLength', '>= 1 when fds are sent (the kernel drops fds sent with no data)', 0)
  }
  const signal = asyncOptions(options)
  if (asyncUnavailable) return unsupported('sendfds')
  return outcome(start(signal, (t) => raw.sendmsgAsync(sock, bytes, fds as number[], fds.length ? [fds.length] : [], t)), 'sendmsg')
}

/** What {@link recvfds} delivers. */
export interface RecvFdsResult {
  /** The bytes read (empty: the peer closed). */
  data: Buffer
  /** The fds that arrived (close-on-exec); the caller owns them. */
  fds: number[]
  /** More fds came than `maxFds`; the extra ones were closed. */
  truncated: boolean
}

/**
 * Receives up to `maxBytes` bytes and up to `maxFds` fds in one message (Python's
 * `socket.recv_fds`).
 */
export async function recvfds(sock: socket, maxBytes: number, maxFds: number, options?: AsyncOptions): Promise<RecvFdsResult> {
  validateFd(sock)
  validateInteger(maxBytes, 'maxBytes', 0, 2 ** 31 - 1)
  validateInteger(maxFds, 'maxFds', 0, MAX_FDS)
  const signal = asyncOptions(options)
  if (asyncUnavailable) return unsupported('recvfds')
  const data = Buffer.allocUnsafe(maxBytes)
  const rc = start(signal, (t) => raw.recvmsgAsync(sock, data, maxFds, t, got))
  const r = typeof rc === 'number' ? gotItems(rc) : await rc
  check(r[0], 'recvmsg')
  return { data: data.subarray(0, r[0]), fds: r.slice(2), truncated: r[1] === 1 }
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
  const r = native.peercred(sock)
  check(r[0], 'getsockopt')
  return { pid: r[0], uid: r[1], gid: r[2] }
}

/** Operations of this library still pending on `sock` (0 means it may be handed to `net.Socket`). */
export function pending(sock: socket): number {
  validateFd(sock)
  return raw.pending(sock)
}

// ---------------------------------------------------------------------------------------------
// net::dial

/** A protocol provider for {@link dial}. */
export type dialer = (address: string, service: string) => Promise<socket>

const dialers = new Map<string, dialer>()

/** Registers a provider for `proto` with {@link dial} (Hare's `net::dial::registerproto`). */
export function registerproto(name: string, provider: dialer): void {
  if (typeof name !== 'string') throw argTypeError('name', 'of type string', name)
  if (typeof provider !== 'function') throw argTypeError('dialer', 'of type function', provider)
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
