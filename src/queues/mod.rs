//! Division queues for staff: which queues a staff member may see (with counts), a queue page
//! (filters, keyset pagination) and claiming the next item safely under concurrency. Processing
//! one application (open, notes, transitions, reveal, diff, attachments) is in [`processing`].
//!
//! Permission is part of every query: each statement's WHERE carries
//! `division = ANY(<the caller's divisions>)`, so a page costs one SELECT whatever the size of
//! the catalog or of the table, and another division's application is simply not found (404).

pub mod diff;
pub mod processing;
pub mod saved_filters;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Date, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::DbError;
use crate::db::schema::submissions;
use crate::forms::Catalog;
use crate::forms::lint::city_today;
use crate::identity::staff::{Membership, Role};
use crate::messages::{FieldError, Localized};
use crate::submissions::lifecycle::{self, Action, Status};
use crate::submissions::{ActorKind, SubmissionError, record_event};

/// How many business days ahead counts as "due soon".
pub const DUE_SOON_BUSINESS_DAYS: u32 = 3;
/// The largest queue page.
pub const MAX_PAGE: i64 = 200;

/// The dates a filter or cursor may name: anything chrono parses (years ±262143) is not
/// something PostgreSQL or the service holds, and a query with it would fail in the database.
pub const EARLIEST_DATE: NaiveDate = date(1900, 1, 1);
pub const LATEST_DATE: NaiveDate = date(9999, 12, 31);

const fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("not a date"),
    }
}

fn date_in_range(path: &str, date: NaiveDate) -> Result<NaiveDate, QueueError> {
    if (EARLIEST_DATE..=LATEST_DATE).contains(&date) {
        return Ok(date);
    }
    Err(QueueError::field(
        path,
        "date_out_of_range",
        Localized::new(
            "日付は 1900-01-01 から 9999-12-31 までで指定してください。",
            "Give a date from 1900-01-01 to 9999-12-31.",
        ),
    ))
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Unknown, or another division's: the two are not told apart.
    #[error("not found")]
    NotFound,
    /// The caller's role in the division does not allow this.
    #[error("role does not allow this")]
    RoleRequired,
    /// Only the assignee (or a supervisor) may do this.
    #[error("not the assignee")]
    NotAssignee,
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// A My Number of a closed application: supervisors only.
    #[error("the application is closed")]
    RevealClosed,
    /// The staff member revealed as many My Numbers as an hour allows.
    #[error("too many reveals")]
    RevealLimit,
    /// A stored My Number does not open with the configured keys (a lost key): a 500.
    #[error("a sealed value cannot be opened")]
    Sealing(#[source] crate::submissions::sealing::SealError),
    #[error(transparent)]
    Submission(#[from] SubmissionError),
    #[error(transparent)]
    Database(#[from] DbError),
}

impl From<diesel::result::Error> for QueueError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Database(DbError::classify(error))
    }
}

impl QueueError {
    pub fn field(path: &str, code: &str, message: Localized) -> Self {
        Self::Invalid(vec![FieldError {
            path: path.to_owned(),
            code: code.to_owned(),
            message,
        }])
    }
}

/// The staff member asking, as the domain sees them (no HTTP types).
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub id: Uuid,
    pub memberships: &'a [Membership],
}

impl Viewer<'_> {
    pub fn divisions(&self) -> Vec<String> {
        self.memberships
            .iter()
            .map(|m| m.division.clone())
            .collect()
    }

    pub fn role_in(&self, division: &str) -> Option<Role> {
        self.memberships
            .iter()
            .find(|m| m.division == division)
            .map(|m| m.role)
    }
}

/// A queue and the division that owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRef {
    pub id: String,
    pub division: String,
    pub name: Localized,
}

/// The queues of `divisions`: each division's own queue (same id) and the extra queues the
/// catalog organisation gives it. Catalog-only, no database.
pub fn visible_queues(catalog: &Catalog, divisions: &[String]) -> Vec<QueueRef> {
    let organisation = &catalog.organisation;
    let mut queues = Vec::new();
    for division in divisions {
        queues.push(QueueRef {
            id: division.clone(),
            division: division.clone(),
            name: organisation.divisions.get(division).map_or_else(
                || Localized::new(division.clone(), division.clone()),
                |d| d.name.clone(),
            ),
        });
        for (id, extra) in &organisation.queues {
            if &extra.division == division {
                queues.push(QueueRef {
                    id: id.clone(),
                    division: division.clone(),
                    name: extra.name.clone(),
                });
            }
        }
    }
    queues
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueSummary {
    pub id: String,
    pub division: String,
    pub name: Localized,
    /// Submitted and not yet claimed (送信済).
    pub new: i64,
    pub in_progress: i64,
    /// With the resident for corrections; their clock is paused, so they are never overdue.
    pub returned: i64,
    /// Past the due date and still with the city (submitted or in progress).
    pub overdue: i64,
    /// Due within the next few business days and still with the city.
    pub due_soon: i64,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = Text)]
    queue: String,
    #[diesel(sql_type = Text)]
    division: String,
    #[diesel(sql_type = BigInt)]
    new: i64,
    #[diesel(sql_type = BigInt)]
    in_progress: i64,
    #[diesel(sql_type = BigInt)]
    returned: i64,
    #[diesel(sql_type = BigInt)]
    overdue: i64,
    #[diesel(sql_type = BigInt)]
    due_soon: i64,
}

/// The queues the viewer may see, with counts of open work, from ONE grouped query.
pub async fn queues_for(
    connection: &mut AsyncPgConnection,
    catalog: &Catalog,
    calendar: &crate::calendar::BusinessCalendar,
    viewer: Viewer<'_>,
) -> Result<Vec<QueueSummary>, QueueError> {
    let divisions = viewer.divisions();
    let today = city_today();
    let soon = calendar.add_business_days(today, DUE_SOON_BUSINESS_DAYS);
    let rows: Vec<CountRow> = diesel::sql_query(
        "SELECT queue, division,
                count(*) FILTER (WHERE status = 'submitted') AS new,
                count(*) FILTER (WHERE status = 'in_progress') AS in_progress,
                count(*) FILTER (WHERE status = 'returned') AS returned,
                count(*) FILTER (WHERE status IN ('submitted', 'in_progress') AND due_date < $2) AS overdue,
                count(*) FILTER (WHERE status IN ('submitted', 'in_progress')
                                   AND due_date >= $2 AND due_date <= $3) AS due_soon
           FROM submissions
          WHERE division = ANY($1) AND status IN ('submitted', 'in_progress', 'returned')
          GROUP BY queue, division",
    )
    .bind::<Array<Text>, _>(&divisions)
    .bind::<Date, _>(today)
    .bind::<Date, _>(soon)
    .load(connection)
    .await?;

    let mut summaries: Vec<QueueSummary> = visible_queues(catalog, &divisions)
        .into_iter()
        .map(|queue| QueueSummary {
            id: queue.id,
            division: queue.division,
            name: queue.name,
            new: 0,
            in_progress: 0,
            returned: 0,
            overdue: 0,
            due_soon: 0,
        })
        .collect();
    for row in rows {
        let position = summaries
            .iter()
            .position(|s| s.id == row.queue && s.division == row.division);
        let index = position.unwrap_or_else(|| {
            // A queue no longer in the catalog still holds work: show it under its id.
            summaries.push(QueueSummary {
                id: row.queue.clone(),
                division: row.division.clone(),
                name: Localized::new(row.queue.clone(), row.queue.clone()),
                new: 0,
                in_progress: 0,
                returned: 0,
                overdue: 0,
                due_soon: 0,
            });
            summaries.len() - 1
        });
        let summary = &mut summaries[index];
        summary.new = row.new;
        summary.in_progress = row.in_progress;
        summary.returned = row.returned;
        summary.overdue = row.overdue;
        summary.due_soon = row.due_soon;
    }
    Ok(summaries)
}

/// Whose items a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssigneeFilter {
    Me,
    Nobody,
    Staff(Uuid),
}

impl std::str::FromStr for AssigneeFilter {
    type Err = QueueError;

    fn from_str(text: &str) -> Result<Self, QueueError> {
        match text {
            "me" => Ok(Self::Me),
            "none" => Ok(Self::Nobody),
            other => other.parse().map(Self::Staff).map_err(|_| {
                QueueError::field(
                    "/assignee",
                    "invalid_option",
                    Localized::new(
                        "担当者は me・none・職員IDのいずれかで指定してください。",
                        "assignee is `me`, `none` or a staff id.",
                    ),
                )
            }),
        }
    }
}

/// Filters of a queue page; all optional.
#[derive(Debug, Clone, Default)]
pub struct PageFilter {
    pub status: Option<Status>,
    pub procedure: Option<String>,
    pub assignee: Option<AssigneeFilter>,
    /// true: only overdue items; false: only items that are not overdue.
    pub overdue: Option<bool>,
    /// Submitted on or after this date (city time).
    pub from: Option<NaiveDate>,
    /// Submitted on or before this date (city time).
    pub to: Option<NaiveDate>,
    /// Only items still with the city that fall due from today up to this date ("due soon").
    pub due_by: Option<NaiveDate>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// Where the previous page ended: `(submitted_at, id)` of its last row, opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub submitted_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        BASE64URL.encode(format!(
            "{}:{}",
            self.submitted_at.timestamp_micros(),
            self.id
        ))
    }

    pub fn decode(text: &str) -> Result<Self, QueueError> {
        let invalid = || {
            QueueError::field(
                "/cursor",
                "invalid_cursor",
                Localized::new(
                    "cursor が正しくありません。前のページの next_cursor をそのまま渡してください。",
                    "The cursor is not valid; pass the previous page's next_cursor unchanged.",
                ),
            )
        };
        let bytes = BASE64URL.decode(text).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (micros, id) = text.split_once(':').ok_or_else(invalid)?;
        let submitted_at = micros
            .parse()
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .filter(|at| (EARLIEST_DATE..=LATEST_DATE).contains(&at.date_naive()))
            .ok_or_else(invalid)?;
        let id = id.parse().map_err(|_| invalid())?;
        Ok(Self { submitted_at, id })
    }
}

/// One line of a queue page. No answers: lists never carry personal data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueItem {
    pub id: Uuid,
    pub reference: String,
    pub procedure_id: String,
    pub procedure_title: Localized,
    pub status: Status,
    pub submitted_at: DateTime<Utc>,
    pub due_date: Option<NaiveDate>,
    pub overdue: bool,
    pub assignee_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueuePage {
    pub items: Vec<QueueItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

type ItemRow = (
    Uuid,
    String,
    String,
    String,
    DateTime<Utc>,
    Option<NaiveDate>,
    Option<Uuid>,
);

/// Still with the city and past its due date (a returned application's clock is paused).
pub fn is_overdue(status: Status, due_date: Option<NaiveDate>, today: NaiveDate) -> bool {
    matches!(status, Status::Submitted | Status::InProgress) && due_date.is_some_and(|d| d < today)
}

fn item(catalog: &Catalog, today: NaiveDate, row: ItemRow) -> QueueItem {
    let (id, reference, procedure_id, status, submitted_at, due_date, assignee_id) = row;
    let status = Status::parse(&status).unwrap_or(Status::Submitted);
    QueueItem {
        id,
        reference,
        procedure_title: catalog.get(&procedure_id).map_or_else(
            || Localized::new(procedure_id.clone(), procedure_id.clone()),
            |p| p.definition.title.clone(),
        ),
        procedure_id,
        status,
        submitted_at,
        due_date,
        overdue: is_overdue(status, due_date, today),
        assignee_id,
    }
}

/// The start of a city-time day as an instant.
fn city_midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc() - chrono::Duration::hours(9)
}

/// A page of a queue, oldest first, as exactly ONE SELECT: filters, permission
/// (`division = ANY(…)`) and the keyset condition `(submitted_at, id) > cursor` are all in its
/// WHERE, so the cost does not grow with the catalog or with the page number.
pub async fn page(
    connection: &mut AsyncPgConnection,
    catalog: &Catalog,
    viewer: Viewer<'_>,
    queue: &str,
    filter: PageFilter,
) -> Result<QueuePage, QueueError> {
    let divisions = viewer.divisions();
    if !visible_queues(catalog, &divisions)
        .iter()
        .any(|q| q.id == queue)
    {
        return Err(QueueError::NotFound);
    }
    let limit = filter.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let cursor = filter.cursor.as_deref().map(Cursor::decode).transpose()?;
    let from = filter
        .from
        .map(|from| date_in_range("/from", from))
        .transpose()?;
    let to = filter.to.map(|to| date_in_range("/to", to)).transpose()?;
    let due_by = filter
        .due_by
        .map(|due_by| date_in_range("/due_by", due_by))
        .transpose()?;
    let today = city_today();
    const OPEN: [&str; 2] = ["submitted", "in_progress"];
    // `OPEN` as literals, not a bound array: the planner can then use the partial index
    // `submissions_open_page_idx` in a generic plan too (a bound `= ANY($1)` proves nothing).
    let open_literal = || sql::<Bool>("submissions.status IN ('submitted', 'in_progress')");

    let mut query = submissions::table
        .filter(submissions::queue.eq(queue))
        .filter(submissions::division.eq_any(&divisions))
        // Unpaid applications reach no queue (PAYMENTS: the application exists before money
        // moves, but staff work only on paid ones).
        .filter(submissions::status.ne_all(["awaiting_payment", "payment_expired"]))
        .into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(submissions::status.eq(status.as_str()));
    }
    if let Some(procedure) = &filter.procedure {
        query = query.filter(submissions::procedure_id.eq(procedure.clone()));
    }
    match filter.assignee {
        Some(AssigneeFilter::Me) => query = query.filter(submissions::assignee_id.eq(viewer.id)),
        Some(AssigneeFilter::Nobody) => query = query.filter(submissions::assignee_id.is_null()),
        Some(AssigneeFilter::Staff(id)) => query = query.filter(submissions::assignee_id.eq(id)),
        None => {}
    }
    match filter.overdue {
        Some(true) => {
            query = query
                .filter(open_literal())
                .filter(submissions::due_date.lt(today));
        }
        Some(false) => {
            query = query.filter(
                submissions::status
                    .ne_all(OPEN)
                    .or(submissions::due_date.is_null())
                    .or(submissions::due_date.ge(today)),
            );
        }
        None => {}
    }
    if let Some(due_by) = due_by {
        query = query
            .filter(open_literal())
            .filter(submissions::due_date.ge(today))
            .filter(submissions::due_date.le(due_by));
    }
    if let Some(from) = from {
        query = query.filter(submissions::submitted_at.ge(city_midnight(from)));
    }
    if let Some(to) = to.and_then(|to| to.succ_opt()) {
        query = query.filter(submissions::submitted_at.lt(city_midnight(to)));
    }
    if let Some(cursor) = cursor {
        // A row comparison, so PostgreSQL walks the (queue, submitted_at, id) index from the cursor.
        // The redundant `submitted_at >=` gives the planner a range it can estimate: without it,
        // at 1M rows it sometimes chose a 10–50 ms plan instead of 0.3 ms (docs/BENCHMARKS.md).
        query = query
            .filter(submissions::submitted_at.ge(cursor.submitted_at))
            .filter(
                sql::<Bool>("(submissions.submitted_at, submissions.id) > (")
                    .bind::<Timestamptz, _>(cursor.submitted_at)
                    .sql(", ")
                    .bind::<diesel::sql_types::Uuid, _>(cursor.id)
                    .sql(")"),
            );
    }
    let mut rows: Vec<ItemRow> = query
        .order((submissions::submitted_at.asc(), submissions::id.asc()))
        .limit(limit + 1)
        .select((
            submissions::id,
            submissions::reference,
            submissions::procedure_id,
            submissions::status,
            submissions::submitted_at,
            submissions::due_date,
            submissions::assignee_id,
        ))
        .load(connection)
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor =
        more.then(|| rows.last())
            .flatten()
            .map(|(id, _, _, _, submitted_at, _, _)| {
                Cursor {
                    submitted_at: *submitted_at,
                    id: *id,
                }
                .encode()
            });
    Ok(QueuePage {
        items: rows
            .into_iter()
            .map(|row| item(catalog, today, row))
            .collect(),
        next_cursor,
    })
}

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    reference: String,
    #[diesel(sql_type = Text)]
    procedure_id: String,
    #[diesel(sql_type = Timestamptz)]
    submitted_at: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Date>)]
    due_date: Option<NaiveDate>,
}

/// Gives the oldest unclaimed `submitted` item of `queue` to the viewer, or `None` when there
/// is none. One UPDATE picks and takes the row; `FOR UPDATE SKIP LOCKED` makes concurrent
/// claimers pass over a row another is taking instead of waiting for it, and the status re-check
/// in the outer WHERE makes a row someone else took in between impossible to take twice.
pub async fn claim(
    connection: &mut AsyncPgConnection,
    catalog: &Catalog,
    viewer: Viewer<'_>,
    queue: &str,
) -> Result<Option<QueueItem>, QueueError> {
    let divisions = viewer.divisions();
    if !visible_queues(catalog, &divisions)
        .iter()
        .any(|q| q.id == queue)
    {
        return Err(QueueError::NotFound);
    }
    let from = Status::Submitted;
    let to = lifecycle::next(from, Action::Start).ok_or(QueueError::Submission(
        SubmissionError::NotAllowed {
            from,
            action: Action::Start,
        },
    ))?;
    let staff_id = viewer.id;
    let queue = queue.to_owned();
    connection
        .transaction::<Option<QueueItem>, QueueError, _>(|connection| {
            Box::pin(async move {
                let claimed: Option<ClaimedRow> = diesel::sql_query(
                    "UPDATE submissions
                        SET status = $1, assignee_id = $2, updated_at = now()
                      WHERE status = $3 AND assignee_id IS NULL
                        AND id = (SELECT id FROM submissions
                                   WHERE queue = $4 AND division = ANY($5)
                                     AND status = $3 AND assignee_id IS NULL
                                   ORDER BY submitted_at, id
                                   FOR UPDATE SKIP LOCKED
                                   LIMIT 1)
                  RETURNING id, reference, procedure_id, submitted_at, due_date",
                )
                .bind::<Text, _>(to.as_str())
                .bind::<diesel::sql_types::Uuid, _>(staff_id)
                .bind::<Text, _>(from.as_str())
                .bind::<Text, _>(&queue)
                .bind::<Array<Text>, _>(&divisions)
                .get_result(connection)
                .await
                .optional()?;
                let Some(row) = claimed else {
                    return Ok(None);
                };
                record_event(
                    connection,
                    row.id,
                    ActorKind::Staff,
                    Some(staff_id),
                    Some(from),
                    to,
                    None,
                )
                .await?;
                tracing::info!(submission_id = %row.id, %staff_id, "claimed");
                Ok(Some(item(
                    catalog,
                    city_today(),
                    (
                        row.id,
                        row.reference,
                        row.procedure_id,
                        to.as_str().to_owned(),
                        row.submitted_at,
                        row.due_date,
                        Some(staff_id),
                    ),
                )))
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let cursor = Cursor {
            submitted_at: DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
        assert!(matches!(
            Cursor::decode("not a cursor"),
            Err(QueueError::Invalid(_))
        ));
    }

    #[test]
    fn returned_applications_are_never_overdue() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        let past = NaiveDate::from_ymd_opt(2026, 11, 20);
        assert!(is_overdue(Status::InProgress, past, today));
        assert!(!is_overdue(Status::Returned, past, today));
        assert!(!is_overdue(Status::Completed, past, today));
        assert!(!is_overdue(Status::Submitted, Some(today), today));
    }
}
