// Secret config fields are marked once, in the JSON Schemas, with the keyword `secret`:
//   secret: true    the whole value is a password or key (carp.vips[].password, statesync.key, ...)
//   secret: 'url'   a URL whose userinfo may carry a password (mqtt.url = mqtts://user:pass@host)
//   secret: false   named like a secret but is not one (mqtt.key is the *path* of a PEM file)
// Everything that shows a config (config diff, duogate status, the XML-RPC answers) redacts from the list
// derived here, so a new secret field only needs its marking; test/core/secrets.test.ts walks the schema and
// fails on a field named like a secret (password, key, secret, token, psk) that carries no marking.
// Where a user must compare the two nodes, a secret is shown as a fingerprint: "sha256:" and 8 hex digits of
// SHA-256 over a domain-separated string (no precomputed table of plain SHA-256 matches it). A fingerprint
// still confirms a guess, so weak passwords stay guessable offline by whoever may read it (root on the node).
import { createHash } from 'node:crypto';
import { configSchema } from './schema.js';
import { featureSections } from './sections.js';

export type SecretKind = 'whole' | 'url';
/** A secret field as a pattern path: `carp.vips[].password`, `statesync.key`. */
export interface SecretField { path: string; kind: SecretKind }

/** The whole config schema (CARP plus every feature section), as the loader validates it. */
export function fullSchema(): Record<string, any> {
  const s = structuredClone(configSchema) as Record<string, any>;
  s.properties = { ...s.properties, ...structuredClone(featureSections) };
  return s;
}

/** Visit every property of a schema: its pattern path (`a.b[].c`) and its subschema. */
export function walkSchema(schema: Record<string, any>, visit: (path: string, node: Record<string, any>) => void, at = ''): void {
  for (const [k, sub] of Object.entries<Record<string, any>>(schema.properties ?? {})) {
    const p = at ? `${at}.${k}` : k;
    visit(p, sub);
    walkSchema(sub, visit, p);
    if (sub.items && typeof sub.items === 'object') walkSchema(sub.items, visit, `${p}[]`);
  }
}

let cached: SecretField[] | null = null;
/** Every field marked secret in the schema. */
export function secretFields(): SecretField[] {
  if (cached) return cached;
  const out: SecretField[] = [];
  walkSchema(fullSchema(), (path, node) => {
    if (node.secret === true) out.push({ path, kind: 'whole' });
    else if (node.secret === 'url') out.push({ path, kind: 'url' });
  });
  cached = out;
  return out;
}

/** `carp.vips[3].password` → `carp.vips[].password` */
const pattern = (concrete: string) => concrete.replace(/\[\d+\]/g, '[]');

/** How a concrete field path (as in a diff) is secret, or null. */
export function secretKind(concretePath: string): SecretKind | null {
  const p = pattern(concretePath);
  return secretFields().find((f) => f.path === p)?.kind ?? null;
}

export function fingerprint(secret: string): string {
  return 'sha256:' + createHash('sha256').update('duogate secret fingerprint v1\0').update(secret, 'utf8').digest('hex').slice(0, 8);
}

/** A secret value as it may be shown: its fingerprint; for a URL, the URL with its password replaced. */
export function redactValue(value: unknown, kind: SecretKind): unknown {
  if (typeof value !== 'string') return value === undefined || value === null ? value : `(secret ${fingerprint(JSON.stringify(value))})`;
  if (kind === 'whole') return `(secret ${fingerprint(value)})`;
  // scheme://user:password@host → scheme://user:(secret sha256:…)@host; a URL without a password is shown as is.
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/]*)@/i, (_m, scheme: string, userinfo: string) => {
    const i = userinfo.indexOf(':');
    return i < 0 ? `${scheme}${userinfo}@` : `${scheme}${userinfo.slice(0, i)}:(secret ${fingerprint(userinfo.slice(i + 1))})@`;
  });
}

/** A URL without its userinfo, for logs and status where nothing is compared (the last @ ends the userinfo,
 * so a password holding an @ is not half shown). */
export function urlWithoutCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/]*@/i, '$1');
}

/** Visit every concrete value at a secret field of a config: (concrete path, value, kind). */
function eachSecret(config: unknown, fn: (path: string, value: unknown, kind: SecretKind, set: (v: unknown) => void) => void): void {
  for (const f of secretFields()) {
    const steps = f.path.split('.');
    const go = (node: unknown, i: number, at: string): void => {
      if (!node || typeof node !== 'object') return;
      const arr = steps[i].endsWith('[]');
      const key = arr ? steps[i].slice(0, -2) : steps[i];
      const obj = node as Record<string, unknown>;
      if (!(key in obj)) return;
      const here = at ? `${at}.${key}` : key;
      if (arr) {
        const list = obj[key];
        if (!Array.isArray(list)) return;
        list.forEach((x, j) => (i === steps.length - 1
          ? fn(`${here}[${j}]`, x, f.kind, (v) => { list[j] = v; })
          : go(x, i + 1, `${here}[${j}]`)));
      } else if (i === steps.length - 1) {
        if (obj[key] !== undefined) fn(here, obj[key], f.kind, (v) => { obj[key] = v; });
      } else go(obj[key], i + 1, here);
    };
    go(config, 0, '');
  }
}

/** A deep copy of a config with every secret field redacted: what may be shown or logged. */
export function redactConfig<T>(config: T): T {
  const copy = structuredClone(config);
  eachSecret(copy, (_p, v, kind, set) => set(redactValue(v, kind)));
  return copy;
}

/** For `duogate status`: each secret of this node's config by concrete path, as a fingerprint to compare with
 * the other node's (a URL without a password is left out: nothing secret to compare). */
export function secretFingerprints(config: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  eachSecret(config, (path, v, kind) => {
    if (typeof v !== 'string') return;
    if (kind === 'whole') { out[path] = fingerprint(v); return; }
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^@/:]*:([^/]*)@/i.exec(v);
    if (m) out[`${path} (password)`] = fingerprint(m[1]);
  });
  return out;
}
