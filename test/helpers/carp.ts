// Independent CARP codec for tests, written against carp.md with node:crypto: the core's bytes are checked
// against this, never against themselves.
import { createHmac } from 'node:crypto';

export function ipBytes(ip: string): Buffer { return ip.includes(':') ? ip6Bytes(ip) : Buffer.from(ip.split('.').map(Number)); }

/** 16 bytes of an IPv6 address written with at most one '::' (no embedded IPv4, no zone). */
export function ip6Bytes(ip: string): Buffer {
  const [l, r] = ip.split('::');
  const left = l ? l.split(':') : [];
  const right = r === undefined ? [] : r ? r.split(':') : [];
  const groups = r === undefined ? left : [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  if (groups.length !== 8) throw new Error(`test helper: not an IPv6 address: ${ip}`);
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

export function checksum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i] << 8) | b[i + 1];
  if (b.length & 1) s += b[b.length - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}

export function hmacOf(password: string, vhid: number, vips: string[], counter: Buffer): Buffer {
  // BSD order: IPv4 ascending, then IPv6 ascending (link-local ones with the scope bytes 2-3 zeroed).
  const v4 = vips.filter((a) => !a.includes(':')).map(ipBytes).sort(Buffer.compare);
  const v6 = vips.filter((a) => a.includes(':')).map((a) => {
    const b = ip6Bytes(a);
    if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) b.writeUInt16BE(0, 2);
    return b;
  }).sort(Buffer.compare);
  const msg = Buffer.concat([Buffer.from([2, 1, vhid]), ...v4, ...v6, counter]);
  return createHmac('sha1', Buffer.from(password, 'utf8').subarray(0, 19)).update(msg).digest();
}

export interface AdvertFields { vhid: number; advskew: number; advbase: number; demote?: number; counter: bigint | Buffer; version?: number; type?: number }

export function advert(f: AdvertFields, password: string, vips: string[]): Buffer {
  const b = Buffer.alloc(36);
  b[0] = ((f.version ?? 2) << 4) | (f.type ?? 1);
  b[1] = f.vhid; b[2] = f.advskew; b[3] = 7; b[4] = f.demote ?? 0; b[5] = f.advbase;
  const c = Buffer.isBuffer(f.counter) ? f.counter : (() => { const x = Buffer.alloc(8); x.writeBigUInt64BE(f.counter as bigint); return x; })();
  c.copy(b, 8);
  hmacOf(password, f.vhid, vips, c).copy(b, 16);
  b.writeUInt16BE(checksum(b), 6);
  return b;
}

/** Wrap a CARP payload as the raw socket delivers it: 20-byte IPv4 header + payload. */
export function ipv4(payload: Uint8Array, src: string, opts: { ttl?: number; dst?: string; proto?: number } = {}): Buffer {
  const h = Buffer.alloc(20);
  h[0] = 0x45; h[1] = 0x10; h.writeUInt16BE(20 + payload.length, 2); h.writeUInt16BE(0x4000, 6);
  h[8] = opts.ttl ?? 255; h[9] = opts.proto ?? 112;
  ipBytes(src).copy(h, 12); ipBytes(opts.dst ?? '224.0.0.18').copy(h, 16);
  h.writeUInt16BE(checksum(h), 10);
  return Buffer.concat([h, payload]);
}

/**
 * Wrap a CARP payload in the 40-byte IPv6 header the daemon lays out in front of what the raw socket read:
 * next header 112, hop limit 255, to ff02::12.
 */
export function ipv6(payload: Uint8Array, src: string, opts: { hopLimit?: number; dst?: string; nextHeader?: number } = {}): Buffer {
  const h = Buffer.alloc(40);
  h.writeUInt32BE(6 << 28, 0); h.writeUInt16BE(payload.length, 4); h[6] = opts.nextHeader ?? 112; h[7] = opts.hopLimit ?? 255;
  ip6Bytes(src).copy(h, 8); ip6Bytes(opts.dst ?? 'ff02::12').copy(h, 24);
  return Buffer.concat([h, payload]);
}

/** Check an advert built by the core: checksum and HMAC recomputed independently. */
export function verifyAdvert(b: Uint8Array, password: string, vips: string[]): { checksumOk: boolean; hmacOk: boolean } {
  const buf = Buffer.from(b);
  return {
    checksumOk: checksum(buf) === 0,
    hmacOk: hmacOf(password, buf[1], vips, buf.subarray(8, 16)).equals(buf.subarray(16, 36)),
  };
}

/**
 * The pair trailer for a 36-byte header from `src`, computed here with node:crypto from docs/security.md:
 * 'D' 'G' 1 0, then HMAC-SHA1(key, src ‖ header with a zero checksum ‖ 'D' 'G' 1 0).
 */
export function pairTrailer(header: Uint8Array, src: string, key: Uint8Array): Buffer {
  const h = Buffer.from(header.subarray(0, 36));
  h.writeUInt16BE(0, 6);
  const lead = Buffer.from([0x44, 0x47, 1, 0]);
  return Buffer.concat([lead, createHmac('sha1', key).update(Buffer.concat([ipBytes(src), h, lead])).digest()]);
}

/**
 * An attacker's edit of a captured advert payload (header, and trailer if any): change unauthenticated fields
 * and fix the checksum over the whole payload, as any CARP receiver checks it. The HMACs stay as captured.
 */
export function rewrite(payload: Uint8Array, f: { advskew?: number; advbase?: number; demote?: number; dropTrailer?: boolean }): Buffer {
  const b = Buffer.from(f.dropTrailer ? payload.subarray(0, 36) : payload);
  if (f.advskew !== undefined) b[2] = f.advskew;
  if (f.demote !== undefined) b[4] = f.demote;
  if (f.advbase !== undefined) b[5] = f.advbase;
  b.writeUInt16BE(0, 6);
  b.writeUInt16BE(checksum(b), 6);
  return b;
}
