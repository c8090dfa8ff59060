//! A signature read from a signed file with its verdict (README "Verified
//! signatures (PDF)"): what `/api/v1/documents` shows for each signature of
//! a document's file, valid or not.

use super::Role;
use crate::pdf::{Reason, TimeSource};

/// One signature of a file, as verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SignatureVerdict {
    /// The source that verified it.
    pub(crate) source: String,
    /// Its position among the file's signatures (0 = first in the file).
    pub(crate) index: u16,
    /// From the source's role rules; `None` when no rule matched.
    pub(crate) role: Option<Role>,
    /// `None` when valid.
    pub(crate) reason: Option<Reason>,
    /// Common name of the signer's certificate.
    pub(crate) signer: String,
    /// RFC 4514 subject and issuer of the signer's certificate.
    pub(crate) subject: String,
    pub(crate) issuer: String,
    /// Serial number of the signer's certificate, hexadecimal.
    pub(crate) cert_serial: String,
    /// Signing time, Unix seconds, and where it came from.
    pub(crate) time: i64,
    pub(crate) time_source: TimeSource,
}

impl SignatureVerdict {
    /// `valid` or the reason code: the metric's `result` label.
    pub(crate) fn result(&self) -> &'static str {
        self.reason.map_or("valid", Reason::code)
    }
}
