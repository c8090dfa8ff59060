//! `docflowd check-pdf`: verifies PDF files as a configured PDF source would,
//! without the store, one JSON line per file on stdout. For operators who
//! want to know why a file's signatures count or not, and for the benchmark.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;

use crate::config::{Config, Input, PdfVerify};
use crate::pdf::SignatureReport;

/// What a check run did, for the closing line on stderr.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckSummary {
    pub files: u64,
    pub signatures: u64,
    pub valid: u64,
    pub rejected: u64,
    pub seconds: f64,
    /// The process's peak resident memory (`VmHWM`), KiB, when known.
    pub peak_rss_kib: Option<u64>,
}

/// This process's peak resident memory in KiB, from `/proc/self/status`
/// (the hostile-file tests and the benchmark quote it).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    line.trim().trim_end_matches("kB").trim().parse().ok()
}

/// The PDF verification settings of source `name` (or of the only source that has them).
fn settings<'c>(
    config: &'c Config,
    name: Option<&str>,
) -> anyhow::Result<(&'c str, &'c PdfVerify, u64)> {
    let candidates: Vec<_> = config
        .sources
        .iter()
        .filter(|s| name.is_none_or(|n| n == s.name))
        .filter_map(|s| match &s.input {
            Input::PdfDir(p) => Some((s.name.as_str(), &p.verify, p.max_file_size)),
            Input::EdxmlDir(e) => e
                .verify_attachments
                .as_ref()
                .map(|v| (s.name.as_str(), v, e.max_file_size)),
            Input::Files(_) | Input::HttpFeed(_) => None,
        })
        .collect();
    match candidates.as_slice() {
        [one] => Ok(*one),
        [] => bail!(
            "no source verifies PDF files (format = \"pdf\", or verify_attachments = true){}",
            name.map(|n| format!(" named {n:?}")).unwrap_or_default()
        ),
        _ => bail!("several sources verify PDF files: name one with --source"),
    }
}

/// Files named by the arguments: paths, or globs (quoted so the shell leaves them).
fn expand(args: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for a in args {
        if a.contains(['*', '?', '[']) {
            for p in glob::glob(a).with_context(|| format!("bad glob {a:?}"))? {
                out.push(p?);
            }
        } else {
            out.push(PathBuf::from(a));
        }
    }
    Ok(out)
}

/// One line of the output: a file and its signatures, or why it was not verified.
#[derive(Debug, Serialize)]
struct CheckedFile<'a> {
    file: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    /// `None` (absent) when the file could not be verified at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    signatures: Option<Vec<CheckedSignature>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// One signature's verdict, with the role the source's rules give it.
#[derive(Debug, Serialize)]
struct CheckedSignature {
    /// `valid` or the reason code.
    result: &'static str,
    /// The reason in Vietnamese, when not valid.
    reason_text: Option<&'static str>,
    role: Option<&'static str>,
    signer: String,
    subject: String,
    cert_serial: String,
    issuer: String,
    /// Unix seconds.
    time: i64,
    time_source: &'static str,
}

impl CheckedSignature {
    fn new(s: &SignatureReport, verify: &PdfVerify) -> CheckedSignature {
        CheckedSignature {
            result: s.reason.map_or("valid", |r| r.code()),
            reason_text: s.reason.map(|r| r.text_vi()),
            role: verify.role_of(&s.subject).map(|r| r.as_str()),
            signer: s.signer.clone(),
            subject: s.subject.clone(),
            cert_serial: s.cert_serial.clone(),
            issuer: s.issuer.clone(),
            time: s.time,
            time_source: s.time_source.as_str(),
        }
    }
}

/// Verifies `files` with the settings of `source`; `without_crls` ignores
/// the configured CRLs (to compare with a verifier that checks none).
pub fn check_pdfs(
    config: &Config,
    source: Option<&str>,
    files: &[String],
    without_crls: bool,
    out: &mut impl Write,
) -> anyhow::Result<CheckSummary> {
    let (name, verify, max_file_size) = settings(config, source)?;
    let mut verifier = verify
        .verifier(max_file_size)
        .with_context(|| format!("source {name:?}: cannot load the trust files"))?;
    if without_crls {
        verifier.trust = verifier.trust.without_crls();
    }
    let mut summary = CheckSummary::default();
    let started = Instant::now();
    for path in expand(files)? {
        summary.files += 1;
        let mut line = CheckedFile {
            file: &path,
            sha256: None,
            signatures: None,
            error: None,
        };
        match verifier.verify_file(&path) {
            Ok(report) => {
                summary.signatures += report.signatures.len() as u64;
                summary.valid += report.signatures.iter().filter(|s| s.valid()).count() as u64;
                line.sha256 = Some(report.sha256.clone());
                line.signatures = Some(
                    report
                        .signatures
                        .iter()
                        .map(|s| CheckedSignature::new(s, verify))
                        .collect(),
                );
            }
            Err(e) => {
                summary.rejected += 1;
                line.error = Some(e.to_string());
            }
        }
        serde_json::to_writer(&mut *out, &line)?;
        writeln!(out)?;
    }
    summary.seconds = started.elapsed().as_secs_f64();
    summary.peak_rss_kib = peak_rss_kib();
    Ok(summary)
}
