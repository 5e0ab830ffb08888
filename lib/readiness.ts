// Readiness of one fd, for code that reads and writes with non-blocking calls of its own (the
// evented datagram socket, notifyBarrier): the core's `readyAsync` waits, on whichever backend
// the runtime has, and this keeps asking while a direction is wanted, as a level-triggered
// poll handle would.
import { binding } from './binding'
import { nextToken } from './promises'

export const READABLE = 1
export const WRITABLE = 2

/** Ticks the events of an fd to `callback(status, events)`; `status` is 0 or a negative errno. */
export class Readiness {
  readonly #fd: number
  readonly #callback: (status: number, events: number) => void
  #wanted = 0
  /** Per direction: the token of the wait in flight (-1: ready at once, reported next turn). */
  readonly #waits = new Map<number, number>()
  #closed = false

  constructor(fd: number, callback: (status: number, events: number) => void) {
    this.#fd = fd
    this.#callback = callback
  }

  /** Wants exactly `events` (READABLE | WRITABLE) from now on. */
  start(events: number): void {
    this.#wanted = events
    for (const dir of [READABLE, WRITABLE]) {
      const inFlight = this.#waits.get(dir)
      if (events & dir) {
        if (inFlight === undefined) this.#ask(dir)
      } else if (inFlight !== undefined) {
        this.#waits.delete(dir)
        if (inFlight > 0) binding.cancel(inFlight, null)
      }
    }
  }

  /** Whether waiting keeps the process alive (as `ref()`/`unref()` of a Node handle). */
  ref(on: boolean): void {
    binding.setRef(this.#fd, on)
  }

  /** Stops for good (before the fd is closed). */
  close(): void {
    this.#closed = true
    this.start(0)
  }

  #ask(dir: number): void {
    const token = nextToken()
    const r = binding.readyAsync(this.#fd, dir === WRITABLE, token)
    if (typeof r === 'number') {
      this.#waits.set(dir, -1)
      // Ready now: report it on the next turn, so a reader that stops short of EAGAIN
      // cannot starve the loop.
      setImmediate(() => this.#fire(dir, -1, r < 0 ? r : 0))
      return
    }
    this.#waits.set(dir, token)
    r.then(
      () => this.#fire(dir, token, 0),
      (err: { errno?: number } | null) => {
        if (err !== null) this.#fire(dir, token, typeof err.errno === 'number' ? err.errno : -9)
      },
    )
  }

  #fire(dir: number, token: number, status: number): void {
    if (this.#closed || this.#waits.get(dir) !== token) return
    this.#waits.delete(dir)
    if (!(this.#wanted & dir)) return
    this.#callback(status, dir)
    if (status === 0 && !this.#closed && this.#wanted & dir && !this.#waits.has(dir)) this.#ask(dir)
  }
}
