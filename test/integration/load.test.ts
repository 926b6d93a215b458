// CI-sized load run (issue 6): 8 worker processes race create, write, read,
// rename, unlink, readdir, mkdir/rmdir and copy-up on one mount for ~15 s
// (scripts/load.mjs; the long run is `--seconds 60`). Only the errnos racing
// workers cause each other are allowed (EXPECTED in the script); the daemon
// must survive, and the merged view must equal both the layers on disk and a
// fresh remount.
import t from 'tap'
import { run } from '../helpers/exec.js'
import { REPO_ROOT } from '../helpers/mounts.js'

interface Summary {
  totalOps: number
  opsPerSec: Record<string, number>
  errnos: Record<string, number>
  unexpected: Record<string, number>
  rssKiB: { start: number, max: number, end: number }
  problems: string[]
}

t.test('8 workers for 15 s on one mount', async t => {
  const r = await run(process.execPath, ['scripts/load.mjs', '--seconds', '15', '--workers', '8', '--json'], { cwd: REPO_ROOT, timeoutMs: 180_000 })
  t.equal(r.code, 0, r.stderr)
  const s = JSON.parse(r.stdout.toString().trim().split('\n').pop() ?? '{}') as Summary
  t.same(s.problems, [], 'no problems')
  t.same(s.unexpected, {}, 'no unexpected errno')
  t.ok(s.totalOps > 1000, `operations done: ${s.totalOps}`)
  for (const op of ['create', 'write', 'read', 'rename', 'unlink', 'readdir', 'copyup']) t.ok((s.opsPerSec[op] ?? 0) > 0, `${op} succeeded at times`)
  t.comment(`ops/s ${JSON.stringify(s.opsPerSec)}; RSS KiB ${JSON.stringify(s.rssKiB)}`)
})
