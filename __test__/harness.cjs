'use strict'
// The runtime-neutral part of the shared harness: plain CommonJS so that the specs (through
// helpers.ts, under tsx), the fixtures and bench/peer.js (plain node) all load the same code.
// Types are JSDoc, checked by __test__/tsconfig.json (checkJs).
const { spawn } = require('node:child_process')
const { mkdtempSync, readFileSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const { addfiles, addvector, newmsg } = require('../index.js')

/**
 * A message of one vector (a string is its UTF-8 bytes) with `fds` attached, if any.
 * @param {string | Uint8Array} data
 * @param {...number} fds
 * @returns {import('../index.js').msghdr}
 */
function msgOf(data, ...fds) {
  const m = newmsg()
  addvector(m, typeof data === 'string' ? Buffer.from(data) : data)
  if (fds.length) addfiles(m, ...fds)
  return m
}

let seq = 0
/**
 * A fresh abstract name, unique to this process and call.
 * @param {string} [tag]
 * @returns {string}
 */
function abstractName(tag = 'a') {
  return `\0net-unix-test-${process.pid}-${tag}-${++seq}`
}

/**
 * A fresh socket path in a new temp directory.
 * @param {string} [name]
 * @returns {string}
 */
function tmpPath(name = 's.sock') {
  return join(mkdtempSync(join(tmpdir(), 'net-unix-')), name)
}

/**
 * @typedef {object} ChildResult
 * @property {number | null} code
 * @property {NodeJS.Signals | null} signal
 * @property {string} stdout
 * @property {string} stderr
 */

/**
 * @typedef {object} Started
 * @property {import('node:child_process').ChildProcess} child
 * @property {Promise<ChildResult>} done Settles when the child has exited and its output is closed.
 * @property {Promise<string>} firstLine The child's first line of stdout (how children say "ready").
 */

/**
 * Starts a command, collecting its output (the stdout and stderr that `options.stdio` pipes).
 * @param {string} cmd
 * @param {string[]} args
 * @param {import('node:child_process').SpawnOptions} [options]
 * @returns {Started}
 */
function start(cmd, args, options = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options })
  let stdout = ''
  let stderr = ''
  /** @type {(line: string) => void} */
  let lineSeen = () => {}
  /** @type {Promise<string>} */
  const firstLine = new Promise((resolve) => (lineSeen = resolve))
  child.stdout?.on('data', (d) => {
    stdout += d
    if (stdout.includes('\n')) lineSeen(stdout.slice(0, stdout.indexOf('\n')))
  })
  child.stderr?.on('data', (d) => (stderr += d))
  /** @type {Promise<ChildResult>} */
  const done = new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => {
      lineSeen(stdout)
      resolve({ code, signal, stdout, stderr })
    })
  })
  return { child, done, firstLine }
}

/**
 * Runs a command to completion and collects its output.
 * @param {string} cmd
 * @param {string[]} args
 * @param {import('node:child_process').SpawnOptions} [options]
 * @returns {Promise<ChildResult>}
 */
function run(cmd, args, options = {}) {
  return start(cmd, args, options).done
}

/**
 * The `flags:` field of /proc/self/fdinfo for `fd` (octal open flags, incl. O_CLOEXEC).
 * @param {number} fd
 * @returns {number}
 */
function fdFlags(fd) {
  const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))
  if (!m) throw new Error(`no flags for fd ${fd}`)
  return parseInt(m[1], 8)
}
const O_CLOEXEC = 0o2000000
const O_NONBLOCK = 0o4000

/**
 * What a child would inherit and how a read on `fd` behaves, as the kernel has them: every path
 * that makes or receives an fd is checked with this one helper (specs, and fixtures under Bun or
 * Deno), e.g. `deepEqual(fdMode(fd), { cloexec: true, nonblock: false })`.
 * @param {number} fd
 * @returns {{ cloexec: boolean, nonblock: boolean }}
 */
function fdMode(fd) {
  const flags = fdFlags(fd)
  return { cloexec: (flags & O_CLOEXEC) !== 0, nonblock: (flags & O_NONBLOCK) !== 0 }
}

module.exports = { msgOf, abstractName, tmpPath, start, run, fdFlags, fdMode, O_CLOEXEC, O_NONBLOCK }
