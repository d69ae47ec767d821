// Unsolicited neighbour advertisement (RFC 4861 §7.2.6), IPv6's gratuitous ARP: the new MASTER announces each
// IPv6 VIP from its MAC so neighbours that cached the old master's MAC switch at once. Override set (the entry is
// replaced, not just marked stale), Router set (the VIP is a gateway: a NA without it would make hosts drop the
// VIP from their default router list, §7.2.5), Solicited clear. From the VIP to all nodes (ff02::1), hop limit 255.
import { putU16, putU32 } from '../util/bytes';
import { inetChecksum } from '../util/checksum';

export const NA_LEN: u32 = 40 + 32; // IPv6 header, NA (24 bytes), target link-layer address option (8)
const ICMPV6: u8 = 58;
const NA_TYPE: u8 = 136;
const FLAG_ROUTER: u32 = 0x80000000;
const FLAG_OVERRIDE: u32 = 0x20000000;
const PSEUDO = memory.data(40 + 32, 16);

/** The whole IPv6 packet at `out`: NA for the 16-byte `vip` from the 6-byte `mac`. Returns NA_LEN. */
export function buildNa(out: usize, vip: usize, mac: usize): u32 {
  putU32(out, 0x60000000);
  putU16(out + 4, 32);
  store<u8>(out, ICMPV6, 6); store<u8>(out, 255, 7);
  memory.copy(out + 8, vip, 16);
  memory.fill(out + 24, 0, 16);
  store<u8>(out, 0xff, 24); store<u8>(out, 0x02, 25); store<u8>(out, 0x01, 39);
  const icmp = out + 40;
  store<u8>(icmp, NA_TYPE); store<u8>(icmp, 0, 1); putU16(icmp + 2, 0);
  putU32(icmp + 4, FLAG_ROUTER | FLAG_OVERRIDE);
  memory.copy(icmp + 8, vip, 16);
  store<u8>(icmp, 2, 24); store<u8>(icmp, 1, 25); // target link-layer address, 8 bytes
  memory.copy(icmp + 26, mac, 6);
  // Checksum over the pseudo-header (source, destination, upper-layer length, next header) and the message.
  memory.copy(PSEUDO, out + 8, 32);
  putU32(PSEUDO + 32, 32); putU32(PSEUDO + 36, ICMPV6);
  memory.copy(PSEUDO + 40, icmp, 32);
  putU16(icmp + 2, inetChecksum(PSEUDO, 72));
  return NA_LEN;
}
