// The virtual board: two gateway nodes, a LAN client and a WAN server wired
// together with veth cables and bridge "switches", all in network namespaces
// named `${prefix}-<role>`. Used by the demo and by every end-to-end test.
// See board/virtual/README.md for the picture.
//
// Nothing is ever connected to the host's network namespace: every veth is
// created with both ends directly inside board namespaces.
import { spawn as cpSpawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { execFile } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  deleteNetns,
  ip,
  ipBatch,
  killAllIn,
  killPids,
  netnsExists,
  netnsPids,
  sleep,
  type ExecResult,
} from './netns.js';

export type { ExecResult } from './netns.js';

export type NodeName = 'primary' | 'secondary';
export type Segment = 'lan' | 'wan' | 'sync' | 'guest';
/**
 * Every namespace of the board. `synccable` is the passive cable between the sync0 NICs; `guest` is a client on
 * the third internal network (guest0 on each node, switch `guestsw`), used when a config declares it.
 */
export type Role = NodeName | 'client' | 'server' | 'lansw' | 'wansw' | 'synccable' | 'guest' | 'guestsw';

export const NODES: readonly NodeName[] = ['primary', 'secondary'];
export const ROLES: readonly Role[] = ['primary', 'secondary', 'client', 'server', 'lansw', 'wansw', 'synccable', 'guest', 'guestsw'];

/** Addressing from the pfSense HA guide. VIPs are not configured by the board. */
export const ADDR = {
  primary: { lan0: '192.168.1.2/24', wan0: '203.0.113.2/24', sync0: '172.16.1.1/30' },
  secondary: { lan0: '192.168.1.3/24', wan0: '203.0.113.3/24', sync0: '172.16.1.2/30' },
  client: { eth0: '192.168.1.100/24' },
  server: { eth0: '203.0.113.10/24' },
  guest: { eth0: '192.168.20.100/24' },
} as const;
export const VIP = { lan: '192.168.1.1', lanVhid: 1, wan: '203.0.113.1', wanVhid: 2, guest: '192.168.20.1', guestVhid: 3 } as const;
/** The nodes' own WAN addresses on a single-address ISP (`wan: 'dhcp'`): private, they only carry CARP adverts. */
export const DHCP_WAN_ADDR = { primary: '10.255.0.2/24', secondary: '10.255.0.3/24', vip: '10.255.0.1/24' } as const;
// guest0 comes up without an address: the daemon adds the node's (192.168.20.2 and .3 in the board's configs)
// when its config declares interfaces.guest (board/virtual/networks.ts), so a config without it sees a dark NIC.

const NIC: Record<Exclude<Segment, never>, string> = { lan: 'lan0', wan: 'wan0', sync: 'sync0', guest: 'guest0' };
const SWITCH: Record<Segment, Role> = { lan: 'lansw', wan: 'wansw', sync: 'synccable', guest: 'guestsw' };
const ROLE_ID: Record<Role, number> = { primary: 1, secondary: 2, client: 3, server: 4, lansw: 5, wansw: 6, synccable: 7, guest: 8, guestsw: 9 };
const SEG_ID: Record<Segment, number> = { lan: 1, wan: 2, sync: 3, guest: 4 };

const hex = (n: number) => n.toString(16).padStart(2, '0');
/** Stable MAC of a cable end: 02:d6:<role>:<segment>:00:01 (host end) / :02 (switch-port end). */
export function macFor(role: Role, seg: Segment, side: 'host' | 'port'): string {
  return `02:d6:${hex(ROLE_ID[role])}:${hex(SEG_ID[seg])}:00:${side === 'host' ? '01' : '02'}`;
}
const bridgeMac = (sw: Role) => `02:d6:${hex(ROLE_ID[sw])}:00:00:00`;

/** One cable: `ifname` in the host-side namespace `role`, peer `port` in the switch namespace. */
interface Cable {
  seg: Segment;
  role: Role;
  ifname: string;
  sw: Role;
  port: string;
}
const CABLES: Cable[] = [
  ...(['primary', 'secondary', 'client'] as const).map((r) => ({
    seg: 'lan' as const, role: r, ifname: r === 'client' ? 'eth0' : 'lan0', sw: 'lansw' as const, port: `p-${r}`,
  })),
  ...(['primary', 'secondary', 'server'] as const).map((r) => ({
    seg: 'wan' as const, role: r, ifname: r === 'server' ? 'eth0' : 'wan0', sw: 'wansw' as const, port: `p-${r}`,
  })),
  ...NODES.map((r) => ({ seg: 'sync' as const, role: r, ifname: 'sync0', sw: 'synccable' as const, port: `p-${r}` })),
  ...(['primary', 'secondary', 'guest'] as const).map((r) => ({
    seg: 'guest' as const, role: r, ifname: r === 'guest' ? 'eth0' : 'guest0', sw: 'guestsw' as const, port: `p-${r}`,
  })),
];

export interface VirtualBoardOptions {
  /** Namespace prefix; namespaces are `${prefix}-primary` etc. Default 'dg'. */
  prefix?: string;
  /**
   * The board's own directory (node logs, sockets, state, test files). Default `/run/duogate-vboard/${prefix}`.
   * up() empties it: a run sees only what it wrote itself.
   */
  runDir?: string;
  /**
   * Start every spawned process in its own session, so it outlives this process and a Ctrl-C in its terminal
   * (`npm run demo -- --keep`); down() still finds it by namespace and PID.
   */
  detach?: boolean;
  /** 'dhcp': the ISP hands one address (board/virtual/isp.ts), so the nodes' wan0 get DHCP_WAN_ADDR. Default 'static'. */
  wan?: 'static' | 'dhcp';
}

export interface ExecOptions {
  /** Kill the command after this many ms (default 10 000). */
  timeoutMs?: number;
  /** Data for stdin. */
  input?: string;
  /** Throw if the command exits non-zero (default false). */
  check?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface LinkState {
  ifname: string;
  operstate: string;
  flags: string[];
  /** Admin up (IFF_UP). */
  up: boolean;
  /** Carrier present (LOWER_UP). */
  lowerUp: boolean;
  /** Up and carrier (IFF_RUNNING as ip shows it: no NO-CARRIER). */
  running: boolean;
  master?: string;
  address: string;
}

export interface StopResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True if the node ignored `signal` until the timeout and was SIGKILLed. */
  forced: boolean;
}

const other = (n: NodeName): NodeName => (n === 'primary' ? 'secondary' : 'primary');

function waitExit(cp: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (cp.exitCode !== null || cp.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      cp.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = () => {
      clearTimeout(t);
      resolve(true);
    };
    cp.once('exit', onExit);
  });
}

export class VirtualBoard {
  readonly prefix: string;
  readonly runDir: string;
  readonly detach: boolean;

  /** Everything spawned through this board (spawn/startNode); down() kills them. */
  private readonly children = new Set<ChildProcess>();
  private readonly nodeProcs = new Map<NodeName, ChildProcess>();
  private readonly powered: Record<NodeName, boolean> = { primary: false, secondary: false };
  /** Byte offset of each node's log where its latest startNode() began (see logSinceStart). */
  private readonly logStart = new Map<NodeName, number>();
  /** Cables currently pulled, e.g. 'primary:lan'. Survive powerOff/powerOn. */
  private readonly pulled = new Set<string>();

  readonly wan: 'static' | 'dhcp';

  constructor({ prefix = 'dg', runDir, detach = false, wan = 'static' }: VirtualBoardOptions = {}) {
    this.detach = detach;
    this.wan = wan;
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,40}$/.test(prefix)) throw new Error(`bad board prefix: ${prefix}`);
    this.prefix = prefix;
    this.runDir = runDir ?? `/run/duogate-vboard/${prefix}`;
    // up() empties runDir, so it must be a directory of its own, never a system one.
    if (!/^\/(run|tmp|var\/tmp)\/[^/]+\/./.test(this.runDir) && !this.runDir.includes('duogate')) {
      throw new Error(`board runDir ${this.runDir}: up() empties it; use a directory of the board's own under /run or /tmp`);
    }
  }

  /** Namespace name of a role, e.g. nsName('primary') === 'dg-primary'. */
  nsName(role: Role): string {
    return `${this.prefix}-${role}`;
  }

  private parkName(node: NodeName): string {
    return `${this.prefix}-park-${node}`;
  }

  /** All namespace names this board may own (including transient ones). */
  private allNamespaces(): string[] {
    return [...ROLES.map((r) => this.nsName(r)), ...NODES.map((n) => this.parkName(n))];
  }

  /** Accepts a role ('client') or a full namespace name ('dg-client'). */
  private ns(roleOrNs: Role | string): string {
    return (ROLES as readonly string[]).includes(roleOrNs) ? this.nsName(roleOrNs as Role) : roleOrNs;
  }

  isPowered(node: NodeName): boolean {
    return this.powered[node];
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Build the board from scratch (~50-100 ms). First removes whatever a previous
   * or crashed run with the same prefix left (processes killed by PID,
   * namespaces deleted, runDir emptied: logs, sockets, state dirs), so calling it
   * twice gives the same fresh board and no assertion can match an older run's files.
   * Both nodes end up powered on with addresses but no firmware running.
   */
  async up(): Promise<void> {
    await this.down();
    rmSync(this.runDir, { recursive: true, force: true });
    mkdirSync(this.runDir, { recursive: true });
    this.logStart.clear();
    // 1. namespaces, 2. every cable with both ends created inside namespaces.
    ipBatch([
      ...ROLES.map((r) => `netns add ${this.nsName(r)}`),
      ...CABLES.map(
        (c) =>
          `link add ${c.ifname} netns ${this.nsName(c.role)} address ${macFor(c.role, c.seg, 'host')} ` +
          `type veth peer name ${c.port} netns ${this.nsName(c.sw)} address ${macFor(c.role, c.seg, 'port')}`,
      ),
    ]);
    // 3. switches and the sync cable: a bridge br0 with its ports.
    for (const sw of ['lansw', 'wansw', 'synccable', 'guestsw'] as const) {
      const ports = CABLES.filter((c) => c.sw === sw);
      ipBatch(
        [
          `link add br0 address ${bridgeMac(sw)} type bridge stp_state 0 mcast_snooping 0`,
          'link set br0 addrgenmode none',
          ...ports.flatMap((c) => [`link set ${c.port} addrgenmode none`, `link set ${c.port} master br0`]),
          'link set br0 up',
          ...ports.map((c) => `link set ${c.port} up`),
        ],
        this.nsName(sw),
      );
    }
    // 4. LAN client (default route via the LAN VIP) and WAN server (on-link only): IPv4 only.
    ipBatch(
      [
        'link set lo up',
        'link set eth0 addrgenmode none',
        `addr add ${ADDR.client.eth0} dev eth0`,
        'link set eth0 up',
        `route add default via ${VIP.lan}`,
      ],
      this.nsName('client'),
    );
    ipBatch(
      [
        'link set lo up',
        'link set eth0 addrgenmode none',
        `addr add ${ADDR.server.eth0} dev eth0`,
        'link set eth0 up',
        // No route to the LAN: like a host on the internet, the server only sees the WAN VIP (outbound NAT).
      ],
      this.nsName('server'),
    );
    // The guest client: no address; it leases one from the gateways (test/e2e/networks.test.ts).
    ipBatch(
      ['link set lo up', 'link set eth0 addrgenmode none', 'link set eth0 up'],
      this.nsName('guest'),
    );
    // 5. gateway nodes.
    for (const n of NODES) this.configureNode(n);
    this.powered.primary = this.powered.secondary = true;
    this.applySyncPorts();
  }

  /**
   * Tear everything down: SIGTERM then (after 300 ms) SIGKILL to every process in
   * the board's namespaces (found by PID via `ip netns pids`) and every process
   * spawned through the board, then delete the namespaces. Safe to call twice
   * or when nothing exists. Logs in runDir are kept.
   */
  async down(): Promise<void> {
    const tracked = [...this.children].filter((c) => c.exitCode === null && c.signalCode === null);
    killPids(tracked.map((c) => c.pid!).filter(Boolean), 'SIGTERM');
    await killAllIn(this.allNamespaces(), { termFirstMs: 300 });
    killPids(tracked.map((c) => c.pid!).filter(Boolean), 'SIGKILL');
    await Promise.all(tracked.map((c) => waitExit(c, 2000)));
    deleteNetns(this.allNamespaces());
    this.children.clear();
    this.nodeProcs.clear();
    this.powered.primary = this.powered.secondary = false;
    this.pulled.clear();
  }

  /** Addresses, links up, ip_forward on: the state of a node right after boot. */
  private configureNode(node: NodeName): void {
    const a = ADDR[node];
    ipBatch(
      [
        'link set lo up',
        `addr add ${a.lan0} dev lan0`,
        `addr add ${this.wan === 'dhcp' ? DHCP_WAN_ADDR[node] : a.wan0} dev wan0`,
        `addr add ${a.sync0} dev sync0`,
        'link set lan0 up',
        'link set wan0 up',
        'link set sync0 up',
        'link set guest0 addrgenmode none',
        'link set guest0 up',
      ],
      this.nsName(node),
    );
    this.sysctl(node, { 'net.ipv4.ip_forward': '1' });
  }

  /** Write sysctls inside a namespace (one `ip netns exec ... sysctl`). */
  sysctl(role: Role | string, values: Record<string, string>): void {
    const args = Object.entries(values).map(([k, v]) => `${k}=${v}`);
    this.exec(role, 'sysctl', ['-qw', ...args], { check: true });
  }

  /**
   * The sync "cable" is a two-port bridge so it can lose carrier on both ends
   * without admin-downing either node's sync0 (veth has no carrier switch).
   * Port p-X faces node X; X sees carrier iff the cable is plugged and the
   * other node is powered.
   */
  private applySyncPorts(): void {
    const plugged = !this.pulled.has('primary:sync') && !this.pulled.has('secondary:sync');
    ipBatch(
      NODES.map((n) => `link set p-${n} ${plugged && this.powered[other(n)] ? 'up' : 'down'}`),
      this.nsName('synccable'),
    );
  }

  // ---------------------------------------------------------------- processes

  private ipNetnsExecArgs(ns: string, cmd: string, args: string[]): string[] {
    return ['netns', 'exec', ns, cmd, ...args];
  }

  /**
   * Run a command to completion inside a namespace (`ip netns exec`), blocking.
   * For quick commands (ping -c1, ip -j, nft list...). Never throws unless
   * `check` is set and the exit status is non-zero.
   */
  exec(role: Role | string, cmd: string, args: string[] = [], opts: ExecOptions = {}): ExecResult {
    const ns = this.ns(role);
    const r = spawnSync('ip', this.ipNetnsExecArgs(ns, cmd, args), {
      encoding: 'utf8',
      input: opts.input,
      timeout: opts.timeoutMs ?? 10_000,
      env: opts.env ? { ...process.env, ...opts.env } : undefined,
      cwd: opts.cwd,
      maxBuffer: 64 * 1024 * 1024,
    });
    const res: ExecResult = {
      status: r.status ?? -1,
      stdout: r.stdout ?? '',
      stderr: (r.stderr ?? '') + (r.error ? `\n${r.error.message}` : ''),
      signal: r.signal,
    };
    if (opts.check && res.status !== 0) {
      throw new Error(`[${ns}] ${cmd} ${args.join(' ')} failed (${res.status ?? res.signal}): ${res.stderr.trim()}`);
    }
    return res;
  }

  /** Like exec() but does not block the event loop. */
  execAsync(role: Role | string, cmd: string, args: string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    const ns = this.ns(role);
    return new Promise((resolve, reject) => {
      const cp = execFile(
        'ip',
        this.ipNetnsExecArgs(ns, cmd, args),
        {
          encoding: 'utf8',
          timeout: opts.timeoutMs ?? 10_000,
          env: opts.env ? { ...process.env, ...opts.env } : undefined,
          cwd: opts.cwd,
          maxBuffer: 64 * 1024 * 1024,
        },
        (err, stdout, stderr) => {
          this.children.delete(cp);
          const status = err ? (typeof (err as any).code === 'number' ? (err as any).code : -1) : 0;
          const res: ExecResult = { status, stdout, stderr, signal: (err as any)?.signal ?? null };
          if (opts.check && status !== 0) {
            reject(new Error(`[${ns}] ${cmd} ${args.join(' ')} failed (${status}): ${stderr.trim()}`));
          } else resolve(res);
        },
      );
      this.children.add(cp);
      if (opts.input !== undefined) cp.stdin?.end(opts.input);
    });
  }

  /**
   * Start a long-running command inside a namespace. `ip netns exec` execs the
   * command, so the returned ChildProcess's pid is the command's pid. Tracked:
   * down() kills it.
   */
  spawn(role: Role | string, cmd: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess {
    const ns = this.ns(role);
    const cp = cpSpawn('ip', this.ipNetnsExecArgs(ns, cmd, args), { detached: this.detach, ...opts });
    this.children.add(cp);
    cp.once('exit', () => this.children.delete(cp));
    cp.on('error', () => this.children.delete(cp));
    return cp;
  }

  /**
   * Let this process exit while the board runs on: stop tracking every child (closing the pipes of those that
   * report to us, which were only for this process) and drop the handles that keep the event loop alive.
   */
  release(): void {
    for (const cp of this.children) {
      for (const st of [cp.stdin, cp.stdout, cp.stderr]) st?.destroy();
      cp.unref();
    }
    this.children.clear();
    this.nodeProcs.clear();
  }

  /** Log file of a node's firmware: `${runDir}/${node}.log` (appended to by every start since up()). */
  logPath(node: NodeName): string {
    return join(this.runDir, `${node}.log`);
  }

  /** What the node's firmware wrote since its latest startNode() ('' before any). */
  logSinceStart(node: NodeName): string {
    const from = this.logStart.get(node);
    if (from === undefined) return '';
    try { return readFileSync(this.logPath(node)).subarray(from).toString('utf8'); } catch { return ''; }
  }

  /**
   * Run `node argv...` (process.execPath) inside the node's namespace, stdout
   * and stderr appended to logPath(node). One firmware process per node:
   * throws if one is still running (stopNode first).
   */
  startNode(node: NodeName, argv: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const running = this.nodeProcs.get(node);
    if (running && running.exitCode === null && running.signalCode === null) {
      throw new Error(`${node}: firmware already running (pid ${running.pid}); stopNode() first`);
    }
    if (!this.powered[node]) throw new Error(`${node} is powered off; powerOn() first`);
    mkdirSync(this.runDir, { recursive: true });
    const fd = openSync(this.logPath(node), 'a');
    try {
      this.logStart.set(node, statSync(this.logPath(node)).size);
      writeSync(fd, `--- ${new Date().toISOString()} start ${node}: node ${argv.join(' ')}\n`);
      const cp = this.spawn(node, process.execPath, argv, {
        stdio: ['ignore', fd, fd],
        env: { ...process.env, DUOGATE_NODE: node, ...env },
      });
      this.nodeProcs.set(node, cp);
      return cp;
    } finally {
      closeSync(fd);
    }
  }

  /** The firmware process started by startNode, if any (running or not). */
  nodeProcess(node: NodeName): ChildProcess | undefined {
    return this.nodeProcs.get(node);
  }

  /**
   * Graceful stop: send `signal`, wait up to timeoutMs for exit, then SIGKILL
   * (and wait up to 2 s more). No-op if nothing is running.
   */
  async stopNode(node: NodeName, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<StopResult> {
    const cp = this.nodeProcs.get(node);
    if (!cp) return { code: null, signal: null, forced: false };
    if (cp.exitCode === null && cp.signalCode === null) {
      cp.kill(signal);
      if (!(await waitExit(cp, timeoutMs))) {
        cp.kill('SIGKILL');
        await waitExit(cp, 2000);
        return { code: cp.exitCode, signal: cp.signalCode, forced: true };
      }
    }
    return { code: cp.exitCode, signal: cp.signalCode, forced: false };
  }

  // ---------------------------------------------------------------- faults

  /**
   * Power cut: every process in the node's namespace is frozen, its three links
   * go down in one `ip -batch` (peers lose carrier: switch ports, and the other
   * node's sync0 via the sync cable), then all those processes get SIGKILL.
   * Resolves once they are gone (bounded ~2 s). Idempotent.
   */
  async powerOff(node: NodeName): Promise<void> {
    if (!this.powered[node]) return;
    const ns = this.nsName(node);
    const cp = this.nodeProcs.get(node);
    const pids = new Set(netnsPids(ns));
    if (cp?.pid && cp.exitCode === null && cp.signalCode === null) pids.add(cp.pid);
    killPids([...pids], 'SIGSTOP'); // nothing reacts to the link loss
    ipBatch(['link set lan0 down', 'link set wan0 down', 'link set sync0 down', 'link set guest0 down'], ns, { force: true });
    this.powered[node] = false;
    this.applySyncPorts();
    killPids([...pids], 'SIGKILL');
    await killAllIn([ns]);
    if (cp) await waitExit(cp, 2000);
  }

  /**
   * Boot after a power cut: a brand-new namespace for the node (no leftover
   * VIPs, routes, nft rules, conntrack, sysctls), the same three NICs moved
   * into it (so the switch ports and the other node's sync0 are untouched), base
   * addresses, links up, ip_forward=1. Does not start the firmware.
   * No-op if the node is on (use reboot() for a cycle).
   */
  async powerOn(node: NodeName): Promise<void> {
    if (this.powered[node]) return;
    const ns = this.nsName(node);
    const park = this.parkName(node);
    await killAllIn([ns]);
    deleteNetns([park]);
    ip(['netns', 'add', park]);
    // Moving a NIC to another namespace wipes its addresses and per-device config.
    ipBatch(['link set lan0 netns ' + park, 'link set wan0 netns ' + park, 'link set sync0 netns ' + park, 'link set guest0 netns ' + park], ns);
    ipBatch([`netns del ${ns}`, `netns add ${ns}`]);
    ipBatch(['link set lan0 netns ' + ns, 'link set wan0 netns ' + ns, 'link set sync0 netns ' + ns, 'link set guest0 netns ' + ns], park);
    ip(['netns', 'del', park]);
    this.configureNode(node);
    this.powered[node] = true;
    this.applySyncPorts();
  }

  /** powerOff then powerOn. */
  async reboot(node: NodeName): Promise<void> {
    await this.powerOff(node);
    await this.powerOn(node);
  }

  private portOf(role: Role, seg: Segment): Cable {
    const c = CABLES.find((x) => x.role === role && x.seg === seg);
    if (!c) throw new Error(`${role} has no ${seg} cable`);
    return c;
  }

  /**
   * Unplug a cable: carrier lost on that one link (both ends admin-up on the
   * node side). lan/wan: the switch port goes down; sync: both ends of the
   * sync cable go dark. Persists across powerOff/powerOn. Idempotent.
   * role may also be 'client' (lan), 'server' (wan) or 'guest' (guest).
   */
  pullCable(role: NodeName | 'client' | 'server' | 'guest', seg: Segment): void {
    const c = this.portOf(role, seg);
    this.pulled.add(`${role}:${seg}`);
    if (seg === 'sync') this.applySyncPorts();
    else ip(['link', 'set', c.port, 'down'], this.nsName(c.sw));
  }

  /** Plug the cable back in: carrier returns (if the far end is powered). */
  plugCable(role: NodeName | 'client' | 'server' | 'guest', seg: Segment): void {
    const c = this.portOf(role, seg);
    this.pulled.delete(`${role}:${seg}`);
    if (seg === 'sync') {
      this.pulled.delete(`${other(role as NodeName)}:sync`);
      this.applySyncPorts();
    } else ip(['link', 'set', c.port, 'up'], this.nsName(c.sw));
  }

  /**
   * Split-brain: take the node's port off the switch bridge (`nomaster`) while
   * carrier stays up, so frames go nowhere. 'sync' detaches the node's side of
   * the sync cable the same way. Idempotent.
   */
  isolate(role: NodeName | 'client' | 'server' | 'guest', seg: Segment): void {
    const c = this.portOf(role, seg);
    ip(['link', 'set', c.port, 'nomaster'], this.nsName(c.sw));
  }

  /** Put the port back on the bridge (undo isolate). Idempotent. */
  reconnect(role: NodeName | 'client' | 'server' | 'guest', seg: Segment): void {
    const c = this.portOf(role, seg);
    ip(['link', 'set', c.port, 'master', 'br0'], this.nsName(c.sw));
  }

  // ---------------------------------------------------------------- inspection

  /** IPv4 addresses (no prefix length) on an interface, e.g. ['192.168.1.2', '192.168.1.1']. */
  addresses(role: Role | string, ifname: string): string[] {
    return this.addressesCidr(role, ifname).map((a) => a.split('/')[0]!);
  }

  /** Same as addresses() with prefix lengths: ['192.168.1.2/24', ...]. */
  addressesCidr(role: Role | string, ifname: string): string[] {
    const out = ip(['-j', '-4', 'addr', 'show', 'dev', ifname], this.ns(role));
    const j = JSON.parse(out || '[]') as Array<{ addr_info?: Array<{ family: string; local: string; prefixlen: number }> }>;
    return j.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`));
  }

  /** Link state from `ip -j link` (operstate, flags, carrier). */
  linkState(role: Role | string, ifname: string): LinkState {
    const out = ip(['-j', 'link', 'show', 'dev', ifname], this.ns(role));
    const l = (JSON.parse(out) as any[])[0];
    const flags: string[] = l.flags ?? [];
    return {
      ifname: l.ifname,
      operstate: l.operstate,
      flags,
      up: flags.includes('UP'),
      lowerUp: flags.includes('LOWER_UP'),
      running: flags.includes('UP') && flags.includes('LOWER_UP') && !flags.includes('NO-CARRIER'),
      master: l.master,
      address: l.address,
    };
  }

  /** Does `ping -c1 -W1 dst` from `role` get an answer? */
  ping(role: Role | string, dst: string, timeoutS = 1): boolean {
    return this.exec(role, 'ping', ['-n', '-q', '-c1', `-W${timeoutS}`, dst], { timeoutMs: timeoutS * 1000 + 2000 }).status === 0;
  }

  /** True if the board's namespaces exist (checked on the filesystem). */
  exists(): boolean {
    return ROLES.some((r) => netnsExists(this.nsName(r)));
  }
}

/** Small pause helper for callers (re-exported). */
export { sleep };
