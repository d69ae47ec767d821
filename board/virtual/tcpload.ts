// TCP load for failover tests: long-lived echo sessions and a checksummed bulk download.
//
//   server: node tcpload.js server [--port 5000] [--download-port 5001]
//   client: node tcpload.js client --dst 203.0.113.10 [--sessions 20] [--interval-ms 50]
//                                 [--download-bytes N --download-rate-mbps R] [--stall-ms 12000] [--grace-ms 3000]
//
// Each echo session sends a numbered line every interval and checks that every line comes back, in order
// and unchanged. The download streams N bytes (a seeded pseudo-random 1 MiB block, repeated) paced to R
// MB/s and checks the SHA-256 and length. The client runs until SIGTERM/SIGINT (or --duration-ms), then
// stops sending, waits up to --grace-ms for outstanding echoes and the download, and prints one JSON line:
// {"summary":true,"sessions_total","sessions_survived","echoes","errors":[...],"download_ok",...}.
// A session fails on a reset/close, a wrong line, or an echo outstanding longer than --stall-ms.
import net from 'node:net';
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';

const BLOCK = 1 << 20;

function block(seed: number): Buffer {
  const b = Buffer.allocUnsafe(BLOCK);
  let x = (seed >>> 0) || 0x9e3779b9;
  for (let i = 0; i < BLOCK; i += 4) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b.writeUInt32LE(x, i); }
  return b;
}

function expectedHash(bytes: number, seed: number): string {
  const b = block(seed); const h = createHash('sha256');
  let left = bytes;
  while (left > 0) { const n = Math.min(left, BLOCK); h.update(n === BLOCK ? b : b.subarray(0, n)); left -= n; }
  return h.digest('hex');
}

function server(port: number, dport: number): void {
  net.createServer((s) => { s.setNoDelay(true); s.on('error', () => {}); s.pipe(s); }).listen(port);
  net.createServer((s) => {
    s.on('error', () => {});
    let req = '';
    s.on('data', function onReq(d: Buffer) {
      req += d.toString();
      const i = req.indexOf('\n');
      if (i < 0) return;
      s.off('data', onReq);
      const [bytes, rate, seed] = req.slice(0, i).split(' ').map(Number);
      const b = block(seed);
      const t0 = Date.now();
      let sent = 0;
      const pump = () => {
        // Pace to `rate` MB/s: never more than the schedule allows, so the stream spans a failover.
        while (sent < bytes) {
          const allowed = rate > 0 ? ((Date.now() - t0) / 1000) * rate * 1e6 + 256 * 1024 : Infinity;
          if (sent >= allowed) { setTimeout(pump, 5); return; }
          const off = sent % BLOCK;
          const n = Math.min(bytes - sent, BLOCK - off, 64 * 1024);
          sent += n;
          if (!s.write(b.subarray(off, off + n))) { s.once('drain', pump); return; }
        }
        s.end();
      };
      pump();
    });
  }).listen(dport);
  process.stdout.write(JSON.stringify({ listening: true, port, download_port: dport }) + '\n');
}

interface Session { id: number; sock: net.Socket; sent: number; echoed: number; buf: string; failed: string | null; oldestAt: number; lastEchoAt: number; maxGapMs: number }

async function client(o: { dst: string; port: number; dport: number; sessions: number; interval: number; bytes: number; rate: number; stall: number; grace: number; duration: number; seed: number }): Promise<void> {
  const sessions: Session[] = [];
  const errors: string[] = [];
  const fail = (s: Session, why: string) => { if (!s.failed) { s.failed = why; errors.push(`session ${s.id}: ${why}`); } };
  const line = (s: Session, n: number) => `${s.id} ${n} ${'x'.repeat(40)}\n`;
  for (let i = 0; i < o.sessions; i++) {
    const sock = net.connect({ host: o.dst, port: o.port });
    const s: Session = { id: i, sock, sent: 0, echoed: 0, buf: '', failed: null, oldestAt: 0, lastEchoAt: Date.now(), maxGapMs: 0 };
    sock.setNoDelay(true);
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      s.buf += d;
      for (let k = s.buf.indexOf('\n'); k >= 0; k = s.buf.indexOf('\n')) {
        const got = s.buf.slice(0, k + 1); s.buf = s.buf.slice(k + 1);
        if (got !== line(s, s.echoed)) { fail(s, `echo ${s.echoed} wrong: ${JSON.stringify(got.slice(0, 30))}`); return; }
        s.echoed++;
        const now = Date.now();
        s.maxGapMs = Math.max(s.maxGapMs, now - s.lastEchoAt); s.lastEchoAt = now;
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => fail(s, `socket error ${e.code ?? e.message}`));
    sock.on('close', () => { if (!s.failed && !stopping) fail(s, 'closed by peer'); });
    sessions.push(s);
  }
  let stopping = false;
  const tick = setInterval(() => {
    const now = Date.now();
    for (const s of sessions) {
      if (s.failed) continue;
      if (s.sent > s.echoed && now - s.lastEchoAt > o.stall) { fail(s, `stalled: no echo for ${now - s.lastEchoAt} ms`); s.sock.destroy(); continue; }
      if (s.sock.readyState === 'open') s.sock.write(line(s, s.sent++));
    }
  }, o.interval);

  // Download.
  let dl: { ok: boolean; bytes: number; ms: number; why: string } | null = null;
  const dlDone = o.bytes > 0 ? new Promise<void>((resolve) => {
    const t0 = Date.now();
    const h = createHash('sha256');
    let got = 0;
    const sock = net.connect({ host: o.dst, port: o.dport }, () => sock.write(`${o.bytes} ${o.rate} ${o.seed}\n`));
    let lastData = Date.now();
    // A stalled download (no byte for --stall-ms) is a dead session: fail it instead of waiting forever.
    const watchdog = setInterval(() => {
      if (Date.now() - lastData > o.stall) { clearInterval(watchdog); dl = { ok: false, bytes: got, ms: Date.now() - t0, why: `stalled: no data for ${o.stall} ms at ${got} bytes` }; sock.destroy(); resolve(); }
    }, 250);
    sock.on('close', () => clearInterval(watchdog));
    sock.on('data', (d: Buffer) => { got += d.length; lastData = Date.now(); h.update(d); });
    sock.on('error', (e: NodeJS.ErrnoException) => { dl = { ok: false, bytes: got, ms: Date.now() - t0, why: `socket error ${e.code}` }; resolve(); });
    sock.on('end', () => {
      if (dl) return;
      const ok = got === o.bytes && h.digest('hex') === expectedHash(o.bytes, o.seed);
      dl = { ok, bytes: got, ms: Date.now() - t0, why: ok ? '' : got !== o.bytes ? `short: ${got} of ${o.bytes}` : 'checksum mismatch' };
      resolve();
    });
  }) : Promise.resolve();

  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve); process.once('SIGINT', resolve);
    if (o.duration > 0) setTimeout(resolve, o.duration);
    // A download-only client ends with its download.
    if (o.sessions === 0 && o.bytes > 0) void dlDone.then(resolve);
  });
  clearInterval(tick);
  // Let outstanding echoes come back, and the download finish.
  const end = Date.now() + o.grace;
  while (Date.now() < end && sessions.some((s) => !s.failed && s.echoed < s.sent)) await new Promise((r) => setTimeout(r, 20));
  if (o.bytes > 0) await Promise.race([dlDone, new Promise((r) => setTimeout(r, Math.max(0, end - Date.now()) + o.grace))]);
  stopping = true;
  for (const s of sessions) { if (!s.failed && s.echoed < s.sent) fail(s, `${s.sent - s.echoed} echoes missing`); if (!s.failed && s.sent === 0) fail(s, 'never connected'); s.sock.destroy(); }
  const d = dl as { ok: boolean; bytes: number; ms: number; why: string } | null;
  process.stdout.write(JSON.stringify({
    summary: true, sessions_total: sessions.length, sessions_survived: sessions.filter((s) => !s.failed).length,
    echoes: sessions.reduce((a, s) => a + s.echoed, 0), max_echo_gap_ms: Math.max(0, ...sessions.map((s) => s.maxGapMs)),
    errors: errors.slice(0, 20), download: o.bytes > 0, download_ok: d?.ok ?? false, download_bytes: d?.bytes ?? 0,
    download_ms: d?.ms ?? null, download_error: d ? d.why : o.bytes > 0 ? 'not finished' : '',
  }) + '\n');
  process.exit(0);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string', default: '5000' }, 'download-port': { type: 'string', default: '5001' }, dst: { type: 'string' },
    sessions: { type: 'string', default: '20' }, 'interval-ms': { type: 'string', default: '50' },
    'download-bytes': { type: 'string', default: '0' }, 'download-rate-mbps': { type: 'string', default: '0' },
    'stall-ms': { type: 'string', default: '12000' }, 'grace-ms': { type: 'string', default: '3000' },
    'duration-ms': { type: 'string', default: '0' }, seed: { type: 'string', default: '1' },
  },
});
if (positionals[0] === 'server') server(Number(values.port), Number(values['download-port']));
else if (positionals[0] === 'client' && values.dst) {
  void client({
    dst: values.dst, port: Number(values.port), dport: Number(values['download-port']), sessions: Number(values.sessions),
    interval: Number(values['interval-ms']), bytes: Number(values['download-bytes']), rate: Number(values['download-rate-mbps']),
    stall: Number(values['stall-ms']), grace: Number(values['grace-ms']), duration: Number(values['duration-ms']), seed: Number(values.seed),
  });
} else {
  process.stderr.write('usage: tcpload server [--port P] [--download-port P] | tcpload client --dst ADDR [--sessions N] [--interval-ms MS] [--download-bytes N --download-rate-mbps R]\n');
  process.exit(2);
}
