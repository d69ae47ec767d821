// A push to a secondary on an older release (a rolling upgrade: one node upgraded at a time). A secondary says
// which networks it has in its `duogate.host_firmware_version` answer (`networks`). One that does not say is a
// release from before named networks: its config schema has exactly wan, lan and sync, and it refuses a whole
// push that names any other network (a guest VIP, `firewall.rules.guest`), so nothing would sync at all. The
// primary sends such a peer what it can load, leaves out the parts of the other networks, and says what it left
// out (status `configsync.peer.omitted`, one log line per change). docs/configsync.md "Mixed versions".

/** The networks of a release before named networks: its schema's fixed interfaces. */
export const PRE_NETWORKS_NETS: readonly string[] = ['wan', 'lan', 'sync'];
/** The sections that release carries (it refuses a whole push with any other, e.g. dhcp6). */
export const PRE_NETWORKS_SECTIONS: readonly string[] = ['vips', 'firewall', 'nat', 'dhcp', 'dns', 'ra'];

export interface PeerRelease { nets: readonly string[]; sections: readonly string[] | null; release: 'current' | 'before named networks' }

const strings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** The networks (and sections, when it says) a peer can take, from its host_firmware_version answer. */
export function peerNetworks(info: Record<string, unknown> | null | undefined): PeerRelease {
  if (strings(info?.networks)) return { nets: info.networks, sections: strings(info.sections) ? info.sections : null, release: 'current' };
  return { nets: PRE_NETWORKS_NETS, sections: PRE_NETWORKS_SECTIONS, release: 'before named networks' };
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * `sections` (already transformed for the secondary) without the parts of networks outside `nets`: VIPs on them,
 * their firewall rule lists, NAT rules and port forwards on them, their DHCP scopes. Only for a peer that predates
 * named networks (a current peer gets everything and refuses, with its reason, a network it lacks). Returns the
 * sections to send and what was left out ("vips: vhid 3 on guest"). `carried`: the sections the peer takes (others
 * are left out whole). A rule that names another network in an
 * address (`guest net` in a lan rule) is sent as it is: the old peer refuses the push and says why.
 */
export function forPeer(sections: Obj, nets: readonly string[], carried: readonly string[] | null = null): { sections: Obj; omitted: string[] } {
  const keep = new Set(nets);
  const out: Obj = structuredClone(sections);
  const omitted: string[] = [];
  for (const k of Object.keys(out)) if (carried && !carried.includes(k)) { delete out[k]; omitted.push(`${k} (a section the peer does not sync)`); }
  const vips = out.vips;
  if (Array.isArray(vips)) {
    out.vips = vips.filter((v: Obj) => {
      if (keep.has(String(v.interface))) return true;
      omitted.push(`vips: vhid ${v.vhid} on ${v.interface}`);
      return false;
    });
  }
  const fw = out.firewall;
  if (isObj(fw) && isObj(fw.rules)) {
    for (const k of Object.keys(fw.rules)) if (!keep.has(k)) { delete fw.rules[k]; omitted.push(`firewall.rules.${k}`); }
  }
  const nat = out.nat;
  if (isObj(nat)) {
    if (isObj(nat.outbound) && Array.isArray(nat.outbound.rules)) {
      nat.outbound.rules = nat.outbound.rules.filter((r: Obj, i: number) => keep.has(String(r.interface)) || (omitted.push(`nat.outbound.rules[${i}] on ${r.interface}`), false));
    }
    if (Array.isArray(nat.port_forwards)) {
      nat.port_forwards = nat.port_forwards.filter((r: Obj, i: number) => keep.has(String(r.interface)) || (omitted.push(`nat.port_forwards[${i}] on ${r.interface}`), false));
    }
  }
  const dhcp = out.dhcp;
  if (isObj(dhcp) && isObj(dhcp.networks)) {
    for (const k of Object.keys(dhcp.networks)) if (!keep.has(k)) { delete dhcp.networks[k]; omitted.push(`dhcp.networks.${k}`); }
    if (!Object.keys(dhcp.networks).length) delete dhcp.networks;
    // The old schema requires the LAN's range: a dhcp section without one cannot go; the peer keeps its own.
    if (!dhcp.range) { delete out.dhcp; omitted.push('dhcp (no LAN scope; the peer keeps its own dhcp section)'); }
  }
  return { sections: out, omitted };
}
