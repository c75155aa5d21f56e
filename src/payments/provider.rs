//! What every payment provider does for us, whatever its protocol: a hosted page to send the
//! resident to, a signed result notification to verify and acknowledge, a status query, and a
//! refund. Adapters live beside this file (`sbps.rs`).

use futures_util::future::BoxFuture;
use serde::Serialize;
use utoipa::ToSchema;

use super::states::Outcome;

/// What we ask a provider to collect.
#[derive(Debug, Clone)]
pub struct Order {
    /// Unique per merchant and service; the provider's key for this payment.
    pub order_id: String,
    pub amount_yen: i64,
    /// Shown on the provider's page (the procedure's title).
    pub item_name: String,
    /// A stable, non-personal id of the payer (never a name or a My Number).
    pub customer_code: String,
    /// Where the provider posts the result (server to server).
    pub notify_url: String,
    /// Where the resident's browser goes back to: a hint only, never trusted.
    pub return_url: String,
}

/// The hosted-page redirect as a form the client posts (auto-submitted by a browser).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Checkout {
    pub action: String,
    pub method: &'static str,
    /// The encoding the form must be submitted in (`accept-charset`).
    pub charset: &'static str,
    /// Field names and values, in the provider's order.
    pub fields: Vec<(String, String)>,
}

/// A verified result notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Identifies this event at the provider, for deduplication.
    pub event_id: String,
    pub order_id: String,
    pub outcome: Outcome,
    pub provider_reference: Option<String>,
    pub amount_yen: Option<i64>,
}

/// The provider's current word on a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub outcome: Outcome,
    pub provider_reference: Option<String>,
}

/// One sale in the provider's settlement file of a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettledSale {
    pub order_id: String,
    pub provider_reference: Option<String>,
    pub amount_yen: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The signature did not match: not from the provider, or altered on the way.
    #[error("bad signature")]
    BadSignature,
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The provider answered and said no (its error code).
    #[error("refused by the provider: {0}")]
    Refused(String),
    #[error("provider unreachable: {0}")]
    Unreachable(String),
}

/// The body to answer a notification with.
pub struct Acknowledgement {
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

pub trait PaymentProvider: Send + Sync {
    fn name(&self) -> &'static str;
    fn checkout(&self, order: &Order) -> Checkout;
    /// Verifies the signature of a notification body exactly as received, then parses it.
    fn verify_notification(&self, body: &[u8]) -> Result<Notification, ProviderError>;
    /// What to answer: `accepted` once the notification is safely stored.
    fn acknowledge(&self, accepted: bool) -> Acknowledgement;
    fn query<'a>(
        &'a self,
        order_id: &'a str,
        provider_reference: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Status, ProviderError>>;
    /// Refunds `amount_yen` (`whole`: all that was captured, none refunded before); returns
    /// the provider's reference of the refund.
    fn refund<'a>(
        &'a self,
        order_id: &'a str,
        provider_reference: Option<&'a str>,
        amount_yen: i64,
        whole: bool,
    ) -> BoxFuture<'a, Result<String, ProviderError>>;
    /// The sales the provider settled on `date` (the city's day).
    fn settlement<'a>(
        &'a self,
        date: chrono::NaiveDate,
    ) -> BoxFuture<'a, Result<Vec<SettledSale>, ProviderError>>;
}
