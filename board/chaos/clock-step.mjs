// Preloaded (node --import) into each daemon the chaos harness starts: the wall clock (Date.now) reads the
// machine's plus the offset in the file named by DUOGATE_CHAOS_CLOCK_FILE (milliseconds, e.g. 86400000), read
// every 100 ms, so the harness can step one node's clock while it runs (the board's namespaces share the host
// clock, and stepping the host's is not allowed). Monotonic time is untouched, as after a real clock step.
import { readFileSync } from 'node:fs';

const file = process.env.DUOGATE_CHAOS_CLOCK_FILE;
if (file) {
  let shift = 0;
  const read = () => {
    try {
      const v = Number(readFileSync(file, 'utf8').trim() || '0');
      if (Number.isFinite(v)) shift = v;
    } catch { shift = 0; }
  };
  read();
  setInterval(read, 100).unref();
  const realNow = Date.now;
  Date.now = () => realNow() + shift;
}
