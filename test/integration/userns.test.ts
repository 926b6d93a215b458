// Rootless: the differential and interop tests run again unprivileged, as
// root of a user namespace whose ids map to a range of unprivileged host ids
// (as podman's rootless containers are), against the kernel's overlayfs
// mounted there with -o userxattr. Inside, overlayts must find on its own
// that trusted.* xattrs are refused and write the kernel's userxattr form
// (user.overlay.* xattrs, char 0/0 whiteouts, no redirects: EXDEV); the
// runs compare every answer, the merged trees and the uppers byte for byte.
//
// The namespace's root mounts FUSE through mount(2) (allowed in a user
// namespace with its own mount namespace): /dev/fuse is mode 0600 on this
// machine, so the test opens it to others for its duration and puts the mode
// back. The scratch directories belong to the namespace's ids.
import t, { type Test } from 'tap'
import { chmodSync, chownSync, mkdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from '../helpers/mounts.js'
import { tmpDir } from '../helpers/tmp.js'
import { runInUserns, USERNS_OUTER_ID } from '../helpers/userns.js'

const seeds = Number(process.env.OVERLAYTS_USERNS_SEEDS ?? 6)
const ops = Number(process.env.OVERLAYTS_USERNS_OPS ?? 60)

async function scratch (t: Test): Promise<NodeJS.ProcessEnv> {
  const mode = statSync('/dev/fuse').mode & 0o7777
  chmodSync('/dev/fuse', 0o666)
  t.teardown(() => chmodSync('/dev/fuse', mode))
  const dir = await tmpDir(t, 'userns')
  chmodSync(dir, 0o755)
  const env = { ...process.env, OVERLAYTS_TEST_TMP: join(dir, 'tmp'), OVERLAYTS_RUNDIR: join(dir, 'run') }
  for (const d of [env.OVERLAYTS_TEST_TMP, env.OVERLAYTS_RUNDIR] as string[]) {
    mkdirSync(d)
    chownSync(d, USERNS_OUTER_ID, USERNS_OUTER_ID)
  }
  return env
}

// Where user namespaces cannot be made (a container whose seccomp profile or
// sysctl forbids them), there is nothing to test: say so instead of failing.
const probe = await runInUserns('true', [], { timeoutMs: 30_000 })
const cannot = probe.code === 0 ? undefined : `no user namespace here: ${probe.stderr.trim()}`
if (cannot !== undefined) t.comment(cannot)

t.test(`differential in a user namespace (kernel with userxattr vs overlayts): ${seeds} seeds x ${ops} ops`, { skip: cannot }, async t => {
  const env = await scratch(t)
  const r = await runInUserns(process.execPath, ['scripts/differential.mjs', '--seeds', String(seeds), '--ops', String(ops), '--first', '1'], { cwd: REPO_ROOT, env, timeoutMs: 600_000 })
  const summary = r.stdout.trim().split('\n').pop() ?? ''
  t.equal(r.code, 0, `the seed runner passed: ${summary}`, { diagnostic: r.code !== 0, stdout: r.stdout.slice(-8000), stderr: r.stderr.slice(-4000) })
  t.match(summary, new RegExp(`^${seeds} seeds, ${ops} ops each: ${seeds} passed, 0 failed`))
})

t.test('interop in a user namespace (kernel with userxattr and overlayts read each other\'s upper)', { skip: cannot }, async t => {
  const env = await scratch(t)
  const r = await runInUserns(process.execPath, ['test/helpers/run-ts.mjs', 'test/integration/interop.test.ts'], { cwd: REPO_ROOT, env, timeoutMs: 300_000 })
  const failures = r.stdout.split('\n').filter(l => /^\s*not ok/.test(l))
  t.equal(r.code, 0, 'interop passed inside the namespace', { diagnostic: r.code !== 0, failures, stdout: r.stdout.slice(-8000), stderr: r.stderr.slice(-4000) })
  t.match(r.stdout, /^ok \d+ - the kernel writes, overlayts reads/m, 'it ran its tests')
})
