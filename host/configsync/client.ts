// The primary's XML-RPC client. TLS is opened first and the peer's certificate checked against the pin
// before a single byte of the request (credentials included) is written. Every failure becomes a SyncError
// with a class the status shows: unreachable, tls, authentication, version, rejected, protocol.
import http from 'node:http';
import tls from 'node:tls';
import { Fault, XmlRpcFault, decodeResponse, encodeCall, type XmlRpcValue } from './xmlrpc.js';
import { normalizeFingerprint } from './tls.js';

export type FailureClass = 'unreachable' | 'tls' | 'authentication' | 'version' | 'rejected' | 'protocol';

export class SyncError extends Error {
  constructor(readonly cls: FailureClass, message: string, readonly faultCode?: number) { super(message); this.name = 'SyncError'; }
}

export interface ClientOptions {
  host: string; port: number; username: string; password: string;
  /** Expected SHA-256 fingerprint; null = accept any and report it (trust on first use). */
  pin: string | null;
  connectTimeoutMs?: number; callTimeoutMs?: number;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE', 'EADDRNOTAVAIL', 'ENETDOWN', 'EHOSTDOWN']);

export class SyncClient {
  /** Fingerprint of the certificate the peer presented last. */
  seenFingerprint: string | null = null;
  constructor(private readonly o: ClientOptions) {}

  private connect(): Promise<tls.TLSSocket> {
    const timeout = this.o.connectTimeoutMs ?? 3000;
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: this.o.host, port: this.o.port, rejectUnauthorized: false, servername: undefined, minVersion: 'TLSv1.2' });
      const timer = setTimeout(() => { s.destroy(); reject(new SyncError('unreachable', `no TLS connection to ${this.o.host}:${this.o.port} within ${timeout} ms`)); }, timeout);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        const fp = s.getPeerCertificate()?.fingerprint256;
        this.seenFingerprint = fp ?? null;
        if (!fp) { s.destroy(); reject(new SyncError('tls', `${this.o.host}:${this.o.port} presented no certificate`)); return; }
        if (this.o.pin && normalizeFingerprint(this.o.pin) !== fp) {
          s.destroy();
          reject(new SyncError('tls', `the peer's certificate ${fp} is not the pinned ${normalizeFingerprint(this.o.pin)}: a different box, or its key was regenerated (check it, then update configsync.peer_fingerprint or remove the trust-on-first-use record)`));
          return;
        }
        resolve(s);
      });
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        if (e.code && UNREACHABLE.has(e.code)) reject(new SyncError('unreachable', `cannot reach ${this.o.host}:${this.o.port}: ${e.code}`));
        else reject(new SyncError('tls', `TLS handshake with ${this.o.host}:${this.o.port} failed: ${e.message}`));
      });
    });
  }

  async call(method: string, params: XmlRpcValue[]): Promise<XmlRpcValue> {
    const sock = await this.connect();
    const body = encodeCall(method, params);
    const timeout = this.o.callTimeoutMs ?? 60_000;
    const xml = await new Promise<string>((resolve, reject) => {
      const req = http.request({
        createConnection: () => sock, method: 'POST', path: '/RPC2', host: this.o.host,
        auth: `${this.o.username}:${this.o.password}`, // no agent: createConnection hands over the pinned socket
        headers: { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body), 'user-agent': 'duogate-configsync' },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (res.statusCode !== 200 && !text.includes('<methodResponse')) reject(new SyncError('protocol', `${method}: HTTP ${res.statusCode} without an XML-RPC answer`));
          else resolve(text);
        });
        res.on('error', (e) => reject(new SyncError('unreachable', `${method}: connection lost: ${e.message}`)));
      });
      req.setTimeout(timeout, () => req.destroy(new SyncError('unreachable', `${method}: no answer within ${timeout} ms`)));
      req.on('error', (e: NodeJS.ErrnoException) => reject(e instanceof SyncError ? e : new SyncError('unreachable', `${method}: ${e.code ?? e.message}`)));
      req.end(body);
    });
    try { return decodeResponse(xml); } catch (e) {
      if (!(e instanceof XmlRpcFault)) throw new SyncError('protocol', `${method}: ${(e as Error).message}`);
      throw classifyFault(method, e);
    }
  }
}

export function classifyFault(method: string, f: XmlRpcFault): SyncError {
  const cls: FailureClass = f.faultCode === Fault.AUTH_FAILED || f.faultCode === Fault.AUTH_RATE_LIMITED ? 'authentication'
    : f.faultCode === Fault.VERSION_MISMATCH ? 'version'
      : f.faultCode === Fault.INVALID_CONFIG || f.faultCode === Fault.APPLY_FAILED || f.faultCode === Fault.NOT_SECONDARY ? 'rejected'
        : 'protocol';
  return new SyncError(cls, `${method}: fault ${f.faultCode}: ${f.faultString}`, f.faultCode);
}
