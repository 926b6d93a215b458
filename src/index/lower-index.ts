/**
 * LowerIndex: the lower view the daemon uses when the index is on.
 *
 * The index covers only the lower layers, which never change while mounted;
 * the upper layer is always read live. So no change made through the mount
 * can make the index stale, none has to update it, and no crash can leave it
 * ahead of or behind the upper: it is a pure function of the lowers, checked
 * against them (identity and fingerprint, see fingerprint.ts) at every mount.
 *
 * Once the mount is live (start()), a worker thread checks the index, or
 * builds it, while the daemon already serves from a scan of the layers
 * (always right, slower with many layers); once the worker reports it ready,
 * lookups switch to the index and the worker ends (an idle thread would hold
 * a V8 heap of its own). SQLite is loaded only then: a mount's start-up pays
 * for neither.
 * If a lookup ever finds the index disagreeing with a layer, the daemon goes
 * back to scanning for good and logs why.
 */
import { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import { displayPath } from '../overlay/bytes.js'
import type { Layer } from '../overlay/layers.js'
import type { ListedEntry, LowerEntry, LowerView } from '../overlay/lower-view.js'
import { ScanLowerView } from '../overlay/lower-view.js'
import type { IndexedLowerView } from './indexed-lower-view.js'

type WorkerMessage =
  | { type: 'progress', entries: number }
  | { type: 'ready', entries: number, reused: boolean, reason: string }
  | { type: 'error', message: string }

export class LowerIndex implements LowerView {
  private current: LowerView
  private indexed: IndexedLowerView | undefined
  private worker: Worker | undefined
  private stale = false
  private readonly scan: ScanLowerView
  private closed = false

  constructor (private readonly dbPath: string, private readonly lowers: readonly Layer[], private readonly log: Logger) {
    this.scan = new ScanLowerView(lowers)
    this.current = this.scan
  }

  /** Checks or builds the index in a worker; resolves true once lookups use it. */
  start (): Promise<boolean> {
    const { dbPath, lowers, log, scan } = this
    return new Promise((resolve) => {
      if (this.closed) return resolve(false)
      const started = Date.now()
      let answered = false
      const worker = new Worker(new URL('./worker.js', import.meta.url), {
        workerData: { dbPath, lowers: lowers.map((l) => ({ root: l.root, index: l.index, dev: String(l.dev), ino: String(l.ino), whiteouts: l.whiteouts, xattrs: l.xattrs })) }
      })
      this.worker = worker
      worker.unref()
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'progress') {
          log.info({ index: dbPath, entries: m.entries }, 'building lookup index')
        } else if (m.type === 'ready') {
          answered = true
          void worker.terminate()
          if (this.stale || this.closed) return resolve(false)
          import('./indexed-lower-view.js').then(({ IndexedLowerView }) => {
            if (this.stale || this.closed) return resolve(false)
            this.indexed = new IndexedLowerView(dbPath, lowers, scan, (p) => this.markStale(p, scan))
            this.current = this.indexed
            log.info({ index: dbPath, entries: m.entries, reused: m.reused, reason: m.reason, ms: Date.now() - started }, 'lookup index ready')
            resolve(true)
          }).catch((e: unknown) => {
            log.warn({ index: dbPath, err: e }, 'lookup index unusable; scanning layers')
            resolve(false)
          })
        } else {
          log.warn({ index: dbPath, error: m.message }, 'lookup index failed; scanning layers')
          resolve(false)
        }
      })
      worker.on('error', (err) => {
        log.warn({ index: dbPath, err }, 'lookup index worker failed; scanning layers')
        resolve(false)
      })
      // Ended by us after 'ready' (the import above settles), or on its own before.
      worker.on('exit', () => { this.worker = undefined; if (!answered) resolve(false) })
    })
  }

  private markStale (path: string, scan: LowerView): void {
    if (this.stale) return
    this.stale = true
    this.current = scan
    this.log.warn({ index: this.dbPath, path: displayPath(path) }, 'lookup index disagrees with a lower layer (changed while unmounted?); scanning layers from now on')
  }

  lookup (rel: string): LowerEntry | null { return this.current.lookup(rel) }
  list (rel: string): Map<string, LowerEntry> { return this.current.list(rel) }
  listing (rel: string): Map<string, ListedEntry> { return this.current.listing(rel) }

  async close (): Promise<void> {
    this.closed = true
    await this.worker?.terminate()
    this.indexed?.close()
  }
}
