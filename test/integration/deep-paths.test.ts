// Issue 10 item 1: merged paths near PATH_MAX. The kernel's overlayfs serves
// a merged path of up to 4,095 bytes (and deeper, through relative paths);
// overlayts' host paths are the layer root plus the merged path, longer than
// PATH_MAX, so its host seam resolves those one component at a time (see
// viaDirFd in src/overlay/sys/fs.ts). Both mounts of the same layers (a lower
// that already holds a tree 4,014 bytes deep) run the same steps at that
// depth; every answer, the merged trees and the uppers must be the kernel's.
//
// Neither this process nor any tool can name such a path from "/", so a
// Python child does the work with its cwd deep inside the mount (chdir one
// component at a time) and walks the trees the same way.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { mountPair, PY_STEP } from '../helpers/side-by-side.js'

const SCRIPT = String.raw`
import errno, hashlib, json, os, stat, sys

mode, root = sys.argv[1], sys.argv[2].encode()
# 20 levels of 199 bytes (one of them not UTF-8) and a 14-byte one: the deep dir
# is 4,014 bytes from the root, so each 80-byte name in it is a 4,095-byte path.
LEVELS = [bytes([0x61 + i]) * 199 for i in range(20)]
LEVELS[5] = b'\xff' * 199
LEVELS.append(b'z' * 14)
def n(s): return (s.encode() + b'.').ljust(80, b'-')
def h(b): return b.decode('latin1')

def chdeep(create):
    os.chdir(root)
    for name in LEVELS:
        if create and not os.path.lexists(name): os.mkdir(name, 0o755)
        os.chdir(name)

T1 = 1_000_000_000_123_456_789
T2 = -1_234_567_890_500_000_000  # 1930, with a fraction

if mode == 'prep':
    chdeep(True)
    def mk(name, data):
        with open(name, 'wb') as f: f.write(data)
    mk(n('lf'), b'lower file\n')
    os.setxattr(n('lf'), b'user.x', b'\xffx')
    mk(n('lh1'), b'lower link 1\n'); os.link(n('lh1'), n('lh2'))
    mk(n('lh3'), b'lower link 3\n'); os.link(n('lh3'), n('lh4'))
    mk(n('lgone'), b'gone\n')
    os.mkdir(n('ldir')); mk(n('ldir') + b'/' + n('x'), b'x\n')
    os.mkdir(n('ldir2')); mk(n('ldir2') + b'/y', b'y\n')
    os.mkdir(n('ldir3')); mk(n('ldir3') + b'/z', b'z\n')
    os.symlink(b'lf-target', n('ls'))
    os.mkfifo(n('lfifo'), 0o640)
    for name in os.listdir(b'.'):
        os.utime(name, ns=(T1, T2), follow_symlinks=False)
    os.chdir(root)
    mk(b'top', b'top\n')
    sys.exit(0)

${PY_STEP}

def st(name):
    def f():
        s = os.lstat(name)
        r = [oct(s.st_mode), s.st_uid, s.st_gid]
        if not stat.S_ISDIR(s.st_mode): r += [s.st_nlink, s.st_size]
        if stat.S_ISCHR(s.st_mode): r.append([os.major(s.st_rdev), os.minor(s.st_rdev)])
        return r
    return f
def read(name):
    def f():
        with open(name, 'rb') as fh: return h(fh.read())
    return f
def write(name, data, flags):
    def f():
        fd = os.open(name, flags, 0o644)
        try: os.write(fd, data)
        finally: os.close(fd)
    return f
def same(a, b): return lambda: os.lstat(a).st_ino == os.lstat(b).st_ino
def listing(): return sorted(h(x) for x in os.listdir(b'.'))
def names():
    try: return sorted(os.listdir(b'.'))
    except OSError as e: return []

if mode == 'steps':
    chdeep(False)
    step('list', listing)
    for name in names(): step('stat ' + h(name), st(name))
    step('lh1 is lh2', same(n('lh1'), n('lh2')))
    # create, open, write, read
    step('create new', write(n('new'), b'new\n', os.O_CREAT | os.O_WRONLY | os.O_EXCL))
    step('create new again', write(n('new'), b'x', os.O_CREAT | os.O_WRONLY | os.O_EXCL))
    step('read new', read(n('new')))
    step('stat new', st(n('new')))
    step('append lf', write(n('lf'), b'more\n', os.O_WRONLY | os.O_APPEND))
    step('read lf', read(n('lf')))
    step('xattr lf', lambda: h(os.getxattr(n('lf'), b'user.x', follow_symlinks=False)))
    # mkdir, chmod, chown, truncate
    step('mkdir nd', lambda: os.mkdir(n('nd'), 0o755))
    step('mkdir nd again', lambda: os.mkdir(n('nd'), 0o755))
    step('chmod nd', lambda: os.chmod(n('nd'), 0o700))
    step('stat nd', st(n('nd')))
    step('chmod lf', lambda: os.chmod(n('lf'), 0o600))
    step('stat lf', st(n('lf')))
    step('chown lh1', lambda: os.chown(n('lh1'), 1000, 1000, follow_symlinks=False))
    step('stat lh1', st(n('lh1')))
    step('stat lh2', st(n('lh2')))
    step('lh1 is lh2 after copy-up', same(n('lh1'), n('lh2')))
    step('chown ls', lambda: os.chown(n('ls'), 1000, 1000, follow_symlinks=False))
    step('truncate lh3', lambda: os.truncate(n('lh3'), 3))
    step('read lh3', read(n('lh3')))
    step('read lh4', read(n('lh4')))
    step('utime lgone', lambda: os.utime(n('lgone'), ns=(T2, T1), follow_symlinks=False))
    step('setxattr nd', lambda: os.setxattr(n('nd'), b'user.y', b'\x00\xff'))
    step('removexattr lf', lambda: os.removexattr(n('lf'), b'user.x'))
    # link
    step('link new', lambda: os.link(n('new'), n('newlink')))
    step('stat newlink', st(n('newlink')))
    step('link lh2 (lower)', lambda: os.link(n('lh2'), n('lh2b')))
    step('stat lh2b', st(n('lh2b')))
    step('lh2 is lh2b', same(n('lh2'), n('lh2b')))
    step('link to existing', lambda: os.link(n('lf'), n('lh2b')))
    step('link missing', lambda: os.link(n('nothing'), n('nothing2')))
    # rename: files, lower dirs (redirects), in and out of the deep dir, flags
    step('rename lh4', lambda: os.rename(n('lh4'), n('lh4r')))
    step('read lh4r', read(n('lh4r')))
    step('rename newlink out', lambda: os.rename(n('newlink'), root + b'/out'))
    step('rename top in', lambda: os.rename(root + b'/top', n('top')))
    step('rename ldir2', lambda: os.rename(n('ldir2'), n('ldir2r')))
    step('list ldir2r', lambda: sorted(h(x) for x in os.listdir(n('ldir2r'))))
    step('rename ldir3 out', lambda: os.rename(n('ldir3'), root + b'/ldir3'))
    step('list ldir3 (root)', lambda: sorted(h(x) for x in os.listdir(root + b'/ldir3')))
    step('rename missing', lambda: os.rename(n('nothing'), n('nothing2')))
    step('rename over dir', lambda: os.rename(n('lf'), n('ldir')))
    # unlink, rmdir
    step('unlink lgone', lambda: os.unlink(n('lgone')))
    step('unlink lgone again', lambda: os.unlink(n('lgone')))
    step('unlink new', lambda: os.unlink(n('new')))
    step('rmdir nd', lambda: os.rmdir(n('nd')))
    step('rmdir ldir (not empty)', lambda: os.rmdir(n('ldir')))
    step('unlink ldir/x', lambda: os.unlink(n('ldir') + b'/' + n('x')))
    step('rmdir ldir', lambda: os.rmdir(n('ldir')))
    step('mkdir ldir (over whiteout)', lambda: os.mkdir(n('ldir'), 0o750))
    step('list ldir', lambda: sorted(h(x) for x in os.listdir(n('ldir'))))
    # symlink, mknod, mkfifo
    step('symlink', lambda: os.symlink(b'\xfe/target', n('sl')))
    step('readlink sl', lambda: h(os.readlink(n('sl'))))
    step('readlink ls', lambda: h(os.readlink(n('ls'))))
    step('symlink over', lambda: os.symlink(b't', n('lf')))
    step('mknod chr', lambda: os.mknod(n('chr'), stat.S_IFCHR | 0o640, os.makedev(1, 3)))
    step('stat chr', st(n('chr')))
    step('mkfifo', lambda: os.mkfifo(n('fifo'), 0o604))
    step('stat fifo', st(n('fifo')))
    step('mkfifo over lfifo', lambda: os.mkfifo(n('lfifo'), 0o604))
    # names of 255 and 256 bytes, 4,270 bytes from the root; and one level deeper
    step('create 255', write(b'N' * 255, b'255\n', os.O_CREAT | os.O_WRONLY))
    step('read 255', read(b'N' * 255))
    step('create 256', write(b'N' * 256, b'256\n', os.O_CREAT | os.O_WRONLY))
    step('stat 256', st(b'N' * 256))
    step('mkdir deeper', lambda: os.mkdir(n('deeper'), 0o755))
    os.chdir(n('deeper'))
    step('create deeper/f', write(n('f'), b'deeper\n', os.O_CREAT | os.O_WRONLY))
    step('read deeper/f', read(n('f')))
    step('rename deeper/f up', lambda: os.rename(n('f'), b'../' + n('f-up')))
    os.chdir(b'..')
    step('statvfs', lambda: os.statvfs(b'.').f_namemax)
    step('list at end', listing)
    for name in names(): step('stat at end ' + h(name), st(name))
    print('\n'.join(out))
    sys.exit(0)

# snap: every entry under root (relative byte names, latin1), walked with chdir.
PRIVATE = (b'trusted.overlay.origin', b'trusted.overlay.impure', b'trusted.overlay.uuid', b'trusted.overlay.nlink')
RECENT = (__import__('time').time() - 86400) * 1e9
entries = []
def snap(rel):
    for name in sorted(os.listdir(b'.')):
        s = os.lstat(name)
        path = rel + b'/' + name
        e = {'path': h(path), 'mode': oct(s.st_mode), 'uid': s.st_uid, 'gid': s.st_gid}
        if stat.S_ISCHR(s.st_mode) and s.st_rdev == 0 and mode == 'snap-upper':
            entries.append({'path': h(path), 'type': 'whiteout'})
            continue
        if not stat.S_ISDIR(s.st_mode):
            e['nlink'] = s.st_nlink
            e['mtime'] = 'now' if s.st_mtime_ns > RECENT else s.st_mtime_ns
        if stat.S_ISREG(s.st_mode):
            with open(name, 'rb') as fh: e['sha'] = hashlib.sha256(fh.read()).hexdigest()
        if stat.S_ISLNK(s.st_mode): e['target'] = h(os.readlink(name))
        if stat.S_ISCHR(s.st_mode) or stat.S_ISBLK(s.st_mode): e['rdev'] = s.st_rdev
        x = {}
        for k in os.listxattr(name, follow_symlinks=False):
            kb = k.encode('utf-8', 'surrogateescape')
            if kb in PRIVATE or kb.startswith(b'trusted.overlay.ts.'): continue
            x[k] = os.getxattr(name, k, follow_symlinks=False).hex()
        if x: e['xattrs'] = x
        entries.append(e)
        if stat.S_ISDIR(s.st_mode):
            os.chdir(name)
            snap(path)
            os.chdir(b'..')
os.chdir(root)
snap(b'')
print('\n'.join(json.dumps(e, sort_keys=True) for e in entries))
`

const py = (mode: string, root: string): string[] =>
  execFileSync('python3', ['-c', SCRIPT, mode, root], { encoding: 'utf8', maxBuffer: 64 << 20 }).trimEnd().split('\n')

t.test('item 1: paths near PATH_MAX (4,095 bytes and deeper) through overlayts as through the kernel', async t => {
  const pair = await mountPair(t, 'deep', { layers: [{ name: 'l', entries: [{ type: 'dir', path: 'd' }] }] }, {
    prepare (lowers) { py('prep', lowers[0]!) }
  })
  const want = py('steps', pair.kernel.merged)
  const got = py('steps', pair.overlayts.merged)
  t.same(got, want, 'every step answers as the kernel')
  t.ok(want.some(s => s.startsWith('create new: ok')) && want.some(s => s.startsWith('rename ldir2: ok')), 'the kernel serves these paths')
  t.same(py('snap', pair.overlayts.merged), py('snap', pair.kernel.merged), 'merged trees match')
  // After a remount (the lookup index is built over the deep lower).
  await pair.remountOverlayts()
  t.same(py('snap', pair.overlayts.merged), py('snap', pair.kernel.merged), 'merged trees match after a remount')
  await pair.unmount()
  t.same(py('snap-upper', pair.overlayts.upper), py('snap-upper', pair.kernel.upper), 'uppers match')
})
