// DHCP scopes, one per internal network. The `dhcp` section's own range, static mappings and options are the
// LAN's scope (the single-scope config every node had); `dhcp.networks.<name>` adds a scope on another
// internal network. Kea serves them all from one HA pair (kea.ts). Kept apart from kea.ts so the firewall can
// ask which networks have a scope without loading Kea's module.
import type { Config, NetName } from '../../config/schema.js';
import type { DhcpConfig, ScopeConfig, StaticMapping } from './schema.js';

export interface Scope {
  /** The internal network it serves. */
  net: NetName;
  /** Where its settings are in the config, for findings: `dhcp` or `dhcp.networks.guest`. */
  field: string;
  /** Kea's subnet id: 1 for the LAN (as before scopes), a stable id from the name for the others. */
  id: number;
  range: { from: string; to: string };
  lease_time: number;
  dns_servers?: string[];
  domain_name?: string;
  static_mappings: StaticMapping[];
}

/** Kea subnet ids must not change while leases exist: derived from the network's name, never its position. */
export function scopeId(net: NetName): number {
  if (net === 'lan') return 1;
  let h = 0x811c9dc5;
  for (const ch of Buffer.from(net)) { h ^= ch; h = Math.imul(h, 0x01000193) >>> 0; }
  return 2 + (h % 1_000_000);
}

type Raw = Partial<DhcpConfig> & { networks?: Record<string, Partial<ScopeConfig>> };

/** Every configured scope, LAN first ([] without a dhcp section). */
export function dhcpScopes(c: Config): Scope[] {
  const d = c.dhcp as Raw | undefined;
  if (!d) return [];
  const lease = d.lease_time ?? 7200;
  const out: Scope[] = [];
  if (d.range) {
    out.push({ net: 'lan', field: 'dhcp', id: 1, range: d.range, lease_time: lease, dns_servers: d.dns_servers, domain_name: d.domain_name, static_mappings: d.static_mappings ?? [] });
  }
  for (const [net, s] of Object.entries(d.networks ?? {})) {
    out.push({
      net, field: `dhcp.networks.${net}`, id: scopeId(net), range: s.range!, lease_time: s.lease_time ?? lease,
      dns_servers: s.dns_servers, domain_name: s.domain_name ?? d.domain_name, static_mappings: s.static_mappings ?? [],
    });
  }
  return out;
}

/** The internal networks with a DHCP scope. */
export function dhcpNets(c: Config): NetName[] { return dhcpScopes(c).map((s) => s.net); }
