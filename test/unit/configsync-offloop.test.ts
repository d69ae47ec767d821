// Large XML-RPC bodies and config YAML are parsed on a worker thread (host/configsync/decode-worker.ts): the
// result must equal the inline parse (Buffers, Dates, nesting), errors must be the same faults, and the event
// loop must keep turning while a body that takes the parser seconds is decoded.
import t from 'tap';
import YAML from 'yaml';
import { OffLoopDecoder, INLINE_MAX } from '../../host/configsync/decode-worker.js';
import { decodeCall, encodeCall, XmlRpcFault, Fault } from '../../host/configsync/xmlrpc.js';

const rules = (n: number) => Array.from({ length: n }, (_, i) => ({
  action: 'pass', n: i, at: new Date(Date.UTC(2026, 0, 1, 0, 0, i % 60)), blob: Buffer.from(`x${i}`), tags: ['a', i, true, null], nested: { z: 1.5 },
}));

t.test('a large body decodes off the loop to exactly what the inline decoder returns', async (t) => {
  const d = new OffLoopDecoder();
  t.teardown(() => d.close());
  const body = Buffer.from(encodeCall('duogate.restore_config_section', [{ firewall: { rules: rules(3000) } }, { schema: 1, seq: 3 }]));
  t.ok(body.length > INLINE_MAX, `${body.length} bytes: above the inline limit`);
  const got = await d.decode(body);
  t.same(got, decodeCall(body.toString('utf8')));
  const r = (got.params[0] as any).firewall.rules[7];
  t.ok(Buffer.isBuffer(r.blob) && r.at instanceof Date, 'base64 comes back as a Buffer, dateTime as a Date');
  t.equal(got.method, 'duogate.restore_config_section');
});

t.test('a malformed large body is the same fault as inline', async (t) => {
  const d = new OffLoopDecoder();
  t.teardown(() => d.close());
  const body = Buffer.concat([Buffer.from('<?xml version="1.0"?><methodCall><methodName>x</methodName>'), Buffer.alloc(INLINE_MAX, 32)]);
  let inline: unknown, off: unknown;
  try { decodeCall(body.toString('utf8')); } catch (e) { inline = e; }
  try { await d.decode(body); } catch (e) { off = e; }
  t.ok(off instanceof XmlRpcFault && off.faultCode === Fault.PARSE_ERROR, 'a parse error fault');
  t.equal((off as XmlRpcFault).faultString, (inline as XmlRpcFault).faultString, 'with the same text');
});

t.test('large YAML parses off the loop like YAML.parse; errors keep their position', async (t) => {
  const d = new OffLoopDecoder();
  t.teardown(() => d.close());
  const text = YAML.stringify({ firewall: { rules: { lan: rules(2000).map(({ blob: _b, at: _a, ...r }) => r) } }, x: Infinity });
  t.ok(text.length > INLINE_MAX);
  t.same(await d.parseYaml(text), YAML.parse(text));
  const bad = text + '\nfirewall: again\n';
  let err: any;
  try { await d.parseYaml(bad); } catch (e) { err = e; }
  t.match(err?.message, /Map keys must be unique/, 'a duplicate key is refused');
  t.ok(err?.linePos?.[0]?.line > 1, `with its position (line ${err?.linePos?.[0]?.line})`);
});

t.test('the event loop keeps turning while a body that takes the parser seconds is decoded', async (t) => {
  const d = new OffLoopDecoder();
  t.teardown(() => d.close());
  const body = Buffer.from(encodeCall('duogate.sync_status', [{ rules: rules(20_000) }]));
  const t0 = performance.now();
  decodeCall(body.toString('utf8'));
  const inline = performance.now() - t0;
  let worst = 0; let last = performance.now();
  const iv = setInterval(() => { const now = performance.now(); worst = Math.max(worst, now - last); last = now; }, 5);
  await d.decode(body);
  clearInterval(iv);
  t.ok(worst < inline / 3, `longest gap between 5 ms ticks ${worst.toFixed(0)} ms while decoding off the loop; inline the decode blocks for ${inline.toFixed(0)} ms`);
});
