// The receive pipeline: every malformed or hostile advert is dropped, counted under its own reason, and
// changes nothing. Plus a seeded fuzz run: random bytes never trap the core.
import t from 'tap';
import { Core } from '../../host/core/core.js';
import { advert, ipv4 } from '../helpers/carp.js';

const PW = 'secret';
const VIPS = ['192.168.1.1'];

function backup() {
  const c = new Core({ debug: true });
  c.reset([3, 4]);
  c.setLinkAddr(0, '192.168.1.3');
  c.addVhid({ vhid: 1, link: 0, advbase: 1, advskew: 100, password: PW, vips: VIPS });
  c.start(0);
  c.drain();
  return c;
}

// A worse master's advert would make this backup preempt; a valid one changes state, a dropped one must not.
const worse = () => advert({ vhid: 1, advskew: 200, advbase: 1, counter: 77n }, PW, VIPS);

t.test('each hostile input is dropped with its own counter and changes nothing', async (t) => {
  const cases: [string, Buffer][] = [
    ['bad_ttl', ipv4(worse(), '192.168.1.2', { ttl: 254 })],
    ['bad_checksum', (() => { const a = worse(); a[20] ^= 1; return ipv4(a, '192.168.1.2'); })()],
    ['bad_version', (() => { const a = advert({ vhid: 1, advskew: 200, advbase: 1, counter: 77n, version: 3 }, PW, VIPS); return ipv4(a, '192.168.1.2'); })()],
    ['unknown_vhid', ipv4(advert({ vhid: 2, advskew: 200, advbase: 1, counter: 77n }, PW, VIPS), '192.168.1.2')],
    ['bad_hmac', ipv4(advert({ vhid: 1, advskew: 200, advbase: 1, counter: 77n }, 'wrong', VIPS), '192.168.1.2')],
    ['bad_hmac', ipv4(advert({ vhid: 1, advskew: 200, advbase: 1, counter: 77n }, PW, ['192.168.1.9']), '192.168.1.2')],
    ['short', ipv4(worse(), '192.168.1.2').subarray(0, 50)],
    ['short', Buffer.alloc(3)],
    ['bad_ip', ipv4(worse(), '192.168.1.2', { proto: 17 })],
    ['own_packet', ipv4(worse(), '192.168.1.3')],
  ];
  for (const [reason, pkt] of cases) {
    const c = backup();
    t.equal(c.handleCarp(500, 0, pkt), reason, reason);
    t.equal(c.stats()[reason], 1, `${reason} counted`);
    t.equal(c.drain().length, 0, `${reason}: no action`);
    t.equal(c.vhidStatus()[0].state, 'BACKUP');
    t.equal(c.vhidStatus()[0].masterHeardAt, -1, `${reason}: not taken as a master`);
  }
  // A forged advert with a truncated IP total length field is short too.
  const c = backup();
  const p = ipv4(worse(), '192.168.1.2'); p.writeUInt16BE(40, 2);
  t.equal(c.handleCarp(1, 0, p), 'short');
  // The valid one does act: control for the cases above.
  const ok = backup();
  t.equal(ok.handleCarp(500, 0, ipv4(worse(), '192.168.1.2')), 'ok');
  t.ok(ok.drain().some((a) => a.type === 'advert'), 'a valid worse advert triggers the preempt handshake');
});

t.test('our own advert looped back by a switch is dropped', async (t) => {
  const c = backup();
  c.handleTimeout(10_000);
  const mine = c.drain().find((a) => a.type === 'advert');
  if (mine?.type !== 'advert') return t.fail('no advert');
  // Even from another source address (a NAT-ing or odd vswitch), the counter gives it away.
  t.equal(c.handleCarp(10_001, 0, ipv4(mine.payload, '192.168.1.2')), 'own_packet');
  t.equal(c.vhidStatus()[0].state, 'MASTER');
});

t.test('fuzz: 20,000 random and mutated datagrams never trap and every one is counted', async (t) => {
  const c = backup();
  let seed = 0x1234567;
  const rnd = () => { seed = (seed * 1664525 + 1013904223) >>> 0; return seed; };
  const base = ipv4(worse(), '192.168.1.2');
  for (let i = 0; i < 20_000; i++) {
    let pkt: Buffer;
    if (i % 2) {
      pkt = Buffer.alloc(rnd() % 120);
      for (let j = 0; j < pkt.length; j++) pkt[j] = rnd() & 255;
      if (pkt.length > 0 && i % 4 === 1) pkt[0] = 0x45;
    } else {
      pkt = Buffer.from(base);
      const flips = 1 + (rnd() % 4);
      for (let k = 0; k < flips; k++) pkt[rnd() % pkt.length] ^= 1 << (rnd() % 8);
    }
    c.handleCarp(1000 + i, 0, pkt);
    c.drain();
  }
  const s = c.stats();
  const total = Object.entries(s).filter(([k]) => !['sent', 'transitions', 'queue_overflow'].includes(k)).reduce((a, [, v]) => a + v, 0);
  t.equal(total, 20_000, 'accepted + every drop reason add up to what was fed');
  t.ok(s.bad_checksum > 0 && s.short > 0 && s.bad_ip > 0);
});
