// Tests for the native addon (host/addon/*.cc through host/io/native.ts).
//
// Network tests never touch the host's namespace: they create a private namespace holding one veth
// pair, and run child node scripts inside it with `ip netns exec`. Every child prints one JSON line.
//
//   netns dgtest-native-<pid>-<n>
//   +----------------------+         +----------------------+
//   | dgA  10.99.0.1/24    |=========| dgB  10.99.0.2/24    |
//   +----------------------+  veth   +----------------------+
//
// dgB has accept_local=1: the CARP sender's source 10.99.0.1 is local to the same namespace, and
// the kernel would otherwise drop multicast from a local source as martian.
import t, { type Test } from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { native, type NativeError } from '../../host/io/native.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const nativeUrl = pathToFileURL(join(root, 'host', 'io', 'native.ts')).href;
const CHILD_TIMEOUT_MS = 30_000;

// ---- tests that need no network ----------------------------------------------------------------

t.test('exports every documented function', async (t) => {
  for (const name of ['ifInfo', 'openRawIp', 'sendTo', 'recvInto', 'openPacket', 'sendPacket', 'openNetlink',
    'netlinkAddMembership', 'send', 'watch', 'unwatch', 'close', 'nowMs'] as const) {
    t.equal(typeof native[name], 'function', name);
  }
});

t.test('nowMs is a monotonic millisecond clock', async (t) => {
  const a = native.nowMs();
  const p = performance.now();
  await new Promise((r) => setTimeout(r, 50));
  const da = native.nowMs() - a;
  const dp = performance.now() - p;
  t.ok(Number.isFinite(a) && a > 0, 'positive');
  t.ok(Math.abs(da - dp) < 20, `advances like performance.now (${da.toFixed(1)} vs ${dp.toFixed(1)} ms)`);
});

t.test('argument errors are TypeErrors thrown before any syscall', async (t) => {
  t.throws(() => native.recvInto(0, new Uint8Array(0)), /length 0/, 'zero-length (detached) view');
  t.throws(() => native.sendTo(0, new Uint8Array(1), 'not-an-ip'), TypeError, 'bad dst');
  t.throws(() => native.openRawIp({ proto: 112, group: '224.0.0.18' }), TypeError, 'group without ifname');
  t.throws(() => native.openRawIp({ proto: 300 }), TypeError, 'proto out of range');
  t.throws(() => native.sendPacket(0, 1, new Uint8Array(5), 0x0806, new Uint8Array(28)), TypeError, '5-byte MAC');
  t.throws(() => native.unwatch({}), TypeError, 'foreign handle');
  t.throws(() => native.close(-1), TypeError, 'negative fd');
});

// ---- namespace fixture --------------------------------------------------------------------------

let nsSeq = 0;
function makeNamespace(t: Test): string {
  const ns = `dgtest-native-${process.pid}-${nsSeq++}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  ip('netns', 'add', ns);
  t.teardown(() => {
    try {
      ip('netns', 'del', ns);
    } catch {
      /* already gone */
    }
  });
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', ns, 'link', 'add', 'dgA', 'type', 'veth', 'peer', 'name', 'dgB');
  ip('-n', ns, 'addr', 'add', '10.99.0.1/24', 'dev', 'dgA');
  ip('-n', ns, 'addr', 'add', '10.99.0.2/24', 'dev', 'dgB');
  ip('-n', ns, 'link', 'set', 'dgA', 'up');
  ip('-n', ns, 'link', 'set', 'dgB', 'up');
  execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.conf.all.accept_local=1',
    'net.ipv4.conf.dgB.accept_local=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.dgB.rp_filter=0'],
  { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  return ns;
}

interface ChildResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  out: any;
}

// Runs `body` (plain JS, ESM, with `native`, `until`, `sleep`, `hex`, `sh` and `out` in scope) in a
// child node inside the namespace; the child prints `out` as JSON. Bounded by its own watchdog and
// by execFile's timeout (SIGKILL), so a hung poll cannot hang the suite.
function runChild(ns: string, body: string): Promise<ChildResult> {
  const code = `
import { native } from ${JSON.stringify(nativeUrl)};
import { execFileSync } from 'node:child_process';
const out = {};
setTimeout(() => { console.log(JSON.stringify({ ...out, watchdog: true })); process.exit(3); }, 15000).unref();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(fn, ms) {
  const end = Date.now() + ms;
  for (;;) { const v = fn(); if (v || Date.now() > end) return v; await sleep(10); }
}
const hex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');
const sh = (...args) => execFileSync(args[0], args.slice(1), { stdio: 'ignore', timeout: 5000 });
try {
${body}
} catch (e) {
  out.fatal = String(e && e.stack || e);
}
console.log(JSON.stringify(out));
process.exit(0);
`;
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, '--import=tsx', '--input-type=module', '-e', code],
      { cwd: root, timeout: CHILD_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 4 << 20 },
      (err, stdout, stderr) => {
        const lines = stdout.trim().split('\n');
        let out: unknown = null;
        try {
          out = JSON.parse(lines[lines.length - 1] ?? 'null');
        } catch {
          /* reported below via stdout */
        }
        const e = err as (Error & { code?: number | string; signal?: string }) | null;
        resolve({
          code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
          signal: e?.signal ?? null,
          stdout,
          stderr,
          out,
        });
      });
  });
}

function childOk(t: Test, r: ChildResult): boolean {
  t.equal(r.code, 0, 'child exited 0', { stderr: r.stderr, stdout: r.stdout });
  t.notOk(r.out?.fatal, 'child did not throw', { fatal: r.out?.fatal });
  t.notOk(r.out?.watchdog, 'child finished before its watchdog');
  return r.code === 0 && !!r.out && !r.out.fatal;
}

// ---- network tests ------------------------------------------------------------------------------

t.test('inside a private namespace with a veth pair', async (t) => {
  const ns = makeNamespace(t);
  const links = JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'link', 'show'], { encoding: 'utf8' })) as
    { ifname: string; ifindex: number; address: string; mtu: number }[];
  const linkA = links.find((l) => l.ifname === 'dgA')!;
  const linkB = links.find((l) => l.ifname === 'dgB')!;

  t.test('ifInfo, link events over netlink, netlink requests, errors', async (t) => {
    const r = await runChild(ns, `
const a = native.ifInfo('dgA');
out.ifA = { index: a.index, mac: hex(a.mac), isU8: a.mac instanceof Uint8Array, up: a.up, mtu: a.mtu };
out.bIndex = native.ifInfo('dgB').index;
out.runningBefore = await until(() => native.ifInfo('dgA').running, 3000);

// RTMGRP_LINK events while the peer end goes down and up again.
const nl = native.openNetlink(0, 1, 1 << 20);
const buf = new Uint8Array(65536);
const events = [];
const h = native.watch(nl, () => {
  for (;;) {
    const n = native.recvInto(nl, buf);
    if (n < 0) { if (n === -2) events.push({ enobufs: true }); return; }
    const dv = new DataView(buf.buffer, buf.byteOffset, n);
    for (let off = 0; off + 16 <= n;) {
      const len = dv.getUint32(off, true), type = dv.getUint16(off + 4, true);
      if ((type === 16 || type === 17) && len >= 32)
        events.push({ type, index: dv.getInt32(off + 20, true), flags: dv.getUint32(off + 24, true) });
      if (len < 16) break;
      off += (len + 3) & ~3;
    }
  }
});
sh('ip', 'link', 'set', 'dgB', 'down');
await until(() => !native.ifInfo('dgA').running, 3000);
out.runningPeerDown = native.ifInfo('dgA').running;
out.upPeerDown = native.ifInfo('dgA').up;
out.sawDown = await until(() => events.some((e) => e.type === 16 && e.index === out.bIndex && !(e.flags & 1)), 3000);
sh('ip', 'link', 'set', 'dgB', 'up');
await until(() => native.ifInfo('dgA').running, 3000);
out.runningPeerUp = native.ifInfo('dgA').running;
out.sawUp = await until(() => events.some((e) => e.type === 16 && e.index === out.bIndex && (e.flags & 1)), 3000);
out.enobufs = events.some((e) => e.enobufs);
native.unwatch(h);
native.unwatch(h); // double unwatch is harmless
native.close(nl);

// send(): an RTM_GETLINK request for dgA, answered with an RTM_NEWLINK carrying our seq.
const q = native.openNetlink(0, 0);
out.eagain = native.recvInto(q, buf);
const req = new Uint8Array(32);
const rv = new DataView(req.buffer);
rv.setUint32(0, 32, true); rv.setUint16(4, 18, true); rv.setUint16(6, 1, true); rv.setUint32(8, 4242, true);
rv.setInt32(20, a.index, true);
out.reqSent = native.send(q, req);
const n = await until(() => { const n = native.recvInto(q, buf); return n > 0 ? n : 0; }, 3000);
const dv = new DataView(buf.buffer);
out.reply = { n, type: dv.getUint16(4, true), seq: dv.getUint32(8, true), index: dv.getInt32(20, true) };
native.close(q);

// Errors look like Node's system errors, and failed setup leaks no fd.
const err = (f) => { try { f(); return null; } catch (e) { return { code: e.code, errno: e.errno, syscall: e.syscall, message: e.message }; } };
const fds = () => execFileSync('ls', ['/proc/self/fd']).toString().split('\\n').length;
const before = fds();
out.errRaw = err(() => native.openRawIp({ proto: 112, ifname: 'nope0', group: '224.0.0.18' }));
for (let i = 0; i < 50; i++) err(() => native.openRawIp({ proto: 112, ifname: 'nope0' }));
for (let i = 0; i < 50; i++) err(() => native.openRawIp({ proto: 112, ifname: 'dgA', group: '10.1.1.1' }));
out.fdLeak = fds() - before;
out.errGroup = err(() => native.openRawIp({ proto: 112, ifname: 'dgA', group: '10.1.1.1' }));
out.errIf = err(() => native.ifInfo('nope0'));
out.errPacket = err(() => native.openPacket('nope0', 0x0806));
const fd = native.openNetlink(0, 0);
native.close(fd);
out.errClose = err(() => native.close(fd));
`);
    if (!childOk(t, r)) return;
    const o = r.out;
    t.same(o.ifA, { index: linkA.ifindex, mac: linkA.address.replaceAll(':', ''), isU8: true, up: true, mtu: linkA.mtu },
      'ifInfo(dgA) matches ip link');
    t.equal(o.bIndex, linkB.ifindex, 'ifInfo(dgB).index');
    t.equal(o.runningBefore, true, 'running while the peer is up');
    t.equal(o.runningPeerDown, false, 'not running once the peer end is down');
    t.equal(o.upPeerDown, true, 'still administratively up');
    t.equal(o.runningPeerUp, true, 'running again once the peer is back');
    t.equal(o.sawDown, true, 'RTM_NEWLINK for dgB without IFF_UP');
    t.equal(o.sawUp, true, 'RTM_NEWLINK for dgB with IFF_UP');
    t.equal(o.enobufs, false, 'no overrun');
    t.equal(o.eagain, -1, 'recvInto returns -1 on EAGAIN');
    t.equal(o.reqSent, 32, 'send() wrote the request');
    t.match(o.reply, { type: 16, seq: 4242, index: linkA.ifindex }, 'RTM_GETLINK answered');
    t.same(o.errRaw && { code: o.errRaw.code, errno: o.errRaw.errno, syscall: o.errRaw.syscall },
      { code: 'ENODEV', errno: -19, syscall: 'setsockopt(SO_BINDTODEVICE)' }, 'openRawIp on a missing interface');
    t.match(o.errRaw?.message, /nope0/, 'message names the interface');
    t.match(o.errGroup, { code: 'EINVAL', syscall: 'setsockopt(IP_ADD_MEMBERSHIP)' }, 'non-multicast group');
    t.equal(o.fdLeak, 0, 'no fd leaked by 100 failed openRawIp calls');
    t.match(o.errIf, { code: 'ENODEV', errno: -19, syscall: 'ioctl(SIOCGIFINDEX)' }, 'ifInfo on a missing interface');
    t.match(o.errPacket, { code: 'ENODEV', syscall: 'if_nametoindex' }, 'openPacket on a missing interface');
    t.match(o.errClose, { code: 'EBADF', errno: -9, syscall: 'close' }, 'double close');
  });

  t.test('CARP advertisement over raw IP multicast, ARP over AF_PACKET, ICMP echo', async (t) => {
    const r = await runChild(ns, `
await until(() => native.ifInfo('dgA').running && native.ifInfo('dgB').running, 3000);
const tx = native.openRawIp({ proto: 112, ifname: 'dgA', group: '224.0.0.18', srcAddr: '10.99.0.1', ttl: 255, tos: 0x10 });
const rx = native.openRawIp({ proto: 112, ifname: 'dgB', group: '224.0.0.18', rcvbuf: 65536 });
// Receive straight into WebAssembly memory, as the daemon does.
const mem = new WebAssembly.Memory({ initial: 1 });
let view = new Uint8Array(mem.buffer, 1024, 2048);
const got = [];
const h = native.watch(rx, () => {
  for (;;) { const n = native.recvInto(rx, view); if (n < 0) return; got.push(hex(view.subarray(0, Math.min(n, view.length)))); }
});
const ad = Uint8Array.from({ length: 36 }, (_, i) => (i * 7 + 0x21) & 0xff);
out.sent = native.sendTo(tx, ad, '224.0.0.18');
await until(() => got.length > 0, 3000);
native.unwatch(h);
out.carp = got[0] ?? null;
out.adHex = hex(ad);
out.txOwn = native.recvInto(tx, view); // IP_MULTICAST_LOOP off and bound to dgA: nothing
// MSG_TRUNC: a short view still reports the full datagram length.
native.sendTo(tx, ad, '224.0.0.18');
out.truncated = await until(() => { const n = native.recvInto(rx, new Uint8Array(10)); return n > 0 ? n : 0; }, 3000);
mem.grow(1); // detaches view
out.detachedLen = view.length;
try { native.recvInto(rx, view); out.detached = 'no error'; } catch (e) { out.detached = e.message; }
native.close(tx); native.close(rx);

// Gratuitous ARP from dgA (kernel writes the Ethernet header), seen raw on dgB.
const a = native.ifInfo('dgA');
const pa = native.openPacket('dgA', 0x0806);
const pb = native.openPacket('dgB', 0x0806, true);
const garp = Uint8Array.from([0,1, 8,0, 6,4, 0,1, ...a.mac, 10,99,0,100, 0,0,0,0,0,0, 10,99,0,100]);
const frames = [];
const fb = new Uint8Array(2048);
const hb = native.watch(pb, () => { for (;;) { const n = native.recvInto(pb, fb); if (n < 0) return; frames.push(hex(fb.subarray(0, n))); } });
out.arpSent = native.sendPacket(pa, a.index, new Uint8Array(6).fill(0xff), 0x0806, garp);
out.garpHex = hex(garp);
out.arpFrame = await until(() => frames.find((f) => f.slice(28, 28 + garp.length * 2) === out.garpHex), 3000) ?? null;
native.unwatch(hb);
native.close(pa); native.close(pb);

// ICMP pinger: proto 1, no interface.
const icmp = native.openRawIp({ proto: 1 });
const echo = Uint8Array.from([8, 0, 0, 0, 0x12, 0x34, 0, 1, 1, 2, 3, 4]);
let sum = 0;
for (let i = 0; i < echo.length; i += 2) sum += (echo[i] << 8) | echo[i + 1];
while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
sum = ~sum & 0xffff; echo[2] = sum >> 8; echo[3] = sum & 0xff;
const ib = new Uint8Array(1500);
let reply = null;
const hi = native.watch(icmp, () => {
  for (;;) {
    const n = native.recvInto(icmp, ib); if (n < 0) return;
    const ihl = (ib[0] & 15) * 4;
    if (ib[ihl] === 0 && ib[ihl + 4] === 0x12 && ib[ihl + 5] === 0x34) reply = { src: ib.subarray(12, 16).join('.'), n };
  }
});
out.pingSent = native.sendTo(icmp, echo, '10.99.0.2');
out.pingReply = await until(() => reply, 3000);
native.unwatch(hi);
native.close(icmp);
`);
    if (!childOk(t, r)) return;
    const o = r.out;
    t.equal(o.sent, 36, 'sendTo returned 36');
    t.ok(o.carp, 'a datagram arrived on dgB');
    if (o.carp) {
      const p = Buffer.from(o.carp, 'hex');
      const ihl = (p[0]! & 15) * 4;
      t.equal(p[0]! >> 4, 4, 'IPv4 header included');
      t.equal(p[1], 0x10, 'TOS 0x10');
      t.equal(p.readUInt16BE(2), ihl + 36, 'total length');
      t.equal(p[8], 255, 'TTL 255');
      t.equal(p[9], 112, 'protocol 112');
      t.equal([...p.subarray(12, 16)].join('.'), '10.99.0.1', 'source');
      t.equal([...p.subarray(16, 20)].join('.'), '224.0.0.18', 'destination');
      t.equal(p.subarray(ihl).toString('hex'), o.adHex, 'payload intact');
    }
    t.equal(o.txOwn, -1, 'sender does not hear itself');
    t.equal(o.truncated, 56, 'recvInto reports the full length of a truncated datagram');
    t.equal(o.detachedLen, 0, 'memory.grow detached the view');
    t.match(o.detached, /length 0/, 'recvInto rejects a detached view');

    t.equal(o.arpSent, 28, 'sendPacket returned 28');
    t.ok(o.arpFrame, 'gratuitous ARP arrived on dgB');
    if (o.arpFrame) {
      const f = Buffer.from(o.arpFrame, 'hex');
      t.equal(f.subarray(0, 6).toString('hex'), 'ffffffffffff', 'broadcast destination');
      t.equal(f.subarray(6, 12).toString('hex'), linkA.address.replaceAll(':', ''), 'source MAC is dgA');
      t.equal(f.readUInt16BE(12), 0x0806, 'ethertype ARP');
    }
    t.equal(o.pingSent, 12, 'echo request sent');
    t.match(o.pingReply, { src: '10.99.0.2' }, 'echo reply received');
  });

  t.test('an exception thrown by a watch callback reaches uncaughtException', async (t) => {
    const r = await runChild(ns, `
const caught = [];
process.on('uncaughtException', (e) => caught.push(e.message));
await until(() => native.ifInfo('dgA').running && native.ifInfo('dgB').running, 3000);
const tx = native.openRawIp({ proto: 112, ifname: 'dgA', group: '224.0.0.18', ttl: 255 });
const rx = native.openRawIp({ proto: 112, ifname: 'dgB', group: '224.0.0.18' });
const buf = new Uint8Array(256);
let calls = 0, packets = 0;
const h = native.watch(rx, () => {
  calls++;
  while (native.recvInto(rx, buf) >= 0) packets++;
  if (calls === 1) throw new Error('boom from onReadable');
});
native.sendTo(tx, new Uint8Array(36), '224.0.0.18');
await until(() => caught.length > 0, 3000);
native.sendTo(tx, new Uint8Array(36), '224.0.0.18');
await until(() => packets >= 2, 3000);
native.unwatch(h);
native.close(tx); native.close(rx);
out.caught = caught; out.calls = calls; out.packets = packets;
`);
    if (!childOk(t, r)) return;
    t.same(r.out.caught, ['boom from onReadable'], 'exception delivered once');
    t.equal(r.out.packets, 2, 'watch keeps working after the throw');
    t.notMatch(r.stderr, /terminate called/, 'no C++ terminate');
  });
});
