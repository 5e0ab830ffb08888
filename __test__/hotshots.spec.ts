// The unix-dgram drop-in, proven with its users: a throwaway project installs hot-shots from the
// registry with `"overrides": { "unix-dgram": <net-unix tarball> }`, so every
// require('unix-dgram') loads net-unix (no node-gyp), as the README tells users to do. In it run
// fixtures/hotshots-app.js and unix-dgram's own test suite (the test/ its npm tarball ships).
import test from 'ava'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ROOT, run } from './helpers'

const HOT_SHOTS = '17.1.1'
const SINON = '22.1.0'
const UNIX_DGRAM = '2.0.7'

/** The consumer project, installed once for both tests. */
let app = ''
const scratch: string[] = []

test.before(async () => {
  const { version } = require(join(ROOT, 'package.json')) as { version: string }
  const dist = mkdtempSync(join(tmpdir(), 'net-unix-hs-dist-'))
  scratch.push(dist)
  const packed = await run(process.execPath, [join(ROOT, 'scripts', 'pack-all.js'), '--no-build'], { cwd: ROOT })
  if (packed.code !== 0) throw new Error(`pack-all: ${packed.stderr}`)
  // Copies: the consumer test re-packs dist/ while this project installs.
  copyFileSync(join(ROOT, 'dist', `net-unix-${version}.tgz`), join(dist, 'main.tgz'))
  copyFileSync(join(ROOT, 'dist', `net-unix-linux-x64-gnu-${version}.tgz`), join(dist, 'platform.tgz'))
  app = mkdtempSync(join(tmpdir(), 'net-unix-hs-app-'))
  scratch.push(app)
  writeFileSync(
    join(app, 'package.json'),
    JSON.stringify({
      name: 'hot-shots-consumer',
      version: '1.0.0',
      private: true,
      dependencies: {
        'hot-shots': HOT_SHOTS,
        sinon: SINON,
        'net-unix-linux-x64-gnu': `file:${join(dist, 'platform.tgz')}`,
      },
      // A plain alias is not enough: hot-shots' own optional dependency would nest a real copy.
      overrides: {
        'unix-dgram': `file:${join(dist, 'main.tgz')}`,
        'net-unix-linux-x64-gnu': `file:${join(dist, 'platform.tgz')}`,
      },
    }),
  )
  const installed = await run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: app })
  if (installed.code !== 0) throw new Error(`npm install: ${installed.stderr}`)
})

test.after.always(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true })
})

test.serial(
  'hot-shots over protocol "uds" with unix-dgram overridden by net-unix: metrics, restart, congestion, errors, a restart under pending retries, mocks, exit',
  async (t) => {
    copyFileSync(join(__dirname, 'fixtures', 'hotshots-app.js'), join(app, 'app.js'))
    const sockets = mkdtempSync(join(tmpdir(), 'net-unix-hs-sock-'))
    const r = await run(process.execPath, ['app.js', sockets], { cwd: app })
    t.is(r.code, 0, r.stderr)
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    const find = (key: string): Record<string, unknown> => lines.find((l) => key in l) ?? {}
    t.deepEqual(find('resolved'), { resolved: 'net-unix', overridden: true }, "require('unix-dgram') is net-unix")
    t.deepEqual(find('metrics').metrics, ['hits:1|c', 'temp:21|g'], 'metrics arrive at the agent')
    t.true(find('restarted').restarted as boolean, 'hot-shots reconnected after the agent restarted')
    t.true((find('restarted').restartErrors as string[]).every((c) => c === 'ECONNREFUSED' || c === 'ENOTCONN'))
    const flood = find('flood')
    t.true((flood.congested as number) > 0, `the stalled receiver congested: ${JSON.stringify(flood)}`)
    t.is(flood.delivered, flood.drained, 'what hot-shots saw delivered is what the receiver held')
    t.deepEqual([flood.sent, flood.last], ['ok', 'recovered:1|c'], 'it recovers once the receiver reads')
    t.deepEqual(find('missing').missing, ['ENOENT'], 'no agent socket: errorHandler gets ENOENT')
    const across = find('retryAcrossRestart').retryAcrossRestart as {
      outcomes: Record<string, number>
      errorCodes: string[]
    }
    t.true((across?.outcomes.EBADF ?? 0) > 0, `retries pending across the restart got EBADF: ${JSON.stringify(across)}`)
    t.deepEqual(find('mocked').mocked, { assigned: ['assigned:1|c'], stubbed: ['stubbed:1|c'], restored: true })
    t.deepEqual(lines.at(-1), { exited: true }, 'close() lets the process end by itself')
    scratch.push(sockets)
  },
)

test.serial(
  `unix-dgram ${UNIX_DGRAM}'s own test suite passes with require('unix-dgram') resolving to net-unix`,
  async (t) => {
    // Its tarball's test/ files, unchanged; they load '../lib/unix_dgram', here a one-line
    // require('unix-dgram'), which the overrides make net-unix.
    const suite = join(app, 'unix-dgram-suite')
    mkdirSync(join(suite, 'lib'), { recursive: true })
    const packed = await run('npm', ['pack', `unix-dgram@${UNIX_DGRAM}`, '--pack-destination', suite], { cwd: suite })
    t.is(packed.code, 0, packed.stderr)
    const extracted = await run(
      'tar',
      ['xzf', `unix-dgram-${UNIX_DGRAM}.tgz`, '--strip-components=1', 'package/test'],
      {
        cwd: suite,
      },
    )
    t.is(extracted.code, 0, extracted.stderr)
    writeFileSync(join(suite, 'lib', 'unix_dgram.js'), "module.exports = require('unix-dgram')\n")
    const loaded = await run(process.execPath, ['-p', "require('unix-dgram/package.json').name"], { cwd: suite })
    t.is(loaded.stdout.trim(), 'net-unix', loaded.stderr)
    const files = readdirSync(join(suite, 'test')).filter((f) => f.endsWith('.js'))
    t.deepEqual(files.sort(), [
      'test-connect-callback.js',
      'test-connect.js',
      'test-dgram-unix.js',
      'test-send-error.js',
    ])
    // One at a time, as its `npm test` runs them: they share /tmp/unix_dgram.sock.
    for (const file of files) {
      const r = await run(process.execPath, [join('test', file)], { cwd: suite })
      t.is(r.code, 0, `${file}: ${r.stderr}`)
    }
  },
)
