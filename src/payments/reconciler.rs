//! The reconciler: notifications get lost, so every payment left created or pending for
//! `reconcile_after_seconds` is settled by asking the provider. Rows are claimed with
//! `FOR UPDATE SKIP LOCKED` (like the email outbox), so several workers share the work and
//! never query the same payment at once. It also expires applications nobody paid for.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::provider::{PaymentProvider, ProviderError};
use super::{PaymentError, PaymentStatus, Row, from_row, payment_columns, settle};
use crate::config::PaymentSettings;
use crate::db::DbPool;
use crate::db::schema::payments;

const BATCH: i64 = 20;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Payments the provider gave a final answer for.
    pub settled: usize,
    /// Still open at the provider (or it could not be asked): looked at again later.
    pub still_open: usize,
    /// Applications that expired unpaid.
    pub expired_applications: usize,
}

/// One pass over every payment due for a check, in batches.
pub async fn run_once(
    pool: &DbPool,
    context: &crate::submissions::Context<'_>,
    provider: &dyn PaymentProvider,
    settings: &PaymentSettings,
) -> Result<Pass, PaymentError> {
    let mut pass = Pass::default();
    let mut connection = crate::db::connection(pool).await?;
    let started = Utc::now();
    loop {
        let cutoff = started - chrono::Duration::seconds(settings.reconcile_after_seconds);
        let expire_cutoff = Utc::now() - chrono::Duration::minutes(settings.expire_after_minutes);
        let batch = connection
            .transaction::<Pass, PaymentError, _>(|connection| {
                Box::pin(async move {
                    let rows: Vec<Row> = payments::table
                        .filter(payments::status.eq_any(["created", "pending"]))
                        .filter(payments::updated_at.le(cutoff))
                        .order(payments::updated_at)
                        .limit(BATCH)
                        .select(payment_columns!())
                        .for_update()
                        .skip_locked()
                        .load(connection)
                        .await?;
                    let mut batch = Pass::default();
                    for payment in rows.into_iter().map(from_row) {
                        let answer = provider
                            .query(&payment.order_id, payment.provider_reference.as_deref())
                            .await;
                        let status = match answer {
                            Ok(status) => {
                                settle(
                                    connection,
                                    context,
                                    &payment,
                                    status.outcome,
                                    status.provider_reference.as_deref(),
                                )
                                .await?
                            }
                            // Never reached the provider (the resident left before its page),
                            // and the time to pay is over.
                            Err(ProviderError::Refused(_)) if payment.created_at < expire_cutoff => {
                                settle(connection, context, &payment, PaymentStatus::Expired, None)
                                    .await?
                            }
                            Err(error) => {
                                tracing::warn!(payment_id = %payment.id, %error, "status query failed; will retry");
                                payment.status
                            }
                        };
                        if status.is_open() {
                            // Looked at now: the next check waits its turn again.
                            diesel::update(payments::table.find(payment.id))
                                .set(payments::updated_at.eq(Utc::now()))
                                .execute(connection)
                                .await?;
                            batch.still_open += 1;
                        } else {
                            batch.settled += 1;
                        }
                    }
                    Ok(batch)
                })
            })
            .await?;
        pass.settled += batch.settled;
        pass.still_open += batch.still_open;
        if batch.settled + batch.still_open < BATCH as usize {
            break;
        }
    }
    pass.expired_applications = expire(&mut connection, context, settings).await?;
    if pass != Pass::default() {
        tracing::info!(
            settled = pass.settled,
            still_open = pass.still_open,
            expired = pass.expired_applications,
            "payments reconciled"
        );
    }
    Ok(pass)
}

/// Expires the applications nobody paid for in time and queues the notice to each resident, in
/// one transaction: an expiry is never without its email, nor an email without the expiry.
async fn expire(
    connection: &mut diesel_async::AsyncPgConnection,
    context: &crate::submissions::Context<'_>,
    settings: &PaymentSettings,
) -> Result<usize, PaymentError> {
    use crate::db::schema::submissions;
    use crate::forms::fees::FeeBreakdown;
    connection
        .transaction::<usize, PaymentError, _>(|connection| {
            Box::pin(async move {
                let expired = crate::submissions::expire_unpaid(
                    connection,
                    settings.expire_after_minutes,
                    settings.after_review_expire_after_hours,
                )
                .await
                .map_err(|error| match error {
                    crate::submissions::SubmissionError::Database(db) => PaymentError::Db(db),
                    _ => PaymentError::NotFound,
                })?;
                for id in &expired {
                    let (reference, procedure_id, resident_id, breakdown): (
                        String,
                        String,
                        uuid::Uuid,
                        Option<serde_json::Value>,
                    ) = submissions::table
                        .find(*id)
                        .select((
                            submissions::reference,
                            submissions::procedure_id,
                            submissions::resident_id,
                            submissions::fee_breakdown,
                        ))
                        .first(connection)
                        .await?;
                    let Some(breakdown) = breakdown
                        .and_then(|value| serde_json::from_value::<FeeBreakdown>(value).ok())
                    else {
                        continue;
                    };
                    let notices = super::notice(
                        connection,
                        context,
                        super::NoticeKind::Expired,
                        resident_id,
                        *id,
                        &reference,
                        &procedure_id,
                        &breakdown,
                        None,
                    )
                    .await?;
                    crate::notify::enqueue(connection, &notices).await?;
                }
                Ok(expired.len())
            })
        })
        .await
}

/// What a pass needs of the application, owned, for a worker that has no HTTP state.
pub struct Worker {
    pub pool: DbPool,
    pub catalog: std::sync::Arc<crate::forms::Catalog>,
    pub sealer: crate::submissions::sealing::Sealer,
    pub calendar: crate::calendar::BusinessCalendar,
    pub public_url: String,
    pub provider: std::sync::Arc<dyn PaymentProvider>,
    pub settings: PaymentSettings,
}

impl Worker {
    /// A pass every `reconcile_interval_seconds`, forever. A failed pass is logged and the next
    /// one tries again: nothing is lost, the rows stay open.
    pub async fn run(self) {
        let mut interval = tokio::time::interval(std::time::Duration::from_secs(
            self.settings.reconcile_interval_seconds.max(1),
        ));
        loop {
            interval.tick().await;
            let context = crate::submissions::Context {
                catalog: &self.catalog,
                sealer: &self.sealer,
                calendar: &self.calendar,
                public_url: &self.public_url,
                payments_online: true,
                // Promotion only: nothing is submitted here.
                breakdown: &crate::statistics_breakdown::Breakdown::None,
            };
            if let Err(error) =
                run_once(&self.pool, &context, self.provider.as_ref(), &self.settings).await
            {
                tracing::error!(error = %error, "payment reconciliation failed; retrying next time");
            }
            // Yesterday's settlement file, once a day (a day already reported is skipped).
            if !self.settings.sbps.settlement_url.is_empty() {
                let yesterday = crate::submissions::city_date(Utc::now()) - chrono::Days::new(1);
                let result = match crate::db::connection(&self.pool).await {
                    Ok(mut connection) => {
                        super::settlement::report(
                            &mut connection,
                            self.provider.as_ref(),
                            yesterday,
                        )
                        .await
                    }
                    Err(error) => Err(error.into()),
                };
                if let Err(error) = result {
                    tracing::error!(error = %error, "settlement report failed; retrying next time");
                }
            }
        }
    }
}
