// Gratuitous ARP (carp.md §4.3): an ARP request whose sender and target IP are both the VIP, sent to
// broadcast. Linux neighbours update an existing entry for the VIP on it, so clients follow a takeover
// without waiting for their ARP cache to time out.
import { putU16, putU32 } from '../util/bytes';

/** 28-byte ARP payload at `out`: Ethernet/IPv4 request, sender = (mac at `mac`, ip), target = (00.., ip). */
export function buildGarp(out: usize, mac: usize, ip: u32): void {
  putU16(out, 1); // hardware type Ethernet
  putU16(out + 2, 0x0800); // protocol IPv4
  store<u8>(out, 6, 4); store<u8>(out, 4, 5);
  putU16(out + 6, 1); // request
  memory.copy(out + 8, mac, 6);
  putU32(out + 14, ip);
  memory.fill(out + 18, 0, 6);
  putU32(out + 24, ip);
}
