// Runs the prober in the LAN client (or another client namespace: `from`) and turns its reply stream into the outage figures the issues ask for:
// the longest gap between two consecutive replies around an event, and the echoes lost.
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Role, VirtualBoard } from './board.js';
import { ROOT } from './firmware.js';

export interface Reply { seq: number; sent: number; recv: number }

export class Pinger {
  replies: Reply[] = [];
  summary: { sent: number; received: number; lost: number; interval_ms: number; via: string } | null = null;
  private proc: ChildProcess | null = null;

  constructor(private readonly board: VirtualBoard, readonly intervalMs = 10, readonly dst = '203.0.113.10', readonly from: Role = 'client') {}

  start(durationMs: number): void {
    const prober = path.join(ROOT, 'dist/board/virtual/prober.js');
    this.proc = this.board.spawn(this.from, process.execPath, [prober, '--dst', this.dst, '--interval', String(this.intervalMs), '--duration-ms', String(durationMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      try {
        const o = JSON.parse(line);
        if (o.summary) this.summary = o; else this.replies.push(o);
      } catch { /* not ours */ }
    });
  }

  async stop(): Promise<void> {
    if (!this.proc || this.proc.exitCode !== null) return;
    const p = this.proc;
    const done = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await Promise.race([done, new Promise((r) => setTimeout(r, 3000))]);
  }

  /**
   * Outage around an event in [from, to] (wall ms): the longest gap between consecutive replies where the gap
   * overlaps the window, and the echoes sent in it that never came back.
   */
  outage(from: number, to: number): { gap_ms: number; lost: number } {
    const r = [...this.replies].sort((a, b) => a.recv - b.recv);
    let gap = 0;
    for (let i = 1; i < r.length; i++) {
      if (r[i].recv >= from && r[i - 1].recv <= to) gap = Math.max(gap, r[i].recv - r[i - 1].recv);
    }
    // Loops, not Math.max(...xs): a long run holds hundreds of thousands of replies, more than a call's arguments.
    let inLo = Infinity, inHi = -Infinity, beforeHi = -Infinity, afterLo = Infinity;
    for (const x of r) {
      if (x.sent < from) beforeHi = Math.max(beforeHi, x.seq);
      else if (x.sent > to) afterLo = Math.min(afterLo, x.seq);
      else { inLo = Math.min(inLo, x.seq); inHi = Math.max(inHi, x.seq); }
    }
    let lost = 0;
    if (inHi >= inLo) {
      const lo = beforeHi > -Infinity ? beforeHi : inLo;
      const hi = afterLo < Infinity ? afterLo : inHi;
      const got = new Set(r.map((x) => x.seq));
      for (let s = lo + 1; s < hi; s++) if (!got.has(s)) lost++;
    }
    return { gap_ms: Math.round(gap), lost };
  }
}
