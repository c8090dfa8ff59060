//! The keys of PDF signature verification (README "Verified signatures
//! (PDF)"): trust files, `allow_sha1` and `[[sources.role_rules]]`, taken by a
//! `format = "pdf"` source and by an edXML source with `verify_attachments`.

use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::locate::{resolve, ConfigError, Locator};
use super::raw::RawSource;
use crate::model::Role;
use crate::parse::normalize::Aliases;
use crate::pdf::{TrustError, TrustStore, Verifier};

/// Largest compiled size of a `subject_matches` regex.
const MAX_REGEX_SIZE: usize = 1 << 20;

/// A PDF source: signed files named by a glob, each read once it settles.
#[derive(Debug, Clone)]
pub struct PdfInput {
    /// Glob naming the files, absolute.
    pub path: String,
    /// Quiet time before a new file is read (it may still be being written).
    pub(crate) settle: Duration,
    /// Larger files are rejected without being read.
    pub(crate) max_file_size: u64,
    pub verify: PdfVerify,
}

/// How signatures are verified and given a role.
#[derive(Debug, Clone)]
pub struct PdfVerify {
    /// Globs of PEM trust anchors, absolute.
    pub trust_anchors: Vec<String>,
    /// Globs of PEM intermediate certificates, absolute.
    pub intermediates: Vec<String>,
    /// Globs of CRL files (DER or PEM), absolute.
    pub crl_files: Vec<String>,
    pub allow_sha1: bool,
    pub(crate) role_rules: Vec<RoleRule>,
}

/// `[[sources.role_rules]]`: a signer whose subject matches plays `role`.
#[derive(Debug, Clone)]
pub(crate) struct RoleRule {
    pub(crate) role: Role,
    pub(crate) subject_matches: regex::Regex,
}

impl PdfVerify {
    /// The role of a signer by its RFC 4514 subject: the first rule that matches; none without one.
    pub(crate) fn role_of(&self, subject: &str) -> Option<Role> {
        self.role_rules
            .iter()
            .find(|r| r.subject_matches.is_match(subject))
            .map(|r| r.role)
    }

    /// Loads the trust files into a verifier for files up to `max_file_size`.
    pub fn verifier(&self, max_file_size: u64) -> Result<Verifier, TrustError> {
        Ok(Verifier {
            trust: TrustStore::load(&self.trust_anchors, &self.intermediates, &self.crl_files)?,
            allow_sha1: self.allow_sha1,
            max_file_size,
        })
    }
}

/// The verification keys of a source; `wanted` says whether it verifies PDFs
/// (then `trust_anchors` is required), else every such key is refused.
pub(super) fn pdf_verify(
    s: &RawSource,
    loc: &Locator,
    base: &Path,
    wanted: bool,
) -> Result<Option<PdfVerify>, ConfigError> {
    if !wanted {
        let set = [&s.trust_anchors, &s.intermediates, &s.crl_files]
            .into_iter()
            .flatten()
            .map(|v| v.span())
            .chain(s.allow_sha1.as_ref().map(Spanned::span))
            .chain(s.role_rules.first().map(|r| r.role.span()))
            .next();
        return match set {
            Some(span) => Err(loc.error(
                span,
                "trust_anchors, intermediates, crl_files, allow_sha1 and role_rules apply only to \
                 format = \"pdf\" or an edXML source with verify_attachments = true",
            )),
            None => Ok(None),
        };
    }
    let Some(anchors) = &s.trust_anchors else {
        return Err(loc.error_at(
            &s.name,
            "verifying PDF signatures needs `trust_anchors` (PEM files)",
        ));
    };
    if anchors.get_ref().is_empty() {
        return Err(loc.error_at(anchors, "trust_anchors must name at least one file or glob"));
    }
    let globs = |v: &Option<Spanned<Vec<String>>>| -> Result<Vec<String>, ConfigError> {
        let Some(v) = v else { return Ok(Vec::new()) };
        v.get_ref()
            .iter()
            .map(|g| {
                glob::Pattern::new(g)
                    .map_err(|e| loc.error_at(v, format!("bad glob {g:?}: {e}")))?;
                Ok(resolve(base, g).to_string_lossy().into_owned())
            })
            .collect()
    };
    let mut role_rules = Vec::new();
    for r in &s.role_rules {
        let role = Aliases::builtin().role(r.role.get_ref()).ok_or_else(|| {
            loc.error_at(
                &r.role,
                format!("unknown role {:?} (person, organization)", r.role.get_ref()),
            )
        })?;
        let subject_matches = regex::RegexBuilder::new(r.subject_matches.get_ref())
            .size_limit(MAX_REGEX_SIZE)
            .build()
            .map_err(|e| loc.error_at(&r.subject_matches, format!("bad regex: {e}")))?;
        role_rules.push(RoleRule {
            role,
            subject_matches,
        });
    }
    Ok(Some(PdfVerify {
        trust_anchors: globs(&s.trust_anchors)?,
        intermediates: globs(&s.intermediates)?,
        crl_files: globs(&s.crl_files)?,
        allow_sha1: s.allow_sha1.as_ref().is_some_and(|b| *b.get_ref()),
        role_rules,
    }))
}
