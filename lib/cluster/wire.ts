// The private channel between the primary and one worker: a SOCK_SEQPACKET socketpair, one end
// given to the worker at fork as an extra stdio fd. Every message is one record; the first byte
// says what it is. Connections go down with their fds, acknowledgements come back in batches,
// and the primary's answers to listen requests are JSON, rare enough not to matter.
//
//   CONNS    primary -> worker  [1, 0, 0, 0, keyId u32, count u32] + `count` fds (SCM_RIGHTS)
//   ACK      worker -> primary  [2, 0, 0, 0, taken u32, refusals u32, (offset u32, reason u32)...]
//            `taken` more fds (in sending order) were dealt with; the refused ones (offset from
//            the first of them) go back to the primary, which still holds a copy of each.
//   CONTROL  primary -> worker  [3] + JSON
//
// The worker's requests (listen, close, room) go up node:cluster's IPC channel as internal
// messages (`cmd: IPC_CMD`): the primary need not watch the channel for them, and so reads the
// acknowledgements when it suits it (see crates/net-unix/src/dispatch.rs, which writes CONNS
// and reads ACK in Rust: keep the two in step).

export const CONNS = 1
export const ACK = 2
export const CONTROL = 3

/** Why a worker gave a connection back. */
export const REFUSED_GONE = 1 // no server of that key (closed meanwhile), or the fd never arrived
export const REFUSED_FULL = 2 // the server is at its maxConnections

/** The `cmd` of the worker's requests on the IPC channel (`NODE_` makes them internal). */
export const IPC_CMD = 'NODE_NET_UNIX_CLUSTER'

/** The environment variable that tells a worker which of its fds is the channel. */
export const ENV_FD = 'NET_UNIX_CLUSTER_FD'

/** The largest message either side reads: a CONNS header, an ACK of a full batch, or JSON. */
export const MAX_MESSAGE = 65536

/** An ACK: `taken` fds dealt with, `refused` as [offset, reason] pairs. */
export function ackMessage(taken: number, refused: readonly number[]): Uint8Array {
  const b = new Uint8Array(12 + refused.length * 4)
  const v = new DataView(b.buffer)
  b[0] = ACK
  v.setUint32(4, taken, true)
  v.setUint32(8, refused.length / 2, true)
  for (let i = 0; i < refused.length; i++) v.setUint32(12 + i * 4, refused[i], true)
  return b
}

/** A CONTROL message. */
export function controlMessage(body: object): Uint8Array {
  const json = Buffer.from(JSON.stringify(body), 'utf8')
  const b = Buffer.allocUnsafe(1 + json.length)
  b[0] = CONTROL
  json.copy(b, 1)
  return b
}

/** The JSON of a CONTROL message. */
export function controlBody(data: Buffer): Record<string, unknown> {
  return JSON.parse(data.toString('utf8', 1)) as Record<string, unknown>
}

/** A message's u32 at `at`. */
export function u32(data: Buffer, at: number): number {
  return data.readUInt32LE(at)
}

/** Room in a recvManyNow result array for `n` messages of up to `maxFds` fds. */
export function resultRoom(n: number, maxFds: number): number {
  return 1 + n * (3 + maxFds)
}
