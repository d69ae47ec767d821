// The outage figures of the 10 ms pinger, over as many replies as a 30-minute chaos run collects (~180,000).
import t from 'tap';
import { Pinger } from '../../board/virtual/pinger.js';
import type { VirtualBoard } from '../../board/virtual/board.js';

t.test('outage: the longest gap around an event and the echoes lost, over 300,000 replies', async (t) => {
  const p = new Pinger({} as VirtualBoard);
  for (let i = 0; i < 300_000; i++) if (i < 1000 || i > 1050) p.replies.push({ seq: i, sent: i * 10, recv: i * 10 + 1 });
  t.same(p.outage(9000, 11_000), { gap_ms: 520, lost: 51 }, 'seq 1000–1050 lost: a 520 ms gap');
  t.same(p.outage(100_000, 101_000), { gap_ms: 10, lost: 0 }, 'a quiet window');
  t.same(p.outage(5_000_000, 5_001_000), { gap_ms: 0, lost: 0 }, 'after the last reply');
});
