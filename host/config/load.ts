// Reading a config file: YAML → schema validation with defaults → semantic checks. Every error names the
// file, the field (as a path like carp.vips[1].vhid) and the reason.
import { readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { Ajv, type ErrorObject } from 'ajv';
import YAML from 'yaml';
import { NET_NAME, configSchema, type Config } from './schema.js';
import { featureSections } from './sections.js';

export class ConfigError extends Error {
  readonly code = 'DG_ERR_CONFIG';
  constructor(readonly file: string, readonly field: string, readonly reason: string) {
    super(`${file}: ${field || '(top level)'}: ${reason}`);
    this.name = 'ConfigError';
  }
}

let validator: ReturnType<Ajv['compile']> | null = null;
function validate(): ReturnType<Ajv['compile']> {
  if (!validator) {
    const schema = structuredClone(configSchema) as Record<string, any>;
    schema.properties = { ...schema.properties, ...featureSections() };
    schema.additionalProperties = false;
    validator = new Ajv({ allErrors: false, useDefaults: true, strict: false }).compile(schema);
  }
  return validator;
}

/** JSON pointer /carp/vips/1/vhid → carp.vips[1].vhid */
export function fieldPath(pointer: string): string {
  return pointer.split('/').filter(Boolean).map((s, i) => (/^\d+$/.test(s) ? `[${s}]` : (i ? '.' : '') + s)).join('');
}

function describe(e: ErrorObject): { field: string; reason: string } {
  let field = fieldPath(e.instancePath);
  let reason = e.message ?? 'invalid';
  if (e.keyword === 'propertyNames' || e.propertyName !== undefined) {
    // A key refused by propertyNames (an interface or network name): Ajv reports the inner check first.
    const name = e.propertyName ?? (e.params as { propertyName?: string }).propertyName ?? '';
    field = field ? `${field}.${name}` : name;
    const pattern = (e.params as { pattern?: string }).pattern;
    reason = pattern === NET_NAME ? 'is not a valid network name: lower case letters, digits and _, starting with a letter, at most 15 characters'
      : `is not a valid name${pattern ? ` (must match ${pattern})` : ''}`;
  } else if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty: string }).additionalProperty;
    field = field ? `${field}.${extra}` : extra;
    reason = 'unknown field (check the spelling; see README "Configuration")';
  } else if (e.keyword === 'required') {
    const miss = (e.params as { missingProperty: string }).missingProperty;
    field = field ? `${field}.${miss}` : miss;
    reason = 'is required';
  } else if (e.keyword === 'enum') {
    reason = `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  } else if (e.keyword === 'pattern') {
    const pattern = (e.params as { pattern: string }).pattern;
    reason = pattern.endsWith('12[0-8]))$') ? 'must be an IPv4 address with a prefix of 0-32 (192.168.1.1/24) or an IPv6 one with 0-128 (2001:db8:1::1/64, fe80::1/64)'
      : pattern.endsWith('(/64)?$') ? 'must be an IPv6 link-local address, like fe80::2'
      : pattern.endsWith('/([0-9]|[12][0-9]|3[0-2])$') ? 'must be an IPv4 address with a prefix of 0-32, like 192.168.1.2/24'
      : pattern.endsWith('(\\.(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)){3}$') ? 'must be an IPv4 address, like 192.168.1.20'
      : `does not match ${pattern}`;
  } else if (e.keyword === 'maxProperties' && field === 'interfaces') {
    reason = 'has more than 8 networks (wan, sync and at most 6 internal networks)';
  } else if (e.keyword === 'const' && field === 'schema') {
    reason = `this duogate reads config schema ${(e.params as { allowedValue: number }).allowedValue}`;
  }
  return { field, reason };
}

/** Validate an already parsed document (mutates it: fills defaults). */
export function validateConfig(doc: unknown, file = '<config>'): Config {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ConfigError(file, '', 'must be a YAML mapping');
  const v = validate();
  if (!v(doc)) {
    const { field, reason } = describe(v.errors![0]);
    throw new ConfigError(file, field, reason);
  }
  const c = doc as Config;
  checkIpv6(c, file);
  // One vhid is one CARP group: every VIP in it shares the interface, password, timers and MAC mode.
  const groups = new Map<number, number>();
  c.carp.vips.forEach((vip, i) => {
    const f = `carp.vips[${i}]`;
    if (!Object.hasOwn(c.interfaces, vip.interface)) {
      throw new ConfigError(file, `${f}.interface`, `"${vip.interface}" is not a network of this node (interfaces has ${Object.keys(c.interfaces).join(', ')}): add interfaces.${vip.interface} or fix the name`);
    }
    if (Buffer.byteLength(vip.password, 'utf8') > 19) {
      throw new ConfigError(file, `${f}.password`, `is ${Buffer.byteLength(vip.password)} bytes; CARP uses at most 19 (BSD peers would silently cut it, ucarp refuses it): shorten it`);
    }
    const j = groups.get(vip.vhid);
    if (j === undefined) { groups.set(vip.vhid, i); return; }
    const first = c.carp.vips[j];
    for (const k of ['interface', 'password', 'advbase', 'advskew', 'mac'] as const) {
      if (vip[k] !== first[k]) throw new ConfigError(file, `${f}.${k}`, `differs from carp.vips[${j}], which has the same vhid ${vip.vhid}: one vhid is one CARP group`);
    }
  });
  return c;
}

/**
 * IPv6 VIPs (carp.md "CARP over IPv6"): real IPv6 text; their interface has this node's link-local source for the
 * adverts, and, where the peer is named for IPv4, its link-local too (else the peer's IPv6 adverts would be
 * refused and both nodes would hold the VIP); the virtual MAC is IPv4-only here.
 */
function checkIpv6(c: Config, file: string): void {
  for (const r of Object.keys(c.interfaces)) {
    for (const k of ['address6', 'peer6', 'gateway6'] as const) {
      const a = c.interfaces[r]![k];
      if (a !== undefined && !isIPv6(a.split('/')[0])) throw new ConfigError(file, `interfaces.${r}.${k}`, `${a} is not an IPv6 address: write it like fe80::2`);
    }
    const g = c.interfaces[r]!.global6?.split('/')[0];
    if (g !== undefined) {
      if (!isIPv6(g)) throw new ConfigError(file, `interfaces.${r}.global6`, `${g} is not an IPv6 address: write it like 2001:db8:ff::2/64`);
      if (/^(fe[89ab]|ff)/i.test(g) || g === '::' || g === '::1') throw new ConfigError(file, `interfaces.${r}.global6`, `${g} is link-local, multicast, unspecified or loopback: global6 is a global unicast address (the link-local one is address6)`);
    }
  }
  c.carp.vips.forEach((vip, i) => {
    const f = `carp.vips[${i}]`;
    if (!vip.address.includes(':')) return;
    const ip = vip.address.split('/')[0];
    if (!isIPv6(ip)) throw new ConfigError(file, `${f}.address`, `${ip} is not an IPv6 address: write it like 2001:db8:1::1/64`);
    if (/^ff/i.test(ip) || ip === '::' || ip === '::1') throw new ConfigError(file, `${f}.address`, `${ip} is multicast, unspecified or loopback: a VIP must be a unicast address`);
    const ifc = c.interfaces[vip.interface];
    if (!ifc.address6) throw new ConfigError(file, `interfaces.${vip.interface}.address6`, `is required by the IPv6 VIP ${f} (${vip.address}): this node's link-local address there, the source of its IPv6 adverts (e.g. fe80::2)`);
    if (ifc.peer && !ifc.peer6) throw new ConfigError(file, `interfaces.${vip.interface}.peer6`, `is required by the IPv6 VIP ${f}: interfaces.${vip.interface}.peer names the peer for IPv4, so its IPv6 adverts need its link-local address too`);
    if (vip.mac === 'virtual') throw new ConfigError(file, `${f}.mac`, 'virtual is IPv4-only here: an IPv6 VIP answers from the NIC\'s own MAC (use mac: real or leave it out)');
  });
}

/** How config YAML is parsed (also on the off-loop parser's thread: host/configsync/decode-worker.ts). */
export const YAML_OPTIONS = { prettyErrors: true, uniqueKeys: true } as const;

/**
 * A config as YAML text for a file, that reads back as the same config. Three yaml-package traps avoided: folding
 * a long double-quoted string can cut a 4-byte character (a surrogate pair) at the fold, which a UTF-8 file
 * stores as two U+FFFD, a longer string than was validated (a description at its maxLength would not load at
 * the next start); a block scalar loses the leading spaces of a line of only spaces (" \n" reads back as "\n");
 * and a double-quoted string written over several lines mangles a line that starts with a space. So no
 * folding, no block scalars, and double-quoted strings in JSON's syntax (one line, every break escaped).
 */
export function configYaml(doc: unknown): string {
  return YAML.stringify(doc, { lineWidth: 0, blockQuote: false, doubleQuotedAsJSON: true });
}

/** A YAML parse error as a ConfigError naming the line and column. */
export function yamlConfigError(file: string, e: unknown): ConfigError {
  const err = e as Error & { linePos?: { line: number; col: number }[] };
  const at = err.linePos?.[0] ? `line ${err.linePos[0].line}, column ${err.linePos[0].col}` : '';
  return new ConfigError(file, at, `not valid YAML: ${String(err.message).split('\n')[0]}`);
}

export function parseConfigText(text: string, file = '<config>'): Config {
  let doc: unknown;
  try {
    doc = YAML.parse(text, YAML_OPTIONS);
  } catch (e) {
    throw yamlConfigError(file, e);
  }
  return validateConfig(doc, file);
}

export function loadConfig(file: string): Config {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) {
    throw new ConfigError(file, '', `cannot read: ${(e as Error).message}`);
  }
  return parseConfigText(text, file);
}
