'use strict'
// `node bench/callgrind.js [ROLE] [NFDS]`: user-space instructions per message on each side of a
// bench/peer.js fd-passing case (default fdpass-async 1), under valgrind's callgrind, which is
// repeatable where timings on shared cores are not. Two runs (N1 and N2 messages) are differenced
// so start-up (OpenSSL, bootstrap) cancels out. Kernel time is not seen: see `perf stat` for it.
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const [role = 'fdpass-async', nfds = '1'] = process.argv.slice(2)
const N1 = Number(process.env.CG_N1 || 5000)
const N2 = Number(process.env.CG_N2 || 25000)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'net-unix-cg-'))

/** Per side ('sender' | 'receiver'): Map "function [object]" -> Ir, for one run of n messages. */
function profile(n) {
  const out = path.join(dir, `${n}.%p`)
  execFileSync('valgrind', ['--tool=callgrind', '--trace-children=yes', `--callgrind-out-file=${out}`,
    process.execPath, path.join(__dirname, 'peer.js'), role, String(n), nfds], { stdio: ['ignore', 'ignore', 'ignore'] })
  const sides = {}
  for (const f of fs.readdirSync(dir).filter((f) => f.startsWith(`${n}.`))) {
    const file = path.join(dir, f)
    const cmd = fs.readFileSync(file, 'utf8').match(/^cmd: (.*)$/m)?.[1] ?? ''
    if (!cmd.includes('peer.js')) continue
    const side = cmd.includes('-child') ? 'receiver' : 'sender'
    const text = execFileSync('callgrind_annotate', ['--threshold=100', file], { encoding: 'utf8', maxBuffer: 1 << 28 })
    const fns = new Map()
    for (const line of text.split('\n')) {
      const m = line.match(/^\s*([\d,]+)\s+\([^)]*\)\s+(.*)$/)
      if (!m || m[2] === 'PROGRAM TOTALS') continue
      const name = m[2].replace(/^\S*?:(?=[^:\s]+)/, '') // drop the source file, keep "fn [obj]"
      fns.set(name, (fns.get(name) || 0) + Number(m[1].replace(/,/g, '')))
    }
    sides[side] = fns
  }
  return sides
}

// Coarse buckets, first match wins.
const BUCKETS = [
  ['net-unix addon (Rust)', /net-unix\.linux/],
  ['Node-API layer (napi_*, v8impl, persistent handles)', /napi|v8impl|GlobalHandles|TryCatch|HandleScope|CallbackScope|InternalCallbackScope|AsyncWrap|async_context|EmitAsync|AsyncHooks/],
  ['libuv', /\buv_|\buv__|libuv/],
  ['malloc/free', /malloc|_int_free|\bfree\b|cfree|realloc|tcache/],
  ['V8 promises, await, microtasks', /Promise|Microtask|Await|AsyncFunction|AsyncResume|RunMicrotasks/],
  ['V8 GC', /Heap|Scaveng|Mark|Sweep|Evacuat|Remembered|Slot|Page|Space|Allocation|GC|Marking/],
  ['JIT-compiled JS', /^\?\?\?(:\?\?\?)?\s*(\[\?\?\?\])?$|\[JIT\]|^0x/],
  ['libc syscall wrappers', /libc\.so|libpthread/],
  ['other V8 (builtins, runtime, ICs)', /Builtins_|v8::|node/],
]
const bucketOf = (name) => (BUCKETS.find(([, re]) => re.test(name)) || ['other'])[0]

const a = profile(N1)
const b = profile(N2)
const per = (x) => (x / (N2 - N1)).toFixed(0)
console.log(`# callgrind: ${role} ${nfds} fd(s)/msg, instructions per message = (Ir(${N2}) - Ir(${N1})) / ${N2 - N1}\n`)
for (const side of ['sender', 'receiver']) {
  if (!a[side] || !b[side]) continue
  const delta = new Map()
  for (const [k, v] of b[side]) delta.set(k, v - (a[side].get(k) || 0))
  for (const [k, v] of a[side]) if (!b[side].has(k)) delta.set(k, -v)
  const total = [...delta.values()].reduce((s, v) => s + v, 0)
  const buckets = new Map()
  for (const [k, v] of delta) buckets.set(bucketOf(k), (buckets.get(bucketOf(k)) || 0) + v)
  console.log(`## ${side}: ${per(total)} instructions/message\n`)
  for (const [k, v] of [...buckets].sort((x, y) => y[1] - x[1])) console.log(`- ${k}: ${per(v)} (${((100 * v) / total).toFixed(0)}%)`)
  console.log('\ntop functions:')
  for (const [k, v] of [...delta].sort((x, y) => y[1] - x[1]).slice(0, 25)) console.log(`  ${per(v).padStart(6)}  ${k.slice(0, 110)}`)
  console.log('')
}
fs.rmSync(dir, { recursive: true, force: true })
