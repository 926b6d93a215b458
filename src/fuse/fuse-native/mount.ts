/**
 * The fuse-native transport: mounting an Overlay with the (patched) libfuse 2 binding, and the FUSE
 * options that make it behave like the kernel's overlayfs:
 *
 * - use_ino: st_ino is the overlay's, not libfuse's own 32-bit counter;
 * - no hard_remove: libfuse's rename of an unlinked open file to .fuse_hidden*
 *   is caught in ops.ts (DetachedFiles), so fstat keeps working on it;
 * - big_writes, max_write/max_read=128 KiB: bulk I/O in 128 KiB requests, the
 *   largest libfuse 2 takes, instead of 4 KiB;
 * - default_permissions (+ allow_other as root): the kernel checks permissions
 *   against the attributes we report, for every caller, as it does for any
 *   local filesystem;
 * - 1 s entry caching: every change goes through this daemon and hence
 *   through the kernel, which updates its dentry cache on its own operations;
 * - 1 s attribute caching (attr_timeout=N to change it). The price: libfuse
 *   2's path-based API gives each name of a hardlinked file its own kernel
 *   inode, so after a change through one name (link, write, chmod, ...) the
 *   other names show their old attributes, and read up to the old size, for
 *   up to that second. attr_timeout=0 closes that window, at a cost measured
 *   by scripts/bench (about 3x on stat, create and unlink): with
 *   default_permissions every path component's permission check then asks
 *   the daemon for the directory's attributes.
 *
 * Read/write request sizes are counted (io-stats.ts) and logged as one
 * `{"msg":"io stats"}` line at unmount and whenever the daemon gets SIGUSR1.
 */
import Fuse from 'fuse-native'
import type { Overlay } from '../../overlay/overlay.js'
import { IoStats } from '../io-stats.js'
import type { FuseMount, FuseMountOptions } from '../mount.js'
import { IO_STATS_SIGNAL } from '../mount.js'
import { makeOperations } from './ops.js'

function escapeOpt (v: string): string {
  return v.replace(/[\\,]/g, (c) => '\\' + c)
}

export function fuseOptions (overlay: Overlay, source: string, attrTimeout = 1): string[] {
  const opts = [
    `fsname=${escapeOpt(source)}`, 'subtype=overlayts',
    'use_ino', 'big_writes', 'max_write=131072', 'max_read=131072',
    'default_permissions', 'entry_timeout=1', `attr_timeout=${attrTimeout}`, 'negative_timeout=1'
  ]
  // As root, like a kernel mount: other users see it, setuid and device files work.
  if (process.getuid?.() === 0) opts.push('allow_other', 'suid', 'dev')
  if (overlay.readOnly) opts.push('ro')
  return opts
}

export function mountFuseNative (overlay: Overlay, o: FuseMountOptions): Promise<FuseMount> {
  const ioStats = new IoStats()
  const ops = makeOperations(overlay, { log: o.log, traceOps: o.traceOps, ioStats })
  // SIGUSR1 -> one io stats line. A listener also replaces Node's default
  // SIGUSR1 action (starting the inspector), which a daemon must not do.
  const onSignal = (): void => ioStats.log(o.log, IO_STATS_SIGNAL)
  let ended = false
  const fuse = new Fuse(o.merged, ops, {
    options: fuseOptions(overlay, o.source, o.attrTimeout ?? 1),
    useIno: true,
    timeout: false,
    onUnmounted: () => {
      if (ended) return
      ended = true
      process.removeListener(IO_STATS_SIGNAL, onSignal)
      ioStats.log(o.log, 'unmount')
      o.onUnmounted()
    }
  })
  return new Promise((resolve, reject) => {
    fuse.mount((err) => {
      if (err) return reject(err)
      if (!ended) process.on(IO_STATS_SIGNAL, onSignal)
      resolve({
        unmount: () => new Promise<void>((res, rej) => fuse.unmount((e) => e ? rej(e) : res())),
        detach: () => new Promise<void>((res, rej) => Fuse.unmount(o.merged, { lazy: true }, (e) => e ? rej(e) : res())),
        ioStats,
        details: { transport: 'fuse-native' }
      })
    })
  })
}
