//! Verified signatures of PDF files (README "Verified signatures (PDF)"):
//! every signature dictionary's byte range, its CMS, the chain to a trust
//! anchor and what later revisions changed, each with its own [`Reason`].
//! A file is read in bounded memory whatever its size.

mod algo;
mod chain;
mod cms;
mod diff;
mod objects;
mod reason;
mod scan;
mod xref;

pub use chain::{TrustError, TrustStore};
pub use reason::Reason;

use std::path::Path;

use der::Encode;
use x509_cert::Certificate;

use scan::Scanned;

/// Largest `/Contents` hole read (hex digits): larger signatures are refused.
const MAX_CONTENTS: u64 = 4 << 20;

/// Why a file could not be verified at all (its signatures get no verdict).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    #[error("cannot read: {0}")]
    Io(String),
    #[error("not a PDF file (no %PDF- header)")]
    NotPdf,
    #[error("truncated PDF file (no %%EOF at its end)")]
    Truncated,
    #[error("file of {size} bytes exceeds max_file_size ({max} bytes)")]
    TooLarge { size: u64, max: u64 },
    #[error("refused: {0}")]
    Limit(&'static str),
    #[error("{0}")]
    Syntax(String),
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
}

/// How a PDF source verifies (README "Verified signatures (PDF)").
#[derive(Debug, Clone)]
pub struct Verifier {
    pub trust: TrustStore,
    /// Accept SHA-1 digests (refused by default).
    pub allow_sha1: bool,
    /// Larger files are refused without being read.
    pub max_file_size: u64,
}

/// Where a signature's time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSource {
    /// The genTime of a verified RFC 3161 timestamp token.
    Timestamp,
    /// The signed `signingTime` attribute (the signer's claim).
    Signed,
    /// Neither: the file's modification time.
    FileMtime,
}

impl TimeSource {
    pub const ALL: [TimeSource; 3] = [
        TimeSource::Timestamp,
        TimeSource::Signed,
        TimeSource::FileMtime,
    ];

    /// The name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeSource::Timestamp => "timestamp",
            TimeSource::Signed => "signing_time",
            TimeSource::FileMtime => "file_mtime",
        }
    }
}

/// One signature of a file, with its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureReport {
    /// `None` when valid.
    pub reason: Option<Reason>,
    /// The signer certificate's subject (RFC 4514), empty if unreadable.
    pub subject: String,
    /// Its common name.
    pub signer: String,
    /// Its serial number, hexadecimal.
    pub cert_serial: String,
    /// Its issuer (RFC 4514).
    pub issuer: String,
    /// Signing time, Unix seconds.
    pub time: i64,
    pub time_source: TimeSource,
}

impl SignatureReport {
    pub fn valid(&self) -> bool {
        self.reason.is_none()
    }
}

/// A verified file: its sha256 (hex) and its signatures in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub sha256: String,
    pub signatures: Vec<SignatureReport>,
}

impl Verifier {
    /// Verifies every signature of the file at `path`.
    pub fn verify_file(&self, path: &Path) -> Result<FileReport, PdfError> {
        let file = scan::scan(path, self.max_file_size)?;
        let mut revisions = Revisions::new(&file);
        let mut seen = Vec::new();
        let mut signatures = Vec::new();
        for &at in &file.byte_ranges {
            let Some(range) = byte_range(&file, at)? else {
                tracing::debug!(path = %path.display(), at, "unreadable /ByteRange value; not a signature");
                continue;
            };
            if seen.contains(&range) {
                continue;
            }
            seen.push(range);
            if let Some(report) = self.verify_signature(&file, range, &mut revisions)? {
                signatures.push(report);
            }
        }
        Ok(FileReport {
            sha256: hex::encode(file.sha256),
            signatures,
        })
    }

    /// One signature; `None` for a document timestamp.
    fn verify_signature(
        &self,
        file: &Scanned,
        [a, b, c, d]: [u64; 4],
        revisions: &mut Revisions,
    ) -> Result<Option<SignatureReport>, PdfError> {
        let mut report = SignatureReport {
            reason: None,
            subject: String::new(),
            signer: String::new(),
            cert_serial: String::new(),
            issuer: String::new(),
            time: file.mtime,
            time_source: TimeSource::FileMtime,
        };
        let fail = |mut r: SignatureReport, reason| {
            r.reason = Some(reason);
            Ok(Some(r))
        };
        // [0, b) and [c, c + d): the hole between is the `<hex>` /Contents string.
        let end = c.checked_add(d).filter(|&e| e <= file.len);
        let (Some(end), true) = (end, a == 0 && b > 0 && c > b + 1 && c - b <= MAX_CONTENTS) else {
            return fail(report, Reason::ByteRange);
        };
        let hole = file.read_at(b, (c - b) as usize)?;
        if hole.first() != Some(&b'<') || hole.last() != Some(&b'>') {
            return fail(report, Reason::ByteRange);
        }
        let Some(revision) = revisions.ending_at(end) else {
            return fail(report, Reason::ByteRange);
        };
        let hex: Vec<u8> = hole[1..hole.len() - 1]
            .iter()
            .copied()
            .filter(|x| !objects::is_white(*x))
            .collect();
        let Ok(der) = hex::decode(if hex.len() % 2 == 1 {
            &hex[..hex.len() - 1]
        } else {
            &hex[..]
        }) else {
            return fail(report, Reason::Malformed);
        };
        let cms = match cms::Cms::parse(&der) {
            Ok(cms) if cms.is_document_timestamp() => return Ok(None),
            Ok(cms) => cms,
            Err(r) => return fail(report, r),
        };
        if let Ok(cert) = cms.signer_cert() {
            describe(&mut report, cert);
        }
        let hash = match cms.hash() {
            Ok(h) => h,
            Err(r) => return fail(report, r),
        };
        let digest = file.digest_ranges(hash.algorithm(), &[(0, b), (c, d)])?;
        let signer = match cms.verify_signer(&digest) {
            Ok(s) => s,
            Err(r) => return fail(report, r),
        };
        if signer.hash == algo::Hash::Sha1 && !self.allow_sha1 {
            return fail(report, Reason::WeakDigest);
        }
        let stamped = match cms.timestamp(&self.trust, self.allow_sha1) {
            Ok(t) => t,
            Err(r) => return fail(report, r),
        };
        if let Some(t) = stamped {
            (report.time, report.time_source) = (t, TimeSource::Timestamp);
        } else if let Some(t) = signer.signing_time {
            (report.time, report.time_source) = (t, TimeSource::Signed);
        }
        let extra = cms.certificates();
        if let Err(r) =
            self.trust
                .validate(&signer.cert, extra, report.time, self.allow_sha1, stamped)
        {
            return fail(report, r);
        }
        if !revisions.unchanged_after(revision)? {
            return fail(report, Reason::ModifiedAfterSigning);
        }
        Ok(Some(report))
    }
}

/// Subject, common name, serial and issuer of the signer's certificate.
fn describe(report: &mut SignatureReport, cert: &Certificate) {
    let tbs = &cert.tbs_certificate;
    report.subject = tbs.subject.to_string();
    report.issuer = tbs.issuer.to_string();
    report.cert_serial = hex::encode_upper(
        tbs.serial_number
            .as_bytes()
            .iter()
            .skip_while(|b| **b == 0)
            .copied()
            .collect::<Vec<u8>>(),
    );
    report.signer = common_name(&tbs.subject).unwrap_or_default();
}

/// The last CN of a name, decoded (UTF8String, PrintableString or BMPString).
fn common_name(name: &x509_cert::name::Name) -> Option<String> {
    let cn = name
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .rfind(|atv| atv.oid == const_oid::db::rfc4519::CN)?;
    let v = &cn.value;
    if let Ok(s) = v.decode_as::<der::asn1::Utf8StringRef>() {
        return Some(s.as_str().to_string());
    }
    if let Ok(s) = v.decode_as::<der::asn1::PrintableStringRef>() {
        return Some(s.as_str().to_string());
    }
    if let Ok(s) = v.decode_as::<der::asn1::BmpString>() {
        return Some(s.to_string());
    }
    v.to_der().ok().map(hex::encode)
}

/// The four numbers of the `/ByteRange [a b c d]` at `at`; `None` if unreadable.
fn byte_range(file: &Scanned, at: u64) -> Result<Option<[u64; 4]>, PdfError> {
    let window = file.read_at(at + 10, 256)?;
    let mut p = objects::Parser::new(&window, 0);
    let Ok(objects::Obj::Array(items)) = p.object() else {
        return Ok(None);
    };
    let numbers: Option<Vec<u64>> = items
        .iter()
        .map(|o| o.as_int().and_then(|n| u64::try_from(n).ok()))
        .collect();
    Ok(numbers.and_then(|n| <[u64; 4]>::try_from(n).ok()))
}

/// The file's revisions: their tables, loaded when first needed, and which
/// of them only add what signing and annotating may add.
struct Revisions<'f> {
    file: &'f Scanned,
    tables: Vec<Option<Result<xref::Table, PdfError>>>,
    harmless: Vec<Option<bool>>,
    objects: xref::Objects,
}

impl<'f> Revisions<'f> {
    fn new(file: &'f Scanned) -> Revisions<'f> {
        let n = file.revisions.len();
        Revisions {
            file,
            tables: (0..n).map(|_| None).collect(),
            harmless: vec![None; n],
            objects: xref::Objects::default(),
        }
    }

    /// The revision a byte range ending at `end` covers whole.
    fn ending_at(&self, end: u64) -> Option<usize> {
        self.file
            .revisions
            .iter()
            .position(|&(marker, line)| end >= marker && end <= line)
    }

    fn table(&mut self, i: usize) -> Result<&xref::Table, PdfError> {
        if self.tables[i].is_none() {
            let loaded = xref::startxref(self.file, self.file.revisions[i].0)
                .and_then(|s| xref::table(self.file, s));
            self.tables[i] = Some(loaded);
        }
        self.tables[i]
            .as_ref()
            .expect("just loaded")
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Whether every revision after `signed` is harmless.
    fn unchanged_after(&mut self, signed: usize) -> Result<bool, PdfError> {
        for later in signed + 1..self.file.revisions.len() {
            if self.harmless[later].is_none() {
                let verdict = match self.compare(later) {
                    Ok(v) => v,
                    Err(e) => {
                        // An update that cannot be read cannot be shown harmless.
                        tracing::warn!(revision = later, error = %e, "cannot read a later PDF revision");
                        false
                    }
                };
                self.harmless[later] = Some(verdict);
            }
            if self.harmless[later] == Some(false) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn compare(&mut self, later: usize) -> Result<bool, PdfError> {
        self.table(later - 1)?;
        self.table(later)?;
        let before = self.tables[later - 1]
            .as_ref()
            .expect("loaded")
            .as_ref()
            .map_err(Clone::clone)?;
        let after = self.tables[later]
            .as_ref()
            .expect("loaded")
            .as_ref()
            .map_err(Clone::clone)?;
        diff::harmless(self.file, &mut self.objects, before, after)
    }
}

#[cfg(test)]
mod tests;
