// A supervised child's output is logged at a bounded rate (Kea logs every malformed packet: a LAN host sending
// garbage to port 67 must not flood the daemon's log), and what is over the budget is counted and summarised.
// Also: a child of a daemon running at raised priority starts back at nice 0.
import t from 'tap';
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Logger } from '../../host/log.js';
import { OUTPUT_BURST, OUTPUT_RATE, Supervised } from '../../host/gateway/supervise.js';
import { atNormalPriority } from '../../host/daemon/priority.js';
import { sleep } from '../../board/virtual/wait.js';


t.test('5,000 lines at once: the burst is logged, the rest counted in one summary', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'dg-sup-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lines: any[] = [];
  const log = new Logger({}, 'debug', (l) => lines.push(JSON.parse(l)));
  const sup = new Supervised({
    name: 'chatty', cmd: 'sh', args: ['-c', 'seq -f "ERROR [x] bad packet %g" 5000; exec sleep 30'], log,
    pidFile: path.join(dir, 'pid'),
  });
  sup.start();
  for (let i = 0; i < 100 && sup.outputSuppressed + lines.filter((l) => l.msg === 'chatty output').length < 5000; i++) await sleep(50);
  await sleep(1100); // the summary comes a second after the first suppressed line
  await sup.stop();
  const logged = lines.filter((l) => l.msg === 'chatty output');
  t.ok(logged.length >= OUTPUT_BURST && logged.length <= OUTPUT_BURST + 3 * OUTPUT_RATE, `${logged.length} lines logged (burst ${OUTPUT_BURST}, ${OUTPUT_RATE}/s)`);
  t.equal(logged[0].level, 'warn');
  t.equal(logged.length + sup.outputSuppressed, 5000, 'every line is either logged or counted');
  const summaries = lines.filter((l) => l.msg === 'chatty output suppressed');
  t.ok(summaries.length >= 1, 'a summary says how many were dropped');
  t.equal(summaries.reduce((a, s) => a + s.lines, 0), sup.outputSuppressed, 'the summaries add up to the count');
  t.equal(sup.status().output_suppressed, sup.outputSuppressed, 'status shows the count');
});

t.test('children start at nice 0 under a daemon at raised priority', async (t) => {
  t.same(atNormalPriority('kea-dhcp4', ['-c', 'f'], -10), ['nice', ['-n', '10', 'kea-dhcp4', '-c', 'f']]);
  t.same(atNormalPriority('kea-dhcp4', ['-c', 'f'], 0), ['kea-dhcp4', ['-c', 'f']]);
});
