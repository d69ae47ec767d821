// Run by test/unit/feature-lifecycle.test.ts under `unshare -n`: the real statesync, peer and configsync
// services started and stopped on a FeatureHost double, in a network namespace of their own (only `lo`, down),
// so their netlink, UDP and TCP sockets touch nothing outside it. Prints one JSON object with what it saw.
import { EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfigText } from '../../host/config/load.js';
import { Demote } from '../../host/core/core.js';
import { Logger } from '../../host/log.js';
import type { AlarmEvent, FeatureHost, Service } from '../../host/feature.js';
import type { Handler } from '../../host/control/server.js';
import { feature as statesync } from '../../host/statesync/feature.js';
import { feature as peer } from '../../host/peer/feature.js';
import { feature as configsync } from '../../host/configsync/feature.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

interface TestHost extends FeatureHost, Pick<EventEmitter, 'listenerCount'> {
  demotions: Set<number>; handlers: Map<string, Handler>; alarms: AlarmEvent[]; clock: { ms: number }; lines: string[];
}

function host(stateDir: string): TestHost {
  const text = readFileSync(path.join(ROOT, 'board/virtual/secondary.yaml'), 'utf8');
  const config = { ...parseConfigText(text), state_dir: stateDir };
  const lines: string[] = [];
  const clock = { ms: 1000 };
  const demotions = new Set<number>();
  const handlers = new Map<string, Handler>();
  const alarms: AlarmEvent[] = [];
  const e = new EventEmitter();
  e.on('alarm', (ev: AlarmEvent) => alarms.push(ev));
  const h = Object.assign(e, {
    config, lines, clock, demotions, handlers, alarms,
    log: new Logger({}, 'debug', (l) => lines.push(l)),
    now: () => clock.ms,
    handle: (cmd: string, fn: Handler) => { handlers.set(cmd, fn); return () => { if (handlers.get(cmd) === fn) handlers.delete(cmd); }; },
    demote: (r: number, on: boolean) => { if (on) demotions.add(r); else demotions.delete(r); },
    role: () => 'BACKUP',
    vhidStatus: () => [],
    maintenanceState: () => null,
    setMaintenance: () => {},
    syncLinkUp: () => true,
    activeAlarms: () => [],
    reconfigure: () => { throw new Error('not in this test'); },
    status: () => ({}),
  });
  return h as unknown as TestHost;
}

const listeners = (h: TestHost) => Object.fromEntries((['config', 'transition', 'maintenance', 'alarm'] as const).map((ev) => [ev, h.listenerCount(ev)]));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-lifecycle-'));
const out: Record<string, unknown> = {};
try {
  // State sync: a start demotes CARP for the bulk; a stop before the peer's table arrived takes it back.
  {
    const h = host(path.join(dir, 'ss'));
    const base = listeners(h);
    const s = (await statesync.start(h)) as Service;
    const started = { demoted: h.demotions.has(Demote.BULK_SYNC), bulk: (s.status().bulk as { state?: string })?.state };
    await s.stop(true);
    out.statesync = { started, demotedAfterStop: h.demotions.has(Demote.BULK_SYNC), listenersBefore: base, listenersAfter: listeners(h) };
  }
  // Peer: nothing heard for longer than the start-up grace raises peer_lost; a stop clears it.
  {
    const h = host(path.join(dir, 'peer'));
    const base = listeners(h);
    const s = (await peer.start(h)) as Service & { alarms(): { name: string }[] };
    h.clock.ms += 30_000;
    for (let i = 0; i < 20 && !s.alarms().some((a) => a.name === 'peer_lost'); i++) await sleep(100);
    const raised = s.alarms().map((a) => a.name);
    await s.stop(true);
    out.peer = {
      raised, afterStop: s.alarms().map((a) => a.name),
      events: h.alarms.map((a) => `${a.name}:${a.active ? 'raised' : 'cleared'}`), listenersBefore: base, listenersAfter: listeners(h),
    };
  }
  // Config sync on a secondary, started and stopped: its control commands go with it.
  {
    const h = host(path.join(dir, 'cs'));
    const registered: string[] = [];
    const handle = h.handle;
    h.handle = (cmd, fn) => { registered.push(cmd); return handle(cmd, fn); };
    const s = (await configsync.start(h)) as Service;
    const during = [...h.handlers.keys()];
    await s.stop(true);
    out.configsync = { registered, during, left: [...h.handlers.keys()], listeners: listeners(h) };
  }
  // Config sync whose start fails after its commands were registered (its TLS identity cannot be written: a
  // file stands where its folder goes): the failed start takes them back.
  {
    const h = host(path.join(dir, 'csfail'));
    mkdirSync(h.config.state_dir, { recursive: true });
    writeFileSync(path.join(h.config.state_dir, 'configsync'), 'not a folder');
    const registered: string[] = [];
    const handle = h.handle;
    h.handle = (cmd, fn) => { registered.push(cmd); return handle(cmd, fn); };
    let error: string | null = null;
    try { await configsync.start(h); } catch (e) { error = (e as Error).message; }
    out.configsyncFailed = { error, registered, left: [...h.handlers.keys()], listeners: listeners(h) };
  }
} catch (e) {
  out.crash = (e as Error).stack ?? String(e);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(out) + '\n');
// Whatever a service left running (a socket, a timer, a worker) would keep this process alive: the test's
// timeout says so. Exit on our own only after everything was closed.
