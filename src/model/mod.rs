//! The domain vocabulary: what a document, an event and a class are, in the
//! words of the README's "Input" and "Classification" sections. Pure: no I/O,
//! and nothing else of the crate is imported here.

/// For an enum with `ALL` and `as_str`: `from_canonical` (the exact canonical
/// name back to the value) and `Display` as that name.
macro_rules! canonical_names {
    ($ty:ty) => {
        impl $ty {
            /// Parses an exact canonical name.
            #[allow(
                dead_code,
                reason = "generated for every such enum; not each parses names"
            )]
            pub(crate) fn from_canonical(s: &str) -> Option<Self> {
                Self::ALL.into_iter().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// For a field-less enum whose `ALL` is in declaration order: its store byte
/// is its position there.
macro_rules! store_bytes {
    ($ty:ty) => {
        #[allow(
            dead_code,
            reason = "generated for every such enum; not each is stored"
        )]
        impl $ty {
            /// The byte that encodes this value in the store.
            pub(crate) fn as_byte(self) -> u8 {
                self as u8
            }

            /// Decodes a store byte.
            pub(crate) fn from_byte(b: u8) -> Option<Self> {
                Self::ALL.get(usize::from(b)).copied()
            }
        }
    };
}

mod channel;
mod class;
mod confidentiality;
mod direction;
mod document;
mod event;
mod role;
mod status;
mod verdict;
mod window;

pub(crate) use channel::Channel;
pub(crate) use class::{compliance_ratio, Class};
pub(crate) use confidentiality::Confidentiality;
pub use direction::Direction;
pub(crate) use document::{add_signer, Document};
pub(crate) use event::{Event, ExchangeEvent, SignatureEvent, SourceKind, StatusEvent};
pub(crate) use role::Role;
pub(crate) use status::{status_label, DocStatus, STATUS_CODES};
pub(crate) use verdict::SignatureVerdict;
pub use window::Window;
