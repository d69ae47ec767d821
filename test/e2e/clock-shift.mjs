// Preloaded (node --import) into a daemon whose wall clock must read differently from the machine's:
// DUOGATE_TEST_CLOCK_SHIFT_MS (e.g. -86400000, a day earlier) is added to Date.now(). Monotonic time is untouched,
// as after a real clock step. The board's namespaces share the host clock, so this is how a test steps one node's.
const shift = Number(process.env.DUOGATE_TEST_CLOCK_SHIFT_MS ?? 0);
if (!Number.isFinite(shift)) throw new Error(`DUOGATE_TEST_CLOCK_SHIFT_MS="${process.env.DUOGATE_TEST_CLOCK_SHIFT_MS}" is not a number of milliseconds`);
const realNow = Date.now;
Date.now = () => realNow() + shift;
