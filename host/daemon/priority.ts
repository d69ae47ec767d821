// The daemon's scheduling priority. CARP is timing: a master whose advert timer fires late looks dead to its
// backup. The daemon needs little CPU (10-25 % of a core under the floods of docs/gateway.md "Under flood"),
// but at nice 0 it waits its turn behind whatever a flood makes busy on the same box: Kea and unbound
// answering garbage, TLS handshakes, packet forwarding. At nice -10 it runs soon after its timer fires. Not
// real-time: a runaway loop in it must not starve the kernel's own threads. The supervised children (Kea,
// unbound) start back at nice 0 (supervise.ts): what a flood makes them do must not compete with CARP.
import os from 'node:os';
import type { Logger } from '../log.js';

export const DAEMON_NICE = -10;

/** Raise the calling thread (the event loop; Linux nice is per thread) to DAEMON_NICE. Logs and goes on if not allowed. */
export function raisePriority(log: Logger): void {
  try {
    os.setPriority(0, DAEMON_NICE);
  } catch (e) {
    log.warn('cannot raise the daemon\'s scheduling priority; CARP timing may suffer on a saturated box', { nice: DAEMON_NICE, err: e });
  }
}

/** argv that starts `cmd` at nice 0 from a thread running at `current` nice (via nice(1), which execs it). */
export function atNormalPriority(cmd: string, args: string[], current = os.getPriority(0)): [string, string[]] {
  return current < 0 ? ['nice', ['-n', String(-current), cmd, ...args]] : [cmd, args];
}
