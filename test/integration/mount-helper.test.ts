// `mount -t fuse.overlayts` and fstab, with node where no default path has it.
// mount(8) finds no /sbin/mount.fuse.overlayts and runs /sbin/mount.fuse
// (fuse3's mount.fuse3), which runs `/bin/sh -c "overlayts SOURCE MERGED -o
// OPTS"` without PATH: sh finds /usr/local/bin/overlayts on its built-in
// default path, and that (written by scripts/install-cli.sh) must name node by
// absolute path. All of it runs in a private mount namespace, so nothing on
// the host changes: there /usr/local/bin is a temporary dir holding only the
// helpers, node is a copy in another temporary dir, and every node on sh's
// default path (/usr/bin/node on a Debian host) is hidden under an empty file.
import t from 'tap'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFile, link, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises'
import { existsSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { run, type RunResult } from '../helpers/exec.js'
import { abortFuseConnectionSync, OVERLAYTS_BIN, parseMountInfo, pidAlive, REPO_ROOT, type MountInfo, type TeardownHost } from '../helpers/mounts.js'
import { tmpDir } from '../helpers/tmp.js'

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))
/** Where sh looks for a command when PATH is unset (dash's built-in default). */
const SH_DEFAULT_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']
const CLEAN_ENV = ['env', '-i', 'PATH=/bin:/usr/bin']

function daemonPid (merged: string): number | undefined {
  const f = `${process.env.OVERLAYTS_RUNDIR ?? '/run/overlayts'}/${createHash('sha256').update(merged).digest('hex').slice(0, 16)}.pid`
  try { return Number(readFileSync(f, 'utf8')) } catch { return undefined }
}

interface Namespace {
  run: (cmd: string, args: string[]) => Promise<RunResult>
  mounts: () => MountInfo[]
}

/**
 * A process in a new mount namespace (private propagation), alive until this
 * test process closes its stdin. Teardown (registered before anything mounts
 * there, so it runs before the temporary dirs go) unmounts `unmountAtEnd` in
 * the namespace, aborting a hung connection, then ends the holder.
 */
async function namespaceHolder (t: TeardownHost, unmountAtEnd: string[]): Promise<Namespace> {
  const holder = spawn('unshare', ['--mount', '--propagation', 'private', 'cat'], { stdio: ['pipe', 'ignore', 'inherit'] })
  const pid = holder.pid
  if (pid === undefined) throw new Error('unshare did not start')
  const mounts = (): MountInfo[] => { try { return parseMountInfo(readFileSync(`/proc/${pid}/mountinfo`, 'latin1')) } catch { return [] } }
  const inNs = (cmd: string, args: string[]): Promise<RunResult> =>
    run('nsenter', [`--target=${pid}`, '--mount', '--', cmd, ...args], { timeoutMs: 30_000, cwd: '/' })
  t.teardown(async () => {
    for (const path of unmountAtEnd) {
      for (let round = 0; round < 4; round++) {
        const m = mounts().filter(x => x.mountPoint === path).pop()
        if (m === undefined) break
        if ((await inNs('umount', [path])).code === 0) continue
        abortFuseConnectionSync(m)
        await inNs('umount', ['-l', path])
      }
    }
    holder.stdin.end()
    if (holder.exitCode === null) holder.kill('SIGKILL')
  })
  const own = readlinkSync('/proc/self/ns/mnt')
  const deadline = Date.now() + 10_000
  const ns = (): string | undefined => { try { return readlinkSync(`/proc/${pid}/ns/mnt`) } catch { return undefined } }
  const comm = (): string | undefined => { try { return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() } catch { return undefined } }
  while ((ns() === own || comm() !== 'cat') && holder.exitCode === null && Date.now() < deadline) await sleep(10)
  if (ns() === own || comm() !== 'cat') throw new Error('unshare --mount did not give a new mount namespace')
  return { run: inNs, mounts }
}

t.test('mount -t fuse.overlayts and an fstab line start overlayts with no PATH and node outside the default paths', async t => {
  const unmountAtEnd: string[] = []
  const ns = await namespaceHolder(t, unmountAtEnd)
  const root = await tmpDir(t, 'mount-helper')
  const d = { l1: join(root, 'l1'), l2: join(root, 'l2'), u: join(root, 'u'), w: join(root, 'w'), m: join(root, 'm'), bin: join(root, 'bin'), nodeDir: join(root, 'node elsewhere') }
  for (const p of Object.values(d)) await mkdir(p)
  await writeFile(join(d.l2, 'hello'), 'hi\n')
  // A node that only an absolute path reaches (a hard link when on the same filesystem).
  const node = join(d.nodeDir, 'node')
  await link(process.execPath, node).catch(async () => { await copyFile(process.execPath, node) })
  const ins = await run('sh', [join(REPO_ROOT, 'scripts', 'install-cli.sh'), join(d.bin, 'overlayts'), node], { timeoutMs: 30_000 })
  t.equal(ins.code, 0, ins.stderr)
  t.match(await readFile(join(d.bin, 'overlayts'), 'utf8'), `exec '${node}' '${OVERLAYTS_BIN}' "$@"`, 'the helper names node and this checkout by absolute path')
  // The form that does not work: the CLI itself, found through `#!/usr/bin/env node`.
  await symlink(OVERLAYTS_BIN, join(d.bin, 'overlayts-env'))
  const hidden = join(root, 'no-node')
  await writeFile(hidden, '')

  unmountAtEnd.push(d.m)
  const bound = await ns.run('mount', ['--bind', d.bin, '/usr/local/bin'])
  t.equal(bound.code, 0, `bind the helpers over /usr/local/bin: ${bound.stderr}`)
  for (const dir of SH_DEFAULT_PATH.filter(p => p !== '/usr/local/bin')) {
    if (!existsSync(join(dir, 'node'))) continue
    const r = await ns.run('mount', ['--bind', hidden, join(dir, 'node')])
    t.equal(r.code, 0, `hide ${dir}/node: ${r.stderr}`)
  }
  const found = await ns.run('sh', ['-c', 'unset PATH; command -v node || echo none'])
  t.equal(found.stdout.toString().trim(), 'none', 'no node on sh\'s default path in the namespace')

  const opts = `lowerdir=${d.l1}:${d.l2},upperdir=${d.u},workdir=${d.w}`
  const old = await ns.run(CLEAN_ENV[0]!, [...CLEAN_ENV.slice(1), 'mount', '-t', 'fuse.overlayts-env', 'overlay', d.m, '-o', opts])
  t.not(old.code, 0, 'a `#!/usr/bin/env node` helper fails here')
  t.match(old.stderr, /node/, 'because env finds no node')

  const r = await ns.run(CLEAN_ENV[0]!, [...CLEAN_ENV.slice(1), 'mount', '-t', 'fuse.overlayts', 'overlay', d.m, '-o', opts])
  t.equal(r.code, 0, `mount -t fuse.overlayts: ${r.stderr}`)
  const m = ns.mounts().find(x => x.mountPoint === d.m)
  t.match(m, { fstype: 'fuse.overlayts', source: 'overlay' }, 'mounted, with the type and source given')
  const pid = daemonPid(d.m)
  t.equal(pid !== undefined ? await readlink(`/proc/${pid}/exe`).catch(() => '') : '', node, 'the daemon runs the node the helper names')
  t.equal((await ns.run('cat', [join(d.m, 'hello')])).stdout.toString(), 'hi\n', 'the lower file reads through the mount')
  t.equal((await ns.run('sh', ['-c', 'echo written > "$1"/new', 'sh', d.m])).code, 0)
  t.equal(await readFile(join(d.u, 'new'), 'utf8'), 'written\n', 'a write lands in upper')
  const u = await ns.run('umount', [d.m])
  t.equal(u.code, 0, `plain umount: ${u.stderr}`)
  t.notOk(ns.mounts().some(x => x.mountPoint === d.m), 'unmounted')
  const deadline = Date.now() + 30_000
  while (pid !== undefined && pidAlive(pid) && Date.now() < deadline) await sleep(20)
  t.notOk(pid !== undefined && pidAlive(pid), 'the daemon exits')

  // fstab: `mount MERGED` with the line in a file of our own (mount -T).
  const fstab = join(root, 'fstab')
  await writeFile(fstab, `overlay ${d.m} fuse.overlayts ${opts} 0 0\n`)
  const f = await ns.run(CLEAN_ENV[0]!, [...CLEAN_ENV.slice(1), 'mount', '-T', fstab, d.m])
  t.equal(f.code, 0, `mount -T FSTAB MERGED: ${f.stderr}`)
  t.match(ns.mounts().find(x => x.mountPoint === d.m), { fstype: 'fuse.overlayts', source: 'overlay' }, 'mounted from the fstab line')
  t.equal((await ns.run('cat', [join(d.m, 'hello'), join(d.m, 'new')])).stdout.toString(), 'hi\nwritten\n', 'lower and upper both show')
  const fu = await ns.run('umount', [d.m])
  t.equal(fu.code, 0, `umount: ${fu.stderr}`)
  t.notOk(ns.mounts().some(x => x.mountPoint === d.m), 'unmounted')
})
