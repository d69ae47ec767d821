// Layouts of the CARP blocks the host reads and writes (exported through assembly/abi.ts). Offsets are
// bytes; words are little-endian u32 unless noted.

// ---- STATUS: one vhid's status, filled by carpStatus(i) ----
export const STATUS_VHID: u32 = 0;
export const STATUS_LINK: u32 = 4;
export const STATUS_STATE: u32 = 8;
export const STATUS_ADVBASE: u32 = 12;
export const STATUS_ADVSKEW: u32 = 16;
export const STATUS_ADVERTISED_SKEW: u32 = 20; // advskew plus demotion, clamped: what the adverts carry
export const STATUS_DEMOTE: u32 = 24; // the demote byte of the pair trailer
export const STATUS_MASTER_SRC: u32 = 28; // host order, 0 = none heard
export const STATUS_RX_ACCEPTED: u32 = 32;
export const STATUS_TX_ADVERTS: u32 = 36;
export const STATUS_TRANSITIONS: u32 = 40;
export const STATUS_LAST_CHANGE_AT: u32 = 48; // f64 ms
export const STATUS_MASTER_HEARD_AT: u32 = 56; // f64 ms, -1 never
export const STATUS_MASTER_SRC6: u32 = 64; // 16 bytes, network order, all zero = none heard over IPv6
export const STATUS_SIZE: u32 = 80;

// ---- CONFIG: scratch for configuration arguments ----
export const CONFIG_KEY: u32 = 0; // carpAddVhid's password, carpSetPair's key
export const CONFIG_KEY_MAX: u32 = 64;
export const CONFIG_VIPS: u32 = 64; // carpAddVhid's VIPs, host-order u32 words
export const CONFIG_VIPS6: u32 = 128; // carpAddVhid's IPv6 VIPs, 16 bytes each, network order
export const CONFIG_ADDR6: u32 = 384; // one IPv6 address, 16 bytes: carpSetLinkAddr6's, carpSetPair's peer
export const CONFIG_MAC: u32 = 0; // arpBuildGarp's 6-byte sender MAC

/** Length of the gratuitous ARP payload arpBuildGarp() writes. */
export const GARP_LEN: u32 = 28;

// ---- carpAddVhid's negative results ----
export const VHID_ERR_ARG: i32 = -1; // vhid, link, advbase, advskew or key length out of range
export const VHID_ERR_VIP_COUNT: i32 = -2; // no VIP or more than MAX_VIPS_PER_VHID
export const VHID_ERR_FULL: i32 = -3; // MAX_VHIDS already configured
export const VHID_ERR_DUPLICATE: i32 = -4; // the vhid is already on this link
