// The plumbing every Promise form shares: the reactor's setup, AbortSignal wiring, and results
// that come back as a plain number when the operation completed at once.
import { binding } from './binding'
import { abortError, check, closedError, errnoError } from './errors'
import { U32_MAX } from './constants'

/**
 * Where readiness comes from: Node's own libuv loop, or, where libuv is not real for addons
 * (Bun stubs `uv_poll_*` with a panic; Deno's `uv_poll` fires once), a poll thread of ours that
 * wakes the JS thread through a threadsafe function, with ends of turns from `setImmediate`.
 */
export const readiness: 'libuv' | 'poll thread' =
  (process.versions as Record<string, string | undefined>).bun || 'Deno' in globalThis ? 'poll thread' : 'libuv'

/** Why the Promise API is unavailable here, or `null` when it works. */
export const asyncUnavailable: string | null = (() => {
  try {
    const scheduleTurn = readiness === 'poll thread' ? () => void setImmediate(binding.turn) : undefined
    binding.init(errnoError, closedError, scheduleTurn)
    return null
  } catch (e) {
    return (e as Error).message
  }
})()

/** Why `what` cannot wait here: `ERR_RUNTIME_UNSUPPORTED` (only if the reactor could not start). */
export function unsupported(what: string): Error {
  const e = new Error(
    `net-unix: ${what} cannot wait in this runtime (${asyncUnavailable}); the *Sync functions still work`,
  )
  return Object.assign(e, { code: 'ERR_RUNTIME_UNSUPPORTED' })
}

let lastToken = 0

/** A token no pending operation holds, for `binding.cancel`. */
export function nextToken(): number {
  lastToken = lastToken >= U32_MAX ? 1 : lastToken + 1
  return lastToken
}

/**
 * Starts a native operation: its number (result or -errno) when it completed at once, which
 * costs no promise of its own; otherwise its promise, with `signal` wired to cancel it while it
 * waits.
 */
function start<T>(signal: AbortSignal | undefined, run: (token: number) => number | Promise<T>): number | Promise<T> {
  if (!signal) return run(0)
  if (signal.aborted) throw abortError(signal)
  const token = nextToken()
  const promise = run(token)
  if (typeof promise === 'number') return promise
  const onAbort = (): void => {
    binding.cancel(token, abortError(signal))
  }
  signal.addEventListener('abort', onAbort, { once: true })
  const off = (): void => signal.removeEventListener('abort', onAbort)
  promise.then(off, off)
  return promise
}

/**
 * The one prologue of every Promise form, after its arguments are validated: refuses where the
 * runtime cannot wait, starts the operation, and checks a result that came back at once.
 * Throws (its async caller rejects) for what failed at once.
 */
export function operate<T>(
  fn: string,
  syscall: string,
  signal: AbortSignal | undefined,
  run: (token: number) => number | Promise<T>,
): number | Promise<T> {
  if (asyncUnavailable) throw unsupported(`${fn}()`)
  const r = start(signal, run)
  return typeof r === 'number' ? check(r, syscall) : r
}

/** Where a receive that completed at once leaves `[truncated, nfds, ...fds]`. */
export const got = new Int32Array(2 + binding.MAX_FDS)

/** `[bytes, truncated, ...fds]` of a receive that returned `rc` (-errno: `[rc]`), read from {@link got}. */
export function gotItems(rc: number): number[] {
  if (rc < 0) return [rc]
  const items = [rc, got[0]]
  for (let i = 0, n = got[1]; i < n; i++) items.push(got[2 + i])
  return items
}

/**
 * A receive through {@link operate}: `[bytes, truncated, ...fds]`, at once or as a promise (not
 * an async function: a receive that completed at once costs no extra microtask).
 */
export function operateRecv(
  fn: string,
  signal: AbortSignal | undefined,
  run: (token: number) => number | Promise<number[]>,
): number[] | Promise<number[]> {
  const r = operate(fn, 'recvmsg', signal, run)
  return typeof r === 'number' ? gotItems(r) : r
}
