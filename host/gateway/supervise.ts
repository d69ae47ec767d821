// A supervised child process (Kea, unbound): started by the daemon in its own namespace, restarted with
// exponential backoff when it dies, stopped with the daemon. Its output becomes structured log lines.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Logger } from '../log.js';

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
  private timer: NodeJS.Timeout | null = null;
  private backoff: number;
  private startedAt = 0;
  restarts = 0;
  lastExit: { code: number | null; signal: string | null; at: string } | null = null;

  constructor(private readonly o: SuperviseOptions) { this.backoff = o.backoffMinMs ?? 500; }

  get pid(): number | undefined { return this.cp?.pid; }
  get running(): boolean { return !!this.cp && this.cp.exitCode === null && this.cp.signalCode === null; }

  start(): void {
    this.stopping = false;
    killOrphan(this.o.pidFile, this.o.cmd, this.o.log);
    this.launch();
  }

  private launch(): void {
    if (this.stopping) return;
    try { this.o.beforeStart?.(); } catch (e) { this.o.log.error(`${this.o.name}: cannot start`, { err: e }); return; }
    const cp = spawn(this.o.cmd, this.o.args, { env: { ...process.env, ...this.o.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.cp = cp;
    this.startedAt = Date.now();
    cp.on('error', (e) => this.o.log.error(`${this.o.name}: spawn failed`, { cmd: this.o.cmd, err: e }));
    if (cp.pid) writeFileSync(this.o.pidFile, String(cp.pid));
    for (const s of [cp.stdout!, cp.stderr!]) {
      createInterface({ input: s }).on('line', (line) => {
        // Kea writes "INFO  [..] CODE ...", unbound "info: ..." / "error: ...".
        const lvl = /\b(ERROR|FATAL|WARN|error:|fatal|warning:)/.test(line) ? 'warn'
          : this.o.routine?.test(line) ? 'debug' : /\b(INFO|notice:)/.test(line) ? 'info' : 'debug';
        this.o.log.log(lvl, `${this.o.name} output`, { line: line.slice(0, 500) });
      });
    }
    this.o.log.info(`${this.o.name} started`, { pid: cp.pid, restarts: this.restarts });
    cp.once('exit', (code, signal) => {
      this.lastExit = { code, signal, at: new Date().toISOString() };
      rmSync(this.o.pidFile, { force: true });
      if (this.stopping) return;
      if (Date.now() - this.startedAt >= (this.o.stableMs ?? 30_000)) this.backoff = this.o.backoffMinMs ?? 500;
      this.o.log.warn(`${this.o.name} died; restarting`, { code, signal, in_ms: this.backoff, restarts: this.restarts });
      this.timer = setTimeout(() => { this.timer = null; this.restarts++; this.launch(); }, this.backoff);
      this.backoff = Math.min(this.backoff * 2, this.o.backoffMaxMs ?? 30_000);
    });
  }

  /** Restart now (new config): stop, then start again at once. */
  async restart(): Promise<void> { await this.stop(); this.start(); }

  async stop(timeoutMs = 3000): Promise<void> {
    this.stopping = true;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    const cp = this.cp;
    if (!cp || cp.exitCode !== null || cp.signalCode !== null) return;
    const gone = new Promise<void>((r) => cp.once('exit', () => r()));
    cp.kill('SIGTERM');
    const t = setTimeout(() => cp.kill('SIGKILL'), timeoutMs);
    await gone;
    clearTimeout(t);
  }

  status(): Record<string, unknown> {
    return { running: this.running, pid: this.pid ?? null, restarts: this.restarts, last_exit: this.lastExit };
  }
}

/** A child left by a daemon that died hard: stop it by its recorded pid, if that pid is still the same program. */
function killOrphan(pidFile: string, cmd: string, log: Logger): void {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  rmSync(pidFile, { force: true });
  if (!Number.isInteger(pid) || pid <= 1) return;
  let exe = '';
  try { exe = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? ''; } catch { return; }
  if (!exe.endsWith(cmd.split('/').pop()!)) return;
  log.warn('stopping a child left behind by an earlier run', { pid, cmd });
  try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
}
