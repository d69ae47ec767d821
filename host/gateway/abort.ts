// A gateway service that cannot start must not leave CARP running: the node would take the VIPs without its
// ruleset (or DHCP/DNS). The Service contract says a throw stops the daemon start, but the daemon has already
// started CARP by then, so the service stops the daemon itself before rethrowing. Daemon.stop is idempotent.
import type { Daemon } from '../daemon/daemon.js';

export async function abortStart(d: Daemon, service: string, err: unknown): Promise<never> {
  d.log.error('service failed to start; stopping the daemon so the peer keeps the VIPs', { service, err });
  try { await d.stop(false); } catch { /* already logged by the daemon */ }
  throw err;
}
