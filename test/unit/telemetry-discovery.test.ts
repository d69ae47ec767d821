// Home Assistant discovery payloads (host/telemetry/discovery.ts) and the state document they read
// (host/telemetry/state.ts): topics, required keys, known abbreviations only, and every value template
// rendering to a value the entity accepts when evaluated against a real state document.
import t from 'tap';
import { discoveryMessages, staleDiscovery, type DiscoveryInput } from '../../host/telemetry/discovery.js';
import { SyncWatch, collectAlarms, featureFigures, netCarp, networksDocument, stateDocument, syncProblems } from '../../host/telemetry/state.js';

const TOPIC = /^homeassistant\/(binary_sensor|sensor|switch)\/[a-zA-Z0-9_-]+\/[a-zA-Z0-9_-]+\/config$/;
// HA's abbreviations (homeassistant/components/mqtt/abbreviations.py) for every key we use; a typo is an error.
const KNOWN = new Set(['~', 'name', 'uniq_id', 'stat_t', 'avty_t', 'pl_avail', 'pl_not_avail', 'dev', 'o', 'exp_aft', 'val_tpl',
  'pl_on', 'pl_off', 'ic', 'dev_cla', 'json_attr_t', 'json_attr_tpl', 'ops', 'cmd_t', 'stat_on', 'stat_off', 'ent_cat', 'stat_cla', 'unit_of_meas']);
const DEVICE_KEYS = new Set(['ids', 'name', 'mf', 'mdl', 'sw', 'cns']);
const CATEGORIES = new Set(['config', 'diagnostic']);
const STATE_CLASSES = new Set(['measurement', 'total', 'total_increasing']);

/** A `duogate status` object as the daemon returns it (CARP + peer + one of each feature section). */
function status(over: Record<string, unknown> = {}): Record<string, any> {
  return {
    node: 'gw-a', role: 'primary', carp_role: 'MASTER', uptime_s: 12, maintenance: { on: false }, demotion: 0, preempt: true,
    links: { lan: { device: 'lan0', carrier: true } },
    // As the daemon reports them (host/daemon/daemon.ts status): a VLAN network without a VIP, the sync link.
    networks: {
      wan: { kind: 'wan', device: 'wan0', address: '203.0.113.2/24', carrier: true, vips: [{ vhid: 2, addresses: ['203.0.113.1/24'], state: 'BACKUP' }] },
      lan: { kind: 'internal', device: 'lan0', address: '192.168.1.2/24', carrier: true, vips: [{ vhid: 1, addresses: ['192.168.1.1/24'], state: 'MASTER' }] },
      guest: { kind: 'internal', device: 'guest0', address: '192.168.20.2/24', carrier: false, vips: [{ vhid: 3, addresses: ['192.168.20.1/24'], state: 'MASTER' }, { vhid: 4, addresses: ['192.168.20.4/24'], state: 'BACKUP' }] },
      iot: { kind: 'internal', device: 'lan0.30', vlan: 30, address: '10.30.0.2/24', carrier: true, vips: [] },
      sync: { kind: 'sync', device: 'sync0', address: '172.16.1.1/30', carrier: true, vips: [] },
    },
    vips: [
      { interface: 'lan', device: 'lan0', vhid: 1, addresses: ['192.168.1.1/24'], state: 'MASTER', advbase: 1, advskew: 0, advertised_skew: 0, demote: 0, last_change: '2026-01-01T00:00:00.000Z', last_change_why: 'start' },
      { interface: 'wan', device: 'wan0', vhid: 2, addresses: ['203.0.113.1/24'], state: 'BACKUP', advbase: 1, advskew: 0, advertised_skew: 0, demote: 0, last_change: null, last_change_why: null },
    ],
    carp_counters: { accepted: 5, sent: 100, bad_hmac: 2, short: 1 },
    peer: { peer: 'gw-b', sync_link: 'ok', lan_path: 'ok', alarms: [] },
    // Each feature's section as it reports it: the primary's view of config sync, state sync with a silent peer.
    configsync: { revision: { seq: 7 }, peer: { state: 'in_sync', revisions_behind: 0 } },
    statesync: { enabled: true, mode: 'active', states_table: 1234, peer: { last_heard_ms_ago: 9000 }, bulk: { state: 'done' } },
    dhcp: { ha_state: 'hot-standby', leases: 17 },
    mqtt: { connected: true },
    ...over,
  };
}

function input(over: Partial<DiscoveryInput> = {}): DiscoveryInput {
  return {
    discoveryPrefix: 'homeassistant', base: 'duogate/gw-a', node: 'gw-a', role: 'primary', version: '0.1.0', mac: '02:D6:01:01:00:01',
    vhids: [{ vhid: 1, interface: 'lan', addresses: ['192.168.1.1/24'] }, { vhid: 2, interface: 'wan', addresses: ['203.0.113.1/24'] }],
    networks: [{ name: 'wan', vips: 1 }, { name: 'lan', vips: 1 }, { name: 'guest', vips: 2 }, { name: 'iot', vips: 0 }, { name: 'sync', vips: 0 }],
    features: { configSync: true, stateSync: true, dhcp: true, peer: true }, commands: false, expireAfter: 55, ...over,
  };
}

/** Renders the `{{ value_json.a.b }}` templates we emit (a plain path: the only form used for states). */
function render(tpl: string, doc: any): string {
  const m = /^\{\{ value_json((?:\.[a-zA-Z0-9_]+)+) \}\}$/.exec(tpl);
  if (!m) throw new Error(`not a plain path template: ${tpl}`);
  let v = doc;
  for (const k of m[1].slice(1).split('.')) {
    if (v === null || typeof v !== 'object' || !(k in v)) throw new Error(`${tpl}: ${k} missing in the state document`);
    v = v[k];
  }
  return v === null ? 'None' : String(v); // Jinja renders None as "None", which HA reads as "unknown"
}

t.test('topics, required keys and abbreviations', async (t) => {
  const all = discoveryMessages(input());
  t.same(all.filter((m) => m.payload === '').map((m) => m.topic), ['homeassistant/sensor/duogate_gw-a/net_iot_carp/config', 'homeassistant/sensor/duogate_gw-a/net_sync_carp/config', 'homeassistant/switch/duogate_gw-a/maintenance/config'],
    'with every feature present only the command switch (commands are off) and the CARP sensors of networks without a VIP are deleted');
  const msgs = all.filter((m) => m.payload !== '');
  const ids = new Set<string>();
  t.ok(msgs.length >= 14, `${msgs.length} entities`);
  for (const m of all) t.match(m.topic, TOPIC, m.topic);
  for (const m of msgs) {
    t.match(m.topic, /\/duogate_gw-a\//, 'node id from the node name');
    const p = m.payload as Record<string, any>;
    for (const k of Object.keys(p)) t.ok(KNOWN.has(k), `${m.topic}: key ${k} is a known discovery key`);
    for (const k of ['name', 'uniq_id', 'stat_t', 'avty_t', 'dev', 'o', 'val_tpl']) t.ok(k in p, `${m.topic}: has ${k}`);
    t.equal(p['~'], 'duogate/gw-a');
    t.equal(p.stat_t, '~/state');
    t.equal(p.avty_t, '~/availability');
    t.same([p.pl_avail, p.pl_not_avail], ['online', 'offline']);
    t.notOk(ids.has(p.uniq_id), `${p.uniq_id} unique`);
    ids.add(p.uniq_id);
    t.match(p.uniq_id, /^duogate_gw-a_02d601010001_/, 'unique id carries the device id (node + MAC)');
    t.same(p.dev.ids, ['duogate_gw-a_02d601010001']);
    for (const k of Object.keys(p.dev)) t.ok(DEVICE_KEYS.has(k), `device key ${k}`);
    t.same(p.dev.cns, [['mac', '02:d6:01:01:00:01']]);
    t.equal(p.o.name, 'duogate', 'origin with a name');
    if (p.ent_cat) t.ok(CATEGORIES.has(p.ent_cat));
    if (p.stat_cla) t.ok(STATE_CLASSES.has(p.stat_cla));
    if (m.topic.includes('/binary_sensor/')) t.same([p.pl_on, p.pl_off], ['ON', 'OFF'], 'binary sensor payloads are the strings ON/OFF');
    if (p.dev_cla === 'enum') t.ok(Array.isArray(p.ops) && p.ops.length > 0, 'enum sensor lists its options');
    t.ok(p.exp_aft > 0, 'expire_after set');
  }
  const topics = msgs.map((m) => m.topic);
  for (const want of ['binary_sensor/duogate_gw-a/carp_master', 'sensor/duogate_gw-a/carp_state_vhid1', 'sensor/duogate_gw-a/carp_state_vhid2',
    'binary_sensor/duogate_gw-a/carp_master_vhid1', 'binary_sensor/duogate_gw-a/maintenance', 'binary_sensor/duogate_gw-a/problem',
    'binary_sensor/duogate_gw-a/config_in_sync', 'binary_sensor/duogate_gw-a/state_sync_ok', 'sensor/duogate_gw-a/states']) {
    t.ok(topics.includes(`homeassistant/${want}/config`), `entity ${want}`);
  }
});

t.test('every value template renders to a value its entity accepts', async (t) => {
  const doc = stateDocument(status(), { version: '0.1.0', self: 'mqtt' });
  for (const m of discoveryMessages(input())) {
    if (m.payload === '') continue;
    const p = m.payload as Record<string, any>;
    if (m.topic.endsWith('/peer_connected/config')) { t.match(p.val_tpl, /value_json\.peer\.connected/); t.equal((doc.peer as any).connected, 'ON'); continue; }
    const v = render(p.val_tpl, doc);
    if (m.topic.includes('/binary_sensor/') || m.topic.includes('/switch/')) t.ok(['ON', 'OFF'].includes(v), `${m.topic} → ${v}`);
    else if (p.dev_cla === 'enum') t.ok(p.ops.includes(v), `${m.topic} → ${v} in options`);
    else if (p.stat_cla) t.ok(Number.isFinite(Number(v)), `${m.topic} → ${v} is a number`);
    else t.ok(v.length > 0, `${m.topic} → ${v}`);
  }
  t.equal(render('{{ value_json.vips.vhid1.state }}', doc), 'MASTER');
  t.equal(render('{{ value_json.vips.vhid2.master }}', doc), 'OFF');
  t.equal(render('{{ value_json.master }}', doc), 'ON');
  t.equal(render('{{ value_json.states }}', doc), '1234');
  t.equal(render('{{ value_json.state_sync_ok }}', doc), 'OFF');
  t.equal(render('{{ value_json.drops_total }}', doc), '3');
});

t.test('absent features delete their entities; commands swap the maintenance sensor for a switch', async (t) => {
  const msgs = discoveryMessages(input({ features: { configSync: false, stateSync: false, dhcp: false, peer: true }, commands: true }));
  const byTopic = new Map(msgs.map((m) => [m.topic.split('/').slice(1, 4).join('/'), m.payload]));
  for (const k of ['binary_sensor/duogate_gw-a/config_in_sync', 'binary_sensor/duogate_gw-a/state_sync_ok', 'sensor/duogate_gw-a/states', 'sensor/duogate_gw-a/dhcp_leases', 'binary_sensor/duogate_gw-a/maintenance']) {
    t.equal(byTopic.get(k), '', `${k}: empty retained payload deletes it`);
  }
  const sw = byTopic.get('switch/duogate_gw-a/maintenance') as Record<string, any>;
  t.equal(sw.cmd_t, '~/cmd/maintenance');
  t.same([sw.pl_on, sw.pl_off, sw.stat_on, sw.stat_off], ['ON', 'OFF', 'ON', 'OFF']);
  t.notOk(discoveryMessages(input()).some((m) => m.topic.includes('/switch/') && m.payload !== ''), 'no command entity unless commands are on');
});

t.test('state document: figures from the features, alarms, null when a feature is absent', async (t) => {
  const withAlarm = status({ peer: { peer: 'gw-b', sync_link: 'silent', lan_path: 'ok', alarms: [{ name: 'sync_link_down', key: 'sync_link_down', message: 'sync link down: ...', since: 'x' }] } });
  const doc = stateDocument(withAlarm, { version: '1', self: 'mqtt' }) as any;
  t.equal(doc.problem, 'ON');
  t.same(doc.alarms.map((a: any) => [a.name, a.source]), [['sync_link_down', 'peer']]);
  t.equal(doc.config_in_sync, 'ON');
  t.equal(doc.dhcp_ha_state, 'hot-standby');
  t.equal(doc.dhcp_leases, 17);
  t.notOk('mqtt' in doc.services, 'telemetry does not publish its own section into the state');
  t.ok('statesync' in doc.services, 'feature sections ride along unchanged');
  t.equal(doc.maintenance, 'OFF');
  const bare = status(); delete bare.configsync; delete bare.statesync; delete bare.dhcp; delete bare.peer;
  t.same(featureFigures(bare), { config_in_sync: null, state_sync_ok: null, states: null, dhcp_ha_state: null, dhcp_leases: null });
  t.same(collectAlarms(bare), []);
  t.equal((stateDocument(bare, { version: '1' }) as any).problem, 'OFF');
});

t.test('feature figures from the sections statesync, configsync and dhcp report today', async (t) => {
  const ss = (heard: number | null, bulk = 'done') => ({ enabled: true, mode: 'passive', states_table: 42, peer: { last_heard_ms_ago: heard }, bulk: { state: bulk } });
  t.same(featureFigures({ statesync: ss(400) }), { config_in_sync: null, state_sync_ok: 'ON', states: 42, dhcp_ha_state: null, dhcp_leases: null });
  t.equal(featureFigures({ statesync: ss(9000) }).state_sync_ok, 'OFF', 'peer silent for 9 s');
  t.equal(featureFigures({ statesync: ss(null) }).state_sync_ok, 'OFF', 'peer never heard');
  t.equal(featureFigures({ statesync: ss(100, 'timeout') }).state_sync_ok, 'OFF', 'bulk timed out');
  t.equal(featureFigures({ configsync: { peer: { state: 'in_sync', revisions_behind: 0 } } }).config_in_sync, 'ON', 'primary, secondary up to date');
  t.equal(featureFigures({ configsync: { peer: { state: 'behind', revisions_behind: 2 } } }).config_in_sync, 'OFF');
  t.equal(featureFigures({ configsync: { drift: false, local_edits: [] } }).config_in_sync, 'ON', 'secondary without local edits');
  t.equal(featureFigures({ configsync: { drift: true, local_edits: ['firewall'] } }).config_in_sync, 'OFF');
  t.same(featureFigures({ dhcp: { ha_state: 'hot-standby', partner_state: 'hot-standby', leases: 3 } }).dhcp_leases, 3);
});

t.test('sync failures become alarms only after they last (SyncWatch)', async (t) => {
  const w = new SyncWatch(10_000);
  const bad = syncProblems({ config_in_sync: 'OFF', state_sync_ok: 'OFF', states: 3, dhcp_ha_state: null, dhcp_leases: null });
  t.same(bad.map((p) => p.name), ['state_sync_failing', 'config_out_of_sync']);
  t.same(syncProblems({ config_in_sync: 'ON', state_sync_ok: null, states: null, dhcp_ha_state: null, dhcp_leases: null }), [], 'absent or healthy: nothing');
  t.same(w.update(0, bad), []);
  t.same(w.update(9_999, bad), [], 'not before the hold time');
  const up = w.update(10_000, bad);
  t.same(up.map((c) => [c.alarm.name, c.active]), [['state_sync_failing', true], ['config_out_of_sync', true]]);
  t.same(w.update(11_000, bad.slice(1)).map((c) => [c.alarm.name, c.active]), [['state_sync_failing', false]]);
  t.same(w.list().map((a) => a.name), ['config_out_of_sync']);
  // A problem that flickers away restarts its hold time.
  w.update(12_000, bad); w.update(13_000, bad.slice(1));
  t.same(w.update(21_000, bad), [], 'state sync bad again at 21 s: a new hold starts');
  t.same(w.update(31_000, bad).map((c) => c.alarm.name), ['state_sync_failing']);
  const doc = stateDocument({ ...status(), mqtt: { alarms: w.list() } }, { version: '1', self: 'mqtt' }) as any;
  t.same(doc.alarms.map((a: any) => [a.name, a.source]).sort(), [['config_out_of_sync', 'mqtt'], ['state_sync_failing', 'mqtt']]);
  t.equal(doc.problem, 'ON', 'they turn the problem sensor on');
});

t.test('every network: link, CARP state and address entities with stable ids, in the state document', async (t) => {
  const msgs = discoveryMessages(input());
  const on = new Map(msgs.filter((m) => m.payload !== '').map((m) => [m.topic.split('/').slice(1, 4).join('/'), m.payload as Record<string, any>]));
  for (const n of ['wan', 'lan', 'guest', 'iot', 'sync']) {
    const link = on.get(`binary_sensor/duogate_gw-a/net_${n}_link`);
    t.equal(link?.uniq_id, `duogate_gw-a_02d601010001_net_${n}_link`, `${n}: link entity, its unique id from the node, the MAC and the network's name`);
    t.equal(link?.dev_cla, 'connectivity');
    t.equal(link?.json_attr_tpl, `{{ value_json.networks.${n} | tojson }}`, `${n}: device, VLAN, address and VIPs as attributes`);
    t.equal(on.get(`sensor/duogate_gw-a/net_${n}_address`)?.val_tpl, `{{ value_json.networks.${n}.address }}`, `${n}: address entity`);
  }
  for (const n of ['wan', 'lan', 'guest']) t.same(on.get(`sensor/duogate_gw-a/net_${n}_carp`)?.ops, ['INIT', 'BACKUP', 'MASTER', 'MIXED', 'NONE'], `${n}: CARP state entity`);
  t.same(discoveryMessages(input()), msgs, 'the same input gives the same messages (stable ids)');

  const doc = stateDocument(status(), { version: '1', self: 'mqtt' }) as any;
  t.equal(render('{{ value_json.networks.lan.link }}', doc), 'ON');
  t.equal(render('{{ value_json.networks.guest.link }}', doc), 'OFF', 'guest0 without carrier');
  t.equal(render('{{ value_json.networks.guest.carp }}', doc), 'MIXED', 'one vhid MASTER, one BACKUP');
  t.equal(render('{{ value_json.networks.wan.carp }}', doc), 'BACKUP');
  t.equal(render('{{ value_json.networks.iot.carp }}', doc), 'NONE', 'no VIP on it');
  t.same(doc.networks.iot, { kind: 'internal', device: 'lan0.30', vlan: 30, address: '10.30.0.2/24', link: 'ON', carp: 'NONE', vip: null, vips: [] }, 'the VLAN network whole');
  t.equal(doc.networks.guest.vip, '192.168.20.1/24 192.168.20.4/24');
  t.notOk('networks' in doc.services, 'networks are the document\'s own, not a service section');
  t.same(networksDocument(undefined), {}, 'a daemon without networks in its status: none');
  t.equal((networksDocument({ x: { device: 'x0', carrier: undefined, vips: [] } }).x as any).link, null, 'a NIC the daemon does not watch: unknown');
  t.equal(netCarp([{ state: 'INIT' }]), 'INIT');
});

t.test('a network that leaves the config loses its entities', async (t) => {
  const before = new Set(discoveryMessages(input()).filter((m) => m.payload !== '').map((m) => m.topic));
  const after = discoveryMessages(input({ networks: input().networks.filter((n) => n.name !== 'guest') }));
  const now = new Set(after.filter((m) => m.payload !== '').map((m) => m.topic));
  const gone = [...before].filter((x) => !now.has(x)).sort();
  t.same(gone, ['homeassistant/binary_sensor/duogate_gw-a/net_guest_link/config', 'homeassistant/sensor/duogate_gw-a/net_guest_address/config', 'homeassistant/sensor/duogate_gw-a/net_guest_carp/config'],
    'live (a config apply): the publisher deletes exactly these, the topics it published before and not now');
  // Across a restart the publisher knows only the broker's retained configs: each of this node's that it no
  // longer publishes is stale and gets an empty retained payload.
  for (const x of gone) t.ok(staleDiscovery(x, '{"name":"x"}', 'homeassistant', 'gw-a', now), `stale: ${x}`);
  for (const x of now) t.notOk(staleDiscovery(x, '{"name":"x"}', 'homeassistant', 'gw-a', now), `published now: ${x}`);
  t.notOk(staleDiscovery(gone[0], '', 'homeassistant', 'gw-a', now), 'an empty payload is already a deletion');
  t.notOk(staleDiscovery('homeassistant/sensor/duogate_gw-b/net_guest_carp/config', '{}', 'homeassistant', 'gw-a', now), 'the other node\'s entities are not touched');
  t.notOk(staleDiscovery('homeassistant/sensor/duogate_gw-a/net_guest_carp/state', '{}', 'homeassistant', 'gw-a', now), 'only config topics');
  t.ok(staleDiscovery('ha/x/sensor/duogate_gw-a/net_guest_carp/config', '{}', 'ha/x', 'gw-a', new Set()), 'a discovery prefix with a slash');
  t.notOk(staleDiscovery('other/sensor/duogate_gw-a/net_guest_carp/config', '{}', 'homeassistant', 'gw-a', new Set()), 'another prefix');
});
