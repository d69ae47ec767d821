// The local control socket: newline-delimited JSON over a UNIX socket (mode 0600, root only). One request per
// line: {"cmd": "status"} → {"ok": true, "result": ...} or {"ok": false, "error": {"code", "message"}}.
// Services register their own commands with handle().
import net from 'node:net';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../log.js';

export type Handler = (req: Record<string, unknown>) => unknown | Promise<unknown>;

export class ControlServer {
  private server: net.Server | null = null;
  private handlers = new Map<string, Handler>();

  constructor(readonly socketPath: string, private readonly log: Logger) {}

  /** Register `cmd`; the function returned unregisters it (only if it is still this handler). */
  handle(cmd: string, h: Handler): () => void {
    this.handlers.set(cmd, h);
    return () => { if (this.handlers.get(cmd) === h) this.handlers.delete(cmd); };
  }

  async listen(): Promise<void> {
    mkdirSync(path.dirname(this.socketPath), { recursive: true });
    rmSync(this.socketPath, { force: true }); // a stale socket from a crashed run
    this.server = net.createServer((sock) => {
      let buf = '';
      sock.setEncoding('utf8');
      sock.on('error', () => {});
      sock.on('data', (d: string) => {
        buf += d;
        if (buf.length > 1 << 20) { sock.destroy(); return; }
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, i); buf = buf.slice(i + 1);
          void this.dispatch(line).then((r) => { if (!sock.destroyed) sock.write(JSON.stringify(r) + '\n'); });
        }
      });
    });
    await new Promise<void>((res, rej) => { this.server!.once('error', rej); this.server!.listen(this.socketPath, () => res()); });
    chmodSync(this.socketPath, 0o600);
  }

  private async dispatch(line: string): Promise<unknown> {
    let req: Record<string, unknown>;
    try { req = JSON.parse(line); } catch { return { ok: false, error: { code: 'DG_ERR_BAD_REQUEST', message: 'request is not JSON' } }; }
    const h = this.handlers.get(String(req.cmd));
    if (!h) return { ok: false, error: { code: 'DG_ERR_UNKNOWN_COMMAND', message: `unknown command "${req.cmd}"; known: ${[...this.handlers.keys()].join(', ')}` } };
    try {
      return { ok: true, result: await h(req) };
    } catch (e) {
      const err = e as Error & { code?: string };
      this.log.warn('control command failed', { cmd: req.cmd, err });
      return { ok: false, error: { code: err.code ?? 'DG_ERR_COMMAND', message: err.message } };
    }
  }

  async close(): Promise<void> {
    if (!this.server) return;
    await new Promise<void>((r) => this.server!.close(() => r()));
    rmSync(this.socketPath, { force: true });
  }
}
