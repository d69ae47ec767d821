// Run inside a fresh network namespace (`unshare -n`, test/unit/vmac.test.ts): the virtual-MAC table, then one
// element added, added to a set that does not exist, and deleted twice over netlink (host/io/nftset.ts), each
// followed by what `nft` lists. Prints one JSON line.
import { execFileSync } from 'node:child_process';
import { NftSetWriter, NFPROTO_NETDEV } from '../../host/io/nftset.js';
import { vmacRuleset, macBytes, virtualMac, VMAC_TABLE } from '../../host/daemon/vmac.js';

execFileSync('ip', ['link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'wan0']);
const mac = Uint8Array.from([2, 0xd6, 1, 1, 0, 1]);
execFileSync('nft', ['-f', '-'], { input: vmacRuleset([{ n: 0, device: 'lan0', mac }], [{ vhid: 1, link: 0, vips: ['192.168.1.1'] }], new Set()) });
const w = new NftSetWriter();
const list = () => execFileSync('nft', ['list', 'set', 'netdev', VMAC_TABLE, 'owned_0'], { encoding: 'utf8' }).includes(virtualMac(1));
const step = (op: 'add' | 'del', set: string) => new Promise<number>((r) => w.change(op, NFPROTO_NETDEV, VMAC_TABLE, set, macBytes(virtualMac(1)), r));
const out: Record<string, unknown> = {};
out.add = [await step('add', 'owned_0'), list()];
out.add_missing_set = [await step('add', 'owned_9'), list()];
out.del = [await step('del', 'owned_0'), list()];
out.del_again = [await step('del', 'owned_0'), list()];
w.close();
console.log(JSON.stringify(out));
