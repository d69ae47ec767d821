// The `wan` section: where the WAN VIP's address comes from (docs/wan.md). `static` (the default) is the
// configured `carp.vips[]` address; `dhcp` leases it from the ISP on the MASTER, from the vhid's virtual MAC.
import type { Config } from '../config/schema.js';
import type { Finding } from '../config/check.js';
import { virtualMac } from '../daemon/vmac.js';

export interface WanConfig {
  mode: 'static' | 'dhcp';
  /** The WAN vhid whose address the lease gives (its `carp.vips[]` address is used until the pair holds one). */
  vhid: number;
  /** Option 61 as hex (the same on both nodes); default 01 + the virtual MAC. */
  client_id?: string;
  /** Option 12, if the ISP wants one. */
  hostname?: string;
}

export const wanSchema = {
  type: 'object', additionalProperties: false, required: ['mode'],
  properties: {
    mode: { enum: ['static', 'dhcp'], default: 'static', description: 'static: carp.vips[] gives the WAN address; dhcp: the MASTER leases it from the ISP' },
    vhid: { type: 'integer', minimum: 1, maximum: 255, description: 'the WAN vhid whose address is leased (mode dhcp)' },
    client_id: { type: 'string', pattern: '^([0-9a-fA-F]{2}){2,64}$', description: 'DHCP option 61 as hex, the same on both nodes (default 01 + the virtual MAC)' },
    hostname: { type: 'string', pattern: '^[A-Za-z0-9]([A-Za-z0-9-]{0,62})$', description: 'DHCP option 12' },
  },
};

export function wanConfig(c: Config): WanConfig | null {
  const w = c.wan as Partial<WanConfig> | undefined;
  if (!w || (w.mode ?? 'static') === 'static') return null;
  return { mode: 'dhcp', vhid: w.vhid ?? 0, client_id: w.client_id, hostname: w.hostname };
}

export function checkWan(c: Config, peer?: Config): Finding[] {
  const w = wanConfig(c);
  if (!w) return [];
  const out: Finding[] = [];
  const err = (field: string, message: string) => out.push({ level: 'error', field, message });
  const warn = (field: string, message: string) => out.push({ level: 'warning', field, message });
  if (!w.vhid) { err('wan.vhid', 'mode dhcp needs the WAN vhid whose address the lease gives: add vhid'); return out; }
  const vips = c.carp.vips.map((v, i) => ({ v, i })).filter(({ v }) => v.vhid === w.vhid && v.interface === 'wan');
  if (!vips.length) { err('wan.vhid', `no carp.vips[] entry on interface wan has vhid ${w.vhid}: add one (its address is used until the pair holds a lease)`); return out; }
  if (vips.length > 1) err(`carp.vips[${vips[1].i}]`, `vhid ${w.vhid} has ${vips.length} addresses: with wan.mode dhcp it carries exactly one, the leased one`);
  for (const { v, i } of vips) {
    if (v.mac !== 'virtual') err(`carp.vips[${i}].mac`, `must be virtual with wan.mode dhcp: the lease belongs to ${virtualMac(w.vhid)}, which moves with the MASTER (a real MAC would be a different DHCP client on each node)`);
  }
  const mac = virtualMac(w.vhid);
  // The plan, so `duogate check` says what will happen on the wire.
  warn('wan.mode', `dhcp: only the MASTER of vhid ${w.vhid} speaks DHCP on ${c.interfaces.wan.device}, from ${mac} with client id `
    + `${(w.client_id ?? '01' + mac.replace(/:/g, '')).toLowerCase()}; it gives vhid ${w.vhid} the leased address, prefix and default route and `
    + 'outbound NAT follows; the lease goes to the peer in the heartbeat (peer:) and is kept on disk, so a new MASTER holds the same address at once; '
    + `until the first lease, vhid ${w.vhid} carries ${vips[0].v.address}. The virtual MAC moves between the nodes' switch ports at every takeover: `
    + 'an ISP port or WAN switch with port security or MAC pinning (one MAC per port, sticky MACs) blocks the new MASTER; '
    + `and on a segment shared with other customers, vhid ${w.vhid}'s MAC can collide with their VRRP/CARP (pick an unusual vhid)`);
  if (!c.peer) err('peer', 'wan.mode dhcp sends the lease to the peer in the heartbeat: add the peer: section');
  if (peer) {
    const o = wanConfig(peer);
    if (!o) err('wan.mode', 'dhcp here, static on the peer: both nodes must lease the same address the same way');
    else {
      if (o.vhid !== w.vhid) err('wan.vhid', `${w.vhid} here, ${o.vhid} on the peer`);
      if ((o.client_id ?? '').toLowerCase() !== (w.client_id ?? '').toLowerCase()) err('wan.client_id', 'differs from the peer\'s: the ISP would see two clients and hand each node its own address');
    }
  }
  return out;
}
