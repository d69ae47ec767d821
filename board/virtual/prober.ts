// prober: the LAN client's pinger, run inside the client namespace:
//   ip netns exec dg-client node dist/board/virtual/prober.js \
//       --dst 203.0.113.10 --interval 10 --duration-ms 5000
// Sends ICMP echo requests every --interval ms and prints one JSON line per
// reply {"seq":n,"sent":t,"recv":t} (t = ms since the epoch, from
// performance.timeOrigin + performance.now(), comparable across processes),
// then a summary {"summary":true,"sent":n,"received":n,"lost":n,"interval_ms":x,"via":...}.
// Stops by itself after --duration-ms (then waits --grace-ms for late
// replies), or on SIGTERM/SIGINT (summary printed then too).
//
// Raw ICMP goes through the project's native addon (host/io/native.js). If it
// cannot be loaded, and for an IPv6 --dst, it uses `ping -D` and parses its output.
import { spawn } from 'node:child_process';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

/** The subset of the native addon the prober uses. */
interface NativeIo {
  openRawIp(opts: { proto: number }): number;
  sendTo(fd: number, data: Uint8Array, dst: string): number | void;
  recvInto(fd: number, buf: Uint8Array): number;
  watch(fd: number, cb: () => void): unknown;
  unwatch(handle: unknown): void;
  close(fd: number): void;
}

export interface ProberOptions {
  dst: string;
  intervalMs: number;
  durationMs: number;
  graceMs: number;
  /** Force the `ping` fallback even if the addon loads. */
  forcePing: boolean;
}

export const now = () => performance.timeOrigin + performance.now();

export function parseArgs(argv: string[]): ProberOptions {
  const o: ProberOptions = { dst: '203.0.113.10', intervalMs: 10, durationMs: 10_000, graceMs: 300, forcePing: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    if (a === '--dst') o.dst = v();
    else if (a === '--interval') o.intervalMs = Number(v());
    else if (a === '--duration-ms') o.durationMs = Number(v());
    else if (a === '--grace-ms') o.graceMs = Number(v());
    else if (a === '--ping') o.forcePing = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(o.intervalMs >= 1 && o.intervalMs <= 60_000)) throw new Error('--interval must be 1..60000 ms');
  if (!(o.durationMs > 0 && o.durationMs <= 24 * 3600_000)) throw new Error('--duration-ms must be 1..86400000');
  if (!(o.graceMs >= 0 && o.graceMs <= 10_000)) throw new Error('--grace-ms must be 0..10000');
  if (!isIP(o.dst)) throw new Error('--dst must be an IPv4 or IPv6 address');
  return o;
}

/** Internet checksum over `b`. */
export function inetChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += (b[i]! << 8) | b[i + 1]!;
  if (b.length & 1) sum += b[b.length - 1]! << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}

/** ICMP echo request (type 8) with 56 bytes of payload (8-byte send time first). */
export function echoRequest(id: number, seq: number, sentMs: number): Uint8Array {
  const b = new Uint8Array(64);
  const dv = new DataView(b.buffer);
  b[0] = 8;
  dv.setUint16(4, id & 0xffff);
  dv.setUint16(6, seq & 0xffff);
  dv.setFloat64(8, sentMs);
  for (let i = 16; i < b.length; i++) b[i] = i & 0xff;
  dv.setUint16(2, inetChecksum(b));
  return b;
}

/** Parse an IPv4 datagram carrying an ICMP echo reply; returns {id, seq} or null. */
export function parseEchoReply(pkt: Uint8Array, n: number): { id: number; seq: number } | null {
  if (n < 20 || pkt[0]! >> 4 !== 4) return null;
  const ihl = (pkt[0]! & 0x0f) * 4;
  if (pkt[9] !== 1 || n < ihl + 8) return null;
  if (pkt[ihl] !== 0 || pkt[ihl + 1] !== 0) return null; // echo reply, code 0
  const dv = new DataView(pkt.buffer, pkt.byteOffset, n);
  return { id: dv.getUint16(ihl + 4), seq: dv.getUint16(ihl + 6) };
}

const out = (o: object) => process.stdout.write(JSON.stringify(o) + '\n');

async function loadNative(): Promise<NativeIo | null> {
  try {
    // Specifier in a variable: the addon wrapper may not exist yet at compile time.
    const spec = '../../host/io/native.js';
    const m = (await import(spec)) as { native?: NativeIo };
    return m.native && typeof m.native.openRawIp === 'function' ? m.native : null;
  } catch {
    return null;
  }
}

/** Resolves when SIGTERM/SIGINT arrives or after `ms`. */
function stopSignal(ms: number): { promise: Promise<'timeout' | 'signal'>; cancel: () => void } {
  let timer: NodeJS.Timeout;
  let onSig: () => void;
  const promise = new Promise<'timeout' | 'signal'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    onSig = () => resolve('signal');
    process.once('SIGTERM', onSig);
    process.once('SIGINT', onSig);
  });
  return {
    promise,
    cancel: () => {
      clearTimeout(timer);
      process.off('SIGTERM', onSig);
      process.off('SIGINT', onSig);
    },
  };
}

export async function runNative(nat: NativeIo, fd: number, o: ProberOptions): Promise<void> {
  const id = process.pid & 0xffff;
  const sentAt = new Map<number, number>(); // seq -> send time
  const replied = new Set<number>();
  let sent = 0;
  let received = 0;
  const buf = new Uint8Array(65536);
  const drain = () => {
    for (let i = 0; i < 256; i++) {
      let n: number;
      try {
        n = nat.recvInto(fd, buf);
      } catch {
        continue; // a pending socket error (e.g. from an ICMP error) is consumed by this recv
      }
      if (n <= 0) return;
      const t = now();
      const r = parseEchoReply(buf, n);
      if (!r || r.id !== id) continue;
      const s = sentAt.get(r.seq);
      if (s === undefined || replied.has(r.seq)) continue;
      replied.add(r.seq);
      received++;
      out({ seq: r.seq, sent: s, recv: t });
    }
  };
  const handle = nat.watch(fd, drain);
  const start = now();
  const stop = stopSignal(o.durationMs);
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    if (stopped) return;
    const seq = (sent + 1) & 0xffff; // 1-based like ping; wraps after 65535
    const t = now();
    sentAt.delete(seq);
    replied.delete(seq);
    sentAt.set(seq, t);
    try {
      nat.sendTo(fd, echoRequest(id, seq, t), o.dst);
    } catch {
      /* e.g. ENETUNREACH while the route is gone: counts as lost */
    }
    sent++;
    // Schedule against the start time so the interval does not drift.
    const next = start + sent * o.intervalMs;
    timer = setTimeout(tick, Math.max(0, next - now()));
  };
  tick();
  const why = await stop.promise;
  stopped = true;
  if (timer) clearTimeout(timer);
  stop.cancel();
  // Late replies: wait the grace period (shorter when a signal asked us to stop).
  const grace = why === 'signal' ? Math.min(o.graceMs, 200) : o.graceMs;
  if (grace > 0) {
    const g = stopSignal(grace);
    await g.promise;
    g.cancel();
  }
  drain();
  nat.unwatch(handle);
  nat.close(fd);
  out({ summary: true, sent, received, lost: sent - received, interval_ms: o.intervalMs, via: 'native' });
}

/** Fallback: `ping -D`, one line per reply: "[1700000000.123456] 64 bytes from ...: icmp_seq=3 ttl=63 time=0.061 ms". */
async function runPing(o: ProberOptions): Promise<void> {
  const count = Math.max(1, Math.floor(o.durationMs / o.intervalMs));
  const args = ['-D', '-n', '-i', String(o.intervalMs / 1000), '-W', '1', '-c', String(count), o.dst];
  const cp = spawn('ping', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let sent = 0;
  let received = 0;
  let buf = '';
  const seen = new Set<number>();
  const line = (l: string) => {
    const m = /^\[(\d+\.\d+)\] .*icmp_seq=(\d+) .*time=([\d.]+) ms/.exec(l);
    if (m) {
      const recv = Number(m[1]) * 1000;
      const seq = Number(m[2]);
      if (seen.has(seq)) return; // DUP!
      seen.add(seq);
      received++;
      out({ seq, sent: Math.round((recv - Number(m[3])) * 1000) / 1000, recv });
      return;
    }
    const s = /(\d+) packets transmitted, (\d+) received/.exec(l);
    if (s) sent = Number(s[1]);
  };
  cp.stdout.setEncoding('utf8');
  cp.stdout.on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      line(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  cp.stderr.resume();
  const exited = new Promise<void>((resolve) => cp.once('close', () => resolve()));
  // ping stops by itself after `count` (plus up to 1 s for the last replies);
  // a signal to us becomes SIGINT to ping, which then prints its totals.
  const stop = stopSignal(o.durationMs + o.graceMs + 1500);
  const why = await Promise.race([stop.promise, exited.then(() => 'exit' as const)]);
  stop.cancel();
  if (why !== 'exit') {
    cp.kill('SIGINT');
    const t = setTimeout(() => cp.kill('SIGKILL'), 1000);
    await exited;
    clearTimeout(t);
  }
  if (buf) line(buf);
  if (sent === 0 && received > 0) sent = received;
  out({ summary: true, sent, received, lost: Math.max(0, sent - received), interval_ms: o.intervalMs, via: 'ping' });
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  let o: ProberOptions;
  try {
    o = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`prober: ${(e as Error).message}\n`);
    return 2;
  }
  // IPv6 goes through ping(8): the addon's raw socket is IPv4 ICMP.
  const nat = o.forcePing || o.dst.includes(':') ? null : await loadNative();
  let fd = -1;
  if (nat) {
    try {
      fd = nat.openRawIp({ proto: 1 });
    } catch (e) {
      process.stderr.write(`prober: native raw socket failed (${(e as Error).message}); using ping\n`);
    }
  }
  if (nat && fd >= 0) {
    await runNative(nat, fd, o);
    return 0;
  }
  await runPing(o);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`prober: ${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
