// NIC roles on a real box: the three Ethernet ports become wan0/lan0/sync0 by MAC, persisted as systemd .link
// files, so two boxes whose ports enumerate in different orders still end up alike.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { removeFileDurable, writeFileAtomic } from '../../host/io/atomic.js';
import type { IfRole } from '../../host/config/schema.js';
import { ROLES } from './seed.js';

export interface Nic { name: string; mac: string; busPath: string; carrier: boolean }

const SYS = '/sys/class/net';
export const LINK_DIR = '/etc/systemd/network';

/** Physical Ethernet ports (a bus device behind them, ARPHRD_ETHER, not Wi-Fi), in bus order. */
export function listNics(sys = SYS): Nic[] {
  const out: Nic[] = [];
  for (const name of readdirSync(sys)) {
    const d = path.join(sys, name);
    if (!existsSync(path.join(d, 'device')) || existsSync(path.join(d, 'wireless')) || existsSync(path.join(d, 'phy80211'))) continue;
    if (readFileSync(path.join(d, 'type'), 'utf8').trim() !== '1') continue;
    let carrier = false;
    try { carrier = readFileSync(path.join(d, 'carrier'), 'utf8').trim() === '1'; } catch { /* down: unreadable */ }
    out.push({ name, mac: readFileSync(path.join(d, 'address'), 'utf8').trim().toLowerCase(), busPath: realpathSync(path.join(d, 'device')), carrier });
  }
  return out.sort((a, b) => (a.busPath < b.busPath ? -1 : a.busPath > b.busPath ? 1 : 0));
}

/** Roles for the NICs: MACs pinned by the seed/console first, the rest in bus order (wan, lan, sync). */
export function assignRoles(nics: Nic[], pinned: Partial<Record<IfRole, string>>): Record<IfRole, Nic> {
  const have = nics.map((n) => `${n.name} ${n.mac}`).join(', ') || 'none';
  if (nics.length < 3) throw new Error(`found ${nics.length} Ethernet port(s) (${have}); duogate needs three: wan, lan and sync`);
  const out: Partial<Record<IfRole, Nic>> = {};
  const used = new Set<Nic>();
  for (const r of ROLES) {
    const mac = pinned[r];
    if (!mac) continue;
    const n = nics.find((x) => x.mac === mac.toLowerCase());
    if (!n) throw new Error(`${r}: no port has MAC ${mac} (ports: ${have}); fix the seed's ${r}.mac or assign from the console`);
    if (used.has(n)) throw new Error(`${r}: MAC ${mac} is already given to another role`);
    out[r] = n; used.add(n);
  }
  const rest = nics.filter((n) => !used.has(n));
  for (const r of ROLES) if (!out[r]) { out[r] = rest.shift()!; used.add(out[r]!); }
  return out as Record<IfRole, Nic>;
}

export function linkFile(role: IfRole, mac: string): string {
  return `# duogate NIC role ${role}: written by duogate-firstboot (or the console's "assign NICs"); matched by MAC.\n` +
    `[Match]\nMACAddress=${mac}\n\n[Link]\nName=${role}0\n`;
}

/**
 * True when all three roles are persisted, each .link naming a MAC, and three different MACs. A power cut while
 * applyRoles wrote them can leave one or two, or (its removals not yet on disk) old files beside new ones that
 * give one port two roles: neither counts as "NIC roles done", or the next first boot would skip the assignment
 * and a port would keep its kernel name.
 */
export function rolesPersisted(dir = LINK_DIR): boolean {
  const macs = ROLES.map((r) => {
    try { return /^MACAddress=(\S+)$/m.exec(readFileSync(path.join(dir, `10-duogate-${r}0.link`), 'utf8'))?.[1].toLowerCase() ?? null; } catch { return null; }
  });
  return macs.every((m) => m !== null) && new Set(macs).size === ROLES.length;
}

/** Persist the roles as .link files (applied by udev at every boot) and rename the ports now. */
export function applyRoles(roles: Record<IfRole, Nic>, dir = LINK_DIR): void {
  // The old files go first, each removal on disk before any new file is written: a power cut in between leaves
  // fewer than three files (redone at the next boot), never a mix of old and new roles.
  for (const f of existsSync(dir) ? readdirSync(dir) : []) if (/^10-duogate-.*\.link$/.test(f)) removeFileDurable(path.join(dir, f));
  for (const r of ROLES) writeFileAtomic(path.join(dir, `10-duogate-${r}0.link`), linkFile(r, roles[r].mac), 0o644);
  // Rename through temporary names: a swap (wan0 <-> lan0) would otherwise collide. A port must be down to rename.
  const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'pipe'] });
  ROLES.forEach((r, i) => {
    if (roles[r].name === `${r}0`) return;
    ip('link', 'set', 'dev', roles[r].name, 'down');
    ip('link', 'set', 'dev', roles[r].name, 'name', `dgtmp${i}`);
    roles[r].name = `dgtmp${i}`;
  });
  for (const r of ROLES) {
    if (roles[r].name === `${r}0`) continue;
    ip('link', 'set', 'dev', roles[r].name, 'name', `${r}0`);
    roles[r].name = `${r}0`;
  }
}
