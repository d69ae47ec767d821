// Secret config fields are marked once, in the JSON Schemas, with the keyword `secret`:
//   secret: true    the whole value is a password or key (carp.vips[].password, statesync.key, ...)
//   secret: 'url'   a URL whose userinfo may carry a password (mqtt.url = mqtts://user:pass@host)
//   secret: false   named like a secret but is not one (mqtt.key is the *path* of a PEM file)
// What shows config values (config diff on the CLI and the control socket, the `secrets` section of status)
// redacts from the list derived here, so a new secret field only needs its marking; test/unit/secrets.test.ts
// walks the schema and fails on a field named like a secret (password, key, secret, token, psk) without one.
// Where a user must compare the two nodes, a secret is shown as a fingerprint: "sha256:" and 8 hex digits of
// SHA-256 over a domain-separated string (no precomputed table of plain SHA-256 matches it). A fingerprint
// still confirms a guess, so weak passwords stay guessable offline by whoever may read it (root on the node).
import { createHash } from 'node:crypto';
import { configSchema } from './schema.js';
import { featureSections } from './sections.js';

export type SecretKind = 'whole' | 'url';
/** A secret field as a pattern path: `carp.vips[].password`, `statesync.key`; `*` stands for any key of a map. */
export interface SecretField { path: string; kind: SecretKind }

/** The whole config schema (CARP plus every feature section), as the loader validates it. */
export function fullSchema(): Record<string, any> {
  const s = structuredClone(configSchema) as Record<string, any>;
  s.properties = { ...s.properties, ...structuredClone(featureSections()) };
  return s;
}

/** Visit every property of a schema: its pattern path (`a.b[].c`, `a.*.c` for the values of a map) and its
 * subschema, through items, map values and anyOf/oneOf/allOf branches. */
export function walkSchema(schema: Record<string, any>, visit: (path: string, node: Record<string, any>) => void, at = ''): void {
  const join = (k: string) => (at ? `${at}.${k}` : k);
  for (const [k, sub] of Object.entries<Record<string, any>>(schema.properties ?? {})) {
    visit(join(k), sub);
    walkSchema(sub, visit, join(k));
  }
  if (schema.items && typeof schema.items === 'object') { visit(`${at}[]`, schema.items); walkSchema(schema.items, visit, `${at}[]`); }
  if (schema.additionalProperties && typeof schema.additionalProperties === 'object') {
    visit(join('*'), schema.additionalProperties);
    walkSchema(schema.additionalProperties, visit, join('*'));
  }
  for (const k of ['anyOf', 'oneOf', 'allOf']) for (const b of schema[k] ?? []) walkSchema(b, visit, at);
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

let matchers: { re: RegExp; kind: SecretKind }[] | null = null;
/** How a concrete field path (as in a diff: `carp.vips[3].password`) is secret, or null. */
export function secretKind(concretePath: string): SecretKind | null {
  matchers ??= secretFields().map((f) => ({
    kind: f.kind,
    re: new RegExp(`^${f.path.replace(/[.[\]]/g, (c) => `\\${c}`).replace(/\\\[\\\]/g, '\\[\\d+\\]').replace(/\*/g, '[^.\\[]+')}$`),
  }));
  return matchers.find((m) => m.re.test(concretePath))?.kind ?? null;
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
      if (!node || typeof node !== 'object' || Array.isArray(node)) return;
      const arr = steps[i].endsWith('[]');
      const key = arr ? steps[i].slice(0, -2) : steps[i];
      const obj = node as Record<string, unknown>;
      const last = i === steps.length - 1;
      for (const k of key === '*' ? Object.keys(obj) : Object.hasOwn(obj, key) ? [key] : []) {
        const here = at ? `${at}.${k}` : k;
        if (arr) {
          const list = obj[k];
          if (!Array.isArray(list)) continue;
          list.forEach((x, j) => (last ? fn(`${here}[${j}]`, x, f.kind, (v) => { list[j] = v; }) : go(x, i + 1, `${here}[${j}]`)));
        } else if (last) {
          if (obj[k] !== undefined) fn(here, obj[k], f.kind, (v) => { obj[k] = v; });
        } else go(obj[k], i + 1, here);
      }
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
