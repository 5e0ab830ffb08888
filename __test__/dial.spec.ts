import test from 'ava'
import { acceptSync, close, dial, listen, registerproto } from '../index.js'
import { abstractName } from './helpers'

test('dial("unix") connects with the provider registered at import', async (t) => {
  const name = abstractName('dial')
  const l = listen(name)
  const c = await dial('unix', name)
  const a = acceptSync(l)
  t.true(c > 2 && a > 2)
  ;[a, c, l].forEach(close)
})

test('registerproto adds a provider that dial uses', async (t) => {
  const seen: string[] = []
  registerproto('test-proto', async (address, service) => {
    seen.push(`${address}|${service}`)
    return 42
  })
  t.is(await dial('test-proto', 'here', 'svc'), 42)
  t.deepEqual(seen, ['here|svc'])
})

test('dial rejects an unknown protocol with ERR_UNKNOWN_PROTOCOL', async (t) => {
  await t.throwsAsync(dial('carrier-pigeon', 'x'), { code: 'ERR_UNKNOWN_PROTOCOL' } as object)
})
