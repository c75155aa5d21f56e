//! JPKI (My Number Card) provider. Placeholder until the verifier lands: every call refuses.

use chrono::{DateTime, Utc};

use super::{AuthError, VerifiedIdentity};
use crate::config::JpkiSettings;

pub struct JpkiVerifier;

impl JpkiVerifier {
    pub async fn from_settings(_settings: &JpkiSettings) -> anyhow::Result<Self> {
        anyhow::bail!("the jpki provider is not available in this build")
    }

    pub async fn refresh_crl_if_stale(&self) {}

    pub fn verify_login(
        &self,
        _challenge: &[u8],
        _certificate_der: &[u8],
        _signature: &[u8],
        _now: DateTime<Utc>,
    ) -> Result<VerifiedIdentity, AuthError> {
        Err(AuthError::ProviderDisabled)
    }
}
