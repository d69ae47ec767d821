// The chaos run lock: exclusive, so two runs started together cannot both hold it; a dead run's lock is taken over.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LockHeld, takeRunLock } from '../../board/chaos/lock.js';

t.test('one holder; a second take fails naming the holder; release frees it', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = path.join(dir, 'sub', 'b.chaos.pid');
  const release = takeRunLock(f, 'board b');
  t.equal(readFileSync(f, 'utf8'), String(process.pid));
  t.throws(() => takeRunLock(f, 'board b'), LockHeld, 'a second take in the same moment fails');
  // Another live process holds it (pid 1 is always alive).
  writeFileSync(f, '1');
  t.throws(() => takeRunLock(f, 'board b'), { code: 'DG_ERR_CHAOS_LOCKED', holder: 1, message: /another chaos run \(pid 1\) uses board b; .*kill -INT 1/ });
  release();
  t.ok(existsSync(f), 'release leaves a lock that is not this run\'s');
  writeFileSync(f, '');
  t.throws(() => takeRunLock(f, 'board b'), { holder: null, message: /is starting/ }, 'an empty file: a run starting now');
  writeFileSync(f, String(process.pid));
  release();
  t.notOk(existsSync(f), 'release removes this run\'s lock');
});

t.test('a lock left by a dead run is taken over', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-lock-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = path.join(dir, 'b.chaos.pid');
  const dead = spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim(); // exited: its pid is free
  writeFileSync(f, dead);
  const release = takeRunLock(f, 'board b');
  t.equal(readFileSync(f, 'utf8'), String(process.pid), 'this run holds it now');
  release();
});
