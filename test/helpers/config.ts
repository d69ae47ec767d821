// Node config text built one way, for tests that write a config from scratch (unit tests, the state sync and
// config sync labs): the virtual board's addressing for the node's role, the CARP VIPs given, then whatever
// sections the test adds. Tests that start from the board's committed configs use Firmware.writeConfigs.

export interface NodeConfigText {
  /** node.name; default: the role. */
  name?: string;
  role?: 'primary' | 'secondary';
  /** The other node's address on each interface (interfaces.*.peer): all, none, or per interface. Default: all. */
  peers?: boolean | Partial<Record<Iface, boolean>>;
  /** carp.preempt; default: unset (the schema's default). */
  preempt?: boolean;
  /** Lines of carp.vips, each a YAML flow map ("{ interface: lan, vhid: 1, ... }"); default: none. */
  vips?: string[];
  /** More sections, as YAML text. */
  extra?: string;
}

type Iface = 'wan' | 'lan' | 'sync';

const ADDR = {
  primary: { wan: ['203.0.113.2/24', '203.0.113.3'], lan: ['192.168.1.2/24', '192.168.1.3'], sync: ['172.16.1.1/30', '172.16.1.2'] },
  secondary: { wan: ['203.0.113.3/24', '203.0.113.2'], lan: ['192.168.1.3/24', '192.168.1.2'], sync: ['172.16.1.2/30', '172.16.1.1'] },
} as const;

export function nodeConfigText(o: NodeConfigText = {}): string {
  const role = o.role ?? 'primary';
  const withPeer = (n: Iface) => (typeof o.peers === 'object' ? o.peers[n] !== false : o.peers !== false);
  const iface = (n: Iface) => {
    const [address, peer] = ADDR[role][n];
    return `  ${n}: { device: ${n}0, address: ${address}${withPeer(n) ? `, peer: ${peer}` : ''} }`;
  };
  const vips = o.vips ?? [];
  return [
    'schema: 1',
    `node: { name: ${o.name ?? role}, role: ${role} }`,
    'interfaces:', iface('wan'), iface('lan'), iface('sync'),
    'carp:',
    ...(o.preempt === undefined ? [] : [`  preempt: ${o.preempt}`]),
    vips.length ? ['  vips:', ...vips.map((v) => `    - ${v}`)].join('\n') : '  vips: []',
    o.extra ?? '',
  ].join('\n') + '\n';
}
