// Home Assistant MQTT discovery (configsync.md §5): one retained config message per entity on
// <discovery prefix>/<component>/<node id>/<object id>/config, all grouped under one device per node, all
// reading the node's one retained state document through value templates, all tied to the node's
// availability topic (whose `offline` is the MQTT last will). An empty retained payload deletes an entity.
import { NET_CARP_STATES, vhidKey } from './state.js';

export interface DiscoveryInput {
  discoveryPrefix: string;
  /** <prefix>/<node>: the base ("~") of the state, availability and command topics. */
  base: string;
  node: string;
  role: string;
  version: string;
  /** MAC of the LAN NIC: a stable device identifier and the device's connection. */
  mac: string | null;
  vhids: { vhid: number; interface: string; addresses: string[] }[];
  /** Every network of the node (status `networks`): wan, the internal ones, sync; `vips` counts its vhids. */
  networks: { name: string; vips: number }[];
  /** Which feature figures exist on this node (entities for the others are deleted). */
  features: { configSync: boolean; stateSync: boolean; dhcp: boolean; peer: boolean };
  commands: boolean;
  /** Seconds after which HA marks values stale if no state arrives (3 republish periods). */
  expireAfter: number;
}

export interface DiscoveryMessage { topic: string; payload: Record<string, unknown> | '' }

/** Node ids and object ids may only use [a-zA-Z0-9_-]. */
export const safeId = (s: string) => s.replace(/[^a-zA-Z0-9_-]/g, '_');

/** The node id in every discovery topic of a node. */
export const discoveryNodeId = (node: string) => safeId(`duogate_${node}`);

/**
 * Whether a retained discovery config the broker holds is this node's and no longer published: an entity of a
 * network or vhid that left the config while the daemon was stopped (interfaces change only across a restart).
 * An empty payload is already a deletion.
 */
export function staleDiscovery(topic: string, payload: string, prefix: string, node: string, current: ReadonlySet<string>): boolean {
  const parts = topic.split('/');
  const base = prefix.split('/');
  if (payload === '' || current.has(topic) || parts.length !== base.length + 4) return false;
  return parts.slice(0, base.length).join('/') === prefix && parts[base.length + 1] === discoveryNodeId(node) && parts[base.length + 3] === 'config';
}

export function discoveryMessages(i: DiscoveryInput): DiscoveryMessage[] {
  const nodeId = discoveryNodeId(i.node);
  const mac = i.mac?.toLowerCase() ?? null;
  const devId = safeId(`duogate_${i.node}${mac ? '_' + mac.replace(/:/g, '') : ''}`);
  const dev: Record<string, unknown> = {
    ids: [devId], name: `duogate ${i.node}`, mf: 'duogate', mdl: `HA gateway node (${i.role})`, sw: i.version,
  };
  if (mac) dev.cns = [['mac', mac]];
  const common = {
    '~': i.base, stat_t: '~/state', avty_t: '~/availability', pl_avail: 'online', pl_not_avail: 'offline',
    dev, o: { name: 'duogate', sw: i.version }, exp_aft: i.expireAfter,
  };
  const out: DiscoveryMessage[] = [];
  const add = (component: string, objectId: string, on: boolean, p: Record<string, unknown>) => {
    out.push({
      topic: `${i.discoveryPrefix}/${component}/${nodeId}/${safeId(objectId)}/config`,
      payload: on ? { ...common, uniq_id: `${devId}_${safeId(objectId)}`, ...p } : '',
    });
  };
  const bin = (objectId: string, on: boolean, p: Record<string, unknown>) => add('binary_sensor', objectId, on, { pl_on: 'ON', pl_off: 'OFF', ...p });

  bin('carp_master', true, { name: 'CARP master', val_tpl: '{{ value_json.master }}', ic: 'mdi:crown' });
  bin('problem', true, {
    name: 'Problem', dev_cla: 'problem', val_tpl: '{{ value_json.problem }}',
    json_attr_t: '~/state', json_attr_tpl: '{{ {"alarms": value_json.alarms} | tojson }}',
  });
  for (const v of i.vhids) {
    const k = vhidKey(v.vhid);
    const label = `vhid ${v.vhid} ${v.interface} ${v.addresses.join(' ')}`;
    add('sensor', `carp_state_${k}`, true, {
      name: `CARP state ${label}`, dev_cla: 'enum', ops: ['INIT', 'BACKUP', 'MASTER'], val_tpl: `{{ value_json.vips.${k}.state }}`,
    });
    bin(`carp_master_${k}`, true, { name: `CARP master ${label}`, val_tpl: `{{ value_json.vips.${k}.master }}` });
  }
  // Per network, keyed by its config name (stable across restarts): link, CARP state (networks with a VIP only),
  // node address. Device, VLAN and VIPs ride along as attributes. A network that left the config loses them all.
  for (const n of i.networks) {
    const k = safeId(n.name), doc = `value_json.networks.${k}`;
    const attrs = { json_attr_t: '~/state', json_attr_tpl: `{{ ${doc} | tojson }}` };
    bin(`net_${k}_link`, true, { name: `Network ${n.name} link`, dev_cla: 'connectivity', val_tpl: `{{ ${doc}.link }}`, ...attrs });
    add('sensor', `net_${k}_carp`, n.vips > 0, {
      name: `Network ${n.name} CARP`, dev_cla: 'enum', ops: [...NET_CARP_STATES], val_tpl: `{{ ${doc}.carp }}`, ic: 'mdi:ip-network', ...attrs,
    });
    add('sensor', `net_${k}_address`, true, { name: `Network ${n.name} address`, val_tpl: `{{ ${doc}.address }}`, ic: 'mdi:ip', ent_cat: 'diagnostic' });
  }
  if (i.commands) {
    add('switch', 'maintenance', true, {
      name: 'Maintenance mode', val_tpl: '{{ value_json.maintenance }}', cmd_t: '~/cmd/maintenance',
      pl_on: 'ON', pl_off: 'OFF', stat_on: 'ON', stat_off: 'OFF', ic: 'mdi:wrench', ent_cat: 'config',
    });
    bin('maintenance', false, {});
  } else {
    bin('maintenance', true, { name: 'Maintenance mode', val_tpl: '{{ value_json.maintenance }}', ic: 'mdi:wrench', ent_cat: 'diagnostic' });
    add('switch', 'maintenance', false, {});
  }
  bin('peer_connected', i.features.peer, { name: 'Peer connected', dev_cla: 'connectivity', val_tpl: '{{ value_json.peer.connected if value_json.peer else None }}', ent_cat: 'diagnostic' });
  bin('config_in_sync', i.features.configSync, { name: 'Config in sync', val_tpl: '{{ value_json.config_in_sync }}', ic: 'mdi:file-sync' });
  bin('state_sync_ok', i.features.stateSync, { name: 'State sync healthy', val_tpl: '{{ value_json.state_sync_ok }}', ic: 'mdi:table-sync' });
  add('sensor', 'states', i.features.stateSync, { name: 'States in the table', val_tpl: '{{ value_json.states }}', stat_cla: 'measurement', unit_of_meas: 'states', ic: 'mdi:table' });
  add('sensor', 'dhcp_ha_state', i.features.dhcp, { name: 'DHCP HA state', val_tpl: '{{ value_json.dhcp_ha_state }}', ent_cat: 'diagnostic' });
  add('sensor', 'dhcp_leases', i.features.dhcp, { name: 'DHCP leases', val_tpl: '{{ value_json.dhcp_leases }}', stat_cla: 'measurement', unit_of_meas: 'leases' });
  add('sensor', 'demotion', true, { name: 'CARP demotion', val_tpl: '{{ value_json.demotion }}', stat_cla: 'measurement', ent_cat: 'diagnostic' });
  add('sensor', 'carp_drops', true, { name: 'CARP adverts dropped', val_tpl: '{{ value_json.drops_total }}', stat_cla: 'total_increasing', ent_cat: 'diagnostic' });
  return out;
}
