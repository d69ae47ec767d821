// CARP advert codec against the captured test vectors of carp.md §2.4 and an independent node:crypto HMAC.
import t from 'tap';
import { Core } from '../../host/core/core.js';
import { advert, checksum, ipv4, pairTrailer, verifyAdvert } from '../helpers/carp.js';
import { pairKey } from '../../host/daemon/pair.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function core(vhid: number, password: string, vips: string[], advskew: number, advbase = 1) {
  const c = new Core({ debug: true });
  c.reset([1, 2]);
  c.setLinkAddr(0, '10.99.0.1');
  c.addVhid({ vhid, link: 0, advbase, advskew, password, vips });
  c.start(0);
  c.drain();
  return c;
}

t.test('captured ucarp adverts verify (TV1, TV2, TV3)', async (t) => {
  const tv = [
    { vhid: 7, pw: 'secret', vip: '10.99.0.100', skew: 0, base: 1, carp: '21 07 00 07 00 01 3a c7 fa 36 44 b1 9e 91 f7 19 ea 90 78 f2 fb 21 ea 82 cd 8a c5 0f 6c 6f c7 cc e8 db d6 ba' },
    { vhid: 42, pw: 'Tr1ckyP@ss', vip: '10.99.0.254', skew: 100, base: 1, carp: '212a6407000167415be5be6bf042ca451021e8b373a1d947e94df41fc7502f2ca1f58313' },
    { vhid: 200, pw: 'abcdefghijklmnopqrs', vip: '192.168.50.10', skew: 17, base: 3, carp: '21c811070003e03a870ae3065f2f099f3120497f77d3a8a6c3248b818f0ea88a5f8f992a' },
  ];
  for (const v of tv) {
    // Our node is configured worse (skew 200) so the advert is simply followed.
    const c = core(v.vhid, v.pw, [v.vip], 200, v.base);
    t.equal(c.handleCarp(10, 0, ipv4(hex(v.carp), '10.99.0.2')), 'ok', `vhid ${v.vhid} accepted`);
    t.equal(c.stats().accepted, 1);
    // The independent codec reproduces the capture byte for byte.
    const b = hex(v.carp);
    t.same(advert({ vhid: v.vhid, advskew: v.skew, advbase: v.base, counter: b.subarray(8, 16) }, v.pw, [v.vip]), b);
  }
});

t.test('TV2 next sender: after hearing ...ce086 a better node sends ...ce087, byte for byte', async (t) => {
  const pw = 'Tr1ckyP@ss';
  const c = core(42, pw, ['10.99.0.254'], 0);
  const heard = advert({ vhid: 42, advskew: 100, advbase: 1, counter: 0xbc5070a6233ce086n }, pw, ['10.99.0.254']);
  t.equal(c.handleCarp(100, 0, ipv4(heard, '10.99.0.2')), 'ok');
  const sent = c.drain().filter((a) => a.type === 'advert');
  t.equal(sent.length, 1, 'the preempting backup advertises at once');
  t.equal(Buffer.from(sent[0].type === 'advert' ? sent[0].payload : []).toString('hex'),
    '212a00070001a7b0bc5070a6233ce087edfea2d7691ecf3939ddaedaa9a82cbb5fa31e74');
});

t.test('CV1: two VIPs are sorted into the HMAC input', async (t) => {
  const want = hex('210a64070001a1460102030405060708b1b7238b62b79ec50203fe11a2bc4a274db0b829');
  const c = core(10, 'pfsense', ['192.168.1.1', '10.0.0.1'], 200);
  t.equal(c.handleCarp(1, 0, ipv4(want, '10.99.0.2')), 'ok');
  t.same(advert({ vhid: 10, advskew: 100, advbase: 1, counter: 0x0102030405060708n }, 'pfsense', ['10.0.0.1', '192.168.1.1']), want);
});

t.test('adverts the core builds verify independently, and a longer password is cut at 19 bytes', async (t) => {
  const pw = 'a-password-much-longer-than-nineteen';
  const c = core(5, pw, ['192.168.1.1'], 50);
  c.handleTimeout(10_000); // master-down → MASTER, advert
  const adv = c.drain().find((a) => a.type === 'advert');
  t.ok(adv);
  if (adv?.type !== 'advert') return;
  t.same(verifyAdvert(adv.payload, pw.slice(0, 19), ['192.168.1.1']), { checksumOk: true, hmacOk: true });
  t.equal(adv.payload[0], 0x21); t.equal(adv.payload[1], 5); t.equal(adv.payload[2], 50); t.equal(adv.payload[3], 7); t.equal(adv.payload[5], 1);
});

t.test('gratuitous ARP bytes', async (t) => {
  const c = new Core();
  const g = c.garp(Uint8Array.from([2, 0, 0, 0, 0, 1]), '192.168.1.1');
  t.equal(Buffer.from(g).toString('hex'), '0001080006040001' + '020000000001' + 'c0a80101' + '000000000000' + 'c0a80101');
});

t.test('paired adverts: the standard 36 bytes, then the pair trailer, byte for byte as docs/security.md computes it', async (t) => {
  const key = pairKey('pair-shared-key-0123456789', 7);
  t.equal(Buffer.from(key).toString('hex'),
    (await import('node:crypto')).createHmac('sha256', 'pair-shared-key-0123456789').update('duogate carp pair v1 vhid 7').digest().subarray(0, 20).toString('hex'),
    'trailer key: HMAC-SHA256(shared key, "duogate carp pair v1 vhid <n>") cut to 20 bytes');
  const c = new Core({ debug: true });
  c.reset([1, 2]);
  c.setEpoch(0x1234);
  c.setLinkAddr(0, '10.99.0.1');
  c.addVhid({ vhid: 7, link: 0, advbase: 1, advskew: 0, password: 'secret', vips: ['10.99.0.100'], peer: '10.99.0.2', pairKey: key });
  c.start(0);
  c.drain();
  c.handleTimeout(3000);
  const sent = c.drain().find((a) => a.type === 'advert');
  if (!sent || sent.type !== 'advert') throw new Error('no advert');
  const p = Buffer.from(sent.payload);
  t.equal(p.length, 60, '36 + 24 bytes');
  t.equal(p.readBigUInt64BE(8), (0x1234n << 32n) + 1n, 'counter = epoch << 32 | 1 (not random, not adopted)');
  t.same(verifyAdvert(p.subarray(0, 36), 'secret', ['10.99.0.100']).hmacOk, true, 'the standard CARP HMAC is intact');
  t.same(p.subarray(36), pairTrailer(p, '10.99.0.1', key), 'the trailer matches the independent computation');
  t.equal(checksum(p), 0, 'the checksum covers the whole 60-byte payload');
});

t.test('paired receive: only the peer, only with a valid trailer, only fresh counters', async (t) => {
  const key = pairKey('pair-shared-key-0123456789', 7);
  const c = new Core({ debug: true });
  c.reset([1, 2]);
  c.setLinkAddr(0, '10.99.0.1');
  c.addVhid({ vhid: 7, link: 0, advbase: 1, advskew: 200, password: 'secret', vips: ['10.99.0.100'], peer: '10.99.0.2', pairKey: key });
  c.start(0);
  c.drain();
  const signed = (counter: bigint, src = '10.99.0.2', skew = 0) => {
    const h = advert({ vhid: 7, advskew: skew, advbase: 1, counter }, 'secret', ['10.99.0.100']);
    const p = Buffer.concat([h, pairTrailer(h, src, key)]);
    p.writeUInt16BE(0, 6); p.writeUInt16BE(checksum(p), 6);
    return p;
  };
  t.equal(c.handleCarp(10, 0, ipv4(signed(100n), '10.99.0.9')), 'not_peer', 'another source');
  t.equal(c.handleCarp(10, 0, ipv4(advert({ vhid: 7, advskew: 0, advbase: 1, counter: 100n }, 'secret', ['10.99.0.100']), '10.99.0.2')), 'no_pair_auth', 'a plain advert');
  t.equal(c.handleCarp(10, 0, ipv4(signed(100n, '10.99.0.9'), '10.99.0.2')), 'bad_pair_auth', 'signed for another source');
  const edited = signed(100n); edited[2] = 10; edited.writeUInt16BE(0, 6); edited.writeUInt16BE(checksum(edited), 6);
  t.equal(c.handleCarp(10, 0, ipv4(edited, '10.99.0.2')), 'bad_pair_auth', 'advskew rewritten');
  t.equal(c.handleCarp(10, 0, ipv4(signed(100n), '10.99.0.2')), 'ok', 'genuine');
  t.equal(c.handleCarp(20, 0, ipv4(signed(100n), '10.99.0.2')), 'replay', 'the same counter again');
  t.equal(c.handleCarp(20, 0, ipv4(signed(99n), '10.99.0.2')), 'replay', 'an older counter');
  t.equal(c.handleCarp(30, 0, ipv4(signed(101n), '10.99.0.2')), 'ok', 'the next counter');
  const st = c.stats();
  t.same([st.not_peer, st.no_pair_auth, st.bad_pair_auth, st.replay, st.accepted], [1, 1, 2, 2, 2]);
});
