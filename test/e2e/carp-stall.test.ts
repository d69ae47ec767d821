// CARP timing: a BACKUP whose event loop is held up longer than the master-down interval (here
// frozen with SIGSTOP for 5 s, carrier up, the master adverting all along) must not take the VIPs when it
// runs again: the master's adverts that arrived meanwhile wait in its socket and are taken before the late
// master-down timer is acted on. The stall is reported (status carp_counters.timer_late_max_ms, a log line).
import t from 'tap';
import { VirtualBoard } from '../../board/virtual/board.js';
import { Firmware, allAre, sleep } from '../../board/virtual/firmware.js';

if (process.getuid?.() !== 0) {
  t.plan(0, 'virtual board needs root');
} else {
  const board = new VirtualBoard({ prefix: 'dgt-stall' });
  const fw = new Firmware(board);
  t.teardown(() => board.down());

  t.test('a stalled BACKUP does not take over from a live master when it runs again', async (t) => {
    await board.up();
    fw.resetState();
    fw.writeConfigs('stall');
    await fw.start('primary');
    await sleep(300);
    await fw.start('secondary');
    t.ok(await fw.waitStates((p, s) => allAre(p, 'MASTER') && allAre(s, 'BACKUP'), 15_000), 'primary MASTER, secondary BACKUP');
    await sleep(1500);
    const before = fw.transitions('secondary').length;
    const pid = board.nodeProcess('secondary')!.pid!;
    process.kill(pid, 'SIGSTOP');
    await sleep(5000); // > master-down interval 3 x 1 s + 100/256 s
    process.kill(pid, 'SIGCONT');
    await sleep(2500);
    const after = fw.transitions('secondary').slice(before);
    t.same(after.filter((x) => x.to === 'MASTER'), [], 'the secondary never became MASTER');
    t.ok(allAre(await fw.states('primary'), 'MASTER'), 'the primary is still MASTER');
    const s = await fw.status('secondary');
    t.ok(s.carp_counters.timer_late_max_ms >= 1500, `the stall is reported: CARP timer ${s.carp_counters.timer_late_max_ms} ms late at worst`);
    t.match(board.logSinceStart('secondary'), /carp timer late/, 'and logged');
  });
}
