//! Single-use, short-lived login challenges, kept in PostgreSQL so any app server can complete a
//! login another one started.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rand::RngCore;
use uuid::Uuid;

use super::AuthError;
use crate::db::schema::auth_challenges;

/// A stored challenge: the random bytes and, for OIDC, the nonce and PKCE verifier.
#[derive(Debug, Clone, Queryable)]
pub struct Challenge {
    pub id: Uuid,
    pub provider: String,
    pub challenge: Vec<u8>,
    pub oidc_nonce: Option<String>,
    pub pkce_verifier: Option<String>,
}

pub fn random_bytes(length: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; length];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

pub async fn create(
    connection: &mut AsyncPgConnection,
    provider: &str,
    ttl_seconds: i64,
    oidc_nonce: Option<String>,
    pkce_verifier: Option<String>,
) -> Result<Challenge, AuthError> {
    create_with_id(
        connection,
        Uuid::now_v7(),
        provider,
        ttl_seconds,
        oidc_nonce,
        pkce_verifier,
    )
    .await
}

/// As [`create`], with an id chosen by the caller (OIDC puts it in the authorization URL).
pub async fn create_with_id(
    connection: &mut AsyncPgConnection,
    id: Uuid,
    provider: &str,
    ttl_seconds: i64,
    oidc_nonce: Option<String>,
    pkce_verifier: Option<String>,
) -> Result<Challenge, AuthError> {
    let challenge = Challenge {
        id,
        provider: provider.to_owned(),
        challenge: random_bytes(32),
        oidc_nonce,
        pkce_verifier,
    };
    diesel::insert_into(auth_challenges::table)
        .values((
            auth_challenges::id.eq(challenge.id),
            auth_challenges::provider.eq(&challenge.provider),
            auth_challenges::challenge.eq(&challenge.challenge),
            auth_challenges::oidc_nonce.eq(&challenge.oidc_nonce),
            auth_challenges::pkce_verifier.eq(&challenge.pkce_verifier),
            auth_challenges::expires_at.eq(Utc::now() + Duration::seconds(ttl_seconds)),
        ))
        .execute(connection)
        .await?;
    Ok(challenge)
}

/// Marks the challenge used and returns it, if it exists, belongs to `provider`, is unexpired and
/// unused. The single UPDATE makes a replay race lose: only one caller gets the row.
pub async fn consume(
    connection: &mut AsyncPgConnection,
    provider: &str,
    id: Uuid,
) -> Result<Challenge, AuthError> {
    diesel::update(
        auth_challenges::table
            .filter(auth_challenges::id.eq(id))
            .filter(auth_challenges::provider.eq(provider))
            .filter(auth_challenges::used_at.is_null())
            .filter(auth_challenges::expires_at.gt(Utc::now())),
    )
    .set(auth_challenges::used_at.eq(Utc::now()))
    .returning((
        auth_challenges::id,
        auth_challenges::provider,
        auth_challenges::challenge,
        auth_challenges::oidc_nonce,
        auth_challenges::pkce_verifier,
    ))
    .get_result(connection)
    .await
    .optional()?
    .ok_or(AuthError::InvalidChallenge)
}

/// Deletes challenges that can no longer be used.
pub async fn purge_expired(
    connection: &mut AsyncPgConnection,
) -> Result<usize, diesel::result::Error> {
    diesel::delete(auth_challenges::table.filter(auth_challenges::expires_at.lt(Utc::now())))
        .execute(connection)
        .await
}
