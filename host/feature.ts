// What a feature is to the rest of the firmware, and the narrow face of the daemon it gets.
//
// Each feature folder (host/gateway/firewall, host/configsync, ...) exports one `feature: Feature`: its config
// sections with their JSON Schemas, its `duogate check` findings, which of its sections config sync carries,
// the figures telemetry and the console read from its status section, and how to start it. host/features.ts
// lists them in start order and is the only module that imports them all; the config loader, `check`, config
// sync, the daemon, telemetry and the console read that list. A feature sees the daemon only through
// FeatureHost, so what a feature may touch is written here, not spread over the daemon's members.
import type { Config, NetName } from './config/schema.js';
import type { Finding } from './config/check.js';
import type { Logger } from './log.js';
import type { Handler } from './control/server.js';
import type { StateName, VhidStatus, WhyCode } from './core/core.js';
import type { ApplyTracker } from './daemon/apply.js';
import type { Lease } from './wan/dhcp/machine.js';

/** A running feature, as the daemon keeps it. */
export interface Service {
  readonly name: string;
  /** Graceful: the daemon is stopping on purpose (the peer takes over); otherwise it is going down hard. */
  stop(graceful: boolean): Promise<void> | void;
  /** A JSON-able section for `duogate status` (under the service's name). */
  status(): Record<string, unknown>;
}

/** A CARP state change of one vhid. `reason` is the core's code (Why); `why` is its wording for people. */
export interface Transition {
  vhid: number; interface: NetName; address: string[]; from: StateName; to: StateName;
  reason: WhyCode; why: string; at: string; mono: number;
}

/** What `host.emit('alarm', ...)` carries (the peer health alarms); telemetry publishes it as an event. */
export interface AlarmEvent { source: string; name: string; key: string; active: boolean; message: string; vhid?: number; at: string; node: string }

/** The daemon's events a feature may follow, with what each carries. */
export interface HostEvents {
  /** A CARP state change (one per vhid). */
  transition: [t: Transition];
  /**
   * The running config changed (live apply, config sync): the new one and the one before, and when the change
   * must be answered for (config sync), a tracker each service registers its apply with (daemon/apply.ts).
   */
  config: [next: Config, prev: Config, tracker?: ApplyTracker];
  /** Persistent maintenance mode entered (true) or left. */
  maintenance: [on: boolean];
  /** A pair-health alarm raised or cleared (the peer feature emits them). */
  alarm: [ev: AlarmEvent];
  /** Carrier of the dedicated sync link changed. */
  'sync-link': [running: boolean];
  /** The WAN lease this MASTER holds, for the peer (host/wan), null once it is lost; the peer feature carries it. */
  'wan-lease': [vhid: number, lease: Lease | null];
  /** The WAN lease the peer's heartbeat carried, moved into this node's timebase (host/peer). */
  'peer-wan-lease': [vhid: number, lease: Lease | null];
}

/**
 * The daemon as a feature sees it. Everything else (sockets, the core, the VIPs) stays the daemon's.
 * Listeners must be removed with off() in the service's stop(): a feature can be stopped while the daemon runs
 * (its section removed by config sync).
 */
export interface FeatureHost {
  /** The running config (it changes on a live apply: read it when needed, do not keep it). */
  readonly config: Config;
  readonly log: Logger;
  /** Monotonic milliseconds (the CARP core's clock). */
  now(): number;
  /**
   * Register a control-socket command (`duogate ...` and the console talk to it); ignored without a socket.
   * Returns what unregisters it: call it in the service's stop(), or the command reaches a stopped service.
   */
  handle(cmd: string, h: Handler): () => void;
  on<E extends keyof HostEvents>(event: E, fn: (...a: HostEvents[E]) => void): unknown;
  off<E extends keyof HostEvents>(event: E, fn: (...a: HostEvents[E]) => void): unknown;
  emit<E extends keyof HostEvents>(event: E, ...a: HostEvents[E]): boolean;
  /** Raise or clear a CARP demotion reason (Demote.* from the core), e.g. while a bulk state sync runs. */
  demote(reason: number, on: boolean): void;
  /** Node role as pfSense shows it: MASTER, BACKUP, MIXED or NONE. */
  role(): string;
  /** Every vhid's CARP state, as the core reports it. */
  vhidStatus(): VhidStatus[];
  /** Persistent maintenance mode: when and by whom it was entered, or null. */
  maintenanceState(): { since: string; by: string } | null;
  setMaintenance(on: boolean, by: string): void;
  /**
   * The alarms raised through emit('alarm') and not cleared since: a feature started while the daemon runs
   * learns what it missed (the events came before it listened).
   */
  activeAlarms(): AlarmEvent[];
  /** Carrier of the dedicated sync link (a hint that the peer is alive). */
  syncLinkUp(): boolean;
  /**
   * Give a vhid of one VIP this address (address/prefix) in the running config, now and in every config taken
   * live after (a WAN address leased by DHCP, host/wan): moved in place, no flap; 'config' is emitted.
   */
  pinVip(vhid: number, address: string): void;
  /** Take a new config live (the daemon applies CARP's part and emits 'config'); config sync calls it. */
  reconfigure(next: Config, tracker?: ApplyTracker): { added: number[]; removed: number[]; unchanged: number[] };
  /** The whole `duogate status` object (telemetry publishes it). */
  status(): Record<string, unknown>;
}

/** The figures telemetry and the console show for the pair (each null when no feature reports it). */
export interface Figures {
  config_in_sync: 'ON' | 'OFF' | null; state_sync_ok: 'ON' | 'OFF' | null; states: number | null;
  dhcp_ha_state: string | null; dhcp_leases: number | null;
}

/** Text helpers the console lends a feature for its part of the "Sync:" line. */
export interface Paint { red(s: string): string; yellow(s: string): string; green(s: string): string }

export interface Feature {
  /** The feature's name; its running service reports under it in `duogate status`. */
  readonly name: string;
  /**
   * Top-level config sections it owns, each with its JSON Schema (an unknown top-level key stays an error). A
   * schema that depends on the other features is given as a function, called when the loader builds the schema.
   */
  readonly sections: Readonly<Record<string, object | (() => object)>>;
  /** Which of its sections config sync may carry to the secondary; the others are node-local. */
  readonly synced?: readonly string[];
  /** A per-node rewrite of a synced section on its way to the secondary. */
  readonly transforms?: Readonly<Record<string, (value: unknown, from: Config) => unknown>>;
  /** `duogate check` findings on one node's config, and across the pair when `peer` is given. */
  check?(c: Config, peer?: Config): Finding[];
  /** Whether the config asks for the feature to run (its section present and enabled). */
  wanted(c: Config): boolean;
  /**
   * Before CARP and any feature start: the config to start from, when it is more than the file (config sync: a
   * secondary's synced sections). Must not throw: a problem is logged and `c` returned.
   */
  bootConfig?(c: Config, log: Logger): Promise<Config>;
  /**
   * Start it on `host`; null when the config does not ask for it. A throw fails the daemon's start, and must
   * leave nothing running (lazyService below stops a half-started service).
   */
  start(host: FeatureHost): Promise<Service | null>;
  /**
   * Its node-local sections (the ones config sync does not carry) are read at start only. When one changes
   * live: true, the daemon stops and starts the feature; otherwise it logs and shows that a restart is needed.
   */
  readonly restartOnChange?: boolean;
  /** Figures for telemetry and the console from its own status section (absent when it does not run). */
  figures?(section: Record<string, any>): Partial<Figures>;
  /** Its own part of the console's "Sync:" line (after the figures above), or null for none. */
  consoleText?(section: Record<string, any>, p: Paint): string | null;
}

/** A service before it runs: what lazyService starts. */
export interface Startable extends Service { start(host: FeatureHost): Promise<void> | void }

/**
 * A Feature's `start`: null when `wanted` says no; otherwise the service `make` builds (it imports the service
 * module, so a feature that does not run loads none of its code), started on the host. A start that throws can
 * leave listeners, sockets and watches behind (and a live retry would add more each time), so the
 * half-started service is stopped before the error goes on.
 */
export function lazyService(wanted: (c: Config) => boolean, make: (host: FeatureHost) => Promise<Startable>): (host: FeatureHost) => Promise<Service | null> {
  return async (host) => {
    if (!wanted(host.config)) return null;
    const s = await make(host);
    try {
      await s.start(host);
    } catch (e) {
      try { await s.stop(false); } catch (e2) { host.log.error('service stop after a failed start failed', { service: s.name, err: e2 }); }
      throw e;
    }
    return s;
  };
}
