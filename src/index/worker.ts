/**
 * Worker thread that checks or builds the index off the daemon's request
 * thread. It posts {type:'progress', entries} while building and one
 * {type:'ready', ...IndexStatus} or {type:'error', message} at the end.
 */
import { setPriority } from 'node:os'
import { parentPort, workerData } from 'node:worker_threads'
import type { WhiteoutForm } from '../overlay/layer-form.js'
import type { Layer } from '../overlay/layers.js'
import type { XattrNamespace } from '../overlay/markers.js'
import { ensureIndex } from './build.js'

interface Job { dbPath: string, lowers: Array<{ root: string, index: number, dev: string, ino: string, whiteouts?: WhiteoutForm, xattrs?: XattrNamespace }> }

// The build competes with the request thread for the CPU: on Linux
// setpriority(PRIO_PROCESS, 0) lowers this thread only, so requests answered
// from a layer scan meanwhile keep their speed.
try { setPriority(19) } catch { /* not permitted: build at the daemon's priority */ }

const job = workerData as Job
const lowers: Layer[] = job.lowers.map((l) => ({ root: l.root, role: 'lower', index: l.index, dev: BigInt(l.dev), ino: BigInt(l.ino), ...(l.whiteouts !== undefined ? { whiteouts: l.whiteouts } : {}), ...(l.xattrs !== undefined ? { xattrs: l.xattrs } : {}) }))
try {
  let last = 0
  const status = ensureIndex(job.dbPath, lowers, (entries) => {
    const now = Date.now()
    if (now - last > 500) { last = now; parentPort?.postMessage({ type: 'progress', entries }) }
  })
  parentPort?.postMessage({ type: 'ready', ...status })
} catch (e) {
  parentPort?.postMessage({ type: 'error', message: (e as Error).message })
}
