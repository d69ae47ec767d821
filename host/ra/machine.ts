// When to send router advertisements (RFC 4861 §6.2.4-6.2.6), fed time and events, deciding only: no socket, no
// clock. The MASTER of the router vhid advertises; a BACKUP never does. On becoming MASTER it advertises at once
// and then MAX_INITIAL_RTR_ADVERTISEMENTS times at most 16 s apart (clients learn the new master fast), then at
// random intervals in [min, max]. A router solicitation is answered after a random delay of up to 0.5 s, never
// sooner than 3 s after the previous advertisement (multicast answers, §6.2.6).
export const MAX_INITIAL_RTR_ADVERTISEMENTS = 3;
export const MAX_INITIAL_RTR_ADVERT_INTERVAL_MS = 16_000;
export const MAX_RA_DELAY_TIME_MS = 500;
export const MIN_DELAY_BETWEEN_RAS_MS = 3_000;

export class RaMachine {
  active = false;
  nextAt = -1;
  lastSentAt = -1;
  private initialLeft = 0;
  sent = 0;
  solicited = 0;

  /** `random()` in [0, 1): the host's entropy (tests give a seeded one). */
  constructor(readonly minMs: number, readonly maxMs: number, private readonly random: () => number) {}

  /** MASTER of the router vhid (true) or not. */
  setActive(now: number, on: boolean): void {
    if (on === this.active) return;
    this.active = on;
    if (on) { this.initialLeft = MAX_INITIAL_RTR_ADVERTISEMENTS; this.nextAt = now; } else this.nextAt = -1;
  }

  onSolicit(now: number): void {
    if (!this.active) return;
    this.solicited++;
    let at = now + this.random() * MAX_RA_DELAY_TIME_MS;
    if (this.lastSentAt >= 0 && at < this.lastSentAt + MIN_DELAY_BETWEEN_RAS_MS) at = this.lastSentAt + MIN_DELAY_BETWEEN_RAS_MS;
    if (this.nextAt < 0 || at < this.nextAt) this.nextAt = at;
  }

  /** True when an advertisement is due at `now` (the caller sends it); schedules the next. */
  poll(now: number): boolean {
    if (!this.active || this.nextAt < 0 || now < this.nextAt) return false;
    this.lastSentAt = now;
    this.sent++;
    let interval = this.minMs + this.random() * (this.maxMs - this.minMs);
    if (this.initialLeft > 0) { this.initialLeft--; if (interval > MAX_INITIAL_RTR_ADVERT_INTERVAL_MS) interval = MAX_INITIAL_RTR_ADVERT_INTERVAL_MS; }
    this.nextAt = now + interval;
    return true;
  }

  /** When poll() must next be called (-1: nothing scheduled). */
  nextTimeout(): number { return this.active ? this.nextAt : -1; }
}
