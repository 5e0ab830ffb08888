// Hand-over (API.md §12): generations of a real HTTP server (fixtures/handover-app.cjs) replace
// each other under load; the failure modes with real processes, a real second uid, and a
// Python peer speaking the wire format from the README.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import * as dgram from 'node:dgram'
import * as http from 'node:http'
import * as https from 'node:https'
import * as net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSocket } from '../index'
import {
  abstractName,
  fixture,
  killReporters,
  NODE22,
  Reporter,
  ROOT,
  start,
  startFixture,
  tmpPath,
  waitUntil,
  within,
  type Started,
} from './helpers'

interface Event {
  pid: number
  event: 'inherited' | 'ready' | 'handover' | 'drained' | 'error' | 'held'
  [k: string]: unknown
}

test.after.always(killReporters)

/** A generation: its process and the JSON lines it reports. */
class Gen extends Reporter<Event> {
  constructor(control: string, where: string, options: object = {}, node?: string, wrap: string[] = []) {
    const args = [control.replace(/^\0/, '@'), where, JSON.stringify(options)]
    const env = { ...process.env, NET_UNIX: ROOT }
    super(
      node || wrap.length
        ? start(
            wrap[0] ?? node!,
            [
              ...wrap.slice(1),
              ...(wrap.length ? [node ?? process.execPath] : []),
              fixture('handover-app.cjs'),
              ...args,
            ],
            { env },
          )
        : startFixture('handover-app.cjs', args),
    )
  }
}

/** A GET answered by the server, parsed: `{ pid, generation }`. */
function get(
  port: number,
  agent: http.Agent | false,
  path = '/',
): Promise<{ pid: number; generation: number; socketPort: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => {
        try {
          resolve({
            ...(JSON.parse(body) as { pid: number; generation: number }),
            socketPort: req.socket?.localPort ?? 0,
          })
        } catch (e) {
          reject(e)
        }
      })
      res.on('error', reject)
    })
    req.on('error', reject)
  })
}

/** Keep-alive and new-connection clients requesting in a loop until stopped. */
function loadLoop(port: number): { stop: () => Promise<{ ok: number; failed: string[]; pids: Set<number> }> } {
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 4 })
  let running = true
  const stats = { ok: 0, failed: [] as string[], pids: new Set<number>() }
  const loop = async (agent: http.Agent | false): Promise<void> => {
    while (running) {
      try {
        const r = await get(port, agent)
        stats.ok++
        stats.pids.add(r.pid)
      } catch (e) {
        stats.failed.push((e as Error).message)
      }
    }
  }
  const loops = [...Array(4)].map(() => loop(keepAlive)).concat([...Array(2)].map(() => loop(false)))
  return {
    async stop() {
      running = false
      await Promise.all(loops)
      keepAlive.destroy()
      return stats
    },
  }
}

test('a chain of generations under keep-alive and new-connection load answers every request', async (t) => {
  const control = tmpPath('ctl.sock')
  const gens = [new Gen(control, '0', { udp: true })]
  const first = await gens[0].next('ready')
  const port = first.port as number
  const load = loadLoop(port)
  // Node 22 for one step when it is at hand (the demo crosses every major).
  const nodes = [undefined, NODE22, undefined]
  for (const node of nodes) {
    const prev = gens[gens.length - 1]
    const next = new Gen(control, '0', { udp: true }, node)
    gens.push(next)
    const ready = await next.next('ready')
    t.is(ready.generation, gens.length - 1)
    t.is(ready.port, port)
    t.true(ready.cloexec as boolean, 'every inherited socket is close-on-exec')
    // Received: the TCP listener, the UDP socket, and the control connection.
    t.is((ready.socketsAfter as number) - (ready.socketsBefore as number), 3)
    t.is((await prev.next('handover')).event, 'handover')
    const drained = await prev.next('drained')
    t.is(drained.destroyed, 0)
    t.is(drained.socketsDrained, 0, `the old generation holds no socket once drained: ${JSON.stringify(drained)}`)
    t.is((await prev.started.done).code, 0)
    // The UDP socket moved with it.
    const udp = dgram.createSocket('udp4')
    const answer = new Promise<string>((resolve) => udp.once('message', (m) => resolve(String(m))))
    udp.send('who', ready.udpPort as number, '127.0.0.1')
    t.is(await within(answer, 5000, 'udp answer'), String(next.pid))
    udp.close()
  }
  const stats = await load.stop()
  t.deepEqual(stats.failed, [])
  t.true(stats.ok > 50, `${stats.ok} requests`)
  t.true(stats.pids.has(gens[gens.length - 1].pid))
  if (!NODE22) t.log('Node 22 not installed: no cross-major step (see examples/restart)')
  gens[gens.length - 1].kill()
})

test('a Unix-path listener keeps its path and its inode across generations', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'net-unix-ho-'))
  const control = join(dir, 'ctl.sock')
  const path = join(dir, 'http.sock')
  const g0 = new Gen(control, path)
  await g0.next('ready')
  const inode = statSync(path).ino
  t.is(statSync(control).mode & 0o777, 0o600, 'the control socket is mode 0600')
  const g1 = new Gen(control, path)
  await g1.next('ready')
  await g0.next('drained')
  await g0.started.done
  t.is(statSync(path).ino, inode)
  const r = await new Promise<string>((resolve, reject) => {
    http
      .get({ socketPath: path, path: '/' }, (res) => {
        let body = ''
        res.on('data', (d) => (body += d)).on('end', () => resolve(body))
      })
      .on('error', reject)
  })
  t.is(JSON.parse(r).pid, g1.pid)
  g1.kill()
})

/** A raw keep-alive client connection: write a request, read one response. */
function rawClient(port: number): Promise<{ socket: net.Socket; request: (text: string) => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      let buf = ''
      let want: ((s: string) => void) | null = null
      socket.on('data', (d) => {
        buf += d
        const end = buf.indexOf('\r\n\r\n')
        const len = /content-length: (\d+)/i.exec(buf)
        if (end >= 0 && len && buf.length >= end + 4 + Number(len[1]) && want) {
          const out = buf.slice(0, end + 4 + Number(len[1]))
          buf = buf.slice(out.length)
          const w = want
          want = null
          w(out)
        }
      })
      resolve({
        socket,
        request: (text) =>
          new Promise((res) => {
            want = res
            if (text) socket.write(text)
          }),
      })
    })
    socket.on('error', reject)
  })
}
const GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
const bodyPid = (response: string): number => JSON.parse(response.slice(response.indexOf('\r\n\r\n') + 4)).pid

test('an idle keep-alive connection moves between two of its requests; one mid-request stays', async (t) => {
  const control = abstractName('ho-ka')
  const g0 = new Gen(control, '0')
  const port = (await g0.next('ready')).port as number
  const idle = await rawClient(port)
  const busy = await rawClient(port)
  const localPort = idle.socket.localPort
  t.is(bodyPid(await idle.request(GET)), g0.pid)
  t.is(bodyPid(await busy.request(GET)), g0.pid)
  // The next request has begun to arrive: its connection must stay with the old process.
  busy.socket.write('GET / HTTP/1.1\r\nHost: x\r\n')
  const busyClosed = new Promise((resolve) => busy.socket.once('close', resolve))
  const g1 = new Gen(control, '0')
  await g1.next('ready')
  await g0.next('handover')
  const second = await idle.request(GET)
  t.is(bodyPid(second), g1.pid, 'the second request on the same connection is answered by the new process')
  t.is(idle.socket.localPort, localPort)
  t.false(idle.socket.destroyed)
  const rest = await busy.request('\r\n')
  t.is(bodyPid(rest), g0.pid, 'the request that had begun is answered by the old process')
  t.regex(rest, /connection: close/i)
  await within(busyClosed, 5000, 'old process closes the busy connection after its response')
  const drained = await g0.next('drained')
  t.is(drained.handedOver, 1)
  t.is(drained.finished, 1)
  t.is(drained.destroyed, 0)
  idle.socket.destroy()
  g1.kill()
})

test('a request in flight finishes in the old process; the drain deadline destroys and counts', async (t) => {
  const control = abstractName('ho-drain')
  const g0 = new Gen(control, '0', { drain: 400 })
  const port = (await g0.next('ready')).port as number
  const inFlight = get(port, false, '/slow?ms=1')
  const tooSlow = get(port, false, '/slow?ms=60000').catch((e: Error) => e)
  await waitUntil(() => g0.events.filter((e) => e.event === 'held').length === 2, 10_000, 'both requests in the server')
  const g1 = new Gen(control, '0')
  await g1.next('ready')
  t.is((await inFlight).pid, g0.pid)
  const drained = await g0.next('drained')
  t.is(drained.destroyed, 1)
  t.is(drained.finished, 1)
  t.true((await tooSlow) instanceof Error)
  g1.kill()
})

test('a successor that crashes before ready() changes nothing; the next one takes over as generation 1', async (t) => {
  const control = tmpPath('ctl.sock')
  const g0 = new Gen(control, '0')
  const port = (await g0.next('ready')).port as number
  const crash = new Gen(control, '0', { crashBeforeReady: true })
  t.is((await crash.started.done).code, 3)
  t.is((await get(port, false)).pid, g0.pid)
  t.false(g0.events.some((e) => e.event === 'handover'))
  const g1 = new Gen(control, '0')
  t.is((await g1.next('ready')).generation, 1)
  await g0.next('drained')
  g1.kill()
})

test('a successor that misses the timeout is refused; the old process keeps serving', async (t) => {
  const control = abstractName('ho-timeout')
  const g0 = new Gen(control, '0', { timeout: 300 })
  const port = (await g0.next('ready')).port as number
  const late = new Gen(control, '0', { readyDelay: 800 })
  const e = await late.next('error')
  t.is(e.code, 'ERR_HANDOVER_TIMEOUT')
  t.is(e.socketsAfter, 0, 'the late successor closed what it inherited')
  t.is((await late.started.done).code, 4)
  t.is((await get(port, false)).pid, g0.pid)
  const g1 = new Gen(control, '0')
  t.is((await g1.next('ready')).generation, 1)
  await g0.next('drained')
  g1.kill()
})

test('one successor at a time: a second one gets ERR_HANDOVER_BUSY', async (t) => {
  const control = abstractName('ho-busy')
  const g0 = new Gen(control, '0')
  await g0.next('ready')
  const slow = new Gen(control, '0', { readyOnSignal: true })
  // The first holds the hand-over once its listeners arrived (it then waits before ready()).
  t.is((await slow.next('inherited')).generation, 1)
  const second = new Gen(control, '0')
  const e = await second.next('error')
  t.is(e.code, 'ERR_HANDOVER_BUSY')
  t.is(e.socketsAfter, e.socketsBefore)
  slow.started.child.kill('SIGUSR2')
  t.is((await slow.next('ready')).generation, 1)
  await g0.next('drained')
  slow.kill()
})

const PY_PEER = fixture('handover-peer.py')

test('a successor speaking another protocol version is refused; the old process keeps serving', async (t) => {
  const control = abstractName('ho-version')
  const g0 = new Gen(control, '0')
  const port = (await g0.next('ready')).port as number
  const py = start('python3', [PY_PEER, 'successor', control.replace(/^\0/, '@'), '2'])
  const r = await py.done
  t.is(r.code, 0, r.stderr)
  t.is(JSON.parse(r.stdout).code, 'ERR_HANDOVER_VERSION')
  t.is((await get(port, false)).pid, g0.pid)
  // A version-1 Python successor gets every listener (the README's format is the real one).
  const ok = await start('python3', [PY_PEER, 'successor', control.replace(/^\0/, '@'), '1']).done
  t.deepEqual(JSON.parse(ok.stdout).names, ['http'])
  t.is((await get(port, false)).pid, g0.pid, 'it never said READY: nothing changed')
  const g1 = new Gen(control, '0')
  t.is((await g1.next('ready')).generation, 1)
  g1.kill()
})

for (const choice of ['reject', 'fresh'] as const) {
  test(`a predecessor that dies mid-transfer: the successor ${choice === 'reject' ? 'rejects' : 'starts fresh'}, never half-listening`, async (t) => {
    const control = tmpPath('ctl.sock')
    const py = start('python3', [PY_PEER, 'dying-predecessor', control])
    await py.firstLine
    const g = new Gen(control, '0', { onPredecessorLost: choice })
    if (choice === 'reject') {
      const e = await g.next('error')
      t.is(e.code, 'ERR_HANDOVER_PREDECESSOR_GONE')
      t.is(e.socketsAfter, e.socketsBefore, 'the one listener that came is closed again')
    } else {
      const ready = await g.next('ready')
      t.is(ready.generation, 0)
      t.is(ready.socketsAfter, ready.socketsBefore)
      t.not(ready.port, 0)
      t.true(lstatSync(control).isSocket())
      g.kill()
    }
    await py.done
  })
}

test('the peer check: another uid gets ERR_HANDOVER_PEER (abstract name), EACCES on a 0600 path (not stale)', async (t) => {
  const setpriv = ['setpriv', '--reuid=1000', '--regid=2000', '--clear-groups']
  const abstract = abstractName('ho-peer')
  const g0 = new Gen(abstract, '0')
  const port = (await g0.next('ready')).port as number
  const stranger = new Gen(abstract, '0', {}, process.execPath, setpriv)
  const e = await stranger.next('error')
  t.is(e.code, 'ERR_HANDOVER_PEER')
  t.is((await get(port, false)).pid, g0.pid)
  g0.kill()

  const dir = mkdtempSync(join(tmpdir(), 'net-unix-ho-'))
  const { chmodSync } = await import('node:fs')
  chmodSync(dir, 0o755)
  const control = join(dir, 'ctl.sock')
  const p0 = new Gen(control, '0')
  await p0.next('ready')
  const denied = new Gen(control, '0', {}, process.execPath, setpriv)
  t.is((await denied.next('error')).code, 'EACCES')
  t.true(lstatSync(control).isSocket(), 'EACCES is never taken for a stale path')
  p0.kill()
})

test('a control path left by a killed generation is stale: the next process is generation 0', async (t) => {
  const control = tmpPath('ctl.sock')
  const g0 = new Gen(control, '0')
  await g0.next('ready')
  g0.kill()
  await g0.started.done
  t.true(lstatSync(control).isSocket())
  const fresh = new Gen(control, '0')
  t.is((await fresh.next('ready')).generation, 0)
  fresh.kill()
})

test('connections: false keeps idle keep-alive connections out of it: the old process closes them', async (t) => {
  const control = abstractName('ho-noconn')
  const g0 = new Gen(control, '0', { connections: false })
  const port = (await g0.next('ready')).port as number
  const idle = await rawClient(port)
  t.is(bodyPid(await idle.request(GET)), g0.pid)
  const closed = new Promise((resolve) => idle.socket.once('close', resolve))
  const g1 = new Gen(control, '0')
  await g1.next('ready')
  await within(closed, 5000, 'the old process closes the idle connection')
  const drained = await g0.next('drained')
  t.is(drained.handedOver, 0)
  t.is(drained.finished, 1)
  g1.kill()
})

test('a predecessor that dies after END: the successor holds every listener and ready() succeeds', async (t) => {
  const control = tmpPath('ctl.sock')
  const py = start('python3', [PY_PEER, 'dying-after-end', control])
  await py.firstLine
  const g = new Gen(control, '0')
  const ready = await g.next('ready')
  t.is(ready.generation, 8)
  t.is((await get(ready.port as number, false)).pid, g.pid, 'it serves on the listener the Python process made')
  t.true(lstatSync(control).isSocket(), 'and serves successors on the control path')
  await py.done
  g.kill()
})

/** A GET over TLS (the self-signed `ca` trusted, as for `localhost`), parsed: `{ pid }`. */
function httpsGet(
  port: number,
  ca: Buffer,
  agent: https.Agent | false = false,
): Promise<{ pid: number; reused: boolean; connection?: string }> {
  return new Promise((resolve, reject) => {
    const req = https
      .get({ host: '127.0.0.1', servername: 'localhost', port, ca, agent }, (res) => {
        let body = ''
        res
          .on('data', (d) => (body += d))
          .on('end', () =>
            resolve({
              ...(JSON.parse(body) as { pid: number }),
              reused: req.reusedSocket,
              connection: res.headers.connection,
            }),
          )
      })
      .on('error', reject)
  })
}

/** A connection to the echo server: `say(text)` resolves with what came back. */
function echoClient(port: number): Promise<{ socket: net.Socket; say: (text: string) => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.off('error', reject)
      resolve({
        socket,
        say: (text) =>
          new Promise((res) => {
            socket.once('data', (d) => res(String(d)))
            socket.write(text)
          }),
      })
    })
    socket.once('error', reject)
  })
}

/** One datagram to the Unix datagram socket at `path` from an autobound client: the answer. */
async function dgramAsk(path: string): Promise<string> {
  const client = createSocket('unix_dgram').bind()
  try {
    const answer = new Promise<string>((resolve) => client.once('message', (m: Buffer) => resolve(String(m))))
    client.send(Buffer.from('who'), path)
    return await within(answer, 5000, `answer from ${path}`)
  } finally {
    client.close()
  }
}

test('an https.Server, a plain net.Server and a Unix datagram socket (add/fd) move: the same sockets answer from the new pid', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'net-unix-ho-'))
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1'].concat([
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ]),
    { stdio: 'ignore' },
  )
  const ca = readFileSync(join(dir, 'cert.pem'))
  const control = join(dir, 'ctl.sock')
  const dgramPath = join(dir, 'dgram.sock')
  const options = { tls: dir, echo: true, unixDgram: dgramPath }
  const g0 = new Gen(control, '0', options)
  const r0 = await g0.next('ready')
  const [httpsPort, echoPort] = [r0.httpsPort as number, r0.echoPort as number]
  t.is((await httpsGet(httpsPort, ca)).pid, g0.pid)
  t.is(await dgramAsk(dgramPath), String(g0.pid))
  // Clients connected through the hand-over: TLS and plain net connections stay with the old process.
  const pooled = new https.Agent({ keepAlive: true, maxSockets: 1, ca })
  t.like(await httpsGet(httpsPort, ca, pooled), { pid: g0.pid, reused: false })
  const before = await echoClient(echoPort)
  t.is(await before.say('a'), `${g0.pid}:a`)

  const g1 = new Gen(control, '0', options)
  const r1 = await g1.next('ready')
  await g0.next('handover')
  t.deepEqual(r1.inodes, r0.inodes, 'the successor serves on the very sockets (inodes) of generation 0')
  t.is(r1.httpsPort, httpsPort)
  t.is(r1.echoPort, echoPort)
  t.like(r1.unixDgram, { domain: 'unix', socktype: 'dgram', local: dgramPath, cloexec: true })
  t.true(r1.cloexec as boolean, 'every inherited socket is close-on-exec')
  // Received: http, https, echo, the Unix datagram socket, and the control connection.
  t.is((r1.socketsAfter as number) - (r1.socketsBefore as number), 5)
  const links = readdirSync(`/proc/${g1.pid}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${g1.pid}/fd/${fd}`)
    } catch {
      return ''
    }
  })
  for (const [name, ino] of Object.entries(r0.inodes as Record<string, number>))
    t.true(links.includes(`socket:[${ino}]`), `${name}: socket:[${ino}] open in the successor`)

  t.is((await httpsGet(httpsPort, ca)).pid, g1.pid, 'an HTTPS request is answered by the new process')
  const after = await echoClient(echoPort)
  t.is(await after.say('b'), `${g1.pid}:b`, 'a new echo connection is served by the new process')
  t.is(await dgramAsk(dgramPath), String(g1.pid), 'a datagram to the same path is answered by the new process')
  t.is(await before.say('c'), `${g0.pid}:c`, 'the connection made before still echoes, from the old process')
  // The pooled TLS connection: its next request is answered by the old process, which closes it;
  // the pool's next connection reaches the new one. No request fails.
  t.like(await httpsGet(httpsPort, ca, pooled), { pid: g0.pid, reused: true, connection: 'close' })
  t.like(await httpsGet(httpsPort, ca, pooled), { pid: g1.pid, reused: false })
  t.false(
    g0.events.some((e) => e.event === 'drained'),
    'the old process drains only once that connection ends',
  )
  before.socket.end()
  const drained = await g0.next('drained')
  t.like(drained, { finished: 2, destroyed: 0, handedOver: 0 }, 'the TLS and the echo connection ended here')
  t.is(drained.socketsDrained, 0, `the old generation holds no socket once drained: ${JSON.stringify(drained)}`)
  t.is((await g0.started.done).code, 0)
  t.is(statSync(dgramPath).isSocket(), true, 'the datagram path is still bound')
  t.is(await dgramAsk(dgramPath), String(g1.pid))
  after.socket.destroy()
  pooled.destroy()
  g1.kill()
})
