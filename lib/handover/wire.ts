// The hand-over wire format, version 1: the one place that knows its bytes (README "Hand-over:
// the protocol" says the same for other languages). One frame per SOCK_SEQPACKET message:
//
//   bytes 0-3  magic "NUHO"
//   byte  4    protocol version (1)
//   byte  5    frame type (below)
//   bytes 6-   a UTF-8 JSON object (the body; "{}" when there is nothing to say)
//   SCM_RIGHTS the fds the frame describes (FD and CONN frames: exactly one)
//
// The header layout and the ERROR type (255) never change between versions, so a peer speaking
// another version can always read why it was refused.

export const MAGIC = Buffer.from('NUHO', 'latin1')
export const VERSION = 1
/** The most bytes a frame may have; a longer one is a protocol error. */
export const MAX_FRAME = 64 * 1024

export const enum Frame {
  /** successor → predecessor: `{ pid }`; first frame of a hand-over. */
  HELLO = 1,
  /** predecessor → successor: `{ name, kind: 'listener' | 'fd', family?: 'tcp' | 'unix' }` + 1 fd. */
  FD = 2,
  /** predecessor → successor: `{ generation, count }`; every FD frame was sent. */
  END = 3,
  /** successor → predecessor: `{}`; the successor called `ready()`. */
  READY = 4,
  /** predecessor → successor: `{}`; the predecessor stopped accepting. */
  STOPPED = 5,
  /** predecessor → successor: `{ name }` + 1 fd: an idle keep-alive connection of listener `name`. */
  CONN = 6,
  /** predecessor → successor: `{ connections }`; nothing more follows, the predecessor closes. */
  DONE = 7,
  /** either way: `{ code, message, versions? }`; the sender closes after it. */
  ERROR = 255,
}

export interface Decoded {
  version: number
  type: number
  body: Record<string, unknown>
}

export function encode(type: Frame, body: object = {}): Buffer {
  const json = Buffer.from(JSON.stringify(body), 'utf8')
  const head = Buffer.alloc(6)
  MAGIC.copy(head, 0)
  head[4] = VERSION
  head[5] = type
  return Buffer.concat([head, json])
}

/** A frame's header and body, or `null` for bytes that are not a frame (any version). */
export function decode(data: Buffer): Decoded | null {
  if (data.length < 6 || !data.subarray(0, 4).equals(MAGIC)) return null
  let body: unknown = {}
  if (data.length > 6) {
    try {
      body = JSON.parse(data.subarray(6).toString('utf8'))
    } catch {
      return null
    }
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null
  return { version: data[4], type: data[5], body: body as Record<string, unknown> }
}
