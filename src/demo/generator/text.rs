//! Times and numbers as the exports write them: five time styles, zero-padded
//! decimals, hexadecimal, and cutting a line at a character boundary.

use chrono::{DateTime, Datelike, Timelike};

use super::event::TimeStyle;

/// Seconds east of UTC in Asia/Ho_Chi_Minh, which has no daylight saving time.
pub(super) const LOCAL_OFFSET: i64 = 7 * 3600;

pub(super) fn truncate_at_char(buf: &mut String, mut at: usize) {
    while !buf.is_char_boundary(at) {
        at -= 1;
    }
    buf.truncate(at);
}

/// Local (UTC+7) or UTC calendar fields of a unix time.
pub(super) fn civil(time: i64) -> (i32, u32, u32, u32, u32, u32) {
    let t = DateTime::from_timestamp(time, 0).unwrap_or_default();
    (
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
    )
}

pub(super) fn push_time(buf: &mut String, time: i64, style: TimeStyle) {
    let utc = style == TimeStyle::Utc;
    let (year, month, day, hour, minute, second) =
        civil(if utc { time } else { time + LOCAL_OFFSET });
    let year = u64::try_from(year).unwrap_or(0);
    if style == TimeStyle::DayFirst {
        push_padded(buf, day.into(), 2);
        buf.push('/');
        push_padded(buf, month.into(), 2);
        buf.push('/');
        push_padded(buf, year, 4);
        buf.push(' ');
    } else {
        push_padded(buf, year, 4);
        buf.push('-');
        push_padded(buf, month.into(), 2);
        buf.push('-');
        push_padded(buf, day.into(), 2);
        buf.push(if style == TimeStyle::Naive { ' ' } else { 'T' });
    }
    push_padded(buf, hour.into(), 2);
    buf.push(':');
    push_padded(buf, minute.into(), 2);
    buf.push(':');
    push_padded(buf, second.into(), 2);
    match style {
        TimeStyle::Local => buf.push_str("+07:00"),
        TimeStyle::Utc => buf.push('Z'),
        _ => {}
    }
}

pub(super) fn push_padded(buf: &mut String, mut n: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut i = digits.len();
    while n > 0 {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    let len = (digits.len() - i).max(width).clamp(1, digits.len());
    buf.push_str(std::str::from_utf8(&digits[digits.len() - len..]).expect("ASCII digits"));
}

pub(super) fn push_hex(buf: &mut String, n: u64, alphabet: &[u8; 16]) {
    for shift in (0..16).rev() {
        buf.push(char::from(alphabet[((n >> (shift * 4)) & 0xf) as usize]));
    }
}
