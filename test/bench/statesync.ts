// State sync benchmark on the virtual board (prefix dgb-ss), duogate and conntrackd (FTFW, Debian's
// conntrack-tools) side by side in one run:
//  1. delay (steady pair): a stream of new states on the master (ctnetlink creates at a fixed rate); for
//     each, the kernel's creation timestamp on the peer minus the one on the master (one machine, one clock).
//  2. bulk: 100k more ESTABLISHED TCP+SNAT states on the master; the peer restarts empty and takes the whole
//     table. duogate: the joining node's BULK_START → the kernel acknowledged every create (the peer's
//     kernel holds them all). conntrackd: `-B` on the master → the backup's external cache holds them all,
//     then `-c` (commit) → its kernel holds them.
//  3. bytes: table bytes per state slot in the core, wire bytes per state in the bulk.
import { writeFileSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VirtualBoard, sleep } from '../../board/virtual/board.js';
import { request } from '../../host/control/client.js';
import { waitFor } from '../../board/virtual/wait.js';
import { configYaml, RULESET, linksUp } from './statesync-board.js';
import type { Bench } from './registry.js';

const N = 100_000;
const DELAY_RATE = 5000;   // states/s
const DELAY_COUNT = 10_000;
type Node = 'primary' | 'secondary';

const here = dirname(fileURLToPath(import.meta.url));
const ts = import.meta.url.endsWith('.ts');
const root = ts ? join(here, '..', '..') : join(here, '..', '..', '..');
const nodeArgs = (script: string) => ts ? ['--import', 'tsx', join(root, script + '.ts')] : [join(root, 'dist', script + '.js')];

function pct(a: number[], p: number): number { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN; }

export const statesyncBench: Bench = async (say) => {
  if (process.getuid?.() !== 0) { say('statesync: needs root (network namespaces); skipped'); return { skipped: true }; }
  if (!existsSync(join(root, 'dist', 'wasm', 'core.wasm'))) throw new Error('statesync bench: dist/wasm/core.wasm missing; run "npm run build:core"');
  const board = new VirtualBoard({ prefix: 'dgb-ss' });
  const sock = (n: Node) => join(board.runDir, `${n}.sock`);
  const status = async (n: Node) => (await request(sock(n), { cmd: 'status' }, 3000)) as any;
  const until = async (n: Node, fn: (s: any) => boolean, ms: number, what: string) => {
    let last: any = null;
    return await waitFor(`statesync bench: ${n}: ${what}`, async () => { last = await status(n); return fn(last) ? last : null; }, ms, 50,
      () => `last: ${JSON.stringify(last?.statesync)?.slice(0, 400)}`);
  };
  const kcount = (n: Node) => Number(board.exec(n, 'cat', ['/proc/sys/net/netfilter/nf_conntrack_count']).stdout.trim());
  const tool = (n: Node, args: string[]) => board.exec(n, process.execPath, [...nodeArgs('test/bench/statesync-tools'), ...args], { timeoutMs: 120000, check: true });
  // Per state: the kernel's creation timestamp on the peer minus the one on the master (same clock: one machine).
  const delays = async (net: number): Promise<number[]> => {
    tool('primary', ['gen', '--count', String(DELAY_COUNT), '--rate', String(DELAY_RATE), '--net', String(net)]);
    await sleep(1000);
    const p = JSON.parse(tool('primary', ['stamps', '--net', String(net)]).stdout.trim());
    const s = JSON.parse(tool('secondary', ['stamps', '--net', String(net)]).stdout.trim());
    const d: number[] = [];
    const pairs: [number, number][] = [];
    for (const [k, t0] of Object.entries(p.seen as Record<string, number>)) { const t1 = (s.seen as Record<string, number>)[k]; if (t1 !== undefined) { d.push(t1 - t0); pairs.push([t0, t1 - t0]); } }
    pairs.sort((a, b) => a[0] - b[0]);
    const tenth = Math.ceil(pairs.length / 10);
    say(`  mean delay per tenth of the run: ${[...Array(10).keys()].map((i) => { const c = pairs.slice(i * tenth, (i + 1) * tenth); return (c.reduce((a, x) => a + x[1], 0) / Math.max(1, c.length)).toFixed(1); }).join(' ')}`);
    if (d.length < DELAY_COUNT) say(`  (only ${d.length} of ${DELAY_COUNT} states on both: master ${Object.keys(p.seen).length}, peer ${Object.keys(s.seen).length})`);
    return d;
  };
  const out: Record<string, unknown> = {};
  try {
    await board.up();
    for (const n of ['primary', 'secondary'] as Node[]) {
      board.exec(n, 'nft', ['-f', '-'], { input: RULESET, check: true });
      board.sysctl(n, { 'net.netfilter.nf_conntrack_tcp_loose': '0', 'net.netfilter.nf_conntrack_max': '524288', 'net.netfilter.nf_conntrack_timestamp': '1' });
      writeFileSync(join(board.runDir, `${n}.yaml`), configYaml(board.runDir, n, { key: 'bench-statesync-key-0123456789', bulk_timeout_ms: 1500, event_buffer: 512 * 1024 * 1024 }));
    }
    await linksUp(board, 'primary'); await linksUp(board, 'secondary');
    const startNode = (n: Node) => board.startNode(n, [...nodeArgs('host/cli'), 'run', '--config', join(board.runDir, `${n}.yaml`)]);

    // ---- duogate: a steady pair first: delay ----
    startNode('primary');
    await until('primary', (s) => s.carp_role === 'MASTER', 15000, 'MASTER');
    startNode('secondary');
    await until('secondary', (s) => s.statesync.bulk.state === 'done', 15000, 'initial bulk');
    await sleep(500);
    say(`duogate: delay from creation in the master's kernel to creation in the peer's kernel (kernel timestamps), ${DELAY_COUNT} states at ${DELAY_RATE}/s`);
    const d = await delays(11);
    out.delay_p50_ms = Math.round(pct(d, 50) * 100) / 100;
    out.delay_p99_ms = Math.round(pct(d, 99) * 100) / 100;
    out.delay_samples = d.length;
    say(`  p50 ${out.delay_p50_ms} ms, p90 ${pct(d, 90).toFixed(2)}, p95 ${pct(d, 95).toFixed(2)}, p99 ${out.delay_p99_ms} ms, max ${pct(d, 100).toFixed(2)} ms (${d.length} states)`);
    const [sp, ss] = [await status('primary'), await status('secondary')];
    say(`  master: ${JSON.stringify(sp.statesync.messages)}`);
    say(`  peer: dropped ${JSON.stringify(ss.statesync.dropped)}`);

    // ---- duogate: bulk: the master holds 100k more; the peer restarts empty and takes the whole table ----
    const g = JSON.parse(tool('primary', ['gen', '--count', String(N)]).stdout.trim().split('\n').pop()!);
    say(`duogate: ${N} more TCP+SNAT states on the master (${g.ms.toFixed(0)} ms to create); the peer restarts empty and bulk-syncs`);
    const total = N + DELAY_COUNT;
    await until('primary', (s) => s.statesync.states_table >= total, 30000, `table of ${total}`);
    await board.stopNode('secondary');
    board.exec('secondary', 'conntrack', ['-F'], {});
    const txBefore = (await status('primary')).statesync.messages;
    startNode('secondary');
    const sec = await until('secondary', (s) => s.statesync.bulk.state === 'done', 60000, 'bulk done');
    const pri = await status('primary');
    const rxMs = sec.statesync.bulk.received_ms as number;
    const dgMs = sec.statesync.bulk.transfer_ms as number;
    const bulkStates = sec.statesync.bulk.received as number;
    const dgKernel = kcount('secondary');
    const wire = (pri.statesync.messages.tx_bytes - txBefore.tx_bytes) / bulkStates;
    say(`  the peer holds all ${bulkStates} states (authenticated, in order, acknowledged) ${rxMs.toFixed(0)} ms after BULK_START: ${(bulkStates / (rxMs / 1000)).toFixed(0)} states/s`);
    say(`  its kernel holds ${dgKernel} states ${dgMs.toFixed(0)} ms after BULK_START: ${(bulkStates / (dgMs / 1000)).toFixed(0)} states/s (no commit step: states go in as they arrive)`);
    say(`  receiver applying ${sec.statesync.bulk.busy_ms} ms, of which ${sec.statesync.bulk.kernel_busy_ms} ms in the kernel's create calls; retransmitted ${pri.statesync.messages.retransmitted - txBefore.retransmitted}`);
    say(`  wire: ${wire.toFixed(1)} bytes/state (48-byte items, HMAC per 1472-byte datagram); table: ${sec.statesync.table_bytes_per_state} bytes/state slot`);
    out.bulk_states = bulkStates;
    out.bulk_states_per_s = Math.round(bulkStates / (rxMs / 1000));
    out.bulk_ms_until_peer_kernel = Math.round(dgMs);
    out.bulk_states_per_s_until_peer_kernel = Math.round(bulkStates / (dgMs / 1000));
    out.bulk_peer_kernel_states = dgKernel;
    out.bytes_per_state = sec.statesync.table_bytes_per_state;
    out.wire_bytes_per_state = Math.round(wire * 10) / 10;
    await board.stopNode('secondary'); await board.stopNode('primary');

    // ---- the kernel's own floor: the same creates from one process, nothing else running ----
    // ctnetlink creates are serialised in the kernel, and on the board the peer's creates also build NEW
    // events because the master's subscription (another namespace, same kernel) counts as a listener; so a
    // listener runs in the primary's namespace here too. No such listener exists across two real boxes.
    board.exec('secondary', 'conntrack', ['-F'], {});
    const lis = board.spawn('primary', process.execPath, [...nodeArgs('test/bench/statesync-tools'), 'listen', '--net', '99'], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise<void>((r) => { const t = setTimeout(r, 3000); lis.stdout!.once('data', () => { clearTimeout(t); r(); }); });
    const floor = JSON.parse(tool('secondary', ['gen', '--count', String(total), '--net', '13']).stdout.trim().split('\n').pop()!);
    lis.kill('SIGKILL');
    out.kernel_floor_ms = Math.round(floor.ms);
    out.bulk_vs_kernel_floor = Math.round((dgMs / floor.ms) * 100) / 100;
    say(`  kernel floor: the same ${total} creates from one process into the emptied peer take ${floor.ms.toFixed(0)} ms (${Math.round(total / (floor.ms / 1000))}/s); duogate's bulk until the peer's kernel = ${out.bulk_vs_kernel_floor}x that`);

    // ---- conntrackd FTFW ----
    for (const n of ['primary', 'secondary'] as Node[]) {
      board.exec(n, 'conntrack', ['-F'], {});
      board.exec(n, 'nft', ['delete', 'table', 'inet', 'duogate'], {}); // the firmware's firewall knows nothing of port 3780
      writeFileSync(join(board.runDir, `${n}-conntrackd.conf`), conntrackdConf(board.runDir, n));
      board.spawn(n, 'conntrackd', ['-C', join(board.runDir, `${n}-conntrackd.conf`)], { stdio: 'ignore' });
    }
    await sleep(1000);
    const ctd = (n: Node, args: string[]) => board.exec(n, 'conntrackd', ['-C', join(board.runDir, `${n}-conntrackd.conf`), ...args], { timeoutMs: 60000 });
    const cacheCount = (n: Node, which: 'internal' | 'external') => {
      const s = ctd(n, ['-s']).stdout;
      const m = s.match(new RegExp(`cache ${which}:[\\s\\S]*?current active connections:\\s*(\\d+)`));
      return m ? Number(m[1]) : -1;
    };
    say(`conntrackd FTFW: ${N} states on the master, then -B into the backup's emptied external cache, then -c`);
    tool('primary', ['gen', '--count', String(N), '--net', '12']);
    const deadline = (ms: number) => { const e = Date.now() + ms; return () => Date.now() < e; };
    for (const more = deadline(30000); more() && cacheCount('primary', 'internal') < N;) await sleep(50);
    for (const more = deadline(30000); more() && cacheCount('secondary', 'external') < N;) await sleep(50);
    ctd('secondary', ['-f', 'external']);
    const t0 = performance.now();
    ctd('primary', ['-B']);
    let have = 0;
    for (const more = deadline(30000); more();) { have = cacheCount('secondary', 'external'); if (have >= N) break; await sleep(2); }
    const t1 = performance.now();
    ctd('secondary', ['-c']);
    const t2 = performance.now();
    const ctKernel = kcount('secondary');
    out.conntrackd_bulk_states_per_s = Math.round(N / ((t1 - t0) / 1000));
    out.conntrackd_commit_ms = Math.round(t2 - t1);
    out.conntrackd_ms_until_peer_kernel = Math.round(t2 - t0);
    out.conntrackd_states_per_s_until_peer_kernel = Math.round(N / ((t2 - t0) / 1000));
    say(`  external cache holds ${have} after ${(t1 - t0).toFixed(0)} ms: ${out.conntrackd_bulk_states_per_s} states/s (upper bound: polled with conntrackd -s)`);
    say(`  commit ${(t2 - t1).toFixed(0)} ms; peer kernel holds ${ctKernel} states ${(t2 - t0).toFixed(0)} ms after -B: ${out.conntrackd_states_per_s_until_peer_kernel} states/s`);
    say('');
    say(`                         duogate        conntrackd`);
    say(`  bulk, states/s         ${String(out.bulk_states_per_s).padEnd(14)} ${out.conntrackd_bulk_states_per_s} (into its cache)`);
    say(`  until peer kernel, ms  ${String(out.bulk_ms_until_peer_kernel).padEnd(14)} ${out.conntrackd_ms_until_peer_kernel} (incl. commit)`);
    say(`  until peer kernel, /s  ${String(out.bulk_states_per_s_until_peer_kernel).padEnd(14)} ${out.conntrackd_states_per_s_until_peer_kernel}`);
    say(`  kernel floor, ms       ${out.kernel_floor_ms} (the creates alone, one process)`);
    say(`  delay p50/p99, ms      ${out.delay_p50_ms}/${out.delay_p99_ms}`);
  } finally {
    await board.down();
  }
  return out;
};

function conntrackdConf(dir: string, n: Node): string {
  const me = n === 'primary' ? '172.16.1.1' : '172.16.1.2';
  const peer = n === 'primary' ? '172.16.1.2' : '172.16.1.1';
  return `Sync {
  Mode FTFW { ResendQueueSize 262144 }
  UDP { IPv4_address ${me}
        IPv4_Destination_Address ${peer}
        Port 3780
        Interface sync0
        SndSocketBuffer 24985600
        RcvSocketBuffer 24985600
        Checksum on }
}
General {
  Systemd off
  HashSize 65536
  HashLimit 524288
  LogFile ${join(dir, n + '-conntrackd.log')}
  Syslog off
  LockFile ${join(dir, n + '-conntrackd.lock')}
  UNIX { Path ${join(dir, n + '-conntrackd.ctl')} }
  NetlinkBufferSize 33554432
  NetlinkBufferSizeMaxGrowth 134217728
  Filter From Kernelspace {
    Protocol Accept { TCP UDP }
    Address Ignore { IPv4_address 127.0.0.1
                     IPv4_address 172.16.1.0/30
                     IPv4_address 192.168.1.2
                     IPv4_address 192.168.1.3 }
  }
}
`;
}
