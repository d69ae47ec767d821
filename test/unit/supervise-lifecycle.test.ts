// Start and stop of a supervised child cross when CARP flaps (Kea stops on "sync link down", starts on "LAN
// MASTER" a few ms later). The child here holds an exclusive lock as Kea holds its control socket's lock file,
// and takes 300 ms to exit on SIGTERM: a second copy started beside it fails at once (exit 1), as Kea did in the
// chaos run. However start, stop and restart interleave, exactly one copy runs, and no exit of a replaced child
// is taken for a crash.
import t, { type Test } from 'tap';
import os from 'node:os';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Logger } from '../../host/log.js';
import { Supervised } from '../../host/gateway/supervise.js';
import { sleep, waitFor } from '../../board/virtual/wait.js';

const CHILD = `
import fcntl, signal, sys, time
f = open(sys.argv[1], 'w')
fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises (exit 1) when another copy holds it
def term(*_):
    time.sleep(0.3)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
print('holding the lock', flush=True)
time.sleep(60)
`;

function lab(t: Test) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-sup-'));
  const lines: any[] = [];
  const log = new Logger({}, 'debug', (l) => lines.push(JSON.parse(l)));
  const sup = new Supervised({
    name: 'locker', cmd: 'python3', args: ['-c', CHILD, path.join(dir, 'lock')], log, pidFile: path.join(dir, 'pid'), backoffMinMs: 100,
  });
  t.teardown(async () => { await sup.stop(); rmSync(dir, { recursive: true, force: true }); });
  const count = (msg: string) => lines.filter((l) => l.msg === msg).length;
  const holding = () => lines.filter((l) => l.msg === 'locker output' && /holding the lock/.test(l.line)).length;
  const lock = path.join(dir, 'lock');
  /** Live copies of the child (by command line): a lost copy would still be here, holding the lock. */
  const copies = () => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
    try { return readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes(lock); } catch { return false; }
  }).length;
  return { sup, lines, count, holding, copies };
}

t.test('start while running keeps the child (no self-kill as an "orphan", no second copy)', async (t) => {
  const { sup, count, holding, copies } = lab(t);
  sup.start();
  await waitFor('the child holds the lock', async () => holding() === 1, 5000, 20);
  const pid = sup.pid;
  sup.start();
  sup.start();
  await sleep(600);
  t.equal(sup.pid, pid, 'the same child');
  t.ok(sup.running);
  t.equal(count('stopping a child left behind by an earlier run'), 0, 'its own child is not an orphan');
  t.equal(count('locker died; restarting'), 0, 'nothing died');
  t.equal(sup.restarts, 0);
  t.equal(copies(), 1, 'one copy of the child alive');
});

t.test('stop then start before the old child is gone: one new child once it is, no crash, no backoff', async (t) => {
  const { sup, count, holding } = lab(t);
  sup.start();
  await waitFor('the child holds the lock', async () => holding() === 1, 5000, 20);
  const first = sup.pid;
  const stopped = sup.stop();
  await sleep(50); // SIGTERM sent, the child still exiting (300 ms)
  sup.start();
  await stopped;
  await waitFor('the new child holds the lock', async () => holding() === 2, 5000, 20);
  t.not(sup.pid, first, 'a new child');
  t.ok(sup.running);
  await sleep(500);
  t.equal(count('locker died; restarting'), 0, 'no exit taken for a crash (the second copy never raced the first)');
  t.equal(sup.restarts, 0);
  t.equal(holding(), 2, 'two starts in all');
});

t.test('stop, start, stop, restart in one turn, twice: exactly one child at the end', async (t) => {
  const { sup, count, holding, copies } = lab(t);
  sup.start();
  await waitFor('the child holds the lock', async () => holding() === 1, 5000, 20);
  for (let i = 0; i < 2; i++) {
    void sup.stop(); sup.start(); void sup.stop(); void sup.restart();
    await sleep(100);
  }
  await waitFor('a child holds the lock at the end', async () => sup.running && holding() >= 2, 5000, 20);
  await sleep(800);
  t.ok(sup.running, 'running');
  t.equal(count('locker died; restarting'), 0, 'no copy failed on the lock');
  t.equal(copies(), 1, 'one copy of the child alive');
});
