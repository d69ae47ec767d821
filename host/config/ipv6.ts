// What the config says about IPv6 per network, for the firewall, DNS and routing: a network's IPv6 VIPs, and its
// IPv6 prefixes ("<net> net" in a rule), which are the prefixes of its global IPv6 VIPs, of the node's own global6
// address there and the SLAAC prefixes the `ra` section announces there. A node's own IPv6 addresses are its
// link-local CARP source (address6) and, optionally, global6; what hosts route to are VIPs, which move with the
// MASTER (docs/carp.md "IPv6 routing").
import type { Config, NetName } from './schema.js';
import { bytesToIp6, ip6Bytes } from './net.js';

/** True for an IPv6 link-local address (fe80::/10). */
export const isLinkLocal = (a: string): boolean => /^fe[89ab][0-9a-f]:/i.test(a);
const ip = (cidr: string) => cidr.split('/')[0]!;

/** The IPv6 VIPs (no prefix length) on a network; `global` leaves out link-local ones. */
export function vips6On(c: Config, net: NetName, { global = false } = {}): string[] {
  return c.carp.vips.filter((v) => v.interface === net && v.address.includes(':') && !(global && isLinkLocal(ip(v.address)))).map((v) => ip(v.address));
}

/** An IPv6 prefix in canonical form with its host bits cleared: 2001:db8:1::1/64 -> 2001:db8:1::/64. */
export function prefix6(cidr: string): string {
  const [a, l] = cidr.split('/');
  const len = l === undefined ? 128 : Number(l);
  const b = ip6Bytes(a!);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, len - i * 8));
    b[i] &= keep === 8 ? 0xff : (0xff << (8 - keep)) & 0xff;
  }
  return `${bytesToIp6(b)}/${len}`;
}

/** True when an IPv6 address lies in an IPv6 prefix. */
export function inPrefix6(addr: string, cidr: string): boolean {
  const len = Number(cidr.split('/')[1] ?? 128);
  return prefix6(`${addr}/${len}`) === prefix6(cidr);
}

/** The routed IPv6 prefixes of a network: its global IPv6 VIPs' prefixes and the `ra` prefixes announced on it. */
export function nets6Of(c: Config, net: NetName): string[] {
  const out = new Set<string>();
  for (const v of c.carp.vips) {
    if (v.interface !== net || !v.address.includes(':') || isLinkLocal(ip(v.address))) continue;
    const len = Number(v.address.split('/')[1] ?? 128);
    if (len < 128) out.add(prefix6(v.address));
  }
  const own = c.interfaces[net]?.global6;
  if (own) out.add(prefix6(own));
  const ra = c.ra as { vhid?: number; prefixes?: string[] } | undefined;
  if (ra?.prefixes && c.carp.vips.find((v) => v.vhid === ra.vhid)?.interface === net) {
    for (const p of ra.prefixes) out.add(prefix6(p));
  }
  return [...out];
}

/** This node's own global IPv6 address on a network (no prefix length), if it has one. */
export function global6On(c: Config, net: NetName): string[] {
  const g = c.interfaces[net]?.global6;
  return g ? [ip(g)] : [];
}

/** True when the node routes IPv6: some VIP is an IPv6 address (the ipv6 feature turns forwarding on). */
export function hasIpv6(c: Config): boolean {
  return c.carp.vips.some((v) => v.address.includes(':'));
}
