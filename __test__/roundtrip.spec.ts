import test from 'ava'
import { close, recvfds, sendfds, socketpair } from '../index.js'
import { turnEnded, fdCount } from './helpers'

test.serial('100,000 sendfds/recvfds round trips leave the fd count unchanged', async (t) => {
  const [a, b] = socketpair()
  const [x] = socketpair()
  const payload = Buffer.from('fd')
  const before = fdCount()
  for (let i = 0; i < 100_000; i++) {
    const r = recvfds(b, 2, 1)
    await sendfds(a, payload, [x])
    const got = await r
    if (got.fds.length !== 1) return t.fail(`round trip ${i}: ${got.fds.length} fds`)
    close(got.fds[0])
  }
  await turnEnded()
  t.is(fdCount(), before)
  ;[a, b, x].forEach(close)
})
