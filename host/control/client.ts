// Client side of the control socket, for the CLI and the console.
import net from 'node:net';

export class ControlError extends Error {
  constructor(readonly code: string, message: string) { super(message); this.name = 'ControlError'; }
}

export async function request(socketPath: string, req: Record<string, unknown>, timeoutMs = 5000): Promise<any> {
  return await new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new ControlError('DG_ERR_TIMEOUT', `no answer from the daemon on ${socketPath} within ${timeoutMs} ms`)); }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (d: string) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i < 0) return;
      clearTimeout(timer);
      sock.end();
      const r = JSON.parse(buf.slice(0, i));
      if (r.ok) resolve(r.result); else reject(new ControlError(r.error.code, r.error.message));
    });
    // A daemon going down (a restart) closes the connection unanswered: say so now, not at the timeout.
    sock.on('close', () => {
      clearTimeout(timer);
      reject(new ControlError('DG_ERR_NO_ANSWER', `the daemon on ${socketPath} closed the connection without answering (restarting?); try again`));
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new ControlError('DG_ERR_NO_DAEMON', e.code === 'ENOENT' || e.code === 'ECONNREFUSED'
        ? `the daemon is not running (no control socket at ${socketPath}); start it with "duogate run --config FILE"`
        : `control socket ${socketPath}: ${e.message}`));
    });
  });
}
