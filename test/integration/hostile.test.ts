// Hostile input (issue 6): odd names, over-long names, symlinks in lowers that
// point outside their layer, links and renames that leave the mount,
// non-root callers against root's files, setuid/setgid on write by a
// non-owner (compared with the kernel's overlayfs), and mount option strings
// carrying injection attempts. In every case the lowers do not change.
import t from 'tap'
import { createHash } from 'node:crypto'
import { chmod, link, lstat, mkdir, readdir, readFile, readlink, rename, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from '../helpers/exec.js'
import { isMounted, mountKernel, mountOverlayts, OVERLAYTS_BIN, REPO_ROOT, unmount } from '../helpers/mounts.js'
import { tmpDir } from '../helpers/tmp.js'

/** Names, metadata and contents of a tree (lstat: never follows symlinks). */
async function treeHash (root: string): Promise<string> {
  const h = createHash('sha256')
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const p = join(dir, name)
      const st = await lstat(p, { bigint: true })
      h.update(`${p} ${st.mode} ${st.uid} ${st.gid} ${st.size} ${st.mtimeNs} ${st.ctimeNs}\n`)
      if (st.isSymbolicLink()) h.update(await readlink(p))
      else if (st.isFile()) h.update(await readFile(p))
      else if (st.isDirectory()) await walk(p)
    }
  }
  await walk(root)
  return h.digest('hex')
}

const asUser = (cmd: string): Promise<Awaited<ReturnType<typeof run>>> =>
  run('setpriv', ['--reuid=1000', '--regid=1000', '--clear-groups', 'sh', '-c', cmd], { timeoutMs: 30_000 })

async function stackFor (t: Parameters<typeof tmpDir>[0], label: string) {
  const root = await tmpDir(t, label)
  await chmod(root, 0o755)
  const d = { root, l1: join(root, 'l1'), l2: join(root, 'l2'), u: join(root, 'u'), w: join(root, 'w'), m: join(root, 'mnt', 'm'), outside: join(root, 'secret') }
  for (const p of [d.l1, d.l2, d.u, d.w, d.m, d.outside, join(d.root, 'mnt', 'secret')]) await mkdir(p, { recursive: true })
  await writeFile(join(d.outside, 'x'), 'SECRET')
  await writeFile(join(d.root, 'mnt', 'secret', 'x'), 'DECOY')
  await writeFile(join(d.l2, 'hello'), 'hello\n')
  await mkdir(join(d.l2, 'sub'))
  await writeFile(join(d.l2, 'sub', 'a'), 'a\n')
  // Symlinks inside a layer that point outside it.
  await symlink('/etc', join(d.l1, 'esc'))
  await symlink('../secret', join(d.l1, 'dirlink')) // from the layer: root/secret; from the mount: root/mnt/secret
  await symlink('../../../../../../../../etc/passwd', join(d.l2, 'deep'))
  // Root's private file and dir.
  await writeFile(join(d.l2, 'private'), 'root only\n', { mode: 0o600 })
  await chmod(join(d.l2, 'private'), 0o600)
  await mkdir(join(d.l2, 'rootdir'), { mode: 0o755 })
  await writeFile(join(d.l2, 'suid'), 'suid file\n')
  await chmod(join(d.l2, 'suid'), 0o6777)
  await writeFile(join(d.l2, 'suid2'), 'suid file\n')
  await chmod(join(d.l2, 'suid2'), 0o6666)
  for (const p of [d.l1, d.l2, d.u, d.m]) await chmod(p, 0o755)
  return d
}

t.test('odd names, long names, symlinks out of a layer, EXDEV', async t => {
  const d = await stackFor(t, 'hostile')
  const before = await treeHash(d.l1) + await treeHash(d.l2) + await treeHash(d.outside)
  await mountOverlayts(t, { lower: [d.l1, d.l2], upper: d.u, work: d.w, merged: d.m, extra: ['--log-file', join(d.root, 'log')] })
  // Names with dots are plain names; `..` itself is resolved by the kernel and never reaches the daemon.
  for (const name of ['..x', 'a..b', '...', 'x..']) {
    await writeFile(join(d.m, name), name)
    t.equal(await readFile(join(d.u, name), 'utf8'), name, `${name} lands in upper under its own name`)
  }
  t.equal(await readFile(join(d.m, 'sub', '..', 'hello'), 'utf8'), 'hello\n', 'sub/../hello is hello (kernel resolves ..)')
  t.same((await readdir(d.root)).sort(), ['l1', 'l2', 'log', 'mnt', 'secret', 'u', 'w'].sort(), 'nothing was created outside the layers')
  // Name length: 255 bytes work, 256 are ENAMETOOLONG.
  await writeFile(join(d.m, 'n'.repeat(255)), 'ok')
  t.equal(await readFile(join(d.u, 'n'.repeat(255)), 'utf8'), 'ok')
  await t.rejects(writeFile(join(d.m, 'n'.repeat(256)), 'x'), { code: 'ENAMETOOLONG' })
  await t.rejects(stat(join(d.m, 'é'.repeat(128))), { code: 'ENAMETOOLONG' }, '256 bytes in 128 characters')
  // Symlinks: lstat is the link, readlink its target, following it is the kernel's business.
  const esc = await lstat(join(d.m, 'esc'))
  t.ok(esc.isSymbolicLink(), 'esc is a symlink (lstat)')
  t.equal(await readlink(join(d.m, 'esc')), '/etc')
  t.equal(await readFile(join(d.m, 'esc', 'hostname'), 'utf8'), await readFile('/etc/hostname', 'utf8'), 'esc/hostname is the host /etc/hostname')
  t.ok((await lstat(join(d.m, 'dirlink'))).isSymbolicLink())
  t.equal(await readFile(join(d.m, 'dirlink', 'x'), 'utf8'), 'DECOY', 'dirlink/x resolves from the mount, not from the layer (never SECRET)')
  await writeFile(join(d.m, 'dirlink', 'y'), 'through')
  t.equal(await readFile(join(d.root, 'mnt', 'secret', 'y'), 'utf8'), 'through', 'a write through the link lands where the kernel resolves it')
  t.equal(await readlink(join(d.m, 'deep')), '../../../../../../../../etc/passwd')
  // Links and renames that leave the mount: EXDEV from the kernel.
  await t.rejects(link(join(d.m, 'hello'), join(d.root, 'outlink')), { code: 'EXDEV' })
  await t.rejects(rename(join(d.m, 'hello'), join(d.root, 'outname')), { code: 'EXDEV' })
  await t.rejects(rename(join(d.outside, 'x'), join(d.m, 'stolen')), { code: 'EXDEV' })
  t.equal(await readFile(join(d.m, 'hello'), 'utf8'), 'hello\n')
  // Copy-up of a symlink pointing outside copies the link, not the target.
  await run('touch', ['-h', join(d.m, 'dirlink')])
  t.equal(await readlink(join(d.u, 'dirlink')), '../secret', 'copied up as a link')
  await unmount(d.m)
  t.equal(await treeHash(d.l1) + await treeHash(d.l2) + await treeHash(d.outside), before, 'lowers and the outside dir unchanged')
})

t.test('non-root callers: EACCES on root 0600 files and root 0755 dirs', async t => {
  const d = await stackFor(t, 'hostile-perm')
  const before = await treeHash(d.l1) + await treeHash(d.l2)
  await mountOverlayts(t, { lower: [d.l1, d.l2], upper: d.u, work: d.w, merged: d.m })
  let r = await asUser(`cat ${d.m}/private`)
  t.not(r.code, 0); t.match(r.stderr, /Permission denied/, 'read of a 0600 root file')
  r = await asUser(`echo x > ${d.m}/private`)
  t.match(r.stderr, /Permission denied/, 'write of a 0600 root file')
  r = await asUser(`echo x > ${d.m}/rootdir/new`)
  t.match(r.stderr, /Permission denied/, 'create in a root 0755 dir')
  r = await asUser(`mkdir ${d.m}/rootdir/newdir`)
  t.match(r.stderr, /Permission denied/, 'mkdir in a root 0755 dir')
  r = await asUser(`rm -f ${d.m}/hello`)
  t.match(r.stderr, /Permission denied/, 'unlink in the root-owned top dir')
  r = await asUser(`mv ${d.m}/sub ${d.m}/sub2`)
  t.not(r.code, 0, 'rename in the root-owned top dir')
  r = await asUser(`chmod 777 ${d.m}/hello`)
  t.match(r.stderr, /Operation not permitted/, 'chmod of root\'s file')
  t.equal(await readFile(join(d.m, 'hello'), 'utf8'), 'hello\n')
  t.notOk((await readdir(d.u)).includes('private'), 'no copy-up from a denied call')
  await unmount(d.m)
  t.equal(await treeHash(d.l1) + await treeHash(d.l2), before, 'lowers unchanged')
})

t.test('a write by a non-owner drops setuid/setgid as the kernel overlay does', async t => {
  const d = await stackFor(t, 'hostile-suid')
  const k = { l2: join(d.root, 'k-l2'), u: join(d.root, 'k-u'), w: join(d.root, 'k-w'), m: join(d.root, 'k-m') }
  await run('cp', ['-a', d.l2, k.l2])
  await mkdir(k.u)
  const before = await treeHash(d.l2)
  await mountOverlayts(t, { lower: [d.l2], upper: d.u, work: d.w, merged: d.m })
  await mountKernel(t, { lower: [k.l2], upper: k.u, work: k.w, merged: k.m })
  for (const f of ['suid', 'suid2']) {
    const ours = await asUser(`echo more >> ${d.m}/${f}`)
    const theirs = await asUser(`echo more >> ${k.m}/${f}`)
    t.equal(ours.code, theirs.code, `${f}: same outcome (${theirs.stderr.trim()})`)
    const om = (await stat(join(d.m, f))).mode & 0o7777
    const km = (await stat(join(k.m, f))).mode & 0o7777
    // suid2 is 06666: setgid without group-execute, which kernel FUSE leaves to
    // the filesystem; the kernel overlay drops it for a caller outside the group.
    t.equal(om.toString(8), km.toString(8), `${f}: mode after the write matches the kernel (overlayts ${om.toString(8)}, kernel ${km.toString(8)})`)
    t.equal(await readFile(join(d.m, f), 'utf8'), await readFile(join(k.m, f), 'utf8'), `${f}: content matches`)
  }
  await unmount(d.m)
  t.equal(await treeHash(d.l2), before, 'lower unchanged')
})

t.test('option strings: escapes work, injections are refused', async t => {
  const root = await tmpDir(t, 'hostile-opts')
  const d = { a: join(root, 'a,b'), eq: join(root, 'x=y'), u: join(root, 'u'), w: join(root, 'w'), m: join(root, 'm') }
  for (const p of Object.values(d)) await mkdir(p)
  await writeFile(join(d.a, 'f'), 'comma\n')
  await writeFile(join(d.eq, 'g'), 'equals\n')
  const before = await treeHash(d.a) + await treeHash(d.eq)
  const ots = (o: string) => run(process.execPath, [OVERLAYTS_BIN, 'mount', '-o', o, d.m], { timeoutMs: 30_000, cwd: REPO_ROOT })
  t.teardown(async () => { await unmount(d.m) })
  // `\,` is a literal comma; `=` after the first one is part of the path.
  let r = await ots(`lowerdir=${root}/a\\,b:${d.eq},upperdir=${d.u},workdir=${d.w}`)
  t.equal(r.code, 0, r.stderr)
  t.equal(await readFile(join(d.m, 'f'), 'utf8'), 'comma\n', 'a\\,b is the dir "a,b"')
  t.equal(await readFile(join(d.m, 'g'), 'utf8'), 'equals\n', 'x=y is the dir "x=y"')
  await unmount(d.m)
  const refused: Array<[string, string, RegExp]> = [
    ['unescaped comma splits into an unknown option', `lowerdir=${root}/a,b,upperdir=${d.u},workdir=${d.w}`, /unknown option: b|no such directory/],
    ['an extra option', `lowerdir=${d.eq},evil=1`, /unknown option: evil/],
    ['a second lowerdir', `lowerdir=${d.eq},lowerdir=/etc`, /given twice/],
    ['a second upperdir', `lowerdir=${d.eq},upperdir=${d.u},workdir=${d.w},upperdir=/tmp`, /given twice/],
    ['a newline in a path', `lowerdir=${d.eq}\nupperdir=/tmp`, /newline/],
    ['a newline in a later path', `lowerdir=${d.eq},upperdir=${d.u}\n,workdir=${d.w}`, /newline/],
    ['a NUL-free but empty layer', `lowerdir=${d.eq}::${d.a}`, /empty path/]
  ]
  for (const [name, o, msg] of refused) {
    r = await ots(o)
    t.not(r.code, 0, `${name}: refused`)
    t.match(r.stderr, msg, `${name}: says why`)
    t.notOk(await isMounted(d.m), `${name}: nothing mounted`)
  }
  t.equal(await treeHash(d.a) + await treeHash(d.eq), before, 'lowers unchanged')
})
