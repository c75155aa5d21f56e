//! A fake My Number Card for local demos and tests. It proves nothing: the production profile
//! refuses to enable it.

use super::{BasicFacts, VerifiedIdentity};
use crate::forms::Assurance;

/// The identity the fake card asserts for `subject`, with fictional basic facts (as the Digital
/// Authentication App would give), so demos show them where a procedure keeps them.
pub fn identity(subject: &str) -> VerifiedIdentity {
    VerifiedIdentity {
        provider: "dev",
        issuer: "dev".to_owned(),
        subject: subject.to_owned(),
        assurance: Assurance::CardAuth,
        email: None,
        facts: Some(BasicFacts {
            name: Some("窓口\u{3000}試子".to_owned()),
            gender: Some("female".to_owned()),
            birth_date: Some("1990-04-01".to_owned()),
            address: Some("石川県加賀市大聖寺南町ニ４１".to_owned()),
            ..BasicFacts::default()
        }),
    }
}
