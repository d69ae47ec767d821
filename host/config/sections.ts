// Top-level config sections owned by features other than CARP, from the feature list, so an unknown
// top-level key is still an error (a typo must not be ignored).
import { features } from '../features.js';

/** Section name → its JSON Schema, for every feature. */
export function featureSections(): Record<string, object> {
  const out: Record<string, object> = {};
  for (const f of features) for (const [k, v] of Object.entries(f.sections)) out[k] = typeof v === 'function' ? v() : v;
  return out;
}
