// The XML-RPC codec: exact bytes for what we send, round trips for every type, and every malformed or hostile
// document refused with the interoperability fault code instead of a crash.
import t from 'tap';
import { Fault, XmlRpcFault, decodeCall, decodeResponse, encodeCall, encodeFault, encodeResponse, encodeValue } from '../../host/configsync/xmlrpc.js';

t.test('encodes the spec types exactly', async (t) => {
  t.equal(encodeValue(42), '<value><int>42</int></value>');
  t.equal(encodeValue(2 ** 40), `<value><double>${2 ** 40}</double></value>`, 'beyond i4 goes as double');
  t.equal(encodeValue(1.5), '<value><double>1.5</double></value>');
  t.equal(encodeValue(true), '<value><boolean>1</boolean></value>');
  t.equal(encodeValue('a<b&c>'), '<value><string>a&lt;b&amp;c&gt;</string></value>');
  t.equal(encodeValue(null), '<value><nil/></value>');
  t.equal(encodeValue([]), '<value><array><data></data></array></value>');
  t.equal(encodeValue({ a: 1, skip: undefined } as any), '<value><struct><member><name>a</name><value><int>1</int></value></member></struct></value>');
  t.equal(encodeValue(Buffer.from('hi')), '<value><base64>aGk=</base64></value>');
  t.equal(encodeFault(1, 'no'), '<?xml version="1.0"?>\n<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>1</int></value></member><member><name>faultString</name><value><string>no</string></value></member></struct></value></fault></methodResponse>\n');
  t.throws(() => encodeValue(NaN), /cannot carry/);
});

t.test('round trips a config-shaped value', async (t) => {
  const v = { vips: [{ interface: 'lan', vhid: 1, address: '192.168.1.1/24', advskew: 100, preempt: true, description: ' spaced <x> ' }], empty: [], nothing: null, nested: { a: { b: [1, 'two', false] } } };
  const call = decodeCall(encodeCall('duogate.restore_config_section', [v, { seq: 3 }]));
  t.equal(call.method, 'duogate.restore_config_section');
  t.same(call.params, [v, { seq: 3 }]);
  t.same(decodeResponse(encodeResponse(v)), v);
});

t.test('reads what other implementations write', async (t) => {
  // Python xmlrpc.client style: whitespace between elements, bare <value> strings, <i4>, dateTime.
  const py = `<?xml version='1.0'?>
<methodCall>
<methodName>duogate.sync_status</methodName>
<params>
<param>
<value><array><data>
<value><string>vips</string></value>
<value>firewall</value>
</data></array></value>
</param>
<param><value><i4>-7</i4></value></param>
<param><value><dateTime.iso8601>20261126T04:05:06</dateTime.iso8601></value></param>
</params>
</methodCall>
`;
  const c = decodeCall(py);
  t.same(c.params.slice(0, 2), [['vips', 'firewall'], -7]);
  t.equal((c.params[2] as Date).toISOString(), '2026-11-26T04:05:06.000Z');
  t.same(decodeCall('<methodCall><methodName>x.y</methodName></methodCall>'), { method: 'x.y', params: [] }, 'params are optional');
});

t.test('faults decode to XmlRpcFault', async (t) => {
  t.throws(() => decodeResponse(encodeFault(Fault.AUTH_FAILED, 'authentication failed')), { name: 'XmlRpcFault', faultCode: 1, faultString: 'authentication failed' });
});

t.test('malformed and hostile input is refused with a fault code, never a crash', async (t) => {
  const cases: [string, string, number][] = [
    ['not XML', 'hello', Fault.PARSE_ERROR],
    ['unclosed tag', '<methodCall><methodName>a</methodName>', Fault.PARSE_ERROR],
    ['entity bomb', '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><methodCall><methodName>&a;</methodName></methodCall>', Fault.PARSE_ERROR],
    ['wrong root', '<methodResponse><params/></methodResponse>', Fault.INVALID_REQUEST],
    ['no method name', '<methodCall><params/></methodCall>', Fault.INVALID_REQUEST],
    ['bad method name', '<methodCall><methodName>a b;rm</methodName></methodCall>', Fault.INVALID_REQUEST],
    ['bad int', '<methodCall><methodName>a</methodName><params><param><value><int>1e9</int></value></param></params></methodCall>', Fault.INVALID_REQUEST],
    ['bad boolean', '<methodCall><methodName>a</methodName><params><param><value><boolean>yes</boolean></value></param></params></methodCall>', Fault.INVALID_REQUEST],
    ['unknown type', '<methodCall><methodName>a</methodName><params><param><value><float>1</float></value></param></params></methodCall>', Fault.INVALID_REQUEST],
    ['member without value', '<methodCall><methodName>a</methodName><params><param><value><struct><member><name>x</name></member></struct></value></param></params></methodCall>', Fault.INVALID_REQUEST],
    ['__proto__ member', '<methodCall><methodName>a</methodName><params><param><value><struct><member><name>__proto__</name><value>1</value></member></struct></value></param></params></methodCall>', Fault.INVALID_REQUEST],
    ['text among elements', '<methodCall><methodName>a</methodName><params>junk<param><value>1</value></param></params></methodCall>', Fault.INVALID_REQUEST],
    ['too deep', `<methodCall><methodName>a</methodName><params><param>${'<value><array><data>'.repeat(30)}${'</data></array></value>'.repeat(30)}</param></params></methodCall>`, Fault.INVALID_REQUEST],
    ['deeper than the parser allows', `<methodCall><methodName>a</methodName><params><param>${'<value><array><data>'.repeat(80)}${'</data></array></value>'.repeat(80)}</param></params></methodCall>`, Fault.PARSE_ERROR],
  ];
  for (const [name, xml, code] of cases) {
    try { decodeCall(xml); t.fail(`${name}: accepted`); } catch (e) {
      t.ok(e instanceof XmlRpcFault, `${name}: XmlRpcFault`);
      t.equal((e as XmlRpcFault).faultCode, code, `${name}: code ${code} (${(e as Error).message})`);
    }
  }
  // Seeded fuzz: random mutations of a valid call never throw anything but XmlRpcFault.
  const good = encodeCall('m', [{ a: [1, 'x', true, null], b: 2.5 }]);
  let seed = 7;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  let others = 0;
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(good);
    for (let k = 0; k < 1 + rnd(4); k++) b[rnd(b.length)] = '<>/&a1 "'.charCodeAt(rnd(8));
    try { decodeCall(b.toString('latin1')); } catch (e) { if (!(e instanceof XmlRpcFault)) others++; }
  }
  t.equal(others, 0, '2000 mutated documents: only XmlRpcFaults');
});
