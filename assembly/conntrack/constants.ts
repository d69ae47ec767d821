// ctnetlink numbers (uapi linux/netfilter/nfnetlink_conntrack.h, nf_conntrack_common.h, nf_conntrack_tcp.h).
// Byte order: netlink headers and attribute headers are host order (little-endian here); attribute
// payload integers are big-endian; addresses and ports are raw network bytes (statesync.md 3.1).

// ---- netlink ----
export const NLMSG_HDRLEN: u32 = 16;
export const NFGEN_HDRLEN: u32 = 4;
export const NLMSG_ERROR: u16 = 2;
export const NLMSG_DONE: u16 = 3;
export const NLM_F_REQUEST: u16 = 0x1;
export const NLM_F_ACK: u16 = 0x4;
export const NLM_F_EXCL: u16 = 0x200;
export const NLM_F_CREATE: u16 = 0x400;
export const NLA_TYPE_MASK: u16 = 0x3fff;
export const AF_INET: u8 = 2;
export const AF_INET6: u8 = 10;

// ---- message types: (NFNL_SUBSYS_CTNETLINK 1 << 8) | msg ----
export const CT_NEW: u16 = 0x100;
export const CT_GET: u16 = 0x101;
export const CT_DELETE: u16 = 0x102;

// ---- CTA_* top level ----
export const CTA_TUPLE_ORIG: u16 = 1;
export const CTA_TUPLE_REPLY: u16 = 2;
export const CTA_STATUS: u16 = 3;
export const CTA_PROTOINFO: u16 = 4;
export const CTA_NAT_SRC: u16 = 6;
export const CTA_TIMEOUT: u16 = 7;
export const CTA_MARK: u16 = 8;
export const CTA_NAT_DST: u16 = 13;
export const CTA_ZONE: u16 = 18;
// tuple
export const CTA_TUPLE_IP: u16 = 1;
export const CTA_TUPLE_PROTO: u16 = 2;
export const CTA_TUPLE_ZONE: u16 = 3;
export const CTA_IP_V4_SRC: u16 = 1;
export const CTA_IP_V4_DST: u16 = 2;
export const CTA_IP_V6_SRC: u16 = 3;
export const CTA_IP_V6_DST: u16 = 4;
export const CTA_PROTO_NUM: u16 = 1;
export const CTA_PROTO_SRC_PORT: u16 = 2;
export const CTA_PROTO_DST_PORT: u16 = 3;
export const CTA_PROTO_ICMP_ID: u16 = 4;
export const CTA_PROTO_ICMP_TYPE: u16 = 5;
export const CTA_PROTO_ICMP_CODE: u16 = 6;
export const CTA_PROTO_ICMPV6_ID: u16 = 7;
export const CTA_PROTO_ICMPV6_TYPE: u16 = 8;
export const CTA_PROTO_ICMPV6_CODE: u16 = 9;
// protoinfo
export const CTA_PROTOINFO_TCP: u16 = 1;
export const CTA_PROTOINFO_TCP_STATE: u16 = 1;
export const CTA_PROTOINFO_TCP_WSCALE_ORIGINAL: u16 = 2;
export const CTA_PROTOINFO_TCP_WSCALE_REPLY: u16 = 3;
export const CTA_PROTOINFO_TCP_FLAGS_ORIGINAL: u16 = 4;
export const CTA_PROTOINFO_TCP_FLAGS_REPLY: u16 = 5;
// NAT
export const CTA_NAT_V4_MINIP: u16 = 1;
export const CTA_NAT_V6_MINIP: u16 = 4;
export const CTA_NAT_PROTO: u16 = 3;
export const CTA_PROTONAT_PORT_MIN: u16 = 1;
export const CTA_PROTONAT_PORT_MAX: u16 = 2;
export const NLA_F_NESTED: u16 = 0x8000;

// ---- IPS_* status ----
export const IPS_SEEN_REPLY: u32 = 0x2;
export const IPS_ASSURED: u32 = 0x4;
export const IPS_CONFIRMED: u32 = 0x8;
export const IPS_SRC_NAT: u32 = 0x10;
export const IPS_DST_NAT: u32 = 0x20;

// ---- TCP ----
export const IPPROTO_ICMP: u8 = 1;
export const IPPROTO_TCP: u8 = 6;
export const IPPROTO_UDP: u8 = 17;
export const IPPROTO_ICMPV6: u8 = 58;
export const TCP_CONNTRACK_MAX: u8 = 10;
export const TCP_FLAG_WINDOW_SCALE: u8 = 0x01;
export const TCP_FLAG_SACK_PERM: u8 = 0x02;
export const TCP_FLAG_CLOSE_INIT: u8 = 0x04;
export const TCP_FLAG_BE_LIBERAL: u8 = 0x08;
/** The flag bits worth replicating (statesync.md 3.4): MAXACK_SET/DATA_UNACK lack their companion values. */
export const TCP_FLAGS_SYNCED: u8 = TCP_FLAG_WINDOW_SCALE | TCP_FLAG_SACK_PERM | TCP_FLAG_CLOSE_INIT;

// ---- errno (negated in NLMSG_ERROR) ----
export const ENOENT: i32 = 2;
export const EEXIST: i32 = 17;
