// duogate-firstboot: make a freshly flashed box a configured node. Run by duogate-firstboot.service at every
// boot until it has done its job, and by the console menu (assign NICs, set up this node).
//   1. NIC roles by MAC -> /etc/systemd/network/10-duogate-{wan0,lan0,sync0}.link, ports renamed now
//   2. /etc/duogate/duogate.yaml from the seed on the boot partition (or from --role/--password)
//   3. the node's TLS key and self-signed certificate (config sync's identity, <state_dir>/configsync/sync.{key,crt}),
//      fingerprint printed for pinning on the peer
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../../host/io/atomic.js';
import { loadConfig } from '../../host/config/load.js';
import type { Config, IfRole } from '../../host/config/schema.js';
import { configFromSeed, parseSeed, seedMacs, SeedError, ROLES, type Seed } from './seed.js';
import { applyRoles, assignRoles, listNics, rolesPersisted } from './nics.js';

const SEED = '/boot/efi/duogate-seed.yaml';
const CONFIG = '/etc/duogate/duogate.yaml';
const DONE = '/var/lib/duogate/firstboot.done';

const say = (msg: string) => console.log(`duogate-firstboot: ${msg}`);

/** The same files config sync loads (host/configsync/tls.ts), made now so the fingerprint is on the console. */
function tls(stateDir: string, name: string, syncIp: string): void {
  const dir = path.join(stateDir, 'configsync');
  const key = path.join(dir, 'sync.key'), crt = path.join(dir, 'sync.crt');
  if (!existsSync(key) || !existsSync(crt)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-sha256', '-days', '3650',
      '-nodes', '-subj', `/CN=duogate-${name}`, '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', `subjectAltName=IP:${syncIp}`,
      '-keyout', `${key}.tmp`, '-out', `${crt}.tmp`], { stdio: ['ignore', 'ignore', 'pipe'] });
    // Key first, each flushed with its directory entry: a power cut leaves no certificate (the pair is made
    // again at the next boot) or a complete pair, never a certificate whose key is still in the page cache.
    writeFileAtomic(key, readFileSync(`${key}.tmp`), 0o600);
    writeFileAtomic(crt, readFileSync(`${crt}.tmp`), 0o644);
    rmSync(`${key}.tmp`, { force: true }); rmSync(`${crt}.tmp`, { force: true });
    say(`generated the node's TLS key and certificate in ${dir}`);
  }
  const fp = new X509Certificate(readFileSync(crt)).fingerprint256;
  say(`TLS certificate SHA-256 fingerprint: ${fp}`);
}

export function main(argv: string[]): number {
  const { values } = parseArgs({
    args: argv, strict: true,
    options: {
      seed: { type: 'string' }, role: { type: 'string' }, password: { type: 'string' }, name: { type: 'string' },
      nic: { type: 'string', multiple: true }, 'assign-nics': { type: 'boolean' }, force: { type: 'boolean' },
      'list-nics': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(`usage: duogate-firstboot [--seed FILE] [--role primary|secondary --password SECRET [--name NAME]]
                        [--assign-nics [--nic wan=MAC --nic lan=MAC --nic sync=MAC]] [--list-nics] [--force]
  Without options (the boot service): NIC roles, config from ${SEED}, TLS key; once.`);
    return 0;
  }
  if (values['list-nics']) {
    for (const n of listNics()) console.log(`${n.name.padEnd(8)} ${n.mac}  carrier ${n.carrier ? 'yes' : 'no '}  ${n.busPath.replace('/sys/devices/', '')}`);
    return 0;
  }
  const interactive = !!(values.role || values['assign-nics'] || values.seed || values.force);
  if (existsSync(DONE) && !interactive) { say('already done'); return 0; }

  // The seed: a file (boot partition or --seed) or the console's --role/--password.
  let seed: Seed | undefined;
  let seedFile = values.seed ?? SEED;
  if (values.role) {
    seedFile = 'console';
    seed = parseSeed(JSON.stringify({ role: values.role, carp_password: values.password, ...(values.name ? { name: values.name } : {}) }), seedFile);
  } else if (existsSync(seedFile)) {
    seed = parseSeed(readFileSync(seedFile, 'utf8'), seedFile);
  } else if (values.seed) {
    throw new SeedError(`${seedFile}: not found`);
  }

  // 1. NIC roles.
  const pinned: Partial<Record<IfRole, string>> = seed ? seedMacs(seed) : {};
  for (const n of values.nic ?? []) {
    const [r, mac] = n.split('=');
    if (!ROLES.includes(r as IfRole) || !mac) throw new Error(`--nic ${n}: use ROLE=MAC with ROLE wan, lan or sync`);
    pinned[r as IfRole] = mac.toLowerCase();
  }
  if (!rolesPersisted() || values['assign-nics'] || Object.keys(pinned).length) {
    const roles = assignRoles(listNics(), pinned);
    applyRoles(roles);
    for (const r of ROLES) say(`NIC ${roles[r].mac} -> ${r}0`);
  }

  // 2. Config (kept if present: an upgrade carries it over; the console passes --force to replace it).
  let config: Config | undefined;
  if (existsSync(CONFIG) && !values.force && !values.role) {
    say(`${CONFIG} present, kept`);
  } else if (seed) {
    const c = configFromSeed(seed, seedFile);
    writeFileAtomic(CONFIG, c.text, 0o600);
    config = c.config;
    say(`wrote ${CONFIG} from ${seedFile}: node ${c.config.node.name}, role ${c.config.node.role}, ` +
      ROLES.map((r) => `${r}0 ${c.config.interfaces[r].address}`).join(', '));
  } else {
    say(`not configured yet: put duogate-seed.yaml on the boot partition (see duogate-seed.example.yaml there) and reboot, ` +
      `or use the console menu "set up this node"`);
    return 0;
  }

  // 3. Keys.
  config ??= loadConfig(CONFIG);
  tls(config.state_dir, config.node.name, config.interfaces.sync.address.split('/')[0]);

  writeFileAtomic(DONE, `${new Date().toISOString()}\n`, 0o644);
  say('done');
  return 0;
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  try { process.exitCode = main(process.argv.slice(2)); } catch (e) {
    process.stderr.write(`duogate-firstboot: FAILED: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
