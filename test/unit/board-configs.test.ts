// Node configs for the virtual-board tests are made one way (Firmware.writeConfigs): the board's committed
// configs, reduced to the core sections plus what a test keeps, then edited. Checked here without a board.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { CORE_SECTIONS, Firmware } from '../../board/virtual/firmware.js';
import type { VirtualBoard } from '../../board/virtual/board.js';

const runDir = mkdtempSync(path.join(os.tmpdir(), 'dg-board-configs-'));
t.teardown(() => rmSync(runDir, { recursive: true, force: true }));
// writeConfigs reads only runDir from the board.
const fw = new Firmware({ runDir } as unknown as VirtualBoard);

t.test('reduced to the core sections plus `keep`; the rest of the board config is untouched', async (t) => {
  const files = fw.writeConfigs('reduced', { keep: ['peer'] });
  for (const n of ['primary', 'secondary'] as const) {
    const board = fw.boardConfig(n);
    const c = YAML.parse(readFileSync(files[n]!, 'utf8'));
    t.same(Object.keys(c).sort(), [...CORE_SECTIONS, 'peer'].filter((k) => k in board).sort(), `${n}: sections`);
    t.same(c.carp, board.carp, `${n}: carp as committed`);
    t.equal(fw.configFile(n), files[n], `${n}: the daemon is started with it`);
  }
});

t.test('edits apply; untouched sections keep their comments', async (t) => {
  const files = fw.writeConfigs('edited', {
    keep: 'all', nodes: ['primary'],
    edit: (c) => { c.carp.vips[0].advskew = 77; delete c.statesync; c.extra_section = { on: true }; },
  });
  t.same(Object.keys(files), ['primary'], 'only the nodes asked for');
  const text = readFileSync(files.primary!, 'utf8');
  const c = YAML.parse(text);
  t.equal(c.carp.vips[0].advskew, 77);
  t.notOk('statesync' in c, 'deleted');
  t.same(c.extra_section, { on: true }, 'added');
  const board = readFileSync(path.join(path.dirname(new URL(import.meta.url).pathname), '../../board/virtual/primary.yaml'), 'utf8');
  const comment = /^interfaces:.*#\s*(.+)$/m.exec(board)?.[1];
  t.ok(comment, 'the board config comments its interfaces section');
  t.ok(comment && text.includes(comment), 'that comment is kept (the section is untouched)');
  t.equal(fw.boardConfig('primary').carp.vips[0].advskew, YAML.parse(board).carp.vips[0].advskew, 'the committed config is not modified');
});
