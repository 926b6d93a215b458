// CI-sized crash loop (issue 6): scripts/crash-loop.mjs kills the daemon with
// SIGKILL at random moments during copy-ups of 64-256 MiB files, renames
// (redirects included), unlinks and rmdirs, remounts and checks that nothing
// partial is visible, workdir/work is empty, the index verifies and the
// lowers are unchanged. The full run is `node scripts/crash-loop.mjs --kills 200`.
import t from 'tap'
import { run } from '../helpers/exec.js'
import { REPO_ROOT } from '../helpers/mounts.js'

const kills = Number(process.env.OVERLAYTS_CRASH_KILLS ?? '10')

t.test(`${kills} kills at random points: no partial state survives a crash`, async t => {
  const r = await run(process.execPath, ['scripts/crash-loop.mjs', '--kills', String(kills)], { cwd: REPO_ROOT, timeoutMs: 540_000 })
  const out = r.stdout.toString()
  t.equal(r.code, 0, out.split('\n').filter(l => /FAIL|problem|Error/.test(l)).join('\n') + r.stderr)
  t.match(out, new RegExp(`${kills} kills: ${kills} passed, 0 failed`))
})
