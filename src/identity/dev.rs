//! A fake My Number Card for local demos and tests. It proves nothing: the production profile
//! refuses to enable it.

use super::VerifiedIdentity;
use crate::forms::Assurance;

/// The identity the fake card asserts for `subject`.
pub fn identity(subject: &str) -> VerifiedIdentity {
    VerifiedIdentity {
        provider: "dev",
        issuer: "dev".to_owned(),
        subject: subject.to_owned(),
        assurance: Assurance::CardAuth,
        email: None,
    }
}
