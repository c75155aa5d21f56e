//! Payments: collecting an application's fee through a payment provider.
//!
//! The application exists before money moves (it is stored awaiting payment); the amount is the
//! application's frozen fee breakdown, never a client's number. The provider's notification is
//! the usual way we learn the result, but notifications are lost, repeated and reordered, so the
//! reconciler (`reconciler.rs`) asks the provider about every payment left open, and the state
//! rule (`states.rs`) lets a success win whatever arrived before it. The return URL a resident's
//! browser comes back to only shows the state; it changes nothing.

pub mod notifications;
pub mod provider;
pub mod reconciler;
pub mod refunds;
pub mod requests;
pub mod sbps;
pub mod settlement;
pub mod states;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

pub use provider::{Checkout, Order, PaymentProvider, ProviderError};
pub use states::PaymentStatus;

use crate::config::PaymentSettings;
use crate::db::DbError;
use crate::db::schema::{payments, submissions};
use crate::forms::fees::FeeBreakdown;
use crate::submissions::lifecycle::Status;

/// The provider the settings name; `None` when online payment is off.
pub fn provider_from(settings: &PaymentSettings) -> Option<Arc<dyn PaymentProvider>> {
    match settings.provider.as_str() {
        "sbps" => Some(Arc::new(sbps::Sbps::new(settings.sbps.clone()))),
        // The dev provider is the SBPS adapter pointed at a local fake (tests/fixtures/sbps):
        // the same protocol, no contract needed; the production profile refuses it.
        "dev" => Some(Arc::new(sbps::Sbps::new(settings.sbps.clone()))),
        _ => None,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("not found")]
    NotFound,
    /// The application is not waiting for payment (already paid, withdrawn, free, expired).
    #[error("nothing to pay")]
    NothingToPay,
    /// The Idempotency-Key was first used for another application.
    #[error("idempotency key reused")]
    KeyReused,
    #[error("refund refused: {0}")]
    Refund(#[from] refunds::RefundError),
    /// Staff set the fee only for a procedure whose fee is settled after review.
    #[error("the fee of this procedure is not set after review")]
    NotAfterReview,
    /// Staff set the fee while they handle the application (in progress).
    #[error("the application is not in progress")]
    NotInProgress,
    /// Only the assignee or a supervisor sets the fee.
    #[error("not the assignee")]
    NotAssignee,
    #[error("invalid fee lines")]
    Invalid(Vec<crate::messages::FieldError>),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for PaymentError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(DbError::classify(error))
    }
}

/// A payment as residents and staff see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Payment {
    pub id: Uuid,
    pub submission_id: Uuid,
    pub provider: String,
    pub order_id: String,
    pub amount_yen: i64,
    pub status: PaymentStatus,
    /// The provider's reference, shown on the payment confirmation.
    pub provider_reference: Option<String>,
    /// Why staff must look (`late_success`), if they must.
    pub attention: Option<String>,
    pub created_at: DateTime<Utc>,
    pub settled_at: Option<DateTime<Utc>>,
}

pub(crate) type Row = (
    Uuid,
    Uuid,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

macro_rules! payment_columns {
    () => {
        (
            payments::id,
            payments::submission_id,
            payments::provider,
            payments::order_id,
            payments::amount_yen,
            payments::status,
            payments::provider_reference,
            payments::attention,
            payments::created_at,
            payments::settled_at,
        )
    };
}
pub(crate) use payment_columns;

pub(crate) fn from_row(row: Row) -> Payment {
    let (
        id,
        submission_id,
        provider,
        order_id,
        amount_yen,
        status,
        provider_reference,
        attention,
        created_at,
        settled_at,
    ) = row;
    Payment {
        id,
        submission_id,
        provider,
        order_id,
        amount_yen,
        status: PaymentStatus::parse(&status).unwrap_or(PaymentStatus::Pending),
        provider_reference,
        attention,
        created_at,
        settled_at,
    }
}

/// What creating a payment returns: the payment and the form that takes the resident to the
/// provider's page. `created` is false for a replay or an open payment reused.
pub struct Created {
    pub payment: Payment,
    pub checkout: Checkout,
    pub created: bool,
}

/// The URLs a payment needs, from `server.public_url`.
pub fn notify_url(public_url: &str, provider: &str) -> String {
    format!(
        "{}/api/v1/payments/notifications/{provider}",
        public_url.trim_end_matches('/')
    )
}

/// The portal's return page: the resident's browser lands on a page, not on JSON.
pub fn return_url(public_url: &str, id: Uuid) -> String {
    format!("{}/payments/{id}/return", public_url.trim_end_matches('/'))
}

/// Creates (or, for the same Idempotency-Key, returns again) the payment of the resident's
/// application awaiting payment. One transaction with the application row locked, so two
/// concurrent requests never create two payments.
pub async fn create(
    connection: &mut AsyncPgConnection,
    provider: &dyn PaymentProvider,
    public_url: &str,
    catalog: &crate::forms::Catalog,
    resident_id: Uuid,
    submission_id: Uuid,
    idempotency_key: &str,
) -> Result<Created, PaymentError> {
    let (payment, created, procedure_id) = connection
        .transaction::<_, PaymentError, _>(|connection| {
            Box::pin(async move {
                let application: Option<(String, Option<Value>, String)> = submissions::table
                    .find(submission_id)
                    .filter(submissions::resident_id.eq(resident_id))
                    .select((
                        submissions::status,
                        submissions::fee_breakdown,
                        submissions::procedure_id,
                    ))
                    .for_update()
                    .first(connection)
                    .await
                    .optional()?;
                let Some((status, breakdown, procedure_id)) = application else {
                    return Err(PaymentError::NotFound);
                };
                let replay: Option<Row> = payments::table
                    .filter(payments::resident_id.eq(resident_id))
                    .filter(payments::idempotency_key.eq(idempotency_key))
                    .select(payment_columns!())
                    .first(connection)
                    .await
                    .optional()?;
                if let Some(row) = replay {
                    let payment = from_row(row);
                    if payment.submission_id != submission_id {
                        return Err(PaymentError::KeyReused);
                    }
                    return Ok((payment, false, procedure_id));
                }
                if Status::parse(&status) != Some(Status::AwaitingPayment) {
                    return Err(PaymentError::NothingToPay);
                }
                // A payment already under way is offered again rather than a second one, so a
                // resident who closed the provider's page cannot pay twice.
                let open: Option<Row> = payments::table
                    .filter(payments::submission_id.eq(submission_id))
                    .filter(payments::status.eq_any(["created", "pending"]))
                    .select(payment_columns!())
                    .first(connection)
                    .await
                    .optional()?;
                if let Some(row) = open {
                    return Ok((from_row(row), false, procedure_id));
                }
                let amount = breakdown
                    .and_then(|value| serde_json::from_value::<FeeBreakdown>(value).ok())
                    .map_or(0, |breakdown| breakdown.total_yen);
                if amount <= 0 {
                    return Err(PaymentError::NothingToPay);
                }
                let id = Uuid::now_v7();
                let now = Utc::now();
                let row: Row = diesel::insert_into(payments::table)
                    .values((
                        payments::id.eq(id),
                        payments::submission_id.eq(submission_id),
                        payments::resident_id.eq(resident_id),
                        payments::provider.eq(provider.name()),
                        payments::order_id.eq(format!("MDG{}", id.simple())),
                        payments::amount_yen.eq(amount),
                        payments::status.eq(PaymentStatus::Created.as_str()),
                        payments::idempotency_key.eq(idempotency_key),
                        payments::created_at.eq(now),
                        payments::updated_at.eq(now),
                    ))
                    .returning(payment_columns!())
                    .get_result(connection)
                    .await?;
                Ok((from_row(row), true, procedure_id))
            })
        })
        .await?;
    let item_name = catalog
        .get(&procedure_id)
        .map_or_else(|| procedure_id.clone(), |p| p.definition.title.ja.clone());
    let checkout = provider.checkout(&Order {
        order_id: payment.order_id.clone(),
        amount_yen: payment.amount_yen,
        item_name,
        // The resident's internal id: stable, and no personal data.
        customer_code: resident_id.simple().to_string(),
        notify_url: notify_url(public_url, &payment.provider),
        return_url: return_url(public_url, payment.id),
    });
    tracing::info!(payment_id = %payment.id, submission_id = %submission_id, created, "payment offered");
    Ok(Created {
        payment,
        checkout,
        created,
    })
}

/// One payment of the resident's own; `NotFound` for anyone else's.
pub async fn get_for_resident(
    connection: &mut AsyncPgConnection,
    resident_id: Uuid,
    id: Uuid,
) -> Result<Payment, PaymentError> {
    let row: Row = payments::table
        .find(id)
        .filter(payments::resident_id.eq(resident_id))
        .select(payment_columns!())
        .first(connection)
        .await
        .optional()?
        .ok_or(PaymentError::NotFound)?;
    Ok(from_row(row))
}

/// A payment's state alone, for the unauthenticated return page (nothing else of it).
pub async fn status_of(
    connection: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<PaymentStatus>, PaymentError> {
    let status: Option<String> = payments::table
        .find(id)
        .select(payments::status)
        .first(connection)
        .await
        .optional()?;
    Ok(status.and_then(|status| PaymentStatus::parse(&status)))
}

/// Every payment of an application, oldest first.
pub async fn of_submission(
    connection: &mut AsyncPgConnection,
    submission_id: Uuid,
) -> Result<Vec<Payment>, PaymentError> {
    let rows: Vec<Row> = payments::table
        .filter(payments::submission_id.eq(submission_id))
        .order(payments::created_at)
        .select(payment_columns!())
        .load(connection)
        .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Inside the caller's transaction, with the payment row locked: applies what the provider
/// reported. A success moves the application into its queue (also after expiry: money was
/// taken). Returns the new status.
pub(crate) async fn settle(
    connection: &mut AsyncPgConnection,
    context: &crate::submissions::Context<'_>,
    payment: &Payment,
    reported: states::Outcome,
    provider_reference: Option<&str>,
) -> Result<PaymentStatus, PaymentError> {
    let transition = states::apply(payment.status, reported);
    let reference = provider_reference
        .map(str::to_owned)
        .or_else(|| payment.provider_reference.clone());
    let attention = if transition.late_success {
        tracing::warn!(payment_id = %payment.id, from = payment.status.as_str(), "late success after a recorded failure: staff attention");
        Some("late_success".to_owned())
    } else {
        payment.attention.clone()
    };
    let now = Utc::now();
    let settled_at = if transition.to.is_open() {
        None
    } else {
        Some(payment.settled_at.unwrap_or(now))
    };
    diesel::update(payments::table.find(payment.id))
        .set((
            payments::status.eq(transition.to.as_str()),
            payments::provider_reference.eq(&reference),
            payments::attention.eq(&attention),
            payments::updated_at.eq(now),
            payments::settled_at.eq(settled_at),
        ))
        .execute(connection)
        .await?;
    if transition.to == PaymentStatus::Succeeded && transition.changes(payment.status) {
        let moved =
            crate::submissions::payment_received(connection, context, payment.submission_id)
                .await
                .map_err(|error| match error {
                    crate::submissions::SubmissionError::Database(db) => PaymentError::Db(db),
                    _ => PaymentError::NotFound,
                })?;
        if !moved && attention.is_none() {
            // Paid for an application that no longer waits for it (withdrawn meanwhile): the
            // money must go back, and a person decides.
            tracing::warn!(payment_id = %payment.id, "paid after the application left awaiting payment: refund due");
            diesel::update(payments::table.find(payment.id))
                .set(payments::attention.eq("refund_due"))
                .execute(connection)
                .await?;
        }
    }
    if transition.to == PaymentStatus::Succeeded && transition.changes(payment.status) {
        confirm(
            connection,
            context,
            payment,
            reference.as_deref().unwrap_or_default(),
        )
        .await?;
    }
    if transition.changes(payment.status) {
        tracing::info!(payment_id = %payment.id, from = payment.status.as_str(), to = transition.to.as_str(), "payment settled");
    }
    Ok(transition.to)
}

/// Queues the payment confirmation (決済完了のお知らせ) to the resident's confirmed address:
/// the breakdown, the total and the provider's reference, nothing of the answers.
async fn confirm(
    connection: &mut AsyncPgConnection,
    context: &crate::submissions::Context<'_>,
    payment: &Payment,
    provider_reference: &str,
) -> Result<(), PaymentError> {
    let (reference, procedure_id, breakdown, resident_id): (String, String, Option<Value>, Uuid) =
        submissions::table
            .filter(submissions::id.eq(payment.submission_id))
            .select((
                submissions::reference,
                submissions::procedure_id,
                submissions::fee_breakdown,
                submissions::resident_id,
            ))
            .first(connection)
            .await?;
    let mut breakdown = breakdown
        .and_then(|value| serde_json::from_value::<FeeBreakdown>(value).ok())
        .unwrap_or(FeeBreakdown {
            lines: Vec::new(),
            total_yen: payment.amount_yen,
            timing: None,
        });
    // What was paid, whatever the breakdown says now.
    breakdown.total_yen = payment.amount_yen;
    let notices = notice(
        connection,
        context,
        NoticeKind::Confirmation,
        resident_id,
        payment.submission_id,
        &reference,
        &procedure_id,
        &breakdown,
        Some(provider_reference),
    )
    .await?;
    crate::notify::enqueue(connection, &notices).await?;
    Ok(())
}

/// The emails about paying an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoticeKind {
    /// 決済完了のお知らせ: paid (a confirmation, not a 領収証書).
    Confirmation,
    /// お支払いのお願い: staff set the fee after review.
    Request,
    /// The time to pay is over; the application expired unpaid.
    Expired,
}

impl NoticeKind {
    fn template(self) -> &'static str {
        match self {
            Self::Confirmation => "payment_confirmation",
            Self::Request => "payment_request",
            Self::Expired => "payment_expired",
        }
    }

    fn event(self) -> &'static str {
        match self {
            Self::Confirmation => "paid",
            Self::Request => "payment_requested",
            Self::Expired => "payment_expired",
        }
    }
}

/// The email of `kind` to the resident's confirmed address (none without one): the reference,
/// the procedure's title, the breakdown and, once paid, the provider's reference. Never an
/// answer or a My Number.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn notice(
    connection: &mut AsyncPgConnection,
    context: &crate::submissions::Context<'_>,
    kind: NoticeKind,
    resident_id: Uuid,
    submission_id: Uuid,
    reference: &str,
    procedure_id: &str,
    breakdown: &FeeBreakdown,
    provider_reference: Option<&str>,
) -> Result<Vec<crate::notify::Notice>, PaymentError> {
    use crate::db::schema::residents;
    use crate::notify::{Notice, NoticeData, PaidLine, PaidNotice};
    let contact: Option<(Option<String>, String)> = residents::table
        .find(resident_id)
        .filter(residents::email_confirmed)
        .select((residents::email, residents::language))
        .first(connection)
        .await
        .optional()?;
    let Some((Some(email), language)) = contact else {
        return Ok(Vec::new());
    };
    let lines = breakdown
        .lines
        .iter()
        .map(|line| PaidLine {
            ja: line.label.ja.clone(),
            en: line.label.en.clone(),
            yen: line.yen,
        })
        .collect();
    let title = context
        .catalog
        .get(procedure_id)
        .map(|p| &p.definition.title);
    Ok(vec![Notice {
        template: kind.template(),
        language,
        recipient: email,
        data: NoticeData {
            event: kind.event().to_owned(),
            reference: reference.to_owned(),
            procedure_title_ja: title.map_or_else(|| procedure_id.to_owned(), |t| t.ja.clone()),
            procedure_title_en: title.map_or_else(|| procedure_id.to_owned(), |t| t.en.clone()),
            status: String::new(),
            link: match kind {
                // The request's link is where the resident pays; the others show the application.
                NoticeKind::Request => {
                    format!("{}/applications/{submission_id}/pay", context.public_url)
                }
                NoticeKind::Confirmation | NoticeKind::Expired => {
                    format!("{}/applications/{submission_id}", context.public_url)
                }
            },
            payment: Some(PaidNotice {
                lines,
                total_yen: breakdown.total_yen,
                provider_reference: provider_reference.unwrap_or_default().to_owned(),
            }),
        },
        submission_id: Some(submission_id),
    }])
}

/// Payments that need a person (`late_success`, `refund_due`) in the given divisions, oldest
/// first.
pub async fn needing_attention(
    connection: &mut AsyncPgConnection,
    divisions: &[String],
) -> Result<Vec<Payment>, PaymentError> {
    let rows: Vec<Row> = payments::table
        .inner_join(submissions::table)
        .filter(payments::attention.is_not_null())
        .filter(submissions::division.eq_any(divisions))
        .order(payments::updated_at)
        .limit(500)
        .select(payment_columns!())
        .load(connection)
        .await?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// How many payments each provider has in each status (for the metrics).
pub async fn counts(
    connection: &mut AsyncPgConnection,
) -> Result<Vec<(String, String, i64)>, PaymentError> {
    use diesel::dsl::count_star;
    Ok(payments::table
        .group_by((payments::provider, payments::status))
        .select((payments::provider, payments::status, count_star()))
        .load(connection)
        .await?)
}

/// Locks and returns a payment by the provider's order id.
pub(crate) async fn lock_by_order(
    connection: &mut AsyncPgConnection,
    order_id: &str,
) -> Result<Option<Payment>, PaymentError> {
    let row: Option<Row> = payments::table
        .filter(payments::order_id.eq(order_id))
        .select(payment_columns!())
        .for_update()
        .first(connection)
        .await
        .optional()?;
    Ok(row.map(from_row))
}
