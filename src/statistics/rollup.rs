//! Folding application events into the rollup tables, past a watermark.
//!
//! Each pass takes the watermark row with `FOR UPDATE SKIP LOCKED` (a second worker finds it
//! taken and does nothing), reads the next batch of events, adds their counts to the rollups
//! and moves the watermark, all in one transaction: a batch is counted once or not at all, and
//! a range already folded is never read again. Processing time is computed here, in Rust,
//! because business days come from the configured calendar.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Bool, Date, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::histogram::Histogram;
use crate::calendar::BusinessCalendar;
use crate::db::DbError;
use crate::forms::Catalog;

/// Events read per transaction.
pub const BATCH: i64 = 5000;

/// The city's date of an instant (Japan has no daylight saving time).
pub fn city_date(at: DateTime<Utc>) -> NaiveDate {
    (at + chrono::Duration::hours(9)).date_naive()
}

pub fn month_of(date: NaiveDate) -> NaiveDate {
    date.with_day(1).unwrap_or(date)
}

/// One status change of an application's history.
#[derive(Debug, Clone)]
pub struct Change {
    pub from: Option<String>,
    pub to: String,
    pub on: NaiveDate,
}

/// Whether a change is the receipt: the first entry into `submitted` (at once, or when the fee
/// due at submission was paid).
pub fn is_receipt(change: &Change) -> bool {
    change.to == "submitted" && matches!(change.from.as_deref(), None | Some("awaiting_payment"))
}

/// Business days from receipt to the decision that ends `history`, the days with the resident
/// (returned until submitted again) not counted: the statutory clock. None without a receipt.
pub fn business_days_taken(calendar: &BusinessCalendar, history: &[Change]) -> Option<u32> {
    let received = history.iter().find(|change| is_receipt(change))?.on;
    let decided = history.last()?.on;
    let mut paused = 0;
    let mut returned_on: Option<NaiveDate> = None;
    for change in history {
        if change.to == "returned" {
            returned_on = Some(change.on);
        } else if let Some(since) = returned_on.take() {
            paused += calendar.business_days_between(since, change.on);
        }
    }
    Some(
        calendar
            .business_days_between(received, decided)
            .saturating_sub(paused),
    )
}

#[derive(QueryableByName)]
struct Watermark {
    #[diesel(sql_type = BigInt)]
    last_event_id: i64,
}

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = SqlUuid)]
    submission_id: Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    from_status: Option<String>,
    #[diesel(sql_type = Text)]
    to_status: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    procedure_id: String,
    #[diesel(sql_type = Text)]
    division: String,
    #[diesel(sql_type = Bool)]
    signed: bool,
    /// The opt-in breakdown: `district` or `age_band` and its value, if stored at submit.
    #[diesel(sql_type = Nullable<Text>)]
    breakdown_kind: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    breakdown_value: Option<String>,
}

#[derive(QueryableByName)]
struct HistoryRow {
    #[diesel(sql_type = SqlUuid)]
    submission_id: Uuid,
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Nullable<Text>)]
    from_status: Option<String>,
    #[diesel(sql_type = Text)]
    to_status: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct MonthDelta {
    received: i64,
    card_signed: i64,
    returned: i64,
    withdrawn: i64,
    completed: i64,
    rejected: i64,
    with_standard: i64,
    within_standard: i64,
    histogram: Histogram,
}

/// What one refresh did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    pub events: usize,
    pub batches: usize,
    /// Another worker held the watermark: nothing done.
    pub busy: bool,
}

/// Folds every settled event past the watermark into the rollups, batch by batch, then records
/// today's overdue snapshot.
pub async fn refresh(
    connection: &mut AsyncPgConnection,
    catalog: &Catalog,
    calendar: &BusinessCalendar,
    settle_seconds: i64,
) -> Result<Refreshed, DbError> {
    let mut refreshed = Refreshed::default();
    loop {
        let batch = connection
            .transaction::<Option<usize>, DbError, _>(|connection| {
                Box::pin(fold_batch(connection, catalog, calendar, settle_seconds))
            })
            .await?;
        match batch {
            None => {
                refreshed.busy = true;
                return Ok(refreshed);
            }
            Some(0) => break,
            Some(events) => {
                refreshed.events += events;
                refreshed.batches += 1;
            }
        }
    }
    connection
        .transaction::<(), DbError, _>(|connection| Box::pin(snapshot_overdue(connection)))
        .await?;
    Ok(refreshed)
}

/// One batch. None when another worker holds the watermark.
async fn fold_batch(
    connection: &mut AsyncPgConnection,
    catalog: &Catalog,
    calendar: &BusinessCalendar,
    settle_seconds: i64,
) -> Result<Option<usize>, DbError> {
    let watermark: Option<Watermark> =
        diesel::sql_query("SELECT last_event_id FROM statistics_watermark FOR UPDATE SKIP LOCKED")
            .get_result(connection)
            .await
            .map(Some)
            .or_else(|error| match error {
                diesel::result::Error::NotFound => Ok(None),
                other => Err(DbError::classify(other)),
            })?;
    let Some(watermark) = watermark else {
        return Ok(None);
    };
    // Stop before the first event that has not settled: ids are given out before commit, so a
    // younger id may still be joined by an older, uncommitted one.
    let events: Vec<EventRow> = diesel::sql_query(
        "WITH unsettled AS (
             SELECT min(id) AS id FROM submission_events
              WHERE id > $1 AND created_at >= now() - make_interval(secs => $2::double precision))
         SELECT e.id, e.submission_id, e.from_status, e.to_status, e.created_at,
                s.procedure_id, s.division,
                (e.to_status = 'submitted' AND EXISTS (
                    SELECT 1 FROM submission_signatures g WHERE g.submission_id = e.submission_id)) AS signed,
                CASE WHEN s.district_code IS NOT NULL THEN 'district'
                     WHEN s.age_band IS NOT NULL THEN 'age_band' END AS breakdown_kind,
                coalesce(s.district_code, s.age_band) AS breakdown_value
           FROM submission_events e
           JOIN submissions s ON s.id = e.submission_id
          CROSS JOIN unsettled
          WHERE e.id > $1 AND (unsettled.id IS NULL OR e.id < unsettled.id)
          ORDER BY e.id
          LIMIT $3",
    )
    .bind::<BigInt, _>(watermark.last_event_id)
    .bind::<BigInt, _>(settle_seconds)
    .bind::<BigInt, _>(BATCH)
    .load(connection)
    .await
    .map_err(DbError::classify)?;
    let Some(last) = events.last().map(|event| event.id) else {
        return Ok(Some(0));
    };

    let decided: Vec<Uuid> = events
        .iter()
        .filter(|event| matches!(event.to_status.as_str(), "completed" | "rejected"))
        .map(|event| event.submission_id)
        .collect();
    let histories: Vec<HistoryRow> = if decided.is_empty() {
        Vec::new()
    } else {
        diesel::sql_query(
            "SELECT submission_id, id, from_status, to_status, created_at
               FROM submission_events WHERE submission_id = ANY($1) ORDER BY submission_id, id",
        )
        .bind::<Array<SqlUuid>, _>(&decided)
        .load(connection)
        .await
        .map_err(DbError::classify)?
    };
    let mut by_submission: BTreeMap<Uuid, Vec<(i64, Change)>> = BTreeMap::new();
    for row in histories {
        by_submission.entry(row.submission_id).or_default().push((
            row.id,
            Change {
                from: row.from_status,
                to: row.to_status,
                on: city_date(row.created_at),
            },
        ));
    }

    let mut months: BTreeMap<(NaiveDate, String, String), MonthDelta> = BTreeMap::new();
    let mut days: BTreeMap<(NaiveDate, String, String), i64> = BTreeMap::new();
    let mut breakdowns: BTreeMap<(NaiveDate, String, String, String, String), i64> =
        BTreeMap::new();
    for event in &events {
        let change = Change {
            from: event.from_status.clone(),
            to: event.to_status.clone(),
            on: city_date(event.created_at),
        };
        let key = (
            month_of(change.on),
            event.procedure_id.clone(),
            event.division.clone(),
        );
        let delta = months.entry(key).or_default();
        match change.to.as_str() {
            "submitted" if is_receipt(&change) => {
                delta.received += 1;
                delta.card_signed += i64::from(event.signed);
                *days
                    .entry((
                        change.on,
                        event.procedure_id.clone(),
                        event.division.clone(),
                    ))
                    .or_default() += 1;
                if let (Some(kind), Some(value)) = (&event.breakdown_kind, &event.breakdown_value) {
                    *breakdowns
                        .entry((
                            month_of(change.on),
                            event.procedure_id.clone(),
                            event.division.clone(),
                            kind.clone(),
                            value.clone(),
                        ))
                        .or_default() += 1;
                }
            }
            "returned" => delta.returned += 1,
            "withdrawn" => delta.withdrawn += 1,
            "completed" | "rejected" => {
                if change.to == "completed" {
                    delta.completed += 1;
                } else {
                    delta.rejected += 1;
                }
                // The history up to this decision (a later one cannot exist, but be exact).
                let history: Vec<Change> = by_submission
                    .get(&event.submission_id)
                    .map(|rows| {
                        rows.iter()
                            .filter(|(id, _)| *id <= event.id)
                            .map(|(_, change)| change.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(taken) = business_days_taken(calendar, &history) {
                    delta.histogram.record(taken);
                    let standard = catalog
                        .procedures
                        .get(&event.procedure_id)
                        .map_or(0, |p| p.definition.processing_days);
                    if standard > 0 {
                        delta.with_standard += 1;
                        delta.within_standard += i64::from(taken <= standard);
                    }
                }
            }
            _ => {}
        }
    }

    // One statement per table, whatever the number of keys: the rows travel as one JSON array.
    let monthly: Vec<serde_json::Value> = months
        .into_iter()
        .map(|((month, procedure, division), delta)| {
            serde_json::json!({
                "month": month, "procedure": procedure, "division": division,
                "received": delta.received, "card_signed": delta.card_signed,
                "returned": delta.returned, "withdrawn": delta.withdrawn,
                "completed": delta.completed, "rejected": delta.rejected,
                "with_standard": delta.with_standard, "within_standard": delta.within_standard,
                "days": delta.histogram.counts(),
            })
        })
        .collect();
    diesel::sql_query(
        "INSERT INTO statistics_monthly AS m (month, procedure_id, division, received, card_signed,
             returned, withdrawn, completed, rejected, with_standard, within_standard, processing_days)
         SELECT (r->>'month')::date, r->>'procedure', r->>'division', (r->>'received')::bigint,
                (r->>'card_signed')::bigint, (r->>'returned')::bigint, (r->>'withdrawn')::bigint,
                (r->>'completed')::bigint, (r->>'rejected')::bigint, (r->>'with_standard')::bigint,
                (r->>'within_standard')::bigint,
                ARRAY(SELECT t.d::bigint FROM jsonb_array_elements_text(r->'days') WITH ORDINALITY AS t(d, i)
                       ORDER BY t.i)
           FROM jsonb_array_elements($1) AS r
         ON CONFLICT (month, procedure_id, division) DO UPDATE SET
             received = m.received + excluded.received,
             card_signed = m.card_signed + excluded.card_signed,
             returned = m.returned + excluded.returned,
             withdrawn = m.withdrawn + excluded.withdrawn,
             completed = m.completed + excluded.completed,
             rejected = m.rejected + excluded.rejected,
             with_standard = m.with_standard + excluded.with_standard,
             within_standard = m.within_standard + excluded.within_standard,
             processing_days = statistics_add_histograms(m.processing_days, excluded.processing_days)",
    )
    .bind::<Jsonb, _>(serde_json::Value::Array(monthly))
    .execute(connection)
    .await
    .map_err(DbError::classify)?;
    let daily: Vec<serde_json::Value> = days
        .into_iter()
        .map(|((day, procedure, division), received)| {
            serde_json::json!({"day": day, "procedure": procedure, "division": division, "received": received})
        })
        .collect();
    diesel::sql_query(
        "INSERT INTO statistics_daily AS d (day, procedure_id, division, received)
         SELECT (r->>'day')::date, r->>'procedure', r->>'division', (r->>'received')::bigint
           FROM jsonb_array_elements($1) AS r
         ON CONFLICT (day, procedure_id, division) DO UPDATE SET received = d.received + excluded.received",
    )
    .bind::<Jsonb, _>(serde_json::Value::Array(daily))
    .execute(connection)
    .await
    .map_err(DbError::classify)?;
    if !breakdowns.is_empty() {
        let rows: Vec<serde_json::Value> = breakdowns
            .into_iter()
            .map(|((month, procedure, division, kind, value), received)| {
                serde_json::json!({"month": month, "procedure": procedure, "division": division,
                                   "kind": kind, "value": value, "received": received})
            })
            .collect();
        diesel::sql_query(
            "INSERT INTO statistics_breakdown_monthly AS b (month, procedure_id, division, kind, value, received)
             SELECT (r->>'month')::date, r->>'procedure', r->>'division', r->>'kind', r->>'value',
                    (r->>'received')::bigint
               FROM jsonb_array_elements($1) AS r
             ON CONFLICT (month, procedure_id, division, kind, value)
             DO UPDATE SET received = b.received + excluded.received",
        )
        .bind::<Jsonb, _>(serde_json::Value::Array(rows))
        .execute(connection)
        .await
        .map_err(DbError::classify)?;
    }
    diesel::sql_query("UPDATE statistics_watermark SET last_event_id = $1, updated_at = now()")
        .bind::<BigInt, _>(last)
        .execute(connection)
        .await
        .map_err(DbError::classify)?;
    Ok(Some(events.len()))
}

/// Open applications past their due date now, as today's row (the day's last pass leaves the
/// day's-end figure). Under the watermark lock, so two workers do not interleave.
async fn snapshot_overdue(connection: &mut AsyncPgConnection) -> Result<(), DbError> {
    let locked: Vec<Watermark> =
        diesel::sql_query("SELECT last_event_id FROM statistics_watermark FOR UPDATE SKIP LOCKED")
            .load(connection)
            .await
            .map_err(DbError::classify)?;
    if locked.is_empty() {
        return Ok(());
    }
    let today = city_date(Utc::now());
    // A new snapshot is a new generation of the data (`super::cache`).
    diesel::sql_query("UPDATE statistics_watermark SET updated_at = now()")
        .execute(connection)
        .await
        .map_err(DbError::classify)?;
    diesel::sql_query("UPDATE statistics_daily SET overdue = 0 WHERE day = $1 AND overdue <> 0")
        .bind::<Date, _>(today)
        .execute(connection)
        .await
        .map_err(DbError::classify)?;
    diesel::sql_query(
        "INSERT INTO statistics_daily (day, procedure_id, division, overdue)
         SELECT $1, procedure_id, division, count(*) FROM submissions
          WHERE status IN ('submitted', 'in_progress') AND due_date < $1
          GROUP BY procedure_id, division
         ON CONFLICT (day, procedure_id, division) DO UPDATE SET overdue = excluded.overdue",
    )
    .bind::<Date, _>(today)
    .execute(connection)
    .await
    .map_err(DbError::classify)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn change(from: Option<&str>, to: &str, on: &str) -> Change {
        Change {
            from: from.map(str::to_owned),
            to: to.to_owned(),
            on: day(on),
        }
    }

    #[test]
    fn days_taken_count_business_days_after_receipt() {
        let calendar = BusinessCalendar::new([day("2026-11-23")]);
        // Fri 2026-11-20 → Wed 11-25: Mon 23 is a holiday, so 24 and 25 count.
        let history = [
            change(None, "submitted", "2026-11-20"),
            change(Some("submitted"), "in_progress", "2026-11-24"),
            change(Some("in_progress"), "completed", "2026-11-25"),
        ];
        assert_eq!(business_days_taken(&calendar, &history), Some(2));
    }

    #[test]
    fn the_paused_clock_is_not_counted() {
        let calendar = BusinessCalendar::default();
        // Mon 11-02 received; returned Wed 11-04; back Mon 11-09 (Thu, Fri, Mon paused);
        // completed Wed 11-11. Seven business days in all, three of them paused.
        let history = [
            change(None, "submitted", "2026-11-02"),
            change(Some("submitted"), "in_progress", "2026-11-03"),
            change(Some("in_progress"), "returned", "2026-11-04"),
            change(Some("returned"), "submitted", "2026-11-09"),
            change(Some("submitted"), "completed", "2026-11-11"),
        ];
        assert_eq!(business_days_taken(&calendar, &history), Some(4));
    }

    #[test]
    fn receipt_after_payment_and_no_receipt() {
        let calendar = BusinessCalendar::default();
        let paid = [
            change(None, "awaiting_payment", "2026-11-02"),
            change(Some("awaiting_payment"), "submitted", "2026-11-03"),
            change(Some("submitted"), "rejected", "2026-11-05"),
        ];
        assert_eq!(business_days_taken(&calendar, &paid), Some(2));
        assert!(!is_receipt(&change(
            Some("returned"),
            "submitted",
            "2026-11-03"
        )));
        assert_eq!(
            business_days_taken(&calendar, &[change(None, "awaiting_payment", "2026-11-02")]),
            None
        );
    }

    #[test]
    fn city_dates_are_japan_time() {
        let late = DateTime::parse_from_rfc3339("2026-11-30T15:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(city_date(late), day("2026-12-01"));
        assert_eq!(month_of(day("2026-12-17")), day("2026-12-01"));
    }
}
