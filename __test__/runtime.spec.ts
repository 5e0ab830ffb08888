import test from 'ava'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, run } from './helpers'

// Bun and Deno get the whole API: their libuv is not real for addons, so readiness comes from
// a poll thread of ours there. The runtime-neutral smoke test (every export, Promise forms,
// abort, close while pending, call order, the budget, batches) runs under each, from the
// binaries npm installs (devDependencies), beside Node running the same file.
const smoke = join(__dirname, 'fixtures', 'runtime-smoke.cjs')
const runtimes: Record<string, string[]> = {
  node: [process.execPath, smoke],
  'node with the poll-thread backend': [process.execPath, '-r', join(__dirname, 'fixtures', 'poll-thread.cjs'), smoke],
  bun: [join(ROOT, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun'), smoke],
  deno: [join(ROOT, 'node_modules', '@deno', 'linux-x64-glibc', 'deno'), 'run', '--allow-all', smoke],
}

for (const [name, [cmd, ...args]] of Object.entries(runtimes)) {
  test(`${name}: every export and the Promise forms work, and the process exits by itself`, async (t) => {
    // A cache of Deno's own: its CommonJS export analysis outlived a rebuild of index.js here
    // and paired export names with the wrong functions.
    const denoDir = mkdtempSync(join(tmpdir(), 'net-unix-deno-'))
    const env = { ...process.env, DENO_DIR: denoDir }
    const r = await run(cmd, [...args, join(ROOT, 'index.js')], { cwd: ROOT, timeout: 60_000, env })
    rmSync(denoDir, { recursive: true, force: true })
    const failed = r.stdout.split('\n').filter((l) => l.startsWith('not ok'))
    t.deepEqual(failed, [], r.stderr)
    t.regex(r.stdout, /^# pass 21$/m, r.stdout + r.stderr)
    t.is(r.code, 0, `exit ${r.code} ${r.signal ?? ''}: ${r.stderr}`)
  })
}
