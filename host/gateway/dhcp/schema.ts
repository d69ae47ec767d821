// The `dhcp:` config section: one DHCPv4 scope on the LAN, served by Kea in HA hot-standby (primary serves,
// secondary takes over when the primary stops answering heartbeats over the sync link).
const ipv4 = '^(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}$';

export interface StaticMapping { mac: string; address: string; hostname?: string; description?: string }
export interface DhcpConfig {
  range: { from: string; to: string };
  /** Seconds. Renew at 1/2, rebind at 7/8. */
  lease_time: number;
  /** Default: the LAN VIP (the resolver on it). */
  dns_servers?: string[];
  domain_name?: string;
  static_mappings: StaticMapping[];
  ha: { heartbeat_delay_ms: number; max_response_delay_ms: number; max_ack_delay_ms: number; max_unacked_clients: number };
}

export const dhcpSchema = {
  type: 'object', additionalProperties: false, required: ['range'],
  properties: {
    range: {
      type: 'object', additionalProperties: false, required: ['from', 'to'],
      properties: { from: { type: 'string', pattern: ipv4 }, to: { type: 'string', pattern: ipv4 } },
    },
    lease_time: { type: 'integer', minimum: 10, maximum: 31_536_000, default: 7200 },
    dns_servers: { type: 'array', minItems: 1, maxItems: 8, items: { type: 'string', pattern: ipv4 } },
    domain_name: { type: 'string', pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]{0,250}[A-Za-z0-9])?$' },
    static_mappings: {
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
    },
    ha: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        // Kea 2.2 defaults are 10 s / 60 s; these fail over in ~4-5 s (configsync.md §3.2).
        heartbeat_delay_ms: { type: 'integer', minimum: 500, maximum: 60_000, default: 2000 },
        max_response_delay_ms: { type: 'integer', minimum: 1000, maximum: 600_000, default: 6000 },
        max_ack_delay_ms: { type: 'integer', minimum: 100, maximum: 60_000, default: 5000 },
        max_unacked_clients: { type: 'integer', minimum: 0, maximum: 100, default: 0 },
      },
    },
  },
} as const;
