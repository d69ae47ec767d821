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
import { O_PROTO, O_ZONE, O_OSRC, O_ODST, O_RSRC, O_RDST, O_TIMEOUT, O_MARK, O_TCPSTATE } from '../conntrack/entry';
import { IPPROTO_TCP, IPPROTO_UDP, TCP_CONNTRACK_MAX } from '../conntrack/constants';

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
