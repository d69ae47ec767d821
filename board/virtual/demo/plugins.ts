// The demo's feature plugins, in the order their hooks run.
import type { DemoPlugin } from './plugin.js';

export const plugins: DemoPlugin[] = [];
