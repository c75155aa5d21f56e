//! Staff accounts: password sign-in (argon2id), lockout after repeated failures, and division
//! memberships with roles.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AuthError;
use crate::config::StaffSettings;
use crate::db::schema::{staff, staff_memberships};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Clerk,
    Supervisor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Clerk => "clerk",
            Self::Supervisor => "supervisor",
            Self::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "clerk" => Some(Self::Clerk),
            "supervisor" => Some(Self::Supervisor),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// A division a staff member works in, and their role there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Membership {
    pub division: String,
    pub role: Role,
}

pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&super::challenge::random_bytes(16))
        .map_err(|error| AuthError::Internal(anyhow::anyhow!("salt: {error}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| AuthError::Internal(anyhow::anyhow!("hashing: {error}")))
}

/// Creates a staff account with its memberships (the `staff create` command and admins).
pub async fn create(
    connection: &mut AsyncPgConnection,
    login: &str,
    display_name: &str,
    email: Option<&str>,
    password: &str,
    memberships: &[Membership],
) -> Result<Uuid, AuthError> {
    if password.chars().count() < 12 {
        return Err(AuthError::Malformed(
            "a staff password needs at least 12 characters".to_owned(),
        ));
    }
    let id = Uuid::now_v7();
    let hash = hash_password(password)?;
    use diesel_async::AsyncConnection;
    connection
        .transaction::<_, AuthError, _>(|connection| {
            Box::pin(async move {
                diesel::insert_into(staff::table)
                    .values((
                        staff::id.eq(id),
                        staff::login.eq(login),
                        staff::display_name.eq(display_name),
                        staff::email.eq(email),
                        staff::password_hash.eq(hash),
                    ))
                    .execute(connection)
                    .await
                    .map_err(|error| match error {
                        diesel::result::Error::DatabaseError(
                            diesel::result::DatabaseErrorKind::UniqueViolation,
                            _,
                        ) => AuthError::LoginTaken,
                        other => other.into(),
                    })?;
                for membership in memberships {
                    diesel::insert_into(staff_memberships::table)
                        .values((
                            staff_memberships::staff_id.eq(id),
                            staff_memberships::division.eq(&membership.division),
                            staff_memberships::role.eq(membership.role.as_str()),
                        ))
                        .execute(connection)
                        .await?;
                }
                Ok(id)
            })
        })
        .await
}

#[derive(Queryable)]
struct StoredStaff {
    id: Uuid,
    hash: String,
    failures: i32,
    locked_until: Option<chrono::DateTime<Utc>>,
    active: bool,
}

/// Checks a password. Failures count towards a lockout; success resets the count. The same
/// error is returned for an unknown login and a wrong password, so logins cannot be probed.
pub async fn sign_in(
    connection: &mut AsyncPgConnection,
    settings: &StaffSettings,
    login: &str,
    password: &str,
) -> Result<Uuid, AuthError> {
    let found: Option<StoredStaff> = staff::table
        .filter(staff::login.eq(login))
        .select((
            staff::id,
            staff::password_hash,
            staff::failed_logins,
            staff::locked_until,
            staff::active,
        ))
        .first(connection)
        .await
        .optional()?;
    let Some(StoredStaff {
        id,
        hash,
        failures,
        locked_until,
        active,
    }) = found
    else {
        // Spend the same time as a real check, so timing does not reveal unknown logins.
        let _ = hash_password(password);
        return Err(AuthError::BadCredentials);
    };
    if locked_until.is_some_and(|until| until > Utc::now()) {
        return Err(AuthError::Locked);
    }
    let matches = PasswordHash::new(&hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    if !matches || !active {
        let failures = failures + 1;
        let lock = (failures >= settings.max_failed_logins)
            .then(|| Utc::now() + Duration::minutes(settings.lockout_minutes));
        diesel::update(staff::table.find(id))
            .set((
                staff::failed_logins.eq(if lock.is_some() { 0 } else { failures }),
                staff::locked_until.eq(lock),
            ))
            .execute(connection)
            .await?;
        return Err(if lock.is_some() {
            AuthError::Locked
        } else {
            AuthError::BadCredentials
        });
    }
    diesel::update(staff::table.find(id))
        .set((
            staff::failed_logins.eq(0),
            staff::locked_until.eq(None::<chrono::DateTime<Utc>>),
        ))
        .execute(connection)
        .await?;
    Ok(id)
}

pub async fn memberships(
    connection: &mut AsyncPgConnection,
    staff_id: Uuid,
) -> Result<Vec<Membership>, AuthError> {
    let rows: Vec<(String, String)> = staff_memberships::table
        .filter(staff_memberships::staff_id.eq(staff_id))
        .select((staff_memberships::division, staff_memberships::role))
        .order(staff_memberships::division)
        .load(connection)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(division, role)| Role::parse(&role).map(|role| Membership { division, role }))
        .collect())
}

/// A staff account as an admin sees it (never the password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StaffListing {
    pub id: Uuid,
    pub login: String,
    pub display_name: String,
    pub email: Option<String>,
    pub active: bool,
    pub locked: bool,
    /// Memberships in the divisions asked about only.
    pub memberships: Vec<Membership>,
}

/// The staff of `divisions` with their memberships there, by login: one query.
pub async fn list_in_divisions(
    connection: &mut AsyncPgConnection,
    divisions: &[String],
) -> Result<Vec<StaffListing>, AuthError> {
    type Row = (
        Uuid,
        String,
        String,
        Option<String>,
        bool,
        Option<chrono::DateTime<Utc>>,
        String,
        String,
    );
    let rows: Vec<Row> = staff::table
        .inner_join(staff_memberships::table)
        .filter(staff_memberships::division.eq_any(divisions))
        .order((staff::login, staff_memberships::division))
        .select((
            staff::id,
            staff::login,
            staff::display_name,
            staff::email,
            staff::active,
            staff::locked_until,
            staff_memberships::division,
            staff_memberships::role,
        ))
        .load(connection)
        .await?;
    let now = Utc::now();
    let mut listed: Vec<StaffListing> = Vec::new();
    for (id, login, display_name, email, active, locked_until, division, role) in rows {
        let Some(role) = Role::parse(&role) else {
            continue;
        };
        let membership = Membership { division, role };
        match listed.last_mut() {
            Some(last) if last.id == id => last.memberships.push(membership),
            _ => listed.push(StaffListing {
                id,
                login,
                display_name,
                email,
                active,
                locked: locked_until.is_some_and(|until| until > now),
                memberships: vec![membership],
            }),
        }
    }
    Ok(listed)
}
