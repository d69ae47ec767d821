// Features add their part of the virtual-board demo as a plugin: hooks called at fixed moments of the
// failover story, and figures merged into the demo's JSON report.
import type { VirtualBoard } from '../board.js';
import type { NodeConfig } from '../firmware.js';

export interface DemoContext {
  board: VirtualBoard;
  /** Path of the compiled CLI (dist/host/cli.js), to run `duogate ...` inside a node: board.exec(node, process.execPath, [ctx.cli, ...]). */
  cli: string;
  /** Control socket of each node's daemon. */
  socket: Record<'primary' | 'secondary', string>;
  /** Config file each node's daemon was started with. */
  configFile: Record<'primary' | 'secondary', string>;
  /** Print a line of the human-readable report. */
  say(line: string): void;
  /** `duogate status --json` of a node (throws if the daemon does not answer). */
  status(node: 'primary' | 'secondary'): Promise<any>;
  /** Start (or restart) a node's firmware with the demo's config and wait until its control socket answers. */
  startFirmware(node: 'primary' | 'secondary'): Promise<void>;
  /** A node's CARP transitions so far, from its log (wall_ms: when). */
  transitions(node: 'primary' | 'secondary'): { vhid: number; from: string; to: string; wall_ms: number }[];
}

/** The story being told: the options that change the board's configs. */
export interface DemoMode { mac: 'real' | 'virtual'; wan: 'static' | 'dhcp' }

export interface DemoPlugin {
  name: string;
  /** Add the feature's part to a node's config (the board's committed one, edited before the firmware starts). */
  configure?(c: NodeConfig, node: 'primary' | 'secondary', mode: DemoMode): void;
  /** The board is up, no firmware runs yet: set up the clients' side (addresses, routes, sysctls). */
  prepare?(board: VirtualBoard): void;
  /** Both nodes run and the primary is MASTER of every VIP. Start clients, sessions, subscribers here. */
  setup?(ctx: DemoContext): Promise<void>;
  /** Just before the primary is powered off. */
  beforePowerOff?(ctx: DemoContext): Promise<void>;
  /** The secondary holds every VIP after the power-off. */
  afterTakeover?(ctx: DemoContext): Promise<void>;
  /** The primary is back and holds every VIP again. */
  afterFailback?(ctx: DemoContext): Promise<void>;
  /** Stop what setup started; return the figures for the JSON report (keys as the issues name them). */
  finish?(ctx: DemoContext): Promise<Record<string, unknown>>;
}
