// podman as a real client (issue 12): the same steps on podman's overlay
// driver with mount_program = overlayts and on its native driver (the
// kernel's overlayfs) must give the same results: a 3-step build, a
// container that writes, deletes and renames, `podman diff`, `podman
// commit`, the committed image run and exported (its tree read back through
// the driver's mount). Each driver gets a storage and configuration of its
// own in a temp dir (scripts/bench-lib/podman-store.ts), and an image made
// on the spot from busybox-static (no registry). Teardown removes every
// container, image, mount and file, even on failure.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { busyboxTarball, makeStore, podmanOk, removeStore, type PodmanStore, type StoreKind } from '../../scripts/bench-lib/podman-store.js'
import { run } from '../helpers/exec.js'
import { OVERLAYTS_BIN } from '../helpers/mounts.js'
import { assertSameTree, snapshotTree, type SnapEntry } from '../helpers/snapshot.js'
import { tmpDir } from '../helpers/tmp.js'

const missing = ['podman', 'runc'].filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0)
const skip = process.getuid?.() !== 0 ? 'needs root' : missing.length > 0 ? `not installed: ${missing.join(', ')} (scripts/setup.sh installs them)` : false

const BASE = 'localhost/otstest-base:1'
const BUILT = 'localhost/otstest-built:1'
const COMMITTED = 'localhost/otstest-committed:1'

// Three layers over the base: files, then deletes and renames of what lower
// layers hold (whiteouts, a directory renamed with lower parts), then an
// opaque directory (removed and made again).
const CONTAINERFILE = `FROM ${BASE}
RUN mkdir -p /app/data /app/sub && echo one > /app/data/a && echo two > /app/data/b && echo gone > /app/gone && echo s > /app/sub/s
RUN rm /app/gone /bin/vi && mv /app/data/b /app/data/b2 && mv /app/data /app/data2 && echo three >> /app/data2/a
RUN rm -r /app/sub && mkdir /app/sub && echo fresh > /app/sub/t && ln -s data2/a /app/link
`
// In the container: a write, an append to a lower file (copy-up), deletes
// of a lower file and a lower directory, renames of a lower file and a
// lower directory, a new directory.
const WRITER = [
  'echo new > /new',
  'echo four >> /app/data2/a',
  'rm /app/data2/b2 /bin/wget',
  'rm -r /app/sub',
  'mv /app/link /app/link2',
  'mv /app/data2 /app/data3',
  'mkdir -p /made/deep && echo deep > /made/deep/f',
  'cat /app/data3/a /new /made/deep/f'
].join(' && ')
const LISTER = 'find / -xdev | sort; cat /app/data3/a /new /made/deep/f; readlink /app/link2'

interface Outcome {
  built: string
  written: string
  diff: string[]
  committedRun: string
  exported: SnapEntry[]
}

async function scenario (t: Test, store: PodmanStore, work: string, ctx: string, tar: string): Promise<Outcome> {
  const p = (args: string[], timeoutMs?: number): Promise<string> => podmanOk(store, args, timeoutMs).then((r) => r.stdout)
  await p(['import', '-q', tar, BASE])
  await p(['build', '-q', '--network', 'none', '-t', BUILT, ctx], 300_000)
  const built = await p(['run', '--rm', BUILT, 'sh', '-c', LISTER.replace('/app/data3/a /new /made/deep/f; readlink /app/link2', '/app/data2/a /app/sub/t; readlink /app/link')])
  const written = await p(['run', '--name', 'w', BUILT, 'sh', '-c', WRITER])
  const diff = (await p(['diff', 'w'])).split('\n').filter(Boolean).sort()
  await p(['commit', '-q', 'w', COMMITTED])
  await p(['rm', 'w'])
  const committedRun = await p(['run', '--rm', COMMITTED, 'sh', '-c', LISTER])
  // The committed image's tree, read back through the driver's mount.
  await p(['create', '--name', 'e', COMMITTED, 'true'])
  const exportTar = join(work, 'export.tar')
  await p(['export', '-o', exportTar, 'e'])
  await p(['rm', 'e'])
  const tree = join(work, 'tree')
  await mkdir(tree)
  const x = await run('tar', ['--numeric-owner', '-xpf', exportTar, '-C', tree])
  t.equal(x.code, 0, `${store.kind}: export extracts: ${x.stderr}`)
  return { built, written, diff, committedRun, exported: await snapshotTree(tree, { xattrs: false }) }
}

t.test('podman: overlayts as mount_program matches the native overlay driver', { skip }, async t => {
  const stores: PodmanStore[] = []
  // Registered before tmpDir's own teardown, so it runs first: podman's containers,
  // images and mounts are gone before the directory is removed.
  t.teardown(async () => { for (const s of stores) await removeStore(s) })
  const root = await tmpDir(t, 'podman')
  const tar = busyboxTarball(root)
  const ctx = join(root, 'context')
  await mkdir(ctx)
  await writeFile(join(ctx, 'Containerfile'), CONTAINERFILE)

  const outcomes = new Map<StoreKind, Outcome>()
  for (const kind of ['native', 'overlayts'] as const) {
    const store = makeStore(join(root, kind), kind, OVERLAYTS_BIN)
    stores.push(store)
    const work = join(root, `${kind}-work`)
    await mkdir(work)
    outcomes.set(kind, await scenario(t, store, work, ctx, tar))
  }
  const ots = outcomes.get('overlayts')!
  const native = outcomes.get('native')!
  t.match(native.written, /^one\nthree\nfour\nnew\ndeep\n$/, 'the writer saw its own changes (native)')
  t.equal(ots.built, native.built, 'the built image: same tree and contents')
  t.equal(ots.written, native.written, 'the writing container: same output')
  t.same(ots.diff, native.diff, 'podman diff: same changes')
  t.ok(ots.diff.includes('D /app/sub') && ots.diff.includes('A /app/data3') && ots.diff.includes('D /bin/wget'), 'podman diff sees deletes and renames')
  t.equal(ots.committedRun, native.committedRun, 'the committed image runs with the same tree and contents')
  assertSameTree(t, ots.exported, native.exported, 'the committed image exports the same tree', { actual: 'overlayts', expected: 'native' })
})
