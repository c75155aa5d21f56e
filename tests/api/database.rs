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

/// Runs `work` on a new thread with a runtime of its own, as an actix worker has, and waits.
fn on_a_worker_thread<T: Send + 'static>(
    work: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(work())
    })
    .join()
    .expect("the thread")
}

async fn select_one(connection: &mut madoguchi::db::DbConn) -> i64 {
    diesel::sql_query("SELECT 1::bigint AS count")
        .get_result::<Count>(&mut **connection)
        .await
        .expect("select 1")
        .count
}

#[actix_web::test]
async fn each_request_worker_has_a_pool_of_its_own() {
    let database = TestDatabase::new().await;
    let mut settings = crate::helpers::test_settings().database;
    settings.pool_size = 4;
    settings.pool_timeout_seconds = 1;
    let pool = madoguchi::db::build_pool_for_threads(&database.url, &settings, 2).expect("pool");
    assert_eq!(pool.size_per_thread(), 2, "4 connections for 2 workers");

    // One worker holds its two connections; a third is refused even though the other worker
    // has opened none, and the other worker still gets two of its own meanwhile.
    let (held, release) = std::sync::mpsc::channel::<()>();
    let (busy, wait_busy) = std::sync::mpsc::channel::<()>();
    let first = pool.clone();
    let first_worker = std::thread::spawn(move || {
        on_a_worker_thread(move || {
            Box::pin(async move {
                let mut one = first.get().await.expect("a first connection");
                let mut two = first.get().await.expect("a second connection");
                assert_eq!(select_one(&mut one).await + select_one(&mut two).await, 2);
                let third = first.get().await;
                busy.send(()).expect("tell the test");
                release.recv().expect("wait for the test");
                third.is_err()
            })
        })
    });
    wait_busy.recv().expect("the first worker holds two");
    let second = pool.clone();
    let second_got = on_a_worker_thread(move || {
        Box::pin(async move {
            let mut one = second.get().await.expect("its own first connection");
            let mut two = second.get().await.expect("its own second connection");
            select_one(&mut one).await + select_one(&mut two).await
        })
    });
    assert_eq!(second_got, 2);
    held.send(()).expect("release the first worker");
    assert!(
        first_worker.join().expect("the first worker"),
        "a worker's third connection waits for its own pool, not the other's"
    );
    assert_eq!(pool.status().size, 4);

    // Both workers' runtimes have ended, and their connections with them. A new thread (which
    // may be handed a finished thread's pool) still gets connections that work.
    let third = pool.clone();
    let answers = on_a_worker_thread(move || {
        Box::pin(async move {
            let mut sum = 0;
            for _ in 0..3 {
                let mut connection = third.get().await.expect("a working connection");
                sum += select_one(&mut connection).await;
            }
            sum
        })
    });
    assert_eq!(answers, 3);
}
