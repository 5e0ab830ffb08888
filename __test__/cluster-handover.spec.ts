// net-unix/cluster under hand-over (API.md §12, §13): a whole cluster, primary and workers,
// replaced by the next one (fixtures/cluster-handover.cjs; its workers load only node:cluster)
// while HTTP clients keep requesting, one step across Node majors.
import test from 'ava'
import { existsSync, statSync } from 'node:fs'
import * as http from 'node:http'
import { NODE22, ROOT, Reporter, fixture, killReporters, runNode, start, tmpPath, waitUntil, within } from './helpers'

interface Event {
  pid: number
  event: 'ready' | 'handover' | 'held' | 'exit' | 'drained' | 'error'
  [k: string]: unknown
}

test.after.always(killReporters)

/** A generation's primary and the JSON lines it reports. */
class Gen extends Reporter<Event> {
  constructor(control: string, node = process.execPath, listen?: unknown[], worker?: object) {
    const args = [fixture('cluster-handover.cjs'), control, '2', JSON.stringify(listen ?? [0, '127.0.0.1'])]
    if (worker) args.push(JSON.stringify(worker))
    super(start(node, args, { env: { ...process.env, NET_UNIX: ROOT } }))
  }
}

/** A GET answered with the worker's pid (at a port of 127.0.0.1, or a Unix path). */
function get(at: number | string, agent: http.Agent | false, path = '/'): Promise<number> {
  const where = typeof at === 'number' ? { host: '127.0.0.1', port: at } : { socketPath: at }
  return new Promise((resolve, reject) => {
    http
      .get({ ...where, path, agent }, (res) => {
        let body = ''
        res.on('data', (d) => (body += d))
        res.on('end', () => resolve(Number(body)))
        res.on('error', reject)
      })
      .on('error', reject)
  })
}

/**
 * Keep-alive and new-connection clients requesting in a loop. Each answer is kept with the
 * epoch its request started in (the test moves to the next epoch once an old cluster is gone).
 */
function loadLoop(port: number) {
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 4 })
  let running = true
  let epoch = 0
  const answers: { epoch: number; pid: number }[] = []
  const failed: string[] = []
  let wake: (() => void) | undefined
  const loop = async (agent: http.Agent | false): Promise<void> => {
    while (running) {
      const started = epoch
      try {
        answers.push({ epoch: started, pid: await get(port, agent) })
      } catch (e) {
        failed.push((e as Error).message)
      }
      wake?.()
    }
  }
  const loops = [...Array(4)].map(() => loop(keepAlive)).concat([...Array(2)].map(() => loop(false)))
  return {
    answers,
    failed,
    next(): number {
      return ++epoch
    },
    /** Waits until `n` requests started in the current epoch were answered. */
    async served(n: number): Promise<{ epoch: number; pid: number }[]> {
      const mine = (): { epoch: number; pid: number }[] => answers.filter((a) => a.epoch === epoch)
      await within(
        new Promise<void>((resolve) => {
          wake = () => mine().length >= n && resolve()
          wake()
        }),
        20_000,
        `${n} requests in epoch ${epoch}`,
      )
      return mine()
    },
    async stop(): Promise<void> {
      running = false
      await Promise.all(loops)
      keepAlive.destroy()
    },
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

test('a cluster primary with its workers is replaced twice under load, once across Node majors: 0 failed requests', async (t) => {
  const control = tmpPath('cluster-ho.sock')
  const gens = [new Gen(control)]
  const first = await gens[0].next('ready')
  const port = first.port as number
  t.is(first.generation, 0)
  t.deepEqual(first.ports, [port], 'both workers share one listener')
  const listeners = first.tcpListeners as { sockets: number; fds: number }
  t.is(listeners.sockets, 1)
  t.is(listeners.fds, 1, 'the listener is held once: no dup for a watcher')
  const load = loadLoop(port)
  t.teardown(() => load.stop()) // a failed step stops the clients too
  const before = await load.served(20)
  t.true(before.every((a) => (first.workers as number[]).includes(a.pid)))

  const nodes = [NODE22, undefined]
  for (const node of nodes) {
    const prev = gens[gens.length - 1]
    const prevReady = await prev.next('ready')
    const next = new Gen(control, node)
    gens.push(next)
    const ready = await next.next('ready')
    t.is(ready.generation, gens.length - 1)
    if (node) t.is(String(ready.node).split('.')[0], '22')
    // listen(0) in the new workers found the old listener under the same key: the same port,
    // and the new primary holds that one socket, in as many fds as the first primary did.
    t.deepEqual(ready.ports, [port])
    t.deepEqual(ready.tcpListeners, listeners)
    await prev.next('handover')
    const r = await within(prev.started.done, 20_000, 'the old primary exits by itself')
    t.is(r.code, 0, r.stderr)
    const exits = prev.events.filter((e) => e.event === 'exit')
    t.deepEqual(exits.map((e) => e.worker).sort(), [...(prevReady.workers as number[])].sort())
    t.true(
      exits.every((e) => e.code === 0 && e.exitedAfterDisconnect === true),
      'its workers exited after draining, as disconnected ones (an app re-forks none of them)',
    )
    t.false((prevReady.workers as number[]).some(alive), 'no old worker is left')
    const order = prev.events.map((e) => e.event)
    t.true(order.lastIndexOf('exit') < order.indexOf('drained'), `drained after the workers' exits: ${order}`)
    // Every request that starts now is served by the new primary's workers.
    load.next()
    const after = await load.served(30)
    t.deepEqual(
      [...new Set(after.map((a) => a.pid))].filter((p) => !(ready.workers as number[]).includes(p)),
      [],
    )
    t.true(new Set(after.map((a) => a.pid)).size > 0)
  }
  await load.stop()
  t.deepEqual(load.failed, [])
  t.log(`${load.answers.length} requests, ${load.failed.length} failed`)
  if (!NODE22) t.log('Node 22 not installed (node scripts/node-majors.js 22): no cross-major step')

  const last = gens[gens.length - 1]
  const lastWorkers = (await last.next('ready')).workers as number[]
  last.kill()
  await last.started.done
  // node:cluster's workers exit when their primary's IPC channel closes.
  await waitUntil(() => !lastWorkers.some(alive), 10_000, 'the last workers exit')
})

test('a Unix-path listener keeps its path and inode when the cluster is replaced', async (t) => {
  const control = tmpPath('cluster-ho.sock')
  const path = tmpPath('http.sock')
  const g0 = new Gen(control, undefined, [path])
  const r0 = await g0.next('ready')
  const inode = statSync(path).ino
  t.true((r0.workers as number[]).includes(await get(path, false)))
  const g1 = new Gen(control, undefined, [path])
  const r1 = await g1.next('ready')
  t.is(r1.generation, 1)
  const r = await within(g0.started.done, 20_000, 'the old primary exits')
  t.is(r.code, 0, r.stderr)
  t.true(existsSync(path), 'the retired primary left the path to its successor')
  t.is(statSync(path).ino, inode)
  t.true((r1.workers as number[]).includes(await get(path, false)))
  g1.kill()
})

test('connections the old primary accepted but could not yet deliver (all workers full) are served, not dropped', async (t) => {
  const control = tmpPath('cluster-ho.sock')
  const g0 = new Gen(control, undefined, undefined, { maxConnections: 1 })
  const r0 = await g0.next('ready')
  const port = r0.port as number
  // Each worker holds one request and so is full: the next connection waits in the primary.
  const held = [get(port, false, '/hold'), get(port, false, '/hold')]
  await waitUntil(() => g0.events.filter((e) => e.event === 'held').length === 2, 10_000, 'both workers hold one')
  const waiting = get(port, false)
  const g1 = new Gen(control)
  await g1.next('ready')
  await g0.next('handover')
  // The old primary retires only once it delivered that connection: its workers are still there.
  t.true((r0.workers as number[]).every(alive))
  g0.started.child.kill('SIGUSR2')
  t.true((r0.workers as number[]).includes(await waiting), 'served by an old worker, as it was accepted there')
  await Promise.all(held)
  t.is((await within(g0.started.done, 20_000, 'the old primary exits')).code, 0)
  g1.kill()
})

test('a listener from a Python predecessor under a cluster key (blocking, as Python makes it) is taken and served', async (t) => {
  const control = tmpPath('ctl.sock')
  // node:cluster's key of listen(0, '127.0.0.1'), as the hand-over names it.
  const py = start('python3', [
    fixture('handover-peer.py'),
    'dying-after-end',
    control,
    'cluster:127.0.0.1:0:4:undefined:0',
  ])
  await py.firstLine
  const g = new Gen(control)
  const ready = await g.next('ready')
  t.is(ready.generation, 8)
  t.deepEqual(ready.tcpListeners, { sockets: 1, fds: 1 })
  for (let i = 0; i < 4; i++) t.true((ready.workers as number[]).includes(await get(ready.port as number, false)))
  await py.done
  g.kill()
})

test('setupPrimary({ handover }) takes only a Handover; Handover.remove() stops passing an fd on', async (t) => {
  const r = await runNode(`
    const { handover, socketpair, close } = require(process.env.NET_UNIX)
    const cluster = require(require('node:path').join(process.env.NET_UNIX, 'cluster.js'))
    const out = {}
    try { cluster.setupPrimary({ handover: {} }) } catch (e) { out.bad = [e.name, e.code] }
    ;(async () => {
      const control = ${JSON.stringify(tmpPath('ctl.sock'))}
      const h = await handover(control)
      const [a, b] = socketpair()
      h.add('kept', a)
      h.add('dropped', b)
      out.removed = [h.remove('dropped'), h.remove('dropped'), h.remove('never')]
      try { h.remove(1) } catch (e) { out.badName = [e.name, e.code] }
      await h.ready()
      const next = await handover(control)
      const kept = next.fd('kept')
      out.next = [kept !== undefined, next.fd('dropped') === undefined]
      close(kept)
      console.log(JSON.stringify(out))
      process.exit(0)
    })()
  `)
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), {
    bad: ['TypeError', 'ERR_INVALID_ARG_TYPE'],
    removed: [true, false, false],
    badName: ['TypeError', 'ERR_INVALID_ARG_TYPE'],
    next: [true, true],
  })
})
