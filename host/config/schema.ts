// The node's configuration: types, the JSON Schema it is validated against, and defaults. One
// human-edited YAML file (comments allowed) per node; see README "Configuration".
export const SCHEMA_VERSION = 1;

/** The three NIC roles every node has (the image's seed, the console's NIC plan). */
export type IfRole = 'wan' | 'lan' | 'sync';
/**
 * A network's name: an interfaces key. `wan` and `sync` keep their roles; every other name (lan, guest, iot, ...)
 * is an internal network (internalNets).
 */
export type NetName = string;
export interface InterfaceConfig {
  device: string; address: string; peer?: string; mac?: string;
  /** This node's IPv6 link-local address here (fe80::/64): the source of its IPv6 CARP adverts. */
  address6?: string;
  /** The peer's IPv6 link-local address here: IPv6 adverts from any other source are refused. */
  peer6?: string;
  /** 802.1Q id: the network is the sub-interface <device>.<vlan>, which the daemon creates (netDevice). */
  vlan?: number;
  /** WAN only: the upstream IPv6 router (the default IPv6 route; a link-local address is usual). */
  gateway6?: string;
  /** This node's own global IPv6 address/prefix here: it stays with the node (its own traffic, e.g. a BACKUP's). */
  global6?: string;
}
export interface VipConfig {
  interface: NetName; vhid: number; address: string; password: string; advbase: number; advskew: number; description?: string;
  /** 'virtual': the MASTER answers and sends for the VIP from 00:00:5e:00:01:<vhid> (README "Virtual or real MAC"). */
  mac?: 'real' | 'virtual';
}
export interface Config {
  schema: number;
  node: { name: string; role: 'primary' | 'secondary' };
  interfaces: Record<IfRole, InterfaceConfig> & Record<NetName, InterfaceConfig>;
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
    vlan: { type: 'integer', minimum: 1, maximum: 4094, description: '802.1Q VLAN id: the network is a sub-interface of device' },
    gateway6: { type: 'string', pattern: '^[0-9A-Fa-f:]*:[0-9A-Fa-f:]*$', description: 'WAN only: the upstream IPv6 router, the default IPv6 route (e.g. fe80::1)' },
    global6: { type: 'string', pattern: '^[0-9A-Fa-f:]*:[0-9A-Fa-f:]*/([1-9]|[1-9][0-9]|1[01][0-9]|12[0-8])$', description: "this node's own global IPv6 address with its prefix (e.g. 2001:db8:ff::2/64); the VIPs move, this stays" },
  },
};

/** A network name: lower case, short enough for nft chain names and status keys. */
export const NET_NAME = '^[a-z][a-z0-9_]{0,14}$';

/** The internal networks (every interface but wan and sync), lan first, then in config order. */
export function internalNets(c: Pick<Config, 'interfaces'>): NetName[] {
  const names = Object.keys(c.interfaces).filter((n) => n !== 'wan' && n !== 'sync');
  return [...names.filter((n) => n === 'lan'), ...names.filter((n) => n !== 'lan')];
}

/** Every network the node has: wan, the internal ones, sync. */
export function allNets(c: Pick<Config, 'interfaces'>): NetName[] { return ['wan', ...internalNets(c), 'sync']; }

/** The kernel device a network uses: the NIC, or its VLAN sub-interface <device>.<vlan>. */
export function netDevice(ifc: InterfaceConfig): string { return ifc.vlan ? `${ifc.device}.${ifc.vlan}` : ifc.device; }

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
      // wan, lan and sync are required; any other name is one more internal network (README "Networks").
      type: 'object', required: ['wan', 'lan', 'sync'], maxProperties: 8,
      propertyNames: { pattern: NET_NAME },
      properties: { wan: iface, lan: iface, sync: iface },
      additionalProperties: iface,
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
              interface: { type: 'string', pattern: NET_NAME, description: 'an interfaces key: wan, lan, sync or an internal network' },
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
