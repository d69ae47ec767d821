// The received-state policy (assembly/statesync/policy.ts) built from the node's config and its kernel's
// conntrack timeouts. A pure function of its inputs, so the rules can be checked without a kernel.
import { allNets, internalNets, type Config } from '../config/schema.js';
import { natOf } from '../gateway/firewall/schema.js';
import { numIp, parseCidr } from '../config/net.js';
import type { StateSyncConfig } from './config.js';
import type { RxPolicy } from './core.js';

/** The kernel's defaults (seconds), used when a sysctl cannot be read. TCP by state number (nf_conntrack_tcp.h). */
const TCP_SYSCTLS: [string | null, number][] = [
  ['syn_sent', 120], // 0 NONE: never injected in practice; bounded like a fresh connection
  ['syn_sent', 120], ['syn_recv', 60], ['established', 432000], ['fin_wait', 120], ['close_wait', 60],
  ['last_ack', 30], ['time_wait', 120], ['close', 10],
  ['syn_sent', 120], // 9 SYN_SENT2 (simultaneous open) uses the SYN_SENT timeout
];

const ipv4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * `sysctl(name)` reads /proc/sys/net/netfilter/<name> (null when absent). The bound for UDP is the larger of the
 * plain and the stream timeout, since a peer's entry may be either.
 */
export function rxPolicyOf(c: Config, cfg: StateSyncConfig, sysctl: (name: string) => number | null): RxPolicy {
  const t = (name: string, dflt: number) => sysctl(`nf_conntrack_${name}`) ?? dflt;
  const timeoutMax = [
    ...TCP_SYSCTLS.map(([n, d]) => t(`tcp_timeout_${n}`, d)),
    Math.max(t('udp_timeout', 30), t('udp_timeout_stream', 120)),
    t('icmp_timeout', 30),
  ];
  const addr = (cidr: string) => cidr.split('/')[0]!;
  const vips = c.carp.vips.filter((v) => !v.address.includes(':')).map((v) => addr(v.address));
  // IPv6: the VIPs, both nodes' link-local addresses (link-local is refused as a whole anyway; naming them keeps
  // the rule explicit) and this node's own global6 addresses (its own connections stay its own).
  const own6 = [...new Set([
    ...c.carp.vips.filter((v) => v.address.includes(':')).map((v) => addr(v.address)),
    ...Object.values(c.interfaces).flatMap((i) => [i.address6 ? addr(i.address6) : '', i.peer6 ?? '', i.global6 ? addr(i.global6) : '']).filter(Boolean),
  ])];
  const nodeAddrs = ['wan', ...internalNets(c)].flatMap((r) => [addr(c.interfaces[r]!.address), c.interfaces[r]!.peer ?? '']).filter(Boolean);
  const nat = natOf(c);
  // Explicit outbound translation addresses are the pair's too (the ruleset SNATs to them on either node).
  const translations = nat.outbound.rules.map((r) => r.translation).filter((x) => ipv4.test(x));
  // Every internal network may be a DNAT destination (a port forward into the guest network, say).
  const internal = internalNets(c).map((n) => parseCidr(c.interfaces[n]!.address));
  // Port forward targets outside the LAN are internal hosts the config names (a DMZ host, say).
  const targets = nat.port_forwards.map((p) => p.target).filter((x) => ipv4.test(x));
  return {
    timeoutMax,
    zones: cfg.zones, marks: cfg.marks,
    snat: [...new Set([...vips, ...nodeAddrs, ...translations])],
    vips, own6,
    dnatNets: [...internal.map((n): [string, number] => [numIp(n.net), n.prefix]), ...targets.map((a): [string, number] => [a, 32])],
  };
}
