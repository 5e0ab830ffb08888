import test from 'ava'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, start } from './helpers'

/** Pids of live processes in process group `pgid` (the demo's own: main.js leads its group). */
function processesInGroup(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
        const [, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        return Number(pgrp) === pgid
      } catch {
        return false // exited while we looked
      }
    })
    .map(Number)
}

test('the hand-off demo serves every request through both hand-off paths and leaves nothing running', async (t) => {
  const demo = join(ROOT, 'examples', 'handoff')
  // Its own process group (detached: setsid), which the acceptor and workers inherit: the demo's
  // processes are told apart from any other run's by that id, not by their command line.
  const started = start(
    process.execPath,
    [join(demo, 'main.js'), '--workers', '2', '--requests', '300', '--concurrency', '8'],
    { timeout: 60000, detached: true },
  )
  const group = started.child.pid as number
  const r = await started.done
  t.is(r.code, 0, r.stderr)
  for (const mode of ['net-unix', 'child_process']) {
    const line = r.stdout.split('\n').find((l) => l.trim().startsWith(mode) && l.includes('per worker'))
    const counts = /per worker: ([\d /]+)\(/
      .exec(line ?? '')?.[1]
      .trim()
      .split(' / ')
      .map(Number)
    t.is(counts?.length, 2, `${mode}: ${line}`)
    t.is(
      counts?.reduce((a, b) => a + b, 0),
      300,
      `${mode}: ${line}`,
    )
  }
  t.regex(r.stdout, /net-unix sendfds vs child_process send\(msg, socket\): [\d.]+×/)
  // main.js waits for the acceptor, which waits for its workers: all are gone once it exits.
  t.deepEqual(processesInGroup(group), [])
})
