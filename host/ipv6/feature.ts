// The ipv6 feature: the node routes IPv6 when a VIP is an IPv6 address (forwarding on, the upstream route via
// interfaces.wan.gateway6). Rules, DNS and router adverts for IPv6 are the firewall's, dns's and ra's
// (docs/carp.md "IPv6 routing").
import type { Config } from '../config/schema.js';
import type { Finding } from '../config/check.js';
import { lazyService, type Feature } from '../feature.js';
import { hasIpv6 } from '../config/ipv6.js';

const wanted = (c: Config) => hasIpv6(c) || !!c.interfaces.wan.gateway6;

function check(c: Config): Finding[] {
  const out: Finding[] = [];
  for (const [net, ifc] of Object.entries(c.interfaces)) {
    if (ifc.gateway6 !== undefined && net !== 'wan') out.push({ level: 'error', field: `interfaces.${net}.gateway6`, message: 'only the WAN has an upstream IPv6 router: move it to interfaces.wan.gateway6' });
  }
  if (c.interfaces.wan.gateway6 && !hasIpv6(c)) {
    out.push({ level: 'warning', field: 'interfaces.wan.gateway6', message: 'no IPv6 VIP is configured, so nothing is routed over IPv6: add the IPv6 VIPs (carp.vips) or remove gateway6' });
  }
  return out;
}

export const feature: Feature = {
  name: 'ipv6',
  sections: {},
  check,
  wanted,
  start: lazyService(wanted, async () => new (await import('./service.js')).Ipv6Service()),
};
