//! Byte ranges of header fields, relative to the start of their header.

/// A field's byte range inside its header.
pub type Field = std::ops::Range<usize>;

/// Ethernet II.
pub mod eth {
    use super::Field;
    /// Destination MAC address.
    pub const DST: Field = 0..6;
    /// Source MAC address.
    pub const SRC: Field = 6..12;
    /// Ethernet type (or TPID of a first tag).
    pub const ETHERTYPE: Field = 12..14;
}

/// 802.1Q tag, starting at its TPID.
pub mod vlan {
    use super::Field;
    /// Tag protocol identifier (0x8100 or 0x88a8).
    pub const TPID: Field = 0..2;
    /// Priority (3 bits), drop eligible (1 bit), VLAN id (12 bits).
    pub const TCI: Field = 2..4;
}

/// IPv4.
pub mod ipv4 {
    use super::Field;
    /// Version (4 bits) and header length in words (4 bits).
    pub const VER_IHL: usize = 0;
    /// DSCP (6 bits) and ECN (2 bits).
    pub const TOS: usize = 1;
    /// Total length.
    pub const TOTAL_LEN: Field = 2..4;
    /// Identification (of a datagram's fragments).
    pub const ID: Field = 4..6;
    /// Flags (3 bits) and fragment offset (13 bits).
    pub const FRAG: Field = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol.
    pub const PROTO: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Field = 10..12;
    /// Source address.
    pub const SRC: Field = 12..16;
    /// Destination address.
    pub const DST: Field = 16..20;
    /// Length of a header without options.
    pub const MIN_LEN: usize = DST.end;
}

/// IPv6.
pub mod ipv6 {
    use super::Field;
    /// Version (4), traffic class (8), flow label (20).
    pub const VER_TC_FLOW: Field = 0..4;
    /// Payload length.
    pub const PAYLOAD_LEN: Field = 4..6;
    /// Next header.
    pub const NEXT_HEADER: usize = 6;
    /// Hop limit.
    pub const HOP_LIMIT: usize = 7;
    /// Source address.
    pub const SRC: Field = 8..24;
    /// Destination address.
    pub const DST: Field = 24..40;
    /// Length of the fixed header.
    pub const LEN: usize = DST.end;
}

/// IPv6 Fragment extension header.
pub mod ipv6_frag {
    use super::Field;
    /// Next header (of the fragmentable part).
    pub const NEXT_HEADER: usize = 0;
    /// Fragment offset (13 bits, in 8-byte units), 2 reserved bits, M flag.
    pub const OFFSET_M: Field = 2..4;
    /// Identification.
    pub const ID: Field = 4..8;
    /// Header length.
    pub const LEN: usize = ID.end;
}

/// TCP.
pub mod tcp {
    use super::Field;
    /// Source port.
    pub const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub const DST_PORT: Field = 2..4;
    /// Sequence number.
    pub const SEQ: Field = 4..8;
    /// Acknowledgment number.
    pub const ACK: Field = 8..12;
    /// Data offset (4 bits, in words).
    pub const DATA_OFF: usize = 12;
    /// Flags (CWR ECE URG ACK PSH RST SYN FIN).
    pub const FLAGS: usize = 13;
    /// Checksum.
    pub const CHECKSUM: Field = 16..18;
    /// Urgent pointer.
    pub const URGENT: Field = 18..20;
    /// Length of a header without options.
    pub const MIN_LEN: usize = URGENT.end;
}

/// UDP.
pub mod udp {
    use super::Field;
    /// Source port.
    pub const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub const DST_PORT: Field = 2..4;
    /// Length of header and payload.
    pub const LENGTH: Field = 4..6;
    /// Checksum (0 means none over IPv4).
    pub const CHECKSUM: Field = 6..8;
    /// Header length.
    pub const LEN: usize = CHECKSUM.end;
}

/// ICMP and ICMPv6.
pub mod icmp {
    use super::Field;
    /// Message type.
    pub const TYPE: usize = 0;
    /// Message code.
    pub const CODE: usize = 1;
    /// Checksum.
    pub const CHECKSUM: Field = 2..4;
    /// Bytes the parser needs to read type and code.
    pub const MIN_LEN: usize = CHECKSUM.end;
    /// Identifier of an echo request or reply.
    pub const ECHO_ID: Field = 4..6;
}
