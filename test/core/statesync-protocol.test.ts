// The sync datagram codec (host/statesync/protocol.ts): round trip, and every way a datagram is refused.
import t from 'tap';
import { Codec, Type, F_BULK_START, HEADER_LEN, TAG_LEN, MAX_DATAGRAM, MAX_PAYLOAD } from '../../host/statesync/protocol.js';

const h = { type: Type.DATA, flags: F_BULK_START, session: 1764130000123, peerSession: 1764130000999, pn: 7, seq: 3, ack: 2, count: 1, extra: 100000 };
const key = Buffer.from('0123456789abcdef-key');

t.test('round trip', async (t) => {
  const c = new Codec(key);
  const p = Buffer.alloc(48, 0xab);
  const r = c.open(c.seal(h, p));
  t.ok(r.ok);
  if (r.ok) { t.same(r.h, h); t.same(r.payload, p); }
  t.equal(HEADER_LEN + MAX_PAYLOAD + TAG_LEN, MAX_DATAGRAM, 'a full datagram fits one Ethernet MTU');
});

t.test('refusals', async (t) => {
  const c = new Codec(key);
  const d = c.seal(h, Buffer.alloc(48, 1));
  const flip = (i: number) => { const x = Buffer.from(d); x[i] ^= 1; return x; };
  t.match(new Codec(Buffer.from('another-key-0123456')).open(d), { ok: false, why: 'auth' }, 'wrong key');
  for (const i of [2, 5, 20, 24, 28, 36, 50, d.length - 1]) t.match(c.open(flip(i)), { ok: false, why: 'auth' }, `bit flipped at ${i}`);
  t.match(c.open(flip(0)), { ok: false, why: 'magic' });
  t.match(c.open(flip(1)), { ok: false, why: 'version' });
  t.match(c.open(d.subarray(0, d.length - 1)), { ok: false, why: 'length' }, 'truncated');
  t.match(c.open(Buffer.concat([d, Buffer.alloc(1)])), { ok: false, why: 'length' }, 'trailing bytes');
  t.match(c.open(d.subarray(0, 20)), { ok: false, why: 'short' });
});
