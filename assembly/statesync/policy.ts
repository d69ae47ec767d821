// What a state received from the peer may be, before it reaches the table and the kernel. The peer is
// authenticated but still bounded: a compromised or buggy peer must not plant entries that hijack this
// node's own traffic, NAT to addresses the pair does not own, or pin entries with absurd timeouts.
// The host fills POL (layout below) from the config and the kernel's sysctls, then calls setPolicy.
//
//   POL +   0  u32[12] timeout bound, seconds: TCP states 0..9, then UDP (10), ICMP (11)
//   POL +  64  u32[8]  allowed zones        POL +  96  u32[8]  allowed marks
//   POL + 128  u32[64] SNAT targets: addresses the pair owns (VIPs, both nodes' WAN/LAN addresses,
//                      explicit outbound translation addresses), raw words
//   POL + 384  u32[32] VIPs, raw words (traffic that ends at a VIP without DNAT is the node's own)
//   POL + 512  u32[2][16] DNAT target networks (raw address, raw mask): the internal networks
//
// IPv6 (own block OWN6, filled by the host through setOwn6; used by the sender's filter too): OWN6_MAX addresses
// of 16 bytes, either node's link-local addresses and the IPv6 VIPs.
import { O_PROTO, O_ZONE, O_OSRC, O_ODST, O_RSRC, O_RDST, O_TIMEOUT, O_MARK, O_TCPSTATE, O_OSPORT, O_ODPORT, O_RSPORT, O_RDPORT, O6_OSRC, O6_ODST, O6_RSRC, O6_RDST, eq16 } from '../conntrack/entry';
import { IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMPV6, TCP_CONNTRACK_MAX } from '../conntrack/constants';

export const POL_SIZE: u32 = 640;
export const POL = memory.data(POL_SIZE, 16);
export const P_TMAX: u32 = 0; export const P_ZONES: u32 = 64; export const P_MARKS: u32 = 96;
export const P_SNAT: u32 = 128; export const P_VIPS: u32 = 384; export const P_NETS: u32 = 512;
export const TMAX_COUNT: u32 = 12;
export const SNAT_MAX: u32 = 64; export const VIPS_MAX: u32 = 32; export const NETS_MAX: u32 = 16; export const SET_MAX: u32 = 8;

export const POLICY_OK: u32 = 0;
export const POLICY_TO_SELF: u32 = 1;
export const POLICY_ZONE: u32 = 2;
export const POLICY_MARK: u32 = 3;
export const POLICY_SNAT: u32 = 4;
export const POLICY_DNAT: u32 = 5;

let enabled: bool = false;
let nZones: u32 = 0; let nMarks: u32 = 0; let nSnat: u32 = 0; let nVips: u32 = 0; let nNets: u32 = 0;

/** Turn the checks on with the counts of each list in POL (until then every item passes: core tests). */
export function setPolicy(zones: u32, marks: u32, snat: u32, vips: u32, nets: u32): void {
  nZones = min(zones, SET_MAX); nMarks = min(marks, SET_MAX); nSnat = min(snat, SNAT_MAX);
  nVips = min(vips, VIPS_MAX); nNets = min(nets, NETS_MAX); enabled = true;
}

function inList(off: u32, n: u32, v: u32): bool {
  for (let i: u32 = 0; i < n; i++) if (load<u32>(POL + off + (i << 2)) == v) return true;
  return false;
}
function inNets(a: u32): bool {
  for (let i: u32 = 0; i < nNets; i++) {
    const p = POL + P_NETS + (i << 3);
    const m = load<u32>(p, 4);
    if ((a & m) == load<u32>(p)) return true;
  }
  return false;
}

/** A CARP VIP (false until the policy is set). */
export function isVip(a: u32): bool { return inList(P_VIPS, nVips, a); }

/**
 * Check the received upsert in `ent` (record layout). `own`: its original source or destination, or its reply
 * source, is on the sender-side ignore list (either node's own addresses, the sync subnet). Returns POLICY_OK
 * or the reason.
 */
export function checkUpsert(ent: usize, own: bool): u32 {
  if (!enabled) return POLICY_OK;
  const osrc = load<u32>(ent + O_OSRC); const odst = load<u32>(ent + O_ODST);
  const rsrc = load<u32>(ent + O_RSRC); const rdst = load<u32>(ent + O_RDST);
  // The node's own traffic (to or from either node, or ending at a VIP without DNAT) lives in that node's
  // kernel only: a copy here could shadow this node's own connections.
  if (own || inList(P_VIPS, nVips, osrc) || inList(P_VIPS, nVips, rsrc)) return POLICY_TO_SELF;
  if (!inList(P_ZONES, nZones, <u32>load<u16>(ent + O_ZONE))) return POLICY_ZONE;
  if (!inList(P_MARKS, nMarks, load<u32>(ent + O_MARK))) return POLICY_MARK;
  // reply dst differs from orig src: source NAT, to an address the pair owns (what our ruleset can SNAT to).
  if (rdst != osrc && !inList(P_SNAT, nSnat, rdst)) return POLICY_SNAT;
  // reply src differs from orig dst: destination NAT (a port forward), only into the internal networks.
  if (rsrc != odst && !inNets(rsrc)) return POLICY_DNAT;
  return POLICY_OK;
}

export const OWN6_MAX: u32 = 32;
export const OWN6 = memory.data(OWN6_MAX * 16, 16);
let nOwn6: u32 = 0;
/** The first `n` addresses of OWN6 are the pair's own IPv6 addresses. */
export function setOwn6(n: u32): void { nOwn6 = min(n, OWN6_MAX); }

/**
 * The node's own IPv6 traffic: link-local (fe80::/10: a router never forwards it), multicast, loopback and
 * unspecified addresses, and the addresses in OWN6.
 */
export function own6(a: usize): bool {
  const b0 = load<u8>(a);
  if (b0 == 0xff || (b0 == 0xfe && (load<u8>(a, 1) & 0xc0) == 0x80)) return true;
  if (load<u64>(a) == 0 && (load<u64>(a, 8) & 0x00ffffffffffffff) == 0) return true; // :: and ::1
  for (let i: u32 = 0; i < nOwn6; i++) if (eq16(OWN6 + (<usize>i << 4), a)) return true;
  return false;
}

/** Any address of IPv6 record `r` is the node's own. */
export function ownEntry6(r: usize): bool {
  return own6(r + O6_OSRC) || own6(r + O6_ODST) || own6(r + O6_RSRC) || own6(r + O6_RDST);
}

/** IPv6 record `r` has no NAT: its reply tuple is the plain inverse of the original (ICMPv6: same id). */
export function natFree6(r: usize): bool {
  if (!eq16(r + O6_RSRC, r + O6_ODST) || !eq16(r + O6_RDST, r + O6_OSRC)) return false;
  if (load<u8>(r + O_PROTO) == IPPROTO_ICMPV6) return load<u16>(r + O_RSPORT) == load<u16>(r + O_OSPORT);
  return load<u16>(r + O_RSPORT) == load<u16>(r + O_ODPORT) && load<u16>(r + O_RDPORT) == load<u16>(r + O_OSPORT);
}

/** checkUpsert for a received IPv6 state: own traffic, zone, mark as IPv4; no NAT at all (snat/dnat). */
export function checkUpsert6(ent: usize): u32 {
  // NAT cannot be expressed for IPv6 (buildCreate6): refused even before the policy is set.
  if (!enabled) return natFree6(ent) ? POLICY_OK : eq16(ent + O6_RDST, ent + O6_OSRC) ? POLICY_DNAT : POLICY_SNAT;
  if (ownEntry6(ent)) return POLICY_TO_SELF;
  if (!inList(P_ZONES, nZones, <u32>load<u16>(ent + O_ZONE))) return POLICY_ZONE;
  if (!inList(P_MARKS, nMarks, load<u32>(ent + O_MARK))) return POLICY_MARK;
  if (!eq16(ent + O6_RDST, ent + O6_OSRC)) return POLICY_SNAT;
  if (!natFree6(ent)) return POLICY_DNAT;
  return POLICY_OK;
}

/** Clamp the timeout in `ent` to the kernel's bound for its protocol state. True if it was clamped. */
export function clampTimeout(ent: usize): bool {
  if (!enabled) return false;
  const proto = load<u8>(ent + O_PROTO);
  const slot: u32 = proto == IPPROTO_TCP ? <u32>min(load<u8>(ent + O_TCPSTATE), TCP_CONNTRACK_MAX - 1) : proto == IPPROTO_UDP ? TCP_CONNTRACK_MAX : TCP_CONNTRACK_MAX + 1;
  const bound = load<u32>(POL + P_TMAX + (slot << 2));
  if (bound == 0 || load<u32>(ent + O_TIMEOUT) <= bound) return false;
  store<u32>(ent + O_TIMEOUT, bound);
  return true;
}
