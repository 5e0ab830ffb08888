// The worker half of net-unix/cluster. Loaded into every worker by the primary (`--require` in
// execArgv), whatever file the worker runs. It takes over `cluster._getServer`, the one call
// through which `net` (and so http, https, express, ...) asks the primary for a listener, and
// gives the server a stand-in handle whose connections arrive as fds on the private channel.
// What it does not handle (UDP, `listen({ fd })`, `reusePort`) goes to node:cluster's own path.
import nodeCluster = require('node:cluster')
import net = require('node:net')
import path = require('node:path')
import { binding } from '../binding'
import { EAGAIN, ENOBUFS } from '../constants'
import { Readiness, READABLE, WRITABLE } from '../readiness'
import {
  ACK,
  CONNS,
  CONTROL,
  ENV_FD,
  IPC_CMD,
  MAX_MESSAGE,
  REFUSED_FULL,
  REFUSED_GONE,
  ackMessage,
  controlBody,
  resultRoom,
  u32,
} from './wire'

type Callback = (errno: number, handle: StandIn | null) => void
interface Query {
  address?: string | null
  port?: number
  addressType?: number | string
  fd?: number
  flags?: number
  backlog?: number
  reusePort?: boolean
  readableAll?: boolean
  writableAll?: boolean
}
interface ServerLike extends net.Server {
  _connections: number
  _getServerData?: () => unknown
  _setServerData?: (data: unknown) => void
}
interface WorkerCluster {
  isWorker: boolean
  worker: { state: string } | null
  _getServer: (obj: ServerLike, options: Query, cb: Callback) => void
}
/** What `net` keeps as `server._handle`: it calls listen, close, ref, unref and getsockname. */
interface StandIn {
  onconnection?: (err: number, handle: unknown) => void
  close(): void
  listen(backlog?: number): number
  ref(): void
  unref(): void
  getsockname?: (out: object) => number
}
interface Served {
  keyId: number
  server: ServerLike
  handle: StandIn
  /** The server refused a connection at its maxConnections; the primary waits for 'room'. */
  full: boolean
  /** The class of Node's handle for this key's connections (TCP or Pipe), once one was made. */
  handleClass?: new (type: number) => ConnectionHandle
}

interface ConnectionHandle {
  open(fd: number): number
  close(): void
}

/** `TCPConstants.SOCKET` and `PipeConstants.SOCKET`: a connection's handle, not a server's. */
const SOCKET = 0

const cluster = nodeCluster as unknown as WorkerCluster
const INSTALLED = Symbol.for('net-unix.cluster.worker')
const READ_BATCH = 16
/** Messages read per readiness event before yielding to the loop. */
const READS_PER_EVENT = 16

let channel = -1
let readiness: Readiness | undefined
let scratch: Buffer
let got: Int32Array
let refs = 0
const served = new Map<number, Served>() // by the primary's key id
const listens = new Map<number, (reply: Record<string, unknown>) => void>()
const indexes = new Map<string, { next: number; used: Set<number> }>()
let requests = 0
/** Acks that could not be sent yet, and the connections held back until they are. */
let unsentAcks: Uint8Array[] = []
let heldBack: [Served, number][] = []
let ownerSymbol: symbol | undefined

/**
 * Installs the worker half when this process is a cluster worker forked by net-unix/cluster's
 * primary (the channel's fd number in the environment); does nothing otherwise. Idempotent,
 * also across two copies of the package.
 */
export function installWorker(): boolean {
  const g = globalThis as Record<symbol, unknown>
  if (g[INSTALLED]) return true
  const raw = process.env[ENV_FD]
  if (!cluster.isWorker || raw === undefined) return false
  // Not for this worker's own children (as node:cluster deletes NODE_UNIQUE_ID).
  delete process.env[ENV_FD]
  const inherited = Number(raw)
  if (!Number.isInteger(inherited) || inherited < 3) return false
  // Only a socket made by our parent: the primary's socketpair.
  const cred = binding.peercred(inherited)
  if (cred.length !== 3 || Number(cred[0]) !== process.ppid) return false
  // The inherited number is not close-on-exec (dup2 at spawn): keep a close-on-exec copy, so
  // this worker's children cannot hold the channel open after it dies.
  channel = binding.dup(inherited)
  binding.close(inherited)
  if (channel < 0) return false
  g[INSTALLED] = true
  scratch = Buffer.allocUnsafe(MAX_MESSAGE * READ_BATCH)
  got = new Int32Array(resultRoom(READ_BATCH, binding.MAX_FDS))
  readiness = new Readiness(channel, onReady)
  readiness.ref(false)
  readiness.start(READABLE)

  const original = cluster._getServer
  cluster._getServer = function (obj, options, cb) {
    if (!ours(options)) return original.call(this, obj, options, cb)
    return getServer(obj, options, cb)
  }
  wrapDisconnect()
  process.on('internalMessage', (m: { cmd?: unknown; op?: unknown } | null) => {
    if (m !== null && typeof m === 'object' && m.cmd === IPC_CMD && m.op === 'retire') retire()
  })
  return true
}

/** A successor primary took over: see {@link retire}. */
let retiring = false

/**
 * The primary hands over to a successor and disconnects this worker next (on the same IPC
 * channel, so in that order): every response from now on says `Connection: close`, and the
 * disconnect leaves idle keep-alive connections open, so each closes after the response to its
 * client's next request (or at `keepAliveTimeout`) instead of being closed under a request on
 * its way. The client's next connection reaches the successor's workers.
 */
function retire(): void {
  if (retiring) return
  retiring = true
  for (const s of served.values()) {
    s.server.prependListener('request', (_req: unknown, res: { shouldKeepAlive: boolean }) => {
      res.shouldKeepAlive = false
    })
  }
}

/** TCP and Unix-path listeners; node:cluster keeps UDP, `listen({ fd })` and `reusePort`. */
function ours(q: Query): boolean {
  if (q.reusePort) return false
  if (q.fd !== undefined && q.fd !== null && q.fd >= 0) return false
  return q.addressType === 4 || q.addressType === 6 || q.addressType === -1
}

function getServer(obj: ServerLike, options: Query, cb: Callback): void {
  let address = options.address
  // As node:cluster: a relative socket path means the same file in every worker.
  if ((options.port ?? -1) < 0 && typeof address === 'string') address = path.resolve(address)
  const indexesKey = [address, options.port, options.addressType, options.fd].join(':')
  let set = indexes.get(indexesKey)
  if (set === undefined) indexes.set(indexesKey, (set = { next: 0, used: new Set() }))
  const index = set.next++
  set.used.add(index)
  const release = (): void => {
    const s = indexes.get(indexesKey)
    if (s === undefined) return
    s.used.delete(index)
    if (s.used.size === 0) indexes.delete(indexesKey)
  }
  const id = ++requests
  const query = {
    op: 'listen',
    id,
    address,
    port: options.port,
    addressType: options.addressType,
    fd: options.fd,
    flags: options.flags,
    backlog: options.backlog,
    readableAll: options.readableAll,
    writableAll: options.writableAll,
    index,
    data: typeof obj._getServerData === 'function' ? obj._getServerData() : null,
  }
  listens.set(id, (reply) => {
    if (typeof obj._setServerData === 'function') obj._setServerData(reply.data)
    const errno = reply.errno as number
    if (errno) {
      release()
      cb(errno, null)
      return
    }
    cb(0, standIn(obj, reply, release))
  })
  request(query)

  obj.once('listening', () => {
    if (!indexes.get(indexesKey)?.used.has(index)) return // closed before it listened
    const worker = cluster.worker
    if (worker) worker.state = 'listening'
    const at = obj.address()
    // node:cluster's own message: its primary emits 'listening' on the worker and the cluster.
    if (process.connected && process.send) {
      process.send({
        cmd: 'NODE_CLUSTER',
        act: 'listening',
        addressType: options.addressType,
        address,
        port: (at !== null && typeof at === 'object' && at.port) || options.port,
        fd: options.fd,
      })
    }
  })
}

/** The handle `net` keeps as `server._handle`: connections come from the primary. */
function standIn(server: ServerLike, reply: Record<string, unknown>, release: () => void): StandIn {
  const keyId = reply.keyId as number
  let open = true
  let refd = false
  const handle: StandIn = {
    close() {
      // net treats this as synchronous; connections still in flight come back refused.
      if (!open) return
      open = false
      handle.unref()
      served.delete(keyId)
      release()
      request({ op: 'close', keyId })
    },
    listen() {
      return 0 // the primary listens, with the first worker's backlog
    },
    ref() {
      if (refd || !open) return
      refd = true
      if (refs++ === 0) readiness?.ref(true)
    },
    unref() {
      if (!refd) return
      refd = false
      if (--refs === 0) readiness?.ref(false)
    },
  }
  if (reply.sockname) {
    const sockname = reply.sockname as object
    handle.getsockname = (out) => {
      if (open) Object.assign(out, sockname)
      return 0
    }
  }
  handle.ref()
  served.set(keyId, { keyId, server, handle, full: false })
  return handle
}

/** A request to the primary, on node:cluster's IPC channel (lost only if that is gone). */
function request(body: object): void {
  if (process.connected && process.send) process.send({ cmd: IPC_CMD, ...body })
}

function send(message: Uint8Array): void {
  if (channel < 0) return
  if (unsentAcks.length === 0) {
    const rc = binding.sendtoSync(channel, message, null, [], [], false, true)
    if (rc >= 0) return
    if (rc !== EAGAIN && rc !== ENOBUFS) return // the primary is gone: the IPC 'disconnect' follows
  }
  unsentAcks.push(message)
  readiness?.start(READABLE | WRITABLE)
}

function onReady(status: number, events: number): void {
  if (status < 0 || channel < 0) return
  if (events & WRITABLE) flushUnsent()
  if (events & READABLE) read()
}

function flushUnsent(): void {
  while (unsentAcks.length > 0) {
    const rc = binding.sendtoSync(channel, unsentAcks[0], null, [], [], false, true)
    if (rc === EAGAIN || rc === ENOBUFS) return
    unsentAcks.shift()
  }
  readiness?.start(READABLE)
  const held = heldBack
  heldBack = []
  for (const [s, fd] of held) deliver(s, fd)
}

function read(): void {
  for (let r = 0; r < READS_PER_EVENT && channel >= 0; r++) {
    const n = binding.recvManyNow(channel, scratch, MAX_MESSAGE, binding.MAX_FDS, false, false, got)
    if (n === EAGAIN) return
    if (n < 0) return shut()
    // One ack for the whole batch, sent before any connection of it is touched: until the
    // primary has it, the primary may give these connections to another worker if we die.
    let taken = 0
    const refused: number[] = []
    const accepted: [Served, number][] = []
    for (let i = 0, at = 1; i < n; i++) {
      const bytes = got[at]
      const nfds = got[at + 2]
      const data = scratch.subarray(i * MAX_MESSAGE, i * MAX_MESSAGE + bytes)
      const fds = Array.from(got.subarray(at + 3, at + 3 + nfds))
      at += 3 + nfds
      if (bytes === 0) {
        shut() // the primary is gone
        break
      }
      if (data[0] === CONNS) {
        const keyId = u32(data, 4)
        const count = u32(data, 8)
        const s = served.get(keyId)
        let room = s ? roomIn(s.server) : 0
        for (let k = 0; k < count; k++) {
          const fd = k < fds.length ? fds[k] : -1 // fewer arrived (our fd limit): refused
          if (s === undefined || fd < 0) {
            refused.push(taken + k, REFUSED_GONE)
          } else if (room <= 0) {
            refused.push(taken + k, REFUSED_FULL)
            s.full = true
          } else {
            room--
            accepted.push([s, fd])
            continue
          }
          if (fd >= 0) binding.close(fd)
        }
        taken += count
      } else if (data[0] === CONTROL) {
        for (const fd of fds) binding.close(fd)
        onControl(controlBody(data))
      } else {
        for (const fd of fds) binding.close(fd)
      }
    }
    if (taken > 0) send(ackMessage(taken, refused))
    if (unsentAcks.length > 0) heldBack.push(...accepted)
    else for (const [s, fd] of accepted) deliver(s, fd)
    if (n < READ_BATCH) return
  }
}

/** How many more connections `server` takes now (maxConnections, as node:cluster counts it). */
function roomIn(server: ServerLike): number {
  return server.maxConnections ? server.maxConnections - server._connections : Infinity
}

/** Hands `fd` to the server through the handle `net` gave its connection callback. */
function deliver(s: Served, fd: number): void {
  if (served.get(s.keyId) !== s || s.handle.onconnection === undefined) {
    // Closed between the ack and now (a listener of an earlier connection closed it).
    binding.close(fd)
    return
  }
  const handle = handleFor(s, fd)
  if (handle === undefined) return
  s.handle.onconnection.call(s.handle, 0, handle)
  if (s.server.maxConnections) watchRoom(s, handle)
}

/**
 * A handle of Node's own for `fd`, as net's `createHandle` makes it. The first of a key is made
 * the public way (a throwaway `net.Socket`, whose handle net's onconnection gives its real
 * owner); it tells the handle's class, and the rest are made with it directly: the throwaway
 * socket cost 30 µs a connection, the handle alone 2.
 */
function handleFor(s: Served, fd: number): ConnectionHandle | undefined {
  if (s.handleClass === undefined) {
    const handle = (
      new net.Socket({ fd, readable: false, writable: false }) as unknown as { _handle: ConnectionHandle }
    )._handle
    s.handleClass = handle.constructor as Served['handleClass']
    return handle
  }
  const handle = new s.handleClass(SOCKET)
  if (handle.open(fd) !== 0) {
    // Not a socket of this key's kind (never, from our primary): the connection is lost.
    handle.close()
    binding.close(fd)
    return undefined
  }
  return handle
}

/** At maxConnections, tells the primary when a connection of `s` closes and leaves room. */
function watchRoom(s: Served, handle: object): void {
  ownerSymbol ??= Object.getOwnPropertySymbols(handle).find((sym) => sym.description === 'owner_symbol')
  const socket = ownerSymbol ? (handle as Record<symbol, net.Socket | undefined>)[ownerSymbol] : undefined
  if (!socket || typeof socket.once !== 'function') return
  socket.once('close', () => {
    if (!s.full || roomIn(s.server) <= 0 || served.get(s.keyId) !== s) return
    s.full = false
    request({ op: 'room', keyId: s.keyId })
  })
}

function onControl(body: Record<string, unknown>): void {
  if (body.op === 'listening') {
    const done = listens.get(body.id as number)
    listens.delete(body.id as number)
    done?.(body)
  }
}

/** The primary closed its end: no more connections, and nothing of ours holds the loop. */
function shut(): void {
  if (channel < 0) return
  readiness?.close()
  binding.close(channel)
  channel = -1
}

/**
 * `worker.disconnect()` (from either side) ends in `process.disconnect()` once node:cluster has
 * closed its own servers; ours are closed first, and the channel is given up when they have
 * drained, as node:cluster waits for its servers' 'close'.
 */
function wrapDisconnect(): void {
  const real = process.disconnect
  if (typeof real !== 'function') return
  process.disconnect = function (this: NodeJS.Process) {
    const worker = cluster.worker
    if (served.size === 0 || worker?.state === 'destroying') return real.call(this)
    let waiting = 1
    const done = (): void => {
      if (--waiting === 0 && process.connected && process.channel) real.call(process)
    }
    for (const s of [...served.values()]) {
      waiting++
      // Retiring: net's close, not http's, which would close idle keep-alive connections.
      if (retiring) net.Server.prototype.close.call(s.server, done)
      else s.server.close(done)
    }
    done()
  }
}
