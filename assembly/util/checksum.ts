// RFC 1071 Internet checksum. CARP sums exactly its 36 header bytes, with no pseudo-header
// (carp.md §1.4); the same routine serves the IPv4 header.

/** One's-complement sum of `len` bytes at `p`, folded and complemented. 0 over data that holds a valid checksum. */
export function inetChecksum(p: usize, len: u32): u32 {
  let sum: u32 = 0;
  let i: u32 = 0;
  for (; i + 1 < len; i += 2) sum += <u32>bswap<u16>(load<u16>(p + i));
  if (i < len) sum += <u32>load<u8>(p + i) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return ~sum & 0xffff;
}
