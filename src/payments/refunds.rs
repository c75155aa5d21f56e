//! Refunds: partial or whole, by a supervisor or admin, guarded so that their sum never exceeds
//! what was captured. The caller states the amount it believes is still refundable (GOV.UK
//! Pay's guard): a second click on a stale page is refused (409) instead of refunding twice.
//! Everything happens in one transaction holding the payment's row lock, the provider call
//! included, so concurrent refunds of one payment queue up and each sees the others' sums.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::provider::PaymentProvider;
use super::{PaymentError, PaymentStatus, Row, from_row, payment_columns};
use crate::db::schema::{payments, refunds};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RefundError {
    #[error("only a succeeded payment can be refunded")]
    NotCaptured,
    /// The amount the caller believed available is not what is available (a refund happened
    /// meanwhile, or this is the same request twice).
    #[error("available amount changed")]
    Stale { available_yen: i64 },
    #[error("more than is left to refund")]
    Exceeds { available_yen: i64 },
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Refund {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub amount_yen: i64,
    pub reason: String,
    pub provider_reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

pub struct RefundRequest<'a> {
    pub payment_id: Uuid,
    pub amount_yen: i64,
    pub expected_available_yen: i64,
    pub reason: &'a str,
    pub staff_id: Uuid,
}

/// What is left to refund: captured minus every refund made.
async fn refunded(
    connection: &mut AsyncPgConnection,
    payment_id: Uuid,
) -> Result<i64, PaymentError> {
    let amounts: Vec<i64> = refunds::table
        .filter(refunds::payment_id.eq(payment_id))
        .filter(refunds::status.eq("succeeded"))
        .select(refunds::amount_yen)
        .load(connection)
        .await?;
    Ok(amounts.iter().sum())
}

pub async fn refund(
    connection: &mut AsyncPgConnection,
    provider: &dyn PaymentProvider,
    request: RefundRequest<'_>,
) -> Result<Refund, PaymentError> {
    connection
        .transaction::<_, PaymentError, _>(|connection| {
            Box::pin(async move {
                let row: Row = payments::table
                    .find(request.payment_id)
                    .select(payment_columns!())
                    .for_update()
                    .first(connection)
                    .await
                    .optional()?
                    .ok_or(PaymentError::NotFound)?;
                let payment = from_row(row);
                if payment.status != PaymentStatus::Succeeded {
                    return Err(RefundError::NotCaptured.into());
                }
                let available_yen = payment.amount_yen - refunded(connection, payment.id).await?;
                if request.expected_available_yen != available_yen {
                    return Err(RefundError::Stale { available_yen }.into());
                }
                if request.amount_yen > available_yen {
                    return Err(RefundError::Exceeds { available_yen }.into());
                }
                let reference = provider
                    .refund(
                        &payment.order_id,
                        payment.provider_reference.as_deref(),
                        request.amount_yen,
                        // The whole capture at once is a cancel; anything less, a partial refund.
                        request.amount_yen == payment.amount_yen,
                    )
                    .await?;
                let refund = Refund {
                    id: Uuid::now_v7(),
                    payment_id: payment.id,
                    amount_yen: request.amount_yen,
                    reason: request.reason.to_owned(),
                    provider_reference: (!reference.is_empty()).then_some(reference),
                    created_at: Utc::now(),
                };
                diesel::insert_into(refunds::table)
                    .values((
                        refunds::id.eq(refund.id),
                        refunds::payment_id.eq(refund.payment_id),
                        refunds::amount_yen.eq(refund.amount_yen),
                        refunds::reason.eq(&refund.reason),
                        refunds::requested_by.eq(request.staff_id),
                        refunds::status.eq("succeeded"),
                        refunds::provider_reference.eq(&refund.provider_reference),
                        refunds::created_at.eq(refund.created_at),
                    ))
                    .execute(connection)
                    .await?;
                tracing::info!(payment_id = %payment.id, refund_id = %refund.id, amount_yen = refund.amount_yen, staff_id = %request.staff_id, "refund made");
                Ok(refund)
            })
        })
        .await
}

/// Every refund of a payment, oldest first.
pub async fn of_payment(
    connection: &mut AsyncPgConnection,
    payment_id: Uuid,
) -> Result<Vec<Refund>, PaymentError> {
    type RefundRow = (Uuid, Uuid, i64, String, Option<String>, DateTime<Utc>);
    let rows: Vec<RefundRow> = refunds::table
        .filter(refunds::payment_id.eq(payment_id))
        .order(refunds::created_at)
        .select((
            refunds::id,
            refunds::payment_id,
            refunds::amount_yen,
            refunds::reason,
            refunds::provider_reference,
            refunds::created_at,
        ))
        .load(connection)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, payment_id, amount_yen, reason, provider_reference, created_at)| Refund {
                id,
                payment_id,
                amount_yen,
                reason,
                provider_reference,
                created_at,
            },
        )
        .collect())
}
