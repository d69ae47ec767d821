// The seed file: a few lines a user writes on a laptop onto each box's boot partition (duogate-seed.yaml on
// the FAT ESP) so that the box configures itself on first boot. Pure: text in, duogate config text out.
import { createHash } from 'node:crypto';
import { parse, stringify } from 'yaml';
import { parseConfigText, ConfigError } from '../../host/config/load.js';
import type { Config, IfRole } from '../../host/config/schema.js';

export const ROLES: IfRole[] = ['wan', 'lan', 'sync'];

export interface SeedIf { address?: string; peer?: string; vip?: string; mac?: string; password?: string; description?: string }
export interface Seed {
  role: 'primary' | 'secondary';
  name?: string;
  carp_password?: string;
  /** Config sync (primary pushes to secondary over the sync link, TLS): the shared secret, >= 12 chars. */
  sync_password?: string;
  /** Primary: pin the secondary's certificate (printed on its console at first boot); else trust on first use. */
  sync_peer_fingerprint?: string;
  /**
   * The pair's shared key (the peer heartbeat, and CARP pair authentication: docs/security.md), the same on
   * both boxes. Default: derived from carp_password, so a pair flashed with one seed is authenticated as a pair.
   */
  pair_key?: string;
  wan?: SeedIf; lan?: SeedIf; sync?: SeedIf;
  /** A complete duogate config instead of the short form; used as is (validated). */
  config?: unknown;
}

export class SeedError extends Error {}

/** The reference addressing plan (the pfSense HA guide's, as on the virtual board). */
const PLAN: Record<'primary' | 'secondary', Record<IfRole, { address: string; peer: string }>> = {
  primary: {
    wan: { address: '203.0.113.2/24', peer: '203.0.113.3' },
    lan: { address: '192.168.1.2/24', peer: '192.168.1.3' },
    sync: { address: '172.16.1.1/30', peer: '172.16.1.2' },
  },
  secondary: {
    wan: { address: '203.0.113.3/24', peer: '203.0.113.2' },
    lan: { address: '192.168.1.3/24', peer: '192.168.1.2' },
    sync: { address: '172.16.1.2/30', peer: '172.16.1.1' },
  },
};
const VIP: Record<'wan' | 'lan', { vhid: number; address: string; description: string }> = {
  lan: { vhid: 1, address: '192.168.1.1/24', description: 'LAN gateway' },
  wan: { vhid: 2, address: '203.0.113.1/24', description: 'WAN address for NAT' },
};
const MAC = /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/;

export function parseSeed(text: string, file: string): Seed {
  let doc: unknown;
  try { doc = parse(text); } catch (e) { throw new SeedError(`${file}: not valid YAML: ${(e as Error).message}`); }
  if (!doc || typeof doc !== 'object') throw new SeedError(`${file}: empty; write at least "role: primary|secondary" and "carp_password: ..."`);
  const s = doc as Record<string, unknown>;
  const known = new Set(['role', 'name', 'carp_password', 'sync_password', 'sync_peer_fingerprint', 'pair_key', 'wan', 'lan', 'sync', 'config']);
  for (const k of Object.keys(s)) if (!known.has(k)) throw new SeedError(`${file}: ${k}: unknown key (known: ${[...known].join(', ')})`);
  if (s.role !== 'primary' && s.role !== 'secondary') throw new SeedError(`${file}: role: must be primary or secondary (got ${JSON.stringify(s.role)})`);
  for (const r of ROLES) {
    const v = s[r];
    if (v === undefined) continue;
    if (!v || typeof v !== 'object') throw new SeedError(`${file}: ${r}: must be a map like { address: 192.168.1.2/24, peer: 192.168.1.3 }`);
    for (const k of Object.keys(v)) {
      if (!['address', 'peer', 'vip', 'mac', 'password', 'description'].includes(k)) throw new SeedError(`${file}: ${r}.${k}: unknown key (known: address, peer, vip, mac, password, description)`);
    }
    const mac = (v as SeedIf).mac;
    if (mac !== undefined && !MAC.test(String(mac))) throw new SeedError(`${file}: ${r}.mac: "${mac}" is not a MAC address like 00:1b:21:aa:bb:cc`);
    if (r === 'sync' && ((v as SeedIf).vip || (v as SeedIf).description)) throw new SeedError(`${file}: sync: the sync link carries no VIP`);
  }
  return s as unknown as Seed;
}

/** The node config (YAML text, commented) a seed stands for; validated by the daemon's own loader. */
export function configFromSeed(seed: Seed, file: string): { text: string; config: Config } {
  if (seed.config !== undefined) {
    const text = `# duogate node config, taken verbatim from the seed ${file}\n${stringify(seed.config)}`;
    return { text, config: validated(text, file) };
  }
  const role = seed.role;
  const name = seed.name ?? role;
  const advskew = role === 'primary' ? 0 : 100;
  const ifs = Object.fromEntries(ROLES.map((r) => [r, { ...PLAN[role][r], ...pick(seed[r], ['address', 'peer']) }])) as Record<IfRole, { address: string; peer: string }>;
  const vips: string[] = [];
  for (const r of ['lan', 'wan'] as const) {
    const password = seed[r]?.password ?? seed.carp_password;
    if (!password) throw new SeedError(`${file}: carp_password: missing (or ${r}.password); use the same secret on both boxes`);
    const address = seed[r]?.vip ?? VIP[r].address;
    const description = JSON.stringify(seed[r]?.description ?? VIP[r].description);
    vips.push(`    - { interface: ${r}, vhid: ${VIP[r].vhid}, address: ${address}, password: ${JSON.stringify(password)}, advbase: 1, advskew: ${advskew}, description: ${description} }`);
  }
  // Both boxes get the same seed secret, so both derive the same key; a LAN host knows neither.
  const secret = seed.carp_password ?? `${seed.lan?.password}\n${seed.wan?.password}`;
  const pairKey = seed.pair_key ?? createHash('sha256').update(`duogate pair key v1\n${secret}`).digest('hex');
  const line = (r: IfRole) => `  ${(r + ':').padEnd(5)} { device: ${r}0, address: ${ifs[r].address}, peer: ${ifs[r].peer} }`;
  const text = [
    `# duogate node config, written at first boot from the seed ${file}.`,
    '# Edit here (then: systemctl restart duogate) or from the console menu.',
    'schema: 1',
    'node:',
    `  name: ${name}`,
    `  role: ${role}`,
    '',
    'interfaces:                # NIC roles; devices are named by MAC (/etc/systemd/network/10-duogate-*.link)',
    ...ROLES.map(line),
    '',
    'carp:',
    '  preempt: true',
    '  vips:',
    ...vips,
    '',
    ...(seed.sync_password === undefined ? [] : [
      '',
      `configsync:                # ${role === 'primary' ? 'this node pushes its config (VIPs) to the secondary' : 'this node receives the config from the primary'}`,
      `  password: ${JSON.stringify(seed.sync_password)}`,
      ...(seed.sync_peer_fingerprint ? [`  peer_fingerprint: "${seed.sync_peer_fingerprint}"`] : []),
    ]),
    '',
    'peer:                      # the pair\'s shared key: heartbeat (UDP 7201 on the sync link) and signed CARP adverts',
    `  key: ${JSON.stringify(pairKey)}`,
    '',
    'control:',
    '  socket: /run/duogate/duogate.sock',
    'state_dir: /var/lib/duogate',
    '',
  ].join('\n');
  return { text, config: validated(text, file) };
}

/** MACs the seed pins to roles (wan0/lan0/sync0), if any. */
export function seedMacs(seed: Seed): Partial<Record<IfRole, string>> {
  const out: Partial<Record<IfRole, string>> = {};
  for (const r of ROLES) if (seed[r]?.mac) out[r] = seed[r]!.mac!.toLowerCase();
  return out;
}

function validated(text: string, file: string): Config {
  try { return parseConfigText(text, file); } catch (e) {
    if (e instanceof ConfigError) throw new SeedError(`${file}: the config it gives is invalid: ${e.message}`);
    throw e;
  }
}

function pick<T extends object>(o: T | undefined, keys: string[]): Partial<T> {
  const out: Record<string, unknown> = {};
  if (o) for (const k of keys) if ((o as Record<string, unknown>)[k] !== undefined) out[k] = (o as Record<string, unknown>)[k];
  return out as Partial<T>;
}
