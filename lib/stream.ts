// UnixSocket (a stream.Duplex over a connected Unix socket that carries fds) and UnixServer: the
// surface that protocol libraries written for Node streams build on (API.md §7). Both go
// through the same readiness core as the Promise API. Writes try the syscall first and get a
// number back when it completed at once, a promise only when it has to wait; reads are the
// core's persistent read (`readStart`), as libuv's `uv_read_start` is for `net`: one callback
// per read, which answers whether to read on.
import { Duplex } from 'node:stream'
import type { DuplexOptions } from 'node:stream'
import { EventEmitter } from 'node:events'
import { unlinkSync } from 'node:fs'
import { binding } from './binding'
import { EAGAIN, SOCK_CLOEXEC, SOCK_SEQPACKET, SOCK_STREAM } from './constants'
import { argTypeError, check, errnoError, outOfRange } from './errors'
import { encodeAddr } from './address'
import { asyncUnavailable, unsupported } from './promises'
import { passPidfd } from './pidfd'
import { bytesOf, validateFd, validateFds, validateFunction, validateInteger } from './validators'

const MAX_FDS: number = binding.MAX_FDS
/**
 * Batched reads (`recvmmsg`): Linux ends a stream read at each skb that carries fds, so a run of
 * fd-carrying messages costs one `recvmsg` each; after a read that delivered fds, the core reads
 * up to `BATCH_SLOTS` of them at once, each into its own slot of `BATCH_SLOT` bytes (longer
 * messages continue in the next slot).
 */
const BATCH_SLOTS: number = binding.MAX_BATCH
const BATCH_SLOT = 512
/**
 * The read pool: every socket's reads go into `readPool` from `readAt[0]` on (one pool for all:
 * a read's callback is done with it before the core reads for anyone else, and a socket that
 * only waits holds no buffer). Pushed chunks are views of it, so it is replaced, never reused,
 * once less room is left than a batch needs.
 */
const READ_POOL = 64 * 1024
const MIN_READ_ROOM = BATCH_SLOTS * BATCH_SLOT
let readPool = Buffer.allocUnsafe(0)
/** The core's id for this copy of the module's pool (a second copy gets its own). */
let readPoolId = -1
const readAt = new Int32Array(1)
/** Where each read leaves `[n, (bytes, truncated, nfds, ...fds) × n]`: a full batch's room (fds and a pidfd). */
const readOut = new Int32Array(1 + BATCH_SLOTS * (3 + MAX_FDS + 1))
/** Flags bit of a read: its first fd is the sender's pidfd (`SCM_PIDFD`; msg.rs). */
const HAS_PIDFD = 8

/** A fresh read pool when the current one has less than `room` bytes left. */
function readRoom(room = MIN_READ_ROOM): void {
  if (readPool.length - readAt[0] >= room) return
  readPool = Buffer.allocUnsafe(Math.max(READ_POOL, room))
  readAt[0] = 0
  readPoolId = binding.setReadPool(readPoolId, readPool, readAt, readOut)
}
/** Where a `sendmmsg` that completed at once leaves `[messages, lastBytes]`. */
const sentMany = new Int32Array(2)
/** Vectors per `sendmsg` (Linux `UIO_MAXIOV`). */
const IOV_MAX = 1024
/** A seqpacket read's answer: the next message is longer than the pool's rest (`readOut[0]`). */
const EMSGSIZE = -90
/** Pause before accepting again after an accept error (`EMFILE` would otherwise spin). */
const ACCEPT_RETRY_MS = 50
const NO_FDS: number[] = []

/**
 * The dup'ed fds a chunk written by `writeWithFds` carries: a property of the chunk's own Buffer
 * (not a WeakMap entry, an ephemeron per chunk that made a large part of the sender's GC time).
 */
const kFds: unique symbol = Symbol('net-unix.fds')
type FdChunk = Uint8Array & { [kFds]?: number[] }
function fdsOf(chunk: Uint8Array): number[] | undefined {
  return (chunk as FdChunk)[kFds]
}

/** @internal Brands the constructor call `createConnection` makes for a socket still connecting. */
export const kConnecting: unique symbol = Symbol('net-unix.connecting')

/** Throws `err` from a tick of its own (`'uncaughtException'`, as any listener error). */
function rethrow(err: unknown): never {
  throw err
}

/** Closes fds in one native call, skipping any that is not open (teardown paths never throw). */
function closeQuietly(fds: readonly number[]): void {
  binding.closeAll(fds, true)
}

function closedBeforeConnection(): Error {
  const e = new Error('Socket closed before the connection was established')
  return Object.assign(e, { code: 'ERR_SOCKET_CLOSED_BEFORE_CONNECTION' })
}

/**
 * 0 when `fd` is a listening stream or seqpacket socket a server can take, else the negative
 * errno `listen` reports: `EBADF`, `ENOTSOCK`, `EINVAL` (not listening, or datagram, as `net` says).
 */
function listenerCheck(fd: number): number {
  const type = binding.socketType(fd)
  if (type < 0) return type
  const listening = binding.acceptsConnections(fd)
  if (listening < 0) return listening
  return (type === SOCK_STREAM || type === SOCK_SEQPACKET) && listening === 1 ? 0 : -22
}

/** A seqpacket message this stream could not take whole. */
function messageTooLarge(what: string): Error {
  const e = new Error(`recvmsg: ${what}; the stream cannot deliver it whole`)
  return Object.assign(e, { code: 'ERR_SOCKET_MESSAGE_TOO_LARGE', syscall: 'recvmsg' })
}

/** Close-on-exec dups of `fds`, all or none. */
function dupAll(fds: readonly number[]): number[] {
  const dups: number[] = []
  for (const fd of fds) {
    const d = binding.dup(fd)
    if (d < 0) {
      for (const x of dups) binding.close(x)
      const e = errnoError(d, 'dup')
      e.message = `writeWithFds: fd ${fd} cannot be sent: ${e.message}`
      throw e
    }
    dups.push(d)
  }
  return dups
}

/** `bufs` with the first `n` bytes dropped. */
function advance(bufs: Uint8Array[], n: number): Uint8Array[] {
  let i = 0
  while (i < bufs.length && n >= bufs[i].byteLength) n -= bufs[i++].byteLength
  const rest = bufs.slice(i)
  if (n > 0) rest[0] = rest[0].subarray(n)
  return rest
}

function byteLength(bufs: Uint8Array[]): number {
  let n = 0
  for (const b of bufs) n += b.byteLength
  return n
}

/** Options of {@link UnixSocket}. */
export interface UnixSocketOptions {
  /** The connected socket to adopt. The stream owns it from then on and closes it exactly once. */
  fd?: number
  /** Keep the writable side open after the peer ended (`'end'`); default `false`, as `net`. */
  allowHalfOpen?: boolean
  readableHighWaterMark?: number
  writableHighWaterMark?: number
  /**
   * Receive the sender's pidfd with every read (`SO_PASSPIDFD`, Linux 6.5+): a `'pidfd'` event
   * before the bytes it came with, as `'fds'`. Closed when nobody listens.
   */
  pidfd?: boolean
}

/** What {@link UnixSocket.peercred} returns. */
export interface PeerCredentials {
  pid: number
  uid: number
  gid: number
}

/**
 * A `stream.Duplex` over a connected Unix stream socket that can carry fds (`SCM_RIGHTS`):
 * {@link UnixSocket.writeWithFds} sends fds with a chunk's first byte, and the `'fds'` event
 * delivers received fds before the bytes they came with become readable. In every other way it
 * behaves like a `net.Socket`: backpressure and `'drain'`, `end()` shuts the sending side down,
 * `allowHalfOpen`, `'end'`, `'close'` once, `destroy(err)`, `ref()`/`unref()`, async iteration,
 * `stream.pipeline`. Errors (`EPIPE`, `ECONNRESET`, …) are `'error'` events shaped like Node's.
 *
 * Events beyond `stream.Duplex`'s: `'connect'` and `'ready'` (sockets made by
 * `createConnection`), `'fds'` `(fds: number[])`, `'pidfd'` `(pidfd: number)` with `{ pidfd: true }`.
 *
 * `new UnixSocket({ fd })` adopts a connected socket (from `accept`, `socketpair`, a child's
 * stdio, systemd); the stream owns it from then on.
 *
 * Never silent (README, "What a stream never does silently"):
 * - Control data cut short (`MSG_CTRUNC`: this process at its fd limit): the bytes of earlier
 *   reads are delivered; the fds of that read that did arrive are closed (no `'fds'`), its bytes
 *   are not delivered, and the stream is destroyed with `code: 'ERR_SOCKET_FDS_TRUNCATED'`.
 * - Over `SOCK_SEQPACKET`, each message is one `'data'` chunk, whole, up to the largest message a
 *   peer can send (`SO_SNDBUF - 32`); one it cannot take whole is an `'error'` with
 *   `code: 'ERR_SOCKET_MESSAGE_TOO_LARGE'`.
 * - A failed connect calls back the writes made before `'connect'` (the one in flight with
 *   `ERR_SOCKET_CLOSED_BEFORE_CONNECTION`, the rest with the connect error), as `net` does.
 * - `destroy()` calls back the write waiting for the kernel with `ERR_SOCKET_CLOSED`, those
 *   queued behind it with the same error (or `destroy(err)`'s `err`), and closes unsent dups.
 */
export class UnixSocket extends Duplex {
  #fd = -1
  #connecting = false
  /** Work that waits for the connection: writes, `end()`, the first read. */
  #afterConnect: (() => void)[] = []
  /** Callbacks of the writes in `#afterConnect`: a failed connect calls them back, as `net`. */
  #connectWrites: ((err?: Error | null) => void)[] = []
  #abortConnect: AbortController | undefined
  /** The core's persistent read is on. */
  #reading = false
  #readWanted = false
  /** Whether batched reads are safe: `undefined` until the first read (seqpacket: no). */
  #canBatch: boolean | undefined
  /** Dups made by `writeWithFds` that no `sendmsg` has carried yet (closed on destroy). */
  #unsent = new Set<number[]>()
  #refed = true
  #pidfd = false
  /** The address given to `createConnection`, when there is one. */
  readonly remoteAddress: string | undefined

  /**
   * @throws {TypeError} / {RangeError} for a bad `fd` or option.
   * @throws {Error} `ERR_RUNTIME_UNSUPPORTED` where the runtime cannot wait (the reactor did not start).
   */
  constructor(options: UnixSocketOptions = {}) {
    if (typeof options !== 'object' || options === null) throw argTypeError('options', 'of type object', options)
    const connecting = (options as { [kConnecting]?: string })[kConnecting]
    if (connecting === undefined) validateFd(options.fd, 'options.fd')
    if (options.allowHalfOpen !== undefined && typeof options.allowHalfOpen !== 'boolean') {
      throw argTypeError('options.allowHalfOpen', 'of type boolean', options.allowHalfOpen)
    }
    const duplex: DuplexOptions = { allowHalfOpen: options.allowHalfOpen ?? false, decodeStrings: true }
    if (options.readableHighWaterMark !== undefined) {
      validateInteger(options.readableHighWaterMark, 'options.readableHighWaterMark', 0, 2 ** 31 - 1)
      duplex.readableHighWaterMark = options.readableHighWaterMark
    }
    if (options.writableHighWaterMark !== undefined) {
      validateInteger(options.writableHighWaterMark, 'options.writableHighWaterMark', 0, 2 ** 31 - 1)
      duplex.writableHighWaterMark = options.writableHighWaterMark
    }
    if (options.pidfd !== undefined && typeof options.pidfd !== 'boolean') {
      throw argTypeError('options.pidfd', 'of type boolean', options.pidfd)
    }
    if (asyncUnavailable) throw unsupported('UnixSocket')
    if (options.pidfd && connecting === undefined) passPidfd(options.fd as number)
    super(duplex)
    this.#pidfd = options.pidfd === true
    this.remoteAddress = connecting
    if (connecting === undefined) {
      this.#fd = options.fd as number
      this.#startReading()
    } else {
      this.#connecting = true
    }
  }

  /**
   * Starts reading as `net.Socket` does, so EOF is seen (and `allowHalfOpen: false` ends this
   * side) even with no consumer; not before the current turn's code has attached its
   * `'fds'` listener.
   */
  #startReading(): void {
    setImmediate(() => {
      if (!this.destroyed) this.read(0)
    })
  }

  /** The socket's fd; `-1` while connecting and after `destroy()`. */
  get fd(): number {
    return this.#fd
  }

  /** `true` from `createConnection` until `'connect'` (as `net.Socket`). */
  get connecting(): boolean {
    return this.#connecting
  }

  /** @internal Connects the socket created by `createConnection` once `pending` settles. */
  [kConnecting](pending: Promise<number>, abort: AbortController): void {
    this.#abortConnect = abort
    pending.then(
      (fd) => {
        this.#abortConnect = undefined
        if (this.destroyed) {
          binding.close(fd)
          return
        }
        this.#fd = fd
        this.#connecting = false
        if (this.#pidfd) {
          try {
            passPidfd(fd)
          } catch (err) {
            this.destroy(err as Error)
            return
          }
        }
        if (!this.#refed) binding.setRef(fd, false)
        this.#connectWrites.length = 0
        for (const run of this.#afterConnect.splice(0)) run()
        this.emit('connect')
        this.emit('ready')
        if (this.#readWanted) this._read()
        else this.#startReading()
      },
      (err: Error) => {
        this.#abortConnect = undefined
        this.#connecting = false
        if (!this.destroyed) this.destroy(err)
      },
    )
  }

  // -------------------------------------------------------------------------------------------
  // Reading

  /** @internal Starts the core's persistent read, which goes on until `#onRead` says stop. */
  override _read(): void {
    if (this.#reading) return
    if (this.#connecting) {
      this.#readWanted = true
      return
    }
    if (this.#fd < 0) return
    // Slots would cut a seqpacket record short: only stream sockets read in batches.
    this.#canBatch ??= binding.socketType(this.#fd) === SOCK_STREAM
    if (readPool.length === 0) readRoom() // the first read of all: later ones leave room
    const rc = binding.readStart(this.#fd, readPoolId, this.#canBatch ? BATCH_SLOT : 0, this.#onRead)
    if (rc < 0) this.destroy(errnoError(rc, 'recvmsg'))
    else this.#readingOn(true)
  }

  /**
   * While the core reads on by itself, Readable's `maybeReadMore` (a `nextTick` and a `read(0)`
   * after every push, to call `_read` again) has nothing to do: marking it as scheduled keeps
   * it from running. Off again when the read stops, so that `read()` restarts it.
   */
  #readingOn(on: boolean): void {
    this.#reading = on
    ;(this as unknown as { _readableState: { readingMore: boolean } })._readableState.readingMore = on
  }

  /**
   * The core's callback after each read: whether to read on. What a listener threw goes on to
   * the core, which reports it as uncaught and reads on, as `net` does.
   */
  #onRead = (n: number): boolean => {
    if (n === EMSGSIZE) return this.#roomFor(readOut[0])
    let more = true
    try {
      more = this.#receivedMany(n)
    } finally {
      if (!more) this.#readingOn(false)
      readRoom()
    }
    return more
  }

  /** A pool with room for a seqpacket message of `length` bytes, so that it is read whole. */
  #roomFor(length: number): boolean {
    try {
      readRoom(length)
      return true
    } catch {
      this.destroy(messageTooLarge(`a ${length}-byte message does not fit in a Buffer`))
      return false
    }
  }

  /**
   * A read's `n` messages in order (`readOut`; message `i` in slot `i` of the pool's rest, a
   * single read's one message at its start), each as one receive: its fds, then its bytes.
   * Once the stream is destroyed or ended, the fds of the rest are closed. A listener that
   * throws does not cut the read short: the rest is delivered, then the first error thrown
   * (any later one goes to `'uncaughtException'` on its own). Returns whether to read on.
   */
  #receivedMany(n: number): boolean {
    // The pool is replaced only after this (readRoom in #onRead), never by a listener.
    const pool = readPool
    const base = readAt[0]
    if (n < 0) return this.#received(pool, base, n, null, 0)
    let more = true
    let stopped = false
    let failed = false
    let error: unknown
    for (let i = 0, at = 1; i < n; i++) {
      const bytes = readOut[at]
      const flags = readOut[at + 1]
      const nfds = readOut[at + 2]
      let fds: number[] | null = null
      if (nfds > 0) {
        fds = new Array<number>(nfds)
        for (let k = 0; k < nfds; k++) fds[k] = readOut[at + 3 + k]
      }
      at += 3 + nfds
      if (stopped || this.destroyed) {
        stopped = true
        if (fds) closeQuietly(fds)
        continue
      }
      let pidfd = -1
      if (flags & HAS_PIDFD && fds) {
        pidfd = fds.shift() as number
        if (fds.length === 0) fds = null
      }
      try {
        if (!this.#received(pool, base + i * BATCH_SLOT, bytes, fds, flags, pidfd)) {
          // Backpressure only stops the next read: what this one read is pushed all the same.
          more = false
          stopped = this.destroyed || bytes === 0
        }
      } catch (err) {
        if (failed) process.nextTick(rethrow, err)
        else {
          failed = true
          error = err
        }
      }
    }
    if (failed) throw error
    return more
  }

  /**
   * One receive's outcome: fds first (`'fds'`, or closed when nobody listens), then the bytes
   * (`n` of them at `pool[at]`; `flags`: 1 control data cut short, 2 the message itself). Returns
   * whether to read on.
   */
  #received(pool: Buffer, at: number, n: number, fds: number[] | null, flags: number, pidfd = -1): boolean {
    if (n < 0) {
      this.destroy(errnoError(n, 'recvmsg'))
      return false
    }
    if (pidfd >= 0) {
      // The sender's pidfd (SO_PASSPIDFD) goes first, before the fds and bytes it came with.
      if (!this.#pidfd || this.listenerCount('pidfd') === 0) binding.close(pidfd)
      else {
        try {
          this.emit('pidfd', pidfd)
        } catch (err) {
          if (fds) closeQuietly(fds)
          this.#receivedBytes(pool, at, n, flags)
          throw err
        }
      }
    }
    if (fds) {
      // Control data cut short (MSG_CTRUNC): the fds that did arrive are not all the sender's,
      // so none is handed out; the bytes then destroy the stream.
      if (flags & 1 || this.listenerCount('fds') === 0) closeQuietly(fds)
      else {
        try {
          this.emit('fds', fds)
        } catch (err) {
          // The bytes the fds came with are delivered all the same, then the error goes on.
          this.#receivedBytes(pool, at, n, flags)
          throw err
        }
      }
    }
    return this.#receivedBytes(pool, at, n, flags)
  }

  /** The bytes of one receive (after its fds): pushed, or the end, or the error they mean. */
  #receivedBytes(pool: Buffer, at: number, n: number, flags: number): boolean {
    if (flags & 2) {
      // MSG_TRUNC: a seqpacket message longer than the read; its rest is gone.
      this.destroy(messageTooLarge(`a message was cut short to ${n} bytes (MSG_TRUNC)`))
      return false
    }
    if (flags & 1) {
      // fds the sender attached were lost (MSG_CTRUNC, e.g. EMFILE here): the byte stream no
      // longer says which fds belong to which bytes.
      const e = new Error('recvmsg: control data truncated, received fds were lost (MSG_CTRUNC)')
      this.destroy(Object.assign(e, { code: 'ERR_SOCKET_FDS_TRUNCATED', syscall: 'recvmsg' }))
      return false
    }
    if (this.destroyed) return false
    if (n === 0) {
      this.push(null)
      this.read(0) // as net: 'end' (and the end of this side without allowHalfOpen) with no consumer
      return false
    }
    readAt[0] = at + n // before any listener runs: the bytes pushed are never read over
    return this.push(pool.subarray(at, at + n))
  }

  // -------------------------------------------------------------------------------------------
  // Writing

  /**
   * Writes `chunk` with `fds` attached to its first byte, as `write()` does otherwise (same
   * return value, backpressure, callback). The fds are `dup`ed now: the caller keeps its own and
   * may close them at once. The dups travel in the `sendmsg` that carries the chunk's first
   * byte (batching never moves them onto another chunk's bytes) and are closed once sent, or
   * by `destroy()`. With `fds` empty this is `write(chunk, cb)`; after `end()` or `destroy()`
   * it fails as `write()` does, with no fd dup'ed.
   *
   * Backpressure: each call's return value is about that call. `false` means stop writing and
   * wait for the next `'drain'`; it comes as soon as the kernel's buffer refuses a message, not
   * only at `writableHighWaterMark`. It is not repeated: a call made after a `false` and before
   * `'drain'` may return `true` (queued below the mark), so stop at the first `false`.
   *
   * @returns `false`: stop and wait for the next `'drain'`; `true`: write on.
   * @throws {TypeError} `ERR_INVALID_ARG_TYPE` for a chunk that is not a string or bytes, fds
   * that are not an array of integers.
   * @throws {RangeError} `ERR_OUT_OF_RANGE` for more than 253 fds, fds with an empty chunk.
   * @throws {ErrnoError} synchronously, when the chunk has to be queued and a `dup` fails:
   * `EMFILE` / `ENFILE` (the fd table is full), `EBADF` for an fd that is not open (syscall
   * `dup`); nothing is queued and no dup is left open.
   */
  writeWithFds(chunk: string | Uint8Array, fds: readonly number[], cb?: (err?: Error | null) => void): boolean {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : bytesOf(chunk, 'chunk')
    if (!Array.isArray(fds)) throw argTypeError('fds', 'an instance of Array', fds)
    validateFds(fds, 'fds')
    if (fds.length > MAX_FDS) throw outOfRange('fds.length', `<= ${MAX_FDS}`, fds.length)
    if (cb !== undefined) validateFunction(cb, 'cb')
    if (fds.length === 0 || this.writableEnded || this.destroyed) return this.write(bytes, cb)
    if (bytes.byteLength === 0) {
      throw outOfRange('chunk.byteLength', '>= 1 when fds are sent (the kernel drops fds sent with no data)', 0)
    }
    if (this.writableLength === 0 && !this.writableCorked && !this.#connecting && this.#fd >= 0) {
      // Nothing queued ahead: sent now, the caller's own fds are in the kernel before this
      // returns, which is all the dup below guarantees otherwise (and saves a dup and a close
      // per fd). What did not go at once (EAGAIN, an error) takes the usual way.
      const rc = binding.sendtoSync(this.#fd, bytes, null, fds as number[], [fds.length], false, true)
      if (rc === bytes.byteLength) {
        if (cb) process.nextTick(cb, null)
        return true
      }
      // Cut short: the fds went with the first byte, the rest follows alone.
      if (rc > 0) return this.#full(this.write(bytes.subarray(rc), cb))
      if (rc === EAGAIN) return this.#full(this.#writeDup(bytes, fds, cb))
    }
    return this.#writeDup(bytes, fds, cb)
  }

  /** Queues `bytes` with dups of `fds`, as `write()` does. */
  #writeDup(bytes: Uint8Array, fds: readonly number[], cb?: (err?: Error | null) => void): boolean {
    const dups = dupAll(fds)
    // A Buffer object of its own, so the fds cannot attach to another write of the same bytes.
    const own: Buffer & FdChunk = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    own[kFds] = dups
    this.#unsent.add(dups)
    return this.write(own, cb)
  }

  /**
   * The kernel's buffer was full: unless what was queued went at once after all, the caller
   * should wait for `'drain'` now, not once `writableHighWaterMark` bytes are queued (every
   * message queued costs a dup per fd, and small fd-carrying messages would queue thousands).
   */
  #full(written: boolean): boolean {
    if (!written || this.writableLength === 0) return written
    // The queued write is in flight: Writable emits 'drain' when it completes.
    ;(this as unknown as { _writableState: { needDrain: boolean } })._writableState.needDrain = true
    return false
  }

  /** @internal */
  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#connecting) {
      this.#connectWrites.push(cb)
      this.#afterConnect.push(() => this._write(chunk, _encoding, cb))
      return
    }
    this.#flush([chunk], 0, cb)
  }

  /** @internal */
  override _writev(chunks: { chunk: Buffer }[], cb: (err?: Error | null) => void): void {
    if (this.#connecting) {
      this.#connectWrites.push(cb)
      this.#afterConnect.push(() => this._writev(chunks, cb))
      return
    }
    this.#flush(
      chunks.map((c) => c.chunk),
      0,
      cb,
    )
  }

  /**
   * Sends `chunks[from..]`: one `sendmsg` per run of chunks, a run starting at a chunk that
   * carries fds (its first byte takes them) and ending before the next one that does.
   */
  #flush(chunks: Buffer[], from: number, cb: (err?: Error | null) => void): void {
    if (from >= chunks.length) return cb()
    if (chunks.length === 1) return this.#sendRun(chunks, fdsOf(chunks[0]), cb)
    if (from + 1 < chunks.length && fdsOf(chunks[from]) && fdsOf(chunks[from + 1])) {
      return this.#sendMany(chunks, from, cb)
    }
    let to = from + 1
    while (to < chunks.length && to - from < IOV_MAX && !fdsOf(chunks[to])) to++
    this.#sendRun(chunks.slice(from, to), fdsOf(chunks[from]), (err) => (err ? cb(err) : this.#flush(chunks, to, cb)))
  }

  /**
   * Sends the run of fd-carrying chunks from `chunks[from]` in one `sendmmsg` (up to
   * `MAX_BATCH`), one message per chunk with its own fds, then goes on with the rest.
   */
  #sendMany(chunks: Buffer[], from: number, cb: (err?: Error | null) => void): void {
    const end = Math.min(chunks.length, from + BATCH_SLOTS)
    const counts = new Int32Array(end - from)
    const fdList: number[] = []
    let to = from
    for (; to < end; to++) {
      const fds = fdsOf(chunks[to])
      if (!fds) break
      counts[to - from] = fds.length
      for (const fd of fds) fdList.push(fd)
    }
    const r = binding.sendManyAsync(
      this.#fd,
      chunks.slice(from, to),
      Int32Array.from(fdList),
      counts.subarray(0, to - from),
      0,
      sentMany,
    )
    if (typeof r === 'number') {
      if (r < 0) return cb(errnoError(r, 'sendmmsg'))
      return this.#sentMany(chunks, from, sentMany[0], sentMany[1], cb)
    }
    r.then(
      (items) => this.#sentMany(chunks, from, items[0], items[1], cb),
      (err: Error) => cb(err),
    )
  }

  /**
   * After a `sendmmsg` that sent `n` messages, the last of them `lastBytes` long: their dups
   * are closed in one call; a stream socket may have stopped inside the last message, whose
   * remaining bytes go alone (its fds went with its first byte) before anything later.
   */
  #sentMany(chunks: Buffer[], from: number, n: number, lastBytes: number, cb: (err?: Error | null) => void): void {
    const sent: number[] = []
    for (let i = from; i < from + n; i++) {
      const dups = fdsOf(chunks[i]) as number[]
      if (this.#unsent.delete(dups)) for (const fd of dups) sent.push(fd)
    }
    if (sent.length > 0) binding.closeAll(sent, true)
    const last = chunks[from + n - 1]
    if (lastBytes >= last.byteLength) return this.#flush(chunks, from + n, cb)
    this.#sendRun([last.subarray(lastBytes)], undefined, (err) => (err ? cb(err) : this.#flush(chunks, from + n, cb)))
  }

  /** Sends `bufs` to the last byte, `fds` with the first; partial sends go on without them. */
  #sendRun(bufs: Uint8Array[], fds: number[] | undefined, done: (err?: Error | null) => void): void {
    let left = byteLength(bufs)
    if (left === 0) return done()
    // The common case first, with no closure made: everything went at once.
    const first = binding.sendmsgAsync(
      this.#fd,
      bufs.length === 1 ? bufs[0] : bufs,
      fds ?? NO_FDS,
      fds ? [fds.length] : NO_FDS,
      0,
    )
    if (first === left) {
      if (fds) this.#release(fds)
      return done()
    }
    const sent = (n: number): boolean => {
      if (fds) {
        this.#release(fds)
        fds = undefined
      }
      left -= n
      if (left <= 0) {
        done()
        return false
      }
      bufs = advance(bufs, n)
      return true
    }
    const step = (r: number | Promise<number>): void => {
      for (;;) {
        if (typeof r !== 'number') {
          r.then(
            (n) => {
              if (sent(n)) step(this.#sendMore(bufs))
            },
            (err: Error) => done(err),
          )
          return
        }
        if (r < 0) return done(errnoError(r, 'sendmsg'))
        if (!sent(r)) return
        r = this.#sendMore(bufs) // what is left goes without the fds: they went with the first byte
      }
    }
    step(first)
  }

  #sendMore(bufs: Uint8Array[]): number | Promise<number> {
    if (this.#fd < 0) return -9 // EBADF: destroyed meanwhile
    return binding.sendmsgAsync(this.#fd, bufs.length === 1 ? bufs[0] : bufs, NO_FDS, NO_FDS, 0)
  }

  #release(dups: number[]): void {
    if (this.#unsent.delete(dups)) binding.closeAll(dups, true)
  }

  /** @internal `end()`: everything written is sent, then `shutdown(SHUT_WR)`. */
  override _final(cb: (err?: Error | null) => void): void {
    if (this.#connecting) {
      this.#afterConnect.push(() => this._final(cb))
      return
    }
    const rc = this.#fd < 0 ? 0 : binding.shutdown(this.#fd, true)
    // ENOTCONN: the peer is gone already; there is nothing left to shut down.
    cb(rc < 0 && rc !== -107 ? errnoError(rc, 'shutdown') : null)
  }

  /** @internal Closes the fd exactly once, and every dup of fds not yet sent. */
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#abortConnect?.abort()
    this.#afterConnect.length = 0
    const writes = this.#connectWrites.splice(0)
    if (writes.length > 0) {
      // As net: once closed, the write waiting for the connection fails (Writable then fails
      // the ones queued behind it); the dups they carried are closed below.
      this.once('close', () => {
        for (const done of writes) done(closedBeforeConnection())
      })
    }
    if (this.#fd >= 0) {
      binding.close(this.#fd)
      this.#fd = -1
    }
    for (const dups of this.#unsent) binding.closeAll(dups, true)
    this.#unsent.clear()
    cb(err)
  }

  // -------------------------------------------------------------------------------------------
  // net.Socket manners

  /** Lets the process exit while this socket only waits (as `net.Socket#unref`). */
  unref(): this {
    this.#refed = false
    if (this.#fd >= 0) binding.setRef(this.#fd, false)
    return this
  }

  /** Undoes {@link UnixSocket.unref}: a waiting read or write keeps the process alive again. */
  ref(): this {
    this.#refed = true
    if (this.#fd >= 0) binding.setRef(this.#fd, true)
    return this
  }

  /** Accepted and ignored (Nagle does not apply to Unix sockets); callers probe for it. */
  setNoDelay(_noDelay?: boolean): this {
    return this
  }

  /** Accepted and ignored (no keep-alive on Unix sockets); callers probe for it. */
  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this
  }

  /** `{}`, as `net.Socket#address()` for a Unix socket. */
  address(): Record<string, never> {
    return {}
  }

  /**
   * Who is on the other end (`SO_PEERCRED`), as of connect time.
   *
   * @throws {ErrnoError} `EBADF` once destroyed or while connecting.
   */
  peercred(): PeerCredentials {
    const r = binding.peercred(this.#fd < 0 ? 2 ** 31 - 1 : this.#fd)
    check(r[0], 'getsockopt')
    return { pid: r[0], uid: r[1], gid: r[2] }
  }

  /**
   * Closes fds received through `'fds'` that the consumer never claimed (dbus-native calls it on
   * `'close'`). fds that are not open are skipped; nothing throws.
   */
  closeFds(fds: readonly number[]): void {
    if (!Array.isArray(fds)) throw argTypeError('fds', 'an instance of Array', fds)
    validateFds(fds, 'fds')
    closeQuietly(fds)
  }
}

// ---------------------------------------------------------------------------------------------
// Server

/** Options of {@link UnixServer}; passed on to every accepted {@link UnixSocket}. */
export interface UnixServerOptions {
  /** For accepted sockets; default `false`, as `net`. */
  allowHalfOpen?: boolean
  readableHighWaterMark?: number
  writableHighWaterMark?: number
  /** For accepted sockets: each read's sender pidfd as a `'pidfd'` event (see {@link UnixSocketOptions}). */
  pidfd?: boolean
}

/** What {@link UnixServer.listen} takes besides a path. */
export interface UnixListenOptions {
  /** A path or abstract name (`"\0name"`) to bind. */
  path?: string
  /** A socket that is already bound and listening (from systemd, a parent process, `listen()`). */
  fd?: number
  /** `listen(2)` backlog; default 511, as `net`. */
  backlog?: number
}

/**
 * A server of Unix stream connections shaped like `net.Server`: `listen()`, `'listening'`,
 * `'connection'` with a {@link UnixSocket} (which can pass fds), `'error'`, `close()` (`'close'`
 * once the listener and every accepted connection are closed), `address()`, `ref()`/`unref()`.
 * Made by `createServer()`.
 */
export class UnixServer extends EventEmitter {
  #fd = -1
  #address: string | null = null
  #removeOnClose: string | null = null
  #options: UnixServerOptions
  #connections = 0
  #closing = false
  #refed = true
  #retryTimer: NodeJS.Timeout | undefined

  /**
   * @param connectionListener added as a `'connection'` listener.
   * @throws {Error} `ERR_RUNTIME_UNSUPPORTED` where the runtime cannot wait (the reactor did not start).
   */
  constructor(options: UnixServerOptions = {}, connectionListener?: (socket: UnixSocket) => void) {
    super()
    if (typeof options !== 'object' || options === null) throw argTypeError('options', 'of type object', options)
    if (asyncUnavailable) throw unsupported('UnixServer')
    this.#options = {
      allowHalfOpen: options.allowHalfOpen,
      readableHighWaterMark: options.readableHighWaterMark,
      writableHighWaterMark: options.writableHighWaterMark,
      pidfd: options.pidfd,
    }
    if (connectionListener !== undefined) {
      validateFunction(connectionListener, 'connectionListener')
      this.on('connection', connectionListener)
    }
  }

  /** Whether the server is accepting connections. */
  get listening(): boolean {
    return this.#fd >= 0
  }

  /**
   * Starts accepting on a new socket bound to `path` (which must not exist: `EADDRINUSE`, as
   * `net`; the file is removed again by `close()`), or on the listening socket `{ fd }`, which
   * the server owns from then on. `'listening'` follows, or `'error'` (`EADDRINUSE`, `EACCES`,
   * an `invalid` path).
   *
   * An `{ fd }` that is not a listening stream or seqpacket socket is one `'error'` (`syscall:
   * 'listen'`: `EBADF`, `ENOTSOCK`, `EINVAL`) and never `'listening'`, as `net.Server`; the fd
   * stays the caller's.
   *
   * @throws {TypeError} for arguments of the wrong type; `ERR_SERVER_ALREADY_LISTEN`.
   */
  listen(target: string | UnixListenOptions, backlog?: number | (() => void), cb?: () => void): this {
    if (typeof backlog === 'function') {
      cb = backlog
      backlog = undefined
    }
    const o: UnixListenOptions = typeof target === 'string' ? { path: target } : target
    if (typeof o !== 'object' || o === null) throw argTypeError('target', 'a path or { path } or { fd }', target)
    backlog = backlog ?? o.backlog ?? 511
    validateInteger(backlog, 'backlog', 0, 2 ** 31 - 1)
    if (cb !== undefined) validateFunction(cb, 'cb')
    if (this.#fd >= 0) {
      throw Object.assign(new Error('Listen method has been called more than once without closing.'), {
        code: 'ERR_SERVER_ALREADY_LISTEN',
      })
    }
    if (cb) this.once('listening', cb)
    if (o.fd !== undefined) {
      validateFd(o.fd, 'options.fd')
      const rc = listenerCheck(o.fd)
      if (rc < 0) {
        // As net: one 'error', never 'listening'; the fd stays the caller's.
        const err = errnoError(rc, 'listen')
        process.nextTick(() => this.emit('error', err))
        return this
      }
      // On the listener, so that connections inherit it before they are accepted: the kernel
      // attaches a sender's pid only when the receiving socket asked for it at send time.
      if (this.#options.pidfd) passPidfd(o.fd)
      this.#started(o.fd, null)
      return this
    }
    if (typeof o.path !== 'string') throw argTypeError('options.path', 'of type string', o.path)
    let fd: number
    try {
      fd = check(binding.listen(encodeAddr(o.path, 'path'), SOCK_CLOEXEC, backlog), 'listen', o.path)
      if (this.#options.pidfd) {
        try {
          passPidfd(fd)
        } catch (err) {
          binding.close(fd)
          if (!o.path.startsWith('\0')) unlinkSync(o.path)
          throw err
        }
      }
    } catch (err) {
      process.nextTick(() => this.emit('error', err))
      return this
    }
    this.#started(fd, o.path)
    return this
  }

  #started(fd: number, path: string | null): void {
    this.#fd = fd
    if (!this.#refed) binding.setRef(fd, false)
    this.#closing = false
    this.#address = path
    this.#removeOnClose = path !== null && !path.startsWith('\0') ? path : null
    process.nextTick(() => {
      if (this.#fd !== fd) return
      this.emit('listening')
      this.#accept()
    })
  }

  /** Accepts while connections are there at once (the core bounds this per turn), then waits. */
  #accept(): void {
    for (;;) {
      const fd = this.#fd
      if (fd < 0) return
      const r = binding.acceptAsync(fd, SOCK_CLOEXEC, 0)
      if (typeof r !== 'number') {
        r.then(
          (conn) => {
            if (this.#fd !== fd) return void binding.close(conn)
            this.#accepted(conn)
            this.#accept()
          },
          (err: Error) => {
            if (this.#fd === fd) this.#acceptFailed(err)
          },
        )
        return
      }
      if (r < 0) return this.#acceptFailed(errnoError(r, 'accept'))
      this.#accepted(r)
    }
  }

  /** `'error'`, then accepting again a little later (`EMFILE` would otherwise spin). */
  #acceptFailed(err: Error): void {
    this.emit('error', err)
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      this.#accept()
    }, ACCEPT_RETRY_MS)
    if (!this.#refed) this.#retryTimer.unref()
  }

  #accepted(fd: number): void {
    let socket: UnixSocket
    try {
      socket = new UnixSocket({ ...this.#options, fd })
    } catch (err) {
      binding.close(fd) // SO_PASSPIDFD refused (a kernel before 6.5): the connection cannot be served as asked
      this.emit('error', err)
      return
    }
    this.#connections++
    socket.once('close', () => {
      this.#connections--
      this.#maybeClosed()
    })
    this.emit('connection', socket)
  }

  /**
   * Stops accepting and closes the listener (removing the socket file `listen(path)` made).
   * `'close'` follows once every accepted connection has closed too, as `net.Server`.
   *
   * @param cb called on `'close'`, or with `ERR_SERVER_NOT_RUNNING` when not listening.
   */
  close(cb?: (err?: Error) => void): this {
    if (cb !== undefined) validateFunction(cb, 'cb')
    if (this.#fd < 0) {
      if (cb) {
        const e = Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' })
        process.nextTick(cb, e)
      }
      return this
    }
    if (cb) this.once('close', cb)
    if (this.#retryTimer) clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    binding.close(this.#fd)
    this.#fd = -1
    if (this.#removeOnClose) {
      try {
        unlinkSync(this.#removeOnClose)
      } catch {
        // gone already, or replaced: not ours to report
      }
    }
    this.#closing = true
    this.#maybeClosed()
    return this
  }

  #maybeClosed(): void {
    if (this.#closing && this.#connections === 0) {
      this.#closing = false
      process.nextTick(() => this.emit('close'))
    }
  }

  /** The path or abstract name listened on; `null` when not listening or listening on `{ fd }`. */
  address(): string | null {
    return this.#fd >= 0 ? this.#address : null
  }

  /** Lets the process exit while the server only waits for connections (as `net.Server#unref`). */
  unref(): this {
    this.#refed = false
    if (this.#fd >= 0) binding.setRef(this.#fd, false)
    this.#retryTimer?.unref()
    return this
  }

  /** Undoes {@link UnixServer.unref}. */
  ref(): this {
    this.#refed = true
    if (this.#fd >= 0) binding.setRef(this.#fd, true)
    this.#retryTimer?.ref()
    return this
  }
}
