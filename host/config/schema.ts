// The node's configuration: types, the JSON Schema it is validated against, and defaults. One
// human-edited YAML file (comments allowed) per node; see README "Configuration".
export const SCHEMA_VERSION = 1;

export type IfRole = 'wan' | 'lan' | 'sync';
export interface InterfaceConfig {
  device: string; address: string; peer?: string; mac?: string;
  /** This node's IPv6 link-local address here (fe80::/64): the source of its IPv6 CARP adverts. */
  address6?: string;
  /** The peer's IPv6 link-local address here: IPv6 adverts from any other source are refused. */
  peer6?: string;
}
export interface VipConfig {
  interface: IfRole; vhid: number; address: string; password: string; advbase: number; advskew: number; description?: string;
  /** 'virtual': the MASTER answers and sends for the VIP from 00:00:5e:00:01:<vhid> (README "Virtual or real MAC"). */
  mac?: 'real' | 'virtual';
}
export interface Config {
  schema: number;
  node: { name: string; role: 'primary' | 'secondary' };
  interfaces: Record<IfRole, InterfaceConfig>;
  carp: { preempt: boolean; pair_auth?: boolean; vips: VipConfig[] };
  control: { socket: string };
  state_dir: string;
  log: { level: 'debug' | 'info' | 'warn' | 'error' };
  /** Sections owned by later features; validated by their own schemas where present. */
  [section: string]: unknown;
}

const cidr = '^(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}/([0-9]|[12][0-9]|3[0-2])$';
/** An IPv4 network in a.b.c.d/len form (each octet 0-255, len 0-32). */
export const CIDR4 = new RegExp(cidr);
const ipv4 = '^(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}$';
/** A VIP: an IPv4 address/0-32 or an IPv6 one/0-128 (the IPv6 text is checked further in load.ts). */
export const vipAddress = `^(${cidr.slice(1, -1)}|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8]))$`;
/** A link-local IPv6 address (fe80::/64), optionally with its /64. */
export const linkLocal6 = '^[fF][eE]80:[0-9A-Fa-f:]*(/64)?$';

const iface = {
  type: 'object', additionalProperties: false, required: ['device', 'address'],
  properties: {
    // The kernel refuses "." and ".." as interface names (dev_valid_name).
    device: { type: 'string', pattern: '^(?!\\.\\.?$)[A-Za-z0-9_.-]{1,15}$', description: 'kernel interface name (IFNAMSIZ-1)' },
    address: { type: 'string', pattern: cidr, description: "this node's own address/prefix" },
    peer: { type: 'string', pattern: ipv4, description: "the other node's address on this segment" },
    mac: { type: 'string', pattern: '^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$' },
    address6: { type: 'string', pattern: linkLocal6, description: "this node's IPv6 link-local address: the source of its IPv6 CARP adverts" },
    peer6: { type: 'string', pattern: linkLocal6, description: "the other node's IPv6 link-local address on this segment" },
  },
};

export const configSchema = {
  type: 'object',
  required: ['schema', 'node', 'interfaces', 'carp'],
  properties: {
    schema: { const: SCHEMA_VERSION },
    node: {
      type: 'object', additionalProperties: false, required: ['name', 'role'],
      properties: { name: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,31}$' }, role: { enum: ['primary', 'secondary'] } },
    },
    interfaces: {
      type: 'object', additionalProperties: false, required: ['wan', 'lan', 'sync'],
      properties: { wan: iface, lan: iface, sync: iface },
    },
    carp: {
      type: 'object', additionalProperties: false, required: ['vips'],
      properties: {
        preempt: { type: 'boolean', default: true },
        pair_auth: { type: 'boolean', description: 'sign adverts for and demand them from a duogate peer (default: on when peer.key is set)' },
        vips: {
          type: 'array', maxItems: 64,
          items: {
            type: 'object', additionalProperties: false, required: ['interface', 'vhid', 'address', 'password'],
            properties: {
              interface: { enum: ['wan', 'lan', 'sync'] },
              vhid: { type: 'integer', minimum: 1, maximum: 255 },
              address: { type: 'string', pattern: vipAddress, description: 'IPv4 or IPv6 address with its prefix' },
              password: { type: 'string', minLength: 1, secret: true, description: 'at most 19 bytes are used by every CARP implementation' },
              advbase: { type: 'integer', minimum: 1, maximum: 254, default: 1 },
              advskew: { type: 'integer', minimum: 0, maximum: 254, default: 0 },
              description: { type: 'string', maxLength: 200 },
              mac: { enum: ['real', 'virtual'], default: 'real', description: "the VIP's MAC: the NIC's own (real) or CARP's 00:00:5e:00:01:<vhid> (virtual)" },
            },
          },
        },
      },
    },
    control: {
      type: 'object', additionalProperties: false, default: {},
      properties: { socket: { type: 'string', default: '/run/duogate/duogate.sock' } },
    },
    state_dir: { type: 'string', default: '/var/lib/duogate' },
    log: {
      type: 'object', additionalProperties: false, default: {},
      properties: { level: { enum: ['debug', 'info', 'warn', 'error'], default: 'info' } },
    },
  },
} as const;
