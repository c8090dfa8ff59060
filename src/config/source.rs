//! `[[sources]]`: what each source reads — files named by a glob, an HTTP
//! feed, or a directory of edXML messages — and how its records are mapped.

use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::http::{refuse_http_keys, validate_http, HttpConfig};
use super::locate::{
    byte_size, duration_at_least, is_plain_name, parse_duration_at, resolve, ConfigError, Locator,
};
use super::pdf::{pdf_verify, PdfInput, PdfVerify};
use super::raw::RawSource;
use crate::model::SourceKind;
use crate::parse::normalize::{AliasField, Aliases};
use crate::parse::record::{Field, FieldMap};
use crate::parse::{Mapping, RecordFormat};

/// One configured source.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    pub name: String,
    pub(crate) kind: SourceKind,
    /// How often the input is looked at when nothing woke the reader.
    pub(crate) poll_interval: Duration,
    /// What the source reads.
    pub input: Input,
}

/// What a source reads. The kind of input is this type, so a match on it is
/// exhaustive and no code guesses the kind from which keys are set.
#[derive(Debug, Clone)]
pub enum Input {
    /// Files named by a glob, tailed record by record (README "Input").
    Files(FileInput),
    /// An HTTP API polled page by page (README "HTTP feed sources").
    HttpFeed(FeedInput),
    /// A directory of edXML messages, one per file (README "edXML archive source").
    EdxmlDir(EdxmlInput),
    /// Signed PDF files, one per document version (README "Verified signatures (PDF)").
    PdfDir(PdfInput),
}

/// A file source: JSON Lines or CSV files named by a glob.
#[derive(Debug, Clone)]
pub struct FileInput {
    /// Glob naming the files, absolute.
    pub path: String,
    pub format: RecordFormat,
    pub(crate) mapping: Mapping,
}

/// An HTTP feed source: pages of JSON events.
#[derive(Debug, Clone)]
pub struct FeedInput {
    pub http: HttpConfig,
    pub(crate) mapping: Mapping,
}

/// An edXML source: message files, read whole once each.
#[derive(Debug, Clone)]
pub struct EdxmlInput {
    /// Glob naming the message files, absolute.
    pub path: String,
    /// Quiet time before a new file is read (it may still be being written).
    pub(crate) settle: Duration,
    /// Larger files are rejected without being read.
    pub(crate) max_file_size: u64,
    /// `verify_attachments = true`: how the PDF attachments are verified.
    pub verify_attachments: Option<PdfVerify>,
}

impl Input {
    /// The format as `/api/v1/status` names it.
    pub(crate) fn format_name(&self) -> &'static str {
        match self {
            Input::Files(f) => match f.format {
                RecordFormat::Jsonl => "jsonl",
                RecordFormat::Csv { .. } => "csv",
            },
            Input::HttpFeed(_) => "json",
            Input::EdxmlDir(_) => "edxml",
            Input::PdfDir(_) => "pdf",
        }
    }

    /// The glob of a file or edXML source; `None` for an HTTP feed.
    pub fn path(&self) -> Option<&str> {
        match self {
            Input::Files(FileInput { path, .. })
            | Input::EdxmlDir(EdxmlInput { path, .. })
            | Input::PdfDir(PdfInput { path, .. }) => Some(path),
            Input::HttpFeed(_) => None,
        }
    }
}

/// Default `max_file_size` of an edXML source.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 128 * 1024 * 1024;

/// The format a source declares (or implies with `url =`), before its other
/// keys are checked against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Declared {
    Feed,
    Jsonl,
    Csv,
    Edxml,
    Pdf,
}

/// Where a source reads from, as written.
enum Located<'a> {
    Path(String),
    Url(&'a Spanned<String>),
}

/// What a source turned out to read, validated.
enum Reads {
    Files(String),
    Feed(Box<HttpConfig>),
}

/// Validates one `[[sources]]` table; paths are resolved against `base`.
pub(super) fn validate_source(
    s: &RawSource,
    loc: &Locator,
    base: &Path,
) -> Result<SourceConfig, ConfigError> {
    let name = s.name.get_ref().trim().to_string();
    if !is_plain_name(&name) {
        return Err(loc.error_at(
            &s.name,
            "source name must be non-empty ASCII letters, digits, '-', '_' or '.'",
        ));
    }
    let kind = match s.kind.get_ref().as_str() {
        "exchange" => SourceKind::Exchange,
        "signature" => SourceKind::Signature,
        other => {
            return Err(loc.error_at(
                &s.kind,
                format!("unknown kind {other:?} (exchange, signature)"),
            ))
        }
    };
    let declared = declared_format(s, loc)?;
    if matches!(declared, Declared::Edxml | Declared::Pdf) {
        refuse_for_whole_files(s, declared, kind, loc)?;
    }
    let verify_attachments = match &s.verify_attachments {
        Some(v) if declared != Declared::Edxml => {
            return Err(loc.error_at(v, "verify_attachments applies only to format = \"edxml\""))
        }
        Some(v) => *v.get_ref(),
        None => false,
    };
    let verify = pdf_verify(
        s,
        loc,
        base,
        declared == Declared::Pdf || verify_attachments,
    )?;
    let (settle, max_file_size) = edxml_keys(s, declared, loc)?;
    let reads = match location(s, declared, loc)? {
        Located::Path(path) => {
            refuse_http_keys(s, loc)?;
            Reads::Files(resolve(base, &path).to_string_lossy().into_owned())
        }
        Located::Url(u) => Reads::Feed(Box::new(validate_http(s, u, loc, base)?)),
    };
    let poll_interval = match &s.poll_interval {
        None => Duration::from_secs(5),
        Some(p) => duration_at_least(p, loc, "5s", "poll_interval", Duration::from_millis(10))?,
    };
    let delimiter = csv_delimiter(s, declared, loc)?;
    let mapping = mapping(s, kind, loc)?;
    let input = match (reads, declared) {
        (Reads::Feed(http), _) => Input::HttpFeed(FeedInput {
            http: *http,
            mapping,
        }),
        (Reads::Files(path), Declared::Edxml) => Input::EdxmlDir(EdxmlInput {
            path,
            settle,
            max_file_size,
            verify_attachments: verify,
        }),
        (Reads::Files(path), Declared::Pdf) => Input::PdfDir(PdfInput {
            path,
            settle,
            max_file_size,
            verify: verify.expect("a PDF source verifies"),
        }),
        (Reads::Files(path), Declared::Csv) => Input::Files(FileInput {
            path,
            format: RecordFormat::Csv { delimiter },
            mapping,
        }),
        (Reads::Files(path), Declared::Jsonl | Declared::Feed) => Input::Files(FileInput {
            path,
            format: RecordFormat::Jsonl,
            mapping,
        }),
    };
    Ok(SourceConfig {
        name,
        kind,
        poll_interval,
        input,
    })
}

/// `format`, checked against `url` / `path`: an HTTP feed serves JSON, a file
/// source must say what its files hold.
fn declared_format(s: &RawSource, loc: &Locator) -> Result<Declared, ConfigError> {
    Ok(match (&s.format, &s.url) {
        (Some(f), Some(_)) => match f.get_ref().as_str() {
            "json" | "jsonl" => Declared::Feed,
            other => {
                return Err(loc.error_at(
                    f,
                    format!("an HTTP feed serves JSON: format {other:?} is not possible (json)"),
                ))
            }
        },
        (None, Some(_)) => Declared::Feed,
        (Some(f), None) => match f.get_ref().as_str() {
            "jsonl" => Declared::Jsonl,
            "csv" => Declared::Csv,
            "edxml" => Declared::Edxml,
            "pdf" => Declared::Pdf,
            other => {
                return Err(loc.error_at(
                    f,
                    format!("unknown format {other:?} (jsonl, csv, edxml, pdf)"),
                ))
            }
        },
        (None, None) if s.path.is_some() => {
            return Err(loc.error_at(
                &s.name,
                "a file source needs `format` (jsonl, csv, edxml, pdf)",
            ))
        }
        (None, None) => Declared::Jsonl, // refused in `location`: neither `path` nor `url`
    })
}

/// An edXML source reads exchange messages whole, a PDF source signatures:
/// each its own kind, no field names or aliases.
fn refuse_for_whole_files(
    s: &RawSource,
    declared: Declared,
    kind: SourceKind,
    loc: &Locator,
) -> Result<(), ConfigError> {
    let (format, reads, wanted) = match declared {
        Declared::Pdf => ("pdf", "signatures", SourceKind::Signature),
        _ => ("edxml", "exchange messages", SourceKind::Exchange),
    };
    if kind != wanted {
        return Err(loc.error_at(
            &s.kind,
            format!(
                "format = \"{format}\" reads {reads}: kind must be \"{}\"",
                wanted.as_str()
            ),
        ));
    }
    if let Some(f) = s.fields.values().next() {
        return Err(loc.error_at(f, format!("fields do not apply to format = \"{format}\"")));
    }
    if let Some(a) = s.aliases.values().flat_map(|t| t.values()).next() {
        return Err(loc.error_at(a, format!("aliases do not apply to format = \"{format}\"")));
    }
    Ok(())
}

/// `settle` and `max_file_size`, which only edXML and PDF sources take.
fn edxml_keys(
    s: &RawSource,
    declared: Declared,
    loc: &Locator,
) -> Result<(Duration, u64), ConfigError> {
    let edxml = matches!(declared, Declared::Edxml | Declared::Pdf);
    let settle = match &s.settle {
        None => Duration::from_secs(2),
        Some(p) if !edxml => {
            return Err(loc.error_at(p, "settle applies only to format = \"edxml\" or \"pdf\""))
        }
        Some(p) => parse_duration_at(p, loc, "2s")?,
    };
    let max_file_size = match &s.max_file_size {
        None => DEFAULT_MAX_FILE_SIZE,
        Some(v) if !edxml => {
            return Err(loc.error_at(
                v,
                "max_file_size applies only to format = \"edxml\" or \"pdf\"",
            ))
        }
        Some(v) => byte_size(v, "max_file_size", "\"128MiB\" or 134217728", loc)?,
    };
    Ok((settle, max_file_size))
}

/// `path` (a glob; an edXML directory stands for its files) or `url`, exactly one.
fn location<'a>(
    s: &'a RawSource,
    declared: Declared,
    loc: &Locator,
) -> Result<Located<'a>, ConfigError> {
    match (&s.path, &s.url) {
        (Some(p), Some(_)) => Err(loc.error_at(p, "a source has either `path` or `url`, not both")),
        (Some(p), None) => {
            glob::Pattern::new(p.get_ref())
                .map_err(|e| loc.error_at(p, format!("bad glob {:?}: {e}", p.get_ref())))?;
            if p.get_ref().trim().is_empty() {
                return Err(loc.error_at(p, "empty path"));
            }
            let literal = !p.get_ref().contains(['*', '?', '[']);
            let whole_files = matches!(declared, Declared::Edxml | Declared::Pdf);
            Ok(Located::Path(if whole_files && literal {
                // A directory of messages (*.edxml, *.xml) or of PDFs (*.pdf).
                format!("{}/*", p.get_ref().trim_end_matches('/'))
            } else {
                p.get_ref().clone()
            }))
        }
        (None, Some(u)) => Ok(Located::Url(u)),
        (None, None) => Err(loc.error_at(
            &s.name,
            "a source needs `path` (a glob of files) or `url` (an HTTP feed)",
        )),
    }
}

/// `csv_delimiter`: one ASCII character (`\t` for a tab), CSV sources only.
fn csv_delimiter(s: &RawSource, declared: Declared, loc: &Locator) -> Result<u8, ConfigError> {
    let Some(d) = &s.csv_delimiter else {
        return Ok(b',');
    };
    let v = d.get_ref();
    let v = if v == "\\t" { "\t" } else { v.as_str() };
    if v.len() != 1 || v == "\"" || v == "\n" || v == "\r" {
        return Err(loc.error_at(d, "csv_delimiter must be one ASCII character"));
    }
    if declared != Declared::Csv {
        return Err(loc.error_at(d, "csv_delimiter applies only to format = \"csv\""));
    }
    Ok(v.as_bytes()[0])
}

/// `[sources.fields]` and `[sources.aliases.<field>]` on top of the built-in names.
fn mapping(s: &RawSource, kind: SourceKind, loc: &Locator) -> Result<Mapping, ConfigError> {
    let mut renamed = Vec::new();
    for (canonical, input) in &s.fields {
        let field = Field::from_name(canonical)
            .filter(|f| f.applies_to(kind))
            .ok_or_else(|| {
                loc.error_at(
                    input,
                    format!(
                        "unknown field {canonical:?} for a {} source (known: {})",
                        kind.as_str(),
                        Field::names_for(kind).join(", ")
                    ),
                )
            })?;
        if input.get_ref().trim().is_empty() {
            return Err(loc.error_at(input, "input field name must not be empty"));
        }
        renamed.push((field, input.get_ref().clone()));
    }
    let mut aliases = Aliases::builtin();
    for (field_name, table) in &s.aliases {
        let field = AliasField::from_name(field_name);
        for (alias, canonical) in table {
            let field = field.ok_or_else(|| {
                loc.error_at(
                    canonical,
                    format!(
                        "aliases for unknown field {field_name:?} (direction, channel, confidentiality, role)"
                    ),
                )
            })?;
            aliases
                .add(field, alias, canonical.get_ref())
                .map_err(|e| loc.error_at(canonical, e))?;
        }
    }
    Ok(Mapping {
        fields: FieldMap::new(kind, &renamed),
        aliases,
    })
}
