'use strict'
// `npm run soak`: 1,000,000 sendfds/recvfds round trips in one process, reporting RSS growth
// (after warm-up, with a forced GC at both ends) and the fd count. Exits 1 if RSS grew by
// 10 MiB or more, or if any fd leaked. Bounded: SOAK_ROUNDS, and a 10-minute limit.
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')

if (typeof global.gc !== 'function') {
  // Re-run with --expose-gc so both RSS samples are taken after a full collection.
  try {
    execFileSync(process.execPath, ['--expose-gc', __filename], { stdio: 'inherit' })
  } catch (err) {
    process.exitCode = err.status || 1
  }
  return
}

const nu = require('..')
const ROUNDS = Number(process.env.SOAK_ROUNDS || 1_000_000)
// Long enough for V8 to settle its young-generation size, which is growth but not a leak.
const WARMUP = Math.floor(ROUNDS / 5)
const LIMIT_MIB = 10
const deadline = Date.now() + 10 * 60_000
const fdCount = () => fs.readdirSync('/proc/self/fd').length
const rssMiB = () => {
  global.gc()
  return process.memoryUsage().rss / 2 ** 20
}

async function main() {
  const [a, b] = nu.socketpair()
  const [x] = nu.socketpair()
  const payload = Buffer.from('soak')
  let baseRss = 0
  let baseFds = 0
  console.log(`soak: ${ROUNDS.toLocaleString('en-US')} round trips, baseline after ${WARMUP.toLocaleString('en-US')}`)
  const t0 = Date.now()
  for (let i = 1; i <= ROUNDS; i++) {
    const receiving = nu.recvfds(b, 4, 1)
    await nu.sendfds(a, payload, [x])
    const { fds } = await receiving
    if (fds.length !== 1) throw new Error(`round ${i}: ${fds.length} fds`)
    nu.close(fds[0])
    if (i === WARMUP) {
      baseRss = rssMiB()
      baseFds = fdCount()
    }
    if (i % 100_000 === 0) {
      console.log(`${i.toLocaleString('en-US')} round trips, rss ${process.memoryUsage().rss / 2 ** 20 | 0} MiB, ${Math.round(i / ((Date.now() - t0) / 1000)).toLocaleString('en-US')}/s`)
      if (Date.now() > deadline) throw new Error('soak exceeded its time limit')
    }
  }
  const growth = rssMiB() - baseRss
  const fdsNow = fdCount()
  ;[a, b, x].forEach((fd) => nu.close(fd))
  const ok = growth < LIMIT_MIB && fdsNow === baseFds
  console.log(
    `soak: ${ROUNDS.toLocaleString('en-US')} round trips in ${((Date.now() - t0) / 1000).toFixed(1)} s; ` +
      `heap ${(process.memoryUsage().heapTotal / 2 ** 20).toFixed(1)} MiB, RSS ${baseRss.toFixed(1)} -> ${(baseRss + growth).toFixed(1)} MiB (growth ${growth.toFixed(2)} MiB, limit ${LIMIT_MIB}); ` +
      `fds ${baseFds} -> ${fdsNow}: ${ok ? 'ok' : 'FAILED'}`,
  )
  process.exitCode = ok ? 0 : 1
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
