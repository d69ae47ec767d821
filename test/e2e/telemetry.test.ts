// MQTT telemetry and pair-health alarms on the virtual board, against a real Mosquitto broker in the client
// namespace (192.168.1.100:1883): both nodes' retained state and HA discovery, the takeover event within 1 s,
// the last will `offline` of a powered-off node, split brain and sync-link-down reported by both nodes, and a
// dead broker shown in status while CARP carries on. Needs root; prefix 'dgt-tel'.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { VirtualBoard } from '../../board/virtual/board.js';
import { Firmware, allAre, poll, sleep } from '../../board/virtual/firmware.js';
import { MqttLab, boardTelemetryConfig } from '../../board/virtual/demo/telemetry.js';
import type { NodeName } from '../../board/virtual/board.js';

const PREFIX = 'dgt-tel';
/**
 * The board's node configs reduced to CARP + this feature (other features have their own tests).
 * `secondaryMqtt` replaces the secondary's mqtt: section (and leaves the primary's file alone).
 */
function writeConfigs(fw: Firmware, secondaryMqtt?: Record<string, unknown>): void {
  fw.writeConfigs('tel', {
    nodes: secondaryMqtt ? ['secondary'] : ['primary', 'secondary'],
    edit: (c, n) => {
      Object.assign(c, boardTelemetryConfig());
      // Commands on the secondary only: the primary must ignore its command topic.
      if (n === 'secondary') c.mqtt.commands = true;
      if (secondaryMqtt && n === 'secondary') c.mqtt = secondaryMqtt;
    },
  });
}


if (process.getuid?.() !== 0) {
  t.plan(0, 'virtual board needs root');
} else {
  const board = new VirtualBoard({ prefix: PREFIX });
  const fw = new Firmware(board);
  const lab = new MqttLab(board);
  t.teardown(async () => { await lab.stop(); await board.down(); });
  const alarms = async (n: NodeName) => { try { return ((await fw.status(n)).peer?.alarms ?? []).map((a: any) => a.key); } catch { return []; } };

  t.test('retained state and HA discovery of both nodes, takeover event, last will on power-off', async (t) => {
    await board.up();
    fw.resetState();
    writeConfigs(fw);
    await lab.startBroker();
    await lab.subscribe(['duogate/#', 'homeassistant/#']);
    await fw.start('primary', 20_000);
    await sleep(300);
    await fw.start('secondary', 20_000);
    t.ok(await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 8000), 'pair converged: primary MASTER');

    const states = await poll(() => {
      const p = lab.json(lab.last('duogate/primary/state')); const s = lab.json(lab.last('duogate/secondary/state'));
      return p?.carp === 'MASTER' && s?.carp === 'BACKUP' && s?.peer?.connected === 'ON' ? { p, s } : null;
    }, 8000);
    t.ok(states, 'subscriber sees both nodes\' state (primary MASTER, secondary BACKUP, peer connected)');
    t.equal(states?.p.vips.vhid1.state, 'MASTER');
    t.equal(states?.s.vips.vhid2.master, 'OFF');
    t.equal(states?.p.problem, 'OFF', 'no alarm on a healthy pair');
    // Every network is in the state, the board's third internal network (guest0, vhid 3) too.
    t.same(Object.keys(states?.p.networks ?? {}), ['wan', 'lan', 'guest', 'sync'], 'the state lists every network');
    t.match(states?.p.networks?.guest, { device: 'guest0', link: 'ON', carp: 'MASTER', vip: '192.168.20.1/24' }, 'the guest network on the primary');
    // A new subscriber gets both states at once: they are retained.
    const fresh = board.exec('client', 'mosquitto_sub', ['-h', '192.168.1.100', '-t', 'duogate/+/state', '-t', 'duogate/+/availability', '-C', '4', '-W', '3', '-F', '%r %t %p']);
    const lines = fresh.stdout.trim().split('\n');
    t.equal(lines.filter((l) => /^1 duogate\/(primary|secondary)\/state \{/.test(l)).length, 2, 'both states retained');
    t.equal(lines.filter((l) => /^1 duogate\/(primary|secondary)\/availability online$/.test(l)).length, 2, 'both online (retained)');
    for (const n of ['primary', 'secondary']) {
      const d = lab.json(lab.last(`homeassistant/binary_sensor/duogate_${n}/carp_master/config`));
      t.equal(d?.stat_t, '~/state', `${n}: HA discovery for carp_master on the broker`);
      t.equal(d?.['~'], `duogate/${n}`);
      t.ok(lab.last(`homeassistant/sensor/duogate_${n}/carp_state_vhid1/config`), `${n}: carp_state_vhid1 entity`);
      t.ok(lab.json(lab.last(`homeassistant/binary_sensor/duogate_${n}/net_guest_link/config`)), `${n}: guest network link entity`);
      t.ok(lab.json(lab.last(`homeassistant/sensor/duogate_${n}/net_guest_carp/config`)), `${n}: guest network CARP entity`);
    }

    const mark = lab.msgs.length;
    const cut = Date.now();
    await board.powerOff('primary');
    const ev = await lab.waitFor((m) => m.topic === 'duogate/secondary/event' && /"type":"transition"/.test(m.payload) && /"to":"MASTER"/.test(m.payload), 6000, mark);
    t.ok(ev, 'takeover event from the secondary');
    const e = lab.json(ev);
    const lag = ev ? ev.rx - Date.parse(e.at) : Infinity;
    t.comment(`mqtt_takeover_event_ms=${lag.toFixed(1)} (vhid ${e?.vhid}, why: ${e?.why})`);
    t.ok(lag >= 0 && lag <= 1000, `takeover event received ${lag.toFixed(1)} ms after the transition (<= 1000)`);
    const off = await lab.waitFor((m) => m.topic === 'duogate/primary/availability' && m.payload === 'offline', 10_000, mark);
    t.ok(off, 'powered-off primary shown offline by its last will');
    if (off) t.comment(`offline seen ${(off.rx - cut).toFixed(0)} ms after the power cut (keepalive 1 s; mosquitto checks keepalives every 5 s)`);
    const lost = await lab.waitFor((m) => m.topic === 'duogate/secondary/event' && /"name":"peer_lost"/.test(m.payload) && /"active":true/.test(m.payload), 5000, mark);
    t.ok(lost, 'peer_lost alarm published by the secondary');
    const s = lab.json(await lab.waitFor((m) => m.topic === 'duogate/secondary/state' && /"problem":"ON"/.test(m.payload), 3000, mark));
    t.equal(s?.carp, 'MASTER', 'secondary state shows MASTER with the problem flag');
  });

  t.test('split brain (primary cut off the LAN switch, carrier up) is reported by both nodes', async (t) => {
    await board.powerOn('primary');
    await fw.start('primary', 20_000);
    t.ok(await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 10_000), 'primary back as MASTER');
    t.ok(await poll(async () => (await alarms('secondary')).length === 0 && (await alarms('primary')).length === 0, 8000), 'no alarms once both are up');
    const mark = lab.msgs.length;
    board.isolate('primary', 'lan');
    const both = await fw.waitStates((p, s) => p['1'] === 'MASTER' && s['1'] === 'MASTER', 6000);
    t.ok(both, 'both nodes MASTER for vhid 1');
    const t0 = Date.now();
    const seen = await poll(async () => (await alarms('primary')).includes('split_brain:1') && (await alarms('secondary')).includes('split_brain:1'), 6000);
    t.ok(seen, 'split_brain:1 in the status of both nodes');
    t.comment(`split brain raised on both ${Date.now() - t0} ms after both were seen MASTER`);
    t.notOk((await alarms('primary')).includes('split_brain:2'), 'vhid 2 (WAN) is not split');
    const st = await fw.status('primary');
    t.match(st.peer.alarms.find((a: any) => a.key === 'split_brain:1')?.message, /both MASTER for vhid 1/);
    t.ok(await lab.waitFor((m) => m.topic === 'duogate/secondary/event' && /"name":"split_brain"/.test(m.payload), 3000, mark), 'secondary published the split_brain event');
    // The primary cannot reach the broker (it is on the LAN): its event waits in the queue and is sent on reconnect.
    board.reconnect('primary', 'lan');
    t.ok(await poll(async () => !(await alarms('primary')).includes('split_brain:1') && !(await alarms('secondary')).includes('split_brain:1'), 6000), 'split brain cleared after reconnect');
    const queued = await lab.waitFor((m) => m.topic === 'duogate/primary/event' && /"name":"split_brain"/.test(m.payload), 20_000, mark);
    t.ok(queued, 'the primary\'s split_brain event reached the broker after its LAN came back');
  });

  t.test('sync link down while the peer is alive on the LAN: both nodes alarm', async (t) => {
    board.isolate('primary', 'sync');
    const seen = await poll(async () => (await alarms('primary')).includes('sync_link_down') && (await alarms('secondary')).includes('sync_link_down'), 5000);
    t.ok(seen, 'sync_link_down on both nodes');
    t.same(await fw.states('primary'), { 1: 'MASTER', 2: 'MASTER', 3: 'MASTER' }, 'CARP unaffected (adverts go over LAN/WAN)');
    const s = await fw.status('secondary');
    t.equal(s.peer.sync_link, 'silent');
    t.equal(s.peer.lan_path, 'ok');
    board.reconnect('primary', 'sync');
    t.ok(await poll(async () => (await alarms('primary')).length === 0 && (await alarms('secondary')).length === 0, 5000), 'cleared when the sync link is back');
  });

  t.test('heartbeat receiver: wrong source, forged HMAC and replays are dropped and counted', async (t) => {
    const { encode } = await import('../../host/peer/codec.js');
    const key = String(boardTelemetryConfig().peer.key);
    /** One UDP datagram from `from` (an address of that namespace) to the primary's port 7201. */
    const send = (ns: 'secondary' | 'client', from: string, to: string, buf: Buffer) => board.exec(ns, process.execPath, ['-e',
      `const s=require('dgram').createSocket('udp4');s.bind(0,'${from}',()=>s.send(Buffer.from('${buf.toString('hex')}','hex'),7201,'${to}',()=>s.close()))`], { check: true });
    const counters = async () => (await fw.status('primary')).peer.counters;
    const hb = (over: Record<string, unknown>) => ({ node: 'secondary', boot: 'feedfacefeedface', seq: 5, at: Date.now(), path: 'sync' as const, vips: [], maintenance: false, alarms: [], ...over });
    const c0 = await counters();
    const inputDrops = () => Number(/counter packets (\d+) bytes \d+ drop comment "not a service of this node"/.exec(board.exec('primary', 'nft', ['list', 'chain', 'inet', 'duogate', 'input']).stdout)?.[1] ?? -1);
    const d0 = inputDrops();
    send('client', '192.168.1.100', '192.168.1.2', encode(hb({}), key));
    send('secondary', '172.16.1.2', '172.16.1.1', encode(hb({}), 'not-the-key-of-this-pair'));
    send('secondary', '172.16.1.2', '172.16.1.1', encode(hb({ boot: 'aaaaaaaaaaaaaaaa', at: Date.now() - 3600_000 }), key));
    const ok = encode(hb({}), key);
    send('secondary', '172.16.1.2', '172.16.1.1', ok);
    send('secondary', '172.16.1.2', '172.16.1.1', ok);
    const c1 = await poll(async () => { const c = await counters(); return c.replay - c0.replay >= 2 ? c : null; }, 3000);
    t.ok(c1, 'counted');
    // A LAN host never reaches the heartbeat: the input policy admits only the peer's addresses (docs/security.md).
    t.equal(c1.unknown_source - c0.unknown_source, 0, 'from the client: never reaches the daemon');
    t.ok(inputDrops() > d0, 'it is dropped by the input policy ("not a service of this node")');
    t.equal(c1.bad_hmac - c0.bad_hmac, 1, 'from the peer\'s address with another key: bad_hmac');
    t.equal(c1.replay - c0.replay, 2, 'an old boot (clock an hour off) and a repeated sequence number: replay');
    t.same(await fw.states('primary'), { 1: 'MASTER', 2: 'MASTER', 3: 'MASTER' }, 'CARP untouched');
  });

  t.test('Home Assistant birth message and maintenance commands (on for the secondary only)', async (t) => {
    const pub = (topic: string, msg: string) => board.exec('client', 'mosquitto_pub', ['-h', '192.168.1.100', '-q', '1', '-t', topic, '-m', msg], { check: true });
    const sw = lab.json(lab.last('homeassistant/switch/duogate_secondary/maintenance/config'));
    t.equal(sw?.cmd_t, '~/cmd/maintenance', 'secondary: maintenance is a switch with a command topic');
    t.equal(lab.last('homeassistant/switch/duogate_primary/maintenance/config')?.payload ?? '', '', 'primary: no command entity');
    let mark = lab.msgs.length;
    pub('homeassistant/status', 'online');
    const again = await poll(() => {
      const n = (node: string) => lab.msgs.slice(mark).filter((m) => m.topic.startsWith(`homeassistant/`) && m.topic.includes(`/duogate_${node}/`)).length;
      return n('primary') >= 10 && n('secondary') >= 10;
    }, 3000);
    t.ok(again, 'both nodes republish their discovery when Home Assistant comes online');

    mark = lab.msgs.length;
    pub('duogate/secondary/cmd/maintenance', 'ON');
    t.ok(await poll(async () => (await fw.status('secondary')).maintenance.on, 3000), 'secondary entered maintenance from MQTT');
    t.ok(await lab.waitFor((m) => m.topic === 'duogate/secondary/event' && /"type":"maintenance","on":true,"by":"mqtt"/.test(m.payload), 3000, mark), 'maintenance event (by mqtt)');
    t.ok(await lab.waitFor((m) => m.topic === 'duogate/secondary/state' && /"maintenance":"ON"/.test(m.payload), 3000, mark), 'state shows maintenance ON');
    pub('duogate/secondary/cmd/maintenance', 'reboot');
    t.ok(await poll(async () => (await fw.status('secondary')).mqtt.commands_rejected === 1, 3000), 'an unknown command is rejected and counted');
    pub('duogate/secondary/cmd/maintenance', 'OFF');
    t.ok(await poll(async () => !(await fw.status('secondary')).maintenance.on, 3000), 'and left it');
    pub('duogate/primary/cmd/maintenance', 'ON');
    await sleep(1000);
    t.notOk((await fw.status('primary')).maintenance.on, 'the primary (commands off) ignores its command topic');
    t.same(await fw.states('primary'), { 1: 'MASTER', 2: 'MASTER', 3: 'MASTER' });
  });

  t.test('a frozen broker (SIGSTOP) does not slow CARP; queued events follow when it thaws', async (t) => {
    const { request } = await import('../../host/control/client.js');
    lab.broker!.kill('SIGSTOP');
    const mark = lab.msgs.length;
    const t0 = Date.now();
    await request(fw.socket('primary'), { cmd: 'maintenance', action: 'enter', by: 'test' });
    const moved = await fw.waitStates((p, s) => allAre(p, 'BACKUP') && allAre(s, 'MASTER'), 5000, 10);
    const handover = Date.now() - t0;
    t.ok(moved && handover < 1500, `maintenance handover in ${handover} ms with the broker frozen (< 1500)`);
    t.comment(`maintenance handover with the broker frozen: ${handover} ms`);
    const st = await poll(async () => { const m = (await fw.status('primary')).mqtt; return m.state !== 'connected' && /Keepalive timeout|connack timeout/.test(m.last_error ?? '') ? m : null; }, 8000);
    t.ok(st, 'the primary noticed the dead broker (keepalive timeout) and backs off');
    await request(fw.socket('primary'), { cmd: 'maintenance', action: 'leave', by: 'test' });
    t.ok(await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 5000, 10), 'and back, still without the broker');
    lab.broker!.kill('SIGCONT');
    const ev = await lab.waitFor((m) => m.topic === 'duogate/primary/event' && /"type":"maintenance","on":true,"by":"test"/.test(m.payload), 15_000, mark);
    // Either from the socket buffer the broker reads on thawing, or re-sent from the queue after the reconnect
    // ("queued": true): at least once, as QoS 1 promises.
    t.ok(ev, 'the maintenance event reached the broker after it thawed');
    t.ok(await poll(async () => (await fw.status('primary')).mqtt.connected && (await fw.status('secondary')).mqtt.connected, 10_000), 'both reconnected');
  });

  t.test('daemon killed with SIGKILL (links up): offline at once', async (t) => {
    const mark = lab.msgs.length;
    const t0 = Date.now();
    await board.stopNode('secondary', 'SIGKILL');
    const off = await lab.waitFor((m) => m.topic === 'duogate/secondary/availability' && m.payload === 'offline', 3000, mark);
    t.ok(off, 'the broker published the last will');
    if (off) t.comment(`offline ${Math.round(off.rx - t0)} ms after SIGKILL (the kernel closed the TCP connection)`);
  });

  t.test('a dead broker: backoff with the error in status, CARP carries on', async (t) => {
    await lab.stop();
    const st = await poll(async () => { const s = (await fw.status('primary')).mqtt; return s.state === 'backoff' && s.last_error ? s : null; }, 8000);
    t.ok(st, 'mqtt section shows backoff and the last error');
    t.comment(`last_error: ${st?.last_error}`);
    t.match(st?.last_error ?? '', /192\.168\.1\.100/);
    await sleep(1500);
    t.same(await fw.states('primary'), { 1: 'MASTER', 2: 'MASTER', 3: 'MASTER' }, 'CARP carries on while the broker is gone');
    t.equal((await fw.status('primary')).carp_counters.sent > 0, true);
  });

  t.test('mqtts with a CA and a password: refused credentials and an unknown CA show in status; the right ones connect', async (t) => {
    const tls = new MqttLab(board, 'client', 'tls');
    t.teardown(() => tls.stop());
    await tls.startBroker({ port: 8883, tls: true, users: { duogate: 'right-password' } });
    await tls.subscribe(['duogate/#']);
    // An unrelated CA, to show that the broker's certificate is really verified.
    const other = path.join(board.runDir, 'mqtt-tls', 'other-ca.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', other + '.key', '-out', other, '-days', '2', '-subj', '/CN=other CA'], { stdio: 'pipe' });
    const tryWith = async (mqtt: Record<string, unknown>, want: RegExp) => {
      writeConfigs(fw, { url: 'mqtts://192.168.1.100:8883', ca: tls.caFile, username: 'duogate', keepalive_s: 1, backoff_max_s: 1, ...mqtt });
      await fw.start('secondary', 20_000);
      const st = await poll(async () => { const m = (await fw.status('secondary')).mqtt; return want.test(m.last_error ?? '') ? m : null; }, 6000);
      t.ok(st, `last_error ${want}`);
      t.comment(`last_error: ${st?.last_error}`);
      t.equal(st?.connected, false);
      await board.stopNode('secondary');
    };
    await tryWith({ password: 'wrong-password' }, /Not authorized|Bad user name or password/);
    await tryWith({ password: 'right-password', ca: other }, /certificate/);
    writeConfigs(fw, { url: 'mqtts://192.168.1.100:8883', ca: tls.caFile, username: 'duogate', password: 'right-password', keepalive_s: 1 });
    await fw.start('secondary', 20_000);
    const st = await tls.waitFor((m) => m.topic === 'duogate/secondary/state' && m.retained === false, 8000);
    t.ok(st, 'state published over TLS with the right password and CA');
    t.equal((await fw.status('secondary')).mqtt.connected, true);
    t.match(tls.json(st)?.node, 'secondary');
    // A clean stop (SIGTERM) disconnects cleanly, so the broker drops the will: the node says offline itself.
    const mark = tls.msgs.length;
    const r = await board.stopNode('secondary', 'SIGTERM');
    t.equal(r.forced, false, 'stopped within the timeout');
    t.ok(await tls.waitFor((m) => m.topic === 'duogate/secondary/availability' && m.payload === 'offline', 3000, mark), 'offline on a clean stop');
  });
  t.test('mqtts with a client certificate (require_certificate): none, or one from another CA, is refused for the TLS reason; the right one connects', async (t) => {
    const t0 = Date.now();
    const mtls = new MqttLab(board, 'client', 'mtls');
    t.teardown(() => mtls.stop());
    await mtls.startBroker({ port: 8884, tls: true, clientCerts: true });
    await mtls.subscribe(['duogate/#']); // with the lab's own client certificate (clientArgs)
    // The broker's log since `from` (the file is appended to across runs).
    const log = (from = 0) => { try { return readFileSync(path.join(mtls.dir, 'mosquitto.log'), 'utf8').slice(from); } catch { return ''; } };
    const start = log().length;
    // The broker really wants a certificate: the same mosquitto_pub without one is refused.
    const bare = board.exec('client', 'mosquitto_pub', ['-h', '192.168.1.100', '-p', '8884', '--cafile', mtls.caFile, '-t', 'lab/x', '-m', 'x'], { timeoutMs: 3000 });
    t.not(bare.status, 0, 'mosquitto_pub without a client certificate is refused');
    const url = 'mqtts://192.168.1.100:8884';
    const refused = async (what: string, mqtt: Record<string, unknown>, want: RegExp, brokerSays: RegExp | null) => {
      writeConfigs(fw, { url, ca: mtls.caFile, keepalive_s: 1, backoff_max_s: 1, ...mqtt });
      const mark = mtls.msgs.length, logMark = log().length;
      await fw.start('secondary', 20_000);
      const st = await poll(async () => { const m = (await fw.status('secondary')).mqtt; return want.test(m.last_error ?? '') ? m : null; }, 6000);
      t.ok(st, `${what}: last_error ${want}`);
      t.comment(`${what}: state ${st?.state}, last_error: ${st?.last_error}`);
      t.ok(['backoff', 'connecting'].includes(st?.state), `${what}: mqtt state ${st?.state} (backoff/connecting)`);
      t.equal(st?.connects, 0, `${what}: never connected`);
      t.equal(st?.connected, false);
      if (brokerSays) t.ok(await poll(() => brokerSays.test(log(logMark)), 3000), `${what}: the broker's log says ${brokerSays}`);
      await board.stopNode('secondary');
      t.notOk(mtls.msgs.slice(mark).some((m) => m.topic.startsWith('duogate/secondary/')), `${what}: nothing from the node reached the subscriber`);
    };
    await refused('no client certificate', {}, /alert certificate required.*set mqtt\.cert and mqtt\.key/, /peer did not return a certificate/);
    await refused('a client certificate from another CA', { cert: mtls.otherClientCertFile, key: mtls.otherClientKeyFile },
      /alert unknown ca.*does not trust the CA that signed mqtt\.cert/, /certificate verify failed/);
    // A key that belongs to another certificate makes tls.connect() throw: reported, and the daemon stays up.
    await refused('the key of another certificate', { cert: mtls.clientCertFile, key: mtls.otherClientKeyFile }, /mqtt\.cert .*mqtt\.key .*not a usable client certificate and private key \(.*key values mismatch\)/, null);

    writeConfigs(fw, { url, ca: mtls.caFile, cert: mtls.clientCertFile, key: mtls.clientKeyFile, keepalive_s: 1 });
    const mark = mtls.msgs.length;
    await fw.start('secondary', 20_000);
    t.ok(await mtls.waitFor((m) => m.topic === 'duogate/secondary/state', 8000, mark), 'state published over mutual TLS with the right certificate and key');
    const m = (await fw.status('secondary')).mqtt;
    t.equal(m.connected, true, 'status: connected');
    t.equal(m.last_error, null, 'status: no error');
    // A fresh subscriber (with the lab's certificate) gets the node's state as a retained message.
    const r = board.exec('client', 'mosquitto_sub', [...mtls.clientArgs(), '-t', 'duogate/secondary/state', '-C', '1', '-W', '3', '-F', '%r %t %p']);
    t.match(r.stdout, /^1 duogate\/secondary\/state \{.*"node":"secondary"/, 'retained state at a new subscriber');
    t.match(log(start), /as duogate-secondary \([^)]*u'duogate-client'\)/, 'the broker took the certificate\'s CN as the username (use_identity_as_username)');
    await board.stopNode('secondary');
    t.comment(`mutual TLS subtest: ${Date.now() - t0} ms`);
  });
}
