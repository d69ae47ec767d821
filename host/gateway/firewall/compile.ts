// Config → one nftables ruleset (text for `nft -f`), with a map from each generated line back to the config
// field it came from, so an error from nft/the kernel can name the rule.
//
// Layout (table inet duogate, replaced as a whole in one transaction):
//   input (policy drop): the node's own services, a fixed list — loopback; nothing from or to the sync subnet
//   unless it arrives on the sync NIC; CARP adverts; established/related; then, from the peer's sync address on
//   the sync NIC only, the inter-node ports (chain sync_system); from each internal network, DHCP, DNS and ping
//   of that network's own addresses (chain <net>_services; the LAN's also the heartbeat's LAN path); nothing
//   else, and nothing at all from the WAN. The user's rules do not
//   apply to input: a broad LAN pass rule must not open what only the peer may reach.
//   forward (policy drop): nothing to, from or through the sync link; stateful checks (established/related
//   accepted, invalid dropped, a new TCP flow must start with a SYN); port forwards; then the user's rules for
//   the interface the packet entered on (chain rules_<if>), first match wins.
//   nat: port forwards (DNAT) in prerouting, outbound NAT in postrouting (SNAT to the WAN CARP VIP) for every
//   internal network.
import { wanConfig } from '../../wan/config.js';
import { internalNets, netDevice, type Config, type NetName } from '../../config/schema.js';
import { dhcpNets } from '../dhcp/scopes.js';
import { isIPv6 } from 'node:net';
import { dhcp6Net, linkLocal } from '../dhcp6/scope.js';
import { parseCidr, numIp } from '../../config/net.js';
import { global6On, nets6Of, prefix6, vips6On } from '../../config/ipv6.js';
import { firewallOf, natOf, type AddrSpec, type FirewallRule, type IfName, type PortSpec } from './schema.js';
import { CARP_PROTO, SYNC_PORTS, peerPorts } from './ports.js';

export const TABLE = 'duogate';
export const FAMILY = 'inet';

export interface Origin { field: string; description?: string }
export interface Compiled {
  text: string;
  /** 1-based line number → where the line came from (rules, aliases, NAT entries, system rules). */
  origins: Map<number, Origin>;
}

export class FirewallConfigError extends Error {
  readonly code = 'DG_ERR_FIREWALL_CONFIG';
  constructor(readonly field: string, reason: string) { super(`${field}: ${reason}`); }
}

/** The networks whose rules are compiled: the internal ones, then wan and sync. */
const netsOf = (c: Config): IfName[] => [...internalNets(c), 'wan', 'sync'];
const ipRe = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const cidrRe = /^(\S+)\/(\d{1,2})$/;

/**
 * Default rule sets when the config has no list for an interface (pfSense's defaults: the LAN passes LAN net
 * to any; WAN, sync and every further network, like pfSense's OPT interfaces, pass nothing).
 */
export const DEFAULT_RULES: Record<string, FirewallRule[]> = {
  lan: [{ action: 'pass', protocol: 'any', source: 'lan net', destination: 'any', log: false, disabled: false, description: 'Default allow LAN to any rule' }],
};

/**
 * A quoted nft string (a comment, a log prefix, a device name). nft strings have no escapes, so quotes and
 * backslashes are dropped; a control character (newline, NUL, ...) would break the line or the listing, so it
 * becomes a space; and nft refuses a comment longer than 128 bytes, so the text is cut at 127 bytes on a
 * character boundary (a description of 100 four-byte characters is 400 bytes).
 */
export function nftString(s: string, maxBytes = 127): string {
  let out = '';
  let bytes = 0;
  for (const ch of s.replace(/["\\]/g, '').replace(/[\x00-\x1f\x7f]/g, ' ')) {
    const b = Buffer.byteLength(ch);
    if (bytes + b > maxBytes) break;
    out += ch;
    bytes += b;
  }
  return `"${out}"`;
}
const q = (s: string) => nftString(s);
const setName = (alias: string) => `alias_${alias}`;
const setName6 = (alias: string) => `alias6_${alias}`;
/** An address spec's two sides: the nft right-hand side per family, '' for any, null where it has none. */
interface Sides { v4: string | null; v6: string | null }
/** An IPv4 network in canonical form with its host bits cleared: 192.168.1.7/24 -> 192.168.1.0/24. */
const net4 = (cidr: string): string => { const p = parseCidr(cidr); return `${numIp(p.net)}/${p.prefix}`; };
const cidrRe6 = /^([0-9A-Fa-f:.]+)\/(\d{1,3})$/;
/** '4' or '6' for an address (or, with `nets`, a network a/len), null for anything else. */
function addrFamily(s: string, nets: boolean): '4' | '6' | null {
  if (ipRe.test(s)) return '4';
  const cm = cidrRe.exec(s);
  if (nets && cm && ipRe.test(cm[1]!) && Number(cm[2]) <= 32) return '4';
  if (isIPv6(s)) return '6';
  const c6 = cidrRe6.exec(s);
  if (nets && c6 && isIPv6(c6[1]!) && Number(c6[2]) <= 128) return '6';
  return null;
}

/** The IPv4 VIP addresses (no prefix) configured on an interface (the rules, NAT and DHCP are IPv4 here). */
export function vipsOn(c: Config, i: NetName): string[] {
  return c.carp.vips.filter((v) => v.interface === i && !v.address.includes(':')).map((v) => v.address.split('/')[0]!);
}

class Compiler {
  private lines: string[] = [];
  private origins = new Map<number, Origin>();
  constructor(private readonly c: Config) {}

  emit(text: string, origin?: Origin): void {
    this.lines.push(text);
    if (origin) this.origins.set(this.lines.length, origin);
  }

  result(): Compiled { return { text: this.lines.join('\n') + '\n', origins: this.origins }; }

  dev(i: IfName): string { return q(netDevice(this.c.interfaces[i]!)); }

  /**
   * Resolve an address spec to the right-hand side of `ip saddr/daddr` (v4) and `ip6 saddr/daddr` (v6), each
   * null where the spec has no address of that family; `any` is both ''. "<net> net" is the network's IPv4 subnet
   * and its IPv6 prefixes (host/config/ipv6.ts), "<net> address" the node's address and the VIPs there.
   */
  addr(spec: AddrSpec, field: string): Sides {
    let s = spec.trim();
    let neg = '';
    if (s.startsWith('!')) { neg = '!= '; s = s.slice(1).trim(); }
    if (s === 'any') {
      if (neg) throw new FirewallConfigError(field, '"!any" matches nothing; remove the rule or use a real address');
      return { v4: '', v6: '' };
    }
    const one = (xs: string[]) => (xs.length === 1 ? xs[0]! : `{ ${xs.join(', ')} }`);
    const m = /^([a-z][a-z0-9_]{0,14}) (net|address)$/.exec(s);
    if (m) {
      const ifc = this.c.interfaces[m[1]!];
      if (!ifc || !Object.hasOwn(this.c.interfaces, m[1]!)) throw new FirewallConfigError(field, `"${m[1]}" is not a network of this node (interfaces has ${Object.keys(this.c.interfaces).join(', ')})`);
      const p = parseCidr(ifc.address);
      const six = m[2] === 'net' ? nets6Of(this.c, m[1]!) : [...global6On(this.c, m[1]!), ...vips6On(this.c, m[1]!)];
      const v4 = m[2] === 'net' ? `${numIp(p.net)}/${p.prefix}` : `{ ${[p.ip, ...vipsOn(this.c, m[1] as IfName)].join(', ')} }`;
      return { v4: neg + v4, v6: six.length ? neg + one(six) : null };
    }
    const fam = addrFamily(s, true);
    if (fam === '4') return { v4: neg + (ipRe.test(s) ? s : net4(s)), v6: null };
    if (fam === '6') return { v4: null, v6: neg + (s.includes('/') ? prefix6(s) : s) };
    const a = firewallOf(this.c).aliases[s];
    if (a && (a.type === 'host' || a.type === 'network')) {
      const has6 = a.entries.some((e) => addrFamily(String(e).trim(), true) === '6');
      const has4 = a.entries.some((e) => addrFamily(String(e).trim(), true) === '4') || !has6;
      return { v4: has4 ? `${neg}@${setName(s)}` : null, v6: has6 ? `${neg}@${setName6(s)}` : null };
    }
    if (a) throw new FirewallConfigError(field, `alias "${s}" is a port alias; use it in a *_port field`);
    throw new FirewallConfigError(field, `"${spec}" is not any, <if> net, <if> address, an IPv4 or IPv6 address/network or a host/network alias`);
  }

  /** Resolve a port spec to the right-hand side of `th dport` ('' = any). */
  ports(spec: PortSpec | undefined, field: string): string {
    if (spec === undefined) return '';
    const items = Array.isArray(spec) ? spec : [spec];
    if (items.length === 1 && typeof items[0] === 'string') {
      const a = firewallOf(this.c).aliases[items[0]];
      if (a?.type === 'port') return `@${setName(items[0])}`;
    }
    const out: string[] = [];
    for (const it of items) {
      const a = typeof it === 'string' ? firewallOf(this.c).aliases[it] : undefined;
      if (a) {
        if (a.type !== 'port') throw new FirewallConfigError(field, `alias "${it}" is a ${a.type} alias, not a port alias`);
        out.push(...a.entries.map((e) => portItem(e, `firewall.aliases.${it}`)));
      } else out.push(portItem(it, field));
    }
    if (out.length === 0) throw new FirewallConfigError(field, 'no ports (an empty port alias?)');
    return out.length === 1 ? out[0]! : `{ ${out.join(', ')} }`;
  }

  /**
   * Protocol + address + port matches of a rule-like entry: one match per address family the rule applies to
   * (a rule applies to the families its source and destination both have; "any" has both). `v4only` for NAT,
   * which is IPv4 here.
   */
  match(r: { protocol?: string; source?: AddrSpec; source_port?: PortSpec; destination?: AddrSpec; destination_port?: PortSpec }, field: string, { v4only = false } = {}): string[] {
    const proto = r.protocol ?? 'any';
    const sp = this.ports(r.source_port, `${field}.source_port`);
    const dp = this.ports(r.destination_port, `${field}.destination_port`);
    if ((sp || dp) && !['tcp', 'udp', 'tcp/udp'].includes(proto)) {
      throw new FirewallConfigError(`${field}.protocol`, `ports need protocol tcp, udp or tcp/udp (is "${proto}")`);
    }
    const sa = this.addr(r.source ?? 'any', `${field}.source`);
    const da = this.addr(r.destination ?? 'any', `${field}.destination`);
    const tail: string[] = [];
    if (proto === 'tcp/udp') tail.push('meta l4proto { tcp, udp }');
    else if (proto === 'carp') tail.push(`meta l4proto ${CARP_PROTO}`);
    else if (proto === 'icmpv6') tail.push('meta l4proto ipv6-icmp');
    else if (proto !== 'any') {
      if (/^\d+$/.test(proto) && Number(proto) > 255) throw new FirewallConfigError(`${field}.protocol`, `${proto} is not an IP protocol number (0-255)`);
      tail.push(`meta l4proto ${proto}`);
    }
    if (sp) tail.push(`th sport ${sp}`);
    if (dp) tail.push(`th dport ${dp}`);
    // Neither side names an address: one rule for both families (NAT: IPv4 only).
    if (sa.v4 === '' && da.v4 === '' && sa.v6 === '' && da.v6 === '') {
      return [[...(v4only ? ['meta nfproto ipv4'] : []), ...tail].join(' ') || 'meta nfproto { ipv4, ipv6 }'];
    }
    const out: string[] = [];
    for (const [fam, key] of [['ip', 'v4'], ['ip6', 'v6']] as const) {
      if (v4only && fam === 'ip6') continue;
      const s1 = sa[key];
      const d1 = da[key];
      if (s1 === null || d1 === null) continue;
      const parts: string[] = [];
      if (s1) parts.push(`${fam} saddr ${s1}`);
      if (d1) parts.push(`${fam} daddr ${d1}`);
      if (!s1 && !d1) parts.push(`meta nfproto ${fam === 'ip' ? 'ipv4' : 'ipv6'}`);
      out.push([...parts, ...tail].join(' '));
    }
    if (!out.length) {
      throw new FirewallConfigError(field, v4only && (sa.v6 !== null || da.v6 !== null)
        ? 'NAT is IPv4-only here: use IPv4 addresses (IPv6 is routed without NAT)'
        : 'the source and the destination have no address family in common (one is IPv4-only, the other IPv6-only): the rule would match nothing');
    }
    return out;
  }
}

function portItem(it: string | number, field: string): string {
  const s = String(it).trim();
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(s);
  if (!m) throw new FirewallConfigError(field, `"${s}" is not a port, a port range a-b or a port alias`);
  const a = Number(m[1]); const b = m[2] === undefined ? a : Number(m[2]);
  if (a < 1 || a > 65535 || b < 1 || b > 65535) throw new FirewallConfigError(field, `port ${s} is outside 1-65535`);
  if (b < a) throw new FirewallConfigError(field, `port range ${s} is reversed: write ${b}-${a}`);
  return a === b ? String(a) : `${a}-${b}`;
}

/** User rules for an interface (the defaults when the config has no list). */
export function rulesFor(c: Config, i: IfName): FirewallRule[] {
  return firewallOf(c).rules[i] ?? DEFAULT_RULES[i] ?? [];
}

export function compile(c: Config): Compiled {
  const k = new Compiler(c);
  const fw = firewallOf(c);
  const nat = natOf(c);
  const sync = c.interfaces.sync;
  const syncOwn = sync.address.split('/')[0]!;
  const sys = (what: string): Origin => ({ field: `(system) ${what}` });

  k.emit(`# generated by duogate for node ${c.node.name}; do not edit (duogate firewall show prints what is in force)`);
  // Create-then-delete makes the replace work whether or not the table exists; all of it is one transaction.
  k.emit(`table ${FAMILY} ${TABLE}`);
  k.emit(`delete table ${FAMILY} ${TABLE}`);
  k.emit(`table ${FAMILY} ${TABLE} {`);

  for (const [name, a] of Object.entries(fw.aliases)) {
    const field = `firewall.aliases.${name}`;
    const o: Origin = { field, description: a.description };
    if (a.type === 'port') {
      const els = a.entries.map((e) => portItem(e, field));
      k.emit(`  set ${setName(name)} { type inet_service; flags interval;${els.length ? ` elements = { ${els.join(', ')} }` : ''} }`, o);
    } else {
      // A host or network alias may mix IPv4 and IPv6 entries: one set per family (alias_<name>, alias6_<name>).
      const v4: string[] = [];
      const v6: string[] = [];
      for (const e of a.entries) {
        const s = String(e).trim();
        const fam = addrFamily(s, a.type === 'network');
        if (fam === '4') v4.push(cidrRe.test(s) ? net4(s) : s);
        else if (fam === '6') v6.push(cidrRe6.test(s) ? prefix6(s) : s);
        else throw new FirewallConfigError(field, `"${s}" is not an IPv4 or IPv6 address${a.type === 'network' ? ' or network' : ''} (host names are not resolved)`);
      }
      if (v4.length || !v6.length) k.emit(`  set ${setName(name)} { type ipv4_addr; flags interval;${v4.length ? ` elements = { ${v4.join(', ')} }` : ''} }`, o);
      if (v6.length) k.emit(`  set ${setName6(name)} { type ipv6_addr; flags interval; elements = { ${v6.join(', ')} } }`, o);
    }
  }

  for (const name of Object.keys(fw.rules)) {
    if (!Object.hasOwn(c.interfaces, name)) throw new FirewallConfigError(`firewall.rules.${name}`, `"${name}" is not a network of this node (interfaces has ${Object.keys(c.interfaces).join(', ')}): add interfaces.${name} or remove the list`);
  }
  for (const [what, list] of [['nat.port_forwards', nat.port_forwards], ['nat.outbound.rules', nat.outbound.rules]] as const) {
    list.forEach((r, n) => {
      if (!Object.hasOwn(c.interfaces, r.interface)) throw new FirewallConfigError(`${what}[${n}].interface`, `"${r.interface}" is not a network of this node`);
    });
  }

  // Per-interface user rules. A pass ends evaluation (accept); block drops; reject answers RST/ICMP.
  for (const i of netsOf(c)) {
    k.emit(`  chain rules_${i} {`);
    rulesFor(c, i).forEach((r, n) => {
      if (r.disabled) return;
      const field = `firewall.rules.${i}[${n}]`;
      const verdict = r.action === 'pass' ? 'accept' : r.action === 'block' ? 'drop' : 'reject';
      const log = r.log ? ` log prefix ${q(`duogate ${i}#${n} ${r.action}: `)} level info` : '';
      for (const m of k.match(r, field)) k.emit(`    ${m} counter${log} ${verdict} comment ${q(`${i}#${n} ${r.description ?? ''}`.trim())}`, { field, description: r.description });
    });
    k.emit('  }');
  }

  // The node's own services, by interface. The user's interface rules govern forwarded traffic only: what the
  // node itself answers is this fixed list, so a broad LAN pass rule (the default "LAN net to any") cannot open
  // the peer-only services or anything else that happens to listen. docs/gateway.md "Ports each node opens".
  const syncNet = parseCidr(sync.address);
  const syncCidr = `${numIp(syncNet.net)}/${syncNet.prefix}`;

  // duogate's own traffic between the two sync addresses, reached only from the peer's sync address on the sync
  // NIC (the jump below). `duogate check` warns about user sync rules that claim to block it.
  k.emit('  chain sync_system {');
  k.emit(`    meta l4proto ${CARP_PROTO} counter accept comment "sync: CARP"`, sys('sync rule: CARP'));
  for (const p of peerPorts(c)) {
    k.emit(`    ${p.proto} dport ${p.port} counter accept comment ${q(`sync: ${p.name}`)}`, sys(`sync rule: ${p.name}`));
  }
  k.emit('    icmp type echo-request counter accept comment "sync: ping"', sys('sync rule: ping'));
  k.emit('  }');

  // What a host on an internal network may ask of the node: DHCP (where the network has a scope), DNS on the
  // node's addresses on that network, ping of those and of the WAN addresses; the LAN also the heartbeat's LAN
  // path. A host on one network gets nothing from the node's addresses on another (a guest cannot reach the
  // LAN gateway address).
  const dns = c.dns as { port?: number; allow?: string[] } | undefined;
  const peerCfg = c.peer as { port?: number; lan_path?: boolean } | undefined;
  const scoped = new Set(dhcpNets(c));
  const servicesChain = (i: string) => `${i}_services`;
  for (const i of internalNets(c)) {
    const ifc = c.interfaces[i]!;
    const own = `{ ${[parseCidr(ifc.address).ip, ...vipsOn(c, i)].join(', ')} }`;
    const tag = i === 'lan' ? 'LAN' : i;
    k.emit(`  chain ${servicesChain(i)} {`);
    if (scoped.has(i)) k.emit('    udp sport 68 udp dport 67 counter accept comment "DHCP server"', sys(`DHCP on ${tag}`));
    if (dhcp6Net(c) === i) k.emit(`    ip6 saddr fe80::/10 ip6 daddr { ${['ff02::1:2', linkLocal(c, i)].filter(Boolean).join(', ')} } udp sport 546 udp dport 547 counter accept comment "DHCPv6 server"`, sys(`DHCPv6 on ${tag}`));
    if (dns) {
      const from = [net4(ifc.address), ...(dns.allow ?? []).filter((n) => !n.includes(':')).map(net4)];
      const src = from.length === 1 ? from[0]! : `{ ${from.join(', ')} }`;
      k.emit(`    ip saddr ${src} ip daddr ${own} meta l4proto { tcp, udp } th dport ${dns.port ?? 53} counter accept comment "DNS resolver"`, sys(`DNS on ${tag}`));
      // Over IPv6: on the network's global IPv6 VIPs, where unbound listens (the RA's RDNSS), from its prefixes and
      // link-local addresses.
      const own6 = vips6On(c, i, { global: true });
      if (own6.length) {
        const from6 = ['fe80::/10', ...nets6Of(c, i), ...(dns.allow ?? []).filter((n) => n.includes(':')).map(prefix6)];
        k.emit(`    ip6 saddr { ${from6.join(', ')} } ip6 daddr ${own6.length === 1 ? own6[0] : `{ ${own6.join(', ')} }`} meta l4proto { tcp, udp } th dport ${dns.port ?? 53} counter accept comment "DNS resolver (IPv6)"`, sys(`DNS on ${tag} (IPv6)`));
      }
    }
    // The heartbeat's LAN path: from the peer's LAN address to ours only (the heartbeat checks the source too).
    if (i === 'lan' && peerCfg && peerCfg.lan_path !== false && ifc.peer) {
      k.emit(`    ip saddr ${ifc.peer} ip daddr ${parseCidr(ifc.address).ip} udp dport ${peerCfg.port ?? SYNC_PORTS.heartbeat.port} counter accept comment "peer heartbeat (LAN path)"`, sys('heartbeat on LAN'));
    }
    // Ping reaches the gateway's addresses on this network and its WAN addresses (a user checks "is my gateway
    // up", "is my public address up"), never the sync addresses; the WAN gets no answer at all.
    const pingable = [parseCidr(ifc.address).ip, ...vipsOn(c, i), parseCidr(c.interfaces.wan.address).ip, ...vipsOn(c, 'wan')];
    k.emit(`    ip daddr { ${pingable.join(', ')} } icmp type echo-request counter accept comment "ping the gateway"`, sys(`ping on ${tag}`));
    const pingable6 = [...global6On(c, i), ...vips6On(c, i), ...global6On(c, 'wan'), ...vips6On(c, 'wan')];
    if (pingable6.length) k.emit(`    ip6 daddr { ${pingable6.join(', ')} } icmpv6 type echo-request counter accept comment "ping the gateway (IPv6 VIPs)"`, sys(`ping on ${tag} (IPv6)`));
    k.emit('  }');
  }

  const stateful = (hook: string) => {
    k.emit('    ct state established,related counter accept comment "established/related"', sys(`${hook}: established`));
    k.emit('    ct state invalid counter drop comment "invalid"', sys(`${hook}: invalid`));
    // A flow the node has no state for (e.g. after a failover without state sync) must not be picked up mid-stream.
    k.emit('    tcp flags & (fin|syn|rst|ack) != syn ct state new counter drop comment "new-not-syn"', sys(`${hook}: new TCP must be SYN`));
  };
  // The sync link is a cable between the two nodes, not a routed network: its subnet exists only on the sync NIC,
  // whatever a LAN or WAN host routes towards a node (Linux would otherwise accept a LAN packet addressed to the
  // node's sync address, or forward it to the peer).
  const syncOnly = (hook: string) => {
    k.emit(`    iifname != ${k.dev('sync')} ip daddr ${syncCidr} counter drop comment "sync subnet from outside the sync link"`, sys(`${hook}: sync subnet only on sync`));
    k.emit(`    iifname != ${k.dev('sync')} ip saddr ${syncCidr} counter drop comment "sync source from outside the sync link"`, sys(`${hook}: sync source only on sync`));
  };

  k.emit('  chain input {');
  k.emit('    type filter hook input priority filter; policy drop;');
  k.emit('    iif "lo" accept');
  syncOnly('input');
  // CARP is always allowed on LAN/WAN (and sync), before anything else: the pair must keep hearing adverts.
  k.emit(`    meta l4proto ${CARP_PROTO} ip daddr 224.0.0.18 counter accept comment "CARP adverts"`, sys('CARP'));
  if (c.carp.vips.some((v) => v.address.includes(':'))) {
    // IPv6 VIPs (docs/carp.md "CARP over IPv6"): their adverts, and the neighbour discovery that resolves them,
    // on-link only (hop limit 255), before the conntrack checks (which take ND for invalid).
    k.emit(`    meta l4proto ${CARP_PROTO} ip6 daddr ff02::12 ip6 hoplimit 255 counter accept comment "CARP adverts (IPv6)"`, sys('CARP over IPv6'));
    k.emit('    icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 counter accept comment "IPv6 neighbour discovery"', sys('IPv6 neighbour discovery'));
    // RFC 4890 §4.4.1: path MTU discovery and the other errors must reach the node (also without a conntrack entry).
    k.emit('    icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } counter accept comment "ICMPv6 errors (PMTU)"', sys('ICMPv6 errors'));
  }
  stateful('input');
  if (sync.peer) {
    k.emit(`    iifname ${k.dev('sync')} ip saddr ${sync.peer} ip daddr ${syncOwn} jump sync_system`, sys('sync rule'));
  }
  for (const i of internalNets(c)) k.emit(`    iifname ${k.dev(i)} jump ${servicesChain(i)}`, sys(`input ${i}`));
  k.emit('    counter drop comment "not a service of this node"', sys('input: drop the rest'));
  k.emit('  }');

  k.emit('  chain forward {');
  k.emit('    type filter hook forward priority filter; policy drop;');
  // A single-address WAN (wan.mode dhcp): the BACKUP has no ISP address, so its own traffic (updates, NTP, DNS)
  // leaves through the MASTER from its sync address (NATed to the WAN VIP below). Only that: the peer's sync
  // address out of the WAN NIC, and the answers back (docs/wan.md).
  const backupOut = wanConfig(c) && sync.peer ? sync.peer : null;
  if (backupOut) {
    k.emit(`    iifname ${k.dev('sync')} oifname ${k.dev('wan')} ip saddr ${backupOut} counter accept comment "the peer's own traffic to the ISP (wan.mode dhcp)"`, sys('forward: peer out by the WAN'));
    k.emit(`    iifname ${k.dev('wan')} oifname ${k.dev('sync')} ip daddr ${backupOut} ct state established,related counter accept comment "answers to the peer's own traffic"`, sys('forward: answers to the peer'));
  }
  syncOnly('forward');
  k.emit(`    iifname ${k.dev('sync')} counter drop comment "nothing is routed from the sync link"`, sys('forward: not from sync'));
  k.emit(`    oifname ${k.dev('sync')} counter drop comment "nothing is routed onto the sync link"`, sys('forward: not to sync'));
  stateful('forward');
  if (nat.port_forwards.length) k.emit('    ct status dnat counter accept comment "port forwards"', sys('port forwards'));
  // rules_sync is compiled (its errors are reported) but never reached: nothing is forwarded from the sync NIC.
  for (const i of [...internalNets(c), 'wan']) k.emit(`    iifname ${k.dev(i)} jump rules_${i}`, sys(`forward ${i}`));
  k.emit('  }');

  k.emit('  chain output {');
  k.emit('    type filter hook output priority filter; policy accept;');
  k.emit('  }');

  // Port forwards: DNAT on the interface's VIP (default) so they follow the MASTER.
  k.emit('  chain prerouting_nat {');
  k.emit('    type nat hook prerouting priority dstnat; policy accept;');
  nat.port_forwards.forEach((p, n) => {
    const field = `nat.port_forwards[${n}]`;
    const dst = p.destination ?? vipsOn(c, p.interface)[0] ?? c.interfaces[p.interface].address.split('/')[0];
    const proto = p.protocol === 'tcp/udp' ? 'meta l4proto { tcp, udp }' : `meta l4proto ${p.protocol}`;
    const dp = k.ports(p.destination_port, `${field}.destination_port`);
    const to = p.target_port ? `${p.target}:${p.target_port}` : p.target;
    k.emit(`    iifname ${k.dev(p.interface)} ip daddr ${dst} ${proto} th dport ${dp} counter dnat ip to ${to} comment ${q(`pf#${n} ${p.description ?? ''}`.trim())}`, { field, description: p.description });
  });
  k.emit('  }');

  k.emit('  chain postrouting_nat {');
  k.emit('    type nat hook postrouting priority srcnat; policy accept;');
  const mode = nat.outbound.mode;
  if (mode === 'manual' || mode === 'hybrid') {
    nat.outbound.rules.forEach((r, n) => {
      const field = `nat.outbound.rules[${n}]`;
      const [m] = k.match({ ...r, source_port: undefined }, field, { v4only: true });
      let act: string;
      if (r.no_nat) act = 'accept';
      else if (r.translation === 'interface address') act = 'masquerade';
      else if (r.translation === 'vip') {
        const v = vipsOn(c, r.interface)[0];
        if (!v) throw new FirewallConfigError(`${field}.translation`, `"vip" but ${r.interface} has no CARP VIP; add one or use "interface address"`);
        act = `snat ip to ${v}`;
      } else if (ipRe.test(r.translation)) act = `snat ip to ${r.translation}`;
      else throw new FirewallConfigError(`${field}.translation`, `"${r.translation}" is not vip, interface address or an IPv4 address`);
      k.emit(`    oifname ${k.dev(r.interface)} ${m} counter ${act} comment ${q(`out#${n} ${r.description ?? ''}`.trim())}`, { field, description: r.description });
    });
  }
  if (mode === 'automatic' || mode === 'hybrid') {
    // Traffic from each internal network leaving by the WAN takes the WAN CARP VIP, so its address survives a
    // failover. The node's own traffic keeps the node's address (a BACKUP node must still reach its upstreams).
    const vip = vipsOn(c, 'wan')[0];
    const act = vip ? `snat ip to ${vip}` : 'masquerade';
    for (const i of internalNets(c)) {
      const net = parseCidr(c.interfaces[i]!.address);
      const what = i === 'lan' ? 'automatic outbound NAT' : `automatic outbound NAT (${i})`;
      k.emit(`    oifname ${k.dev('wan')} ip saddr ${numIp(net.net)}/${net.prefix} counter ${act} comment ${q(what)}`, { field: 'nat.outbound (automatic)' });
    }
  }
  // The BACKUP's own traffic (forwarded above) takes the leased address: the ISP routes nothing else back.
  const leased = backupOut ? vipsOn(c, 'wan')[0] : undefined;
  if (backupOut && leased) k.emit(`    oifname ${k.dev('wan')} ip saddr ${backupOut} counter snat ip to ${leased} comment "the peer's own traffic (wan.mode dhcp)"`, sys('nat: peer out by the WAN'));
  k.emit('  }');
  k.emit('}');
  return k.result();
}
