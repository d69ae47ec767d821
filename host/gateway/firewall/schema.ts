// The `firewall:` and `nat:` config sections: types and JSON Schemas (the firewall feature: feature.ts).
// Rules follow pfSense's model: a list per interface, evaluated top-down for traffic *entering* that
// interface, first match wins; what no rule passes is blocked.
import { NET_NAME, type Config, type NetName } from '../../config/schema.js';

export type Action = 'pass' | 'block' | 'reject';
/** A network name (an interfaces key): lan, wan, sync, or an internal network such as guest. */
export type IfName = NetName;
/** An address spec: 'any', 'lan net', 'wan address', an alias name, 1.2.3.4, 10.0.0.0/8; '!' in front negates. */
export type AddrSpec = string;
/** A port spec: 443, '8000-8080', a port alias name, or a list of those. */
export type PortSpec = number | string | (number | string)[];

export interface FirewallRule {
  action: Action;
  protocol: string;
  source: AddrSpec;
  source_port?: PortSpec;
  destination: AddrSpec;
  destination_port?: PortSpec;
  log: boolean;
  disabled: boolean;
  description?: string;
}
export interface Alias { type: 'host' | 'network' | 'port'; entries: (string | number)[]; description?: string }
export interface FirewallConfig {
  aliases: Record<string, Alias>;
  /** Per interface; a missing list means the default (LAN: pass LAN net to any; any other: nothing). */
  rules: Partial<Record<IfName, FirewallRule[]>>;
}
export interface OutboundRule {
  interface: IfName;
  source: AddrSpec;
  destination: AddrSpec;
  protocol: string;
  destination_port?: PortSpec;
  /** 'vip' (the interface's first CARP VIP), 'interface address' (masquerade), or an IPv4 address. */
  translation: string;
  no_nat: boolean;
  description?: string;
}
export interface PortForward {
  interface: IfName;
  protocol: 'tcp' | 'udp' | 'tcp/udp';
  /** Default: the interface's first CARP VIP. */
  destination?: string;
  destination_port: PortSpec;
  target: string;
  target_port?: number;
  description?: string;
}
export interface NatConfig {
  outbound: { mode: 'automatic' | 'hybrid' | 'manual' | 'disabled'; rules: OutboundRule[] };
  port_forwards: PortForward[];
}

const ipv4 = '^(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}$';
const portItem = { anyOf: [{ type: 'integer', minimum: 1, maximum: 65535 }, { type: 'string', pattern: '^([0-9]{1,5}(-[0-9]{1,5})?|[A-Za-z_][A-Za-z0-9_]{0,31})$' }] };
const portSpec = { anyOf: [portItem, { type: 'array', minItems: 1, maxItems: 64, items: portItem }] };
const addrSpec = { type: 'string', minLength: 1, maxLength: 64, description: "any | <network> net | <network> address | alias | IPv4 | IPv4/prefix, optionally prefixed with '!'" };
const protocol = { type: 'string', pattern: '^(any|tcp|udp|tcp/udp|icmp|icmpv6|carp|[0-9]{1,3})$', description: 'any, tcp, udp, tcp/udp, icmp, icmpv6, carp or an IP protocol number' };
const description = { type: 'string', maxLength: 100 };

const rule = {
  type: 'object', additionalProperties: false, required: ['action'],
  properties: {
    action: { enum: ['pass', 'block', 'reject'] },
    protocol: { ...protocol, default: 'any' },
    source: { ...addrSpec, default: 'any' },
    source_port: portSpec,
    destination: { ...addrSpec, default: 'any' },
    destination_port: portSpec,
    log: { type: 'boolean', default: false },
    disabled: { type: 'boolean', default: false },
    description,
  },
};

export const firewallSchema = {
  type: 'object', additionalProperties: false, default: {},
  properties: {
    aliases: {
      type: 'object', default: {},
      propertyNames: { pattern: '^[A-Za-z_][A-Za-z0-9_]{0,31}$' },
      additionalProperties: {
        type: 'object', additionalProperties: false, required: ['type', 'entries'],
        properties: {
          type: { enum: ['host', 'network', 'port'] },
          entries: { type: 'array', maxItems: 4096, items: { type: ['string', 'integer'] } },
          description,
        },
      },
    },
    rules: {
      // One list per network (an interfaces key; compile refuses a name the node does not have).
      type: 'object', default: {},
      propertyNames: { pattern: NET_NAME },
      additionalProperties: { type: 'array', maxItems: 10000, items: rule },
    },
  },
} as const;

export const natSchema = {
  type: 'object', additionalProperties: false, default: {},
  properties: {
    outbound: {
      type: 'object', additionalProperties: false, default: {},
      properties: {
        mode: { enum: ['automatic', 'hybrid', 'manual', 'disabled'], default: 'automatic' },
        rules: {
          type: 'array', default: [], maxItems: 500,
          items: {
            type: 'object', additionalProperties: false, required: ['interface'],
            properties: {
              interface: { type: 'string', pattern: NET_NAME },
              source: { ...addrSpec, default: 'any' },
              destination: { ...addrSpec, default: 'any' },
              protocol: { ...protocol, default: 'any' },
              destination_port: portSpec,
              translation: { type: 'string', default: 'vip', description: "'vip', 'interface address' or an IPv4 address" },
              no_nat: { type: 'boolean', default: false },
              description,
            },
          },
        },
      },
    },
    port_forwards: {
      type: 'array', default: [], maxItems: 500,
      items: {
        type: 'object', additionalProperties: false, required: ['interface', 'protocol', 'destination_port', 'target'],
        properties: {
          interface: { type: 'string', pattern: NET_NAME },
          protocol: { enum: ['tcp', 'udp', 'tcp/udp'] },
          destination: { type: 'string', pattern: ipv4 },
          destination_port: portSpec,
          target: { type: 'string', pattern: ipv4 },
          target_port: { type: 'integer', minimum: 1, maximum: 65535 },
          description,
        },
      },
    },
  },
} as const;

/** The sections with defaults filled (a config without `firewall:` still gets the default rules). */
export function firewallOf(c: Config): FirewallConfig {
  const f = (c.firewall ?? {}) as Partial<FirewallConfig>;
  return { aliases: f.aliases ?? {}, rules: f.rules ?? {} };
}
export function natOf(c: Config): NatConfig {
  const n = (c.nat ?? {}) as Partial<NatConfig>;
  return { outbound: { mode: n.outbound?.mode ?? 'automatic', rules: n.outbound?.rules ?? [] }, port_forwards: n.port_forwards ?? [] };
}
