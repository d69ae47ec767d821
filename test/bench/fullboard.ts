// The virtual board with the full default node configs (board/virtual/primary.yaml, secondary.yaml: firewall,
// NAT, Kea, unbound, config sync, peer heartbeat, state sync, MQTT), an MQTT broker in the client namespace and
// a TCP echo server on the WAN server, for the benches that judge the daemon as it runs on a box
// (carp-timing.ts, idle.ts). The configs are copied into the board's run directory so `config apply` (which
// rewrites the file the daemon was started with) never touches the repo's files.
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { VirtualBoard, type NodeName } from '../../board/virtual/board.js';
import { Firmware, ROOT, allAre, sleep, waitFor } from '../../board/virtual/firmware.js';
import { MqttLab } from '../../board/virtual/demo/telemetry.js';
import { request } from '../../host/control/client.js';

export const NODE_ADDR: Record<NodeName, { lan: string; sync: string }> = {
  primary: { lan: '192.168.1.2', sync: '172.16.1.1' },
  secondary: { lan: '192.168.1.3', sync: '172.16.1.2' },
};
export const ECHO_PORT = 5000;

/** `node` arguments for a tool of this repo, from dist (compiled) or with tsx (sources). */
export function toolArgs(script: string): string[] {
  const ts = import.meta.url.endsWith('.ts');
  return ts ? ['--import', 'tsx', path.join(ROOT, script + '.ts')] : [path.join(ROOT, 'dist', script + '.js')];
}

export class FullBoard {
  readonly board: VirtualBoard;
  readonly fw: Firmware;
  readonly mqtt: MqttLab;

  constructor(prefix: string) {
    this.board = new VirtualBoard({ prefix });
    this.fw = new Firmware(this.board);
    this.mqtt = new MqttLab(this.board);
  }

  async up(): Promise<void> {
    await this.board.up();
    this.fw.resetState();
    for (const n of ['primary', 'secondary'] as NodeName[]) {
      const f = path.join(this.board.runDir, `${n}.yaml`);
      copyFileSync(path.join(ROOT, 'board/virtual', `${n}.yaml`), f);
      this.fw.configOverride[n] = f;
    }
    this.board.spawn('server', process.execPath, [...toolArgs('board/virtual/tcpload'), 'server', '--port', String(ECHO_PORT)], { stdio: 'ignore' });
  }

  /** The board's config file of a node as it was committed (the copy the daemon may have rewritten since). */
  committedConfig(n: NodeName): string { return readFileSync(path.join(ROOT, 'board/virtual', `${n}.yaml`), 'utf8'); }

  async status(n: NodeName): Promise<any> { return await request(this.fw.socket(n), { cmd: 'status' }, 5000); }

  /** Poll a node's status until `fn` holds (bounded); throws with the log's tail otherwise. */
  async until(n: NodeName, fn: (s: any) => boolean, ms: number, what: string): Promise<any> {
    return await waitFor(`${n}: ${what}`, async () => { const s = await this.status(n); return fn(s) ? s : null; }, ms, 100, () => this.fw.tail(n));
  }

  /** Both daemons up, primary MASTER, secondary BACKUP holding the primary's table. */
  async startPair(): Promise<void> {
    await Promise.all([this.fw.start('primary', 20_000), this.fw.start('secondary', 20_000)]);
    if (!await this.fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 20_000)) throw new Error(`the pair did not converge\n${this.fw.tail('primary')}`);
    await this.until('secondary', (s) => s.statesync?.bulk?.state === 'done', 20_000, 'initial bulk');
  }

  pid(n: NodeName): number {
    const p = this.board.nodeProcess(n)?.pid;
    if (!p) throw new Error(`${n}: no daemon process`);
    return p;
  }

  /** Control request to a node's daemon. */
  async control(n: NodeName, req: Record<string, unknown>, ms = 30_000): Promise<any> { return await request(this.fw.socket(n), req, ms); }

  async down(): Promise<void> {
    await this.mqtt.stop().catch(() => {});
    await this.board.down();
  }
}

/** CPU time (user + system) of a process in seconds, from /proc/PID/stat (clock ticks of 1/100 s). */
export function cpuSeconds(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // fields 14 and 15 of stat(5), after pid and comm
}

/** Resident set size in MB (VmRSS of /proc/PID/status). */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export interface Usage { seconds: number; cpu_pct: number; rss_mb_min: number; rss_mb_max: number }

/** Sample processes for `ms`: CPU share of one core over the window, RSS min/max (sampled every second). */
export async function sampleUsage(pids: Record<string, number>, ms: number): Promise<Record<string, Usage>> {
  const t0 = performance.now();
  const c0 = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuSeconds(p)]));
  const rss: Record<string, number[]> = Object.fromEntries(Object.keys(pids).map((k) => [k, [] as number[]]));
  for (let i = 0; i < Math.ceil(ms / 1000) + 1 && performance.now() - t0 < ms; i++) {
    for (const [k, p] of Object.entries(pids)) rss[k].push(rssMb(p));
    await sleep(Math.min(1000, ms - (performance.now() - t0)));
  }
  const secs = (performance.now() - t0) / 1000;
  const out: Record<string, Usage> = {};
  for (const [k, p] of Object.entries(pids)) {
    rss[k].push(rssMb(p));
    out[k] = {
      seconds: Math.round(secs), cpu_pct: Math.round(((cpuSeconds(p) - c0[k]) / secs) * 1000) / 10,
      rss_mb_min: Math.round(Math.min(...rss[k])), rss_mb_max: Math.round(Math.max(...rss[k])),
    };
  }
  return out;
}
