// IPv6 pieces of CARP (OpenBSD's carp6 path, carp.md "CARP over IPv6"): 16-byte addresses kept in network
// order, compared as memcmp compares them, which is the order BSD CARP feeds them to the HMAC.

export const IPV6_HEADER_LEN: u32 = 40;
/** ff02::12, the all-CARP/VRRP link-local group. */
export const CARP_GROUP6_HI: u64 = 0xff02000000000000;
export const CARP_GROUP6_LO: u64 = 0x12;

/** Which IP family an advert travels in: ACT_SEND_ADVERT's arg1 and the family handleCarp saw. */
export const FAMILY_V4: u32 = 4;
export const FAMILY_V6: u32 = 6;

/** memcmp of two 16-byte addresses: < 0, 0 or > 0. */
export function cmp16(a: usize, b: usize): i32 {
  for (let i: usize = 0; i < 16; i++) {
    const x = <i32>load<u8>(a + i), y = <i32>load<u8>(b + i);
    if (x != y) return x - y;
  }
  return 0;
}

// @ts-ignore: decorator
@inline export function eq16(a: usize, b: usize): bool { return load<u64>(a) == load<u64>(b) && load<u64>(a, 8) == load<u64>(b, 8); }

// @ts-ignore: decorator
@inline export function isZero16(a: usize): bool { return load<u64>(a) == 0 && load<u64>(a, 8) == 0; }

/**
 * KAME's IN6_IS_SCOPE_EMBED: link-local unicast (fe80::/10) and interface- or link-local multicast. The BSDs
 * keep a scope id in bytes 2-3 of such addresses and clear it before hashing them into the CARP HMAC.
 */
export function isScopeEmbedded(a: usize): bool {
  const b0 = <u32>load<u8>(a), b1 = <u32>load<u8>(a, 1);
  if (b0 == 0xfe && (b1 & 0xc0) == 0x80) return true;
  return b0 == 0xff && ((b1 & 0x0f) == 1 || (b1 & 0x0f) == 2);
}
