// The single-address WAN's parts that need no board (docs/wan.md): the vhid's addresses moved in place in the
// CARP core (state kept, the next advert's HMAC over the new list), `duogate check` for `wan.mode: dhcp`, the
// client's frames and their BPF filter against the real kernel (a private namespace), the lease store, and the
// heartbeat's lease field. The whole mode on the virtual board: test/e2e/wan-dhcp.test.ts.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { Core } from '../../host/core/core.js';
import { verifyAdvert, ipv4, advert } from '../helpers/carp.js';
import { parseConfigText } from '../../host/config/load.js';
import { checkConfig } from '../../host/config/check.js';
import { compile } from '../../host/gateway/firewall/compile.js';
import { dhcpClientFilter, dhcpFrame, parseDhcpFrame } from '../../host/wan/packet.js';
import { LeaseStore } from '../../host/wan/store.js';
import { decode, encode, type Heartbeat } from '../../host/peer/codec.js';
import type { Lease } from '../../host/wan/dhcp/machine.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

t.test('core: a vhid\'s addresses move in place; the MASTER stays MASTER and signs the new list', async (t) => {
  const c = new Core({ debug: true });
  c.reset([1, 2]);
  c.setLinkAddr(0, '10.255.0.2');
  c.addVhid({ vhid: 2, link: 0, advbase: 1, advskew: 0, password: 'wan-carp-secret', vips: ['10.255.0.1'] });
  c.start(0);
  c.drain();
  c.handleTimeout(3500); // master-down: MASTER
  const first = c.drain().filter((a) => a.type === 'advert');
  t.ok(first.length, 'MASTER sends adverts');
  t.ok(verifyAdvert(first[0].type === 'advert' ? first[0].payload : new Uint8Array(), 'wan-carp-secret', ['10.255.0.1']).hmacOk, 'signed over the configured address');
  const before = c.vhidStatus()[0];
  c.setVips(2, 0, ['203.0.113.1']);
  t.same(c.drain(), [], 'moving the addresses releases nothing and changes no state');
  c.handleTimeout(4600);
  const next = c.drain().filter((a) => a.type === 'advert');
  t.equal(next.length, 1, 'the next advert');
  const p = next[0].type === 'advert' ? next[0].payload : new Uint8Array();
  t.ok(verifyAdvert(p, 'wan-carp-secret', ['203.0.113.1']).hmacOk, 'is signed over the leased address');
  t.notOk(verifyAdvert(p, 'wan-carp-secret', ['10.255.0.1']).hmacOk, 'not the old one');
  const after = c.vhidStatus()[0];
  t.equal(after.state, 'MASTER');
  t.equal(after.transitions, before.transitions, 'no transition');
  t.throws(() => c.setVips(3, 0, ['203.0.113.1']), { code: 'DG_ERR_VHID' }, 'an unknown vhid is refused');
  t.throws(() => c.setVips(2, 0, []), { code: 'DG_ERR_VHID' }, 'an empty list is refused');
  // A BACKUP whose list moved accepts the master's adverts over the new list only.
  const b = new Core({ debug: true });
  b.reset([3, 4]);
  b.setLinkAddr(0, '10.255.0.3');
  b.addVhid({ vhid: 2, link: 0, advbase: 1, advskew: 100, password: 'wan-carp-secret', vips: ['10.255.0.1'] });
  b.start(0);
  b.drain();
  b.setVips(2, 0, ['203.0.113.1']);
  t.equal(b.handleCarp(10, 0, ipv4(p, '10.255.0.2')), 'ok', 'the BACKUP takes the advert over the new list');
  const old = advert({ vhid: 2, advskew: 0, advbase: 1, counter: Buffer.alloc(8, 1) }, 'wan-carp-secret', ['10.255.0.1']);
  t.equal(b.handleCarp(20, 0, ipv4(old, '10.255.0.2')), 'bad_hmac', 'and refuses one over the old list');
});

/** The board's primary config made a single-address WAN (as test/e2e/wan-dhcp.test.ts does). */
function dhcpYaml(edit: (s: string) => string = (s) => s): string {
  let y = readFileSync(path.join(ROOT, 'board/virtual/primary.yaml'), 'utf8');
  y = y.replace('wan:  { device: wan0,  address: 203.0.113.2/24, peer: 203.0.113.3 }', 'wan:  { device: wan0,  address: 10.255.0.2/24, peer: 10.255.0.3 }');
  y = y.replace('{ interface: wan, vhid: 2, address: 203.0.113.1/24,', '{ interface: wan, vhid: 2, mac: virtual, address: 10.255.0.1/24,');
  return edit(y + '\nwan: { mode: dhcp, vhid: 2 }\n');
}

t.test('check: mode dhcp explains the plan, warns, and refuses what cannot work', async (t) => {
  const c = parseConfigText(dhcpYaml());
  const f = checkConfig(c);
  t.same(f.filter((x) => x.level === 'error'), [], 'the single-address plan passes');
  const plan = f.find((x) => x.field === 'wan.mode');
  t.match(plan?.message, /only the MASTER of vhid 2 speaks DHCP on wan0, from 00:00:5e:00:01:02 with client id 0100005e000102/, 'the plan: who speaks, from which MAC, with which client id');
  t.match(plan?.message, /port security or MAC pinning/, 'warns about ISP port security / MAC pinning');
  t.match(plan?.message, /collide with their VRRP\/CARP/, 'and vhid collisions');
  const real = checkConfig(parseConfigText(dhcpYaml((y) => y.replace('vhid: 2, mac: virtual,', 'vhid: 2, mac: real,'))));
  t.match(real.find((x) => x.level === 'error' && x.field === 'carp.vips[1].mac')?.message, /must be virtual with wan.mode dhcp/, 'a real-MAC WAN vhid is refused with the field and why');
  const none = checkConfig(parseConfigText(dhcpYaml((y) => y.replace('wan: { mode: dhcp, vhid: 2 }', 'wan: { mode: dhcp, vhid: 9 }'))));
  t.ok(none.some((x) => x.level === 'error' && x.field === 'wan.vhid'), 'a vhid with no WAN VIP is refused');
  const noVhid = checkConfig(parseConfigText(dhcpYaml((y) => y.replace('wan: { mode: dhcp, vhid: 2 }', 'wan: { mode: dhcp }'))));
  t.ok(noVhid.some((x) => x.level === 'error' && x.field === 'wan.vhid'), 'mode dhcp without a vhid is refused');
  t.throws(() => parseConfigText(dhcpYaml((y) => y.replace('wan: { mode: dhcp, vhid: 2 }', 'wan: { mode: pppoe, vhid: 2 }'))), { field: 'wan.mode' }, 'an unknown mode is refused at load');
  t.throws(() => parseConfigText(dhcpYaml((y) => y.replace('wan: { mode: dhcp, vhid: 2 }', 'wan: { mode: dhcp, vhid: 2, client_id: "xyz" }'))), { field: 'wan.client_id' });
  const peer = parseConfigText(dhcpYaml().replace('wan: { mode: dhcp, vhid: 2 }', 'wan: { mode: dhcp, vhid: 2, client_id: "01aabbccddeeff" }'));
  t.ok(checkConfig(c, peer).some((x) => x.level === 'error' && x.field === 'wan.client_id'), '--peer: different client ids are refused');
  // The running config carries the leased address (outside the nodes' subnet), and config sync pushes it.
  const leasedAddr = checkConfig(parseConfigText(dhcpYaml((y) => y.replace('mac: virtual, address: 10.255.0.1/24,', 'mac: virtual, address: 203.0.113.1/24,'))));
  t.same(leasedAddr.filter((x) => x.level === 'error'), [], 'the leased address is not refused for being outside the nodes\' WAN subnet');
  const stat = parseConfigText(readFileSync(path.join(ROOT, 'board/virtual/primary.yaml'), 'utf8'));
  t.notOk(checkConfig(stat).some((x) => x.field.startsWith('wan')), 'static (no wan section): nothing to say');
});

t.test('frames: Ethernet from the virtual MAC, IPv4 + UDP 68 → 67 with valid checksums; parse refuses what is not ours', async (t) => {
  const vmac = Buffer.from('00005e000102', 'hex');
  const f = dhcpFrame(vmac, Buffer.alloc(6, 0xff), '0.0.0.0', '255.255.255.255', Buffer.from('hello'));
  t.same(f.subarray(6, 12), vmac, 'source: the virtual MAC');
  t.equal(f.readUInt16BE(12), 0x0800);
  const sum = (b: Buffer) => { let s = 0; for (let i = 0; i < b.length; i += 2) s += b.readUInt16BE(i); while (s > 0xffff) s = (s & 0xffff) + (s >>> 16); return s; };
  t.equal(sum(f.subarray(14, 34)), 0xffff, 'IPv4 header checksum');
  const pseudo = Buffer.concat([f.subarray(26, 34), Buffer.from([0, 17]), f.subarray(38, 40)]);
  const udp = Buffer.concat([f.subarray(34), Buffer.alloc(f.subarray(34).length & 1)]);
  t.equal(sum(Buffer.concat([pseudo, udp])), 0xffff, 'UDP checksum over the pseudo-header');
  // As an answer: the same layout with the ports swapped.
  const answer = Buffer.from(f); answer.writeUInt16BE(67, 34); answer.writeUInt16BE(68, 36);
  const p = parseDhcpFrame(answer);
  t.ok(p.ok && p.payload.toString() === 'hello' && p.srcMac.equals(vmac), 'an answer to port 68 parses');
  t.same(parseDhcpFrame(f), { ok: false, why: 'port' }, 'our own request (to 67) is not an answer');
  t.same(parseDhcpFrame(answer.subarray(0, 30)), { ok: false, why: 'short' });
  const frag = Buffer.from(answer); frag.writeUInt16BE(0x2000, 20);
  t.same(parseDhcpFrame(frag), { ok: false, why: 'fragment' });
  const tcp = Buffer.from(answer); tcp[23] = 6;
  t.same(parseDhcpFrame(tcp), { ok: false, why: 'not_udp' });
  const long = Buffer.from(answer); long.writeUInt16BE(500, 38);
  t.same(parseDhcpFrame(long), { ok: false, why: 'bad_udp' });
  const badSum = Buffer.from(answer); badSum[24] ^= 0x5a;
  t.same(parseDhcpFrame(badSum), { ok: false, why: 'bad_ip' }, 'a corrupted IPv4 header checksum');
  t.same(parseDhcpFrame(answer.subarray(0, answer.length - 1)), { ok: false, why: 'bad_ip' }, 'an IP total length beyond the frame');
  t.equal(dhcpClientFilter().length, 11 * 8, 'the filter: 11 instructions');
});

t.test('the BPF filter in the kernel: only IPv4 UDP to port 68 reaches the socket', { skip: process.getuid?.() !== 0 ? 'needs root (a private network namespace)' : false }, async (t) => {
  // A child process in a fresh namespace with a veth pair: sends frames one way, reads them on the other end.
  const script = `
    import { native } from ${JSON.stringify(path.join(ROOT, 'host/io/native.ts'))};
    import { dhcpClientFilter, dhcpFrame } from ${JSON.stringify(path.join(ROOT, 'host/wan/packet.ts'))};
    import { execFileSync } from 'node:child_process';
    execFileSync('ip', ['link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0']);
    execFileSync('ip', ['link', 'set', 'a0', 'up']); execFileSync('ip', ['link', 'set', 'b0', 'up']);
    const rx = native.openPacket('b0', 0x0800, true);
    native.attachFilter(rx, dhcpClientFilter());
    const tx = native.openPacket('a0', 0x0800, true);
    const idx = native.ifInfo('a0').index;
    const src = Buffer.from('00005e000102', 'hex');
    const mk = (sport, dport, proto = 17, frag = 0) => { const f = dhcpFrame(src, Buffer.alloc(6, 0xff), '203.0.113.10', '255.255.255.255', Buffer.from('x'.repeat(300)));
      f.writeUInt16BE(sport, 34); f.writeUInt16BE(dport, 36); f[23] = proto; f.writeUInt16BE(frag, 20); return f; };
    const sent = [mk(67, 68), mk(67, 67), mk(53, 68, 6), mk(67, 68, 17, 0x0001), mk(123, 68)];
    for (const f of sent) native.sendPacket(tx, idx, f.subarray(0, 6), 0x0800, f);
    await new Promise((r) => setTimeout(r, 200));
    const got = []; const buf = new Uint8Array(2048);
    for (let i = 0; i < 10; i++) { const n = native.recvInto(rx, buf); if (n < 0) break; got.push(Buffer.from(buf.subarray(34, 38)).toString('hex')); }
    console.log(JSON.stringify(got));
  `;
  const dir = mkdtempSync(path.join(tmpdir(), 'wan-bpf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'bpf.mts');
  writeFileSync(file, script);
  const r = spawnSync('unshare', ['--net', process.execPath, '--import=tsx', file], { encoding: 'utf8', timeout: 20_000, cwd: ROOT });
  t.equal(r.status, 0, r.stderr);
  t.same(JSON.parse(r.stdout.trim().split('\n').pop() ?? '[]'), ['00430044', '007b0044'], 'UDP to 68 from 67 and from 123 pass; to 67, TCP, and a fragment do not');
});

t.test('lease store: atomic, anchored to the wall clock, read back in the reader\'s timebase', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'wan-store-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const s = new LeaseStore(dir);
  t.same(s.load(1000), { lease: null }, 'nothing stored');
  const lease: Lease = { address: '203.0.113.1', subnetMask: '255.255.255.0', routers: ['203.0.113.10'], dns: [], serverId: '203.0.113.10', leaseTime: 60, t1: 30, t2: 52, obtainedAt: 5000, clientId: '0100005e000102' };
  s.save(lease, 15_000); // 10 s old
  const back = s.load(100_000).lease!;
  t.ok(Math.abs(back.obtainedAt - 90_000) < 50, `10 s old in the new timebase too (${back.obtainedAt})`);
  t.same({ ...back, obtainedAt: 0 }, { ...lease, obtainedAt: 0 });
  writeFileSync(s.file, '{not json');
  t.equal(s.load(0).lease, null);
  t.ok(s.load(0).error, 'an unreadable file is reported, not thrown');
  s.clear();
  t.same(s.load(0), { lease: null }, 'cleared');
});

t.test('heartbeat: the lease field is checked before anyone reads it', async (t) => {
  const hb: Heartbeat = { node: 'primary', boot: 'b', seq: 1, at: Date.now(), path: 'sync', vips: [], maintenance: false, alarms: [] };
  const wire = { address: '203.0.113.1', routers: ['203.0.113.10'], dns: [], serverId: '203.0.113.10', leaseTime: 60, t1: 30, t2: 52, clientId: '0100005e000102', age_ms: 1200 };
  const round = (h: unknown) => decode(encode(h as Heartbeat, 'k'), 'k');
  t.ok(round(hb).ok, 'without a lease');
  t.ok(round({ ...hb, wan: { vhid: 2, lease: wire } }).ok, 'with one');
  t.ok(round({ ...hb, wan: { vhid: 2, lease: null } }).ok, 'with a lost one');
  for (const [what, bad] of [['address', { ...wire, address: '203.0.113.300' }], ['age', { ...wire, age_ms: -1 }], ['routers', { ...wire, routers: 'x' }],
    ['lease time', { ...wire, leaseTime: 2 ** 33 }], ['client id', { ...wire, clientId: 'ZZ' }]] as const) {
    t.same(round({ ...hb, wan: { vhid: 2, lease: bad } }), { ok: false, reason: 'malformed' }, `a bad ${what} is malformed`);
  }
});

t.test('firewall: with mode dhcp, only the peer\'s sync address is forwarded out of the WAN, NATed to the leased address', async (t) => {
  const dhcp = parseConfigText(dhcpYaml((y) => y.replace('mac: virtual, address: 10.255.0.1/24,', 'mac: virtual, address: 203.0.113.1/24,'))) ;
  const text = compile(dhcp).text;
  t.match(text, /iifname "sync0" oifname "wan0" ip saddr 172\.16\.1\.2 counter accept/, 'the peer\'s own traffic out');
  t.match(text, /iifname "wan0" oifname "sync0" ip daddr 172\.16\.1\.2 ct state established,related counter accept/, 'answers back, established only');
  t.match(text, /oifname "wan0" ip saddr 172\.16\.1\.2 counter snat ip to 203\.0\.113\.1 /, 'NAT to the leased address');
  const forward = text.slice(text.indexOf('chain forward'), text.indexOf('chain output'));
  t.ok(forward.indexOf('the peer\'s own traffic') < forward.indexOf('nothing is routed from the sync link'), 'before the sync link\'s drops');
  const stat = compile(parseConfigText(readFileSync(path.join(ROOT, 'board/virtual/primary.yaml'), 'utf8'))).text;
  t.notMatch(stat, /peer's own traffic/, 'static: nothing is forwarded from the sync link');
});
