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

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BasicFacts {
    pub name: Option<String>,
    pub name_substitute: Option<String>,
    pub gender: Option<String>,
    pub birth_date: Option<String>,
    pub address: Option<String>,
    pub address_substitute: Option<String>,
}

pub struct SignatureEvidence {
    pub certificate_der: Vec<u8>,
    pub digest: Vec<u8>,
    pub facts: BasicFacts,
    pub revocation_checked_at: DateTime<Utc>,
    pub verified_at: DateTime<Utc>,
    pub signer: VerifiedIdentity,
}

impl JpkiVerifier {
    pub fn verify_signature(
        &self,
        _cms_der: &[u8],
        _content: &[u8],
        _now: DateTime<Utc>,
    ) -> Result<SignatureEvidence, AuthError> {
        Err(AuthError::ProviderDisabled)
    }
}
