//! The plugin ABI: what a plugin library exports for the loader to read
//! before anything else of it, defined once here (as a kernel's uapi
//! headers are) for [`dylib`](super::dylib), which reads it out of a loaded
//! library, and for the plugin loader above, which writes it (through
//! `export_plugin!`) and checks it.
//!
//! The descriptor is plain `#[repr(C)]` data, bytes and integers only, so
//! that any bytes are a valid value and it can be read from a library built
//! by any compiler. No `unsafe` here.

/// The framework build a plugin must match: the crate version and a
/// fingerprint of its source (`0.1.0+src.0123456789abcdef`).
pub const FRAMEWORK_BUILD: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    "+src.",
    env!("HPIO_NF_SOURCE_HASH")
);

/// The compiler that built this framework (`rustc -V`).
pub const RUSTC_VERSION: &str = env!("HPIO_NF_RUSTC_VERSION");

/// The first bytes of every descriptor.
const MAGIC: [u8; 8] = *b"HPIO-NF\0";

/// The layout of [`PluginDescriptor`] this framework writes and reads.
const LAYOUT: u32 = 1;

/// Flag bit: built with `panic = "unwind"`.
pub(crate) const FLAG_UNWIND: u32 = 1;

/// The start of every plugin descriptor, whatever its layout version: read
/// first, and the rest only when it announces the layout expected.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct DescriptorHeader {
    /// [`MAGIC`].
    pub(crate) magic: [u8; 8],
    /// Layout version of the whole descriptor.
    pub(crate) layout: u32,
    /// Size of the whole descriptor in bytes.
    pub(crate) size: u32,
}

/// What a plugin says about how it was built, exported by
/// [`export_plugin!`](crate::export_plugin) as a plain C struct (bytes and
/// integers only), so that it can be read safely from a library built by
/// any compiler before anything else of it is used.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct PluginDescriptor {
    pub(crate) header: DescriptorHeader,
    pub(crate) flags: u32,
    pub(crate) framework: [u8; 64],
    pub(crate) rustc: [u8; 128],
}

impl PluginDescriptor {
    /// The descriptor of the crate being compiled (what a plugin exports).
    pub const fn current() -> PluginDescriptor {
        PluginDescriptor {
            header: DescriptorHeader {
                magic: MAGIC,
                layout: LAYOUT,
                size: std::mem::size_of::<PluginDescriptor>() as u32,
            },
            flags: if cfg!(panic = "unwind") {
                FLAG_UNWIND
            } else {
                0
            },
            framework: padded(FRAMEWORK_BUILD),
            rustc: padded(RUSTC_VERSION),
        }
    }

    /// The framework build the plugin was compiled against.
    pub fn framework(&self) -> String {
        unpadded(&self.framework)
    }

    /// The compiler that compiled it (`rustc -V`).
    pub fn rustc(&self) -> String {
        unpadded(&self.rustc)
    }

    /// Whether it was built with `panic = "unwind"`.
    pub fn unwinds(&self) -> bool {
        self.flags & FLAG_UNWIND != 0
    }
}

impl std::fmt::Debug for PluginDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginDescriptor")
            .field("layout", &self.header.layout)
            .field("framework", &self.framework())
            .field("rustc", &self.rustc())
            .field("unwinds", &self.unwinds())
            .finish()
    }
}

impl DescriptorHeader {
    /// Whether it starts like every plugin descriptor.
    pub(crate) fn has_magic(&self) -> bool {
        self.magic == MAGIC
    }

    /// Whether the rest of the descriptor has the layout this crate reads.
    pub(crate) fn is_current(&self) -> bool {
        self.has_magic()
            && self.layout == LAYOUT
            && self.size as usize == std::mem::size_of::<PluginDescriptor>()
    }
}

/// The type of a plugin's entry point, exported by `export_plugin!` for
/// the registry type `R` and the host services `H` of the framework build
/// the descriptor names: it registers the plugin's classes into `R`.
pub type EntryFn<R, H> = fn(&mut R, &H) -> Result<(), String>;

/// `s` as a NUL-padded array (cut to `N - 1` bytes).
pub(crate) const fn padded<const N: usize>(s: &str) -> [u8; N] {
    let b = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < b.len() && i + 1 < N {
        out[i] = b[i];
        i += 1;
    }
    out
}

/// The text of a NUL-padded array.
fn unpadded(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_is_plain_bytes_with_a_stable_header() {
        let d = PluginDescriptor::current();
        assert!(d.header.is_current());
        assert_eq!(std::mem::size_of::<DescriptorHeader>(), 16);
        assert_eq!(std::mem::size_of::<PluginDescriptor>(), 16 + 4 + 64 + 128);
        assert_eq!(d.framework(), FRAMEWORK_BUILD);
        assert_eq!(d.rustc(), RUSTC_VERSION);
        assert!(RUSTC_VERSION.starts_with("rustc "), "{RUSTC_VERSION}");
        assert!(FRAMEWORK_BUILD.starts_with(env!("CARGO_PKG_VERSION")));
        assert_eq!(d.unwinds(), cfg!(panic = "unwind"));
    }

    #[test]
    fn long_strings_are_cut_and_still_compared() {
        let long = "x".repeat(300);
        let p: [u8; 8] = padded(&long);
        assert_eq!(unpadded(&p), "xxxxxxx");
    }
}
