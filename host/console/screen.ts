// What the serial console shows: the status at a glance and the menu, laid out for an 80x24 terminal
// (every line under 80 columns, at most 24 lines with the prompt). Pure: status in, lines out.
import { featureFigures, netCarp } from '../telemetry/state.js';
import { features } from '../features.js';

export const WIDTH = 79;
/** Lines the status block may use: 24 minus the menu (5) and the prompt (1). */
const STATUS_LINES = 18;
const MAX_ALARMS = 3;

/** Colour only on a real terminal that is not TERM=dumb and without NO_COLOR (no-color.org). */
export function useColor(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  return isTTY && env.TERM !== undefined && env.TERM !== 'dumb' && !env.NO_COLOR;
}

export class Paint {
  constructor(readonly on: boolean) {}
  private w(code: string, s: string) { return this.on ? `\x1b[${code}m${s}\x1b[0m` : s; }
  bold(s: string) { return this.w('1', s); }
  red(s: string) { return this.w('1;31', s); }
  green(s: string) { return this.w('32', s); }
  yellow(s: string) { return this.w('33', s); }
  state(s: string) { return s === 'MASTER' ? this.green(s) : s === 'BACKUP' ? s : this.yellow(s); }
}

/** Cut to the width, counting only visible characters (escape codes are zero-width). */
export function fit(line: string, width = WIDTH): string {
  let out = '', vis = 0;
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '\x1b') { const j = line.indexOf('m', i); if (j > 0) { out += line.slice(i, j + 1); i = j; continue; } }
    if (vis >= width) { out += line.includes('\x1b') ? '\x1b[0m' : ''; break; }
    out += line[i]; vis++;
  }
  return out;
}

/** Word-wrap a message to the width (messages must be read whole; status rows are cut instead). */
export function wrap(text: string, width = WIDTH): string[] {
  const vlen = (x: string) => x.replace(/\x1b\[[0-9;]*m/g, '').length; // escape codes take no columns
  const out: string[] = [];
  for (const para of text.split('\n')) {
    let line = '';
    for (const word of para.split(' ')) {
      if (line && vlen(line) + 1 + vlen(word) > width) { out.push(line); line = '  ' + word; } else line = line ? `${line} ${word}` : word;
      while (vlen(line) > width) { out.push(line.slice(0, width)); line = '  ' + line.slice(width); }
    }
    out.push(line);
  }
  return out;
}

const pad = (s: string, n: number) => (s.length >= n ? s.slice(0, n) : s + ' '.repeat(n - s.length));
function uptime(s: number): string {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d${h}h` : h ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m${String(s % 60).padStart(2, '0')}s`;
}

/** The status block. `s` is `duogate status --json` (null when the daemon does not answer, with `err`). */
export function statusLines(s: any, err: string | null, p: Paint, now = new Date()): string[] {
  const clock = now.toISOString().replace('T', ' ').slice(0, 19) + 'Z';
  if (!s) {
    return [
      fit(p.bold('duogate console') + ' '.repeat(WIDTH - 'duogate console'.length - clock.length) + clock),
      fit(p.red(`daemon not answering: ${err ?? 'unknown error'}`)),
      'Maintenance can still be set (it takes effect when the daemon starts).',
      'Use 5 to restart the daemon, 7 for a shell (journalctl -u duogate).',
    ];
  }
  const out: string[] = [];
  const title = `duogate console  node ${s.node} (${s.role})`;
  out.push(fit(p.bold(title) + ' '.repeat(Math.max(1, WIDTH - title.length - clock.length)) + clock));
  const m = s.maintenance?.on ? p.yellow(`ON since ${String(s.maintenance.since).slice(5, 16).replace('T', ' ')}`) : 'off';
  out.push(fit(`CARP ${p.state(s.carp_role)}   maintenance ${m}   demotion ${s.demotion}   uptime ${uptime(s.uptime_s ?? 0)}`));
  out.push(fit(`  ${pad('VHID', 5)}${pad('IF', 6)}${pad('VIRTUAL IP', 20)}${pad('STATE', 9)}${pad('PEER', 9)}LAST CHANGE`));
  const alarms: any[] = [];
  for (const [k, v] of Object.entries(s)) if (v && typeof v === 'object' && Array.isArray((v as any).alarms) && k !== 'vips') alarms.push(...(v as any).alarms);
  const alarmBlock = (max: number): string[] => {
    if (!alarms.length) return [`Alarms: ${p.green('none')}`];
    const lines = [p.red(`ALARMS (${alarms.length}):`)];
    // Each alarm in at most two lines: its first clause (the finding); the advice is in `duogate status`.
    for (const a of alarms.slice(0, max)) {
      const text = String(a.message ?? a.name).split('; ')[0];
      const w = wrap(`! ${text}`, WIDTH - 2);
      lines.push(...w.slice(0, 2).map((l, i) => `  ${i === 0 ? p.red(l) : l}`));
    }
    if (alarms.length > max) lines.push(`  ... and ${alarms.length - max} more (duogate status)`);
    return lines;
  };
  const f = featureFigures(s);
  const parts: string[] = [];
  if (f.state_sync_ok !== null || f.states !== null) parts.push(`states ${f.state_sync_ok === 'OFF' ? p.red('FAILING') : 'ok'}${f.states !== null ? ` (${f.states})` : ''}`);
  if (f.config_in_sync !== null) parts.push(`config ${f.config_in_sync === 'ON' ? 'in sync' : p.red('NOT in sync')}`);
  if (f.dhcp_ha_state !== null) parts.push(`dhcp ${f.dhcp_ha_state}`);
  // Then each feature's own part (telemetry's broker connection), read from its own section.
  for (const feat of features) {
    const sec = s[feat.name];
    const text = feat.consoleText && sec && typeof sec === 'object' ? feat.consoleText(sec, p) : null;
    if (text) parts.push(text);
  }
  // Wrapped (at most two lines) rather than cut: every part of it matters.
  const syncLines = wrap(`Sync: ${parts.length ? parts.join(' | ') : 'no sync features configured'}`, WIDTH).slice(0, 2);
  // The VIP rows get what the 80x24 screen has left (the menu and the prompt take 6 lines), after the networks.
  const vips: any[] = s.vips ?? [];
  // Every network is listed: as a table when it fits with a VIP row, else in the short form, for which the
  // alarms give up lines if they must (at least one alarm stays; a VIP row and the "more" line too).
  const base = STATUS_LINES - 3 - 1 - syncLines.length;
  const table = networkTable(s.networks, p), short = networkShort(s.networks, p);
  let alarmLines = alarmBlock(MAX_ALARMS);
  let nets = table.length + 2 <= base - alarmLines.length ? table : short;
  for (let max = MAX_ALARMS - 1; max >= 1 && nets.length + 2 > base - alarmLines.length; max--) alarmLines = alarmBlock(max);
  let room = base - alarmLines.length - nets.length;
  if (vips.length > room) room -= 1;
  const view = s.peer?.peer_view;
  const peerStates = new Map<number, string>(view?.fresh ? view.vips.map((v: any) => [v.vhid, v.state]) : []);
  for (const v of vips.slice(0, Math.max(1, room))) {
    const last = v.last_change ? `${String(v.last_change).slice(11, 19)} ${v.last_change_why ?? ''}` : '-';
    out.push(fit(`  ${pad(String(v.vhid), 5)}${pad(v.interface, 6)}${pad(v.addresses.join(','), 20)}${p.state(v.state)}${' '.repeat(Math.max(1, 9 - v.state.length))}${pad(peerStates.get(v.vhid) ?? (s.peer && !view?.fresh ? 'lost' : '?'), 9)}${last}`));
  }
  if (vips.length > Math.max(1, room)) out.push(`  ... and ${vips.length - Math.max(1, room)} more VIPs (duogate status lists all)`);

  out.splice(2, 0, ...nets); // above the VIP table: the networks, then their VIPs
  const peer = s.peer;
  if (peer) {
    const link = (x: string) => (x === 'ok' ? p.green('ok') : x === 'off' ? 'off' : p.red(x));
    out.push(fit(`Peer ${peer.peer ?? '(not heard yet)'}: sync link ${link(peer.sync_link)}, LAN ${link(peer.lan_path)}${peer.peer_view?.maintenance ? p.yellow(', peer in maintenance') : ''}`));
  } else out.push('Peer: heartbeat not configured (peer: section)');
  out.push(...syncLines, ...alarmLines);
  return out;
}

const netLink = (c: unknown, p: Paint) => (c === true ? p.green('up') : c === false ? p.red('DOWN') : '-');

/** Every network (status `networks`), one row each: device (a VLAN as <nic>.<id>), link, this node's address,
 *  CARP state and VIPs. */
function networkTable(networks: Record<string, any> | undefined, p: Paint): string[] {
  const list = Object.entries(networks ?? {});
  if (!list.length) return [];
  return [
    fit(`  ${pad('NETWORK', 9)}${pad('DEVICE', 11)}${pad('LINK', 6)}${pad('ADDRESS', 19)}${pad('CARP', 8)}VIPS`),
    ...list.map(([n, x]) => {
      const l = netLink(x.carrier, p), c = netCarp(x.vips);
      const vipText = (x.vips ?? []).flatMap((v: any) => v.addresses ?? []).join(' ') || '-';
      return fit(`  ${pad(n, 9)}${pad(String(x.device ?? '?'), 11)}${l}${' '.repeat(Math.max(1, 6 - visibleLen(l)))}${pad(String(x.address ?? '-'), 19)}` +
        `${c === 'NONE' ? pad('-', 8) : p.state(c) + ' '.repeat(Math.max(1, 8 - c.length))}${vipText}`);
    }),
  ];
}

/** The short form when the table does not fit: name, device, link and CARP state of each, wrapped. */
function networkShort(networks: Record<string, any> | undefined, p: Paint): string[] {
  const list = Object.entries(networks ?? {});
  if (!list.length) return [];
  const parts = list.map(([n, x]) => `${n} ${x.device} ${netLink(x.carrier, p)}${netCarp(x.vips) === 'NONE' ? '' : ` ${p.state(netCarp(x.vips))}`}`);
  return wrap(`Networks: ${parts.join(' | ')}`, WIDTH).map((l) => fit(l));
}

const visibleLen = (x: string) => x.replace(/\x1b\[[0-9;]*m/g, '').length;

export function menuLines(maintenanceOn: boolean): string[] {
  const m = maintenanceOn ? 'Leave maintenance mode' : 'Enter maintenance mode';
  return [
    '-'.repeat(WIDTH),
    ` 1) Refresh status          5) Restart the daemon`,
    ` 2) ${pad(m, 24)}6) Reboot`,
    ` 3) LAN address             7) Shell`,
    ` 4) Assign NICs (by MAC)    0) Exit`,
  ];
}
