// Features beside CARP (firewall, state sync, config sync, DHCP, telemetry) plug into the daemon as services.
import type { Daemon } from './daemon.js';

export interface Service {
  readonly name: string;
  /** Called once after CARP is up. Throwing stops CARP and the services started so far, and fails the start. */
  start(d: Daemon): Promise<void> | void;
  /** Graceful: the daemon is stopping on purpose (the peer takes over); otherwise it is going down hard. */
  stop(graceful: boolean): Promise<void> | void;
  /** A JSON-able section for `duogate status`. */
  status(): Record<string, unknown>;
}
