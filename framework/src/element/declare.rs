//! Declaring a class's names once: drop reasons and counters bound to
//! constants by name ([`drop_reasons!`](crate::drop_reasons),
//! [`counters!`](crate::counters)), and choice parameters as enums
//! ([`choice!`](crate::choice), [`Choice`]).

pub use crate::params::Choice;

/// Declares an enum whose variants are the values of a choice parameter:
/// each variant with its name in configs. The enum derives `Debug`, `Clone`,
/// `Copy`, `PartialEq` and `Eq` and implements [`Choice`].
///
/// ```
/// use hpio_nf::prelude::*;
///
/// hpio_nf::choice! {
///     /// What to do with a packet.
///     pub enum Action {
///         Allow = "allow",
///         Deny = "deny",
///     }
/// }
///
/// const ACTION: ParamSpec = ParamSpec {
///     name: "action",
///     ty: ParamType::Choice(Action::NAMES),
///     need: Need::Default("\"allow\""),
///     doc: "what to do",
/// };
///
/// let mut p = Params::new();
/// p.set("action", Value::Str("deny".into()));
/// assert_eq!(p.choice::<Action>("action").unwrap(), Action::Deny);
/// assert_eq!(Action::Deny.name(), "deny");
/// assert_eq!(ACTION.ty.short(), "allow|deny");
/// ```
#[macro_export]
macro_rules! choice {
    (
        $(#[$meta:meta])*
        $vis:vis enum $enum:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $enum {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $crate::element::Choice for $enum {
            const NAMES: &'static [&'static str] = &[$($text),+];

            fn from_name(name: &str) -> Option<Self> {
                match name {
                    $( $text => Some($enum::$variant), )+
                    _ => None,
                }
            }

            fn name(self) -> &'static str {
                match self {
                    $( $enum::$variant => $text, )+
                }
            }
        }
    };
}

/// Declares a class's drop reasons: a constant [`DropReason`](super::DropReason)
/// for each, bound to its name, and the table of names for
/// [`ClassInfo::drop_reasons`](super::ClassInfo::drop_reasons).
///
/// ```
/// use hpio_nf::prelude::*;
///
/// hpio_nf::drop_reasons! {
///     DROP_REASONS = [
///         /// Shorter than the minimum.
///         TOO_SHORT = "too-short",
///         /// Not IPv4 or IPv6.
///         NOT_IP = "not-ip",
///     ]
/// }
///
/// assert_eq!(DROP_REASONS, &["too-short", "not-ip"]);
/// assert_eq!(NOT_IP, DropReason(1));
/// ```
///
/// Each constant is found by its name in the table when the crate is
/// compiled, and a name given twice fails the build.
#[macro_export]
macro_rules! drop_reasons {
    (
        $vis:vis $table:ident = [
            $( $(#[$meta:meta])* $ivis:vis $name:ident = $text:literal ),* $(,)?
        ]
    ) => {
        /// The class's drop reasons, indexed by `DropReason`.
        $vis const $table: &[&str] = &[$($text),*];
        const _: () = assert!(
            $crate::element::declare::distinct($table),
            "a drop reason is declared twice"
        );
        $(
            $(#[$meta])*
            $ivis const $name: $crate::element::DropReason =
                $crate::element::DropReason($crate::element::declare::position($table, $text));
        )*
    };
}

/// Declares a class's own counters: a constant `&str` for each name (what
/// [`Element::stats`](super::Element::stats) reports it under) and the table
/// of names with their docs for [`ClassInfo::counters`](super::ClassInfo::counters).
///
/// ```
/// hpio_nf::counters! {
///     COUNTERS = [
///         PASSED = "passed": "frames passed",
///         SHORT = "short": "frames shorter than the minimum",
///     ]
/// }
///
/// assert_eq!(COUNTERS[1], ("short", "frames shorter than the minimum"));
/// assert_eq!(PASSED, "passed");
/// ```
#[macro_export]
macro_rules! counters {
    (
        $vis:vis $table:ident = [
            $( $(#[$meta:meta])* $ivis:vis $name:ident = $text:literal : $doc:expr ),* $(,)?
        ]
    ) => {
        /// The class's own counters, with their docs.
        $vis const $table: &[(&str, &str)] = &[$(($text, $doc)),*];
        $(
            $(#[$meta])*
            $ivis const $name: &str = $text;
        )*
        const _: () = {
            const NAMES: &[&str] = &[$($text),*];
            assert!(
                $crate::element::declare::distinct(NAMES),
                "a counter is declared twice"
            );
        };
    };
}

/// Position of `name` in `names` (for [`drop_reasons!`](crate::drop_reasons),
/// evaluated at compile time; a name missing fails the build).
#[doc(hidden)]
pub const fn position(names: &[&str], name: &str) -> u8 {
    let mut i = 0;
    while i < names.len() {
        if same(names[i], name) {
            assert!(i <= u8::MAX as usize, "too many drop reasons");
            return i as u8;
        }
        i += 1;
    }
    panic!("no such drop reason")
}

/// Whether no name appears twice in `names` (evaluated at compile time).
#[doc(hidden)]
pub const fn distinct(names: &[&str]) -> bool {
    let mut i = 0;
    while i < names.len() {
        let mut j = i + 1;
        while j < names.len() {
            if same(names[i], names[j]) {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use crate::element::{Choice, DropReason, Params, Value};

    hpio_nf::drop_reasons! {
        REASONS = [
            FIRST = "first",
            pub(crate) SECOND = "second",
        ]
    }

    hpio_nf::counters! {
        COUNTS = [
            ONE = "one": "the first",
        ]
    }

    hpio_nf::choice! {
        enum Mode {
            Fast = "fast",
            Slow = "slow",
        }
    }

    #[test]
    fn names_are_bound_by_name() {
        assert_eq!((FIRST, SECOND), (DropReason(0), DropReason(1)));
        assert_eq!(REASONS, &["first", "second"]);
        assert_eq!((ONE, COUNTS), ("one", &[("one", "the first")][..]));
        assert_eq!(Mode::NAMES, &["fast", "slow"]);
        assert_eq!(Mode::from_name("slow"), Some(Mode::Slow));
        assert_eq!(Mode::from_name("medium"), None);
        assert_eq!(Mode::Fast.name(), "fast");
        assert!(!super::distinct(&["a", "b", "a"]));
    }

    #[test]
    fn a_choice_outside_the_enum_is_a_parameter_error() {
        let mut p = Params::new();
        p.set("mode", Value::Str("medium".into()));
        let e = p.choice::<Mode>("mode").unwrap_err();
        assert_eq!(e.param, "mode");
        assert_eq!(e.message, "expected one of fast, slow, found \"medium\"");
    }
}
