//! Notifications: an email outbox in PostgreSQL, templates, and the worker that sends them.
//!
//! A notice is a row written in the same transaction as the change that causes it, so an
//! acknowledged change always has its email, and a rolled-back one never does. Emails carry the
//! reference number, the procedure's title, the status and a link — never the answers.

pub mod digest;
pub mod mailer;
pub mod templates;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::db::schema::outbox;

/// What a template needs: nothing from the form's contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoticeData {
    /// received, returned, completed, rejected, withdrawn, resubmitted.
    pub event: String,
    pub reference: String,
    pub procedure_title_ja: String,
    pub procedure_title_en: String,
    pub status: String,
    pub link: String,
    /// A payment confirmation's breakdown and the provider's reference (nothing else: never an
    /// answer or a My Number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaidNotice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaidNotice {
    pub lines: Vec<PaidLine>,
    pub total_yen: i64,
    pub provider_reference: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaidLine {
    pub ja: String,
    pub en: String,
    pub yen: i64,
}

#[derive(Debug, Clone)]
pub struct Notice {
    /// `resident_status` or `division_status`.
    pub template: &'static str,
    pub language: String,
    pub recipient: String,
    pub data: NoticeData,
    pub submission_id: Option<Uuid>,
}

/// The message that confirms a new address: a link with the token, to the address itself. The
/// link opens the portal's confirmation page, which posts the token to
/// `/api/v1/me/email/confirm`.
pub fn email_confirmation(address: &str, language: &str, public_url: &str, token: &str) -> Notice {
    Notice {
        template: "email_confirmation",
        language: language.to_owned(),
        recipient: address.to_owned(),
        data: NoticeData {
            event: "email_confirmation".to_owned(),
            reference: String::new(),
            procedure_title_ja: String::new(),
            procedure_title_en: String::new(),
            status: String::new(),
            link: format!("{public_url}/account/email/confirm?token={token}"),
            payment: None,
        },
        submission_id: None,
    }
}

/// Writes the notices on the caller's connection (inside the caller's transaction).
pub async fn enqueue(
    connection: &mut AsyncPgConnection,
    notices: &[Notice],
) -> Result<(), diesel::result::Error> {
    // One single-row INSERT per notice (there are one or two): its statement is prepared once
    // per connection, where a multi-row INSERT would be parsed and planned again every time.
    for notice in notices {
        diesel::insert_into(outbox::table)
            .values((
                outbox::id.eq(Uuid::now_v7()),
                outbox::template.eq(notice.template),
                outbox::language.eq(&notice.language),
                outbox::recipient.eq(&notice.recipient),
                outbox::payload.eq(serde_json::to_value(&notice.data).unwrap_or_default()),
                outbox::submission_id.eq(notice.submission_id),
            ))
            .execute(connection)
            .await?;
    }
    Ok(())
}

/// A message the worker gave up on, for admins to see and retry.
#[derive(Debug, Clone, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct FailedMessage {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub template: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub recipient: String,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub attempts: i32,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub last_error: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Uuid>)]
    pub submission_id: Option<Uuid>,
}

/// Whose messages an admin sees: those about the applications of their divisions, and the
/// divisions' own overdue digests (which carry no application; they go to the division's
/// address).
pub struct DivisionsScope<'a> {
    pub divisions: &'a [String],
    /// The notice addresses of those divisions (the catalog's organisation).
    pub emails: &'a [String],
}

/// The notice addresses of `divisions` (the catalog's organisation): with the divisions, what
/// an admin's [`DivisionsScope`] borrows.
pub fn division_emails(catalog: &crate::forms::Catalog, divisions: &[String]) -> Vec<String> {
    divisions
        .iter()
        .filter_map(|division| catalog.organisation.divisions.get(division))
        .map(|division| division.email.clone())
        .collect()
}

/// `outbox o` rows within `$1` (divisions) and `$2` (their addresses).
const IN_SCOPE: &str = "(o.submission_id IN (SELECT s.id FROM submissions s WHERE s.division = ANY($1)) \
     OR (o.submission_id IS NULL AND o.template = 'division_overdue' AND o.recipient = ANY($2)))";

/// The failed messages of the scope's divisions, newest first.
pub async fn failed(
    connection: &mut AsyncPgConnection,
    scope: &DivisionsScope<'_>,
) -> Result<Vec<FailedMessage>, diesel::result::Error> {
    use diesel::sql_types::{Array, Text};
    diesel::sql_query(format!(
        "SELECT o.id, o.template, o.recipient, o.attempts, o.last_error, o.created_at, \
                o.submission_id \
         FROM outbox o WHERE o.status = 'failed' AND {IN_SCOPE} \
         ORDER BY o.created_at DESC LIMIT 500"
    ))
    .bind::<Array<Text>, _>(scope.divisions)
    .bind::<Array<Text>, _>(scope.emails)
    .load(connection)
    .await
}

/// Puts a failed message of the scope's divisions back in the queue for an immediate new series
/// of attempts. Returns whether there was such a failed message (another division's is not).
pub async fn retry(
    connection: &mut AsyncPgConnection,
    id: Uuid,
    scope: &DivisionsScope<'_>,
) -> Result<bool, diesel::result::Error> {
    use diesel::sql_types::{Array, Text};
    let updated = diesel::sql_query(format!(
        "UPDATE outbox o SET status = 'pending', attempts = 0, next_attempt_at = now() \
         WHERE o.id = $3 AND o.status = 'failed' AND {IN_SCOPE}"
    ))
    .bind::<Array<Text>, _>(scope.divisions)
    .bind::<Array<Text>, _>(scope.emails)
    .bind::<diesel::sql_types::Uuid, _>(id)
    .execute(connection)
    .await?;
    Ok(updated == 1)
}
