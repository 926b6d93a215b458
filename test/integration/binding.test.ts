// Issue 4: the FUSE binding tells the truth. Each test goes through a real
// overlayts mount and checks what a process sees (owners, permissions,
// nanosecond times, inode numbers, link counts, unlinked-but-open files,
// request sizes, long copy-ups, statfs, device numbers).
// Runs as root; `setpriv` runs the unprivileged callers (uid/gid 1000).
import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, chownSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import { run, runOk } from '../helpers/exec.js'
import { mountOverlayts, type MountHandle, type TeardownHost } from '../helpers/mounts.js'
import { tmpDir } from '../helpers/tmp.js'
import { readPidFile } from '../../src/mount-config/pidfile.js'

const USER = ['--reuid=1000', '--regid=1000', '--clear-groups']
// stat(1) prints times in local time: compare them in UTC.
process.env.TZ = 'UTC'

/** Runs `sh -c script` as uid/gid 1000. */
async function asUser (script: string, cwd: string) {
  return await run('setpriv', [...USER, 'sh', '-c', script], { cwd, timeoutMs: 30_000 })
}

async function sh (script: string, cwd?: string): Promise<string> {
  return (await runOk('sh', ['-c', script], { cwd, timeoutMs: 120_000 })).toString('utf8').trim()
}

interface Layers { lower: string, upper: string, work: string, merged: string, log: string }

async function layers (t: TeardownHost, label: string): Promise<Layers> {
  const dir = await tmpDir(t, label)
  const l = { lower: join(dir, 'lower'), upper: join(dir, 'upper'), work: join(dir, 'work'), merged: join(dir, 'merged'), log: join(dir, 'daemon.log') }
  for (const d of [l.lower, l.upper, l.work, l.merged]) mkdirSync(d, { recursive: true })
  return l
}

async function mount (t: TeardownHost, l: Layers, opts: string[] = []): Promise<MountHandle> {
  return await mountOverlayts(t, { lower: [l.lower], upper: l.upper, work: l.work, merged: l.merged, extra: ['--log-file', l.log, ...opts.flatMap((o) => ['-o', o])] })
}

interface IoOp { requests: number, bytes: number, min: number | null, max: number | null, buckets: Record<string, number> }
interface IoStatsLine { msg: string, reason: string, read: IoOp, write: IoOp }

function ioStatsLines (log: string): IoStatsLine[] {
  return readFileSync(log, 'utf8').split('\n').filter((s) => s.includes('"io stats"')).map((s) => JSON.parse(s) as IoStatsLine)
}

t.test('ownership, setgid inheritance and permissions as the caller sees them', async (t) => {
  const l = await layers(t, 'binding-owner')
  mkdirSync(join(l.lower, 'pub'))
  chmodSync(join(l.lower, 'pub'), 0o1777)
  mkdirSync(join(l.lower, 'sg'))
  chownSync(join(l.lower, 'sg'), 0, 50)
  chmodSync(join(l.lower, 'sg'), 0o2777)
  writeFileSync(join(l.lower, 'secret'), 'root only\n', { mode: 0o600 })
  chmodSync(join(l.lower, 'secret'), 0o600)
  const m = await mount(t, l)

  const made = await asUser('touch pub/f && mkdir pub/d && ln -s target pub/s && mkfifo pub/p', m.merged)
  t.equal(made.code, 0, `uid 1000 creates in a 1777 dir: ${made.stderr}`)
  for (const name of ['f', 'd', 's', 'p']) {
    const st = await sh(`stat -c '%u:%g %F' pub/${name}`, m.merged)
    t.match(st, /^1000:1000 /, `pub/${name} (${st.split(' ').slice(1).join(' ')}) is owned by the caller through the mount`)
  }
  t.equal(await sh("stat -c '%u:%g' f d s p", join(l.upper, 'pub')), '1000:1000\n1000:1000\n1000:1000\n1000:1000', 'and so in upper')

  const sg = await asUser('touch sg/f && mkdir -m 755 sg/d && mkfifo sg/p', m.merged)
  t.equal(sg.code, 0, `uid 1000 creates in a setgid dir: ${sg.stderr}`)
  t.equal(await sh("stat -c '%u:%g' sg/f sg/d sg/p", m.merged), '1000:50\n1000:50\n1000:50', 'new entries take the setgid directory\'s group')
  t.equal(await sh("stat -c '%a' sg/d", m.merged), '2755', 'a new subdirectory is setgid too')

  const denied = await asUser('cat secret', m.merged)
  t.not(denied.code, 0, 'a non-root caller cannot read a 0600 root file')
  t.match(denied.stderr, /Permission denied/, 'EACCES (default_permissions)')
  t.equal(await sh('cat secret', m.merged), 'root only', 'root can')
})

t.test('nanosecond times and UTIME_OMIT', async (t) => {
  const l = await layers(t, 'binding-times')
  writeFileSync(join(l.lower, 'f'), 'x')
  const m = await mount(t, l)
  await sh("touch -d '2020-01-01 00:00:00.123456789' f", m.merged)
  t.equal(await sh("stat -c '%x|%y' f", m.merged), '2020-01-01 00:00:00.123456789 +0000|2020-01-01 00:00:00.123456789 +0000', 'all nine digits, both times')
  await sh("touch -m -d '2021-02-03 04:05:06.000000007' f", m.merged)
  t.equal(await sh("stat -c '%x|%y' f", m.merged), '2020-01-01 00:00:00.123456789 +0000|2021-02-03 04:05:06.000000007 +0000', 'touch -m changes mtime only')
  await sh("touch -a -d '2019-09-09 09:09:09.999999999' f", m.merged)
  t.equal(await sh("stat -c '%x|%y' f", m.merged), '2019-09-09 09:09:09.999999999 +0000|2021-02-03 04:05:06.000000007 +0000', 'touch -a changes atime only')
  t.equal(await sh("stat -c '%x|%y' f", l.upper), '2019-09-09 09:09:09.999999999 +0000|2021-02-03 04:05:06.000000007 +0000', 'upper holds the same times')
})

t.test('inode numbers are stable and hardlinks share one', async (t) => {
  const l = await layers(t, 'binding-ino')
  writeFileSync(join(l.lower, 'a'), 'a\n')
  writeFileSync(join(l.lower, 'h'), 'h\n')
  const lowerIno = String(statSync(join(l.lower, 'a')).ino)
  let m = await mount(t, l)
  const ino = async (name: string): Promise<string> => await sh(`stat -c %i ${name}`, m.merged)
  t.equal(await ino('a'), lowerIno, 'a lower file shows its own inode number')
  await sh('chmod 640 a', m.merged)
  t.equal(await ino('a'), lowerIno, 'same after chmod (copy-up)')
  await sh('mv a b', m.merged)
  t.equal(await ino('b'), lowerIno, 'same after rename')
  await m.unmount()
  m = await mount(t, l)
  t.equal(await ino('b'), lowerIno, 'same after remount')

  await sh('ln h h2', m.merged)
  t.equal(await sh("stat -c '%i %h' h2", m.merged), `${await ino('h')} 2`, 'ln: the new name shows the same inode, nlink 2')
  // libfuse 2's high-level API gives each name its own FUSE node, so with the
  // default 1 s attribute cache the old name catches up within that second...
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.equal(await sh("stat -c '%i %h' h", m.merged), `${await ino('h2')} 2`, 'the old name: same inode, nlink 2 (default attr_timeout)')
  await m.unmount()

  // ...and with attr_timeout=0 it is right at once.
  m = await mountOverlayts(t, { lower: [l.lower], upper: l.upper, work: l.work, merged: l.merged, extra: ['--log-file', l.log, '-o', 'attr_timeout=0'] })
  await sh('ln h h3', m.merged)
  t.equal(await sh("stat -c '%i %h' h", m.merged), `${await ino('h3')} 3`, 'attr_timeout=0: the old name shows nlink 3 at once')
})

/** A child process that holds `file` open read-write and obeys line commands on stdin. */
const HOLDER = `
const fs = require('fs')
const fd = fs.openSync(process.argv[1], 'r+')
const rl = require('readline').createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const [cmd, arg] = line.split(' ')
  try {
    if (cmd === 'read') { const b = Buffer.alloc(4096); const n = fs.readSync(fd, b, 0, 4096, 0); console.log('ok ' + JSON.stringify(b.subarray(0, n).toString())) }
    else if (cmd === 'append') { const st = Number(arg); fs.writeSync(fd, 'more\\n', st); console.log('ok') }
    else if (cmd === 'fsync') { fs.fsyncSync(fd); console.log('ok') }
    else if (cmd === 'fstat') { console.log('ok ' + fs.fstatSync(fd).size) }
    else if (cmd === 'close') { fs.closeSync(fd); console.log('ok'); process.exit(0) }
  } catch (e) { console.log('err ' + e.code) }
})
console.log('ready')
`

t.test('a file unlinked while open stays usable through its descriptor, without .fuse_hidden', async (t) => {
  const l = await layers(t, 'binding-unlinked')
  writeFileSync(join(l.lower, 'lowerfile'), 'lower data\n')
  const m = await mount(t, l)
  writeFileSync(join(m.merged, 'upperfile'), 'upper data\n')

  for (const [name, content] of [['upperfile', 'upper data\n'], ['lowerfile', 'lower data\n']] as const) {
    await t.test(name, async (t) => {
      const child = spawn(process.execPath, ['-e', HOLDER, join(m.merged, name)], { stdio: ['pipe', 'pipe', 'inherit'] })
      t.teardown(() => { child.kill('SIGKILL') })
      const lines: string[] = []
      let wake: (() => void) | undefined
      child.stdout.setEncoding('utf8')
      let buf = ''
      child.stdout.on('data', (d: string) => {
        buf += d
        let i
        while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1) }
        wake?.()
      })
      const next = async (): Promise<string> => {
        while (lines.length === 0) await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 20_000) })
        return lines.shift() ?? ''
      }
      const ask = async (cmd: string): Promise<string> => { child.stdin.write(cmd + '\n'); return await next() }
      t.equal(await next(), 'ready', 'child holds the file open (O_RDWR)')

      await sh(`rm ${name}`, m.merged)
      t.notOk(readdirSync(m.merged).includes(name), 'the name is gone from the merged dir')
      t.same(readdirSync(m.merged).filter((n) => n.startsWith('.fuse_hidden')), [], 'no .fuse_hidden* in the merged dir')
      t.same(readdirSync(l.upper).filter((n) => n.startsWith('.fuse_hidden')), [], 'no .fuse_hidden* in upper')

      t.equal(await ask('read'), 'ok ' + JSON.stringify(content), 'readable through the descriptor')
      t.equal(await ask(`append ${Buffer.byteLength(content)}`), 'ok', 'writable through the descriptor')
      t.equal(await ask('read'), 'ok ' + JSON.stringify(content + 'more\n'), 'the write is read back')
      t.equal(await ask('fsync'), 'ok', 'fsync works')
      // Past attr_timeout (1 s), so that fstat really asks the daemon (GETATTR).
      await new Promise((resolve) => setTimeout(resolve, 1100))
      t.equal(await ask('fstat'), `ok ${Buffer.byteLength(content) + 5}`, 'fstat works')
      t.equal(await ask('close'), 'ok', 'close (release) works')
      t.same(readdirSync(l.upper).filter((n) => n.startsWith('.fuse_hidden')), [], 'still no .fuse_hidden* in upper')
    })
  }
})

// Bulk I/O through the daemon: in requests as large as the transport takes
// (1 MiB: max_pages 256 on the kernel transport; 128 KiB: libfuse 2's limit).
const BULK = [
  { name: 'kernel transport, passthrough=off', opts: ['passthrough=off'], minRequest: 1024 * 1024 },
  { name: 'fuse-native transport', opts: ['transport=fuse-native'], minRequest: 128 * 1024 }
]
for (const b of BULK) {
  t.test(`${b.name}: bulk I/O arrives in requests of ${b.minRequest / 1024} KiB`, async (t) => {
    const l = await layers(t, 'binding-iosize')
    // 256 MiB in lower, never read through the mount yet (no page cache).
    await sh(`head -c ${256 * 1024 * 1024} /dev/urandom > ${join(l.lower, 'in')}`)
    const m = await mount(t, l, b.opts)
    await sh('dd if=/dev/zero of=f bs=1M count=1024 status=none', m.merged)
    t.equal(statSync(join(l.upper, 'f')).size, 1024 * 1024 * 1024, '1 GiB written')
    await sh('dd if=in of=/dev/null bs=1M status=none', m.merged)

    // SIGUSR1: one io stats line now.
    const pid = readPidFile(m.merged)
    t.ok(pid !== undefined, 'daemon pid file')
    if (pid !== undefined) {
      process.kill(pid, 'SIGUSR1')
      const deadline = Date.now() + 10_000
      while (ioStatsLines(l.log).length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
      t.equal(ioStatsLines(l.log)[0]?.reason, 'SIGUSR1', 'SIGUSR1 logs io stats')
    }

    await m.unmount()
    const atUnmount = ioStatsLines(l.log).find((s) => s.reason === 'unmount')
    t.ok(atUnmount, 'io stats logged at unmount')
    if (atUnmount === undefined) return
    const { write, read } = atUnmount
    t.equal(write.bytes, 1024 * 1024 * 1024, 'every written byte was counted')
    t.ok((write.min ?? 0) >= b.minRequest, `smallest write request ${write.min} >= ${b.minRequest} (buckets ${JSON.stringify(write.buckets)})`)
    t.ok(read.requests > 0 && read.bytes >= 256 * 1024 * 1024, `the file was read through the daemon (${read.requests} requests, ${read.bytes} bytes)`)
    t.ok((read.min ?? 0) >= 128 * 1024, `smallest read request ${read.min} >= 128 KiB (buckets ${JSON.stringify(read.buckets)})`)
  })
}

t.test('passthrough (the default): reads and writes never reach the daemon, and the data is right', async (t) => {
  const l = await layers(t, 'binding-passthrough')
  await sh(`head -c ${64 * 1024 * 1024} /dev/urandom > ${join(l.lower, 'in')}`)
  const m = await mount(t, l)
  const mounted = readFileSync(l.log, 'utf8').split('\n').filter((s) => s.includes('"msg":"mounted"')).map((s) => JSON.parse(s) as { passthrough?: boolean })[0]
  t.equal(mounted?.passthrough, true, 'the kernel took passthrough (logged with the mount)')
  await sh('dd if=/dev/zero of=f bs=1M count=64 status=none && dd if=in of=copy bs=1M status=none', m.merged)
  t.equal(await sh(`cmp ${join(l.lower, 'in')} ${join(m.merged, 'copy')} && echo same`), 'same', 'a lower file read through the mount, written back, reads the same')
  t.equal(await sh("printf 'abc' >> in && tail -c 3 in", m.merged), 'abc', 'append after copy-up (a new backing file for the same name)')
  t.equal(statSync(join(l.upper, 'in')).size, 64 * 1024 * 1024 + 3, 'the copy in upper has the append')
  await m.unmount()
  const atUnmount = ioStatsLines(l.log).find((s) => s.reason === 'unmount')
  t.equal(atUnmount?.read.requests, 0, 'no read request reached the daemon')
  t.equal(atUnmount?.write.requests, 0, 'no write request reached the daemon')
})

t.test('a 3 GiB copy-up completes; a long copy-up does not hold up other requests', async (t) => {
  const l = await layers(t, 'binding-bigcopy')
  // big: 3 GiB, all hole but the last bytes (cheap to make, full size to copy up).
  // dense: 512 MiB of real blocks, whose copy takes a while on any disk.
  await sh(`truncate -s 3G ${join(l.lower, 'big')} && echo end >> ${join(l.lower, 'big')} && ` +
    `dd if=/dev/zero of=${join(l.lower, 'dense')} bs=1M count=512 status=none && echo small > ${join(l.lower, 'small')}`)
  const m = await mount(t, l)

  const r = await run('sh', ['-c', 'echo x >> big'], { cwd: m.merged, timeoutMs: 15 * 60_000 })
  t.equal(r.code, 0, `append to the 3 GiB lower file succeeds (no ETIMEDOUT): ${r.stderr.trim()}`)
  const size = 3 * 1024 * 1024 * 1024 + 4 + 2
  t.equal(statSync(join(l.upper, 'big')).size, size, 'the copy in upper has the whole size plus the append')
  t.ok(statSync(join(l.upper, 'big')).blocks * 512 < 1024 * 1024, `the copy stays sparse, as the kernel's (${statSync(join(l.upper, 'big')).blocks} blocks)`)
  t.equal(await sh('tail -c 6 big | od -An -c | tr -d \' \'', m.merged), 'end\\nx\\n', 'the bytes at the end: the lower data and the append')

  // While `dense` copies up, stats of another file keep being answered.
  let copyDone = false
  const copy = run('sh', ['-c', 'echo x >> dense'], { cwd: m.merged, timeoutMs: 15 * 60_000 }).then((res) => { copyDone = true; return res })
  let answeredDuringCopy = 0
  while (!copyDone) {
    const st = await stat(join(m.merged, 'small'))
    if (!copyDone && st.size === 6) answeredDuringCopy++
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  t.equal((await copy).code, 0, 'the dense copy-up succeeds')
  t.ok(answeredDuringCopy > 0, `stats answered while the copy-up ran: ${answeredDuringCopy}`)
})

t.test('statfs counters and device numbers', async (t) => {
  const l = await layers(t, 'binding-statfs')
  const m = await mount(t, l)
  const fmt = "'%b %a %c %d %S %s %l'" // blocks, bavail, files, ffree, fundamental bsize, bsize, namelen
  // bfree/ffree move with other processes' writes: read both twice and accept a match on either pass.
  let ok = false
  let last = ''
  for (let i = 0; i < 5 && !ok; i++) {
    const mine = await sh(`stat -f -c ${fmt} .`, m.merged)
    const theirs = await sh(`stat -f -c ${fmt} .`, l.upper)
    last = `mount: ${mine} / upper: ${theirs}`
    ok = mine === theirs
  }
  t.ok(ok, `stat -f of the mount equals stat -f of upper's filesystem (64-bit counters) ${last}`)

  await sh('mknod null13 c 1 3', m.merged)
  t.equal(await sh("stat -c '%F %t,%T' null13", m.merged), 'character special file 1,3', 'rdev 1,3 through the mount')
  t.equal(await sh("stat -c '%F %t,%T' null13", l.upper), 'character special file 1,3', 'and in upper')
  t.equal(await sh('head -c 3 null13 | wc -c', m.merged), '0', 'it is /dev/null (the mount allows devices as root)')
})

t.test('cold reads return every byte, whatever part of the file is cached', async (t) => {
  const l = await layers(t, 'binding-coldread')
  await sh(`head -c ${64 * 1024 * 1024} /dev/urandom > ${join(l.lower, 'f')}`)
  const want = await sh(`sha256sum < ${join(l.lower, 'f')}`)
  const m = await mount(t, l)
  // Half-cached files make the page-cache fast path return short reads,
  // which FUSE would take for the end of the file if they were passed on.
  for (const cached of [0, 7, 333, 1000]) {
    await sh(`sync; echo 3 > /proc/sys/vm/drop_caches; dd if=${join(l.lower, 'f')} of=/dev/null bs=64k count=${cached} status=none`)
    t.equal(await sh('sha256sum < f', m.merged), want, `read through the mount with ${cached * 64} KiB cached`)
  }
})
