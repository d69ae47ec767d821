// The `dhcp:` config section: DHCPv4 scopes, served by Kea in HA hot-standby (primary serves, secondary takes
// over when the primary stops answering heartbeats over the sync link). The section's own range is the LAN's
// scope; `networks.<name>` adds one on another internal network (scopes.ts).
import { NET_NAME } from '../../config/schema.js';
const ipv4 = '^(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}$';

export interface StaticMapping { mac: string; address: string; hostname?: string; description?: string }
export interface DhcpConfig {
  /** The LAN's scope (optional when `networks` has one). */
  range?: { from: string; to: string };
  /** Seconds. Renew at 1/2, rebind at 7/8. */
  lease_time: number;
  /** Default: the LAN VIP (the resolver on it). */
  dns_servers?: string[];
  domain_name?: string;
  static_mappings: StaticMapping[];
  ha: { heartbeat_delay_ms: number; max_response_delay_ms: number; max_ack_delay_ms: number; max_unacked_clients: number };
  /** Scopes on the other internal networks, by network name. */
  networks?: Record<string, ScopeConfig>;
}
/** A scope on an internal network other than the LAN; lease_time and domain_name default to the section's. */
export interface ScopeConfig {
  range: { from: string; to: string };
  lease_time?: number;
  /** Default: the network's VIP. */
  dns_servers?: string[];
  domain_name?: string;
  static_mappings: StaticMapping[];
}

const range = {
  type: 'object', additionalProperties: false, required: ['from', 'to'],
  properties: { from: { type: 'string', pattern: ipv4 }, to: { type: 'string', pattern: ipv4 } },
};
const leaseTime = { type: 'integer', minimum: 10, maximum: 31_536_000 };
const dnsServers = { type: 'array', minItems: 1, maxItems: 8, items: { type: 'string', pattern: ipv4 } };
const domainName = { type: 'string', pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]{0,250}[A-Za-z0-9])?$' };
const staticMappings = {
  type: 'array', default: [], maxItems: 4096,
  items: {
    type: 'object', additionalProperties: false, required: ['mac', 'address'],
    properties: {
      mac: { type: 'string', pattern: '^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$' },
      address: { type: 'string', pattern: ipv4 },
      hostname: { type: 'string', pattern: '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$' },
      description: { type: 'string', maxLength: 100 },
    },
  },
};

/** Kea HA timing, the same for the DHCPv4 and DHCPv6 servers (dhcp.ha, dhcp6.ha). */
export const keaHaSchema = {
  type: 'object', additionalProperties: false, default: {},
  properties: {
    // Kea 2.2 defaults are 10 s / 60 s; these fail over in ~4-5 s (configsync.md §3.2).
    heartbeat_delay_ms: { type: 'integer', minimum: 500, maximum: 60_000, default: 2000 },
    max_response_delay_ms: { type: 'integer', minimum: 1000, maximum: 600_000, default: 6000 },
    max_ack_delay_ms: { type: 'integer', minimum: 100, maximum: 60_000, default: 5000 },
    max_unacked_clients: { type: 'integer', minimum: 0, maximum: 100, default: 0 },
  },
} as const;

export const dhcpSchema = {
  // The LAN's scope (range) or at least one other network's scope.
  type: 'object', additionalProperties: false, anyOf: [{ required: ['range'] }, { required: ['networks'] }],
  properties: {
    range,
    lease_time: { ...leaseTime, default: 7200 },
    dns_servers: dnsServers,
    domain_name: domainName,
    static_mappings: staticMappings,
    networks: {
      type: 'object', minProperties: 1, maxProperties: 7,
      propertyNames: { pattern: NET_NAME, not: { enum: ['wan', 'sync'] } },
      additionalProperties: {
        type: 'object', additionalProperties: false, required: ['range'],
        properties: { range, lease_time: leaseTime, dns_servers: dnsServers, domain_name: domainName, static_mappings: staticMappings },
      },
    },
    ha: keaHaSchema,
  },
} as const;
