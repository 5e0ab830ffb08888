// Error classes and constructors, in the shapes of Node's lib/internal/errors.js.
import { getSystemErrorName } from 'node:util'

/**
 * Thrown (or, by Promise forms, rejected with) for an invalid socket address: empty, containing
 * a NUL byte (other than the leading one of an abstract name), or longer than 107 bytes of
 * UTF-8. Hare's `net::unix::invalid`.
 */
export class invalid extends Error {
  /** Always `'ERR_INVALID_UNIX_PATH'`. */
  readonly code = 'ERR_INVALID_UNIX_PATH'
  /** The address that was refused. */
  readonly address: string
  constructor(address: string, reason: string) {
    super(`Invalid Unix socket address ${JSON.stringify(address)}: ${reason}`)
    this.name = 'invalid'
    this.address = address
  }
}

/** The rejection of an aborted operation; `cause` is the signal's reason (as in `fs.promises`). */
export class AbortError extends Error {
  /** Always `'ABORT_ERR'`. */
  readonly code = 'ABORT_ERR'
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AbortError'
  }
}

/** A kernel error, shaped like Node's `ErrnoException`. */
export interface ErrnoError extends Error {
  /** `'ENOENT'`, `'ECONNREFUSED'`, … */
  code: string
  /** The negative errno, as Node reports it (`-111`). */
  errno: number
  /** The system call that failed (`'connect'`, `'bind'`, `'sendmsg'`, …). */
  syscall: string
  /** The socket address involved, when there is one. */
  address?: string
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (value === undefined) return 'undefined'
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name
    return name ? `an instance of ${name}` : 'an object'
  }
  let shown = String(value)
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`
  if (typeof value === 'string') shown = `'${shown}'`
  return `type ${typeof value} (${shown})`
}

export function argTypeError(name: string, expected: string, value: unknown): TypeError {
  const e = new TypeError(`The "${name}" argument must be ${expected}. Received ${describe(value)}`)
  return Object.assign(e, { code: 'ERR_INVALID_ARG_TYPE' })
}

export function outOfRange(name: string, range: string, value: unknown): RangeError {
  const e = new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${String(value)}`)
  return Object.assign(e, { code: 'ERR_OUT_OF_RANGE' })
}

/** Node's ErrnoException shape, from a negative errno returned by the native layer. */
export function errnoError(errno: number, syscall: string, address?: string): ErrnoError {
  const code = getSystemErrorName(errno)
  const e = new Error(address === undefined ? `${syscall} ${code}` : `${syscall} ${code} ${address}`) as ErrnoError
  e.code = code
  e.errno = errno
  e.syscall = syscall
  if (address !== undefined) e.address = address
  Error.captureStackTrace(e, errnoError)
  return e
}

export function closedError(): Error {
  return Object.assign(new Error('Socket is closed'), { code: 'ERR_SOCKET_CLOSED' })
}

export function abortError(signal: AbortSignal): AbortError {
  return new AbortError(undefined, { cause: signal.reason })
}

/** Returns `rc` when it is not an error, throws the errno error otherwise. */
export function check(rc: number, syscall: string, address?: string): number {
  if (rc < 0) throw errnoError(rc, syscall, address)
  return rc
}
