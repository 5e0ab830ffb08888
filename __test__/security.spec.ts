// Who may connect, who connected, and what a spawned child can see.
import test from 'ava'
import { chmodSync, openSync, closeSync, readlinkSync, statSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import * as nu from '../index.js'
import type { SpawnOptions } from 'node:child_process'
import { fdCount, OTHER, runNode, runPython, startAsOther, startFixture, tmpPath, within } from './helpers'

test('listen creates the socket file with the process umask', async (t) => {
  for (const [umask, mode] of [
    [0o077, 0o700],
    [0o022, 0o755],
  ]) {
    const path = tmpPath()
    // umask is process-wide: change it in a child, never in the test runner.
    const r = await runNode(
      `process.umask(${umask}); const nu = require(process.env.NET_UNIX); nu.listen(${JSON.stringify(path)}); console.log(require('fs').statSync(${JSON.stringify(path)}).mode & 0o777)`,
    )
    t.is(r.code, 0, r.stderr)
    t.is(Number(r.stdout.trim()), mode, `umask ${umask.toString(8)}`)
    t.true(statSync(path).isSocket())
  }
})

test('peercred names the process that connected: its pid, uid and gid', async (t) => {
  const path = tmpPath()
  const l = nu.listen(path)
  const child = runNode(
    `const nu = require(process.env.NET_UNIX); const fd = nu.connectSync(${JSON.stringify(path)}); console.log(JSON.stringify({ pid: process.pid, uid: process.getuid(), gid: process.getgid() })); nu.recvfds(fd, 1, 0).then(() => nu.close(fd))`,
  )
  const fd = await nu.accept(l)
  const creds = nu.peercred(fd)
  await nu.sendfds(fd, Buffer.from('k'), []) // let the child go
  const r = await child
  t.deepEqual(creds, JSON.parse(r.stdout))
  t.not(creds.pid, process.pid)
  nu.close(fd)
  nu.close(l)
})

test.serial(
  'received fds are close-on-exec: a spawned child never inherits them (and NOCLOEXEC shows it would)',
  async (t) => {
    const before = fdCount()
    const secret = tmpPath('secret.txt')
    writeFileSync(secret, 'not for children')
    const file = openSync(secret, 'r')
    const [a, b] = nu.socketpair()
    await nu.sendfds(a, Buffer.from('s'), [file, file])
    closeSync(file) // from here on the only copies are the received ones
    const { fds: received } = await nu.recvfds(b, 1, 2)
    t.is(received.length, 2)
    const [inheritable, otherEnd] = nu.socketpair(nu.sockflag.NOCLOEXEC)
    const inheritableTarget = readlinkSync(`/proc/self/fd/${inheritable}`)
    const listing = await runPython(
      "import os\nfor fd in os.listdir('/proc/self/fd'):\n    try: print(os.readlink('/proc/self/fd/' + fd))\n    except OSError: pass",
    )
    const seen = listing.stdout.trim().split('\n')
    t.false(seen.includes(secret), 'a received fd leaked into the child')
    t.false(seen.includes(readlinkSync(`/proc/self/fd/${a}`)), 'a default (close-on-exec) socket leaked into the child')
    t.true(seen.includes(inheritableTarget), 'the NOCLOEXEC socket is inherited: the check can see a leak')
    ;[...received, a, b, inheritable, otherEnd].forEach((fd) => nu.close(fd))
    t.is(fdCount(), before)
  },
)

test('peercred reports uid and gid as they were at connect time, for peers whose uid is not their gid', async (t) => {
  // A path every user may reach (Node 20's net.connect does not reach exact-length abstract names).
  const name = tmpPath()
  const l = nu.listen(name)
  chmodSync(dirname(name), 0o755)
  chmodSync(name, 0o777)
  // One child (fixtures/security-dropper.cjs) connects as root, becomes uid 1234 / gid 5678 and
  // connects again; another is started as OTHER (uid 1000 / gid 2000) by setpriv. Each waits for its
  // stdin to end.
  const asUser = `
    const s = require('net').connect(process.argv[1], () => console.log(process.pid))
    process.stdin.resume().on('end', () => s.destroy())`
  const stdio: SpawnOptions['stdio'] = ['pipe', 'pipe', 'pipe']
  const dropper = startFixture('security-dropper.cjs', [name], { stdio })
  t.teardown(() => dropper.child.kill('SIGKILL'))
  const first = await within(nu.accept(l), 10000, 'the first connection (as root)')
  const second = await within(nu.accept(l), 10000, 'the second connection (after setuid)')
  const dropperPid = Number(await dropper.firstLine)
  const other = startAsOther(process.execPath, ['-e', asUser, name], { stdio })
  t.teardown(() => other.child.kill('SIGKILL'))
  const third = await within(nu.accept(l), 10000, 'the connection of the setpriv child')
  const otherPid = Number(await other.firstLine)
  t.deepEqual(nu.peercred(first), { pid: dropperPid, uid: 0, gid: 0 }, 'as of connect time, not as the process is now')
  t.deepEqual(nu.peercred(second), { pid: dropperPid, uid: 1234, gid: 5678 })
  t.deepEqual(nu.peercred(third), { pid: otherPid, ...OTHER })
  for (const c of [dropper, other]) c.child.stdin?.end()
  for (const c of [dropper, other]) t.is((await within(c.done, 10000, 'a child')).code, 0)
  ;[first, second, third, l].forEach((fd) => nu.close(fd))
})
