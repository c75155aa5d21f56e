//! Business days of the city hall: weekdays that are not configured holidays.
//!
//! The statutory processing period (標準処理期間) counts business days, and its clock stops while
//! an application is returned to the resident.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate, Weekday};

#[derive(Debug, Clone, Default)]
pub struct BusinessCalendar {
    holidays: BTreeSet<NaiveDate>,
}

impl BusinessCalendar {
    pub fn new(holidays: impl IntoIterator<Item = NaiveDate>) -> Self {
        Self {
            holidays: holidays.into_iter().collect(),
        }
    }

    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&date)
    }

    /// The date `days` business days after `start` (the day of receipt does not count).
    pub fn add_business_days(&self, start: NaiveDate, days: u32) -> NaiveDate {
        let mut date = start;
        let mut remaining = days;
        while remaining > 0 {
            date = date.succ_opt().unwrap_or(date);
            if self.is_business_day(date) {
                remaining -= 1;
            }
        }
        date
    }

    /// Business days in `(from, to]`: how long an application sat with the resident.
    pub fn business_days_between(&self, from: NaiveDate, to: NaiveDate) -> u32 {
        let mut count = 0;
        let mut date = from;
        while date < to {
            date = date.succ_opt().unwrap_or(to);
            if self.is_business_day(date) {
                count += 1;
            }
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn weekends_and_holidays_are_skipped() {
        // 2026-11-20 is a Friday; 11-23 (Mon) is 勤労感謝の日.
        let calendar = BusinessCalendar::new([day("2026-11-23")]);
        assert_eq!(
            calendar.add_business_days(day("2026-11-20"), 1),
            day("2026-11-24")
        );
        assert_eq!(
            calendar.add_business_days(day("2026-11-20"), 3),
            day("2026-11-26")
        );
        assert_eq!(
            calendar.add_business_days(day("2026-11-20"), 0),
            day("2026-11-20")
        );
        assert_eq!(
            calendar.business_days_between(day("2026-11-20"), day("2026-11-26")),
            3
        );
    }
}
