// The authenticated peer is still bounded: states received over state sync pass the same
// kind of filter as local ones before they reach the table or the kernel (assembly/statesync/policy.ts, built by
// host/statesync/policy.ts). Each refusal is counted under its own name.
import t from 'tap';
import { SyncCore } from '../../host/statesync/core.js';
import { rxPolicyOf } from '../../host/statesync/policy.js';
import { stateSyncConfig } from '../../host/statesync/config.js';
import { parseConfigText } from '../../host/config/load.js';
import { configYaml } from '../bench/statesync-board.js';

// The e2e lab's primary: WAN 203.0.113.2/24 (VIP .1), LAN 192.168.1.2/24 (VIP .1), sync 172.16.1.1/30; peer .3/.3/.2.
const base = parseConfigText(configYaml('/tmp/duogate-policy-test', 'primary', { key: 'policy-test-key-0123456' }));
const withNat = parseConfigText(configYaml('/tmp/duogate-policy-test', 'primary', { key: 'policy-test-key-0123456' }) +
  'nat: { port_forwards: [ { interface: wan, protocol: tcp, destination_port: 443, target: 10.9.9.9 } ], ' +
  'outbound: { mode: hybrid, rules: [ { interface: wan, source: lan net, destination: any, protocol: any, translation: 203.0.113.50, no_nat: false } ] } }\n');
const ss = (extra: object = {}) => ({ ...stateSyncConfig({ key: 'policy-test-key-0123456' })!, ...extra });
const sysctls: Record<string, number> = { nf_conntrack_tcp_timeout_established: 7200, nf_conntrack_udp_timeout_stream: 180 };
const sysctl = (n: string) => sysctls[n] ?? null;

interface Item { proto?: number; zone?: number; src: string; dst: string; sp?: number; dp?: number; rsrc?: string; rdst?: string; rsp?: number; rdp?: number; timeout?: number; mark?: number; state?: number }
function upsert(i: Item): Buffer {
  const b = Buffer.alloc(48);
  const ip = (a: string, o: number) => b.set(a.split('.').map(Number), o);
  b[0] = 1; b[1] = i.proto ?? 6; b.writeUInt16BE(i.zone ?? 0, 2);
  ip(i.src, 4); ip(i.dst, 8); b.writeUInt16BE(i.sp ?? 40000, 12); b.writeUInt16BE(i.dp ?? 443, 14);
  ip(i.rsrc ?? i.dst, 16); ip(i.rdst ?? i.src, 20); b.writeUInt16BE(i.rsp ?? i.dp ?? 443, 24); b.writeUInt16BE(i.rdp ?? i.sp ?? 40000, 26);
  b.writeUInt32BE(0x18e, 28); b.writeUInt32BE(i.timeout ?? 300, 32); b.writeUInt32BE(i.mark ?? 0, 36);
  if ((i.proto ?? 6) === 6) { b[40] = i.state ?? 3; b[41] = 7; b[42] = 7; }
  return b;
}
function core(c = base, cfg = ss()): SyncCore {
  const k = new SyncCore(1024, { debug: true });
  const own = (['wan', 'lan', 'sync'] as const).flatMap((r) => [c.interfaces[r].address.split('/')[0], c.interfaces[r].peer ?? '']);
  k.setIgnore(own, '172.16.1.0', 30);
  k.setPolicy(rxPolicyOf(c, cfg, sysctl));
  return k;
}
function apply(k: SyncCore, items: Buffer[]): number {
  const b = Buffer.concat(items);
  k.x.ssNlTxReset(); k.peerRx().set(b); const n = k.x.ssApply(1000, b.length, 1); k.x.ssNlTxReset();
  return n;
}

const CLIENT = '192.168.1.100'; const SERVER = '198.51.100.7'; const WAN_VIP = '203.0.113.1';
const forwarded: Item = { src: CLIENT, dst: SERVER, rdst: WAN_VIP, rdp: 61000 };

t.test('the policy is built from the config and the kernel\'s timeouts', async (t) => {
  const p = rxPolicyOf(withNat, ss(), sysctl);
  t.same(p.vips.sort(), ['192.168.1.1', '203.0.113.1']);
  t.same(p.snat.sort(), ['192.168.1.1', '192.168.1.2', '192.168.1.3', '203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.50'], 'VIPs, both nodes\' WAN/LAN addresses, explicit translations; never the sync link');
  t.same(p.dnatNets, [['192.168.1.0', 24], ['10.9.9.9', 32]], 'the LAN and the port forward targets');
  t.equal(p.timeoutMax[3], 7200, 'TCP ESTABLISHED: the sysctl');
  t.equal(p.timeoutMax[8], 10, 'TCP CLOSE: the kernel default when the sysctl is missing');
  t.equal(p.timeoutMax[10], 180, 'UDP: the larger of the plain and the stream timeout');
  t.equal(p.timeoutMax[11], 30, 'ICMP');
  t.same([p.zones, p.marks], [[0], [0]], 'zone 0 and no mark unless configured');
});

t.test('forwarded traffic with SNAT to the WAN VIP is applied', async (t) => {
  const k = core();
  t.equal(apply(k, [upsert(forwarded), upsert({ ...forwarded, proto: 17, sp: 5353, dp: 53, rdp: 5353 })]), 2);
  t.equal(k.entries().length, 2);
  t.equal(k.stats().kernel_creates, 2);
});

t.test('each refusal is counted by name; the rest of the payload is still applied', async (t) => {
  const k = core();
  const bad: [string, Item][] = [
    ['to_self', { src: CLIENT, dst: '192.168.1.2', dp: 22, rdst: CLIENT }],                 // to this node (SSH)
    ['to_self', { src: CLIENT, dst: '192.168.1.3', dp: 7443, rdst: CLIENT }],               // to the peer's address
    ['to_self', { src: '172.16.1.2', dst: SERVER, rdst: WAN_VIP }],                          // from the sync subnet
    ['to_self', { src: CLIENT, dst: '192.168.1.1', dp: 53, rdst: CLIENT, proto: 17 }],       // ends at the LAN VIP (DNS on the gateway)
    ['to_self', { src: SERVER, dst: WAN_VIP, dp: 8001, rsrc: '192.168.1.2', rdst: SERVER }], // "DNAT" onto this node's Kea port
    ['to_self', { src: WAN_VIP, dst: SERVER }],                                              // from the VIP itself
    ['zone', { ...forwarded, zone: 5 }],
    ['mark', { ...forwarded, mark: 0x1337 }],
    ['snat', { ...forwarded, rdst: '1.2.3.4' }],                                             // SNAT to someone else's address
    ['snat', { ...forwarded, rdst: '172.16.1.1' }],                                          // SNAT onto the sync link
    ['dnat', { src: SERVER, dst: WAN_VIP, dp: 443, rsrc: '8.8.8.8', rsp: 443, rdst: SERVER }], // DNAT out of the LAN
  ];
  const items = bad.flatMap(([, i]) => [upsert(i)]);
  items.splice(4, 0, upsert(forwarded)); // a good one in the middle
  apply(k, items);
  const s = k.stats();
  t.same({ to_self: s.rx_to_self, zone: s.rx_zone, mark: s.rx_mark, snat: s.rx_snat, dnat: s.rx_dnat },
    { to_self: 6, zone: 1, mark: 1, snat: 2, dnat: 1 });
  t.equal(k.entries().length, 1, 'only the good state is in the table');
  t.equal(k.stats().kernel_creates, 1, 'and only it went to the kernel');
  t.equal(s.rx_bad_items, 0, 'refusals are not malformed items: the walk went on');
});

t.test('port forwards into the LAN or to a configured target, zones and marks when configured', async (t) => {
  const k = core(withNat, ss({ zones: [0, 5], marks: [0, 0x1337] }));
  t.equal(apply(k, [
    upsert({ src: SERVER, dst: WAN_VIP, dp: 443, rsrc: '192.168.1.50', rsp: 8443, rdst: SERVER }),
    upsert({ src: SERVER, dst: WAN_VIP, dp: 443, sp: 40001, rsrc: '10.9.9.9', rsp: 443, rdst: SERVER }),
    upsert({ ...forwarded, rdst: '203.0.113.50' }),
    upsert({ ...forwarded, sp: 40002, rdp: 61002, zone: 5, mark: 0x1337 }),
  ]), 4);
  const s = k.stats();
  t.equal(s.rx_to_self + s.rx_zone + s.rx_mark + s.rx_snat + s.rx_dnat, 0);
  t.equal(k.entries().length, 4);
});

t.test('timeouts are bounded by the kernel\'s for the protocol state', async (t) => {
  const k = core();
  apply(k, [
    upsert({ ...forwarded, timeout: 0xffffffff }),
    upsert({ ...forwarded, sp: 40001, state: 7, timeout: 100000 }), // TIME_WAIT: 120 s at most
    upsert({ ...forwarded, proto: 17, sp: 5000, dp: 53, rdp: 5000, timeout: 100000 }),
    upsert({ ...forwarded, sp: 40002, timeout: 60 }),
  ]);
  const by = (sp: number) => k.entries().find((e) => e.sport === sp)!.timeout;
  t.equal(by(40000), 7200, 'ESTABLISHED cut to the sysctl');
  t.equal(by(40001), 120, 'TIME_WAIT cut to the default');
  t.equal(by(5000), 180, 'UDP cut to the stream timeout');
  t.equal(by(40002), 60, 'a sane timeout is kept');
  t.equal(k.stats().rx_timeout_clamped, 3);
});

t.test('without a policy (core tests, tools) every well-formed item passes', async (t) => {
  const k = new SyncCore(1024, { debug: true });
  apply(k, [upsert({ src: CLIENT, dst: '192.168.1.2', rdst: CLIENT, zone: 9, mark: 1, timeout: 0xffffffff })]);
  t.equal(k.entries().length, 1);
});
