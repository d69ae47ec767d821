// The firmware image, proven by booting two of it (`npm run test:image`; not part of `npm test`, ~3-4 min).
// Two mini-PCs under qemu (TCG, UEFI, three virtio NICs each, wired in namespaces with a LAN client and a WAN
// server), each flashed from board/minipc/out/duogate-minipc.img with its own seed on the boot partition.
// Checks: both boot to the duogate console; first boot assigned NIC roles by MAC (box B's ports enumerate in
// another order and its seed pins them by MAC); exactly one MASTER; the secondary receives the primary's
// config over config sync; a VLAN network (802.1Q) with its own CARP VIP on the LAN trunk; a power cut of the
// master's guest moves every VIP, the VLAN's too, to the other box.
// The VLAN stage is here, not on the virtual board, because this machine's kernel has no 802.1Q (no 8021q
// module): only the Debian kernel in these guests can make a <nic>.<vlan> sub-interface. The lab's LAN bridge
// (brlan, no vlan_filtering) is the trunk: it carries the tagged frames between the two guests unchanged, and a
// tcpdump on the bridge port of box B (in the lab namespace) shows them tagged on the wire.
// Emulation is 15-20x slower than hardware: nothing here judges timing, waits are generous but bounded. Each
// start of Node in a guest costs 25-55 s of emulated CPU (Debian 13's nodejs has no startup snapshot), and every
// `duogate` command on the console is one: the bounds allow for a build machine loaded by other work.
import t from 'tap';
import type * as Tap from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, sleep, stages, waitFor, type Guest } from './lab.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const IMAGE = process.env.DUOGATE_IMAGE ?? path.join(ROOT, 'board/minipc/out/duogate-minipc.img');
const RUN_DIR = path.join(ROOT, 'board/minipc/out/test');
// Its namespaces are <prefix>-lab/-client/-server (DUOGATE_LAB_PREFIX: two checkouts can run it side by side).
const PREFIX = process.env.DUOGATE_LAB_PREFIX ?? 'dgimg';

const CARP_PW = 'image-test-carp';
const SYNC_PW = 'image-test-sync-secret';
// Box A: ports in bus order wan, lan, sync (no MACs in its seed: bus order decides).
// Box B: the same three roles on other slots (lan first), so only its seed's MACs give it the same names.
const A = {
  name: 'A',
  seed: `role: primary\nname: gw-a\ncarp_password: ${CARP_PW}\nsync_password: ${SYNC_PW}\nlan: { description: "LAN gateway (from gw-a)" }\n`,
  nics: [
    { role: 'wan', mac: '52:54:00:d6:0a:01', slot: 3 },
    { role: 'lan', mac: '52:54:00:d6:0a:02', slot: 4 },
    { role: 'sync', mac: '52:54:00:d6:0a:03', slot: 5 },
  ],
} as const;
const B = {
  name: 'B',
  seed: `role: secondary\nname: gw-b\ncarp_password: ${CARP_PW}\nsync_password: ${SYNC_PW}\n` +
    'wan: { mac: "52:54:00:d6:0b:01" }\nlan: { mac: "52:54:00:d6:0b:02" }\nsync: { mac: "52:54:00:d6:0b:03" }\n',
  nics: [
    { role: 'lan', mac: '52:54:00:d6:0b:02', slot: 3 },
    { role: 'sync', mac: '52:54:00:d6:0b:03', slot: 4 },
    { role: 'wan', mac: '52:54:00:d6:0b:01', slot: 5 },
  ],
} as const;

const figures: Record<string, unknown> = {};
const stage = stages(t);
const secs = (t0: number) => Math.round((Date.now() - t0) / 100) / 10;

async function status(g: Guest): Promise<any> {
  const r = await g.run('duogate status --json --timeout 120', 300_000);
  if (r.code !== 0) throw new Error(`${g.spec.name}: duogate status: ${r.out}`);
  return JSON.parse(r.out.slice(r.out.indexOf('{')));
}

/** The IoT network: VLAN 30 on the LAN NIC (the trunk), its node addresses and its CARP VIP (vhid 30). */
const VLAN = { id: 30, dev: 'lan0.30', vip: '10.30.0.1', a: '10.30.0.2', b: '10.30.0.3' } as const;

/** Add the IoT VLAN network and its VIP to a box's config (as a user would edit it) with sed: one Node start less. */
function addVlanNetwork(g: Guest, primary: boolean): Promise<{ code: number; out: string }> {
  const [self, peer] = primary ? [VLAN.a, VLAN.b] : [VLAN.b, VLAN.a];
  const net = `  iot:  { device: lan0, vlan: ${VLAN.id}, address: ${self}/24, peer: ${peer} }`;
  const vip = `    - { interface: iot, vhid: ${VLAN.id}, address: ${VLAN.vip}/24, password: "${CARP_PW}", advbase: 1, advskew: ${primary ? 0 : 100}, description: "IoT VLAN gateway" }`;
  const f = '/etc/duogate/duogate.yaml';
  return g.run(`sed -i -e '/^  sync: *{ device: sync0/a\\${net}' -e '/^    - { interface: wan,/a\\${vip}' ${f} && ` +
    `grep -c -e 'vlan: ${VLAN.id}' -e 'vhid: ${VLAN.id}' ${f}`, 30_000);
}

async function addrs(g: Guest, dev: string): Promise<string[]> {
  const r = await g.run(`ip -color=never -4 -o addr show dev ${dev}`, 30_000);
  return [...r.out.matchAll(/inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => m[1]!);
}

async function macOf(g: Guest, dev: string): Promise<string> {
  return (await g.run(`cat /sys/class/net/${dev}/address`, 30_000)).out.trim();
}

if (process.getuid?.() !== 0) {
  t.plan(0, 'the image test needs root (namespaces, taps)');
} else if (!existsSync(IMAGE)) {
  t.fail(`${IMAGE} not found: build it first with \`npm run build:image\` (npm run test:image does both)`);
} else {
  mkdirSync(RUN_DIR, { recursive: true });
  const lab = new Lab(PREFIX, RUN_DIR);
  const a = lab.guest({ ...A, nics: [...A.nics] });
  const b = lab.guest({ ...B, nics: [...B.nics] });
  t.teardown(async () => {
    await lab.down();
    figures.notes = lab.notes;
    writeFileSync(path.join(RUN_DIR, 'figures.json'), JSON.stringify(figures, null, 2) + '\n');
  });

  await stage('flash both boxes and boot them', async (t) => {
    let t0 = Date.now();
    a.flash(IMAGE); b.flash(IMAGE);
    figures.flash_s = secs(t0);
    lab.up();
    t0 = Date.now();
    a.powerOn(); b.powerOn();
    const [sa, sb] = await Promise.all([a.waitShell(600_000), b.waitShell(600_000)]);
    figures.shell_s = { A: sa, B: sb };
    for (const g of [a, b]) {
      const r = await g.run('cat /etc/duogate-release /etc/debian_version; /usr/local/bin/node --version', 120_000);
      t.match(r.out, /duogate \d+\.\d+\.\d+/, `${g.spec.name}: runs the duogate firmware`);
      // The image's Debian release and Node: Debian 13 with its own nodejs (20.x), or Debian 12 with Node from npm.
      const info = JSON.parse(readFileSync(path.join(path.dirname(IMAGE), 'build-info.json'), 'utf8'));
      const want = String(info.debian ?? '').startsWith('bookworm') ? { deb: /^12\./m, node: /v20\.20\.2/ } : { deb: /^13\./m, node: /v2\d\.\d+\.\d+/ };
      t.match(r.out, want.deb, `${g.spec.name}: Debian ${info.debian}`);
      t.match(r.out, want.node, `${g.spec.name}: Node ${info.node}`);
    }
    for (const g of [a, b]) {
      // The hvc0 shell comes up alongside first boot, not after it.
      const done = await waitFor(`${g.spec.name}: first boot done`, async () =>
        (await g.run('cat /var/lib/duogate/firstboot.done 2>/dev/null || systemctl is-failed duogate-firstboot', 30_000)).out.match(/^\d{4}-|^failed/m), 600_000, 2000);
      t.notMatch(done[0], /failed/, `${g.spec.name}: first boot finished`);
    }
    figures.firstboot_done_s = secs(t0);
  });

  await stage('first boot: NIC roles by MAC, config and TLS identity from the seed', async (t) => {
    for (const g of [a, b]) {
      for (const c of g.spec.nics) t.equal(await macOf(g, `${c.role}0`), c.mac, `${g.spec.name}: ${c.role}0 is the port with MAC ${c.mac}`);
      const link = await g.run('cat /etc/systemd/network/10-duogate-lan0.link', 30_000);
      t.match(link.out, new RegExp(`MACAddress=${g.spec.nics.find((c) => c.role === 'lan')!.mac}`), `${g.spec.name}: lan0 persisted as a .link file`);
      const cfg = await g.run('duogate check --config /etc/duogate/duogate.yaml', 600_000);
      t.equal(cfg.code, 0, `${g.spec.name}: the seeded config passes duogate check\n${cfg.out}`);
      const crt = await g.run('openssl x509 -noout -subject -in /var/lib/duogate/configsync/sync.crt', 30_000);
      t.match(crt.out, g === a ? /gw-a/ : /gw-b/, `${g.spec.name}: TLS certificate generated for the node`);
    }
    t.match(a.serial(), /TLS certificate SHA-256 fingerprint: ([0-9A-F]{2}:){31}[0-9A-F]{2}/, 'the fingerprint is shown on the serial console for pinning');
  });

  await stage('both run duogate and elect one MASTER', async (t) => {
    const t0 = Date.now();
    const [s1, s2] = await waitFor('A MASTER and B BACKUP', async () => {
      const [x, y] = [await status(a), await status(b)];
      return x.carp_role === 'MASTER' && y.carp_role === 'BACKUP' ? [x, y] as const : null;
    }, 480_000, 3000);
    figures.election_s = secs(t0);
    t.equal(s1.node, 'gw-a'); t.equal(s2.node, 'gw-b');
    t.same(s1.vips.map((v: any) => v.state), ['MASTER', 'MASTER'], 'A is MASTER of both vhids');
    t.same(s2.vips.map((v: any) => v.state), ['BACKUP', 'BACKUP'], 'B is BACKUP of both vhids');
    t.ok(s2.vips.every((v: any) => v.master_heard_s_ago !== null), 'B hears A\'s adverts over the wire');
    t.ok((await addrs(a, 'lan0')).includes('192.168.1.1'), 'A holds the LAN VIP');
    t.ok((await addrs(a, 'wan0')).includes('203.0.113.1'), 'A holds the WAN VIP');
    t.notOk((await addrs(b, 'lan0')).includes('192.168.1.1'), 'B does not hold the LAN VIP');
    const ok = await waitFor('client pings the LAN VIP', async () => lab.ping('client', '192.168.1.1'), 60_000, 1000);
    t.ok(ok, 'the LAN client reaches its gateway VIP');
    // The default firewall drops pings from the WAN to the VIP (pfSense-like); ARP shows who answers for it.
    const wanA = await macOf(a, 'wan0');
    const wanMac = await waitFor('server resolves the WAN VIP', async () => lab.resolve('server', '203.0.113.1'), 60_000, 1000);
    t.ok(wanMac === wanA || /^00:00:5e:00:01:/.test(wanMac), `the WAN server resolves the WAN VIP to A (${wanMac})`);
    // The serial console is what a user sees: it logs root in and shows the duogate console.
    for (const g of [a, b]) t.match(g.serial(), /login: root \(automatic login\)[\s\S]*(== duogate|duogate console|CARP)/, `${g.spec.name}: serial console shows the duogate console`);
    const vt = await a.run('systemctl is-active getty@tty1; tr "\\0" " " < /proc/$(pgrep -t tty1 -n)/cmdline', 30_000);
    t.match(vt.out, /^active[\s\S]*(duogate|node)/, `A: the first VT (screen + keyboard) runs the console too: ${vt.out}`);
  });

  await stage('the secondary receives the config from the primary', async (t) => {
    const t0 = Date.now();
    const s = await waitFor('B has the primary\'s VIP description', async () => {
      const x = await status(b);
      return x.vips?.[0]?.description === 'LAN gateway (from gw-a)' ? x : null;
    }, 480_000, 3000);
    figures.config_sync_s = secs(t0);
    t.ok(s.configsync?.received, `B recorded a revision received from A: ${JSON.stringify(s.configsync?.received)}`);
    const p = await waitFor('A reports in_sync', async () => { const x = await status(a); return x.configsync?.peer?.state === 'in_sync' ? x : null; }, 300_000, 3000);
    t.equal(p.configsync.peer.state, 'in_sync', 'A: the peer is in sync');
  });

  await stage('a VLAN network with its own CARP VIP on the LAN trunk', async (t) => {
    for (const [g, primary] of [[b, false], [a, true]] as const) {
      const r = await addVlanNetwork(g, primary);
      t.equal(r.out.trim(), '2', `${g.spec.name}: interfaces.iot (vlan ${VLAN.id}) and vhid ${VLAN.id} added to the config`);
    }
    // Interfaces are read at start (the daemon creates the VLAN sub-interface then): restart both.
    const t0 = Date.now();
    for (const g of [b, a]) {
      await g.run('systemctl restart duogate', 300_000);
      t.ok(await g.waitDaemonSocket(600_000), `${g.spec.name}: the daemon is back after the restart`);
    }
    const [s1, s2] = await waitFor(`A MASTER and B BACKUP of every vhid, vhid ${VLAN.id} included`, async () => {
      const [x, y] = [await status(a), await status(b)];
      const has = (s: any) => s.vips?.some((v: any) => v.vhid === VLAN.id);
      return x.carp_role === 'MASTER' && y.carp_role === 'BACKUP' && has(x) && has(y) ? [x, y] as const : null;
    }, 600_000, 3000);
    figures.vlan_election_s = secs(t0);
    for (const [g, s, self] of [[a, s1, VLAN.a], [b, s2, VLAN.b]] as const) {
      const link = await g.run(`ip -color=never -d -o link show ${VLAN.dev}`, 30_000);
      t.match(link.out, new RegExp(`${VLAN.dev.replace('.', '\\.')}@lan0[\\s\\S]*vlan protocol 802\\.1Q id ${VLAN.id}`), `${g.spec.name}: ${VLAN.dev} is an 802.1Q sub-interface of lan0`);
      t.ok((await addrs(g, VLAN.dev)).includes(self), `${g.spec.name}: ${VLAN.dev} has the node address ${self}`);
      t.match(s.networks?.iot, { device: VLAN.dev, vlan: VLAN.id, carrier: true, vips: [{ vhid: VLAN.id }] }, `${g.spec.name}: status lists the iot network: ${JSON.stringify(s.networks?.iot)}`);
    }
    t.ok((await addrs(a, VLAN.dev)).includes(VLAN.vip), `A (MASTER) holds the VLAN VIP ${VLAN.vip}`);
    t.notOk((await addrs(b, VLAN.dev)).includes(VLAN.vip), 'B (BACKUP) does not hold it');
    // B pings the VIP over the trunk while the lab watches B's bridge port: the frames carry the 802.1Q tag.
    const cap = spawn('ip', ['netns', 'exec', lab.ns('lab'), 'timeout', '60', 'tcpdump', '-l', '-e', '-n', '-i', b.tap('lan'), '-c', '4', `vlan ${VLAN.id} and icmp`], { stdio: ['ignore', 'pipe', 'pipe'] });
    lab.pids.add(cap.pid!);
    let wire = '';
    cap.stdout!.on('data', (d) => { wire += d; });
    const capDone = new Promise<void>((res) => cap.on('exit', () => res()));
    await sleep(2000); // tcpdump attaches
    const ping = await b.run(`ping -n -c 4 -W 2 -I ${VLAN.dev} ${VLAN.vip}`, 60_000);
    await Promise.race([capDone, sleep(20_000)]);
    if (cap.exitCode === null) cap.kill('SIGKILL');
    lab.pids.delete(cap.pid!);
    t.match(ping.out, /4 received/, `B pings the VLAN VIP over the tagged trunk:\n${ping.out}`);
    t.match(wire, new RegExp(`vlan ${VLAN.id}[\\s\\S]*${VLAN.b.replace(/\./g, '\\.')} > ${VLAN.vip.replace(/\./g, '\\.')}: ICMP echo request`), `the echo requests are tagged vlan ${VLAN.id} on the wire:\n${wire}`);
    t.match(wire, new RegExp(`vlan ${VLAN.id}[\\s\\S]*${VLAN.vip.replace(/\./g, '\\.')} > ${VLAN.b.replace(/\./g, '\\.')}: ICMP echo reply`), 'and so are the VIP\'s replies');
    const macA = await macOf(a, 'lan0');
    const neigh = (await b.run(`ip -color=never neigh show ${VLAN.vip} dev ${VLAN.dev}`, 30_000)).out;
    t.ok(neigh.includes(macA) || /00:00:5e:00:01:1e/.test(neigh), `the VLAN VIP resolves to A (${neigh.trim()})`);
  });

  await stage('power cut of the master moves every VIP to the other box', async (t) => {
    const macA = await macOf(a, 'lan0'), macB = await macOf(b, 'lan0');
    lab.ping('client', '192.168.1.1');
    const before = lab.neighbourMac('client', '192.168.1.1');
    t.ok(before === macA || /^00:00:5e:00:01:/.test(before ?? ''), `client's VIP neighbour entry is A's (${before})`);
    const t0 = Date.now();
    await a.powerOff();
    const s = await waitFor('B MASTER', async () => { const x = await status(b); return x.carp_role === 'MASTER' ? x : null; }, 300_000, 2000);
    figures.failover_detected_s = secs(t0);
    t.same(s.vips.map((v: any) => v.state), ['MASTER', 'MASTER', 'MASTER'], 'B is MASTER of every vhid (LAN, WAN, the VLAN\'s)');
    t.ok((await addrs(b, 'lan0')).includes('192.168.1.1'), 'B holds the LAN VIP');
    t.ok((await addrs(b, VLAN.dev)).includes(VLAN.vip), 'B holds the VLAN VIP');
    t.ok((await addrs(b, 'wan0')).includes('203.0.113.1'), 'B holds the WAN VIP');
    t.ok(await waitFor('client pings the LAN VIP after failover', async () => lab.ping('client', '192.168.1.1'), 60_000, 1000), 'the LAN client reaches the VIP again');
    const wanB = await macOf(b, 'wan0');
    const wanAfter = await waitFor('server resolves the WAN VIP to B', async () => { const m = lab.resolve('server', '203.0.113.1'); return m === wanB || /^00:00:5e:00:01:/.test(m ?? '') ? m : null; }, 60_000, 1000);
    t.ok(wanAfter, `the WAN server resolves the WAN VIP to B (${wanAfter})`);
    figures.failover_pingable_s = secs(t0);
    const after = lab.neighbourMac('client', '192.168.1.1');
    t.ok(after === macB || (/^00:00:5e:00:01:/.test(after ?? '') && after === before), `client's VIP neighbour entry now leads to B (${after})`);
  });
}
