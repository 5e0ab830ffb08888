import test from 'ava'
import * as cjs from '../index.js'
import { ROOT, run } from './helpers'

test('ESM import and CommonJS require expose the same names', async (t) => {
  const script = `import * as m from 'net-unix'; import d from 'net-unix'; console.log(JSON.stringify([Object.keys(m).sort(), Object.keys(d).sort()]))`
  const r = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT })
  t.is(r.code, 0, r.stderr)
  const [named, def] = JSON.parse(r.stdout) as string[][]
  const expected = Object.keys(cjs).sort()
  t.deepEqual(
    named.filter((k) => k !== 'default'),
    expected,
  )
  t.deepEqual(def, expected)
})

test('require by package name works and ESM can pass an fd', async (t) => {
  const script = `
    import { socketpair, sendfds, recvfds, close } from 'net-unix'
    const [a, b] = socketpair()
    await sendfds(a, Buffer.from('x'), [a])
    const r = await recvfds(b, 1, 1)
    console.log(r.fds.length)
    ;[a, b, ...r.fds].forEach(close)`
  const r = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT })
  t.is(r.stdout.trim(), '1', r.stderr)
  const c = await run(process.execPath, ['-e', `console.log(typeof require('net-unix').socketpair)`], { cwd: ROOT })
  t.is(c.stdout.trim(), 'function')
})

test('the published types compile for an ESM and a CommonJS consumer', async (t) => {
  const tsc = require.resolve('typescript/bin/tsc')
  const r = await run(process.execPath, [tsc, '-p', '__test__/types/tsconfig.json'], { cwd: ROOT })
  t.is(r.code, 0, r.stdout + r.stderr)
})

test('CommonJS exports are plain writable data properties: assignment and sinon-style stubs replace them', async (t) => {
  // Strict mode, as hot-shots' tests and sinon run: assigning to a getter-only export throws there.
  const script = `'use strict'
    const nu = require('net-unix')
    const getters = Object.entries(Object.getOwnPropertyDescriptors(nu)).filter(([, d]) => d.get || d.set).map(([k]) => k)
    const real = nu.createSocket
    const mock = () => 'mocked'
    nu.createSocket = mock
    const assigned = require('net-unix').createSocket() === 'mocked'
    nu.createSocket = real
    // sinon.stub(obj, name) checks the descriptor, then redefines it; restore puts it back.
    const d = Object.getOwnPropertyDescriptor(nu, 'UnixSocket')
    Object.defineProperty(nu, 'UnixSocket', { ...d, value: mock })
    const stubbed = nu.UnixSocket === mock
    Object.defineProperty(nu, 'UnixSocket', d)
    import('net-unix').then((esm) => {
      let esmThrew = false
      try { esm.socketpair = mock } catch { esmThrew = true }
      console.log(JSON.stringify({ getters, assigned, restored: nu.createSocket === real, stubbed, descriptor: { writable: d.writable, enumerable: d.enumerable, configurable: d.configurable }, esmThrew }))
    })`
  const r = await run(process.execPath, ['-e', script], { cwd: ROOT })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), {
    getters: [],
    assigned: true,
    restored: true,
    stubbed: true,
    descriptor: { writable: true, enumerable: true, configurable: true },
    esmThrew: true,
  })
})
