/**
 * Merged paths as the core handles them: relative, '' for the root, no '.'
 * or '..' components, no empty components, each name at most NAME_MAX bytes.
 * Anything else is refused before a layer is touched, so no name can reach
 * outside a layer root. Paths are byte strings (see bytes.ts): a name's
 * length is its byte count.
 */
import { FsError } from './errors.js'

export { displayPath } from './bytes.js'

export const NAME_MAX = 255

/** Converts a FUSE path ('/a/b') to a merged relative path ('a/b'). */
export function toRel (fusePath: string): string {
  if (fusePath === '/' || fusePath === '') return ''
  const rel = fusePath.startsWith('/') ? fusePath.slice(1) : fusePath
  for (const name of rel.split('/')) checkName(name, fusePath)
  return rel
}

export function checkName (name: string, forPath: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('\0')) {
    throw new FsError('EINVAL', forPath, 'lookup', 'invalid name')
  }
  if (name.length > NAME_MAX) throw new FsError('ENAMETOOLONG', forPath, 'lookup')
}
