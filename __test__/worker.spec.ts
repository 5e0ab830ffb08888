import test from 'ava'
import { startFixture } from './helpers'

test('two Workers use the library at once, then 20 Workers are terminated with 100 operations waiting and 20 with 100 deferred past the budget', async (t) => {
  const r = await startFixture('worker.cjs', [], { timeout: 60000 }).done
  t.is(r.code, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  t.deepEqual(out.work, [8000, 8000])
  t.deepEqual(out.ends.sort(), ['100,1', 'pending,1'])
})
