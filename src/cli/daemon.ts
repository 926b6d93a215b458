/**
 * The daemon: builds the layer stack, mounts it, serves until unmounted.
 *
 * It ends cleanly on `overlayts umount`, a plain `umount` (the FUSE loop
 * ends), SIGTERM or SIGINT (it unmounts first). An exception that escapes an
 * operation is logged and the daemon keeps serving: one bad request must not
 * take a container's root filesystem away.
 */
import type { Logger } from 'pino'
import { mountFuse } from '../fuse/mount.js'
import { LowerIndex } from '../index/lower-index.js'
import { displayPath } from '../overlay/bytes.js'
import { Overlay } from '../overlay/overlay.js'
import { openStack, prepareWork } from '../overlay/stack.js'
import type { UpperFormChoice } from '../overlay/upper-form.js'
import { chooseUpperForm, lowerXattrNamespace } from '../overlay/upper-form.js'
import { sys } from '../overlay/sys/fs.js'
import { indexPath } from '../mount-config/index-path.js'
import type { MountOptions } from '../mount-config/mount-options.js'
import { mountRecordOf, removeMountRecord, writeMountRecord } from '../mount-config/mount-record.js'
import { removePidFile, writePidFile } from '../mount-config/pidfile.js'

/** How long a mount serves from a scan of its layers before the index is checked or built. */
const INDEX_DELAY_MS = 1000

export interface DaemonOptions {
  readonly merged: string
  readonly source: string
  readonly mount: MountOptions
  readonly log: Logger
  readonly traceOps: boolean
  /** Told once the mount is live (or failed): the detaching parent waits for it. */
  readonly ready?: (err: Error | null) => void
}

export async function runDaemon (o: DaemonOptions): Promise<number> {
  const { log } = o
  // Modes asked for through the mount are final: the kernel applied the caller's umask already.
  process.umask(0)
  const spec = o.mount.readOnly && o.mount.upper !== undefined
    ? { lowers: [o.mount.upper, ...o.mount.lowers], merged: o.merged, whiteouts: o.mount.whiteouts }
    : { lowers: o.mount.lowers, upper: o.mount.upper, workdir: o.mount.workdir, merged: o.merged, whiteouts: o.mount.whiteouts }
  let overlay: Overlay
  let index: LowerIndex | undefined
  let db: string | undefined
  let markers: UpperFormChoice
  try {
    const opened = openStack(spec)
    await prepareWork(opened)
    // The upper's marker form: what the upper's filesystem lets this daemon
    // write, probed in the work dir, unless the options say.
    markers = opened.work !== undefined
      ? chooseUpperForm(sys, opened.work, o.mount.upperForm)
      : { form: o.mount.upperForm === 'userxattr' ? 'userxattr' : 'kernel', reason: 'no upper' }
    if (markers.form === 'userxattr' && o.mount.redirectDir === 'on') throw new Error(`conflicting options: redirect_dir=on, and the upper needs userxattr (${markers.reason})`)
    const xattrs = lowerXattrNamespace(markers.form)
    const stack = xattrs === 'trusted' ? opened : { ...opened, lowers: opened.lowers.map((l) => ({ ...l, xattrs })) }
    db = indexPath(o.mount, stack)
    index = db === undefined ? undefined : new LowerIndex(db, stack.lowers, log)
    overlay = new Overlay(stack, { lowerView: index, upperForm: markers.form })
  } catch (e) {
    o.ready?.(e as Error)
    throw e
  }
  const shown = (p: string | undefined): string | undefined => p === undefined ? undefined : displayPath(p)
  const layers = { lowerdir: overlay.stack.lowers.map((l) => displayPath(l.root)), upperdir: shown(overlay.stack.upper?.root), workdir: shown(overlay.stack.workdir) }

  let finish: (code: number) => void = () => {}
  const done = new Promise<number>((resolve) => { finish = resolve })

  process.on('uncaughtException', (err) => log.error({ err }, 'uncaught exception (request answered EIO, daemon continues)'))
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection (daemon continues)'))

  let mount
  try {
    mount = await mountFuse(overlay, {
      merged: o.merged,
      source: o.source,
      log,
      traceOps: o.traceOps,
      transport: o.mount.transport,
      attrTimeout: o.mount.attrTimeout,
      passthrough: o.mount.passthrough,
      uring: o.mount.uring,
      onUnmounted: () => {
        log.info({ merged: o.merged, ...layers }, 'unmounted')
        void Promise.allSettled([overlay.closeAll(), index?.close()]).finally(() => finish(0))
      }
    })
  } catch (e) {
    const err = new Error(`cannot mount ${o.merged}: ${(e as Error).message}`)
    o.ready?.(err)
    throw err
  }
  writePidFile(o.merged)
  writeMountRecord(mountRecordOf(o.merged, o.mount, overlay.stack, db, markers.form))
  log.info({ merged: o.merged, ...layers, readOnly: overlay.readOnly, markers: markers.form, markersReason: markers.reason, ...mount.details }, 'mounted')
  o.ready?.(null)
  // The index is checked (or built) only a moment after the mount is live:
  // until it is ready, lookups scan the layers, which is always right. A
  // short-lived mount (a container running one command, a build step) then
  // never pays for a worker thread, SQLite and a walk of every layer.
  if (index !== undefined) setTimeout(() => { void index!.start() }, INDEX_DELAY_MS).unref()

  // On a signal, unmount; if files are still open there (EBUSY), detach the
  // mount as fuse-overlayfs does and exit: the kernel then answers the
  // remaining users with ENOTCONN, and nobody can open anything new.
  let detached = false
  const stop = (signal: string): void => {
    log.info({ signal }, 'unmounting on signal')
    mount.unmount().catch(async (busy: unknown) => {
      log.warn({ signal, reason: (busy as Error).message }, 'mount busy: detaching it')
      try {
        await mount.detach()
      } catch (err) {
        log.error({ err }, 'unmount failed')
        finish(1)
        return
      }
      log.info({ merged: o.merged, ...layers, openHandles: overlay.openHandles, detached: true }, 'unmounted')
      await Promise.allSettled([overlay.closeAll(), index?.close()])
      detached = true
      finish(0)
    })
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
  const code = await done
  removeMountRecord(o.merged)
  removePidFile(o.merged)
  // A detached mount keeps the FUSE thread (and so the process) alive until
  // its last user lets go: end the process now; the kernel answers the rest.
  if (detached) process.exit(code)
  return code
}
