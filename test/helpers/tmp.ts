// Per-test temporary directories under $TMPDIR/overlayts-test/<pid>-XXXXXX
// ($TMPDIR defaults to /tmp; Dockerfile.test points it at a volume, since the
// kernel refuses whiteouts and an overlayfs upper on a container's overlay root).
// The pid in the name lets cleanupStaleMounts() recognise leftovers of dead
// test processes without touching the live mounts of parallel tap jobs.
import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises'
import { promisify } from 'node:util'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cleanupStaleMounts, mountsUnder, pidAlive, unmount, type TeardownHost } from './mounts.js'

/** OVERLAYTS_TEST_TMP moves it (the user-namespace runs use a directory their ids own). */
export const TMP_PREFIX = process.env.OVERLAYTS_TEST_TMP ?? join(tmpdir(), 'overlayts-test')

let staleChecked: Promise<void> | undefined

/** Once per process: unmount and delete what dead test processes left behind. */
export async function cleanupStale (): Promise<void> {
  staleChecked ??= (async () => {
    await mkdir(TMP_PREFIX, { recursive: true })
    await cleanupStaleMounts(TMP_PREFIX, { onlyDeadOwners: true })
    for (const name of await readdir(TMP_PREFIX)) {
      const owner = /^(\d+)-/.exec(name)
      if (owner === null || pidAlive(Number(owner[1]))) continue
      await removeTree(join(TMP_PREFIX, name)).catch(() => undefined)
    }
  })()
  return await staleChecked
}

/**
 * rm -rf that never recurses into a mounted dir: anything mounted at or below
 * `dir` is unmounted first (with the full escalation of unmount()); if a mount
 * survives, nothing is removed and an error is thrown.
 */
export async function removeTree (dir: string): Promise<void> {
  for (const m of await mountsUnder(dir)) await unmount(m.mountPoint)
  const left = await mountsUnder(dir)
  if (left.length > 0) {
    throw new Error(`refusing to remove ${dir}: still mounted: ${left.map(m => m.mountPoint).join(', ')}`)
  }
  await rm(dir, { recursive: true, force: true }).catch(async (e: NodeJS.ErrnoException) => {
    // Trees deeper than PATH_MAX (the deep-path tests): rm(1) walks them relative to dir fds.
    if (e.code !== 'ENAMETOOLONG') throw e
    await promisify(execFile)('rm', ['-rf', '--one-file-system', '--', dir])
  })
}

/**
 * A fresh unique directory, removed in teardown. Mount teardowns registered
 * later on the same `t` may run after this one (tap runs teardowns in
 * registration order), so the removal unmounts leftovers itself before deleting.
 */
export async function tmpDir (t: TeardownHost, label = 't'): Promise<string> {
  await cleanupStale()
  const safe = label.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40)
  const dir = await mkdtemp(join(TMP_PREFIX, `${process.pid}-${safe}-`))
  t.teardown(async () => {
    if (process.env.OVERLAYTS_KEEP_TMP === '1') {
      process.stderr.write(`# keeping ${dir}\n`)
      for (const m of await mountsUnder(dir)) await unmount(m.mountPoint)
      return
    }
    await removeTree(dir)
  })
  return dir
}
