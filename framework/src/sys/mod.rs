//! The syscall layer: the crate's `unsafe` code (besides `packet::Pool`'s two
//! bulk moves of packet pointers and `testing::CountingAlloc`).
//!
//! Everything above this module is safe Rust; this module turns the few
//! Linux system calls the live drivers need into safe functions and types:
//!
//! - [`netdev`]: interface lookups (`if_nametoindex`, `SIOCGIFFLAGS`);
//! - [`packet_socket`]: `AF_PACKET` sockets, their options, and batched
//!   `recvmmsg`/`sendmmsg` straight into and out of caller-owned buffers;
//! - [`rx_info`]: what the kernel reports beside a received frame (VLAN
//!   tag, checksum state, `virtio_net_hdr`);
//! - [`packet_ring`]: `TPACKET_V2`/`TPACKET_V3` receive rings mapped into
//!   the process;
//! - [`memory`]: huge-page advice for large tables, cache prefetch hints;
//! - [`rcu`]: a pointer readers load with no lock while a writer replaces
//!   it, the old value freed after a grace period (IPv6 route blocks);
//! - [`wait`]: `poll` over descriptors and an `eventfd` to wake a poll
//!   (idle workers sleep in it);
//! - [`bpf`]: the AF_XDP driver's XDP program, assembled here and loaded
//!   with `bpf(2)` (an `XSKMAP`, the program, a BPF link);
//! - [`xsk`]: AF_XDP sockets, their UMEM and their four mapped rings;
//! - [`creds`]: the process's effective user id (who is asking);
//! - [`dylib`]: plugin libraries (`dlopen`), their descriptor and entry point;
//! - [`plugin_abi`]: the plugin descriptor (plain `#[repr(C)]` data) and the
//!   entry point's type, which `dylib` reads and the plugin loader checks.
//!
//! It names no other module of the crate: what it reads and calls is
//! defined here ([`plugin_abi`]) or passed in by the caller.
//!
//! Rules kept here: every `unsafe` block has a `// SAFETY:` comment saying
//! why the pointers it hands the kernel are valid for the call; no pointer
//! handed to the kernel outlives the call that hands it over; errors come
//! back as [`std::io::Error`] for the caller to map to what a user can act on.

#![allow(unsafe_code)]

pub(crate) mod bpf;
pub(crate) mod creds;
pub(crate) mod dylib;
pub(crate) mod hpio_dev;
pub(crate) mod memory;
pub(crate) mod netdev;
pub(crate) mod packet_ring;
pub(crate) mod packet_socket;
pub(crate) mod plugin_abi;
pub(crate) mod rcu;
pub(crate) mod rx_info;
pub(crate) mod wait;
pub(crate) mod xsk;
mod xsk_ring;

pub(crate) use netdev::{if_flags, if_index, if_mtu};
pub(crate) use packet_ring::{BlockRing, FrameRing, RxRing};
pub(crate) use packet_socket::{MsgVec, PacketSocket, ETH_P_ALL};
pub(crate) use rx_info::{RxInfo, VlanTag, VnetHdr, SUPER_FRAME_MAX};

/// Converts a C return value (negative: failure, `errno` set) into a result.
fn cvt(r: libc::c_int) -> std::io::Result<libc::c_int> {
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Tests that send or receive on `lo` hold this lock: they share the
/// interface, and one test's burst (some flood it on purpose) can overflow
/// another's socket buffer or ring.
#[cfg(test)]
pub(crate) fn lo_lock() -> std::sync::MutexGuard<'static, ()> {
    static LO: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LO.lock().unwrap_or_else(|e| e.into_inner())
}
