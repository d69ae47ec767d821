// First boot's pure parts (cheap, runs in `npm test`): the seed file -> node config, and NIC roles by MAC.
// The boot test (boot.image.ts, `npm run test:image`) proves the same on booted images.
import t from 'tap';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configFromSeed, parseSeed, seedMacs, SeedError } from '../../board/minipc/seed.js';
import { applyRoles, assignRoles, linkFile, listNics, rolesPersisted, type Nic } from '../../board/minipc/nics.js';

t.test('seed: the short form gives a valid config per role', async (t) => {
  const p = configFromSeed(parseSeed('role: primary\ncarp_password: s3cret\n', 'seed.yaml'), 'seed.yaml').config;
  const s = configFromSeed(parseSeed('role: secondary\nname: gw-b\ncarp_password: s3cret\n', 'seed.yaml'), 'seed.yaml').config;
  t.equal(p.node.name, 'primary'); t.equal(s.node.name, 'gw-b');
  t.equal(p.interfaces.lan.address, '192.168.1.2/24'); t.equal(p.interfaces.lan.peer, '192.168.1.3');
  t.equal(s.interfaces.lan.address, '192.168.1.3/24'); t.equal(s.interfaces.sync.peer, '172.16.1.1');
  t.same(p.interfaces.wan.device, 'wan0');
  t.same(p.carp.vips.map((v) => [v.vhid, v.address, v.advskew]), [[1, '192.168.1.1/24', 0], [2, '203.0.113.1/24', 0]]);
  t.same(s.carp.vips.map((v) => v.advskew), [100, 100], 'the secondary advertises a higher skew');
  t.equal(p.state_dir, '/var/lib/duogate');
  t.equal(p.configsync, undefined, 'no config sync without sync_password');
  const pk = (c: unknown) => (c as { peer?: { key?: string } }).peer?.key;
  t.ok(pk(p) && pk(p) === pk(s), 'both boxes derive the same pair key from the seed (CARP pair authentication on by default)');
  t.not(pk(p), pk(configFromSeed(parseSeed('role: primary\ncarp_password: other\n', 'seed.yaml'), 'seed.yaml').config), 'another password, another key');
  t.equal(pk(configFromSeed(parseSeed('role: primary\ncarp_password: s3cret\npair_key: my-own-pair-key-0123456789\n', 'seed.yaml'), 'seed.yaml').config),
    'my-own-pair-key-0123456789', 'pair_key overrides the derived key');
});

t.test('seed: overrides, config sync, MACs', async (t) => {
  const seed = parseSeed([
    'role: primary', 'carp_password: s3cret', 'sync_password: twelve-chars-or-more',
    'lan: { address: 10.0.0.2/24, peer: 10.0.0.3, vip: 10.0.0.1/24, mac: "AA:BB:CC:00:00:02", description: office }',
    'wan: { mac: "aa:bb:cc:00:00:01", password: wan-only }',
  ].join('\n'), 's.yaml');
  const { config, text } = configFromSeed(seed, 's.yaml');
  t.equal(config.interfaces.lan.address, '10.0.0.2/24');
  t.same(config.carp.vips[0], { interface: 'lan', vhid: 1, address: '10.0.0.1/24', password: 's3cret', advbase: 1, advskew: 0, description: 'office', mac: 'real' });
  t.equal(config.carp.vips[1]!.password, 'wan-only');
  t.match(config.configsync, { password: 'twelve-chars-or-more' });
  t.match(text, /^# duogate node config, written at first boot/);
  t.same(seedMacs(seed), { wan: 'aa:bb:cc:00:00:01', lan: 'aa:bb:cc:00:00:02' });
});

t.test('seed: errors name the file, the field and what to do', async (t) => {
  const bad: [string, RegExp][] = [
    ['', /s\.yaml: empty/],
    ['role: master\n', /role: must be primary or secondary/],
    ['role: primary\ncarp_pasword: x\n', /carp_pasword: unknown key/],
    ['role: primary\ncarp_password: x\nlan: { mac: 12:34 }\n', /lan\.mac: .* not a MAC/],
    ['role: primary\ncarp_password: x\nsync: { vip: 172.16.1.3/30 }\n', /sync: the sync link carries no VIP/],
    ['role: primary\ncarp_password: x\nlan: { adress: 1.2.3.4/24 }\n', /lan\.adress: unknown key/],
    ['role: [\n', /not valid YAML/],
  ];
  for (const [text, re] of bad) t.throws(() => parseSeed(text, 's.yaml'), re, JSON.stringify(text));
  t.throws(() => configFromSeed(parseSeed('role: primary\n', 's.yaml'), 's.yaml'), /carp_password: missing/);
  let err: unknown;
  try { configFromSeed(parseSeed('role: primary\ncarp_password: x\nlan: { address: 300.1.1.1/24 }\n', 's.yaml'), 's.yaml'); } catch (e) { err = e; }
  t.ok(err instanceof SeedError, 'a bad address is a SeedError');
  t.match((err as Error).message, /s\.yaml: the config it gives is invalid: .*interfaces\.lan\.address/s);
  t.throws(() => configFromSeed(parseSeed('role: primary\ncarp_password: x\nsync_password: short\n', 's.yaml'), 's.yaml'), /configsync\.password/);
});

t.test('seed: the full form is validated and used as is', async (t) => {
  const full = readFileSync(new URL('../../board/virtual/primary.yaml', import.meta.url), 'utf8');
  const seed = parseSeed(`role: primary\nconfig:\n${full.split('\n').map((l) => '  ' + l).join('\n')}`, 's.yaml');
  t.equal(configFromSeed(seed, 's.yaml').config.node.name, 'primary');
});

const nic = (name: string, mac: string, bus: string): Nic => ({ name, mac, busPath: bus, carrier: false });

t.test('NIC roles: bus order by default, pinned MACs win, clear errors', async (t) => {
  const nics = [nic('enp1s0', '00:00:00:00:00:01', '/pci/01'), nic('enp2s0', '00:00:00:00:00:02', '/pci/02'), nic('enp3s0', '00:00:00:00:00:03', '/pci/03')];
  const byBus = assignRoles(nics, {});
  t.same([byBus.wan.name, byBus.lan.name, byBus.sync.name], ['enp1s0', 'enp2s0', 'enp3s0']);
  const pinned = assignRoles(nics, { lan: '00:00:00:00:00:01', sync: '00:00:00:00:00:02' });
  t.same([pinned.wan.name, pinned.lan.name, pinned.sync.name], ['enp3s0', 'enp1s0', 'enp2s0'], 'pinned first, the rest in bus order');
  t.throws(() => assignRoles(nics.slice(0, 2), {}), /found 2 Ethernet port\(s\) \(enp1s0 .*\); duogate needs three/);
  t.throws(() => assignRoles(nics, { wan: '00:00:00:00:00:09' }), /wan: no port has MAC 00:00:00:00:00:09 \(ports: enp1s0/);
  t.throws(() => assignRoles(nics, { wan: '00:00:00:00:00:01', lan: '00:00:00:00:00:01' }), /lan: MAC .* already given/);
  t.equal(linkFile('sync', '00:00:00:00:00:03'), '# duogate NIC role sync: written by duogate-firstboot (or the console\'s "assign NICs"); matched by MAC.\n[Match]\nMACAddress=00:00:00:00:00:03\n\n[Link]\nName=sync0\n');
});

t.test('NIC discovery reads sysfs: Ethernet ports with a bus device, sorted by bus path', async (t) => {
  const root = mkdtempSync(path.join(tmpdir(), 'dg-sysnet-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const dev = (n: string) => { const d = path.join(root, 'devices', n); mkdirSync(d, { recursive: true }); return d; };
  const net = path.join(root, 'net');
  const add = (name: string, mac: string, type: string, device?: string, extra?: string) => {
    const d = path.join(net, name); mkdirSync(d, { recursive: true });
    writeFileSync(path.join(d, 'address'), mac + '\n'); writeFileSync(path.join(d, 'type'), type + '\n');
    if (device) symlinkSync(device, path.join(d, 'device'));
    if (extra) mkdirSync(path.join(d, extra));
  };
  add('lo', '00:00:00:00:00:00', '772');
  add('enp5s0', 'AA:00:00:00:00:05', '1', dev('0000:05:00.0'));
  add('enp2s0', 'aa:00:00:00:00:02', '1', dev('0000:02:00.0'));
  add('wlp3s0', 'aa:00:00:00:00:03', '1', dev('0000:03:00.0'), 'wireless');
  add('br0', 'aa:00:00:00:00:09', '1');
  writeFileSync(path.join(net, 'enp2s0', 'carrier'), '1\n');
  const got = listNics(net);
  t.same(got.map((n) => [n.name, n.mac, n.carrier]), [['enp2s0', 'aa:00:00:00:00:02', true], ['enp5s0', 'aa:00:00:00:00:05', false]]);
});

t.test('NIC roles count as persisted only when all three .link files are whole (a power cut can leave one)', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dg-links-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.notOk(rolesPersisted(dir), 'none');
  writeFileSync(path.join(dir, '10-duogate-wan0.link'), linkFile('wan', '00:00:00:00:00:01'));
  t.notOk(rolesPersisted(dir), 'wan only: first boot must assign again');
  writeFileSync(path.join(dir, '10-duogate-lan0.link'), linkFile('lan', '00:00:00:00:00:02'));
  writeFileSync(path.join(dir, '10-duogate-sync0.link'), '');
  t.notOk(rolesPersisted(dir), 'an empty sync0 file does not count');
  writeFileSync(path.join(dir, '10-duogate-sync0.link'), linkFile('sync', '00:00:00:00:00:03'));
  t.ok(rolesPersisted(dir), 'all three');
  // A torn re-assignment (wan and lan swapped; cut after the new wan file, the old lan file still there): one port
  // named for two roles.
  writeFileSync(path.join(dir, '10-duogate-wan0.link'), linkFile('wan', '00:00:00:00:00:02'));
  t.notOk(rolesPersisted(dir), 'two roles on one MAC do not count');
  writeFileSync(path.join(dir, '10-duogate-lan0.link'), linkFile('lan', '00:00:00:00:00:01'));
  t.ok(rolesPersisted(dir), 'the swap complete');
  writeFileSync(path.join(dir, '10-duogate-lan0.link'), linkFile('lan', '00:00:00:00:00:02'.toUpperCase()));
  t.notOk(rolesPersisted(dir), 'MACs compare without case');
});

t.test('applying NIC roles removes every old duogate .link file and writes the three', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'dg-links-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, '10-duogate-wan0.link'), linkFile('wan', '00:00:00:00:00:09'));
  writeFileSync(path.join(dir, '10-duogate-old0.link'), linkFile('wan', '00:00:00:00:00:08')); // a stale name
  writeFileSync(path.join(dir, '20-other.link'), '[Match]\n'); // not ours: kept
  // Ports already named by their roles: no rename (no `ip` call on this machine).
  const nic = (r: string, i: number): Nic => ({ name: `${r}0`, mac: `00:00:00:00:00:0${i}`, busPath: `/x/${i}`, carrier: true });
  applyRoles({ wan: nic('wan', 1), lan: nic('lan', 2), sync: nic('sync', 3) }, dir);
  t.same(readdirSync(dir).sort(), ['10-duogate-lan0.link', '10-duogate-sync0.link', '10-duogate-wan0.link', '20-other.link']);
  t.match(readFileSync(path.join(dir, '10-duogate-wan0.link'), 'utf8'), /^MACAddress=00:00:00:00:00:01$/m);
  t.ok(rolesPersisted(dir));
});
