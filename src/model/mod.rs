//! The domain vocabulary: what a document, an event and a class are, in the
//! words of the README's "Input" and "Classification" sections. Pure: no I/O,
//! and nothing else of the crate is imported here.

/// For an enum with `ALL` and `as_str`: `from_canonical` (the exact canonical
/// name back to the value) and `Display` as that name.
macro_rules! canonical_names {
    ($ty:ty) => {
        impl $ty {
            /// Parses an exact canonical name.
            pub fn from_canonical(s: &str) -> Option<Self> {
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
        impl $ty {
            /// The byte that encodes this value in the store.
            pub fn as_byte(self) -> u8 {
                self as u8
            }

            /// Decodes a store byte.
            pub fn from_byte(b: u8) -> Option<Self> {
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
mod window;

pub use channel::Channel;
pub use class::{compliance_ratio, Class};
pub use confidentiality::Confidentiality;
pub use direction::Direction;
pub use document::{add_signer, Document, BUSINESS_TYPES, MAX_SIGNERS};
pub use event::{Event, ExchangeEvent, SignatureEvent, SourceKind, StatusEvent};
pub use role::Role;
pub use status::{status_label, DocStatus, STATUS_CODES, STATUS_REJECTED};
pub use window::Window;
