//! Dynamic libraries for plugins: open one for good, copy its descriptor,
//! and call its entry point once the descriptor has been checked.
//!
//! The order is what keeps a refused library harmless: before the plugin
//! loader's check has accepted the descriptor, nothing of the library is
//! used but its initializers (run by the system loader) and the bytes of one
//! C struct; no Rust function of it is called and no Rust type of it is
//! interpreted. [`Library::call_entry`] asks for the check's proof
//! ([`DescriptorAccepted`]); the types the entry point takes come with it, so
//! this layer names none of the element API.

use std::path::Path;

use super::plugin_abi::{DescriptorHeader, EntryFn, PluginDescriptor};

/// Proof that a library's descriptor matched this build (the framework
/// source, the compiler and the panic strategy), required to call the
/// library's entry point; and the argument types of the entry point that
/// this build's `export_plugin!` defines.
///
/// Crate-private. Its one implementor is the plugin loader's `Compatible`,
/// which only the loader's descriptor check makes; it names the loader's
/// `Registry` and `Host`, the types `export_plugin!` gives the entry point.
pub(crate) trait DescriptorAccepted {
    /// What the entry point registers the plugin's classes into.
    type Registry;
    /// What the loading program lends the entry point.
    type Host;
}

/// A library loaded for the rest of the process: never unloaded, since the
/// classes it registers point into its code and static data.
pub(crate) struct Library(&'static libloading::Library);

impl Library {
    /// Loads the library at `path` (a path with a directory part, so that
    /// no search path is used), resolving all its symbols now.
    pub(crate) fn open(path: &Path) -> Result<Library, String> {
        #[cfg(unix)]
        // SAFETY: loading runs the library's initializers, which are the
        // library's own code; the user vouches for it by listing it in
        // `plugins` (the docs say to load only trusted libraries). No Rust
        // code of it is called here, and RTLD_NOW makes a missing symbol an
        // error now rather than a crash later.
        let lib = unsafe {
            libloading::os::unix::Library::open(
                Some(path),
                libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_LOCAL,
            )
        }
        .map(libloading::Library::from);
        #[cfg(not(unix))]
        // SAFETY: as above: the library's initializers are trusted code.
        let lib = unsafe { libloading::Library::new(path) };
        let lib = lib.map_err(|e| e.to_string())?;
        Ok(Library(Box::leak(Box::new(lib))))
    }

    /// A copy of the descriptor exported as `symbol`: `None` when there is
    /// no such symbol, the header alone when it announces another layout.
    pub(crate) fn descriptor(
        &self,
        symbol: &str,
    ) -> Option<Result<PluginDescriptor, DescriptorHeader>> {
        // SAFETY: the symbol is looked up as the address of data (`*const
        // u8`), which is what every symbol is; nothing is read here.
        let at: *const u8 = *unsafe { self.0.get::<*const u8>(symbol.as_bytes()) }.ok()?;
        if at.is_null() {
            return None;
        }
        // SAFETY: a symbol named `HPIO_NF_PLUGIN_<crate>` is, by the name's
        // contract, the descriptor `export_plugin!` exports: a `#[repr(C)]`
        // static of at least a header's 16 bytes, mapped for the process's
        // lifetime (the library is never unloaded). Any bytes are a valid
        // header (arrays of `u8` and `u32`s); the read is unaligned so no
        // alignment is assumed.
        let header = unsafe { at.cast::<DescriptorHeader>().read_unaligned() };
        if !header.is_current() {
            return Some(Err(header));
        }
        // SAFETY: the header says the static is a whole descriptor of this
        // layout and size; every field is bytes or integers, so any content
        // is a valid value.
        Some(Ok(unsafe {
            at.cast::<PluginDescriptor>().read_unaligned()
        }))
    }

    /// Calls the entry point exported as `symbol` with `registry` and
    /// `host`: `None` when there is no such symbol, else what the entry
    /// returned. Requires the proof that the descriptor matched this build.
    pub(crate) fn call_entry<P: DescriptorAccepted>(
        &self,
        symbol: &str,
        _checked: &P,
        registry: &mut P::Registry,
        host: &P::Host,
    ) -> Option<Result<(), String>> {
        // SAFETY: the proof `P` (made only by the loader's descriptor check)
        // says the library was built from this framework source by this
        // compiler with this panic strategy, and `export_plugin!` in that
        // source defines `symbol` as a function of exactly the type
        // `EntryFn<P::Registry, P::Host>` (the proof names the types it
        // uses, and the macro checks its function against that type at
        // compile time), so the types and their layouts agree. The function pointer
        // is copied out while the library stays loaded forever.
        let entry: EntryFn<P::Registry, P::Host> = *unsafe {
            self.0
                .get::<EntryFn<P::Registry, P::Host>>(symbol.as_bytes())
        }
        .ok()?;
        Some(entry(registry, host))
    }
}
