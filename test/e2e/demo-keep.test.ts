// `npm run demo -- --keep` returns to the shell with the board and both daemons running, and `-- --down` tears
// that board down. The CARP story alone (--no-plugins) on a board of its own name.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { VirtualBoard } from '../../board/virtual/board.js';
import { Firmware, ROOT, allAre } from '../../board/virtual/firmware.js';
import { netnsExists } from '../../board/virtual/netns.js';

const PREFIX = 'dgt-keep';
const DEMO = path.join(ROOT, 'dist/board/virtual/demo/demo.js');

if (process.getuid?.() !== 0) {
  t.plan(0, 'virtual board needs root');
} else {
  const board = new VirtualBoard({ prefix: PREFIX });
  t.teardown(() => board.down());

  t.test('--keep returns with both daemons running; --down removes the board', async (t) => {
    const r = spawnSync(process.execPath, [DEMO, '--keep', '--no-plugins', `--prefix=${PREFIX}`], { encoding: 'utf8', timeout: 120_000 });
    t.equal(r.status, 0, `the demo returned by itself (${r.signal ?? ''} ${r.stderr.slice(-300)})`);
    t.match(r.stdout, new RegExp(`tear it down: npm run demo -- --down --prefix=${PREFIX}`), 'and says how to tear the board down');
    const fw = new Firmware(board);
    t.ok(await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 5000), 'both daemons answer: primary MASTER, secondary BACKUP');
    const d = spawnSync(process.execPath, [DEMO, '--down', `--prefix=${PREFIX}`], { encoding: 'utf8', timeout: 30_000 });
    t.equal(d.status, 0, d.stderr);
    t.notOk(netnsExists(`${PREFIX}-primary`) || netnsExists(`${PREFIX}-client`), 'the namespaces are gone');
  });
}
