// The peer heartbeat (host/peer/codec.ts) and the pair-health alarm rules (host/peer/alarms.ts), in virtual
// time: split brain only beyond one advert interval, sync link down only while the peer is seen elsewhere,
// peer lost only after the start-up grace, and every alarm clears when its cause goes.
import t from 'tap';
import { decode, encode, type Heartbeat } from '../../host/peer/codec.js';
import { AlarmTracker, type Observation, type OwnVhid } from '../../host/peer/alarms.js';

const KEY = 'a-test-key-of-enough-length';
const hb = (over: Partial<Heartbeat> = {}): Heartbeat => ({
  node: 'gw-b', boot: '0011223344556677', seq: 1, at: 1_700_000_000_000, path: 'sync',
  vips: [{ vhid: 1, state: 'MASTER', demote: 0 }], maintenance: false, alarms: [], ...over,
});

t.test('codec: round trip, and every kind of damage is a counted drop reason, never a throw', async (t) => {
  const buf = encode(hb(), KEY);
  const r = decode(buf, KEY);
  t.ok(r.ok);
  if (r.ok) t.same(r.hb, hb());
  t.same(decode(buf, 'another-key-of-enough-len'), { ok: false, reason: 'bad_hmac' }, 'wrong key');
  const flipped = Buffer.from(buf); flipped[12] ^= 1;
  t.same(decode(flipped, KEY), { ok: false, reason: 'bad_hmac' }, 'one bit flipped in the body');
  t.same(decode(buf.subarray(0, 20), KEY), { ok: false, reason: 'short' });
  t.same(decode(Buffer.alloc(9000), KEY), { ok: false, reason: 'short' }, 'oversize');
  const magic = Buffer.from(buf); magic[0] = 0x58;
  t.same(decode(magic, KEY), { ok: false, reason: 'bad_magic' });
  const ver = Buffer.from(buf); ver[4] = 2;
  t.same(decode(ver, KEY), { ok: false, reason: 'bad_version' });
  // Authentic but not a heartbeat: the sender has the key but a different idea of the format.
  const { createHmac } = await import('node:crypto');
  for (const body of ['{not json', JSON.stringify({ ...hb(), vips: [{ vhid: 1, state: 'LEADER', demote: 0 }] }), JSON.stringify({ ...hb(), seq: 1.5 })]) {
    const head = Buffer.concat([Buffer.from('DGHB'), Buffer.from([1]), Buffer.from(body)]);
    t.same(decode(Buffer.concat([head, createHmac('sha256', KEY).update(head).digest()]), KEY), { ok: false, reason: 'malformed' }, body.slice(0, 30));
  }
  // Seeded random garbage: never throws.
  let x = 7;
  for (let i = 0; i < 500; i++) {
    const b = Buffer.alloc(1 + (i % 300));
    for (let j = 0; j < b.length; j++) { x = (x * 1103515245 + 12345) & 0x7fffffff; b[j] = x & 0xff; }
    if (i % 3 === 0) b.write('DGHB\x01', 0, 'latin1');
    t.doesNotThrow(() => decode(b, KEY));
  }
});

const own = (state: string, over: Partial<OwnVhid> = {}): OwnVhid => ({ vhid: 1, state, advertMs: 1000, addresses: ['192.168.1.1/24'], masterHeardAgoS: null, ...over });
function obs(now: number, over: Partial<Observation> = {}): Observation {
  return { now, own: [own('MASTER')], lastSync: now, lastLan: now, peerStates: new Map([[1, 'BACKUP']]), peerName: 'gw-b', deadMs: 1500, startedAt: 0, ...over };
}
const keys = (tr: AlarmTracker) => tr.list().map((a) => a.key).sort();

t.test('split brain: raised beyond one advert interval of dual MASTER, not for a preemption overlap', async (t) => {
  const tr = new AlarmTracker();
  tr.update(obs(2000));
  const both = new Map([[1, 'MASTER' as const]]);
  // A preemption: both MASTER for 400 ms, then the old master steps down.
  t.same(tr.update(obs(3000, { peerStates: both })), []);
  t.same(tr.update(obs(3400, { peerStates: both })), []);
  t.same(tr.update(obs(3500)), []);
  t.same(keys(tr), []);
  // A real split: both MASTER for longer than advbase + skew/256 (here 1000 ms).
  tr.update(obs(5000, { peerStates: both }));
  t.same(tr.update(obs(6000, { peerStates: both })), [], 'exactly one interval: not yet');
  const up = tr.update(obs(6001, { peerStates: both }));
  t.same(up.map((c) => [c.alarm.key, c.active]), [['split_brain:1', true]]);
  t.match(up[0].alarm.message, /both MASTER for vhid 1 \(192\.168\.1\.1\/24\)/);
  t.same(tr.update(obs(6500, { peerStates: both })), [], 'raised once');
  // The peer's view gets stale (heartbeats stop): no claim about the peer any more.
  const down = tr.update(obs(9000, { peerStates: both, lastSync: 6500, lastLan: 6500 }));
  t.same(down.map((c) => [c.alarm.key, c.active]), [['split_brain:1', false], ['peer_lost', true]]);
});

t.test('sync link down: only while the peer is seen on the LAN (heartbeat or CARP adverts)', async (t) => {
  const tr = new AlarmTracker();
  t.same(tr.update(obs(1000, { lastSync: null, lastLan: null })), [], 'no silence alarm during the start-up grace');
  // Sync silent, LAN heartbeat fresh.
  let c = tr.update(obs(5000, { lastSync: 3000, lastLan: 4900 }));
  t.same(c.map((x) => [x.alarm.key, x.active]), [['sync_link_down', true]]);
  t.match(c[0].alarm.message, /alive on the LAN \(heartbeat\)/);
  c = tr.update(obs(5100));
  t.same(c.map((x) => [x.alarm.key, x.active]), [['sync_link_down', false]], 'cleared by a sync heartbeat');
  // No LAN heartbeat path, but this node is BACKUP and hears the master's adverts.
  const tr2 = new AlarmTracker();
  c = tr2.update(obs(5000, { lastSync: null, lastLan: null, own: [own('BACKUP', { masterHeardAgoS: 0.4 })] }));
  t.same(c.map((x) => [x.alarm.key, x.active]), [['sync_link_down', true]]);
  t.match(c[0].alarm.message, /\(CARP adverts\)/);
  // Adverts stop too: the peer is gone, not just the sync link.
  c = tr2.update(obs(9000, { lastSync: null, lastLan: null, own: [own('MASTER', { masterHeardAgoS: 4 })] }));
  t.same(c.map((x) => [x.alarm.key, x.active]), [['sync_link_down', false], ['peer_lost', true]]);
  t.match(c[1].alarm.message, /never heard/);
});

t.test('peer lost clears when the peer is heard again', async (t) => {
  const tr = new AlarmTracker();
  tr.update(obs(10_000, { lastSync: 2000, lastLan: 2000 }));
  t.same(keys(tr), ['peer_lost']);
  t.match(tr.list()[0].message, /silent for 8 s/);
  t.same(tr.update(obs(10_500)).map((x) => [x.alarm.key, x.active]), [['peer_lost', false]]);
  t.same(keys(tr), []);
});
