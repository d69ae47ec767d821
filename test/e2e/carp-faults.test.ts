// CARP faults on the virtual board: cable pull, persistent maintenance mode, hostile adverts, and what a capture
// (tshark) sees on the wire.
import t from 'tap';
import { VirtualBoard } from '../../board/virtual/board.js';
import { Firmware, ROOT, allAre, sleep } from '../../board/virtual/firmware.js';
import { Pinger } from '../../board/virtual/pinger.js';
import { advert, verifyAdvert } from '../helpers/carp.js';

const board = new VirtualBoard({ prefix: 'dgt-carpf' });
const fw = new Firmware(board);
t.teardown(() => board.down());

const both = (want: string, node: 'primary' | 'secondary', ms = 8000) =>
  fw.waitStates((p, s) => allAre(node === 'primary' ? p : s, want), ms);

t.before(async () => {
  await board.up();
  fw.resetState();
  await Promise.all([fw.start('primary'), fw.start('secondary')]);
  if (!await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 15_000)) throw new Error('no convergence');
});

t.test('pulling the primary LAN cable hands both VIPs to the secondary; replugging hands them back', async (t) => {
  board.pullCable('primary', 'lan');
  const moved = await fw.waitStates((p, s) => allAre(s, 'MASTER'), 8000);
  t.ok(moved, 'the secondary holds both VIPs');
  const ps = await fw.status('primary');
  t.equal(ps.vips.find((v: any) => v.vhid === 1).state, 'INIT', 'the primary LAN vhid is INIT without carrier');
  t.equal(ps.demotion, 240, 'the primary is demoted while a CARP link is down');
  t.notOk(board.addresses('primary', 'wan0').includes('203.0.113.1'), 'the primary released the WAN VIP too');
  board.plugCable('primary', 'lan');
  t.ok(await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 8000), 'both back on the primary');
});

t.test('maintenance mode hands over with few lost pings and survives a daemon restart', async (t) => {
  const pinger = new Pinger(board, 10);
  pinger.start(60_000);
  await sleep(500);
  const at = performance.timeOrigin + performance.now();
  const r = fw.cli('primary', ['maintenance', 'enter']);
  t.equal(r.status, 0, r.stderr);
  t.ok(await both('MASTER', 'secondary', 3000), 'the secondary takes over');
  await sleep(500);
  const o = pinger.outage(at, performance.timeOrigin + performance.now());
  t.ok(o.lost <= 3, `${o.lost} pings lost (gap ${o.gap_ms} ms) at 10 ms`);

  await board.stopNode('primary', 'SIGTERM');
  await fw.start('primary');
  await sleep(3500); // longer than a master-down interval: a forgotten flag would show by now
  const p = await fw.status('primary');
  t.equal(p.maintenance.on, true, 'still in maintenance after the restart');
  t.ok(allAre(await fw.states('secondary'), 'MASTER'), 'the secondary kept the VIPs');
  t.ok(allAre(await fw.states('primary'), 'BACKUP'));

  const at2 = performance.timeOrigin + performance.now();
  t.equal(fw.cli('primary', ['maintenance', 'leave']).status, 0);
  t.ok(await both('MASTER', 'primary', 3000), 'leaving maintenance takes the VIPs back');
  await sleep(300);
  const o2 = pinger.outage(at2, performance.timeOrigin + performance.now());
  t.ok(o2.lost <= 3, `${o2.lost} pings lost coming back`);
  await pinger.stop();
});

t.test('forged, corrupted, truncated and TTL-254 adverts are dropped, counted and change nothing', async (t) => {
  const before = await fw.status('secondary');
  const pw = 'lan-carp-secret'; const vips = ['192.168.1.1'];
  // Each would otherwise make the secondary (a BACKUP) act: a better-priority or bow-out advert.
  const bowOut = (o: object = {}) => advert({ vhid: 1, advskew: 255, advbase: 255, counter: 99n, ...o }, pw, vips);
  const forged = advert({ vhid: 1, advskew: 255, advbase: 255, counter: 99n }, 'guessed-password', vips);
  const corrupt = bowOut(); corrupt[30] ^= 0xff;
  const truncated = bowOut().subarray(0, 20);
  const send = (ttl: number, ...pkts: Buffer[]) => board.exec('client', process.execPath,
    ['--import', 'tsx', 'test/helpers/inject.ts', 'eth0', String(ttl), ...pkts.map((p) => p.toString('hex'))], { cwd: ROOT, check: true });
  // The same bow-out with the master's source address, as a LAN host can forge it (AF_PACKET).
  const spoof = (src: string, ...pkts: Buffer[]) => board.exec('client', process.execPath,
    ['--import', 'tsx', 'test/helpers/attacker.ts', 'eth0', 'send', src, '50', '1', ...pkts.map((p) => p.toString('hex'))], { cwd: ROOT, check: true });
  send(255, forged, corrupt, truncated);
  send(254, bowOut());
  spoof('192.168.1.2', forged);
  spoof('192.168.1.2', bowOut());
  await sleep(300);
  const after = await fw.status('secondary');
  const d = (k: string) => after.carp_counters[k] - before.carp_counters[k];
  t.equal(d('not_peer'), 1, 'forged, from the client\'s own address: not_peer');
  t.equal(d('bad_checksum'), 1, 'corrupted: bad_checksum');
  t.equal(d('short'), 1, 'truncated: short');
  t.equal(d('bad_ttl'), 1, 'TTL 254: bad_ttl');
  t.equal(d('no_pair_auth'), 2, 'from the master\'s address but without the pair trailer (wrong password or right one): no_pair_auth');
  t.ok(allAre(await fw.states('secondary'), 'BACKUP') && allAre(await fw.states('primary'), 'MASTER'), 'nothing changed');
  const text = fw.cli('secondary', ['status']).stdout;
  t.match(text, /bad_ttl=1/, 'status shows the counters');
  await sleep(1500);
  const ctl = await fw.status('secondary');
  t.ok(ctl.carp_counters.accepted - after.carp_counters.accepted >= 1, 'the real master\'s adverts are still accepted');
  t.ok(allAre(await fw.states('primary'), 'MASTER') && allAre(await fw.states('secondary'), 'BACKUP'), 'the real master keeps the role');
});

t.test('adverts decode as valid CARP in tshark and their HMAC verifies independently', async (t) => {
  const cap = `${board.runDir}/carp.pcap`;
  const dump = board.spawn('client', 'tcpdump', ['-i', 'eth0', '-U', '-w', cap, 'ip proto 112'], { stdio: 'ignore' });
  await sleep(3200);
  dump.kill('SIGINT');
  await new Promise((r) => dump.once('exit', r));
  const r = board.exec('client', 'tshark', ['-r', cap, '-d', 'ip.proto==112,carp', '-Y',
    'carp && carp.version==2 && carp.type==1 && carp.authlen==7 && carp.checksum.status==1 && ip.ttl==255 && ip.dst==224.0.0.18',
    '-T', 'fields', '-e', 'ip.src', '-e', 'carp.vhid', '-e', 'carp.advskew', '-e', 'carp.adver_int', '-e', 'data.data', '-e', 'carp.hmac', '-e', 'carp.counter'], { timeoutMs: 30_000 });
  const rows = r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split('\t'));
  t.ok(rows.length >= 2, `${rows.length} valid CARP adverts captured in 3 s (${r.stderr.slice(0, 200)})`);
  t.ok(rows.every((x) => x[0] === '192.168.1.2' && x[1] === '1' && x[2] === '0' && x[3] === '1'), 'from the primary, vhid 1, skew 0, advbase 1');
  // Rebuild each advert from the decoded fields and check the HMAC with node:crypto.
  for (const x of rows) {
    const counter = Buffer.alloc(8); counter.writeBigUInt64BE(BigInt(x[6]));
    const a = advert({ vhid: 1, advskew: 0, advbase: 1, counter }, 'lan-carp-secret', ['192.168.1.1']);
    t.equal(a.subarray(16).toString('hex'), x[5].replace(/:/g, ''), `HMAC of counter ${x[6]} verifies`);
    t.ok(verifyAdvert(a, 'lan-carp-secret', ['192.168.1.1']).hmacOk);
  }
});
