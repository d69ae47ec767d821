// Helpers for the state sync benchmark, run inside a board namespace:
//   gen --count N [--rate R] [--net 10]   create N ESTABLISHED TCP states with SNAT to 203.0.113.1 through
//                                         ctnetlink (batched creates, like anchors.md §D's generator);
//                                         source address NET.a.b.c is unique per state; R states/s (0 = burst)
//   stamps [--net 10]                     print {"<src>": creation wall ms} from the kernel's own timestamps
//   listen [--net 10]                     print {"<src>": mono_ms, ...} of conntrack NEW events for sources in
//                                         NET.0.0.0/8 when SIGTERM arrives (CLOCK_MONOTONIC: same clock in every namespace)
import { parseArgs } from 'node:util';
import { native } from '../../host/io/native.js';
import { SyncCore } from '../../host/statesync/core.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { count: { type: 'string', default: '1000' }, rate: { type: 'string', default: '0' }, net: { type: 'string', default: '10' } },
});
const net = Number(values.net);

function gen(count: number, rate: number): void {
  const core = new SyncCore(Math.max(1024, count));
  const fd = native.openNetlink(12, 0, 8 * 1024 * 1024);
  const BATCH = 256;
  let i = 0;
  const t0 = native.nowMs();
  const step = () => {
    const due = rate > 0 ? Math.min(count, Math.floor(((native.nowMs() - t0) / 1000) * rate) + 1) : count;
    while (i < due) {
      const n = Math.min(BATCH, due - i);
      const dv = core.view; const p = core.x.ssPeerPtr();
      for (let k = 0; k < n; k++, i++) {
        const o = p + k * 48;
        core.mem.fill(0, o, o + 48);
        dv.setUint8(o, 1); dv.setUint8(o + 1, 6);
        dv.setUint8(o + 4, net); dv.setUint8(o + 5, (i >> 16) & 255); dv.setUint8(o + 6, (i >> 8) & 255); dv.setUint8(o + 7, i & 255);
        // Distinct server per 60000 states and per --net, so NAT bindings of different runs never clash.
        const srv = 1 + Math.floor(i / 60000) + (net % 50) * 4;
        dv.setUint32(o + 8, (198 << 24 | 51 << 16 | 100 << 8 | srv) >>> 0);
        dv.setUint16(o + 12, 40000); dv.setUint16(o + 14, 443);
        dv.setUint32(o + 16, (198 << 24 | 51 << 16 | 100 << 8 | srv) >>> 0); dv.setUint32(o + 20, (203 << 24 | 0 << 16 | 113 << 8 | 1) >>> 0);
        dv.setUint16(o + 24, 443); dv.setUint16(o + 26, 1024 + (i % 60000));
        dv.setUint32(o + 28, 0x19e); dv.setUint32(o + 32, 1200); dv.setUint32(o + 36, 0);
        dv.setUint8(o + 40, 3); dv.setUint8(o + 41, 7); dv.setUint8(o + 42, 7); dv.setUint8(o + 43, 3); dv.setUint8(o + 44, 3);
      }
      core.x.ssNlTxReset();
      core.x.ssApply(native.nowMs(), n * 48, 0);
      const tx = core.nlTx();
      const v = new DataView(tx.buffer, tx.byteOffset, tx.byteLength);
      // Send in ~60 KB chunks on message boundaries.
      for (let s = 0; s < tx.length;) {
        let e = s;
        while (e < tx.length && e - s < 60000) e += (v.getUint32(e, true) + 3) & ~3;
        native.send(fd, tx.subarray(s, e));
        s = e;
      }
      core.x.ssNlTxReset();
    }
    if (i < count) setTimeout(step, 5);
    else { process.stdout.write(JSON.stringify({ created: count, ms: native.nowMs() - t0 }) + '\n'); native.close(fd); }
  };
  step();
}

function listen(): void {
  const fd = native.openNetlink(12, 0x1, 256 * 1024 * 1024);
  const buf = new Uint8Array(256 * 1024);
  const dv = new DataView(buf.buffer);
  const seen = new Map<string, number>();
  let overruns = 0;
  const w = native.watch(fd, () => {
    for (;;) {
      const n = native.recvInto(fd, buf);
      if (n === -1) break;
      if (n === -2) { overruns++; continue; }
      const now = native.nowMs();
      for (let p = 0; p + 16 <= n;) {
        const len = dv.getUint32(p, true);
        if (len < 16) break;
        // CTA_TUPLE_ORIG is the first attribute; inside it CTA_TUPLE_IP, then CTA_IP_V4_SRC.
        const a = p + 20;
        if ((dv.getUint16(a + 2, true) & 0x3fff) === 1 && (dv.getUint16(a + 6, true) & 0x3fff) === 1 && (dv.getUint16(a + 10, true) & 0x3fff) === 1) {
          const s = a + 12;
          if (buf[s] === net) { const k = `${buf[s]}.${buf[s + 1]}.${buf[s + 2]}.${buf[s + 3]}`; if (!seen.has(k)) seen.set(k, now); }
        }
        p += (len + 3) & ~3;
      }
    }
  });
  process.stdout.write('{"listening":true}\n');
  process.once('SIGTERM', () => {
    native.unwatch(w);
    process.stdout.write(JSON.stringify({ overruns, seen: Object.fromEntries(seen) }) + '\n', () => process.exit(0));
  });
}

/** Dump the table; print {"<src>": start_ms} from CTA_TIMESTAMP (needs net.netfilter.nf_conntrack_timestamp=1). */
function stamps(): void {
  const fd = native.openNetlink(12, 0, 64 * 1024 * 1024);
  const req = Buffer.alloc(20);
  req.writeUInt32LE(20, 0); req.writeUInt16LE(0x101, 4); req.writeUInt16LE(0x301, 6); req.writeUInt32LE(1, 8); req[16] = 2;
  native.send(fd, req);
  const buf = new Uint8Array(256 * 1024); const dv = new DataView(buf.buffer);
  const out: Record<string, number> = {};
  let done = false;
  const t0 = Date.now();
  while (!done && Date.now() - t0 < 20000) {
    const n = native.recvInto(fd, buf);
    if (n < 0) continue;
    for (let p = 0; p + 16 <= n;) {
      const len = dv.getUint32(p, true);
      if (len < 16) break;
      if (dv.getUint16(p + 4, true) === 3) { done = true; break; }
      let src = ''; let start = -1;
      for (let a = p + 20; a + 4 <= p + len;) {
        const al = dv.getUint16(a, true); const at = dv.getUint16(a + 2, true) & 0x3fff;
        if (al < 4) break;
        if (at === 1 && buf[a + 12] === net) src = `${buf[a + 12]}.${buf[a + 13]}.${buf[a + 14]}.${buf[a + 15]}`;
        if (at === 20 && (dv.getUint16(a + 6, true) & 0x3fff) === 1) start = Number(dv.getBigUint64(a + 8, false)) / 1e6;
        a += (al + 3) & ~3;
      }
      if (src && start >= 0) out[src] = start;
      p += (len + 3) & ~3;
    }
  }
  process.stdout.write(JSON.stringify({ seen: out }) + '\n');
}

if (positionals[0] === 'gen') gen(Number(values.count), Number(values.rate));
else if (positionals[0] === 'listen') listen();
else if (positionals[0] === 'stamps') stamps();
else { process.stderr.write('usage: statesync-tools gen --count N [--rate R] [--net A] | listen [--net A]\n'); process.exit(2); }
