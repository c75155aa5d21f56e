//! The basic facts (基本4情報) a provider vouched for, and where they are kept: with the session
//! that proved them until it ends, and with each revision of an application whose procedure needs
//! an identity (card-auth or card-sign). Never on the resident's account, never in a log.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::BasicFacts;
use crate::db::schema::{session_facts, submission_identity_facts};

/// How the facts were proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FactsSource {
    /// At sign-in, by the provider (the Digital Authentication App reads them from the card).
    SignIn,
    /// By the signature certificate the application was signed with.
    Signature,
}

impl FactsSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign_in",
            Self::Signature => "signature",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "sign_in" => Some(Self::SignIn),
            "signature" => Some(Self::Signature),
            _ => None,
        }
    }
}

/// Basic facts with who vouched for them, how and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct VouchedFacts {
    pub source: FactsSource,
    /// The OpenID Provider's issuer, or the CA that issued the signature certificate.
    pub issuer: String,
    pub facts: BasicFacts,
    pub verified_at: DateTime<Utc>,
}

/// Keeps the facts of a new session (its refresh-token family) until `expires_at`.
pub async fn remember_for_session(
    connection: &mut AsyncPgConnection,
    family_id: Uuid,
    resident_id: Uuid,
    issuer: &str,
    facts: &BasicFacts,
    expires_at: DateTime<Utc>,
) -> Result<(), diesel::result::Error> {
    diesel::insert_into(session_facts::table)
        .values((
            session_facts::family_id.eq(family_id),
            session_facts::resident_id.eq(resident_id),
            session_facts::issuer.eq(issuer),
            session_facts::facts.eq(to_json(facts)),
            session_facts::verified_at.eq(Utc::now()),
            session_facts::expires_at.eq(expires_at),
        ))
        .execute(connection)
        .await?;
    Ok(())
}

/// The facts proven when this session of this resident began, while it lasts.
pub async fn of_session(
    connection: &mut AsyncPgConnection,
    family_id: Uuid,
    resident_id: Uuid,
) -> Result<Option<VouchedFacts>, diesel::result::Error> {
    let row: Option<(String, serde_json::Value, DateTime<Utc>)> = session_facts::table
        .find(family_id)
        .filter(session_facts::resident_id.eq(resident_id))
        .filter(session_facts::expires_at.gt(Utc::now()))
        .select((
            session_facts::issuer,
            session_facts::facts,
            session_facts::verified_at,
        ))
        .first(connection)
        .await
        .optional()?;
    Ok(row.and_then(|(issuer, facts, verified_at)| {
        Some(VouchedFacts {
            source: FactsSource::SignIn,
            issuer,
            facts: serde_json::from_value(facts).ok()?,
            verified_at,
        })
    }))
}

/// Forgets the facts of an ended session.
pub async fn forget_session(
    connection: &mut AsyncPgConnection,
    family_id: Uuid,
) -> Result<(), diesel::result::Error> {
    diesel::delete(session_facts::table.find(family_id))
        .execute(connection)
        .await?;
    Ok(())
}

/// Deletes the facts of sessions that have expired.
pub async fn purge_expired(
    connection: &mut AsyncPgConnection,
) -> Result<usize, diesel::result::Error> {
    diesel::delete(session_facts::table.filter(session_facts::expires_at.le(Utc::now())))
        .execute(connection)
        .await
}

/// Keeps the facts with one revision of an application.
pub async fn attach(
    connection: &mut AsyncPgConnection,
    submission_id: Uuid,
    revision: i32,
    vouched: &VouchedFacts,
) -> Result<(), diesel::result::Error> {
    diesel::insert_into(submission_identity_facts::table)
        .values((
            submission_identity_facts::submission_id.eq(submission_id),
            submission_identity_facts::revision.eq(revision),
            submission_identity_facts::source.eq(vouched.source.as_str()),
            submission_identity_facts::issuer.eq(&vouched.issuer),
            submission_identity_facts::facts.eq(to_json(&vouched.facts)),
            submission_identity_facts::verified_at.eq(vouched.verified_at),
        ))
        .execute(connection)
        .await?;
    Ok(())
}

/// The facts kept with the latest revision of an application that has any.
pub async fn of_submission(
    connection: &mut AsyncPgConnection,
    submission_id: Uuid,
) -> Result<Option<VouchedFacts>, diesel::result::Error> {
    let row: Option<(String, String, serde_json::Value, DateTime<Utc>)> =
        submission_identity_facts::table
            .filter(submission_identity_facts::submission_id.eq(submission_id))
            .order(submission_identity_facts::revision.desc())
            .select((
                submission_identity_facts::source,
                submission_identity_facts::issuer,
                submission_identity_facts::facts,
                submission_identity_facts::verified_at,
            ))
            .first(connection)
            .await
            .optional()?;
    Ok(row.and_then(|(source, issuer, facts, verified_at)| {
        Some(VouchedFacts {
            source: FactsSource::parse(&source)?,
            issuer,
            facts: serde_json::from_value(facts).ok()?,
            verified_at,
        })
    }))
}

pub(crate) fn to_json(facts: &BasicFacts) -> serde_json::Value {
    serde_json::to_value(facts).unwrap_or(serde_json::Value::Null)
}
