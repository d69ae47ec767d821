// Mutual TLS between the two Kea servers (HA+MT listener and client), the authentication Kea 2.2 enforces on
// its HA listener (basic auth it does not check: kea.ts). Both nodes need an identity the other trusts without
// an exchange, so the pair shares one: an Ed25519 key derived from a secret both already hold and never sync,
// and a self-signed certificate for it with fixed serial and validity (2000-2099, so clock skew between the
// nodes or a box that booted without NTP never makes the peer's certificate "not yet valid"). Ed25519 signs
// deterministically, so both nodes make byte-identical certificates: OpenSSL accepts a self-signed peer
// certificate only if that exact certificate is in its trust store. Whoever holds the secret can be the peer,
// exactly as with the other inter-node keys.
import { createHmac, createPrivateKey } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/schema.js';
import { parseCidr } from '../../config/net.js';
import { writeFileAtomic } from '../../io/atomic.js';

/** PKCS#8 DER header of an Ed25519 private key; the 32-byte seed follows. */
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * The secret the pair already shares and never syncs: statesync.key, else peer.key, else configsync.password.
 * Both nodes must have the same one, or their Kea servers cannot talk.
 */
export function pairSecret(c: Config): { source: string; value: string } | null {
  const cands: [string, unknown][] = [
    ['statesync.key', (c.statesync as { key?: unknown } | undefined)?.key],
    ['peer.key', (c.peer as { key?: unknown } | undefined)?.key],
    ['configsync.password', (c.configsync as { password?: unknown } | undefined)?.password],
  ];
  const hit = cands.find(([, v]) => typeof v === 'string' && v.length > 0);
  return hit ? { source: hit[0], value: hit[1] as string } : null;
}

export function haTlsPaths(stateDir: string) {
  const dir = path.join(stateDir, 'kea', 'tls');
  return { dir, key: path.join(dir, 'ha.key'), cert: path.join(dir, 'ha.crt'), id: path.join(dir, 'ha.id') };
}

/** The pair's private key (PKCS#8 PEM), the same on both nodes for the same secret. */
export function pairKeyPem(secret: string): string {
  const seed = createHmac('sha256', secret).update('duogate kea-ha tls key v1').digest();
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8, seed]), format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** Both sync addresses, sorted, so the two nodes build the same certificate contents. */
function syncAddresses(c: Config): string[] {
  return [parseCidr(c.interfaces.sync.address).ip, c.interfaces.sync.peer].filter((x): x is string => !!x).sort();
}

/**
 * Make (or keep) this node's copy of the pair's key and certificate under state_dir/kea/tls. Made again when the
 * secret or the sync addresses change. Throws naming what failed (openssl missing, no shared secret).
 */
export function ensureHaTls(c: Config, stateDir = c.state_dir): { key: string; cert: string; source: string; id: string } {
  const secret = pairSecret(c);
  if (!secret) throw new Error('dhcp: Kea HA TLS needs a secret the pair shares: set statesync.key, peer.key or configsync.password (the same on both nodes)');
  const p = haTlsPaths(stateDir);
  const sans = syncAddresses(c);
  // Says what the files were made from without revealing the secret.
  const id = createHmac('sha256', secret.value).update(`duogate kea-ha tls id v1 ${sans.join(',')}`).digest('hex');
  if (existsSync(p.key) && existsSync(p.cert) && existsSync(p.id) && readFileSync(p.id, 'utf8').trim() === id) {
    return { key: p.key, cert: p.cert, source: secret.source, id };
  }
  const tmp = mkdtempSync(path.join(stateDir, '.kea-tls-'));
  try {
    const key = path.join(tmp, 'k.pem');
    writeFileSync(key, pairKeyPem(secret.value), { mode: 0o600 });
    writeFileSync(path.join(tmp, 'index.txt'), '');
    writeFileSync(path.join(tmp, 'serial'), '01\n');
    // `openssl ca` is the CLI that takes an explicit start date; a throwaway database in tmp.
    writeFileSync(path.join(tmp, 'ca.cnf'), [
      '[ ca ]', 'default_ca = d', '[ d ]', `database = ${tmp}/index.txt`, `new_certs_dir = ${tmp}`, `serial = ${tmp}/serial`,
      'default_md = sha256', 'policy = p', 'unique_subject = no', '[ p ]', 'commonName = supplied', '[ ext ]',
      'basicConstraints = critical,CA:TRUE', 'keyUsage = critical,digitalSignature,keyCertSign',
      'extendedKeyUsage = serverAuth,clientAuth', `subjectAltName = ${sans.map((a) => `IP:${a}`).join(',')}`,
      'subjectKeyIdentifier = hash', '',
    ].join('\n'));
    const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe', timeout: 20_000, cwd: tmp });
    run(['req', '-new', '-key', key, '-subj', '/CN=duogate-kea-ha', '-out', path.join(tmp, 'csr.pem')]);
    run(['ca', '-batch', '-selfsign', '-config', path.join(tmp, 'ca.cnf'), '-keyfile', key, '-in', path.join(tmp, 'csr.pem'),
      '-out', path.join(tmp, 'crt.pem'), '-startdate', '20000101000000Z', '-enddate', '20991231235959Z', '-extensions', 'ext', '-notext']);
    // Key first: a crash between the writes leaves a stale id, so everything is made again.
    writeFileAtomic(p.key, readFileSync(key), 0o600);
    writeFileAtomic(p.cert, readFileSync(path.join(tmp, 'crt.pem')), 0o644);
    writeFileAtomic(p.id, id + '\n', 0o600);
  } catch (e) {
    throw new Error(`cannot make the Kea HA TLS certificate with openssl in ${p.dir}: ${(e as Error).message.split('\n')[0]} (is the openssl package installed?)`);
  } finally { rmSync(tmp, { recursive: true, force: true }); }
  return { key: p.key, cert: p.cert, source: secret.source, id };
}
