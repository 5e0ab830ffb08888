// Argument validators, in the shapes of Node's lib/internal/validators.js.
import { argTypeError, outOfRange } from './errors'
import { FD_MAX, SOCK_CLOEXEC, SOCK_NONBLOCK } from './constants'

const KNOWN_FLAGS = SOCK_CLOEXEC | SOCK_NONBLOCK

export function validateInteger(value: unknown, name: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number') throw argTypeError(name, 'of type number', value)
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value)
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value)
}

export function validateFd(fd: unknown, name = 'sock'): asserts fd is number {
  validateInteger(fd, name, 0, FD_MAX)
}

/** Whether every item is an fd number (the check alone, for callers that name arguments lazily). */
export function allFds(fds: readonly unknown[]): boolean {
  for (let i = 0; i < fds.length; i++) {
    const fd = fds[i]
    if (!Number.isInteger(fd) || (fd as number) < 0 || (fd as number) > FD_MAX) return false
  }
  return true
}

/** Every item an fd; the argument name is only built for the error (this runs per message). */
export function validateFds(fds: readonly unknown[], name: string): void {
  if (allFds(fds)) return
  for (let i = 0; i < fds.length; i++) validateFd(fds[i], `${name}[${i}]`)
}

/** A combination of sockflag values and nothing else. */
export function isSockflags(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && (value & ~KNOWN_FLAGS) === 0
}

export function validateFlag(value: unknown, name: string): number {
  if (typeof value !== 'number') throw argTypeError(name, 'a sockflag', value)
  if (!isSockflags(value)) throw outOfRange(name, 'a combination of sockflag values', value)
  return value
}

export function validateSignal(signal: unknown, name: string): asserts signal is AbortSignal | undefined {
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw argTypeError(name, 'an instance of AbortSignal', signal)
  }
}

export function validateFunction(value: unknown, name: string): asserts value is (...args: never[]) => unknown {
  if (typeof value !== 'function') throw argTypeError(name, 'of type function', value)
}

/** A Uint8Array over the same memory as any ArrayBufferView or ArrayBuffer. */
export function bytesOf(buf: unknown, name: string): Uint8Array {
  if (buf instanceof Uint8Array) return buf
  if (ArrayBuffer.isView(buf)) return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
  if (buf instanceof ArrayBuffer || buf instanceof SharedArrayBuffer) return new Uint8Array(buf)
  throw argTypeError(name, 'an instance of Buffer, TypedArray, DataView or ArrayBuffer', buf)
}
