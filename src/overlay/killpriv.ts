/**
 * Dropping setuid/setgid when an unprivileged caller writes to or truncates
 * a file, as the kernel does on a local filesystem (should_remove_suid):
 * setuid always; setgid when group-execute is set, or when the caller is not
 * in the file's group. Kernel FUSE does only the group-execute case itself
 * and leaves the rest to the filesystem; the daemon writes as root, whom the
 * host kernel exempts, so the rule is applied here.
 */
import { readFileSync } from 'node:fs'
import type { Caller } from './overlay.js'

const S_ISUID = 0o4000
const S_ISGID = 0o2000
const S_IXGRP = 0o0010

/** The bits to clear from `mode` after `caller` writes to a file owned by group `gid`. */
export function privBitsToDrop (mode: number, gid: number, caller: Caller, inGroup: (c: Caller, gid: number) => boolean = callerInGroup): number {
  if (caller.uid === 0 || (mode & (S_ISUID | S_ISGID)) === 0) return 0
  let drop = mode & S_ISUID
  if ((mode & S_ISGID) && ((mode & S_IXGRP) || !inGroup(caller, gid))) drop |= S_ISGID
  return drop
}

/** Is `gid` the caller's group or one of its supplementary groups (from /proc)? */
export function callerInGroup (caller: Caller, gid: number): boolean {
  if (caller.gid === gid) return true
  try {
    const status = readFileSync(`/proc/${caller.pid}/status`, 'utf8')
    const line = /^Groups:\s*(.*)$/m.exec(status)?.[1] ?? ''
    return line.split(/\s+/).some((g) => g !== '' && Number(g) === gid)
  } catch {
    return false // the caller is gone: the safe answer drops the bit
  }
}
