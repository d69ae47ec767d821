// The addon's IPv6 raw sockets (host/addon/carp6.cc) in a private namespace: what a receive lays out in front
// of the payload (the IPv6 header the core checks: hop limit, source, destination), the source a send takes,
// and the ICMPv6 type filter the router-solicitation socket relies on.
//
//   netns dgtest-native6-<pid>
//   +--------------------+         +--------------------+
//   | dgA  fe80::a       |=========| dgB  fe80::b       |
//   +--------------------+  veth   +--------------------+
import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { native } from '../../host/io/native.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const nativeUrl = pathToFileURL(join(root, 'host', 'io', 'native.ts')).href;

t.test('argument errors are TypeErrors', async (t) => {
  t.throws(() => native.openRawIp6(112, 'x', 'not-an-address'), TypeError);
  t.throws(() => native.openRawIp6(112, 'lo', 'ff02::12', [133]), TypeError, 'a type filter on a non-ICMPv6 socket');
  t.throws(() => native.openRawIp6(300, 'lo', 'ff02::12'), TypeError);
});

t.test('send and receive over a veth pair: the laid-out header, the type filter', async (t) => {
  const ns = `dgtest-native6-${process.pid}`;
  const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  ip('netns', 'add', ns);
  t.teardown(() => { try { ip('netns', 'del', ns); } catch { /* gone */ } });
  ip('-n', ns, 'link', 'add', 'dgA', 'type', 'veth', 'peer', 'name', 'dgB');
  for (const [d, a] of [['dgA', 'fe80::a'], ['dgB', 'fe80::b']]) {
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv6.conf.${d}.addr_gen_mode=1`], { timeout: 10_000 });
    ip('-n', ns, 'addr', 'add', `${a}/64`, 'dev', d, 'nodad');
    ip('-n', ns, 'link', 'set', d, 'up');
  }
  const code = `
import { native } from ${JSON.stringify(nativeUrl)};
const out = {};
setTimeout(() => { console.log(JSON.stringify({ ...out, watchdog: true })); process.exit(3); }, 10000).unref();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, '0')).join('');
try {
  const a = native.openRawIp6(112, 'dgA', 'ff02::12');
  const b = native.openRawIp6(112, 'dgB', 'ff02::12');
  const ia = native.ifInfo('dgA').index;
  await sleep(200);
  out.sent = native.sendIp6(a, Uint8Array.from([0x21, 1, 2, 3]), 'ff02::12', ia, 'fe80::a');
  const view = new Uint8Array(128);
  let n = -1;
  for (let i = 0; i < 100 && n < 0; i++) { n = native.recvIp6Into(b, view); if (n < 0) await sleep(10); }
  out.n = n; out.rx = hex(view.subarray(0, Math.max(0, n)));
  out.again = native.recvIp6Into(b, view);
  // ICMPv6: the filtered socket takes router solicitations (133) and nothing else.
  const rs = native.openRawIp6(58, 'dgB', 'ff02::2', [133]);
  const tx = native.openRawIp6(58, 'dgA', 'ff02::2');
  native.sendIp6(tx, Uint8Array.from([128, 0, 0, 0, 0, 1, 0, 1]), 'ff02::2', ia, 'fe80::a'); // echo request
  native.sendIp6(tx, Uint8Array.from([133, 0, 0, 0, 0, 0, 0, 0]), 'ff02::2', ia, 'fe80::a'); // router solicitation
  await sleep(200);
  out.icmp = [];
  for (let i = 0; i < 10; i++) { const m = native.recvIp6Into(rs, view); if (m < 0) break; out.icmp.push([view[6], view[7], view[40]]); }
  for (const fd of [a, b, rs, tx]) native.close(fd);
} catch (e) { out.fatal = String(e && e.stack || e); }
console.log(JSON.stringify(out));
process.exit(0);
`;
  const r = await new Promise<{ stdout: string; stderr: string }>((resolve) => execFile('ip', ['netns', 'exec', ns, process.execPath, '--import=tsx', '--input-type=module', '-e', code],
    { cwd: root, timeout: 30_000, killSignal: 'SIGKILL' }, (_e, stdout, stderr) => resolve({ stdout, stderr })));
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}');
  t.notOk(out.fatal, 'no error', { fatal: out.fatal, stderr: r.stderr });
  t.notOk(out.watchdog);
  t.equal(out.sent, 4);
  t.equal(out.n, 44, '40-byte header + 4 payload bytes');
  t.equal(out.rx, '60000000' + '0004' + '70' + 'ff' + 'fe80000000000000000000000000000a' + 'ff020000000000000000000000000012' + '21010203',
    'version 6, payload length, next header 112, hop limit 255 (as sent), source fe80::a (IPV6_PKTINFO), destination ff02::12');
  t.equal(out.again, -1, 'one datagram, then EAGAIN');
  t.same(out.icmp, [[58, 255, 133]], 'only the router solicitation passed the filter');
});
