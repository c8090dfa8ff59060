//! The noise real exports carry (on with `realistic_noise`): NFD spellings,
//! exact duplicate lines and bad lines (impossible dates, unknown channels,
//! missing ids or roles, cut-off lines, arrays).

use super::event::{BadLine, Event, ExchangeEvent, Line, SignatureEvent};
use super::shape::LineNoise;
use super::Generator;

impl Generator {
    /// Pushes one exchange line, with an NFD spelling, an exact duplicate or a
    /// bad line after it when the document's shape or the noise stream says so.
    pub(super) fn push_exchange_line(
        &mut self,
        mut event: ExchangeEvent,
        noise: LineNoise,
        out: &mut Vec<Event>,
    ) {
        let rng = &mut self.rng;
        if self.noise && rng.chance(0.02) {
            event.direction = nfd_variant(event.direction);
            event.channel = nfd_variant(event.channel);
            event.unit = event.unit.map(nfd_variant);
        }
        out.push(Event::Exchange(event));
        if noise.duplicate {
            let mut duplicate = event;
            duplicate.line = Line::Duplicate;
            out.push(Event::Exchange(duplicate));
        }
        if noise.bad {
            let mut bad = event;
            bad.id = self.next_exchange_id;
            self.next_exchange_id += 1;
            bad.line = Line::Bad(match rng.weighted_index(&[30, 20, 20, 15, 15]) {
                0 => BadLine::Date(rng.pick(&BAD_DATES)),
                1 => BadLine::Channel(rng.pick(&UNKNOWN_CHANNELS)),
                2 => BadLine::DocId(rng.pick(&[None, Some(""), Some("   ")])),
                3 => BadLine::Truncated,
                _ => BadLine::Array,
            });
            out.push(Event::Exchange(bad));
        }
    }

    /// Pushes one signature line, with an NFD role, an exact duplicate or a
    /// bad line after it as the noise stream draws them.
    pub(super) fn push_signature_line(&mut self, mut event: SignatureEvent, out: &mut Vec<Event>) {
        let rng = &mut self.rng;
        if self.noise && rng.chance(0.02) {
            event.role = nfd_variant(event.role);
        }
        out.push(Event::Signature(event));
        if self.noise && rng.chance(0.002) {
            let mut duplicate = event;
            duplicate.line = Line::Duplicate;
            out.push(Event::Signature(duplicate));
        }
        if self.noise && rng.chance(0.001) {
            let mut bad = event;
            bad.id = self.next_signature_id;
            self.next_signature_id += 1;
            bad.line = Line::Bad(match rng.weighted_index(&[40, 30, 30]) {
                0 => BadLine::Date(rng.pick(&BAD_DATES)),
                1 => BadLine::Role,
                _ => BadLine::Truncated,
            });
            out.push(Event::Signature(bad));
        }
    }
}

const BAD_DATES: [&str; 6] = [
    "31/02/2026 09:00:00",
    "2026-13-01 08:00:00",
    "hôm qua",
    "",
    "14-06-2026 9h30",
    "2026/06/14",
];
const UNKNOWN_CHANNELS: [&str; 3] = ["fax", "email", "bưu điện"];

/// NFC values and their NFD spelling, as Windows tools export them.
pub(super) const NFD_SPELLINGS: [(&str, &str); 10] = [
    ("văn bản đến", "va\u{306}n ba\u{309}n đe\u{302}\u{301}n"),
    ("đến", "đe\u{302}\u{301}n"),
    ("điện tử", "đie\u{323}\u{302}n tu\u{31b}\u{309}"),
    ("giấy", "gia\u{302}\u{301}y"),
    ("Phòng Kinh tế", "Pho\u{300}ng Kinh te\u{302}\u{301}"),
    (
        "Phòng Văn hóa - Xã hội",
        "Pho\u{300}ng Va\u{306}n ho\u{301}a - Xa\u{303} ho\u{323}\u{302}i",
    ),
    (
        "Văn phòng HĐND và UBND",
        "Va\u{306}n pho\u{300}ng HĐND va\u{300} UBND",
    ),
    (
        "Trung tâm Phục vụ hành chính công",
        "Trung ta\u{302}m Phu\u{323}c vu\u{323} ha\u{300}nh chi\u{301}nh co\u{302}ng",
    ),
    ("cá nhân", "ca\u{301} nha\u{302}n"),
    ("cơ quan", "co\u{31b} quan"),
];

pub(super) fn nfd_variant(value: &'static str) -> &'static str {
    NFD_SPELLINGS
        .iter()
        .find(|(nfc, _)| *nfc == value)
        .map_or(value, |(_, nfd)| nfd)
}
