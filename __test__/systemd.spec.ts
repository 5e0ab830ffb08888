// systemd's protocol against the real tools: systemd-notify talking to a net-unix datagram
// socket as the service manager (path and abstract name, with its barrier), our notify /
// notifyBarrier / FDSTORE, and systemd-socket-activate handing a listener to listenFds().
import test from 'ava'
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import * as nu from '../index.js'
import { abstractName, fdCount, fixture, ROOT, run, start, tmpPath } from './helpers'
import type { Started } from './helpers'

interface Received {
  text: string
  cred?: nu.Credentials
  fds: number[]
}

/** A datagram socket acting as the service manager: records what arrives, closes the fds. */
function manager(address: string): { socket: nu.UnixDgramSocket; got: Received[] } {
  const got: Received[] = []
  const socket = nu.createSocket({ type: 'unix_dgram', fds: true, credentials: true }, (msg, rinfo) => {
    got.push({ text: msg.toString(), cred: rinfo.cred, fds: rinfo.fds ?? [] })
    // Closing the barrier pipe's write end is what lets the sender go on.
    rinfo.fds?.forEach((fd) => nu.close(fd))
  })
  socket.bind(address)
  return { socket, got }
}

for (const kind of ['path', 'abstract name'] as const) {
  test.serial(
    `systemd-notify --ready --status reaches a net-unix manager by ${kind}, with credentials and its barrier`,
    async (t) => {
      const address = kind === 'path' ? tmpPath('notify.sock') : abstractName('notify')
      const { socket, got } = manager(address)
      const env = { ...process.env, NOTIFY_SOCKET: kind === 'path' ? address : `@${address.slice(1)}` }
      const r = await run('systemd-notify', ['--ready', '--status=net-unix says hi'], { env })
      t.is(r.code, 0, `systemd-notify exits 0 only once its barrier fd was received and closed: ${r.stderr}`)
      const ready = got.find((m) => m.text.includes('READY=1'))
      t.truthy(ready, JSON.stringify(got))
      t.true(ready!.text.split('\n').includes('STATUS=net-unix says hi'))
      t.is(ready!.cred?.uid, process.getuid!())
      t.true(ready!.cred!.pid > 0)
      const barrier = got.find((m) => m.text === 'BARRIER=1')
      t.truthy(barrier, 'the barrier came')
      t.is(barrier!.fds.length, 1, 'with its pipe fd')
      socket.close()
    },
  )
}

test.serial('notify() with FDSTORE=1 and fdname, then notifyBarrier(), against our own manager', async (t) => {
  const before = fdCount()
  const address = abstractName('self')
  const got: Received[] = []
  const kept: number[] = []
  const socket = nu.createSocket({ type: 'unix_dgram', fds: true, credentials: true }, (msg, rinfo) => {
    got.push({ text: msg.toString(), cred: rinfo.cred, fds: rinfo.fds ?? [] })
    if (msg.toString() === 'BARRIER=1') rinfo.fds!.forEach((fd) => nu.close(fd))
    else kept.push(...(rinfo.fds ?? []))
  })
  socket.bind(address)
  const saved = process.env.NOTIFY_SOCKET
  process.env.NOTIFY_SOCKET = `@${address.slice(1)}`
  try {
    const file = tmpPath('stored.txt')
    writeFileSync(file, 'stored state')
    const fd = openSync(file, 'r')
    t.true(await nu.notify('FDSTORE=1', { fds: [fd], fdname: 'state' }))
    closeSync(fd) // the caller's copy; the manager has its own
    t.true(await nu.notify('READY=1\nSTATUS=up'))
    t.true(await nu.notifyBarrier({ timeout: 5000 }))
    t.is(got.length, 3, 'the barrier resolves after everything before it arrived')
    t.deepEqual(
      got.map((m) => m.text),
      ['FDSTORE=1\nFDNAME=state', 'READY=1\nSTATUS=up', 'BARRIER=1'],
    )
    t.deepEqual(got[0].cred, { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() })
    t.is(readFileSync(kept[0], 'utf8'), 'stored state')
    kept.forEach((k) => nu.close(k))
    await t.throwsAsync(nu.notify('X=1', { fdname: 'a:b' }), { code: 'ERR_OUT_OF_RANGE' })
    await t.throwsAsync(nu.notify(1 as never), { code: 'ERR_INVALID_ARG_TYPE' })
    process.env.NOTIFY_SOCKET = '@net-unix-nobody-listens-here'
    await t.throwsAsync(nu.notify('READY=1'), { code: 'ECONNREFUSED' })
    delete process.env.NOTIFY_SOCKET
    t.false(await nu.notify('READY=1'), 'no $NOTIFY_SOCKET: false, as sd_notify returns 0')
    t.false(await nu.notifyBarrier())
  } finally {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET
    else process.env.NOTIFY_SOCKET = saved
  }
  await new Promise<void>((resolve) => socket.close(resolve))
  t.is(fdCount(), before)
})

test.serial('notifyBarrier() times out with ETIMEDOUT when the manager keeps the fd', async (t) => {
  const address = abstractName('hold')
  const held: number[] = []
  const socket = nu.createSocket({ type: 'unix_dgram', fds: true }, (_m, rinfo) => held.push(...rinfo.fds!))
  socket.bind(address)
  const saved = process.env.NOTIFY_SOCKET
  process.env.NOTIFY_SOCKET = `@${address.slice(1)}`
  try {
    await t.throwsAsync(nu.notifyBarrier({ timeout: 50 }), { code: 'ETIMEDOUT' })
  } finally {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET
    else process.env.NOTIFY_SOCKET = saved
    held.forEach((fd) => nu.close(fd))
    socket.close()
  }
})

test.serial(
  'systemd-socket-activate -l PATH: the app gets its listener from listenFds() and serves a connection',
  async (t) => {
    const path = tmpPath('activated.sock')
    // Connecting starts the app (fixtures/systemd-app.cjs).
    const sa = await activate(path, ['--fdname=web'], 'systemd-app.cjs')
    const c = await nu.connect(path)
    const chunks: Buffer[] = []
    for (;;) {
      const r = await nu.recvfds(c, 4096, 0)
      if (r.data.length === 0) break
      chunks.push(Buffer.from(r.data))
    }
    nu.close(c)
    const info = JSON.parse(Buffer.concat(chunks).toString())
    t.deepEqual(info.fds, [{ name: 'web', type: 'stream' }])
    t.is(info.env, null, 'listenFds() unset LISTEN_FDS by default')
    const r = await sa.done
    t.is(r.code, 0, r.stderr)
  },
)

test.serial('listenFds() returns [] for another process, and types every fd it is given', async (t) => {
  t.deepEqual(nu.listenFds(), [])
  const script = `
    const nu = require(process.env.NET_UNIX)
    process.env.LISTEN_PID = String(process.pid)
    process.env.LISTEN_FDS = '3'
    process.env.LISTEN_FDNAMES = 'a:b'
    console.log(JSON.stringify(nu.listenFds({ unsetEnvironment: false }).map(({ fd, name, type }) => [fd, name, type])), process.env.LISTEN_FDS)`
  const [s1] = nu.socketpair(nu.seqpacket)
  const d = nu.dgramSocket()
  const file = openSync(__filename, 'r')
  const r = await run(process.execPath, ['-e', script], {
    env: { ...process.env, NET_UNIX: ROOT, LISTEN_PID: '1' },
    stdio: ['ignore', 'pipe', 'pipe', s1, d, file],
  })
  t.is(r.stdout.trim(), '[[3,"a","seqpacket"],[4,"b","dgram"],[5,"unknown","other"]] 3', r.stderr)
  ;[s1, d].forEach((fd) => nu.close(fd))
  closeSync(file)
})

/** Starts systemd-socket-activate listening on `path` for `app`; resolves once it says (on stderr) it listens. */
async function activate(path: string, args: string[], app = 'systemd-adopt.cjs'): Promise<Started> {
  const sa = start('systemd-socket-activate', ['-l', path, ...args, process.execPath, fixture(app)])
  await new Promise<void>((resolve, reject) => {
    let err = ''
    sa.child.stderr!.on('data', (d) => {
      err += d
      if (err.includes('Listening on')) resolve()
    })
    sa.child.once('exit', () => reject(new Error(err)))
  })
  return sa
}

for (const kind of ['stream', 'seqpacket', 'dgram'] as const) {
  test.serial(
    `systemd-socket-activate${kind === 'stream' ? '' : kind === 'dgram' ? ' --datagram' : ' --seqpacket'}: listenFds() entries carry info, and adopt() serves through the right object`,
    async (t) => {
      const path = tmpPath(`${kind}.sock`)
      const flag = kind === 'stream' ? [] : kind === 'dgram' ? ['--datagram'] : ['--seqpacket']
      const sa = await activate(path, [...flag, '--fdname=svc'])
      let reply: string
      if (kind === 'dgram') {
        const d = nu.dgramSocket({ bind: true })
        await nu.sendto(d, Buffer.from('hello'), path)
        reply = (await nu.recvfrom(d, 65536)).data.toString()
        nu.close(d)
      } else {
        const c = kind === 'seqpacket' ? await nu.connect(path, nu.seqpacket) : await nu.connect(path)
        await nu.sendfds(c, Buffer.from('hello'), [])
        const chunks: Buffer[] = []
        for (;;) {
          const r = await nu.recvfds(c, 65536, 0)
          if (r.data.length === 0) break
          chunks.push(Buffer.from(r.data))
        }
        nu.close(c)
        reply = Buffer.concat(chunks).toString()
      }
      t.true(reply.startsWith('hello:'), reply)
      const got = JSON.parse(reply.slice('hello:'.length))
      t.is(got.name, 'svc')
      t.is(got.type, kind)
      t.like(got.info, {
        type: 'socket',
        domain: 'unix',
        socktype: kind,
        listening: kind !== 'dgram',
        connected: false,
        local: path,
        remote: null,
        cloexec: true,
      })
      t.is(got.object, kind === 'dgram' ? 'UnixDgramSocket' : 'UnixServer')
      const r = await sa.done
      t.is(r.code, 0, r.stderr)
    },
  )
}
