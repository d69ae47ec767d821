// kea-dhcp6 (Debian's kea-dhcp6-server) with the HA hook in hot-standby: this node's config, our own checks, and
// status over its control socket. The same pair as the DHCPv4 Kea (../dhcp/kea.ts): peers on the sync addresses
// (its own HA port), the same mutual-TLS identity, the same hold rule. One subnet: ra.vhid's network, the /64
// of ra.prefixes the range lies in; DNS is the RA's RDNSS address (the DNS VIP).
import { isIPv6 } from 'node:net';
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/schema.js';
import type { Finding } from '../../config/check.js';
import { netDevice } from '../../config/schema.js';
import { SYNC_PORTS } from '../firewall/ports.js';
import { raAddresses, raManaged, raOf } from '../../ra/config.js';
import { haHooks, keaCommand, type KeaHaSecurity } from '../dhcp/kea.js';
import { haTlsPaths } from '../dhcp/hatls.js';
import { dhcp6Net, dhcp6Of, ip6Num, prefixOf } from './scope.js';
import { isLinkLocal } from '../../config/ipv6.js';

export function kea6Paths(stateDir: string) {
  const dir = path.join(stateDir, 'kea6');
  return {
    dir, config: path.join(dir, 'kea-dhcp6.json'), socket: path.join(dir, 'kea6-ctrl.sock'),
    leases: path.join(dir, 'leases6.csv'), pid: path.join(dir, 'supervised.pid'),
    haPassword: path.join(dir, 'ha-auth.password'),
  };
}

/** Lifetimes from the lease time: preferred 7/8, T1 1/2, T2 4/5 (T1 < T2 <= preferred < valid, RFC 8415 §21.4). */
export function lifetimes(lease: number) {
  return { valid: lease, preferred: Math.floor((lease * 7) / 8), renew: Math.max(1, Math.floor(lease / 2)), rebind: Math.max(2, Math.floor((lease * 4) / 5)) };
}

const isMulticast = (a: string) => /^ff/i.test(a);

export function checkDhcp6(c: Config): Finding[] {
  const d = dhcp6Of(c);
  if (!d) return [];
  const out: Finding[] = [];
  const err = (field: string, message: string) => out.push({ level: 'error', field: `dhcp6.${field}`, message });
  const r = raOf(c);
  if (!r) { err('(ra)', 'DHCPv6 serves the network the router advertisements are for: add the ra section (vhid, prefixes, mode managed)'); return out; }
  if (!raManaged(r)) err('(ra.mode)', `ra.mode is ${r.mode ?? 'slaac'}: hosts are not told to ask DHCPv6 (M flag clear); set ra.mode managed or assisted`);
  const a = raAddresses(c, r);
  if (a.iface && !dhcp6Net(c)) err('(ra.vhid)', `vhid ${r.vhid} is on ${a.iface}: DHCPv6 serves an internal network only`);
  const net = dhcp6Net(c);
  const { from, to } = d.range;
  let pfx: string | null = null;
  for (const [k, x] of [['range.from', from], ['range.to', to]] as const) {
    if (!isIPv6(x)) { err(k, `${x} is not an IPv6 address: write it like 2001:db8:1::1000`); continue; }
    if (isLinkLocal(x) || isMulticast(x)) { err(k, `${x} is link-local or multicast: the pool must be in one of ra.prefixes`); continue; }
    const p = prefixOf(c, x);
    if (!p) err(k, `${x} is in none of ra.prefixes (${r.prefixes.join(', ')}): clients could not reach the router from it`);
    else if (pfx && p !== pfx) err('range', `from and to are in different prefixes (${pfx}, ${p}): a pool lies in one /64`);
    else pfx = p;
    // The all-zero interface id is the subnet-router anycast address (RFC 4291 §2.6.1).
    if (p && (ip6Num(x) & ((1n << 64n) - 1n)) === 0n) err(k, `${x} is the subnet-router anycast address of ${p}: start the pool after it`);
  }
  if (isIPv6(from) && isIPv6(to) && ip6Num(from) > ip6Num(to)) err('range', `from ${from} is after to ${to}: swap them`);
  if (isIPv6(from) && isIPv6(to)) {
    const lo = ip6Num(from); const hi = ip6Num(to);
    for (const v of c.carp.vips.filter((x) => x.address.includes(':'))) {
      const ip = v.address.split('/')[0]!;
      if (isIPv6(ip) && ip6Num(ip) >= lo && ip6Num(ip) <= hi) err('range', `${from}-${to} contains the VIP ${ip} (vhid ${v.vhid}): leave the gateway's addresses out of the pool`);
    }
  }
  d.dns_servers?.forEach((x, i) => { if (!isIPv6(x)) err(`dns_servers[${i}]`, `${x} is not an IPv6 address`); });
  if (!d.dns_servers && !a.dns.length) err('dns_servers', 'no DNS server to hand out: the RA vhid has no global IPv6 VIP; set dhcp6.dns_servers or ra.dns');
  const duids = new Set<string>(); const addrs = new Set<string>();
  d.static_mappings.forEach((m, i) => {
    const f = `static_mappings[${i}]`;
    if (!isIPv6(m.address)) err(`${f}.address`, `${m.address} is not an IPv6 address`);
    else if (pfx && prefixOf(c, m.address) !== pfx) err(`${f}.address`, `${m.address} is outside ${pfx}, the pool's prefix`);
    else if (c.carp.vips.some((v) => v.address.split('/')[0] === m.address)) err(`${f}.address`, `${m.address} is a gateway address`);
    const duid = m.duid.toLowerCase();
    if (duids.has(duid)) err(`${f}.duid`, `${m.duid} is mapped twice`);
    if (addrs.has(m.address)) err(`${f}.address`, `${m.address} is mapped twice`);
    duids.add(duid); addrs.add(m.address);
  });
  if (!c.interfaces.sync.peer) err('(sync peer)', 'interfaces.sync.peer is not set: the Kea HA peers talk over the sync link');
  if (d.ha.max_response_delay_ms <= d.ha.heartbeat_delay_ms) err('ha.max_response_delay_ms', 'must be longer than heartbeat_delay_ms (Kea declares the partner down after it)');
  return out;
}

/**
 * The server DUID both nodes answer with: DUID-LL (RFC 8415 §11.4) over the RA vhid's virtual MAC
 * (00:00:5e:00:01:vhid). Shared like a VIP, so a client's Renew, which names the server that leased, is answered
 * by whichever node serves now instead of being dropped until the client rebinds at T2.
 */
export function serverDuid(vhid: number): string {
  return `00005e0001${vhid.toString(16).padStart(2, '0')}`;
}

/** This node's kea-dhcp6 config; identical on both nodes except this-server-name. */
export function kea6Config(c: Config, stateDir = c.state_dir, sec: KeaHaSecurity = {}): object {
  const d = dhcp6Of(c);
  if (!d) throw new Error('no dhcp6 section');
  const bad = checkDhcp6(c).filter((f) => f.level === 'error');
  if (bad.length) throw new Error(`dhcp6 config: ${bad.map((f) => `${f.field}: ${f.message}`).join('; ')}`);
  const r = raOf(c)!;
  const net = dhcp6Net(c)!;
  const dev = netDevice(c.interfaces[net]!);
  const p = kea6Paths(stateDir);
  const lt = lifetimes(d.lease_time);
  const options: { name: string; data: string }[] = [{ name: 'dns-servers', data: (d.dns_servers ?? raAddresses(c, r).dns).join(', ') }];
  if (d.domain_search) options.push({ name: 'domain-search', data: d.domain_search.join(', ') });
  return {
    Dhcp6: {
      // The NIC may come up after Kea (carrier later; its link-local address after DAD): keep retrying.
      'interfaces-config': { interfaces: [dev], 'service-sockets-max-retries': 100000, 'service-sockets-retry-wait-time': 500 },
      'server-id': { type: 'LL', htype: 1, identifier: serverDuid(r.vhid), persist: false },
      'control-socket': { 'socket-type': 'unix', 'socket-name': p.socket },
      'lease-database': { type: 'memfile', persist: true, name: p.leases, 'lfc-interval': 3600 },
      // Required for HA+MT (the dedicated HA listener), as for kea-dhcp4.
      'multi-threading': { 'enable-multi-threading': true, 'thread-pool-size': 2, 'packet-queue-size': 16 },
      'valid-lifetime': lt.valid, 'preferred-lifetime': lt.preferred, 'renew-timer': lt.renew, 'rebind-timer': lt.rebind,
      'hooks-libraries': haHooks(c, d.ha, SYNC_PORTS.kea6_ha.port, p.haPassword, stateDir, sec, 'dhcp6'),
      subnet6: [{
        id: 1,
        subnet: prefixOf(c, d.range.from)!,
        interface: dev,
        pools: [{ pool: `${d.range.from} - ${d.range.to}` }],
        'option-data': options,
        reservations: d.static_mappings.map((m) => ({ duid: m.duid.toLowerCase(), 'ip-addresses': [m.address], ...(m.hostname ? { hostname: m.hostname } : {}) })),
      }],
      loggers: [{ name: 'kea-dhcp6', output_options: [{ output: 'stdout' }], severity: 'INFO' }],
    },
  };
}

export function ensureKea6Dir(p: ReturnType<typeof kea6Paths>, stateDir: string): void {
  mkdirSync(p.dir, { recursive: true, mode: 0o750 });
  chmodSync(p.dir, 0o750); // Kea 2.6.3+ refuses a socket dir with any other mode (../dhcp/kea.ts keaEnv)
  // The pair's TLS files live under the DHCPv4 Kea's dir (one identity for both).
  mkdirSync(haTlsPaths(stateDir).dir, { recursive: true, mode: 0o750 });
}

export interface Kea6Status { ha_state: string | null; partner_state: string | null; scopes: string[]; leases: number | null }

export async function kea6Status(socket: string): Promise<Kea6Status> {
  const st = await keaCommand(socket, 'status-get');
  const ha = st?.arguments?.['high-availability']?.[0]?.['ha-servers'];
  const name = 'subnet[1].assigned-nas';
  const lc = await keaCommand(socket, 'statistic-get', { name });
  const v = lc?.arguments?.[name]?.[0]?.[0];
  return { ha_state: ha?.local?.state ?? null, partner_state: ha?.remote?.['last-state'] ?? null, scopes: ha?.local?.scopes ?? [], leases: typeof v === 'number' ? v : null };
}
