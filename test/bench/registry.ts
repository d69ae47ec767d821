// Benchmarks by area. Each prints human-readable lines with `say` and returns its figures for the JSON line.
import { carpBench } from './carp.js';
import { configsyncBench } from './configsync.js';
import { gatewayBench } from './gateway.js';
import { statesyncBench } from './statesync.js';

export type Bench = (say: (line: string) => void) => Promise<Record<string, unknown>>;

export const benches: Record<string, Bench> = {
  carp: carpBench,
  configsync: configsyncBench,
  gateway: gatewayBench,
  statesync: statesyncBench,
};
