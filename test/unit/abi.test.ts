// The core's ABI is declared once, by the core (assembly/abi.ts), and read by the host at instantiation
// (host/core/abi.ts). These checks fail when the two sides disagree: a name the host needs is gone, a group
// has a hole, a layout does not fit its block, the host writes an offset as a number, or a field the core
// writes lands somewhere the host does not read it.
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readAbi, group, denseNames, coreAbi } from '../../host/core/abi.js';
import { instantiateCore } from '../../host/core/wasm.js';
import { Core, DROP_NAMES, STAT_NAMES, STATE_NAMES, WHY_NAMES, WHY_TEXT } from '../../host/core/core.js';
import { SyncCore, SYNC_STAT_NAMES } from '../../host/statesync/core.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const release = readAbi(instantiateCore());
const debug = readAbi(instantiateCore({ debug: true }));

t.test('the release and debug builds export the same ABI', async (t) => {
  t.same([...debug.all].sort(), [...release.all].sort());
  t.ok(release.all.size > 100, `${release.all.size} ABI globals`);
});

t.test('a core that lacks a name the host reads is refused at instantiation', async (t) => {
  const exports = instantiateCore();
  const partial = Object.fromEntries(Object.entries(exports).filter(([k]) => k !== 'ACTION_PAYLOAD'));
  t.throws(() => readAbi(partial), { code: 'DG_ERR_CORE_ABI', message: /ACTION_PAYLOAD/ });
});

t.test('groups are dense and fit their blocks', async (t) => {
  const a = coreAbi();
  t.same(STATE_NAMES, ['INIT', 'BACKUP', 'MASTER']);
  t.equal(STAT_NAMES[0], 'ok', 'index 0 is handleCarp\'s success code');
  t.ok(STAT_NAMES.length <= a.CARP_STATS_LEN, 'every CARP counter is inside the stats block');
  t.equal(SYNC_STAT_NAMES.length, a.SYNC_STATS_LEN, 'every sync counter has a name');
  t.equal(new Set(group(a, 'ACT_').map((m) => m.value)).size, group(a, 'ACT_').length, 'action types are distinct');
  t.equal(group(a, 'ACT_')[0].value, a.ACT_NONE, 'ACT_NONE is the smallest (0: "nothing to poll")');
  t.same(denseNames(a, 'DEMOTE_'), ['link_down', 'maintenance', 'bulk_sync', 'send_errors', 'user', 'stalled', 'starting'], 'demotion reasons are bit numbers 0..6');
  t.ok(a.CARP_DROP_MASK >>> 0 < 2 ** a.CARP_STATS_LEN && (a.CARP_DROP_MASK & 1) === 0, 'drop mask: inside the block, "ok" is not a drop');
});

t.test('published counter names are stable (telemetry and status show them)', async (t) => {
  t.same(DROP_NAMES, ['short', 'bad_ip', 'bad_ttl', 'bad_checksum', 'bad_version', 'unknown_vhid', 'own_packet', 'bad_hmac',
    'not_ready', 'not_peer', 'no_pair_auth', 'bad_pair_auth', 'replay']);
  t.same(STAT_NAMES.filter((n) => !DROP_NAMES.includes(n)), ['ok', 'accepted', 'sent', 'transitions', 'queue_overflow', 'other_family_copy']);
  t.same(SYNC_STAT_NAMES, [
    'nl_msgs', 'own_echo', 'filtered', 'unsupported', 'malformed', 'table_full', 'queued', 'tx_upserts', 'tx_deletes',
    'rx_upserts', 'rx_deletes', 'rx_bad_items', 'kernel_creates', 'kernel_updates', 'kernel_deletes', 'kernel_errors',
    'kernel_eexist_fixed', 'kernel_enoent_fixed', 'dump_entries', 'swept', 'events', 'last_errno',
    'rx_to_self', 'rx_zone', 'rx_mark', 'rx_snat', 'rx_dnat', 'rx_timeout_clamped', 'v6_held',
  ]);
});

t.test('every state-change reason has words, and every text has a reason', async (t) => {
  const codes = group(coreAbi(), 'WHY_').map((m) => m.name);
  t.same(codes.filter((n) => !(n in WHY_TEXT)), [], 'WHY_* codes without a text in host/core/core.ts');
  t.same(Object.keys(WHY_TEXT).filter((n) => !codes.includes(n)), [], 'texts for WHY_* codes the core does not have');
  t.equal(Object.keys(WHY_NAMES).length, codes.length);
});

t.test('layouts: every field lies inside its block', async (t) => {
  const a = coreAbi();
  const inside = (prefix: string, size: number, width = (_k: string) => 4) => {
    for (const [k, v] of a.all) {
      if (!k.startsWith(prefix) || k === `${prefix}SIZE` || /_MAX$|_OK$/.test(k)) continue;
      t.ok(v >= 0 && v + width(k) <= size, `${k} = ${v} fits in ${size} bytes`);
    }
  };
  inside('ACTION_', a.ACTION_SIZE);
  inside('STATUS_', a.STATUS_SIZE, (k) => (k.endsWith('_AT') ? 8 : k.endsWith('_SRC6') ? 16 : 4));
  inside('ENT_', a.ENT_SIZE, () => 1);
  inside('ENT6_', a.ENT6_SIZE, () => 16);
  t.ok(a.ENT_SIZE <= a.ENT6_OSRC, 'an IPv6 record is an IPv4 one followed by its addresses');
  t.ok(a.POL_TMAX + 4 * a.POL_TMAX_MAX <= a.POL_ZONES && a.POL_ZONES + 4 * a.POL_SET_MAX <= a.POL_MARKS
    && a.POL_MARKS + 4 * a.POL_SET_MAX <= a.POL_SNAT && a.POL_SNAT + 4 * a.POL_SNAT_MAX <= a.POL_VIPS
    && a.POL_VIPS + 4 * a.POL_VIPS_MAX <= a.POL_NETS && a.POL_NETS + 8 * a.POL_NETS_MAX <= a.POL_SIZE, 'policy lists do not overlap');
  t.ok(a.CONFIG_KEY + a.CONFIG_KEY_MAX <= a.CONFIG_VIPS, 'the key cannot run into the VIPs');
  t.ok(a.CONFIG_VIPS + 4 * a.CONFIG_VIPS_MAX <= a.CONFIG_VIPS6 && a.CONFIG_VIPS6 + 16 * a.CONFIG_VIPS_MAX <= a.CONFIG_ADDR6,
    'IPv4 VIPs, IPv6 VIPs and the IPv6 address do not overlap');
});

t.test('what the core writes is where the host reads it (status, actions, records)', async (t) => {
  const c = new Core({ debug: true });
  c.reset([1, 2]);
  c.setLinkAddr(1, '10.9.0.1');
  c.addVhid({ vhid: 77, link: 1, advbase: 3, advskew: 42, password: 'pw', vips: ['10.9.0.100', '10.9.0.101'] });
  c.start(5);
  const acts = c.drain();
  t.match(acts, [{ type: 'state', vhid: 77, link: 1, from: 'INIT', to: 'BACKUP', why: 'start' }]);
  const [s] = c.vhidStatus();
  t.match(s, { vhid: 77, link: 1, state: 'BACKUP', advbase: 3, advskew: 42, advertisedSkew: 42, masterSrc: null, lastChangeAt: 5, masterHeardAt: -1 });
  c.handleTimeout(c.pollTimeout());
  const adv = c.drain().find((x) => x.type === 'advert');
  t.ok(adv && adv.type === 'advert' && adv.payload.length === 36 && adv.payload[1] === 77, 'advert payload read at ACTION_PAYLOAD');
  t.throws(() => c.addVhid({ vhid: 77, link: 1, advbase: 1, advskew: 0, password: 'x', vips: ['10.9.0.1'] }), { code: 'DG_ERR_VHID', message: /already on this link/ });

  const k = new SyncCore(1024, { debug: true });
  t.equal(k.lookup(6, '10.0.0.1', '10.0.0.2', 1000, 80), null, 'empty table');
  t.equal(k.x.ssRecSize(), coreAbi().ENT_SIZE, 'the record size the core uses is the one it exports');
});

t.test('host code that reads core memory names every offset', async (t) => {
  // A number added to a pointer into core memory is an offset written twice; it must come from the ABI.
  const files = ['host/core/core.ts', 'host/statesync/core.ts'];
  for (const f of files) {
    const src = readFileSync(new URL(`../../${f}`, import.meta.url), 'utf8');
    const hits = src.split('\n').map((l, i) => [i + 1, l] as const)
      .filter(([, l]) => !/^\s*(\/\/|\*)/.test(l) && /\b(p|base|at)\s*\+\s*\d/.test(l));
    t.same(hits, [], `${f}: offsets as numbers`);
  }
  // Flag bits are ABI too: SyncCore.dumpDone() and barrierAnswered() read them by name.
  const users = (readdirSync(path.join(ROOT, 'host'), { recursive: true }) as string[])
    .filter((f) => f.endsWith('.ts') && /ssFlags\(\)\s*&\s*\d/.test(readFileSync(path.join(ROOT, 'host', f), 'utf8')));
  t.same(users, [], 'no host file tests ssFlags() bits by number');
});
