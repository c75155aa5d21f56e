//! Result notifications: verified, stored exactly as received once per provider event, then
//! applied. A repeated event is acknowledged and changes nothing; an unverifiable one is refused
//! and stored nowhere.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::provider::{Notification, PaymentProvider, ProviderError};
use super::{PaymentError, PaymentStatus, lock_by_order, settle};
use crate::db::schema::payment_notifications;

/// What became of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    Applied(PaymentStatus),
    /// The same event again: stored once already.
    Duplicate,
    /// Verified, but for no payment of ours (stored for the accountant's reconciliation).
    UnknownOrder,
}

/// Verifies `body` and records it. `Err(Provider(BadSignature | Malformed))` means refuse it.
pub async fn receive(
    connection: &mut AsyncPgConnection,
    context: &crate::submissions::Context<'_>,
    provider: &dyn PaymentProvider,
    body: &[u8],
) -> Result<Received, PaymentError> {
    let notification: Notification = provider.verify_notification(body)?;
    let provider_name = provider.name();
    connection
        .transaction::<_, PaymentError, _>(|connection| {
            Box::pin(async move {
                let payment = lock_by_order(connection, &notification.order_id).await?;
                let inserted = diesel::insert_into(payment_notifications::table)
                    .values((
                        payment_notifications::provider.eq(provider_name),
                        payment_notifications::event_id.eq(&notification.event_id),
                        payment_notifications::payment_id.eq(payment.as_ref().map(|p| p.id)),
                        payment_notifications::body.eq(body),
                    ))
                    .on_conflict((
                        payment_notifications::provider,
                        payment_notifications::event_id,
                    ))
                    .do_nothing()
                    .execute(connection)
                    .await?;
                if inserted == 0 {
                    return Ok(Received::Duplicate);
                }
                let Some(payment) = payment else {
                    tracing::warn!(provider = provider_name, "notification for an unknown order");
                    return Ok(Received::UnknownOrder);
                };
                if notification
                    .amount_yen
                    .is_some_and(|amount| amount != payment.amount_yen)
                {
                    // Signed by the provider, yet not what we asked for: never settle on it.
                    tracing::error!(payment_id = %payment.id, "notification amount differs from the payment");
                    return Err(PaymentError::Provider(ProviderError::Malformed(
                        "amount differs from the payment".to_owned(),
                    )));
                }
                let status = settle(
                    connection,
                    context,
                    &payment,
                    notification.outcome,
                    notification.provider_reference.as_deref(),
                )
                .await?;
                Ok(Received::Applied(status))
            })
        })
        .await
}
