// fd counts taken while sockets are open, after error paths and with no listener (fdBaseline),
// not only once everything is closed: a leak that destroy() or close() cleans up later, or one
// on a path that throws, shows only there.
import test from 'ava'
import { once } from 'node:events'
import { closeSync, existsSync, openSync } from 'node:fs'
import * as nu from '../index.js'
import { abstractName, fdBaseline, streamPair, tmpPath, turnEnded, within } from './helpers'

test('a long-lived UnixSocket: fd-carrying writes queued behind a large one release their dups once sent, while the socket is open', async (t) => {
  const [a, b] = streamPair({}, t)
  const file = openSync(__filename, 'r')
  let received = 0
  b.on('fds', (fds: number[]) => {
    received += fds.length
    nu.closeFds(fds)
  })
  b.resume()
  const round = async (): Promise<void> => {
    a.write(Buffer.alloc(1 << 20)) // more than the kernel takes at once: still going out...
    a.writeWithFds('y', [file]) // ...so this one is dup'ed and queued behind it
    await within(once(a, 'drain'), 10000, "'drain'")
  }
  await round()
  const fds = await fdBaseline()
  for (let i = 0; i < 10; i++) await round()
  await fds(t, 0, 'after 10 more rounds, both sockets still open')
  await within(
    new Promise<void>((resolve) => (received === 11 ? resolve() : b.on('fds', () => received === 11 && resolve()))),
    10000,
    'all 11 fds received',
  )
  a.destroy()
  b.destroy()
  closeSync(file)
})

test.serial('an evented datagram socket with fds: true and no listener closes the fds that arrive', async (t) => {
  const rx = nu.createSocket({ type: 'unix_dgram', fds: true })
  t.teardown(() => rx.close())
  const name = abstractName('nolisten')
  const listening = once(rx, 'listening')
  rx.bind(name)
  await listening
  const tx = nu.dgramSocket()
  const file = openSync(__filename, 'r')
  const fds = await fdBaseline()
  for (let i = 0; i < 10; i++) nu.sendtoSync(tx, Buffer.from('x'), name, { fds: [file, file] })
  await turnEnded() // the socket reads what is queued when it turns readable, before this turn ends
  await fds(t, 0, 'ten datagrams with two fds each, nobody listening')
  // They were read (not left queued): the next 'message' is the one sent now.
  const next = once(rx, 'message')
  nu.sendtoSync(tx, Buffer.from('marker'), name)
  t.is(((await within(next, 10000, "'message'")) as [Buffer])[0].toString(), 'marker')
  rx.close()
  nu.close(tx)
  closeSync(file)
})

test.serial(
  'error paths leave no fd and no file: a failed notifyBarrier, dgramSocket bind + failed connect, a refused createConnection',
  async (t) => {
    const fds = await fdBaseline()
    const saved = process.env.NOTIFY_SOCKET
    process.env.NOTIFY_SOCKET = `@${abstractName('nobody').slice(1)}`
    try {
      for (let i = 0; i < 3; i++) await t.throwsAsync(nu.notifyBarrier(), { code: 'ECONNREFUSED' })
    } finally {
      if (saved === undefined) delete process.env.NOTIFY_SOCKET
      else process.env.NOTIFY_SOCKET = saved
    }
    await fds(t, 0, 'three notifyBarrier() with nobody listening')

    // "a socket file bind made is removed" when the connect after it fails.
    const path = tmpPath('bound.sock')
    t.throws(() => nu.dgramSocket({ bind: path, connect: tmpPath('nobody.sock') }), { code: 'ENOENT' })
    t.false(existsSync(path), 'the file bind made')
    await fds(t, 0, 'dgramSocket({ bind, connect }) that failed')
    nu.close(nu.dgramSocket({ bind: path })) // the path is free again
    t.true(existsSync(path))

    const c = nu.createConnection(tmpPath('nobody.sock'))
    t.teardown(() => c.destroy())
    const closed = new Promise((resolve) => c.once('close', resolve)) // once() would reject on 'error'
    const err = await within(
      new Promise<NodeJS.ErrnoException>((resolve) => c.once('error', resolve)),
      10000,
      "'error'",
    )
    t.is(err.code, 'ENOENT')
    await closed
    await fds(t, 0, 'a createConnection that failed')
  },
)
