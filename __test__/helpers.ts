// Shared by the tests: fd accounting, unique addresses, child processes.
import { spawn, type SpawnOptions } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

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

/** The `flags:` field of /proc/self/fdinfo for `fd` (octal open flags, incl. O_CLOEXEC). */
export function fdFlags(fd: number): number {
  const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))
  if (!m) throw new Error(`no flags for fd ${fd}`)
  return parseInt(m[1], 8)
}
export const O_CLOEXEC = 0o2000000
export const O_NONBLOCK = 0o4000

let seq = 0
/** A fresh abstract name, unique to this process and call. */
export function abstractName(tag = 'a'): string {
  return `\0net-unix-test-${process.pid}-${tag}-${++seq}`
}

/** A fresh socket path in a new temp directory. */
export function tmpPath(name = 's.sock'): string {
  return join(mkdtempSync(join(tmpdir(), 'net-unix-')), name)
}

/** The repo root, for children that `require` the package. */
export const ROOT = join(__dirname, '..')

export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Runs a command to completion and collects its output. */
export function run(cmd: string, args: string[], options: SpawnOptions = {}): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
    let stdout = ''
    let stderr = ''
    child.stdout?.on('data', (d) => (stdout += d))
    child.stderr?.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
}

/** Runs a Node script (CommonJS source text) that can `require('net-unix')` via NET_UNIX. */
export function runNode(source: string, options: SpawnOptions = {}): Promise<ChildResult> {
  const env = { ...process.env, NET_UNIX: ROOT, ...(options.env ?? {}) }
  return run(process.execPath, ['-e', source], { ...options, env })
}

/** Runs a Python script given as source text. */
export function runPython(source: string, options: SpawnOptions = {}): Promise<ChildResult> {
  return run('python3', ['-c', source], options)
}
