// A feature's life while the daemon runs (host/feature.ts, host/daemon/services.ts): a start that fails leaves
// nothing behind, a stop takes back its commands, its demotion and its alarms, a dhcp started late sees the pair
// as it is, a changed node-local section restarts the feature or says that it needs a restart, and a state sync
// that could not start shows OFF. The real statesync, peer and configsync services run in a network namespace
// of their own (test/helpers/lifecycle-netns.ts).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { lazyService, type AlarmEvent, type Feature, type FeatureHost, type Service, type Transition } from '../../host/feature.js';
import { FeatureRunner } from '../../host/daemon/services.js';
import { ControlServer } from '../../host/control/server.js';
import { Daemon } from '../../host/daemon/daemon.js';
import { KeaHold } from '../../host/gateway/dhcp/hold.js';
import { feature as statesync } from '../../host/statesync/feature.js';
import { featureFigures } from '../../host/telemetry/state.js';
import { parseConfigText } from '../../host/config/load.js';
import { Logger } from '../../host/log.js';
import { Why, type VhidStatus } from '../../host/core/core.js';
import type { Config } from '../../host/config/schema.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const boardConfig = (): Config => parseConfigText(readFileSync(path.join(ROOT, 'board/virtual/secondary.yaml'), 'utf8'));

/** A FeatureHost with a config, events and a log (what the runner and these toys touch). */
type TestHost = FeatureHost & Pick<EventEmitter, 'listenerCount'> & { config: Config; lines: string[] };
function host(config: Record<string, unknown>): TestHost {
  const lines: string[] = [];
  return Object.assign(new EventEmitter(), {
    config: config as Config, lines, log: new Logger({}, 'info', (l) => lines.push(l)),
  }) as unknown as TestHost;
}

/** A service that listens for config changes, then (when told) throws: a start that fails half way. */
class HalfStart implements Service {
  readonly name: string;
  stops: boolean[] = [];
  private h: FeatureHost | null = null;
  private readonly onConfig = () => {};
  constructor(name: string, private readonly fail: () => boolean) { this.name = name; }
  start(h: FeatureHost): void {
    this.h = h;
    h.on('config', this.onConfig);
    if (this.fail()) throw new Error(`${this.name}: the kernel said no`);
  }
  stop(graceful: boolean): void { this.stops.push(graceful); this.h?.off('config', this.onConfig); }
  status() { return { running: true }; }
}

t.test('a start that throws stops the half-started service; a live retry leaks nothing', async (t) => {
  const made: HalfStart[] = [];
  let failing = true;
  const wanted = (c: Config) => (c as Record<string, unknown>).x !== undefined;
  const f: Feature = {
    name: 'x', sections: { x: { type: 'object' } }, wanted,
    start: lazyService(wanted, async () => { const s = new HalfStart('x', () => failing); made.push(s); return s; }),
  };
  const h = host({});
  t.equal(await f.start(h), null, 'not wanted: nothing made');
  t.equal(made.length, 0);

  const r = new FeatureRunner(h, [f]);
  const base = h.listenerCount('config'); // the runner's own
  h.config = { x: {} } as unknown as Config;
  for (let i = 0; i < 3; i++) { h.emit('config', h.config, h.config); await r.settled(); }
  t.equal(made.length, 3, 'each config change tried again');
  t.same(made.map((s) => s.stops), [[false], [false], [false]], 'each failed start was stopped (not graceful)');
  t.equal(h.listenerCount('config'), base, 'no listener left by the failed starts');
  t.match(r.status(), { x: { running: false, error: /the kernel said no/ } });

  failing = false;
  h.emit('config', h.config, h.config); await r.settled();
  t.equal(r.services().length, 1, 'started once the kernel agrees');
  t.equal(h.listenerCount('config'), base + 1, 'one listener: the running service\'s');
  await r.stopAll(true);
  t.equal(h.listenerCount('config'), base);
});

t.test('a feature whose start throws: the error goes on even when the stop throws too', async (t) => {
  const wanted = () => true;
  const h = host({});
  const start = lazyService(wanted, async () => ({
    name: 'y', start() { throw new Error('y: no'); }, stop() { throw new Error('y: stop failed'); }, status: () => ({}),
  }));
  await t.rejects(start(h), /y: no/);
  t.match(h.lines.join('\n'), /service stop after a failed start failed.*y: stop failed/);
});

t.test('the control socket: a command is gone once its disposer ran', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-ctl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const c = new ControlServer(path.join(dir, 'ctl.sock'), new Logger({}, 'error', () => {}));
  await c.listen();
  t.teardown(() => c.close());
  const ask = (cmd: string) => new Promise<any>((res, rej) => {
    const s = net.connect(c.socketPath, () => s.write(JSON.stringify({ cmd }) + '\n'));
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => { buf += d; if (buf.includes('\n')) { s.end(); res(JSON.parse(buf)); } });
    s.on('error', rej);
  });
  const off = c.handle('thing', () => 'first');
  t.same(await ask('thing'), { ok: true, result: 'first' });
  const offSecond = c.handle('thing', () => 'second');
  off(); // the first owner's disposer must not remove the handler that replaced it
  t.same(await ask('thing'), { ok: true, result: 'second' });
  offSecond();
  t.match(await ask('thing'), { ok: false, error: { code: 'DG_ERR_UNKNOWN_COMMAND' } });
});

t.test('real services in a namespace of their own: stop takes back the demotion, the alarms and the commands', async (t) => {
  const r = spawnSync('unshare', ['-n', process.execPath, '--import=tsx', path.join(ROOT, 'test/helpers/lifecycle-netns.ts')],
    { encoding: 'utf8', timeout: 60_000, cwd: ROOT });
  t.equal(r.status, 0, `the helper ran and exited by itself (nothing left running): ${r.stderr?.slice(-2000)}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
  t.notOk(out.crash, out.crash);

  t.same(out.statesync?.started, { demoted: true, bulk: 'waiting' }, 'statesync started: demoted until the peer\'s table is here');
  t.equal(out.statesync?.demotedAfterStop, false, 'stopped during the bulk: the BULK_SYNC demotion is gone');
  t.same(out.statesync?.listenersAfter, out.statesync?.listenersBefore, 'statesync left no listener');

  t.same(out.peer?.raised, ['peer_lost'], 'peer: nothing heard past the grace raises peer_lost');
  t.same(out.peer?.afterStop, [], 'peer stopped: no alarm active');
  t.same(out.peer?.events, ['peer_lost:raised', 'peer_lost:cleared'], 'its listeners were told the alarm cleared');
  t.same(out.peer?.listenersAfter, out.peer?.listenersBefore, 'peer left no listener');

  const cmds = ['config.apply', 'config.revert', 'config.history', 'config.diff', 'config.sync'];
  t.same(out.configsync?.during, cmds, 'configsync registered its commands');
  t.same(out.configsync?.left, [], 'configsync stopped: its commands are gone');
  t.match(out.configsyncFailed?.error, /cannot create the sync TLS certificate/, 'configsync start failed after registering');
  t.same(out.configsyncFailed?.registered, cmds);
  t.same(out.configsyncFailed?.left, [], 'the failed start took its commands back');
});

const vhid = (n: number, state: string): VhidStatus => ({ vhid: n, state, link: 0, advbase: 1, advskew: 0, advertisedSkew: 0, demote: 0, masterSrc: null, rxAccepted: 0, txAdverts: 0, transitions: 0, lastChangeAt: 0, masterHeardAt: -1 } as VhidStatus);
const alarm = (name: string, active: boolean): AlarmEvent => ({ source: 'peer', name, key: name, active, message: name, at: '', node: 'gw-b' });
const tr = (iface: 'lan' | 'wan', to: string): Transition => ({ vhid: iface === 'lan' ? 2 : 1, interface: iface, address: [], from: 'BACKUP', to, reason: Why.MASTER_DOWN, why: '', at: '', mono: 0 } as unknown as Transition);

t.test('dhcp started late: the Kea hold follows the pair as it is, not as it was at the daemon\'s start', async (t) => {
  const config = boardConfig();
  const lanVhids = config.carp.vips.filter((v) => v.interface === 'lan').map((v) => v.vhid);
  const wanVhids = config.carp.vips.filter((v) => v.interface === 'wan').map((v) => v.vhid);
  t.ok(lanVhids.length > 0 && wanVhids.length > 0, 'the board config has LAN and WAN vhids');
  const at = (lan: string, wan: string, alarms: AlarmEvent[] = []) => ({
    config, activeAlarms: () => alarms,
    vhidStatus: () => [...lanVhids.map((v) => vhid(v, lan)), ...wanVhids.map((v) => vhid(v, wan))],
  });

  // A secondary that is already LAN MASTER (the primary in maintenance) gets dhcp by sync; then the sync link fails.
  let h = KeaHold.from(at('MASTER', 'MASTER'));
  t.same([h.lanMaster, h.syncDown, h.held], [true, false, false], 'already LAN MASTER: Kea runs');
  t.equal(h.alarm(alarm('sync_link_down', true)), null, 'the sync link goes down: the LAN MASTER keeps serving');
  t.equal(h.held, false);

  // The sync link is already down and the peer is LAN MASTER: Kea must not start at all.
  h = KeaHold.from(at('BACKUP', 'BACKUP', [alarm('sync_link_down', true)]));
  t.same([h.lanMaster, h.syncDown, h.held], [false, true, true], 'sync link already down on the LAN BACKUP: held from the start');
  t.equal(h.alarm(alarm('sync_link_down', true)), null, 'the same alarm again changes nothing');
  t.equal(h.transition(tr('wan', 'MASTER')), null, 'a WAN vhid does not count');
  t.equal(h.transition(tr('lan', 'MASTER')), 'release', 'this node takes the LAN: Kea starts');
  t.equal(h.transition(tr('lan', 'BACKUP')), 'hold', 'and gives it back: held again');
  t.equal(h.alarm(alarm('sync_link_down', false)), 'release', 'sync link back: Kea starts');

  // Only the LAN vhids say who is LAN MASTER.
  h = KeaHold.from(at('BACKUP', 'MASTER', [alarm('sync_link_down', true)]));
  t.equal(h.held, true, 'MASTER on the WAN only: still held');
});

t.test('the daemon keeps the alarms raised and not cleared, for a feature that starts later', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-alarms-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const d = new Daemon({ ...boardConfig(), state_dir: dir }, { log: new Logger({}, 'error', () => {}) });
  t.same(d.activeAlarms(), []);
  d.emit('alarm', alarm('sync_link_down', true));
  d.emit('alarm', alarm('peer_lost', true));
  t.same(d.activeAlarms().map((a) => a.name).sort(), ['peer_lost', 'sync_link_down']);
  d.emit('alarm', alarm('sync_link_down', false));
  t.same(d.activeAlarms().map((a) => a.name), ['peer_lost'], 'a cleared alarm is gone');
  t.equal(KeaHold.from(d).syncDown, false, 'dhcp reads them from the daemon');
  // A stopping daemon: the peer's stop clears its alarms, and a held Kea must not start because of that.
  let told = 0;
  d.on('alarm', () => told++);
  await d.stop(false);
  d.emit('alarm', alarm('peer_lost', false));
  t.equal(told, 0, 'alarms cleared while the daemon stops reach no feature');
});

t.test('a changed node-local section: restarted when the feature allows it, else logged once and shown', async (t) => {
  const ev: string[] = [];
  const toy = (name: string, opts: { restart?: boolean; synced?: string } = {}): Feature => {
    const wanted = (c: Config) => (c as Record<string, unknown>)[name] !== undefined;
    return {
      name, wanted, restartOnChange: opts.restart,
      sections: { [name]: { type: 'object' }, ...(opts.synced ? { [opts.synced]: { type: 'object' } } : {}) },
      synced: opts.synced ? [opts.synced] : undefined,
      start: lazyService(wanted, async (h) => {
        const seen = JSON.stringify((h.config as Record<string, unknown>)[name]);
        return { name, start() { ev.push(`start ${name} ${seen}`); }, stop() { ev.push(`stop ${name}`); }, status: () => ({ running: true }) };
      }),
    };
  };
  const h = host({ p: { k: 1 }, m: { k: 1 }, g: { k: 1 }, gs: { rules: 1 } });
  const r = new FeatureRunner(h, [toy('p', { restart: true }), toy('m'), toy('g', { synced: 'gs' })]);
  await r.startAll();
  t.same(ev.splice(0), ['start p {"k":1}', 'start m {"k":1}', 'start g {"k":1}']);
  const change = async (c: Record<string, unknown>) => { const prev = h.config; h.config = c as Config; h.emit('config', h.config, prev); await r.settled(); };

  await change({ p: { k: 2 }, m: { k: 1 }, g: { k: 1 }, gs: { rules: 2 } });
  t.same(ev.splice(0), ['stop p', 'start p {"k":2}'], 'p restarted with its new section; a synced change is the service\'s own business');
  t.match(h.lines.join('\n'), /feature started again with its changed section.*"feature":"p"/);

  await change({ p: { k: 2 }, m: { k: 2 }, g: { k: 1 }, gs: { rules: 2 } });
  await change({ p: { k: 2 }, m: { k: 2 }, g: { k: 1 }, gs: { rules: 3 } });
  t.same(ev.splice(0), [], 'm is not restarted');
  const warned = h.lines.filter((l) => /needs a restart/.test(l));
  t.equal(warned.length, 1, 'said once, not at every config change');
  t.match(warned[0], /"feature":"m".*"section":"m"/);
  t.match(r.status(), { m: { running: true, restart_needed: /^m changed; it takes effect when the daemon restarts/ } });

  await change({ p: { k: 2 }, m: { k: 1 }, g: { k: 1 }, gs: { rules: 3 } });
  t.notOk((r.status().m as Record<string, unknown>).restart_needed, 'changed back: no restart needed any more');
  t.equal(h.lines.filter((l) => /needs a restart/.test(l)).length, 1);
  await r.stopAll(true);
});

t.test('the real features: which restart on a changed node-local section', async (t) => {
  const { features } = await import('../../host/features.js');
  const by = Object.fromEntries(features.map((f) => [f.name, f]));
  t.equal(by.peer.restartOnChange, true, 'peer: the heartbeat touches no VIP');
  t.notOk(by.statesync.restartOnChange, 'statesync: a start demotes CARP, on the active node too');
});

t.test('a state sync that could not start shows OFF, not unknown', async (t) => {
  t.same(statesync.figures!({ running: false, error: 'statesync: the kernel did not answer' }), { state_sync_ok: 'OFF', states: null });
  t.equal(featureFigures({ statesync: { running: false, error: 'x' } }).state_sync_ok, 'OFF', 'telemetry and the console read OFF');
  t.equal(featureFigures({}).state_sync_ok, null, 'no statesync at all: unknown');
  t.equal(featureFigures({ statesync: { enabled: true, peer: { last_heard_ms_ago: 100 }, bulk: { state: 'done' }, states_table: 3 } }).state_sync_ok, 'ON');
});
