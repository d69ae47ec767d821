// Every config `duogate check` accepts must start: seeded mutations of the string fields of every section of the
// virtual board's configs (multibyte descriptions up to the schema's limits, malformed networks, names with
// quotes, newlines, NUL, braces, very long and empty strings). A config check refuses must name the field and
// the reason; a config check accepts must render to files the real tools accept: `nft -c -f` (in a throwaway
// network namespace), `unbound-checkconf` and `kea-dhcp4 -t` (with the LAN device present, as on a node).
// DUOGATE_FUZZ_SEED and DUOGATE_FUZZ_CASES replay or widen a run.
import { dhcpNets } from '../../host/gateway/dhcp/scopes.js';
import t from 'tap';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { ConfigError, configYaml, parseConfigText } from '../../host/config/load.js';
import { checkConfig } from '../../host/config/check.js';
import type { Config } from '../../host/config/schema.js';
import { compile } from '../../host/gateway/firewall/compile.js';
import { keaConfig } from '../../host/gateway/dhcp/kea.js';
import { pairSecret } from '../../host/gateway/dhcp/hatls.js';
import { unboundConfig } from '../../host/gateway/dns/unbound.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CLI = path.join(ROOT, 'dist/host/cli.js');
const SEED = Number(process.env.DUOGATE_FUZZ_SEED ?? 0x5eed11);
const CASES = Number(process.env.DUOGATE_FUZZ_CASES ?? 300);

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const int = (n: number) => Math.floor(rand() * n);

// Characters a description may carry: ASCII, the config languages' and nft's/unbound's/Kea's metacharacters,
// control characters, and 2-, 3- and 4-byte UTF-8.
const CHARS = ['a', 'Z', '0', ' ', '-', '_', '.', '/', ':', '"', "'", '\\', '\n', '\r', '\t', '\0', '\x7f', '\x1b', ';', '{', '}', '#', '$', '@', '*',
  '[', ']', '`', '!', '&', '|', '<', '>', 'é', 'ß', 'ü', '€', '中', '文', '😀', '𝄞', '🇩🇪', '\u00a0', '\u200b', '\ufeff'];
const NASTY = ['', ' ', 'a"b', "a'b", 'a\\b', 'a\nb', 'a\r\nb', 'a;b', '{}', '}', '{', '#x', 'x#', 'a\0b', '\0', '$x', '${x}', 'a b',
  '"', '\\', '\\"', '\n', ';drop', '}; table inet x {', '"; flush ruleset; "', 'x'.repeat(5000), 'é'.repeat(300), '😀'.repeat(129),
  'lan net', 'wan address', 'any', '!any', '! lan net', 'LAN net', 'tcp', 'vip', 'interface address', '.', '..', 'lan0 ', 'eth0:1', 'a/b',
  'a..b', '-a', 'a.-b', 'x.'];
const NETS = ['1.2.3.4/99', '300.1.1.1/24', '1.2.3.4/33', '1.2.3.4/-1', '1.2.3.4/', '/24', '1.2.3', '1.2.3.4.5', '01.2.3.4/24', '1.2.3.04',
  '1.2.3.4 /24', ' 1.2.3.4/24', '1.2.3.4/24\n', '1.2.3.4/24;', '0.0.0.0/0', '255.255.255.255/32', '::1', '::/0', '10.0.0.0/8', '!10.0.0.0/8',
  '192.168.1.0/24', '192.168.1.50', '203.0.113.10', '256.256.256.256', '1.2.3.4/2 4', '1.2.3.4/24/8', '-1.2.3.4', '1e3.1.1.1/8', '0x7f.0.0.1',
  '192.168.1.1', '192.168.1.2', '203.0.113.1', '172.16.1.1', '8.8.8.8', '127.0.0.1/8', '10.0.0.0/8,11.0.0.0/8', '10.0.0.1-10.0.0.9',
  // overlapping the other alias entries
  '10.20.0.0/16', '10.10.1.1', '10.20.0.1', '10.10.0.0/16', '9150', '8081'];

/** Free text of a length in code points (what the schema's maxLength counts) around the field's limit. */
function text(max: number): string {
  const len = pick([0, 1, max, max, max, max + 1, int(max + 1), int(max + 1)]);
  if (rand() < 0.2) return pick(['😀', '𝄞', '中', 'é']).repeat(len);
  let s = '';
  while (Array.from(s).length < len) s += pick(CHARS);
  return Array.from(s).slice(0, len).join('');
}

/** A nasty string for a field: its kind decides the mix. */
function mutant(field: string): string {
  const leaf = field.replace(/\[\d+\]$/, '').split('.').pop()!;
  if (leaf === 'description') return rand() < 0.8 ? text(/^carp\.vips/.test(field) ? 200 : 100) : pick(NASTY);
  if (/^(address|peer|source|destination|entries|allow|forwarders|target|translation|from|to|dns_servers)$/.test(leaf) || /^dns\.hosts\./.test(field)) {
    return rand() < 0.7 ? pick(NETS) : pick(NASTY);
  }
  const r = rand();
  return r < 0.6 ? pick(NASTY) : r < 0.8 ? text(40) : pick(NETS);
}

type Doc = Record<string, any>;
/** Paths to every string value, and the keys of the name → value maps (aliases, local DNS names). */
function stringFields(doc: Doc): { path: (string | number)[]; key?: boolean }[] {
  const out: { path: (string | number)[]; key?: boolean }[] = [];
  const walk = (v: unknown, p: (string | number)[]) => {
    if (typeof v === 'string') out.push({ path: p });
    else if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (/^(firewall\.aliases|dns\.hosts)$/.test(p.join('.'))) out.push({ path: [...p, k], key: true });
        walk(x, [...p, k]);
      }
    }
  };
  walk(doc, []);
  return out;
}
const fieldName = (p: (string | number)[]) => p.map((s, i) => (typeof s === 'number' ? `[${s}]` : (i ? '.' : '') + s)).join('');

function mutate(doc: Doc, f: { path: (string | number)[]; key?: boolean }, value: string): void {
  let o = doc;
  for (const k of f.path.slice(0, -1)) o = o[k];
  const last = f.path[f.path.length - 1]!;
  if (!f.key) { o[last] = value; return; }
  const v = o[last];
  delete o[last];
  o[value] = v;
}

/** The board's configs with one of everything that has string fields (port forward, outbound rule, mapping, ...). */
function base(file: string): Doc {
  const d = YAML.parse(readFileSync(path.join(ROOT, 'board/virtual', file), 'utf8'));
  d.firewall.aliases.lan_nets = { type: 'network', entries: ['10.10.0.0/16', '10.20.0.1'], description: 'networks behind the LAN' };
  d.firewall.rules.wan.push({ action: 'pass', protocol: 'tcp', source: 'any', destination: '192.168.1.20', destination_port: [80, '8000-8080'], description: 'web' });
  d.nat.outbound = { mode: 'hybrid', rules: [{ interface: 'wan', source: 'lan_nets', destination: 'any', protocol: 'udp', destination_port: 53, translation: 'vip', description: 'dns out' }] };
  d.nat.port_forwards = [{ interface: 'wan', protocol: 'tcp', destination_port: 8080, target: '192.168.1.20', target_port: 80, description: 'web server' }];
  d.dhcp.domain_name = 'lan.example';
  d.dhcp.static_mappings = [{ mac: '02:00:00:00:00:20', address: '192.168.1.20', hostname: 'web', description: 'the web server' }];
  d.dns.allow = ['10.10.0.0/16'];
  d.dns.hosts = { 'gw.lan.example': '192.168.1.1', web: '192.168.1.20' };
  return d;
}

type Verdict = { ok: true; c: Config } | { ok: false; field: string; reason: string };
function check(yaml: string): Verdict {
  let c: Config;
  try { c = parseConfigText(yaml, 'fuzz.yaml'); } catch (e) {
    if (!(e instanceof ConfigError)) throw new Error(`the config loader threw ${(e as Error).name} instead of a ConfigError: ${(e as Error).stack}`);
    return { ok: false, field: e.field, reason: e.reason };
  }
  const errors = checkConfig(c).filter((f) => f.level === 'error');
  return errors.length ? { ok: false, field: errors[0]!.field, reason: errors[0]!.message } : { ok: true, c };
}

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 20_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as any).code === 'number' ? (err as any).code : -1) : 0, out: `${stdout}${stderr}` });
    });
  });
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'dg-cfgfuzz-'));
// DUOGATE_FUZZ_KEEP=1 keeps the rendered files and the CLI's inputs for a look.
t.teardown(() => { if (!process.env.DUOGATE_FUZZ_KEEP) rmSync(tmp, { recursive: true, force: true }); });
let files = 0;
const verdicts = new Map<string, Promise<string | null>>();
/** null when the tool accepts the text; its complaint otherwise. The same text is checked once. */
function toolCheck(tool: 'nft' | 'unbound' | 'kea', body: string, devices: string[]): Promise<string | null> {
  const key = createHash('sha256').update(`${tool}\0${devices.join(',')}\0${body}`).digest('hex');
  let v = verdicts.get(key);
  if (v) return v;
  const file = path.join(tmp, `${tool}-${files++}`);
  writeFileSync(file, body);
  v = (async () => {
    const r = tool === 'nft' ? await run('unshare', ['--net', 'nft', '-c', '-f', file])
      : tool === 'unbound' ? await run('unbound-checkconf', [file])
      // Kea refuses a config whose interface does not exist: give it the devices of the networks it serves (the
      // LAN's, the guest network's) in a throwaway namespace, each a veth with a peer named apart from them all.
      : await run('unshare', ['--net', 'sh', '-c',
        'f="$1"; shift; i=0; for d in "$@"; do i=$((i+1)); ip link add name "$d" type veth peer name "dgfzpeer$i" || exit 1; done; exec kea-dhcp4 -t "$f"', 'sh',
        file, ...devices]);
    return r.code === 0 ? null : `${tool} refused ${file}: ${r.out.trim().split('\n').filter((l) => /error|fail/i.test(l)).slice(0, 3).join(' | ') || r.out.slice(-400)}`;
  })();
  verdicts.set(key, v);
  return v;
}

/** What the node's services would write, checked by the real tools. */
async function render(c: Config): Promise<string[]> {
  const problems: string[] = [];
  const sd = path.join(tmp, 'state', createHash('sha256').update(c.state_dir).digest('hex').slice(0, 12));
  const jobs: Promise<string | null>[] = [];
  try { jobs.push(toolCheck('nft', compile(c).text, [])); } catch (e) { problems.push(`compile threw after check accepted: ${(e as Error).message}`); }
  if (c.dns !== undefined) {
    mkdirSync(path.join(sd, 'unbound'), { recursive: true });
    try { jobs.push(toolCheck('unbound', unboundConfig(c, sd), [])); } catch (e) { problems.push(`unboundConfig threw after check accepted: ${(e as Error).message}`); }
  }
  if (c.dhcp !== undefined) {
    try {
      const tls = !!pairSecret(c);
      jobs.push(toolCheck('kea', JSON.stringify(keaConfig(c, sd, { tls, basicAuth: false }), null, 2), [...new Set(dhcpNets(c).map((n) => c.interfaces[n]!.device))]));
    } catch (e) { problems.push(`keaConfig threw after check accepted: ${(e as Error).message}`); }
  }
  for (const p of await Promise.all(jobs)) if (p) problems.push(p);
  return problems;
}

t.test('the base configs pass check and every tool', async (t) => {
  for (const f of ['primary.yaml', 'secondary.yaml']) {
    const v = check(configYaml(base(f)));
    t.ok(v.ok, `${f}: ${v.ok ? 'accepted' : `${v.field}: ${v.reason}`}`);
    if (v.ok) t.same(await render(v.c), [], `${f}: nft, unbound and kea accept it`);
  }
});

t.test('a config written as YAML reads back from a UTF-8 file unchanged (the yaml package\'s folding and block-scalar traps)', async (t) => {
  const bad: string[] = [];
  for (let i = 0; i < 200; i++) {
    const d = base('primary.yaml');
    d.firewall.rules.lan[0].description = text(100);
    const back = YAML.parse(Buffer.from(configYaml(d), 'utf8').toString('utf8'));
    if (back.firewall.rules.lan[0].description !== d.firewall.rules.lan[0].description) bad.push(JSON.stringify(d.firewall.rules.lan[0].description));
  }
  t.same(bad, [], 'every description survives the file');
});

t.test('every network and address field refuses malformed networks, naming the field', async (t) => {
  const bad = ['1.2.3.4/99', '300.1.1.1/24', '1.2.3.4/33', '1...2/8', '1.2.3.4/ 24', '1.2.3.4/24x', '256.0.0.0/8', '1.2.3.4\n/24'];
  const doc = base('secondary.yaml');
  const fields = stringFields(doc).filter((f) => !f.key && /^(address|peer|source|destination|entries|allow|forwarders|target|translation|from|to|dns_servers)$/
    .test(String(f.path.filter((p) => typeof p === 'string').pop())) && !/port/.test(fieldName(f.path)));
  t.ok(fields.length >= 15, `${fields.length} network fields`);
  const accepted: string[] = [];
  for (const f of fields) {
    for (const b of bad) {
      const d = base('secondary.yaml');
      mutate(d, f, b);
      const v = check(configYaml(d));
      if (v.ok) accepted.push(`${fieldName(f.path)} = ${JSON.stringify(b)}`);
      else if (!v.field.startsWith(fieldName(f.path).replace(/\[\d+\]$/, '').split('.')[0]!)) accepted.push(`${fieldName(f.path)} = ${JSON.stringify(b)} refused for another field: ${v.field}: ${v.reason}`);
    }
  }
  t.same(accepted, [], 'each refused, for its own section');
});

t.test('alias entries that overlap are refused by check, as nft would; repeated and adjacent ones pass nft', async (t) => {
  const cases: [string, 'network' | 'host' | 'port', (string | number)[], boolean][] = [
    ['net inside net', 'network', ['10.0.0.0/8', '10.1.0.0/16'], false],
    ['host inside net', 'network', ['10.1.2.3', '10.0.0.0/8'], false],
    ['same host twice', 'host', ['203.0.113.10', '203.0.113.10'], true],
    ['port inside range', 'port', [9100, '9100-9199', 8081], false],
    ['ranges overlapping', 'port', ['80-90', '85-95'], false],
    ['same port twice', 'port', [443, '443'], true],
    ['adjacent networks', 'network', ['10.0.0.0/24', '10.0.1.0/24', '10.0.2.1'], true],
    ['adjacent ranges', 'port', ['80-90', '91-95', 96], true],
  ];
  for (const [what, type, entries, ok] of cases) {
    const d = base('secondary.yaml');
    d.firewall.aliases.probe = { type, entries };
    const v = check(configYaml(d));
    if (!ok) {
      t.notOk(v.ok, `${what}: refused`);
      if (!v.ok) t.match(`${v.field}: ${v.reason}`, /^firewall\.aliases\.probe: entries .* overlap/, `${what}: ${v.field}: ${v.reason}`);
      // ... and rightly: nft refuses the set.
      t.not(await toolCheck('nft', compile(parseConfigText(configYaml(d))).text, []), null, `${what}: nft refuses it too`);
    } else {
      t.ok(v.ok, `${what}: accepted`);
      if (v.ok) t.same(await render(v.c), [], `${what}: nft accepts it`);
    }
  }
});

t.test(`${CASES} mutated configs (seed ${SEED}): accepted ones start, refused ones name the field`, { timeout: 240_000 }, async (t) => {
  const t0 = Date.now();
  const stats = { accepted: 0, refused: 0, cli: 0 };
  const failures: string[] = [];
  const pending: Promise<void>[] = [];
  for (let n = 0; n < CASES; n++) {
    const file = rand() < 0.5 ? 'primary.yaml' : 'secondary.yaml';
    const doc = base(file);
    const fields = stringFields(doc);
    // Descriptions alone in a third of the cases: they are free text, so those configs are mostly accepted
    // and reach the tools.
    const pool = rand() < 0.35 ? fields.filter((f) => f.path[f.path.length - 1] === 'description') : fields;
    const changes: string[] = [];
    for (let k = 1 + int(3); k > 0; k--) {
      const f = pick(pool);
      const name = fieldName(f.path);
      const value = mutant(name);
      if (f.key && (value === '' || Object.hasOwn(f.path.slice(0, -1).reduce((o: any, k) => o[k], doc), value))) continue;
      mutate(doc, f, value);
      changes.push(`${f.key ? 'key ' : ''}${name} = ${JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…(${value.length})` : value)}`);
      if (f.key) break; // a renamed key moves the paths below it
    }
    const yaml = configYaml(doc);
    const what = `case ${n} (${file}: ${changes.join('; ')})`;
    let v: Verdict;
    try { v = check(yaml); } catch (e) { failures.push(`${what}: check crashed: ${(e as Error).message}`); continue; }
    if (!v.ok) {
      stats.refused++;
      if (!v.reason) failures.push(`${what}: refused without a reason`);
      if (!v.field) failures.push(`${what}: refused without naming the field (${v.reason})`);
    } else {
      stats.accepted++;
      const c = v.c;
      if (process.env.DUOGATE_FUZZ_DEBUG) console.error(`accepted ${what}`);
      pending.push(render(c).then((p) => { for (const x of p) failures.push(`${what}: check accepted it but ${x}`); }));
    }
    // The CLI's verdict is the same (every 20th case: it is a process start each).
    if (n % 20 === 0) {
      stats.cli++;
      const f = path.join(tmp, `case-${n}.yaml`);
      writeFileSync(f, yaml);
      const ok = v.ok;
      pending.push(run(process.execPath, [CLI, 'check', '--config', f]).then((r) => {
        if ((r.code === 0) !== ok) failures.push(`${what}: duogate check exited ${r.code}, the library said ${ok ? 'accepted' : 'refused'}: ${r.out.slice(-300)}`);
      }));
    }
    if (pending.length >= 8) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  t.comment(`${stats.accepted} accepted and checked by the tools, ${stats.refused} refused, ${stats.cli} through the CLI, ${verdicts.size} distinct tool runs, ${Date.now() - t0} ms`);
  t.same(failures, [], 'no accepted config that a tool refuses, no refusal without field and reason');
  // The run must exercise both sides, or it proves nothing.
  t.ok(stats.accepted >= CASES * 0.2, `at least 20 % accepted (${stats.accepted})`);
  t.ok(stats.refused >= CASES * 0.2, `at least 20 % refused (${stats.refused})`);
});
