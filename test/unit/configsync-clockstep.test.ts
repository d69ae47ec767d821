// The XML-RPC server's admission bucket and per-source limits run on the monotonic clock. On the wall clock, a
// connection while the node's clock was stepped a day back drained the bucket by a day's worth of tokens, so
// every push was refused (ECONNRESET) until the daemon restarted: the chaos run's "config not converged" after a
// clock step. Here: calls while Date.now() is a day behind, then after it is stepped back, all answered.
import t from 'tap';
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Logger } from '../../host/log.js';
import { SyncServer } from '../../host/configsync/server.js';
import { SyncClient } from '../../host/configsync/client.js';
import { loadOrCreateIdentity } from '../../host/configsync/tls.js';

const DAY_MS = 86_400_000;

t.test('a wall clock stepped back a day and forward again refuses no connection', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-cs-clock-'));
  const id = loadOrCreateIdentity(dir, 'clockstep');
  const server = new SyncServer({
    address: '127.0.0.1', port: 0, key: id.key, cert: id.cert, username: 'admin', password: 'pw',
    maxBodyBytes: 1 << 20, authMaxFailures: 10, authWindowS: 60, log: new Logger({}, 'error', () => {}),
  });
  server.method('duogate.ping', () => 'pong');
  const port = await server.listen();
  const realNow = Date.now;
  t.teardown(async () => { Date.now = realNow; await server.close(); rmSync(dir, { recursive: true, force: true }); });
  const client = new SyncClient({ host: '127.0.0.1', port, username: 'admin', password: 'pw', pin: null });
  const call = async () => { try { return await client.call('duogate.ping', []); } catch (e) { return (e as Error).message; } };

  t.equal(await call(), 'pong', 'answered before the step');
  Date.now = () => realNow() - DAY_MS;
  try {
    for (let i = 0; i < 3; i++) t.equal(await call(), 'pong', `answered while the clock is a day behind (${i + 1})`);
  } finally { Date.now = realNow; }
  const after: unknown[] = [];
  for (let i = 0; i < 5; i++) after.push(await call());
  t.same(after, Array(5).fill('pong'), 'every call answered after the clock is stepped back');
  t.equal(server.counters.refused_rate, 0, 'no connection refused by the admission rate');
});
