// Preloaded (node --import) into a daemon whose wall clock must read differently from the machine's (the board's
// namespaces share the host clock, and stepping the host's is not allowed). Date.now() reads the machine's clock
// plus two offsets in milliseconds, both optional:
// - DUOGATE_TEST_CLOCK_SHIFT_MS, fixed for the process (e.g. -86400000: a node restarted a day earlier);
// - the number in the file named by DUOGATE_CHAOS_CLOCK_FILE, re-read every 100 ms, so the chaos harness can step
//   one node's clock while it runs.
// Monotonic time is untouched, as after a real clock step.
import { readFileSync } from 'node:fs';

const fixedText = process.env.DUOGATE_TEST_CLOCK_SHIFT_MS ?? '0';
const fixed = Number(fixedText);
if (!Number.isFinite(fixed)) throw new Error(`DUOGATE_TEST_CLOCK_SHIFT_MS="${fixedText}" is not a number of milliseconds`);
let stepped = 0;
const file = process.env.DUOGATE_CHAOS_CLOCK_FILE;
if (file) {
  const read = () => {
    try {
      const v = Number(readFileSync(file, 'utf8').trim() || '0');
      if (Number.isFinite(v)) stepped = v;
    } catch { stepped = 0; }
  };
  read();
  setInterval(read, 100).unref();
}
if (fixed !== 0 || file) {
  const realNow = Date.now;
  Date.now = () => realNow() + fixed + stepped;
}
