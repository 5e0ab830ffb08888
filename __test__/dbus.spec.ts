// dbus-native 0.16 over a private dbus-daemon, both connections through UnixSocket: the seam it
// documents for `opts.stream` (writeWithFds, 'fds', closeFds) with real fd-carrying calls.
import test from 'ava'
import { once } from 'node:events'
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createConnection } from '../index.js'
import type { UnixSocket } from '../index.js'
import { fdCount, start, tmpPath } from './helpers'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const dbus = require('dbus-native') as {
  createClient(opts: { stream: UnixSocket }): Bus
  messageType: { methodReturn: number }
}

interface Message {
  sender: string
  serial: number
  fds?: number[]
  body?: unknown[]
}
interface Bus {
  name: string
  connection: { unixFdsAgreed: boolean; canPassFds: boolean; message(m: object): void; end(): void; stream: UnixSocket }
  nextSerial(): number
  invokeDbus(m: object): Promise<unknown>
  invoke(m: object, cb?: (this: { message: Message }, err: Error | null, ...body: unknown[]) => void): Promise<unknown>
  setMethodCallHandler(path: string, iface: string, member: string, h: [(...args: never[]) => unknown, string]): void
}

const PATH = '/org/netunix/Test'
const IFACE = 'org.netunix.Test'

/** The file's contents, read at offset 0 (every dup of one fd shares its file position). */
function readAll(fd: number): string {
  const buf = Buffer.alloc(256)
  return buf.toString('utf8', 0, readSync(fd, buf, 0, buf.length, 0))
}

test.serial(
  'dbus-native over UnixSocket: UNIX_FD negotiated, fds passed both ways through dbus-daemon, none left behind',
  async (t) => {
    const before = fdCount()
    const socketPath = tmpPath('bus.sock')
    const daemon = start('dbus-daemon', [
      '--session',
      '--nofork',
      '--print-address',
      `--address=unix:path=${socketPath}`,
    ])
    t.teardown(() => {
      if (daemon.child.exitCode === null) daemon.child.kill('SIGTERM')
    })
    const address = await daemon.firstLine
    t.true(address.startsWith('unix:path='), `dbus-daemon said: ${address}`)

    const service = dbus.createClient({ stream: createConnection(socketPath) })
    const client = dbus.createClient({ stream: createConnection(socketPath) })
    // Hello is answered before anything sent after it: one round trip each and the names are known.
    await Promise.all([service, client].map((b) => b.invokeDbus({ member: 'GetId' })))
    t.true(service.connection.unixFdsAgreed)
    t.true(client.connection.unixFdsAgreed)

    // ReadFds(hhh) -> s: the service reads each file through the fd it received, and closes it.
    service.setMethodCallHandler(PATH, IFACE, 'ReadFds', [
      (...args: unknown[]) => {
        const msg = args[args.length - 1] as Message
        const text = (msg.fds ?? []).map(readAll).join('|')
        ;(msg.fds ?? []).forEach(closeSync)
        return text
      },
      's',
    ])
    // GetFd() -> h. dbus-native's handler replies carry no fds, so this one answers itself (the
    // promise it returns never settles, so the library sends no second reply).
    const dir = dirname(socketPath)
    const served = join(dir, 'served.txt')
    writeFileSync(served, 'from the service')
    service.setMethodCallHandler(PATH, IFACE, 'GetFd', [
      (...args: unknown[]) => {
        const msg = args[args.length - 1] as Message
        const fd = openSync(served, 'r')
        service.connection.message({
          type: dbus.messageType.methodReturn,
          serial: service.nextSerial(),
          destination: msg.sender,
          replySerial: msg.serial,
          signature: 'h',
          body: [0],
          fds: [fd],
        })
        closeSync(fd) // writeWithFds sent a dup
        return new Promise(() => {})
      },
      'h',
    ])

    const files = ['alpha', 'bravo', 'charlie'].map((word) => {
      const p = join(dir, `${word}.txt`)
      writeFileSync(p, word)
      return openSync(p, 'r')
    })
    const call = (member: string, signature = '', body: unknown[] = [], fds: number[] = []) =>
      new Promise<{ body: unknown[]; fds: number[] }>((resolve, reject) =>
        client.invoke(
          { destination: service.name, path: PATH, interface: IFACE, member, signature, body, fds },
          function (err, ...reply) {
            if (err) reject(err)
            else resolve({ body: reply, fds: this.message.fds ?? [] })
          },
        ),
      )

    const one = await call('ReadFds', 'hhh', [0, 1, 2], files)
    t.deepEqual(one.body, ['alpha|bravo|charlie'])

    // Many calls at once, several fds each, in both orders.
    const many = await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const order = i % 2 ? [2, 1, 0] : [0, 1, 2]
        return call(
          'ReadFds',
          'hhh',
          [0, 1, 2],
          order.map((k) => files[k]),
        )
      }),
    )
    many.forEach((r, i) => t.is(r.body[0], i % 2 ? 'charlie|bravo|alpha' : 'alpha|bravo|charlie'))

    const returned = await Promise.all(Array.from({ length: 50 }, () => call('GetFd')))
    for (const r of returned) {
      t.deepEqual(r.body, [0])
      t.is(r.fds.length, 1)
      t.is(readAll(r.fds[0]), 'from the service')
      closeSync(r.fds[0])
    }

    files.forEach(closeSync)
    const streams = [service.connection.stream, client.connection.stream]
    service.connection.end()
    client.connection.end()
    await Promise.all(streams.map((s) => (s.closed ? undefined : once(s, 'close'))))
    daemon.child.kill('SIGTERM')
    await daemon.done
    t.is(fdCount(), before)
  },
)
