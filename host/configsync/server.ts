// The secondary's XML-RPC server: HTTPS on the sync address only, HTTP Basic credentials, per-source rate
// limit on authentication failures, a body-size limit, and every refusal answered as an XML-RPC fault (plus
// one log line) so the primary can say precisely what went wrong. Calls are serialized (pfSense holds a
// global lock for each call): two pushes never interleave.
//
// Bounded under a flood of connections (docs/gateway.md "Under flood"): each TLS connection costs the daemon
// ~50 KB and each handshake ~1 ms of the event loop CARP runs on, so connections are capped, admitted at a
// bounded rate before any TLS work, and dropped when their handshake or their request stalls.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../log.js';
import { Fault, XmlRpcFault, encodeFault, encodeResponse, type XmlRpcValue } from './xmlrpc.js';
import { OffLoopDecoder } from './decode-worker.js';

export type Method = (params: XmlRpcValue[], from: string) => XmlRpcValue | Promise<XmlRpcValue>;

export interface SyncServerOptions {
  address: string; port: number; key: string; cert: string;
  username: string; password: string;
  maxBodyBytes: number; authMaxFailures: number; authWindowS: number;
  log: Logger;
}

export interface ServerCounters {
  calls: number; faults: number; auth_failures: number; rate_limited: number; malformed: number; too_large: number;
  /** Connections closed at accept: over MAX_CONNECTIONS open, or over the admission rate. */
  refused_busy: number; refused_rate: number;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Connections open at once; the primary makes one call at a time on one connection. Node closes more at accept. */
export const MAX_CONNECTIONS = 16;
/** New connections admitted per second, in bursts of up to ACCEPT_BURST; the rest are closed before any TLS work. */
export const ACCEPT_RATE = 20;
export const ACCEPT_BURST = 40;
/** A handshake not done by then frees its slot (Node's default is 120 s: 16 silent sockets would block syncing). */
const HANDSHAKE_TIMEOUT_MS = 5000;
/** A connection that sends nothing for this long is closed (a stalled request, an idle keep-alive). */
const IDLE_TIMEOUT_MS = 30_000;

export class SyncServer {
  private server: https.Server | null = null;
  private methods = new Map<string, Method>();
  private failures = new Map<string, number[]>();
  private queue: Promise<unknown> = Promise.resolve();
  private tokens = ACCEPT_BURST;
  private reopen: NodeJS.Timeout | null = null;
  private tokensAt = 0;
  /** Large bodies are parsed on a worker thread: seconds of parsing on the event loop would stall CARP. */
  private readonly decoder = new OffLoopDecoder();
  readonly counters: ServerCounters = { calls: 0, faults: 0, auth_failures: 0, rate_limited: 0, malformed: 0, too_large: 0, refused_busy: 0, refused_rate: 0 };

  constructor(private readonly o: SyncServerOptions) {
    this.methods.set('system.listMethods', () => [...this.methods.keys()].sort());
  }

  method(name: string, m: Method): void { this.methods.set(name, m); }

  async listen(): Promise<number> {
    this.server = https.createServer({ key: this.o.key, cert: this.o.cert, minVersion: 'TLSv1.2', handshakeTimeout: HANDSHAKE_TIMEOUT_MS }, (req, res) => void this.onRequest(req, res));
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 120_000;
    this.server.timeout = IDLE_TIMEOUT_MS;
    this.server.maxConnections = MAX_CONNECTIONS;
    this.server.on('drop', () => { if (this.reopen) this.counters.refused_rate++; else this.counters.refused_busy++; });
    // Before the TLS wrapper sees the socket: a refused connection costs no crypto.
    this.server.prependListener('connection', (sock: Socket) => {
      if (this.admit(performance.now())) return;
      this.counters.refused_rate++;
      sock.destroy();
      // Until the bucket holds a token again, Node closes new connections right at accept, before it makes any
      // objects for them: a flood of refused connections then leaves no garbage behind (which had grown the
      // daemon's RSS by ~65 MB in 10 s).
      this.server!.maxConnections = 1;
      this.reopen ??= setTimeout(() => { this.reopen = null; if (this.server) this.server.maxConnections = MAX_CONNECTIONS; }, Math.ceil(1000 / ACCEPT_RATE));
    });
    this.server.on('tlsClientError', (e, s) => { this.o.log.debug('sync TLS handshake failed', { from: s.remoteAddress, err: e }); });
    await new Promise<void>((res, rej) => { this.server!.once('error', rej); this.server!.listen(this.o.port, this.o.address, () => res()); });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    if (this.reopen) { clearTimeout(this.reopen); this.reopen = null; }
    if (!this.server) return;
    await this.decoder.close();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server!.close(() => r()));
    this.server = null;
  }

  /** Token bucket: ACCEPT_RATE connections per second, ACCEPT_BURST at once. */
  private admit(now: number): boolean {
    this.tokens = Math.min(ACCEPT_BURST, this.tokens + ((now - this.tokensAt) * ACCEPT_RATE) / 1000);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  private reply(res: ServerResponse, status: number, body: string): void {
    res.writeHead(status, { 'content-type': 'text/xml; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  private fault(res: ServerResponse, from: string, code: number, msg: string, status = 200): void {
    this.counters.faults++;
    this.o.log.warn('sync call refused', { from, fault: code, reason: msg });
    this.reply(res, status, encodeFault(code, msg));
  }

  /**
   * After refusing an oversized body: read and drop the rest (bounded) so the client, still sending, gets the
   * fault instead of a connection reset; then close.
   */
  private discard(req: IncomingMessage): void {
    let dropped = 0;
    const stop = setTimeout(() => req.socket.destroy(), 10_000);
    req.on('data', (c: Buffer) => { dropped += c.length; if (dropped > 4 * this.o.maxBodyBytes) req.socket.destroy(); });
    req.on('end', () => { clearTimeout(stop); req.socket.end(); });
    req.on('close', () => clearTimeout(stop));
    req.resume();
  }

  /** Seconds `from` must still wait (0 = may try credentials now); failures older than the window are forgotten. */
  private rateLimited(from: string, now: number): number {
    const w = this.o.authWindowS * 1000;
    const f = (this.failures.get(from) ?? []).filter((t) => now - t < w);
    this.failures.set(from, f);
    return f.length >= this.o.authMaxFailures ? Math.ceil((f[0] + w - now) / 1000) : 0;
  }

  private checkAuth(header: string | undefined): boolean {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)$/.exec(header ?? '');
    const given = m ? Buffer.from(m[1], 'base64').toString('utf8') : '';
    // Compare digests so the time taken says nothing about the password.
    return timingSafeEqual(digest(given), digest(`${this.o.username}:${this.o.password}`));
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const from = req.socket.remoteAddress ?? '?';
    this.counters.calls++;
    if (req.method !== 'POST') { res.setHeader('allow', 'POST'); this.fault(res, from, Fault.INVALID_REQUEST, `XML-RPC needs POST, not ${req.method}`, 405); return; }
    const now = performance.now(); // monotonic: a stepped wall clock must not drain or freeze the buckets
    const wait = this.rateLimited(from, now);
    if (wait > 0) {
      this.counters.rate_limited++;
      req.resume();
      this.fault(res, from, Fault.AUTH_RATE_LIMITED, `too many authentication failures from ${from}: refused for ${wait} s more`);
      return;
    }
    if (!this.checkAuth(req.headers.authorization)) {
      this.counters.auth_failures++;
      this.failures.get(from)!.push(now);
      req.resume();
      this.fault(res, from, Fault.AUTH_FAILED, 'authentication failed: wrong username or password (configsync.username/password must match on both nodes)');
      return;
    }
    // No reset on success: the primary's own calls from the same address must not wipe an attacker's count.

    const max = this.o.maxBodyBytes;
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > max) {
      this.counters.too_large++;
      this.fault(res, from, Fault.BODY_TOO_LARGE, `request body of ${declared} bytes exceeds the limit of ${max} (configsync.max_body_bytes)`, 413);
      this.discard(req);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    try {
      for await (const c of req) {
        size += (c as Buffer).length;
        if (size > max) { tooLarge = true; break; }
        chunks.push(c as Buffer);
      }
    } catch { return; } // the client went away
    if (tooLarge) {
      this.counters.too_large++;
      this.fault(res, from, Fault.BODY_TOO_LARGE, `request body exceeds the limit of ${max} bytes (configsync.max_body_bytes)`, 413);
      this.discard(req);
      return;
    }

    let call: { method: string; params: XmlRpcValue[] };
    try { call = await this.decoder.decode(Buffer.concat(chunks)); } catch (e) {
      this.counters.malformed++;
      const f = e instanceof XmlRpcFault ? e : new XmlRpcFault(Fault.PARSE_ERROR, String(e));
      this.fault(res, from, f.faultCode, f.faultString);
      return;
    }
    const m = this.methods.get(call.method);
    if (!m) { this.fault(res, from, Fault.METHOD_NOT_FOUND, `unknown method "${call.method}"; known: ${[...this.methods.keys()].sort().join(', ')}`); return; }
    const run = this.queue.then(() => m(call.params, from));
    this.queue = run.catch(() => {});
    try {
      this.reply(res, 200, encodeResponse(await run));
    } catch (e) {
      if (e instanceof XmlRpcFault) this.fault(res, from, e.faultCode, e.faultString);
      else { this.o.log.error('sync method failed', { method: call.method, err: e }); this.fault(res, from, Fault.INTERNAL, `${call.method} failed: ${(e as Error).message}`); }
    }
  }
}
