// IPv6 conntrack entries in state sync (issue #16): the core parses AF_INET6 ctnetlink messages as the kernel
// writes them, keeps them in the IPv6 table, sends them as upsert6/delete6 items, and builds AF_INET6 requests for
// the peer's kernel; the gateway's own IPv6 traffic and IPv6 NAT are never sent nor taken; an IPv4 item is
// unchanged; and IPv6 items go only to a peer whose HELLO announced CAP_V6 (a peer of the previous release drops
// a datagram with an op it does not know, unacknowledged, and the link would stall).
import t from 'tap';
import { SyncCore } from '../../host/statesync/core.js';
import { Codec, F_CAP_V6, Type, shapeOk, type Header } from '../../host/statesync/protocol.js';
import { be32, enc, nest, nlmsg, tuple, tuple6, u8, type Attr } from '../helpers/netlink.js';
import { SyncPair, prng } from '../helpers/syncpair.js';
import { rxPolicyOf } from '../../host/statesync/policy.js';

interface Ct6 { src: string; dst: string; sp: number; dp: number; proto?: number; reply?: [string, string, number, number]; state?: number; status?: number; timeout?: number }
/** An IPv6 entry as the kernel dumps it or reports it in an event (nfgenmsg family 10, CTA_IP_V6_SRC/DST). */
function ct6(c: Ct6, opts: { type?: number; flags?: number; pid?: number } = {}): Buffer {
  const proto = c.proto ?? 6;
  const [rs, rd, rsp, rdp] = c.reply ?? [c.dst, c.src, proto === 58 ? c.sp : c.dp, proto === 58 ? 129 : c.sp];
  const attrs: Attr[] = [tuple6(1, c.src, c.dst, c.sp, c.dp, proto), tuple6(2, rs, rd, rsp, rdp, proto),
    be32(3, c.status ?? 0x18e), be32(8, 0), be32(12, 0x57c97af4), be32(11, 1), be32(7, c.timeout ?? 299)];
  if (proto === 6) attrs.push(nest(4, [nest(1, [u8(1, c.state ?? 3), u8(2, 7), u8(3, 7),
    { type: 4, data: Buffer.from([0x23, 0]) }, { type: 5, data: Buffer.from([0x23, 0]) }])]));
  return nlmsg(opts.type ?? 0x100, opts.flags ?? 0x2, 1, opts.pid ?? 0, Buffer.concat([Buffer.from([10, 0, 0, 0]), ...attrs.map(enc)]));
}
function ct4(src: string, dst: string, sp: number, dp: number): Buffer {
  const attrs: Attr[] = [tuple(1, src, dst, sp, dp), tuple(2, dst, src, dp, sp), be32(3, 0x18e), be32(7, 299)];
  return nlmsg(0x100, 0x2, 1, 0, Buffer.concat([Buffer.from([2, 0, 0, 0]), ...attrs.map(enc)]));
}

interface Parsed { type: number; flags: number; seq: number; family: number; attrs: Map<number, Buffer> }
function attrsOf(b: Buffer): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (let q = 0; q + 4 <= b.length;) { const l = b.readUInt16LE(q); m.set(b.readUInt16LE(q + 2) & 0x3fff, b.subarray(q + 4, q + l)); q += (l + 3) & ~3; }
  return m;
}
function parseMsgs(b: Uint8Array): Parsed[] {
  const buf = Buffer.from(b); const out: Parsed[] = [];
  for (let p = 0; p + 16 <= buf.length;) {
    const len = buf.readUInt32LE(p);
    out.push({ type: buf.readUInt16LE(p + 4), flags: buf.readUInt16LE(p + 6), seq: buf.readUInt32LE(p + 8), family: buf[p + 16]!, attrs: attrsOf(buf.subarray(p + 20, p + len)) });
    p += (len + 3) & ~3;
  }
  return out;
}
const hex = (b: Buffer) => b.toString('hex');
function tuple6Of(b: Buffer): string {
  const t = attrsOf(b); const ip = attrsOf(t.get(1)!); const pr = attrsOf(t.get(2)!);
  t.has(1);
  const ports = pr.get(1)![0] === 58 ? `id=${pr.get(7)!.readUInt16BE()} type=${pr.get(8)![0]}` : `${pr.get(2)!.readUInt16BE()}>${pr.get(3)!.readUInt16BE()}`;
  return `${pr.get(1)![0]} ${hex(ip.get(3)!)} ${hex(ip.get(4)!)} ${ports} v4attrs=${ip.has(1) || ip.has(2)}`;
}

const feed = (c: SyncCore, m: Buffer, queue: boolean, dump = false) => { c.nlRx().set(m); return c.x.ssHandleNetlink(1000, m.length, queue ? 1 : 0, dump ? 1 : 0); };
const batch = (c: SyncCore, v6 = true, now = 1000) => { const n = c.x.ssPollBatch(now, 1412, v6 ? 1 : 0); return n ? Buffer.from(c.txBatch()) : Buffer.alloc(0); };
function apply(c: SyncCore, items: Buffer, now = 1000): Parsed[] {
  c.x.ssNlTxReset(); c.peerRx().set(items); c.x.ssApply(now, items.length, 1);
  const out = parseMsgs(c.nlTx()); c.x.ssNlTxReset(); return out;
}
const A6 = '2001:db8:10::2'; const B6 = '2001:db8:99::7';
const FLOW: Ct6 = { src: A6, dst: B6, sp: 40000, dp: 443 };
const ADDR = (a: string) => { const b = Buffer.alloc(16); const [h, tl] = a.split('::'); const hw = h ? h.split(':') : []; const tw = tl ? tl.split(':') : []; [...hw, ...Array(8 - hw.length - tw.length).fill('0'), ...tw].forEach((w, i) => b.writeUInt16BE(parseInt(w, 16), i * 2)); return b; };

t.test('an IPv6 TCP entry as the kernel dumps it lands in the IPv6 table', async (t) => {
  const c = new SyncCore(4096, { debug: true });
  feed(c, ct6(FLOW), true, true);
  const e = c.entries();
  t.equal(e.length, 1);
  t.match(e[0], { family: 6, proto: 6, src: A6, dst: B6, sport: 40000, dport: 443, replySrc: B6, replyDst: A6, replySport: 443, replyDport: 40000, status: 0x18e, timeout: 299 });
  t.same(e[0]!.tcp, { state: 3, wscaleOrig: 7, wscaleReply: 7, flagsOrig: 0x23, flagsReply: 0x23 });
  t.equal(c.x.ssCount6(), 1); t.equal(c.x.ssQueueLen(), 1, 'queued for the peer');
  t.ok(c.lookup(6, A6, B6, 40000, 443), 'found by its IPv6 tuple');
  t.notOk(c.lookup(6, A6, '2001:db8:99::8', 40000, 443), 'a different address is a different key');
  t.equal(c.stats().unsupported, 0);
  // The IPv4 record and its size are unchanged: 72 table bytes per IPv4 slot.
  t.equal(c.x.ssBytesPerSlot(), 72);
});

t.test('the peer gets one 96-byte upsert6; its kernel gets an AF_INET6 create with the plain inverse reply, no NAT', async (t) => {
  const a = new SyncCore(4096, { debug: true }); const b = new SyncCore(4096, { debug: true });
  feed(a, ct6(FLOW), true);
  const items = batch(a);
  t.equal(items.length, 96); t.equal(items[0], 3, 'op upsert6');
  const reqs = apply(b, items);
  t.equal(reqs.length, 1);
  const r = reqs[0]!;
  t.equal(r.type, 0x100); t.equal(r.flags, 0x0601, 'REQUEST|CREATE|EXCL'); t.equal(r.family, 10, 'nfgenmsg family AF_INET6');
  t.equal(tuple6Of(r.attrs.get(1)!), `6 ${hex(ADDR(A6))} ${hex(ADDR(B6))} 40000>443 v4attrs=false`);
  t.equal(tuple6Of(r.attrs.get(2)!), `6 ${hex(ADDR(B6))} ${hex(ADDR(A6))} 443>40000 v4attrs=false`);
  t.notOk(r.attrs.has(6) || r.attrs.has(13), 'no NAT attributes');
  t.equal(r.attrs.get(3)!.readUInt32BE(), 0x0e, 'status SEEN_REPLY|ASSURED|CONFIRMED');
  const tcp = attrsOf(attrsOf(r.attrs.get(4)!).get(1)!);
  t.equal(tcp.get(1)![0], 3); t.same([...tcp.get(4)!.subarray(0, 2)], [0x0b, 0x0f], 'flags as for IPv4 (liberal, flags = mask)');
  t.match(b.entries()[0], { family: 6, src: A6, dst: B6, replySrc: B6, replyDst: A6 });

  // An update: REQUEST only, AF_INET6, the new TCP state. A delete: a 40-byte delete6 and an AF_INET6 CT_DELETE.
  feed(a, ct6({ ...FLOW, state: 4 }, { flags: 0 }), true);
  const up = batch(a);
  t.equal(up.length, 96);
  const [u] = apply(b, up);
  t.equal(u!.flags, 0x0001); t.equal(u!.family, 10); t.equal(attrsOf(attrsOf(u!.attrs.get(4)!).get(1)!).get(1)![0], 4);
  feed(a, ct6(FLOW, { type: 0x102, flags: 0 }), true);
  const del = batch(a);
  t.equal(del.length, 40); t.equal(del[0], 4, 'op delete6');
  const [d] = apply(b, del);
  t.equal(d!.type, 0x102); t.equal(d!.family, 10);
  t.equal(tuple6Of(d!.attrs.get(1)!), `6 ${hex(ADDR(A6))} ${hex(ADDR(B6))} 40000>443 v4attrs=false`);
  t.equal(b.x.ssCount6(), 0); t.equal(a.x.ssCount6(), 0);
});

t.test('ICMPv6 echo and UDP: reply type 129, same id', async (t) => {
  const a = new SyncCore(4096, { debug: true }); const b = new SyncCore(4096, { debug: true });
  feed(a, ct6({ src: A6, dst: B6, sp: 77, dp: 128, proto: 58, timeout: 30 }), true);
  feed(a, ct6({ src: A6, dst: B6, sp: 5353, dp: 53, proto: 17, timeout: 30 }), true);
  const reqs = apply(b, batch(a));
  t.equal(reqs.length, 2);
  t.equal(tuple6Of(reqs[0]!.attrs.get(2)!), `58 ${hex(ADDR(B6))} ${hex(ADDR(A6))} id=77 type=129 v4attrs=false`);
  t.equal(tuple6Of(reqs[1]!.attrs.get(2)!), `17 ${hex(ADDR(B6))} ${hex(ADDR(A6))} 53>5353 v4attrs=false`);
});

t.test('never sent: link-local, multicast, the pair\'s own IPv6 addresses and VIPs, IPv6 NAT', async (t) => {
  const a = new SyncCore(4096, { debug: true });
  a.setPolicy({ timeoutMax: [], zones: [0], marks: [0], snat: [], vips: [], dnatNets: [], own6: ['2001:db8:10::1', 'fe80::2'] });
  feed(a, ct6({ src: 'fe80::1234', dst: 'fe80::2', sp: 1, dp: 22 }), true);
  feed(a, ct6({ src: A6, dst: 'ff02::fb', sp: 5353, dp: 5353, proto: 17 }), true);
  feed(a, ct6({ src: A6, dst: '2001:db8:10::1', sp: 40001, dp: 53, proto: 17 }), true);
  feed(a, ct6({ src: '2001:db8:10::1', dst: B6, sp: 40002, dp: 443 }), true);
  feed(a, ct6({ ...FLOW, reply: [B6, '2001:db8:ffff::1', 443, 40000] }), true);     // masquerade (SNAT)
  feed(a, ct6({ ...FLOW, sp: 40003, reply: ['fd00::5', A6, 443, 40003] }), true);   // DNAT
  feed(a, ct6({ ...FLOW, sp: 40004, reply: [B6, A6, 443, 50000] }), true);          // port translation only
  t.equal(a.x.ssCount6(), 0);
  const s = a.stats();
  t.equal(s.filtered, 4); t.equal(s.unsupported, 3);
  feed(a, ct6(FLOW), true);
  t.equal(a.x.ssCount6(), 1, 'a forwarded, untranslated flow is taken');
});

t.test('received IPv6 states pass the policy: own addresses, zone, mark, any NAT are refused', async (t) => {
  const a = new SyncCore(4096, { debug: true }); const b = new SyncCore(4096, { debug: true });
  // The sender here has no filter (a peer that lies): everything it holds goes out.
  feed(a, ct6({ ...FLOW, sp: 1 }), true);
  const good = batch(a);
  const forge = (mut: (item: Buffer) => void) => { const x = Buffer.from(good); mut(x); return x; };
  b.setPolicy(rxPolicyOf({
    carp: { vips: [{ address: '2001:db8:10::1/64' }, { address: '192.168.1.1/24' }] },
    interfaces: { wan: { address: '203.0.113.2/24', address6: 'fe80::2', peer6: 'fe80::3' }, lan: { address: '192.168.1.2/24' }, sync: { address: '172.16.1.1/30' } },
    firewall: {}, nat: { outbound: { mode: 'automatic', rules: [] }, port_forwards: [] },
  } as never, { zones: [0], marks: [0] } as never, () => null));
  const items = Buffer.concat([
    forge((x) => ADDR('2001:db8:10::1').copy(x, 20)),                               // to the IPv6 VIP
    forge((x) => ADDR('fe80::3').copy(x, 4)),                                        // from the peer's link-local
    forge((x) => x.writeUInt16BE(7, 2)),                                             // zone 7
    forge((x) => x.writeUInt32BE(0xbad, 84)),                                        // mark
    forge((x) => ADDR('2001:db8:ffff::1').copy(x, 56)),                              // reply dst ≠ orig src: SNAT
    forge((x) => ADDR('fd00::5').copy(x, 40)),                                       // reply src ≠ orig dst: DNAT
    forge((x) => x.writeUInt32BE(0xffffffff, 80)),                                   // a 136-year timeout
  ]);
  const reqs = apply(b, items);
  const s = b.stats();
  t.equal(s.rx_to_self, 2); t.equal(s.rx_zone, 1); t.equal(s.rx_mark, 1); t.equal(s.rx_snat, 1); t.equal(s.rx_dnat, 1);
  t.equal(s.rx_timeout_clamped, 1);
  t.equal(reqs.length, 1, 'only the clamped state reaches the kernel');
  t.ok(reqs[0]!.attrs.get(7)!.readUInt32BE() <= 432000, 'timeout cut to the kernel\'s ESTABLISHED bound');
});

t.test('IPv4 items are unchanged beside IPv6 ones; IPv6 waits for a peer that takes it', async (t) => {
  const a = new SyncCore(4096, { debug: true }); const b = new SyncCore(4096, { debug: true });
  feed(a, ct6(FLOW), true);
  feed(a, ct4('10.0.0.2', '198.51.100.7', 40000, 443), true);
  const old = batch(a, false);
  t.equal(old.length, 48, 'a peer without CAP_V6 gets the IPv4 item only');
  t.equal(old[0], 1);
  t.equal(a.stats().v6_held, 1, 'counted');
  t.equal(a.x.ssCount6(), 1, 'the IPv6 state stays in the table');
  t.equal(batch(a, true).length, 0, 'and is not queued any more');
  // The upgraded peer restarts and asks for a bulk: it carries the IPv6 state too.
  a.x.ssQueueAll();
  const bulk = batch(a, true);
  t.equal(bulk.length, 48 + 96, 'IPv4 first, then IPv6');
  apply(b, bulk);
  t.equal(b.x.ssCount(), 2); t.equal(b.x.ssCount6(), 1);
  // 14 IPv6 states fill a datagram's payload (1412 bytes).
  for (let i = 0; i < 20; i++) feed(a, ct6({ ...FLOW, sp: 1000 + i }), true);
  t.equal(a.x.ssPollBatch(1000, 1412, 1), 14);
});

t.test('shapeOk walks IPv6 items by their length; the previous release\'s walk refuses them', async (t) => {
  const h = (count: number): Header => ({ type: Type.DATA, flags: 0, session: 1n, peerSession: 1n, pn: 1n, seq: 1, ack: 0, count, extra: 0 });
  const up6 = Buffer.alloc(96); up6[0] = 3; const del6 = Buffer.alloc(40); del6[0] = 4; const up = Buffer.alloc(48); up[0] = 1;
  t.ok(shapeOk(h(3), Buffer.concat([up, up6, del6])));
  t.notOk(shapeOk(h(3), Buffer.concat([up, up6, del6.subarray(0, 39)])), 'a cut delete6');
  t.notOk(shapeOk(h(2), Buffer.concat([up, up6, del6])), 'a count that lies');
  const bad = Buffer.from(up6); bad[0] = 5;
  t.notOk(shapeOk(h(1), bad), 'op 5 is unknown');
  // The walk of the previous release (ops 1 and 2 only), as it shipped: an IPv6 item makes the whole datagram
  // a `count` drop, before the sequence number is looked at, so it is never acknowledged.
  const oldShapeOk = (hd: Header, p: Uint8Array) => { let q = 0; let n = 0; while (q < p.length) { const l = p[q] === 1 ? 48 : p[q] === 2 ? 16 : 0; if (l === 0 || q + l > p.length) return false; q += l; n++; } return n === hd.count; };
  t.notOk(oldShapeOk(h(2), Buffer.concat([up, up6])));
  t.ok(oldShapeOk(h(1), up));
});

t.test('fuzz: mutated and random IPv6 items never trap the core and never apply an invalid state', async (t) => {
  const a = new SyncCore(4096, { debug: true }); const b = new SyncCore(4096, { debug: true });
  feed(a, ct6(FLOW), true);
  feed(a, ct6({ src: A6, dst: B6, sp: 9, dp: 128, proto: 58 }), true);
  feed(a, ct6(FLOW, { type: 0x102, flags: 0 }), true);
  feed(a, ct6({ ...FLOW, sp: 2 }), true);
  const base = batch(a);
  const rnd = prng(16);
  let applied = 0;
  for (let i = 0; i < 20000; i++) {
    let x: Buffer;
    if (i % 4 === 0) { x = Buffer.alloc(1 + Math.floor(rnd() * 300)); for (let k = 0; k < x.length; k++) x[k] = Math.floor(rnd() * 256); x[0] = 3 + (i & 1); }
    else {
      x = Buffer.from(base);
      for (let k = 0, n = 1 + Math.floor(rnd() * 6); k < n; k++) x[Math.floor(rnd() * x.length)] = Math.floor(rnd() * 256);
      if (i % 3 === 0) x = x.subarray(0, Math.floor(rnd() * x.length));
    }
    b.x.ssNlTxReset(); b.peerRx().set(x);
    applied += b.x.ssApply(1000, x.length, 1);
    for (const r of parseMsgs(b.nlTx())) {
      if (r.family !== 10) { t.fail(`request of family ${r.family}`); return; }
      if (r.type !== 0x100 && r.type !== 0x102) { t.fail(`request type ${r.type}`); return; }
    }
  }
  for (const e of b.entries()) {
    if (e.family !== 6 || ![6, 17, 58].includes(e.proto) || e.tcp.state >= 10 || e.tcp.wscaleOrig > 14 || e.tcp.wscaleReply > 14) { t.fail(`invalid state applied: ${JSON.stringify(e)}`); return; }
  }
  t.ok(applied > 0, `${applied} items applied, ${b.stats().rx_bad_items} refused as bad`);
  t.ok(b.stats().rx_bad_items > 0);
});

t.test('machine: IPv6 items only after the peer\'s HELLO said CAP_V6; a peer of the previous release keeps syncing IPv4', async (t) => {
  const V4 = Array.from({ length: 30 }, (_, i) => ({ src: `10.0.${i >> 8}.${i & 255}`, dst: '198.51.100.7', sp: 30000 + i, dp: 443 }));
  const V6 = Array.from({ length: 30 }, (_, i) => ({ src: `2001:db8:10::${(i + 16).toString(16)}`, dst: B6, sp: 30000 + i, dp: 443 }));
  /** `oldB`: b answers as the previous release does: no CAP_V6 in its HELLOs, and a DATA message with an op it does not know is dropped unacknowledged. */
  function run(oldB: boolean, announce: boolean) {
    const mode = { oldB };
    const pair = new SyncPair({ seed: 7 });
    const codec = new Codec(Buffer.from('syncpair-test-key-0123456789', 'utf8'));
    let refused = 0;
    let v6Items = 0;
    const send = pair.send.bind(pair); const deliver = pair.deliver.bind(pair);
    pair.send = (from, bytes) => {
      const r = codec.open(bytes);
      if (from === pair.b && r.ok && r.h.type === Type.HELLO && mode.oldB && !announce) bytes = codec.seal({ ...r.h, flags: r.h.flags & ~F_CAP_V6 }, r.payload);
      if (from === pair.a && r.ok && r.h.type === Type.DATA) for (let p = 0; p < r.payload.length;) { const op = r.payload[p]!; if (op >= 3) v6Items++; p += [0, 48, 16, 96, 40][op] ?? r.payload.length; }
      send(from, bytes);
    };
    pair.deliver = (to, bytes) => {
      const r = codec.open(bytes);
      if (mode.oldB && to === pair.b && r.ok && r.h.type === Type.DATA && !shapeOkOld(r.h, r.payload)) { refused++; return; }
      deliver(to, bytes);
    };
    pair.start();
    pair.run(2000);
    for (const f of V4) pair.a.put(f);
    for (const f of V6) pair.a.put(f);
    pair.run(3000);
    const count = () => ({ v4: [...pair.b.kernel.table.keys()].filter((k) => !k.includes('2001:db8')).length, v6: [...pair.b.kernel.table.keys()].filter((k) => k.includes('2001:db8')).length });
    return { pair, mode, count, refused, v6Items, v4OnB: [...pair.b.kernel.table.keys()].filter((k) => !k.includes('2001:db8')).length, v6OnB: [...pair.b.kernel.table.keys()].filter((k) => k.includes('2001:db8')).length };
  }
  function shapeOkOld(h: Header, p: Uint8Array): boolean { let q = 0; let n = 0; while (q < p.length) { const l = p[q] === 1 ? 48 : p[q] === 2 ? 16 : 0; if (l === 0 || q + l > p.length) return false; q += l; n++; } return n === h.count; }

  const now = run(false, true);
  t.equal(now.v4OnB, 30); t.equal(now.v6OnB, 30, 'two current nodes: every IPv6 flow reaches the peer\'s kernel');
  t.ok(now.pair.converged(), 'both kernels hold the same entries');
  t.ok(now.v6Items >= 30);

  const old = run(true, false);
  t.equal(old.refused, 0, 'the old peer never saw an item it cannot walk');
  t.equal(old.v6Items, 0, 'no IPv6 item on the wire');
  t.equal(old.v4OnB, 30, 'IPv4 keeps syncing to the old peer');
  t.equal(old.v6OnB, 0);
  t.equal(old.pair.a.m.core.stats().v6_held, 30);
  t.equal(old.pair.a.m.core.x.ssCount6(), 30, 'the IPv6 states stay in the table for a later bulk');
  // The old peer is upgraded: it restarts (a new session, CAP_V6) and asks for a bulk, which carries the IPv6 states.
  old.mode.oldB = false;
  old.pair.b.boot();
  t.ok(old.pair.runUntil(() => old.count().v6 === 30, 5000), `after the upgrade the peer's kernel holds the IPv6 flows: ${JSON.stringify(old.count())}`);
  t.equal(old.count().v4, 30);
  t.ok(old.pair.converged(), 'both kernels hold the same entries');

  // Without the capability rule (an old peer that somehow announced it): the datagram with IPv6 items is dropped
  // unacknowledged, resent forever, and the IPv4 states behind it never arrive.
  const broken = run(true, true);
  t.ok(broken.refused > 5, `refused ${broken.refused} times`);
  t.ok(broken.v4OnB < 30, `only ${broken.v4OnB} of 30 IPv4 states reached the old peer`);
});
