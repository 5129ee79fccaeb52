//! Network interfaces: index by name, and the administrative/operational flags.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::cvt;

/// The flags of an interface, as `SIOCGIFFLAGS` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IfFlags(pub u32);

impl IfFlags {
    /// Administratively up (`ip link set X up`).
    pub fn up(self) -> bool {
        self.0 & libc::IFF_UP as u32 != 0
    }

    /// Operationally up: administratively up and the carrier is present
    /// (for a veth: its peer is up too).
    pub fn running(self) -> bool {
        self.0 & libc::IFF_RUNNING as u32 != 0
    }
}

/// The index of interface `name` in the calling thread's network namespace,
/// `None` when there is no such interface.
pub(crate) fn if_index(name: &str) -> io::Result<Option<u32>> {
    let Ok(c) = CString::new(name) else {
        return Ok(None);
    };
    // SAFETY: `c` is a NUL-terminated string that lives across the call;
    // if_nametoindex only reads it.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx != 0 {
        return Ok(Some(idx));
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENODEV) | Some(libc::ENXIO) => Ok(None),
        _ => Err(e),
    }
}

/// Runs `SIOCGIF*` ioctl `req_code` on interface `name` and returns the
/// filled `ifreq`. Needs no privilege (the ioctl goes through an `AF_UNIX`
/// socket). Fails with `ENODEV` when there is no such interface.
fn if_ioctl(name: &str, req_code: libc::c_ulong) -> io::Result<libc::ifreq> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    // SAFETY: socket() takes no pointers; the result is checked before use.
    let fd = cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a fresh descriptor owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: `ifreq` is plain old data (a name array and a union of
    // integers, arrays and raw pointers): all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, &s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = s as libc::c_char;
    }
    // SAFETY: `req` is a valid, NUL-terminated ifreq that lives across the
    // call; the SIOCGIF* requests used here read the name and write only
    // one integer field of the union.
    cvt(unsafe { libc::ioctl(sock.as_raw_fd(), req_code as _, &mut req) })?;
    Ok(req)
}

/// The flags of interface `name` (`SIOCGIFFLAGS`). Fails with `ENODEV` when
/// there is no such interface.
pub(crate) fn if_flags(name: &str) -> io::Result<IfFlags> {
    let req = if_ioctl(name, libc::SIOCGIFFLAGS as libc::c_ulong)?;
    // SAFETY: the kernel wrote `ifru_flags`; every bit pattern is a valid c_short.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    Ok(IfFlags(u32::from(flags as u16)))
}

/// The MTU of interface `name` in bytes (`SIOCGIFMTU`). Fails with
/// `ENODEV` when there is no such interface.
pub(crate) fn if_mtu(name: &str) -> io::Result<usize> {
    let req = if_ioctl(name, libc::SIOCGIFMTU as libc::c_ulong)?;
    // SAFETY: the kernel wrote `ifru_mtu`; every bit pattern is a valid c_int.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    Ok(usize::try_from(mtu).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_index_1_and_up() {
        assert_eq!(if_index("lo").unwrap(), Some(1));
        let f = if_flags("lo").unwrap();
        assert!(f.up());
        assert!(f.running());
        assert_eq!(if_mtu("lo").unwrap(), 65536);
    }

    #[test]
    fn missing_interfaces_are_none_or_enodev() {
        assert_eq!(if_index("hpio-nf-none0").unwrap(), None);
        assert_eq!(if_index("no\0such").unwrap(), None);
        assert_eq!(if_index("").unwrap(), None);
        for name in ["hpnf-none0", "", "much-too-long-interface", "a\0b"] {
            let e = if_flags(name).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{name:?}");
            let e = if_mtu(name).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{name:?}");
        }
    }

    #[test]
    fn flags_decode() {
        let f = IfFlags((libc::IFF_UP | libc::IFF_RUNNING) as u32);
        assert!(f.up() && f.running());
        let f = IfFlags(libc::IFF_UP as u32);
        assert!(f.up() && !f.running());
        assert!(!IfFlags(0).up());
    }
}
