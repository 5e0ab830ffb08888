// What msg.rs (sendmsg, recvmsg) is tested for, repeated for mmsg.rs (sendmmsg, recvmmsg):
// MSG_NOSIGNAL, and `truncated` when exactly maxFds + 1 fds arrive. MSG_CMSG_CLOEXEC on every
// recvmmsg path is in fdflags.spec.ts.
import test from 'ava'
import { closeSync, openSync } from 'node:fs'
import * as nu from '../index.js'
import { abstractName, fdBaseline, runFixture } from './helpers'

test('sendmmsg to a closed peer (sendfdsMany, a UnixSocket batch) raises no SIGPIPE in a process that listens for it', async (t) => {
  const r = await runFixture('msghdr-sigpipe.cjs', ['mmsg'], { timeout: 20000 })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), { codes: ['EPIPE', 'EPIPE', 'EPIPE'], pipes: 0 })
})

// CMSG_SPACE rounds up to 8 bytes: the room for an odd maxFds holds one more fd, so the kernel
// does not set MSG_CTRUNC for maxFds + 1; only the count can say the extra one was dropped.
test('exactly maxFds + 1 fds (odd maxFds): truncated, maxFds kept, the extra one closed, on recvfrom, recvfromMany and recvfdsMany', async (t) => {
  const file = openSync(__filename, 'r')
  const fds = await fdBaseline()
  for (const maxFds of [1, 3, 5]) {
    const sent = Array<number>(maxFds + 1).fill(file)
    const name = abstractName('mm')
    const rx = nu.dgramSocket({ bind: name })
    const tx = nu.dgramSocket()
    for (let i = 0; i < 3; i++) nu.sendtoSync(tx, Buffer.from('x'), name, { fds: sent })
    const one = nu.recvfromSync(rx, 4, { maxFds })
    const many = await nu.recvfromMany(rx, 4, 4, { maxFds })
    const [a, b] = nu.socketpair()
    await nu.sendfdsMany(a, [{ data: Buffer.from('y'), fds: sent }])
    const [pair] = await nu.recvfdsMany(b, 4, 1, maxFds)
    const got = [one, ...many, pair]
    t.is(got.length, 4)
    for (const m of got) {
      t.true(m.truncated, `maxFds ${maxFds}: truncated`)
      t.is(m.fds.length, maxFds)
    }
    const kept = got.flatMap((m) => m.fds)
    // Open now: the three sockets, the pair and what was kept; the extra fds are closed.
    await fds(t, 4 + kept.length, `maxFds ${maxFds}, with the kept fds open`)
    nu.closeFds([...kept, rx, tx, a, b])
  }
  await fds(t, 0, 'all closed')
  closeSync(file)
})
