// `duogate check`: the addressing-plan review the pfSense HA guide asks for before building a pair, on one
// node's config or (better) on both. Findings name the field and say what to do.
import { allNets, internalNets, netDevice, type Config } from './schema.js';
import { inSubnet, isNetOrBroadcast, parseCidr } from './net.js';
import { pairAuthKey } from '../daemon/pair.js';
import { features } from '../features.js';
import { virtualMac } from '../daemon/vmac.js';
import { wanConfig } from '../wan/config.js';

export interface Finding { level: 'error' | 'warning'; field: string; message: string }


export function checkConfig(c: Config, peer?: Config): Finding[] {
  const out: Finding[] = [];
  const err = (field: string, message: string) => out.push({ level: 'error', field, message });
  const warn = (field: string, message: string) => out.push({ level: 'warning', field, message });
  const roles = allNets(c);
  const internal = new Set(internalNets(c));
  const carries = (r: string) => c.carp.vips.some((v) => v.interface === r);

  for (const r of roles) {
    const ifc = c.interfaces[r];
    const f = `interfaces.${r}`;
    const own = parseCidr(ifc.address);
    if (isNetOrBroadcast(own.ip, ifc.address)) err(`${f}.address`, `${own.ip} is the network or broadcast address of its subnet`);
    if (ifc.peer) {
      if (!inSubnet(ifc.peer, ifc.address)) err(`${f}.peer`, `${ifc.peer} is outside ${ifc.address}: both nodes need an address in the same subnet`);
      if (ifc.peer === own.ip) err(`${f}.peer`, `the peer's address equals this node's (${own.ip}): each node needs its own`);
      if (isNetOrBroadcast(ifc.peer, ifc.address)) err(`${f}.peer`, `${ifc.peer} is the network or broadcast address`);
    } else if (internal.has(r) && r !== 'lan' && carries(r)) {
      // A network beyond the original three is checked strictly: CARP on it needs the peer's address.
      err(`${f}.peer`, 'not set: a network with a CARP VIP needs the other node\'s address on it (CARP refuses adverts from any other source)');
    } else if (r !== 'wan' || carries(r)) {
      warn(`${f}.peer`, 'not set: the peer address lets check verify the plan, the firewall open the sync rule, and CARP refuse adverts from any other source');
    }
    if (ifc.vlan !== undefined && netDevice(ifc).length > 15) err(`${f}.vlan`, `the sub-interface name ${netDevice(ifc)} is longer than 15 characters (the kernel's limit): rename the NIC`);
    if (ifc.vlan !== undefined && r === 'sync') warn(`${f}.vlan`, 'the sync link on a VLAN shares a cable with other traffic: a dedicated cable is what fast failover assumes');
    for (const o of roles) {
      if (o === r) continue;
      const other = c.interfaces[o];
      // One segment per network: the same NIC twice is allowed only as different VLANs of it.
      if (roles.indexOf(o) < roles.indexOf(r) && netDevice(other) === netDevice(ifc)) {
        err(`${f}.device`, `${netDevice(ifc)} is also the device of interfaces.${o}: each role needs its own NIC (or VLAN of one)`);
      }
      if (inSubnet(own.ip, other.address) || inSubnet(parseCidr(other.address).ip, ifc.address)) err(`${f}.address`, `overlaps interfaces.${o} (${other.address})`);
    }
  }

  const seen = new Map<string, number>();
  c.carp.vips.forEach((v, i) => {
    const f = `carp.vips[${i}]`;
    const ifc = c.interfaces[v.interface];
    if (v.interface === 'sync') warn(`${f}.interface`, 'a VIP on the sync link: the sync link joins only the two nodes, clients never use it');
    if (v.address.includes(':')) {
      // IPv6: the interfaces have no IPv6 prefix of their own here, so only the duplicates and the nodes' link-locals.
      const ip = v.address.split('/')[0];
      if (ip === ifc.address6?.split('/')[0] || ip === ifc.peer6) err(`${f}.address`, `${ip} is a node's own link-local address: the VIP must be a third address`);
      if (ip === ifc.global6?.split('/')[0]) err(`${f}.address`, `${ip} is this node's own global6 address: the VIP must be a third address`);
      if (seen.has(ip)) err(`${f}.address`, `${ip} is also carp.vips[${seen.get(ip)}]`);
      seen.set(ip, i);
      return;
    }
    const vip = parseCidr(v.address);
    // A WAN address leased by DHCP (wan.mode dhcp) is the ISP's, in its subnet, not the nodes' (docs/wan.md).
    const leased = v.interface === 'wan' && wanConfig(c)?.vhid === v.vhid && !inSubnet(vip.ip, ifc.address);
    if (!leased && !inSubnet(vip.ip, ifc.address)) err(`${f}.address`, `${vip.ip} is outside ${v.interface}'s subnet ${ifc.address}: a CARP VIP must be in the interface's subnet`);
    if (!leased && vip.prefix !== parseCidr(ifc.address).prefix) warn(`${f}.address`, `prefix /${vip.prefix} differs from the interface's /${parseCidr(ifc.address).prefix}`);
    if (vip.ip === parseCidr(ifc.address).ip) err(`${f}.address`, `${vip.ip} is this node's own address: the VIP must be a third address`);
    if (ifc.peer && vip.ip === ifc.peer) err(`${f}.address`, `${vip.ip} is the peer's address: the VIP must be a third address`);
    if (isNetOrBroadcast(vip.ip, ifc.address)) err(`${f}.address`, `${vip.ip} is the network or broadcast address`);
    const key = vip.ip;
    if (seen.has(key)) err(`${f}.address`, `${vip.ip} is also carp.vips[${seen.get(key)}]`);
    seen.set(key, i);
    if (Buffer.byteLength(v.password) > 19) err(`${f}.password`, 'longer than 19 bytes: CARP uses at most 19');
    if (v.advskew > 240) warn(`${f}.advskew`, `${v.advskew} is sent as 240 (FreeBSD's maximum); keep skews at or below 239 so a demoted peer loses`);
    if (v.mac === 'virtual' && v.interface === 'wan') {
      warn(`${f}.mac`, `virtual MAC ${virtualMac(v.vhid)} on the WAN: on a segment shared with other customers' VRRP/CARP the same vhid means the same MAC; pick an unusual vhid, and check that the ISP port accepts a second MAC`);
    }
    if (/[\s'"\\]/.test(v.password)) warn(`${f}.password`, 'contains spaces, quotes or backslashes: pfSense/OPNsense peers rewrite such passwords (carp.md §2.1)');
  });
  // VHIDs are per L2 segment: the same vhid twice on one interface is one group (load checks it agrees), so a
  // vhid is unique per segment. A vhid on two segments is refused by load (one vhid is one CARP group).
  // The same vhid on two segments is legal but confuses people reading captures and VRRP neighbours.
  const byVhid = new Map<number, Set<string>>();
  for (const v of c.carp.vips) byVhid.set(v.vhid, (byVhid.get(v.vhid) ?? new Set()).add(v.interface));
  for (const [vhid, ifs] of byVhid) if (ifs.size > 1) warn('carp.vips', `vhid ${vhid} is used on ${[...ifs].join(' and ')}: legal per segment, but unique vhids are easier to read`);

  // CARP's own HMAC leaves advbase, advskew, demote and the sender unauthenticated and has no replay check:
  // a LAN host can replay or rewrite adverts. Paired mode (docs/security.md) closes that; plain CARP cannot.
  if (c.carp.pair_auth === true && !pairAuthKey(c)) {
    err('carp.pair_auth', 'needs peer.key (the pair\'s shared key signs the adverts): add the peer: section or remove pair_auth');
  } else if (c.carp.vips.length && !pairAuthKey(c)) {
    warn('carp.pair_auth', 'plain CARP: any host on a CARP segment that spoofs the peer\'s address can replay or rewrite adverts and move the VIPs; '
      + 'with a duogate peer, set peer.key (docs/security.md)');
  }

  if (peer) {
    if (!!pairAuthKey(c) !== !!pairAuthKey(peer)) err('carp.pair_auth', 'differs from the peer\'s: one node would drop the other\'s adverts');
    if (peer.node.name === c.node.name) err('node.name', `both nodes are called "${c.node.name}"`);
    if (peer.node.role === c.node.role) err('node.role', `both nodes are ${c.node.role}: one primary, one secondary`);
    for (const r of new Set([...roles, ...allNets(peer)])) {
      const a = c.interfaces[r]; const b = peer.interfaces[r];
      const f = `interfaces.${r}`;
      if (!a || !b) { err(f, `${r} is a network on ${a ? 'this node' : 'the peer'} only: declare it on both (the same subnet, each node its own address)`); continue; }
      if ((a.vlan ?? 0) !== (b.vlan ?? 0)) err(`${f}.vlan`, `${a.vlan ?? 'none'} here, ${b.vlan ?? 'none'} on the peer: both nodes must tag the network alike`);
      if (parseCidr(a.address).net !== parseCidr(b.address).net || parseCidr(a.address).prefix !== parseCidr(b.address).prefix) {
        err(`${f}.address`, `this node is on ${a.address}, the peer on ${b.address}: the same subnet is needed on both`);
      }
      if (parseCidr(a.address).ip === parseCidr(b.address).ip) err(`${f}.address`, `both nodes use ${parseCidr(a.address).ip}`);
      if (a.peer && a.peer !== parseCidr(b.address).ip) err(`${f}.peer`, `says ${a.peer} but the peer's config has ${b.address}`);
    }
    for (const [i, v] of c.carp.vips.entries()) {
      const f = `carp.vips[${i}]`;
      const o = peer.carp.vips.find((x) => x.vhid === v.vhid && x.interface === v.interface && x.address === v.address);
      if (!o) { err(f, `vhid ${v.vhid} ${v.address} is missing on the peer (config sync puts it there, or add it)`); continue; }
      if ((o.mac ?? 'real') !== (v.mac ?? 'real')) err(`${f}.mac`, `${v.mac ?? 'real'} here, ${o.mac ?? 'real'} on the peer for vhid ${v.vhid}: clients would see the gateway's MAC change at every failover; use the same mode on both`);
      if (o.password !== v.password) err(`${f}.password`, `differs from the peer's for vhid ${v.vhid}: adverts would fail authentication`);
      if (o.advbase === v.advbase && o.advskew === v.advskew) err(`${f}.advskew`, `the peer has the same advbase/advskew (${v.advbase}/${v.advskew}) for vhid ${v.vhid}: give the secondary a higher advskew (pfSense adds 100)`);
      const primary = c.node.role === 'primary' ? v : o;
      const secondary = c.node.role === 'primary' ? o : v;
      if (primary.advbase * 256 + primary.advskew > secondary.advbase * 256 + secondary.advskew) warn(`${f}.advskew`, `the secondary advertises more often than the primary for vhid ${v.vhid}: it would be MASTER`);
    }
  }
  // Each feature's own findings (e.g. the firewall checks that user rules let sync traffic through).
  for (const f of features) if (f.check) out.push(...f.check(c, peer));
  return out;
}
