// Floods against the pair on the virtual board (prefix dgt-flood) with the board's full default configs (state sync's
// periodic table re-read every 5 s instead of 30, see before()): three floods against the pair, each watched
// the same way.
//
//   1. garbage: the LAN client sends ~10,000 packets/s of random garbage (UDP with random payloads, TCP SYNs and
//      segments with random flags, random-payload CARP to the nodes and to 224.0.0.18, random IP protocols,
//      UDP/TCP to random ports) to the nodes' LAN addresses and the LAN VIP: to every TCP port a scan from the
//      client finds open, every UDP port the nodes listen on there (a scan gets no verdict from UDP), and
//      always DNS 53 udp/tcp and DHCP 67, whatever the input policy says. DNS must answer during and after it,
//      and Kea's per-packet error lines must reach the daemon's log at a bounded rate.
//   2. TLS: from the primary's namespace, i.e. the real peer address on the sync link, TLS handshakes without
//      end against the config-sync XML-RPC server on 7443. That server runs on the secondary (the primary only
//      pushes and listens on no 7443). 32 loops of full handshakes and bare ClientHellos dropped once the
//      server has done its expensive half, plus 2,000 connections held open, silent or with half a
//      ClientHello. The secondary's descriptors stay bounded and the pair's config sync works afterwards.
//   3. conntrack: the LAN client opens new flows through the gateway (TCP SYNs the WAN server drops, UDP to
//      closed ports) at up to 30,000/s until the primary's conntrack table is full. nf_conntrack_max is read-only
//      in a child network namespace on this kernel (it follows the host's, 262,144), so the flood must be that
//      fast to fill the table in ~10 s; the states also reach the secondary's kernel through state sync.
//
// While each runs: tcpdump (kernel timestamps) records the primary's CARP adverts on the LAN (client) and the
// WAN (server), and the longest interval between two of them must stay within advbase + 50 ms; neither node
// may change CARP state (the BACKUP never takes over); `status` on both control sockets, polled every 200 ms,
// must answer within 500 ms each time; the daemons' RSS stays under 250 MB and grows by at most 96 MB.
// The same adverts are also captured leaving the primary: the figures are equal, so any lateness is the
// daemon's, not the virtual wire's. On this shared machine the daemon's lateness also follows the load other
// sessions put on the CPUs (each flood prints the load with its figures): at a load average of 3-5 the
// longest interval is under 1,010 ms in every flood; at 10-15 the garbage and TLS floods saw 1,080-1,160 ms
// with the daemon runnable but not running (its own CPU use stays 10-30 % of a core).
//
// Why ~10 s per flood is enough: what a flood can break shows within a few advert intervals (each is 1 s; the
// master-down interval is 3 s); a queue that grows without bound has grown by then (10 s at 10k/s is 100k
// packets, at 30k/s the whole conntrack table); and the steady state, with socket buffers, connection slots
// and the conntrack table full, is reached in the first seconds. Longer floods only heat the shared machine.
import t, { type Test } from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { VirtualBoard, macFor, type NodeName, type Role } from '../../board/virtual/board.js';
import { Firmware, ROOT, allAre, poll, sleep } from '../../board/virtual/firmware.js';
import { request } from '../../host/control/client.js';
import { GatewayProbes, TEST_ZONE } from '../../board/virtual/demo/gateway.js';
import { MAX_CONNECTIONS } from '../../host/configsync/server.js';
import { OUTPUT_BURST, OUTPUT_RATE } from '../../host/gateway/supervise.js';

const ADVBASE_MS = 1000;
const ADVERT_SLACK_MS = 50;
const STATUS_MAX_MS = 500;
const RSS_MAX_MB = 250;
/**
 * Under a high allocation rate (a flood of connections is one) V8 grows its young generation by up to ~50 MB and
 * gives it back slowly; a leak grows with the flood instead (the unbounded XML-RPC server: +107 MB in 10 s).
 */
const RSS_GROWTH_MAX_MB = 96;
const LAN_ADDRS = ['192.168.1.1', '192.168.1.2', '192.168.1.3'];
const CLIENT = '192.168.1.100';

interface Sample { at: number; ms: number; ok: boolean; states: Record<string, string>; rssMb: number; fds: number; ctCount: number }
interface Watched {
  flood: any; load: Record<string, number>; lanGaps: number[]; wanGaps: number[]; sentGaps: { lan: number[]; wan: number[] }; lanAdverts: number; wanAdverts: number;
  samples: Record<NodeName, Sample[]>; trans0: Record<NodeName, string>; transitions: Record<NodeName, string>;
}

if (process.getuid?.() !== 0) {
  t.plan(0, 'virtual board needs root');
} else {
  const board = new VirtualBoard({ prefix: 'dgt-flood' });
  const fw = new Firmware(board);
  const probes = new GatewayProbes(board);
  t.teardown(() => board.down());

  const pid = (n: NodeName) => board.nodeProcess(n)!.pid!;
  const rssMb = (n: NodeName) => {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid(n)}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : -1;
  };
  /** CPU seconds the daemon has used (utime + stime, clock ticks of 10 ms). */
  const cpuS = (n: NodeName) => { const f = readFileSync(`/proc/${pid(n)}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) / 100; };
  /** The machine's busy and total jiffies (all CPUs), for how loaded it was while a flood ran. */
  const machine = () => { const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number); const total = f.reduce((a, b) => a + b, 0); return { busy: total - f[3] - f[4], total }; };
  const fds = (n: NodeName) => { try { return readdirSync(`/proc/${pid(n)}/fd`).length; } catch { return -1; } };
  const transitions = async (n: NodeName) => (await fw.status(n)).vips.map((v: any) => `${v.vhid}:${v.state}:${v.transitions}`).join(' ');
  // The flooder starts through tsx (it compiles itself first: seconds on a loaded machine), so its bounds are
  // its run time plus that; a flooder killed at its bound says so.
  const tool = async (ns: Role, args: string[], timeoutMs: number) => {
    const r = await board.execAsync(ns, process.execPath, ['--import', 'tsx', 'test/helpers/flooder.ts', ...args], { cwd: ROOT, timeoutMs });
    if (r.signal) r.stderr = `killed by ${r.signal} after its ${timeoutMs} ms bound ${r.stderr}`;
    return r;
  };

  /** tcpdump of the primary's adverts on one segment; kernel receive timestamps, seconds with microseconds. */
  function capture(ns: Role, ifname: string, src: string): { proc: ChildProcess; stamps: number[] } {
    const stamps: number[] = [];
    const proc = board.spawn(ns, 'tcpdump', ['-i', ifname, '-nn', '-tt', '-l', '-q', `ip proto 112 and src host ${src}`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let buf = '';
    proc.stdout!.on('data', (d) => {
      buf += d;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const ts = Number(buf.slice(0, i).split(' ')[0]);
        if (ts > 0) stamps.push(ts * 1000);
        buf = buf.slice(i + 1);
      }
    });
    return { proc, stamps };
  }
  const stop = async (p: ChildProcess) => {
    if (p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise((r) => p.once('exit', r));
    p.kill('SIGINT');
    await Promise.race([done, sleep(3000)]);
  };
  const gaps = (stamps: number[]) => stamps.slice(1).map((s, i) => s - stamps[i]);

  /** Run `flood` (started by `start`) while capturing the adverts and polling both nodes every 200 ms. */
  async function watched(start: () => Promise<any>): Promise<Watched> {
    const lan = capture('client', 'eth0', '192.168.1.2');
    const wan = capture('server', 'eth0', '203.0.113.2');
    // The same adverts as they leave the primary: tells the daemon's lateness from the (virtual) wire's.
    const lanOut = capture('primary', 'lan0', '192.168.1.2');
    const wanOut = capture('primary', 'wan0', '203.0.113.2');
    const trans0 = { primary: await transitions('primary'), secondary: await transitions('secondary') };
    await sleep(2500); // tcpdump is listening and has seen an advert or two before the flood begins
    const samples: Record<NodeName, Sample[]> = { primary: [], secondary: [] };
    const cpu0 = { primary: cpuS('primary'), secondary: cpuS('secondary'), m: machine(), at: performance.now() };
    let done = false;
    const flood = start().finally(() => { done = true; });
    const poll = async (n: NodeName) => {
      const t0 = performance.now();
      let ok = true; let st: any = null;
      try { st = await request(fw.socket(n), { cmd: 'status' }, 2000); } catch { ok = false; }
      const ms = performance.now() - t0;
      samples[n].push({
        at: Date.now(), ms, ok, rssMb: rssMb(n), fds: fds(n), ctCount: st?.statesync?.states_kernel ?? -1,
        states: st ? Object.fromEntries(st.vips.map((v: any) => [String(v.vhid), v.state])) : {},
      });
    };
    for (let i = 0; i < 300 && !done; i++) {
      await Promise.all([poll('primary'), poll('secondary')]);
      await sleep(200);
    }
    const result = await flood;
    const wallS = (performance.now() - cpu0.at) / 1000;
    const m1 = machine();
    const load = {
      primary_daemon_cpu_pct: Math.round(((cpuS('primary') - cpu0.primary) / wallS) * 100),
      secondary_daemon_cpu_pct: Math.round(((cpuS('secondary') - cpu0.secondary) / wallS) * 100),
      machine_busy_pct: Math.round(((m1.busy - cpu0.m.busy) / (m1.total - cpu0.m.total)) * 100),
      loadavg_1m: Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]),
    };
    await sleep(2500); // the adverts that follow the flood belong to it too (a late one shows here)
    for (const n of ['primary', 'secondary'] as NodeName[]) await poll(n);
    await Promise.all([lan, wan, lanOut, wanOut].map((c) => stop(c.proc)));
    return {
      flood: result, load, lanGaps: gaps(lan.stamps), wanGaps: gaps(wan.stamps), sentGaps: { lan: gaps(lanOut.stamps), wan: gaps(wanOut.stamps) }, lanAdverts: lan.stamps.length, wanAdverts: wan.stamps.length,
      samples, trans0, transitions: { primary: await transitions('primary'), secondary: await transitions('secondary') },
    };
  }

  /** The assertions every flood shares; returns the figures for the diagnostics. */
  function judge(t: Test, name: string, w: Watched, rss0: Record<NodeName, number>): Record<string, unknown> {
    const maxLan = Math.max(...w.lanGaps), maxWan = Math.max(...w.wanGaps);
    t.ok(w.lanAdverts >= 8 && w.wanAdverts >= 8, `${name}: adverts captured on the LAN (${w.lanAdverts}) and the WAN (${w.wanAdverts})`);
    t.ok(maxLan <= ADVBASE_MS + ADVERT_SLACK_MS, `${name}: longest interval between the primary's LAN adverts ${maxLan.toFixed(1)} ms <= ${ADVBASE_MS + ADVERT_SLACK_MS}`);
    t.ok(maxWan <= ADVBASE_MS + ADVERT_SLACK_MS, `${name}: longest interval between the primary's WAN adverts ${maxWan.toFixed(1)} ms <= ${ADVBASE_MS + ADVERT_SLACK_MS}`);
    t.same(w.transitions, w.trans0, `${name}: no CARP transition on either node (vhid:state:transitions)`);
    const figures: Record<string, unknown> = {
      max_advert_interval_ms: { lan: +maxLan.toFixed(1), wan: +maxWan.toFixed(1) },
      max_advert_interval_at_primary_ms: { lan: +Math.max(...w.sentGaps.lan).toFixed(1), wan: +Math.max(...w.sentGaps.wan).toFixed(1) },
    };
    for (const n of ['primary', 'secondary'] as NodeName[]) {
      const s = w.samples[n];
      const want = n === 'primary' ? 'MASTER' : 'BACKUP';
      t.ok(s.length >= 10, `${name}: ${n} polled ${s.length} times`);
      t.equal(s.filter((x) => !x.ok).length, 0, `${name}: ${n}'s control socket answered every poll`);
      const slow = Math.max(...s.map((x) => x.ms));
      t.ok(slow <= STATUS_MAX_MS, `${name}: ${n}'s slowest status answer ${slow.toFixed(0)} ms <= ${STATUS_MAX_MS}`);
      t.equal(s.filter((x) => x.ok && !allAre(x.states, want)).length, 0, `${name}: ${n} ${want} of both VIPs at every poll`);
      const peak = Math.max(...s.map((x) => x.rssMb));
      const end = s[s.length - 1].rssMb;
      t.ok(peak < RSS_MAX_MB, `${name}: ${n} RSS peak ${peak.toFixed(0)} MB < ${RSS_MAX_MB}`);
      t.ok(end - rss0[n] <= RSS_GROWTH_MAX_MB, `${name}: ${n} RSS ${rss0[n].toFixed(0)} -> ${end.toFixed(0)} MB after the flood (growth <= ${RSS_GROWTH_MAX_MB})`);
      figures[n] = {
        status_max_ms: Math.round(slow), rss_mb: { before: Math.round(rss0[n]), peak: Math.round(peak), after: Math.round(end) },
        fds_max: Math.max(...s.map((x) => x.fds)),
      };
    }
    t.comment(`${name}: ${JSON.stringify({ flood: w.flood, load: w.load, ...figures })}`);
    return figures;
  }

  const rssNow = () => ({ primary: rssMb('primary'), secondary: rssMb('secondary') });

  t.before(async () => {
    await board.up();
    await probes.startServer(); // the DNS zone the LAN's resolver forwards to
    // The board's configs as they are, but for state sync's periodic re-read of the kernel table (30 s by
    // default): every 5 s, so that it runs, over a table of up to 262,144 states, while the conntrack flood does.
    fw.writeConfigs('flood', { keep: 'all', edit: (c) => { c.statesync.refresh_s = 5; } });
    fw.resetState();
    await fw.start('primary');
    await sleep(300);
    await fw.start('secondary');
    const ok = await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 20_000);
    if (!ok) throw new Error(`the pair did not converge: ${fw.tail('primary')}\n${fw.tail('secondary')}`);
    // The whole product in its steady state: Kea's HA pair serving, state sync's bulk done.
    await poll(async () => {
      const [p, s] = [await fw.status('primary'), await fw.status('secondary')];
      return p.dhcp?.ha_state === 'hot-standby' && s.statesync?.bulk?.state === 'done' && p.dns?.unbound?.running;
    }, 30_000, 250);
  });

  t.test('garbage at 10,000 packets/s to every port the LAN reaches', async (t) => {
    // Where the packets go: the MAC the client resolves for each address (the VIP answers from the master).
    for (const a of LAN_ADDRS) board.ping('client', a);
    const neigh = JSON.parse(board.exec('client', 'ip', ['-j', 'neigh', 'show', 'dev', 'eth0']).stdout) as { dst: string; lladdr?: string }[];
    const mac = (a: string) => neigh.find((x) => x.dst === a)?.lladdr;
    t.equal(mac('192.168.1.1'), macFor('primary', 'lan', 'host'), 'the LAN VIP resolves to the primary');

    // The ports: every socket the nodes listen on that the LAN could address, probed from the client (TCP:
    // connect; UDP gives no verdict to a scan, so every UDP listener is flooded), plus DNS and DHCP.
    const listening = (n: NodeName) => board.exec(n, 'ss', ['-Hlntu']).stdout.trim().split('\n').map((l) => l.trim().split(/\s+/))
      .map((f) => ({ proto: f[0], local: f[4] })).filter((x) => x.local)
      .map((x) => { const i = x.local.lastIndexOf(':'); return { proto: x.proto, addr: x.local.slice(0, i).replace(/%.*$/, ''), port: Number(x.local.slice(i + 1)) }; })
      .filter((x) => ['0.0.0.0', '*', '[::]', ...LAN_ADDRS].includes(x.addr));
    const cand = [...listening('primary'), ...listening('secondary')];
    const tcpCand = [...new Set([53, ...cand.filter((x) => x.proto === 'tcp').map((x) => x.port)])];
    const udpPorts = [...new Set([53, 67, ...cand.filter((x) => x.proto === 'udp').map((x) => x.port)])];
    const open = async (a: string, p: number) => (await board.execAsync('client', 'socat', ['-T', '1', '/dev/null', `TCP:${a}:${p},connect-timeout=0.5`], { timeoutMs: 3000 })).status === 0;
    const targets: { ip: string; mac: string; tcp: number[]; udp: number[] }[] = [];
    for (const a of LAN_ADDRS) {
      const tcp = [];
      for (const p of tcpCand) if (await open(a, p)) tcp.push(p);
      targets.push({ ip: a, mac: mac(a)!, tcp: [...new Set([53, ...tcp])], udp: udpPorts });
      t.comment(`${a}: tcp open to the LAN ${JSON.stringify(tcp)}; udp flooded ${JSON.stringify(udpPorts)}`);
    }
    t.ok(targets[0].tcp.includes(53), 'DNS on the VIP answers TCP');

    t.same(await probes.dns(), [TEST_ZONE.address], 'DNS on the VIP answers before the flood');
    const rss0 = rssNow();
    let dnsDuring: string[] = [];
    const from = Date.now();
    const w = await watched(async () => {
      const during = sleep(5000).then(async () => { dnsDuring = await probes.dns(); });
      const r = await tool('client', ['garbage', 'eth0', CLIENT, '10000', '10000', '200000', JSON.stringify(targets)], 40_000);
      await during;
      if (r.status !== 0) throw new Error(`flooder failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop()!);
    });
    t.same(dnsDuring, [TEST_ZONE.address], 'DNS on the VIP answers in the middle of the flood');
    t.ok(w.flood.pps >= 9000, `achieved ${w.flood.pps} packets/s (${w.flood.sent} in ${w.flood.ms} ms)`);
    judge(t, 'garbage', w, rss0);
    t.same(await probes.dns(), [TEST_ZONE.address], 'DNS on the VIP answers after the flood');
    // Kea logs an error for each malformed packet on 67; the daemon relays that output at a bounded rate.
    const seconds = (Date.now() - from) / 1000;
    for (const n of ['primary', 'secondary'] as NodeName[]) {
      const lines = board.logSinceStart(n).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
        .filter((l) => Date.parse(l.t) >= from);
      const kea = lines.filter((l) => l.msg === 'kea-dhcp4 output').length;
      const suppressed = lines.filter((l) => l.msg === 'kea-dhcp4 output suppressed').reduce((a, l) => a + l.lines, 0);
      t.ok(kea <= OUTPUT_BURST + OUTPUT_RATE * (seconds + 1), `${n}: ${kea} lines of Kea output logged in ${seconds.toFixed(0)} s (<= ${OUTPUT_BURST} + ${OUTPUT_RATE}/s), ${suppressed} suppressed`);
    }
  });

  t.test('TLS handshakes without end against XML-RPC from the peer address', async (t) => {
    const fds0 = fds('secondary');
    const rss0 = rssNow();
    const HOLD = 2000;
    const w = await watched(async () => {
      const r = await tool('primary', ['tls', '172.16.1.2', '7443', '32', String(HOLD), '10000', '100000'], 40_000);
      if (r.status !== 0) throw new Error(`flooder failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop()!);
    });
    const f = w.flood;
    t.ok(f.started + HOLD >= 2000, `${f.started + HOLD} connections opened (${Math.round(((f.started + HOLD) * 1000) / f.ms)}/s): ${f.full} full and ${f.half} half handshakes answered, ${f.failed} refused, ${f.held} of ${HOLD} held sockets connected and ${f.held_closed_by_server} of them closed by the server`);
    const fig = judge(t, 'tls', w, rss0) as any;
    t.ok(fig.secondary.fds_max - fds0 <= MAX_CONNECTIONS + 16, `the secondary's open descriptors stay bounded with ${HOLD} connections held against it: ${fds0} -> max ${fig.secondary.fds_max}`);
    const srv = (await fw.status('secondary')).configsync.server;
    t.ok(srv.refused_busy + srv.refused_rate > 0, `the server counted what it refused: refused_busy ${srv.refused_busy}, refused_rate ${srv.refused_rate}`);
    // The pair's own config sync works again once the flood is over (the admission bucket refills in 2 s).
    await sleep(2000);
    const asked = Date.now();
    const r = fw.cli('primary', ['config', 'sync']);
    t.equal(r.status, 0, `duogate config sync after the flood: ${r.stdout.trim()} ${r.stderr.trim()}`);
    let peer: any = null;
    for (let i = 0; i < 100; i++) {
      peer = (await fw.status('primary')).configsync.peer;
      if (peer.state === 'in_sync' && Date.parse(peer.last_success) >= asked - 50) break;
      await sleep(100);
    }
    t.ok(peer.state === 'in_sync' && Date.parse(peer.last_success) >= asked - 50, `the push went through: ${JSON.stringify({ state: peer.state, last_success: peer.last_success, error: peer.error })}`);
  });

  t.test('a LAN host fills conntrack with new flows through the gateway', async (t) => {
    // The server drops the flood's TCP ports, so each SYN leaves a SYN_SENT state for its whole 120 s timeout.
    board.exec('server', 'nft', ['-f', '-'], { input: 'table inet flood {\n chain input {\n  type filter hook input priority 0;\n  tcp dport 20000-20099 drop\n }\n}\n', check: true });
    const max = Number(board.exec('primary', 'cat', ['/proc/sys/net/netfilter/nf_conntrack_max']).stdout.trim());
    const rss0 = rssNow();
    const w = await watched(async () => {
      const r = await tool('client', ['conns', 'eth0', CLIENT, macFor('primary', 'lan', 'host'), '203.0.113.10', '30000', '14000', String(Math.round(max * 1.4))], 70_000);
      if (r.status !== 0) throw new Error(`flooder failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop()!);
    });
    const peak = Math.max(...w.samples.primary.map((s) => s.ctCount));
    t.ok(w.flood.sent >= max, `${w.flood.sent} new flows at ${w.flood.pps}/s (nf_conntrack_max ${max})`);
    t.ok(peak >= max * 0.98, `the primary's conntrack table filled: ${peak} of ${max}`);
    t.comment(`secondary conntrack peak (state sync): ${Math.max(...w.samples.secondary.map((s) => s.ctCount))}`);
    judge(t, 'conntrack', w, rss0);
  });
}
