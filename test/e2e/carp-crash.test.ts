// Crash safety: a master whose daemon is killed -9 or frozen (SIGSTOP, carrier up) must not keep
// answering ARP for its VIPs while the peer takes them. The master leases its VIPs to the kernel for the
// master-down interval (3 x advbase, whole seconds) and renews them with every advert; the kernel removes them
// by itself when the renewals stop. Bound: the two nodes hold one VIP together for at most ~1 s (the kernel
// checks lifetimes on a ~1 s timer; the peer takes over at 3 x advbase + skew/256).
import t from 'tap';
import { VirtualBoard, type NodeName } from '../../board/virtual/board.js';
import { Firmware, allAre, sleep } from '../../board/virtual/firmware.js';

const BOUND_MS = 1500;

if (process.getuid?.() !== 0) {
  t.plan(0, 'virtual board needs root');
} else {
  const board = new VirtualBoard({ prefix: 'dgt-crash' });
  const fw = new Firmware(board);
  t.teardown(() => board.down());

  const has = (n: NodeName, dev: 'lan0' | 'wan0', vip: string) => board.addresses(n, dev).includes(vip);

  /** Poll both nodes' NICs every 50 ms until the secondary holds both VIPs and the primary none. */
  async function watchHandover(ms: number): Promise<{ overlapMs: number; primaryGoneMs: number; secondaryHasMs: number } | null> {
    const t0 = Date.now();
    let overlap = 0, last = t0, primaryGone = -1, secondaryHas = -1;
    for (let i = 0; i < 1000 && Date.now() - t0 < ms; i++) {
      const now = Date.now();
      const p = has('primary', 'lan0', '192.168.1.1') || has('primary', 'wan0', '203.0.113.1');
      const s = has('secondary', 'lan0', '192.168.1.1') && has('secondary', 'wan0', '203.0.113.1');
      if (p && s) overlap += now - last;
      last = now;
      if (!p && primaryGone < 0) primaryGone = now - t0;
      if (s && secondaryHas < 0) secondaryHas = now - t0;
      if (!p && s) return { overlapMs: overlap, primaryGoneMs: primaryGone, secondaryHasMs: secondaryHas };
      await sleep(50);
    }
    return null;
  }

  async function pairUp(): Promise<void> {
    await board.up();
    fw.resetState();
    fw.writeConfigs('crash', { keep: ['peer'] });
    await fw.startPair();
    await sleep(1200);
  }

  t.test('kill -9 of the master daemon: its VIPs leave its NICs by themselves as the peer takes over', async (t) => {
    await pairUp();
    t.ok(has('primary', 'lan0', '192.168.1.1'), 'the primary holds the LAN VIP');
    t.match(board.exec('primary', 'ip', ['-4', 'addr', 'show', 'dev', 'lan0']).stdout, /192\.168\.1\.1\/24 .*\n\s+valid_lft [1-3]sec/, 'as a lease of at most 3 s, renewed by every advert');
    process.kill(board.nodeProcess('primary')!.pid!, 'SIGKILL');
    const h = await watchHandover(10_000);
    t.ok(h, 'the secondary holds both VIPs and the dead primary none');
    t.ok(h!.overlapMs <= BOUND_MS, `both nodes held a VIP for ${h!.overlapMs} ms (bound ${BOUND_MS}); the primary's went at ${h!.primaryGoneMs} ms, the secondary took them at ${h!.secondaryHasMs} ms`);
    await sleep(3000);
    t.notOk(has('primary', 'lan0', '192.168.1.1') || has('primary', 'wan0', '203.0.113.1'), 'and nothing brings them back while the daemon is dead');
  });

  t.test('a frozen master (SIGSTOP, carrier up) loses its VIPs; thawed, it takes them back with one master', async (t) => {
    await pairUp();
    const pid = board.nodeProcess('primary')!.pid!;
    process.kill(pid, 'SIGSTOP');
    const h = await watchHandover(10_000);
    t.ok(h, 'the secondary holds both VIPs and the frozen primary none');
    t.ok(h!.overlapMs <= BOUND_MS, `both nodes held a VIP for ${h!.overlapMs} ms (bound ${BOUND_MS})`);
    process.kill(pid, 'SIGCONT');
    const back = await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 10_000);
    t.ok(back, 'thawed, the better primary preempts again');
    await sleep(500);
    t.ok(has('primary', 'lan0', '192.168.1.1') && !has('secondary', 'lan0', '192.168.1.1'), 'the LAN VIP on the primary only');
  });
}
