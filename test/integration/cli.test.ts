// The CLI as users meet it: every bad option or layer prints one clear line,
// exits non-zero and mounts nothing; the fuse-overlayfs argument shape; and
// the ways a daemon ends (overlayts umount, plain umount, SIGTERM, foreground).
// mount(8) and fstab: mount-helper.test.ts.
import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from '../helpers/exec.js'
import { isMounted, mountOverlayts, OVERLAYTS_BIN, pidAlive, REPO_ROOT, unmount } from '../helpers/mounts.js'
import { tmpDir } from '../helpers/tmp.js'

async function layout (t: Parameters<typeof tmpDir>[0]): Promise<Record<'l1' | 'l2' | 'u' | 'w' | 'm' | 'root', string>> {
  const root = await tmpDir(t, 'cli')
  const d = { root, l1: join(root, 'l1'), l2: join(root, 'l2'), u: join(root, 'u'), w: join(root, 'w'), m: join(root, 'm') }
  for (const p of [d.l1, d.l2, d.u, d.w, d.m]) await mkdir(p)
  await writeFile(join(d.l2, 'hello'), 'hi\n')
  return d
}

function overlayts (args: string[], env?: NodeJS.ProcessEnv) {
  return run(process.execPath, [OVERLAYTS_BIN, ...args], { timeoutMs: 30_000, cwd: REPO_ROOT, env })
}

t.test('bad options and layers: one clear line, non-zero, nothing mounted', async t => {
  const d = await layout(t)
  await writeFile(join(d.root, 'file'), '')
  await mkdir(join(d.l1, 'inner'))
  const cases: Array<[string, string, RegExp]> = [
    ['missing lowerdir', `lowerdir=${d.root}/nope`, /lowerdir .*nope: no such directory/],
    ['lowerdir is a file', `lowerdir=${d.root}/file`, /not a directory/],
    ['upper without work', `lowerdir=${d.l1},upperdir=${d.u}`, /upperdir given without workdir/],
    ['work without upper', `lowerdir=${d.l1},workdir=${d.w}`, /workdir given without upperdir/],
    ['work on another filesystem', `lowerdir=${d.l1},upperdir=${d.u},workdir=/dev/shm`, /not on the same filesystem/],
    ['upper inside a lower', `lowerdir=${d.l1},upperdir=${d.l1}/inner,workdir=${d.w}`, /inside lowerdir/],
    ['work inside a lower', `lowerdir=${d.l1},upperdir=${d.u},workdir=${d.l1}/inner`, /inside lowerdir/],
    ['upper inside the mountpoint', `lowerdir=${d.l1},upperdir=${d.m},workdir=${d.w}`, /overlaps the mountpoint/],
    ['the same directory twice', `lowerdir=${d.l1}:${d.l1}`, /the same directory as/],
    ['upper and work nested', `lowerdir=${d.l1},upperdir=${d.u},workdir=${d.u}`, /the same directory as|separate subtrees/],
    ['unknown option', `lowerdir=${d.l1},frobnicate=1`, /unknown option: frobnicate/],
    ['no lowerdir', `upperdir=${d.u},workdir=${d.w}`, /missing lowerdir/]
  ]
  for (const [name, opts, msg] of cases) {
    const r = await overlayts(['mount', '-o', opts, d.m])
    t.not(r.code, 0, `${name}: non-zero exit`)
    const lines = r.stderr.trim().split('\n')
    t.equal(lines.length, 1, `${name}: one line`)
    t.match(lines[0], /^overlayts: /, `${name}: says who`)
    t.match(lines[0], msg, `${name}: says why`)
    t.notOk(await isMounted(d.m), `${name}: nothing mounted`)
  }
  const r = await overlayts(['mount', '-o', `lowerdir=${d.l1}`, join(d.root, 'no-mountpoint')])
  t.not(r.code, 0, 'missing mountpoint fails')
  t.match(r.stderr, /mountpoint .*no such directory/)
})

t.test('a lowerdir-only mount is read-only: changes get EROFS', async t => {
  const d = await layout(t)
  await mountOverlayts(t, { lower: [d.l1, d.l2], merged: d.m })
  t.equal(await readFile(join(d.m, 'hello'), 'utf8'), 'hi\n')
  await t.rejects(writeFile(join(d.m, 'new'), 'x'), { code: 'EROFS' })
  await t.rejects(writeFile(join(d.m, 'hello'), 'x'), { code: 'EROFS' })
})

for (const transport of ['kernel', 'fuse-native']) {
  t.test(`fuse-overlayfs shape \`overlayts -o OPTS MERGED\` and overlayts umount (transport=${transport})`, async t => {
    const d = await layout(t)
    const r = await overlayts(['-o', `lowerdir=${d.l1}:${d.l2},upperdir=${d.u},workdir=${d.w},transport=${transport}`, d.m])
    t.teardown(() => unmount(d.m).then(() => {}))
    t.equal(r.code, 0, r.stderr)
    t.ok(await isMounted(d.m), 'live when the command returns')
    t.equal(await readFile(join(d.m, 'hello'), 'utf8'), 'hi\n')
    await writeFile(join(d.m, 'new'), 'written\n')
    t.equal(await readFile(join(d.u, 'new'), 'utf8'), 'written\n', 'a write lands in upper')
    const u = await overlayts(['umount', d.m])
    t.equal(u.code, 0, u.stderr)
    t.notOk(await isMounted(d.m))
  })
}

async function foreground (t: Parameters<typeof tmpDir>[0], d: Awaited<ReturnType<typeof layout>>) {
  const child = spawn(process.execPath, [OVERLAYTS_BIN, 'mount', '-f', '-o', `lowerdir=${d.l1}:${d.l2},upperdir=${d.u},workdir=${d.w}`, d.m], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(async () => { await unmount(d.m); if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stdout.on('data', (b: Buffer) => { out += b.toString() })
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const deadline = Date.now() + 30_000
  while (!out.includes('"msg":"mounted"') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 20))
  return { child, exited, log: () => out }
}

t.test('-f: foreground daemon logs pino JSON on stdout; a plain umount ends it with exit 0', async t => {
  const d = await layout(t)
  const f = await foreground(t, d)
  t.ok(await isMounted(d.m), 'mounted')
  const first = JSON.parse(f.log().split('\n')[0]!) as Record<string, unknown>
  t.equal(first.msg, 'mounted')
  t.same(first.lowerdir, [d.l1, d.l2], 'the mount event names the layers')
  const u = await run('umount', [d.m])
  t.equal(u.code, 0)
  t.equal(await f.exited, 0, 'daemon exits 0')
  t.match(f.log(), /"msg":"unmounted"/)
})

t.test('SIGTERM unmounts and exits 0', async t => {
  const d = await layout(t)
  const f = await foreground(t, d)
  t.ok(await isMounted(d.m))
  f.child.kill('SIGTERM')
  t.equal(await f.exited, 0)
  t.notOk(await isMounted(d.m))
  t.notOk(pidAlive(f.child.pid!), 'gone')
})
