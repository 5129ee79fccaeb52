//! A tiny XDP loader over the `bpf(2)` system call: no libbpf, no clang,
//! no object file.
//!
//! The AF_XDP driver needs one program: "send the frame to the AF_XDP
//! socket of the queue it arrived on, or to the kernel's stack when that
//! queue has none". It is six BPF instructions, assembled here
//! ([`redirect_program`]); its one map is an `XSKMAP` indexed by receive
//! queue ([`XskMap`]). The program is attached to an interface with a BPF
//! link ([`XdpLink`], `BPF_LINK_CREATE`): the attachment belongs to the
//! link's file descriptor, so the kernel detaches the program when the
//! last descriptor closes, also when the process is killed (`SIGKILL`)
//! and no destructor runs.
//!
//! Layouts follow `include/uapi/linux/bpf.h`: each command's part of
//! `union bpf_attr` is its own `repr(C)` struct here, passed with its own
//! size (the kernel zero-fills what a shorter struct leaves out).

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;

/// `enum bpf_cmd` values used here.
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;
/// `BPF_MAP_TYPE_XSKMAP`.
const MAP_TYPE_XSKMAP: u32 = 17;
/// `BPF_PROG_TYPE_XDP`.
const PROG_TYPE_XDP: u32 = 6;
/// `enum bpf_attach_type`: `BPF_XDP`.
const ATTACH_XDP: u32 = 37;
/// `XDP_FLAGS_SKB_MODE` and `XDP_FLAGS_DRV_MODE` (`if_link.h`).
const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;
/// `BPF_FUNC_redirect_map`.
const FUNC_REDIRECT_MAP: i32 = 51;
/// `XDP_PASS`: the action when the map has no socket for the queue.
const XDP_PASS: i32 = 2;
/// Offset of `rx_queue_index` in `struct xdp_md`.
const XDP_MD_RX_QUEUE_INDEX: i16 = 16;
/// `BPF_PSEUDO_MAP_FD`: the 64-bit immediate is a map's descriptor.
const PSEUDO_MAP_FD: u8 = 1;
/// Name the program and map carry (`bpftool prog`, `ip link`).
const NAME: &[u8] = b"hpio_nf_xsk";

/// `struct bpf_insn`: opcode, registers (dst low nibble, src high), offset, immediate.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The redirect program for map descriptor `map_fd`:
///
/// ```text
/// r2 = *(u32 *)(r1 + rx_queue_index)   ; the key: the frame's receive queue
/// r1 = map_fd ll                       ; the XSKMAP
/// r3 = XDP_PASS                        ; no socket for the queue: the stack
/// call bpf_redirect_map
/// exit                                 ; its result is the action
/// ```
pub(crate) fn redirect_program(map_fd: RawFd) -> [Insn; 6] {
    [
        // BPF_LDX | BPF_MEM | BPF_W
        insn(0x61, 2, 1, XDP_MD_RX_QUEUE_INDEX, 0),
        // BPF_LD | BPF_DW | BPF_IMM: two slots, the upper half 0
        insn(0x18, 1, PSEUDO_MAP_FD, 0, map_fd),
        insn(0, 0, 0, 0, 0),
        // BPF_ALU64 | BPF_MOV | BPF_K
        insn(0xb7, 3, 0, 0, XDP_PASS),
        // BPF_JMP | BPF_CALL
        insn(0x85, 0, 0, 0, FUNC_REDIRECT_MAP),
        // BPF_JMP | BPF_EXIT
        insn(0x95, 0, 0, 0, 0),
    ]
}

/// `bpf_attr` for `BPF_MAP_CREATE`.
#[repr(C)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// `bpf_attr` for `BPF_MAP_*_ELEM`.
#[repr(C)]
struct MapElem {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

/// `bpf_attr` for `BPF_PROG_LOAD`.
#[repr(C)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `bpf_attr` for `BPF_LINK_CREATE`.
#[repr(C)]
struct LinkCreate {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

fn name16() -> [u8; 16] {
    let mut n = [0u8; 16];
    n[..NAME.len()].copy_from_slice(NAME);
    n
}

/// `bpf(cmd, attr, sizeof attr)`; the result (a descriptor or 0), checked.
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a repr(C) prefix of `union bpf_attr` for `cmd`,
    // valid for reads and writes of its size across the call; every
    // pointer inside it (instructions, license, log) points to memory the
    // caller keeps alive across the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            ptr::from_mut(attr).cast::<libc::c_void>(),
            size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Wraps a descriptor the kernel just returned.
fn owned(fd: libc::c_long) -> OwnedFd {
    // SAFETY: `fd` is a fresh descriptor from bpf(2), owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
}

/// An `XSKMAP`: receive queue index -> AF_XDP socket.
#[derive(Debug)]
pub(crate) struct XskMap {
    fd: OwnedFd,
}

impl XskMap {
    /// A map for queues `0..entries`. Fails with `EPERM` without
    /// `CAP_BPF`/`CAP_NET_ADMIN`.
    pub fn new(entries: u32) -> io::Result<XskMap> {
        let mut a = MapCreate {
            map_type: MAP_TYPE_XSKMAP,
            key_size: 4,
            value_size: 4,
            max_entries: entries,
            map_flags: 0,
            inner_map_fd: 0,
            numa_node: 0,
            map_name: name16(),
        };
        let fd = owned(bpf(BPF_MAP_CREATE, &mut a)?);
        Ok(XskMap { fd })
    }

    /// Frames of queue `queue` go to AF_XDP socket `socket` from now on.
    pub fn set(&self, queue: u32, socket: RawFd) -> io::Result<()> {
        let (key, value) = (queue, socket as u32);
        let mut a = MapElem {
            map_fd: self.fd.as_raw_fd() as u32,
            _pad: 0,
            key: ptr::from_ref(&key) as u64,
            value: ptr::from_ref(&value) as u64,
            flags: 0,
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(drop)
    }
}

/// A loaded XDP program.
#[derive(Debug)]
pub(crate) struct XdpProgram {
    fd: OwnedFd,
}

impl XdpProgram {
    /// Loads [`redirect_program`] over `map`. On a verifier rejection the
    /// error carries the verifier's log.
    pub fn redirect(map: &XskMap) -> io::Result<XdpProgram> {
        Self::load(&redirect_program(map.fd.as_raw_fd()))
    }

    /// Loads `insns` as an XDP program.
    pub fn load(insns: &[Insn]) -> io::Result<XdpProgram> {
        let license = b"Dual MIT/GPL\0";
        let mut log = vec![0u8; 4096];
        let mut a = ProgLoad {
            prog_type: PROG_TYPE_XDP,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 0,
            log_size: 0,
            log_buf: 0,
            kern_version: 0,
            prog_flags: 0,
            prog_name: name16(),
            prog_ifindex: 0,
            expected_attach_type: ATTACH_XDP,
        };
        match bpf(BPF_PROG_LOAD, &mut a) {
            Ok(fd) => Ok(XdpProgram { fd: owned(fd) }),
            Err(e)
                if e.raw_os_error() == Some(libc::EACCES)
                    || e.kind() == io::ErrorKind::InvalidInput =>
            {
                // Once more with the verifier's log, to say why.
                a.log_level = 1;
                a.log_size = log.len() as u32;
                a.log_buf = log.as_mut_ptr() as u64;
                let again = bpf(BPF_PROG_LOAD, &mut a);
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
                match again {
                    Ok(fd) => Ok(XdpProgram { fd: owned(fd) }),
                    Err(_) => Err(io::Error::new(e.kind(), format!("{e}; verifier: {text}"))),
                }
            }
            Err(e) => Err(e),
        }
    }
}

/// Where the program runs: in the driver (native) or in the generic path
/// after the stack built an skb (any interface, slower).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum XdpMode {
    Native,
    Generic,
}

/// A program attached to an interface; detached when dropped, or when the
/// process ends in any way (the kernel closes the descriptor).
#[derive(Debug)]
pub(crate) struct XdpLink {
    _fd: OwnedFd,
    mode: XdpMode,
}

impl XdpLink {
    /// Attaches `prog` to interface `ifindex` in `mode`. Fails with `EBUSY`
    /// or `EEXIST` when the interface already has an XDP program, and with
    /// `EOPNOTSUPP` or `EINVAL` when the driver has no native XDP.
    pub fn attach(prog: &XdpProgram, ifindex: u32, mode: XdpMode) -> io::Result<XdpLink> {
        let mut a = LinkCreate {
            prog_fd: prog.fd.as_raw_fd() as u32,
            target_ifindex: ifindex,
            attach_type: ATTACH_XDP,
            flags: match mode {
                XdpMode::Native => XDP_FLAGS_DRV_MODE,
                XdpMode::Generic => XDP_FLAGS_SKB_MODE,
            },
        };
        let fd = owned(bpf(BPF_LINK_CREATE, &mut a)?);
        Ok(XdpLink { _fd: fd, mode })
    }

    /// The mode it was attached in.
    pub fn mode(&self) -> XdpMode {
        self.mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_layouts_match_the_kernel() {
        assert_eq!(size_of::<Insn>(), 8);
        assert_eq!(size_of::<MapCreate>(), 44);
        assert_eq!(size_of::<MapElem>(), 32);
        assert_eq!(std::mem::offset_of!(ProgLoad, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoad, expected_attach_type), 68);
        assert_eq!(size_of::<LinkCreate>(), 16);
    }

    #[test]
    fn program_encodes_the_map_and_registers() {
        let p = redirect_program(7);
        assert_eq!(p.len(), 6);
        // r2 = *(u32 *)(r1 + 16): dst 2 in the low nibble, src 1 in the high.
        assert_eq!((p[0].code, p[0].regs, p[0].off), (0x61, 0x12, 16));
        assert_eq!((p[1].code, p[1].regs, p[1].imm), (0x18, 0x11, 7));
        assert_eq!((p[3].regs, p[3].imm), (3, XDP_PASS));
        assert_eq!((p[4].code, p[4].imm), (0x85, 51));
        assert_eq!(p[5].code, 0x95);
    }

    /// Needs root (CAP_BPF): creating the map, loading the program (the
    /// verifier accepts it) and putting an entry in. A bad program comes
    /// back with the verifier's reason.
    #[test]
    fn map_and_program_load() {
        if !testkit::require("sys::bpf::map_and_program_load", &[testkit::Need::Root]) {
            return;
        }
        let map = XskMap::new(4).unwrap();
        XdpProgram::redirect(&map).expect("the verifier accepts the program");
        // Not an AF_XDP socket: refused.
        let f = std::fs::File::open("/dev/null").unwrap();
        assert!(map.set(0, f.as_raw_fd()).is_err());
        assert!(map.set(9, f.as_raw_fd()).is_err(), "out of range");
        // A program that reads r2 before writing it is rejected, with the log.
        let bad = [insn(0xbf, 0, 2, 0, 0), insn(0x95, 0, 0, 0, 0)];
        let e = XdpProgram::load(&bad).unwrap_err();
        assert!(e.to_string().contains("verifier: "), "{e}");
    }
}
