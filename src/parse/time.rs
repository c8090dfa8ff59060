//! Event time parsing (README "Input", times), local days, and the Decree
//! 09/2019 reporting periods (README "HTTP API", report periods).

use chrono::{DateTime, LocalResult, Months, NaiveDate, NaiveDateTime, Offset, TimeZone};
use chrono_tz::Tz;

/// Why a time, date or period could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum TimeError {
    #[error("empty time")]
    Empty,
    #[error(
        "unrecognised time {input:?}: expected RFC 3339 (2026-06-14T09:00:00+07:00), \
         local 2026-06-14 09:00:00 or 14/06/2026[ 09:00[:00]]"
    )]
    Format { input: String },
    #[error("no such calendar date in {input:?}")]
    Date { input: String },
    #[error("time of day out of range in {input:?}")]
    TimeOfDay { input: String },
    #[error("UTC offset out of range in {input:?}")]
    Offset { input: String },
    #[error("invalid date {input:?}: expected YYYY-MM-DD")]
    ApiDate { input: String },
    #[error(
        "invalid reporting period {input:?}: expected YYYY, YYYY-MM, YYYY-Q1..Q4 or YYYY-H1..H2"
    )]
    Period { input: String },
}

/// What went wrong, before the input is copied into a `TimeError`.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    Format,
    Date,
    TimeOfDay,
    Offset,
}

impl Fault {
    fn with_input(self, input: &str) -> TimeError {
        let input = excerpt(input);
        match self {
            Fault::Format => TimeError::Format { input },
            Fault::Date => TimeError::Date { input },
            Fault::TimeOfDay => TimeError::TimeOfDay { input },
            Fault::Offset => TimeError::Offset { input },
        }
    }
}

/// Bounds the bad input quoted in an error, since it comes from untrusted log lines.
fn excerpt(s: &str) -> String {
    const MAX_CHARS: usize = 64;
    match s.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

/// The fields of a parsed time, not yet validated as a calendar date and time of day.
struct Fields {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// Seconds east of UTC; `None` for a local time in the agency's zone.
    offset: Option<i32>,
}

/// Parses an event time into Unix seconds (fractions truncated toward the past, i.e. floor).
pub(crate) fn parse_time(s: &str, tz: Tz) -> Result<i64, TimeError> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return Err(TimeError::Empty);
    }
    let b = trimmed.as_bytes();
    let fields = if b.len() >= 10 && b[2] == b'/' && b[5] == b'/' {
        day_first_fields(b)
    } else {
        iso_fields(b)
    };
    fields
        .and_then(|f| to_unix(&f, tz))
        .map_err(|fault| fault.with_input(trimmed))
}

/// Reads `DD/MM/YYYY`, `DD/MM/YYYY HH:MM` or `DD/MM/YYYY HH:MM:SS`.
fn day_first_fields(b: &[u8]) -> Result<Fields, Fault> {
    let (hour, minute, second) = match b.len() {
        10 => (0, 0, 0),
        16 if b[10] == b' ' && b[13] == b':' => (digits(&b[11..13])?, digits(&b[14..16])?, 0),
        19 if b[10] == b' ' && b[13] == b':' && b[16] == b':' => (
            digits(&b[11..13])?,
            digits(&b[14..16])?,
            digits(&b[17..19])?,
        ),
        _ => return Err(Fault::Format),
    };
    Ok(Fields {
        day: digits(&b[0..2])?,
        month: digits(&b[3..5])?,
        year: year_digits(&b[6..10])?,
        hour,
        minute,
        second,
        offset: None,
    })
}

/// Reads `YYYY-MM-DD[T ]HH:MM:SS[.fff]` followed by `Z`, `±HH:MM` or nothing (local).
fn iso_fields(b: &[u8]) -> Result<Fields, Fault> {
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(Fault::Format);
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        // Floor to whole seconds: a non-negative fraction never changes the second.
        let len = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return Err(Fault::Format);
        }
        rest = &fraction[len..];
    }
    let offset = match rest {
        [] => None,
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), hh @ .., b':', m1, m2] if hh.len() == 2 => {
            let hours = digits(hh)?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return Err(Fault::Offset);
            }
            let east = i32::try_from(hours * 3600 + minutes * 60).map_err(|_| Fault::Offset)?;
            Some(if *sign == b'-' { -east } else { east })
        }
        _ => return Err(Fault::Format),
    };
    Ok(Fields {
        year: year_digits(&b[0..4])?,
        month: digits(&b[5..7])?,
        day: digits(&b[8..10])?,
        hour: digits(&b[11..13])?,
        minute: digits(&b[14..16])?,
        second: digits(&b[17..19])?,
        offset,
    })
}

/// Reads a fixed-width run of ASCII digits.
fn digits(b: &[u8]) -> Result<u32, Fault> {
    b.iter().try_fold(0u32, |acc, c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + u32::from(c - b'0'))
        } else {
            Err(Fault::Format)
        }
    })
}

fn year_digits(b: &[u8]) -> Result<i32, Fault> {
    // Four digits always fit in an i32.
    digits(b).map(|y| y as i32)
}

fn to_unix(f: &Fields, tz: Tz) -> Result<i64, Fault> {
    let date = NaiveDate::from_ymd_opt(f.year, f.month, f.day).ok_or(Fault::Date)?;
    let local = date
        .and_hms_opt(f.hour, f.minute, f.second)
        .ok_or(Fault::TimeOfDay)?;
    Ok(match f.offset {
        Some(east) => local.and_utc().timestamp() - i64::from(east),
        None => local_to_unix(local, tz),
    })
}

/// Converts a local wall-clock time to Unix seconds, taking the earliest instant when it is ambiguous.
fn local_to_unix(local: NaiveDateTime, tz: Tz) -> i64 {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.timestamp(),
        LocalResult::Ambiguous(a, b) => a.timestamp().min(b.timestamp()),
        LocalResult::None => first_instant_after_gap(local, tz),
    }
}

/// For a wall-clock time skipped by a forward transition, the transition instant:
/// the earliest instant whose local time is not before `local`.
fn first_instant_after_gap(local: NaiveDateTime, tz: Tz) -> i64 {
    let wall = local.and_utc().timestamp();
    let wall_at = |t: i64| match DateTime::from_timestamp(t, 0) {
        Some(utc) => {
            t + i64::from(
                tz.offset_from_utc_datetime(&utc.naive_utc())
                    .fix()
                    .local_minus_utc(),
            )
        }
        None => t,
    };
    // Every UTC offset ever used is within ±16 h, so the instant lies in this bracket.
    const BRACKET: i64 = 16 * 3600;
    let (mut lo, mut hi) = (wall - BRACKET, wall + BRACKET);
    // Invariant: wall_at(lo) < wall <= wall_at(hi).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if wall_at(mid) < wall {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// The local calendar day of an instant in `tz`; instants beyond chrono's range saturate.
pub(crate) fn local_day(unix_secs: i64, tz: Tz) -> NaiveDate {
    match DateTime::from_timestamp(unix_secs, 0) {
        Some(utc) => utc.with_timezone(&tz).date_naive(),
        None if unix_secs < 0 => NaiveDate::MIN,
        None => NaiveDate::MAX,
    }
}

/// Parses a `YYYY-MM-DD` API date.
pub(crate) fn parse_date(s: &str) -> Result<NaiveDate, TimeError> {
    let b = s.as_bytes();
    let err = || TimeError::ApiDate { input: excerpt(s) };
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(err());
    }
    let (year, month, day) = match (year_digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10])) {
        (Ok(y), Ok(m), Ok(d)) => (y, m, d),
        _ => return Err(err()),
    };
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| TimeError::Date { input: excerpt(s) })
}

/// A reporting period of Decree 09/2019 (README "HTTP API"): "2026-03" (15 Feb–14 Mar 2026), "2026-Q1" (15 Dec 2025–14 Mar 2026), "2026-H1" (15 Dec 2025–14 Jun 2026), "2026-H2" (15 Jun–14 Dec 2026), "2026" (15 Dec 2025–14 Dec 2026); returns inclusive (from, to) local dates.
pub(crate) fn period_range(s: &str) -> Result<(NaiveDate, NaiveDate), TimeError> {
    let err = || TimeError::Period { input: excerpt(s) };
    let b = s.as_bytes();
    if b.len() < 4 {
        return Err(err());
    }
    let year = year_digits(&b[0..4]).map_err(|_| err())?;
    // A period is named by the month whose 14th closes it and its length in months.
    let (end_month, months) = match &b[4..] {
        [] => (12, 12),
        [b'-', b'Q' | b'q', n @ b'1'..=b'4'] => (u32::from(n - b'0') * 3, 3),
        [b'-', b'H' | b'h', n @ b'1'..=b'2'] => (u32::from(n - b'0') * 6, 6),
        [b'-', m1, m2] => match digits(&[*m1, *m2]) {
            Ok(m @ 1..=12) => (m, 1),
            _ => return Err(err()),
        },
        _ => return Err(err()),
    };
    // Day 14 exists in every month of every year chrono can represent from four digits.
    let to = NaiveDate::from_ymd_opt(year, end_month, 14).ok_or_else(err)?;
    let from = to
        .checked_sub_months(Months::new(months))
        .and_then(|d| d.succ_opt())
        .ok_or_else(err)?;
    Ok((from, to))
}

#[cfg(test)]
mod tests;
