// Hare's variadic options (flags, backlog) and the trailing `{ signal, timeout }` object.
import { argTypeError } from './errors'
import { SOCK_CLOEXEC, SOCK_NONBLOCK, FD_MAX } from './constants'
import { isSockflags, validateFlag, validateInteger, validateSignal } from './validators'

/** Brands the objects `backlog(n)` makes. */
export const kBacklog: unique symbol = Symbol('net-unix.backlog')
/** Brands the `seqpacket` option. */
export const kSeqpacket: unique symbol = Symbol('net-unix.seqpacket')

interface Backlog {
  readonly [kBacklog]: true
  readonly value: number
}

export interface Parsed {
  /** Kernel flags: the options OR-ed, with close-on-exec toggled (Hare's `f ^= SOCK_CLOEXEC`). */
  flags: number
  /** The user asked for NONBLOCK. */
  nonblock: boolean
  backlog: number
  /** The `seqpacket` option was given: `SOCK_SEQPACKET` instead of `SOCK_STREAM`. */
  seqpacket: boolean
  signal?: AbortSignal
  timeout?: number
}

interface Trailing {
  signal?: AbortSignal
  timeout?: number
}

function isPlainOptions(value: unknown): value is Trailing {
  return (
    typeof value === 'object' &&
    value !== null &&
    !(kBacklog in value) &&
    !(kSeqpacket in value) &&
    !Array.isArray(value)
  )
}

/**
 * Hare's variadic options: flags OR-ed together then close-on-exec toggled; for `listen`, the
 * last backlog wins (default 10). Promise forms may end with one `{ signal, timeout }` object.
 */
export function parseOptions(
  options: readonly unknown[],
  first: number,
  fn: string,
  accepts: { backlog?: boolean; seqpacket?: boolean; trailing?: 'signal' | 'signal+timeout' },
): Parsed {
  const out: Parsed = { flags: 0, nonblock: false, backlog: 10, seqpacket: false }
  let n = options.length
  if (accepts.trailing && n > 0 && isPlainOptions(options[n - 1])) {
    const o = options[--n] as Trailing
    validateSignal(o.signal, 'options.signal')
    out.signal = o.signal
    if (accepts.trailing === 'signal+timeout' && o.timeout !== undefined) {
      validateInteger(o.timeout, 'options.timeout', 0, FD_MAX)
      out.timeout = o.timeout
    }
  }
  let or = 0
  for (let i = 0; i < n; i++) {
    const opt = options[i]
    const name = `${fn} option ${first + i}`
    if (accepts.seqpacket && typeof opt === 'object' && opt !== null && kSeqpacket in opt) {
      out.seqpacket = true
    } else if (accepts.backlog && typeof opt === 'object' && opt !== null && kBacklog in opt) {
      out.backlog = (opt as Backlog).value
    } else if (accepts.backlog && typeof opt === 'number' && !isSockflags(opt)) {
      // A bare number here is most likely a backlog: ambiguous with a flag, so refused.
      throw argTypeError(name, `a sockflag or backlog(n) (for a backlog of ${opt}, pass backlog(${opt}))`, opt)
    } else if (typeof opt !== 'number') {
      const what = ['a sockflag', accepts.backlog && 'backlog(n)', accepts.seqpacket && 'seqpacket'].filter(Boolean)
      throw argTypeError(
        name,
        what.length > 2 ? `${what.slice(0, -1).join(', ')} or ${what.at(-1)}` : what.join(' or '),
        opt,
      )
    } else {
      or |= validateFlag(opt, name)
    }
  }
  out.nonblock = (or & SOCK_NONBLOCK) !== 0
  out.flags = or ^ SOCK_CLOEXEC
  return out
}

/** The signal of a Promise form's optional last `{ signal }` argument. */
export function asyncOptions(options: unknown): AbortSignal | undefined {
  if (options === undefined) return undefined
  if (typeof options !== 'object' || options === null) throw argTypeError('options', 'of type object', options)
  const signal = (options as Trailing).signal
  validateSignal(signal, 'options.signal')
  return signal
}
