// The failover story the demo tells and the end-to-end test checks: converge, power the primary off, power it
// back on (preempt), stop it gracefully (bow-out). Returns the figures of each move (ping gap and pings lost,
// time with two masters) plus every plugin's.
import { VirtualBoard, type NodeName } from '../board.js';
import { Firmware, allAre, poll, sleep } from '../firmware.js';
import { Pinger } from '../pinger.js';
import { CLI } from '../firmware.js';
import type { DemoContext, DemoPlugin } from './plugin.js';
import { deafDrops, deafenClient, neighMac } from '../garp-deaf.js';
import { VIP } from '../board.js';
import { Isp } from '../isp.js';
import { WanCapture, dhcpWanEdit } from './wan.js';

export interface ScenarioOptions {
  prefix?: string; say?: (line: string) => void; plugins?: DemoPlugin[]; keep?: boolean;
  /**
   * 'virtual': every VIP in virtual-MAC mode, and the LAN client ignores gratuitous ARP (garp-deaf.ts), so the
   * story shows that such a client keeps its gateway. Default 'real' (the board's committed configs).
   */
  mac?: 'real' | 'virtual';
  /**
   * 'dhcp': a single-address ISP (board/virtual/isp.ts) and `wan.mode: dhcp` (docs/wan.md); the report adds
   * wan_address_before, wan_address_after and backup_wan_frames (demo/wan.ts). Default 'static'.
   */
  wan?: 'static' | 'dhcp';
}

type Pair = { primary: Record<string, string>; secondary: Record<string, string> };

export async function runScenario(opts: ScenarioOptions = {}): Promise<Record<string, unknown>> {
  const say = opts.say ?? (() => {});
  const plugins = opts.plugins ?? [];
  const wan = opts.wan ?? 'static';
  const board = new VirtualBoard({ prefix: opts.prefix ?? 'dg', detach: opts.keep, wan });
  const isp = wan === 'dhcp' ? new Isp(board) : null;
  const wanCap = new WanCapture(board);
  const fw = new Firmware(board);
  const pinger = new Pinger(board, 10);
  const states: Record<string, Pair> = {};
  const report: Record<string, unknown> = {};
  const ctx: DemoContext = {
    board, cli: CLI, say,
    socket: { primary: fw.socket('primary'), secondary: fw.socket('secondary') },
    configFile: { primary: fw.configFile('primary'), secondary: fw.configFile('secondary') },
    status: (n) => fw.status(n),
    startFirmware: (n) => fw.start(n),
    transitions: (n) => fw.transitions(n),
  };
  const must = <T>(v: T | null, what: string): T => {
    if (v === null) throw new Error(`${what}\nprimary log:\n${fw.tail('primary')}\nsecondary log:\n${fw.tail('secondary')}`);
    return v;
  };
  let stopSampler = () => {};
  const show = (n: NodeName) => say(fw.cli(n, ['status']).stdout.trimEnd().split('\n').map((l) => `    ${l}`).join('\n'));

  try {
    say('== bringing up the virtual board (2 gateways, LAN client, WAN server, switches) ==');
    await board.up();
    fw.resetState();
    const mac = opts.mac ?? 'real';
    // The client's view of the gateway's MAC, sampled through the whole story (virtual-MAC mode).
    const gatewayMacs = new Set<string>();
    let sampler: NodeJS.Timeout | null = null;
    if (mac === 'virtual') {
      say('== virtual-MAC mode: every VIP answers from 00:00:5e:00:01:<vhid>; the LAN client ignores gratuitous ARP ==');
      deafenClient(board, VIP.lan);
      let busy = false;
      sampler = setInterval(() => {
        if (busy) return;
        busy = true;
        void board.execAsync('client', 'ip', ['-j', 'neigh', 'show', VIP.lan, 'dev', 'eth0']).then((r) => {
          try { const m = JSON.parse(r.stdout || '[]')[0]?.lladdr; if (m) gatewayMacs.add(m); } catch { /* cut short at teardown */ }
        }).finally(() => { busy = false; });
      }, 100);
      stopSampler = () => { if (sampler) clearInterval(sampler); sampler = null; };
    }
    if (isp) {
      say('== single-address WAN: the ISP (Kea in the server namespace) hands one address, 203.0.113.1, to the pair\'s client id; the nodes\' own WAN addresses are private ==');
      await isp.start();
      wanCap.start();
    }
    // The story's configs: the board's committed ones, edited for the mode and by the plugins (their feature's part).
    const mode = { mac, wan };
    if (mac === 'virtual' || isp || plugins.some((p) => p.configure)) {
      fw.writeConfigs('demo', { keep: 'all', edit: (c, n) => {
        if (mac === 'virtual') for (const v of c.carp.vips) v.mac = 'virtual';
        if (isp) dhcpWanEdit(c, n);
        for (const p of plugins) p.configure?.(c, n, mode);
      } });
      ctx.configFile.primary = fw.configFile('primary'); ctx.configFile.secondary = fw.configFile('secondary');
    }
    for (const p of plugins) p.prepare?.(board);
    await Promise.all([fw.start('primary'), fw.start('secondary')]);
    say('both nodes run duogate; waiting for the election (master-down interval 3 s)');
    states.converged = must(await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 15_000), 'the pair did not converge to primary=MASTER, secondary=BACKUP within 15 s');
    const convergedAt = performance.timeOrigin + performance.now();
    const leased = async () => { try { return (await fw.status('primary')).wan?.lease?.address ?? null; } catch { return null; } };
    const wanBefore = isp ? must(await poll(leased, 15_000, 50), 'the primary got no WAN lease within 15 s') : null;
    if (isp) say(`the MASTER leased ${wanBefore} from the virtual MAC; the BACKUP holds it from the heartbeat`);
    show('primary'); show('secondary');

    pinger.start(120_000);
    await sleep(1000);
    for (const p of plugins) await p.setup?.(ctx);
    await sleep(500);

    // ---- 1. power-off: the secondary takes over after the master-down interval ----
    for (const p of plugins) await p.beforePowerOff?.(ctx);
    say('== powering the primary off (links lose carrier, processes SIGKILLed) ==');
    const offAt = performance.timeOrigin + performance.now();
    await board.powerOff('primary');
    states.after_power_off = must(await fw.waitStates((_p, s) => allAre(s, 'MASTER'), 10_000), 'the secondary did not take over within 10 s');
    await sleep(800);
    const takeover = pinger.outage(offAt, performance.timeOrigin + performance.now());
    say(`secondary took over: LAN client outage ${takeover.gap_ms} ms, ${takeover.lost} echoes lost at ${pinger.intervalMs} ms`);
    show('secondary');
    for (const p of plugins) await p.afterTakeover?.(ctx);

    // ---- 2. power-on: the primary boots, hears the secondary and preempts (handshake, no double master) ----
    say('== powering the primary back on ==');
    await board.powerOn('primary');
    const onAt = performance.timeOrigin + performance.now();
    await fw.start('primary');
    states.after_failback = must(await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 20_000), 'the primary did not take the VIPs back within 20 s');
    await sleep(800);
    const failback = pinger.outage(onAt, performance.timeOrigin + performance.now());
    say(`primary preempted: LAN client outage ${failback.gap_ms} ms, ${failback.lost} echoes lost`);
    const wanAfter = isp ? await poll(async () => { const a = await leased(); return a && board.addressesCidr('primary', 'wan0').some((x) => x.startsWith(`${a}/`)) ? a : null; }, 10_000, 50) : null;
    if (isp) say(`the primary holds the WAN address again: ${wanAfter} (before: ${wanBefore})`);
    for (const p of plugins) await p.afterFailback?.(ctx);

    // ---- 3. graceful stop: bow-out, the secondary takes over at once ----
    say('== stopping the primary gracefully (SIGTERM: release VIPs, bow-out advert) ==');
    await sleep(500);
    const stopAt = performance.timeOrigin + performance.now();
    const stopped = await board.stopNode('primary', 'SIGTERM', 5000);
    states.after_graceful_stop = must(await fw.waitStates((_p, s) => allAre(s, 'MASTER'), 10_000), 'the secondary did not take over after the graceful stop');
    await sleep(800);
    const graceful = pinger.outage(stopAt, performance.timeOrigin + performance.now());
    say(`bow-out handover: LAN client outage ${graceful.gap_ms} ms, ${graceful.lost} echoes lost (daemon exit ${stopped.code ?? stopped.signal})`);

    await pinger.stop();
    for (const p of plugins) Object.assign(report, await p.finish?.(ctx));
    if (isp) {
      await sleep(300);
      wanCap.stop();
      const q = wanCap.backupFrames(fw, performance.timeOrigin + performance.now());
      say(`WAN capture: ${q.seen.primary} + ${q.seen.secondary} frames from the virtual MAC or DHCP, ${q.backup_wan_frames} of them from a node that was not MASTER`);
      for (const f of q.offending.slice(0, 5)) say(`  ${f.node} sent while not MASTER: ${f.line}`);
      Object.assign(report, { wan_mode: 'dhcp', wan_address_before: wanBefore, wan_address_after: wanAfter, backup_wan_frames: q.backup_wan_frames, wan_frames_seen: q.seen });
    }
    stopSampler();
    // Kept its gateway: the client's ARP entry for the VIP was only ever the virtual MAC, the new masters' gratuitous
    // ARPs reached it and were ignored, and the power-off outage was the takeover (not an ARP timeout).
    const garpDeafOk = mac === 'virtual'
      ? gatewayMacs.size === 1 && gatewayMacs.has(neighMac(board, VIP.lan) ?? '-') && deafDrops(board) > 0 && takeover.gap_ms <= 3500
      : null;
    if (mac === 'virtual') say(`GARP-deaf client: gateway MACs seen ${[...gatewayMacs].join(', ')}, ${deafDrops(board)} gratuitous/unsolicited ARPs ignored: ${garpDeafOk ? 'kept its gateway' : 'LOST its gateway'}`);

    if (opts.keep) {
      // Leave the board as a user would find it: both daemons running, the primary MASTER again.
      say('== --keep: starting the primary again and leaving the board running ==');
      await fw.start('primary');
      must(await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 20_000), 'the primary did not take the VIPs back after the restart');
      board.release();
    }

    Object.assign(report, {
      takeover_ms: takeover.gap_ms, pings_lost: takeover.lost,
      failback_ms: failback.gap_ms, failback_pings_lost: failback.lost,
      graceful_takeover_ms: graceful.gap_ms, graceful_pings_lost: graceful.lost,
      ping_interval_ms: pinger.intervalMs,
      mac_mode: mac, garp_deaf_client_ok: garpDeafOk,
      pings_sent: pinger.summary?.sent ?? null, pings_received: pinger.replies.length,
      dual_master_ms: dualMasterMs(fw, convergedAt, offAt),
      states,
    });
    return report;
  } finally {
    stopSampler();
    wanCap.stop();
    if (!opts.keep) await isp?.stop();
    await pinger.stop();
    if (!opts.keep) await board.down();
  }
}

/**
 * Total time both nodes held MASTER for one VIP after first convergence, from the daemons' transition logs
 * (wall clock, sub-ms). A powered-off primary stops being MASTER at the power-off instant.
 */
export function dualMasterMs(fw: Firmware, from: number, primaryOffAt: number): number {
  const intervals = (n: NodeName) => {
    const out = new Map<number, [number, number][]>();
    const open = new Map<number, number>();
    // Each daemon start is a new life; a power-off ends the first life of the primary.
    for (const t of fw.transitions(n)) {
      if (t.to === 'MASTER') open.set(t.vhid, t.wall_ms);
      else if (open.has(t.vhid)) { (out.get(t.vhid) ?? out.set(t.vhid, []).get(t.vhid)!).push([open.get(t.vhid)!, t.wall_ms]); open.delete(t.vhid); }
    }
    for (const [v, s] of open) (out.get(v) ?? out.set(v, []).get(v)!).push([s, Infinity]);
    if (n === 'primary') {
      // Clip the life that the power-off ended.
      for (const list of out.values()) for (const iv of list) if (iv[0] < primaryOffAt && iv[1] > primaryOffAt) iv[1] = primaryOffAt;
    }
    return out;
  };
  const a = intervals('primary'); const b = intervals('secondary');
  let total = 0;
  for (const [v, la] of a) for (const x of la) for (const y of b.get(v) ?? []) {
    const lo = Math.max(x[0], y[0], from); const hi = Math.min(x[1], y[1], performance.timeOrigin + performance.now());
    if (hi > lo) total += hi - lo;
  }
  return Math.round(total * 10) / 10;
}

