// Daemon hygiene (issue 6): errors are logged with op, path and errno; odd
// requests do not kill the daemon; SIGTERM under load unmounts and exits;
// 100k open/close cycles leave the daemon's fd count flat.
import t from 'tap'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { run } from '../helpers/exec.js'
import { isMounted, mountOverlayts, pidAlive } from '../helpers/mounts.js'
import { tmpDir } from '../helpers/tmp.js'

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms))

function daemonPid (merged: string): number {
  const f = `${process.env.OVERLAYTS_RUNDIR ?? '/run/overlayts'}/${createHash('sha256').update(merged).digest('hex').slice(0, 16)}.pid`
  return Number(readFileSync(f, 'utf8'))
}
const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length

async function setup (t: Parameters<typeof tmpDir>[0], extra: string[] = []) {
  const root = await tmpDir(t, 'hygiene')
  const d = { root, l: join(root, 'l'), u: join(root, 'u'), w: join(root, 'w'), m: join(root, 'm'), log: join(root, 'log') }
  for (const p of [d.l, d.u, d.w, d.m]) await mkdir(p)
  await writeFile(join(d.l, 'file'), 'lower\n')
  await mkdir(join(d.l, 'dir'))
  await writeFile(join(d.l, 'dir', 'x'), 'x\n')
  await mountOverlayts(t, { lower: [d.l], upper: d.u, work: d.w, merged: d.m, extra: ['--log-file', d.log, ...extra] })
  return { ...d, pid: daemonPid(d.m) }
}

t.test('errors are logged with op, path and errno; odd requests do not kill the daemon', async t => {
  const d = await setup(t, ['-d'])
  await t.rejects(stat(join(d.m, 'missing')), { code: 'ENOENT' })
  await t.rejects(rmdir(join(d.m, 'dir')), { code: 'ENOTEMPTY' })
  await t.rejects(readdir(join(d.m, 'file')), { code: 'ENOTDIR' })
  const odd = [
    ['setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(d.m, 'dir')]],
    ['setfattr', ['-n', 'user.x', '-v', 'y'.repeat(70000), join(d.m, 'file')]],
    ['getfattr', ['-n', 'trusted.overlay.redirect', join(d.m, 'dir')]],
    ['truncate', ['-s', '-1', join(d.m, 'file')]],
    ['mknod', [join(d.m, 'wh'), 'c', '0', '0']],
    ['ln', [join(d.m, 'dir'), join(d.m, 'dirlink')]],
    ['mv', [join(d.m, 'dir'), join(d.m, 'dir', 'inside')]]
  ] as const
  for (const [cmd, args] of odd) await run(cmd, [...args], { timeoutMs: 10_000 })
  t.ok(pidAlive(d.pid), 'daemon alive after odd requests')
  // `truncate -s -1` shortens the file by one byte: the daemon served it.
  t.equal(await readFile(join(d.m, 'file'), 'utf8'), 'lower', 'still serving')
  await sleep(200)
  const lines = (await readFile(d.log, 'utf8')).split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Record<string, unknown>)
  const failed = lines.filter(l => typeof l.errno === 'string')
  // A missing name is a LOOKUP answered with a negative entry on the kernel transport.
  for (const [op, path, errno] of [['lookup', '/missing', 'ENOENT'], ['rmdir', '/dir', 'ENOTEMPTY']]) {
    t.ok(failed.some(l => l.op === op && l.path === path && l.errno === errno), `logged: ${op} ${path} ${errno}`)
  }
  t.ok(failed.every(l => typeof l.op === 'string' && typeof l.path === 'string'), 'every error line names op and path')
  t.notOk(lines.some(l => /uncaught|unhandled/.test(String(l.msg))), 'no uncaught exception')
})

t.test('SIGTERM under load unmounts and exits cleanly', async t => {
  const d = await setup(t)
  const script = `const fs=require('fs');const p=process.argv[1];let i=0;for(;;){try{fs.writeFileSync(p+'/f'+(i%50),'x'.repeat(i%4096));fs.readFileSync(p+'/file');fs.renameSync(p+'/f'+(i%50),p+'/g'+(i%50))}catch(e){if(e.code==='ENOTCONN'||e.code==='ECONNABORTED')process.exit(0)}i++}`
  const load = spawn(process.execPath, ['-e', script, d.m], { stdio: 'ignore' })
  t.teardown(() => { if (load.exitCode === null) load.kill('SIGKILL') })
  await sleep(1500)
  process.kill(d.pid, 'SIGTERM')
  const deadline = Date.now() + 30_000
  while ((pidAlive(d.pid) || await isMounted(d.m)) && Date.now() < deadline) await sleep(50)
  t.notOk(await isMounted(d.m), 'unmounted')
  t.notOk(pidAlive(d.pid), 'daemon exited')
  load.kill('SIGKILL')
  const log = await readFile(d.log, 'utf8')
  t.match(log, /unmounting on signal/)
  t.match(log, /"msg":"unmounted"/)
  t.notMatch(log, /"level":(50|60)/, 'no error lines')
})

t.test('100k open/close cycles leave the fd count flat', async t => {
  const d = await setup(t)
  await readFile(join(d.m, 'file'))
  const before = fdCount(d.pid)
  const loop = `const fs=require('fs');const p=process.argv[1];for(let i=0;i<100000;i++){fs.closeSync(fs.openSync(p,i%10===0?'r+':'r'))}`
  const r = await run(process.execPath, ['-e', loop, join(d.m, 'file')], { timeoutMs: 300_000 })
  t.equal(r.code, 0, r.stderr)
  await sleep(500)
  const after = fdCount(d.pid)
  t.comment(`daemon fds: before ${before}, after 100k open/close ${after}`)
  t.ok(after <= before + 5, `fd count does not grow (${before} -> ${after})`)
  t.ok(pidAlive(d.pid))
})
