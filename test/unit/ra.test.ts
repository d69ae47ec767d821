// Router advertisements (host/ra): the sending machine in virtual time against RFC 4861's timing rules, and the
// packet against an independent decoder (tshark: RA, prefix information, RDNSS, checksum, no expert info).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaMachine, MAX_INITIAL_RTR_ADVERT_INTERVAL_MS } from '../../host/ra/machine.js';
import { buildRa } from '../../host/ra/codec.js';
import { parseConfigText } from '../../host/config/load.js';
import { checkConfig } from '../../host/config/check.js';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';

function seeded(seed: number): () => number {
  let s = seed;
  return () => { s = (s * 1103515245 + 12345) & 0x7fffffff; return s / 0x80000000; };
}
/** Drive the machine to `until`, calling poll at every deadline; the send times. */
function runTo(m: RaMachine, from: number, until: number, sends: number[]): number {
  let now = from;
  for (let i = 0; i < 100_000; i++) {
    const d = m.nextTimeout();
    if (d < 0 || d > until) return until;
    now = Math.max(now, d);
    if (m.poll(now)) sends.push(now);
  }
  throw new Error('machine did not settle');
}

t.test('MASTER only: at once on becoming MASTER, 3 initial RAs at most 16 s apart, then within [min, max]', async (t) => {
  const m = new RaMachine(200_000, 600_000, seeded(7));
  const sends: number[] = [];
  runTo(m, 0, 10_000, sends);
  t.same(sends, [], 'a BACKUP never advertises');
  m.setActive(10_000, true);
  runTo(m, 10_000, 5_000_000, sends);
  t.equal(sends[0], 10_000, 'the new MASTER advertises at once');
  const gaps = sends.slice(1).map((x, i) => x - sends[i]);
  t.ok(gaps.slice(0, 3).every((g) => g <= MAX_INITIAL_RTR_ADVERT_INTERVAL_MS), `the first 3 intervals <= 16 s (${gaps.slice(0, 3).map(Math.round)})`);
  t.ok(gaps.slice(3).every((g) => g >= 200_000 && g <= 600_000), 'then between MinRtrAdvInterval and MaxRtrAdvInterval');
  m.setActive(5_000_000, false);
  const n = sends.length;
  runTo(m, 5_000_000, 9_000_000, sends);
  t.equal(sends.length, n, 'silent once no longer MASTER (failover: no final RA from the machine)');
});

t.test('solicitations: answered within 0.5 s, never sooner than 3 s after the last RA; ignored when not MASTER', async (t) => {
  const m = new RaMachine(200_000, 600_000, seeded(3));
  m.onSolicit(0);
  t.equal(m.nextTimeout(), -1, 'a BACKUP does not answer');
  m.setActive(0, true);
  t.ok(m.poll(0));
  m.onSolicit(1000);
  t.equal(m.nextTimeout() >= 3000, true, 'rate limited to one RA per 3 s');
  t.ok(m.poll(3000) || m.poll(m.nextTimeout()));
  const at = 100_000;
  const sends: number[] = [];
  runTo(m, 3000, at - 1, sends);
  m.onSolicit(at);
  const due = m.nextTimeout();
  t.ok(due >= at && due <= at + 500, `answer at +${Math.round(due - at)} ms (<= 500)`);
  t.equal(m.solicited, 2);
});

t.test('the RA as tshark decodes it: router lifetime, prefix (on-link, autonomous), RDNSS, source link-layer address', async (t) => {
  const mac = Buffer.from('02d601010001', 'hex');
  const pkt = Buffer.from(buildRa({
    mac, router: 'fe80::1', routerLifetimeS: 1800,
    prefixes: [{ prefix: '2001:db8:1::/64', validS: 86_400, preferredS: 14_400 }], dns: ['2001:db8:1::1'], dnsLifetimeS: 1800,
  }));
  const frame = Buffer.concat([Buffer.from('333300000001', 'hex'), mac, Buffer.from('86dd', 'hex'), pkt]);
  const pcap = Buffer.alloc(40);
  pcap.writeUInt32LE(0xa1b2c3d4, 0); pcap.writeUInt16LE(2, 4); pcap.writeUInt16LE(4, 6); pcap.writeUInt32LE(65535, 16); pcap.writeUInt32LE(1, 20);
  pcap.writeUInt32LE(frame.length, 32); pcap.writeUInt32LE(frame.length, 36);
  const dir = mkdtempSync(join(tmpdir(), 'duogate-ra-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'ra.pcap'), Buffer.concat([pcap, frame]));
  const out = execFileSync('tshark', ['-r', join(dir, 'ra.pcap'), '-T', 'fields', '-E', 'separator=;', '-e', 'ipv6.src', '-e', 'ipv6.dst', '-e', 'ipv6.hlim',
    '-e', 'icmpv6.type', '-e', 'icmpv6.nd.ra.router_lifetime', '-e', 'icmpv6.opt.prefix', '-e', 'icmpv6.opt.prefix.flag.l', '-e', 'icmpv6.opt.prefix.flag.a',
    '-e', 'icmpv6.opt.rdnss', '-e', 'icmpv6.opt.linkaddr', '-e', 'icmpv6.checksum.status', '-e', '_ws.expert'],
  { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  t.equal(out, 'fe80::1;ff02::1;255;134;1800;2001:db8:1::;1;1;2001:db8:1::1;02:d6:01:01:00:01;1;');
});

t.test('config: the ra section needs a link-local VIP in its vhid; DNS defaults to the vhid\'s global VIP', async (t) => {
  const d = YAML.parse(readFileSync('board/virtual/primary.yaml', 'utf8'));
  d.interfaces.lan.address6 = 'fe80::2'; d.interfaces.lan.peer6 = 'fe80::3';
  d.carp.vips.push({ ...d.carp.vips[0], address: '2001:db8:1::1/64' });
  d.ra = { vhid: 1, prefixes: ['2001:db8:1::/64'] };
  const errs = () => checkConfig(parseConfigText(YAML.stringify(d))).filter((f) => f.level === 'error' && f.field.startsWith('ra'));
  t.match(errs().map((f) => `${f.field}: ${f.message}`).join('\n'), /ra\.vhid: vhid 1 has no link-local IPv6 VIP/);
  d.carp.vips.push({ ...d.carp.vips[0], address: 'fe80::1/64' });
  t.same(errs(), []);
  d.ra.router_lifetime = 100; d.ra.interval_max = 600;
  t.match(errs()[0]?.field, 'ra.router_lifetime');
});
