// The `dns:` config section: a caching resolver (unbound) on the LAN VIP, forwarding to upstream servers.
const ipv4 = '^(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}$';
const cidr = `${ipv4.slice(0, -1)}/([0-9]|[12][0-9]|3[0-2])$`;

export interface DnsConfig {
  forwarders: string[];
  port: number;
  /** Networks allowed to query besides the LAN (which always may). */
  allow: string[];
  /** Local answers: name → IPv4 (A records served by the resolver itself). */
  hosts: Record<string, string>;
}

export const dnsSchema = {
  type: 'object', additionalProperties: false, required: ['forwarders'],
  properties: {
    forwarders: { type: 'array', minItems: 1, maxItems: 8, items: { type: 'string', pattern: ipv4 }, description: 'upstream resolvers, queried from the node\'s own WAN address' },
    port: { type: 'integer', minimum: 1, maximum: 65535, default: 53 },
    // A strict network: a loose one (1.2.3.4/99, 300.1.1.1/24) would be rewritten by the address arithmetic into
    // a different network in the ruleset, and refused by unbound at the next start.
    allow: { type: 'array', default: [], maxItems: 64, items: { type: 'string', pattern: cidr, description: 'a network allowed to query, like 10.10.0.0/16' } },
    hosts: {
      type: 'object', default: {},
      propertyNames: { pattern: '^([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$' },
      additionalProperties: { type: 'string', pattern: ipv4 },
    },
  },
} as const;
