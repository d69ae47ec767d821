// Virtual-MAC mode (`carp.vips[].mac: virtual`) against real-MAC mode, on the virtual board, with a LAN client
// that ignores gratuitous ARP (an nft `arp` rule in its namespace drops every ARP request sent from the
// gateway VIP, gratuitous or not, and every unsolicited reply for it). Across a power cut of the master:
//   virtual MAC: the client's ARP entry for the gateway never changes (00:00:5e:00:01:01), the outage is the
//                takeover; the BACKUP never sent a frame from the virtual MAC, and the frames the LAN switch
//                flooded to it after the master's port died were not routed (no reply before it was MASTER);
//   real MAC:    the client keeps the dead master's MAC until its ARP entry expires; the outage is measured
//                and reported (README "Virtual or real MAC" quotes it).
import t from 'tap';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { VirtualBoard, VIP } from '../../board/virtual/board.js';
import { Firmware, sleep } from '../../board/virtual/firmware.js';
import { Pinger } from '../../board/virtual/pinger.js';
import { deafenClient, deafDrops, neighMac } from '../../board/virtual/garp-deaf.js';

const VMAC = '00:00:5e:00:01:01';
const wall = () => performance.timeOrigin + performance.now();

/** tcpdump on a LAN switch port: kernel timestamps (wall ms) of the frames matching `filter` in direction `dir`. */
function capture(board: VirtualBoard, port: string, dir: 'in' | 'out', filter: string): { times: number[]; proc: ChildProcess } {
  const times: number[] = [];
  const proc = board.spawn('lansw', 'tcpdump', ['-i', port, '-Q', dir, '-nn', '-tt', '-l', '-e', filter], { stdio: ['ignore', 'pipe', 'ignore'] });
  createInterface({ input: proc.stdout! }).on('line', (l) => { const s = Number(l.split(' ')[0]); if (s > 0) times.push(s * 1000); });
  return { times, proc };
}

interface Run {
  gap_ms: number; lost: number; macs_seen: string[]; mac_before: string | null; mac_after: string | null;
  deaf_drops: number; off_at: number; master_at: number; replies: { sent: number; recv: number }[];
  backup_frames_from_vmac: number; flooded_to_backup: number;
}

async function powerCut(prefix: string, mode: 'virtual' | 'real', waitMs: number): Promise<Run> {
  const board = new VirtualBoard({ prefix });
  const fw = new Firmware(board);
  const pinger = new Pinger(board, 10);
  try {
    await board.up();
    fw.resetState();
    fw.writeConfigs('vmac', {
      keep: ['firewall', 'nat', 'peer'],
      edit: (c) => { for (const v of c.carp.vips) v.mac = mode; },
    });
    deafenClient(board, VIP.lan);
    await fw.startPair();
    // The client learns the gateway by asking (the only way it learns it).
    if (!board.ping('client', '203.0.113.10', 2)) throw new Error(`client cannot reach the server through the VIP\n${fw.tail('primary')}`);
    const macBefore = neighMac(board, VIP.lan);
    const fromVmac = capture(board, 'p-secondary', 'in', `ether src ${VMAC}`);
    const toVmac = capture(board, 'p-secondary', 'out', `ether dst ${VMAC}`);
    pinger.start(waitMs + 6000);
    await sleep(1500);
    const seen = new Set<string>();
    const offAt = wall();
    await board.powerOff('primary');
    // Sample the client's ARP entry for the gateway until the pings flow again (bounded by waitMs).
    const deadline = Date.now() + waitMs;
    let back = false;
    while (Date.now() < deadline) {
      const m = neighMac(board, VIP.lan);
      if (m) seen.add(m);
      const last = pinger.replies.at(-1);
      if (last && last.sent > offAt + 200 && (await fw.states('secondary'))['1'] === 'MASTER') { back = true; break; }
      await sleep(50);
    }
    if (back) await sleep(1000);
    const master = fw.transitions('secondary').find((x) => x.vhid === VIP.lanVhid && x.to === 'MASTER');
    const out = pinger.outage(offAt, wall());
    await pinger.stop();
    for (const c of [fromVmac, toVmac]) c.proc.kill('SIGTERM');
    await sleep(300);
    return {
      gap_ms: back ? out.gap_ms : Infinity, lost: out.lost, macs_seen: [...seen], mac_before: macBefore, mac_after: neighMac(board, VIP.lan),
      deaf_drops: deafDrops(board), off_at: offAt, master_at: master?.wall_ms ?? Infinity,
      replies: pinger.replies.map((r) => ({ sent: r.sent, recv: r.recv })),
      backup_frames_from_vmac: fromVmac.times.filter((x) => x < (master?.wall_ms ?? Infinity)).length,
      flooded_to_backup: toVmac.times.filter((x) => x > offAt && x < (master?.wall_ms ?? Infinity)).length,
    };
  } finally {
    await pinger.stop();
    await board.down();
  }
}

t.test('virtual MAC: a GARP-deaf client keeps its gateway across a power cut; the BACKUP neither sends nor takes the MAC', async (t) => {
  const r = await powerCut('dv1', 'virtual', 20_000);
  t.comment(JSON.stringify({ ...r, replies: r.replies.length }));
  t.equal(r.mac_before, VMAC, 'the client learned the gateway as the virtual MAC');
  t.same(r.macs_seen, [VMAC], 'its ARP entry never changed during the failover');
  t.equal(r.mac_after, VMAC);
  t.ok(r.deaf_drops > 0, `the new master's gratuitous ARP reached the client and was dropped there (${r.deaf_drops})`);
  t.ok(r.gap_ms <= 3500, `outage ${r.gap_ms} ms <= 3500 (the takeover, not an ARP timeout)`);
  t.equal(r.backup_frames_from_vmac, 0, 'the BACKUP sent no frame from the virtual MAC');
  t.ok(r.flooded_to_backup > 0, `the switch flooded frames for the virtual MAC to the BACKUP after the master's port died (${r.flooded_to_backup})`);
  // Echoes sent while the BACKUP was not yet MASTER (a margin for frames in flight) were not routed by it.
  const early = r.replies.filter((x) => x.sent > r.off_at + 20 && x.sent < r.master_at - 20);
  t.equal(early.length, 0, `no echo answered through the BACKUP before it was MASTER (${early.length})`);
});

t.test('real MAC: the same client loses its gateway until its ARP entry expires', async (t) => {
  const r = await powerCut('dv2', 'real', 120_000);
  t.comment(JSON.stringify({ ...r, replies: r.replies.length }));
  t.comment(`real-MAC mode, GARP-deaf client: without its gateway for ${r.gap_ms} ms (${r.lost} echoes at 10 ms); takeover at ${Math.round(r.master_at - r.off_at)} ms`);
  t.ok(r.mac_before && r.mac_before !== VMAC, `the client learned the primary's own MAC (${r.mac_before})`);
  t.ok(r.deaf_drops > 0, 'the new master announced itself and the client ignored it');
  t.ok(Number.isFinite(r.gap_ms), 'the client got its gateway back (after its ARP entry expired) within 120 s');
  t.ok(r.gap_ms > r.master_at - r.off_at + 3000, `the outage (${r.gap_ms} ms) lasts well beyond the takeover: the client waited for its ARP entry`);
  t.ok(r.macs_seen.length === 2 || r.mac_after !== r.mac_before, 'the entry moved to the secondary\'s MAC only by the client asking again');
});
