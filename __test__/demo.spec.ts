import test from 'ava'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, run } from './helpers'

/** Pids of live processes whose command line mentions `needle`. */
function processesRunning(needle: string): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)
      } catch {
        return false // exited while we looked
      }
    })
    .map(Number)
}

test('the hand-off demo serves every request through both hand-off paths and leaves nothing running', async (t) => {
  const demo = join(ROOT, 'examples', 'handoff')
  const r = await run(process.execPath, [join(demo, 'main.js'), '--workers', '2', '--requests', '300', '--concurrency', '8'], { timeout: 60000 })
  t.is(r.code, 0, r.stderr)
  for (const mode of ['net-unix', 'child_process']) {
    const line = r.stdout.split('\n').find((l) => l.trim().startsWith(mode) && l.includes('per worker'))
    const counts = /per worker: ([\d /]+)\(/.exec(line ?? '')?.[1].trim().split(' / ').map(Number)
    t.is(counts?.length, 2, `${mode}: ${line}`)
    t.is(counts?.reduce((a, b) => a + b, 0), 300, `${mode}: ${line}`)
  }
  t.regex(r.stdout, /net-unix sendfds vs child_process send\(msg, socket\): [\d.]+×/)
  // main.js waits for the acceptor, which waits for its workers: all are gone once it exits.
  t.deepEqual(processesRunning(demo), [])
})
