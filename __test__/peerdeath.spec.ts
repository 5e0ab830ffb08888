// A peer killed with SIGKILL mid-transfer: the survivor sees EOF / EPIPE / ECONNRESET /
// ECONNREFUSED as documented, every pending promise settles, and none of our fds leak.
import test from 'ava'
import { openSync, closeSync } from 'node:fs'
import { close, connect, recvfds, sendfds, socketpair } from '../index.js'
import { abstractName, fdCount, startNode, type Started } from './helpers'

/** A Node child running `source` (with `nu` in scope) and `theirs` as its fd 3. */
function child(source: string, theirs: number): Started {
  return startNode(`const nu = require(process.env.NET_UNIX);\n${source}`, {
    stdio: ['ignore', 'pipe', 'inherit', theirs],
  })
}

test.serial(
  'a sender killed mid-stream: the receiver gets every fd that arrived, then EOF, and leaks none',
  async (t) => {
    const before = fdCount()
    const [mine, theirs] = socketpair()
    const k = child(
      `const f = require('fs').openSync(${JSON.stringify(__filename)}, 'r')
     let n = 0
     ;(async () => { for (;;) { await nu.sendfds(3, Buffer.from('x'), [f, f]); if (++n === 100) console.log('sent 100') } })()`,
      theirs,
    )
    close(theirs)
    let received = 0
    // Take some, kill the sender while it is still sending, then drain to the end.
    while (received < 50 * 2) received += (await recvfds(mine, 1, 2)).fds.map((fd) => (close(fd), fd)).length
    await k.firstLine
    k.child.kill('SIGKILL')
    t.is((await k.done).signal, 'SIGKILL')
    for (;;) {
      const r = await recvfds(mine, 1, 2)
      r.fds.forEach((fd) => close(fd))
      received += r.fds.length
      if (r.data.length === 0) break // EOF: the kernel dropped the killed process's end
    }
    t.true(received >= 200, `received ${received} fds`)
    close(mine)
    t.is(fdCount(), before)
  },
)

test.serial(
  'a receiver killed mid-stream: the sender gets EPIPE or ECONNRESET, and a pending receive settles with EOF',
  async (t) => {
    const before = fdCount()
    const [mine, theirs] = socketpair()
    const k = child(
      `let n = 0
     ;(async () => { for (;;) { const r = await nu.recvfds(3, 1, 4); r.fds.forEach((fd) => nu.close(fd)); if (++n === 50) console.log('got 50') } })()`,
      theirs,
    )
    close(theirs)
    const file = openSync(__filename, 'r')
    const pendingRecv = recvfds(mine, 1, 0) // the child never writes: this waits until it dies
    const sending = (async () => {
      for (;;) await sendfds(mine, Buffer.from('y'), [file, file, file, file])
    })()
    await k.firstLine
    k.child.kill('SIGKILL')
    const err = (await sending.then(
      () => null,
      (e: unknown) => e,
    )) as NodeJS.ErrnoException
    t.true(['EPIPE', 'ECONNRESET'].includes(err.code ?? ''), String(err))
    t.is(err.syscall, 'sendmsg')
    // The child died with our data unread in its queue, so the kernel resets the connection.
    const last = await pendingRecv.then(
      (r) => r.data.length,
      (e: NodeJS.ErrnoException) => e.code,
    )
    t.true(last === 0 || last === 'ECONNRESET', `the pending receive settles with EOF or ECONNRESET, got ${last}`)
    await k.done
    closeSync(file)
    close(mine)
    t.is(fdCount(), before)
  },
)

test.serial(
  'a listener owner killed while our connect waits on its full backlog: connect rejects ECONNREFUSED and closes its socket',
  async (t) => {
    const before = fdCount()
    const name = abstractName('dying')
    const [mine, theirs] = socketpair()
    // The child fills its own backlog (0: one slot) and never accepts.
    const k = child(
      `const l = nu.listen(${JSON.stringify(name)}, nu.backlog(0)); nu.connectSync(${JSON.stringify(name)}); console.log('full')`,
      theirs,
    )
    close(theirs)
    await k.firstLine
    const connecting = connect(name)
    let settled = false
    void connecting.then(
      () => (settled = true),
      () => (settled = true),
    )
    // The connect is retrying, not failed: prove it with a round trip through the loop.
    await new Promise((r) => setImmediate(r))
    t.false(settled)
    k.child.kill('SIGKILL')
    await k.done
    const err = await t.throwsAsync(connecting)
    t.like(err, { code: 'ECONNREFUSED', syscall: 'connect', address: name } as object)
    close(mine)
    t.is(fdCount(), before)
  },
)
