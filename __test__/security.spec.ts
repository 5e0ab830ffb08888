// Who may connect, who connected, and what a spawned child can see.
import test from 'ava'
import { openSync, closeSync, readlinkSync, statSync, writeFileSync } from 'node:fs'
import * as nu from '../index.js'
import { fdCount, runNode, runPython, tmpPath } from './helpers'

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

test.serial('received fds are close-on-exec: a spawned child never inherits them (and NOCLOEXEC shows it would)', async (t) => {
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
})
