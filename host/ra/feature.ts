// The ra feature: router advertisements from the MASTER of one vhid (docs/carp.md "Router advertisements").
import type { Config } from '../config/schema.js';
import { lazyService, type Feature } from '../feature.js';
import { checkRa, raSchema, type RaConfig } from './config.js';

const wanted = (c: Config) => !!c.ra;

export const feature: Feature = {
  name: 'ra',
  sections: { ra: raSchema },
  synced: ['ra'],
  check: checkRa,
  wanted,
  start: lazyService(wanted, async (host) => new (await import('./service.js')).RaService(host.config.ra as RaConfig)),
  restartOnChange: true,
};
