//! Per-day document counts by (unit, direction, class): what reports and
//! scrapes read, so their cost depends on days and units, never on documents.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use crate::classify::{compliance_ratio, Class};
use crate::parse::normalize::Direction;

/// A local day as a day number (days from the common era).
pub type Day = i32;

pub fn day_number(date: NaiveDate) -> Day {
    use chrono::Datelike;
    date.num_days_from_ce()
}

pub fn day_date(day: Day) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day).unwrap_or(NaiveDate::MIN)
}

/// Where one document counts: its local day, unit, direction and class.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot {
    pub day: Day,
    pub unit: String,
    pub direction: Direction,
    pub class: Class,
}

/// Counts of one day.
pub type DayCounts = BTreeMap<(String, Direction, Class), u64>;

/// Counts per class for one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassCounts {
    pub electronic_signed: u64,
    pub electronic_unsigned: u64,
    pub paper: u64,
    pub secret_exempt: u64,
}

impl ClassCounts {
    pub fn add(&mut self, class: Class, n: u64) {
        *self.get_mut(class) += n;
    }

    pub fn get(&self, class: Class) -> u64 {
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

    pub fn total(&self) -> u64 {
        self.electronic_signed + self.electronic_unsigned + self.paper + self.secret_exempt
    }

    pub fn compliance_ratio(&self) -> Option<f64> {
        compliance_ratio(self.electronic_signed, self.total(), self.secret_exempt)
    }
}

/// Counts per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionCounts {
    pub outgoing: ClassCounts,
    pub incoming: ClassCounts,
}

impl DirectionCounts {
    pub fn get(&self, d: Direction) -> &ClassCounts {
        match d {
            Direction::Outgoing => &self.outgoing,
            Direction::Incoming => &self.incoming,
        }
    }

    pub fn get_mut(&mut self, d: Direction) -> &mut ClassCounts {
        match d {
            Direction::Outgoing => &mut self.outgoing,
            Direction::Incoming => &mut self.incoming,
        }
    }
}

/// A summary of a date range: totals and per unit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub total: DirectionCounts,
    pub by_unit: BTreeMap<String, DirectionCounts>,
}

/// All per-day counts, mirrored in memory from the store.
#[derive(Debug, Clone, Default)]
pub struct Aggregates {
    pub days: BTreeMap<Day, DayCounts>,
}

impl Aggregates {
    /// Applies a signed change to one slot; counts never go below zero.
    pub fn apply(&mut self, slot: &Slot, delta: i64) {
        let day = self.days.entry(slot.day).or_default();
        let key = (slot.unit.clone(), slot.direction, slot.class);
        let count = day.entry(key.clone()).or_insert(0);
        *count = count.saturating_add_signed(delta);
        if *count == 0 {
            day.remove(&key);
        }
        if day.is_empty() {
            self.days.remove(&slot.day);
        }
    }

    /// Sums an inclusive day range (`None` = unbounded on that side).
    pub fn summary(&self, from: Option<Day>, to: Option<Day>) -> Summary {
        let mut s = Summary::default();
        let lo = from.unwrap_or(Day::MIN);
        let hi = to.unwrap_or(Day::MAX);
        if lo > hi {
            return s;
        }
        for counts in self.days.range(lo..=hi).map(|(_, c)| c) {
            for ((unit, direction, class), n) in counts {
                s.total.get_mut(*direction).add(*class, *n);
                let u = match s.by_unit.get_mut(unit) {
                    Some(u) => u,
                    None => s.by_unit.entry(unit.clone()).or_default(),
                };
                u.get_mut(*direction).add(*class, *n);
            }
        }
        s
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
        assert_eq!(a.days[&1].len(), 1, "empty slots are dropped");
    }
}
