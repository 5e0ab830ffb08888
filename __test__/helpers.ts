// Shared by the tests: fd accounting, unique addresses, child processes.
import type { ExecutionContext } from 'ava'
import { execFileSync, type SpawnOptions } from 'node:child_process'
import { existsSync, fstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { addvector, newmsg, sendmsgSync, socketpair, UnixSocket } from '../index.js'
import { run, start, type ChildResult, type Started } from './harness.cjs'

// The part bench/peer.js and the fixtures share (plain CommonJS, no tsx there).
export {
  abstractName,
  fdFlags,
  fdMode,
  msgOf,
  O_CLOEXEC,
  O_NONBLOCK,
  run,
  start,
  tmpPath,
  type ChildResult,
  type Started,
} from './harness.cjs'

/** Open fds of this process, less the cache files the tsx loader opens on its own schedule. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return !readlinkSync(`/proc/self/fd/${fd}`).includes('/tsx-')
    } catch {
      return false // the directory handle of this very listing, already closed
    }
  }).length
}

/**
 * Resolves once a whole loop turn has ended: net-unix closes a socket's idle watcher (and its
 * dup of the fd) at the end of the turn in which its last operation settled.
 */
export function turnEnded(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)))
}

/** The repo root, for children that `require` the package. */
export const ROOT = join(__dirname, '..')

/** Node 22's binary when installed (`node scripts/node-majors.js 22`; CI does), for cross-major steps. */
export const NODE22 = [
  process.env.NET_UNIX_NODE22,
  join(process.env.HOME ?? '/root', '.cache/net-unix-nodes/node_modules/node22/bin/node'),
].find((p) => p && existsSync(p))

/** Runs a Node script (CommonJS source text) that can `require('net-unix')` via NET_UNIX. */
export function runNode(source: string, options: SpawnOptions = {}): Promise<ChildResult> {
  const env = { ...process.env, NET_UNIX: ROOT, ...(options.env ?? {}) }
  return run(process.execPath, ['-e', source], { ...options, env })
}

/** Runs a Python script given as source text. */
export function runPython(source: string, options: SpawnOptions = {}): Promise<ChildResult> {
  return run('python3', ['-c', source], options)
}

/** Starts a Python script given as source text. */
export function startPython(source: string, options: SpawnOptions = {}): Started {
  return start('python3', ['-c', source], options)
}

/** Starts a Node script (CommonJS source text) that can `require(process.env.NET_UNIX)`. */
export function startNode(source: string, options: SpawnOptions = {}): Started {
  const env = { ...process.env, NET_UNIX: ROOT, ...(options.env ?? {}) }
  return start(process.execPath, ['-e', source], { ...options, env })
}

/** The path of a file under `__test__/fixtures/`. */
export function fixture(name: string): string {
  return join(__dirname, 'fixtures', name)
}

/**
 * Starts a fixture script with `args` as its arguments: a `.py` one with python3, any other with
 * Node and NET_UNIX set (so it can `require(process.env.NET_UNIX)`).
 */
export function startFixture(name: string, args: string[] = [], options: SpawnOptions = {}): Started {
  if (name.endsWith('.py')) return start('python3', [fixture(name), ...args], options)
  const env = { ...process.env, NET_UNIX: ROOT, ...(options.env ?? {}) }
  return start(process.execPath, [fixture(name), ...args], { ...options, env })
}

/** Runs a fixture script (see {@link startFixture}) to completion and collects its output. */
export function runFixture(name: string, args: string[] = [], options: SpawnOptions = {}): Promise<ChildResult> {
  return startFixture(name, args, options).done
}

/**
 * `promise`, or a rejection naming `what` once `ms` have passed: a failure guard for operations
 * that would otherwise hang until ava's own timeout. The timer is cleared when `promise` settles.
 */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/** Resolves once `condition()` holds, polling every millisecond; rejects naming `what` after `ms`. */
export async function waitUntil(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what}: not true within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

/** The inode of the open file behind `fd`: tells two fds of different files apart. */
export function inode(fd: number): number {
  return fstatSync(fd).ino
}

/** The system call number a thread is blocked in (`/proc/<pid>/syscall`), or -1 when running. */
export function blockedIn(pid: number): number {
  try {
    const first = readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0]
    return first === 'running' ? -1 : Number(first)
  } catch {
    return -1
  }
}
/** x86_64 system call numbers, for {@link blockedIn}. */
export const SYS = { sendto: 44, sendmsg: 46, recvmsg: 47, accept4: 288 } as const

/** Bytes `fd` can send before a non-blocking send says `EAGAIN`: fills its buffer with sendmsgSync. */
export function fillSocket(fd: number): number {
  const m = newmsg()
  addvector(m, Buffer.alloc(65536, 'f'))
  let total = 0
  for (;;) {
    try {
      total += sendmsgSync(fd, m)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return total
      throw e
    }
  }
}

/**
 * Open fds counted now, after a loop turn has ended (idle watchers and their dups reaped), and a
 * check for later: `await fds(t, n, what)` asserts that `n` more fds are open than at the start.
 * Take it while sockets are open, after error paths and with no listener, not only at the end:
 * a leak that `destroy()` or `close()` cleans up shows only then.
 */
export async function fdBaseline(): Promise<(t: ExecutionContext, open: number, what: string) => Promise<void>> {
  await turnEnded()
  const base = fdCount()
  return async (t, open, what) => {
    await turnEnded()
    t.is(fdCount() - base, open, `${what}: fds open beyond the ${base} at the start`)
  }
}

/**
 * A peer whose uid and gid differ from each other and from root's: the suite runs as root
 * (uid = gid = 0), where a uid/gid swap does not show.
 */
export const OTHER = { uid: 1000, gid: 2000 } as const

let python: string | undefined
/** The python3 binary itself (not a pyenv shim, which needs root's PATH and home). */
export function pythonPath(): string {
  python ??= execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim()
  return python
}

/**
 * Starts `interpreter` (an absolute path: `process.execPath`, {@link pythonPath}) as {@link OTHER},
 * with no supplementary groups, through `setpriv`.
 */
export function startAsOther(interpreter: string, args: string[], options: SpawnOptions = {}): Started {
  const ids = [`--reuid=${OTHER.uid}`, `--regid=${OTHER.gid}`, '--clear-groups']
  return start('setpriv', [...ids, interpreter, ...args], options)
}

/**
 * Two connected `UnixSocket`s over a fresh socketpair; with `t`, both are destroyed when the test
 * ends, passed or failed (a failed assertion must not leave them holding the worker).
 */
export function streamPair(options: { allowHalfOpen?: boolean } = {}, t?: ExecutionContext): [UnixSocket, UnixSocket] {
  const [fa, fb] = socketpair()
  const pair: [UnixSocket, UnixSocket] = [
    new UnixSocket({ fd: fa, ...options }),
    new UnixSocket({ fd: fb, ...options }),
  ]
  if (t) for (const s of pair) t.teardown(() => s.destroy())
  return pair
}

/**
 * A started process that reports JSON lines (`{ event, ... }`): every line kept, the first of a
 * name waited for. Each is killed at the end of its spec file (`test.after.always(killReporters)`).
 */
export class Reporter<E extends { event: string }> {
  readonly events: E[] = []
  readonly #waiters: (() => void)[] = []

  constructor(readonly started: Started) {
    reporters.add(this)
    let buf = ''
    started.child.stdout?.on('data', (d: Buffer) => {
      buf += d
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.events.push(JSON.parse(buf.slice(0, nl)) as E)
        buf = buf.slice(nl + 1)
        for (const w of this.#waiters.splice(0)) w()
      }
    })
    started.child.on('close', () => {
      for (const w of this.#waiters.splice(0)) w()
    })
  }

  get pid(): number {
    return this.started.child.pid!
  }

  /** The first event named `name` (or `'error'`), waiting for it; rejects if the process exits first. */
  async next(name: E['event'], ms = 20_000): Promise<E> {
    const deadline = Date.now() + ms
    for (;;) {
      const e = this.events.find((x) => x.event === name || x.event === 'error')
      if (e) return e
      const c = this.started.child
      if (c.exitCode !== null || c.signalCode !== null) {
        const r = await this.started.done
        throw new Error(`${c.pid} exited (${r.code}) before '${name}': ${r.stderr}`)
      }
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no '${name}' from ${c.pid} within ${ms} ms`)
      await within(new Promise<void>((resolve) => this.#waiters.push(resolve)), left, `'${name}' from ${c.pid}`)
    }
  }

  kill(): void {
    this.started.child.kill('SIGKILL')
  }
}

const reporters = new Set<Reporter<{ event: string }>>()

/** Kills every {@link Reporter} of this spec file (its processes outlive a failed test otherwise). */
export function killReporters(): void {
  for (const r of reporters) r.kill()
}
