// Counters, one per drop reason and per event (OpenBSD's carpstats): the host reads the block as a
// Uint32Array and publishes it unchanged.
import { STAT_COUNT } from './constants';

export const STATS = memory.data(STAT_COUNT * 4, 16);

// @ts-ignore: decorator
@inline export function bumpStat(i: u32): void {
  const p = STATS + (<usize>i << 2);
  store<u32>(p, load<u32>(p) + 1);
}

export function clearStats(): void { memory.fill(STATS, 0, STAT_COUNT * 4); }
