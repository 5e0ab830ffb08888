// The primary half of net-unix/cluster. node:cluster still forks, tracks and talks to the
// workers; this adds one private channel per worker (a seqpacket socketpair end, given at fork
// as an extra stdio fd) and one listening socket per key. Each connection is accepted on the raw
// fd (no JS socket), handed to the least-loaded worker over its channel (several fds per
// sendmsg), and kept here until that worker's batched acknowledgement says it took it: a worker
// that dies first never took it, so it goes to another. The primary holds only listening fds
// (and those few in flight), so a successor can take them over whole.
import nodeCluster = require('node:cluster')
import type { Cluster, ClusterSettings, Worker } from 'node:cluster'
import fs = require('node:fs')
import net = require('node:net')
import path = require('node:path')
import { backlog, listen as listenUnix, sockflag, socketpair, seqpacket } from '../../index'
import { binding } from '../binding'
import { EAGAIN, ENOBUFS } from '../constants'
import { argTypeError } from '../errors'
import { describeFd } from '../fdinfo'
import { Handover } from '../handover'
import { Readiness, READABLE, WRITABLE } from '../readiness'
import { ACK, ENV_FD, IPC_CMD, MAX_MESSAGE, REFUSED_FULL, connsHeader, controlMessage, resultRoom, u32 } from './wire'

/** What `setupPrimary({ distribute })` is called with, per connection. */
export interface DistributeInfo {
  /** The client's address (`undefined` on a Unix-path listener). */
  remoteAddress?: string
  /** The client's port (`undefined` on a Unix-path listener). */
  remotePort?: number
  /** The listener's port (`undefined` on a Unix-path listener). */
  localPort?: number
  /** The listener's key: `address:port:addressType:fd:index`, as node:cluster names it. */
  key: string
}

/** net-unix/cluster's settings: node:cluster's, and the sticky-routing hook. */
export interface NetUnixClusterSettings extends ClusterSettings {
  /**
   * Picks the worker for a connection (sticky routing, e.g. by client address); `undefined`, or
   * a worker that is gone, full or not listening on that key, means the default choice.
   */
  distribute?: (info: DistributeInfo) => Worker | undefined
  /**
   * The hand-over (`await handover(path)`) this primary takes part in: each key's listener is
   * taken from it when the predecessor passed one on (else bound), and passed on to the
   * successor; once a successor is ready, this primary stops accepting and retires its workers.
   */
  handover?: Handover
}

type Settings = NetUnixClusterSettings & { stdio?: unknown; execArgv?: string[] }
interface PrimaryCluster {
  settings: Settings
  schedulingPolicy: number
  SCHED_NONE: number
  fork(env?: object): Worker
  setupPrimary(settings?: Settings): void
  setupMaster(settings?: Settings): void
  Worker: { prototype: { disconnect(this: Worker): Worker } }
}

const cluster = nodeCluster as unknown as PrimaryCluster & Cluster
const INSTALLED = Symbol.for('net-unix.cluster.primary')
/** Connections in flight (sent, not yet acknowledged) to one worker, at most. */
const WINDOW = 32
/** Connections accepted per readiness event of a listener before yielding to the loop. */
const ACCEPT_BUDGET = 128
const READ_BATCH = 16
const UV_TCP_IPV6ONLY = 1
const ECONNABORTED = -103
const EMFILE = -24
const ENFILE = -23

let listenerIds = 0
const listeners = new Map<string, Listener>()
const listenersById = new Map<number, Listener>()
const links = new Map<Worker, Link>()
let scratch: Buffer | undefined
let got: Int32Array | undefined
const WORKER_PRELOAD = path.join(__dirname, 'preload.js')
/** Hand-overs whose 'handover' retires this primary. */
const retiringOn = new WeakSet<Handover>()
/** 'delivering': a successor took over, connections accepted before are still on their way. */
let retirement: 'no' | 'delivering' | 'done' = 'no'

/** Installs the primary half (once per process, also across two copies of the package). */
export function installPrimary(): void {
  const g = globalThis as Record<symbol, unknown>
  if (g[INSTALLED]) return
  g[INSTALLED] = true
  const fork = cluster.fork
  cluster.fork = function (env?: object): Worker {
    // SCHED_NONE chosen by the user (NODE_CLUSTER_SCHED_POLICY=none or the property): node's.
    if (cluster.schedulingPolicy === cluster.SCHED_NONE) return fork.call(cluster, env)
    return forkWithChannel(fork, env)
  }
  for (const name of ['setupPrimary', 'setupMaster'] as const) {
    const setup = cluster[name]
    cluster[name] = function (settings?: Settings): void {
      if (settings?.distribute !== undefined && typeof settings.distribute !== 'function') {
        throw argTypeError('settings.distribute', 'of type function', settings.distribute)
      }
      const h = settings?.handover
      if (h !== undefined && !(h instanceof Handover)) {
        throw argTypeError('settings.handover', 'an instance of Handover', h)
      }
      if (h !== undefined && !retiringOn.has(h)) {
        retiringOn.add(h)
        h.once('handover', () => retire(h))
      }
      return setup.call(cluster, settings)
    }
  }
  const disconnect = cluster.Worker.prototype.disconnect
  cluster.Worker.prototype.disconnect = function (this: Worker): Worker {
    // As node:cluster: a worker being disconnected gets no more connections from now on.
    links.get(this)?.stopSending()
    return disconnect.call(this)
  }
}

function forkWithChannel(fork: (env?: object) => Worker, env?: object): Worker {
  const [mine, theirs] = socketpair(seqpacket, sockflag.NONBLOCK)
  const user = cluster.settings
  const base = user.stdio ?? (user.silent ? 'pipe' : 'inherit')
  const stdio: unknown[] = typeof base === 'string' ? [base, base, base, 'ipc'] : [...(base as unknown[])]
  while (stdio.length < 3) stdio.push(undefined)
  const index = stdio.length
  stdio.push(theirs)
  const execArgv = user.execArgv ?? process.execArgv
  let worker: Worker
  try {
    cluster.settings = { ...user, stdio, execArgv: [...execArgv, '--require', WORKER_PRELOAD] }
    worker = fork.call(cluster, { ...env, [ENV_FD]: String(index) })
  } catch (e) {
    binding.close(mine)
    throw e
  } finally {
    // fork() made its own copy of the settings (its 'setup' event carries it on the next tick):
    // put the user's values back into that copy.
    const used = cluster.settings
    if ('stdio' in user) used.stdio = user.stdio
    else delete used.stdio
    used.execArgv = user.execArgv ?? process.execArgv
    binding.close(theirs)
  }
  const link = new Link(worker, mine)
  links.set(worker, link)
  worker.process.on('internalMessage', (m: { cmd?: unknown }) => {
    if (m === null || typeof m !== 'object' || m.cmd !== IPC_CMD) return
    link.control(m as Record<string, unknown>)
    pumpAll() // room again, or a worker fewer
  })
  worker.process.once('exit', () => link.gone())
  worker.process.once('disconnect', () => link.stopSending())
  return worker
}

/**
 * One worker's channel: connections out, acknowledgements in (its requests come by IPC).
 * Acknowledgements are not worth a wake-up each: the channel is read when a listener wakes
 * anyway (before choosing a worker), by a sweep every SWEEP_MS while connections are in flight,
 * and watched only when this worker's window is full. A dead worker is known by its 'exit'.
 */
class Link {
  readonly worker: Worker
  fd: number
  readonly #readiness: Readiness
  /** Sent and not yet acknowledged, in sending order. */
  readonly inflight: { fd: number; listener: Listener }[] = []
  /** Chosen this turn, sent at the end of it (several per sendmsg). */
  readonly outgoing = new Map<Listener, number[]>()
  outgoingCount = 0
  /** Listeners this worker listens on. */
  readonly keys = new Set<Listener>()
  /** Listeners whose server in this worker is at its maxConnections. */
  readonly full = new Set<Listener>()
  sending = true
  blocked = false
  readonly #unsent: Uint8Array[] = []
  #going = false

  constructor(worker: Worker, fd: number) {
    this.worker = worker
    this.fd = fd
    this.#readiness = new Readiness(fd, (status, events) => this.#ready(status, events))
    this.#readiness.ref(false) // the worker's process keeps the primary alive, not its channel
    this.#arm()
  }

  /** Watches the channel when something must be heard at once (see the class comment). */
  #arm(): void {
    if (this.fd < 0) return
    if (this.#unsent.length > 0 || this.blocked) this.#readiness.start(READABLE | WRITABLE)
    else this.#readiness.start(this.load >= WINDOW ? READABLE : 0)
  }

  /** Reads what the worker sent (acknowledgements, requests) without waiting. */
  collect(): void {
    if (this.fd >= 0 && this.inflight.length > 0) this.#read()
  }

  get load(): number {
    return this.inflight.length + this.outgoingCount
  }

  /** Takes a connection of `listener` on `fd`, to be sent at the end of this turn. */
  queue(listener: Listener, fd: number): void {
    let list = this.outgoing.get(listener)
    if (list === undefined) this.outgoing.set(listener, (list = []))
    list.push(fd)
    this.outgoingCount++
  }

  /** Sends what this turn chose, one message per listener. */
  flush(): void {
    for (const [listener, fds] of this.outgoing) {
      this.outgoing.delete(listener)
      this.outgoingCount -= fds.length
      if (this.fd < 0 || this.blocked) {
        listener.giveBack(fds)
        continue
      }
      const rc = binding.sendtoSync(this.fd, connsHeader(listener.id, fds.length), null, fds, [fds.length], false, true)
      if (rc >= 0) {
        for (const fd of fds) this.inflight.push({ fd, listener })
      } else {
        listener.giveBack(fds)
        if (rc === EAGAIN || rc === ENOBUFS || rc === -109 /* ETOOMANYREFS */) {
          this.blocked = true
        } else {
          this.gone()
          return
        }
      }
    }
    this.#arm()
    if (this.inflight.length > 0) scheduleSweep()
  }

  /** No new connections (disconnecting); acknowledgements are still read. */
  stopSending(): void {
    if (!this.sending) return
    this.sending = false
    for (const listener of [...this.keys]) listener.remove(this)
  }

  /** The worker is gone: whatever it had not acknowledged goes to another. */
  gone(): void {
    if (this.fd < 0 || this.#going) return
    this.#going = true
    // Its last acknowledgements may still be queued here: those connections it took (and may
    // have read from), so they must not go to another worker.
    this.#read()
    this.stopSending()
    this.#readiness.close()
    binding.close(this.fd)
    this.fd = -1
    links.delete(this.worker)
    const back = this.inflight.splice(0)
    for (const { fd, listener } of back) listener.giveBack([fd])
    pumpAll()
  }

  sendControl(body: object): void {
    const message = controlMessage(body)
    if (this.fd < 0) return
    if (this.#unsent.length === 0) {
      const rc = binding.sendtoSync(this.fd, message, null, [], [], false, true)
      if (rc >= 0) return
      if (rc !== EAGAIN && rc !== ENOBUFS) return this.gone()
    }
    this.#unsent.push(message)
    this.#arm()
  }

  #ready(status: number, events: number): void {
    if (this.fd < 0) return
    if (status < 0) return this.gone()
    if (events & WRITABLE) {
      while (this.#unsent.length > 0) {
        const rc = binding.sendtoSync(this.fd, this.#unsent[0], null, [], [], false, true)
        if (rc === EAGAIN || rc === ENOBUFS) return
        if (rc < 0) return this.gone()
        this.#unsent.shift()
      }
      this.blocked = false
      this.#arm()
      pumpAll()
    }
    if (events & READABLE) {
      this.#read()
      pumpAll()
    }
  }

  #read(): void {
    scratch ??= Buffer.allocUnsafe(MAX_MESSAGE * READ_BATCH)
    got ??= new Int32Array(resultRoom(READ_BATCH, 0))
    for (;;) {
      const n = binding.recvManyNow(this.fd, scratch, MAX_MESSAGE, 0, false, false, got)
      if (n === EAGAIN) break
      if (n < 0) return this.gone()
      for (let i = 0, at = 1; i < n; i++) {
        const bytes = got[at]
        at += 3 + got[at + 2]
        if (bytes === 0) return this.gone()
        const data = scratch.subarray(i * MAX_MESSAGE, i * MAX_MESSAGE + bytes)
        if (data[0] === ACK) this.#ack(data)
        if (this.fd < 0) return
      }
      if (n < READ_BATCH) break
    }
    // The worker read: its queue may have room again.
    this.blocked = false
    this.#arm()
  }

  #ack(data: Buffer): void {
    const taken = u32(data, 4)
    const refusals = u32(data, 8)
    const done = this.inflight.splice(0, taken)
    for (let r = 0; r < refusals; r++) {
      const offset = u32(data, 12 + r * 8)
      const reason = u32(data, 16 + r * 8)
      const entry = done[offset]
      if (entry === undefined) continue
      if (reason === REFUSED_FULL && this.keys.has(entry.listener)) this.full.add(entry.listener)
      entry.listener.giveBack([entry.fd])
      entry.fd = -1
    }
    const close: number[] = []
    for (const entry of done) if (entry.fd >= 0) close.push(entry.fd)
    if (close.length > 0) binding.closeAll(close, true)
  }

  /** A request from the worker. */
  control(body: Record<string, unknown>): void {
    if (body.op === 'listen') {
      listenFor(this, body)
    } else if (body.op === 'close') {
      listenersById.get(body.keyId as number)?.remove(this)
    } else if (body.op === 'room') {
      const listener = listenersById.get(body.keyId as number)
      if (listener) this.full.delete(listener)
    }
  }
}

/** A worker asks for a listener: share the key's, or make it. */
function listenFor(link: Link, q: Record<string, unknown>): void {
  if (!link.sending) return // disconnecting, as node:cluster ignores it then
  const key = `${q.address}:${q.port}:${q.addressType}:${q.fd}:${q.index}`
  let listener = listeners.get(key)
  if (listener === undefined) {
    listener = new Listener(key, q)
    listeners.set(key, listener)
    listenersById.set(listener.id, listener)
  }
  if (listener.data === null) listener.data = q.data
  listener.add(link, q.id as number)
}

/** One listening socket, shared by the workers that asked for its key. */
class Listener {
  readonly id = ++listenerIds
  readonly key: string
  fd = -1
  sockname: { address: string; family: string; port: number } | null = null
  localPort: number | undefined
  path: string | null = null
  data: unknown = null
  errno = 0
  readonly members: Link[] = []
  /** Accepted connections no worker could take yet (all full, or no credit). */
  readonly waiting: number[] = []
  #readiness: Readiness | undefined
  #pending: [Link, number][] = []
  #rotor = 0
  closed = false
  /** The hand-over this listener is passed on by (the settings' when it was made). */
  readonly handover: Handover | undefined
  /** A successor took over: accept nothing more, and leave the path (it is the successor's). */
  retired = retirement !== 'no'

  constructor(key: string, q: Record<string, unknown>) {
    this.key = key
    this.handover = cluster.settings.handover
    const port = q.port as number
    const bl = typeof q.backlog === 'number' && q.backlog > 0 ? q.backlog : 511
    if (this.#inherit(q, port)) return
    if (port >= 0) this.#bindTcp(q, port, bl)
    else this.#bindPath(q, bl)
  }

  /** Takes the predecessor's listener of this key, when the hand-over brought one. */
  #inherit(q: Record<string, unknown>, port: number): boolean {
    const fd = this.handover?.fd(handoverName(this.key))
    if (fd === undefined) return false
    let local
    try {
      const info = describeFd(fd)
      if (!info.listening || info.socktype !== 'stream') throw new Error('not a listener')
      // Accepted without waiting (another kind of predecessor may have passed it blocking).
      if (!info.nonblock && binding.setNonblocking(fd, true) < 0) throw new Error('fcntl')
      local = info.local
    } catch {
      binding.close(fd) // not what this key listens on: bind anew
      return false
    }
    this.fd = fd
    if (port >= 0 && local !== null && typeof local === 'object') {
      this.sockname = local
      this.localPort = local.port
    } else if (port < 0) {
      this.path = q.address as string
    }
    queueMicrotask(() => this.#bound(0))
    return true
  }

  #bindTcp(q: Record<string, unknown>, port: number, bl: number): void {
    const server = net.createServer()
    server.once('error', (e: NodeJS.ErrnoException) => this.#bound(typeof e.errno === 'number' ? e.errno : -22))
    server.once('listening', () => {
      // Take the socket from libuv before it ever polls it: a close-on-exec dup of ours, and
      // the server closed (which closes libuv's fd, not the socket).
      const handle = (server as unknown as { _handle: { fd: number } })._handle
      const fd = binding.dup(handle.fd)
      this.sockname = server.address() as net.AddressInfo
      this.localPort = this.sockname.port
      server.close()
      if (fd < 0) return this.#bound(fd)
      this.fd = fd
      this.#bound(0)
    })
    const flags = typeof q.flags === 'number' ? q.flags : 0
    server.listen({
      port,
      host: (q.address as string | null) ?? undefined,
      ipv6Only: (flags & UV_TCP_IPV6ONLY) !== 0,
      backlog: bl,
    })
  }

  #bindPath(q: Record<string, unknown>, bl: number): void {
    let address = q.address as string
    // The shorter of absolute and relative, for sun_path's 107 bytes (as node:cluster does).
    const relative = path.relative(process.cwd(), address)
    if (relative.length < address.length) address = relative
    try {
      this.fd = listenUnix(address, backlog(bl), sockflag.NONBLOCK)
      this.path = address
      let mode = 0
      if (q.readableAll) mode |= 0o444
      if (q.writableAll) mode |= 0o222
      if (mode) fs.chmodSync(address, fs.statSync(address).mode | mode)
    } catch (e) {
      const errno = (e as { errno?: unknown }).errno
      queueMicrotask(() => this.#bound(typeof errno === 'number' ? errno : -22))
      return
    }
    queueMicrotask(() => this.#bound(0))
  }

  #bound(errno: number): void {
    this.errno = errno
    const pending = this.#pending
    this.#pending = []
    if (errno !== 0) {
      // Gives other workers a chance to retry, as node:cluster does.
      this.close()
      for (const [link, id] of pending) link.sendControl({ op: 'listening', id, errno, data: this.data })
      return
    }
    this.#readiness = new Readiness(this.fd, () => this.#accept())
    this.#readiness.ref(false)
    this.handover?.add(handoverName(this.key), this.fd)
    for (const [link, id] of pending) this.add(link, id)
  }

  add(link: Link, id: number): void {
    if (this.fd < 0 && this.errno === 0 && !this.closed) {
      this.#pending.push([link, id])
      return
    }
    if (this.closed) {
      link.sendControl({ op: 'listening', id, errno: this.errno || -125 /* ECANCELED */, data: this.data })
      return
    }
    if (!link.sending || link.fd < 0) return
    this.members.push(link)
    link.keys.add(this)
    link.sendControl({ op: 'listening', id, errno: 0, keyId: this.id, sockname: this.sockname, data: this.data })
    this.pump()
  }

  remove(link: Link): void {
    const at = this.members.indexOf(link)
    if (at >= 0) this.members.splice(at, 1)
    link.keys.delete(this)
    link.full.delete(this)
    // As node:cluster: the listener closes with its last worker.
    if (this.members.length === 0 && this.#pending.length === 0) this.close()
  }

  /** Connections that could not be sent, or that a worker gave back. */
  giveBack(fds: number[]): void {
    if (this.closed) {
      binding.closeAll(fds, true)
      return
    }
    for (const fd of fds) this.waiting.push(fd)
  }

  /** The worker for connection `fd`: the sticky hook's choice, else the least-loaded one. */
  choose(fd: number): Link | undefined {
    if (this.members.length === 0) return undefined
    const distribute = cluster.settings.distribute
    if (typeof distribute === 'function') {
      const picked = this.#sticky(distribute, fd)
      if (picked !== undefined) return picked
    }
    return this.#leastLoaded(this.#rotor++)
  }

  /** The member with the fewest connections in flight and room for one more (ties: from `start`). */
  #leastLoaded(start: number): Link | undefined {
    const n = this.members.length
    let best: Link | undefined
    let bestLoad = WINDOW
    for (let k = 0; k < n; k++) {
      const link = this.members[(start + k) % n]
      if (link.blocked || link.full.has(this)) continue
      const load = link.load
      if (load < bestLoad) {
        best = link
        bestLoad = load
      }
    }
    return best
  }

  #sticky(distribute: NonNullable<Settings['distribute']>, fd: number): Link | undefined {
    const info: DistributeInfo = { key: this.key, localPort: this.localPort }
    if (this.path === null) {
      const peer = peerOf(fd)
      if (peer) {
        info.remoteAddress = peer.address
        info.remotePort = peer.port
      }
    }
    const worker = distribute(info)
    if (worker === undefined) return undefined
    const link = links.get(worker)
    if (!link || !this.members.includes(link) || link.blocked || link.full.has(this) || link.load >= WINDOW)
      return undefined
    return link
  }

  /** Gives waiting connections to workers with room, then accepts while any has room. */
  pump(): void {
    if (this.closed) return
    while (this.waiting.length > 0) {
      const link = this.choose(this.waiting[0])
      if (link === undefined) break
      link.queue(this, this.waiting.shift() as number)
    }
    const room = this.waiting.length === 0 && !this.retired && this.#leastLoaded(0) !== undefined
    this.#readiness?.start(room ? READABLE : 0)
  }

  #accept(): void {
    if (this.closed || this.retired) return
    // Acknowledgements that came since: fresher loads, and fds released, at no extra wake-up.
    for (const link of this.members) link.collect()
    for (let i = 0; i < ACCEPT_BUDGET; i++) {
      const fd = binding.acceptSync(this.fd, 0)
      if (fd === EAGAIN) break
      if (fd < 0) {
        if (fd === ECONNABORTED) continue
        if (fd === EMFILE || fd === ENFILE) break // retried on the next readiness event
        break
      }
      const link = this.choose(fd)
      if (link === undefined) {
        this.waiting.push(fd)
        break
      }
      link.queue(this, fd)
    }
    flushAll()
    this.pump()
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    listeners.delete(this.key)
    listenersById.delete(this.id)
    this.#readiness?.close()
    if (this.fd >= 0 && this.#readiness) this.handover?.remove(handoverName(this.key))
    if (this.fd >= 0) binding.close(this.fd)
    this.fd = -1
    if (this.waiting.length > 0) binding.closeAll(this.waiting.splice(0), true)
    if (this.path !== null && !this.retired) {
      try {
        fs.unlinkSync(this.path) // as libuv does when a pipe server closes
      } catch {
        // already gone
      }
    }
    for (const link of [...this.members]) this.remove(link)
  }
}

/** The peer of an accepted TCP connection, for the sticky hook only. */
function peerOf(fd: number): { address: string; port: number } | undefined {
  const r = binding.inetPeer(fd)
  if (r.length < 2) return undefined
  return { address: r[0], port: Number(r[1]) }
}

function flushAll(): void {
  for (const link of links.values()) if (link.outgoingCount > 0) link.flush()
}

/** Reads every channel with connections in flight, in quiet times (see {@link Link}). */
const SWEEP_MS = 20
let sweepTimer: NodeJS.Timeout | undefined
function scheduleSweep(): void {
  if (sweepTimer !== undefined) return
  sweepTimer = setTimeout(() => {
    sweepTimer = undefined
    for (const link of [...links.values()]) link.collect()
    pumpAll()
    for (const link of links.values()) if (link.inflight.length > 0) return scheduleSweep()
  }, SWEEP_MS)
  sweepTimer.unref()
}

function pumpAll(): void {
  for (const listener of [...listeners.values()]) listener.pump()
  flushAll()
  if (retirement === 'delivering') retireWhenDelivered()
}

/** The name a key's listener is passed on under in a hand-over. */
function handoverName(key: string): string {
  return `cluster:${key}`
}

/**
 * A successor primary is ready (it serves the same listeners): accept nothing more, deliver
 * what was accepted, then retire the workers (see retireWhenDelivered).
 */
function retire(h: Handover): void {
  // `drained` resolves once the workers of this primary (those it retires) are gone.
  const workers = Object.values(cluster.workers ?? {}).flatMap((w) => (w && !w.isDead() ? [w] : []))
  h.drainingElsewhere.push(Promise.all(workers.map((w) => new Promise((resolve) => w.process.once('exit', resolve)))))
  if (retirement !== 'no') return
  retirement = 'delivering'
  for (const listener of listeners.values()) listener.retired = true
  pumpAll()
}

/**
 * Once every accepted connection is in a worker (none waiting here, none unacknowledged),
 * disconnects the workers, told first to answer with `Connection: close` and to leave idle
 * keep-alive connections to their clients (a client closes one after its next response, so no
 * request races an idle-close into ECONNRESET). They exit when their connections are done; with
 * them gone, this primary exits by itself.
 */
function retireWhenDelivered(): void {
  for (const listener of listeners.values()) if (listener.waiting.length > 0) return
  for (const link of links.values()) if (link.inflight.length > 0 || link.outgoingCount > 0) return
  retirement = 'done'
  for (const worker of Object.values(cluster.workers ?? {})) {
    if (!worker || !worker.isConnected()) continue
    if (links.has(worker)) worker.process.send({ cmd: IPC_CMD, op: 'retire' })
    worker.disconnect()
  }
}
