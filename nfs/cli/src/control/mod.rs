//! The control socket of `hpio-nf run` and its client, `hpio-nf ctl`.
//!
//! The run serves HTTP/1.1 with JSON bodies on a Unix socket (see
//! docs/control.md): `curl --unix-socket PATH http://localhost/stats` works
//! as well as `hpio-nf ctl stats`. The server ([`server`]) answers each
//! request through the run's [`Controller`](hpio_nf::runtime::Controller);
//! the client ([`client`]) writes the request, parses the answer with
//! `httparse` and prints it ([`render`]) as text or as the JSON it got.

mod client;
mod http;
mod observe;
mod render;
mod server;
mod socket;
mod watch;

pub(crate) use client::{cmd_ctl, CtlArgs};
pub(crate) use server::Service;
pub(crate) use socket::{ControlArgs, Listener};

/// Where the default sockets live: `/run/hpio-nf/<config name>.sock`.
pub(crate) const SOCKET_DIR: &str = "/run/hpio-nf";
