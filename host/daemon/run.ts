// `duogate run`: the daemon process. Graceful on SIGTERM/SIGINT (bow out, peer takes over at once).
import { Daemon } from './daemon.js';
import { ControlServer } from '../control/server.js';
import type { Config } from '../config/schema.js';
import { raisePriority } from './priority.js';

export async function runDaemon(config: Config): Promise<number> {
  const d = new Daemon(config);
  raisePriority(d.log);
  const control = new ControlServer(config.control.socket, d.log);
  control.handle('status', () => d.status());
  control.handle('maintenance', (req) => {
    if (req.action === 'enter') d.setMaintenance(true, String(req.by ?? 'control'));
    else if (req.action === 'leave') d.setMaintenance(false, String(req.by ?? 'control'));
    const m = d.maintenance.get();
    return m ? { on: true, since: m.since } : { on: false };
  });
  d.useControl(control);

  let stopping = false;
  const stop = async (graceful: boolean, code: number) => {
    if (stopping) return;
    stopping = true;
    try { await d.stop(graceful); await control.close(); } finally { process.exit(code); }
  };
  process.on('SIGTERM', () => void stop(true, 0));
  process.on('SIGINT', () => void stop(true, 0));
  process.on('uncaughtException', (e) => { d.log.error('fatal error, going down', { err: e, stack: e.stack }); void stop(false, 1); });

  try {
    await d.start();
  } catch (e) {
    // A feature that cannot start (e.g. a ruleset the kernel refuses) must not leave a node holding VIPs
    // without it: release, bow out and exit non-zero so the supervisor (systemd) restarts us.
    d.log.error('start failed, going down', { err: e });
    await stop(true, 1);
  }
  await control.listen();
  d.log.info('control socket ready', { socket: config.control.socket });
  return await new Promise<number>(() => {}); // runs until a signal
}
