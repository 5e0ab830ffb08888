// Race-free peer identity (API.md §11): pidfds from SO_PEERPIDFD and SCM_PIDFD, and what can be
// done with one. The syscalls are in crates/…/src/pidfd.rs; a pidfd's exit is waited on as its
// readability, through the reactor like every other wait (so under Bun and Deno too).
import { readFileSync } from 'node:fs'
import { constants as osConstants } from 'node:os'
import { binding } from './binding'
import { argTypeError, errnoError } from './errors'
import type { ErrnoError } from './errors'
import { operate } from './promises'
import { validateFd, validateSignal } from './validators'

const EBADF = -9
const ESRCH = -3
const EINVAL = -22
const ENOTTY = -25
const ENOPROTOOPT = -92
/** PIDFD_GET_INFO's answer for a process in a PID namespace this one cannot see (Node has no name for it). */
const EREMOTE = -66

/** Who a pidfd names, from {@link pidfdInfo}. */
export interface PidfdInfo {
  /**
   * The process id as this process's PID namespace sees it: `null` once the process has exited
   * and been reaped; `0` when it lives in a PID namespace this one cannot see.
   */
  pid: number | null
  /** Its parent's pid (`null` when gone, or not visible). */
  ppid: number | null
  /** Its real user id (`null` once reaped, or when not visible). */
  uid: number | null
  /** Its real group id (`null` once reaped, or when not visible). */
  gid: number | null
}

/** How a process ended, as a `ChildProcess` `'exit'` event says it. */
export interface PidfdExit {
  /** The exit code, or `null` when a signal ended it. */
  code: number | null
  /** The signal's name (`'SIGKILL'`), or `null` when it exited. */
  signal: NodeJS.Signals | null
}

/**
 * The error for a kernel without pidfd sockets: its code kept, its message naming the version,
 * so it is never mistaken for a transient failure (and never papered over with `pidfd_open(pid)`).
 */
export function pidfdError(rc: number, syscall: string, what: string): ErrnoError {
  const e = errnoError(rc, syscall)
  if (rc === ENOPROTOOPT || rc === EINVAL) {
    e.message = `${e.message}: ${what} needs Linux 6.5 or later${rc === EINVAL ? ' (or, on 6.5 to 6.15, the peer has exited and been reaped)' : ''}`
  }
  return e
}

/**
 * The pidfd of the peer of a connected Unix socket (`SO_PEERPIDFD`, Linux 6.5+): the process
 * that called `connect()`, `listen()` or `socketpair()` for the other end, as of that call —
 * unlike {@link peercred}'s pid, it cannot come to name another process once that one exits.
 * Close-on-exec; the caller's, to close.
 *
 * @throws {ErrnoError} `ENOPROTOOPT` (or `EINVAL`) on a kernel before 6.5, with a message that
 * says so (there is no fallback to `pidfd_open(pid)`: it would reintroduce the race); `EINVAL`
 * on 6.5–6.15 for a peer already reaped (6.16 on give a pidfd whose {@link pidfdInfo} says
 * `pid: null`); `ENODATA` for a socket that is not a connected Unix socket; `EBADF`, `ENOTSOCK`.
 */
export function peerpidfd(sock: number): number {
  validateFd(sock)
  const rc = binding.peerPidfd(sock)
  if (rc < 0) throw pidfdError(rc, 'getsockopt', 'SO_PEERPIDFD')
  return rc
}

/** Turns on `SO_PASSPIDFD`, with the error naming the kernel version where it is missing. */
export function passPidfd(fd: number): void {
  const rc = binding.setPasspidfd(fd, true)
  if (rc < 0) throw pidfdError(rc, 'setsockopt', 'SO_PASSPIDFD')
}

function validatePidfd(pidfd: unknown, syscall: string): asserts pidfd is number {
  validateFd(pidfd, 'pidfd')
  if (!binding.isPidfd(pidfd)) {
    const e = errnoError(EBADF, syscall)
    e.message += `: fd ${pidfd} is not a pidfd`
    throw e
  }
}

/**
 * Sends `signal` (a name such as `'SIGTERM'`, or a number; `0` only checks) to the process
 * `pidfd` names (`pidfd_send_signal(2)`). It reaches that process or none: once it has exited,
 * `ESRCH`, even when its pid now belongs to another process.
 *
 * @throws {TypeError} `ERR_UNKNOWN_SIGNAL` for a name that is not a signal.
 * @throws {ErrnoError} `ESRCH` (it has exited), `EBADF` (not a pidfd), `EPERM`.
 */
export function pidfdSendSignal(pidfd: number, signal: NodeJS.Signals | number): void {
  validateFd(pidfd, 'pidfd')
  let sig: number
  if (typeof signal === 'number') {
    if (!Number.isInteger(signal) || signal < 0 || signal > 64) {
      throw Object.assign(new TypeError(`Unknown signal: ${signal}`), { code: 'ERR_UNKNOWN_SIGNAL' })
    }
    sig = signal
  } else if (typeof signal === 'string') {
    const n = (osConstants.signals as Record<string, number>)[signal]
    if (n === undefined) throw Object.assign(new TypeError(`Unknown signal: ${signal}`), { code: 'ERR_UNKNOWN_SIGNAL' })
    sig = n
  } else {
    throw argTypeError('signal', 'of type string or number', signal)
  }
  const rc = binding.pidfdSendSignal(pidfd, sig)
  if (rc < 0) throw errnoError(rc, 'pidfd_send_signal')
}

const SIGNAL_NAMES = new Map(Object.entries(osConstants.signals).map(([name, n]) => [n, name as NodeJS.Signals]))

function exitOf(status: number): PidfdExit {
  const sig = status & 0x7f
  return sig === 0
    ? { code: (status >> 8) & 0xff, signal: null }
    : { code: null, signal: SIGNAL_NAMES.get(sig) ?? null }
}

/** How the process of `pidfd` ended, where the kernel says: its exit status, or `null`. */
function exitStatus(pidfd: number): PidfdExit | null {
  // Our own child, not reaped yet, is asked without reaping it; once reaped (by whoever), the
  // kernel keeps the status (Linux 6.15+) from before the reaper could see it, so in this order
  // no reap in between is missed.
  const child = binding.pidfdChildStatus(pidfd)
  if (child.length === 1 && child[0] >= 0) return exitOf(child[0])
  const info = binding.pidfdInfo(pidfd)
  return info.length > 1 && info[4] === 1 ? exitOf(info[5]) : null
}

/**
 * Resolves when the process `pidfd` names has exited (the pidfd becomes readable; waited on by
 * the reactor, never blocking the event loop), with how it ended — its exit code or signal —
 * where the kernel gives it (Linux 6.15+ once it is reaped; at once for a child of this process),
 * else `null`. A process that has already exited resolves at once. The pidfd stays the caller's.
 *
 * @rejects {ErrnoError} `EBADF` for an fd that is not a pidfd; `AbortError` when `signal`
 * aborts; `ERR_SOCKET_CLOSED` when the pidfd is {@link close}d meanwhile.
 */
export async function pidfdWait(pidfd: number, options?: { signal?: AbortSignal }): Promise<PidfdExit | null> {
  validatePidfd(pidfd, 'poll')
  if (options !== undefined && (typeof options !== 'object' || options === null))
    throw argTypeError('options', 'of type object', options)
  validateSignal(options?.signal, 'options.signal')
  const r = operate('pidfdWait', 'poll', options?.signal, (t) => binding.readyAsync(pidfd, false, t))
  if (typeof r !== 'number') await r
  return exitStatus(pidfd)
}

/**
 * Who `pidfd` names: `{ pid, ppid, uid, gid }` (real ids), from `PIDFD_GET_INFO` (Linux 6.13+)
 * or, on older kernels and for a process in a PID namespace this one cannot see, from
 * `/proc/self/fdinfo` (and `/proc/<pid>/status`, read while the pidfd shows the process alive,
 * so it is never another process's). `pid` is `null` once the process has exited and been
 * reaped, `0` when it is not visible from here.
 *
 * @throws {ErrnoError} `EBADF` for an fd that is not a pidfd.
 */
export function pidfdInfo(pidfd: number): PidfdInfo {
  validatePidfd(pidfd, 'ioctl')
  const r = binding.pidfdInfo(pidfd)
  if (r.length > 1) {
    if (r[0] > 0) return { pid: r[0], ppid: r[1], uid: r[2], gid: r[3] }
    return procInfo(pidfd) // reaped: the kernel keeps only the exit status
  }
  if (r[0] === ESRCH || r[0] === EREMOTE || r[0] === ENOTTY || r[0] === EINVAL) return procInfo(pidfd)
  throw errnoError(r[0], 'ioctl')
}

/** The `Pid:` of `/proc/self/fdinfo/<pidfd>`: -1 once reaped, 0 when not visible. */
function fdinfoPid(pidfd: number): number {
  const m = /^Pid:\s*(-?\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${pidfd}`, 'latin1'))
  if (!m) throw errnoError(EBADF, 'ioctl')
  return Number(m[1])
}

/** {@link pidfdInfo} from /proc: what kernels before 6.13 offer. */
export function procInfo(pidfd: number): PidfdInfo {
  const pid = fdinfoPid(pidfd)
  if (pid <= 0) return { pid: pid < 0 ? null : 0, ppid: null, uid: null, gid: null }
  let status: string
  try {
    status = readFileSync(`/proc/${pid}/status`, 'latin1')
  } catch {
    return { pid: null, ppid: null, uid: null, gid: null } // gone meanwhile
  }
  // Still this process's pid after the read: the pidfd shows it unreaped, so not yet reusable.
  if (fdinfoPid(pidfd) !== pid) return { pid: null, ppid: null, uid: null, gid: null }
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(status)?.[1])
  return { pid, ppid: field('PPid'), uid: field('Uid'), gid: field('Gid') }
}
