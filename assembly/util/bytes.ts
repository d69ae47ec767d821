// Network byte order helpers over raw linear memory. The core never allocates on the packet path,
// so every codec reads and writes through these on pointers into its static buffers.

// @ts-ignore: decorator
@inline export function getU16(p: usize): u32 { return <u32>bswap<u16>(load<u16>(p)); }
// @ts-ignore: decorator
@inline export function getU32(p: usize): u32 { return bswap<u32>(load<u32>(p)); }
// @ts-ignore: decorator
@inline export function putU16(p: usize, v: u32): void { store<u16>(p, bswap<u16>(<u16>v)); }
// @ts-ignore: decorator
@inline export function putU32(p: usize, v: u32): void { store<u32>(p, bswap<u32>(v)); }
// @ts-ignore: decorator
@inline export function getU64(p: usize): u64 { return bswap<u64>(load<u64>(p)); }
// @ts-ignore: decorator
@inline export function putU64(p: usize, v: u64): void { store<u64>(p, bswap<u64>(v)); }
