//! The service's own sessions: a short-lived access JWT and a rotating refresh token.
//!
//! Access tokens are HS256 JWTs with `kid` (key rotation from configuration), and `iss`, `aud`,
//! `exp` always checked; the algorithm is fixed here, never read from the token. Refresh tokens are
//! random, stored only as SHA-256 hashes, rotated on every use; presenting a used one revokes its
//! whole family (someone copied it), unless within a few seconds of its rotation (concurrent
//! requests that carried the same pair).

use std::cell::RefCell;
use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thread_local::ThreadLocal;
use uuid::Uuid;

use super::AuthError;
use crate::config::SessionSettings;
use crate::db::schema::refresh_tokens;
use crate::forms::Assurance;

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Principal {
    Resident,
    Staff,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    pub exp: i64,
    pub iat: i64,
    pub kind: Principal,
    /// For residents: how they proved who they are.
    pub assurance: Assurance,
    /// The session (refresh-token family) this token belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<Uuid>,
}

/// Signing keys by id; the first signs.
pub struct Keyring {
    signing_kid: String,
    encoding: EncodingKey,
    decoding: HashMap<String, DecodingKey>,
    validation: Validation,
    settings: SessionSettings,
    /// Tokens this keyring has already verified, per thread ([`Keyring::verify`]).
    verified: ThreadLocal<RefCell<HashMap<Box<str>, Claims>>>,
}

/// The most verified tokens one thread remembers before it forgets them all. A resident's
/// access token is sent with every request of its few minutes; a thousand covers the residents
/// a worker serves at once, and a full table costs only a fresh verification per token.
const VERIFIED_PER_THREAD: usize = 1024;

impl std::fmt::Debug for Keyring {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Keyring")
            .field("signing_kid", &self.signing_kid)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// Parses `kid:secret,kid:secret`. An empty list gets a random key (development and tests).
    pub fn from_settings(settings: &SessionSettings) -> anyhow::Result<Self> {
        let configured = settings.signing_keys.expose_secret();
        let mut keys: Vec<(String, Vec<u8>)> = Vec::new();
        for entry in configured
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (kid, secret) = entry.split_once(':').ok_or_else(|| {
                anyhow::anyhow!("identity.session.signing_keys: expected kid:secret")
            })?;
            anyhow::ensure!(
                secret.len() >= 32,
                "identity.session.signing_keys: the secret of `{kid}` is shorter than 32 bytes"
            );
            keys.push((kid.to_owned(), secret.as_bytes().to_vec()));
        }
        if keys.is_empty() {
            let mut secret = vec![0u8; 32];
            rand::rng().fill_bytes(&mut secret);
            keys.push(("ephemeral".to_owned(), secret));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[settings.issuer.as_str()]);
        validation.set_audience(&[settings.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Self {
            signing_kid: keys[0].0.clone(),
            encoding: EncodingKey::from_secret(&keys[0].1),
            decoding: keys
                .iter()
                .map(|(kid, secret)| (kid.clone(), DecodingKey::from_secret(secret)))
                .collect(),
            validation,
            settings: settings.clone(),
            verified: ThreadLocal::new(),
        })
    }

    pub fn issue(
        &self,
        principal: Principal,
        subject: Uuid,
        assurance: Assurance,
        session: Uuid,
    ) -> Result<String, AuthError> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: subject,
            exp: now + self.settings.access_ttl_seconds,
            iat: now,
            kind: principal,
            assurance,
            sid: Some(session),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .map_err(|error| AuthError::Internal(error.into()))
    }

    /// Verifies signature (with the key named by `kid`), algorithm, issuer, audience and expiry.
    ///
    /// A token this keyring verified before on this thread is not decoded again: the keys never
    /// change while the process runs, so the same bytes verify to the same claims, and only the
    /// expiry, which depends on the time, is checked again. Any other bytes (one changed
    /// character) miss and are verified in full. This spares the JWT's decoding, two JSON
    /// parses and the MAC on every request after a session's first (docs/DECISIONS.md).
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        self.verify_at(token, jsonwebtoken::get_current_timestamp())
    }

    /// [`Keyring::verify`] with the time for a remembered token's expiry given (`now`, seconds).
    fn verify_at(&self, token: &str, now: u64) -> Result<Claims, AuthError> {
        let verified = self.verified.get_or_default();
        if let Some(claims) = verified.borrow().get(token) {
            return if self.expired(claims, now) {
                Err(AuthError::ExpiredToken)
            } else {
                Ok(claims.clone())
            };
        }
        let claims = self.verify_in_full(token)?;
        let mut verified = verified.borrow_mut();
        if verified.len() >= VERIFIED_PER_THREAD {
            verified.clear();
        }
        verified.insert(token.into(), claims.clone());
        Ok(claims)
    }

    /// Expired as jsonwebtoken tells it: `exp` more than the leeway before `now`.
    fn expired(&self, claims: &Claims, now: u64) -> bool {
        claims.exp < 0 || (claims.exp as u64) < now.saturating_sub(self.validation.leeway)
    }

    fn verify_in_full(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::InvalidToken)?;
        if header.alg != Algorithm::HS256 {
            return Err(AuthError::InvalidToken);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.decoding.get(kid))
            .ok_or(AuthError::InvalidToken)?;
        jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|error| match error.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::ExpiredToken,
                _ => AuthError::InvalidToken,
            })
    }

    pub fn access_ttl_seconds(&self) -> i64 {
        self.settings.access_ttl_seconds
    }

    pub fn refresh_ttl(&self) -> Duration {
        Duration::seconds(self.settings.refresh_ttl_seconds)
    }

    /// How long a rotated refresh token is still exchanged (concurrent requests that carried it).
    pub fn reuse_grace(&self) -> Duration {
        Duration::seconds(self.settings.refresh_reuse_grace_seconds)
    }
}

/// What a client receives at login and refresh.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub refresh_token: String,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn new_refresh_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Issues an access token and a new refresh token (a new family unless `family` is given).
pub async fn start_session(
    connection: &mut AsyncPgConnection,
    keyring: &Keyring,
    principal: Principal,
    subject: Uuid,
    assurance: Assurance,
    family: Option<Uuid>,
) -> Result<TokenPair, AuthError> {
    let refresh = new_refresh_secret();
    let family = family.unwrap_or_else(Uuid::now_v7);
    let (resident_id, staff_id) = match principal {
        Principal::Resident => (Some(subject), None),
        Principal::Staff => (None, Some(subject)),
    };
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(Uuid::now_v7()),
            refresh_tokens::token_hash.eq(hash(&refresh)),
            refresh_tokens::family_id.eq(family),
            refresh_tokens::resident_id.eq(resident_id),
            refresh_tokens::staff_id.eq(staff_id),
            refresh_tokens::assurance.eq(assurance.as_str()),
            refresh_tokens::expires_at.eq(Utc::now() + keyring.refresh_ttl()),
        ))
        .execute(connection)
        .await?;
    Ok(TokenPair {
        access_token: keyring.issue(principal, subject, assurance, family)?,
        token_type: "Bearer",
        expires_in: keyring.access_ttl_seconds(),
        refresh_token: refresh,
    })
}

/// Starts a resident's session; the basic facts the provider vouched for (if any) are kept with
/// it, for the applications made in it.
pub async fn start_resident_session(
    connection: &mut AsyncPgConnection,
    keyring: &Keyring,
    resident: Uuid,
    identity: &super::VerifiedIdentity,
) -> Result<TokenPair, AuthError> {
    let family = Uuid::now_v7();
    if let Some(facts) = identity.facts.as_ref().filter(|facts| !facts.is_empty()) {
        super::facts::remember_for_session(
            connection,
            family,
            resident,
            &identity.issuer,
            facts,
            Utc::now() + keyring.refresh_ttl(),
        )
        .await?;
    }
    start_session(
        connection,
        keyring,
        Principal::Resident,
        resident,
        identity.assurance,
        Some(family),
    )
    .await
}

#[derive(Queryable)]
struct StoredRefresh {
    id: Uuid,
    family_id: Uuid,
    resident_id: Option<Uuid>,
    staff_id: Option<Uuid>,
    assurance: String,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

/// Exchanges a refresh token for a new pair. Reuse of an already-rotated token revokes the
/// family: either the client or a thief has a copy, and we cannot tell which.
pub async fn refresh(
    connection: &mut AsyncPgConnection,
    keyring: &Keyring,
    token: &str,
) -> Result<TokenPair, AuthError> {
    use diesel_async::AsyncConnection;
    let token_hash = hash(token);
    // The outer Result rolls back; the inner one is an answer to give after committing (the
    // family revocation on reuse must persist although the request fails).
    connection
        .transaction::<Result<TokenPair, AuthError>, AuthError, _>(|connection| {
            Box::pin(async move {
                let stored: StoredRefresh = refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(&token_hash))
                    .select((
                        refresh_tokens::id,
                        refresh_tokens::family_id,
                        refresh_tokens::resident_id,
                        refresh_tokens::staff_id,
                        refresh_tokens::assurance,
                        refresh_tokens::expires_at,
                        refresh_tokens::used_at,
                        refresh_tokens::revoked_at,
                    ))
                    .for_update()
                    .first(connection)
                    .await
                    .optional()?
                    .ok_or(AuthError::InvalidToken)?;
                if stored.revoked_at.is_some() || stored.expires_at < Utc::now() {
                    return Ok(Err(AuthError::InvalidToken));
                }
                match stored.used_at {
                    // Rotated a moment ago by a concurrent request that carried the same pair
                    // (the row lock made this one wait for it): this request gets a pair of the
                    // same family too, and both stay signed in.
                    Some(used_at) if Utc::now() - used_at <= keyring.reuse_grace() => {}
                    Some(_) => {
                        revoke_family(connection, stored.family_id).await?;
                        tracing::warn!(
                            "a rotated refresh token was presented again; family revoked"
                        );
                        return Ok(Err(AuthError::InvalidToken));
                    }
                    None => {
                        diesel::update(refresh_tokens::table.find(stored.id))
                            .set(refresh_tokens::used_at.eq(Utc::now()))
                            .execute(connection)
                            .await?;
                    }
                }
                let assurance: Assurance =
                    serde_json::from_value(serde_json::Value::String(stored.assurance))
                        .map_err(|_| AuthError::InvalidToken)?;
                let (principal, subject) = match (stored.resident_id, stored.staff_id) {
                    (Some(resident), _) => (Principal::Resident, resident),
                    (None, Some(staff)) => (Principal::Staff, staff),
                    (None, None) => return Err(AuthError::InvalidToken),
                };
                start_session(
                    connection,
                    keyring,
                    principal,
                    subject,
                    assurance,
                    Some(stored.family_id),
                )
                .await
                .map(Ok)
            })
        })
        .await?
}

/// Whether the session an access token belongs to is still open for its subject: not logged
/// out, not revoked (reuse, password change, deactivation), not expired. One lookup on the
/// family index, made for every request, so that ending a session ends its access tokens at once
/// rather than when they expire.
pub async fn is_live(
    connection: &mut AsyncPgConnection,
    claims: &Claims,
) -> Result<bool, AuthError> {
    let Some(family) = claims.sid else {
        return Ok(false);
    };
    let open = refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(family))
        .filter(refresh_tokens::revoked_at.is_null())
        .filter(refresh_tokens::expires_at.gt(Utc::now()));
    let query = match claims.kind {
        Principal::Resident => {
            diesel::select(diesel::dsl::exists(
                open.filter(refresh_tokens::resident_id.eq(claims.sub)),
            ))
            .get_result::<bool>(connection)
            .await?
        }
        Principal::Staff => {
            diesel::select(diesel::dsl::exists(
                open.filter(refresh_tokens::staff_id.eq(claims.sub)),
            ))
            .get_result::<bool>(connection)
            .await?
        }
    };
    Ok(query)
}

async fn revoke_family(connection: &mut AsyncPgConnection, family: Uuid) -> Result<(), AuthError> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Utc::now()))
    .execute(connection)
    .await?;
    super::facts::forget_session(connection, family).await?;
    Ok(())
}

/// Ends every session of a staff member (a deactivated account).
pub async fn revoke_all_of_staff(
    connection: &mut AsyncPgConnection,
    staff_id: Uuid,
) -> Result<(), AuthError> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::staff_id.eq(staff_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Utc::now()))
    .execute(connection)
    .await?;
    Ok(())
}

/// Logout: revokes the family of the given refresh token. Unknown tokens are ignored, so logout
/// is idempotent.
pub async fn logout(connection: &mut AsyncPgConnection, token: &str) -> Result<(), AuthError> {
    let family: Option<Uuid> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash(token)))
        .select(refresh_tokens::family_id)
        .first(connection)
        .await
        .optional()?;
    if let Some(family) = family {
        revoke_family(connection, family).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    fn settings(keys: &str) -> SessionSettings {
        SessionSettings {
            issuer: "madoguchi".to_owned(),
            audience: "madoguchi-api".to_owned(),
            access_ttl_seconds: 60,
            refresh_ttl_seconds: 3600,
            refresh_reuse_grace_seconds: 10,
            signing_keys: SecretString::from(keys.to_owned()),
        }
    }

    const OLD: &str = "old:0123456789abcdef0123456789abcdef";
    const NEW: &str = "new:fedcba9876543210fedcba9876543210";

    #[test]
    fn a_token_verifies_and_carries_its_claims() {
        let keyring = Keyring::from_settings(&settings(NEW)).unwrap();
        let subject = Uuid::now_v7();
        let token = keyring
            .issue(
                Principal::Resident,
                subject,
                Assurance::CardAuth,
                Uuid::now_v7(),
            )
            .unwrap();
        let claims = keyring.verify(&token).unwrap();
        assert_eq!(claims.sub, subject);
        assert_eq!(claims.assurance, Assurance::CardAuth);
    }

    #[test]
    fn a_remembered_token_still_expires_and_other_bytes_are_verified_in_full() {
        let keyring = Keyring::from_settings(&settings(NEW)).unwrap();
        let token = keyring
            .issue(
                Principal::Resident,
                Uuid::now_v7(),
                Assurance::None,
                Uuid::now_v7(),
            )
            .unwrap();
        let now = jsonwebtoken::get_current_timestamp();
        let first = keyring.verify_at(&token, now).unwrap();
        assert_eq!(keyring.verify_at(&token, now).unwrap().sub, first.sub);
        // The access TTL is 60 s and the leeway 5 s: remembered or not, it has expired by then.
        assert!(matches!(
            keyring.verify_at(&token, now + 66),
            Err(AuthError::ExpiredToken)
        ));
        assert!(keyring.verify_at(&token, now + 64).is_ok());
        // A token differing in one character of its MAC is not the remembered one.
        let at = token.len() - 10;
        let swapped = if &token[at..=at] == "A" { "B" } else { "A" };
        let tampered = format!("{}{swapped}{}", &token[..at], &token[at + 1..]);
        assert!(matches!(
            keyring.verify(&tampered),
            Err(AuthError::InvalidToken)
        ));
        // Another keyring (other keys) remembers nothing of this one's tokens.
        let other = Keyring::from_settings(&settings(OLD)).unwrap();
        assert!(matches!(other.verify(&token), Err(AuthError::InvalidToken)));
    }

    #[test]
    fn rotation_accepts_tokens_of_an_older_key() {
        let old = Keyring::from_settings(&settings(OLD)).unwrap();
        let rotated = Keyring::from_settings(&settings(&format!("{NEW},{OLD}"))).unwrap();
        let token = old
            .issue(
                Principal::Staff,
                Uuid::now_v7(),
                Assurance::None,
                Uuid::now_v7(),
            )
            .unwrap();
        assert!(rotated.verify(&token).is_ok());
        let retired = Keyring::from_settings(&settings(NEW)).unwrap();
        assert!(matches!(
            retired.verify(&token),
            Err(AuthError::InvalidToken)
        ));
    }

    #[test]
    fn wrong_audience_alg_none_and_expiry_are_refused() {
        let keyring = Keyring::from_settings(&settings(NEW)).unwrap();
        let mut other = settings(NEW);
        other.audience = "someone-else".to_owned();
        let foreign = Keyring::from_settings(&other).unwrap();
        let token = foreign
            .issue(
                Principal::Resident,
                Uuid::now_v7(),
                Assurance::CardAuth,
                Uuid::now_v7(),
            )
            .unwrap();
        assert!(matches!(
            keyring.verify(&token),
            Err(AuthError::InvalidToken)
        ));

        // alg: none with the same claims and kid.
        let payload = token.split('.').nth(1).unwrap();
        let none_header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            br#"{"alg":"none","typ":"JWT","kid":"new"}"#,
        );
        assert!(matches!(
            keyring.verify(&format!("{none_header}.{payload}.")),
            Err(AuthError::InvalidToken)
        ));

        let mut expired = settings(NEW);
        expired.access_ttl_seconds = -60;
        let stale = Keyring::from_settings(&expired).unwrap();
        let token = stale
            .issue(
                Principal::Resident,
                Uuid::now_v7(),
                Assurance::CardAuth,
                Uuid::now_v7(),
            )
            .unwrap();
        assert!(matches!(
            keyring.verify(&token),
            Err(AuthError::ExpiredToken)
        ));
    }
}
