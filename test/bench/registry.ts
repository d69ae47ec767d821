// Benchmarks by area. Each prints human-readable lines with `say` and returns its figures for the JSON line.
import { carpBench } from './carp.js';
import { carpTimingBench } from './carp-timing.js';
import { configsyncBench } from './configsync.js';
import { gatewayBench } from './gateway.js';
import { idleBench } from './idle.js';
import { statesyncBench } from './statesync.js';
import { statesyncCoreBench } from './statesync-core.js';

export type Bench = (say: (line: string) => void) => Promise<Record<string, unknown>>;

export const benches: Record<string, Bench> = {
  carp: carpBench,
  carp_timing: carpTimingBench,
  configsync: configsyncBench,
  gateway: gatewayBench,
  idle: idleBench,
  statesync: statesyncBench,
  statesync_core: statesyncCoreBench,
};
