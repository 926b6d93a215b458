// The interop script: a layer stack and a fixed sequence of changes that
// touches every kind of marker (whiteouts, an opaque dir, dir renames with
// redirects, hardlinks, xattrs, chmod/chown), shared by interop.test.ts (kernel
// and userxattr forms) and nested-upper.test.ts (the oci form).
import type { StackSpec } from './layers.js'
import type { Op } from './ops.js'
import { inUserxattrMode } from './userns.js'

export const STACK: StackSpec = {
  layers: [
    {
      name: 'top',
      entries: [
        { type: 'file', path: 'etc/hosts', content: '127.0.0.1 localhost\n' },
        { type: 'file', path: 'etc/old', content: 'old\n' },
        { type: 'file', path: 'opq/x', content: 'x\n' },
        { type: 'file', path: 'mv/sub/f', content: 'f\n', mode: 0o600, uid: 1000, gid: 1000 },
        { type: 'file', path: 'hl1', content: 'linked\n' },
        { type: 'hardlink', path: 'hl2', to: 'hl1' },
        { type: 'file', path: 'modes', content: 'm\n', mode: 0o4755 },
        { type: 'file', path: 'owned', content: 'o\n', uid: 1000, gid: 1000 },
        { type: 'file', path: 'xa', content: 'xa\n', xattrs: { 'user.x': 'lower', [inUserxattrMode() ? 'user.t' : 'trusted.t']: 'T' } },
        { type: 'symlink', path: 'link', target: 'etc/hosts' },
        { type: 'whiteout', path: 'gone' }
      ]
    },
    {
      name: 'bottom',
      entries: [
        { type: 'file', path: 'etc/passwd', content: 'root:x:0:0\n' },
        { type: 'file', path: 'opq/y', content: 'y\n' },
        { type: 'dir', path: 'opq/d' },
        { type: 'file', path: 'mv/lowerfile', content: 'lf\n' },
        { type: 'file', path: 'data/deep/f', content: 'deep\n' },
        { type: 'file', path: 'data/keep', content: 'keep\n' },
        { type: 'file', path: 'gone', content: 'hidden\n' }
      ]
    }
  ]
}

export const P = (s: string): string[] => s.split('/')

/** The scripted changes; every one must succeed on both implementations. */
export const SCRIPT: Op[] = [
  { op: 'append', path: P('etc/hosts'), data: '::1 localhost\n' },
  { op: 'create', path: P('etc/new'), mode: 0o640, exclusive: true, data: 'new\n' },
  { op: 'unlink', path: P('etc/old') },
  { op: 'unlink', path: P('etc/passwd') },
  // opaque dir: empty the merged dir, remove it, make it again
  { op: 'unlink', path: P('opq/x') },
  { op: 'unlink', path: P('opq/y') },
  { op: 'rmdir', path: P('opq/d') },
  { op: 'rmdir', path: P('opq') },
  { op: 'mkdir', path: P('opq'), mode: 0o750 },
  { op: 'create', path: P('opq/fresh'), mode: 0o644, exclusive: true, data: 'fresh\n' },
  // dir renames: same parent (relative redirect) and across dirs (absolute)
  { op: 'rename', from: P('mv'), to: P('moved') },
  { op: 'create', path: P('moved/sub/g'), mode: 0o644, exclusive: true, data: 'g\n' },
  { op: 'rename', from: P('data/deep'), to: P('etc/deep2') },
  { op: 'mkdir', path: P('data/deep'), mode: 0o755 },
  // hardlinks: a new one to a copied-up file, and a lower pair
  { op: 'link', from: P('etc/hosts'), to: P('hostlink') },
  { op: 'append', path: P('hl1'), data: 'more\n' },
  // attributes and xattrs
  { op: 'setxattr', path: P('xa'), name: 'user.new', value: 'v' },
  { op: 'removexattr', path: P('xa'), name: 'user.x' },
  { op: 'chmod', path: P('modes'), mode: 0o2750 },
  { op: 'chown', path: P('owned'), uid: 65534, gid: 0 },
  { op: 'utimes', path: P('etc/new'), atime: [1234567890, 500000000], mtime: [1234567890, 500000000] },
  { op: 'chown', path: P('link'), uid: 1000, gid: 1000 },
  // new objects in a merged dir and where a whiteout stands
  { op: 'mkdir', path: P('newdir'), mode: 0o700 },
  { op: 'symlink', target: '../etc', path: P('newdir/up') },
  { op: 'mkfifo', path: P('newdir/fifo') },
  { op: 'create', path: P('gone'), mode: 0o600, exclusive: true, data: 'back\n' },
  { op: 'truncate', path: P('moved/lowerfile'), size: 1 }
]

/**
 * With userxattr (no redirects) the directories with lower parts do not
 * move (EXDEV), so what the script does under their new names fails too.
 */
export function userxattrAnswer (op: Op): string {
  if (op.op === 'rename' && ['mv', 'data/deep'].includes(op.from.join('/'))) return 'EXDEV'
  if ('path' in op && op.path[0] === 'moved') return 'ENOENT'
  if (op.op === 'mkdir' && op.path.join('/') === 'data/deep') return 'EEXIST'
  return 'ok'
}

