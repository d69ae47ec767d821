// CARP under attack on the virtual board: a LAN host (and a WAN host) without the CARP password or the pair
// key captures the pair's adverts and sends what it likes: the plain replay from its own address (which takes
// the LAN gateway away from plain BSD CARP), the master's advert rewritten as a bow-out from the master's own
// address (two masters, with plain CARP), and a 1,000/s mix of replays and rewrites from both nodes' addresses. While it
// runs the client pings the LAN VIP every 10 ms with its ARP cache flushed every second (so it must ARP for the
// gateway): no VIP moves, no ping is lost, the pair is never seen with two masters, and every packet is counted
// under a named reason in `duogate status`.
import t from 'tap';
import { VirtualBoard, type NodeName } from '../../board/virtual/board.js';
import { ROOT, Firmware, allAre, sleep } from '../../board/virtual/firmware.js';
import { Pinger } from '../../board/virtual/pinger.js';
import { rewrite } from '../helpers/carp.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'virtual board needs root');
} else {
  const board = new VirtualBoard({ prefix: 'dgt-atk' });
  const fw = new Firmware(board);
  t.teardown(() => board.down());

  const tool = (ns: 'client' | 'server', ifname: string, args: string[], timeoutMs: number) =>
    board.execAsync(ns, process.execPath, ['--import', 'tsx', 'test/helpers/attacker.ts', ifname, ...args], { cwd: ROOT, timeoutMs });
  const counters = async (n: NodeName) => (await fw.status(n)).carp_counters as Record<string, number>;
  const transitions = async (n: NodeName) => (await fw.status(n)).vips.map((v: any) => `${v.vhid}:${v.transitions}`).join(' ');

  /** Watch the pair while `attack` runs: states every 50 ms, the client's ARP cache flushed every second. */
  async function under(attack: Promise<unknown>): Promise<{ dual: number; notPrimary: number; samples: number }> {
    let done = false;
    void attack.finally(() => { done = true; });
    const seen = { dual: 0, notPrimary: 0, samples: 0 };
    let lastFlush = 0;
    for (let i = 0; i < 2000 && !done; i++) {
      const [p, s] = await Promise.all([fw.states('primary'), fw.states('secondary')]);
      seen.samples++;
      for (const v of ['1', '2']) if (p[v] === 'MASTER' && s[v] === 'MASTER') seen.dual++;
      if (!allAre(p, 'MASTER') || !allAre(s, 'BACKUP')) seen.notPrimary++;
      if (Date.now() - lastFlush > 1000) { board.exec('client', 'ip', ['neigh', 'flush', 'dev', 'eth0']); lastFlush = Date.now(); }
      await sleep(50);
    }
    await attack;
    return seen;
  }

  t.test('a LAN or WAN attacker replaying and rewriting adverts moves nothing', async (t) => {
    await board.up();
    fw.resetState();
    fw.writeConfigs('atk', { keep: ['peer'] }); // peer.key makes the pair authenticate CARP
    await fw.startPair();
    await sleep(1500); // the secondary has accepted the primary's adverts (its replay window is set)

    const cap = await tool('client', 'eth0', ['capture', '1', '1', '5000'], 10_000);
    t.equal(cap.status, 0, `captured an advert of vhid 1 on the LAN ${cap.stderr}`);
    const adv = Buffer.from(cap.stdout.trim(), 'hex');
    t.equal(adv.length, 60, 'the pair signs its adverts: 36 bytes of CARP and the 24-byte pair trailer');
    const wcap = await tool('server', 'eth0', ['capture', '2', '1', '5000'], 10_000);
    t.equal(wcap.status, 0, 'captured an advert of vhid 2 on the WAN');

    const pinger = new Pinger(board, 10, '192.168.1.1');
    pinger.start(120_000);
    await sleep(500);
    const t0 = performance.timeOrigin + performance.now();
    const before = { primary: await counters('primary'), secondary: await counters('secondary') };
    const trans0 = [await transitions('primary'), await transitions('secondary')];

    // 1. The replay that takes the gateway away from plain CARP: the captured advert, unchanged, from the attacker's address.
    const a1 = await under(tool('client', 'eth0', ['send', '192.168.1.100', '500', '10000', adv.toString('hex')], 20_000));
    // 2. The master's advert as a bow-out, from the master's own address (without the pair trailer's source check the backup takes the VIP).
    const bow = rewrite(adv, { advbase: 255, advskew: 255 }).toString('hex');
    const a2 = await under(tool('client', 'eth0', ['send', '192.168.1.2', '500', '5000', bow], 15_000));
    // 3. 1,000/s: the unchanged replay from the master's address, a demote-255 rewrite and a plain (trailer-
    //    less) copy from the backup's address, and the replay from the attacker's own.
    const mix = [adv, rewrite(adv, { demote: 255 }), rewrite(adv, { dropTrailer: true, advskew: 0 })].map((b) => b.toString('hex'));
    const a3 = await Promise.all([
      under(tool('client', 'eth0', ['send', '192.168.1.2', '3', '5000', mix[0]], 20_000)),
      tool('client', 'eth0', ['send', '192.168.1.3', '3', '5000', mix[1], mix[2]], 20_000),
      tool('client', 'eth0', ['send', '192.168.1.100', '3', '5000', mix[0]], 20_000),
    ]);
    // 4. The same replay on the WAN from the server.
    const a4 = await under(tool('server', 'eth0', ['send', '203.0.113.10', '500', '4000', wcap.stdout.trim()], 15_000));
    await sleep(500);
    const t1 = performance.timeOrigin + performance.now();
    await pinger.stop();

    for (const [name, seen] of [['replay from .100', a1], ['bow-out from .2', a2], ['1,000/s mix', a3[0]], ['WAN replay', a4]] as const) {
      t.equal(seen.dual, 0, `${name}: never two masters (${seen.samples} samples)`);
      t.equal(seen.notPrimary, 0, `${name}: the primary kept both VIPs, the secondary stayed BACKUP`);
    }
    t.same([await transitions('primary'), await transitions('secondary')], trans0, 'no CARP transition on either node');
    const o = pinger.outage(t0, t1);
    t.equal(o.lost, 0, `the client lost no ping to the LAN VIP (longest gap ${o.gap_ms} ms, ARP cache flushed every second)`);

    const after = { primary: await counters('primary'), secondary: await counters('secondary') };
    const d = (n: NodeName, k: string) => after[n][k] - before[n][k];
    const sent = [a3[1], a3[2]].map((r) => Number(r.stdout.trim()));
    t.ok(d('secondary', 'not_peer') >= 20 + 8 + sent[1] * 0.5, `secondary: ${d('secondary', 'not_peer')} not_peer (attacker's own address, both segments)`);
    t.ok(d('primary', 'not_peer') >= 20 + 8, `primary: ${d('primary', 'not_peer')} not_peer`);
    t.ok(d('secondary', 'bad_pair_auth') >= 9, `secondary: ${d('secondary', 'bad_pair_auth')} bad_pair_auth (the bow-out rewrite)`);
    t.ok(d('secondary', 'replay') >= 1000, `secondary: ${d('secondary', 'replay')} replay (the unchanged advert at 1,000/s)`);
    t.ok(d('primary', 'bad_pair_auth') >= sent[0] * 0.2, `primary: ${d('primary', 'bad_pair_auth')} bad_pair_auth (the demote rewrite)`);
    t.ok(d('primary', 'no_pair_auth') >= sent[0] * 0.2, `primary: ${d('primary', 'no_pair_auth')} no_pair_auth (the plain copy)`);
    t.ok(d('secondary', 'accepted') > 0, 'the primary\'s genuine adverts were still accepted meanwhile');
    t.match(fw.cli('secondary', ['status']).stdout, /not_peer=\d+ no_pair_auth=\d+ bad_pair_auth=\d+ replay=\d+/, 'duogate status names each reason');
  });
}
