//! Which files a process running as root trusts: plugin libraries and config
//! files.
//!
//! A plugin library runs its code inside hpio-nf, and a config decides which
//! libraries load and which interfaces are read and written. When hpio-nf
//! runs as root (effective uid 0), a file that another user can change is a
//! way for that user to act as root. So, as sshd's `StrictModes` and sudo
//! do, hpio-nf refuses such a file before it reads it:
//!
//! - the file (after following symbolic links) must be owned by root and
//!   writable by neither its group nor others;
//! - so must every directory above it, up to `/`, since whoever may write a
//!   directory may rename the file away and put another in its place.
//!   One exception, where sshd is stricter: a directory with the sticky bit
//!   that root owns (`/tmp`, mode 1777) is accepted, because there only the
//!   owner of an entry (root, checked below it) may rename or remove it.
//!
//! Access control lists are not read. Processes that do not run as root are
//! not checked: they could load any code they can write anyway.
//! [`allow_unsafe_paths`] turns the check off for the whole process
//! (`--allow-unsafe-paths`, for development).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::sys::creds::effective_uid;

static ALLOW_UNSAFE: AtomicBool = AtomicBool::new(false);

/// Turns the check off (or on again) for every later load in this process.
pub fn allow_unsafe_paths(allow: bool) {
    ALLOW_UNSAFE.store(allow, Ordering::Relaxed);
}

/// Whether [`allow_unsafe_paths`] turned the check off.
pub fn unsafe_paths_allowed() -> bool {
    ALLOW_UNSAFE.load(Ordering::Relaxed)
}

/// A file that a root process must not trust, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing `{}`: {} {reason}; running as root, hpio-nf loads plugins and configs only from files and directories that no user but root can change (chown root, chmod go-w; or --allow-unsafe-paths while developing)", .path.display(), self.culprit_text())]
pub struct UnsafePath {
    /// The path as given.
    pub path: PathBuf,
    /// The file or directory at fault (a component of the resolved path).
    pub culprit: PathBuf,
    /// Whether the culprit is the file itself rather than a directory.
    pub is_file: bool,
    /// What is wrong with it: "is owned by uid 1000, not root", ...
    pub reason: String,
}

impl UnsafePath {
    fn culprit_text(&self) -> String {
        match (self.is_file, self.culprit == self.path) {
            (true, true) => "the file".to_string(),
            (true, false) => format!("the file it resolves to, `{}`,", self.culprit.display()),
            (false, _) => format!("the directory `{}`", self.culprit.display()),
        }
    }
}

/// Checks `path` when this process runs as root and the check is on.
/// Returns the path to open: the resolved one when it was checked (so that
/// a symbolic link changed after the check cannot redirect the open), else
/// `path` itself.
pub fn check(path: &Path) -> Result<PathBuf, UnsafePath> {
    if effective_uid() != 0 || unsafe_paths_allowed() {
        return Ok(path.to_path_buf());
    }
    check_strict(path)
}

/// The rule of this module, applied whoever runs: `Ok` with the resolved
/// path, or the first component that another user could change. A path
/// that cannot be resolved is returned as it is: opening it reports why.
pub fn check_strict(path: &Path) -> Result<PathBuf, UnsafePath> {
    let Ok(real) = std::fs::canonicalize(path) else {
        return Ok(path.to_path_buf());
    };
    let fault = |culprit: &Path, reason: String| UnsafePath {
        path: path.to_path_buf(),
        culprit: culprit.to_path_buf(),
        is_file: culprit == real,
        reason,
    };
    for (i, p) in real.ancestors().enumerate() {
        let meta = std::fs::metadata(p).map_err(|e| fault(p, format!("cannot be checked: {e}")))?;
        if let Some(reason) = problem(meta.uid(), meta.mode(), i > 0) {
            return Err(fault(p, reason));
        }
    }
    Ok(real)
}

/// What makes a file (or a directory, `dir`) of owner `uid` and `mode`
/// changeable by a user other than root, if anything.
fn problem(uid: u32, mode: u32, dir: bool) -> Option<String> {
    let mode = mode & 0o7777;
    if uid != 0 {
        return Some(format!("is owned by uid {uid}, not root"));
    }
    if mode & 0o022 == 0 || (dir && mode & 0o1000 != 0) {
        return None;
    }
    let who = if mode & 0o002 != 0 {
        "others"
    } else {
        "its group"
    };
    let sticky = if dir { " and has no sticky bit" } else { "" };
    Some(format!("is writable by {who} (mode {mode:04o}){sticky}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn owner_and_mode_rules() {
        assert_eq!(problem(0, 0o644, false), None);
        assert_eq!(problem(0, 0o755, true), None);
        assert_eq!(problem(0, 0o1777, true), None, "root's sticky /tmp");
        assert!(
            problem(0, 0o1777, false).is_some(),
            "sticky means nothing on a file"
        );
        assert_eq!(
            problem(1000, 0o644, false).as_deref(),
            Some("is owned by uid 1000, not root")
        );
        assert_eq!(
            problem(0, 0o664, false).as_deref(),
            Some("is writable by its group (mode 0664)")
        );
        assert_eq!(
            problem(0, 0o777, true).as_deref(),
            Some("is writable by others (mode 0777) and has no sticky bit")
        );
        assert!(
            problem(1000, 0o1777, true).is_some(),
            "a user's sticky directory"
        );
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A root-owned 0700 directory under the system's temporary directory
    /// (root's sticky /tmp), removed on drop.
    struct Dir(PathBuf);
    impl Dir {
        fn new(tag: &str) -> Dir {
            let p = std::env::temp_dir().join(format!("hpnf-trust-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir(&p).unwrap();
            chmod(&p, 0o700);
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn files_others_can_change_are_refused_with_the_culprit_named() {
        if !testkit::require(
            "trust_refuses_files_others_can_change",
            &[testkit::Need::Root],
        ) {
            return;
        }
        let d = Dir::new("files");
        let f = d.0.join("x.toml");
        std::fs::write(&f, "").unwrap();
        chmod(&f, 0o644);
        assert_eq!(check_strict(&f), Ok(f.canonicalize().unwrap()));

        chmod(&f, 0o666);
        let e = check_strict(&f).unwrap_err();
        assert!(e.is_file && e.culprit == f, "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!(
                "refusing `{}`: the file is writable by others (mode 0666)",
                f.display()
            )),
            "{msg}"
        );
        assert!(msg.contains("--allow-unsafe-paths"), "{msg}");
        chmod(&f, 0o620);
        assert!(check_strict(&f).unwrap_err().reason.contains("its group"));
        chmod(&f, 0o644);
        std::os::unix::fs::chown(&f, Some(1000), None).unwrap();
        assert_eq!(
            check_strict(&f).unwrap_err().reason,
            "is owned by uid 1000, not root"
        );
        std::os::unix::fs::chown(&f, Some(0), None).unwrap();

        // A directory above it: writable by others without the sticky bit,
        // then owned by another user; with the sticky bit, accepted.
        let sub = d.0.join("sub");
        std::fs::create_dir(&sub).unwrap();
        let g = sub.join("libx.so");
        std::fs::write(&g, "").unwrap();
        chmod(&sub, 0o777);
        let e = check_strict(&g).unwrap_err();
        assert!(!e.is_file && e.culprit == sub, "{e:?}");
        assert!(
            e.to_string().contains(&format!(
                "the directory `{}` is writable by others (mode 0777) and has no sticky bit",
                sub.display()
            )),
            "{e}"
        );
        chmod(&sub, 0o1777);
        assert!(check_strict(&g).is_ok());
        chmod(&sub, 0o755);
        std::os::unix::fs::chown(&sub, Some(1000), None).unwrap();
        assert_eq!(check_strict(&g).unwrap_err().culprit, sub);
    }

    #[test]
    fn a_link_is_judged_by_what_it_points_at() {
        if !testkit::require("trust_judges_a_link_by_its_target", &[testkit::Need::Root]) {
            return;
        }
        let d = Dir::new("links");
        let open = d.0.join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let target = open.join("real.toml");
        std::fs::write(&target, "").unwrap();
        chmod(&target, 0o644);
        let link = d.0.join("link.toml");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = check_strict(&link).unwrap_err();
        assert_eq!(e.culprit, open, "{e:?}");
        chmod(&open, 0o755);
        // Ok gives the resolved path, which the loaders open.
        assert_eq!(check_strict(&link), Ok(target.canonicalize().unwrap()));
        // A missing file is left to the open that follows to report.
        let gone = d.0.join("missing");
        assert_eq!(check_strict(&gone), Ok(gone.clone()));
    }
}
