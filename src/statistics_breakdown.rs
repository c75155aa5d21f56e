//! The usage statistics' opt-in breakdown of receipts (`crate::statistics`): by district (町丁目 code) or by 10-year age band,
//! never both (`statistics.breakdown`). The value is derived once, at submit, from the facts the
//! card vouched for, and only the code or the band is stored on the application: the address and
//! the birth date never reach the statistics.
//!
//! Districts come from a table the city supplies (`statistics.districts_file`, CSV
//! `prefix,code,name`): an address is normalised, read from just after the city's name, and the
//! longest matching prefix gives its code; no match, or no address, is `unknown`.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

use crate::identity::BasicFacts;
use crate::messages::Localized;

/// The value stored for an application whose facts give no district or band.
pub const UNKNOWN: &str = "unknown";
/// The published row of the districts seen fewer than the minimum times (never stored).
pub const OTHER: &str = "other";

/// What the city chose to break receipts down by.
#[derive(Debug, Clone, Default)]
pub enum Breakdown {
    #[default]
    None,
    District(Districts),
    AgeBand,
}

/// The breakdown values stored on a new application (at most one is set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Derived {
    pub district_code: Option<String>,
    pub age_band: Option<String>,
}

impl Breakdown {
    /// `district` or `age_band`: the `kind` of its rollup rows; None when off.
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            Self::None => None,
            Self::District(_) => Some("district"),
            Self::AgeBand => Some("age_band"),
        }
    }

    /// The value to store for an application received `on`, from the facts the card vouched
    /// for (none: `unknown`). Nothing when the city has not opted in.
    pub fn derive(&self, facts: Option<&BasicFacts>, on: NaiveDate) -> Derived {
        match self {
            Self::None => Derived::default(),
            Self::District(districts) => Derived {
                district_code: Some(
                    facts
                        .and_then(|facts| facts.address.as_deref())
                        .and_then(|address| districts.code_of(address))
                        .unwrap_or(UNKNOWN)
                        .to_owned(),
                ),
                age_band: None,
            },
            Self::AgeBand => Derived {
                district_code: None,
                age_band: Some(
                    facts
                        .and_then(|facts| facts.birth_date.as_deref())
                        .and_then(birth_date)
                        .and_then(|born| age_band(born, on))
                        .unwrap_or_else(|| UNKNOWN.to_owned()),
                ),
            },
        }
    }

    /// The published name of a stored value.
    pub fn name_of(&self, value: &str) -> Localized {
        if value == UNKNOWN {
            return Localized::new("不明", "Unknown");
        }
        if value == OTHER && matches!(self, Self::District(_)) {
            return Localized::new("その他の町丁目", "Other districts");
        }
        match self {
            Self::District(districts) => districts.names.get(value).map_or_else(
                || Localized::new(value, value),
                |name| Localized::new(name.clone(), format!("{name} ({value})")),
            ),
            Self::AgeBand => match value.strip_suffix('+') {
                Some(from) => Localized::new(format!("{from}歳以上"), format!("{from} and over")),
                None => Localized::new(format!("{value}歳"), value.to_owned()),
            },
            Self::None => Localized::new(value, value),
        }
    }

    /// What the breakdown is, for a table's heading.
    pub fn title(&self) -> Localized {
        match self {
            Self::District(_) => Localized::new("町丁目別の受付件数", "Applications by district"),
            _ => Localized::new("年齢階級別の受付件数", "Applications by age band"),
        }
    }
}

/// The city's district table: normalised address prefixes (after the city's name) → codes.
#[derive(Debug, Clone, Default)]
pub struct Districts {
    city_name: String,
    /// Longest prefix first, so the first match is the longest.
    prefixes: Vec<(String, String)>,
    names: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DistrictsError {
    #[error("line {0}: give prefix,code,name")]
    Shape(usize),
    #[error("line {0}: a code is 1 to 20 letters, digits or hyphens (not `unknown` or `other`)")]
    Code(usize),
    #[error("line {line}: the prefix `{prefix}` is listed twice")]
    Duplicate { line: usize, prefix: String },
    #[error("line {line}: the code `{code}` has two names")]
    TwoNames { line: usize, code: String },
    #[error("the table lists no district")]
    Empty,
}

impl Districts {
    /// Reads the CSV (`prefix,code,name` with that header; `#` lines are comments). Prefixes are
    /// written after the city's name (`大聖寺南町`, not `石川県加賀市大聖寺南町`).
    pub fn parse(text: &str, city_name: &str) -> Result<Self, DistrictsError> {
        let mut prefixes: Vec<(String, String)> = Vec::new();
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let raw = raw.trim();
            if raw.is_empty() || raw.starts_with('#') || raw == "prefix,code,name" {
                continue;
            }
            let fields: Vec<&str> = raw.split(',').map(str::trim).collect();
            let [prefix, code, name] = fields[..] else {
                return Err(DistrictsError::Shape(line));
            };
            let prefix = normalize(prefix);
            if prefix.is_empty() || name.is_empty() {
                return Err(DistrictsError::Shape(line));
            }
            let valid_code = (1..=20).contains(&code.len())
                && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && code != UNKNOWN
                && code != OTHER;
            if !valid_code {
                return Err(DistrictsError::Code(line));
            }
            if prefixes.iter().any(|(known, _)| *known == prefix) {
                return Err(DistrictsError::Duplicate { line, prefix });
            }
            if names.get(code).is_some_and(|known| known != name) {
                return Err(DistrictsError::TwoNames {
                    line,
                    code: code.to_owned(),
                });
            }
            names.insert(code.to_owned(), name.to_owned());
            prefixes.push((prefix, code.to_owned()));
        }
        if prefixes.is_empty() {
            return Err(DistrictsError::Empty);
        }
        prefixes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.chars().count()));
        Ok(Self {
            city_name: normalize(city_name),
            prefixes,
            names,
        })
    }

    /// The code of an address in the city: the longest listed prefix of what follows the city's
    /// name. None for an address elsewhere or in no listed district.
    pub fn code_of(&self, address: &str) -> Option<&str> {
        let address = normalize(address);
        let start = address.find(&self.city_name)? + self.city_name.len();
        let rest = &address[start..];
        self.prefixes
            .iter()
            .find(|(prefix, _)| rest.starts_with(prefix.as_str()))
            .map(|(_, code)| code.as_str())
    }
}

/// Full-width letters, digits and signs to ASCII, hyphen-like dashes to `-`, spaces removed: the
/// card writes `大聖寺南町ニ４１`, a provider may write `大聖寺南町ニ41` or `大聖寺南町 ニ-41`.
pub fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFF01 + 0x21).unwrap_or(c),
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            _ => c,
        })
        .collect()
}

/// A birth date as the card (`[era digit]YYYYMMDD`) or an OpenID Provider (`YYYY-MM-DD`)
/// writes it.
pub fn birth_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date);
    }
    let digits = match text.len() {
        9 if text.chars().all(|c| c.is_ascii_digit()) => &text[1..],
        8 if text.chars().all(|c| c.is_ascii_digit()) => text,
        _ => return None,
    };
    NaiveDate::parse_from_str(digits, "%Y%m%d").ok()
}

/// The 10-year band of the age in full years on `on`: `0-9`, `10-19`, …, `80-89`, `90+`.
/// None for a birth date after `on`.
pub fn age_band(born: NaiveDate, on: NaiveDate) -> Option<String> {
    if born > on {
        return None;
    }
    let birthday_passed = (on.month(), on.day()) >= (born.month(), born.day());
    let age = on.year() - born.year() - i32::from(!birthday_passed);
    let from = (age / 10) * 10;
    Some(if from >= 90 {
        "90+".to_owned()
    } else {
        format!("{from}-{}", from + 9)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn facts(address: Option<&str>, birth: Option<&str>) -> BasicFacts {
        BasicFacts {
            address: address.map(str::to_owned),
            birth_date: birth.map(str::to_owned),
            ..BasicFacts::default()
        }
    }

    const TABLE: &str = "prefix,code,name\n\
        # a comment\n\
        大聖寺,0100-00,大聖寺\n\
        大聖寺南町,0110-00,大聖寺南町\n\
        山代温泉１９区,0320-19,山代温泉19区\n\
        山代温泉,0320-00,山代温泉\n";

    fn districts() -> Districts {
        Districts::parse(TABLE, "加賀市").unwrap()
    }

    #[test]
    fn the_longest_prefix_after_the_city_name_wins() {
        let table = districts();
        assert_eq!(
            table.code_of("石川県加賀市大聖寺南町ニ４１"),
            Some("0110-00")
        );
        assert_eq!(
            table.code_of("石川県加賀市大聖寺東町２丁目"),
            Some("0100-00")
        );
        // Full-width and half-width digits, spaces: the same prefix.
        assert_eq!(table.code_of("加賀市 山代温泉19区 5"), Some("0320-19"));
        assert_eq!(
            table.code_of("石川県加賀市山代温泉万松園通"),
            Some("0320-00")
        );
        // Not in the city, or in no listed district.
        assert_eq!(table.code_of("石川県小松市大聖寺南町１"), None);
        assert_eq!(table.code_of("石川県加賀市作見町"), None);
    }

    #[test]
    fn district_derivation_stores_the_code_or_unknown_never_the_address() {
        let breakdown = Breakdown::District(districts());
        let on = day("2026-12-06");
        let derived = breakdown.derive(
            Some(&facts(
                Some("石川県加賀市大聖寺南町ニ４１"),
                Some("19850401"),
            )),
            on,
        );
        assert_eq!(
            derived,
            Derived {
                district_code: Some("0110-00".to_owned()),
                age_band: None
            }
        );
        assert_eq!(
            breakdown
                .derive(Some(&facts(None, None)), on)
                .district_code
                .as_deref(),
            Some(UNKNOWN)
        );
        assert_eq!(
            breakdown.derive(None, on).district_code.as_deref(),
            Some(UNKNOWN)
        );
        assert_eq!(breakdown.name_of("0110-00").ja, "大聖寺南町");
    }

    #[test]
    fn age_bands_count_full_years_on_the_submit_date() {
        let breakdown = Breakdown::AgeBand;
        let band = |birth: &str, on: &str| {
            breakdown.derive(Some(&facts(Some("加賀市"), Some(birth))), day(on))
        };
        // The card writes an era digit before the Gregorian date.
        assert_eq!(
            band("319960407", "2026-04-06").age_band.as_deref(),
            Some("20-29")
        );
        assert_eq!(
            band("319960407", "2026-04-07").age_band.as_deref(),
            Some("30-39")
        );
        assert_eq!(
            band("2020-01-01", "2026-12-06").age_band.as_deref(),
            Some("0-9")
        );
        assert_eq!(
            band("1920-01-01", "2026-12-06").age_band.as_deref(),
            Some("90+")
        );
        assert_eq!(
            band("not a date", "2026-12-06").age_band.as_deref(),
            Some(UNKNOWN)
        );
        assert_eq!(
            band("2030-01-01", "2026-12-06").age_band.as_deref(),
            Some(UNKNOWN)
        );
        assert_eq!(band("1990-05-05", "2026-12-06").district_code, None);
        assert_eq!(breakdown.name_of("90+").ja, "90歳以上");
    }

    #[test]
    fn nothing_is_derived_when_the_city_has_not_opted_in() {
        let all = facts(Some("石川県加賀市大聖寺南町ニ４１"), Some("19850401"));
        assert_eq!(
            Breakdown::None.derive(Some(&all), day("2026-12-06")),
            Derived::default()
        );
    }

    #[test]
    fn a_bad_table_is_refused_with_its_line() {
        assert_eq!(
            Districts::parse("prefix,code,name\n", "加賀市").unwrap_err(),
            DistrictsError::Empty
        );
        assert_eq!(
            Districts::parse("大聖寺,0100\n", "加賀市").unwrap_err(),
            DistrictsError::Shape(1)
        );
        assert_eq!(
            Districts::parse("大聖寺,unknown,x\n", "加賀市").unwrap_err(),
            DistrictsError::Code(1)
        );
        assert_eq!(
            Districts::parse("大聖寺,other,x\n", "加賀市").unwrap_err(),
            DistrictsError::Code(1)
        );
        assert!(matches!(
            Districts::parse("大聖寺,1,a\n大聖寺,2,b\n", "加賀市").unwrap_err(),
            DistrictsError::Duplicate { line: 2, .. }
        ));
    }

    #[test]
    fn the_shipped_sample_table_parses() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/districts.csv"))
                .unwrap();
        let table = Districts::parse(&text, "加賀市").unwrap();
        assert!(table.code_of("石川県加賀市大聖寺南町ニ４１").is_some());
    }
}
