// The virtual-MAC nftables table (host/daemon/vmac.ts): what it matches, and that the kernel takes it (nft -c in
// a private network namespace with the NIC it names).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { vmacRuleset, virtualMac, VMAC_TABLE } from '../../host/daemon/vmac.js';

const mac = Uint8Array.from([2, 0xd6, 1, 1, 0, 1]);
const links = [{ n: 0, device: 'lan0', mac }, { n: 1, device: 'wan0', mac }];

t.test('virtual MAC of a vhid', async (t) => {
  t.equal(virtualMac(1), '00:00:5e:00:01:01');
  t.equal(virtualMac(255), '00:00:5e:00:01:ff');
});

t.test('the table: egress rewrite per VIP always, ingress only for owned vhids', async (t) => {
  const groups = [{ vhid: 1, link: 0, vips: ['192.168.1.1', '192.168.1.4'] }, { vhid: 2, link: 1, vips: ['203.0.113.1'] }];
  const backup = vmacRuleset(links, groups, new Set());
  t.match(backup, /set owned_0 \{ type ether_addr; \}/, 'a BACKUP owns nothing');
  t.match(backup, /ip saddr 192\.168\.1\.4 ether saddr set 00:00:5e:00:01:01/);
  t.match(backup, /arp saddr ip 203\.0\.113\.1 arp saddr ether set 00:00:5e:00:01:02 ether saddr set 00:00:5e:00:01:02/);
  t.match(backup, /ether daddr @owned_0 ether daddr set 02:d6:01:01:00:01 meta pkttype set host/);
  t.match(backup, /ether saddr \{ 00:00:5e:00:01:02 \} ether saddr != @owned_1 counter drop/, 'egress: nothing from a virtual MAC the node does not own');
  const master = vmacRuleset(links, groups, new Set([2]));
  t.match(master, /set owned_1 \{ type ether_addr; elements = \{ 00:00:5e:00:01:02 \}; \}/);
  t.match(master, /set owned_0 \{ type ether_addr; \}/);
  t.notMatch(vmacRuleset(links, [], new Set()), /hook/, 'no virtual-MAC vhid: only the delete of a leftover table');
  t.match(vmacRuleset(links, [], new Set()), new RegExp(`^table netdev ${VMAC_TABLE} \\{\\}\\ndelete table netdev ${VMAC_TABLE}\\n$`));

  // The kernel takes it (netdev ingress/egress hooks need the devices, so a namespace of our own with them).
  const r = spawnSync('unshare', ['--net', 'sh', '-c', 'ip link add lan0 type veth peer name wan0 && nft -c -f -'], { input: master, encoding: 'utf8' });
  t.equal(r.status, 0, `nft -c accepts the table: ${r.stderr}`);
});

t.test('set elements over netlink (host/io/nftset.ts) against the kernel, in a namespace of our own', async (t) => {
  const r = spawnSync('unshare', ['-n', process.execPath, '--import=tsx', 'test/helpers/nftset-netns.ts'], { encoding: 'utf8', timeout: 30_000 });
  t.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  t.same(o.add.map(Number), [0, 1], 'added: the kernel acked and nft lists the virtual MAC');
  t.same(o.add_missing_set.map(Number), [2, 1], 'a set that does not exist: ENOENT, nothing changed');
  t.same(o.del.map(Number), [0, 0], 'deleted');
  t.same(o.del_again.map(Number), [0, 0], 'deleting an absent element counts as done');
});
