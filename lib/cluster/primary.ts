// The primary half of net-unix/cluster. node:cluster still forks, tracks and talks to the
// workers; this adds one private channel per worker (a seqpacket socketpair end, given at fork
// as an extra stdio fd) and one listening socket per key, and hands both to the native core's
// dispatcher thread (crates/net-unix/src/dispatch.rs). That thread accepts each connection on
// the raw fd, hands it to the least-loaded worker over its channel (several fds per sendmsg) and
// keeps it until that worker's batched acknowledgement says it took it: a worker that dies first
// never took it, so it goes to another. This side binds, answers the workers' requests, runs the
// distribute hook and the hand-over. The primary holds only listening fds (and those few in
// flight), so a successor can take them over whole.
import nodeCluster = require('node:cluster')
import type { Cluster, ClusterSettings, Worker } from 'node:cluster'
import fs = require('node:fs')
import net = require('node:net')
import path = require('node:path')
import { backlog, listen as listenUnix, sockflag, socketpair, seqpacket } from '../../index'
import { binding } from '../binding'
import { EAGAIN, ENOBUFS } from '../constants'
import { argTypeError, errnoError } from '../errors'
import { describeFd } from '../fdinfo'
import { Handover } from '../handover'
import { Readiness, READABLE, WRITABLE } from '../readiness'
import { ENV_FD, IPC_CMD, controlMessage } from './wire'

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
const UV_TCP_IPV6ONLY = 1

let listenerIds = 0
let linkIds = 0
const listeners = new Map<string, Listener>()
const listenersById = new Map<number, Listener>()
const links = new Map<Worker, Link>()
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
      setup.call(cluster, settings)
      const hook = typeof cluster.settings.distribute === 'function'
      for (const listener of listeners.values()) listener.hook(hook)
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
  startDispatcher()
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
  let link: Link
  try {
    link = new Link(worker, mine)
  } catch (e) {
    binding.close(mine) // the worker sees its channel end: it gets nothing by it
    throw e
  }
  links.set(worker, link)
  worker.process.on('internalMessage', (m: { cmd?: unknown }) => {
    if (m === null || typeof m !== 'object' || m.cmd !== IPC_CMD) return
    link.control(m as Record<string, unknown>)
  })
  worker.process.once('exit', () => link.gone())
  worker.process.once('disconnect', () => link.stopSending())
  return worker
}

/**
 * One worker's channel. Connections go down it from the core's dispatcher thread (which also
 * reads the worker's acknowledgements); this side only sends the answers to the worker's
 * requests, which come by IPC. A dead worker is known by its 'exit'.
 */
class Link {
  readonly id = ++linkIds
  readonly worker: Worker
  fd: number
  readonly #readiness: Readiness
  /** Listeners this worker listens on. */
  readonly keys = new Set<Listener>()
  sending = true
  /** Control messages the channel had no room for, each with what waits for it to be sent. */
  readonly #unsent: [Uint8Array, (() => void) | undefined][] = []
  #going = false

  constructor(worker: Worker, fd: number) {
    this.worker = worker
    this.fd = fd
    this.#readiness = new Readiness(fd, (status) => this.#writable(status))
    this.#readiness.ref(false) // the worker's process keeps the primary alive, not its channel
    const rc = binding.dispatchLink(this.id, fd)
    if (rc < 0) {
      this.#readiness.close()
      throw errnoError(rc, 'epoll_ctl')
    }
  }

  /** No new connections (disconnecting). */
  stopSending(): void {
    if (!this.sending) return
    this.sending = false
    for (const listener of [...this.keys]) listener.remove(this)
  }

  /** The worker is gone: whatever it had not acknowledged goes to another. */
  gone(): void {
    if (this.fd < 0 || this.#going) return
    this.#going = true
    this.stopSending()
    binding.dispatchLinkGone(this.id)
    this.#readiness.close()
    binding.close(this.fd)
    this.fd = -1
    links.delete(this.worker)
  }

  /** Sends a control message; `then` runs once it is sent (connections may follow it). */
  sendControl(body: object, then?: () => void): void {
    const message = controlMessage(body)
    if (this.fd < 0) return
    if (this.#unsent.length === 0) {
      const rc = binding.sendtoSync(this.fd, message, null, [], [], false, true)
      if (rc >= 0) return then?.()
      if (rc !== EAGAIN && rc !== ENOBUFS) return this.gone()
    }
    this.#unsent.push([message, then])
    this.#readiness.start(WRITABLE)
  }

  #writable(status: number): void {
    if (this.fd < 0) return
    if (status < 0) return this.gone()
    while (this.#unsent.length > 0) {
      const [message, then] = this.#unsent[0]
      const rc = binding.sendtoSync(this.fd, message, null, [], [], false, true)
      if (rc === EAGAIN || rc === ENOBUFS) return
      if (rc < 0) return this.gone()
      this.#unsent.shift()
      then?.()
    }
    this.#readiness.start(0)
  }

  /** A request from the worker. */
  control(body: Record<string, unknown>): void {
    if (body.op === 'listen') {
      listenFor(this, body)
    } else if (body.op === 'close') {
      listenersById.get(body.keyId as number)?.remove(this)
    } else if (body.op === 'room') {
      const listener = listenersById.get(body.keyId as number)
      if (listener) binding.dispatchRoom(listener.id, this.id)
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
  #pending: [Link, number][] = []
  #dispatched = false
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
    const rc = binding.dispatchListener(this.id, this.fd, typeof cluster.settings.distribute === 'function')
    if (rc < 0) return this.#bound(rc)
    this.#dispatched = true
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
    // Connections follow the answer, never overtake it.
    const reply = { op: 'listening', id, errno: 0, keyId: this.id, sockname: this.sockname, data: this.data }
    link.sendControl(reply, () => {
      if (link.keys.has(this)) binding.dispatchMember(this.id, link.id, true)
    })
  }

  remove(link: Link): void {
    const at = this.members.indexOf(link)
    if (at >= 0) this.members.splice(at, 1)
    link.keys.delete(this)
    if (this.#dispatched) binding.dispatchMember(this.id, link.id, false)
    // As node:cluster: the listener closes with its last worker.
    if (this.members.length === 0 && this.#pending.length === 0) this.close()
  }

  /** Whether connections go to the `distribute` hook first. */
  hook(on: boolean): void {
    if (this.#dispatched) binding.dispatchHook(this.id, on)
  }

  /** Where the `distribute` hook sends connection `fd`: its worker's link id, or 0 for any. */
  pick(distribute: NonNullable<Settings['distribute']>, fd: number): number {
    const info: DistributeInfo = { key: this.key, localPort: this.localPort }
    if (this.path === null) {
      const peer = peerOf(fd)
      if (peer) {
        info.remoteAddress = peer.address
        info.remotePort = peer.port
      }
    }
    const worker = distribute(info)
    return (worker !== undefined && links.get(worker)?.id) || 0
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    listeners.delete(this.key)
    listenersById.delete(this.id)
    if (this.#dispatched) {
      binding.dispatchListenerClose(this.id) // closes the connections still waiting
      this.handover?.remove(handoverName(this.key))
    }
    if (this.fd >= 0) binding.close(this.fd)
    this.fd = -1
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

/** The dispatcher's news: connections for the `distribute` hook, or all delivered. */
let news: Readiness | undefined
function startDispatcher(): void {
  if (news !== undefined) return
  const fd = binding.dispatchInit()
  if (fd < 0) throw errnoError(fd, 'pthread_create')
  news = new Readiness(fd, onNews)
  news.ref(false)
  news.start(READABLE)
}

function onNews(): void {
  const [delivered, ...forHook] = binding.dispatchEvents()
  if (forHook.length > 0) {
    const picks: number[] = []
    const distribute = cluster.settings.distribute
    let thrown: { e: unknown } | undefined
    for (let i = 0; i < forHook.length; i += 2) {
      const listener = listenersById.get(forHook[i])
      let link = 0
      if (listener && typeof distribute === 'function' && thrown === undefined) {
        try {
          link = listener.pick(distribute, forHook[i + 1])
        } catch (e) {
          thrown = { e } // the rest go to the default choice, then it is thrown
        }
      }
      picks.push(link, forHook[i], forHook[i + 1])
    }
    binding.dispatchAssign(picks)
    if (thrown) throw thrown.e
  }
  if (delivered && retirement === 'delivering') retireDelivered()
}

/** The name a key's listener is passed on under in a hand-over. */
function handoverName(key: string): string {
  return `cluster:${key}`
}

/**
 * A successor primary is ready (it serves the same listeners): accept nothing more, deliver
 * what was accepted, then retire the workers (see retireDelivered).
 */
function retire(h: Handover): void {
  // `drained` resolves once the workers of this primary (those it retires) are gone.
  const workers = Object.values(cluster.workers ?? {}).flatMap((w) => (w && !w.isDead() ? [w] : []))
  h.drainingElsewhere.push(Promise.all(workers.map((w) => new Promise((resolve) => w.process.once('exit', resolve)))))
  if (retirement !== 'no') return
  retirement = 'delivering'
  for (const listener of listeners.values()) listener.retired = true
  // Until then the dispatcher says so among its news.
  if (news === undefined || binding.dispatchRetire()) retireDelivered()
}

/**
 * Every accepted connection is in a worker (none waiting here, none unacknowledged):
 * disconnects the workers, told first to answer with `Connection: close` and to leave idle
 * keep-alive connections to their clients (a client closes one after its next response, so no
 * request races an idle-close into ECONNRESET). They exit when their connections are done; with
 * them gone, this primary exits by itself.
 */
function retireDelivered(): void {
  retirement = 'done'
  for (const worker of Object.values(cluster.workers ?? {})) {
    if (!worker || !worker.isConnected()) continue
    if (links.has(worker)) worker.process.send({ cmd: IPC_CMD, op: 'retire' })
    worker.disconnect()
  }
}
