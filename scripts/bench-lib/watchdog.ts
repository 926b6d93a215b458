/**
 * Watchdog thread for the benchmark. The main thread does synchronous I/O on
 * the mounts; if a FUSE daemon hangs, that thread blocks in the kernel and
 * cannot clean up. This worker runs on its own thread: when the deadline the
 * main thread keeps pushing forward passes, it aborts the FUSE connection of
 * every mount still registered and lazily unmounts it, which unblocks the
 * main thread with an error instead of leaving a mount behind.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { forceUnmount } from './mounts.js'

const deadline = new Float64Array(workerData.shared as SharedArrayBuffer)
let mounts: string[] = []
let fired = false

parentPort!.on('message', (m: { mounts?: string[], stop?: boolean }) => {
  if (m.mounts !== undefined) mounts = m.mounts
  if (m.stop === true) { clearInterval(timer); parentPort!.close() }
})

const timer = setInterval(() => {
  const d = deadline[0]!
  if (d > 0 && Date.now() > d && !fired) {
    fired = true
    process.stderr.write(`bench watchdog: deadline passed; aborting ${mounts.length} mount(s): ${mounts.join(' ')}\n`)
    for (const m of mounts) forceUnmount(m)
  }
  if (d > 0 && Date.now() <= d) fired = false
}, 500)
