// The console's config edits: the LAN address and which NIC (by MAC) plays wan/lan/sync. Each edit changes
// the YAML document in place (comments and layout kept), is validated like `duogate check` before anything
// is written, and is written atomically; the daemon takes it at its next start.
import { readdirSync, readFileSync } from 'node:fs';
import YAML from 'yaml';
import { parseConfigText } from '../config/load.js';
import { checkConfig, type Finding } from '../config/check.js';
import type { IfRole } from '../config/schema.js';
import { writeFileAtomic } from '../io/atomic.js';

export interface Nic { name: string; mac: string; carrier: boolean | null }

/** Physical-looking NICs (everything with a MAC except loopback), sorted by name. */
export function listNics(sysClassNet = '/sys/class/net'): Nic[] {
  const out: Nic[] = [];
  for (const name of readdirSync(sysClassNet).sort()) {
    if (name === 'lo') continue;
    const read = (f: string) => { try { return readFileSync(`${sysClassNet}/${name}/${f}`, 'utf8').trim(); } catch { return null; } };
    const mac = read('address');
    if (!mac || mac === '00:00:00:00:00:00') continue;
    const c = read('carrier');
    out.push({ name, mac: mac.toLowerCase(), carrier: c === null ? null : c === '1' });
  }
  return out;
}

export class EditError extends Error {
  constructor(message: string, readonly findings: Finding[] = []) { super(message); this.name = 'EditError'; }
}

/** Apply `edit` to the YAML document of `file`, validate, write atomically. Returns the warnings. */
function editConfig(file: string, edit: (doc: YAML.Document) => void): Finding[] {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) { throw new EditError(`cannot read ${file}: ${(e as Error).message}`); }
  const doc = YAML.parseDocument(text);
  if (doc.errors.length) throw new EditError(`${file} is not valid YAML (${doc.errors[0].message.split('\n')[0]}): fix it in the shell first`);
  edit(doc);
  const next = doc.toString({ lineWidth: 0 }); // keep one-line flow maps on one line
  let findings: Finding[];
  try { findings = checkConfig(parseConfigText(next, file)); } catch (e) { throw new EditError(`not saved: ${(e as Error).message}`); }
  const errors = findings.filter((f) => f.level === 'error');
  if (errors.length) throw new EditError(`not saved: ${errors.map((f) => `${f.field}: ${f.message}`).join('; ')}`, errors);
  writeFileAtomic(file, next);
  return findings.filter((f) => f.level === 'warning');
}

export function readLan(file: string): { device: string; address: string } {
  const c = parseConfigText(readFileSync(file, 'utf8'), file);
  return { device: c.interfaces.lan.device, address: c.interfaces.lan.address };
}

/** Set interfaces.lan.address (address/prefix). The VIPs and the peer must stay in the subnet (checked). */
export function setLanAddress(file: string, cidr: string): Finding[] {
  if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr)) throw new EditError(`"${cidr}" is not an address/prefix like 192.168.1.2/24`);
  return editConfig(file, (doc) => doc.setIn(['interfaces', 'lan', 'address'], cidr));
}

/** Check a role → MAC plan against the NICs present: every MAC known, no NIC twice. Returns role → NIC name. */
export function planNics(byRole: Partial<Record<IfRole, string>>, nics: Nic[] = listNics()): Partial<Record<IfRole, string>> {
  const used = new Map<string, IfRole>();
  const names: Partial<Record<IfRole, string>> = {};
  for (const [role, macRaw] of Object.entries(byRole) as [IfRole, string][]) {
    const mac = macRaw.trim().toLowerCase();
    const nic = nics.find((n) => n.mac === mac);
    if (!nic) throw new EditError(`no NIC has MAC ${mac} (present: ${nics.map((n) => `${n.name} ${n.mac}`).join(', ') || 'none'})`);
    if (used.has(mac)) throw new EditError(`${mac} is already given to ${used.get(mac)}: each role needs its own NIC`);
    used.set(mac, role);
    names[role] = nic.name;
  }
  return names;
}

/** Give each role the NIC with that MAC: sets interfaces.<role>.device (its current name) and .mac. */
export function assignNics(file: string, byRole: Partial<Record<IfRole, string>>, nics: Nic[] = listNics()): Finding[] {
  const names = planNics(byRole, nics);
  return editConfig(file, (doc) => {
    for (const [role, mac] of Object.entries(byRole) as [IfRole, string][]) {
      doc.setIn(['interfaces', role, 'device'], names[role]);
      doc.setIn(['interfaces', role, 'mac'], mac.trim().toLowerCase());
    }
  });
}
