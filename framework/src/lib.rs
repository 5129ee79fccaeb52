//! hpio-nf: a Click-like network-function engine over batched packet I/O.
//!
//! A config (TOML) names ports, elements and the connections between them;
//! [`config`] checks it into a [`graph::GraphSpec`]; [`runtime`] runs one
//! replica of the graph per worker, pinned to its core, pulling bursts from
//! the worker's receive queues and flushing each output port once per burst.
//!
//! Layers, lowest first, each depending only on those before it in this
//! list: `sys` (the unsafe boundary: system calls, `dlopen`, the plugin
//! ABI), [`wire`] (header formats, stateless), [`packet`] (slots, pool,
//! batches), [`params`] (parameter declarations and values), [`element`]
//! (the element API and registry), [`elements`] (built-ins), [`plugin`]
//! (loading element classes from shared libraries), [`port`] (drivers),
//! [`graph`] (the checked graph and a worker's replica), [`runtime`]
//! (workers, run options, reports), [`config`] (TOML in, graph, ports and
//! run settings out). framework/tests/layering.rs checks this order, and
//! that no two source files import each other. [`testing`] and [`prelude`]
//! stand outside it.

#![deny(unsafe_code)]

// The declaration macros (`hpio_nf::drop_reasons!`, `hpio_nf::counters!`,
// `hpio_nf::choice!`) are spelt the same inside this crate as in a plugin.
extern crate self as hpio_nf;

pub mod config;
pub mod element;
pub mod elements;
pub mod graph;
pub mod packet;
pub mod params;
pub mod plugin;
pub mod port;
pub mod runtime;
mod sys;
pub mod testing;
pub mod wire;

/// The names an element author needs.
pub mod prelude {
    pub use crate::element::handler::{json, no_such_handler};
    pub use crate::element::{
        Answer, Choice, ClassInfo, Combine, ConfigCx, Configured, Context, DropReason, Element,
        ElementClass, HandlerCx, HandlerKind, HandlerResult, HandlerSpec, Inputs, Need, Output,
        ParamError, ParamSpec, ParamType, Params, PortCount, Registry, Value,
    };
    pub use crate::packet::{Batch, Packet, Pool};
    pub use crate::wire::{Headers, L3Kind, ParseStatus};
}
