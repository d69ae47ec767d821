// The mqtt: and peer: sections: schema defaults, unknown keys refused, and the `duogate check` findings.
import t from 'tap';
import { parseConfigText } from '../../host/config/load.js';
import { checkConfig } from '../../host/config/check.js';
import { describeError } from '../../host/telemetry/publisher.js';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { nodeConfigText } from '../helpers/config.js';

const base = (extra: string, peerAddrs = true) => nodeConfigText({ name: 'gw-a', peers: peerAddrs, extra });
const findings = (text: string, peerText?: string) => checkConfig(parseConfigText(text), peerText ? parseConfigText(peerText) : undefined)
  .filter((f) => /^(mqtt|peer)/.test(f.field) || /heartbeat/.test(f.message)).map((f) => `${f.level} ${f.field}`);

t.test('defaults fill in; a typo is an error naming the field', async (t) => {
  const c = parseConfigText(base('mqtt: {url: "mqtt://192.168.1.100:1883"}\npeer: {key: 0123456789abcdef}')) as any;
  t.same(c.mqtt, { url: 'mqtt://192.168.1.100:1883', insecure: false, prefix: 'duogate', interval_s: 15, keepalive_s: 3, backoff_min_s: 1, backoff_max_s: 30, discovery: { enabled: true, prefix: 'homeassistant' }, commands: false });
  t.same(c.peer, { key: '0123456789abcdef', port: 7201, interval_ms: 1000, dead_after: 3, lan_path: true });
  t.throws(() => parseConfigText(base('mqtt: {url: "mqtt://b:1883", keepalive: 3}')), /mqtt\.keepalive: unknown field/);
  t.throws(() => parseConfigText(base('mqtt: {url: "http://b:1883"}')), /mqtt\.url/);
  t.throws(() => parseConfigText(base('mqtt: {url: "mqtt://b", discovery: {prefix: "home assistant"}}')), /mqtt\.discovery\.prefix/);
  t.throws(() => parseConfigText(base('peer: {key: short}')), /peer\.key: must NOT have fewer than 16 characters/);
  t.throws(() => parseConfigText(base('peer: {key: 0123456789abcdef, interval_ms: 10}')), /peer\.interval_ms/);
});

t.test('duogate check: what the heartbeat and the broker connection need', async (t) => {
  t.same(findings(base('peer: {key: 0123456789abcdef}')), [], 'a complete peer section is clean');
  t.same(findings(base('peer: {key: 0123456789abcdef}', false)).filter((f) => f.startsWith('error')), ['error interfaces.sync.peer']);
  const a = base('peer: {key: 0123456789abcdef}');
  t.same(findings(a, a.replace('0123456789abcdef', 'fedcba9876543210').replace('gw-a, role: primary', 'gw-b, role: secondary')), ['error peer.key'], 'keys differ between the nodes');
  t.same(findings(a, base('').replace('gw-a, role: primary', 'gw-b, role: secondary')), ['warning peer'], 'only one node has peer:');
  t.same(findings(base('mqtt: {url: "mqtts://b:8883", ca: /nonexistent/ca.pem}')), ['error mqtt.ca']);
  t.same(findings(base('mqtt: {url: "mqtt://b:1883", username: u, password: p}')), ['warning mqtt.password'], 'clear-text password');
  t.same(findings(base('mqtt: {url: "mqtts://b:8883", insecure: true, commands: true}')), ['warning mqtt.insecure', 'warning mqtt.commands']);
  t.same(findings(base('mqtt: {url: "mqtt://b:1883", backoff_min_s: 10, backoff_max_s: 5}')), ['error mqtt.backoff_min_s']);
});

t.test('duogate check: a client certificate (mqtt.cert, mqtt.key)', async (t) => {
  const dir = t.testdir();
  const f = (n: string) => path.join(dir, n);
  const mq = (extra: string, url = 'mqtts://b:8883') => base(`mqtt: {url: "${url}", ${extra}}`);
  t.same(findings(mq(`cert: ${f('none.pem')}`)), ['error mqtt.key', 'error mqtt.cert'], 'cert without key; cert does not exist');
  t.same(findings(mq(`key: ${f('none.key')}`)), ['error mqtt.cert', 'error mqtt.key'], 'key without cert; key does not exist');
  t.same(findings(mq(`cert: ${f('none.pem')}, key: ${f('none.key')}`)), ['error mqtt.cert', 'error mqtt.key'], 'neither file exists');
  writeFileSync(f('junk.pem'), 'not a certificate\n');
  t.same(findings(mq(`cert: ${f('junk.pem')}, key: ${f('junk.pem')}`)), ['error mqtt.key'], 'files that are not PEM');
  t.match(checkConfig(parseConfigText(mq(`cert: ${f('junk.pem')}, key: ${f('junk.pem')}`))).find((x) => x.field === 'mqtt.key')?.message, /not a usable client certificate and private key/);
  t.same(findings(mq(`cert: ${f('junk.pem')}, key: ${f('junk.pem')}`, 'mqtt://b:1883')), ['error mqtt.key', 'warning mqtt.cert', 'warning mqtt.key'], 'unused over mqtt://');
  t.throws(() => parseConfigText(mq('cert: ""')), /mqtt\.cert/);

  let ssl = true;
  try { execFileSync('openssl', ['version'], { stdio: 'pipe' }); } catch { ssl = false; }
  t.test('real files (openssl)', { skip: ssl ? false : 'no openssl' }, async (t) => {
    const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    for (const n of ['a', 'b']) run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', f(`${n}.key`), '-out', f(`${n}.pem`), '-days', '1', '-subj', `/CN=${n}`]);
    t.same(findings(mq(`ca: ${f('a.pem')}, cert: ${f('a.pem')}, key: ${f('a.key')}`)), [], 'a certificate and its key are clean');
    t.same(findings(mq(`cert: ${f('a.pem')}, key: ${f('b.key')}`)), ['error mqtt.key'], 'the key of another certificate');
    t.same(findings(mq(`cert: ${f('a.key')}, key: ${f('a.pem')}`)), ['error mqtt.key'], 'cert and key swapped');
    t.same(findings(mq(`cert: ${f('a.pem')}, key: ${f('a.key')}`, 'mqtt://b:1883')), ['warning mqtt.cert', 'warning mqtt.key'], 'unused over mqtt://');
  });
});

t.test('connection errors: the broker refusing or wanting a client certificate says what to do', async (t) => {
  const ossl = (text: string, n: number, code: string) => Object.assign(new Error(`80CC13D7CE7F0000:error:0A00045C:SSL routines:ssl3_read_bytes:${text}:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number ${n}\n`), { code });
  t.equal(describeError(ossl('tlsv13 alert certificate required', 116, 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'), false),
    'tlsv13 alert certificate required (SSL alert number 116): the broker requires a client certificate: set mqtt.cert and mqtt.key');
  t.equal(describeError(ossl('tlsv1 alert unknown ca', 48, 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), true),
    'tlsv1 alert unknown ca (SSL alert number 48): the broker does not trust the CA that signed mqtt.cert: use a certificate from the CA in the broker\'s cafile');
  t.match(describeError(ossl('sslv3 alert certificate expired', 45, 'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED'), true), /expired \(SSL alert number 45\): the broker refused the client certificate in mqtt\.cert$/);
  t.equal(describeError(Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }), false), 'self-signed certificate in certificate chain', 'other errors unchanged');
  t.equal(describeError(Object.assign(new Error('Connection refused: Not authorized'), { code: 5 }), false), 'Connection refused: Not authorized');
});
