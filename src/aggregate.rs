//! Per-day document counts by (unit, direction, class): what reports and
//! scrapes read, so their cost depends on days and units, never on documents.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::model::{compliance_ratio, Class, Direction};

/// A local day as a day number (days from the common era).
pub(crate) type Day = i32;

pub(crate) fn day_number(date: NaiveDate) -> Day {
    use chrono::Datelike;
    date.num_days_from_ce()
}

/// The date of a day number (for messages).
pub(crate) fn date_of(day: Day) -> String {
    NaiveDate::from_num_days_from_ce_opt(day).map_or_else(
        || format!("day {day}"),
        |d| d.format("%d/%m/%Y").to_string(),
    )
}

/// Where one document counts: its local day, unit, direction and class.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Slot {
    pub(crate) day: Day,
    pub(crate) unit: String,
    pub(crate) direction: Direction,
    pub(crate) class: Class,
}

impl Slot {
    /// Where `doc` counts: its local day in `tz`, its unit, its direction
    /// and its class under `required_roles`.
    pub(crate) fn of(doc: &crate::model::Document, tz: chrono_tz::Tz, required_roles: u8) -> Slot {
        Slot {
            day: day_number(crate::parse::time::local_day(doc.time, tz)),
            unit: doc.unit.clone(),
            direction: doc.direction,
            class: doc.class(required_roles),
        }
    }
}

/// Counts of one day.
pub(crate) type DayCounts = BTreeMap<(String, Direction, Class), u64>;

/// Counts per class for one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ClassCounts {
    pub(crate) electronic_signed: u64,
    pub(crate) electronic_unsigned: u64,
    pub(crate) paper: u64,
    pub(crate) secret_exempt: u64,
}

impl ClassCounts {
    pub(crate) fn add(&mut self, class: Class, n: u64) {
        *self.get_mut(class) += n;
    }

    pub(crate) fn get(&self, class: Class) -> u64 {
        match class {
            Class::ElectronicSigned => self.electronic_signed,
            Class::ElectronicUnsigned => self.electronic_unsigned,
            Class::Paper => self.paper,
            Class::SecretExempt => self.secret_exempt,
        }
    }

    fn get_mut(&mut self, class: Class) -> &mut u64 {
        match class {
            Class::ElectronicSigned => &mut self.electronic_signed,
            Class::ElectronicUnsigned => &mut self.electronic_unsigned,
            Class::Paper => &mut self.paper,
            Class::SecretExempt => &mut self.secret_exempt,
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.electronic_signed + self.electronic_unsigned + self.paper + self.secret_exempt
    }

    pub(crate) fn compliance_ratio(&self) -> Option<f64> {
        compliance_ratio(self.electronic_signed, self.total(), self.secret_exempt)
    }
}

/// Counts per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DirectionCounts {
    pub(crate) outgoing: ClassCounts,
    pub(crate) incoming: ClassCounts,
}

impl DirectionCounts {
    pub(crate) fn get(&self, d: Direction) -> &ClassCounts {
        match d {
            Direction::Outgoing => &self.outgoing,
            Direction::Incoming => &self.incoming,
        }
    }

    pub(crate) fn get_mut(&mut self, d: Direction) -> &mut ClassCounts {
        match d {
            Direction::Outgoing => &mut self.outgoing,
            Direction::Incoming => &mut self.incoming,
        }
    }
}

/// A summary of a date range: totals and per unit.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Summary {
    pub(crate) total: DirectionCounts,
    pub(crate) by_unit: BTreeMap<String, DirectionCounts>,
}

/// Counters per day in a flat array: `unit index × 8 + direction × 4 + class`.
type DayArray = Vec<u64>;

fn slot_index(unit: usize, direction: Direction, class: Class) -> usize {
    unit * 8 + usize::from(direction.as_byte()) * 4 + usize::from(class.as_byte())
}

/// All per-day counts, mirrored in memory from the store. Units are interned
/// so that summing a range adds small arrays instead of comparing strings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Aggregates {
    units: Vec<String>,
    unit_index: std::collections::HashMap<String, usize>,
    days: BTreeMap<Day, DayArray>,
    /// Documents a receiver rejected (edXML status 02), per document day and direction.
    rejected: BTreeMap<Day, [u64; 2]>,
}

impl Aggregates {
    fn unit(&mut self, unit: &str) -> usize {
        if let Some(&i) = self.unit_index.get(unit) {
            return i;
        }
        self.units.push(unit.to_string());
        self.unit_index
            .insert(unit.to_string(), self.units.len() - 1);
        self.units.len() - 1
    }

    /// Applies a signed change to one slot; counts never go below zero.
    pub(crate) fn apply(&mut self, slot: &Slot, delta: i64) {
        let i = slot_index(self.unit(&slot.unit), slot.direction, slot.class);
        let day = self.days.entry(slot.day).or_default();
        if day.len() <= i {
            day.resize((i / 8 + 1) * 8, 0);
        }
        day[i] = day[i].saturating_add_signed(delta);
        if day.iter().all(|&n| n == 0) {
            self.days.remove(&slot.day);
        }
    }

    /// Replaces one day's counts (as read from the store).
    pub(crate) fn set_day(&mut self, day: Day, counts: &DayCounts) {
        self.days.remove(&day);
        for ((unit, direction, class), n) in counts {
            let slot = Slot {
                day,
                unit: unit.clone(),
                direction: *direction,
                class: *class,
            };
            self.apply(&slot, *n as i64);
        }
    }

    /// One day's counts, keyed for storage.
    pub(crate) fn day_counts(&self, day: Day) -> DayCounts {
        let mut out = DayCounts::new();
        let Some(counts) = self.days.get(&day) else {
            return out;
        };
        for (i, &n) in counts.iter().enumerate() {
            if n > 0 {
                let direction = if (i / 4) % 2 == 0 {
                    Direction::Outgoing
                } else {
                    Direction::Incoming
                };
                let class = Class::from_byte((i % 4) as u8).expect("class index");
                out.insert((self.units[i / 8].clone(), direction, class), n);
            }
        }
        out
    }

    /// Days that have counts.
    pub(crate) fn days(&self) -> impl Iterator<Item = Day> + '_ {
        self.days.keys().copied()
    }

    /// Sums an inclusive day range (`None` = unbounded on that side).
    pub(crate) fn summary(&self, from: Option<Day>, to: Option<Day>) -> Summary {
        let mut s = Summary::default();
        let lo = from.unwrap_or(Day::MIN);
        let hi = to.unwrap_or(Day::MAX);
        if lo > hi {
            return s;
        }
        let mut sums = vec![0u64; self.units.len() * 8];
        for counts in self.days.range(lo..=hi).map(|(_, c)| c) {
            for (sum, n) in sums.iter_mut().zip(counts) {
                *sum += n;
            }
        }
        for (unit, chunk) in self.units.iter().zip(sums.chunks(8)) {
            if chunk.iter().all(|&n| n == 0) {
                continue;
            }
            let mut per_unit = DirectionCounts::default();
            for direction in Direction::ALL {
                for class in Class::ALL {
                    let n = chunk[slot_index(0, direction, class)];
                    per_unit.get_mut(direction).add(class, n);
                    s.total.get_mut(direction).add(class, n);
                }
            }
            s.by_unit.insert(unit.clone(), per_unit);
        }
        s
    }
}

impl Aggregates {
    /// Applies a signed change to the rejected-document count of one day.
    pub(crate) fn apply_rejected(&mut self, day: Day, direction: Direction, delta: i64) {
        let counts = self.rejected.entry(day).or_default();
        let n = &mut counts[usize::from(direction.as_byte())];
        *n = n.saturating_add_signed(delta);
        if *counts == [0, 0] {
            self.rejected.remove(&day);
        }
    }

    /// Rejected-document counts of one day, per direction (outgoing, incoming).
    pub(crate) fn rejected_day(&self, day: Day) -> [u64; 2] {
        self.rejected.get(&day).copied().unwrap_or_default()
    }

    /// Days with rejected documents.
    pub(crate) fn rejected_days(&self) -> impl Iterator<Item = Day> + '_ {
        self.rejected.keys().copied()
    }

    /// Replaces one day's rejected counts (as read from the store).
    pub(crate) fn set_rejected_day(&mut self, day: Day, counts: [u64; 2]) {
        if counts == [0, 0] {
            self.rejected.remove(&day);
        } else {
            self.rejected.insert(day, counts);
        }
    }

    /// Documents rejected by a receiver in an inclusive day range, per direction.
    pub(crate) fn rejected(&self, from: Option<Day>, to: Option<Day>) -> [u64; 2] {
        let (lo, hi) = (from.unwrap_or(Day::MIN), to.unwrap_or(Day::MAX));
        let mut sum = [0u64; 2];
        if lo <= hi {
            for c in self.rejected.range(lo..=hi).map(|(_, c)| c) {
                sum[0] += c[0];
                sum[1] += c[1];
            }
        }
        sum
    }
}

/// Applies a signed change to a stored day's counts.
pub(crate) fn apply_to_counts(counts: &mut DayCounts, slot: &Slot, delta: i64) {
    let key = (slot.unit.clone(), slot.direction, slot.class);
    let n = counts.entry(key.clone()).or_insert(0);
    *n = n.saturating_add_signed(delta);
    if *n == 0 {
        counts.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(day: Day, unit: &str, class: Class) -> Slot {
        Slot {
            day,
            unit: unit.into(),
            direction: Direction::Outgoing,
            class,
        }
    }

    #[test]
    fn per_unit_blocks_add_up_to_the_totals_of_a_range() {
        let mut a = Aggregates::default();
        a.apply(&slot(10, "A", Class::ElectronicSigned), 2);
        a.apply(&slot(11, "", Class::Paper), 1);
        a.apply(&slot(12, "A", Class::SecretExempt), 1);
        a.apply(&slot(20, "B", Class::ElectronicSigned), 5);
        let s = a.summary(Some(10), Some(12));
        assert_eq!(s.total.outgoing.total(), 4);
        let sum: u64 = s.by_unit.values().map(|u| u.outgoing.total()).sum();
        assert_eq!(sum, 4);
        assert_eq!(s.total.outgoing.compliance_ratio(), Some(2.0 / 3.0));
        assert!(!s.by_unit.contains_key("B"));
    }

    #[test]
    fn a_class_change_moves_one_document() {
        let mut a = Aggregates::default();
        a.apply(&slot(1, "A", Class::ElectronicUnsigned), 1);
        a.apply(&slot(1, "A", Class::ElectronicUnsigned), -1);
        a.apply(&slot(1, "A", Class::ElectronicSigned), 1);
        let s = a.summary(None, None);
        assert_eq!(s.total.outgoing.electronic_signed, 1);
        assert_eq!(s.total.outgoing.electronic_unsigned, 0);
        assert_eq!(a.day_counts(1).len(), 1, "empty slots are dropped");
        a.apply(&slot(1, "A", Class::ElectronicSigned), -1);
        assert_eq!(a.days().count(), 0, "empty days are dropped");
    }
}
