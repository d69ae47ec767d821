// The primary's push queue: asynchronous (a dead or slow secondary never blocks a commit), coalescing (a burst
// of commits becomes one push of the latest revision), retried with exponential backoff and jitter until it
// succeeds. A new commit restarts the backoff: the new config may be the one that fixes a rejection.
export interface PushQueueOptions { minMs: number; maxMs: number; coalesceMs?: number }

export class PushQueue {
  private wanted = false;
  private running = false;
  private timer: NodeJS.Timeout | null = null;
  private wake: (() => void) | null = null;
  private stopped = false;
  attempt = 0;
  /** ms until the next retry while waiting after a failure, else null. */
  nextRetryAt: number | null = null;

  constructor(private readonly push: () => Promise<void>, private readonly o: PushQueueOptions,
    private readonly onFailure: (e: unknown, attempt: number, retryInMs: number) => void) {}

  /** A commit happened (or a retry is wanted): push the latest soon. */
  kick(): void {
    if (this.stopped) return;
    this.wanted = true;
    this.attempt = 0;
    if (this.wake) { const w = this.wake; this.wake = null; w(); return; }
    if (this.running || this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; void this.loop(); }, this.o.coalesceMs ?? 20);
  }

  get busy(): boolean { return this.running || this.timer !== null; }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.wanted && !this.stopped) {
        this.wanted = false;
        try {
          await this.push();
          this.attempt = 0;
        } catch (e) {
          this.attempt++;
          const base = Math.min(this.o.maxMs, this.o.minMs * 2 ** Math.min(this.attempt - 1, 20));
          const delay = Math.round(base * (0.8 + Math.random() * 0.4));
          this.onFailure(e, this.attempt, delay);
          this.wanted = true;
          this.nextRetryAt = performance.now() + delay;
          await new Promise<void>((r) => { const t = setTimeout(r, delay); this.wake = () => { clearTimeout(t); r(); }; });
          this.wake = null;
          this.nextRetryAt = null;
        }
      }
    } finally { this.running = false; }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.wake) this.wake();
  }
}
