// The core's ABI as the core itself declares it: codes, layouts and counter names are immutable wasm globals
// exported by assembly/abi.ts, read here once per instance. Host code names a value (abi.ACTION_VHID) and
// never writes its number, so the two sides cannot drift; a core without a name the host needs is refused
// at instantiation (DG_ERR_CORE_ABI) instead of being misread.
import { CoreError, instantiateCore } from './wasm.js';

/** Every global the host reads by name (the groups below are read by prefix and need not be listed). */
const NAMES = [
  'STATE_INIT', 'STATE_BACKUP', 'STATE_MASTER',
  // Transition reasons features act on by code (host/core/core.ts Why).
  'WHY_START', 'WHY_MASTER_DOWN', 'WHY_PREEMPT', 'WHY_BETTER_MASTER', 'WHY_BOW_OUT', 'WHY_LINK_DOWN', 'WHY_LINK_UP',
  'WHY_SHUTDOWN', 'WHY_DEMOTED_PEER', 'WHY_REMOVED', 'WHY_STALLED',
  'DEMOTE_LINK_DOWN', 'DEMOTE_MAINTENANCE', 'DEMOTE_BULK_SYNC', 'DEMOTE_SEND_ERRORS', 'DEMOTE_USER', 'DEMOTE_STALLED', 'DEMOTE_STARTING',
  'ACT_NONE', 'ACT_SEND_ADVERT', 'ACT_TAKE_VIPS', 'ACT_RELEASE_VIPS', 'ACT_ANNOUNCE', 'ACT_STATE',
  'CARP_STATS_LEN', 'CARP_DROP_MASK',
  'ACTION_TYPE', 'ACTION_VHID', 'ACTION_LINK', 'ACTION_ARG0', 'ACTION_ARG1', 'ACTION_ARG2', 'ACTION_LEN',
  'ACTION_PAYLOAD', 'ACTION_SIZE',
  'STATUS_VHID', 'STATUS_LINK', 'STATUS_STATE', 'STATUS_ADVBASE', 'STATUS_ADVSKEW', 'STATUS_ADVERTISED_SKEW',
  'STATUS_DEMOTE', 'STATUS_MASTER_SRC', 'STATUS_RX_ACCEPTED', 'STATUS_TX_ADVERTS', 'STATUS_TRANSITIONS',
  'STATUS_LAST_CHANGE_AT', 'STATUS_MASTER_HEARD_AT', 'STATUS_MASTER_SRC6', 'STATUS_SIZE',
  'CONFIG_KEY', 'CONFIG_VIPS', 'CONFIG_VIPS6', 'CONFIG_ADDR6', 'CARP_FAMILY_V4', 'CARP_FAMILY_V6', 'NA_LEN', 'CONFIG_KEY_MAX', 'CONFIG_MAC', 'CONFIG_PASSWORD_MAX', 'CONFIG_VIPS_MAX', 'GARP_LEN',
  'VHID_ERR_ARG', 'VHID_ERR_VIP_COUNT', 'VHID_ERR_FULL', 'VHID_ERR_DUPLICATE',
  'SYNC_STATS_LEN', 'SYNC_FLAG_DONE', 'SYNC_FLAG_BARRIER', 'IGN_MAX',
  'ENT_SIZE', 'ENT_LIVE', 'ENT_PROTO', 'ENT_ZONE', 'ENT_OSRC', 'ENT_ODST', 'ENT_OSPORT', 'ENT_ODPORT', 'ENT_RSRC',
  'ENT_RDST', 'ENT_RSPORT', 'ENT_RDPORT', 'ENT_STATUS', 'ENT_TIMEOUT', 'ENT_MARK', 'ENT_TCPSTATE',
  'ENT_WSCALE_ORIG', 'ENT_WSCALE_REPLY', 'ENT_FLAGS_ORIG', 'ENT_FLAGS_REPLY', 'ENT_LIVE_OK',
  'POL_SIZE', 'POL_TMAX', 'POL_ZONES', 'POL_MARKS', 'POL_SNAT', 'POL_VIPS', 'POL_NETS', 'POL_TMAX_MAX',
  'POL_SET_MAX', 'POL_SNAT_MAX', 'POL_VIPS_MAX', 'POL_NETS_MAX', 'POL_OWN6_MAX', 'ENT6_SIZE', 'ENT6_OSRC', 'ENT6_ODST', 'ENT6_RSRC', 'ENT6_RDST',
] as const;
export type AbiName = typeof NAMES[number];
/** Prefixes whose members the host enumerates (a new member on the core side shows up without a host change). */
export const GROUPS = ['STATE_', 'WHY_', 'DEMOTE_', 'ACT_', 'CARP_STAT_', 'SYNC_STAT_'] as const;
export type AbiGroup = typeof GROUPS[number];

export type Abi = Readonly<Record<AbiName, number>> & {
  /** Every ABI global the core exports, by name. */
  readonly all: ReadonlyMap<string, number>;
};

/** ABI globals are upper-case (the runtime's own, like __rtti_base, are not part of it). */
const ABI_GLOBAL = /^[A-Z][A-Z0-9_]*$/;

/** Read the ABI from an instance's exports; refuses a core that lacks a name the host needs. */
export function readAbi(exports: WebAssembly.Exports): Abi {
  const all = new Map<string, number>();
  for (const [k, v] of Object.entries(exports)) if (v instanceof WebAssembly.Global && ABI_GLOBAL.test(k)) all.set(k, Number(v.value));
  const missing = NAMES.filter((n) => !all.has(n));
  if (missing.length) {
    throw new CoreError('DG_ERR_CORE_ABI', `core.wasm does not export ${missing.join(', ')}: rebuild it with "npm run build:core"`);
  }
  const abi = { all } as { all: Map<string, number> } & Record<string, unknown>;
  for (const n of NAMES) abi[n] = all.get(n);
  return abi as unknown as Abi;
}

/** The members of a group, by value: `name` is the global's name after the prefix, lower-cased. */
export function group(abi: Abi, prefix: AbiGroup): { name: string; value: number }[] {
  const out: { name: string; value: number }[] = [];
  for (const [k, v] of abi.all) if (k.startsWith(prefix)) out.push({ name: k.slice(prefix.length).toLowerCase(), value: v });
  return out.sort((a, b) => a.value - b.value);
}

/** A group as a dense list indexed by value (counters, states): gaps are refused, they would misname a slot. */
export function denseNames(abi: Abi, prefix: AbiGroup): string[] {
  const g = group(abi, prefix);
  g.forEach((m, i) => {
    if (m.value !== i) throw new CoreError('DG_ERR_CORE_ABI', `core ABI group ${prefix}* is not dense: ${prefix}${m.name.toUpperCase()} = ${m.value}, expected ${i}`);
  });
  return g.map((m) => m.name);
}

let shared: Abi | null = null;
/** The ABI of the release build, read once from a throwaway instance (for names needed before any Core exists). */
export function coreAbi(): Abi {
  shared ??= readAbi(instantiateCore({ what: 'ABI probe' }));
  return shared;
}
