import test from 'ava'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, run } from './helpers'

test('the README fd-passing example runs and the child reads the passed file', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Passing fds'))
  const example = /```js\n([\s\S]*?)```/.exec(section)?.[1]
  if (!example) return t.fail('no js block in the fd-passing section')
  t.true(
    example
      .trim()
      .split('\n')
      .filter((l) => l.trim()).length <= 10,
  )
  const r = await run(process.execPath, ['-e', example], { cwd: ROOT, timeout: 20000 })
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout.trim(), 'read through a passed fd')
})
