// CARP over IPv6 in the core: the wire format against vectors computed outside the project
// (test/fixtures/carp6-vectors.py, from the BSD HMAC rules), the IPv6 receive checks, dual-stack vhids, pair
// authentication with IPv6 sources, and tshark's decoding of an advert the core built.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Core, type Action } from '../../host/core/core.js';
import { pairKey } from '../../host/daemon/pair.js';
import { advert, checksum, ip6Bytes, ipv4, ipv6, pairTrailer, verifyAdvert } from '../helpers/carp.js';

interface Vector {
  name: string; password: string; vhid: number; vips: string[]; advbase: number; src: string;
  heard: { advskew: number; counter: string; carp: string; packet: string };
  sent: { advskew: number; counter: string; carp: string };
}
const VECTORS: Vector[] = JSON.parse(readFileSync(new URL('../fixtures/carp6-vectors.json', import.meta.url), 'utf8')).vectors;
const hex = (s: string) => Buffer.from(s, 'hex');
const OWN4 = '10.99.0.1';
const OWN6 = 'fe80::99';

function core(vhid: number, password: string, vips: string[], advskew: number, extra: { peer?: string; peer6?: string; pairKey?: Uint8Array } = {}) {
  const c = new Core({ debug: true });
  c.reset([1, 2]);
  c.setEpoch(0x77);
  c.setLinkAddr(0, OWN4);
  c.setLinkAddr6(0, OWN6);
  c.addVhid({ vhid, link: 0, advbase: 1, advskew, password, vips, ...extra });
  c.start(0);
  c.drain();
  return c;
}
const adverts = (as: Action[]) => as.filter((a): a is Extract<Action, { type: 'advert' }> => a.type === 'advert');

t.test('vectors from the BSD rules: the heard IPv6 packet verifies, the next advert matches byte for byte', async (t) => {
  t.equal(VECTORS.length, 4);
  for (const v of VECTORS) {
    // Better configured (skew 0): hearing the worse master starts the preempt handshake with one advert.
    const c = core(v.vhid, v.password, v.vips, v.sent.advskew);
    t.equal(c.handleCarp(10, 0, hex(v.heard.packet)), 'ok', `${v.name}: accepted`);
    const sent = adverts(c.drain());
    const families = v.vips.some((a) => !a.includes(':')) ? [4, 6] : [6];
    t.same(sent.map((a) => a.family), families, `${v.name}: one advert per family with a VIP`);
    for (const a of sent) t.equal(Buffer.from(a.payload).toString('hex'), v.sent.carp, `${v.name}: IPv${a.family} advert`);
    // The independent test codec agrees with the Python vectors (it is what the other tests build with).
    if (!v.name.includes('NOV6LL')) {
      t.equal(advert({ vhid: v.vhid, advskew: v.heard.advskew, advbase: 1, counter: BigInt(`0x${v.heard.counter}`) }, v.password, v.vips).toString('hex'), v.heard.carp);
    }
  }
});

t.test('the link-local rule: without the link-local VIP the HMAC differs, and a VIP with a scope id hashes as without', async (t) => {
  const v = VECTORS[1];
  const c = core(v.vhid, v.password, v.vips.filter((a) => !a.startsWith('fe80')), 0);
  t.equal(c.handleCarp(10, 0, hex(v.heard.packet)), 'bad_hmac', 'the link-local VIP is part of the HMAC input');
  const scoped = core(v.vhid, v.password, v.vips.map((a) => (a === 'fe80::1' ? 'fe80:7::1' : a)), 0);
  t.equal(scoped.handleCarp(10, 0, hex(v.heard.packet)), 'ok', 'bytes 2-3 of a link-local VIP (KAME scope id) are cleared');
});

t.test('IPv6 receive checks: hop limit, next header, length, checksum, own source, wrong key', async (t) => {
  const v = VECTORS[0];
  const carp = hex(v.heard.carp);
  const c = core(v.vhid, v.password, v.vips, 0);
  t.equal(c.handleCarp(1, 0, ipv6(carp, 'fe80::2', { hopLimit: 254 })), 'bad_ttl', 'hop limit 254 (crossed a router)');
  t.equal(c.handleCarp(1, 0, ipv6(carp, 'fe80::2', { nextHeader: 0 })), 'bad_ip', 'an extension header before CARP');
  t.equal(c.handleCarp(1, 0, ipv6(carp, 'fe80::2').subarray(0, 60)), 'short', 'truncated');
  t.equal(c.handleCarp(1, 0, ipv6(carp, 'fe80::2').subarray(0, 39)), 'short', 'not even the IPv6 header');
  const bad = Buffer.from(carp); bad[7] ^= 1;
  t.equal(c.handleCarp(1, 0, ipv6(bad, 'fe80::2')), 'bad_checksum');
  t.equal(c.handleCarp(1, 0, ipv6(carp, OWN6)), 'own_packet', 'our own link-local source');
  const wrong = advert({ vhid: v.vhid, advskew: 100, advbase: 1, counter: 5n }, 'not-the-password', v.vips);
  t.equal(c.handleCarp(1, 0, ipv6(wrong, 'fe80::2')), 'bad_hmac');
  t.same(adverts(c.drain()), [], 'nothing acted on');
  t.equal(c.vhidStatus()[0].state, 'BACKUP');
});

t.test('the master heard over IPv6 shows in status; a bow-out from it makes the backup master at once', async (t) => {
  const vips = ['2001:db8:1::1'];
  const c = core(3, 'pw', vips, 100);
  t.equal(c.handleCarp(500, 0, ipv6(advert({ vhid: 3, advskew: 0, advbase: 1, counter: 1n }, 'pw', vips), 'fe80::2')), 'ok');
  t.equal(c.vhidStatus()[0].masterSrc6, 'fe80::2');
  t.equal(c.vhidStatus()[0].masterSrc, null);
  t.equal(c.handleCarp(900, 0, ipv6(advert({ vhid: 3, advskew: 255, advbase: 255, counter: 2n }, 'pw', vips), 'fe80::5')), 'ok');
  t.equal(c.vhidStatus()[0].state, 'BACKUP', 'a bow-out from another address is not the master leaving');
  t.equal(c.handleCarp(1000, 0, ipv6(advert({ vhid: 3, advskew: 255, advbase: 255, counter: 3n }, 'pw', vips), 'fe80::2')), 'ok');
  const acts = c.drain();
  t.equal(c.vhidStatus()[0].state, 'MASTER', 'the master bowed out');
  t.ok(acts.some((a) => a.type === 'take'), 'VIPs taken');
});

t.test('dual stack: the same header in both families, the second copy counted and not acted on again', async (t) => {
  const vips = ['192.168.1.1', 'fe80::1', '2001:db8:1::1'];
  const c = core(4, 'pw', vips, 100);
  const h = advert({ vhid: 4, advskew: 0, advbase: 1, counter: 77n }, 'pw', vips);
  t.equal(c.handleCarp(10, 0, ipv4(h, '10.99.0.2')), 'ok');
  t.equal(c.handleCarp(10.1, 0, ipv6(h, 'fe80::2')), 'other_family_copy');
  t.equal(c.vhidStatus()[0].masterSrc, '10.99.0.2');
  t.equal(c.vhidStatus()[0].masterSrc6, 'fe80::2', 'the copy teaches the master\'s IPv6 source');
  t.equal(c.stats().accepted, 1);
  t.equal(c.stats().other_family_copy, 1);
  // As master it sends both, the IPv6 one identical but for nothing (no trailer when unpaired).
  c.handleTimeout(20_000);
  const sent = adverts(c.drain());
  t.same(sent.map((a) => a.family), [4, 6]);
  t.same(Buffer.from(sent[0].payload), Buffer.from(sent[1].payload));
  t.same(verifyAdvert(sent[1].payload, 'pw', vips), { checksumOk: true, hmacOk: true });
});

t.test('paired over IPv6: the trailer signs the 16-byte source; only the peer\'s link-local; replays refused', async (t) => {
  const key = pairKey('pair-shared-key-0123456789', 6);
  const vips = ['192.168.1.1', '2001:db8:1::1'];
  const c = core(6, 'pw', vips, 0, { peer: '10.99.0.2', peer6: 'fe80::2', pairKey: key });
  c.handleTimeout(3000);
  const sent = adverts(c.drain());
  t.same(sent.map((a) => [a.family, a.payload.length]), [[4, 60], [6, 60]]);
  const p4 = Buffer.from(sent[0].payload), p6 = Buffer.from(sent[1].payload);
  t.same(p6.subarray(0, 6), p4.subarray(0, 6)); t.same(p6.subarray(8, 36), p4.subarray(8, 36), 'same header and HMAC');
  t.same(p4.subarray(36), pairTrailer(p4, OWN4, key), 'IPv4 trailer over the 4-byte source');
  t.same(p6.subarray(36), pairTrailer(p6, OWN6, key), 'IPv6 trailer over the 16-byte link-local source');
  t.equal(checksum(p6), 0);

  const b = core(6, 'pw', vips, 100, { peer: '10.99.0.2', peer6: 'fe80::2', pairKey: key });
  const signed = (counter: bigint, src: string) => {
    const h = advert({ vhid: 6, advskew: 0, advbase: 1, counter }, 'pw', vips);
    const q = Buffer.concat([h, pairTrailer(h, src, key)]);
    q.writeUInt16BE(0, 6); q.writeUInt16BE(checksum(q), 6);
    return q;
  };
  t.equal(b.handleCarp(10, 0, ipv6(signed(100n, 'fe80::9'), 'fe80::9')), 'not_peer', 'another link-local');
  t.equal(b.handleCarp(10, 0, ipv6(signed(100n, '10.99.0.2'), 'fe80::2')), 'bad_pair_auth', 'signed for the IPv4 source');
  t.equal(b.handleCarp(10, 0, ipv6(signed(100n, 'fe80::2'), 'fe80::2')), 'ok');
  t.equal(b.handleCarp(10, 0, ipv4(signed(100n, '10.99.0.2'), '10.99.0.2')), 'other_family_copy', 'the IPv4 copy');
  t.equal(b.handleCarp(20, 0, ipv6(signed(100n, 'fe80::2'), 'fe80::2')), 'replay', 'the same IPv6 advert again');
  t.equal(b.handleCarp(20, 0, ipv6(signed(99n, 'fe80::2'), 'fe80::2')), 'replay');
  t.equal(b.handleCarp(30, 0, ipv6(signed(101n, 'fe80::2'), 'fe80::2')), 'ok');

  // A vhid paired by its IPv4 address only takes no IPv6 advert: there is no IPv6 peer to accept.
  const v4only = core(6, 'pw', vips, 100, { peer: '10.99.0.2', pairKey: key });
  t.equal(v4only.handleCarp(10, 0, ipv6(signed(100n, 'fe80::2'), 'fe80::2')), 'not_peer');
});

t.test('tshark decodes an IPv6 advert the core built as CARP, checksum good, no expert warning', async (t) => {
  const c = core(9, 'v6-carp-secret', ['2001:db8:1::1', 'fe80::1'], 0);
  c.handleTimeout(3000);
  const adv = adverts(c.drain()).find((a) => a.family === 6);
  if (!adv) throw new Error('no IPv6 advert');
  // Ethernet to 33:33:00:00:00:12 (ff02::12's multicast MAC) from the node's NIC, then the IPv6 packet.
  const frame = Buffer.concat([hex('333300000012' + '020000000099' + '86dd'), ipv6(adv.payload, OWN6)]);
  const pcap = Buffer.alloc(24 + 16);
  pcap.writeUInt32LE(0xa1b2c3d4, 0); pcap.writeUInt16LE(2, 4); pcap.writeUInt16LE(4, 6); pcap.writeUInt32LE(65535, 16); pcap.writeUInt32LE(1, 20);
  pcap.writeUInt32LE(frame.length, 32); pcap.writeUInt32LE(frame.length, 36);
  const dir = mkdtempSync(join(tmpdir(), 'duogate-carp6-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'advert.pcap');
  writeFileSync(file, Buffer.concat([pcap, frame]));
  const out = execFileSync('tshark', ['-r', file, '-d', 'ip.proto==112,carp', '-T', 'fields', '-E', 'separator=,',
    '-e', 'ipv6.nxt', '-e', 'ipv6.hlim', '-e', 'ipv6.dst', '-e', 'carp.version', '-e', 'carp.type', '-e', 'carp.vhid',
    '-e', 'carp.advskew', '-e', 'carp.authlen', '-e', 'carp.checksum.status', '-e', 'carp.hmac', '-e', '_ws.expert'],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  const hmac = Buffer.from(adv.payload.subarray(16, 36)).toString('hex');
  t.equal(out, `112,255,ff02::12,2,1,9,0,7,1,${hmac},`, 'CARP v2 advert, vhid 9, checksum status good (1), no expert info');
  t.ok(ip6Bytes(OWN6)[0] === 0xfe, 'sent from a link-local address');
});

t.test('unsolicited neighbour advertisement: RFC 4861 fields, checksum over the pseudo-header, tshark agrees', async (t) => {
  const c = new Core();
  const mac = hex('02d601010001');
  const na = Buffer.from(c.unsolicitedNa(mac, '2001:db8:1::1'));
  t.equal(na.length, 72, 'IPv6 header + NA + target link-layer address option');
  t.equal(na.readUInt32BE(0) >>> 28, 6);
  t.equal(na.readUInt16BE(4), 32, 'payload length');
  t.same([na[6], na[7]], [58, 255], 'ICMPv6, hop limit 255 (receivers drop anything else)');
  t.same(na.subarray(8, 24), ip6Bytes('2001:db8:1::1'), 'from the VIP');
  t.same(na.subarray(24, 40), ip6Bytes('ff02::1'), 'to all nodes');
  t.same([na[40], na[41]], [136, 0], 'neighbour advertisement');
  t.equal(na.readUInt32BE(44), 0xa0000000, 'Router and Override set, Solicited clear');
  t.same(na.subarray(48, 64), ip6Bytes('2001:db8:1::1'), 'target: the VIP');
  t.same(na.subarray(64, 72), Buffer.concat([Buffer.from([2, 1]), mac]), 'target link-layer address option: the MAC');
  // The ICMPv6 checksum recomputed here: pseudo-header (source, destination, length, next header) + message.
  const pseudo = Buffer.concat([na.subarray(8, 40), Buffer.from([0, 0, 0, 32, 0, 0, 0, 58]), na.subarray(40)]);
  t.equal(checksum(pseudo), 0, 'checksum verifies');

  const frame = Buffer.concat([hex('333300000001'), mac, hex('86dd'), na]);
  const pcap = Buffer.alloc(24 + 16);
  pcap.writeUInt32LE(0xa1b2c3d4, 0); pcap.writeUInt16LE(2, 4); pcap.writeUInt16LE(4, 6); pcap.writeUInt32LE(65535, 16); pcap.writeUInt32LE(1, 20);
  pcap.writeUInt32LE(frame.length, 32); pcap.writeUInt32LE(frame.length, 36);
  const dir = mkdtempSync(join(tmpdir(), 'duogate-na-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'na.pcap');
  writeFileSync(file, Buffer.concat([pcap, frame]));
  const out = execFileSync('tshark', ['-r', file, '-T', 'fields', '-E', 'separator=,', '-e', 'icmpv6.type', '-e', 'icmpv6.nd.na.flag.r',
    '-e', 'icmpv6.nd.na.flag.s', '-e', 'icmpv6.nd.na.flag.o', '-e', 'icmpv6.nd.na.target_address', '-e', 'icmpv6.opt.linkaddr', '-e', 'icmpv6.checksum.status', '-e', '_ws.expert'],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  t.equal(out, '136,1,0,1,2001:db8:1::1,02:d6:01:01:00:01,1,', 'tshark: NA, R=1 S=0 O=1, target and MAC, checksum good, no expert info');
});
