import test from 'ava'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, run, start, tmpPath } from './helpers'

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

test('the README hand-over example: a second run takes over from the first, which exits', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Hand-over'))
  const example = /```js\n([\s\S]*?)```/.exec(section)?.[1]
  if (!example) return t.fail('no js block in the hand-over section')
  const source = example.replace('/tmp/app-handover.sock', tmpPath('handover.sock')).replace('8080', '0')
  const first = start(process.execPath, ['-e', source], { cwd: ROOT })
  t.is(await first.firstLine, 'generation 0 serving')
  const second = start(process.execPath, ['-e', source], { cwd: ROOT })
  t.is(await second.firstLine, 'generation 1 serving')
  const r = await first.done
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, 'generation 0 serving\na successor took over\n')
  second.child.kill()
})
