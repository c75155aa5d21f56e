//! The background worker: sends the email outbox, enqueues the daily overdue digests, and
//! purges what has expired (drafts, their files, sign-in challenges, signing nonces).
//!
//! Sending claims due outbox rows with `FOR UPDATE SKIP LOCKED` (so several workers
//! share the load without sending a row twice at once), sends, and marks each row.
//!
//! Delivery is at-least-once. A row is marked sent in the transaction that holds its lock while
//! sending; if the process dies after the SMTP server accepted the message but before the commit,
//! the row is sent again after restart. SMTP gives no way to ask "did you already take this?", so
//! this is the honest guarantee; the stable Message-ID (`<outbox-id@madoguchi>`) lets mail systems
//! and readers recognise the duplicate. The alternative (mark first, then send) could lose a notice,
//! which is worse for a resident waiting on a decision.

use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::config::EmailSettings;
use crate::db::schema::outbox;
use crate::db::{DbError, DbPool};
use crate::notify::NoticeData;
use crate::notify::mailer::{Mailer, SendError};
use crate::notify::templates;
use crate::submissions::attachments::{Storage, Swept};

const BATCH: i64 = 10;

#[derive(Queryable)]
struct Due {
    id: Uuid,
    template: String,
    language: String,
    recipient: String,
    payload: Value,
    attempts: i32,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

/// Sends one batch of due messages. Returns what happened to them.
pub async fn run_once(
    pool: &DbPool,
    mailer: &Mailer,
    settings: &EmailSettings,
) -> Result<Pass, DbError> {
    let mut connection = crate::db::connection(pool).await?;
    connection
        .transaction::<Pass, DbError, _>(|connection| {
            Box::pin(async move {
                let due: Vec<Due> = outbox::table
                    .filter(outbox::status.eq("pending"))
                    .filter(outbox::next_attempt_at.le(Utc::now()))
                    .order(outbox::next_attempt_at)
                    .limit(BATCH)
                    .select((
                        outbox::id,
                        outbox::template,
                        outbox::language,
                        outbox::recipient,
                        outbox::payload,
                        outbox::attempts,
                    ))
                    .for_update()
                    .skip_locked()
                    .load(connection)
                    .await
                    .map_err(DbError::classify)?;
                let mut pass = Pass::default();
                for row in due {
                    let attempts = row.attempts + 1;
                    match deliver(mailer, &row).await {
                        Ok(()) => {
                            diesel::update(outbox::table.find(row.id))
                                .set((
                                    outbox::status.eq("sent"),
                                    outbox::attempts.eq(attempts),
                                    outbox::sent_at.eq(Utc::now()),
                                    outbox::last_error.eq(None::<String>),
                                ))
                                .execute(connection)
                                .await
                                .map_err(DbError::classify)?;
                            pass.sent += 1;
                        }
                        Err(error) => {
                            let give_up = matches!(error, SendError::Permanent(_))
                                || attempts >= settings.max_attempts;
                            // Exponential backoff, capped at an hour.
                            let wait = (settings.retry_base_seconds << (attempts - 1).clamp(0, 16)).min(3600);
                            diesel::update(outbox::table.find(row.id))
                                .set((
                                    outbox::status.eq(if give_up { "failed" } else { "pending" }),
                                    outbox::attempts.eq(attempts),
                                    outbox::next_attempt_at.eq(Utc::now() + chrono::Duration::seconds(wait)),
                                    outbox::last_error.eq(error.to_string()),
                                ))
                                .execute(connection)
                                .await
                                .map_err(DbError::classify)?;
                            tracing::warn!(outbox_id = %row.id, attempts, give_up, error = %error, "email not sent");
                            if give_up {
                                pass.failed += 1;
                            } else {
                                pass.retried += 1;
                            }
                        }
                    }
                }
                Ok(pass)
            })
        })
        .await
}

async fn deliver(mailer: &Mailer, row: &Due) -> Result<(), SendError> {
    let data: NoticeData = serde_json::from_value(row.payload.clone())
        .map_err(|_| SendError::Permanent("the stored notice is malformed".to_owned()))?;
    let email = templates::render(&row.template, &row.language, &data)
        .map_err(|error| SendError::Permanent(format!("template: {error}")))?;
    let message = mailer.build(row.id, &row.recipient, &email)?;
    mailer.send(row.id, message).await
}

/// Housekeeping the worker does now and then: expired drafts (with their files), login
/// challenges, signing nonces and the basic facts of expired sessions.
async fn purge_expired(pool: &DbPool, storage: &Storage) -> Result<(usize, usize, usize), DbError> {
    let mut connection = crate::db::connection(pool).await?;
    let drafts = crate::submissions::drafts::purge_expired(&mut connection, storage)
        .await
        .map_err(DbError::classify)?;
    crate::submissions::signing::purge_expired(&mut connection)
        .await
        .map_err(DbError::classify)?;
    let challenges = crate::identity::challenge::purge_expired(&mut connection)
        .await
        .map_err(DbError::classify)?;
    let session_facts = crate::identity::facts::purge_expired(&mut connection)
        .await
        .map_err(DbError::classify)?;
    crate::identity::throttle::purge_expired(&mut connection)
        .await
        .map_err(DbError::classify)?;
    Ok((drafts, challenges, session_facts))
}

/// What the worker needs to write the daily overdue digests.
pub struct Digests {
    pub catalog: std::sync::Arc<crate::forms::Catalog>,
    pub public_url: String,
}

/// What the worker needs to keep attachment storage clean.
pub struct Attachments {
    pub storage: Storage,
    /// Uploads no application took are deleted after this long (the draft lifetime).
    pub unbound_ttl: chrono::Duration,
}

impl Attachments {
    pub fn from_settings(settings: &crate::config::Settings) -> anyhow::Result<Self> {
        Ok(Self {
            storage: Storage::from_settings(
                &settings.storage,
                &settings.submissions.attachments_dir,
            )?,
            unbound_ttl: chrono::Duration::days(settings.submissions.draft_ttl_days),
        })
    }
}

/// Files younger than this are never swept: their row may still be committing.
const ORPHAN_GRACE: Duration = Duration::from_secs(3600);

/// Sweeps uploads no application took and files no row names.
pub async fn sweep_attachments(pool: &DbPool, attachments: &Attachments) -> anyhow::Result<Swept> {
    let mut connection = crate::db::connection(pool).await?;
    Ok(crate::submissions::attachments::sweep(
        &mut connection,
        &attachments.storage,
        attachments.unbound_ttl,
        ORPHAN_GRACE,
    )
    .await?)
}

/// What the worker needs to keep the usage statistics' rollups current.
pub struct Statistics {
    pub catalog: std::sync::Arc<crate::forms::Catalog>,
    pub calendar: crate::calendar::BusinessCalendar,
    pub settle_seconds: i64,
}

impl Statistics {
    pub fn from_settings(
        settings: &crate::config::Settings,
        catalog: std::sync::Arc<crate::forms::Catalog>,
    ) -> Self {
        Self {
            catalog,
            calendar: crate::calendar::BusinessCalendar::new(
                settings.calendar.holidays.iter().copied(),
            ),
            settle_seconds: settings.statistics.settle_seconds,
        }
    }
}

/// Folds settled application events into the statistics rollups (safe with several workers:
/// the watermark row is taken with SKIP LOCKED).
pub async fn refresh_statistics(
    pool: &DbPool,
    statistics: &Statistics,
) -> Result<crate::statistics::rollup::Refreshed, DbError> {
    let mut connection = crate::db::connection(pool).await?;
    crate::statistics::rollup::refresh(
        &mut connection,
        &statistics.catalog,
        &statistics.calendar,
        statistics.settle_seconds,
    )
    .await
}

/// How often the statistics rollups are refreshed.
const STATISTICS_INTERVAL: Duration = Duration::from_secs(60);

/// Runs until the process stops. Database outages are waited out, not fatal.
pub async fn run(
    pool: DbPool,
    mailer: Mailer,
    settings: EmailSettings,
    digests: Digests,
    attachments: Attachments,
    statistics: Statistics,
) {
    let idle = Duration::from_secs(settings.poll_interval_seconds.max(1));
    let mut last_purge = std::time::Instant::now() - Duration::from_secs(3600);
    let mut last_rollup = std::time::Instant::now() - STATISTICS_INTERVAL;
    loop {
        if last_rollup.elapsed() >= STATISTICS_INTERVAL {
            last_rollup = std::time::Instant::now();
            match refresh_statistics(&pool, &statistics).await {
                Ok(refreshed) if refreshed.events > 0 => {
                    tracing::debug!(events = refreshed.events, "statistics rollups refreshed");
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %error, "statistics rollup failed"),
            }
        }
        // Hourly; the digest itself goes out at most once a day per division.
        if last_purge.elapsed() >= Duration::from_secs(600) {
            let queued = match crate::db::connection(&pool).await {
                Ok(mut connection) => crate::notify::digest::enqueue_overdue_digests(
                    &mut connection,
                    &digests.catalog,
                    &digests.public_url,
                    crate::forms::lint::city_today(),
                )
                .await
                .map_err(DbError::classify),
                Err(error) => Err(error),
            };
            match queued {
                Ok(queued) if queued > 0 => tracing::info!(queued, "overdue digests queued"),
                Ok(_) => {}
                Err(error) => tracing::warn!(error = %error, "overdue digests failed"),
            }
        }
        if last_purge.elapsed() >= Duration::from_secs(600) {
            match purge_expired(&pool, &attachments.storage).await {
                Ok((drafts, challenges, session_facts)) => {
                    last_purge = std::time::Instant::now();
                    tracing::debug!(drafts, challenges, session_facts, "purged expired rows");
                }
                Err(error) => tracing::warn!(error = %error, "purging expired rows failed"),
            }
            match sweep_attachments(&pool, &attachments).await {
                Ok(swept) => tracing::debug!(?swept, "swept attachment storage"),
                Err(error) => tracing::warn!(error = %error, "sweeping attachment storage failed"),
            }
        }
        match run_once(&pool, &mailer, &settings).await {
            Ok(pass) if pass.sent + pass.retried + pass.failed > 0 => {
                tracing::info!(
                    sent = pass.sent,
                    retried = pass.retried,
                    failed = pass.failed,
                    "outbox pass"
                );
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "outbox pass failed; will retry"),
        }
        tokio::time::sleep(idle).await;
    }
}
