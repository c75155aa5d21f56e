//! Counter (窓口) counts: applications the city took on paper, entered monthly per procedure by
//! the staff of the procedure's division, so the online share can be worked out. A later entry
//! for the same month and procedure replaces the earlier one.

use chrono::{Datelike, NaiveDate};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Date, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;

use crate::forms::Catalog;
use crate::messages::Localized;
use crate::queues::{QueueError, Viewer};

/// The largest count accepted: more than any city's counter takes in a month.
pub const MAX_COUNT: i64 = 1_000_000;

/// The procedures whose counter counts the viewer may enter: those of their divisions.
pub fn procedures_for<'a>(
    catalog: &'a Catalog,
    viewer: Viewer<'_>,
) -> Vec<(&'a str, &'a Localized)> {
    let divisions = viewer.divisions();
    catalog
        .procedures
        .values()
        .filter(|p| divisions.contains(&p.definition.division))
        .map(|p| (p.definition.id.as_str(), &p.definition.title))
        .collect()
}

/// Checks a month (`YYYY-MM`, not in the future) and a count.
pub fn parse(month: &str, count: &str, today: NaiveDate) -> Result<(NaiveDate, i64), QueueError> {
    let mut errors = Vec::new();
    let parsed_month = NaiveDate::parse_from_str(&format!("{}-01", month.trim()), "%Y-%m-%d")
        .ok()
        .filter(|m| m.year() >= 2000 && *m <= today);
    if parsed_month.is_none() {
        errors.push(crate::messages::FieldError {
            path: "month".to_owned(),
            code: "invalid_month".to_owned(),
            message: Localized::new(
                "月は 2000-01 から今月までを YYYY-MM の形で入力してください。",
                "Give a month from 2000-01 to this month as YYYY-MM.",
            ),
        });
    }
    let parsed_count = count
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|c| (0..=MAX_COUNT).contains(c));
    if parsed_count.is_none() {
        errors.push(crate::messages::FieldError {
            path: "count".to_owned(),
            code: "invalid_count".to_owned(),
            message: Localized::new(
                "件数は 0 から 1000000 までの整数で入力してください。",
                "Give a whole number from 0 to 1000000.",
            ),
        });
    }
    match (parsed_month, parsed_count) {
        (Some(month), Some(count)) => Ok((month, count)),
        _ => Err(QueueError::Invalid(errors)),
    }
}

/// Records a month's counter count for a procedure of one of the viewer's divisions (another
/// division's procedure is not found, as in the queues).
pub async fn record(
    connection: &mut AsyncPgConnection,
    catalog: &Catalog,
    viewer: Viewer<'_>,
    procedure_id: &str,
    month: NaiveDate,
    count: i64,
) -> Result<(), QueueError> {
    let procedure = catalog
        .procedures
        .get(procedure_id)
        .ok_or(QueueError::NotFound)?;
    let division = &procedure.definition.division;
    if viewer.role_in(division).is_none() {
        return Err(QueueError::NotFound);
    }
    let divisions = viewer.divisions();
    diesel::sql_query(
        "INSERT INTO statistics_counter_counts (month, procedure_id, division, count, entered_by)
         SELECT $1, $2, $3, $4, $5 WHERE $3 = ANY($6)
         ON CONFLICT (month, procedure_id) DO UPDATE
            SET count = excluded.count, division = excluded.division,
                entered_by = excluded.entered_by, entered_at = now()",
    )
    .bind::<Date, _>(month.with_day(1).unwrap_or(month))
    .bind::<Text, _>(procedure_id)
    .bind::<Text, _>(division)
    .bind::<BigInt, _>(count)
    .bind::<SqlUuid, _>(viewer.id)
    .bind::<Array<Text>, _>(&divisions)
    .execute(connection)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, QueryableByName)]
pub struct Entered {
    #[diesel(sql_type = Date)]
    pub month: NaiveDate,
    #[diesel(sql_type = Text)]
    pub procedure_id: String,
    #[diesel(sql_type = BigInt)]
    pub count: i64,
}

/// The counts entered for the viewer's divisions, newest month first.
pub async fn entered(
    connection: &mut AsyncPgConnection,
    viewer: Viewer<'_>,
    limit: i64,
) -> Result<Vec<Entered>, QueueError> {
    let divisions = viewer.divisions();
    Ok(diesel::sql_query(
        "SELECT month, procedure_id, count FROM statistics_counter_counts
          WHERE division = ANY($1) ORDER BY month DESC, procedure_id LIMIT $2",
    )
    .bind::<Array<Text>, _>(&divisions)
    .bind::<BigInt, _>(limit)
    .load(connection)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_counts_are_checked() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        assert_eq!(
            parse("2026-11", "42", today).unwrap(),
            (NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(), 42)
        );
        assert!(parse("2026-12", "0", today).is_ok());
        assert!(parse("2027-01", "1", today).is_err(), "the future");
        assert!(parse("1999-12", "1", today).is_err());
        assert!(parse("2026-13", "1", today).is_err());
        match parse("x", "-1", today) {
            Err(QueueError::Invalid(errors)) => assert_eq!(errors.len(), 2),
            other => panic!("{other:?}"),
        }
        assert!(parse("2026-11", "1000001", today).is_err());
    }
}
