//! Admins changing staff accounts: roles per division, leaving a division, deactivation; and the
//! audit trail of every change to an account (who did what, when), written in the transaction of
//! the change.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use super::AuthError;
use super::staff::{Membership, Role};
use crate::db::schema::{staff, staff_account_events, staff_memberships};

/// What happened to a staff account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountAction {
    Created,
    RoleSet,
    RemovedFromDivision,
    Deactivated,
    Reactivated,
    PasswordChanged,
    PasswordReset,
    LinkedToProvider,
}

impl AccountAction {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::RoleSet => "role_set",
            Self::RemovedFromDivision => "removed_from_division",
            Self::Deactivated => "deactivated",
            Self::Reactivated => "reactivated",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::LinkedToProvider => "linked_to_provider",
        }
    }
}

/// Appends to an account's audit trail. `actor` is who did it (`None`: the command line);
/// `division` and `role` say where, for membership changes.
pub(super) async fn record(
    connection: &mut AsyncPgConnection,
    staff_id: Uuid,
    actor: Option<Uuid>,
    action: AccountAction,
    division: Option<&str>,
    role: Option<Role>,
) -> Result<(), diesel::result::Error> {
    diesel::insert_into(staff_account_events::table)
        .values((
            staff_account_events::staff_id.eq(staff_id),
            staff_account_events::actor_id.eq(actor),
            staff_account_events::action.eq(action.as_str()),
            staff_account_events::division.eq(division),
            staff_account_events::role.eq(role.map(Role::as_str)),
        ))
        .execute(connection)
        .await?;
    Ok(())
}

/// Why an admin's change to an account was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no such staff account")]
    NotFound,
    #[error("the account also works in divisions the caller does not administer")]
    OutsideDivisions,
    #[error("the division would be left without an active admin")]
    LastAdmin,
    /// The caller stopped being an admin of the division while the change waited its turn.
    #[error("the caller is no admin of the division")]
    NotAdmin,
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<diesel::result::Error> for AdminError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Auth(error.into())
    }
}

/// Every membership of an account, in all divisions (`None`: no such account).
async fn all_memberships(
    connection: &mut AsyncPgConnection,
    staff_id: Uuid,
) -> Result<Option<Vec<Membership>>, AdminError> {
    let rows: Vec<(Option<String>, Option<String>)> = staff::table
        .left_join(staff_memberships::table)
        .filter(staff::id.eq(staff_id))
        .select((
            staff_memberships::division.nullable(),
            staff_memberships::role.nullable(),
        ))
        .load(connection)
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        rows.into_iter()
            .filter_map(|(division, role)| {
                Some(Membership {
                    division: division?,
                    role: Role::parse(role.as_deref()?)?,
                })
            })
            .collect(),
    ))
}

/// Locks the admin memberships of `division` until the transaction ends, so changes to who
/// administers it take turns: the second of two admins demoting each other at once waits, then
/// sees the first's change and is refused as the last admin. Returns the admins.
async fn lock_admins(
    connection: &mut AsyncPgConnection,
    division: &str,
) -> Result<Vec<Uuid>, AdminError> {
    Ok(staff_memberships::table
        .filter(staff_memberships::division.eq(division))
        .filter(staff_memberships::role.eq(Role::Admin.as_str()))
        .select(staff_memberships::staff_id)
        .for_update()
        .load(connection)
        .await?)
}

/// [`lock_admins`], then refuses an `actor` who is no longer one of them.
async fn lock_admins_as(
    connection: &mut AsyncPgConnection,
    division: &str,
    actor: Uuid,
) -> Result<(), AdminError> {
    if lock_admins(connection, division).await?.contains(&actor) {
        Ok(())
    } else {
        Err(AdminError::NotAdmin)
    }
}

/// Refuses a change that leaves `division` without an active admin (nobody could then manage
/// its staff). Runs inside the changing transaction, after the change.
async fn ensure_an_admin_remains(
    connection: &mut AsyncPgConnection,
    division: &str,
) -> Result<(), AdminError> {
    let admins: i64 = staff_memberships::table
        .inner_join(staff::table)
        .filter(staff_memberships::division.eq(division))
        .filter(staff_memberships::role.eq(Role::Admin.as_str()))
        .filter(staff::active.eq(true))
        .count()
        .get_result(connection)
        .await?;
    if admins == 0 {
        Err(AdminError::LastAdmin)
    } else {
        Ok(())
    }
}

/// After a change to an account's membership of `division`, in its transaction: refuses it if
/// the division is left without an active admin, else puts it on the audit trail.
async fn settle(
    connection: &mut AsyncPgConnection,
    actor: Uuid,
    staff_id: Uuid,
    division: &str,
    (action, role): (AccountAction, Option<Role>),
) -> Result<(), AdminError> {
    ensure_an_admin_remains(connection, division).await?;
    record(
        connection,
        staff_id,
        Some(actor),
        action,
        Some(division),
        role,
    )
    .await?;
    Ok(())
}

/// Gives an account `role` in `division`: a new membership, or a changed role. A new membership
/// needs an admin of every division the person already works in (`administered`): otherwise one
/// division's admin could pull another's staff in and so stop that division's admin from
/// deactivating them or resetting their password.
pub async fn set_membership(
    connection: &mut AsyncPgConnection,
    actor: Uuid,
    staff_id: Uuid,
    division: &str,
    role: Role,
    administered: &[String],
) -> Result<(), AdminError> {
    use diesel::upsert::excluded;
    use diesel_async::AsyncConnection;
    connection
        .transaction::<_, AdminError, _>(|connection| {
            Box::pin(async move {
                lock_admins_as(connection, division, actor).await?;
                let memberships = all_memberships(connection, staff_id)
                    .await?
                    .ok_or(AdminError::NotFound)?;
                let joins = !memberships.iter().any(|m| m.division == division);
                if joins
                    && memberships
                        .iter()
                        .any(|m| !administered.contains(&m.division))
                {
                    return Err(AdminError::OutsideDivisions);
                }
                diesel::insert_into(staff_memberships::table)
                    .values((
                        staff_memberships::staff_id.eq(staff_id),
                        staff_memberships::division.eq(division),
                        staff_memberships::role.eq(role.as_str()),
                    ))
                    .on_conflict((staff_memberships::staff_id, staff_memberships::division))
                    .do_update()
                    .set(staff_memberships::role.eq(excluded(staff_memberships::role)))
                    .execute(connection)
                    .await?;
                let change = (AccountAction::RoleSet, Some(role));
                settle(connection, actor, staff_id, division, change).await
            })
        })
        .await
}

/// Takes an account out of `division`.
pub async fn remove_membership(
    connection: &mut AsyncPgConnection,
    actor: Uuid,
    staff_id: Uuid,
    division: &str,
) -> Result<(), AdminError> {
    use diesel_async::AsyncConnection;
    connection
        .transaction::<_, AdminError, _>(|connection| {
            Box::pin(async move {
                lock_admins_as(connection, division, actor).await?;
                let removed = diesel::delete(
                    staff_memberships::table
                        .filter(staff_memberships::staff_id.eq(staff_id))
                        .filter(staff_memberships::division.eq(division)),
                )
                .execute(connection)
                .await?;
                if removed == 0 {
                    return Err(AdminError::NotFound);
                }
                let change = (AccountAction::RemovedFromDivision, None);
                settle(connection, actor, staff_id, division, change).await
            })
        })
        .await
}

/// The memberships of an account whose every division the caller administers: an account
/// that also works elsewhere is not one division's alone to switch off or to reset.
async fn memberships_all_administered(
    connection: &mut AsyncPgConnection,
    staff_id: Uuid,
    administered: &[String],
) -> Result<Vec<Membership>, AdminError> {
    let memberships = all_memberships(connection, staff_id)
        .await?
        .ok_or(AdminError::NotFound)?;
    if memberships
        .iter()
        .any(|membership| !administered.contains(&membership.division))
    {
        return Err(AdminError::OutsideDivisions);
    }
    Ok(memberships)
}

/// An admin gives someone who forgot their password a new one: it must be replaced at first use,
/// the account is unlocked, and every session of the account ends. Only an admin of every
/// division the account works in may do it.
pub async fn reset_password(
    connection: &mut AsyncPgConnection,
    actor: Uuid,
    staff_id: Uuid,
    password: &str,
    administered: &[String],
) -> Result<(), AdminError> {
    super::staff::require_long_enough(password)?;
    let hash = super::staff::hash_password(password).await?;
    use diesel_async::AsyncConnection;
    connection
        .transaction::<_, AdminError, _>(|connection| {
            Box::pin(async move {
                memberships_all_administered(connection, staff_id, administered).await?;
                diesel::update(staff::table.find(staff_id))
                    .set((
                        staff::password_hash.eq(hash),
                        staff::password_change_required.eq(true),
                        staff::failed_logins.eq(0),
                        staff::locked_until.eq(None::<chrono::DateTime<Utc>>),
                    ))
                    .execute(connection)
                    .await?;
                super::session::revoke_all_of_staff(connection, staff_id).await?;
                let action = AccountAction::PasswordReset;
                record(connection, staff_id, Some(actor), action, None, None).await?;
                Ok(())
            })
        })
        .await
}

/// Deactivates an account (its sessions end at once: refresh tokens revoked, access tokens
/// refused by the extractor) or reactivates it (unlocked, failures forgotten). Only an admin of
/// every division the account works in may do it.
pub async fn set_active(
    connection: &mut AsyncPgConnection,
    actor: Uuid,
    staff_id: Uuid,
    active: bool,
    administered: &[String],
) -> Result<(), AdminError> {
    use diesel_async::AsyncConnection;
    connection
        .transaction::<_, AdminError, _>(|connection| {
            Box::pin(async move {
                let memberships =
                    memberships_all_administered(connection, staff_id, administered).await?;
                let mut administering: Vec<&str> = memberships
                    .iter()
                    .filter(|m| m.role == Role::Admin)
                    .map(|m| m.division.as_str())
                    .collect();
                // In one order everywhere, so two deactivations cannot wait on each other.
                administering.sort_unstable();
                for division in administering {
                    lock_admins(connection, division).await?;
                }
                diesel::update(staff::table.find(staff_id))
                    .set((
                        staff::active.eq(active),
                        staff::failed_logins.eq(0),
                        staff::locked_until.eq(None::<chrono::DateTime<Utc>>),
                    ))
                    .execute(connection)
                    .await?;
                if !active {
                    super::session::revoke_all_of_staff(connection, staff_id).await?;
                    for membership in memberships.iter().filter(|m| m.role == Role::Admin) {
                        ensure_an_admin_remains(connection, &membership.division).await?;
                    }
                }
                let action = if active {
                    AccountAction::Reactivated
                } else {
                    AccountAction::Deactivated
                };
                record(connection, staff_id, Some(actor), action, None, None).await?;
                Ok(())
            })
        })
        .await
}

/// One entry of an account's audit trail.
#[derive(Debug, Clone, Serialize, Queryable, utoipa::ToSchema)]
pub struct AccountEvent {
    /// created, role_set, removed_from_division, deactivated, reactivated, password_changed,
    /// password_reset or linked_to_provider.
    pub action: String,
    pub division: Option<String>,
    pub role: Option<String>,
    /// Who did it; absent for the command line.
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<String>,
    pub at: DateTime<Utc>,
}

/// The audit trail of an account, oldest first, for an admin of a division it works in (others:
/// `NotFound`, so accounts elsewhere are not revealed).
pub async fn history(
    connection: &mut AsyncPgConnection,
    staff_id: Uuid,
    administered: &[String],
) -> Result<Vec<AccountEvent>, AdminError> {
    let memberships = all_memberships(connection, staff_id)
        .await?
        .ok_or(AdminError::NotFound)?;
    if !memberships
        .iter()
        .any(|membership| administered.contains(&membership.division))
    {
        return Err(AdminError::NotFound);
    }
    let actor = diesel::alias!(staff as actor);
    Ok(staff_account_events::table
        .left_join(actor.on(staff_account_events::actor_id.eq(actor.field(staff::id).nullable())))
        .filter(staff_account_events::staff_id.eq(staff_id))
        .order(staff_account_events::id)
        .select((
            staff_account_events::action,
            staff_account_events::division,
            staff_account_events::role,
            staff_account_events::actor_id,
            actor.field(staff::display_name).nullable(),
            staff_account_events::created_at,
        ))
        .load(connection)
        .await?)
}
