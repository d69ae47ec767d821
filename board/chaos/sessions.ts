// The chaos harness's TCP traffic, run in the LAN client: `node sessions.js --dst 203.0.113.10 --port 5000
// --sessions 20 --short-per-s 5`. Talks to board/virtual/tcpload.ts's echo server through the gateway (SNAT).
//
// Long sessions: each sends a seeded pseudo-random byte stream (a 64-byte chunk every --interval-ms) and checks
// that every byte comes back unchanged and in order (the echo carries the client's data back through the other
// direction, so both directions are checked byte for byte). A session is lost on a reset, a close, a wrong byte
// or no progress for --stall-ms; it is then replaced by a new one. Short connections: --short-per-s new
// connections a second, each sends one line and expects it back within --short-timeout-ms, then closes.
//
// One JSON line per event on stdout (wall clock `t`, epoch ms):
//   {"ev":"open","id","t"}                       a long session is established
//   {"ev":"lost","id","t","since","opened","why"}  a long session died; `since` = when it last made progress
//   {"ev":"short","t","ok","ms","why"}           one short connection
//   {"ev":"tick","t","alive","echoed"}           once a second
import net from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    dst: { type: 'string', default: '203.0.113.10' }, port: { type: 'string', default: '5000' },
    sessions: { type: 'string', default: '20' }, 'interval-ms': { type: 'string', default: '100' },
    'stall-ms': { type: 'string', default: '15000' }, 'short-per-s': { type: 'string', default: '5' },
    'short-timeout-ms': { type: 'string', default: '3000' }, seed: { type: 'string', default: '1' },
  },
});
const dst = values.dst!;
const port = Number(values.port);
const intervalMs = Number(values['interval-ms']);
const stallMs = Number(values['stall-ms']);
const shortPerS = Number(values['short-per-s']);
const shortTimeoutMs = Number(values['short-timeout-ms']);
const CHUNK = 64;

const out = (o: Record<string, unknown>) => process.stdout.write(JSON.stringify(o) + '\n');

/** xorshift32 byte stream: the same (seed, offset) always gives the same bytes, so the echo can be checked. */
class Stream {
  private x: number;
  constructor(seed: number) { this.x = (seed >>> 0) || 0x9e3779b9; }
  next(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) { let x = this.x; x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; this.x = x >>> 0; b[i] = this.x & 0xff; }
    return b;
  }
}

interface Long { id: number; sock: net.Socket; tx: Stream; expect: Stream; sent: number; echoed: number; opened: number; progressAt: number; dead: boolean; established: boolean }

let nextId = 0;
const longs = new Set<Long>();
let echoedTotal = 0;

function openLong(): void {
  const id = nextId++;
  const seed = (Number(values.seed) * 1_000_003 + id * 7919) >>> 0;
  const sock = net.connect({ host: dst, port });
  const s: Long = { id, sock, tx: new Stream(seed), expect: new Stream(seed), sent: 0, echoed: 0, opened: Date.now(), progressAt: Date.now(), dead: false, established: false };
  longs.add(s);
  sock.setNoDelay(true);
  sock.on('connect', () => { s.established = true; s.opened = s.progressAt = Date.now(); out({ ev: 'open', id, t: s.opened }); });
  sock.on('data', (d: Buffer) => {
    if (s.dead) return;
    const want = s.expect.next(d.length);
    if (!want.equals(d)) { lose(s, `echo byte mismatch at offset ${s.echoed}`); return; }
    s.echoed += d.length; echoedTotal += d.length; s.progressAt = Date.now();
  });
  sock.on('error', (e: NodeJS.ErrnoException) => lose(s, `socket error ${e.code ?? e.message}`));
  sock.on('close', () => lose(s, 'closed by peer'));
}

function lose(s: Long, why: string): void {
  if (s.dead) return;
  s.dead = true;
  s.sock.destroy();
  longs.delete(s);
  // A session that never connected was never established: report it as such (not a lost session).
  out({ ev: 'lost', id: s.id, t: Date.now(), since: s.progressAt, opened: s.opened, established: s.established, why });
  setTimeout(openLong, 1000);
}

const sessions = Number(values.sessions);
for (let i = 0; i < sessions; i++) openLong();

const tick = setInterval(() => {
  const now = Date.now();
  for (const s of [...longs]) {
    if (s.dead) continue;
    // Outstanding data and no progress for stall-ms: the path is gone for this session.
    if (now - s.progressAt > stallMs && (s.sent > s.echoed || !s.established)) { lose(s, `stalled: no progress for ${now - s.progressAt} ms`); continue; }
    // Keep at most 64 KiB outstanding so a long outage does not queue megabytes.
    if (s.established && s.sent - s.echoed < 65536) { s.sock.write(s.tx.next(CHUNK)); s.sent += CHUNK; }
  }
}, intervalMs);

let shortSeq = 0;
function shortConn(): void {
  const t0 = Date.now();
  const line = `short ${shortSeq++} ${t0}\n`;
  let got = '';
  let done = false;
  const sock = net.connect({ host: dst, port });
  const finish = (ok: boolean, why: string) => { if (done) return; done = true; clearTimeout(timer); sock.destroy(); out({ ev: 'short', t: t0, ok, ms: Date.now() - t0, why }); };
  const timer = setTimeout(() => finish(false, 'timeout'), shortTimeoutMs);
  sock.on('connect', () => sock.write(line));
  sock.on('data', (d: Buffer) => { got += d.toString(); if (got === line) finish(true, ''); else if (got.length >= line.length) finish(false, 'wrong echo'); });
  sock.on('error', (e: NodeJS.ErrnoException) => finish(false, e.code ?? e.message));
  sock.on('close', () => finish(got === line, got === line ? '' : 'closed'));
}
const shorts = shortPerS > 0 ? setInterval(shortConn, 1000 / shortPerS) : null;
const ticker = setInterval(() => out({ ev: 'tick', t: Date.now(), alive: [...longs].filter((s) => s.established).length, echoed: echoedTotal }), 1000);

const stop = () => {
  clearInterval(tick); clearInterval(ticker); if (shorts) clearInterval(shorts);
  for (const s of longs) { s.dead = true; s.sock.destroy(); }
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
