// IPv6 state sync against a real kernel, in a network namespace of its own: entries the kernel made (inserted by
// conntrack(8), not by our builder) come back in our AF_UNSPEC dump together with IPv4 ones and parse into the
// IPv6 table; the peer's core turns the upsert6 into a create the kernel takes (the same tuple, ESTABLISHED,
// liberal), and a delete6 into a delete the kernel takes.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const url = (p: string) => JSON.stringify(pathToFileURL(join(root, p)).href);
const ns = `dgtest-ct6-${process.pid}`;

t.teardown(() => { try { execFileSync('ip', ['netns', 'del', ns]); } catch { /* gone */ } });

t.test('kernel → dump → upsert6 → the peer\'s kernel, and delete6', { skip: process.getuid?.() !== 0 ? 'needs root (a network namespace)' : false }, async (t) => {
  execFileSync('ip', ['netns', 'add', ns]);
  const code = `
    import { execFileSync } from 'node:child_process';
    import { native } from ${url('host/io/native.ts')};
    import { CtSockets } from ${url('host/statesync/kernel.ts')};
    import { SyncCore } from ${url('host/statesync/core.ts')};
    const ct = (...a) => execFileSync('conntrack', a, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    const out = {};
    ct('-I', '-p', 'tcp', '-s', '2001:db8:10::2', '-d', '2001:db8:99::7', '--sport', '40000', '--dport', '443', '--state', 'ESTABLISHED', '-t', '3000', '-u', 'SEEN_REPLY,ASSURED');
    ct('-I', '-p', 'udp', '-s', '2001:db8:10::2', '-d', '2001:db8:99::53', '--sport', '5353', '--dport', '53', '-t', '100');
    ct('-I', '-p', 'tcp', '-s', '10.0.0.2', '-d', '198.51.100.7', '--sport', '40000', '--dport', '443', '--state', 'ESTABLISHED', '-t', '3000', '-u', 'SEEN_REPLY,ASSURED');
    const s = new CtSockets(1 << 20, 0);
    const a = new SyncCore(1024), b = new SyncCore(1024);
    // Dump into a (as the active node does at start).
    a.x.ssDumpBegin();
    s.requestDump(7);
    const rx = a.nlRx();
    for (let i = 0; i < 50 && !a.dumpDone(); i++) { const n = native.recvInto(s.dump, rx); if (n > 0) a.x.ssHandleNetlink(1000, n, 1, 1); }
    out.dumped = a.entries().map((e) => e.family + ' ' + e.proto + ' ' + e.src + ' ' + e.dst + ' ' + e.sport + ' ' + e.dport + ' st=' + e.tcp.state);
    out.stats = a.stats();
    // Send both families to b, as to a peer that announced CAP_V6; empty the kernel; b's requests recreate it.
    const items = []; for (let n; (n = a.x.ssPollBatch(1000, 1412, 1)); ) items.push(Buffer.from(a.txBatch()));
    out.itemBytes = items.reduce((x, i) => x + i.length, 0);
    ct('-F');
    const answers = () => { const r = []; const buf = new Uint8Array(65536); for (let i = 0; i < 20; i++) { const n = native.recvInto(s.inject, buf); if (n <= 0) break; for (let p = 0; p + 20 <= n;) { const dv = new DataView(buf.buffer, p); const len = dv.getUint32(0, true); if (dv.getUint16(4, true) === 2) r.push(-dv.getInt32(16, true)); p += (len + 3) & ~3; } } return r; };
    for (const m of items) { b.x.ssNlTxReset(); b.peerRx().set(m); b.x.ssApply(1000, m.length, 1); s.sendAll(s.inject, b.nlTx()); }
    b.x.ssNlTxReset(); b.x.ssBarrier(); s.sendAll(s.inject, b.nlTx()); b.x.ssNlTxReset();
    await new Promise((r) => setTimeout(r, 100));
    out.createErrors = answers().filter((e) => e !== 22); // 22: the barrier's EINVAL
    out.kernel6 = ct('-L', '-f', 'ipv6', '-o', 'extended');
    out.kernel4 = ct('-L', '-o', 'extended');
    // The TCP flow ends on the master: its delete6 (the key of its upsert6) reaches b, and b's kernel drops it.
    const up6 = items.flatMap((m) => { const r = []; for (let p = 0; p < m.length;) { const l = [0, 48, 16, 96, 40][m[p]]; if (m[p] === 3 && m[p + 1] === 6) r.push(m.subarray(p, p + l)); p += l; } return r; })[0];
    const del6 = Buffer.from(up6.subarray(0, 40)); del6[0] = 4;
    b.x.ssNlTxReset(); b.peerRx().set(del6); b.x.ssApply(1000, 40, 1); s.sendAll(s.inject, b.nlTx()); b.x.ssNlTxReset();
    b.x.ssBarrier(); s.sendAll(s.inject, b.nlTx()); b.x.ssNlTxReset();
    await new Promise((r) => setTimeout(r, 100));
    out.deleteErrors = answers().filter((e) => e !== 22);
    out.after = ct('-L', '-f', 'ipv6', '-o', 'extended');
    out.bCount6 = b.x.ssCount6();
    s.close();
    console.log(JSON.stringify(out));
  `;
  const res = JSON.parse(execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--import=tsx', '--input-type=module', '-e', code], { cwd: root, timeout: 60_000 }).toString().trim().split('\n').pop()!);
  t.same([...res.dumped].sort(), [
    '4 6 10.0.0.2 198.51.100.7 40000 443 st=3',
    '6 17 2001:db8:10::2 2001:db8:99::53 5353 53 st=0',
    '6 6 2001:db8:10::2 2001:db8:99::7 40000 443 st=3',
  ], 'one AF_UNSPEC dump brings both families; the kernel\'s IPv6 messages parse');
  t.equal(res.stats.unsupported, 0); t.equal(res.stats.malformed, 0);
  t.equal(res.itemBytes, 48 + 96 + 96, 'one upsert and two upsert6 items');
  t.same(res.createErrors, [], 'the kernel took every create');
  t.match(res.kernel6, /ipv6\s+10 tcp\s+6 \d+ ESTABLISHED src=2001:db8:10::2 dst=2001:db8:99::7 sport=40000 dport=443 src=2001:db8:99::7 dst=2001:db8:10::2 sport=443 dport=40000 \[ASSURED\]/);
  t.match(res.kernel6, /ipv6\s+10 udp\s+17 \d+ src=2001:db8:10::2 dst=2001:db8:99::53 sport=5353 dport=53 (\[UNREPLIED\] )?src=2001:db8:99::53 dst=2001:db8:10::2 sport=53 dport=5353/);
  t.match(res.kernel4, /ipv4\s+2 tcp\s+6 \d+ ESTABLISHED src=10.0.0.2 dst=198.51.100.7 sport=40000 dport=443/);
  t.same(res.deleteErrors, [], 'the kernel took the delete');
  t.notMatch(res.after, /tcp/, 'the TCP entry is gone from the kernel');
  t.match(res.after, /udp/, 'the UDP one stays');
  t.equal(res.bCount6, 1);
});
