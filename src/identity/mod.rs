//! Who residents and staff are: sign-in providers, resident accounts, sessions, staff accounts.
//!
//! Providers (chosen by configuration) prove an identity and an assurance level:
//! - `jpki`: challenge/response with the My Number Card's user-authentication certificate;
//! - `oidc`: the Digital Authentication App or any OpenID Provider;
//! - `dev`: a fake card for demos and tests (refused by the production profile).
//!
//! The service then issues its own session (see [`session`]). Resident accounts are keyed on
//! (issuer, subject) and hold no basic facts: those travel with each application that needs them.

pub mod challenge;
pub mod dev;
pub mod facts;
mod hashing;
pub mod jpki;
pub mod oidc;
pub mod residents;
pub mod session;
pub mod staff;
pub mod staff_admin;
pub mod throttle;

use crate::db::DbError;
use crate::forms::Assurance;

/// What a provider has proven about the person signing in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// `jpki`, `oidc` or `dev`.
    pub provider: &'static str,
    /// Who vouches: the CA's subject for a card, the OIDC issuer URL, `dev`.
    pub issuer: String,
    /// Stable id at that issuer: the certificate serial, the OIDC `sub`.
    pub subject: String,
    pub assurance: Assurance,
    /// An email address the provider vouched for, if any (OIDC).
    pub email: Option<String>,
    /// The basic facts the provider vouched for, if any (the Digital Authentication App's
    /// `name address birthdate gender`; the fake card's fictional ones).
    pub facts: Option<BasicFacts>,
}

/// The four basic facts (基本4情報), and on a signature certificate their substitute-character
/// fields, kept verbatim as the source states them: a signature certificate writes the date of
/// birth as an era digit then the Gregorian `YYYYMMDD` and separates surname and given name with
/// U+3000; an OpenID Provider uses `YYYY-MM-DD` and its own `gender` words.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub struct BasicFacts {
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_substitute: Option<String>,
    pub gender: Option<String>,
    pub birth_date: Option<String>,
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address_substitute: Option<String>,
}

impl BasicFacts {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing or malformed credentials")]
    MissingToken,
    #[error("invalid token")]
    InvalidToken,
    #[error("expired token")]
    ExpiredToken,
    #[error("unknown, expired or already used challenge")]
    InvalidChallenge,
    #[error("this sign-in provider is not enabled")]
    ProviderDisabled,
    #[error("signature does not verify")]
    BadSignature,
    #[error("certificate is expired or not yet valid")]
    CertificateExpired,
    #[error("certificate does not chain to a trusted authority")]
    UntrustedCertificate,
    #[error("certificate is revoked")]
    CertificateRevoked,
    #[error("certificate is not for this use")]
    WrongCertificateUse,
    #[error("the identity provider refused: {0}")]
    ProviderRefused(String),
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("account locked after repeated failures")]
    Locked,
    /// Creating a staff account with a login someone already has.
    #[error("this login is taken")]
    LoginTaken,
    /// The staff member must replace the password an admin gave them before anything else.
    #[error("the password must be changed first")]
    PasswordChangeRequired,
    /// The city's OpenID Provider vouched for someone with no active staff account here.
    #[error("no active staff account for this sign-in")]
    StaffNotRegistered,
    #[error("insufficient assurance")]
    InsufficientAssurance,
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error(transparent)]
    Database(#[from] DbError),
    /// The configured CRL cannot vouch for certificates now (past its nextUpdate, or unusable):
    /// the card is refused until a good one is loaded, and the client may try again later.
    #[error("revocation status unavailable")]
    RevocationUnavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl From<diesel::result::Error> for AuthError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Database(DbError::classify(error))
    }
}

impl From<deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>> for AuthError {
    fn from(
        error: deadpool::managed::PoolError<diesel_async::pooled_connection::PoolError>,
    ) -> Self {
        Self::Database(error.into())
    }
}
