// Load generators for the benches, run inside a board namespace:
//   churn --dst A --port P [--rate R] [--duration-ms D]   R new TCP connections per second to A:P (the echo
//       server of tcpload.ts), each sends one line, waits for the echo and closes: a stream of conntrack
//       states (NEW, ESTABLISHED, FIN, TIME_WAIT) through the gateway. Prints {"opened","echoed","failed"}.
//   xmlrpc --url U --user U --password P --bytes N [--insecure]   POST one XML-RPC call of exactly N bytes
//       (duogate.sync_status with a struct of firewall-rule-shaped members as its parameter) and print
//       {"status","ms","fault"}.
import net from 'node:net';
import https from 'node:https';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    dst: { type: 'string' }, port: { type: 'string', default: '5000' }, rate: { type: 'string', default: '50' },
    'duration-ms': { type: 'string', default: '0' }, url: { type: 'string' }, user: { type: 'string', default: 'duogate' },
    password: { type: 'string' }, bytes: { type: 'string', default: String(16 << 20) },
  },
});

function churn(dst: string, port: number, rate: number, durationMs: number): void {
  const c = { opened: 0, echoed: 0, failed: 0 };
  let open = 0;
  const one = () => {
    if (open > rate * 5) { c.failed++; return; } // a dead path: do not pile up sockets
    open++; c.opened++;
    const s = net.connect({ host: dst, port });
    let done = false;
    const end = (ok: boolean) => { if (done) return; done = true; open--; if (ok) c.echoed++; else c.failed++; s.destroy(); };
    s.setTimeout(5000, () => end(false));
    s.on('connect', () => s.write('churn\n'));
    s.on('data', () => { s.end(); end(true); });
    s.on('error', () => end(false));
  };
  const t = setInterval(one, Math.max(1, Math.round(1000 / rate)));
  const stop = () => { clearInterval(t); setTimeout(() => { process.stdout.write(JSON.stringify(c) + '\n'); process.exit(0); }, 300); };
  if (durationMs > 0) setTimeout(stop, durationMs);
  process.once('SIGTERM', stop);
}

/** An XML-RPC methodCall of exactly `bytes` bytes: struct members shaped like firewall rules, padded. */
function bigCall(bytes: number): Buffer {
  const head = '<?xml version="1.0"?>\n<methodCall><methodName>duogate.sync_status</methodName><params><param><value><struct>';
  const tail = '</struct></value></param></params></methodCall>\n';
  const member = (i: number) => `<member><name>rule_${i}</name><value><struct>`
    + `<member><name>action</name><value><string>pass</string></value></member>`
    + `<member><name>protocol</name><value><string>tcp</string></value></member>`
    + `<member><name>source</name><value><string>lan net</string></value></member>`
    + `<member><name>destination</name><value><string>10.${(i >> 8) & 255}.${i & 255}.0/24</string></value></member>`
    + `<member><name>destination_port</name><value><int>${1000 + (i % 60000)}</int></value></member>`
    + `<member><name>description</name><value><string>rule ${i}</string></value></member>`
    + '</struct></value></member>';
  const parts: string[] = [head];
  let size = Buffer.byteLength(head) + Buffer.byteLength(tail);
  for (let i = 0; ; i++) {
    const m = member(i);
    if (size + m.length > bytes) break;
    parts.push(m); size += m.length;
  }
  // Pad with whitespace between members, which XML-RPC ignores, to hit the size exactly.
  parts.push(' '.repeat(bytes - size), tail);
  return Buffer.from(parts.join(''));
}

function xmlrpc(url: string, user: string, password: string, bytes: number): void {
  const body = bigCall(bytes);
  const t0 = performance.now();
  const req = https.request(url, {
    method: 'POST', rejectUnauthorized: false, auth: `${user}:${password}`,
    headers: { 'content-type': 'text/xml', 'content-length': body.length },
  }, (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const fault = /<name>faultString<\/name><value><string>([^<]*)/.exec(text)?.[1] ?? null;
      process.stdout.write(JSON.stringify({ status: res.statusCode, ms: Math.round(performance.now() - t0), bytes: body.length, fault }) + '\n');
    });
  });
  req.on('error', (e) => process.stdout.write(JSON.stringify({ status: null, ms: Math.round(performance.now() - t0), bytes: body.length, error: e.message }) + '\n'));
  req.end(body);
}

if (positionals[0] === 'churn') churn(values.dst!, Number(values.port), Number(values.rate), Number(values['duration-ms']));
else if (positionals[0] === 'xmlrpc') xmlrpc(values.url!, values.user!, values.password!, Number(values.bytes));
else { process.stderr.write('usage: load-tools churn --dst A --port P [--rate R] [--duration-ms D] | xmlrpc --url U --password P --bytes N\n'); process.exit(2); }
