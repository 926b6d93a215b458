// What the kernel transport (the default) gets right that a path-based
// binding could not, each compared with the kernel's overlayfs: hardlinks
// coherent at once through every name, renameat2 with each flag, O_TMPFILE,
// fallocate, SEEK_DATA/SEEK_HOLE, fstat of an unlinked open fifo.
//
// The same Python probe runs in each merged dir (a separate process: this
// test process never touches the overlayts mount itself while it waits on
// nothing, and the daemon is another process anyway) and prints one line per
// step; the two transcripts, the merged trees and the uppers must match.
import t from 'tap'
import { join } from 'node:path'
import { run, runOk } from '../helpers/exec.js'
import { mountPair } from '../helpers/side-by-side.js'
import { snapshotTree } from '../helpers/snapshot.js'
import { tmpDir } from '../helpers/tmp.js'

async function probe (dir: string, script: string): Promise<string[]> {
  const out = await runOk('python3', ['-c', PRELUDE + script], { cwd: dir, timeoutMs: 60_000 })
  return out.toString('utf8').trim().split('\n')
}

// step(name, fn): prints "name: value" or "name: ERRNO".
const PRELUDE = `
import os, ctypes, errno, stat
libc = ctypes.CDLL(None, use_errno=True)
def step(name, fn):
    try:
        v = fn()
        print(f"{name}: {v}")
    except OSError as e:
        print(f"{name}: {errno.errorcode.get(e.errno, e.errno)}")
def renameat2(a, b, flags):
    if libc.renameat2(-100, a.encode(), -100, b.encode(), flags) != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
    return 'ok'
def st(p):
    s = os.lstat(p)
    return f"ino={s.st_ino} nlink={s.st_nlink} size={s.st_size} mode={oct(s.st_mode)} mtime={s.st_mtime_ns}"
def data(p):
    with open(p, 'rb') as f: return f.read()
`

const HARDLINKS = `
ln = lambda: os.link('h1', 'h2') or 'ok'
step('link', ln)
step('same inode', lambda: os.lstat('h1').st_ino == os.lstat('h2').st_ino)
step('nlink', lambda: (os.lstat('h1').st_nlink, os.lstat('h2').st_nlink))
step('read h2', lambda: data('h2'))
with open('h1', 'ab') as f: f.write(b'more\\n')
step('after write via h1: h2 size', lambda: os.lstat('h2').st_size)
step('after write via h1: h2 data', lambda: data('h2'))
os.truncate('h2', 3)
step('after truncate via h2: h1', lambda: (os.lstat('h1').st_size, data('h1')))
os.chmod('h1', 0o600)
step('after chmod via h1: h2 mode', lambda: oct(os.lstat('h2').st_mode))
os.utime('h2', ns=(1_000_000_123, 2_000_000_456))
step('after utime via h2: h1 times', lambda: (os.lstat('h1').st_atime_ns, os.lstat('h1').st_mtime_ns))
os.unlink('h1')
step('after unlink h1: h2 nlink', lambda: os.lstat('h2').st_nlink)
step('h2 data', lambda: data('h2'))
# A lower hardlink pair: two objects once one is copied up.
step('lower pair same ino', lambda: os.lstat('l1').st_ino == os.lstat('l2').st_ino)
with open('l1', 'ab') as f: f.write(b'x')
step('after copy-up of l1: same ino', lambda: os.lstat('l1').st_ino == os.lstat('l2').st_ino)
step('l2 unchanged', lambda: data('l2'))
`

t.test('hardlinks: every name shows the change at once (nlink, size, data, mode, times)', async (t) => {
  const pair = await mountPair(t, 'kt-hardlinks', {
    layers: [{
      entries: [
        { type: 'file', path: 'h1', content: 'one\n' },
        { type: 'file', path: 'l1', content: 'lower pair\n' },
        { type: 'hardlink', path: 'l2', to: 'l1' }
      ]
    }]
  })
  const k = await probe(pair.kernel.merged, HARDLINKS)
  const o = await probe(pair.overlayts.merged, HARDLINKS)
  t.same(o, k, 'the same transcript as the kernel')
  t.match(k.join('\n'), /after write via h1: h2 data: b'one\\nmore\\n'/, 'the probe saw the write through the other name')
  await pair.unmount()
})

const RENAME2 = `
NOREPLACE, EXCHANGE, WHITEOUT = 1, 2, 4
step('noreplace onto existing', lambda: renameat2('a', 'b', NOREPLACE))
step('noreplace onto new', lambda: renameat2('a', 'a2', NOREPLACE))
step('a2', lambda: data('a2'))
step('exchange files', lambda: renameat2('a2', 'b', EXCHANGE))
step('b after exchange', lambda: data('b'))
step('a2 after exchange', lambda: data('a2'))
step('exchange lower dirs', lambda: renameat2('d1', 'd2', EXCHANGE))
step('d1 lists', lambda: sorted(os.listdir('d1')))
step('d2 lists', lambda: sorted(os.listdir('d2')))
step('exchange file and dir', lambda: renameat2('b', 'd1', EXCHANGE))
step('b is dir', lambda: stat.S_ISDIR(os.lstat('b').st_mode))
step('b lists', lambda: sorted(os.listdir('b')))
step('d1 data', lambda: data('d1'))
step('exchange with missing', lambda: renameat2('b', 'nothere', EXCHANGE))
step('exchange into itself', lambda: renameat2('b', 'b/x', EXCHANGE))
step('whiteout flag', lambda: renameat2('a2', 'c', WHITEOUT))
step('noreplace|exchange', lambda: renameat2('a2', 'b', NOREPLACE | EXCHANGE))
step('listing', lambda: sorted(os.listdir('.')))
`

t.test('renameat2: RENAME_NOREPLACE, RENAME_EXCHANGE (files, lower dirs, file with dir), RENAME_WHITEOUT', async (t) => {
  const pair = await mountPair(t, 'kt-rename2', {
    layers: [{
      entries: [
        { type: 'file', path: 'a', content: 'A\n' },
        { type: 'file', path: 'b', content: 'B\n' },
        { type: 'dir', path: 'd1' },
        { type: 'file', path: 'd1/x', content: 'x\n' },
        { type: 'dir', path: 'd2' },
        { type: 'file', path: 'd2/y', content: 'y\n' }
      ]
    }]
  })
  const k = await probe(pair.kernel.merged, RENAME2)
  const o = await probe(pair.overlayts.merged, RENAME2)
  t.same(o, k, 'the same transcript as the kernel')
  const ko = await snapshotTree(pair.kernel.merged)
  const oo = await snapshotTree(pair.overlayts.merged)
  t.same(oo, ko, 'the same merged tree')
  await pair.unmount()
})

const FILEOPS = `
# O_TMPFILE: a file with no name, readable and writable, then linked in
# through /proc/self/fd (linkat AT_SYMLINK_FOLLOW), as the kernel's overlayfs allows.
fd = os.open('.', os.O_TMPFILE | os.O_RDWR, 0o640)
os.write(fd, b'temp data')
step('tmpfile size', lambda: os.fstat(fd).st_size)
step('tmpfile nlink', lambda: os.fstat(fd).st_nlink)
step('tmpfile mode', lambda: oct(os.fstat(fd).st_mode))
step('tmpfile read', lambda: os.pread(fd, 4, 0))
step('linkat tmpfile', lambda: libc.linkat(-100, f'/proc/self/fd/{fd}'.encode(), -100, b'named', 0x400) == 0 or errno.errorcode[ctypes.get_errno()])
os.close(fd)
step('listing after tmpfile', lambda: sorted(os.listdir('.')))
# fallocate: allocate, keep size, punch a hole.
fd = os.open('fa', os.O_RDWR | os.O_CREAT, 0o644)
step('posix_fallocate', lambda: os.posix_fallocate(fd, 0, 1 << 20) or os.fstat(fd).st_size)
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2
def fallocate(mode, off, n):
    if libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(n)) != 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
    return os.fstat(fd).st_size
step('keep size', lambda: fallocate(FALLOC_FL_KEEP_SIZE, 0, 4 << 20))
step('punch hole', lambda: fallocate(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 4096, 65536))
step('blocks after punch (KiB)', lambda: os.fstat(fd).st_blocks // 2)
os.close(fd)
# SEEK_DATA / SEEK_HOLE on a sparse lower file and on its copy.
for name in ['sparse']:
    fd = os.open(name, os.O_RDONLY)
    step(f'{name} SEEK_DATA 0', lambda: os.lseek(fd, 0, os.SEEK_DATA))
    step(f'{name} SEEK_HOLE data', lambda: os.lseek(fd, 1 << 20, os.SEEK_HOLE))
    step(f'{name} SEEK_DATA past end', lambda: os.lseek(fd, 64 << 20, os.SEEK_DATA))
    os.close(fd)
with open('sparse', 'r+b') as f: f.seek(8 << 20); f.write(b'tail')
fd = os.open('sparse', os.O_RDONLY)
step('copy SEEK_DATA 0', lambda: os.lseek(fd, 0, os.SEEK_DATA))
step('copy SEEK_DATA 4M', lambda: os.lseek(fd, 4 << 20, os.SEEK_DATA))
os.close(fd)
# fstat of a fifo unlinked while open.
os.mkfifo('ff', 0o600)
fd = os.open('ff', os.O_RDWR)
os.unlink('ff')
step('fstat unlinked fifo', lambda: (stat.S_ISFIFO(os.fstat(fd).st_mode), oct(os.fstat(fd).st_mode), os.fstat(fd).st_nlink))
os.close(fd)
step('listing', lambda: sorted(os.listdir('.')))
`

t.test('O_TMPFILE, fallocate, SEEK_DATA/SEEK_HOLE, fstat of an unlinked open fifo', async (t) => {
  const pair = await mountPair(t, 'kt-fileops', { layers: [{ entries: [] }] }, {
    // A sparse lower file: 4 KiB of data at 1 MiB, holes around it.
    prepare: async (lowers) => {
      await runOk('sh', ['-c', 'truncate -s 16M sparse && printf data | dd of=sparse bs=1 seek=1048576 conv=notrunc status=none'], { cwd: lowers[0]! })
    }
  })
  const k = await probe(pair.kernel.merged, FILEOPS)
  const o = await probe(pair.overlayts.merged, FILEOPS)
  t.same(o, k, 'the same transcript as the kernel')
  t.match(k.join('\n'), /tmpfile read: b'temp'/, 'the probe ran through')
  await pair.unmount()
})

// A node open in passthrough mode on its lower file, then opened for writing:
// the copy needs another backing file, which the kernel refuses for one inode.
// The write open is answered ESTALE and the kernel retries it on a new node
// (the copy): the writer never sees it. The reader keeps its lower file (the
// documented edge, as fuse-overlayfs); without passthrough the daemon moves
// it onto the copy, as the kernel's overlayfs does.
const COPYUP_WHILE_OPEN = `
r = os.open('f', os.O_RDONLY)
step('reader before', lambda: os.pread(r, 100, 0))
w = os.open('f', os.O_WRONLY | os.O_APPEND)
step('append', lambda: os.write(w, b'appended\\n'))
os.close(w)
step('reader after', lambda: os.pread(r, 100, 0))
step('a new open', lambda: data('f'))
os.close(r)
step('size', lambda: os.lstat('f').st_size)
`

t.test('a copy-up while a lower file is open for reading', async (t) => {
  const pair = await mountPair(t, 'kt-copyup-open', { layers: [{ entries: [{ type: 'file', path: 'f', content: 'original\n' }] }] })
  const k = await probe(pair.kernel.merged, COPYUP_WHILE_OPEN)
  const pt = await probe(pair.overlayts.merged, COPYUP_WHILE_OPEN)
  t.same(pt.filter((l) => !l.startsWith('reader after')), k.filter((l) => !l.startsWith('reader after')), 'the writer and new opens: as the kernel')
  t.same(pt.find((l) => l.startsWith('reader after')), "reader after: b'original\\n'", 'passthrough: the reader keeps the lower copy')
  await pair.unmount()

  const off = await mountPair(t, 'kt-copyup-open-nopt', { layers: [{ entries: [{ type: 'file', path: 'f', content: 'original\n' }] }] }, { overlaytsExtra: ['-o', 'passthrough=off'] })
  const k2 = await probe(off.kernel.merged, COPYUP_WHILE_OPEN)
  t.same(await probe(off.overlayts.merged, COPYUP_WHILE_OPEN), k2, 'passthrough=off: the reader moves to the copy, as with the kernel')
  await off.unmount()
})

// The reader of the documented edge keeps reading the lower copy, but it is
// still the file at its name: fstat through it shows the copy's attributes
// as changes come through the name (the kernel's overlayfs: one inode). Under
// passthrough those changes reach another node (the copy's, after the ESTALE
// retry) and its writes never reach the daemon, so the reader's node must not
// be answered from a cache. The stat between the copy-up and the write open
// is what had the kernel cache the reader's node's attributes for an hour.
const FSTAT_AFTER_COPY_CHANGES = `
def fst(fd):
    s = os.fstat(fd)
    return f"size={s.st_size} mode={oct(s.st_mode)} nlink={s.st_nlink}"
r = os.open('f', os.O_RDONLY)
os.chmod('f', 0o640)
step('name after copy-up', lambda: st('f').split(' ', 1)[1].rsplit(' ', 1)[0])
step('reader after copy-up', lambda: fst(r))
w = os.open('f', os.O_WRONLY)
step('pwrite @20', lambda: os.pwrite(w, b'hello', 20))
os.close(w)
step('reader after write', lambda: fst(r))
step('reader ino is the name\\'s', lambda: os.fstat(r).st_ino == os.lstat('f').st_ino)
step('reader read', lambda: os.pread(r, 100, 0))
os.truncate('f', 3)
step('reader after truncate', lambda: fst(r))
os.chmod('f', 0o600)
step('reader after chmod', lambda: fst(r))
os.utime('f', ns=(1_000_000_123, 2_000_000_456))
step('reader after utime', lambda: os.fstat(r).st_mtime_ns)
os.close(r)
`

t.test('fstat through a reader of the lower copy shows the copy as it changes', async (t) => {
  const layers = [{ entries: [{ type: 'file' as const, path: 'f', content: 'b@L1\n' }] }]
  for (const [label, extra] of [['kt-fstat-copy', []], ['kt-fstat-copy-nopt', ['-o', 'passthrough=off']]] as const) {
    const pair = await mountPair(t, label, { layers }, { overlaytsExtra: [...extra] })
    const k = await probe(pair.kernel.merged, FSTAT_AFTER_COPY_CHANGES)
    const o = await probe(pair.overlayts.merged, FSTAT_AFTER_COPY_CHANGES)
    t.match(k.join('\n'), /reader after utime: 2000000456/, `${label}: the probe ran through`)
    // The read is the documented passthrough edge (see the test above); every attribute is the kernel's.
    const edge = (l: string): boolean => l.startsWith('reader read')
    t.same(o.filter(l => !edge(l)), k.filter(l => !edge(l)), `${label}: fstat as the kernel's`)
    await pair.unmount()
  }
})

// Operations through the reader of the documented edge that name its file:
// fchmod, fchown, futimens, the xattr calls, fstatfs. Under passthrough its
// node was retired (it has no name in the node table), yet these reach the
// daemon on that node, and must change the file the reader has open (the
// copy, after a rename too), as the kernel's overlayfs does, not fail ENOENT.
const THROUGH_RETIRED_READER = `
def fst(fd):
    s = os.fstat(fd)
    return f"mode={oct(s.st_mode)} uid={s.st_uid} gid={s.st_gid} atime={s.st_atime_ns} mtime={s.st_mtime_ns}"
def nst(p):
    s = os.lstat(p)
    return f"mode={oct(s.st_mode)} uid={s.st_uid} gid={s.st_gid} atime={s.st_atime_ns} mtime={s.st_mtime_ns}"
r = os.open('f', os.O_RDONLY)
w = os.open('f', os.O_WRONLY)
step('fchmod', lambda: os.fchmod(r, 0o600) or 'ok')
step('fstat after fchmod', lambda: fst(r))
step('name after fchmod', lambda: nst('f'))
step('fchown', lambda: os.fchown(r, 1000, 1000) or 'ok')
step('fstat after fchown', lambda: fst(r))
step('name after fchown', lambda: nst('f'))
step('futimens', lambda: os.utime(r, ns=(1_000_000_123, 2_000_000_456)) or 'ok')
step('fstat after futimens', lambda: fst(r))
step('name after futimens', lambda: nst('f'))
step('fsetxattr', lambda: os.setxattr(r, 'user.x', b'v1') or 'ok')
step('fgetxattr', lambda: os.getxattr(r, 'user.x'))
step('flistxattr', lambda: sorted(os.listxattr(r)))
step('name getxattr', lambda: os.getxattr('f', 'user.x'))
step('fremovexattr', lambda: os.removexattr(r, 'user.x') or 'ok')
step('name listxattr', lambda: sorted(os.listxattr('f')))
step('fstatvfs', lambda: os.fstatvfs(r).f_namemax == os.statvfs('.').f_namemax)
step('fchmod via /proc', lambda: os.chmod(f'/proc/self/fd/{r}', 0o640) or 'ok')
step('name after /proc chmod', lambda: nst('f'))
os.close(w)
os.rename('f', 'g')
step('fchmod after rename', lambda: os.fchmod(r, 0o604) or 'ok')
step('fstat after rename', lambda: fst(r))
step('name after rename', lambda: nst('g'))
step('fsetxattr after rename', lambda: os.setxattr(r, 'user.y', b'v2') or 'ok')
step('name xattrs after rename', lambda: sorted(os.listxattr('g')))
os.close(r)
step('listing', lambda: sorted(os.listdir('.')))
`

t.test('fchmod, fchown, futimens, xattrs through a reader of the lower copy change the copy', async (t) => {
  const layers = [{ entries: [{ type: 'file' as const, path: 'f', content: 'b@L1\n', mode: 0o644 }] }]
  for (const [label, extra] of [['kt-retired-ops', []], ['kt-retired-ops-nopt', ['-o', 'passthrough=off']]] as const) {
    const pair = await mountPair(t, label, { layers }, { overlaytsExtra: [...extra] })
    const k = await probe(pair.kernel.merged, THROUGH_RETIRED_READER)
    const o = await probe(pair.overlayts.merged, THROUGH_RETIRED_READER)
    t.match(k.join('\n'), /name xattrs after rename: \['user.y'\]/, `${label}: the probe ran through`)
    t.same(o, k, `${label}: as the kernel's`)
    await pair.unmount()
  }
})

// Setuid, setgid and file capabilities dropped by a change, as the kernel's
// overlayfs drops them (HANDLE_KILLPRIV_V2: the kernel tells the daemon, which
// clears them). Each kind of file meets each change, by root (CAP_FSETID: only
// the capability goes, and chown's setuid/setgid) and by uid 1000 (the files'
// owner), with passthrough on and off. `chmodwrite` opens a plain file for
// writing first (so, with passthrough, its writes go straight to the backing
// file), makes it setuid+setgid through the fd, then writes.
// security.capability v2: cap_net_raw in the permitted set, effective.
const FILE_CAP = Buffer.from([0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
const KILLPRIV_KINDS: Record<string, { mode: number, gid: number, cap?: boolean }> = {
  plain: { mode: 0o666, gid: 1000 },
  suid: { mode: 0o4777, gid: 1000 },
  sgidx: { mode: 0o2777, gid: 1000 },
  sgid: { mode: 0o2767, gid: 1000 },
  sgidother: { mode: 0o2767, gid: 0 },
  sugid: { mode: 0o6777, gid: 1000 },
  cap: { mode: 0o777, gid: 1000, cap: true }
}
const KILLPRIV_OPS = ['write', 'truncate', 'ftruncate', 'chown', 'otrunc', 'chmodwrite']
const KILLPRIV = `
import os, sys, errno
def state(p):
    s = os.lstat(p)
    try:
        os.getxattr(p, 'security.capability', follow_symlinks=False); cap = 'cap'
    except OSError:
        cap = 'nocap'
    return f"{oct(s.st_mode)} {s.st_uid}:{s.st_gid} size={s.st_size} {cap}"
def write(p):
    fd = os.open(p, os.O_WRONLY); os.pwrite(fd, b'w', 0); os.close(fd)
def ftruncate(p):
    fd = os.open(p, os.O_WRONLY); os.ftruncate(fd, 1); os.close(fd)
def otrunc(p):
    os.close(os.open(p, os.O_WRONLY | os.O_TRUNC))
def chmodwrite(p):
    fd = os.open(p, os.O_RDWR); os.fchmod(fd, 0o6777); os.pwrite(fd, b'w', 0); os.close(fd)
OPS = {'write': write, 'truncate': lambda p: os.truncate(p, 1), 'ftruncate': ftruncate,
       'chown': lambda p: os.chown(p, 1000, 1000), 'otrunc': otrunc, 'chmodwrite': chmodwrite}
who, kinds, ops = sys.argv[1], sys.argv[2].split(','), sys.argv[3].split(',')
for kind in kinds:
    for op in ops:
        p = f'{who}-{op}-{kind}'
        try:
            OPS[op](p); r = 'ok'
        except OSError as e:
            r = errno.errorcode[e.errno]
        print(f'{p}: {r} {state(p)}')
`

async function killprivProbe (dir: string, who: 'root' | 'user'): Promise<string[]> {
  const args = ['-c', KILLPRIV, who, Object.keys(KILLPRIV_KINDS).join(','), KILLPRIV_OPS.join(',')]
  const out = who === 'root'
    ? await runOk('/usr/bin/python3', args, { cwd: dir, timeoutMs: 60_000 })
    : await runOk('setpriv', ['--reuid=1000', '--regid=1000', '--clear-groups', '/usr/bin/python3', ...args], { cwd: dir, timeoutMs: 60_000 })
  return out.toString('utf8').trim().split('\n')
}

for (const passthrough of ['on', 'off']) {
  t.test(`setuid, setgid and capabilities dropped by write, truncate, chown, O_TRUNC (passthrough=${passthrough})`, async (t) => {
    const entries = Object.entries(KILLPRIV_KINDS).flatMap(([kind, k]) => ['root', 'user'].flatMap((who) => KILLPRIV_OPS.map((op) => ({
      type: 'file' as const, path: `${who}-${op}-${kind}`, content: 'content\n', mode: k.mode, uid: 1000, gid: k.gid,
      ...(k.cap === true ? { xattrs: { 'security.capability': FILE_CAP } } : {})
    }))))
    const pair = await mountPair(t, `kt-killpriv-${passthrough}`, { layers: [{ entries }] }, { overlaytsExtra: ['-o', `passthrough=${passthrough}`] })
    for (const who of ['root', 'user'] as const) {
      const k = await killprivProbe(pair.kernel.merged, who)
      const o = await killprivProbe(pair.overlayts.merged, who)
      t.same(o, k, `${who}: the same modes, owners and capabilities as the kernel`)
      t.equal(k.length, Object.keys(KILLPRIV_KINDS).length * KILLPRIV_OPS.length, `${who}: every case ran`)
    }
    await pair.unmount()
  })
}

// File handles (EXPORT_SUPPORT): name_to_handle_at, then open_by_handle_at,
// for a file and a directory, while the kernel holds their inodes and after
// `echo 2 > drop_caches` evicted them (the kernel then asks the daemon for
// "." of the forgotten node id, and ".." to reconnect the directory), after
// the name was looked up again, renamed, and unlinked. The kernel's overlayfs
// needs index=on,nfs_export=on for handles at all.
const HANDLE_C = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* fh save MOUNT PATH FILE | fh open MOUNT FILE */
int main(int argc, char **argv) {
  struct file_handle *h = malloc(sizeof *h + MAX_HANDLE_SZ);
  if (argc == 5 && !strcmp(argv[1], "save")) {
    int mnt;
    h->handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(AT_FDCWD, argv[3], h, &mnt, 0) != 0) { printf("%s\n", strerrorname_np(errno)); return 0; }
    FILE *f = fopen(argv[4], "wb");
    if (f == NULL || fwrite(h, sizeof *h + h->handle_bytes, 1, f) != 1) return 1;
    fclose(f);
    printf("ok\n");
    return 0;
  }
  if (argc == 4 && !strcmp(argv[1], "open")) {
    FILE *f = fopen(argv[3], "rb");
    if (f == NULL) { printf("no handle\n"); return 0; }
    if (fread(h, 1, sizeof *h + MAX_HANDLE_SZ, f) < sizeof *h) return 1;
    fclose(f);
    int fd = open_by_handle_at(open(argv[2], O_RDONLY | O_DIRECTORY), h, O_RDONLY);
    if (fd < 0) { printf("%s\n", strerrorname_np(errno)); return 0; }
    struct stat st;
    char data[16] = "";
    fstat(fd, &st);
    if (!S_ISDIR(st.st_mode) && read(fd, data, sizeof data - 1) < 0) return 1;
    printf("ok %s %s", S_ISDIR(st.st_mode) ? "dir" : "file", data);
    if (S_ISDIR(st.st_mode)) printf("\n");
    return 0;
  }
  return 2;
}
`

t.test('file handles: open_by_handle_at for a file and a directory, before and after drop_caches', async (t) => {
  const bin = join(await tmpDir(t, 'kt-handles-bin'), 'fh')
  await runOk('sh', ['-c', `cat > "$1.c" && cc -O1 -o "$1" "$1.c"`, 'sh', bin], { input: HANDLE_C, timeoutMs: 60_000 })
  const pair = await mountPair(t, 'kt-handles', { layers: [{ entries: [{ type: 'file', path: 'd/f', content: 'lower\n' }] }] }, { kernelExtra: ['index=on', 'nfs_export=on'] })
  const fh = async (...args: string[]): Promise<string> => (await runOk(bin, args, { timeoutMs: 30_000 })).toString('utf8').trim()
  const steps = async (m: string, work: string): Promise<string[]> => {
    const out: string[] = []
    out.push(`save file: ${await fh('save', m, join(m, 'd/f'), work + 'hf')}`)
    out.push(`save dir: ${await fh('save', m, join(m, 'd'), work + 'hd')}`)
    out.push(`open file: ${await fh('open', m, work + 'hf')}`)
    out.push(`open dir: ${await fh('open', m, work + 'hd')}`)
    return out
  }
  const dropCaches = async (): Promise<void> => { await runOk('sh', ['-c', 'sync && echo 2 > /proc/sys/vm/drop_caches']) }
  const scratch = await tmpDir(t, 'kt-handles')
  const opens = async (m: string, work: string): Promise<string[]> =>
    [`file: ${await fh('open', m, work + 'hf')}`, `dir: ${await fh('open', m, work + 'hd')}`]
  const sides = [[pair.kernel.merged, scratch + '/k-'], [pair.overlayts.merged, scratch + '/o-']] as const
  const k = await steps(...sides[0])
  t.same(await steps(...sides[1]), k, 'while the inodes are cached: the same answers as the kernel')
  t.same(k, ['save file: ok', 'save dir: ok', 'open file: ok file lower', 'open dir: ok dir'], 'handles work')
  const stage = async (what: string, change: string, want: string[], wantOverlayts = want): Promise<void> => {
    await dropCaches()
    const got: string[][] = []
    for (const [m, work] of sides) {
      if (change !== '') await runOk('sh', ['-c', change], { cwd: m })
      got.push(await opens(m, work))
    }
    t.same(got[0], want, `${what}: the kernel's answers`)
    t.same(got[1], wantOverlayts, `${what}: ${want === wantOverlayts ? 'the same' : 'the documented difference'} through overlayts`)
  }
  // A container may have /proc/sys read-only: then only the cached part runs.
  if ((await run('sh', ['-c', 'echo 2 > /proc/sys/vm/drop_caches'])).code !== 0) {
    t.comment('skipped the stages after drop_caches: /proc/sys/vm/drop_caches is not writable here')
    await pair.unmount()
    return
  }
  await stage('after drop_caches', '', ['file: ok file lower', 'dir: ok dir'])
  await stage('after drop_caches and a lookup of the names', 'ls -l d > /dev/null', ['file: ok file lower', 'dir: ok dir'])
  await stage('after drop_caches and a rename', 'mv d/f d/g', ['file: ok file lower', 'dir: ok dir'])
  // The kernel decodes the handle of a deleted file to its lower copy, which
  // still exists; overlayts answers ESTALE for a file with no name.
  await stage('after drop_caches and an unlink', 'rm d/g', ['file: ok file lower', 'dir: ok dir'], ['file: ESTALE', 'dir: ok dir'])
  await pair.unmount()
})
