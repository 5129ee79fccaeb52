//! The process's credentials.

/// The effective user id of the calling process (0: root).
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid takes no argument, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    #[test]
    fn effective_uid_is_the_one_proc_reports() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let uids = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        // Uid: real effective saved filesystem
        let euid: u32 = uids.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert_eq!(super::effective_uid(), euid);
    }
}
