//! The domain vocabulary: what a document, an event and a class are, in the
//! words of the README's "Input" and "Classification" sections. Pure: no I/O,
//! and nothing else of the crate is imported here.

/// `Display` as the canonical name (`as_str`), for the enums of this module.
macro_rules! display_as_str {
    ($($ty:ty),+) => {
        $(impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        })+
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
