// The config store: revisions with hashes, history pruning, lookup, diff; and crash safety: a writer killed
// with SIGKILL at random moments (bounded loop) always leaves a valid current config and a valid history.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { ConfigStore, canonical, diffConfigs, hashOf } from '../../host/configstore/store.js';
import { parseConfigText } from '../../host/config/load.js';
import { writeFileAtomic } from '../../host/io/atomic.js';
import type { Config } from '../../host/config/schema.js';
import { nodeConfigText } from '../helpers/config.js';

const text = (i: number) => nodeConfigText({
  vips: [`{ interface: lan, vhid: 1, address: 192.168.1.1/24, password: lan-secret, advskew: ${i % 200}, description: revision ${i} ${'x'.repeat(150)} }`],
});

// ---- child mode: the writer that the crash test kills ----
if (process.env.DG_CS_WRITER) {
  const dir = process.env.DG_CS_WRITER;
  const store = new ConfigStore(dir, 20);
  const boot = path.join(dir, 'duogate.yaml');
  for (let i = Number(process.env.DG_CS_START ?? 0); ; i++) {
    const tx = text(i);
    const c = parseConfigText(tx, 'writer');
    writeFileAtomic(boot, tx); // the order the service uses: the file, then the revision
    store.record(c, { description: `write ${i}`, origin: 'local', text: tx });
    if (i === Number(process.env.DG_CS_START ?? 0)) process.stdout.write('ready\n');
  }
} else {
  t.test('canonical JSON and hashes ignore key order', async (t) => {
    t.equal(canonical({ b: 1, a: [{ d: 2, c: 3 }], u: undefined }), '{"a":[{"c":3,"d":2}],"b":1}');
    t.equal(hashOf({ a: 1, b: 2 }), hashOf({ b: 2, a: 1 }));
    t.not(hashOf({ a: 1 }), hashOf({ a: 2 }));
  });

  t.test('revisions: record, list, lookup, prune, diff', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dg-store-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const store = new ConfigStore(dir, 3);
    t.equal(store.latest(), null, 'empty store');
    const revs = [0, 1, 2, 3, 4].map((i) => store.record(parseConfigText(text(i)), { description: `change ${i}`, origin: 'local' }));
    t.same(store.list().map((r) => r.seq), [3, 4, 5], 'only the last 3 are kept');
    t.equal(store.latest()!.seq, 5);
    t.equal(store.latest()!.hash, hashOf(parseConfigText(text(4))));
    t.equal(store.get('#4').description, 'change 3');
    t.equal(store.get('-1').seq, 4, '-1 is the one before the latest');
    t.equal(store.get(revs[4].hash.slice(0, 8)).seq, 5, 'by hash prefix');
    t.throws(() => store.get(1), /no revision "1".*history/, 'pruned revision: clear error');
    const d = diffConfigs(store.get(4).config, store.get(5).config);
    t.same(d.filter((l) => l.includes('advskew')), ['- carp.vips[0].advskew: 3', '+ carp.vips[0].advskew: 4']);
    t.same(diffConfigs(revs[4].config, revs[4].config), []);
    t.same(diffConfigs({ a: [1, 2] }, { a: [1] }), ['- a[1]: 2']);
  });

  t.test('a corrupt revision file (disk fault) is skipped, not fatal', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dg-store-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const store = new ConfigStore(dir);
    store.record(parseConfigText(text(1)), { description: 'good', origin: 'local' });
    writeFileAtomic(path.join(dir, 'configstore', 'rev-00000002.json'), '{"seq": 2, "hash": "x", "con');
    t.equal(store.latest()!.description, 'good');
    t.same(store.list().map((r) => r.seq), [1]);
  });

  t.test('SIGKILL during writes always leaves a valid config and history (bounded loop)', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dg-crash-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const me = fileURLToPath(import.meta.url);
    const ROUNDS = 10; // each round starts a writer (~2 s of tsx + ajv start-up); the e2e test kills real daemons too
    let tmpSeen = 0;
    let start = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const child = spawn(process.execPath, ['--import=tsx', me], { env: { ...process.env, DG_CS_WRITER: dir, DG_CS_START: String(start) }, stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((res, rej) => {
        const timer = setTimeout(() => rej(new Error('writer did not start within 20 s')), 20_000);
        child.stdout!.once('data', () => { clearTimeout(timer); res(); });
      });
      await new Promise((r) => setTimeout(r, 5 + ((round * 37) % 40)));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      tmpSeen += readdirSync(path.join(dir, 'configstore')).filter((f) => f.endsWith('.tmp')).length
        + readdirSync(dir).filter((f) => f.endsWith('.tmp')).length;
      // What a restarting daemon reads: the config file and the newest revision.
      const boot = readFileSync(path.join(dir, 'duogate.yaml'), 'utf8');
      const c = parseConfigText(boot, 'after SIGKILL'); // throws if torn
      const store = new ConfigStore(dir, 20);
      const latest = store.latest();
      t.ok(latest, `round ${round}: a current revision exists`);
      const list = store.list();
      const files = readdirSync(path.join(dir, 'configstore')).filter((f) => f.startsWith('rev-'));
      if (list.length !== files.length) t.fail(`round ${round}: ${files.length - list.length} revision file(s) unreadable`);
      // The file is written first: it equals the latest revision or the one the killed writer was about to record.
      const i = Number(/revision (\d+)/.exec(boot)![1]);
      const li = Number(/write (\d+)/.exec(latest!.description)![1]);
      if (!(i === li || i === li + 1)) t.fail(`round ${round}: file at write ${i}, store at ${li}`);
      t.equal(hashOf(c), hashOf(parseConfigText(text(i))), `round ${round}: the file is exactly write ${i}`);
      start = i + 1;
    }
    t.comment(`${ROUNDS} kills; temp files of interrupted writes found and discarded: ${tmpSeen}`);
    t.notOk(readdirSync(path.join(dir, 'configstore')).some((f) => f.endsWith('.tmp')), 'opening the store removed leftover temp files');
    t.ok(existsSync(path.join(dir, 'duogate.yaml')));
  });
}
