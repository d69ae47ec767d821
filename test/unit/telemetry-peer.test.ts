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

/** Drive the tracker every 100 ms from `from` to `to`; returns [time, key, active] of every change. */
function run(tr: AlarmTracker, from: number, to: number, at: (t: number) => Partial<Observation>): [number, string, boolean][] {
  const out: [number, string, boolean][] = [];
  for (let t = from; t <= to; t += 100) for (const c of tr.update(obs(t, at(t)))) out.push([t, c.alarm.key, c.active]);
  return out;
}
/** Last heartbeat at or before t on a path that sends every 500 ms from `start` until `stop`. */
const hbAt = (t: number, start: number, stop = Infinity) => (t < start ? null : Math.floor((Math.min(t, stop) - start) / 500) * 500 + start);

t.test('sync link down: raised when only the sync path dies, with the peer still on the LAN', async (t) => {
  const tr = new AlarmTracker();
  // Healthy until 5000, then the sync heartbeats stop; the LAN heartbeats go on.
  const ch = run(tr, 0, 9000, (n) => ({ lastSync: hbAt(n, 0, 5000), lastLan: hbAt(n, 0) }));
  t.same(ch, [[7000, 'sync_link_down', true]], 'raised once the peer was heard on the LAN more than a dead interval (1.5 s) after the last sync heartbeat');
  t.match(tr.list()[0].message, /alive on the LAN \(heartbeat\)/);
  t.same(run(tr, 9100, 9500, (n) => ({ lastSync: hbAt(n, 9100), lastLan: hbAt(n, 0) })), [[9100, 'sync_link_down', false]], 'cleared by the next sync heartbeat');
  // Without the LAN heartbeat path: a BACKUP still sees the master's CARP adverts (one a second).
  const tr2 = new AlarmTracker();
  const ch2 = run(tr2, 0, 10_000, (n) => ({ lastSync: hbAt(n, 0, 6000), lastLan: null, own: [own('BACKUP', { masterHeardAgoS: (n % 1000) / 1000 })] }));
  t.same(ch2, [[8000, 'sync_link_down', true]]);
  t.match(tr2.list()[0].message, /\(CARP adverts\)/);
});

t.test('a power cut stops both paths together: peer lost, never sync link down', async (t) => {
  const tr = new AlarmTracker();
  // The peer is MASTER: its adverts every second (last one at 9000), heartbeats on both paths until 9800.
  const ch = run(tr, 0, 16_000, (n) => ({
    lastSync: hbAt(n, 0, 9800), lastLan: hbAt(n, 0, 9800),
    own: [own('BACKUP', { masterHeardAgoS: (n - Math.min(Math.floor(n / 1000) * 1000, 9000)) / 1000 })],
  }));
  t.same(ch, [[12_200, 'peer_lost', true]], 'peer lost once the adverts are 3 intervals old; no sync_link_down on the way');
  t.match(tr.list()[0].message, /silent for 3 s/);
});

t.test('a peer booting is heard on the LAN before its first heartbeat: no alarm for that', async (t) => {
  const tr = new AlarmTracker();
  // Peer gone since 0 (never heard); at 20 000 its adverts start, at 20 700 its heartbeats (services start after CARP).
  const ch = run(tr, 0, 30_000, (n) => ({
    lastSync: hbAt(n, 20_700), lastLan: hbAt(n, 20_700),
    own: [own('BACKUP', { masterHeardAgoS: n < 20_000 ? null : (n % 1000) / 1000 })],
  }));
  t.same(ch, [[5100, 'peer_lost', true], [20_000, 'peer_lost', false]], 'only peer_lost during the absence (after the start-up grace)');
});

t.test('peer lost clears when the peer is heard again', async (t) => {
  const tr = new AlarmTracker();
  tr.update(obs(10_000, { lastSync: 2000, lastLan: 2000 }));
  t.same(keys(tr), ['peer_lost']);
  t.match(tr.list()[0].message, /silent for 8 s/);
  t.same(tr.update(obs(10_500)).map((x) => [x.alarm.key, x.active]), [['peer_lost', false]]);
  t.same(keys(tr), []);
});
