// The `ra` section: router advertisements from the MASTER of one vhid (docs/carp.md "Router advertisements").
import { isIPv6 } from 'node:net';
import type { Config, NetName } from '../config/schema.js';
import type { Finding } from '../config/check.js';
import { isLinkLocal } from '../config/ipv6.js';

export interface RaConfig {
  /** The vhid whose MASTER advertises; its link-local IPv6 VIP is the router address. */
  vhid: number;
  /** On-link prefixes for SLAAC (each /64). */
  prefixes: string[];
  /** RDNSS (RFC 8106); default: the vhid's first global IPv6 VIP. */
  dns?: string[];
  /** MaxRtrAdvInterval in seconds (RFC 4861: 4-1800; default 600); MinRtrAdvInterval is a third of it. */
  interval_max: number;
  /** Router lifetime in seconds (default 3 x interval_max, at most 9000). */
  router_lifetime?: number;
  /**
   * How hosts get addresses (pfSense's router mode): slaac (default; M and O clear), managed (M and O set,
   * prefixes on-link only: addresses from DHCPv6, the `dhcp6` section), assisted (M and O set, SLAAC as well).
   */
  mode?: RaMode;
}

export type RaMode = 'slaac' | 'managed' | 'assisted';
/** The RA tells hosts to ask DHCPv6 (M and O flags). */
export const raManaged = (r: RaConfig | null): boolean => !!r && (r.mode === 'managed' || r.mode === 'assisted');

export const raSchema = {
  type: 'object', additionalProperties: false, required: ['vhid', 'prefixes'],
  properties: {
    vhid: { type: 'integer', minimum: 1, maximum: 255, description: 'the vhid whose MASTER advertises (its link-local VIP is the router)' },
    prefixes: { type: 'array', minItems: 1, maxItems: 8, items: { type: 'string', pattern: '^[0-9A-Fa-f:]+/64$' }, description: 'SLAAC prefixes, /64 each' },
    dns: { type: 'array', minItems: 1, maxItems: 4, items: { type: 'string', pattern: '^[0-9A-Fa-f:]+$' }, description: 'RDNSS addresses (default: the vhid\'s first global IPv6 VIP)' },
    interval_max: { type: 'integer', minimum: 4, maximum: 1800, default: 600 },
    router_lifetime: { type: 'integer', minimum: 0, maximum: 9000 },
    mode: { enum: ['slaac', 'managed', 'assisted'], default: 'slaac', description: 'slaac: addresses by SLAAC; managed: by DHCPv6 (dhcp6 section; M and O flags); assisted: both' },
  },
} as const;

export const raOf = (c: Config): RaConfig | null => (c.ra ? c.ra as RaConfig : null);
const ip = (cidr: string) => cidr.split('/')[0]!;

/** The vhid's VIPs the RA needs: the router (link-local) and the default DNS (first global), and the interface. */
export function raAddresses(c: Config, r: RaConfig): { iface: NetName | null; router: string | null; dns: string[] } {
  const vips = c.carp.vips.filter((v) => v.vhid === r.vhid && v.address.includes(':'));
  const router = vips.map((v) => ip(v.address)).find(isLinkLocal) ?? null;
  const global = vips.map((v) => ip(v.address)).filter((a) => !isLinkLocal(a));
  return { iface: c.carp.vips.find((v) => v.vhid === r.vhid)?.interface ?? null, router, dns: r.dns ?? global.slice(0, 1) };
}

export function checkRa(c: Config): Finding[] {
  const r = raOf(c);
  if (!r) return [];
  const out: Finding[] = [];
  const err = (field: string, message: string) => out.push({ level: 'error', field, message });
  const a = raAddresses(c, r);
  if (!a.iface) err('ra.vhid', `no carp.vips entry has vhid ${r.vhid}: the RA comes from that vhid's MASTER`);
  else if (!a.router) err('ra.vhid', `vhid ${r.vhid} has no link-local IPv6 VIP (e.g. fe80::1/64): it is the router address hosts keep across a failover`);
  r.prefixes.forEach((p, i) => { if (!isIPv6(ip(p))) err(`ra.prefixes[${i}]`, `${p} is not an IPv6 prefix: write it like 2001:db8:1::/64`); });
  r.dns?.forEach((d, i) => { if (!isIPv6(d)) err(`ra.dns[${i}]`, `${d} is not an IPv6 address`); });
  if (a.iface && !a.dns.length) err('ra.dns', `vhid ${r.vhid} has no global IPv6 VIP to announce as DNS server: set ra.dns`);
  const life = r.router_lifetime ?? 3 * r.interval_max;
  if (raManaged(r) && !c.dhcp6) err('ra.mode', `${r.mode} tells hosts to ask a DHCPv6 server: add the dhcp6 section (a range in one of ra.prefixes) or set mode slaac`);
  if (life !== 0 && life < r.interval_max) err('ra.router_lifetime', `${life} s is shorter than interval_max (${r.interval_max} s): hosts would drop the router between two advertisements`);
  return out;
}
