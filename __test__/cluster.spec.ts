// net-unix/cluster against node:cluster: real primaries and workers (cluster-primary.cjs,
// cluster-worker.cjs: a worker file that never loads net-unix), real HTTP clients.
import test, { type ExecutionContext } from 'ava'
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import net from 'node:net'
import { join } from 'node:path'
import { O_CLOEXEC, ROOT, run, startFixture, tmpPath, waitUntil, within, type Started } from './helpers'

type Message = Record<string, unknown> & { ev: string }

/** A primary fixture, its messages kept in order so a test can wait for any of them. */
class Primary {
  readonly started: Started
  readonly seen: Message[] = []
  #waiters: { match: (m: Message) => boolean; resolve: (m: Message) => void }[] = []

  constructor(
    t: ExecutionContext,
    which: 'net-unix' | 'node',
    options: Record<string, unknown>,
    env: NodeJS.ProcessEnv = {},
  ) {
    this.started = startFixture('cluster-primary.cjs', [which, JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env,
    })
    // A test that failed midway leaves nothing running: the workers of a killed primary exit
    // (node:cluster exits a worker whose IPC channel closes unexpectedly).
    const child = this.started.child
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    this.started.child.on('message', (m: Message) => {
      this.seen.push(m)
      this.#waiters = this.#waiters.filter((w) => !(w.match(m) && (w.resolve(m), true)))
    })
  }

  /** The first message (seen or to come) that matches; rejects after `ms`. */
  next(match: (m: Message) => boolean, what: string, ms = 15000, after = 0): Promise<Message> {
    const old = this.seen.slice(after).find(match)
    if (old) return Promise.resolve(old)
    return within(new Promise((resolve) => this.#waiters.push({ match, resolve })), ms, what)
  }

  /** Every message so far (and to come) matching, until there are `n`. */
  async all(match: (m: Message) => boolean, n: number, what: string): Promise<Message[]> {
    await waitUntil(() => this.seen.filter(match).length >= n, 15000, what)
    return this.seen.filter(match)
  }

  send(command: Record<string, unknown>): void {
    this.started.child.send(command)
  }

  /** Sends `command` and waits until the primary has carried it out. */
  async do(command: Record<string, unknown>): Promise<Message> {
    const from = this.seen.length
    this.send(command)
    return this.next((m) => m.ev === 'did' && m.cmd === command.cmd, `primary did ${command.cmd}`, 5000, from)
  }

  get pid(): number {
    return this.started.child.pid as number
  }

  /** Waits for `n` workers' own 'listening' reports; returns the addresses they saw. */
  async listening(n: number): Promise<Message[]> {
    return this.all((m) => m.ev === 'message' && (m.message as Message).ev === 'listening', n, 'workers listening')
  }

  async stop(): Promise<void> {
    if (this.started.child.exitCode === null && this.started.child.connected) this.send({ cmd: 'disconnectAll' })
    const r = await within(this.started.done, 15000, 'primary exit')
    if (r.code !== 0) throw new Error(`primary exited ${r.code ?? r.signal}: ${r.stderr}`)
  }
}

interface Reply {
  status: number
  body: string
}

/** One request on a new connection (no agent, no keep-alive). */
function get(target: { port?: number; socketPath?: string }, path = '/', secure = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).get(
      { ...target, host: '127.0.0.1', path, agent: false, rejectUnauthorized: false },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (d) => (body += d))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
  })
}

/** `n` requests, `parallel` at a time; each result is a body or the error's code. */
async function load(port: number, n: number, parallel: number): Promise<string[]> {
  const out: string[] = []
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < n) {
      next++
      try {
        out.push((await get({ port })).body)
      } catch (e) {
        out.push(`error:${(e as NodeJS.ErrnoException).code}`)
      }
    }
  }
  await Promise.all(Array.from({ length: parallel }, lane))
  return out
}

const portOf = (m: Message): number => ((m.message as Message).address as net.AddressInfo).port
const fdsOf = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length
/** Nanoseconds on CPU of each thread of `pid`, by name (the main thread is the one with `pid` as its id). */
const threadCpu = (pid: number): { main: number; others: Record<string, number> } => {
  const others: Record<string, number> = {}
  let main = 0
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
    if (Number(tid) === pid) main = ns
    else {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()
      others[name] = (others[name] ?? 0) + ns
    }
  }
  return { main, others }
}
const count = (xs: string[]): Record<string, number> => {
  const c: Record<string, number> = {}
  for (const x of xs) c[x] = (c[x] ?? 0) + 1
  return c
}

test('listen(0): every worker gets the same port, address() and listening events as node:cluster', async (t) => {
  const result: Record<string, { ports: number[]; addresses: unknown[]; events: Message[] }> = {}
  for (const which of ['node', 'net-unix'] as const) {
    const p = new Primary(t, which, { workers: 2, listen: [0] })
    const reports = await p.listening(2)
    const events = await p.all((m) => m.ev === 'listening', 2, 'cluster listening events')
    result[which] = {
      ports: reports.map(portOf),
      addresses: reports.map((m) => ({ ...((m.message as Message).address as object), port: 0 })),
      events: events.sort((a, b) => (a.id as number) - (b.id as number)),
    }
    const port = portOf(reports[0])
    const bodies = await load(port, 40, 4)
    t.deepEqual(
      bodies.filter((b) => !/^[12]$/.test(b)),
      [],
      `${which}: every request answered by a worker`,
    )
    await p.stop()
  }
  const ours = result['net-unix']
  const node = result.node
  t.is(new Set(ours.ports).size, 1, 'one port for both workers')
  t.deepEqual(ours.addresses, node.addresses, 'server.address() as node:cluster gives it')
  const shape = (e: Message): unknown => ({ ...e, address: { ...(e.address as object), port: 0 } })
  t.deepEqual(ours.events.map(shape), node.events.map(shape), "the primary's 'listening' events as node:cluster's")
  t.is((ours.events[0].address as { port: number }).port, ours.ports[0], "the 'listening' event names the real port")
  t.is(ours.events[0].state, 'listening', 'worker.state')
})

test('requests on new connections reach every worker; worker.send works both ways', async (t) => {
  const p = new Primary(t, 'net-unix', { workers: 3, listen: [0] })
  const port = portOf((await p.listening(3))[0])
  const bodies = await load(port, 600, 12)
  const by = count(bodies)
  t.deepEqual(Object.keys(by).sort(), ['1', '2', '3'], JSON.stringify(by))
  // Least-loaded with ties taken in turn: no worker starves (the bench measures evenness).
  for (const n of Object.values(by)) t.true(n >= 100, JSON.stringify(by))
  p.send({ cmd: 'send', id: 2, message: { cmd: 'echo', value: 'ping' } })
  const echo = await p.next((m) => m.ev === 'message' && (m.message as Message).ev === 'echo', 'echo')
  t.is(echo.id, 2)
  t.is((echo.message as Message).value, 'ping')
  await p.stop()
})

test('listen on a path, on { port, host }, and https and net servers', async (t) => {
  // A Unix socket path: address() is the path, the file goes when the last worker does.
  const sock = tmpPath('cluster.sock')
  const p = new Primary(t, 'net-unix', { workers: 2, listen: [sock] })
  const reports = await p.listening(2)
  t.deepEqual(
    reports.map((m) => (m.message as Message).address),
    [sock, sock],
  )
  const replies = await Promise.all(Array.from({ length: 20 }, () => get({ socketPath: sock })))
  t.deepEqual(
    replies.filter((r) => r.status !== 200),
    [],
  )
  await p.stop()
  t.false(existsSync(sock), 'the socket file is removed with the last worker, as libuv does')

  // { port, host } on a fixed port.
  const free = net.createServer().listen(0, '127.0.0.1')
  await new Promise((resolve) => free.once('listening', resolve))
  const fixed = (free.address() as net.AddressInfo).port
  await new Promise((resolve) => free.close(resolve))
  const q = new Primary(t, 'net-unix', { workers: 2, listen: [{ port: fixed, host: '127.0.0.1' }] })
  const at = await q.listening(2)
  t.deepEqual(
    at.map((m) => (m.message as Message).address),
    [0, 1].map(() => ({ address: '127.0.0.1', family: 'IPv4', port: fixed })),
  )
  t.is((await get({ port: fixed })).status, 200)
  await q.stop()

  // https (the TLS handshake in the worker) and a plain net server.
  const dir = tmpPath('tls')
  execFileSync('mkdir', ['-p', dir])
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-days',
      '1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  )
  const key = readFileSync(join(dir, 'key.pem'), 'utf8')
  const cert = readFileSync(join(dir, 'cert.pem'), 'utf8')
  const s = new Primary(t, 'net-unix', { workers: 2, kind: 'https', key, cert, listen: [0] })
  const sport = portOf((await s.listening(2))[0])
  const secure = await Promise.all(Array.from({ length: 10 }, () => get({ port: sport }, '/', true)))
  t.deepEqual(
    secure.map((r) => r.status),
    Array(10).fill(200),
  )
  await s.stop()

  const n = new Primary(t, 'net-unix', { workers: 2, kind: 'net', listen: [0] })
  const nport = portOf((await n.listening(2))[0])
  const said = await new Promise<string>((resolve, reject) => {
    let got = ''
    net
      .connect(nport, '127.0.0.1')
      .on('data', (d) => (got += d))
      .on('end', () => resolve(got))
      .on('error', reject)
  })
  t.regex(said, /^[12]$/)
  await n.stop()
})

test("distribute: the hook's pick serves the connection; undefined leaves it to the default", async (t) => {
  const p = new Primary(t, 'net-unix', { workers: 2, listen: [0], sticky: 2 })
  const port = portOf((await p.listening(2))[0])
  t.deepEqual(await load(port, 40, 8), Array(40).fill('2'), 'every connection to worker 2')
  await p.do({ cmd: 'sticky', to: 1 })
  t.deepEqual(await load(port, 40, 8), Array(40).fill('1'), 'then every one to worker 1')
  await p.do({ cmd: 'sticky', to: -1 })
  t.deepEqual(Object.keys(count(await load(port, 200, 16))).sort(), ['1', '2'], 'then to both')
  await p.stop()
})

test('a crash: connections sent to a worker that never took them go to another; only its own fail', async (t) => {
  // Worker 1 gets every connection (sticky) while its loop is stuck, so they sit unread on its
  // channel; then it is killed. The primary still holds each fd: worker 2 must answer them all.
  const p = new Primary(t, 'net-unix', { workers: 2, listen: [0], sticky: 1 })
  const port = portOf((await p.listening(2))[0])
  p.send({ cmd: 'send', id: 1, message: { cmd: 'block' } })
  const before = p.seen.length
  const requests = Array.from({ length: 8 }, () => get({ port }).catch((e: Error) => ({ status: -1, body: e.message })))
  await p.all((m) => m.ev === 'distribute' && m.to === 1, 8, 'eight connections routed to worker 1')
  t.true(
    p.seen
      .slice(before)
      .filter((m) => m.ev === 'distribute')
      .every((m) => m.to === 1),
  )
  const info = p.seen.find((m) => m.ev === 'distribute')?.info as Record<string, unknown>
  t.is(info.remoteAddress, '::ffff:127.0.0.1', "distribute's info: the client, as net writes it")
  t.true(Number.isInteger(info.remotePort) && (info.remotePort as number) > 0)
  t.is(info.localPort, port)
  t.is(info.key, 'null:0:4:undefined:0', "node:cluster's key")
  await p.do({ cmd: 'kill', id: 1 })
  const replies = await within(Promise.all(requests), 10000, 'requests answered')
  t.deepEqual(
    replies.map((r) => r.body),
    Array(8).fill('2'),
    'every connection worker 1 never took was answered by worker 2',
  )
  const exit = await p.next((m) => m.ev === 'exit' && m.id === 1, 'worker 1 exit')
  t.is(exit.signal, 'SIGKILL')

  // Under load, a worker dies: only requests it had taken may fail; afterwards nobody sends to it.
  await p.do({ cmd: 'sticky', to: -1 })
  p.send({ cmd: 'fork' })
  p.send({ cmd: 'fork' })
  await p.listening(4)
  const during = load(port, 400, 16)
  await p.all((m) => m.ev === 'distribute', 60, 'load under way')
  p.send({ cmd: 'kill', id: 3 })
  const bodies = await during
  const failed = bodies.filter((b) => b.startsWith('error'))
  t.true(
    failed.length <= 16,
    `at most the requests in flight at the dead worker fail: ${JSON.stringify(count(bodies))}`,
  )
  const after = await load(port, 60, 6)
  t.deepEqual(
    after.filter((b) => b !== '2' && b !== '4'),
    [],
    'after the crash only live workers answer, and none fails',
  )
  await p.stop()
})

test('a connection its worker took and read from dies with that worker: never re-sent', async (t) => {
  // The worker acknowledges, reads the request and is killed at once, often before the primary
  // has read that acknowledgement (it reads them lazily): the primary must read it then, and
  // not hand the half-read connection to another worker, where the client would hang. Which
  // comes first is timing: four rounds, each with a fresh worker, to meet that order.
  const p = new Primary(t, 'net-unix', { workers: 2, listen: [0] })
  const port = portOf((await p.listening(2))[0])
  for (let round = 0; round < 4; round++) {
    const exits = p.seen.filter((m) => m.ev === 'exit').length
    const r = await within(
      get({ port }, '/crash').then(
        (x) => `answered by ${x.body}`,
        (e: NodeJS.ErrnoException) => e.code ?? e.message,
      ),
      10000,
      `round ${round}: the crashed request settles`,
    )
    t.regex(r, /^(ECONNRESET|socket hang up)$/, `round ${round}`)
    await p.all((m) => m.ev === 'exit', exits + 1, 'the worker died')
    await p.do({ cmd: 'fork' })
    await p.listening(3 + round)
  }
  t.is((await get({ port })).status, 200, 'the other workers serve on')
  await p.stop()
})

test('maxConnections: a full worker gives the connection to another; all full, it waits in the primary', async (t) => {
  const p = new Primary(t, 'net-unix', { workers: 2, listen: [0], maxConnections: 1 })
  const port = portOf((await p.listening(2))[0])
  const first = get({ port }, '/hold')
  const one = await p.next((m) => m.ev === 'message' && (m.message as Message).ev === 'held', 'first held')
  const second = get({ port }, '/hold')
  const two = await p.next(
    (m) => m.ev === 'message' && (m.message as Message).ev === 'held' && m.id !== one.id,
    'second held',
  )
  t.not(two.id, one.id, 'the second connection went to the worker with room')
  // Both full: a third connection is accepted and waits; it is answered once one has room.
  let thirdDone = false
  const third = get({ port }, '/').then((r) => ((thirdDone = true), r))
  // Both workers refuse it (one round trip each through the primary) before this answers.
  await p.do({ cmd: 'fds' })
  await p.do({ cmd: 'fds' })
  t.false(thirdDone, 'not answered while both workers are full')
  p.send({ cmd: 'send', id: one.id, message: { cmd: 'release' } })
  t.is((await first).body, String(one.id))
  const r = await within(third, 10000, 'third request')
  t.is(r.status, 200, 'the waiting connection was served, never closed')
  p.send({ cmd: 'send', id: two.id, message: { cmd: 'release' } })
  t.is((await second).body, String(two.id))
  await p.stop()
})

test('worker.disconnect() and server.close() drain: in-flight requests finish, new ones go elsewhere', async (t) => {
  const p = new Primary(t, 'net-unix', { workers: 2, listen: [0] })
  const port = portOf((await p.listening(2))[0])
  // A request held in some worker; that worker is then disconnected by the primary.
  const held = get({ port }, '/hold')
  const h = await p.next((m) => m.ev === 'message' && (m.message as Message).ev === 'held', 'held')
  const other = h.id === 1 ? 2 : 1
  await p.do({ cmd: 'disconnect', id: h.id })
  const during = await load(port, 30, 3)
  t.deepEqual(count(during), { [String(other)]: 30 }, 'new connections go to the other worker')
  t.is(
    p.seen.find((m) => m.ev === 'exit' && m.id === h.id),
    undefined,
    'the disconnecting worker waits for its request',
  )
  p.send({ cmd: 'send', id: h.id, message: { cmd: 'release' } })
  t.is((await held).body, String(h.id), 'the held request completes')
  const exit = await p.next((m) => m.ev === 'exit' && m.id === h.id, 'drained worker exits')
  t.is(exit.code, 0)
  t.true(exit.exitedAfterDisconnect as boolean)

  // server.close() in the remaining worker: it stops getting connections; with no worker left
  // listening, the primary's listener closes (as node:cluster's) and connecting is refused.
  p.send({ cmd: 'send', id: other, message: { cmd: 'close' } })
  await p.next((m) => m.ev === 'message' && m.id === other && (m.message as Message).ev === 'closed', 'closed')
  // (The worker's 'close' and its channel message may reach the primary in either order: a
  // connection in between is closed by the primary, never given to the closed server.)
  const refused = await get({ port }).then(
    (r) => `answered by ${r.body}`,
    (e: NodeJS.ErrnoException) => e.code,
  )
  t.regex(String(refused), /^(ECONNREFUSED|ECONNRESET)$/)
  await p.stop()
})

test('the primary keeps no fd after thousands of connections; received fds are close-on-exec', async (t) => {
  const p = new Primary(t, 'net-unix', { workers: 2, listen: [0] })
  const port = portOf((await p.listening(2))[0])
  const base = fdsOf(p.pid)
  const cpu0 = threadCpu(p.pid)
  const bodies = await load(port, 3000, 32)
  t.deepEqual(
    bodies.filter((b) => b !== '1' && b !== '2'),
    [],
  )
  // The connections went through the core's dispatcher thread; the primary's JS thread, where
  // the user's code runs, did no work per connection (it took 30-100 µs each when it did).
  const cpu1 = threadCpu(p.pid)
  const perConn = (a: number, b: number): number => (b - a) / 3000 / 1000
  const dispatcher = perConn(cpu0.others['net-unix-cluste'] ?? 0, cpu1.others['net-unix-cluste'] ?? 0)
  t.log(
    `primary CPU per connection: JS thread ${perConn(cpu0.main, cpu1.main).toFixed(1)} µs, dispatcher ${dispatcher.toFixed(1)} µs`,
  )
  t.true(dispatcher > 0, 'the dispatcher thread accepted and passed them')
  t.true(perConn(cpu0.main, cpu1.main) < 5, 'the JS thread does no per-connection work')
  // The last acknowledgements may still be on their way: wait for the count to come back.
  await waitUntil(() => fdsOf(p.pid) === base, 5000, `primary back to ${base} fds`)
  t.is(fdsOf(p.pid), base)

  const fd = JSON.parse((await get({ port }, '/fd')).body) as { flags: number }
  t.is(fd.flags & O_CLOEXEC, O_CLOEXEC, 'a connection fd as the worker received it')
  for (const id of [1, 2]) {
    const from = p.seen.length
    p.send({ cmd: 'send', id, message: { cmd: 'sockets' } })
    const m = await p.next((x) => x.ev === 'message' && (x.message as Message).ev === 'sockets', 'sockets', 5000, from)
    const open = ((m.message as Message).sockets as { fd: number; flags: number }[]).filter(
      (s) => !(s.flags & O_CLOEXEC),
    )
    t.deepEqual(open, [], `worker ${id}: every socket (channel included) is close-on-exec`)
  }
  await p.stop()
})

test('a primary whose workers are all gone exits by itself', async (t) => {
  const p = new Primary(t, 'net-unix', { workers: 2, listen: [0] })
  await p.listening(2)
  p.send({ cmd: 'disconnectAll' })
  const r = await within(p.started.done, 15000, 'primary exit')
  t.is(r.code, 0, r.stderr)
})

test('ESM import gives node:cluster itself, default and named', async (t) => {
  const script = `import cluster, { isPrimary, fork, setupPrimary } from 'net-unix/cluster'
    import node from 'node:cluster'
    console.log(JSON.stringify([cluster === node, isPrimary, fork === node.fork, setupPrimary === node.setupPrimary]))`
  const r = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), [true, true, true, true])
  const bad = await run(process.execPath, ['-e', `require('net-unix/cluster').setupPrimary({ distribute: 1 })`], {
    cwd: ROOT,
  })
  t.regex(bad.stderr, /ERR_INVALID_ARG_TYPE/)
})

for (const [name, cmd, ...args] of [
  ['bun', join(ROOT, 'node_modules', '@oven', 'bun-linux-x64', 'bin', 'bun')],
  ['deno', join(ROOT, 'node_modules', '@deno', 'linux-x64-glibc', 'deno'), 'run', '--allow-all'],
]) {
  test(`${name}: net-unix/cluster is the runtime's own node:cluster, unchanged`, async (t) => {
    const denoDir = tmpPath('deno')
    const r = await run(cmd, [...args, join(__dirname, 'fixtures', 'cluster-runtime.cjs'), join(ROOT, 'cluster.js')], {
      cwd: ROOT,
      env: { ...process.env, DENO_DIR: denoDir },
    })
    t.is(r.code, 0, r.stderr)
    t.deepEqual(JSON.parse(r.stdout.trim().split('\n').pop() as string), [true, true, 'function'])
  })
}

test("a worker's own cluster.worker.disconnect() drains too", async (t) => {
  const p = new Primary(t, 'net-unix', { workers: 2, listen: [0] })
  const port = portOf((await p.listening(2))[0])
  const held = get({ port }, '/hold')
  const h = await p.next((m) => m.ev === 'message' && (m.message as Message).ev === 'held', 'held')
  await p.do({ cmd: 'send', id: h.id, message: { cmd: 'disconnect' } })
  // Its server closes once the primary has acknowledged (node:cluster's order); meanwhile and
  // after, every request is answered by one worker or the other, none fails.
  const closed = p.next((m) => m.ev === 'message' && m.id === h.id && (m.message as Message).ev === 'closed', 'closed')
  const during = await load(port, 20, 2)
  t.deepEqual(
    during.filter((b) => b !== '1' && b !== '2'),
    [],
  )
  p.send({ cmd: 'send', id: h.id, message: { cmd: 'release' } })
  t.is((await held).body, String(h.id))
  await closed
  const exit = await p.next((m) => m.ev === 'exit' && m.id === h.id, 'exit')
  t.is(exit.code, 0)
  t.true(exit.exitedAfterDisconnect as boolean)
  await p.stop()
})
