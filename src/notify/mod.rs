//! Notifications: an email outbox in PostgreSQL, templates, and the worker that sends them.
//!
//! A notice is a row written in the same transaction as the change that causes it, so an
//! acknowledged change always has its email, and a rolled-back one never does. Emails carry the
//! reference number, the procedure's title, the status and a link — never the answers.

pub mod digest;
pub mod mailer;
pub mod templates;
pub mod worker;

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
#[derive(Debug, Clone, Serialize, Queryable, utoipa::ToSchema)]
pub struct FailedMessage {
    pub id: Uuid,
    pub template: String,
    pub recipient: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub submission_id: Option<Uuid>,
}

pub async fn failed(
    connection: &mut AsyncPgConnection,
) -> Result<Vec<FailedMessage>, diesel::result::Error> {
    outbox::table
        .filter(outbox::status.eq("failed"))
        .order(outbox::created_at.desc())
        .limit(500)
        .select((
            outbox::id,
            outbox::template,
            outbox::recipient,
            outbox::attempts,
            outbox::last_error,
            outbox::created_at,
            outbox::submission_id,
        ))
        .load(connection)
        .await
}

/// Puts a failed message back in the queue for an immediate new series of attempts. Returns
/// whether there was such a failed message.
pub async fn retry(
    connection: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<bool, diesel::result::Error> {
    let updated = diesel::update(
        outbox::table
            .filter(outbox::id.eq(id))
            .filter(outbox::status.eq("failed")),
    )
    .set((
        outbox::status.eq("pending"),
        outbox::attempts.eq(0),
        outbox::next_attempt_at.eq(chrono::Utc::now()),
    ))
    .execute(connection)
    .await?;
    Ok(updated == 1)
}
