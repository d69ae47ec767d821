// Which network DHCPv6 serves and with what prefix, without loading Kea's module (the firewall asks).
import { isIPv6 } from 'node:net';
import type { Config, NetName } from '../../config/schema.js';
import { ip6Bytes } from '../../config/net.js';
import { raAddresses, raOf } from '../../ra/config.js';
import type { Dhcp6Config } from './schema.js';

export const dhcp6Of = (c: Config): Dhcp6Config | undefined => {
  const d = c.dhcp6 as Partial<Dhcp6Config> | undefined;
  if (!d) return undefined;
  return {
    range: d.range!, lease_time: d.lease_time ?? 7200, dns_servers: d.dns_servers, domain_search: d.domain_search,
    static_mappings: d.static_mappings ?? [],
    ha: { heartbeat_delay_ms: 2000, max_response_delay_ms: 6000, max_ack_delay_ms: 5000, max_unacked_clients: 0, ...(d.ha ?? {}) },
  };
};

/** The address as a 128-bit number (valid IPv6 text). */
export function ip6Num(a: string): bigint {
  let n = 0n;
  for (const b of ip6Bytes(a)) n = (n << 8n) | BigInt(b);
  return n;
}

/** The /64 of ra.prefixes that holds `a`, or null. */
export function prefixOf(c: Config, a: string): string | null {
  if (!isIPv6(a)) return null;
  const hi = ip6Num(a) >> 64n;
  return raOf(c)?.prefixes.find((p) => isIPv6(p.split('/')[0]!) && ip6Num(p.split('/')[0]!) >> 64n === hi) ?? null;
}

/** The internal network DHCPv6 serves (the RA vhid's), or null without a dhcp6 section or a usable ra. */
export function dhcp6Net(c: Config): NetName | null {
  const r = raOf(c);
  if (!c.dhcp6 || !r) return null;
  const iface = raAddresses(c, r).iface;
  return iface && iface !== 'wan' && iface !== 'sync' ? iface : null;
}

/**
 * The node's own link-local address on that network (address6), where kea-dhcp6 binds beside ff02::1:2. Not the
 * link-local VIP: it comes and goes after Kea opened its sockets, so Kea never listens there.
 */
export function linkLocal(c: Config, net: NetName): string | null {
  return c.interfaces[net]?.address6?.split('/')[0] ?? null;
}
