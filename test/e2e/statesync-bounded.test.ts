// "The authenticated peer is still bounded", in the real daemon and kernel: datagrams made with
// the right key, in the peer's confirmed session and in sequence, carrying states the policy refuses (to the node
// itself, foreign NAT, unconfigured zone or mark, an endless timeout) and a count that lies. Only the good state
// reaches the secondary's kernel; each refusal is counted by name in `duogate status`. Needs root.
import t from 'tap';
import { sleep } from '../../board/virtual/board.js';
import { Codec, Type } from '../../host/statesync/protocol.js';
import { Lab, KEY } from './statesync-lib.js';

/** Send the hex datagrams given on stdin to the secondary's sync port, from the primary's sync address. */
const INJECT = `
const s = require('node:dgram').createSocket('udp4');
const lines = require('node:fs').readFileSync(0, 'utf8').split('\\n').filter(Boolean);
let i = 0;
const next = () => { if (i >= lines.length) { s.close(); return; } s.send(Buffer.from(lines[i++], 'hex'), 7200, '172.16.1.2', next); };
s.bind(0, '172.16.1.1', next);
`;

interface Item { zone?: number; src: string; dst: string; sp: number; dp: number; rsrc?: string; rdst?: string; rsp?: number; rdp?: number; timeout?: number; mark?: number }
function upsert(i: Item): Buffer {
  const b = Buffer.alloc(48);
  const ip = (a: string, o: number) => b.set(a.split('.').map(Number), o);
  b[0] = 1; b[1] = 6; b.writeUInt16BE(i.zone ?? 0, 2);
  ip(i.src, 4); ip(i.dst, 8); b.writeUInt16BE(i.sp, 12); b.writeUInt16BE(i.dp, 14);
  ip(i.rsrc ?? i.dst, 16); ip(i.rdst ?? i.src, 20); b.writeUInt16BE(i.rsp ?? i.dp, 24); b.writeUInt16BE(i.rdp ?? i.sp, 26);
  b.writeUInt32BE(0x18e, 28); b.writeUInt32BE(i.timeout ?? 300, 32); b.writeUInt32BE(i.mark ?? 0, 36);
  b[40] = 3; b[41] = 7; b[42] = 7;
  return b;
}

if (process.getuid?.() !== 0) {
  t.plan(0, 'needs root for network namespaces');
} else {
  const lab = new Lab('dgt-ssp', { key: KEY, bulk_timeout_ms: 5000 });
  t.teardown(() => lab.board.down());

  t.test('a lying authenticated peer: only the good state reaches the kernel, each refusal is counted', async (t) => {
    await lab.startSynced();
    await lab.until('secondary', (s) => s.statesync?.peer?.knows_us && s.statesync?.bulk?.state === 'done', 10000);
    const p = (await lab.status('primary')).statesync; const s0 = (await lab.status('secondary')).statesync;
    t.equal(s0.peer.session, p.link.session, 'the secondary knows the primary\'s session');
    const codec = new Codec(Buffer.from(KEY, 'utf8'));
    // Beyond any packet number the real primary will use for a while, so these are fresh; the real one's later
    // datagrams then count as replays (the test ends here).
    let pn = 2n ** 62n;
    const data = (count: number, payload: Buffer, seq: number) => codec.seal({
      type: Type.DATA, flags: 0, session: BigInt('0x' + p.link.session), peerSession: BigInt('0x' + s0.link.session),
      pn: pn++, seq, ack: 0, count, extra: 0,
    }, payload);
    const C = '192.168.1.100'; const SRV = '198.51.100.7'; const VIP = '203.0.113.1';
    const good = upsert({ src: C, dst: SRV, sp: 41000, dp: 443, rdst: VIP, rdp: 61000 });
    const items = [
      upsert({ src: C, dst: '192.168.1.3', sp: 41001, dp: 22 }),                                // to the secondary itself
      upsert({ src: SRV, dst: VIP, sp: 41002, dp: 8001, rsrc: '192.168.1.3', rdst: SRV }),     // DNAT onto its Kea port
      upsert({ src: C, dst: SRV, sp: 41003, dp: 443, rdst: '1.2.3.4' }),                       // SNAT to a foreign address
      upsert({ src: SRV, dst: VIP, sp: 41004, dp: 443, rsrc: '8.8.8.8', rdst: SRV }),          // DNAT out of the LAN
      upsert({ src: C, dst: SRV, sp: 41005, dp: 443, rdst: VIP, rdp: 61005, zone: 7 }),
      upsert({ src: C, dst: SRV, sp: 41006, dp: 443, rdst: VIP, rdp: 61006, mark: 0xbad }),
      good,
      upsert({ src: C, dst: SRV, sp: 41007, dp: 443, rdst: VIP, rdp: 61007, timeout: 0xffffffff }),
    ];
    const seq = s0.link.expect_seq;
    const grams = [
      data(items.length + 3, Buffer.concat(items), seq),        // count lies (more): dropped whole
      data(items.length - 1, Buffer.concat(items), seq),        // count lies (fewer): dropped whole
      data(items.length, Buffer.concat(items), seq),            // the real thing
    ];
    lab.board.exec('primary', process.execPath, ['-e', INJECT], { check: true, input: grams.map((b) => b.toString('hex')).join('\n') + '\n' });
    let s = s0;
    for (let i = 0; i < 30; i++) { s = (await lab.status('secondary')).statesync; if (s.rejected.mark >= 1 && s.backlog === 0) break; await sleep(100); }
    t.equal(s.dropped.count - s0.dropped.count, 2, 'both datagrams whose count lies are dropped and counted');
    t.same(s.rejected, { to_self: 2, zone: 1, mark: 1, snat: 1, dnat: 1, timeout_clamped: 1 }, 'each refusal counted by name');
    await sleep(300);
    const kernel = lab.kernelTuples('secondary', (l) => /sport=410\d\d/.test(l));
    t.same(kernel, [`tcp ${C} ${SRV} 41000 443`, `tcp ${C} ${SRV} 41007 443`], 'only the good states are in the kernel');
    const line = lab.board.exec('secondary', 'conntrack', ['-L', '-p', 'tcp', '--orig-port-src', '41007'], {}).stdout;
    const left = Number(line.trim().split(/\s+/)[2]);
    t.ok(left > 0 && left <= 432000, `the endless timeout was cut to the kernel's ESTABLISHED timeout (${left} s left)`);
    t.comment(JSON.stringify({ rejected: s.rejected, dropped: s.dropped }));
  });
}
