// podman as a real client (issue 12): the same steps on podman's overlay
// driver with mount_program = overlayts and on its native driver (the
// kernel's overlayfs) must give the same results, as root and rootless: a
// 3-step build, a container that writes, deletes and renames, `podman
// diff`, `podman commit`, and the committed image run (its whole tree
// listed with checksums). Each driver gets a storage and configuration of
// its own in a temp dir (scripts/bench-lib/podman-store.ts), and an image
// made on the spot from busybox-static (no registry). Teardown removes
// every container, image, mount, daemon and file, even on failure.
import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, rmSync, statSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { busyboxTarball, makeStore, podmanOk, removeStore, type PodmanStore, type StoreKind } from '../../scripts/bench-lib/podman-store.js'
import { listMountsSync, OVERLAYTS_BIN } from '../helpers/mounts.js'
import { tmpDir } from '../helpers/tmp.js'

const missing = ['podman', 'runc'].filter((c) => spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0)
// In a container without --privileged (Dockerfile.test's run), /sys/fs/cgroup is read-only and
// /proc partly masked: runc cannot start podman's containers there, on either driver.
const cgroupReadOnly = listMountsSync().some((m) => (m.mountPoint === '/sys/fs/cgroup' || m.mountPoint.startsWith('/sys/fs/cgroup/')) && m.options.split(',').includes('ro'))
const skip = process.getuid?.() !== 0
  ? 'needs root'
  : missing.length > 0
    ? `not installed: ${missing.join(', ')} (scripts/setup.sh installs them)`
    : cgroupReadOnly ? 'runc cannot start containers here: /sys/fs/cgroup is read-only (a container without --privileged)' : false

const ROOTLESS_UID = 1000

// podman 4.3 writes its blob-info cache to /var/lib/containers/cache whatever
// the graphroot says: what a run creates there is removed with the rest.
const SYSTEM_CONTAINERS = '/var/lib/containers'
if (!existsSync(SYSTEM_CONTAINERS)) t.teardown(() => rmSync(SYSTEM_CONTAINERS, { recursive: true, force: true }))
// As root podman runs bin/overlayts-mount (the one-Node-start-up launcher the
// README recommends), rootless it runs the plain command: both shapes are covered.
const OVERLAYTS_MOUNT = join(dirname(OVERLAYTS_BIN), 'overlayts-mount')
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
// The committed image's tree from inside a container: every entry's type,
// mode, owner and name (symlinks with their targets), and every file's md5.
// The files podman bind-mounts per container are left out.
const SKIP = "! -path ./etc/hostname ! -path ./etc/hosts ! -path ./etc/resolv.conf ! -path ./run/.containerenv"
const TREE = `cd / && find . -xdev ${SKIP} -exec stat -c '%F %a %u:%g %N' {} + | sort && find . -xdev -type f ${SKIP} -exec md5sum {} + | sort`

interface Outcome {
  written: string
  diff: string[]
  committedTree: string
}

async function scenario (store: PodmanStore, ctx: string, tar: string): Promise<Outcome> {
  const p = (args: string[], timeoutMs?: number): Promise<string> => podmanOk(store, args, timeoutMs).then((r) => r.stdout)
  await p(['import', '-q', tar, BASE])
  await p(['build', '-q', '--network', 'none', '-t', BUILT, ctx], 300_000)
  const written = await p(['run', '--name', 'w', BUILT, 'sh', '-c', WRITER])
  const diff = (await p(['diff', 'w'])).split('\n').filter(Boolean).sort()
  await p(['commit', '-q', 'w', COMMITTED])
  await p(['rm', 'w'])
  return { written, diff, committedTree: await p(['run', '--rm', COMMITTED, 'sh', '-c', TREE]) }
}

async function compare (t: Test, uid: number | undefined): Promise<void> {
  const stores: PodmanStore[] = []
  // Registered before tmpDir's own teardown, so it runs first: podman's containers,
  // images and mounts are gone before the directory is removed.
  t.teardown(async () => { for (const s of stores) await removeStore(s) })
  const root = await tmpDir(t, 'podman')
  if (uid !== undefined) {
    // Rootless: the user's podman mounts FUSE in its own namespaces; /dev/fuse
    // is mode 0600 here, so it is opened to others for the test's duration.
    const mode = statSync('/dev/fuse').mode & 0o7777
    chmodSync('/dev/fuse', 0o666)
    t.teardown(() => chmodSync('/dev/fuse', mode))
    chmodSync(root, 0o755)
  }
  const tar = busyboxTarball(root)
  const ctx = join(root, 'context')
  await mkdir(ctx)
  await writeFile(join(ctx, 'Containerfile'), CONTAINERFILE)

  // The two drivers' steps are independent: they run side by side.
  const outcomes = new Map<StoreKind, Outcome>()
  await Promise.all((['native', 'overlayts'] as const).map(async (kind) => {
    const store = makeStore(join(root, kind), kind, uid === undefined ? OVERLAYTS_MOUNT : OVERLAYTS_BIN, [], uid)
    stores.push(store)
    outcomes.set(kind, await scenario(store, ctx, tar))
  }))
  const ots = outcomes.get('overlayts')!
  const native = outcomes.get('native')!
  t.match(native.written, /^one\nthree\nfour\nnew\ndeep\n$/, 'the writer saw its own changes (native)')
  t.equal(ots.written, native.written, 'the writing container: same output')
  t.same(ots.diff, native.diff, 'podman diff: same changes')
  t.ok(ots.diff.includes('D /app/sub') && ots.diff.includes('A /app/data3') && ots.diff.includes('D /bin/wget'), 'podman diff sees deletes and renames')
  t.match(native.committedTree, /^directory 755 0:0 \.\/app\/data3$/m, 'the tree is listed (native)')
  t.equal(ots.committedTree, native.committedTree, 'the committed image runs with the same tree: types, modes, owners, names, link targets, contents')
}

t.test('podman as root: overlayts as mount_program matches the native overlay driver', { skip }, async t => {
  await compare(t, undefined)
})

// Rootless as podman runs it for a user: its own user namespace (one id
// mapped: the machine's /etc/subuid is left alone), overlayts in the
// upper's userxattr form, the native driver as the kernel's rootless overlay.
t.test('podman rootless (uid 1000): overlayts as mount_program matches the native overlay driver', { skip }, async t => {
  await compare(t, ROOTLESS_UID)
})
