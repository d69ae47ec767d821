#!/usr/bin/env node
// duogate command line: the daemon (run) and the tools that talk to it over the control socket.
import { parseArgs } from 'node:util';
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { loadConfig, ConfigError } from './config/load.js';
import { checkConfig } from './config/check.js';
import type { Config } from './config/schema.js';
import { request, ControlError } from './control/client.js';
import { MaintenanceFlag } from './daemon/maintenance.js';
import { formatStatus } from './status.js';

const DEFAULT_CONFIG = '/etc/duogate/duogate.yaml';
const DEFAULT_SOCKET = '/run/duogate/duogate.sock';

const HELP = `duogate — active-passive HA gateway (CARP VIPs, state sync, config sync)

usage: duogate <command> [options]

  run --config FILE            run the daemon in the foreground (structured JSON logs on stdout)
  status [--json] [--timeout S]
                               every VIP with its CARP state, demotion and drop counters; waits up to
                               S seconds for the daemon's answer (default 5: a healthy daemon answers in ms)
  check [--config FILE] [--peer FILE]
                               validate a config and the pair's addressing plan
  firewall show [--json]|compile|apply
                               the nftables ruleset in force (with counters) / generated / apply it here
  config apply FILE [-m TEXT] | history | diff [A [B]] | revert REV | sync
                               config revisions: apply live (and push to the secondary), list, compare, undo
  console                      the serial-console menu: status, maintenance, LAN address, NICs, restart, shell
  maintenance enter|leave|status
                               persistent CARP maintenance mode: the peer takes the VIPs
  version                      print the version

common options:
  --config FILE     node config (default ${DEFAULT_CONFIG})
  --socket PATH     control socket (default: the config's control.socket, else ${DEFAULT_SOCKET})
  --state-dir DIR   state directory override (default: the config's state_dir)
`;

function version(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const rel of ['../package.json', '../../package.json']) {
    try { return JSON.parse(readFileSync(path.resolve(here, rel), 'utf8')).version; } catch { /* next */ }
  }
  return 'unknown';
}

/** `--timeout S` in ms: a starved box (an emulator, a first boot of a slow one) may need minutes, never forever. */
function answerBoundMs(v: string | undefined): number {
  if (v === undefined) return 5000;
  const s = Number(v);
  if (!Number.isFinite(s) || s <= 0 || s > 3600) throw new ControlError('DG_ERR_USAGE', `--timeout ${v}: give seconds, more than 0 and at most 3600`);
  return Math.round(s * 1000);
}

export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv, allowPositionals: true, strict: true,
    options: {
      config: { type: 'string', short: 'c' }, socket: { type: 'string' }, 'state-dir': { type: 'string' },
      peer: { type: 'string' }, timeout: { type: 'string' }, json: { type: 'boolean' }, message: { type: 'string', short: 'm' }, help: { type: 'boolean', short: 'h' },
    },
  });
  const [cmd, ...rest] = positionals;
  if (values.help || !cmd || cmd === 'help') { process.stdout.write(HELP); return cmd ? 0 : 2; }

  const configFile = values.config ?? DEFAULT_CONFIG;
  const readConfig = (): Config => {
    const c = loadConfig(configFile);
    if (values['state-dir']) c.state_dir = values['state-dir'];
    if (values.socket) c.control.socket = values.socket;
    return c;
  };
  const socketPath = (): string => {
    if (values.socket) return values.socket;
    try { return loadConfig(configFile).control.socket; } catch { return DEFAULT_SOCKET; }
  };

  switch (cmd) {
    case 'version': console.log(`duogate ${version()}`); return 0;
    case 'run': {
      const { runDaemon } = await import('./daemon/run.js');
      process.env.DUOGATE_CONFIG_FILE ??= path.resolve(configFile); // config sync's live applies rewrite this file
      return await runDaemon(readConfig());
    }
    case 'status': {
      const s = await request(socketPath(), { cmd: 'status' }, answerBoundMs(values.timeout));
      process.stdout.write(values.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
      return 0;
    }
    case 'check': {
      const c = readConfig();
      const peer = values.peer ? loadConfig(values.peer) : undefined;
      const findings = checkConfig(c, peer);
      if (values.json) console.log(JSON.stringify(findings, null, 2));
      else {
        for (const f of findings) console.log(`${f.level === 'error' ? 'ERROR' : 'warning'}: ${configFile}: ${f.field}: ${f.message}`);
        const e = findings.filter((f) => f.level === 'error').length;
        console.log(e ? `${e} error(s), ${findings.length - e} warning(s)` : `ok: ${configFile}${peer ? ` and ${values.peer}` : ''} (${findings.length} warning(s))`);
      }
      return findings.some((f) => f.level === 'error') ? 1 : 0;
    }
    case 'firewall': return await (await import('./gateway/firewall/cli.js')).firewallCommand(rest[0], readConfig, !!values.json);
    case 'config': return await (await import('./configstore/cli.js')).configCommand({ args: rest, configFile, socket: socketPath, readConfig, json: !!values.json, message: values.message });
    case 'console': return await (await import('./console/menu.js')).runConsole({ configFile, socket: socketPath(), stateDir: values['state-dir'] });
    case 'maintenance': {
      const what = rest[0] ?? 'status';
      if (!['enter', 'leave', 'status'].includes(what)) throw new ControlError('DG_ERR_USAGE', 'usage: duogate maintenance enter|leave|status');
      try {
        const r = await request(socketPath(), { cmd: 'maintenance', action: what, by: 'cli' });
        console.log(r.on ? `maintenance mode: ON since ${r.since} (the peer holds the VIPs)` : 'maintenance mode: off');
      } catch (e) {
        if (!(e instanceof ControlError) || e.code !== 'DG_ERR_NO_DAEMON' || what === 'status') throw e;
        // The daemon is down: record the mode so it takes effect at the next start (it is persistent anyway).
        const flag = new MaintenanceFlag(readConfig().state_dir);
        flag.set(what === 'enter', 'cli (daemon not running)');
        console.log(`daemon not running; maintenance mode ${what === 'enter' ? 'will be ON' : 'is off'} at its next start`);
      }
      return 0;
    }
    default:
      process.stderr.write(`duogate: unknown command "${cmd}"\n\n${HELP}`);
      return 2;
  }
}

// Run when executed, also through a symlink (node_modules/.bin/duogate, /usr/bin/duogate in the image).
const isMain = !!process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (isMain) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: Error & { code?: string }) => {
    if (e instanceof ConfigError) process.stderr.write(`duogate: config error: ${e.message}\n`);
    else process.stderr.write(`duogate: ${e.message}${e.code ? ` (${e.code})` : ''}\n`);
    process.exitCode = e instanceof ConfigError ? 3 : 1;
  });
}
