// Kea DHCPv4 (Debian's kea-dhcp4-server: 2.2 on Debian 12, 2.6 on Debian 13) with the HA hook in hot-standby: config generation per node,
// our own validation (`kea-dhcp4 -t` accepts broken configs), and the control-socket client for status.
// Facts and traps: ../shared/docs/configsync.md §3 — HA+MT (Kea's own HTTP listener, no ctrl agent) needs
// core multi-threading on; peer URLs are IP literals on the sync link; routers/DNS are the LAN VIP.
import net from 'node:net';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config/schema.js';
import type { Finding } from '../../config/check.js';
import { inSubnet, ipNum, isNetOrBroadcast, numIp, parseCidr } from '../../config/net.js';
import { SYNC_PORTS } from '../firewall/ports.js';
import { vipsOn } from '../firewall/compile.js';
import type { DhcpConfig } from './schema.js';
import { dhcpScopes, type Scope } from './scopes.js';
import { internalNets, netDevice } from '../../config/schema.js';
import { haTlsPaths, pairSecret } from './hatls.js';

const HOOK_DIRS = ['/usr/lib/x86_64-linux-gnu/kea/hooks', '/usr/lib/aarch64-linux-gnu/kea/hooks', '/usr/lib/kea/hooks', '/usr/local/lib/kea/hooks'];

export function dhcpOf(c: Config): DhcpConfig | undefined {
  const d = c.dhcp as Partial<DhcpConfig> | undefined;
  if (!d) return undefined;
  return {
    range: d.range, networks: d.networks, lease_time: d.lease_time ?? 7200, dns_servers: d.dns_servers, domain_name: d.domain_name,
    static_mappings: d.static_mappings ?? [],
    ha: { heartbeat_delay_ms: 2000, max_response_delay_ms: 6000, max_ack_delay_ms: 5000, max_unacked_clients: 0, ...(d.ha ?? {}) },
  };
}

/**
 * The environment kea-dhcp4 runs and is checked with. Kea 2.6.3 and later (Debian 13; the CVE-2025-32802 fix)
 * open a control socket only in their socket directory (/run/kea unless KEA_CONTROL_SOCKET_DIR says otherwise),
 * which must have mode 0750, and a lease file only in their data directory (/var/lib/kea, KEA_DHCP_DATA_DIR).
 * Each node's Kea keeps everything in its own kea dir, so all four point there. Kea 2.2 (Debian 12) ignores the
 * two new variables. `kea-dhcp4 -t` of 2.6.3 does not check the two paths: only a started Kea refuses them.
 */
export function keaEnv(p: ReturnType<typeof keaPaths>): Record<string, string> {
  return { KEA_PIDFILE_DIR: p.dir, KEA_LOCKFILE_DIR: p.dir, KEA_CONTROL_SOCKET_DIR: p.dir, KEA_DHCP_DATA_DIR: p.dir };
}

/** The node's kea dir, mode 0750 even if it existed before (Kea 2.6.3+ refuses a socket dir with any other). */
export function ensureKeaDir(p: ReturnType<typeof keaPaths>): void {
  mkdirSync(p.dir, { recursive: true, mode: 0o750 });
  chmodSync(p.dir, 0o750);
}

export function keaPaths(stateDir: string) {
  const dir = path.join(stateDir, 'kea');
  return {
    dir, config: path.join(dir, 'kea-dhcp4.json'), socket: path.join(dir, 'kea4-ctrl.sock'),
    leases: path.join(dir, 'leases4.csv'), pid: path.join(dir, 'supervised.pid'),
    /** The HA listener's basic-auth password (mode 0600), kept out of the config file Kea may print. */
    haPassword: path.join(dir, 'ha-auth.password'),
  };
}

// HTTP basic authentication between the two Kea servers. Kea 2.2 through 3.3.0 accept basic-auth-user and
// basic-auth-password(-file) in a peer entry, but only to *send* them: the HA+MT dedicated listener checks no
// credentials in 2.2.0 (Debian 12) through 3.3.0, including 2.6 (Debian 13); ISC's fix (Gitlab #4599, after
// 3.3.0) makes the listener check this server's own peer entry. Verified here on 2.2.0: with credentials on both
// peers the listener answers status-get without any. So the credentials are configured only where Kea checks
// them, and status says which it is. The authentication every supported Kea enforces is mutual TLS (hatls.ts).
export const KEA_HA_AUTH_USER = 'duogate-ha';
const HA_LISTENER_AUTH_SINCE = [3, 3, 1];

/** "2.2.0" (first line of `kea-dhcp4 -V`), or null if Kea cannot be run. Cached: it does not change under us. */
let keaVersionCache: string | null | undefined;
export function keaVersion(): string | null {
  if (keaVersionCache !== undefined) return keaVersionCache;
  try {
    keaVersionCache = /^\s*(\d+\.\d+\.\d+)/.exec(execFileSync('kea-dhcp4', ['-V'], { encoding: 'utf8', timeout: 10_000 }))?.[1] ?? null;
  } catch { keaVersionCache = null; }
  return keaVersionCache;
}

/** Does this Kea's HA listener check basic-auth credentials? */
export function haListenerChecksAuth(version: string | null): boolean {
  if (!version) return false;
  const v = version.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((v[i] ?? 0) !== HA_LISTENER_AUTH_SINCE[i]) return (v[i] ?? 0) > HA_LISTENER_AUTH_SINCE[i]!;
  return true;
}

/**
 * The pair's HA password: HMAC-SHA256 over a fixed label keyed with the secret both nodes already share and
 * never sync (pairSecret), so the two nodes derive the same password without a new setting. null without one.
 */
export function haAuthPassword(c: Config): string | null {
  const secret = pairSecret(c);
  return secret ? createHmac('sha256', secret.value).update('duogate kea-ha basic-auth v1').digest('hex') : null;
}

/** Everything Kea would accept but that breaks the pair (or that Kea rejects only at run time). */
export function checkDhcp(c: Config): Finding[] {
  const d = dhcpOf(c);
  if (!d) return [];
  const out: Finding[] = [];
  const err = (field: string, message: string) => out.push({ level: 'error', field: `dhcp.${field}`, message });
  for (const [net] of Object.entries(d.networks ?? {})) {
    if (!internalNets(c).includes(net)) out.push({ level: 'error', field: `dhcp.networks.${net}`, message: `"${net}" is not an internal network of this node: add interfaces.${net} or remove the scope` });
  }
  if (d.range && d.networks?.lan) err('networks.lan', 'the LAN scope is the section\'s own range: remove networks.lan or the top-level range');
  const ids = new Map<number, string>();
  for (const s of dhcpScopes(c)) {
    if (ids.has(s.id)) out.push({ level: 'error', field: s.field, message: `its Kea subnet id ${s.id} equals ${ids.get(s.id)}'s: rename the network` });
    ids.set(s.id, s.net);
    if (c.interfaces[s.net] && internalNets(c).includes(s.net)) out.push(...checkScope(c, s));
  }
  if (!c.interfaces.sync.peer) err('(sync peer)', 'interfaces.sync.peer is not set: the Kea HA peers talk over the sync link');
  if (d.ha.max_response_delay_ms <= d.ha.heartbeat_delay_ms) err('ha.max_response_delay_ms', 'must be longer than heartbeat_delay_ms (Kea declares the partner down after it)');
  return out;
}

/** One scope against its network: pool and mappings inside the subnet, the gateway's addresses left out. */
function checkScope(c: Config, s: Scope): Finding[] {
  const out: Finding[] = [];
  const err = (field: string, message: string) => out.push({ level: 'error', field: `${s.field}.${field}`, message });
  const ifc = c.interfaces[s.net]!;
  const name = s.net === 'lan' ? 'LAN' : s.net;
  const vip = vipsOn(c, s.net)[0];
  const own = parseCidr(ifc.address).ip;
  const { from, to } = s.range;
  for (const [k, a] of [['range.from', from], ['range.to', to]] as const) {
    if (!inSubnet(a, ifc.address)) err(k, `${a} is outside the ${name} subnet ${ifc.address}`);
    else if (isNetOrBroadcast(a, ifc.address)) err(k, `${a} is the ${name}'s network or broadcast address`);
  }
  if (ipNum(from) > ipNum(to)) err('range', `from ${from} is after to ${to}: swap them`);
  const inRange = (a: string) => ipNum(a) >= ipNum(from) && ipNum(a) <= ipNum(to);
  for (const [what, a] of [[`the ${name} VIP`, vip], [`this node's ${name} address`, own], [`the peer's ${name} address`, ifc.peer]] as const) {
    if (a && inRange(a)) err('range', `${from}-${to} contains ${what} ${a}: leave the gateway's addresses out of the pool`);
  }
  if (!vip) {
    // Kept under its old field name for the LAN scope (findings are matched by field).
    out.push({ level: 'error', field: s.net === 'lan' ? 'dhcp.(lan vip)' : `${s.field}`, message: `no CARP VIP on ${name}: clients need a router and DNS that survive a failover (add carp.vips on ${s.net})` });
  }
  const macs = new Set<string>(); const addrs = new Set<string>();
  s.static_mappings.forEach((m, i) => {
    const f = `static_mappings[${i}]`;
    if (!inSubnet(m.address, ifc.address)) err(`${f}.address`, `${m.address} is outside the ${name} subnet ${ifc.address}`);
    if (m.address === vip || m.address === own || m.address === ifc.peer) err(`${f}.address`, `${m.address} is a gateway address`);
    const mac = m.mac.toLowerCase();
    if (macs.has(mac)) err(`${f}.mac`, `${m.mac} is mapped twice`);
    if (addrs.has(m.address)) err(`${f}.address`, `${m.address} is mapped twice`);
    macs.add(mac); addrs.add(m.address);
  });
  return out;
}

/** A scope as Kea's subnet4 entry: router and DNS are the network's VIP, the server identifier this node's address on it. */
function keaSubnet(c: Config, s: Scope): object {
  const ifc = c.interfaces[s.net]!;
  const vip = vipsOn(c, s.net)[0]!;
  const net = parseCidr(ifc.address);
  const options: { name: string; data: string }[] = [
    { name: 'routers', data: vip },
    { name: 'domain-name-servers', data: (s.dns_servers ?? [vip]).join(', ') },
    // This node's own address on the network as server identifier, not the VIP: Kea opens its packet socket per
    // address present at start and that socket's filter passes only broadcasts and unicasts to that address, so a
    // renew unicast to a VIP that came later is never seen (the kernel answers "port unreachable"). A client
    // renews with the node that leased to it; after a failover it rebinds by broadcast at T2 and gets the survivor.
    { name: 'dhcp-server-identifier', data: net.ip },
  ];
  if (s.domain_name) options.push({ name: 'domain-name', data: s.domain_name });
  return {
    id: s.id,
    subnet: `${numIp(net.net)}/${net.prefix}`,
    interface: netDevice(ifc),
    pools: [{ pool: `${s.range.from} - ${s.range.to}` }],
    'option-data': options,
    ...(s.net === 'lan' ? {} : {
      'valid-lifetime': s.lease_time,
      'renew-timer': Math.max(1, Math.floor(s.lease_time / 2)),
      'rebind-timer': Math.max(2, Math.floor((s.lease_time * 7) / 8)),
    }),
    reservations: s.static_mappings.map((m) => ({ 'hw-address': m.mac.toLowerCase(), 'ip-address': m.address, ...(m.hostname ? { hostname: m.hostname } : {}) })),
  };
}

export function hooksDir(): string {
  const d = HOOK_DIRS.find((x) => existsSync(path.join(x, 'libdhcp_ha.so')));
  if (!d) throw new Error(`Kea HA hook libdhcp_ha.so not found in ${HOOK_DIRS.join(', ')}: install kea-dhcp4-server (board/bootstrap.sh)`);
  return d;
}

export interface KeaHaSecurity {
  /** Mutual TLS between the peers with the pair's certificate (hatls.ts; the caller makes the files). */
  tls?: boolean;
  /** Basic-auth credentials on both peers (the password by file: `keaPaths().haPassword`, written by the
   * caller). Only for a Kea whose HA listener checks them (haListenerChecksAuth). */
  basicAuth?: boolean;
}

/** The HA timing of a DHCP section (dhcp.ha, dhcp6.ha). */
export interface KeaHaTiming { heartbeat_delay_ms: number; max_response_delay_ms: number; max_ack_delay_ms: number; max_unacked_clients: number }

/**
 * The hooks both Kea servers load: lease commands, and HA hot-standby between the two sync addresses on `port`,
 * with the pair's mutual TLS and basic auth (`sec`). Identical on both nodes except this-server-name.
 */
export function haHooks(c: Config, ha: KeaHaTiming, port: number, haPassword: string, stateDir: string, sec: KeaHaSecurity, what: string): object[] {
  const sync = c.interfaces.sync;
  const ownSync = parseCidr(sync.address).ip;
  const peerSync = sync.peer!;
  const primarySync = c.node.role === 'primary' ? ownSync : peerSync;
  const secondarySync = c.node.role === 'primary' ? peerSync : ownSync;
  const hooks = hooksDir();
  if ((sec.basicAuth || sec.tls) && !pairSecret(c)) throw new Error(`${what}: Kea HA authentication needs a secret the pair shares: set statesync.key, peer.key or configsync.password (the same on both nodes)`);
  // The same credentials on both peers: Kea sends its partner's and checks its own.
  const auth = sec.basicAuth ? { 'basic-auth-user': KEA_HA_AUTH_USER, 'basic-auth-password-file': haPassword } : {};
  const tp = haTlsPaths(stateDir);
  // One identity for the pair: it is this server's certificate, the client certificate it presents, and the
  // only trust anchor, so only a holder of the pair's key gets through the listener's handshake.
  const tls = sec.tls ? { 'trust-anchor': tp.cert, 'cert-file': tp.cert, 'key-file': tp.key, 'require-client-certs': true } : {};
  const scheme = sec.tls ? 'https' : 'http';
  return [
    { library: path.join(hooks, 'libdhcp_lease_cmds.so') },
    {
      library: path.join(hooks, 'libdhcp_ha.so'),
      parameters: {
        'high-availability': [{
          'this-server-name': c.node.role,
          mode: 'hot-standby',
          'heartbeat-delay': ha.heartbeat_delay_ms,
          'max-response-delay': ha.max_response_delay_ms,
          'max-ack-delay': ha.max_ack_delay_ms,
          'max-unacked-clients': ha.max_unacked_clients,
          'sync-timeout': 30000,
          'restrict-commands': true,
          ...tls,
          'multi-threading': { 'enable-multi-threading': true, 'http-dedicated-listener': true, 'http-listener-threads': 2, 'http-client-threads': 2 },
          peers: [
            { name: 'primary', url: `${scheme}://${primarySync}:${port}/`, role: 'primary', 'auto-failover': true, ...auth },
            { name: 'secondary', url: `${scheme}://${secondarySync}:${port}/`, role: 'standby', 'auto-failover': true, ...auth },
          ],
        }],
      },
    },
  ];
}

/** The Kea config of this node. Identical on both nodes except this-server-name (the node's role). */
export function keaConfig(c: Config, stateDir = c.state_dir, sec: KeaHaSecurity = {}): object {
  const d = dhcpOf(c);
  if (!d) throw new Error('no dhcp section');
  const bad = checkDhcp(c).filter((f) => f.level === 'error');
  if (bad.length) throw new Error(`dhcp config: ${bad.map((f) => `${f.field}: ${f.message}`).join('; ')}`);
  const p = keaPaths(stateDir);
  const scopes = dhcpScopes(c);
  return {
    Dhcp4: {
      // The LAN may not be running yet when Kea starts (the daemon brings the NICs up; carrier comes later):
      // keep retrying to open the socket instead of serving nothing until a restart.
      'interfaces-config': {
        interfaces: [...new Set(scopes.map((x) => netDevice(c.interfaces[x.net]!)))], 'dhcp-socket-type': 'raw',
        'service-sockets-max-retries': 100000, 'service-sockets-retry-wait-time': 500,
      },
      'control-socket': { 'socket-type': 'unix', 'socket-name': p.socket },
      'lease-database': { type: 'memfile', persist: true, name: p.leases, 'lfc-interval': 3600 },
      // Required for HA+MT: without it Kea logs HA_CONFIG_DHCP_MT_DISABLED and never opens the peer listener.
      'multi-threading': { 'enable-multi-threading': true, 'thread-pool-size': 2, 'packet-queue-size': 16 },
      // The section's lease time; a network's scope may set its own (keaSubnet).
      'valid-lifetime': d.lease_time,
      'renew-timer': Math.max(1, Math.floor(d.lease_time / 2)),
      'rebind-timer': Math.max(2, Math.floor((d.lease_time * 7) / 8)),
      'hooks-libraries': haHooks(c, d.ha, SYNC_PORTS.kea_ha.port, p.haPassword, stateDir, sec, 'dhcp'),
      subnet4: scopes.map((x) => keaSubnet(c, x)),
      loggers: [{ name: 'kea-dhcp4', output_options: [{ output: 'stdout' }], severity: 'INFO' }],
    },
  };
}

/** One command over Kea's unix control socket (Kea answers one JSON object, then closes). */
export function keaCommand(socket: string, command: string, args?: object, timeoutMs = 2000): Promise<any> {
  return new Promise((resolve, reject) => {
    const s = net.connect(socket);
    let buf = '';
    const t = setTimeout(() => { s.destroy(); reject(new Error(`kea control socket ${socket}: no answer to ${command} in ${timeoutMs} ms`)); }, timeoutMs);
    s.setEncoding('utf8');
    s.on('connect', () => s.write(JSON.stringify({ command, ...(args ? { arguments: args } : {}) })));
    s.on('data', (d: string) => {
      buf += d;
      try { const j = JSON.parse(buf); clearTimeout(t); s.destroy(); resolve(j); } catch { /* more to come */ }
    });
    s.on('error', (e) => { clearTimeout(t); reject(e); });
    s.on('end', () => { clearTimeout(t); try { resolve(JSON.parse(buf)); } catch { reject(new Error(`kea control socket ${socket}: bad answer to ${command}`)); } });
  });
}

export interface KeaStatus {
  ha_state: string | null; partner_state: string | null; scopes: string[]; leases: number | null;
  /** Leases per network (subnet ids from `subnets`). */
  networks?: Record<string, number | null>; error?: string;
}

/** HA state and leases; `subnets` maps a network to its Kea subnet id (default: the LAN's only). */
export async function keaStatus(socket: string, subnets: Record<string, number> = { lan: 1 }): Promise<KeaStatus> {
  const st = await keaCommand(socket, 'status-get');
  const ha = st?.arguments?.['high-availability']?.[0]?.['ha-servers'];
  const networks: Record<string, number | null> = {};
  for (const [net, id] of Object.entries(subnets)) {
    const name = `subnet[${id}].assigned-addresses`;
    const lc = await keaCommand(socket, 'statistic-get', { name });
    const v = lc?.arguments?.[name]?.[0]?.[0];
    networks[net] = typeof v === 'number' ? v : null;
  }
  const counts = Object.values(networks).filter((v): v is number => v !== null);
  return {
    ha_state: ha?.local?.state ?? null, partner_state: ha?.remote?.['last-state'] ?? null,
    scopes: ha?.local?.scopes ?? [], leases: counts.length ? counts.reduce((a, b) => a + b, 0) : null,
    networks,
  };
}
