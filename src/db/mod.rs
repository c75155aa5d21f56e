//! The PostgreSQL pool, migrations, and finding a database to use.
//!
//! Owns: the deadpool of diesel-async connections (built once, with timeouts and a
//! `statement_timeout`), the embedded migrations, and the resolution order of DESIGN.md
//! (`DATABASE_URL` → configured URL → a local server → a private throwaway cluster).

pub mod cluster;
mod pool;
pub mod schema;

use std::time::Duration;

use anyhow::Context;
use diesel::ConnectionError;
use diesel_async::pooled_connection::deadpool::PoolError;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// `[database]` of the configuration: kept here so the database layer needs nothing above it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    pub embedded_dir: String,
    pub pool_size: usize,
    pub pool_timeout_seconds: u64,
    pub statement_timeout_ms: u64,
    pub migrate_on_start: bool,
    pub request_timeout_seconds: u64,
    pub readiness_timeout_ms: u64,
}

pub use pool::{DbConn, DbPool, PoolStatus};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time, or the server went away. Callers answer 503.
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("database query failed")]
    Query(#[source] diesel::result::Error),
}

impl From<diesel::result::Error> for DbError {
    fn from(error: diesel::result::Error) -> Self {
        Self::classify(error)
    }
}

impl From<PoolError> for DbError {
    fn from(error: PoolError) -> Self {
        Self::Unavailable(error.into())
    }
}

impl DbError {
    /// Maps a query error caused by a lost, stopped or stuck server to `Unavailable`, so that a
    /// database restart or outage shows as 503 rather than 500.
    pub fn classify(error: diesel::result::Error) -> Self {
        if is_unavailable(&error) {
            Self::Unavailable(error.into())
        } else {
            Self::Query(error)
        }
    }

    /// The 503 for a database call that exceeded its client-side bound.
    pub fn timed_out(bound: Duration) -> Self {
        Self::Unavailable(anyhow::anyhow!(
            "no answer from the database within {} ms",
            bound.as_millis()
        ))
    }
}

/// True when `error` says the server went away, is going away or did not answer in time,
/// rather than that the query was wrong.
///
/// diesel-async reports every error without a SQLSTATE (the socket closed, a broken pipe, a
/// reset) as `UnableToSendCommand`. Errors the server sends keep only their message, not their
/// SQLSTATE, so the operator-intervention (57…), connection (08…) and resource (53…) classes
/// are recognised by PostgreSQL's messages; they are not translated (lc_messages is left
/// unset on the servers we run against).
pub fn is_unavailable(error: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind as K, Error as E};
    const GONE: [&str; 12] = [
        "terminating connection", // 57P01 admin shutdown, 57P02 crash, idle timeouts
        "the database system is", // 57P03 starting up, shutting down, in recovery
        "canceling statement due to", // 57014 statement timeout, user request, conflicts
        "connection closed",
        "server closed the connection",
        "connection reset",
        "broken pipe",
        "too many clients",            // 53300
        "remaining connection slots",  // 53300
        "no more connections allowed", // 53300
        "could not receive data",      // 08006
        "could not send data",         // 08006
    ];
    match error {
        E::DatabaseError(K::ClosedConnection | K::UnableToSendCommand, _)
        | E::BrokenTransactionManager => true,
        E::DatabaseError(_, info) => {
            let message = info.message().to_ascii_lowercase();
            GONE.iter().any(|needle| message.contains(needle))
        }
        _ => false,
    }
}

/// Builds the pool for a process whose database work runs on one thread (commands, tests).
/// Every connection gets the configured `statement_timeout`.
pub fn build_pool(url: &str, settings: &DatabaseSettings) -> anyhow::Result<DbPool> {
    build_pool_for_threads(url, settings, 1)
}

/// Builds the pool for `threads` request workers: `pool_size` connections split between them,
/// each worker with a pool of its own (`src/db/pool.rs` says why).
pub fn build_pool_for_threads(
    url: &str,
    settings: &DatabaseSettings,
    threads: usize,
) -> anyhow::Result<DbPool> {
    DbPool::new(
        with_statement_timeout(url, settings.statement_timeout_ms),
        settings.pool_size,
        threads,
        Duration::from_secs(settings.pool_timeout_seconds),
    )
}

fn with_statement_timeout(url: &str, timeout_ms: u64) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20statement_timeout%3D{timeout_ms}")
}

/// Checks out a connection, mapping pool failures to [`DbError::Unavailable`].
pub async fn connection(pool: &DbPool) -> Result<DbConn, DbError> {
    Ok(pool.get().await?)
}

/// Runs `work` (database calls) within `bound`, or gives up with [`DbError::Unavailable`].
///
/// A connection dropped mid-transaction is discarded by the pool; one dropped mid-query outside
/// a transaction stays in sync, because tokio-postgres discards the answers nobody awaits.
pub async fn bounded<T, E>(
    bound: Duration,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E>
where
    E: From<DbError>,
{
    tokio::time::timeout(bound, work)
        .await
        .unwrap_or_else(|_| Err(DbError::timed_out(bound).into()))
}

/// Applies pending migrations, one process at a time. Runs the synchronous migration harness on
/// a blocking thread over diesel-async's connection wrapper, so no libpq is needed.
pub async fn run_migrations(url: &str) -> anyhow::Result<Vec<String>> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
        use diesel::Connection;
        use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
        let mut connection =
            <AsyncConnectionWrapper<AsyncPgConnection> as Connection>::establish(&url)
                .context("connecting to run migrations")?;
        // Servers starting together take turns: the second finds nothing pending. The lock is
        // the session's, so it goes with the connection if this process dies.
        diesel::RunQueryDsl::execute(
            diesel::sql_query("SELECT pg_advisory_lock(72720001)"),
            &mut connection,
        )
        .context("waiting for another server's migrations")?;
        let applied = connection
            .run_pending_migrations(MIGRATIONS)
            .map_err(|error| anyhow::anyhow!("applying migrations: {error}"))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await
    .context("migration task panicked")?
}

/// Connects once (bounded): `None` when the server accepts, else why not, in the driver's words
/// (it never carries the password).
pub async fn connect_error(url: &str) -> Option<String> {
    match tokio::time::timeout(Duration::from_secs(3), AsyncPgConnection::establish(url)).await {
        Ok(Ok(_)) => None,
        Ok(Err(error)) => Some(with_causes(&error)),
        Err(_) => Some("timed out after 3 s".to_owned()),
    }
}

/// An error and its causes, as far as the driver keeps them.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(error) = cause {
        text.push_str(": ");
        text.push_str(&error.to_string());
        cause = error.source();
    }
    text
}

/// Creates database `name` on the server behind `admin_url` unless it exists. Returns whether
/// it existed already.
pub async fn create_database_if_missing(admin_url: &str, name: &str) -> anyhow::Result<bool> {
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;

    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        #[allow(dead_code)]
        one: i32,
    }

    let mut connection = AsyncPgConnection::establish(admin_url)
        .await
        .map_err(|error: ConnectionError| anyhow::anyhow!("connecting to {admin_url}: {error}"))?;
    let found: Vec<Found> =
        diesel::sql_query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
            .bind::<Text, _>(name)
            .load(&mut connection)
            .await?;
    if found.is_empty() {
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut connection)
            .await
            .with_context(|| format!("creating database {name}"))?;
    }
    Ok(!found.is_empty())
}

/// Replaces the database name (the path) of a PostgreSQL URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base
        .find("://")
        .map(|scheme| scheme + 3)
        .and_then(|start| base[start..].find('/').map(|slash| start + slash))
        .unwrap_or(base.len());
    let mut result = format!("{}/{database}", &base[..authority_end]);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced_and_query_kept() {
        assert_eq!(
            with_database("postgres://u@h:5/old?sslmode=disable", "new"),
            "postgres://u@h:5/new?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "new"), "postgres://u@h/new");
    }

    #[test]
    fn statement_timeout_is_appended_as_a_connection_option() {
        assert_eq!(
            with_statement_timeout("postgres://h/db", 500),
            "postgres://h/db?options=-c%20statement_timeout%3D500"
        );
    }
}
