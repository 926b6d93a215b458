// Running a command unprivileged in a user namespace, as rootless containers
// run: ids 0..COUNT-1 inside map to OUTER.. outside (no /etc/subuid entry is
// needed: userns-exec.py, root outside, writes the maps itself), with a mount
// namespace of its own. Inside, the command is root of the namespace only:
// no trusted.* xattrs, no real devices, but overlayfs with -o userxattr, FUSE
// through mount(2) and char 0/0 whiteouts work.
//
// Tests that run inside read OVERLAYTS_TEST_USERXATTR (set by runInUserns):
// the kernel oracle is mounted with userxattr, lowers are built with
// user.overlay.* markers.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The launcher (it writes the id maps from outside, then becomes the command). */
const USERNS_EXEC = join(dirname(fileURLToPath(import.meta.url)), 'userns-exec.py')

/** The first host id the namespace's ids map to (as a subuid range would). */
export const USERNS_OUTER_ID = 200000
export const USERNS_COUNT = 65536

/** Inside runInUserns: the tests' layers and oracle use the kernel's userxattr form. */
export function inUserxattrMode (): boolean {
  return process.env.OVERLAYTS_TEST_USERXATTR === '1'
}

/** The kernel's overlay xattr `name` (opaque, redirect) in the namespace the tests run in. */
export function overlayXattr (name: string): string {
  return (inUserxattrMode() ? 'user.overlay.' : 'trusted.overlay.') + name
}

export interface UsernsResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/**
 * Runs `cmd args` as root of a new user namespace (ids shifted by
 * USERNS_OUTER_ID) with its own mount namespace; OVERLAYTS_TEST_USERXATTR is
 * set for it. Never throws on a non-zero exit; kills it after `timeoutMs`.
 */
export async function runInUserns (cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv, cwd?: string, timeoutMs: number }): Promise<UsernsResult> {
  const child = spawn('python3', [USERNS_EXEC, String(USERNS_OUTER_ID), String(USERNS_COUNT), cmd, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: opts.cwd,
    env: { ...(opts.env ?? process.env), OVERLAYTS_TEST_USERXATTR: '1' }
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
  try {
    const r = await new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.on('error', reject)
      child.on('close', (code, signal) => resolve({ code, signal }))
    })
    return { ...r, stdout, stderr }
  } finally {
    clearTimeout(timer)
  }
}
