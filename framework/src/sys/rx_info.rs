//! What the kernel reports beside a received frame: the VLAN tag it took
//! out, whether the transport checksum is still to be finished, and the
//! `virtio_net_hdr` of a super-frame (offloads). Decoded from a ring
//! frame's header (`packet_ring`) or from `recvmsg`'s control messages and
//! the vnet header (`packet_socket`). Safe code: plain decoding of bytes.

use std::mem::size_of;

/// A VLAN tag as the kernel reports it beside a frame: (TPID, TCI).
pub(crate) type VlanTag = (u16, u16);

/// `TP_STATUS_CSUMNOTREADY` (not in `libc`): the frame's TCP/UDP checksum
/// field holds only the pseudo-header sum (`CHECKSUM_PARTIAL`: locally
/// generated, or from a virtual device, and no device has finished it yet).
pub(crate) const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;

/// Longest frame read whole with a `virtio_net_hdr`: a 64 KiB super-frame
/// (IP length 65,535) with its Ethernet header and two VLAN tags, rounded up.
pub(crate) const SUPER_FRAME_MAX: usize = 65536 + 512;

/// Bytes of a `struct virtio_net_hdr`.
pub(crate) const VNET_HDR_LEN: usize = 10;

/// The `struct virtio_net_hdr` the kernel puts before each frame received
/// on a socket with `PACKET_VNET_HDR` (`PacketSocket::vnet_hdr`) (in host byte order: legacy
/// virtio, which is what packet sockets use). All zero for a frame that is
/// neither unsegmented nor checksum-partial.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct VnetHdr {
    /// [`VnetHdr::NEEDS_CSUM`], [`VnetHdr::DATA_VALID`].
    pub flags: u8,
    /// [`VnetHdr::GSO_NONE`], `GSO_TCPV4`, `GSO_TCPV6`, `GSO_UDP_L4`, maybe with `GSO_ECN`.
    pub gso_type: u8,
    /// Length of the headers (a hint, not relied on).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where the checksummed part starts (the transport header), from the frame's start.
    pub csum_start: u16,
    /// Where the checksum field lies, from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// The transport checksum holds only the pseudo-header sum (`CHECKSUM_PARTIAL`).
    pub const NEEDS_CSUM: u8 = 1;
    /// The checksums were checked (`CHECKSUM_UNNECESSARY`): informative, the
    /// driver does not rely on it.
    #[allow(dead_code)]
    pub const DATA_VALID: u8 = 2;
    /// Not a super-frame.
    pub const GSO_NONE: u8 = 0;
    /// TCP over IPv4, to be cut at `gso_size` payload bytes.
    pub const GSO_TCPV4: u8 = 1;
    /// UDP fragmentation offload (no longer produced by Linux; not cut).
    #[cfg_attr(not(test), allow(dead_code))]
    pub const GSO_UDP: u8 = 3;
    /// TCP over IPv6.
    pub const GSO_TCPV6: u8 = 4;
    /// UDP segmentation (`UDP_SEGMENT`): each segment its own datagram.
    pub const GSO_UDP_L4: u8 = 5;
    /// Flag: the TCP super-frame has CWR set (first segment only).
    pub const GSO_ECN: u8 = 0x80;

    /// Decodes the 10 bytes the kernel wrote.
    #[inline]
    pub fn parse(b: &[u8; VNET_HDR_LEN]) -> VnetHdr {
        let u = |o: usize| u16::from_ne_bytes([b[o], b[o + 1]]);
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        }
    }

    /// A super-frame, to be cut into segments.
    #[inline]
    pub fn is_gso(&self) -> bool {
        self.gso_type != Self::GSO_NONE
    }
}

/// What the kernel reports beside a received frame (ring frame header or
/// `PACKET_AUXDATA`, and the `virtio_net_hdr` when the socket asks for it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RxInfo {
    /// The VLAN tag the kernel took out of the frame.
    pub vlan: Option<VlanTag>,
    /// The transport checksum is not filled in (`TP_STATUS_CSUMNOTREADY`).
    pub csum_not_ready: bool,
    /// The frame's `virtio_net_hdr` (zero without `PACKET_VNET_HDR`).
    pub vnet: VnetHdr,
}

impl RxInfo {
    /// Decodes a `tp_status` word and the tag fields beside it.
    #[inline]
    pub(crate) fn from_status(status: u32, tci: u16, tpid: u16) -> RxInfo {
        let vlan = (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
            let tpid = if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                tpid
            } else {
                0x8100
            };
            (tpid, tci)
        });
        RxInfo {
            vlan,
            csum_not_ready: status & TP_STATUS_CSUMNOTREADY != 0,
            vnet: VnetHdr::default(),
        }
    }
}

/// What the `PACKET_AUXDATA` control message among the control messages `b`
/// (as `recvmsg` lays them out) reports, if there is one.
pub(crate) fn parse_auxdata(b: &[u8]) -> Option<RxInfo> {
    const HDR: usize = size_of::<libc::cmsghdr>();
    let u32_at = |o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    let u16_at = |o: usize| u16::from_ne_bytes([b[o], b[o + 1]]);
    let mut off = 0;
    while off + HDR <= b.len() {
        // cmsg_len (a size_t), cmsg_level, cmsg_type.
        const W: usize = size_of::<usize>();
        let c = &b[off..off + HDR];
        let len = usize::from_ne_bytes(c[..W].try_into().ok()?);
        let level = i32::from_ne_bytes(c[W..W + 4].try_into().ok()?);
        let ty = i32::from_ne_bytes(c[W + 4..W + 8].try_into().ok()?);
        if len < HDR || off + len > b.len() {
            return None;
        }
        if level == libc::SOL_PACKET
            && ty == libc::PACKET_AUXDATA
            && len >= HDR + size_of::<libc::tpacket_auxdata>()
        {
            // tp_status, tp_len, tp_snaplen, tp_mac, tp_net, tp_vlan_tci, tp_vlan_tpid.
            let d = off + HDR;
            return Some(RxInfo::from_status(
                u32_at(d),
                u16_at(d + 16),
                u16_at(d + 18),
            ));
        }
        off += len.next_multiple_of(W);
    }
    None
}
