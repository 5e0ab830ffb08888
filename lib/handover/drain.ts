// The old side of a hand-over, after the successor is ready: stop accepting without closing the
// shared accept queue (or unlinking a Unix path), move idle HTTP keep-alive connections to the
// successor, let requests in flight finish here, and count what the `drain` deadline destroyed.
import * as http from 'node:http'
import * as net from 'node:net'
import * as tls from 'node:tls'
import { binding } from '../binding'
import { EAGAIN } from '../constants'

/** What `drained` resolves with. */
export interface Drained {
  /** Connections that ended here on their own (answered, then closed) while draining. */
  finished: number
  /** Connections still open at the `drain` deadline, destroyed then. */
  destroyed: number
  /** Idle keep-alive connections handed to the successor. */
  handedOver: number
}

/** Sends one connection fd to the successor, synchronously; false when it could not. */
export type SendConnection = (name: string, fd: number) => boolean

/** The connections of one server, from its first 'connection' on. */
export class Tracked {
  readonly sockets = new Set<net.Socket>()
  constructor(
    readonly server: net.Server,
    readonly name: string,
  ) {
    server.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket)
      socket.once('close', () => this.sockets.delete(socket))
    })
  }
}

/** Node's own idle set (`closeIdleConnections` uses it): parsers between two messages. */
function idleSockets(server: net.Server): Set<net.Socket> {
  const key = Object.getOwnPropertySymbols(server).find((s) => s.description === 'http.server.connections')
  const list = key && (server as unknown as Record<symbol, { idle?: () => { socket?: net.Socket }[] }>)[key]
  const out = new Set<net.Socket>()
  if (!list || typeof list.idle !== 'function') return out
  for (const parser of list.idle()) if (parser.socket) out.add(parser.socket)
  return out
}

/** Plain HTTP (not TLS: its state cannot cross): the only servers whose connections move. */
function movable(server: net.Server): boolean {
  return server instanceof http.Server && !(server instanceof tls.Server)
}

type Handle = { fd?: number }
const handleOf = (s: net.Socket): Handle | undefined => (s as unknown as { _handle?: Handle })._handle
const responseOf = (s: net.Socket): { finished?: boolean; writableEnded?: boolean; headersSent?: boolean } | null =>
  (s as unknown as { _httpMessage?: never })._httpMessage ?? null

/**
 * Stops every server accepting: `net.Server.prototype.close` closes only this process's copy of
 * the listening socket (the successor holds another, so the accept queue lives on; an
 * fd-adopted pipe has no path for libuv to unlink), and skips `http.Server.close`'s
 * `closeIdleConnections`, which would race keep-alive clients into `ECONNRESET`.
 */
export function stopAccepting(servers: readonly net.Server[]): void {
  for (const server of servers) if (server.listening) net.Server.prototype.close.call(server)
}

/**
 * Drains the tracked connections: moves the idle ones (when `send` is given), makes every
 * other one close after its response, and resolves once none is left or at `deadline` ms.
 */
export function drain(tracked: readonly Tracked[], send: SendConnection | null, deadline: number): Promise<Drained> {
  const result: Drained = { finished: 0, destroyed: 0, handedOver: 0 }
  const live = new Set<net.Socket>()
  let timer: NodeJS.Timeout | undefined
  let resolveDone!: (d: Drained) => void
  const done = new Promise<Drained>((resolve) => (resolveDone = resolve))
  const settleIfEmpty = (): void => {
    if (live.size > 0) return
    clearTimeout(timer)
    resolveDone(result)
  }

  // Whether the connection's next request has begun (parsed or still in the kernel): then it
  // stays here. Checked and sent in one synchronous run, so libuv reads nothing in between.
  const tryMove = (t: Tracked, socket: net.Socket, idle: Set<net.Socket>): boolean => {
    if (!send || !movable(t.server) || socket.destroyed || !idle.has(socket)) return false
    const res = responseOf(socket)
    if (res && !res.finished && !res.writableEnded) return false
    const fd = handleOf(socket)?.fd
    if (typeof fd !== 'number' || fd < 0) return false
    if (binding.hasInput(fd) !== EAGAIN) return false // bytes (or EOF) waiting: answer or close here
    if (!send(t.name, fd)) return false
    moved.add(socket)
    // Destroy without shutdown: the successor's copy keeps the connection open.
    socket.destroy()
    return true
  }
  const moved = new WeakSet<net.Socket>()

  for (const t of tracked) {
    const idle = idleSockets(t.server)
    for (const socket of [...t.sockets]) {
      if (socket.destroyed) continue
      live.add(socket)
      socket.once('close', () => {
        if (!live.delete(socket)) return
        if (moved.has(socket)) result.handedOver++
        else result.finished++
        settleIfEmpty()
      })
      if (tryMove(t, socket, idle)) continue
      // Stays here: the response in flight (or the next, if its request has begun) closes it.
      const res = responseOf(socket) as { headersSent?: boolean; shouldKeepAlive?: boolean } | null
      if (res && !res.headersSent) res.shouldKeepAlive = false
      else if (res) {
        // Headers already promised keep-alive: once answered, move it if it is idle then.
        // If its next request has begun by then, that request is answered with Connection: close.
        ;(res as unknown as NodeJS.EventEmitter).once('finish', () =>
          setImmediate(() => {
            if (socket.destroyed || tryMove(t, socket, idleSockets(t.server))) return
            const fd = handleOf(socket)?.fd
            const quiet = typeof fd === 'number' && fd >= 0 && binding.hasInput(fd) === EAGAIN
            if (quiet && idleSockets(t.server).has(socket)) socket.destroySoon() // nowhere to move it
          }),
        )
      } else if (!send && movable(t.server) && idle.has(socket)) {
        // `connections: false`: what http.Server.close() does with idle connections.
        socket.destroy()
      }
      // A plain net server's connections: the application's protocol decides when to close.
    }
    // Requests that begin while draining are answered with `Connection: close`.
    t.server.prependListener('request', (_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.shouldKeepAlive = false
    })
  }
  timer = setTimeout(() => {
    for (const socket of live) {
      live.delete(socket)
      result.destroyed++
      socket.destroy()
    }
    settleIfEmpty()
  }, deadline)
  timer.unref()
  settleIfEmpty()
  return done
}
