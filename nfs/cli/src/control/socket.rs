//! Where the control socket lives and how a run claims it: one live
//! instance per path, a stale socket (its run died) reclaimed, mode 0600.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use super::SOCKET_DIR;

/// The control-socket options of `hpio-nf run`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct ControlArgs {
    /// Serve the control socket on PATH (default for runs with a live port
    /// or an endless generator: /run/hpio-nf/<config name>.sock).
    #[arg(long = "control", value_name = "PATH", conflicts_with = "no_control")]
    pub control: Option<PathBuf>,
    /// No control socket.
    #[arg(long)]
    pub no_control: bool,
}

impl ControlArgs {
    /// The socket this run serves: `--control PATH`; else, for a run that
    /// goes on by itself (`endless`), the default one of `config`; none
    /// with `--no-control` or for an offline run (pcap files, counted
    /// generators), which ends by itself.
    pub fn path(&self, config: &Path, endless: bool) -> Option<PathBuf> {
        if self.no_control {
            return None;
        }
        if let Some(p) = &self.control {
            return Some(p.clone());
        }
        endless.then(|| default_path(config))
    }

    /// The bound socket of this run ([`ControlArgs::path`]), or `None`.
    /// The default socket is skipped with a warning when its directory
    /// cannot be made (not root, a read-only /run); a socket another run
    /// serves is an error either way.
    pub fn listener(&self, config: &Path, endless: bool) -> anyhow::Result<Option<Listener>> {
        let Some(path) = self.path(config, endless) else {
            return Ok(None);
        };
        if self.control.is_none() {
            if let Err(e) = make_socket_dir() {
                log::warn!("no control socket: {e:#}");
                return Ok(None);
            }
        }
        Listener::bind(&path).map(Some)
    }
}

/// Creates [`SOCKET_DIR`] (0700) if missing.
fn make_socket_dir() -> anyhow::Result<()> {
    if Path::new(SOCKET_DIR).exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(SOCKET_DIR)
        .with_context(|| {
            format!(
                "creating {SOCKET_DIR} for the control socket \
                 (choose another with --control PATH, or --no-control)"
            )
        })
}

/// `/run/hpio-nf/<config file stem>.sock`.
pub(crate) fn default_path(config: &Path) -> PathBuf {
    let stem = config.file_stem().unwrap_or(config.as_os_str());
    let mut name = stem.to_os_string();
    name.push(".sock");
    Path::new(SOCKET_DIR).join(name)
}

/// A bound control socket (not yet answering); the file is removed when
/// it is dropped.
pub(crate) struct Listener {
    pub(super) server: tiny_http::Server,
    pub(super) path: PathBuf,
}

impl Listener {
    /// Claims `path`: refuses when another run answers on it, removes it
    /// when nobody does (a run that died), binds it and makes it
    /// owner-only (0600). Creates [`SOCKET_DIR`] (0700) if missing.
    pub fn bind(path: &Path) -> anyhow::Result<Listener> {
        if path.parent() == Some(Path::new(SOCKET_DIR)) {
            make_socket_dir()?;
        }
        reclaim(path)?;
        let server = tiny_http::Server::http_unix(path).map_err(|e| {
            anyhow::anyhow!(
                "control socket {}: {e} (choose another with --control PATH, or --no-control)",
                path.display()
            )
        })?;
        let listener = Listener {
            server,
            path: path.to_path_buf(),
        };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("control socket {}: chmod 0600", path.display()))?;
        Ok(listener)
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Makes `path` free for a new socket: an error when a run answers on it
/// or it is not a socket; removed when it is a socket nobody listens on.
fn reclaim(path: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => bail!("control socket {}: {e}", path.display()),
    };
    if !meta.file_type().is_socket() {
        bail!(
            "control socket {}: the path exists and is not a socket",
            path.display()
        );
    }
    match UnixStream::connect(path) {
        Ok(_) => bail!(
            "another hpio-nf serves {} (stop it, or choose another socket with --control PATH)",
            path.display()
        ),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            log::info!("removing the stale control socket {}", path.display());
            std::fs::remove_file(path)
                .with_context(|| format!("removing stale socket {}", path.display()))
        }
        Err(e) => bail!("control socket {}: {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_socket_is_named_after_the_config() {
        assert_eq!(
            default_path(Path::new("configs/firewall.toml")),
            Path::new("/run/hpio-nf/firewall.sock")
        );
        let args = ControlArgs::default();
        let cfg = Path::new("a/b.toml");
        assert_eq!(args.path(cfg, false), None);
        assert_eq!(args.path(cfg, true), Some("/run/hpio-nf/b.sock".into()));
        let chosen = ControlArgs {
            control: Some("/tmp/x.sock".into()),
            no_control: false,
        };
        assert_eq!(chosen.path(cfg, false), Some("/tmp/x.sock".into()));
        let off = ControlArgs {
            control: None,
            no_control: true,
        };
        assert_eq!(off.path(cfg, true), None);
    }

    #[test]
    fn binds_owner_only_refuses_a_live_socket_reclaims_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let first = Listener::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let e = Listener::bind(&path).err().unwrap().to_string();
        assert!(e.contains("another hpio-nf serves"), "{e}");
        // A socket file nobody listens on: reclaimed.
        drop(first);
        assert!(!path.exists(), "removed when dropped");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let again = Listener::bind(&path).unwrap();
        drop(again);
        // Not a socket: left alone.
        std::fs::write(&path, "x").unwrap();
        let e = Listener::bind(&path).err().unwrap().to_string();
        assert!(e.contains("not a socket"), "{e}");
    }
}
