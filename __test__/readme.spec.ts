import test from 'ava'
import { readFileSync, writeFileSync } from 'node:fs'
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

test('the README cluster hand-over example: a second primary takes over, the first exits with its workers', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('### Replacing the primary'))
  const example = /```js\n([\s\S]*?)```/.exec(section)?.[1]
  if (!example) return t.fail('no js block in the cluster hand-over section')
  // Its workers run the file itself (as cluster.fork() does), so it is written to one.
  const file = tmpPath('cluster-example.cjs')
  writeFileSync(
    file,
    example
      .replace("'/tmp/app-primary.sock'", JSON.stringify(tmpPath('primary.sock')))
      .replace("require('net-unix/cluster')", `require(${JSON.stringify(join(ROOT, 'cluster.js'))})`)
      .replace("require('net-unix')", `require(${JSON.stringify(ROOT)})`)
      .replace('.listen(8080)', '.listen(0)'),
  )
  const first = start(process.execPath, [file])
  t.teardown(() => first.child.kill('SIGKILL'))
  t.is(await first.firstLine, 'generation 0 serving')
  const second = start(process.execPath, [file])
  t.teardown(() => second.child.kill('SIGKILL'))
  t.is(await second.firstLine, 'generation 1 serving')
  const r = await first.done
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, 'generation 0 serving\n')
})
