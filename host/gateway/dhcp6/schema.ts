// The `dhcp6:` config section: stateful DHCPv6 addresses on the network the router advertisements are for
// (ra.vhid's network), served by kea-dhcp6 in HA hot-standby like the DHCPv4 scopes (docs/gateway.md
// "DHCPv6"). The RA then sets its M and O flags (ra.mode managed or assisted); SLAAC stays the default.
import { keaHaSchema } from '../dhcp/schema.js';
export interface Duid6Mapping { duid: string; address: string; hostname?: string; description?: string }
export interface Dhcp6Config {
  /** Inclusive, inside one /64 of ra.prefixes. */
  range: { from: string; to: string };
  /** Valid lifetime in seconds; preferred 7/8 of it, renew (T1) at 1/2, rebind (T2) at 4/5. */
  lease_time: number;
  /** DNS recursive name servers option; default: the RA's RDNSS address (the DNS VIP). */
  dns_servers?: string[];
  /** Domain search list option. */
  domain_search?: string[];
  static_mappings: Duid6Mapping[];
  ha: { heartbeat_delay_ms: number; max_response_delay_ms: number; max_ack_delay_ms: number; max_unacked_clients: number };
}

const ip6 = { type: 'string', pattern: '^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$' };
const domain = { type: 'string', pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]{0,250}[A-Za-z0-9])?$' };

export const dhcp6Schema = {
  type: 'object', additionalProperties: false, required: ['range'],
  properties: {
    range: {
      type: 'object', additionalProperties: false, required: ['from', 'to'],
      properties: { from: ip6, to: ip6 },
      description: 'the address pool, inside one /64 of ra.prefixes',
    },
    lease_time: { type: 'integer', minimum: 10, maximum: 31_536_000, default: 7200, description: 'valid lifetime (s); preferred 7/8, renew at 1/2, rebind at 4/5' },
    dns_servers: { type: 'array', minItems: 1, maxItems: 8, items: ip6, description: 'default: the RA\'s RDNSS address' },
    domain_search: { type: 'array', minItems: 1, maxItems: 6, items: domain },
    static_mappings: {
      type: 'array', default: [], maxItems: 4096,
      items: {
        type: 'object', additionalProperties: false, required: ['duid', 'address'],
        properties: {
          // A DUID is 2 bytes of type and 1 to 128 bytes of identifier (RFC 8415 §11.1).
          duid: { type: 'string', pattern: '^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){2,129}$', description: 'the client\'s DUID, colon-separated hex' },
          address: ip6,
          hostname: { type: 'string', pattern: '^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$' },
          description: { type: 'string', maxLength: 100 },
        },
      },
    },
    ha: keaHaSchema,
  },
} as const;
