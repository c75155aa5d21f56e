//! What a resident signs with the My Number Card for a `card-sign` procedure, and the single-use
//! nonces that make each signature count once.
//!
//! The signed bytes bind the procedure, the exact definition version, the answers, the resident's
//! account and a nonce the server issued to that account. A stored signature therefore cannot be
//! sent again, by the same resident or another one: the nonce is consumed in the transaction that
//! stores the application.

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use uuid::Uuid;

use super::SubmissionError;
use crate::db::schema::signing_nonces;
use crate::forms::Procedure;

/// How long a resident has between asking for the bytes to sign and sending the application.
pub const NONCE_TTL_MINUTES: i64 = 30;

/// The exact bytes a resident signs: canonical JSON (sorted keys, no spaces).
pub fn payload(procedure: &Procedure, data: &Value, resident_id: Uuid, nonce: &str) -> Vec<u8> {
    let document = json!({
        "procedure_id": procedure.definition.id,
        "content_hash": procedure.content_hash,
        "data": data,
        "resident_id": resident_id,
        "nonce": nonce,
    });
    serde_json::to_vec(&document).unwrap_or_default()
}

/// A new nonce for `resident_id` to sign an application to `procedure_id` with.
pub async fn issue_nonce(
    connection: &mut AsyncPgConnection,
    resident_id: Uuid,
    procedure_id: &str,
) -> Result<String, SubmissionError> {
    let nonce = hex::encode(crate::identity::challenge::random_bytes(24));
    diesel::insert_into(signing_nonces::table)
        .values((
            signing_nonces::nonce.eq(&nonce),
            signing_nonces::resident_id.eq(resident_id),
            signing_nonces::procedure_id.eq(procedure_id),
            signing_nonces::expires_at.eq(Utc::now() + Duration::minutes(NONCE_TTL_MINUTES)),
        ))
        .execute(connection)
        .await?;
    Ok(nonce)
}

/// Uses the nonce up, inside the caller's transaction. A nonce that was not issued to this
/// resident for this procedure, was used, or expired is refused; of two racing uses one wins.
pub async fn consume_nonce(
    connection: &mut AsyncPgConnection,
    resident_id: Uuid,
    procedure_id: &str,
    nonce: &str,
) -> Result<(), SubmissionError> {
    let now = Utc::now();
    let used = diesel::update(
        signing_nonces::table
            .filter(signing_nonces::nonce.eq(nonce))
            .filter(signing_nonces::resident_id.eq(resident_id))
            .filter(signing_nonces::procedure_id.eq(procedure_id))
            .filter(signing_nonces::used_at.is_null())
            .filter(signing_nonces::expires_at.gt(now)),
    )
    .set(signing_nonces::used_at.eq(now))
    .execute(connection)
    .await?;
    if used == 1 {
        Ok(())
    } else {
        Err(SubmissionError::SigningNonce)
    }
}

/// Deletes nonces past their expiry (used ones included: the application keeps the signature).
pub async fn purge_expired(
    connection: &mut AsyncPgConnection,
) -> Result<usize, diesel::result::Error> {
    diesel::delete(signing_nonces::table.filter(signing_nonces::expires_at.lt(Utc::now())))
        .execute(connection)
        .await
}
