// Coherence of the lookup index: after changes through the mount and a
// remount, and after a lower layer changed between mounts, the view with the
// index equals the view with index=off; a changed or reordered stack gets a
// fresh index; `overlayts index verify` tells a good index from a stale one.
import t from 'tap'
import type { Test } from 'tap'
import { mkdir, readFile, rename, rm, writeFile, appendFile, chmod, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from '../helpers/exec.js'
import { buildStack, richStack } from '../helpers/layers.js'
import { mountOverlayts, OVERLAYTS_BIN, REPO_ROOT } from '../helpers/mounts.js'
import { assertSameTree, snapshotTree } from '../helpers/snapshot.js'
import type { SnapEntry } from '../helpers/snapshot.js'
import { tmpDir } from '../helpers/tmp.js'

type T = Test

interface Logged { msg?: string, reused?: boolean, reason?: string }

async function logLines (file: string): Promise<Logged[]> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Logged)
}

/** Mounts, waits for the index to be ready (when on), snapshots, unmounts. */
async function view (t: T, lower: string[], upper: string, work: string, merged: string, index: 'on' | 'off', log: string, change?: (m: string) => Promise<void>): Promise<{ snap: SnapEntry[], ready: Logged | undefined }> {
  await rm(log, { force: true })
  const extra = ['--log-file', log]
  const spec = { lower, upper, work, merged, extra }
  const m = index === 'off'
    ? await mountOverlayts(t, { ...spec, extra: [...extra] }, {}).catch(async (e) => { throw e })
    : await mountOverlayts(t, spec)
  void m
  let ready: Logged | undefined
  if (index === 'on') {
    const deadline = Date.now() + 60_000
    while (ready === undefined && Date.now() < deadline) {
      ready = (await logLines(log)).find((l) => l.msg === 'lookup index ready')
      if (ready === undefined) await new Promise((r) => setTimeout(r, 50))
    }
  }
  if (change) await change(merged)
  const snap = await snapshotTree(merged, { xattrs: true })
  await m.unmount()
  return { snap, ready }
}

async function changes (m: string): Promise<void> {
  await appendFile(join(m, 'big.bin'), 'more')
  await rm(join(m, 'merged3'), { recursive: true, force: true })
  await mkdir(join(m, 'merged3'))
  await writeFile(join(m, 'merged3', 'new'), 'new\n')
  await rename(join(m, 'dir-over-file'), join(m, 'renamed-dir')).catch(() => {})
  await chmod(join(m, 'empty'), 0o600).catch(() => {})
  await symlink('target', join(m, 'new-link'))
}

t.test('index view equals index=off view, across changes, remounts and changed layers', async (t) => {
  const root = await tmpDir(t, 'index')
  const stack = await buildStack(join(root, 'stack'), richStack(), { form: 'kernel' })
  const upper = join(root, 'u')
  const work = join(root, 'w')
  const merged = join(root, 'm')
  const log = join(root, 'log')
  await mkdir(upper)
  await mkdir(work)
  const withOpt = (index: 'on' | 'off'): string[] => index === 'off' ? ['-o', 'index=off'] : []
  void withOpt

  const first = await view(t, stack.lowers, upper, work, merged, 'on', log, changes)
  t.equal(first.ready?.reused, false, 'first mount builds the index')

  const again = await view(t, stack.lowers, upper, work, merged, 'on', log)
  t.equal(again.ready?.reused, true, 'a remount reuses it')
  assertSameTree(t, again.snap, first.snap, 'remount shows what the first mount left')

  const off = await mountOffView(t, stack.lowers, upper, work, merged)
  assertSameTree(t, again.snap, off, 'index on = index off')

  // A lower layer changed between mounts: a file added deep down, one removed.
  const bottom = stack.lowers[stack.lowers.length - 1]!
  await writeFile(join(bottom, 'added-between-mounts'), 'x')
  const changed = await view(t, stack.lowers, upper, work, merged, 'on', log)
  t.equal(changed.ready?.reused, false, 'a changed layer gets a fresh index')
  t.match(changed.ready?.reason, /changed/)
  t.ok(changed.snap.some((e) => e.path === 'added-between-mounts'), 'and shows the new file')
  assertSameTree(t, changed.snap, await mountOffView(t, stack.lowers, upper, work, merged), 'index on = index off after the change')

  // Reordered layers: another identity.
  const reordered = [...stack.lowers].reverse()
  const r = await view(t, reordered, upper, work, merged, 'on', log)
  t.equal(r.ready?.reused, false, 'reordered layers get a fresh index')
  t.match(r.ready?.reason, /layers differ/)
  assertSameTree(t, r.snap, await mountOffView(t, reordered, upper, work, merged), 'index on = index off, reordered')
})

/** The same view with -o index=off (no index file is read or written). */
async function mountOffView (t: T, lower: string[], upper: string, work: string, merged: string): Promise<SnapEntry[]> {
  const lowerdir = lower.join(':')
  const r = await run(process.execPath, [OVERLAYTS_BIN, 'mount', '-o', `lowerdir=${lowerdir},upperdir=${upper},workdir=${work},index=off`, merged], { timeoutMs: 60_000, cwd: REPO_ROOT })
  t.equal(r.code, 0, `mount index=off: ${r.stderr}`)
  try {
    return await snapshotTree(merged, { xattrs: true })
  } finally {
    const u = await run(process.execPath, [OVERLAYTS_BIN, 'umount', merged], { timeoutMs: 60_000 })
    t.equal(u.code, 0, 'umount')
  }
}

t.test('overlayts index build | verify | drop', async (t) => {
  const root = await tmpDir(t, 'index-cli')
  const stack = await buildStack(join(root, 'stack'), richStack(), { form: 'oci' })
  const work = join(root, 'w')
  await mkdir(work)
  const o = `lowerdir=${stack.lowers.join(':')},workdir=${work}`
  const cli = (...a: string[]) => run(process.execPath, [OVERLAYTS_BIN, 'index', ...a, '-o', o], { timeoutMs: 120_000 })
  const b = await cli('build')
  t.equal(b.code, 0, b.stderr)
  t.match(b.stdout.toString(), /built .*overlayts-index\.db: \d+ entries from 4 layers/)
  t.match(b.stderr, /indexed \d+ entries/, 'shows progress')
  const v = await cli('verify')
  t.equal(v.code, 0, v.stdout.toString())
  t.match(v.stdout.toString(), /ok: \d+ paths checked/)
  await mkdir(join(stack.lowers[1]!, 'a-new-dir'))
  const stale = await cli('verify')
  t.equal(stale.code, 1, 'a changed layer fails verification')
  t.match(stale.stdout.toString(), /not usable: a layer changed/)
  const d = await cli('drop')
  t.equal(d.code, 0)
  const gone = await cli('verify')
  t.match(gone.stdout.toString(), /no index yet/)
})
