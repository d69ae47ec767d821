// Config loading and `duogate check`: errors name the file, the field and the reason; the plan review catches
// what the pfSense HA guide asks to verify.
import t from 'tap';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { ConfigError, loadConfig, parseConfigText } from '../../host/config/load.js';
import { checkConfig } from '../../host/config/check.js';

const P = 'board/virtual/primary.yaml';
const S = 'board/virtual/secondary.yaml';
const raw = () => YAML.parse(readFileSync(P, 'utf8'));
const text = (doc: unknown) => YAML.stringify(doc);
const d0 = raw;

t.test('the virtual board configs load and pass check against each other', async (t) => {
  const p = loadConfig(P); const s = loadConfig(S);
  t.equal(p.carp.vips.length, 3);
  t.equal(p.carp.vips[0].advbase, 1);
  t.same(checkConfig(p, s).filter((f) => f.level === 'error'), []);
  t.same(checkConfig(s, p).filter((f) => f.level === 'error'), []);
});

t.test('schema errors name the file, the field and the reason', async (t) => {
  const cases: [(d: any) => void, string, RegExp][] = [
    [(d) => { d.carp.vips[1].vhid = 300; }, 'carp.vips[1].vhid', /<= 255/],
    [(d) => { d.carp.vips[0].address = '192.168.1.1'; }, 'carp.vips[0].address', /with a prefix/],
    [(d) => { d.carp.vips[0].advskew = -1; }, 'carp.vips[0].advskew', />= 0/],
    [(d) => { d.interfaces.lan.devcie = 'x'; }, 'interfaces.lan.devcie', /unknown field/],
    [(d) => { delete d.interfaces.sync; }, 'interfaces.sync', /required/],
    [(d) => { d.node.role = 'master'; }, 'node.role', /one of primary, secondary/],
    [(d) => { d.schema = 2; }, 'schema', /schema 1/],
    [(d) => { d.carp.vips[0].password = 'x'.repeat(20); }, 'carp.vips[0].password', /20 bytes.*at most 19/],
    [(d) => { d.carp.vips.push({ ...d.carp.vips[0], address: '192.168.1.9/24', advskew: 5 }); }, `carp.vips[${d0().carp.vips.length}].advskew`, /same vhid 1/],
    [(d) => { d.carp.vips[0].mac = 'vmac'; }, 'carp.vips[0].mac', /one of real, virtual/],
    [(d) => { d.carp.vips.push({ ...d.carp.vips[0], address: '192.168.1.9/24', mac: 'virtual' }); }, `carp.vips[${d0().carp.vips.length}].mac`, /same vhid 1/],
  ];
  for (const [mutate, field, reason] of cases) {
    const d = raw(); mutate(d);
    try { parseConfigText(text(d), 'node.yaml'); t.fail(`accepted a bad ${field}`); } catch (e) {
      t.type(e, ConfigError);
      const err = e as ConfigError;
      t.equal(err.file, 'node.yaml'); t.equal(err.field, field, `field ${field}`); t.match(err.reason, reason);
      t.match(err.message, new RegExp(`^node\\.yaml: ${field.replace(/[[\].]/g, '\\$&')}: `));
    }
  }
  t.throws(() => parseConfigText('carp: [1, 2\n', 'bad.yaml'), /bad\.yaml: line \d+, column \d+: not valid YAML/);
  t.throws(() => loadConfig('/nonexistent/duogate.yaml'), /cannot read/);
});

t.test('check: the addressing plan', async (t) => {
  const p = loadConfig(P); const s = loadConfig(S);
  const errors = (a: any, b?: any) => checkConfig(a, b).filter((f) => f.level === 'error').map((f) => `${f.field}: ${f.message}`);
  const bad = (mut: (a: any, b: any) => void) => { const a = structuredClone(p); const b = structuredClone(s); mut(a, b); return errors(a, b); };
  t.match(bad((a) => { a.carp.vips[0].address = '10.0.0.1/24'; }).join('\n'), /carp\.vips\[0\]\.address: 10\.0\.0\.1 is outside lan's subnet/);
  t.match(bad((a) => { a.carp.vips[0].address = '192.168.1.2/24'; }).join('\n'), /this node's own address/);
  t.match(bad((a) => { a.carp.vips[0].address = '192.168.1.3/24'; }).join('\n'), /the peer's address/);
  t.match(bad((a) => { a.carp.vips[0].address = '192.168.1.255/24'; }).join('\n'), /network or broadcast/);
  t.match(bad((a) => { a.interfaces.lan.peer = '10.1.1.1'; }).join('\n'), /interfaces\.lan\.peer: 10\.1\.1\.1 is outside/);
  t.match(bad((_a, b) => { for (const v of b.carp.vips) v.advskew = 0; }).join('\n'), /same advbase\/advskew \(1\/0\)/);
  t.match(bad((_a, b) => { b.carp.vips[0].password = 'other'; }).join('\n'), /differs from the peer's/);
  t.match(bad((_a, b) => { b.node.role = 'primary'; }).join('\n'), /both nodes are primary/);
  t.match(bad((_a, b) => { b.interfaces.wan.address = '198.51.100.3/24'; }).join('\n'), /the same subnet is needed on both/);
  t.match(bad((a) => { a.interfaces.wan.device = 'lan0'; }).join('\n'), /each role needs its own NIC/);
  const w = checkConfig({ ...structuredClone(p), carp: { preempt: true, vips: [{ ...p.carp.vips[0], advskew: 250 }] } } as any);
  t.ok(w.some((f) => f.level === 'warning' && /sent as 240/.test(f.message)), 'skew above 240 warns');
});

t.test('virtual MAC mode: default real, both nodes must agree, a WAN virtual MAC is warned about', async (t) => {
  t.equal(loadConfig(P).carp.vips[0].mac, 'real', 'real MAC is the default');
  const v = raw(); for (const x of v.carp.vips) x.mac = 'virtual';
  const pv = parseConfigText(text(v), 'p.yaml');
  t.equal(pv.carp.vips[0].mac, 'virtual');
  const s = loadConfig(S);
  const errs = checkConfig(pv, s).filter((f) => f.level === 'error');
  t.same(errs.map((f) => f.field), pv.carp.vips.map((_v, i) => `carp.vips[${i}].mac`), 'a mode that differs from the peer\'s is an error');
  t.match(errs[0].message, /virtual here, real on the peer/);
  const sv = YAML.parse(readFileSync(S, 'utf8')); for (const x of sv.carp.vips) x.mac = 'virtual';
  const both = checkConfig(pv, parseConfigText(text(sv), 's.yaml'));
  t.same(both.filter((f) => f.level === 'error'), []);
  const w = both.find((f) => f.field === 'carp.vips[1].mac');
  t.equal(w?.level, 'warning'); t.match(w?.message, /00:00:5e:00:01:02 on the WAN/);
  t.notOk(both.some((f) => f.field === 'carp.vips[0].mac'), 'no warning for the LAN');
});
