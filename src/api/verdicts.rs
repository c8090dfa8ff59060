//! The verified signatures of a listed document (README "Verified
//! signatures (PDF)"): every signature of the files whose sha256 the
//! document carries, valid or not, with the reason in Vietnamese.

use serde::{Deserialize, Serialize};

use super::local_time;
use crate::model::{Document, SignatureVerdict};
use crate::store::{Store, StoreError};

/// One signature of one of the document's files. Fields in alphabetical order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ListedSignature {
    pub(crate) cert_serial: String,
    /// The sha256 of the file that carries it.
    pub(crate) file_sha256: String,
    /// Position among the file's signatures (0 = first).
    pub(crate) index: u16,
    pub(crate) issuer: String,
    /// Reason code when not valid (README lists them).
    pub(crate) reason: Option<String>,
    /// What the reason means, in Vietnamese.
    pub(crate) reason_text: Option<String>,
    /// From the source's role rules; `null` when no rule matched.
    pub(crate) role: Option<String>,
    pub(crate) signer: String,
    /// The source that verified it.
    pub(crate) source: String,
    pub(crate) subject: String,
    /// RFC 3339, local time.
    pub(crate) time: Option<String>,
    /// `timestamp`, `signing_time` or `file_mtime`.
    pub(crate) time_source: String,
    pub(crate) valid: bool,
}

impl ListedSignature {
    fn new(sha: &str, v: &SignatureVerdict, tz: chrono_tz::Tz) -> ListedSignature {
        ListedSignature {
            cert_serial: v.cert_serial.clone(),
            file_sha256: sha.to_string(),
            index: v.index,
            issuer: v.issuer.clone(),
            reason: v.reason.map(|r| r.code().to_string()),
            reason_text: v.reason.map(|r| r.text_vi().to_string()),
            role: v.role.map(|r| r.as_str().to_string()),
            signer: v.signer.clone(),
            source: v.source.clone(),
            subject: v.subject.clone(),
            time: local_time(v.time, tz),
            time_source: v.time_source.as_str().to_string(),
            valid: v.reason.is_none(),
        }
    }
}

/// The verified signatures of `doc`'s files, file by file in sha256 order.
pub(crate) fn listed_signatures(
    store: &Store,
    doc: &Document,
    tz: chrono_tz::Tz,
) -> Result<Vec<ListedSignature>, StoreError> {
    let mut out = Vec::new();
    for sha in &doc.shas {
        for v in store.verdicts(sha)? {
            out.push(ListedSignature::new(sha, &v, tz));
        }
    }
    Ok(out)
}
