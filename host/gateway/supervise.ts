// A supervised child process (Kea, unbound): started by the daemon in its own namespace, restarted with
// exponential backoff when it dies, stopped with the daemon. Its output becomes structured log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Logger } from '../log.js';
import { atNormalPriority } from '../daemon/priority.js';

/**
 * Lines of a child's output logged per second, in bursts of up to OUTPUT_BURST. Kea logs an error for every
 * malformed packet, so a LAN host sending garbage to port 67 would otherwise write hundreds of lines a second
 * into the daemon's log (stdout writes are synchronous: on the event loop CARP runs on) and fill the disk.
 * Lines over the budget are counted and summarised once a second.
 */
export const OUTPUT_RATE = 20;
export const OUTPUT_BURST = 100;

export interface SuperviseOptions {
  name: string;
  cmd: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  log: Logger;
  /** Where the child's pid is recorded, so a child orphaned by a crashed daemon is found and stopped. */
  pidFile: string;
  /** Called before each (re)start; throwing stops the restart loop with that error logged. */
  beforeStart?: () => void;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** A run at least this long resets the backoff. */
  stableMs?: number;
  /** Output lines the child writes all the time in normal operation: logged at debug, so an idle node's log stays small. */
  routine?: RegExp;
}

export class Supervised {
  private cp: ChildProcess | null = null;
  private stopping = false;
  /** The child a stop() is waiting on (SIGTERM sent, exit not seen yet). */
  private retiring: ChildProcess | null = null;
  private timer: NodeJS.Timeout | null = null;
  private backoff: number;
  private startedAt = 0;
  private tokens = OUTPUT_BURST;
  private tokensAt = 0;
  private suppressed = 0;
  private summary: NodeJS.Timeout | null = null;
  /** Output lines not logged because of the rate limit, ever. */
  outputSuppressed = 0;
  restarts = 0;
  lastExit: { code: number | null; signal: string | null; at: string } | null = null;

  constructor(private readonly o: SuperviseOptions) { this.backoff = o.backoffMinMs ?? 500; }

  get pid(): number | undefined { return this.cp?.pid; }
  get running(): boolean { return !!this.cp && this.cp.exitCode === null && this.cp.signalCode === null; }

  /**
   * Make sure the child runs. Idempotent: a running child is kept, a pending restart happens now. Start and stop
   * come from CARP transitions and alarms, so they can cross: only the current child's exit counts.
   */
  start(): void {
    this.stopping = false;
    // A stop in progress starts the child again once the old one is gone (stop below).
    if (this.retiring || this.running) return;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    killOrphan(this.o.pidFile, this.o.cmd, this.o.log, this.cp?.pid);
    this.launch();
  }

  private launch(): void {
    if (this.stopping) return;
    try { this.o.beforeStart?.(); } catch (e) { this.o.log.error(`${this.o.name}: cannot start`, { err: e }); return; }
    const [cmd, args] = atNormalPriority(this.o.cmd, this.o.args);
    const cp = spawn(cmd, args, { env: { ...process.env, ...this.o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.cp = cp;
    this.startedAt = performance.now();
    cp.on('error', (e) => this.o.log.error(`${this.o.name}: spawn failed`, { cmd: this.o.cmd, err: e }));
    if (cp.pid) writeFileSync(this.o.pidFile, String(cp.pid));
    for (const s of [cp.stdout!, cp.stderr!]) {
      createInterface({ input: s }).on('line', (line) => this.output(line));
    }
    this.o.log.info(`${this.o.name} started`, { pid: cp.pid, restarts: this.restarts });
    cp.once('exit', (code, signal) => {
      // A child replaced meanwhile (stopped, then started again before it was gone): its exit is not news.
      if (cp !== this.cp) return;
      this.lastExit = { code, signal, at: new Date().toISOString() };
      rmSync(this.o.pidFile, { force: true });
      if (this.stopping || cp === this.retiring) return;
      if (performance.now() - this.startedAt >= (this.o.stableMs ?? 30_000)) this.backoff = this.o.backoffMinMs ?? 500;
      this.o.log.warn(`${this.o.name} died; restarting`, { code, signal, in_ms: this.backoff, restarts: this.restarts });
      this.timer = setTimeout(() => { this.timer = null; this.restarts++; this.launch(); }, this.backoff);
      this.backoff = Math.min(this.backoff * 2, this.o.backoffMaxMs ?? 30_000);
    });
  }

  private output(line: string): void {
    const now = performance.now(); // monotonic: a stepped wall clock must not empty the bucket for a day
    this.tokens = Math.min(OUTPUT_BURST, this.tokens + ((now - this.tokensAt) * OUTPUT_RATE) / 1000);
    this.tokensAt = now;
    if (this.tokens < 1) {
      this.suppressed++; this.outputSuppressed++;
      this.summary ??= setTimeout(() => this.flushSuppressed(), 1000);
      return;
    }
    this.tokens--;
    // Kea writes "INFO  [..] CODE ...", unbound "info: ..." / "error: ...".
    const lvl = /\b(ERROR|FATAL|WARN|error:|fatal|warning:)/.test(line) ? 'warn'
      : this.o.routine?.test(line) ? 'debug' : /\b(INFO|notice:)/.test(line) ? 'info' : 'debug';
    this.o.log.log(lvl, `${this.o.name} output`, { line: line.slice(0, 500) });
  }

  private flushSuppressed(): void {
    this.summary = null;
    if (this.suppressed === 0) return;
    this.o.log.warn(`${this.o.name} output suppressed`, { lines: this.suppressed, limit_per_s: OUTPUT_RATE, total: this.outputSuppressed });
    this.suppressed = 0;
  }

  /** Restart now (new config): stop, then start again at once. */
  async restart(): Promise<void> { await this.stop(); this.start(); }

  async stop(timeoutMs = 3000): Promise<void> {
    this.stopping = true;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.summary) { clearTimeout(this.summary); this.flushSuppressed(); }
    const cp = this.cp;
    if (!cp || cp.exitCode !== null || cp.signalCode !== null) return;
    const gone = new Promise<void>((r) => cp.once('exit', () => r()));
    if (this.retiring !== cp) { this.retiring = cp; cp.kill('SIGTERM'); }
    const t = setTimeout(() => cp.kill('SIGKILL'), timeoutMs);
    await gone;
    clearTimeout(t);
    if (this.retiring !== cp) return;
    this.retiring = null;
    // Started again while this one was on its way out: now that it is gone (its lock files free), start anew.
    if (!this.stopping) this.launch();
  }

  status(): Record<string, unknown> {
    return { running: this.running, pid: this.pid ?? null, restarts: this.restarts, last_exit: this.lastExit, output_suppressed: this.outputSuppressed };
  }
}

/** A child left by a daemon that died hard: stop it by its recorded pid, if that pid is still the same program. */
function killOrphan(pidFile: string, cmd: string, log: Logger, ours?: number): void {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  rmSync(pidFile, { force: true });
  // Our own child still on its way out (a stop that has not seen it exit yet) is not an orphan: stop() ends it.
  if (!Number.isInteger(pid) || pid <= 1 || pid === ours) return;
  let exe = '';
  try { exe = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? ''; } catch { return; }
  if (!exe.endsWith(cmd.split('/').pop()!)) return;
  log.warn('stopping a child left behind by an earlier run', { pid, cmd });
  try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
}
