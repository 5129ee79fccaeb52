//! Network namespaces and veth pairs for live tests, removed on drop (and
//! any leftover of a crashed run with the same names removed first), with
//! helpers to run commands in them. Needs root and `ip`: check with
//! [`crate::require`] first.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A name unique to this test process: `{prefix}{tag}{pid}{suffix}`, with
/// the pid cut to 5 digits. Panics past the 15 bytes of an interface name.
pub fn unique(prefix: &str, tag: &str, suffix: &str) -> String {
    let name = format!("{prefix}{tag}{}{suffix}", std::process::id() % 100_000);
    assert!(name.len() <= 15, "`{name}`: longer than an interface name");
    name
}

/// Runs `cmd` and returns its standard output; panics with its output when
/// it cannot start or fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `ip ARGS`; panics with its output when it fails.
pub fn ip(args: &[&str]) {
    run(Command::new("ip").args(args));
}

/// Runs `ip ARGS`, ignoring failure and error output (for clean-ups).
pub fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits (up to 5 s) until interface `ifname` of this namespace reports
/// carrier (`operstate` up).
pub fn wait_up(ifname: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(format!("/sys/class/net/{ifname}/operstate"))
        .map(|s| s.trim() != "up")
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "{ifname} never came up");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Namespace `name` (a leftover of that name is deleted first), with
    /// IPv6 off (no router solicitations or MLD reports) and `lo` up.
    pub fn new(name: &str) -> Netns {
        ip_quiet(&["netns", "del", name]);
        ip(&["netns", "add", name]);
        let ns = Netns { name: name.into() };
        ns.run(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        ns.run(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
        ip(&["-n", name, "link", "set", "lo", "up"]);
        ns
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip netns exec NAME ARGS`, not started, standard input closed.
    pub fn exec(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c.stdin(Stdio::null());
        c
    }

    /// Runs `args` in the namespace and returns its standard output;
    /// panics with its output when it fails.
    pub fn run(&self, args: &[&str]) -> String {
        run(&mut self.exec(args))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        ip_quiet(&["netns", "del", &self.name]);
    }
}

/// A veth pair: end `a` in this namespace, end `b` here or in a namespace;
/// deleted on drop (deleting one end deletes both; a namespace deleted
/// first takes its end's pair with it).
#[derive(Debug)]
pub struct Veth {
    /// The end in this namespace.
    pub a: String,
    /// The other end.
    pub b: String,
    /// The namespace of `b`, if not this one.
    netns: Option<String>,
}

impl Veth {
    /// Pair `a`/`b`, both here and down, IPv6 off on both. A leftover `a`
    /// is deleted first.
    pub fn new(a: &str, b: &str) -> Veth {
        ip_quiet(&["link", "del", a]);
        ip(&["link", "add", a, "type", "veth", "peer", "name", b]);
        for end in [a, b] {
            disable_ipv6(end);
        }
        Veth {
            a: a.into(),
            b: b.into(),
            netns: None,
        }
    }

    /// Pair `a`/`b` with `b` in `netns`, both down, IPv6 off on `a`.
    pub fn with_b_in(a: &str, b: &str, netns: &Netns) -> Veth {
        ip_quiet(&["link", "del", a]);
        ip(&[
            "link",
            "add",
            a,
            "type",
            "veth",
            "peer",
            "name",
            b,
            "netns",
            netns.name(),
        ]);
        disable_ipv6(a);
        Veth {
            a: a.into(),
            b: b.into(),
            netns: Some(netns.name.clone()),
        }
    }

    /// Sets both ends up and waits until `a` (and `b` when here) has carrier.
    pub fn up(self) -> Veth {
        ip(&["link", "set", &self.a, "up"]);
        match &self.netns {
            Some(ns) => ip(&["-n", ns, "link", "set", &self.b, "up"]),
            None => ip(&["link", "set", &self.b, "up"]),
        }
        wait_up(&self.a);
        if self.netns.is_none() {
            wait_up(&self.b);
        }
        self
    }

    /// Sets the MTU of both ends.
    pub fn mtu(self, mtu: u32) -> Veth {
        let mtu = mtu.to_string();
        ip(&["link", "set", &self.a, "mtu", &mtu]);
        match &self.netns {
            Some(ns) => ip(&["-n", ns, "link", "set", &self.b, "mtu", &mtu]),
            None => ip(&["link", "set", &self.b, "mtu", &mtu]),
        }
        self
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        ip_quiet(&["link", "del", &self.a]);
    }
}

/// IPv6 off on `ifname` of this namespace: no router solicitations or MLD
/// reports on a test link.
fn disable_ipv6(ifname: &str) {
    let _ = std::fs::write(
        format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
        "1",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_to_the_process_and_fit_an_interface() {
        let n = unique("hn", "tk", "a");
        assert!(n.starts_with("hntk") && n.ends_with('a'));
        assert!(n.contains(&(std::process::id() % 100_000).to_string()));
        assert!(std::panic::catch_unwind(|| unique("much-too-long", "name", "x")).is_err());
    }

    #[test]
    fn namespaces_and_pairs_go_away_on_drop() {
        if !crate::require(
            "namespaces_and_pairs_go_away_on_drop",
            &[crate::Need::Root, crate::Need::Command("ip")],
        ) {
            return;
        }
        let (ns_name, a, b) = (
            unique("tkn", "", ""),
            unique("tk", "", "a"),
            unique("tk", "", "b"),
        );
        {
            let ns = Netns::new(&ns_name);
            let v = Veth::with_b_in(&a, &b, &ns).mtu(2000).up();
            assert!(std::path::Path::new("/sys/class/net").join(&v.a).exists());
            let mtu = ns.run(&["cat", &format!("/sys/class/net/{b}/mtu")]);
            assert_eq!(mtu.trim(), "2000");
            let plain = Veth::new(&format!("{a}x"), &format!("{b}x")).up();
            assert!(std::path::Path::new("/sys/class/net")
                .join(&plain.b)
                .exists());
        }
        for end in [&a, &b] {
            assert!(!std::path::Path::new("/sys/class/net").join(end).exists());
        }
        assert!(!std::path::Path::new("/var/run/netns")
            .join(&ns_name)
            .exists());
    }
}
