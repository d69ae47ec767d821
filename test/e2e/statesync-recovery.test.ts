// State sync recovers: sync traffic dropped for a while (a share, then all, then none) → once it flows
// again the peer's kernel table matches the master's; forged, garbage, truncated and replayed datagrams
// injected on the sync link are dropped, counted, and change nothing. Needs root (namespaces).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../../board/virtual/board.js';
import { Lab, KEY } from './statesync-lib.js';

/** Send one UDP datagram to each of `n` ports from one socket (each is a new conntrack entry on the master). */
const UDP_FLOWS = `
const s = require('node:dgram').createSocket('udp4');
const [base, n] = process.argv.slice(1).map(Number);
let i = 0;
const next = () => { if (i >= n) { s.close(); return; } s.send('x', base + i++, '203.0.113.10', next); };
s.bind(0, next);
`;
/** Send the hex datagrams given on stdin (one per line) to the secondary's sync port from this namespace. */
const INJECT = `
const s = require('node:dgram').createSocket('udp4');
const lines = require('node:fs').readFileSync(0, 'utf8').split('\\n').filter(Boolean);
let i = 0;
const next = () => { if (i >= lines.length) { s.close(); return; } s.send(Buffer.from(lines[i++], 'hex'), 7200, '172.16.1.2', next); };
s.bind(0, '172.16.1.1', next);
`;

/** UDP payloads of a pcap file (Ethernet, IPv4, UDP) — enough of the format for a capture we made ourselves. */
function udpPayloads(file: string): Buffer[] {
  const b = readFileSync(file);
  const out: Buffer[] = [];
  for (let p = 24; p + 16 <= b.length;) {
    const incl = b.readUInt32LE(p + 8);
    const f = b.subarray(p + 16, p + 16 + incl);
    p += 16 + incl;
    if (f.length < 42 || f.readUInt16BE(12) !== 0x0800 || f[23] !== 17) continue;
    const ihl = (f[14] & 15) * 4;
    out.push(Buffer.from(f.subarray(14 + ihl + 8)));
  }
  return out;
}

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root for network namespaces');
} else {
  const lab = new Lab('dgt-ssr', { key: KEY, bulk_timeout_ms: 5000 });
  t.teardown(() => lab.board.down());
  const udpTuples = (n: 'primary' | 'secondary') => lab.kernelTuples(n, (l) => /\sudp\s/.test(l) && l.includes('dst=203.0.113.10'));
  const flows = (base: number, n: number) => lab.board.exec('client', process.execPath, ['-e', UDP_FLOWS, String(base), String(n)], { check: true });
  const lossRule = (share: number | null) => {
    lab.board.exec('primary', 'nft', ['delete', 'table', 'inet', 'ssloss'], {});
    if (share === null) return;
    lab.board.exec('primary', 'nft', ['-f', '-'], {
      check: true,
      input: `table inet ssloss {\n chain out {\n  type filter hook output priority 0;\n  udp dport 7200 ${share >= 100 ? "" : `numgen random mod 100 < ${share} `}counter drop\n }\n}\n`,
    });
  };

  t.test('sync loss, then total loss, then healed: the tables match', async (t) => {
    await lab.startSynced();

    lossRule(30);
    flows(20000, 400);
    await sleep(1500);
    lossRule(100);
    flows(21000, 400);
    lab.board.exec('primary', 'conntrack', ['-D', '-p', 'udp', '--orig-port-dst', '20001'], {});
    lab.board.exec('primary', 'conntrack', ['-D', '-p', 'udp', '--orig-port-dst', '21001'], {});
    await sleep(1500);
    const during = udpTuples('secondary').length;
    const master = udpTuples('primary');
    t.equal(master.length, 798, 'the master holds 800 flows minus 2 deleted');
    t.ok(during < master.length, `while everything is dropped the peer lags (${during} of ${master.length})`);
    lossRule(null);
    let peer: string[] = [];
    for (let i = 0; i < 50; i++) { peer = udpTuples('secondary'); if (peer.length === master.length) break; await sleep(100); }
    t.ok(master.length > 0, 'the comparison is not vacuous');
    t.same(peer, master, 'after healing the peer\'s kernel holds exactly the master\'s flows');
    const s = await lab.status('primary');
    t.ok(s.statesync.messages.retransmitted > 0, `the master retransmitted (${s.statesync.messages.retransmitted})`);
    t.comment(JSON.stringify(s.statesync.messages));
  });

  t.test('forged, garbage, truncated and replayed datagrams are dropped and counted', async (t) => {
    // Capture real sync traffic to replay it.
    const pcap = join(lab.board.runDir, 'sync.pcap');
    const cap = lab.board.spawn('secondary', 'tcpdump', ['-i', 'sync0', '-U', '-w', pcap, 'udp', 'and', 'dst', 'port', '7200', 'and', 'src', '172.16.1.1'], { stdio: 'ignore' });
    await sleep(500);
    flows(22000, 50);
    await sleep(1500);
    cap.kill('SIGTERM');
    await sleep(200);
    const captured = udpPayloads(pcap);
    t.ok(captured.length >= 2, `captured ${captured.length} real sync datagrams`);
    await sleep(300);
    const before = (await lab.status('secondary')).statesync;
    const tuplesBefore = udpTuples('secondary');

    const forged = captured.slice(0, 5).map((b) => { const c = Buffer.from(b); c[c.length - 1] ^= 0x55; c[40] ^= 0x01; return c; });
    // A forged state: a valid-looking upsert item with a made-up tag.
    const fake = Buffer.from(captured.find((b) => b.length > 56) ?? captured[0]); fake[44] ^= 0xff;
    const garbage = [Buffer.from('hello there, not a sync packet'), Buffer.alloc(200, 0xd6)];
    const truncated = [captured[0].subarray(0, 30), captured[captured.length - 1].subarray(0, captured[captured.length - 1].length - 3)];
    const all = [...captured, ...forged, fake, ...garbage, ...truncated];
    lab.board.exec('primary', process.execPath, ['-e', INJECT], { check: true, input: all.map((b) => b.toString('hex')).join('\n') + '\n' });
    await sleep(500);
    const after = (await lab.status('secondary')).statesync;
    const d = (k: string) => after.dropped[k] - before.dropped[k];
    t.ok(d('replay') >= captured.length, `replays dropped: ${d('replay')} (sent ${captured.length})`);
    t.equal(d('auth'), forged.length + 1, 'forged datagrams fail authentication');
    t.equal(d('magic') + d('short') + d('length') + d('version'), garbage.length + truncated.length, 'garbage and truncated datagrams dropped as malformed');
    t.equal(after.core.rx_upserts, before.core.rx_upserts, 'no injected item reached the table');
    t.same(udpTuples('secondary'), tuplesBefore, 'the kernel table is unchanged');
    t.comment(JSON.stringify(after.dropped));
  });
}
