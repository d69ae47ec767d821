// `duogate check` for the firewall: compile errors, and user rules that would block duogate's own traffic
// (CARP on every interface, the sync-link ports). In pfSense such traffic is "silently blocked"; here the
// system rules come first so it still flows, and check says which user rule claims otherwise. Also pass rules
// addressed to the node itself, which open nothing: the node's own ports are not governed by interface rules.
import { allNets, type Config } from '../../config/schema.js';
import type { Finding } from '../../config/check.js';
import { inSubnet, parseCidr } from '../../config/net.js';
import { compile, FirewallConfigError, rulesFor } from './compile.js';
import { firewallOf, type AddrSpec, type FirewallRule, type IfName, type PortSpec } from './schema.js';
import { CARP_PROTO, SYNC_PORTS } from './ports.js';

interface Flow { what: string; proto: number | 'tcp' | 'udp'; src: string; dst: string; dport?: number }

function addrMatches(c: Config, spec: AddrSpec, ip: string): boolean {
  let s = spec.trim();
  let neg = false;
  if (s.startsWith('!')) { neg = true; s = s.slice(1).trim(); }
  let hit: boolean;
  const m = /^([a-z][a-z0-9_]{0,14}) (net|address)$/.exec(s);
  if (s === 'any') hit = true;
  else if (m && Object.hasOwn(c.interfaces, m[1]!)) {
    const ifc = c.interfaces[m[1] as IfName]!;
    hit = m[2] === 'net' ? inSubnet(ip, ifc.address)
      : ip === parseCidr(ifc.address).ip || c.carp.vips.some((v) => v.interface === m[1] && v.address.split('/')[0] === ip);
  } else if (s.includes('/')) hit = inSubnet(ip, s);
  else if (/^\d+\.\d+\.\d+\.\d+$/.test(s)) hit = s === ip;
  else {
    const a = firewallOf(c).aliases[s];
    hit = !!a && a.type !== 'port' && a.entries.some((e) => (String(e).includes('/') ? inSubnet(ip, String(e)) : String(e) === ip));
  }
  return neg ? !hit : hit;
}

function portMatches(c: Config, spec: PortSpec | undefined, port: number | undefined): boolean {
  if (spec === undefined) return true;
  if (port === undefined) return false;
  const items = Array.isArray(spec) ? spec : [spec];
  return items.some((it) => {
    const a = typeof it === 'string' ? firewallOf(c).aliases[it] : undefined;
    const list = a ? a.entries : [it];
    return list.some((e) => {
      const [lo, hi] = String(e).split('-').map(Number);
      return port >= lo! && port <= (hi ?? lo!);
    });
  });
}

function ruleMatches(c: Config, r: FirewallRule, f: Flow): boolean {
  const p = r.protocol ?? 'any';
  const protoOk = p === 'any' || p === String(f.proto) || (p === 'carp' && f.proto === CARP_PROTO) || (p === 'tcp/udp' && (f.proto === 'tcp' || f.proto === 'udp'));
  if (!protoOk) return false;
  if (r.destination_port !== undefined && f.dport === undefined) return false;
  // duogate's flows use ephemeral source ports: a source-port rule cannot be shown to match them.
  if (r.source_port !== undefined) return false;
  return addrMatches(c, r.source ?? 'any', f.src) && addrMatches(c, r.destination ?? 'any', f.dst) && portMatches(c, r.destination_port, f.dport);
}

/** duogate's own flows entering each interface. */
function ownFlows(c: Config): Map<IfName, Flow[]> {
  const out = new Map<IfName, Flow[]>();
  for (const i of allNets(c)) {
    const ifc = c.interfaces[i]!;
    const from = ifc.peer ?? parseCidr(ifc.address).ip;
    const flows: Flow[] = [];
    if (i === 'sync' || c.carp.vips.some((v) => v.interface === i)) flows.push({ what: 'CARP adverts', proto: CARP_PROTO, src: from, dst: '224.0.0.18' });
    if (i === 'sync' && ifc.peer) {
      for (const [name, p] of Object.entries(SYNC_PORTS)) {
        flows.push({ what: `${name} (${p.proto} ${p.port})`, proto: p.proto, src: ifc.peer, dst: parseCidr(ifc.address).ip, dport: p.port });
      }
    }
    out.set(i, flows);
  }
  return out;
}

export function checkFirewall(c: Config): Finding[] {
  const out: Finding[] = [];
  try { compile(c); } catch (e) {
    if (e instanceof FirewallConfigError) out.push({ level: 'error', field: e.field, message: e.message.slice(e.field.length + 2) });
    else throw e;
  }
  for (const [i, flows] of ownFlows(c)) {
    const rules = rulesFor(c, i);
    for (const f of flows) {
      // First match wins, as in the ruleset.
      const n = rules.findIndex((r) => !r.disabled && ruleMatches(c, r, f));
      if (n < 0 || rules[n]!.action === 'pass') continue;
      const r = rules[n]!;
      out.push({
        level: 'warning', field: `firewall.rules.${i}[${n}]`,
        message: `${r.action} rule${r.description ? ` "${r.description}"` : ''} would block ${f.what} from ${f.src} to ${f.dst}; ` +
          "duogate's automatic rule for its own traffic comes first and lets it through, so this rule does not apply to it: narrow or remove the rule",
      });
    }
  }
  out.push(...ownAddressRules(c));
  out.push(...overlappingAliasEntries(c));
  return out;
}

/**
 * An alias is a named nftables interval set, and nft refuses a set whose entries overlap ("conflicting
 * intervals"): 10.0.0.0/8 with 10.1.2.3, or ports 9100-9199 with 9150 (an exact repeat it takes). Only nft would notice, at
 * apply time, so on a secondary after a sync, or at the next start. (Entries that do not parse are reported by
 * the compile step above.)
 */
function overlappingAliasEntries(c: Config): Finding[] {
  const out: Finding[] = [];
  for (const [name, a] of Object.entries(firewallOf(c).aliases)) {
    const spans: { lo: number; hi: number; entry: string }[] = [];
    for (const e of a.entries) {
      const s = String(e).trim();
      if (a.type === 'port') {
        const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(s);
        if (m) spans.push({ lo: Number(m[1]), hi: Number(m[2] ?? m[1]), entry: s });
      } else {
        const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/.exec(s);
        if (!m || m[1]!.split('.').some((o) => Number(o) > 255) || Number(m[2] ?? 32) > 32) continue;
        const p = parseCidr(`${m[1]}/${m[2] ?? 32}`);
        spans.push({ lo: p.net, hi: (p.net | ~p.mask) >>> 0, entry: s });
      }
    }
    spans.sort((x, y) => x.lo - y.lo || y.hi - x.hi);
    for (let i = 1, widest = 0; i < spans.length; i++) {
      if (spans[i]!.lo === spans[widest]!.lo && spans[i]!.hi === spans[widest]!.hi) continue; // nft takes a repeat
      if (spans[i]!.lo <= spans[widest]!.hi) {
        out.push({
          level: 'error', field: `firewall.aliases.${name}`,
          message: `entries ${spans[widest]!.entry} and ${spans[i]!.entry} overlap: nftables refuses overlapping entries in one alias; keep the wider one`,
        });
        break;
      }
      if (spans[i]!.hi > spans[widest]!.hi) widest = i;
    }
  }
  return out;
}

/**
 * Pass rules whose destination is only the node itself: the interface rules govern forwarded traffic, and what
 * the node answers is a fixed list (docs/gateway.md "Ports each node opens"), so such a rule opens nothing.
 */
function ownAddressRules(c: Config): Finding[] {
  const own = new Set<string>([
    ...allNets(c).map((i) => parseCidr(c.interfaces[i]!.address).ip),
    ...c.carp.vips.map((v) => v.address.split('/')[0]!),
  ]);
  const out: Finding[] = [];
  for (const i of allNets(c)) {
    rulesFor(c, i).forEach((r, n) => {
      if (r.disabled || r.action !== 'pass') return;
      const d = (r.destination ?? 'any').trim();
      const named = /^([a-z][a-z0-9_]{0,14}) address$/.exec(d);
      if (!((named && Object.hasOwn(c.interfaces, named[1]!)) || own.has(d))) return;
      out.push({
        level: 'warning', field: `firewall.rules.${i}[${n}]`,
        message: `pass rule${r.description ? ` "${r.description}"` : ''} is addressed to the gateway itself (${d}); interface rules apply to ` +
          'traffic through the gateway only, and the node answers a fixed list of services (docs/gateway.md "Ports each node opens"): remove the rule',
      });
    });
  }
  return out;
}
