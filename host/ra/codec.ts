// Router advertisement (RFC 4861 §4.2) with a Prefix Information option per SLAAC prefix (§4.6.2: on-link,
// autonomous) and RDNSS (RFC 8106), as the whole IPv6 packet: the daemon sends it from the link-local VIP on the
// NIC's packet socket, so a final RA still leaves after the VIP was released.
import { ip6Bytes } from '../config/net.js';

export interface RaFields {
  /** 6-byte source MAC (source link-layer address option). */
  mac: Uint8Array;
  /** The link-local VIP: the IPv6 source, which hosts take as their router. */
  router: string;
  routerLifetimeS: number;
  prefixes: { prefix: string; validS: number; preferredS: number }[];
  dns: string[];
  dnsLifetimeS: number;
  /** M and O flags: hosts ask DHCPv6 for addresses and options. */
  managed?: boolean;
  /** Prefixes carry the A flag (SLAAC); false with managed addresses only (on-link flag alone). */
  autonomous?: boolean;
}

const ALL_NODES = 'ff02::1';

function checksum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i] << 8) | b[i + 1];
  if (b.length & 1) s += b[b.length - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}

/** The IPv6 packet (header, RA, options) to ff02::1, hop limit 255. */
export function buildRa(f: RaFields): Uint8Array {
  const opts: Buffer[] = [];
  const slla = Buffer.alloc(8); slla[0] = 1; slla[1] = 1; slla.set(f.mac.subarray(0, 6), 2); opts.push(slla);
  for (const p of f.prefixes) {
    const [net, len] = p.prefix.split('/');
    const o = Buffer.alloc(32);
    o[0] = 3; o[1] = 4; o[2] = Number(len); o[3] = f.autonomous === false ? 0x80 : 0xc0; // on-link (L), autonomous address configuration (A)
    o.writeUInt32BE(p.validS >>> 0, 4); o.writeUInt32BE(p.preferredS >>> 0, 8);
    o.set(ip6Bytes(net!), 16);
    opts.push(o);
  }
  if (f.dns.length) {
    const o = Buffer.alloc(8 + 16 * f.dns.length);
    o[0] = 25; o[1] = 1 + 2 * f.dns.length; o.writeUInt32BE(f.dnsLifetimeS >>> 0, 4);
    f.dns.forEach((d, i) => o.set(ip6Bytes(d), 8 + 16 * i));
    opts.push(o);
  }
  const ra = Buffer.alloc(16);
  ra[0] = 134; ra[4] = 64; // cur hop limit
  // M and O set: addresses and options from DHCPv6; clear: addresses by SLAAC, DNS from RDNSS (sent either way).
  if (f.managed) ra[5] = 0xc0;
  ra.writeUInt16BE(Math.min(0xffff, f.routerLifetimeS), 6);
  const icmp = Buffer.concat([ra, ...opts]);
  const h = Buffer.alloc(40);
  h.writeUInt32BE(0x60000000, 0); h.writeUInt16BE(icmp.length, 4); h[6] = 58; h[7] = 255;
  h.set(ip6Bytes(f.router), 8); h.set(ip6Bytes(ALL_NODES), 24);
  const pseudo = Buffer.alloc(40);
  h.copy(pseudo, 0, 8, 40); pseudo.writeUInt32BE(icmp.length, 32); pseudo[39] = 58;
  icmp.writeUInt16BE(checksum(Buffer.concat([pseudo, icmp])), 2);
  return Buffer.concat([h, icmp]);
}
