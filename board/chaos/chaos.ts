// `npm run chaos -- --minutes N [--seed S] [--json] [--prefix P]` (as root): the whole product on the virtual
// board (both daemons with every section of the board's configs: CARP, firewall/NAT, Kea HA, unbound, config
// sync, state sync, peer heartbeat, MQTT to a broker in the LAN client), traffic through it (traffic.ts), faults
// injected at seeded random times, several overlapping (schedule.ts, faults.ts), invariants checked all the
// time (invariants.ts), then the table (report.ts) and with --json one line of figures. docs/chaos.md.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { VirtualBoard, NODES, type NodeName } from '../virtual/board.js';
import { allAre } from '../virtual/firmware.js';
import { MqttLab } from '../virtual/demo/telemetry.js';
import { deleteNetns, ip, killAllIn } from '../virtual/netns.js';
import { ChaosFirmware, inject, undo, undoAll, type FaultCtx } from './faults.js';
import { Invariants, parseKeaLeases, type ActiveFault, type NodeObs, type Observation } from './invariants.js';
import { rows, table, type FaultRecord } from './report.js';
import { ALL_KINDS, KINDS, Rng, plan, type FaultClass, type FaultKind, type PlannedFault } from './schedule.js';
import { DHCP_CLIENTS, Traffic } from './traffic.js';
import { takeRunLock } from './lock.js';

/** The last part of the run injects nothing: every fault's settle bound (≤ 20 s) ends inside it. */
const TAIL_MS = 25_000;

export interface ChaosOptions { minutes: number; seed: number; prefix: string; say: (line: string) => void; only?: FaultKind[] }

/** The run lock of a board: next to its run directory. */
const runLockFile = (board: VirtualBoard) => path.join(path.dirname(board.runDir), `${board.prefix}.chaos.pid`);
/** Set while a run holds its lock, for the Ctrl-C path. */
let releaseOnInterrupt: (() => void) | null = null;

export async function runChaos(o: ChaosOptions): Promise<Record<string, unknown>> {
  const say = o.say;
  const board = new VirtualBoard({ prefix: o.prefix });
  const fw = new ChaosFirmware(board);
  const ctx: FaultCtx = { board, fw };
  const inv = new Invariants();
  const traffic = new Traffic(board, new Rng(o.seed ^ 0x5eed));
  const lab = new MqttLab(board);
  const records: FaultRecord[] = [];
  const busy = new Set<FaultClass>();
  const runMs = Math.round(o.minutes * 60_000);
  const windowMs = Math.max(10_000, runMs - TAIL_MS);
  let stopping = false;
  const tasks: Promise<void>[] = [];
  const rss: Record<string, number[]> = {};
  // One run per board: a second one would tear this one's board down under it (and vice versa).
  const unlock = takeRunLock(runLockFile(board), `board ${o.prefix}`);
  releaseOnInterrupt = unlock;
  try {
    say(`== chaos: ${o.minutes} min, seed ${o.seed}, board ${o.prefix} ==`);
    await board.up();
    fw.resetState();
    for (const n of NODES) fw.setClock(n, 0);
    await lab.startBroker();
    await traffic.startServer();
    await fw.start('primary');
    await sleep(300);
    await fw.start('secondary');
    if (!await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 20_000)) throw new Error(`the pair did not converge within 20 s\n${fw.tail('primary')}\n${fw.tail('secondary')}`);
    if (!await waitUntil(() => healthy(fw, true), 30_000)) throw new Error('the pair converged but config sync / state sync did not settle within 30 s');
    traffic.start(runMs + 60_000);
    // Sessions open, DHCP clients bound, the secondary's kernel holds the sessions.
    await waitUntil(async () => traffic.alive >= 20 && Object.values(traffic.dhcpBound()).filter(Boolean).length >= 3, 20_000);
    await sleep(2_000);
    const t0 = Date.now();
    const endAt = t0 + runMs;
    const faults = plan(o.seed, windowMs, o.only);
    say(`traffic running (${traffic.alive} sessions, ${Object.values(traffic.dhcpBound()).filter(Boolean).length} DHCP clients bound); ${faults.length} faults planned over ${Math.round(windowMs / 1000)} s, then ${TAIL_MS / 1000} s to settle`);

    const activeAt = (t: number): ActiveFault[] => records
      .filter((r) => r.start <= t && (r.settleUntil === null || t <= r.settleUntil))
      .map((r) => ({ n: r.n, kind: r.kind, survivable: KINDS[r.kind].survivable, start: r.start }));
    const lastSettled = (t: number): number[] => {
      const done = records.filter((r) => r.settleUntil !== null && r.settleUntil <= t);
      const last = Math.max(0, ...done.map((r) => r.settleUntil!));
      return done.filter((r) => r.settleUntil! >= last - 1_000).map((r) => r.n);
    };

    const run = async (f: PlannedFault) => {
      const cls = KINDS[f.kind].cls;
      busy.add(cls);
      const rec: FaultRecord = { n: f.n, kind: f.kind, node: f.node, start: Date.now(), end: null, settleUntil: null, inject: '', undo: '', outageMs: null, sessionsLost: 0 };
      records.push(rec);
      try {
        rec.inject = await inject(f, ctx);
        if (f.kind === 'config_invalid' && rec.inject.startsWith('ACCEPTED')) inv.record('config_refused', Date.now(), `invalid config (variant ${f.param % 3}) ${rec.inject}`, [f.n]);
        if (f.holdMs) await sleep(f.holdMs);
        rec.undo = await undo(f, ctx);
      } catch (e) {
        rec.undo = `ERROR ${(e as Error).message.split('\n')[0]}`;
        inv.record('fault_recovery', Date.now(), `#${f.n} ${f.kind} on ${f.node}: ${rec.undo}`, [f.n]);
        // As systemd would: a daemon that did not come up is started again.
        for (const n of NODES) if (board.isPowered(n) && !fw.running(n)) await fw.start(n).catch(() => {});
      } finally {
        rec.end = Date.now();
        rec.settleUntil = rec.end + KINDS[f.kind].settleMs;
        busy.delete(cls);
        say(`  #${String(f.n).padStart(3)} ${f.kind.padEnd(14)} ${f.node.padEnd(9)} +${((rec.start - t0) / 1000).toFixed(1).padStart(6)} s  ${rec.inject}${rec.undo ? `; ${rec.undo}` : ''}`);
      }
    };

    // Timed faults (sync, service, config): at their time, once their class is free.
    for (const f of faults.filter((x) => KINDS[x.kind].cls !== 'node')) {
      tasks.push((async () => {
        await sleep(Math.max(0, t0 + f.atMs - Date.now()));
        while (!stopping && busy.has(KINDS[f.kind].cls) && Date.now() < t0 + windowMs) await sleep(100);
        // It must be over and settled before the run ends.
        if (stopping || Date.now() > t0 + windowMs || Date.now() + f.holdMs + KINDS[f.kind].settleMs + 2_000 > endAt) return;
        await run(f);
      })());
    }
    // Node faults: a queue, each once the pair has recovered from the one before.
    tasks.push((async () => {
      for (const f of faults.filter((x) => KINDS[x.kind].cls === 'node')) {
        await waitUntil(async () => stopping || await healthy(fw, false), 60_000);
        await sleep(f.atMs);
        if (stopping || Date.now() + f.holdMs + 5_000 > t0 + windowMs || Date.now() + f.holdMs + KINDS[f.kind].settleMs + 5_000 > endAt) continue;
        await run(f);
      }
    })());

    // The monitor: every 500 ms an observation; every 5 s RSS and the DHCP leases.
    let lossIdx = 0; let dnsIdx = 0; let dnsFails = 0; let tick = 0;
    while (Date.now() < endAt) {
      const t = Date.now();
      const active = activeAt(t);
      const blame = active.length ? active.map((a) => a.n) : lastSettled(t);
      const heavy = tick++ % 10 === 0;
      const obs = await observe(board, fw, traffic, t, active.length === 0 && t > t0, heavy);
      // Settled for the whole observation: a fault that started while it was being taken makes it unsettled.
      obs.settled &&= activeAt(Date.now()).length === 0;
      if (heavy) for (const n of NODES) for (const [k, v] of Object.entries(obs.nodes[n].rssMb ?? {})) (rss[`${n}.${k}`] ??= []).push(v!);
      inv.observe(obs, blame);
      for (; lossIdx < traffic.losses.length; lossIdx++) {
        const l = traffic.losses[lossIdx]!;
        if (l.established) inv.sessionLost(l, activeAt(l.since));
      }
      for (; dnsIdx < traffic.dns.length; dnsIdx++) {
        const q = traffic.dns[dnsIdx]!;
        if (q.ok || activeAt(q.t).length) { dnsFails = 0; continue; }
        if (++dnsFails === 2) inv.record('dns', q.t, 'two DNS queries in a row to the LAN VIP unanswered while settled', lastSettled(q.t));
      }
      if (heavy) inv.dhcp(t, traffic.dhcpBound(), leases(fw), blame);
      await sleep(Math.max(50, 500 - (Date.now() - t)));
    }
    stopping = true;
    // Not vacuous: the settled checks must have run, and the run must end settled (the tail outlasts every bound).
    const last = await observe(board, fw, traffic, Date.now(), activeAt(Date.now()).length === 0, false);
    if (!last.settled) inv.record('never_settled', last.t, `faults still active or settling at the end: ${activeAt(last.t).map((a) => `#${a.n} ${a.kind}`).join(', ')}`, activeAt(last.t).map((a) => a.n));
    else inv.observe(last, lastSettled(last.t));
    if (inv.settledObservations < 10) inv.record('never_settled', last.t, `only ${inv.settledObservations} settled observations: the invariants were hardly checked`, []);
    await Promise.race([Promise.all(tasks), sleep(30_000)]);
    await traffic.stop();

    // No false takeover: the secondary becomes MASTER only while a node fault (of either node) is in progress or
    // settling. Sync, service and config faults alone must never move the VIPs (a stalled event loop would).
    // wall_ms comes from the monotonic clock's origin, which the clock step does not move; the hour of slack
    // only keeps a transition logged just after the end in the check.
    for (const tr of fw.transitions('secondary')) {
      if (tr.to !== 'MASTER' || tr.wall_ms < t0 || tr.wall_ms > endAt + 3_600_000) continue;
      const node = activeAt(tr.wall_ms).filter((a) => KINDS[a.kind as keyof typeof KINDS].cls === 'node');
      if (!node.length) inv.record('false_takeover', tr.wall_ms, `the secondary took vhid ${tr.vhid} (${tr.why}) with no node fault in progress or settling (active: ${activeAt(tr.wall_ms).map((a) => `#${a.n} ${a.kind}`).join(', ') || 'none'})`, activeAt(tr.wall_ms).map((a) => a.n));
    }
    for (const r of records) {
      const to = Math.min(r.settleUntil ?? endAt, endAt);
      r.outageMs = traffic.pinger.outage(r.start, to).gap_ms;
    }
    // Each lost session counts once, for the latest fault started before it died (of those active then).
    for (const l of traffic.losses) {
      if (!l.established) continue;
      const a = activeAt(l.since).sort((x, y) => y.start - x.start)[0];
      const rec = a && records.find((r) => r.n === a.n);
      if (rec) rec.sessionsLost++;
    }
    const kinds = rows(records, inv.violations);
    say('');
    say(table(kinds));
    say('');
    const shortsOk = traffic.shorts.filter((s) => s.ok).length;
    say(`traffic: ${traffic.pinger.replies.length} echo replies; ${traffic.opened} long sessions opened, ${traffic.losses.filter((l) => l.established).length} lost; ` +
      `${shortsOk}/${traffic.shorts.length} short connections ok; ${traffic.dns.filter((d) => d.ok).length}/${traffic.dns.length} DNS answers; ` +
      `${traffic.renewsAsked} DHCP renewals asked, ${traffic.dhcpEvents().filter((e) => e.event === 'renew').length} renewed`);
    say(`max RSS MB: duogate ${inv.max.rss_mb.duogate.toFixed(0)}, kea ${inv.max.rss_mb.kea.toFixed(0)}, unbound ${inv.max.rss_mb.unbound.toFixed(0)}; max conntrack ${inv.max.conntrack}, state sync table ${inv.max.table}`);
    const lost = traffic.losses.filter((l) => l.established);
    for (const l of lost.slice(0, 20)) say(`  session ${l.id} lost at +${((l.since - t0) / 1000).toFixed(1)} s (opened +${((l.opened - t0) / 1000).toFixed(1)} s) during [${activeAt(l.since).map((a) => `#${a.n} ${a.kind}`).join(', ') || 'no fault'}]: ${l.why}`);
    say(`invariants: ${inv.observations} observations, ${inv.settledObservations} of them settled (every check ran); violations: ${inv.violations.length}`);
    for (const v of inv.violations.slice(0, 50)) say(`  ${v.invariant} at +${((v.t - t0) / 1000).toFixed(1)} s (faults ${v.faults.join(',') || '-'}): ${v.detail}`);
    return {
      minutes: o.minutes, seed: o.seed, faults_injected: records.length,
      faults_by_kind: Object.fromEntries(kinds.map((k) => [k.kind, k.injected])),
      violations: inv.violations.length,
      violation_list: inv.violations.map((v) => ({ ...v, t_s: Math.round((v.t - t0) / 100) / 10 })),
      per_fault: kinds,
      max_rss_mb: { duogate: round(inv.max.rss_mb.duogate), kea: round(inv.max.rss_mb.kea), unbound: round(inv.max.rss_mb.unbound) },
      rss_first_last_mb: Object.fromEntries(Object.entries(rss).map(([k, v]) => [k, [round(v[0]!), round(v[v.length - 1]!)]])),
      observations: inv.observations, settled_observations: inv.settledObservations,
      max_conntrack: inv.max.conntrack, max_statesync_table: inv.max.table,
      pings_received: traffic.pinger.replies.length, sessions_opened: traffic.opened,
      sessions_lost: traffic.losses.filter((l) => l.established).length,
      short_connections: traffic.shorts.length, short_connections_ok: shortsOk,
      dns_queries: traffic.dns.length, dns_ok: traffic.dns.filter((d) => d.ok).length,
      dhcp_renewals_asked: traffic.renewsAsked, dhcp_renewed: traffic.dhcpEvents().filter((e) => e.event === 'renew').length,
      session_losses: lost.slice(0, 100).map((l) => ({ id: l.id, at_s: Math.round((l.since - t0) / 100) / 10, opened_s: Math.round((l.opened - t0) / 100) / 10, why: l.why, during: activeAt(l.since).map((a) => a.n) })),
      faults: records.map((r) => ({ n: r.n, kind: r.kind, node: r.node, overlapped: records.filter((x) => x !== r && x.start <= (r.settleUntil ?? endAt) && (x.settleUntil ?? endAt) >= r.start).map((x) => x.n), at_s: Math.round((r.start - t0) / 100) / 10, held_s: r.end ? Math.round((r.end - r.start) / 100) / 10 : null, outage_ms: r.outageMs, sessions_lost: r.sessionsLost, inject: r.inject, undo: r.undo })),
    };
  } finally {
    stopping = true;
    await undoAll(ctx).catch(() => {});
    await traffic.stop().catch(() => {});
    await lab.stop().catch(() => {});
    await board.down();
    unlock();
  }
}

/** Both daemons answer, each VIP has one MASTER and both are on one node, and (strict) config and state sync settled. */
async function healthy(fw: ChaosFirmware, strict: boolean): Promise<boolean> {
  const [p, s] = await Promise.all([fw.status('primary').catch(() => null), fw.status('secondary').catch(() => null)]);
  if (!p || !s) return false;
  const m = (st: any, v: number) => st.vips.find((x: any) => x.vhid === v)?.state === 'MASTER';
  const one = [1, 2].every((v) => Number(m(p, v)) + Number(m(s, v)) === 1) && m(p, 1) === m(p, 2);
  const bulk = p.statesync?.bulk?.state === 'done' && s.statesync?.bulk?.state === 'done';
  if (!strict) return one && bulk;
  return one && bulk && p.configsync?.peer?.state === 'in_sync' && s.configsync?.received?.primary_seq === p.configsync?.revision?.seq;
}

async function observe(board: VirtualBoard, fw: ChaosFirmware, traffic: Traffic, t: number, settled: boolean, heavy: boolean): Promise<Observation> {
  const nodes = {} as Record<NodeName, NodeObs>;
  await Promise.all(NODES.map(async (n) => {
    const st = await fw.status(n).catch(() => null);
    const ob: NodeObs = { up: !!st, states: {}, maintenance: false, alarms: [], vips: kernelAddrs(board, n) };
    if (st) {
      ob.states = Object.fromEntries(st.vips.map((v: any) => [String(v.vhid), v.state]));
      ob.maintenance = !!st.maintenance?.on;
      ob.alarms = (st.peer?.alarms ?? []).map((a: any) => (typeof a === 'string' ? a : a.name ?? JSON.stringify(a)));
      ob.config = { seq: st.configsync?.revision?.seq, peerState: st.configsync?.peer?.state, behind: st.configsync?.peer?.revisions_behind, receivedPrimarySeq: st.configsync?.received?.primary_seq };
      ob.kea = !!st.dhcp?.kea?.running;
      ob.unbound = !!st.dns?.unbound?.running;
      ob.conntrack = st.statesync?.states_kernel;
      ob.table = st.statesync?.states_table;
      if (heavy) ob.rssMb = { duogate: rssMb(board.nodeProcess(n)?.pid), kea: rssMb(st.dhcp?.kea?.pid), unbound: rssMb(st.dns?.unbound?.pid) };
    }
    nodes[n] = ob;
  }));
  return { t, settled, nodes, replyAgeMs: traffic.lastReplyAgeMs(t) };
}

/** IPv4 addresses on a node's NICs, from the kernel ([] while it is powered off). */
function kernelAddrs(board: VirtualBoard, n: NodeName): string[] {
  if (!board.isPowered(n)) return [];
  try {
    const j = JSON.parse(ip(['-j', '-4', 'addr', 'show'], board.nsName(n)) || '[]') as Array<{ addr_info?: Array<{ local: string }> }>;
    return j.flatMap((l) => (l.addr_info ?? []).map((a) => a.local));
  } catch { return []; }
}

function rssMb(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try { const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8')); return m ? Number(m[1]) / 1024 : undefined; } catch { return undefined; }
}

function leases(fw: ChaosFirmware): Record<NodeName, Record<string, string>> {
  const now = Math.floor(Date.now() / 1000);
  const out = {} as Record<NodeName, Record<string, string>>;
  for (const n of NODES) {
    try { out[n] = parseKeaLeases(readFileSync(path.join(fw.stateDir(n), 'kea', 'leases4.csv'), 'utf8'), now); } catch { out[n] = {}; }
  }
  return out;
}

async function waitUntil(fn: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  for (let i = 0; i < 100_000 && Date.now() < until; i++) { if (await fn()) return true; await sleep(200); }
  return false;
}

const round = (x: number) => Math.round(x * 10) / 10;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- command line
const isMain = process.argv[1] && path.resolve(process.argv[1]).replace(/\.ts$/, '.js').endsWith(path.join('board', 'chaos', 'chaos.js'));
if (isMain) {
  const { values } = parseArgs({ options: { minutes: { type: 'string', default: '10' }, seed: { type: 'string', default: '1' }, json: { type: 'boolean', default: false }, prefix: { type: 'string', default: 'chaos' }, only: { type: 'string' } } });
  const minutes = Number(values.minutes); const seed = Number(values.seed);
  const only = values.only ? values.only.split(',').map((k) => k.trim()) : undefined;
  const unknown = (only ?? []).filter((k) => !(ALL_KINDS as string[]).includes(k));
  if (!(minutes > 0) || !Number.isInteger(seed) || unknown.length) {
    console.error(`usage: npm run chaos -- --minutes N [--seed S] [--json] [--prefix P] [--only KIND,...]   (minutes > 0, seed an integer${unknown.length ? `; unknown kind ${unknown.join(', ')}; kinds: ${ALL_KINDS.join(' ')}` : ''})`);
    process.exit(2);
  }
  if (process.getuid?.() !== 0) { console.error('duogate chaos: run as root (it creates network namespaces)'); process.exit(2); }
  const prefix = values.prefix!;
  process.once('SIGINT', () => {
    console.error('\nduogate chaos: interrupted; tearing the board down');
    const dhcp = Array.from({ length: DHCP_CLIENTS }, (_, i) => `${prefix}-dhc${i + 1}`);
    void new VirtualBoard({ prefix }).down().then(() => killAllIn(dhcp)).then(() => deleteNetns(dhcp)).finally(() => { releaseOnInterrupt?.(); process.exit(130); });
  });
  const t0 = Date.now();
  try {
    const r = await runChaos({ minutes, seed, prefix, say: (l) => console.log(l), only: only as FaultKind[] | undefined });
    console.log(`(chaos run took ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    if (values.json) console.log(JSON.stringify(r));
    process.exit(r.violations === 0 ? 0 : 1);
  } catch (e) {
    console.error(`duogate chaos failed: ${(e as Error).message}`);
    process.exit(2);
  }
}
