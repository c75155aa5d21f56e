//! Staff accounts: password sign-in (argon2id), growing waits after repeated failures, sign-in through
//! the city's own OpenID Provider, and division memberships with roles.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AuthError;
use super::hashing::off_the_workers;
use super::staff_admin::{AccountAction, record};
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

/// An argon2id hash of `password`, computed off the request workers.
pub async fn hash_password(password: &str) -> Result<String, AuthError> {
    let password = password.to_owned();
    off_the_workers(move || hash_now(&password)).await?
}

fn hash_now(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&super::challenge::random_bytes(16))
        .map_err(|error| AuthError::Internal(anyhow::anyhow!("salt: {error}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| AuthError::Internal(anyhow::anyhow!("hashing: {error}")))
}

/// The shortest staff password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Whether `password` is long enough for a staff account.
pub fn long_enough(password: &str) -> bool {
    password.chars().count() >= MIN_PASSWORD_CHARS
}

/// The domain's guard of [`long_enough`]; the routes report a field error before it is reached.
pub(super) fn require_long_enough(password: &str) -> Result<(), AuthError> {
    if long_enough(password) {
        Ok(())
    } else {
        Err(AuthError::Malformed(format!(
            "a staff password needs at least {MIN_PASSWORD_CHARS} characters"
        )))
    }
}

/// Creates a staff account with its memberships (the `staff create` command, `created_by`
/// `None`, and admins). Without a password the account can only sign in through the city's
/// OpenID Provider.
pub async fn create(
    connection: &mut AsyncPgConnection,
    login: &str,
    display_name: &str,
    email: Option<&str>,
    password: Option<&str>,
    memberships: &[Membership],
    created_by: Option<Uuid>,
) -> Result<Uuid, AuthError> {
    password.map(require_long_enough).transpose()?;
    let id = Uuid::now_v7();
    let hash = match password {
        Some(password) => Some(hash_password(password).await?),
        None => None,
    };
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
                        // A password an admin chose is replaced at first use.
                        staff::password_change_required
                            .eq(created_by.is_some() && password.is_some()),
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
                record(
                    connection,
                    id,
                    created_by,
                    AccountAction::Created,
                    None,
                    None,
                )
                .await?;
                for membership in memberships {
                    diesel::insert_into(staff_memberships::table)
                        .values((
                            staff_memberships::staff_id.eq(id),
                            staff_memberships::division.eq(&membership.division),
                            staff_memberships::role.eq(membership.role.as_str()),
                        ))
                        .execute(connection)
                        .await?;
                    let (division, role) =
                        (Some(membership.division.as_str()), Some(membership.role));
                    record(
                        connection,
                        id,
                        created_by,
                        AccountAction::RoleSet,
                        division,
                        role,
                    )
                    .await?;
                }
                Ok(id)
            })
        })
        .await
}

/// An attempt reserved against an account's failure count, before its password is checked.
#[derive(QueryableByName)]
struct Reserved {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Text)]
    hash: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    active: bool,
}

/// Counts an attempt as failed before its password is checked, in one statement, and sets the
/// wait before the next one once `max_failed_logins` is reached (doubling, capped). `None` when
/// there is nothing to check: no such login, no password, or inside a wait. Parallel attempts
/// queue on the row, so no more passwords are checked than the count allows.
async fn reserve_attempt(
    connection: &mut AsyncPgConnection,
    settings: &StaffSettings,
    login: &str,
) -> Result<Option<Reserved>, diesel::result::Error> {
    use diesel::sql_types::{BigInt, Integer, Text};
    diesel::sql_query(
        "UPDATE staff SET failed_logins = failed_logins + 1, locked_until = CASE \
           WHEN failed_logins + 1 >= $2 THEN now() + make_interval(secs => LEAST($4::float8, \
             $3::float8 * power(2, LEAST(failed_logins + 1 - $2, 30)))) \
           ELSE NULL END \
         WHERE login = $1 AND password_hash IS NOT NULL \
           AND (locked_until IS NULL OR locked_until <= now()) \
         RETURNING id, password_hash AS hash, active",
    )
    .bind::<Text, _>(login)
    .bind::<Integer, _>(settings.max_failed_logins)
    .bind::<BigInt, _>(settings.login_delay_seconds)
    .bind::<BigInt, _>(settings.login_delay_max_seconds)
    .get_result(connection)
    .await
    .optional()
}

/// A hash of nothing anyone types, checked when there is no real one so that every refusal
/// costs the same argon2 work.
static DUMMY_HASH: std::sync::LazyLock<Option<String>> =
    std::sync::LazyLock::new(|| hash_now("no account has this password").ok());

/// Whether `password` matches `hash`; without a hash, the same work against a dummy and `false`.
/// Off the request workers.
async fn verify_password(password: &str, hash: Option<String>) -> Result<bool, AuthError> {
    let password = password.to_owned();
    off_the_workers(move || verify_now(&password, hash.as_deref())).await
}

fn verify_now(password: &str, hash: Option<&str>) -> bool {
    let (hash, real) = match hash {
        Some(hash) => (hash, true),
        None => (DUMMY_HASH.as_deref().unwrap_or_default(), false),
    };
    let matches = PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    real && matches
}

/// Checks a password. Every attempt counts as a failure until the password is found right (then
/// the count is reset); after `max_failed_logins` failures each further attempt must wait
/// longer. An unknown login, a wrong password, an account without a password, a deactivated
/// account and an attempt inside a wait all get the same error after the same argon2 work, so
/// neither logins nor waits can be probed.
pub async fn sign_in(
    connection: &mut AsyncPgConnection,
    settings: &StaffSettings,
    login: &str,
    password: &str,
) -> Result<Uuid, AuthError> {
    let reserved = reserve_attempt(connection, settings, login).await?;
    let matches = verify_password(password, reserved.as_ref().map(|r| r.hash.clone())).await?;
    match reserved {
        Some(Reserved { id, active, .. }) if matches && active => {
            diesel::update(staff::table.find(id))
                .set((
                    staff::failed_logins.eq(0),
                    staff::locked_until.eq(None::<chrono::DateTime<Utc>>),
                ))
                .execute(connection)
                .await?;
            Ok(id)
        }
        _ => Err(AuthError::BadCredentials),
    }
}

/// Challenges of staff sign-ins are kept apart from residents', so a resident's `state` can never
/// complete a staff sign-in or the other way round.
pub const OIDC_CHALLENGE: &str = "staff-oidc";

/// Completes a sign-in started at the city's OpenID Provider (the JSON edge and the console
/// alike): the challenge is used up, the code exchanged (PKCE, nonce), and the staff account the
/// provider vouched for is found or linked ([`sign_in_with_provider`]). No connection is held
/// while the provider answers.
pub async fn complete_provider_sign_in(
    pool: &crate::db::DbPool,
    client: &super::oidc::OidcClient,
    login_claim: &str,
    challenge_id: Uuid,
    code: &str,
) -> Result<Uuid, AuthError> {
    let mut connection = crate::db::connection(pool).await?;
    let stored = super::challenge::consume(&mut connection, OIDC_CHALLENGE, challenge_id).await?;
    drop(connection);
    let (Some(nonce), Some(verifier)) = (&stored.oidc_nonce, &stored.pkce_verifier) else {
        return Err(AuthError::InvalidChallenge);
    };
    let (identity, claimed_login) = client
        .complete_with_claim(code, verifier, nonce, login_claim)
        .await?;
    let mut connection = crate::db::connection(pool).await?;
    sign_in_with_provider(
        &mut connection,
        &identity.issuer,
        &identity.subject,
        claimed_login.as_deref(),
    )
    .await
}

/// Signs in the staff member the city's OpenID Provider vouched for as (`issuer`, `subject`).
///
/// An account already linked to that subject is the one. Otherwise the active account whose
/// login is `login` (the configured claim), if an admin made it for IdP sign-in (it has no
/// password) and it is not yet linked at this issuer, is linked to it now, so the IdP decides
/// who can sign in and an admin only has to create the account with the person's IdP login. A
/// password account is never linked: whoever can choose their IdP user name would otherwise take
/// it over. Password waits do not apply: the password was not used.
pub async fn sign_in_with_provider(
    connection: &mut AsyncPgConnection,
    issuer: &str,
    subject: &str,
    login: Option<&str>,
) -> Result<Uuid, AuthError> {
    let linked = || {
        staff::table
            .filter(staff::oidc_issuer.eq(issuer))
            .filter(staff::oidc_subject.eq(subject))
            .select((staff::id, staff::active))
    };
    let found: Option<(Uuid, bool)> = linked().first(connection).await.optional()?;
    if let Some((id, active)) = found {
        return if active {
            Ok(id)
        } else {
            Err(AuthError::StaffNotRegistered)
        };
    }
    let Some(login) = login else {
        return Err(AuthError::StaffNotRegistered);
    };
    let claimed: Option<Uuid> = diesel::update(
        staff::table
            .filter(staff::login.eq(login))
            .filter(staff::password_hash.is_null())
            // Unlinked, or linked at a provider the city no longer uses (it moved to another).
            .filter(
                staff::oidc_subject
                    .is_null()
                    .or(staff::oidc_issuer.ne(issuer)),
            )
            .filter(staff::active.eq(true)),
    )
    .set((
        staff::oidc_issuer.eq(issuer),
        staff::oidc_subject.eq(subject),
    ))
    .returning(staff::id)
    .get_result(connection)
    .await
    .optional()
    .or_else(|error| match error {
        // The same person signing in twice at once: the other request linked it.
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        ) => Ok(None),
        other => Err(other),
    })?;
    if let Some(id) = claimed {
        record(
            connection,
            id,
            Some(id),
            AccountAction::LinkedToProvider,
            None,
            None,
        )
        .await?;
        tracing::info!(staff_id = %id, "staff account linked to the OpenID Provider");
        return Ok(id);
    }
    match linked()
        .first::<(Uuid, bool)>(connection)
        .await
        .optional()?
    {
        Some((id, true)) => Ok(id),
        _ => Err(AuthError::StaffNotRegistered),
    }
}

/// Where a signed-in staff member stands: their memberships, and whether they must first
/// replace a password an admin gave them.
#[derive(Debug, Clone)]
pub struct Standing {
    pub memberships: Vec<Membership>,
    pub password_change_required: bool,
}

/// The standing of an active staff member, in one query; `None` when the account is deactivated
/// (or gone), so its unexpired access tokens stop working at once.
pub async fn standing(
    connection: &mut AsyncPgConnection,
    staff_id: Uuid,
) -> Result<Option<Standing>, AuthError> {
    let rows: Vec<(bool, bool, Option<String>, Option<String>)> = staff::table
        .left_join(staff_memberships::table)
        .filter(staff::id.eq(staff_id))
        .select((
            staff::active,
            staff::password_change_required,
            staff_memberships::division.nullable(),
            staff_memberships::role.nullable(),
        ))
        .order(staff_memberships::division)
        .load(connection)
        .await?;
    // Every row repeats the account's columns; no rows: no such account.
    let [(true, password_change_required, ..), ..] = rows.as_slice() else {
        return Ok(None);
    };
    let password_change_required = *password_change_required;
    Ok(Some(Standing {
        memberships: rows
            .into_iter()
            .filter_map(|(_, _, division, role)| {
                let role = Role::parse(role.as_deref()?)?;
                Some(Membership {
                    division: division?,
                    role,
                })
            })
            .collect(),
        password_change_required,
    }))
}

/// A staff account as an admin sees it (never the password hash).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StaffListing {
    pub id: Uuid,
    pub login: String,
    pub display_name: String,
    pub email: Option<String>,
    pub active: bool,
    /// Password sign-in is in a wait after repeated failures (it ends by itself).
    pub locked: bool,
    /// The account can sign in with a password.
    pub has_password: bool,
    /// The account is linked to a person at the city's OpenID Provider.
    pub linked_to_provider: bool,
    /// Memberships in the divisions asked about only.
    pub memberships: Vec<Membership>,
}

#[derive(Queryable)]
struct ListingRow {
    id: Uuid,
    login: String,
    display_name: String,
    email: Option<String>,
    active: bool,
    locked_until: Option<chrono::DateTime<Utc>>,
    has_password: bool,
    linked_to_provider: bool,
    division: String,
    role: String,
}

/// The staff of `divisions` with their memberships there, by login: one query.
pub async fn list_in_divisions(
    connection: &mut AsyncPgConnection,
    divisions: &[String],
) -> Result<Vec<StaffListing>, AuthError> {
    let rows: Vec<ListingRow> = staff::table
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
            staff::password_hash.is_not_null(),
            staff::oidc_subject.is_not_null(),
            staff_memberships::division,
            staff_memberships::role,
        ))
        .load(connection)
        .await?;
    let now = Utc::now();
    let mut listed: Vec<StaffListing> = Vec::new();
    for row in rows {
        let Some(role) = Role::parse(&row.role) else {
            continue;
        };
        let membership = Membership {
            division: row.division,
            role,
        };
        match listed.last_mut() {
            Some(last) if last.id == row.id => last.memberships.push(membership),
            _ => listed.push(StaffListing {
                id: row.id,
                login: row.login,
                display_name: row.display_name,
                email: row.email,
                active: row.active,
                locked: row.locked_until.is_some_and(|until| until > now),
                has_password: row.has_password,
                linked_to_provider: row.linked_to_provider,
                memberships: vec![membership],
            }),
        }
    }
    Ok(listed)
}

/// A staff member's own account.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OwnAccount {
    pub id: Uuid,
    pub login: String,
    pub display_name: String,
    pub email: Option<String>,
    pub has_password: bool,
    /// The password an admin gave must be replaced (`POST /staff/me/password`) first.
    pub password_change_required: bool,
    pub memberships: Vec<Membership>,
}

pub async fn own_account(
    connection: &mut AsyncPgConnection,
    staff_id: Uuid,
    memberships: Vec<Membership>,
) -> Result<OwnAccount, AuthError> {
    type Row = (String, String, Option<String>, bool, bool);
    let (login, display_name, email, has_password, password_change_required): Row = staff::table
        .find(staff_id)
        .select((
            staff::login,
            staff::display_name,
            staff::email,
            staff::password_hash.is_not_null(),
            staff::password_change_required,
        ))
        .first(connection)
        .await?;
    Ok(OwnAccount {
        id: staff_id,
        login,
        display_name,
        email,
        has_password,
        password_change_required,
        memberships,
    })
}

/// Changes a staff member's own password after checking the current one (a wrong one counts
/// towards the waits, as at sign-in), and ends every session of the account: whoever else
/// knew the old password is signed out.
pub async fn change_password(
    connection: &mut AsyncPgConnection,
    settings: &StaffSettings,
    staff_id: Uuid,
    current: &str,
    new: &str,
) -> Result<(), AuthError> {
    require_long_enough(new)?;
    let login: String = staff::table
        .find(staff_id)
        .select(staff::login)
        .first(connection)
        .await?;
    sign_in(connection, settings, &login, current).await?;
    let hash = hash_password(new).await?;
    use diesel_async::AsyncConnection;
    connection
        .transaction::<_, AuthError, _>(|connection| {
            Box::pin(async move {
                diesel::update(staff::table.find(staff_id))
                    .set((
                        staff::password_hash.eq(hash),
                        staff::password_change_required.eq(false),
                    ))
                    .execute(connection)
                    .await?;
                let action = AccountAction::PasswordChanged;
                record(connection, staff_id, Some(staff_id), action, None, None).await?;
                super::session::revoke_all_of_staff(connection, staff_id).await
            })
        })
        .await
}
