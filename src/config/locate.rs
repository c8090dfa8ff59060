//! Where a value stands in the file, and the helpers every part of the
//! validation shares: errors that name file, line and key; paths relative to
//! the config file; byte sizes and durations.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

/// A configuration error, located in its file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: key `{key}`: {message}")]
    Invalid {
        file: String,
        line: usize,
        key: String,
        message: String,
    },
}

/// Turns byte spans into `file:line: key` errors.
pub(super) struct Locator<'a> {
    pub(super) file: String,
    pub(super) text: &'a str,
}

impl Locator<'_> {
    pub(super) fn line_of(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        self.text.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The dotted key at a span: the enclosing `[table]` plus the key on that line.
    pub(super) fn key_at(&self, span: &Range<usize>) -> String {
        let start = span.start.min(self.text.len());
        let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let line = &self.text[line_start..line_end];
        let table = self.text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| {
                l.trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            });
        let trimmed = line.trim();
        let key = if trimmed.starts_with('[') {
            trimmed
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        } else {
            let k = line
                .split('=')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            match table {
                Some(t) if !t.is_empty() => format!("{t}.{k}"),
                _ => k.to_string(),
            }
        };
        key
    }

    pub(super) fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: self.line_of(span.start),
            key: self.key_at(&span),
            message: message.into(),
        }
    }

    pub(super) fn error_at<T>(
        &self,
        value: &Spanned<T>,
        message: impl Into<String>,
    ) -> ConfigError {
        self.error(value.span(), message)
    }

    /// Error for a key that is missing entirely: points at the table header if present.
    pub(super) fn missing(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.clone(),
            line: 1,
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Relative paths in the config are relative to the config file's directory.
pub(super) fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// A byte size of at least 1 KiB: an integer, or a string for [`parse_size`].
pub(super) fn byte_size(
    v: &Spanned<toml::Value>,
    key: &str,
    example: &str,
    loc: &Locator,
) -> Result<u64, ConfigError> {
    let n = match v.get_ref() {
        toml::Value::Integer(n) => u64::try_from(*n).ok(),
        toml::Value::String(t) => parse_size(t),
        _ => None,
    };
    match n {
        Some(n) if n >= 1024 => Ok(n),
        _ => Err(loc.error_at(
            v,
            format!("{key} must be a size of at least 1KiB (e.g. {example})"),
        )),
    }
}

/// Parses "64MiB", "512 MB", "1GiB" or a plain byte count.
pub(super) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// A duration such as "5s" or "24h"; the error names the key and gives `example`.
pub(super) fn parse_duration_at(
    d: &Spanned<String>,
    loc: &Locator,
    example: &str,
) -> Result<Duration, ConfigError> {
    humantime::parse_duration(d.get_ref()).map_err(|e| {
        loc.error_at(
            d,
            format!("bad duration {:?}: {e} (e.g. \"{example}\")", d.get_ref()),
        )
    })
}

/// A duration of at least `min`: "{key} must be at least {min}" otherwise.
pub(super) fn duration_at_least(
    d: &Spanned<String>,
    loc: &Locator,
    example: &str,
    key: &str,
    min: Duration,
) -> Result<Duration, ConfigError> {
    let v = parse_duration_at(d, loc, example)?;
    if v < min {
        return Err(loc.error_at(
            d,
            format!("{key} must be at least {}", humantime::format_duration(min)),
        ));
    }
    Ok(v)
}

/// Whether a source or rule name is non-empty ASCII letters, digits, '-', '_' or '.'.
pub(super) fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}
