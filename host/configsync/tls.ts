// The node's TLS identity for the sync server: a P-256 key and a self-signed certificate made with Debian's
// openssl CLI at first start (node:crypto cannot issue certificates), kept in <state_dir>/configsync. The
// primary pins it by SHA-256 fingerprint (config, or trust on first use recorded in its own state_dir).
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';

export interface TlsIdentity { key: string; cert: string; fingerprint: string }

/** "AB:CD:..." upper case, the form openssl and Node print. Accepts bare hex too. */
export function normalizeFingerprint(fp: string): string {
  const hex = fp.replace(/:/g, '').toUpperCase();
  return hex.match(/.{2}/g)!.join(':');
}

export function loadOrCreateIdentity(stateDir: string, commonName: string): TlsIdentity {
  const dir = path.join(stateDir, 'configsync');
  const keyFile = path.join(dir, 'sync.key');
  const certFile = path.join(dir, 'sync.crt');
  if (!existsSync(keyFile) || !existsSync(certFile)) {
    const tmp = mkdtempSync(path.join(stateDir, '.tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', path.join(tmp, 'k'), '-out', path.join(tmp, 'c'), '-days', '3650', '-subj', `/CN=${commonName}`,
        '-addext', 'basicConstraints=critical,CA:FALSE'], { stdio: 'pipe', timeout: 20000 });
      // Key first: a crash between the two writes leaves no certificate, so the pair is made again.
      writeFileAtomic(keyFile, readFileSync(path.join(tmp, 'k')), 0o600);
      writeFileAtomic(certFile, readFileSync(path.join(tmp, 'c')), 0o644);
    } catch (e) {
      throw new Error(`cannot create the sync TLS certificate with openssl in ${dir}: ${(e as Error).message.split('\n')[0]} (is the openssl package installed?)`);
    } finally { rmSync(tmp, { recursive: true, force: true }); }
  }
  const cert = readFileSync(certFile, 'utf8');
  return { key: readFileSync(keyFile, 'utf8'), cert, fingerprint: new X509Certificate(cert).fingerprint256 };
}

/** Trust on first use: the peer's fingerprint as first seen, kept in the primary's state_dir. */
export class PinStore {
  readonly file: string;
  constructor(stateDir: string) { this.file = path.join(stateDir, 'configsync', 'peer-fingerprint.json'); }
  get(): { fingerprint: string; peer: string; since: string } | null {
    try { return JSON.parse(readFileSync(this.file, 'utf8')); } catch { return null; }
  }
  set(fingerprint: string, peer: string): void {
    writeFileAtomic(this.file, JSON.stringify({ fingerprint, peer, since: new Date().toISOString() }) + '\n');
  }
}
