// The control client's answer bound (`duogate status --timeout S`): a slow daemon (a starved or emulated box) is
// waited for as long as asked and no longer, and a daemon that drops the connection is reported at once.
import t from 'tap';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from '../../host/control/client.js';
import { execFile } from 'node:child_process';
import { main } from '../../host/cli.js';

const CLI = path.join(process.cwd(), 'dist/host/cli.js');
const run = (args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
  execFile(process.execPath, [CLI, ...args], { timeout: 30_000 }, (e, stdout, stderr) => res({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, stdout, stderr }));
});

/** A control socket that answers `status` after `delayMs`, or closes unanswered when delayMs < 0. */
async function fakeDaemon(t: Tap.Test, delayMs: number): Promise<string> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-ctl-'));
  const sock = path.join(dir, 'ctl.sock');
  const timers = new Set<NodeJS.Timeout>();
  const server = net.createServer((c) => {
    c.on('error', () => {});
    c.once('data', () => {
      if (delayMs < 0) { c.destroy(); return; }
      const tm = setTimeout(() => { timers.delete(tm); c.write(JSON.stringify({ ok: true, result: { node: 'gw-t', carp_role: 'MASTER', vips: [] } }) + '\n'); }, delayMs);
      timers.add(tm);
    });
  });
  await new Promise<void>((r) => server.listen(sock, () => r()));
  t.teardown(async () => {
    for (const tm of timers) clearTimeout(tm);
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });
  return sock;
}

t.test('an answer slower than the bound is a DG_ERR_TIMEOUT; within a longer bound it arrives', async (t) => {
  const sock = await fakeDaemon(t, 400);
  await t.rejects(request(sock, { cmd: 'status' }, 100), { code: 'DG_ERR_TIMEOUT' });
  t.match(await request(sock, { cmd: 'status' }, 3000), { node: 'gw-t' });
});

t.test('a daemon that closes the connection unanswered is reported at once, not at the bound', async (t) => {
  const sock = await fakeDaemon(t, -1);
  const t0 = performance.now();
  await t.rejects(request(sock, { cmd: 'status' }, 10_000), { code: 'DG_ERR_NO_ANSWER' });
  t.ok(performance.now() - t0 < 5000, 'well before the 10 s bound');
});

// 5.6 s: longer than the default 5 s bound, so only --timeout makes it.
t.test('duogate status --timeout S waits up to S seconds; a bad S is refused with the reason', async (t) => {
  const sock = await fakeDaemon(t, 5600);
  // The real CLI, in its own process (its stdout is not this test's TAP stream).
  const r = await run(['status', '--json', '--socket', sock, '--timeout', '15']);
  t.equal(r.code, 0, `exit 0: ${r.stderr}`);
  t.match(JSON.parse(r.stdout), { node: 'gw-t' }, 'the status, as JSON');
  for (const bad of ['0', '-1', 'x', '3601']) {
    await t.rejects(main(['status', '--socket', sock, `--timeout=${bad}`]), { code: 'DG_ERR_USAGE', message: /--timeout/ }, `--timeout ${bad}`);
  }
});
