// The core's ctnetlink codec and state table (assembly/conntrack, assembly/statesync) against messages
// laid out as the kernel sends them (statesync.md §3.8), without a kernel: parse, diff, coalesce, encode,
// apply, and the exact requests built for the peer's kernel.
import t from 'tap';
import { SyncCore } from '../../host/statesync/core.js';
import { be16, be32, enc, ip4, nest, nlmsg, tuple, u8, type Attr } from '../helpers/netlink.js';

function msg(type: number, flags: number, pid: number, attrs: Attr[], seq = 1): Buffer {
  return nlmsg(type, flags, seq, pid, Buffer.concat([Buffer.from([2, 0, 0, 0]), ...attrs.map(enc)]));
}

interface Ct { src: string; dst: string; sp: number; dp: number; nat?: [string, number]; status?: number; state?: number; ws?: number; flags?: number; timeout?: number; proto?: number }
/** A conntrack entry as the kernel dumps or reports it (NAT already applied to the reply tuple). */
function ctMsg(c: Ct, opts: { type?: number; flags?: number; pid?: number } = {}): Buffer {
  const [rdst, rdp] = c.nat ?? [c.src, c.sp];
  const attrs: Attr[] = [
    tuple(1, c.src, c.dst, c.sp, c.dp, c.proto ?? 6), tuple(2, c.dst, rdst, c.dp, rdp, c.proto ?? 6),
    be32(3, c.status ?? (c.nat ? 0x19e : 0x18e)), be32(8, 0), be32(12, 0x57c97af4), be32(11, 1), be32(7, c.timeout ?? 299),
  ];
  if ((c.proto ?? 6) === 6) attrs.push(nest(4, [nest(1, [u8(1, c.state ?? 3), u8(2, c.ws ?? 7), u8(3, c.ws ?? 7),
    { type: 4, data: Buffer.from([c.flags ?? 0x23, 0]) }, { type: 5, data: Buffer.from([c.flags ?? 0x23, 0]) }])]));
  return msg(opts.type ?? 0x100, opts.flags ?? 0x2, opts.pid ?? 0, attrs);
}

// ---- a tiny netlink reader for the requests the core builds ----
interface Parsed { type: number; flags: number; seq: number; attrs: Map<number, Buffer> }
function parseMsgs(b: Uint8Array): Parsed[] {
  const buf = Buffer.from(b);
  const out: Parsed[] = [];
  for (let p = 0; p + 16 <= buf.length;) {
    const len = buf.readUInt32LE(p);
    const attrs = new Map<number, Buffer>();
    for (let q = p + 20; q + 4 <= p + len;) { const l = buf.readUInt16LE(q); attrs.set(buf.readUInt16LE(q + 2) & 0x3fff, buf.subarray(q + 4, q + l)); q += (l + 3) & ~3; }
    out.push({ type: buf.readUInt16LE(p + 4), flags: buf.readUInt16LE(p + 6), seq: buf.readUInt32LE(p + 8), attrs });
    p += (len + 3) & ~3;
  }
  return out;
}
function attrsOf(b: Buffer): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (let q = 0; q + 4 <= b.length;) { const l = b.readUInt16LE(q); m.set(b.readUInt16LE(q + 2) & 0x3fff, b.subarray(q + 4, q + l)); q += (l + 3) & ~3; }
  return m;
}
function tupleOf(b: Buffer): string {
  const t = attrsOf(b); const ip = attrsOf(t.get(1)!); const pr = attrsOf(t.get(2)!);
  const a = (x: Buffer) => [...x].join('.');
  return `${pr.get(1)![0]} ${a(ip.get(1)!)}:${pr.get(2)!.readUInt16BE()} > ${a(ip.get(2)!)}:${pr.get(3)!.readUInt16BE()}`;
}

function feed(c: SyncCore, m: Buffer, queue: boolean, dump = false): number {
  const rx = c.nlRx(); rx.set(m); return c.x.ssHandleNetlink(1000, m.length, queue ? 1 : 0, dump ? 1 : 0);
}
function batch(c: SyncCore, now = 1000): Buffer { const n = c.x.ssPollBatch(now, 1416, 1); return n ? Buffer.from(c.txBatch()) : Buffer.alloc(0); }
function apply(c: SyncCore, items: Buffer, now = 1000): Parsed[] {
  c.x.ssNlTxReset(); c.peerRx().set(items); c.x.ssApply(now, items.length, 1);
  const out = parseMsgs(c.nlTx()); c.x.ssNlTxReset(); return out;
}

const SNAT: Ct = { src: '10.0.0.2', dst: '198.51.100.7', sp: 40000, dp: 443, nat: ['203.0.113.1', 61000] };

t.test('a dumped TCP+SNAT entry lands in the table as the kernel reported it', async (t) => {
  const c = new SyncCore(1024, { debug: true });
  feed(c, ctMsg(SNAT), true, true);
  const e = c.entries();
  t.equal(e.length, 1);
  t.match(e[0], { proto: 6, src: '10.0.0.2', dst: '198.51.100.7', sport: 40000, dport: 443, replySrc: '198.51.100.7', replyDst: '203.0.113.1', replySport: 443, replyDport: 61000, status: 0x19e, timeout: 299 });
  t.same(e[0].tcp, { state: 3, wscaleOrig: 7, wscaleReply: 7, flagsOrig: 0x23, flagsReply: 0x23 });
  t.equal(c.x.ssQueueLen(), 1, 'queued for the peer');
  t.ok(c.x.ssBytesPerSlot() <= 100, `table costs ${c.x.ssBytesPerSlot()} bytes per state slot`);
});

t.test('create on the peer: un-NATed reply, NAT attributes, CONFIRMED, TCP flags = mask', async (t) => {
  const a = new SyncCore(1024, { debug: true }); const b = new SyncCore(1024, { debug: true });
  feed(a, ctMsg(SNAT), true);
  const items = batch(a);
  t.equal(items.length, 48, 'one 48-byte upsert item');
  const reqs = apply(b, items);
  t.equal(reqs.length, 1);
  const r = reqs[0];
  t.equal(r.type, 0x100, 'CT_NEW'); t.equal(r.flags, 0x0601, 'REQUEST|CREATE|EXCL, no ACK (only failures answer)');
  t.equal(tupleOf(r.attrs.get(1)!), '6 10.0.0.2:40000 > 198.51.100.7:443');
  t.equal(tupleOf(r.attrs.get(2)!), '6 198.51.100.7:443 > 10.0.0.2:40000', 'reply tuple is the plain inverse (un-NATed)');
  t.equal(r.attrs.get(3)!.readUInt32BE(), 0x0e, 'status SEEN_REPLY|ASSURED|CONFIRMED');
  t.ok(r.attrs.get(7)!.readUInt32BE() >= 298, 'timeout carried');
  const nat = attrsOf(r.attrs.get(6)!);
  t.same([...nat.get(1)!], [203, 0, 113, 1], 'NAT_SRC min ip = the WAN VIP');
  const np = attrsOf(nat.get(3)!);
  t.equal(np.get(1)!.readUInt16BE(), 61000); t.equal(np.get(2)!.readUInt16BE(), 61000, 'port min = max');
  t.notOk(r.attrs.has(13), 'no DNAT');
  const tcp = attrsOf(attrsOf(r.attrs.get(4)!).get(1)!);
  t.equal(tcp.get(1)![0], 3, 'ESTABLISHED'); t.equal(tcp.get(2)![0], 7); t.equal(tcp.get(3)![0], 7);
  t.same([...tcp.get(4)!.subarray(0, 2)], [0x0b, 0x0f], 'flags WS|SACK|LIBERAL, mask includes them (MAXACK not copied)');
  t.same([...tcp.get(5)!.subarray(0, 2)], [0x0b, 0x0f]);
});

t.test('updates carry no NAT; a burst coalesces; deletes carry the tuple', async (t) => {
  const a = new SyncCore(1024, { debug: true }); const b = new SyncCore(1024, { debug: true });
  feed(a, ctMsg({ ...SNAT, state: 1, status: 0x198 }), true);
  apply(b, batch(a));
  for (const st of [2, 3, 3]) feed(a, ctMsg({ ...SNAT, state: st }, { flags: 0 }), true);
  const items = batch(a);
  t.equal(items.length, 48, 'three events, one item with the newest contents');
  const [u] = apply(b, items);
  t.equal(u.flags, 0x0001, 'update: REQUEST only');
  t.notOk(u.attrs.has(6), 'no NAT attributes on an update (EOPNOTSUPP)');
  t.equal(attrsOf(attrsOf(u.attrs.get(4)!).get(1)!).get(1)![0], 3);
  t.equal(u.attrs.get(3)!.readUInt32BE(), 0x0e);
  // An unchanged event (timeout only) queues nothing.
  feed(a, ctMsg({ ...SNAT, timeout: 100 }, { flags: 0 }), true);
  t.equal(a.x.ssQueueLen(), 0, 'timeout-only change is not sent');
  feed(a, ctMsg(SNAT, { type: 0x102, flags: 0 }), true);
  const del = batch(a);
  t.equal(del.length, 16, 'one 16-byte delete item');
  const [d] = apply(b, del);
  t.equal(d.type, 0x102); t.equal(tupleOf(d.attrs.get(1)!), '6 10.0.0.2:40000 > 198.51.100.7:443', 'delete by tuple (never a flush)');
  t.equal(b.x.ssCount(), 0); t.equal(a.x.ssCount(), 0, 'sent delete freed the record');
});

t.test('own echoes, ignored addresses and passive mode queue nothing', async (t) => {
  const a = new SyncCore(1024, { debug: true });
  a.x.ssSetOwnPid(4242);
  a.setIgnore(['192.168.1.2'], '172.16.1.0', 30);
  feed(a, ctMsg(SNAT, { flags: 0x600, pid: 4242 }), true);
  feed(a, ctMsg({ src: '172.16.1.1', dst: '172.16.1.2', sp: 7200, dp: 7200, proto: 17 }), true);
  feed(a, ctMsg({ src: '192.168.1.100', dst: '192.168.1.2', sp: 5, dp: 53, proto: 17 }), true);
  t.equal(a.x.ssCount(), 0);
  const s = a.stats();
  t.equal(s.own_echo, 1); t.equal(s.filtered, 2);
  feed(a, ctMsg(SNAT), false);
  t.equal(a.x.ssCount(), 1); t.equal(a.x.ssQueueLen(), 0, 'passive: recorded, not queued');
});

t.test('re-dump diff: entries gone from the kernel become deletes', async (t) => {
  const a = new SyncCore(1024, { debug: true });
  for (let i = 0; i < 10; i++) feed(a, ctMsg({ ...SNAT, sp: 40000 + i }), true, true);
  batch(a);
  a.x.ssDumpBegin();
  for (let i = 0; i < 10; i += 2) feed(a, ctMsg({ ...SNAT, sp: 40000 + i }), true, true);
  t.equal(a.x.ssDumpEnd(1), 5, 'five entries swept');
  const items = batch(a);
  t.equal(items.length, 5 * 16, 'five deletes queued');
  t.equal(a.x.ssCount(), 5);
});

t.test('kernel answers: EEXIST on create → delete + create; ENOENT on update → create; barrier', async (t) => {
  const b = new SyncCore(1024, { debug: true }); const a = new SyncCore(1024, { debug: true });
  feed(a, ctMsg(SNAT), true);
  const [create] = apply(b, batch(a));
  const err = (seq: number, errno: number) => { const m = Buffer.alloc(36); m.writeUInt32LE(36, 0); m.writeUInt16LE(2, 4); m.writeUInt32LE(seq, 8); m.writeInt32LE(-errno, 16); return m; };
  b.x.ssNlTxReset();
  feed(b, err(create.seq, 17), false);
  const fix = parseMsgs(b.nlTx());
  t.same(fix.map((m) => m.type), [0x102, 0x100], 'delete then create');
  t.equal(b.stats().kernel_eexist_fixed, 1);
  b.x.ssNlTxReset();
  feed(b, err((create.seq & ~7) | 2, 2), false);
  t.same(parseMsgs(b.nlTx()).map((m) => m.flags), [0x0601], 'missing on update → create');
  b.x.ssNlTxReset();
  b.x.ssBarrier();
  const [bar] = parseMsgs(b.nlTx());
  t.equal(bar.flags & 0x4, 0x4, 'barrier asks for an ACK');
  feed(b, err(bar.seq, 22), false);
  t.ok(b.barrierAnswered(), 'barrier answered');
});

t.test('table: 100k states, half deleted, every lookup right (open addressing, backward shift)', async (t) => {
  const a = new SyncCore(131072);
  const N = 100_000;
  const chunk: Buffer[] = [];
  let fed = 0;
  const flush = () => { const m = Buffer.concat(chunk); chunk.length = 0; feed(a, m, false, true); };
  for (let i = 0; i < N; i++) {
    chunk.push(ctMsg({ src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: '198.51.100.7', sp: 1024 + (i % 50000), dp: 443, nat: ['203.0.113.1', 1024 + (i % 60000)] }));
    if (chunk.length === 200) { flush(); fed += 200; }
  }
  flush();
  t.equal(a.x.ssCount(), N);
  for (let i = 0; i < N; i += 2) chunk.push(ctMsg({ src: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, dst: '198.51.100.7', sp: 1024 + (i % 50000), dp: 443 }, { type: 0x102, flags: 0 }));
  for (let k = 0; k < chunk.length; k += 200) { const m = Buffer.concat(chunk.slice(k, k + 200)); feed(a, m, false); }
  chunk.length = 0;
  t.equal(a.x.ssCount(), N / 2);
  let wrong = 0;
  for (let i = 0; i < N; i += 97) {
    const e = a.lookup(6, `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, '198.51.100.7', 1024 + (i % 50000), 443);
    if ((e !== null) !== (i % 2 === 1)) wrong++;
  }
  t.equal(wrong, 0, 'present iff not deleted');
  t.ok(fed > 0);
});

t.test('fuzz: random bytes never trap, counters move', async (t) => {
  const a = new SyncCore(1024, { debug: true });
  let seed = 12345;
  const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed; };
  const good = ctMsg(SNAT);
  for (let i = 0; i < 3000; i++) {
    const m = Buffer.from(good);
    for (let k = 0; k < 1 + (rnd() % 8); k++) m[rnd() % m.length] = rnd() & 255;
    if (rnd() % 4 === 0) m.writeUInt32LE(m.length, 0);
    const cut = m.subarray(0, 1 + (rnd() % m.length));
    feed(a, cut, true);
    const items = Buffer.alloc(rnd() % 200); for (let k = 0; k < items.length; k++) items[k] = rnd() & 255;
    if (items.length) { items[0] = 1 + (rnd() % 2); items[1] = [6, 17, 1][rnd() % 3]; }
    apply(a, items);
  }
  const s = a.stats();
  t.ok(s.malformed + s.unsupported + s.rx_bad_items > 0, `drops counted: ${JSON.stringify({ malformed: s.malformed, unsupported: s.unsupported, bad_items: s.rx_bad_items })}`);
});

t.test('timeout refresh: a state is re-sent once the peer would hold less than half its real remaining time', async (t) => {
  const a = new SyncCore(1024, { debug: true });
  const udp: Ct = { src: '192.168.1.100', dst: '203.0.113.10', sp: 5000, dp: 53, proto: 17, nat: ['203.0.113.1', 5000], timeout: 120 };
  const at = (now: number, m: Buffer) => { a.nlRx().set(m); a.x.ssHandleNetlink(now, m.length, 1, 1); };
  at(1000, ctMsg(udp));
  t.equal(a.x.ssPollBatch(1000, 1416, 1), 1, 'sent once');
  at(31000, ctMsg(udp)); // traffic refreshed it to 120 s; the peer's copy has 90 s left
  t.equal(a.x.ssQueueLen(), 0, 'not yet: the peer still has more than half');
  at(95000, ctMsg(udp)); // the peer's copy (from the last observation) has ~56 s left of 120
  t.equal(a.x.ssQueueLen(), 1, 're-sent');
  a.x.ssPollBatch(95000, 1416, 1);
  at(100000, ctMsg({ ...udp, timeout: 300000 }));
  t.equal(a.x.ssQueueLen(), 1, 'a much longer real timeout is re-sent too');
});
