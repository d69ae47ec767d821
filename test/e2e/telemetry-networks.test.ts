// Every network in MQTT (issue #14) on the virtual board, against a real Mosquitto broker in the client namespace:
// the board's four networks (wan, lan, the third internal network `guest` on guest0, sync) in both nodes'
// retained state and as Home Assistant entities (link, CARP state, address) with stable unique ids; a pulled guest
// cable shown as link OFF (its vhid INIT) while the pair moves as one; and a network removed from a node's config while its daemon
// was stopped: its entities' retained configs are deleted (empty payloads) when it starts again, the peer's stay.
// Needs root; prefix 'mq1'.
import t from 'tap';
import { VirtualBoard } from '../../board/virtual/board.js';
import { Firmware, allAre, poll } from '../../board/virtual/firmware.js';
import { MqttLab, boardTelemetryConfig } from '../../board/virtual/demo/telemetry.js';

const PREFIX = 'mq1';
const NETS = ['wan', 'lan', 'guest', 'sync'];

if (process.getuid?.() !== 0) {
  t.plan(0, 'virtual board needs root');
} else {
  const board = new VirtualBoard({ prefix: PREFIX });
  const fw = new Firmware(board);
  const lab = new MqttLab(board);
  t.teardown(async () => { await lab.stop(); await board.down(); });
  const state = (n: string) => lab.json(lab.last(`duogate/${n}/state`));
  const config = (topic: string) => lab.last(`homeassistant/${topic}/config`);
  /** This node's retained discovery config topics, as a new subscriber gets them from the broker. */
  const retained = (node: string) => board.exec('client', 'mosquitto_sub', ['-h', '192.168.1.100', '-t', `homeassistant/+/duogate_${node}/+/config`, '-W', '2', '-F', '%r %t'])
    .stdout.trim().split('\n').filter((l) => l.startsWith('1 ')).map((l) => l.slice(2));

  t.test('every network in both nodes\' retained state and HA discovery, the guest network included', async (t) => {
    await board.up();
    fw.resetState();
    fw.writeConfigs('telnet', { edit: (c) => { Object.assign(c, boardTelemetryConfig()); } });
    await lab.startBroker();
    await lab.subscribe(['duogate/#', 'homeassistant/#']);
    await fw.startPair();

    const docs = await poll(() => {
      const p = state('primary'), s = state('secondary');
      return p?.networks?.guest?.carp === 'MASTER' && s?.networks?.guest?.carp === 'BACKUP' ? { p, s } : null;
    }, 8000);
    t.ok(docs, 'both states carry the networks: guest MASTER on the primary, BACKUP on the secondary');
    t.same(Object.keys(docs?.p.networks ?? {}), NETS, 'every network of the node, in status order');
    t.same(docs?.p.networks.guest, {
      kind: 'internal', device: 'guest0', vlan: null, address: '192.168.20.2/24', link: 'ON', carp: 'MASTER', vip: '192.168.20.1/24',
      vips: [{ vhid: 3, addresses: ['192.168.20.1/24'], state: 'MASTER' }],
    }, 'the guest network whole');
    t.match(docs?.s.networks.guest, { address: '192.168.20.3/24', link: 'ON', carp: 'BACKUP' }, 'the secondary\'s own address there');
    t.match(docs?.p.networks.sync, { kind: 'sync', device: 'sync0', link: 'ON', carp: 'NONE', vip: null }, 'the sync link: no VIP');

    for (const n of ['primary', 'secondary']) {
      for (const net of NETS) {
        const link = lab.json(config(`binary_sensor/duogate_${n}/net_${net}_link`));
        t.match(link?.uniq_id, new RegExp(`^duogate_${n}_[0-9a-f]{12}_net_${net}_link$`), `${n}: ${net} link entity, id from node, LAN MAC and network`);
        t.equal(link?.val_tpl, `{{ value_json.networks.${net}.link }}`);
        t.ok(lab.json(config(`sensor/duogate_${n}/net_${net}_address`)), `${n}: ${net} address entity`);
      }
      for (const net of ['wan', 'lan', 'guest']) t.same(lab.json(config(`sensor/duogate_${n}/net_${net}_carp`))?.ops, ['INIT', 'BACKUP', 'MASTER', 'MIXED', 'NONE'], `${n}: ${net} CARP entity`);
      t.notOk(retained(n).includes(`homeassistant/sensor/duogate_${n}/net_sync_carp/config`), `${n}: no CARP entity for the sync link (no VIP)`);
    }
  });

  t.test('a pulled guest cable: link OFF in the state, the pair moves as one, and back', async (t) => {
    const mark = lab.msgs.length;
    board.pullCable('primary', 'guest');
    const off = await lab.waitFor((m) => {
      if (m.topic !== 'duogate/primary/state') return false;
      const d = lab.json(m);
      return d?.networks?.guest?.link === 'OFF' && d.networks.guest.carp !== 'MASTER' && d.networks.wan.carp === 'BACKUP' && d.networks.lan.carp === 'BACKUP';
    }, 8000, mark);
    t.ok(off, `the primary reports guest link OFF, no network MASTER, wan and lan BACKUP (demoted: the pair moves as one): ${JSON.stringify(state('primary')?.networks)}`);
    // A vhid on a NIC without carrier is INIT, as in pfSense.
    t.equal(lab.json(off)?.networks?.guest?.carp, 'INIT', 'the guest network itself: INIT');
    t.ok(await poll(() => { const s = state('secondary'); return NETS.slice(0, 3).every((n) => s?.networks?.[n]?.carp === 'MASTER') ? s : null; }, 8000),
      'the secondary reports wan, lan and guest MASTER');
    board.plugCable('primary', 'guest');
    t.ok(await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 10_000), 'cable back: the primary preempts');
    t.ok(await poll(() => { const p = state('primary'); return p?.networks?.guest?.link === 'ON' && p.networks.guest.carp === 'MASTER' ? p : null; }, 8000), 'the state follows: link ON, MASTER');
  });

  t.test('a network removed while the daemon was stopped: its entities are deleted at the next start', async (t) => {
    await board.stopNode('primary');
    fw.writeConfigs('telnet', {
      nodes: ['primary'],
      edit: (c) => { Object.assign(c, boardTelemetryConfig()); delete c.interfaces.guest; c.carp.vips = c.carp.vips.filter((v: any) => v.interface !== 'guest'); },
    });
    t.ok(retained('primary').includes('homeassistant/binary_sensor/duogate_primary/net_guest_link/config'), 'before: the broker holds the guest entities');
    const mark = lab.msgs.length;
    await fw.start('primary', 20_000);
    const gone = ['binary_sensor/duogate_primary/net_guest_link', 'sensor/duogate_primary/net_guest_carp', 'sensor/duogate_primary/net_guest_address'];
    for (const x of gone) {
      t.ok(await lab.waitFor((m) => m.topic === `homeassistant/${x}/config` && m.payload === '', 8000, mark), `${x}: empty retained config published`);
    }
    const now = retained('primary');
    t.notOk(now.some((x) => x.includes('net_guest')), `the broker holds no guest entity of the primary: ${now.filter((x) => x.includes('net_')).join(' ')}`);
    t.ok(now.includes('homeassistant/binary_sensor/duogate_primary/net_lan_link/config'), 'the primary\'s other networks stay');
    t.ok(retained('secondary').includes('homeassistant/binary_sensor/duogate_secondary/net_guest_link/config'), 'the secondary\'s guest entities stay');
    const p = await poll(() => { const d = state('primary'); return d?.networks && !('guest' in d.networks) ? d : null; }, 8000);
    t.same(Object.keys(p?.networks ?? {}), ['wan', 'lan', 'sync'], 'the primary\'s state lists its three networks');
  });
}
