// State sync's part of the demo: 20 TCP echo sessions (a line every 50 ms, every echo checked) and a
// paced, checksummed bulk download from the LAN client to the WAN server, through SNAT on the WAN VIP, across
// each move. Move 1 (power-off): sessions opened at setup, download started just before the power cut.
// Move 2 (failback): fresh sessions and a download started after the takeover, running while the primary
// returns, bulk-syncs from the secondary and preempts. Figures per move: tcp_sessions_total,
// tcp_sessions_survived, download_ok (board/virtual/tcpload.ts does the checking).
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VirtualBoard } from '../board.js';
import type { DemoPlugin } from './plugin.js';

const here = dirname(fileURLToPath(import.meta.url));
/** tcpload next to this file's parent: compiled (dist/board/virtual/tcpload.js) or run from source with tsx. */
export function tcploadArgs(): string[] {
  const js = join(here, '..', 'tcpload.js');
  return existsSync(js) ? [js] : ['--import', 'tsx', join(here, '..', 'tcpload.ts')];
}

export interface Run { cp: ChildProcess; result: Promise<any> }

/** tcpload's client in the LAN client namespace; `result` is its summary line, once it has exited. */
export function client(board: VirtualBoard, args: string[], dst = '203.0.113.10'): Run {
  const cp = board.spawn('client', process.execPath, [...tcploadArgs(), 'client', '--dst', dst, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  cp.stdout!.on('data', (d) => { out += d; });
  const result = new Promise<any>((resolve) => cp.on('close', () => {
    const line = out.split('\n').find((l) => l.includes('"summary"'));
    resolve(line ? JSON.parse(line) : { sessions_total: 0, sessions_survived: 0, download_ok: false, error: 'no summary' });
  }));
  return { cp, result };
}

export function statesyncPlugin(opts: { sessions?: number; downloadMB?: number; rateMBps?: number } = {}): DemoPlugin {
  const sessions = opts.sessions ?? 20;
  const bytes = (opts.downloadMB ?? 300) * 1e6;
  const rate = opts.rateMBps ?? 25;
  let echo1: Run | null = null; let echo2: Run | null = null;
  let dl1: Run | null = null; let dl2: Run | null = null;
  const echoArgs = ['--sessions', String(sessions), '--interval-ms', '50', '--stall-ms', '15000', '--grace-ms', '9000'];
  const dlArgs = (seed: number) => ['--sessions', '0', '--download-bytes', String(bytes), '--download-rate-mbps', String(rate), '--grace-ms', '20000', '--seed', String(seed)];
  return {
    name: 'statesync',
    async setup(ctx) {
      ctx.board.spawn('server', process.execPath, [...tcploadArgs(), 'server'], { stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 1500));
      echo1 = client(ctx.board, echoArgs);
      // Wait (bounded) until the secondary's kernel holds the sessions: that is what state sync is for.
      for (let i = 0; i < 40; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const n = ctx.board.exec('secondary', 'conntrack', ['-L', '-p', 'tcp', '--dport', '5000']).stdout.split('\n').filter((l) => l.includes('ESTABLISHED')).length;
        if (n >= sessions) { ctx.say(`statesync: the secondary's kernel holds all ${n} echo sessions (SNAT to the WAN VIP included)`); break; }
      }
    },
    async beforePowerOff(ctx) {
      dl1 = client(ctx.board, dlArgs(7));
      ctx.say(`statesync: ${sessions} echo sessions running, ${bytes / 1e6} MB download at ${rate} MB/s started`);
      await new Promise((r) => setTimeout(r, 500));
    },
    async afterTakeover(ctx) {
      // Stop sending on the first sessions; every echo sent so far (during the outage too) must come back.
      echo1?.cp.kill('SIGTERM');
      echo2 = client(ctx.board, echoArgs);
      dl2 = client(ctx.board, dlArgs(9));
      ctx.say('statesync: new echo sessions and a second download started for the failback');
      await new Promise((r) => setTimeout(r, 1500));
    },
    async afterFailback(ctx) {
      const s = await ctx.status('primary').catch(() => null);
      if (s?.statesync) ctx.say(`statesync: the primary took ${s.statesync.bulk.received} states in its bulk (${s.statesync.bulk.state}) before preempting`);
      echo2?.cp.kill('SIGTERM');
      // The failback move ends when its download has finished: the demo's next move (the graceful stop) must not
      // be counted against it. Bounded: a stalled download reports itself through tcpload's own stall timer.
      if (dl2) await Promise.race([dl2.result, new Promise((r) => setTimeout(r, 25_000))]);
    },
    async finish(ctx) {
      const [e1, d1, e2, d2] = await Promise.all([echo1, dl1, echo2, dl2].map((r) => r ? r.result : Promise.resolve(null)));
      const move = (e: any, d: any) => ({ tcp_sessions_total: e?.sessions_total ?? 0, tcp_sessions_survived: e?.sessions_survived ?? 0, download_ok: d?.download_ok ?? false, max_echo_gap_ms: e?.max_echo_gap_ms ?? null, errors: [...(e?.errors ?? []), ...(d?.download_error ? [d.download_error] : [])].slice(0, 5) });
      const out = { failover: move(e1, d1), failback: move(e2, d2) };
      ctx.say(`statesync: power-off: ${out.failover.tcp_sessions_survived}/${out.failover.tcp_sessions_total} sessions survived, download ${out.failover.download_ok ? 'ok' : 'FAILED'}; failback: ${out.failback.tcp_sessions_survived}/${out.failback.tcp_sessions_total}, download ${out.failback.download_ok ? 'ok' : 'FAILED'}`);
      return { statesync: out };
    },
  };
}
