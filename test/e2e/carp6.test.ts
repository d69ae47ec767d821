// CARP over IPv6 on the virtual board (docs/carp.md "CARP over IPv6"): the LAN vhid carries an IPv6 VIP
// (2001:db8:1::1) and a link-local one (fe80::1) besides its IPv4 VIP; the pair is paired (the trailer signs
// each node's link-local source). A LAN client pings the IPv6 VIP every 10 ms through a power cut of the master;
// its neighbour entry for the VIP moves to the secondary's MAC on the unsolicited neighbour advertisement,
// without waiting for its old entry to go stale (the client keeps entries REACHABLE 30-90 s here).
import t from 'tap';
import type * as Tap from 'tap';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { VirtualBoard, VIP, macFor } from '../../board/virtual/board.js';
import { Firmware, sleep } from '../../board/virtual/firmware.js';
import { raCapture } from '../../board/virtual/ipv6.js';

const VIP6 = '2001:db8:1::1';
const CLIENT6 = '2001:db8:1::100';
const LL = { primary: 'fe80::2', secondary: 'fe80::3' } as const;
const wall = () => performance.timeOrigin + performance.now();

function neigh6(board: VirtualBoard, ip: string): { mac: string | null; state: string[] } {
  const r = board.exec('client', 'ip', ['-6', '-j', 'neigh', 'show', ip, 'dev', 'eth0']);
  try {
    const e = (JSON.parse(r.stdout || '[]') as { lladdr?: string; state?: string[] }[])[0];
    return { mac: e?.lladdr ?? null, state: e?.state ?? [] };
  } catch { return { mac: null, state: [] }; }
}

/** A board whose LAN vhid also carries the IPv6 VIP and fe80::1, each node with its link-local address. */
async function dualStackBoard(t: Tap.Test, prefix: string, name: string, more: (c: any) => void = () => {}): Promise<{ board: VirtualBoard; fw: Firmware }> {
  const board = new VirtualBoard({ prefix });
  const fw = new Firmware(board);
  t.teardown(() => board.down());
  await board.up();
  fw.resetState();
  fw.writeConfigs(name, {
    keep: ['peer'],
    edit: (c, n) => {
      const other = n === 'primary' ? 'secondary' : 'primary';
      c.interfaces.lan.address6 = LL[n];
      c.interfaces.lan.peer6 = LL[other];
      const lan = c.carp.vips.find((v: { vhid: number }) => v.vhid === VIP.lanVhid);
      c.carp.vips.push({ ...lan, address: `${VIP6}/64`, description: 'LAN gateway (IPv6)' }, { ...lan, address: 'fe80::1/64', description: 'LAN router (link-local)' });
      more(c);
    },
  });
  return { board, fw };
}

/** `ping -6 -D` in the client: the wall time (ms) of each echo reply. */
function pinger(board: VirtualBoard, dst: string, seconds: number): { replies: number[]; proc: ChildProcess } {
  const replies: number[] = [];
  const proc = board.spawn('client', 'ping', ['-6', '-D', '-n', '-i', '0.01', '-W', '1', '-w', String(seconds), dst], { stdio: ['ignore', 'pipe', 'ignore'] });
  createInterface({ input: proc.stdout! }).on('line', (l) => {
    const m = /^\[(\d+\.\d+)\] \d+ bytes from/.exec(l);
    if (m) replies.push(Number(m[1]) * 1000);
  });
  return { replies, proc };
}

t.test('IPv6 VIP through a power cut: the client follows the neighbour advertisement', async (t) => {
  const { board, fw } = await dualStackBoard(t, 'd61', 'carp6');
  // A client that keeps a confirmed neighbour entry for 30-90 s: only an override NA moves it sooner.
  board.sysctl('client', { 'net.ipv6.neigh.eth0.base_reachable_time_ms': '60000', 'net.ipv6.conf.eth0.accept_dad': '0' });
  board.exec('client', 'ip', ['-6', 'addr', 'add', `${CLIENT6}/64`, 'dev', 'eth0', 'nodad'], { check: true });
  await fw.startPair();

  const addrs = (n: 'primary' | 'secondary') => board.exec(n, 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'lan0']).stdout;
  t.match(addrs('primary'), VIP6, 'the MASTER holds the IPv6 VIP');
  t.match(addrs('primary'), 'fe80::1/64', 'and the link-local VIP');
  t.notMatch(addrs('secondary'), VIP6, 'the BACKUP does not (it cannot answer a neighbour solicitation for it)');
  t.match(addrs('secondary'), /fe80::3\/64/, "the BACKUP's own link-local CARP source");
  t.ok(board.ping('client', VIP6, 2), 'the client reaches the IPv6 VIP');
  const before = neigh6(board, VIP6);
  t.equal(before.mac, macFor('primary', 'lan', 'host'), "the client resolved the VIP to the primary's MAC");

  const st = await fw.status('secondary');
  const lanVip = st.vips.find((v: { vhid: number }) => v.vhid === VIP.lanVhid);
  t.equal(lanVip.master_source6, LL.primary, 'the BACKUP hears the master over IPv6 from its link-local address');
  t.ok(st.carp_counters.other_family_copy > 0, `and its IPv4 copy of each advert too (${st.carp_counters.other_family_copy})`);
  t.equal(st.carp_counters.not_peer + st.carp_counters.bad_pair_auth + st.carp_counters.replay + st.carp_counters.bad_hmac, 0, 'no advert refused');

  const ping = pinger(board, VIP6, 14);
  await sleep(1500);
  const offAt = wall();
  await board.powerOff('primary');
  const seen = new Set<string>();
  const deadline = Date.now() + 8000;
  while (Date.now() < deadline) {
    const m = neigh6(board, VIP6).mac;
    if (m) seen.add(m);
    if (ping.replies.some((r) => r > offAt + 200) && (await fw.states('secondary'))['1'] === 'MASTER') break;
    await sleep(50);
  }
  await sleep(1000);
  ping.proc.kill('SIGTERM');
  const r = ping.replies;
  let gap = 0;
  for (let i = 1; i < r.length; i++) if (r[i] >= offAt && r[i - 1] <= offAt + 8000) gap = Math.max(gap, r[i] - r[i - 1]);
  const after = neigh6(board, VIP6);
  const master = fw.transitions('secondary').find((x) => x.vhid === VIP.lanVhid && x.to === 'MASTER');
  t.comment(JSON.stringify({ v6_takeover_ms: Math.round(gap), master_after_ms: master ? Math.round(master.wall_ms - offAt) : null, macs_seen: [...seen], after }));
  t.ok(master, 'the secondary took the vhid over');
  t.ok(r.some((x) => x > offAt + 1000), 'the pings came back');
  t.ok(gap > 0 && gap <= 4500, `longest gap between replies ${Math.round(gap)} ms <= 4500 (the takeover, not a neighbour timeout)`);
  t.equal(after.mac, macFor('secondary', 'lan', 'host'), "the client's entry moved to the secondary's MAC");
  const masterAt = master ? master.wall_ms - offAt : Infinity;
  t.ok(gap - masterAt < 300, `the client was answered again ${Math.round(gap - masterAt)} ms after the takeover: its entry moved on the advertisement`);
  t.match(addrs('secondary'), VIP6, 'the new MASTER holds the IPv6 VIP');
});

function defaultRoute(board: VirtualBoard): { via: string | null; expires: number | null } {
  const r = board.exec('client', 'ip', ['-6', '-j', '-d', 'route', 'show', 'default', 'dev', 'eth0']);
  try {
    const e = (JSON.parse(r.stdout || '[]') as { gateway?: string; expires?: number }[])[0];
    return { via: e?.gateway ?? null, expires: e?.expires ?? null };
  } catch { return { via: null, expires: null }; }
}

t.test('router advertisements from the MASTER only: a SLAAC client keeps its router through a power cut', async (t) => {
  // Short intervals so the test sees a router lifetime (12 s) run out if the new MASTER did not advertise.
  const { board, fw } = await dualStackBoard(t, 'd62', 'ra', (c) => { c.ra = { vhid: VIP.lanVhid, prefixes: ['2001:db8:1::/64'], interval_max: 4 }; });
  board.sysctl('client', { 'net.ipv6.conf.eth0.accept_dad': '0', 'net.ipv6.conf.eth0.accept_ra': '1', 'net.ipv6.conf.eth0.autoconf': '1', 'net.ipv6.conf.eth0.addr_gen_mode': '0' });
  const fromBackup = raCapture(board, 'secondary');
  const fromPrimary = raCapture(board, 'primary');
  t.teardown(() => { fromBackup.proc.kill('SIGTERM'); fromPrimary.proc.kill('SIGTERM'); });
  await fw.startPair();
  let slaac = '';
  for (let i = 0; i < 100 && (!slaac || !defaultRoute(board).via); i++) {
    slaac = /inet6 (2001:db8:1:0:[0-9a-f:]+)\/64/.exec(board.exec('client', 'ip', ['-6', 'addr', 'show', 'dev', 'eth0']).stdout)?.[1] ?? '';
    await sleep(100);
  }
  t.ok(slaac, `the client configured ${slaac} by SLAAC from the advertised prefix`);
  t.equal(defaultRoute(board).via, 'fe80::1', 'its default router is the link-local VIP');
  t.ok(board.ping('client', VIP6, 2), 'it reaches the IPv6 VIP from its SLAAC address');

  const ping = pinger(board, VIP6, 20);
  await sleep(1000);
  const offAt = wall();
  await board.powerOff('primary');
  await sleep(14_000); // beyond the 12 s router lifetime: only the new MASTER's RAs keep the route
  const route = defaultRoute(board);
  const master = fw.transitions('secondary').find((x) => x.vhid === VIP.lanVhid && x.to === 'MASTER');
  const masterAt = master?.wall_ms ?? Infinity;
  const raFromBackup = fromBackup.times.filter((x) => x < masterAt - 5).length;
  const raFromNewMaster = fromBackup.times.filter((x) => x >= masterAt - 5);
  ping.proc.kill('SIGTERM');
  const r = ping.replies;
  let gap = 0;
  for (let i = 1; i < r.length; i++) if (r[i] >= offAt && r[i - 1] <= offAt + 14_000) gap = Math.max(gap, r[i] - r[i - 1]);
  t.comment(JSON.stringify({ v6: { takeover_ms: Math.round(gap), ra_from_backup: raFromBackup, ra_from_new_master: raFromNewMaster.length, first_ra_after_takeover_ms: raFromNewMaster.length ? Math.round(raFromNewMaster[0] - masterAt) : null, ra_from_primary: fromPrimary.times.length, route } }));
  t.ok(fromPrimary.times.length >= 1, `the MASTER advertised (${fromPrimary.times.length} RAs before the cut)`);
  t.equal(raFromBackup, 0, 'ra_from_backup = 0: the BACKUP sent no router advertisement');
  t.ok(raFromNewMaster.length >= 2 && raFromNewMaster[0] - masterAt < 100, 'the new MASTER advertised at once and again');
  t.equal(route.via, 'fe80::1', 'the client kept fe80::1 as its default router past the old RA\'s lifetime');
  t.ok(gap > 0 && gap <= 4500, `longest gap between replies ${Math.round(gap)} ms`);

  // The pair stops entirely (the last node stops, its peer is gone): a final RA with router lifetime 0.
  await board.stopNode('secondary');
  await sleep(300);
  t.equal(defaultRoute(board).via, null, 'the client dropped the router on the final advertisement (lifetime 0)');
});
