// systemd's service protocol: sd_notify (with fds and barriers) and socket activation.
import { Readiness, READABLE } from './readiness'
import { binding } from './binding'
import { ETIMEDOUT, SOCK_CLOEXEC, SOCK_DGRAM } from './constants'
import { argTypeError, check, errnoError, outOfRange } from './errors'
import { encodeAddr } from './address'
import { operate } from './promises'
import { validateFds, validateInteger } from './validators'
import { describeFd } from './fdinfo'
import type { FdInfo } from './fdinfo'

const MAX_FDS: number = binding.MAX_FDS
const ENOTSOCK = -88

/** Options of {@link notify}. */
export interface NotifyOptions {
  /** fds to hand to the manager with the message (e.g. with `FDSTORE=1`); the caller keeps its own. */
  fds?: readonly number[]
  /** Appends `FDNAME=<fdname>` to the state: the name the fds are stored under. */
  fdname?: string
}

/** `$NOTIFY_SOCKET` as an address, or `undefined` when it is not set. */
function notifySocket(): string | undefined {
  const v = process.env.NOTIFY_SOCKET
  if (v === undefined || v === '') return undefined
  if (v.startsWith('@')) return `\0${v.slice(1)}`
  if (v.startsWith('/')) return v
  const e = new Error(`NOTIFY_SOCKET ${JSON.stringify(v)} is neither an absolute path nor an @abstract name`)
  throw Object.assign(e, { code: 'ERR_INVALID_NOTIFY_SOCKET' })
}

/**
 * Sends `state` (`'READY=1'`, `'STATUS=…'`, `'FDSTORE=1'`, several lines joined with `\n`) to
 * the service manager over `$NOTIFY_SOCKET` (read at each call: a path, or `@name` for an
 * abstract one), with this process's credentials and, on request, fds. `sd_notify(3)`.
 *
 * @returns a promise of `true` once sent, `false` when `$NOTIFY_SOCKET` is not set.
 * @rejects {TypeError} / {RangeError} for bad arguments (an `fdname` with `:` or a newline, fds
 * with no state); {@link ErrnoError} `ENOENT` / `ECONNREFUSED` (no manager listening), with
 * `address`.
 */
export async function notify(state: string, options?: NotifyOptions): Promise<boolean> {
  if (typeof state !== 'string') throw argTypeError('state', 'of type string', state)
  if (options !== undefined && (typeof options !== 'object' || options === null))
    throw argTypeError('options', 'of type object', options)
  const fds = options?.fds ?? []
  if (!Array.isArray(fds)) throw argTypeError('options.fds', 'an instance of Array', fds)
  validateFds(fds, 'options.fds')
  if (fds.length > MAX_FDS) throw outOfRange('options.fds.length', `<= ${MAX_FDS}`, fds.length)
  let text = state
  if (options?.fdname !== undefined) {
    const name = options.fdname
    if (typeof name !== 'string') throw argTypeError('options.fdname', 'of type string', name)
    if (name.length === 0 || name.length > 255 || /[:\n\r\0]/.test(name)) {
      throw outOfRange('options.fdname', '1 to 255 characters without ":" or control characters', JSON.stringify(name))
    }
    text = `${state}\nFDNAME=${name}`
  }
  if (text.length === 0) throw outOfRange('state', 'a non-empty string', '""')
  const address = notifySocket()
  if (address === undefined) return false
  const fd = check(binding.socketTyped(SOCK_DGRAM, SOCK_CLOEXEC), 'socket')
  try {
    // Connected, so a full manager queue is waited on as writability (sd_notify blocks there).
    const rc = binding.connectAddr(fd, encodeAddr(address, 'NOTIFY_SOCKET'))
    if (rc < 0) throw errnoError(rc, 'connect', address)
    const groups = fds.length ? [fds.length] : []
    const bytes = Buffer.from(text, 'utf8')
    const r = operate('notify', 'sendmsg', undefined, (t) =>
      binding.sendtoAsync(fd, bytes, null, fds as number[], groups, true, t),
    )
    if (typeof r !== 'number') await r
    return true
  } finally {
    binding.close(fd)
  }
}

/**
 * Resolves once the service manager has received (and processed) every notification sent
 * before it: sends `BARRIER=1` with the write end of a pipe and waits for the manager to close
 * it, as `sd_notify_barrier(3)`.
 *
 * @returns a promise of `true`, or `false` when `$NOTIFY_SOCKET` is not set.
 * @rejects {ErrnoError} `ETIMEDOUT` after `timeout` ms (default 5000, as systemd's), or what
 * {@link notify} rejects with.
 */
export async function notifyBarrier(options?: { timeout?: number }): Promise<boolean> {
  if (options !== undefined && (typeof options !== 'object' || options === null))
    throw argTypeError('options', 'of type object', options)
  const timeout = options?.timeout ?? 5000
  validateInteger(timeout, 'options.timeout', 0, 2 ** 31 - 1)
  if (notifySocket() === undefined) return false
  const p = binding.pipeCloexec()
  check(p[0], 'pipe')
  const [readEnd, writeEnd] = p
  try {
    await notify('BARRIER=1', { fds: [writeEnd] })
  } catch (e) {
    binding.close(readEnd)
    throw e
  } finally {
    binding.close(writeEnd)
  }
  // The manager closes its copy of the write end: the read end sees EOF (POLLHUP).
  return new Promise<boolean>((resolve, reject) => {
    const done = (err: Error | null): void => {
      clearTimeout(timer)
      hup.close()
      binding.close(readEnd)
      if (err) reject(err)
      else resolve(true)
    }
    const hup = new Readiness(readEnd, (status) => done(status < 0 ? errnoError(status, 'poll') : null))
    const timer = setTimeout(() => done(errnoError(ETIMEDOUT, 'notifyBarrier')), timeout)
    hup.start(READABLE)
  })
}

/** A socket (or other fd) the service manager passed; see {@link listenFds}. */
export interface ListenFd {
  /** The fd (3, 4, …), close-on-exec from now on. */
  fd: number
  /** Its name from `$LISTEN_FDNAMES` (`FileDescriptorName=`), `'unknown'` when none was given. */
  name: string
  /** `'stream'`, `'dgram'`, `'seqpacket'` for sockets, `'other'` for anything else. */
  type: 'stream' | 'dgram' | 'seqpacket' | 'other'
  /** What the fd is ({@link fdinfo}), as of the call: `adopt(entry.fd)` turns it into its Node object. */
  info: FdInfo
}

const TYPES: Record<number, ListenFd['type']> = { 1: 'stream', 2: 'dgram', 5: 'seqpacket' }

/**
 * The fds systemd (or `systemd-socket-activate`) passed to this process: `$LISTEN_PID` must be
 * this process, `$LISTEN_FDS` says how many (from fd 3), `$LISTEN_FDNAMES` names them.
 * `sd_listen_fds_with_names(3)`. Each fd is made close-on-exec.
 *
 * @param options.unsetEnvironment remove the three variables (default `true`), so children do
 * not take the fds for theirs.
 * @returns the fds, `[]` when none were passed (or they were for another process).
 */
export function listenFds(options?: { unsetEnvironment?: boolean }): ListenFd[] {
  if (options !== undefined && (typeof options !== 'object' || options === null))
    throw argTypeError('options', 'of type object', options)
  const unset = options?.unsetEnvironment ?? true
  if (typeof unset !== 'boolean') throw argTypeError('options.unsetEnvironment', 'of type boolean', unset)
  const { LISTEN_PID: pid, LISTEN_FDS: count, LISTEN_FDNAMES: names } = process.env
  if (unset) {
    delete process.env.LISTEN_PID
    delete process.env.LISTEN_FDS
    delete process.env.LISTEN_FDNAMES
  }
  if (pid === undefined || count === undefined || Number(pid) !== process.pid) return []
  const n = Number(count)
  if (!Number.isInteger(n) || n <= 0) return []
  const nameList = names === undefined ? [] : names.split(':')
  const out: ListenFd[] = []
  for (let i = 0; i < n; i++) {
    const fd = 3 + i
    check(binding.setCloexec(fd), 'fcntl')
    const t = binding.socketType(fd)
    if (t < 0 && t !== ENOTSOCK) throw errnoError(t, 'getsockopt')
    out.push({ fd, name: nameList[i] || 'unknown', type: TYPES[t] ?? 'other', info: describeFd(fd) })
  }
  return out
}
