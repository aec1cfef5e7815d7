//! ISO weeks: Monday 00:00 UTC to the next Monday 00:00 UTC.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc, Weekday};

/// One ISO 8601 week, written `YYYY-Www` (`2026-W47`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IsoWeek {
    monday: NaiveDate,
}

impl IsoWeek {
    /// The week `week` of ISO year `year`, if it exists (weeks 1–52, or 53 in long years).
    pub fn new(year: i32, week: u32) -> Option<Self> {
        NaiveDate::from_isoywd_opt(year, week, Weekday::Mon).map(|monday| IsoWeek { monday })
    }

    /// The week containing `t` (UTC).
    pub fn containing(t: DateTime<Utc>) -> Self {
        let day = t.date_naive();
        let back = i64::from(day.weekday().num_days_from_monday());
        IsoWeek {
            monday: day - Duration::days(back),
        }
    }

    /// The last week that has ended by `now`: the week before the one `now` is in.
    pub fn last_complete(now: DateTime<Utc>) -> Self {
        Self::containing(now).minus(1)
    }

    /// The week `n` weeks earlier.
    pub fn minus(self, n: i64) -> Self {
        IsoWeek {
            monday: self.monday - Duration::weeks(n),
        }
    }

    /// Monday 00:00 UTC, inclusive.
    pub fn start(self) -> DateTime<Utc> {
        self.monday.and_time(chrono::NaiveTime::MIN).and_utc()
    }

    /// The next Monday 00:00 UTC, exclusive: the instant the week's figures are evaluated at.
    pub fn end(self) -> DateTime<Utc> {
        self.start() + Duration::weeks(1)
    }

    /// The Monday.
    pub fn monday(self) -> NaiveDate {
        self.monday
    }

    /// The Sunday.
    pub fn sunday(self) -> NaiveDate {
        self.monday + Duration::days(6)
    }
}

impl fmt::Display for IsoWeek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.monday.iso_week();
        write!(f, "{}-W{:02}", w.year(), w.week())
    }
}

impl serde::Serialize for IsoWeek {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for IsoWeek {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not an ISO week like 2026-W47 (YYYY-Www)");
        let (year, week) = text.trim().split_once(['W', 'w']).ok_or_else(bad)?;
        let year = year.strip_suffix('-').ok_or_else(bad)?;
        if year.len() != 4 || week.len() != 2 {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        let week: u32 = week.parse().map_err(|_| bad())?;
        IsoWeek::new(year, week).ok_or_else(|| format!("{year} has no ISO week {week:02}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parses_and_prints_iso_weeks() {
        let w: IsoWeek = "2026-W47".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.to_string(), "2026-W47");
        assert_eq!(w.start(), t("2026-11-16T00:00:00Z"));
        assert_eq!(w.end(), t("2026-11-23T00:00:00Z"));
        // ISO week 1 of 2027 starts on Monday 4 January; 2026 has 53 weeks.
        let first: IsoWeek = "2027-W01".parse().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.start(), t("2027-01-04T00:00:00Z"));
        assert_eq!(first.minus(1).to_string(), "2026-W53");
        assert!("2025-W53".parse::<IsoWeek>().is_err(), "2025 has 52 weeks");
        for bad in [
            "2026-47", "2026W47", "26-W47", "2026-W7", "2026-W00", "week",
        ] {
            let e = bad.parse::<IsoWeek>().err();
            assert!(e.is_some(), "{bad} parsed");
        }
    }

    #[test]
    fn the_last_complete_week_ends_at_the_monday_before_now() {
        // Thursday 26 November 2026: the last complete week is 16–22 November.
        let w = IsoWeek::last_complete(t("2026-11-26T11:00:00Z"));
        assert_eq!(w.to_string(), "2026-W47");
        // At Monday 00:00 the week just ended is complete.
        let w = IsoWeek::last_complete(t("2026-11-23T00:00:00Z"));
        assert_eq!(w.to_string(), "2026-W47");
        let w = IsoWeek::last_complete(t("2026-11-22T23:59:59Z"));
        assert_eq!(w.to_string(), "2026-W46");
    }
}
