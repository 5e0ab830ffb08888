// Hand-over (API.md §12): the same listening sockets move to the next process over SCM_RIGHTS
// on a SOCK_SEQPACKET control socket; the frames are in handover/wire.ts, the old side's
// draining in handover/drain.ts. Sequence, successor's view:
//   connect → HELLO → FD × n → END (handover() resolves) … ready(): READY → STOPPED (listen
//   on the inherited fds, bind the control path: ready() resolves) → CONN × k → DONE.
import { EventEmitter } from 'node:events'
import { chmodSync, lstatSync, renameSync, statSync, unlinkSync } from 'node:fs'
import * as net from 'node:net'
import { basename, dirname, join } from 'node:path'
import {
  accept,
  addfiles,
  addvector,
  backlog,
  close,
  connect,
  listen,
  newmsg,
  peercred,
  recvfds,
  sendfds,
  sendmsgSync,
  seqpacket,
} from '../index'
import { encodeAddr } from './address'
import { argTypeError, outOfRange } from './errors'
import { validateFd, validateInteger } from './validators'
import { Frame, MAX_FRAME, VERSION, decode, encode } from './handover/wire'
import { drain, stopAccepting, Tracked } from './handover/drain'
import type { Drained } from './handover/drain'

export type { Drained }

/** Options of {@link handover}. */
export interface HandoverOptions {
  /** How long (ms) a predecessor waits for the successor's `ready()` after handing its listeners over. Default 60 000. */
  timeout?: number
  /** How long (ms) requests in flight may take in the old process before what is left is destroyed. Default 30 000. */
  drain?: number
  /** Hand idle HTTP keep-alive connections to the successor (default `true`). */
  connections?: boolean
  /** A predecessor that dies before every listener arrived: reject (default) or start as generation 0. */
  onPredecessorLost?: 'reject' | 'fresh'
}

type Family = 'tcp' | 'unix'
interface Inherited {
  kind: 'listener' | 'fd'
  family?: Family
  fd: number
}
type Registration = { kind: 'listener'; server: net.Server; family: Family } | { kind: 'fd'; fd: number }

/** An error with a hand-over `code`. */
function handoverError(code: string, message: string): Error & { code: string } {
  const e = new Error(message) as Error & { code: string }
  e.code = code
  return e
}

const FRAME_ERRORS: Record<string, string> = {
  ERR_HANDOVER_PEER: 'the peer of the control socket runs as another user',
  ERR_HANDOVER_BUSY: 'another successor is taking over',
  ERR_HANDOVER_VERSION: `the peer speaks another hand-over protocol version (this one speaks ${VERSION})`,
  ERR_HANDOVER_TIMEOUT: 'ready() did not arrive within the predecessor\u2019s timeout',
  ERR_HANDOVER_PROTOCOL: 'the peer sent something that is not a hand-over frame',
}

/** The error an ERROR frame carries. */
function frameError(body: Record<string, unknown>): Error & { code: string } {
  const code = typeof body.code === 'string' ? body.code : 'ERR_HANDOVER_PROTOCOL'
  return handoverError(code, typeof body.message === 'string' ? body.message : (FRAME_ERRORS[code] ?? code))
}

/** A rejection handler that swallows errors with one of `codes`. */
const ignoreCode =
  (...codes: string[]) =>
  (e: { code?: string }): void => {
    if (!codes.includes(e.code ?? '')) throw e
  }

/** Reads frames off a control connection one at a time; `null` at end of stream. */
class FrameReader {
  constructor(readonly sock: number) {}
  async next(
    signal?: AbortSignal,
  ): Promise<{ type: number; version: number; body: Record<string, unknown>; fds: number[] } | null> {
    let r
    try {
      r = await recvfds(this.sock, MAX_FRAME, 1, signal ? { signal } : undefined)
    } catch (e) {
      const code = (e as { code?: string }).code
      if (code === 'ECONNRESET' || code === 'ERR_SOCKET_CLOSED') return null
      throw e
    }
    if (r.data.length === 0) {
      for (const fd of r.fds) close(fd)
      return null
    }
    const f = decode(r.data)
    if (!f || r.dataTruncated) {
      for (const fd of r.fds) close(fd)
      throw handoverError('ERR_HANDOVER_PROTOCOL', FRAME_ERRORS.ERR_HANDOVER_PROTOCOL)
    }
    return { ...f, fds: r.fds }
  }
}

function peerAllowed(sock: number): boolean {
  const uid = peercred(sock).uid
  return uid === 0 || uid === process.getuid?.()
}

/** Sends an ERROR frame (best effort: the peer may be gone) and closes the connection. */
async function refuse(sock: number, code: string): Promise<void> {
  try {
    await sendfds(sock, encode(Frame.ERROR, { code, message: FRAME_ERRORS[code] ?? code, versions: [VERSION] }), [])
  } catch {
    // the peer left first: nothing to tell
  }
  close(sock)
}

const isAbstract = (path: string): boolean => path.startsWith('\0')

/** Whether `args` (as for `server.listen`) name a Unix path: `(path, …)` or `({ path })`. */
function unixPathOf(args: unknown[]): string | undefined {
  const a = args[0]
  if (typeof a === 'string' && !/^\d+$/.test(a)) return a
  if (typeof a === 'object' && a !== null && typeof (a as { path?: unknown }).path === 'string') {
    return (a as { path: string }).path
  }
  return undefined
}

function listening(server: net.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error): void => {
      server.off('listening', onListening)
      reject(e)
    }
    const onListening = (): void => {
      server.off('error', onError)
      resolve()
    }
    server.once('error', onError)
    server.once('listening', onListening)
  })
}

/**
 * One process's part in a chain of generations; made by {@link handover}. See API.md §12.
 *
 * Events: `'handover'` (this process handed its listeners to a ready successor and stopped
 * accepting), `'error'` (a hand-over attempt failed in an unexpected way; this process keeps
 * serving; emitted only when listened to, so that no successor can crash this process).
 */
export class Handover extends EventEmitter {
  /** 0 for the first process; the predecessor's + 1 after a hand-over. */
  readonly generation: number
  /**
   * Resolves when, after a hand-over, the last connection of this process is done (in a
   * net-unix/cluster primary: and its retired workers have exited).
   */
  readonly drained: Promise<Drained>
  /** @internal */ private resolveDrained!: (d: Drained) => void
  /** @internal */ private readonly path: string
  /** @internal */ private readonly options: Required<HandoverOptions>
  /** @internal */ private readonly inherited: Map<string, Inherited>
  /** @internal */ private readonly registered = new Map<string, Registration>()
  /** @internal */ private readonly tracked = new Map<string, Tracked>()
  /** @internal */ private predecessor: FrameReader | null
  /** @internal Inherited listeners `listen()` took, adopted by `ready()`. */
  private readonly pendingListens: { fd: number; adopt: () => Promise<void> }[] = []
  /** @internal */ private readyState: 'no' | 'going' | 'yes' = 'no'
  /** @internal */ private control = -1
  /** @internal */ private controlInode = -1
  /** @internal What `drained` waits for besides this process's connections (a cluster's retiring workers). */
  readonly drainingElsewhere: Promise<unknown>[] = []
  /** @internal */ private busy = false
  /** @internal */ private closed = false

  /** @internal */
  constructor(
    path: string,
    options: Required<HandoverOptions>,
    generation: number,
    inherited: Map<string, Inherited>,
    predecessor: FrameReader | null,
  ) {
    super()
    this.path = path
    this.options = options
    this.generation = generation
    this.inherited = inherited
    this.predecessor = predecessor
    this.drained = new Promise((resolve) => (this.resolveDrained = resolve))
  }

  /**
   * Gives `server` the listener `name`: the inherited one (a successor listens on it from
   * `ready()` on, so it never accepts before then), or, when none was inherited, a new one made
   * from `listenArgs` as `server.listen(...listenArgs)` takes them. A Unix path is bound by
   * net-unix's {@link listen} and adopted by fd, so no generation's `close()` unlinks it.
   *
   * @returns a promise of `server`, listening (generation 0) or holding its listener (successor).
   * @rejects {TypeError} `ERR_INVALID_ARG_TYPE` for a server that is not a `net.Server`, a name
   * not a string; `ERR_INVALID_ARG_VALUE` for a name already in use; what `listen` rejects with.
   */
  async listen(server: net.Server, name: string, ...listenArgs: unknown[]): Promise<net.Server> {
    if (!(server instanceof net.Server)) throw argTypeError('server', 'an instance of net.Server', server)
    this.validateName(name)
    const inherited = this.inherited.get(name)
    if (inherited?.kind === 'listener') {
      this.inherited.delete(name)
      const family = inherited.family ?? 'tcp'
      this.register(name, { kind: 'listener', server, family })
      const adopt = async (): Promise<void> => {
        const up = listening(server)
        server.listen({ fd: inherited.fd })
        await up
      }
      if (this.readyState === 'yes') await adopt()
      else this.pendingListens.push({ fd: inherited.fd, adopt })
      return server
    }
    const path = unixPathOf(listenArgs)
    // Bound first: EADDRINUSE and the like reject before the server is touched.
    const fd = path === undefined ? -1 : listen(path, backlog(511))
    const up = listening(server)
    if (fd >= 0) {
      this.register(name, { kind: 'listener', server, family: 'unix' })
      server.listen({ fd })
    } else {
      this.register(name, { kind: 'listener', server, family: 'tcp' })
      ;(server.listen as (...a: unknown[]) => void)(...listenArgs)
    }
    try {
      await up
    } catch (e) {
      this.registered.delete(name)
      this.tracked.delete(name)
      throw e
    }
    return server
  }

  /**
   * Passes `fd` on to every later generation under `name` (a UDP or Unix datagram socket, a
   * memfd with state, …). The fd stays the caller's; it is sent, not closed, at a hand-over.
   *
   * @throws {TypeError}/{RangeError} for a bad name or fd; `ERR_INVALID_ARG_VALUE` for a name in use.
   */
  add(name: string, fd: number): void {
    this.validateName(name)
    validateFd(fd, 'fd')
    const old = this.inherited.get(name)
    if (old) {
      this.inherited.delete(name)
      close(old.fd)
    }
    this.register(name, { kind: 'fd', fd })
  }

  /**
   * Stops passing on what {@link add} registered under `name` (say, a socket the caller is about
   * to close). The fd is not closed: it stays the caller's.
   *
   * @returns whether `name` was registered by {@link add}.
   */
  remove(name: string): boolean {
    if (typeof name !== 'string') throw argTypeError('name', 'of type string', name)
    if (this.registered.get(name)?.kind !== 'fd') return false
    this.registered.delete(name)
    return true
  }

  /**
   * The fd inherited under `name`, now the caller's (it passes on only if {@link add}ed
   * again), or `undefined` when none was inherited. Inherited fds nobody claims pass on to the
   * next generation as they came.
   */
  fd(name: string): number | undefined {
    if (typeof name !== 'string') throw argTypeError('name', 'of type string', name)
    const inherited = this.inherited.get(name)
    if (!inherited) return undefined
    this.inherited.delete(name)
    return inherited.fd
  }

  /**
   * Says this process is ready to serve. In a successor: asks the predecessor to stop
   * accepting, then listens on the inherited listeners and takes the idle connections it
   * sends. In every generation: then serves successors on the control path.
   *
   * @rejects `ERR_HANDOVER_TIMEOUT` when the predecessor gave up waiting (it keeps serving;
   * this process's inherited fds are closed); an error of binding the control path.
   */
  async ready(): Promise<void> {
    if (this.readyState !== 'no') throw handoverError('ERR_HANDOVER_READY', 'ready() was already called')
    this.readyState = 'going'
    const pred = this.predecessor
    if (pred) {
      let stopped = false
      try {
        // EPIPE: the predecessor left; a frame it sent before (ERROR) may still wait to be read.
        await sendfds(pred.sock, encode(Frame.READY), []).catch(ignoreCode('EPIPE', 'ECONNRESET'))
        const f = await pred.next()
        if (f && f.type === Frame.ERROR) {
          for (const fd of f.fds) close(fd)
          throw frameError(f.body)
        }
        // null: the predecessor died after sending everything; we hold every listener.
        stopped = f !== null
      } catch (e) {
        this.abandon()
        throw e
      }
      for (const pending of this.pendingListens.splice(0)) await pending.adopt()
      this.readyState = 'yes'
      if (stopped) void this.takeConnections(pred)
      else this.dropPredecessor()
    } else {
      this.readyState = 'yes'
    }
    this.bindControl()
  }

  /**
   * Stops serving successors: closes the control socket and removes its path if it is still
   * this process's. Listeners and connections are untouched.
   */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.closeControl(true)
    this.dropPredecessor()
  }

  /** @internal A failed hand-over attempt must not crash the server that keeps serving. */
  private report(e: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', e)
  }

  /** @internal */
  private validateName(name: unknown): asserts name is string {
    if (typeof name !== 'string') throw argTypeError('name', 'of type string', name)
    if (this.registered.has(name)) {
      const e = new TypeError(`The argument 'name' is already in use. Received '${name}'`)
      throw Object.assign(e, { code: 'ERR_INVALID_ARG_VALUE' })
    }
  }

  /** @internal */
  private register(name: string, r: Registration): void {
    this.registered.set(name, r)
    if (r.kind === 'listener') this.tracked.set(name, new Tracked(r.server, name))
  }

  /** @internal A successor that will not run: close what it inherited. */
  private abandon(): void {
    for (const pending of this.pendingListens.splice(0)) close(pending.fd)
    for (const r of this.inherited.values()) close(r.fd)
    this.inherited.clear()
    for (const [name, r] of this.registered) {
      if (r.kind === 'listener' && !r.server.listening) {
        this.registered.delete(name)
        this.tracked.delete(name)
      }
    }
    this.dropPredecessor()
    this.readyState = 'no'
  }

  /** @internal */
  private dropPredecessor(): void {
    if (this.predecessor) {
      close(this.predecessor.sock)
      this.predecessor = null
    }
  }

  /** @internal Adopts the idle keep-alive connections the predecessor sends, until DONE. */
  private async takeConnections(pred: FrameReader): Promise<void> {
    try {
      for (;;) {
        const f = await pred.next()
        if (!f || f.type !== Frame.CONN) {
          for (const fd of f?.fds ?? []) close(fd)
          break
        }
        const r = this.registered.get(String(f.body.name))
        const [fd] = f.fds
        if (fd === undefined) continue
        if (!r || r.kind !== 'listener') {
          close(fd)
          continue
        }
        adoptConnection(r.server, fd)
      }
    } catch (e) {
      this.report(e)
    } finally {
      if (this.predecessor === pred) this.dropPredecessor()
    }
  }

  /** @internal Binds the control path, mode 0600 (a temp name renamed over it, so no moment is wider). */
  private bindControl(): void {
    if (this.closed) return
    if (isAbstract(this.path)) {
      this.control = listen(this.path, seqpacket, backlog(16))
    } else {
      const temp = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.handover`)
      try {
        unlinkSync(temp)
      } catch {
        // none left over
      }
      this.control = listen(temp, seqpacket, backlog(16))
      try {
        chmodSync(temp, 0o600)
        renameSync(temp, this.path)
        this.controlInode = statSync(this.path).ino
      } catch (e) {
        close(this.control)
        this.control = -1
        try {
          unlinkSync(temp)
        } catch {
          // already gone
        }
        throw e
      }
    }
    void this.serve(this.control)
  }

  /** @internal */
  private closeControl(unlink: boolean): void {
    if (this.control < 0) return
    close(this.control)
    this.control = -1
    if (unlink && this.controlInode >= 0) {
      try {
        if (statSync(this.path).ino === this.controlInode) unlinkSync(this.path)
      } catch {
        // already gone or replaced
      }
    }
  }

  /** @internal Accepts successors, one at a time. */
  private async serve(control: number): Promise<void> {
    for (;;) {
      let conn: number
      try {
        conn = await accept(control)
      } catch {
        return // closed
      }
      const refusal = !peerAllowed(conn) ? 'ERR_HANDOVER_PEER' : this.busy ? 'ERR_HANDOVER_BUSY' : null
      if (refusal) {
        // Its HELLO is read first: a socket closed with unread data resets its peer, which
        // would then never see the ERROR frame.
        const reader = new FrameReader(conn)
        void reader
          .next(AbortSignal.timeout(1000))
          .then((f) => f?.fds.forEach((fd) => close(fd)))
          .catch(() => {})
          .then(() => refuse(conn, refusal))
        continue
      }
      this.busy = true
      void this.session(conn).then(
        (committed) => {
          if (!committed) this.busy = false
        },
        (e) => {
          this.busy = false
          this.report(e)
        },
      )
    }
  }

  /** @internal One successor: true once it is committed (this process then only drains). */
  private async session(conn: number): Promise<boolean> {
    const reader = new FrameReader(conn)
    let committed = false
    try {
      const hello = await reader.next(AbortSignal.timeout(this.options.timeout))
      if (!hello) return false
      if (hello.version !== VERSION) {
        for (const fd of hello.fds) close(fd)
        await refuse(conn, 'ERR_HANDOVER_VERSION')
        conn = -1
        return false
      }
      for (const fd of hello.fds) close(fd)
      const items = this.handoverItems()
      for (const item of items) {
        const { fd, ...meta } = item
        await sendfds(conn, encode(Frame.FD, meta), [fd])
      }
      await sendfds(conn, encode(Frame.END, { generation: this.generation, count: items.length }), [])
      let ready
      try {
        ready = await reader.next(AbortSignal.timeout(this.options.timeout))
      } catch (e) {
        if ((e as { name?: string }).name === 'AbortError') {
          await refuse(conn, 'ERR_HANDOVER_TIMEOUT')
          conn = -1
          return false
        }
        throw e
      }
      for (const fd of ready?.fds ?? []) close(fd)
      if (!ready || ready.type !== Frame.READY) return false // crashed or gave up: nothing changed
      committed = true
      await this.commit(conn)
      conn = -1
      return true
    } catch (e) {
      const code = (e as { code?: string }).code
      if (!committed && (code === 'EPIPE' || code === 'ECONNRESET' || code === 'ERR_HANDOVER_PROTOCOL')) return false
      throw e
    } finally {
      if (conn >= 0) close(conn)
    }
  }

  /** @internal What a successor gets: every listener and added fd, and inherited fds nobody claimed. */
  private handoverItems(): { name: string; kind: 'listener' | 'fd'; family?: Family; fd: number }[] {
    const items: { name: string; kind: 'listener' | 'fd'; family?: Family; fd: number }[] = []
    for (const [name, r] of this.registered) {
      if (r.kind === 'fd') items.push({ name, kind: 'fd', fd: r.fd })
      else {
        const fd = (r.server as unknown as { _handle?: { fd?: number } })._handle?.fd
        if (r.server.listening && typeof fd === 'number' && fd >= 0)
          items.push({ name, kind: 'listener', family: r.family, fd })
      }
    }
    for (const [name, r] of this.inherited)
      items.push({ name, kind: r.kind, ...(r.family && { family: r.family }), fd: r.fd })
    return items
  }

  /** @internal The successor is ready: stop accepting, tell it, move idle connections, drain. */
  private async commit(conn: number): Promise<void> {
    const listeners = [...this.registered.values()].flatMap((r) => (r.kind === 'listener' ? [r.server] : []))
    stopAccepting(listeners)
    // An abstract name is free only once closed; a path is renamed over by the successor.
    if (isAbstract(this.path)) this.closeControl(false)
    let connOpen = true
    try {
      await sendfds(conn, encode(Frame.STOPPED), [])
    } catch {
      connOpen = false
    }
    this.emit('handover')
    const send = (name: string, fd: number): boolean => {
      if (!connOpen) return false
      const m = newmsg()
      addvector(m, encode(Frame.CONN, { name }))
      addfiles(m, fd)
      try {
        sendmsgSync(conn, m)
        return true
      } catch {
        connOpen = false
        return false
      }
    }
    const result = await drain([...this.tracked.values()], this.options.connections ? send : null, this.options.drain)
    if (connOpen) {
      try {
        await sendfds(conn, encode(Frame.DONE, { connections: result.handedOver }), [])
      } catch {
        // the successor left: it has everything it needs
      }
    }
    close(conn)
    this.closeControl(false)
    this.closed = true
    await Promise.all(this.drainingElsewhere)
    this.resolveDrained(result)
  }
}

/** Serves a connection handed over by the predecessor as if `server` had just accepted it. */
function adoptConnection(server: net.Server, fd: number): void {
  const socket = new net.Socket({ fd, readable: true, writable: true })
  const internals = socket as unknown as { server: net.Server; _server: net.Server }
  internals.server = server
  internals._server = server
  ;(server as unknown as { _connections: number })._connections++
  server.emit('connection', socket)
  // An idle keep-alive connection: close it as the server would if no request comes.
  const keepAlive = (server as { keepAliveTimeout?: number }).keepAliveTimeout
  if (keepAlive) {
    socket.setTimeout(keepAlive)
    awaitingRequest(server).add(socket)
  }
}

/** Adopted connections whose keep-alive timer runs until their first request (one listener per server). */
const awaiting = new WeakMap<net.Server, WeakSet<net.Socket>>()
function awaitingRequest(server: net.Server): WeakSet<net.Socket> {
  let set = awaiting.get(server)
  if (!set) {
    const sockets = (set = new WeakSet())
    awaiting.set(server, set)
    server.prependListener('request', (req: { socket: net.Socket }) => {
      if (sockets.delete(req.socket)) req.socket.setTimeout(0)
    })
  }
  return set
}

function validateOptions(options: unknown): Required<HandoverOptions> {
  if (options === undefined) options = {}
  if (typeof options !== 'object' || options === null) throw argTypeError('options', 'of type object', options)
  const o = options as HandoverOptions
  const timeout = o.timeout ?? 60_000
  const drainMs = o.drain ?? 30_000
  validateInteger(timeout, 'options.timeout', 1, 2 ** 31 - 1)
  validateInteger(drainMs, 'options.drain', 0, 2 ** 31 - 1)
  const connections = o.connections ?? true
  if (typeof connections !== 'boolean') throw argTypeError('options.connections', 'of type boolean', connections)
  const lost = o.onPredecessorLost ?? 'reject'
  if (lost !== 'reject' && lost !== 'fresh') throw outOfRange('options.onPredecessorLost', "'reject' or 'fresh'", lost)
  return { timeout, drain: drainMs, connections, onPredecessorLost: lost }
}

/**
 * Joins the chain of generations at the control socket `path` (API.md §12): receives the
 * predecessor's listeners, or, with none there, is generation 0.
 */
export async function handover(path: string, options?: HandoverOptions): Promise<Handover> {
  if (typeof path !== 'string') throw argTypeError('path', 'of type string', path)
  encodeAddr(path)
  const o = validateOptions(options)
  let sock: number
  try {
    sock = await connect(path, seqpacket)
  } catch (e) {
    const code = (e as { code?: string }).code
    if (code === 'ENOENT') return new Handover(path, o, 0, new Map(), null)
    if (code === 'ECONNREFUSED') {
      // Every process of the chain died: the path is stale.
      removeStale(path)
      return new Handover(path, o, 0, new Map(), null)
    }
    throw e
  }
  const received = new Map<string, Inherited>()
  const closeReceived = (): void => {
    for (const r of received.values()) close(r.fd)
    received.clear()
  }
  try {
    if (!peerAllowed(sock)) throw handoverError('ERR_HANDOVER_PEER', FRAME_ERRORS.ERR_HANDOVER_PEER)
    // EPIPE: refused at once (busy, peer); the ERROR frame still waits to be read.
    await sendfds(sock, encode(Frame.HELLO, { pid: process.pid }), []).catch(ignoreCode('EPIPE', 'ECONNRESET'))
    const reader = new FrameReader(sock)
    const signal = AbortSignal.timeout(o.timeout)
    for (;;) {
      const f = await reader.next(signal).catch((e: { code?: string; name?: string }) => {
        if (e.name === 'AbortError' || e.code === 'EPIPE') return null
        throw e
      })
      if (!f) break // predecessor gone before END
      if (f.type === Frame.ERROR) {
        for (const fd of f.fds) close(fd)
        throw frameError(f.body)
      }
      if (f.version !== VERSION) {
        for (const fd of f.fds) close(fd)
        await refuse(sock, 'ERR_HANDOVER_VERSION')
        sock = -1
        throw handoverError('ERR_HANDOVER_VERSION', FRAME_ERRORS.ERR_HANDOVER_VERSION)
      }
      if (f.type === Frame.FD && f.fds.length === 1 && typeof f.body.name === 'string') {
        const kind = f.body.kind === 'listener' ? 'listener' : 'fd'
        const family = f.body.family === 'unix' ? 'unix' : f.body.family === 'tcp' ? 'tcp' : undefined
        const old = received.get(f.body.name)
        if (old) close(old.fd)
        received.set(f.body.name, { kind, ...(family && { family }), fd: f.fds[0] })
        continue
      }
      for (const fd of f.fds) close(fd)
      if (f.type === Frame.END && f.body.count === received.size && typeof f.body.generation === 'number') {
        const h = new Handover(path, o, f.body.generation + 1, new Map(received), reader)
        received.clear()
        return h
      }
      throw handoverError('ERR_HANDOVER_PROTOCOL', FRAME_ERRORS.ERR_HANDOVER_PROTOCOL)
    }
  } catch (e) {
    closeReceived()
    if (sock >= 0) close(sock)
    throw e
  }
  // The predecessor died before every listener arrived: never run with half of them.
  closeReceived()
  close(sock)
  if (o.onPredecessorLost === 'fresh') {
    removeStale(path)
    return new Handover(path, o, 0, new Map(), null)
  }
  throw handoverError(
    'ERR_HANDOVER_PREDECESSOR_GONE',
    'the predecessor left before handing over every listener; nothing of it was kept',
  )
}

/** Removes a control path nobody listens on (a filesystem path; abstract names vanish by themselves). */
function removeStale(path: string): void {
  if (isAbstract(path)) return
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path) // never a file that is not a socket
  } catch {
    // gone already
  }
}
