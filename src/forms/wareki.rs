//! Japanese era (和暦) display of Gregorian dates, as staff and residents read them on paper.
//!
//! Input is always Gregorian (`YYYY-MM-DD`); the era form is for display only.

use chrono::{Datelike, NaiveDate};

/// Era names and their first days, newest first.
const ERAS: [(&str, &str, i32, u32, u32); 5] = [
    ("令和", "Reiwa", 2019, 5, 1),
    ("平成", "Heisei", 1989, 1, 8),
    ("昭和", "Showa", 1926, 12, 25),
    ("大正", "Taisho", 1912, 7, 30),
    ("明治", "Meiji", 1868, 1, 25),
];

/// `2026-11-23` → `令和8年11月23日`; the first year of an era is 元年.
pub fn format(date: NaiveDate) -> String {
    for (name, _, year, month, day) in ERAS {
        let Some(start) = NaiveDate::from_ymd_opt(year, month, day) else {
            continue;
        };
        if date >= start {
            let era_year = date.year() - year + 1;
            let year_text = if era_year == 1 {
                "元".to_owned()
            } else {
                era_year.to_string()
            };
            return format!("{name}{year_text}年{}月{}日", date.month(), date.day());
        }
    }
    date.format("%Y年%-m月%-d日").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn era_boundaries() {
        assert_eq!(format(date("2026-11-23")), "令和8年11月23日");
        assert_eq!(format(date("2019-05-01")), "令和元年5月1日");
        assert_eq!(format(date("2019-04-30")), "平成31年4月30日");
        assert_eq!(format(date("1989-01-07")), "昭和64年1月7日");
        assert_eq!(format(date("1985-04-01")), "昭和60年4月1日");
    }
}
