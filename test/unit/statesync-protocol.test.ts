// The sync datagram codec (host/statesync/protocol.ts): round trip, every way a datagram is refused, and the
// shape check that refuses a count or length the payload does not match.
import t from 'tap';
import { Codec, Type, F_BULK_START, HEADER_LEN, TAG_LEN, MAX_DATAGRAM, MAX_PAYLOAD, VERSION, shapeOk, helloPayload } from '../../host/statesync/protocol.js';

const h = { type: Type.DATA, flags: F_BULK_START, session: 0xfedcba9876543210n, peerSession: 0x0123456789abcdefn, pn: 0x1_0000_0007n, seq: 0xffff_fffe, ack: 2, count: 1, extra: 100000 };
const key = Buffer.from('0123456789abcdef-key');
const upsert = () => { const b = Buffer.alloc(48); b[0] = 1; b[1] = 6; return b; };
const del = () => { const b = Buffer.alloc(16); b[0] = 2; b[1] = 17; return b; };

t.test('round trip, 64-bit sessions and packet numbers', async (t) => {
  const c = new Codec(key);
  const p = upsert();
  const r = c.open(c.seal(h, p));
  t.ok(r.ok);
  if (r.ok) { t.same(r.h, h); t.same(r.payload, p); }
  t.equal(VERSION, 2, 'the wire changed with the sessions: version 2');
  t.equal(HEADER_LEN + MAX_PAYLOAD + TAG_LEN, MAX_DATAGRAM, 'a full datagram fits one Ethernet MTU');
  t.ok(Math.floor(MAX_PAYLOAD / 48) >= 29, 'a full DATA message still carries 29 states');
});

t.test('refusals', async (t) => {
  const c = new Codec(key);
  const d = c.seal(h, upsert());
  const flip = (i: number) => { const x = Buffer.from(d); x[i] ^= 1; return x; };
  t.match(new Codec(Buffer.from('another-key-0123456')).open(d), { ok: false, why: 'auth' }, 'wrong key');
  for (const i of [2, 5, 20, 27, 28, 32, 36, 40, 50, d.length - 1]) t.match(c.open(flip(i)), { ok: false, why: 'auth' }, `bit flipped at ${i}`);
  t.match(c.open(flip(0)), { ok: false, why: 'magic' });
  t.match(c.open(flip(1)), { ok: false, why: 'version' });
  const v1 = Buffer.from(d); v1[1] = 1;
  t.match(c.open(v1), { ok: false, why: 'version' }, 'a version 1 datagram is not spoken');
  t.match(c.open(d.subarray(0, d.length - 1)), { ok: false, why: 'length' }, 'truncated');
  t.match(c.open(Buffer.concat([d, Buffer.alloc(1)])), { ok: false, why: 'length' }, 'trailing bytes');
  t.match(c.open(d.subarray(0, 20)), { ok: false, why: 'short' });
  const big = c.seal({ ...h, count: 0 }, Buffer.alloc(MAX_PAYLOAD + 16));
  t.match(c.open(big), { ok: false, why: 'length' }, 'longer than one MTU, even with a valid tag');
});

t.test('a count or length that lies is refused (shapeOk)', async (t) => {
  const items = Buffer.concat([upsert(), del(), upsert()]);
  t.ok(shapeOk({ ...h, count: 3 }, items), 'three whole items, count 3');
  t.notOk(shapeOk({ ...h, count: 4 }, items), 'count says more items than the payload holds');
  t.notOk(shapeOk({ ...h, count: 2 }, items), 'count says fewer');
  t.notOk(shapeOk({ ...h, count: 65535 }, items), 'count at its maximum');
  t.notOk(shapeOk({ ...h, count: 3 }, items.subarray(0, items.length - 1)), 'last item cut short');
  t.notOk(shapeOk({ ...h, count: 3 }, Buffer.concat([items, Buffer.alloc(3)])), 'trailing bytes after the items');
  const badOp = Buffer.from(items); badOp[48] = 9;
  t.notOk(shapeOk({ ...h, count: 3 }, badOp), 'an unknown op: its length is unknown');
  t.ok(shapeOk({ ...h, count: 0 }, Buffer.alloc(0)), 'an empty DATA (bulk markers)');
  t.ok(shapeOk({ ...h, type: Type.HELLO, count: 0 }, helloPayload(1n, 2n)), 'HELLO: nonce and echo');
  t.notOk(shapeOk({ ...h, type: Type.HELLO, count: 0 }, Buffer.alloc(8)), 'HELLO too short');
  t.notOk(shapeOk({ ...h, type: Type.HELLO, count: 1 }, helloPayload(1n, 2n)), 'HELLO with a count');
  t.ok(shapeOk({ ...h, type: Type.ACK, count: 0 }, Buffer.alloc(0)), 'ACK: empty');
  t.notOk(shapeOk({ ...h, type: Type.ACK, count: 0 }, upsert()), 'ACK with a payload');
  t.notOk(shapeOk({ ...h, type: 9, count: 0 }, Buffer.alloc(0)), 'unknown type');
});
