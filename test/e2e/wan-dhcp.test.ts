// The single-address WAN (`wan.mode: dhcp`, docs/wan.md) on the virtual board: the nodes' own WAN addresses are
// private (10.255.0.0/24), the lab ISP (board/virtual/isp.ts: Kea in the server namespace) hands exactly one
// address, 203.0.113.1, to the pair's client identifier. The MASTER leases it from the virtual MAC, puts it on the
// NIC as the WAN VIP and NATs to it; the lease goes to the BACKUP in the heartbeat and to disk on both. A power
// cut hands the same address to the secondary at once; the failback gives it back. A capture of the WAN switch's
// ports counts every frame a node sent from the virtual MAC, and every DHCP frame, while it was not MASTER: 0.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VirtualBoard, type NodeName } from '../../board/virtual/board.js';
import { WanCapture, dhcpWanEdit } from '../../board/virtual/demo/wan.js';
import { Firmware, poll, sleep } from '../../board/virtual/firmware.js';
import { Isp } from '../../board/virtual/isp.js';
import { runScenario } from '../../board/virtual/demo/scenario.js';
import { plugins } from '../../board/virtual/demo/plugins.js';

const SERVER = '203.0.113.10';
const wall = () => performance.timeOrigin + performance.now();

const wanAddrs = (board: VirtualBoard, node: NodeName) => board.addressesCidr(node, 'wan0');

async function setup(t: { teardown(fn: () => unknown): void }, prefix: string, leaseS: number) {
  const board = new VirtualBoard({ prefix, wan: 'dhcp' });
  const fw = new Firmware(board);
  const isp = new Isp(board, { leaseS });
  const cap = new WanCapture(board);
  t.teardown(async () => {
    cap.stop();
    await isp.stop();
    await board.down();
  });
  await board.up();
  fw.resetState();
  await isp.start();
  fw.writeConfigs('wan-dhcp', {
    keep: ['firewall', 'nat', 'peer', 'statesync', 'configsync'],
    edit: (c, n) => {
      dhcpWanEdit(c, n);
      delete c.firewall.aliases; c.firewall.rules.lan = [{ action: 'pass', protocol: 'any', source: 'lan net', destination: 'any' }];
    },
  });
  return { board, fw, isp, cap };
}

t.test('the MASTER leases the one address; a power cut and the failback keep it; the BACKUP sends nothing', async (t) => {
  const { board, fw, isp, cap } = await setup(t, 'dw1', 60);
  cap.start();
  await sleep(300);
  await fw.startPair();

  const leased = await poll(() => wanAddrs(board, 'primary').includes('203.0.113.1/24'), 15_000, 50);
  t.ok(leased, 'the MASTER holds the leased address on wan0', leased ? {} : { addresses: wanAddrs(board, 'primary'), log: fw.tail('primary', 30) });
  const before = (await fw.status('primary')).wan?.lease?.address ?? null;
  t.equal(before, isp.address, 'wan_address_before is the ISP\'s address');
  t.ok(board.ping('client', SERVER, 2), 'the LAN client reaches the ISP through the leased address (the server routes nothing else back)');
  const synced = await poll(async () => (await fw.status('secondary')).wan?.lease?.address === isp.address, 5000, 50);
  t.ok(synced, 'the BACKUP holds the lease from the heartbeat');
  const stored = join(fw.stateDir('secondary'), 'wan-lease.json');
  t.ok(existsSync(stored) && JSON.parse(readFileSync(stored, 'utf8')).lease.address === isp.address, 'and has it on disk');
  const sv = (await fw.status('secondary')).vips.find((v: any) => v.vhid === 2);
  t.same(sv.addresses, ['203.0.113.1/24'], 'the BACKUP advertises the same address (the CARP HMAC agrees)');
  t.same(wanAddrs(board, 'secondary').filter((a) => a.startsWith('203.')), [], 'but does not hold it');
  // The packet sockets (README "Ports each node opens"): the MASTER has one more than the BACKUP, an IPv4 one on wan0.
  const packets = (n: NodeName) => board.exec(n, 'ss', ['-H', '-0', '-p']).stdout.trim().split('\n').filter(Boolean)
    .map((l) => l.split(/\s+/)).map((f) => `${f[0]} ${f[3]}`).sort();
  t.ok(await poll(async () => (await fw.status('primary')).wan.socket_open === true && (await fw.status('secondary')).wan.socket_open === false, 2000, 50), 'the MASTER has the DHCP socket open, the BACKUP not');
  t.same(packets('primary'), ['p_dgr arp:guest0', 'p_dgr arp:lan0', 'p_dgr arp:wan0', 'p_raw ip:wan0'], 'packet sockets on the MASTER: ARP per CARP NIC, and one raw IPv4 on wan0 (the DHCP client)');
  t.same(packets('secondary'), ['p_dgr arp:guest0', 'p_dgr arp:lan0', 'p_dgr arp:wan0'], 'on the BACKUP: ARP only');
  t.ok(await poll(() => board.ping('secondary', SERVER, 1), 5000, 100), 'the BACKUP\'s own traffic reaches the ISP through the MASTER (sync link, NAT to the lease)');
  const peerNat = board.exec('primary', 'conntrack', ['-L', '-p', 'icmp', '-s', '172.16.1.2']).stdout;
  t.match(peerNat, /src=203\.0\.113\.10 dst=203\.0\.113\.1 /, 'NATed to the leased address on the MASTER');

  // Power cut: the secondary holds the same address at once (the synced lease), and INIT-REBOOT confirms it.
  const off = wall();
  await board.powerOff('primary');
  const took = await poll(() => wanAddrs(board, 'secondary').includes('203.0.113.1/24') ? wall() : null, 10_000, 10);
  t.ok(took, 'the secondary holds 203.0.113.1 after the power cut');
  t.comment(`address on the new MASTER ${Math.round(took! - off)} ms after the power cut`);
  t.ok(await poll(() => board.ping('client', SERVER, 1), 5000, 100), 'the LAN client reaches the ISP through the new MASTER');
  const conf = await poll(async () => { const s = (await fw.status('secondary')).wan; return s?.last_event?.kind === 'renewed' ? s : null; }, 10_000, 50);
  t.ok(conf, 'the server confirmed the stored lease (INIT-REBOOT → renewed)');
  t.equal(conf?.lease?.address, isp.address, 'the same address');

  // Failback.
  await board.powerOn('primary');
  await fw.start('primary');
  const back = await fw.waitStates((p, s) => p['2'] === 'MASTER' && s['2'] === 'BACKUP', 20_000);
  t.ok(back, 'the primary takes the WAN vhid back');
  const again = await poll(() => wanAddrs(board, 'primary').includes('203.0.113.1/24'), 10_000, 20);
  t.ok(again, 'with the same address');
  t.ok(await poll(() => board.ping('client', SERVER, 1), 5000, 100), 'the LAN client reaches the ISP after the failback');
  const after = (await fw.status('primary')).wan?.lease?.address ?? null;
  t.equal(after, before, `wan_address_after (${after}) equals wan_address_before`);
  t.same(wanAddrs(board, 'secondary').filter((a) => a.startsWith('203.')), [], 'the secondary released it');
  t.ok(await poll(() => board.ping('secondary', SERVER, 1), 5000, 100), 'and, BACKUP again, reaches the ISP through the primary');

  await sleep(500);
  const end = wall();
  const q = cap.backupFrames(fw, end);
  for (const f of q.offending.slice(0, 5)) t.comment(`sent while not MASTER: ${f.line}`);
  t.comment(`frames from the virtual MAC or DHCP seen: primary ${q.seen.primary}, secondary ${q.seen.secondary}`);
  t.ok(q.seen.primary > 0 && q.seen.secondary > 0, 'the capture saw each node\'s frames while it was MASTER (it can see them)');
  const backupFrames = q.backup_wan_frames;
  t.equal(backupFrames, 0, 'backup_wan_frames: 0');
});

t.test('the ISP renumbers at renewal: VIP, NAT and both nodes\' adverts follow together, never two masters', async (t) => {
  const { board, fw, isp } = await setup(t, 'dw2', 8);
  await fw.startPair();
  t.ok(await poll(() => wanAddrs(board, 'primary').includes('203.0.113.1/24'), 15_000, 50), 'the first lease');
  t.ok(await poll(async () => (await fw.status('secondary')).wan?.lease?.address === '203.0.113.1', 5000, 50), 'synced to the BACKUP');
  t.ok(board.ping('client', SERVER, 2), 'the client reaches the ISP');
  // The pair settles first (a node that starts waits for the peer's state table, demoted: the peer may hold the
  // VIPs meanwhile); from here on, no transition.
  t.ok(await fw.waitStates((p, s) => p['2'] === 'MASTER' && s['2'] === 'BACKUP', 20_000), 'the pair settled');
  await sleep(1500);
  const base = { primary: fw.transitions('primary').length, secondary: fw.transitions('secondary').length };

  // Watch both nodes' states of vhid 2 every 20 ms from now until both moved.
  let dual = 0; let samples = 0; let watching = true;
  const watcher = (async () => {
    for (let i = 0; watching && i < 2000; i++) {
      const [p, s] = await Promise.all([fw.states('primary'), fw.states('secondary')]);
      samples++;
      if (p['2'] === 'MASTER' && s['2'] === 'MASTER') dual++;
      await sleep(20);
    }
  })();
  isp.move('203.0.113.5');
  const moved = await poll(async () => {
    const [p, s] = await Promise.all([fw.status('primary'), fw.status('secondary')]);
    const pv = p.vips.find((v: any) => v.vhid === 2); const sv = s.vips.find((v: any) => v.vhid === 2);
    return wanAddrs(board, 'primary').includes('203.0.113.5/24') && pv.addresses[0] === '203.0.113.5/24' && sv.addresses[0] === '203.0.113.5/24' ? { p, s } : null;
  }, 20_000, 50);
  t.ok(moved, 'both nodes moved to 203.0.113.5 at the renewal (the MASTER holds it)');
  // Keep watching through three advert intervals after the move: a disagreement would show as the BACKUP's takeover.
  await sleep(3500);
  watching = false;
  await watcher;
  t.equal(dual, 0, `never two masters (${samples} samples of both nodes, 20 ms apart)`);
  const ev = (await fw.status('primary')).wan.last_event;
  t.comment(`the MASTER's event: ${ev.kind}`);
  t.notOk(wanAddrs(board, 'primary').includes('203.0.113.1/24'), 'the old address is gone from the NIC');
  t.same(fw.transitions('primary').slice(base.primary), [], 'no transition on the primary');
  t.same(fw.transitions('secondary').slice(base.secondary), [], 'none on the secondary');
  const moves = (n: NodeName) => readFileSync(board.logPath(n), 'utf8').split('\n').filter((l) => l.includes('"vip addresses moved in place"') && l.includes('"to":["203.0.113.5')).map((l) => JSON.parse(l).wall_ms as number);
  const [pm, sm] = [moves('primary')[0], moves('secondary')[0]];
  t.ok(pm && sm, 'each node logged its move');
  t.comment(`the two nodes switched the advert's address ${Math.round(Math.abs(sm - pm) * 10) / 10} ms apart (secondary ${sm > pm ? 'after' : 'before'} the primary)`);
  t.ok(Math.abs(sm - pm) < 1000, 'within one advert interval');
  t.ok(await poll(() => board.ping('client', SERVER, 1), 5000, 100), 'the client reaches the ISP through the new address (NAT follows: the server answers only on-link addresses)');
  const ct = board.exec('primary', 'conntrack', ['-L', '-p', 'icmp']).stdout;
  t.match(ct, /203\.0\.113\.5/, 'conntrack shows the LAN client NATed to the new address');

  // A config taken live carries the configured address: the leased one is kept (the daemon pins it), no flap.
  const r = fw.cli('primary', ['config', 'apply', fw.configFile('primary'), '-m', 'wan test: same file again']);
  t.equal(r.status, 0, `config apply: ${r.stdout}${r.stderr}`);
  await sleep(300);
  t.ok(wanAddrs(board, 'primary').includes('203.0.113.5/24'), 'the leased address stays on the NIC after a config apply');
  t.equal((await fw.status('primary')).vips.find((v: any) => v.vhid === 2).addresses[0], '203.0.113.5/24', 'and in the adverts');
  t.same(fw.transitions('primary').slice(base.primary), [], 'no transition');
  const sec = await poll(async () => (await fw.status('secondary')).vips.find((v: any) => v.vhid === 2).addresses[0] === '203.0.113.5/24', 3000, 100);
  t.ok(sec, 'the secondary, which took the pushed config (config sync), keeps the leased address too');
  t.same(fw.transitions('secondary').slice(base.secondary), [], 'and never became MASTER');
});

t.test('the demo with a single-address WAN (npm run demo -- --wan=dhcp): the whole story, the same address, a quiet BACKUP', async (t) => {
  // The demo's narration is printed only when an assertion fails: it says which step went wrong.
  const story: string[] = [];
  t.teardown(() => { if (!t.passing()) for (const line of story) t.comment(line); });
  const r = await runScenario({ prefix: 'dw3', say: (line: string) => { story.push(line); }, plugins, wan: 'dhcp' }) as any;
  t.comment(JSON.stringify({ ...r, states: undefined }));
  t.equal(r.wan_mode, 'dhcp');
  t.equal(r.wan_address_before, '203.0.113.1', 'wan_address_before: the ISP\'s one address');
  t.equal(r.wan_address_after, r.wan_address_before, 'wan_address_after equals it');
  t.equal(r.backup_wan_frames, 0, 'backup_wan_frames: no frame from the virtual MAC and no DHCP from a node that was not MASTER, for the whole demo');
  t.ok(r.wan_frames_seen.primary > 0 && r.wan_frames_seen.secondary > 0, 'the capture saw both nodes\' frames while MASTER');
  t.ok(r.takeover_ms <= 3500, `power-off takeover ${r.takeover_ms} ms <= 3500`);
  t.equal(r.dual_master_ms, 0);
  t.equal(r.dhcp_ok, true, `the LAN client renews its lease from the new master${r.dhcp_detail ? `: ${r.dhcp_detail}` : ''}`); t.equal(r.dns_ok, true); t.equal(r.snat_ok, true, 'NAT to the leased address');
  t.equal(r.config_sync_after_failback, 'in_sync', 'config sync carries the leased address to the secondary without a refusal');
  for (const k of ['failover', 'failback']) {
    t.equal(r.statesync[k].tcp_sessions_survived, 20, `${k}: 20/20 sessions`);
    t.equal(r.statesync[k].download_ok, true, `${k}: download intact`);
  }
});
