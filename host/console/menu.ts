// `duogate console`: the menu on the box's serial console (board images attach it to ttyS0). Line-based
// (type a number, press Enter) so it works on a dumb 80x24 terminal; colour only where the terminal has it.
// Talks to the daemon over the control socket; works without a running daemon too (maintenance is a flag
// file, config edits are files, restart/reboot/shell are commands).
import readline from 'node:readline';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { request } from '../control/client.js';
import { loadConfig } from '../config/load.js';
import { MaintenanceFlag } from '../daemon/maintenance.js';
import { Paint, menuLines, statusLines, useColor, wrap } from './screen.js';
import { EditError, assignNics, listNics, planNics, readLan, setLanAddress } from './netcfg.js';
import type { IfRole } from '../config/schema.js';

export interface ConsoleOptions {
  configFile: string;
  socket: string;
  stateDir?: string;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream & { isTTY?: boolean };
  env?: NodeJS.ProcessEnv;
}

/** The commands behind "restart" and "reboot"; a board image or test may point them elsewhere. */
const restartCmd = (env: NodeJS.ProcessEnv) => env.DUOGATE_RESTART_CMD ?? 'systemctl restart duogate';
const rebootCmd = (env: NodeJS.ProcessEnv) => env.DUOGATE_REBOOT_CMD ?? 'systemctl reboot';
/** On the mini-PC image NIC roles are fixed names (wan0/lan0/sync0) given by MAC through systemd .link files,
 * which its first-boot tool writes (board/minipc/nics.ts): there the console hands the plan to that tool. */
const nicTool = (env: NodeJS.ProcessEnv): string | null => {
  const t = env.DUOGATE_NIC_TOOL ?? '/usr/local/sbin/duogate-firstboot';
  return t && existsSync(t) ? t : null;
};

export async function runConsole(o: ConsoleOptions): Promise<number> {
  const input = o.input ?? process.stdin;
  const output = o.output ?? process.stdout;
  const env = o.env ?? process.env;
  const p = new Paint(useColor(env, !!output.isTTY));
  const clear = p.on ? '\x1b[H\x1b[2J' : '\n';
  const rl = readline.createInterface({ input, output, terminal: !!output.isTTY && env.TERM !== 'dumb' });
  let closed = false;
  // Lines are queued, so what an operator types ahead (or pastes) is never lost between two questions.
  const typed: string[] = [];
  let waiter: ((line: string | null) => void) | null = null;
  const deliver = (line: string | null) => { const w = waiter; waiter = null; w?.(line); };
  rl.on('line', (l) => { if (waiter) deliver(l); else if (typed.length < 100) typed.push(l); });
  rl.on('close', () => { closed = true; deliver(null); });
  // Ctrl-C on a serial console must not drop the operator to a login prompt: it cancels the current question.
  rl.on('SIGINT', () => { output.write('^C\n'); if (waiter) deliver(''); });
  const ask = (q: string) => new Promise<string | null>((resolve) => {
    if (typed.length) { const l = typed.shift()!; output.write(`${q}${l}\n`); resolve(l.trim()); return; }
    if (closed) { resolve(null); return; }
    waiter = (l) => resolve(l === null ? null : l.trim());
    rl.setPrompt(q);
    rl.prompt();
  });
  const say = (s: string) => output.write(wrap(s).join('\n') + '\n');
  const show = (lines: string[]) => output.write(lines.join('\n') + '\n');
  const pause = async () => { await ask('Press Enter to go back to the menu. '); };

  const status = async (): Promise<{ s: any; err: string | null }> => {
    try { return { s: await request(o.socket, { cmd: 'status' }, 3000), err: null }; } catch (e) { return { s: null, err: (e as Error).message }; }
  };
  const stateDir = (): string | null => {
    if (o.stateDir) return o.stateDir;
    try { return loadConfig(o.configFile).state_dir; } catch { return null; }
  };

  for (let round = 0; ; round++) {
    const { s, err } = await status();
    const mOn = s ? !!s.maintenance?.on : !!(stateDir() && new MaintenanceFlag(stateDir()!).get());
    output.write(clear);
    show([...statusLines(s, err, p), ...menuLines(mOn)]);
    const choice = await ask('Select [1]: ');
    if (choice === null) break; // end of input (serial line hung up)
    try {
      switch (choice || '1') {
        case '1': break;
        case '2': {
          const action = mOn ? 'leave' : 'enter';
          try {
            const r = await request(o.socket, { cmd: 'maintenance', action, by: 'console' });
            say(r.on ? p.yellow('Maintenance mode ON: the peer takes the VIPs.') : 'Maintenance mode off: this node may take the VIPs back.');
          } catch (e) {
            const dir = stateDir();
            if (!dir) throw e;
            new MaintenanceFlag(dir).set(action === 'enter', 'console (daemon not running)');
            say(`Daemon not answering (${(e as Error).message}); maintenance will be ${action === 'enter' ? 'ON' : 'off'} at its next start.`);
          }
          await new Promise((r) => setTimeout(r, 300)); // let the transition happen before the screen is redrawn
          break;
        }
        case '3': await lanMenu(); break;
        case '4': await nicMenu(); break;
        case '5': {
          if ((await ask(`Restart the daemon (${restartCmd(env)})? The peer takes the VIPs meanwhile. [y/N]: `))?.toLowerCase() !== 'y') break;
          const r = spawnSync('sh', ['-c', restartCmd(env)], { stdio: 'inherit', timeout: 60_000 });
          say(r.status === 0 ? 'Daemon restarted.' : p.red(`restart failed (exit ${r.status ?? r.signal}${r.error ? ': ' + r.error.message : ''})`));
          await pause();
          break;
        }
        case '6': {
          if ((await ask('Reboot this box? Type "reboot" to confirm: ')) !== 'reboot') break;
          spawnSync('sh', ['-c', rebootCmd(env)], { stdio: 'inherit', timeout: 60_000 });
          await pause();
          break;
        }
        case '7': {
          const shell = env.SHELL && existsSync(env.SHELL) ? env.SHELL : '/bin/sh';
          say(`Starting ${shell}; type "exit" to come back to the menu.`);
          rl.pause();
          // DUOGATE_SHELL: the image's login profile must not start the menu again inside this shell (board/minipc).
          spawnSync(shell, [], { stdio: 'inherit', env: { ...env, DUOGATE_CONSOLE: '1', DUOGATE_SHELL: '1' } });
          rl.resume();
          break;
        }
        case '0': case 'q': case 'exit': rl.close(); return 0;
        default: say(`"${choice}" is not on the menu: type a number from 0 to 7.`); await pause();
      }
    } catch (e) {
      say(p.red(e instanceof EditError ? e.message : `failed: ${(e as Error).message}`));
      await pause();
    }
    if (closed) break;
  }
  rl.close();
  return 0;

  async function lanMenu(): Promise<void> {
    const lan = readLan(o.configFile);
    const live = spawnSync('ip', ['-4', '-br', 'addr', 'show', 'dev', lan.device], { encoding: 'utf8' });
    say(`LAN (${lan.device}) in ${o.configFile}: ${lan.address}`);
    say(`on the interface now: ${live.status === 0 ? live.stdout.trim().split(/\s+/).slice(2).join(' ') || '(none)' : '(cannot read)'}`);
    const a = await ask('New LAN address/prefix (Enter keeps it): ');
    if (!a) return;
    const warnings = setLanAddress(o.configFile, a);
    say(`Saved: interfaces.lan.address = ${a}. Restart the daemon (5) to apply.`);
    for (const w of warnings) say(`warning: ${w.field}: ${w.message}`);
    await pause();
  }

  async function nicMenu(): Promise<void> {
    const nics = listNics();
    const c = loadConfig(o.configFile);
    const roleOf = (n: string) => (['wan', 'lan', 'sync'] as IfRole[]).find((r) => c.interfaces[r].device === n) ?? '-';
    say('  NIC              MAC                CARRIER  ROLE');
    for (const n of nics) say(`  ${n.name.padEnd(16)} ${n.mac}  ${(n.carrier === null ? '?' : n.carrier ? 'yes' : 'no').padEnd(8)} ${roleOf(n.name)}`);
    const want: Partial<Record<IfRole, string>> = {};
    let changed = false;
    for (const r of ['wan', 'lan', 'sync'] as IfRole[]) {
      const cur = nics.find((n) => n.name === c.interfaces[r].device)?.mac ?? c.interfaces[r].mac ?? '';
      const a = await ask(`MAC for ${r} [${cur || 'none'}]: `);
      if (a === null) return;
      const mac = (a || cur).toLowerCase();
      if (!mac) continue;
      if (mac !== cur || (a && c.interfaces[r].mac?.toLowerCase() !== mac)) changed = true; // a typed MAC gets pinned
      want[r] = mac;
    }
    if (!changed) { say('Nothing changed.'); await pause(); return; }
    const tool = nicTool(env);
    if (tool) {
      planNics(want, nics);
      const args = ['--assign-nics', ...Object.entries(want).flatMap(([r, m]) => ['--nic', `${r}=${m}`])];
      say(`Running ${tool} ${args.join(' ')}`);
      const r = spawnSync(tool, args, { stdio: 'inherit', timeout: 60_000 });
      say(r.status === 0 ? 'NIC roles saved. Restart the daemon (5), or reboot (6) if the NICs were renamed.' : p.red(`${tool} failed (exit ${r.status ?? r.signal})`));
      await pause();
      return;
    }
    const warnings = assignNics(o.configFile, want, nics);
    say(`Saved: ${Object.entries(want).map(([r, m]) => `${r}=${nics.find((n) => n.mac === m.toLowerCase())?.name} (${m.toLowerCase()})`).join(', ')}. Restart the daemon (5) to apply.`);
    for (const w of warnings) say(`warning: ${w.field}: ${w.message}`);
    await pause();
  }
}
