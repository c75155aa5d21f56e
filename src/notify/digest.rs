//! The daily overdue digest: one email per division listing the reference numbers of
//! applications past their statutory processing period (標準処理期間), at most once a day.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::NoticeData;
use crate::db::schema::outbox;
use crate::forms::Catalog;

/// How many reference numbers one digest lists; the rest are counted.
const LISTED: usize = 50;

#[derive(QueryableByName)]
struct Overdue {
    #[diesel(sql_type = Text)]
    division: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
    #[diesel(sql_type = Array<Text>)]
    references: Vec<String>,
}

/// Midnight in Japan of `day`, as an instant.
fn start_of_day_in_japan(day: NaiveDate) -> chrono::DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    Utc.from_utc_datetime(&midnight) - Duration::hours(9)
}

/// Writes today's digest for every division with overdue work that has not had one today.
/// Returns how many digests were queued. Several workers may run this at once: a transaction-scoped
/// advisory lock makes them take turns, so the "not had one today" check and the insert are one step.
pub async fn enqueue_overdue_digests(
    connection: &mut AsyncPgConnection,
    catalog: &Catalog,
    public_url: &str,
    today: NaiveDate,
) -> Result<usize, diesel::result::Error> {
    use diesel_async::AsyncConnection;
    connection
        .transaction(|connection| {
            Box::pin(async move {
                diesel::sql_query(
                    "SELECT pg_advisory_xact_lock(hashtextextended('division_overdue_digest', 0))",
                )
                .execute(connection)
                .await?;
                enqueue_unlocked(connection, catalog, public_url, today).await
            })
        })
        .await
}

async fn enqueue_unlocked(
    connection: &mut AsyncPgConnection,
    catalog: &Catalog,
    public_url: &str,
    today: NaiveDate,
) -> Result<usize, diesel::result::Error> {
    let overdue: Vec<Overdue> = diesel::sql_query(
        "SELECT division, count(*) AS count, \
                (array_agg(reference ORDER BY due_date, submitted_at))[1:$2] AS references \
         FROM submissions \
         WHERE status IN ('submitted', 'in_progress') AND due_date < $1 \
         GROUP BY division ORDER BY division",
    )
    .bind::<Date, _>(today)
    .bind::<diesel::sql_types::Integer, _>(LISTED as i32)
    .load(connection)
    .await?;
    let since = start_of_day_in_japan(today);
    let mut queued = 0;
    for row in overdue {
        let Some(division) = catalog.organisation.divisions.get(&row.division) else {
            continue;
        };
        #[derive(QueryableByName)]
        struct Sent {
            #[diesel(sql_type = BigInt)]
            count: i64,
        }
        let already: Sent = diesel::sql_query(
            "SELECT count(*) AS count FROM outbox \
             WHERE template = 'division_overdue' AND recipient = $1 AND created_at >= $2",
        )
        .bind::<Text, _>(&division.email)
        .bind::<Timestamptz, _>(since)
        .get_result(connection)
        .await?;
        if already.count > 0 {
            continue;
        }
        let data = NoticeData {
            event: "overdue".to_owned(),
            reference: row.references.join(", "),
            procedure_title_ja: String::new(),
            procedure_title_en: String::new(),
            status: row.count.to_string(),
            link: format!("{public_url}/staff/queues/{}?overdue=true", row.division),
            payment: None,
        };
        diesel::insert_into(outbox::table)
            .values((
                outbox::id.eq(Uuid::now_v7()),
                outbox::template.eq("division_overdue"),
                outbox::language.eq("ja"),
                outbox::recipient.eq(&division.email),
                outbox::payload.eq(serde_json::to_value(&data).unwrap_or_default()),
            ))
            .execute(connection)
            .await?;
        queued += 1;
    }
    Ok(queued)
}
