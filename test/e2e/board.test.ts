// End-to-end proof of the virtual board (board/virtual/board.ts): topology,
// reachability, power cuts, cable pulls, split-brain isolation, teardown.
// Needs root (network namespaces). Uses prefix 'dgt-board' so it never
// collides with a demo board ('dg') or another test.
import t from 'tap';
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { VirtualBoard, sleep } from '../../board/virtual/board.js';

const PREFIX = 'dgt-board';

/** Poll `fn` until true, at most `ms` (bounded). */
async function eventually(fn: () => boolean, ms = 2000, step = 50): Promise<boolean> {
  const end = Date.now() + ms;
  for (let i = 0; i < 1000; i++) {
    if (fn()) return true;
    if (Date.now() > end) return false;
    await sleep(step);
  }
  return false;
}

const nsExists = (name: string) => existsSync(`/run/netns/${name}`);

if (process.getuid?.() !== 0) {
  t.plan(0, 'virtual board needs root');
} else {
  const board = new VirtualBoard({ prefix: PREFIX });
  t.teardown(() => board.down());

  t.test('up() builds the board and is idempotent', async (t) => {
    const t0 = performance.now();
    await board.up();
    const first = performance.now() - t0;
    const macs1 = board.linkState('primary', 'lan0').address;
    const t1 = performance.now();
    await board.up();
    t.comment(`up(): ${first.toFixed(0)} ms, again: ${(performance.now() - t1).toFixed(0)} ms`);
    for (const r of ['primary', 'secondary', 'client', 'server', 'lansw', 'wansw'] as const) {
      t.ok(nsExists(`${PREFIX}-${r}`), `namespace ${PREFIX}-${r}`);
    }
    t.equal(board.nsName('client'), `${PREFIX}-client`);
    t.equal(board.linkState('primary', 'lan0').address, macs1, 'MACs are stable across up()');
    t.same(board.addressesCidr('primary', 'lan0'), ['192.168.1.2/24']);
    t.same(board.addressesCidr('primary', 'wan0'), ['203.0.113.2/24']);
    t.same(board.addressesCidr('primary', 'sync0'), ['172.16.1.1/30']);
    t.same(board.addressesCidr('secondary', 'lan0'), ['192.168.1.3/24']);
    t.same(board.addressesCidr('secondary', 'wan0'), ['203.0.113.3/24']);
    t.same(board.addressesCidr('secondary', 'sync0'), ['172.16.1.2/30']);
    t.same(board.addresses('client', 'eth0'), ['192.168.1.100']);
    t.same(board.addresses('server', 'eth0'), ['203.0.113.10']);
    t.match(board.exec('client', 'ip', ['route', 'show', 'default']).stdout, /via 192\.168\.1\.1 dev eth0/);
    // The WAN server knows no way back to the LAN: it sees LAN clients only through outbound NAT to the WAN VIP.
    t.notMatch(board.exec('server', 'ip', ['route']).stdout, /192\.168\.1\.0/);
    t.equal(board.exec('primary', 'sysctl', ['-n', 'net.ipv4.ip_forward']).stdout.trim(), '1');
    t.equal(board.linkState('lansw', 'p-primary').master, 'br0', 'node port is on the LAN switch');
    // Nothing of the board is visible in the test's own (host) namespace.
    t.notMatch(spawnSync('ip', ['-br', 'link'], { encoding: 'utf8' }).stdout, /\b(p-primary|sync0|lan0)\b/);
  });

  t.test('reachability: client -> both nodes, nodes over sync', async (t) => {
    t.ok(board.ping('client', '192.168.1.2'), 'client -> primary LAN');
    t.ok(board.ping('client', '192.168.1.3'), 'client -> secondary LAN');
    t.ok(board.ping('server', '203.0.113.2'), 'server -> primary WAN');
    t.ok(board.ping('primary', '172.16.1.2'), 'primary -> secondary over sync');
    t.ok(board.ping('secondary', '172.16.1.1'), 'secondary -> primary over sync');
  });

  t.test('powerOff / powerOn', async (t) => {
    const cp = board.startNode('primary', ['-e', 'setInterval(() => {}, 1000)']);
    const exited = new Promise<NodeJS.Signals | null>((r) => cp.once('exit', (_c, s) => r(s)));
    await sleep(150);
    t.ok(cp.pid && cp.exitCode === null, 'firmware stand-in runs in the primary');
    // Leave some state that a reboot must wipe.
    board.exec('primary', 'ip', ['addr', 'add', '192.168.1.1/24', 'dev', 'lan0'], { check: true });
    board.exec('primary', 'nft', ['add', 'table', 'inet', 'leftover'], { check: true });

    const t0 = performance.now();
    await board.powerOff('primary');
    t.comment(`powerOff(): ${(performance.now() - t0).toFixed(0)} ms`);
    t.equal(await exited, 'SIGKILL', 'process in the node was SIGKILLed');
    t.notOk(board.isPowered('primary'));
    t.notOk(board.linkState('secondary', 'sync0').lowerUp, "secondary's sync0 lost carrier");
    t.ok(board.linkState('secondary', 'sync0').up, "secondary's sync0 stays admin-up");
    t.notOk(board.linkState('lansw', 'p-primary').lowerUp, 'LAN switch port lost carrier');
    t.notOk(board.linkState('wansw', 'p-primary').lowerUp, 'WAN switch port lost carrier');
    t.notOk(board.ping('secondary', '172.16.1.1'), 'primary unreachable from secondary');
    t.notOk(board.ping('client', '192.168.1.2'), 'primary unreachable from client');
    t.ok(board.ping('client', '192.168.1.3'), 'secondary still reachable');
    await board.powerOff('primary'); // idempotent
    t.throws(() => board.startNode('primary', ['-e', '0']), /powered off/);

    const t1 = performance.now();
    await board.powerOn('primary');
    t.comment(`powerOn(): ${(performance.now() - t1).toFixed(0)} ms`);
    t.same(board.addressesCidr('primary', 'lan0'), ['192.168.1.2/24'], 'no leftover VIP');
    t.equal(board.exec('primary', 'nft', ['list', 'ruleset']).stdout.trim(), '', 'no leftover nft');
    t.equal(board.exec('primary', 'sysctl', ['-n', 'net.ipv4.ip_forward']).stdout.trim(), '1');
    t.ok(board.linkState('secondary', 'sync0').lowerUp, "secondary's sync0 carrier back");
    t.ok(await eventually(() => board.ping('secondary', '172.16.1.1')), 'primary reachable over sync again');
    t.ok(await eventually(() => board.ping('client', '192.168.1.2')), 'primary reachable from client again');
    t.equal(board.linkState('primary', 'lan0').address, '02:d6:01:01:00:01', 'same NIC (stable MAC)');
  });

  t.test('pullCable / plugCable', async (t) => {
    board.pullCable('primary', 'lan');
    let l = board.linkState('primary', 'lan0');
    t.ok(l.up, 'lan0 still admin-up');
    t.notOk(l.running, 'lan0 not RUNNING');
    t.ok(l.flags.includes('NO-CARRIER'), 'lan0 NO-CARRIER');
    t.not(l.operstate, 'UP');
    t.ok(board.linkState('primary', 'wan0').running, 'wan0 unaffected');
    t.notOk(board.ping('client', '192.168.1.2'), 'client cannot reach primary');
    t.ok(board.ping('client', '192.168.1.3'), 'client reaches secondary');
    board.plugCable('primary', 'lan');
    t.ok(board.linkState('primary', 'lan0').running, 'lan0 RUNNING again');
    t.ok(await eventually(() => board.ping('client', '192.168.1.2')), 'client reaches primary again');

    board.pullCable('primary', 'sync');
    for (const n of ['primary', 'secondary'] as const) {
      l = board.linkState(n, 'sync0');
      t.ok(l.up && !l.lowerUp, `${n} sync0 admin-up, no carrier`);
    }
    board.plugCable('primary', 'sync');
    t.ok(board.linkState('primary', 'sync0').running && board.linkState('secondary', 'sync0').running, 'sync back');
    t.ok(await eventually(() => board.ping('primary', '172.16.1.2')), 'sync reachable again');
  });

  t.test('isolate / reconnect (split brain)', async (t) => {
    board.isolate('primary', 'lan');
    const l = board.linkState('primary', 'lan0');
    t.ok(l.lowerUp && l.running, 'lan0 keeps carrier (LOWER_UP)');
    t.equal(board.linkState('lansw', 'p-primary').master, undefined, 'port is off the bridge');
    t.notOk(board.ping('client', '192.168.1.2'), 'client cannot reach primary');
    t.ok(board.ping('client', '192.168.1.3'), 'client reaches secondary');
    board.isolate('primary', 'lan'); // idempotent
    board.reconnect('primary', 'lan');
    board.reconnect('primary', 'lan');
    t.ok(await eventually(() => board.ping('client', '192.168.1.2')), 'reachable after reconnect');
  });

  t.test('down() removes everything', async (t) => {
    const sleeper = board.spawn('client', 'sleep', ['60'], { stdio: 'ignore' });
    const gone = new Promise((r) => sleeper.once('exit', r));
    await board.down();
    await gone;
    t.ok(sleeper.exitCode !== null || sleeper.signalCode !== null, 'spawned process killed');
    for (const r of ['primary', 'secondary', 'client', 'server', 'lansw', 'wansw', 'synccable']) {
      t.notOk(nsExists(`${PREFIX}-${r}`), `${PREFIX}-${r} deleted`);
    }
    await board.down(); // idempotent
  });
}
