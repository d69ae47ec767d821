// The chaos harness, short: 2 minutes of the whole product on the virtual board with seed 7 (`npm run chaos --
// --minutes 2 --seed 7 --json --prefix dgx`). Every fault kind is injected at least once, several overlapping,
// and no invariant is violated (board/chaos, docs/chaos.md). Takes ~2.5 min.
import t from 'tap';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ALL_KINDS } from '../../board/chaos/schedule.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'virtual board needs root');
} else {
  t.test('2 minutes of chaos, seed 7: every fault kind, zero violations', { timeout: 230_000 }, async (t) => {
    const cp = spawn(process.execPath, [path.join(process.cwd(), 'dist/board/chaos/chaos.js'), '--minutes', '2', '--seed', '7', '--json', '--prefix', 'dgx'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = ''; let err = '';
    cp.stdout.on('data', (d) => { out += d; });
    cp.stderr.on('data', (d) => { err += d; });
    const killer = setTimeout(() => cp.kill('SIGINT'), 220_000);
    const code = await new Promise<number | null>((r) => cp.on('exit', (c) => r(c)));
    clearTimeout(killer);
    const line = out.trim().split('\n').reverse().find((l) => l.startsWith('{'));
    t.ok(line, `one JSON line at the end (exit ${code})\n${out.slice(-3000)}\n${err.slice(-2000)}`);
    if (!line) return;
    const r = JSON.parse(line);
    t.equal(r.minutes, 2);
    t.equal(r.seed, 7);
    t.same(ALL_KINDS.filter((k) => !(r.faults_by_kind[k] >= 1)), [], 'every fault kind injected at least once');
    t.ok(r.faults_injected >= ALL_KINDS.length, `${r.faults_injected} faults injected`);
    const overlapping = r.faults.some((a: any, i: number) => r.faults.some((b: any, j: number) => i !== j && a.held_s > 0 && b.at_s >= a.at_s && b.at_s < a.at_s + a.held_s));
    t.ok(overlapping, 'faults overlapped');
    t.ok(r.settled_observations >= 10, `${r.settled_observations} settled observations: the invariants were checked`);
    t.ok(r.pings_received > 5000 && r.sessions_opened >= 20 && r.dns_ok > 0 && r.dhcp_renewed > 0, 'traffic flowed: pings, sessions, DNS, DHCP renewals');
    t.equal(r.violations, 0, `violations: ${JSON.stringify(r.violation_list, null, 1)}`);
    t.equal(code, 0, 'exit status 0 when nothing was violated');
  });
}
