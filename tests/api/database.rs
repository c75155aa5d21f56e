//! The database harness and migrations.

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::helpers::{TestApp, TestDatabase};

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

async fn procedure_version_count(url: &str) -> i64 {
    count(url, "procedure_versions").await
}

async fn count(url: &str, table: &str) -> i64 {
    let mut connection = AsyncPgConnection::establish(url).await.expect("connect");
    diesel::sql_query(format!("SELECT count(*) AS count FROM {table}"))
        .get_result::<Count>(&mut connection)
        .await
        .expect("count")
        .count
}

#[actix_web::test]
async fn each_test_gets_its_own_database() {
    let first = TestApp::spawn().await;
    let second = TestApp::spawn().await;
    assert_ne!(first.database.name, second.database.name);
    first.resident("card-isolation").await;
    assert_eq!(count(&first.database.url, "residents").await, 1);
    assert_eq!(
        count(&second.database.url, "residents").await,
        0,
        "the other database is untouched"
    );
}

#[actix_web::test]
async fn a_test_database_is_dropped_afterwards() {
    let database = TestDatabase::new().await;
    let name = database.name.clone();
    let admin_url = madoguchi::db::with_database(&database.url, "postgres");
    drop(database);
    let mut admin = AsyncPgConnection::establish(&admin_url)
        .await
        .expect("connect");
    let remaining = diesel::sql_query(format!(
        "SELECT count(*) AS count FROM pg_database WHERE datname = '{name}'"
    ))
    .get_result::<Count>(&mut admin)
    .await
    .expect("query")
    .count;
    assert_eq!(remaining, 0);
}

#[actix_web::test]
async fn recording_versions_is_idempotent() {
    let app = TestApp::spawn().await;
    app.state
        .catalog
        .record_versions(&app.state.pool)
        .await
        .expect("first");
    app.state
        .catalog
        .record_versions(&app.state.pool)
        .await
        .expect("second");
    assert_eq!(
        procedure_version_count(&app.database.url).await as usize,
        app.state.catalog.procedures.len()
    );
}

#[actix_web::test]
async fn migrations_go_down_and_up_again() {
    use diesel::Connection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    use diesel_migrations::MigrationHarness;

    let database = TestDatabase::new().await;
    let url = database.url.clone();
    tokio::task::spawn_blocking(move || {
        let mut connection =
            <AsyncConnectionWrapper<AsyncPgConnection> as Connection>::establish(&url)
                .expect("connect");
        connection
            .revert_all_migrations(madoguchi::db::MIGRATIONS)
            .expect("down");
        assert!(
            connection
                .has_pending_migration(madoguchi::db::MIGRATIONS)
                .expect("status")
        );
        connection
            .run_pending_migrations(madoguchi::db::MIGRATIONS)
            .expect("up again");
    })
    .await
    .expect("migration thread");
}
