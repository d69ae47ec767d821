// portscan: a bounded TCP/UDP scan run inside a board namespace (the LAN client or the WAN server), so the
// security test sees the nodes the way a host on that segment does:
//   ip netns exec dgt-scan-client node dist/board/virtual/portscan.js \
//       --targets 192.168.1.1,192.168.1.2 --tcp 1-1024,7443,8001 --udp 53,67,7200 [--timeout-ms 800] [--concurrency 400]
// Prints one JSON line: {"tcp":[...],"udp":[...],"probes":n,"ms":t}, listing only the probes that got any
// response. A response is what a host learns from: TCP "open" (handshake done) or "closed" (RST) or
// "unreachable" (ICMP error); UDP "answer" (a datagram came back) or "closed" (ICMP port unreachable).
// A probe without any response ("silent") is what a drop rule produces, so it is left out.
import net from 'node:net';
import dgram from 'node:dgram';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

export interface Hit { addr: string; port: number; result: string }
export interface ScanResult { tcp: Hit[]; udp: Hit[]; probes: number; ms: number }

/** "1-1024,7443" → [1..1024, 7443], each port once. */
export function parsePorts(spec: string): number[] {
  const out = new Set<number>();
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`portscan: "${part}" is not a port or a range a-b`);
    const a = Number(m[1]); const b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b > 65535 || b < a) throw new Error(`portscan: port range ${part} is outside 1-65535 or reversed`);
    for (let p = a; p <= b; p++) out.add(p);
  }
  return [...out];
}

function probeTcp(addr: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: addr, port });
    const done = (r: string) => { clearTimeout(t); s.destroy(); resolve(r); };
    const t = setTimeout(() => done('silent'), timeoutMs);
    s.once('connect', () => done('open'));
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNREFUSED') done('closed');
      else if (e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH' || e.code === 'EACCES') done(`unreachable (${e.code})`);
      else done(`error (${e.code ?? e.message})`);
    });
  });
}

/** A DNS query for "localhost." A: a resolver answers it from its own data, without asking a forwarder. */
const DNS_QUERY = Buffer.concat([
  Buffer.from([0xd6, 0xd6, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
  Buffer.from([9, ...Buffer.from('localhost'), 0, /* A */ 0, 1, /* IN */ 0, 1]),
]);

function probeUdp(addr: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(addr.includes(':') ? 'udp6' : 'udp4');
    let finished = false;
    const done = (r: string) => { if (finished) return; finished = true; clearTimeout(t); try { s.close(); } catch { /* closed */ } resolve(r); };
    const t = setTimeout(() => done('silent'), timeoutMs);
    s.on('message', () => done('answer'));
    // On a connected UDP socket the kernel reports an ICMP port unreachable as ECONNREFUSED.
    s.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'closed' : `error (${e.code ?? e.message})`));
    s.connect(port, addr, () => {
      const payload = port === 53 ? DNS_QUERY : Buffer.from('duogate-portscan\n');
      // Twice: one lost datagram must not read as silence.
      s.send(payload, (e) => { if (e) done(`error (${(e as NodeJS.ErrnoException).code})`); });
      setTimeout(() => { if (!finished) s.send(payload, () => { /* result comes from message/error */ }); }, Math.min(200, timeoutMs / 3));
    });
  });
}

/** Run probes with at most `concurrency` in flight; each is bounded by its own timeout. */
async function pool<T>(items: T[], concurrency: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => { while (next < items.length) { const i = next++; await fn(items[i]!); } };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

export async function scan(o: { targets: string[]; tcp: number[]; udp: number[]; timeoutMs: number; concurrency: number }): Promise<ScanResult> {
  const t0 = Date.now();
  const res: ScanResult = { tcp: [], udp: [], probes: 0, ms: 0 };
  const jobs: { kind: 'tcp' | 'udp'; addr: string; port: number }[] = [];
  for (const addr of o.targets) {
    for (const port of o.tcp) jobs.push({ kind: 'tcp', addr, port });
    for (const port of o.udp) jobs.push({ kind: 'udp', addr, port });
  }
  await pool(jobs, o.concurrency, async (j) => {
    const r = j.kind === 'tcp' ? await probeTcp(j.addr, j.port, o.timeoutMs) : await probeUdp(j.addr, j.port, o.timeoutMs);
    res.probes++;
    if (r !== 'silent') res[j.kind].push({ addr: j.addr, port: j.port, result: r });
  });
  const order = (a: Hit, b: Hit) => a.addr.localeCompare(b.addr) || a.port - b.port;
  res.tcp.sort(order); res.udp.sort(order);
  res.ms = Date.now() - t0;
  return res;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      targets: { type: 'string' }, tcp: { type: 'string', default: '' }, udp: { type: 'string', default: '' },
      'timeout-ms': { type: 'string', default: '800' }, concurrency: { type: 'string', default: '400' },
    },
  });
  if (!values.targets) throw new Error('portscan: --targets a,b,... is required');
  const timeoutMs = Number(values['timeout-ms']); const concurrency = Number(values.concurrency);
  if (!(timeoutMs >= 50 && timeoutMs <= 10_000)) throw new Error('portscan: --timeout-ms must be 50-10000');
  if (!(concurrency >= 1 && concurrency <= 2000)) throw new Error('portscan: --concurrency must be 1-2000');
  const r = await scan({ targets: values.targets.split(','), tcp: values.tcp ? parsePorts(values.tcp) : [], udp: values.udp ? parsePorts(values.udp) : [], timeoutMs, concurrency });
  process.stdout.write(JSON.stringify(r) + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => { process.stderr.write(`${(e as Error).message}\n`); process.exit(2); });
}
