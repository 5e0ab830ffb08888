// Datagram sockets (SOCK_DGRAM): the functions (sendto/recvfrom with addresses, fds and
// credentials) and the evented socket that node:dgram and the `unix-dgram` package share.
import { Readiness, READABLE, WRITABLE } from './readiness'
import { EventEmitter } from 'node:events'
import * as nodeDgram from 'node:dgram'
import { binding } from './binding'
import { EAGAIN, ENOBUFS, SOCK_CLOEXEC, SOCK_DGRAM, SOCK_NONBLOCK } from './constants'
import { argTypeError, check, errnoError, outOfRange } from './errors'
import { encodeAddr } from './address'
import { operate } from './promises'
import { passPidfd } from './pidfd'
import {
  bytesOf,
  validateFd,
  validateFds,
  validateFlag,
  validateFunction,
  validateInteger,
  validateSignal,
} from './validators'

const MAX_FDS: number = binding.MAX_FDS
const MAX_BATCH: number = binding.MAX_BATCH
const NO_GROUPS: number[] = []
/** The most items before the fds in a receive's result layout (see dgram.rs `HEAD`). */
const HEAD = 7 + 108
/** Flags bit: the first fd of the layout is the sender's pidfd (`SCM_PIDFD`; msg.rs). */
const HAS_PIDFD = 8

/** Credentials of a datagram's sender (`SCM_CREDENTIALS`), or of a connected peer. */
export interface Credentials {
  pid: number
  uid: number
  gid: number
}

/** What {@link recvfrom} delivers: one datagram. */
export interface Datagram {
  /** The datagram's bytes (at most `maxBytes`). */
  data: Buffer
  /** The sender's address: a path, `'\0name'` for an abstract name, `null` when unnamed. */
  address: string | null
  /** The fds that came with it (close-on-exec, yours); `[]` when none came or none were asked for. */
  fds: number[]
  /** The sender's credentials, with `credentials: true` on a socket made with them. */
  cred?: Credentials
  /** With `pidfd: true` on a socket made with it: the sender's pidfd (close-on-exec, yours to close). */
  pidfd?: number
  /** More fds came than `maxFds` (the extra ones were closed), or the control data did not fit. */
  truncated: boolean
  /** The datagram was longer than `maxBytes`; the rest is gone. */
  dataTruncated: boolean
}

/** Options of {@link dgramSocket}. */
export interface DgramSocketOptions {
  /** Bind to this address; `true` binds to a fresh abstract name the kernel picks (autobind). */
  bind?: string | true
  /** Connect to this address (then {@link send} needs none, and only it may send to this socket). */
  connect?: string
  /** Ask the kernel for each sender's credentials (`SO_PASSCRED`): see {@link recvfrom}. */
  credentials?: boolean
  /** Ask the kernel for each sender's pidfd (`SO_PASSPIDFD`, Linux 6.5+): see {@link recvfrom}. */
  pidfd?: boolean
  /** Socket flags (`sockflag.NONBLOCK`, `sockflag.NOCLOEXEC`). */
  flags?: number
}

/** Options of {@link sendto} / {@link send} and their `*Sync` twins. */
export interface SendOptions {
  /** fds to pass with the datagram (`SCM_RIGHTS`); the caller keeps its own. */
  fds?: readonly number[]
  /** Attach this process's credentials (`SCM_CREDENTIALS`) explicitly. */
  credentials?: boolean
  /** Promise forms: aborts the send while it waits. */
  signal?: AbortSignal
}

/** Options of {@link recvfrom} / {@link recvfromSync}. */
export interface RecvOptions {
  /** Room for this many fds (default 0: fds sent are closed by the kernel). */
  maxFds?: number
  /** Report the sender's credentials in `cred` (the socket needs `credentials: true`). */
  credentials?: boolean
  /**
   * Report the sender's pidfd in `pidfd` (the socket needs `pidfd: true`): race-free identity,
   * see `pidfdInfo`. Without it, pidfds the kernel attaches are closed.
   */
  pidfd?: boolean
  /** Promise form: aborts the receive while it waits (nothing is consumed). */
  signal?: AbortSignal
}

function validateOptions(options: unknown, name: string): Record<string, unknown> {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null) throw argTypeError(name, 'of type object', options)
  return options as Record<string, unknown>
}

function validateBool(value: unknown, name: string): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean') throw argTypeError(name, 'of type boolean', value)
  return value
}

/**
 * A new `SOCK_DGRAM` Unix socket, optionally bound (to an address, or autobound with `bind:
 * true`), with `SO_PASSCRED` (`credentials: true`), and connected. Close-on-exec unless
 * `NOCLOEXEC`. Synchronous: none of these calls wait.
 *
 * @returns the socket.
 * @throws {invalid} for a bad address, before any syscall.
 * @throws {ErrnoError} what the kernel refused (`EADDRINUSE` for a bound name, `ENOENT` /
 * `ECONNREFUSED` for `connect`, …); nothing is left open, and a socket file `bind` made is removed.
 */
export function dgramSocket(options?: DgramSocketOptions): number {
  const o = validateOptions(options, 'options')
  const bindTo = o.bind === undefined || o.bind === true ? undefined : encodeAddr(o.bind, 'options.bind')
  if (o.bind !== undefined && o.bind !== true && typeof o.bind !== 'string')
    throw argTypeError('options.bind', 'of type string or true', o.bind)
  const connectTo = o.connect === undefined ? undefined : encodeAddr(o.connect, 'options.connect')
  const credentials = validateBool(o.credentials, 'options.credentials')
  const pidfd = validateBool(o.pidfd, 'options.pidfd')
  const flags = (o.flags === undefined ? 0 : validateFlag(o.flags, 'options.flags')) ^ SOCK_CLOEXEC
  const fd = check(binding.socketTyped(SOCK_DGRAM, flags), 'socket')
  if (pidfd) {
    try {
      passPidfd(fd)
    } catch (e) {
      binding.close(fd)
      throw e
    }
  }
  let step = 'setsockopt'
  let address: string | undefined
  let rc = credentials ? binding.setPasscred(fd, true) : 0
  if (rc >= 0 && o.bind !== undefined) {
    step = 'bind'
    address = typeof o.bind === 'string' ? o.bind : undefined
    rc = bindTo ? binding.bindAddr(fd, bindTo) : binding.autobind(fd)
  }
  if (rc >= 0 && connectTo) {
    step = 'connect'
    address = o.connect as string
    rc = binding.connectAddr(fd, connectTo)
    if (rc < 0 && bindTo && bindTo[0] !== 0) unlinkQuietly(o.bind as string)
  }
  if (rc < 0) {
    binding.close(fd)
    throw errnoError(rc, step, address)
  }
  return fd
}

function unlinkQuietly(path: string): void {
  try {
    require('node:fs').unlinkSync(path)
  } catch {
    // not ours to report: the connect error is
  }
}

/**
 * The address a socket is bound to (`getsockname`): a path, `'\0name'` for an abstract name
 * (an autobound socket's included), or `null` when it is not bound.
 *
 * @throws {ErrnoError} `EBADF`, `ENOTSOCK`.
 */
export function localaddr(sock: number): string | null {
  validateFd(sock)
  let b: Buffer
  try {
    b = binding.localAddress(sock)
  } catch (e) {
    throw errnoError(Number((e as Error).message), 'getsockname')
  }
  return b.length === 0 ? null : b.toString('utf8')
}

interface Send {
  bytes: Uint8Array
  to: Uint8Array | null
  fds: number[]
  creds: boolean
  signal?: AbortSignal
}

function sendArgs(sock: unknown, data: unknown, address: unknown, options: unknown, withTo: boolean): Send {
  validateFd(sock)
  const bytes = bytesOf(data, 'data')
  const to = withTo ? encodeAddr(address, 'address') : null
  const o = validateOptions(options, 'options')
  const fds = o.fds === undefined ? [] : o.fds
  if (!Array.isArray(fds)) throw argTypeError('options.fds', 'an instance of Array', fds)
  validateFds(fds, 'options.fds')
  if (fds.length > MAX_FDS) throw outOfRange('options.fds.length', `<= ${MAX_FDS}`, fds.length)
  validateSignal(o.signal, 'options.signal')
  return {
    bytes,
    to,
    fds: fds as number[],
    creds: validateBool(o.credentials, 'options.credentials'),
    signal: o.signal as AbortSignal | undefined,
  }
}

function addressed<T>(p: number | Promise<T>, address: string | undefined): number | Promise<T> {
  if (typeof p === 'number' || address === undefined) return p
  return p.catch((e: Error & { address?: string; syscall?: string }) => {
    if (e.syscall !== undefined && e.address === undefined) {
      e.address = address
      e.message += ` ${address}`
    }
    throw e
  })
}

/** The send of {@link sendto} / {@link send}: a number when it completed at once (no promise of its own). */
function sendAsync(sock: number, s: Send, address: string | undefined): number | Promise<number> {
  const groups = s.fds.length ? [s.fds.length] : NO_GROUPS
  let r: number | Promise<number>
  try {
    r = operate('sendto', 'sendmsg', s.signal, (t) =>
      binding.sendtoAsync(sock, s.bytes, s.to, s.fds, groups, s.creds, t),
    )
  } catch (e) {
    throw withAddress(e, address)
  }
  return addressed(r, address)
}

function withAddress(e: unknown, address: string | undefined): unknown {
  const err = e as Error & { address?: string; syscall?: string }
  if (address !== undefined && err.syscall !== undefined && err.address === undefined) {
    err.address = address
    err.message += ` ${address}`
  }
  return err
}

/**
 * Sends one datagram to `address` (a path or `'\0name'`), with fds and credentials on request.
 * Never blocks the event loop: while the receiver's queue is full it waits.
 *
 * @returns a promise of the bytes sent (all of them: a datagram is sent whole or not at all).
 * @rejects {invalid} for a bad address; {@link ErrnoError} `ECONNREFUSED` (nothing bound
 * there), `ENOENT`, `EMSGSIZE` (larger than the socket's send buffer allows), `EBADF`, … with
 * `address`; `AbortError`; `ERR_SOCKET_CLOSED`.
 */
export async function sendto(
  sock: number,
  data: ArrayBufferView | ArrayBuffer,
  address: string,
  options?: SendOptions,
): Promise<number> {
  return sendAsync(sock, sendArgs(sock, data, address, options, true), address)
}

/** Sends one datagram on a connected datagram socket; as {@link sendto} without the address. */
export async function send(sock: number, data: ArrayBufferView | ArrayBuffer, options?: SendOptions): Promise<number> {
  return sendAsync(sock, sendArgs(sock, data, undefined, options, false), undefined)
}

/** Blocking {@link sendto} (`EAGAIN` on a non-blocking socket when the receiver's queue is full). */
export function sendtoSync(
  sock: number,
  data: ArrayBufferView | ArrayBuffer,
  address: string,
  options?: Omit<SendOptions, 'signal'>,
): number {
  const s = sendArgs(sock, data, address, options, true)
  return check(
    binding.sendtoSync(sock, s.bytes, s.to, s.fds, s.fds.length ? [s.fds.length] : [], s.creds, false),
    'sendmsg',
    address,
  )
}

/** Blocking {@link send}. */
export function sendSync(
  sock: number,
  data: ArrayBufferView | ArrayBuffer,
  options?: Omit<SendOptions, 'signal'>,
): number {
  const s = sendArgs(sock, data, undefined, options, false)
  return check(
    binding.sendtoSync(sock, s.bytes, null, s.fds, s.fds.length ? [s.fds.length] : [], s.creds, false),
    'sendmsg',
  )
}

/** Where a receive that completed at once leaves its layout. */
const gotFrom = new Int32Array(HEAD + MAX_FDS)

/** The sender's address of a layout: `len` bytes, one per item, from `at`. */
function addressAt(items: ArrayLike<number>, at: number, len: number): string | null {
  if (len === 0) return null
  const a = Buffer.allocUnsafe(len)
  for (let i = 0; i < len; i++) a[i] = items[at + i]
  return a.toString('utf8')
}

/**
 * The datagram of the layout `(bytes, flags, nfds, pid, uid, gid, addrLen, ...addr, ...fds)` at
 * `items[at]`, its bytes in `data` from `from`.
 */
function datagramAt(data: Buffer, from: number, items: ArrayLike<number>, at: number, pidfd = false): Datagram {
  const flags = items[at + 1]
  const nfds = items[at + 2]
  const addrLen = items[at + 6]
  const fds: number[] = new Array(nfds)
  for (let i = 0, f = at + 7 + addrLen; i < nfds; i++) fds[i] = items[f + i]
  const sender = flags & HAS_PIDFD ? (fds.shift() as number) : -1
  const d: Datagram = {
    data: data.subarray(from, from + items[at]),
    address: addressAt(items, at + 7, addrLen),
    fds,
    truncated: (flags & 1) !== 0,
    dataTruncated: (flags & 2) !== 0,
  }
  if (flags & 4) d.cred = { pid: items[at + 3], uid: items[at + 4] >>> 0, gid: items[at + 5] >>> 0 }
  if (sender >= 0) {
    if (pidfd) d.pidfd = sender
    else binding.close(sender) // not asked for: never left open
  }
  return d
}

/** The datagrams of a batch, `[n, ...layout × n]` from `items[at]`, message `i` in `data` at `i × slot`. */
function datagrams(items: ArrayLike<number>, at: number, data: Buffer, slot: number, pidfd = false): Datagram[] {
  const n = items[at++]
  const out: Datagram[] = new Array(n)
  for (let i = 0; i < n; i++) {
    out[i] = datagramAt(data, i * slot, items, at, pidfd)
    at += 7 + items[at + 6] + items[at + 2]
  }
  return out
}

/** Room a batch of `n` messages with up to `maxFds` fds (and a pidfd) each may take in the many layout. */
function batchRoom(n: number, maxFds: number): number {
  return 1 + n * (HEAD + maxFds + 1)
}

function recvArgs(
  sock: unknown,
  maxBytes: unknown,
  options: unknown,
): { maxFds: number; creds: boolean; pidfd: boolean; signal?: AbortSignal } {
  validateFd(sock)
  validateInteger(maxBytes, 'maxBytes', 0, 2 ** 31 - 1)
  const o = validateOptions(options, 'options')
  const maxFds = o.maxFds === undefined ? 0 : o.maxFds
  validateInteger(maxFds, 'options.maxFds', 0, MAX_FDS)
  validateSignal(o.signal, 'options.signal')
  return {
    maxFds,
    creds: validateBool(o.credentials, 'options.credentials'),
    pidfd: validateBool(o.pidfd, 'options.pidfd'),
    signal: o.signal as AbortSignal | undefined,
  }
}

/**
 * Receives one datagram (or one seqpacket message) of up to `maxBytes`, with the sender's
 * address, up to `maxFds` fds, and the sender's credentials with `credentials: true`. Never
 * blocks the event loop.
 *
 * @returns a promise of the {@link Datagram}.
 * @rejects {ErrnoError} `EBADF`, `ENOTSOCK`, …; `AbortError` (nothing consumed); `ERR_SOCKET_CLOSED`.
 */
export async function recvfrom(sock: number, maxBytes: number, options?: RecvOptions): Promise<Datagram> {
  const o = recvArgs(sock, maxBytes, options)
  const data = Buffer.allocUnsafe(maxBytes)
  const r = operate('recvfrom', 'recvmsg', o.signal, (t) =>
    binding.recvfromAsync(sock, data, o.maxFds, o.creds, t, gotFrom),
  )
  return datagramAt(data, 0, typeof r === 'number' ? gotFrom : await r, 0, o.pidfd)
}

/** Blocking {@link recvfrom} (`EAGAIN` on a non-blocking socket with nothing queued). */
export function recvfromSync(sock: number, maxBytes: number, options?: Omit<RecvOptions, 'signal'>): Datagram {
  const o = recvArgs(sock, maxBytes, options)
  const data = Buffer.allocUnsafe(maxBytes)
  check(binding.recvfromSync(sock, data, o.maxFds, o.creds, gotFrom, false), 'recvmsg')
  return datagramAt(data, 0, gotFrom, 0, o.pidfd)
}

/** Where a batched receive that completed at once leaves its layout; grown on demand. */
let gotMany = new Int32Array(0)
function gotManyFor(size: number): Int32Array {
  if (gotMany.length < size) gotMany = new Int32Array(size)
  return gotMany
}

/**
 * Receives up to `maxMessages` datagrams (or seqpacket messages) in one native call
 * (`recvmmsg(2)`), each of up to `maxBytes` bytes, with its sender's address, up to `maxFds` fds
 * and, with `credentials: true`, its sender's credentials: the batched {@link recvfrom}. Waits
 * for the first datagram, then takes what has arrived, so it resolves with 1 to `maxMessages`
 * of them. Beyond Hare; for receivers of many small datagrams (a metrics or log agent), where
 * one native call per datagram is the cost.
 *
 * @returns a promise of the datagrams, in order; their `data` share one buffer.
 * @rejects {RangeError} `maxMessages` outside `[1, MAX_BATCH]`, `maxBytes` < 1. As {@link recvfrom}
 * otherwise (`syscall: 'recvmmsg'`).
 */
export async function recvfromMany(
  sock: number,
  maxMessages: number,
  maxBytes: number,
  options?: RecvOptions,
): Promise<Datagram[]> {
  validateInteger(maxMessages, 'maxMessages', 1, MAX_BATCH)
  validateInteger(maxBytes, 'maxBytes', 1, Math.floor((2 ** 31 - 1) / maxMessages))
  const o = recvArgs(sock, maxBytes, options)
  const data = Buffer.allocUnsafe(maxMessages * maxBytes)
  const out = gotManyFor(batchRoom(maxMessages, o.maxFds))
  const r = operate('recvfromMany', 'recvmmsg', o.signal, (t) =>
    binding.recvManyAsync(sock, data, maxBytes, o.maxFds, t, out, true, o.creds),
  )
  return datagrams(typeof r === 'number' ? out : await r, 0, data, maxBytes, o.pidfd)
}

// ---------------------------------------------------------------------------------------------
// The evented socket: node:dgram's and unix-dgram's shape

/** Sender information of a `'message'` event. */
export interface RemoteInfo {
  /** Bytes in the message. */
  size: number
  /** The sender's address (`unix-dgram`'s name for it): a path, `'\0name'`, or `null` (unnamed). */
  path: string | null
  /** The same as `path`. */
  address: string | null
  /** With `fds: true`: the fds that came with the message; they belong to the listener. */
  fds?: number[]
  /** With `credentials: true`: the sender's credentials. */
  cred?: Credentials
  /** With `pidfd: true`: the sender's pidfd; it belongs to the listener (closed when there is none). */
  pidfd?: number
  /**
   * Set when the datagram was longer than the 64 KiB each one is received into (as in
   * `unix-dgram`, which cuts without saying so): `msg` holds its first 65,536 bytes, the rest is
   * gone. For longer datagrams use `recvfrom(sock, maxBytes)`.
   */
  dataTruncated?: boolean
}

/** Options of {@link createSocket}. */
export interface UnixDgramOptions {
  type: 'unix_dgram'
  /** Receive fds: they arrive in `rinfo.fds` (default false: the kernel closes what is sent). */
  fds?: boolean
  /** Receive each sender's credentials in `rinfo.cred` (`SO_PASSCRED`). */
  credentials?: boolean
  /** Receive each sender's pidfd in `rinfo.pidfd` (`SO_PASSPIDFD`, Linux 6.5+). */
  pidfd?: boolean
}

type SendCallback = (err?: Error | null) => void

/** @internal An existing socket for the constructor to wrap instead of making one (`adopt`). */
export const kAdopt: unique symbol = Symbol('net-unix.dgram.adopt')
/** @internal */
export interface Adopted {
  fd: number
  connected: boolean
}

const SCRATCH = 65536
const READS_PER_EVENT = 64
/** Datagrams per native call (`recvmmsg`) of the evented socket. */
const READ_BATCH = 16

function congestionError(): Error {
  // unix-dgram's, field for field: message 'congestion', code 1 (hot-shots matches on either).
  return Object.assign(new Error('congestion'), { code: 1 })
}

function socketClosed(): Error {
  return Object.assign(new Error('Not running'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' })
}

/** What unix-dgram reports for a call on a closed socket: the kernel's `EBADF` (fd -1). */
const EBADF = -9

/**
 * An evented Unix datagram socket, in the shape of `node:dgram`'s `Socket` and of the
 * `unix-dgram` package (a drop-in for it). Made by {@link createSocket}. Events: `'message'`
 * `(msg, rinfo)`, `'listening'`, `'connect'`, `'error'`, `'congestion'` `(buf)` when a send
 * with no callback finds the peer's queue full, `'writable'` once it drains (no `'close'`: see
 * {@link UnixDgramSocket.close}).
 * `bind`, `connect` and `close` are synchronous and report at once, as `unix-dgram` does. Each
 * datagram is received into 64 KiB (longer ones: `rinfo.dataTruncated`). Where it differs from
 * `unix-dgram`, on purpose or kept, the README's drop-in table says.
 */
export class UnixDgramSocket extends EventEmitter {
  /** The socket's fd (-1 once closed). */
  fd: number
  /** Always `'unix_dgram'`. */
  readonly type = 'unix_dgram'
  /** `connect` succeeded. */
  connected = false
  readonly #readiness: Readiness
  #fds: boolean
  #creds: boolean
  #pidfd: boolean
  /** Where batched reads land, made on the first read (a sending-only socket never needs it). */
  #scratch: Buffer | undefined
  #got: Int32Array | undefined

  /** @internal */
  constructor(options: UnixDgramOptions & { [kAdopt]?: Adopted }, listener?: (msg: Buffer, rinfo: RemoteInfo) => void) {
    super()
    // Before the socket exists: a throw here leaves nothing open.
    if (listener !== undefined) validateFunction(listener, 'listener')
    this.#fds = options.fds === true
    this.#creds = options.credentials === true
    this.#pidfd = options.pidfd === true
    const adopted = options[kAdopt]
    // An adopted socket keeps its flags: every read and send here passes MSG_DONTWAIT.
    this.fd = adopted?.fd ?? check(binding.socketTyped(SOCK_DGRAM, SOCK_NONBLOCK | SOCK_CLOEXEC), 'socket')
    this.connected = adopted?.connected ?? false
    if (this.#creds) {
      const rc = binding.setPasscred(this.fd, true)
      if (rc < 0) {
        if (!adopted) binding.close(this.fd) // an adopted fd stays the caller's on failure
        throw errnoError(rc, 'setsockopt')
      }
    }
    if (this.#pidfd) {
      try {
        passPidfd(this.fd)
      } catch (e) {
        if (!adopted) binding.close(this.fd)
        throw e
      }
    }
    this.#readiness = new Readiness(this.fd, (status, events) => this.#ready(status, events))
    this.#readiness.start(READABLE) // as unix-dgram: watching from the start, so the socket holds the loop
    if (listener !== undefined) this.on('message', listener)
  }

  #arm(events: number): void {
    this.#readiness.start(events)
  }

  #ready(status: number, events: number): void {
    if (this.fd < 0) return
    if (status < 0) {
      this.emit('error', errnoError(status, 'poll'))
      return
    }
    if (events & WRITABLE) {
      this.#arm(READABLE)
      this.emit('writable')
    }
    if (events & READABLE) this.#read()
  }

  #read(): void {
    const maxFds = this.#fds ? MAX_FDS : 0
    if (this.#scratch === undefined) {
      // Untouched pages cost nothing: a batch of small datagrams touches one page per slot.
      this.#scratch = Buffer.allocUnsafe(SCRATCH * READ_BATCH)
      this.#got = new Int32Array(batchRoom(READ_BATCH, MAX_FDS))
    }
    const scratch = this.#scratch
    const got = this.#got as Int32Array
    for (let read = 0; read < READS_PER_EVENT && this.fd >= 0;) {
      const n = binding.recvManyNow(this.fd, scratch, SCRATCH, maxFds, true, this.#creds, got)
      if (n === EAGAIN) return
      if (n < 0) {
        this.emit('error', errnoError(n, 'recvmsg'))
        return
      }
      const all = datagrams(got, 0, scratch, SCRATCH, this.#pidfd)
      let i = 0
      try {
        for (; i < all.length; i++) this.#deliver(all[i])
      } finally {
        // A listener threw or closed the socket: nobody gets the fds of the rest.
        for (i++; i < all.length; i++) {
          if (all[i].fds.length) binding.closeAll(all[i].fds, true)
          if (all[i].pidfd !== undefined) binding.close(all[i].pidfd as number)
        }
      }
      if (n < READ_BATCH) return // the queue is empty (recvmmsg stops there)
      read += n
    }
  }

  #deliver(d: Datagram): void {
    if (this.fd < 0) {
      if (d.fds.length) binding.closeAll(d.fds, true)
      if (d.pidfd !== undefined) binding.close(d.pidfd)
      return
    }
    const rinfo: RemoteInfo = { size: d.data.length, path: d.address, address: d.address }
    if (this.#fds) rinfo.fds = d.fds
    if (d.cred) rinfo.cred = d.cred
    if (d.pidfd !== undefined) rinfo.pidfd = d.pidfd
    if (d.dataTruncated) rinfo.dataTruncated = true
    const msg = Buffer.from(d.data) // a copy: the scratch buffer is reused
    if (!this.emit('message', msg, rinfo)) {
      if (d.fds.length) binding.closeAll(d.fds, true)
      if (d.pidfd !== undefined) binding.close(d.pidfd)
    }
  }

  /**
   * Binds to `path` (a path or `'\0name'`; none: an abstract name the kernel picks) and emits
   * `'listening'`, or `'error'`, synchronously. An existing path is not removed (`EADDRINUSE`).
   * Once closed, the `'error'` is `EBADF`, as in unix-dgram.
   */
  bind(path?: string): this {
    const bytes = path === undefined ? undefined : encodeAddr(path, 'path')
    let rc = EBADF
    if (this.fd >= 0) rc = bytes ? binding.bindAddr(this.fd, bytes) : binding.autobind(this.fd)
    if (rc < 0) this.emit('error', errnoError(rc, 'bind', path))
    else this.emit('listening')
    return this
  }

  /**
   * Connects to `path` and emits `'connect'`, or `'error'` (`ENOENT`, `ECONNREFUSED`),
   * synchronously: with no `'error'` listener, the error is thrown from `connect`. Once
   * closed, the `'error'` is `EBADF`, as in unix-dgram.
   */
  connect(path: string): this {
    const addr = encodeAddr(path, 'path')
    const rc = this.fd >= 0 ? binding.connectAddr(this.fd, addr) : EBADF
    if (rc < 0) {
      this.emit('error', errnoError(rc, 'connect', path))
    } else {
      this.connected = true
      this.emit('connect')
    }
    return this
  }

  /**
   * Sends `buf` (or `length` bytes of it from `offset`) to `path`, or to the connected peer.
   * Never waits: the outcome goes to `callback` synchronously, as in `unix-dgram` — `callback()`
   * with no argument on success; when the connected peer's queue is full, unix-dgram's
   * congestion error (`message: 'congestion'`, `code: 1`), then `'writable'` once it drains; an
   * errno error (`syscall: 'send'`) otherwise: `ECONNREFUSED`, `ENOTCONN`, `EMSGSIZE`, `EAGAIN`
   * (a full queue at `path`: nothing says when it drains), `EBADF` once closed (never a throw,
   * as in unix-dgram). Without a callback: `'congestion'` `(buf)` or `'error'` events.
   */
  send(buf: ArrayBufferView | ArrayBuffer, ...args: unknown[]): void {
    let i = 0
    let offset: number | undefined
    let length: number | undefined
    let path: string | undefined
    if (typeof args[0] === 'number' || (args[0] === undefined && args.length > 1)) {
      offset = args[i++] as number | undefined
      length = args[i++] as number | undefined
    }
    if (typeof args[i] === 'string' || (args[i] == null && i < args.length - 1))
      path = (args[i++] as string | undefined) ?? undefined
    const cb = args[i] as SendCallback | undefined
    this.#send(buf, offset, length, path, [], cb)
  }

  /** `unix-dgram`'s name for {@link UnixDgramSocket.send} with an address. */
  sendto(
    buf: ArrayBufferView | ArrayBuffer,
    offset: number,
    length: number,
    path: string,
    callback?: SendCallback,
  ): void {
    this.#send(buf, offset, length, path, [], callback)
  }

  /**
   * Sends `buf` with `fds` attached (`SCM_RIGHTS`; the caller keeps its own fds), to `path` or
   * the connected peer; outcome as {@link UnixDgramSocket.send}.
   */
  sendWithFds(
    buf: ArrayBufferView | ArrayBuffer,
    fds: readonly number[],
    path?: string | SendCallback,
    callback?: SendCallback,
  ): void {
    if (typeof path === 'function') {
      callback = path
      path = undefined
    }
    if (!Array.isArray(fds)) throw argTypeError('fds', 'an instance of Array', fds)
    validateFds(fds, 'fds')
    if (fds.length > MAX_FDS) throw outOfRange('fds.length', `<= ${MAX_FDS}`, fds.length)
    this.#send(buf, undefined, undefined, path, fds as number[], callback)
  }

  #send(
    buf: unknown,
    offset: number | undefined,
    length: number | undefined,
    path: string | undefined,
    fds: number[],
    cb: SendCallback | undefined,
  ): void {
    let bytes = bytesOf(buf, 'buf')
    if (offset !== undefined || length !== undefined) {
      const from = offset ?? 0
      validateInteger(from, 'offset', 0, bytes.byteLength)
      const len = length ?? bytes.byteLength - from
      validateInteger(len, 'length', 0, bytes.byteLength - from)
      bytes = bytes.subarray(from, from + len)
    }
    const to = path === undefined ? null : encodeAddr(path, 'path')
    if (cb !== undefined) validateFunction(cb, 'callback')
    // A closed socket's send fails as unix-dgram's does (its fd is -1: EBADF), never throws.
    const rc =
      this.fd < 0 ? EBADF : binding.sendtoSync(this.fd, bytes, to, fds, fds.length ? [fds.length] : [], false, true)
    let err: Error | undefined
    if ((rc === EAGAIN || rc === ENOBUFS) && to === null) {
      // Only the connected peer's queue has a 'writable' to wait for (poll says nothing of
      // another address's): a full queue elsewhere is the errno error, as in unix-dgram.
      this.#arm(READABLE | WRITABLE)
      if (cb === undefined) {
        this.emit('congestion', buf)
        return
      }
      err = congestionError()
    } else if (rc < 0) {
      err = errnoError(rc, 'send', path)
    }
    // cb() with no argument on success, as unix-dgram calls it.
    if (cb !== undefined) err ? cb(err) : cb()
    else if (err) this.emit('error', err)
  }

  /** The bound address: `{ path }` (`null` when not bound). */
  address(): { path: string | null } {
    if (this.fd < 0) throw socketClosed()
    return { path: localaddr(this.fd) }
  }

  /**
   * Closes the socket at once (synchronous, as in `unix-dgram`); `callback` is called on the
   * next tick. No `'close'` event, as in `unix-dgram`: hot-shots emits one itself after
   * `close()`, and a second would call its close callback twice. Closing again does nothing.
   */
  close(callback?: () => void): this {
    if (callback !== undefined) validateFunction(callback, 'callback')
    if (this.fd < 0) return this
    this.#readiness.close()
    const rc = binding.close(this.fd)
    this.fd = -1
    this.connected = false
    if (callback !== undefined) process.nextTick(callback)
    if (rc < 0) throw errnoError(rc, 'close')
    return this
  }

  /** Lets the process exit while this socket is open (`unix-dgram` lacks this). */
  unref(): this {
    if (this.fd >= 0) this.#readiness.ref(false)
    return this
  }

  /** Keeps the process alive while this socket is open (the default). */
  ref(): this {
    if (this.fd >= 0) this.#readiness.ref(true)
    return this
  }
}

/**
 * An evented Unix datagram socket (`'unix_dgram'`, or `{ type: 'unix_dgram', fds?,
 * credentials? }`), optionally with a `'message'` listener: the drop-in for `unix-dgram`'s
 * `createSocket`. `'udp4'` / `'udp6'` return `node:dgram` sockets, as `unix-dgram` does.
 *
 * @throws {TypeError} `ERR_SOCKET_BAD_TYPE` for another type; `ERR_INVALID_ARG_TYPE` for a bad
 * listener or option.
 */
export function createSocket(
  type: 'unix_dgram' | UnixDgramOptions,
  listener?: (msg: Buffer, rinfo: RemoteInfo) => void,
): UnixDgramSocket
export function createSocket(
  type: 'udp4' | 'udp6',
  listener?: (msg: Buffer, rinfo: nodeDgram.RemoteInfo) => void,
): nodeDgram.Socket
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function createSocket(
  type: unknown,
  listener?: (msg: Buffer, rinfo: any) => void,
): UnixDgramSocket | nodeDgram.Socket {
  if (type === 'udp4' || type === 'udp6') return nodeDgram.createSocket(type, listener)
  const options =
    typeof type === 'object' && type !== null ? (type as UnixDgramOptions) : { type: type as 'unix_dgram' }
  if (options.type !== 'unix_dgram') {
    // unix-dgram's message; a TypeError with Node's code, as node:dgram throws for a bad type.
    const e = new TypeError(`Unsupported socket type: ${String(options.type)}`)
    throw Object.assign(e, { code: 'ERR_SOCKET_BAD_TYPE' })
  }
  validateBool(options.fds, 'options.fds')
  validateBool(options.credentials, 'options.credentials')
  validateBool(options.pidfd, 'options.pidfd')
  return new UnixDgramSocket(options, listener)
}
