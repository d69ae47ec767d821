// Top-level config sections owned by features other than CARP. Each feature exports its JSON Schema and
// registers it here, so an unknown top-level key is still an error (a typo must not be ignored).
import { configSyncSchema } from '../configsync/schema.js';
import { gatewaySections } from '../gateway/sections.js';
import { mqttSchema } from '../telemetry/config.js';
import { peerSchema } from '../peer/config.js';
import { stateSyncSchema } from '../statesync/config.js';

export const featureSections: Record<string, object> = {
  configsync: configSyncSchema,
  ...gatewaySections,
  mqtt: mqttSchema,
  peer: peerSchema,
  statesync: stateSyncSchema,
};
