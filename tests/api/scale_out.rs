//! Several app servers and workers over one database and one bucket: files, sessions and the
//! staff sign-in throttle are shared; the worker's jobs run once however many workers poll; and
//! kill -9 of a server and a worker under load loses nothing acknowledged.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::test::TestRequest;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDatabase, bearer};
use crate::object_storage::{ACCESS_KEY, BUCKET, SECRET_KEY, SeaweedFs};
use crate::reliability::{Server, apply, client, count, free_port, sign_in};

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// What every server and worker of one deployment shares: the bucket, and the keys (tokens
/// signed by one server are checked by the other; My Numbers sealed by one are opened by another).
fn shared_settings(seaweed: &SeaweedFs, prefix: &str) -> Vec<(&'static str, String)> {
    vec![
        ("MADOGUCHI__STORAGE__BACKEND", "s3".to_owned()),
        ("MADOGUCHI__STORAGE__S3__ENDPOINT", seaweed.endpoint.clone()),
        ("MADOGUCHI__STORAGE__S3__BUCKET", BUCKET.to_owned()),
        ("MADOGUCHI__STORAGE__S3__PREFIX", prefix.to_owned()),
        ("MADOGUCHI__STORAGE__S3__ALLOW_HTTP", "true".to_owned()),
        (
            "MADOGUCHI__STORAGE__S3__ACCESS_KEY_ID",
            ACCESS_KEY.to_owned(),
        ),
        (
            "MADOGUCHI__STORAGE__S3__SECRET_ACCESS_KEY",
            SECRET_KEY.to_owned(),
        ),
        (
            "MADOGUCHI__IDENTITY__SESSION__SIGNING_KEYS",
            "scale-1:a-signing-secret-shared-by-every-server-0123456789".to_owned(),
        ),
        (
            "MADOGUCHI__SUBMISSIONS__SEALING_KEYS",
            "scale-1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned(),
        ),
        (
            "MADOGUCHI__STAFF__LOGIN_ATTEMPTS_PER_MINUTE",
            "2".to_owned(),
        ),
    ]
}

async fn start_server(database_url: &str, settings: &[(&'static str, String)]) -> Server {
    let pairs: Vec<(&str, &str)> = settings
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    Server::start_with(database_url, free_port(), &pairs).await
}

fn multipart(bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "scale-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[actix_web::test]
async fn two_app_servers_share_one_bucket_the_sessions_and_the_sign_in_throttle() {
    let seaweed = SeaweedFs::start().await;
    let database = TestDatabase::new().await;
    let settings = shared_settings(&seaweed, "two-servers");
    let one = start_server(&database.url, &settings).await;
    let two = start_server(&database.url, &settings).await;
    let http = client();

    // A resident signed in on one server is known to the other.
    let token = sign_in(&one.base, "card-scale-1").await;
    let draft: Value = http
        .post(format!("{}/api/v1/drafts", one.base))
        .bearer_auth(&token)
        .json(&json!({"procedure_id": "hoiku-riyo-moshikomi", "data": {}}))
        .send()
        .await
        .expect("draft")
        .json()
        .await
        .expect("json");
    let draft_id = draft["id"].as_str().expect("draft id");
    let detail = http
        .get(format!("{}/api/v1/drafts/{draft_id}", two.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("draft on the other server");
    assert_eq!(
        detail.status(),
        200,
        "the session works on the second server"
    );

    // Uploaded through one, downloaded through the other.
    let field = crate::submissions::first_file_field("hoiku-riyo-moshikomi");
    let (content_type, body) = multipart(PDF);
    let uploaded = http
        .post(format!(
            "{}/api/v1/drafts/{draft_id}/attachments?field={field}",
            one.base
        ))
        .bearer_auth(&token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload");
    assert_eq!(uploaded.status(), 201);
    let stored: Value = uploaded.json().await.expect("json");
    let id = stored["id"].as_str().expect("id");
    let downloaded = http
        .get(format!("{}/api/v1/attachments/{id}", two.base))
        .bearer_auth(&token)
        .send()
        .await
        .expect("download");
    assert_eq!(downloaded.status(), 200);
    assert_eq!(downloaded.bytes().await.expect("bytes").as_ref(), PDF);

    // 2 password attempts a minute from one address, whichever server gets them: alternating
    // between the two, the third and fourth are refused (each server alone saw only two). One
    // attempt comes back every 30 s, counted from the first: far more than four attempts take
    // even on a busy machine (at 4 a minute it was 15 s for six, four of them argon2 checks).
    let mut statuses = Vec::new();
    for attempt in 0..4 {
        let base = if attempt % 2 == 0 {
            &one.base
        } else {
            &two.base
        };
        let response = http
            .post(format!("{base}/api/v1/staff/login"))
            .json(&json!({"login": "nobody", "password": "not the password at all"}))
            .send()
            .await
            .expect("login");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 429, 429]);
}

/// Message-IDs of the messages one in-memory mailer sent.
fn message_ids(messages: &[lettre::Message]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|message| message.headers().get_raw("Message-ID").map(str::to_owned))
        .collect()
}

#[actix_web::test]
async fn two_workers_share_the_outbox_and_the_digest_without_doing_anything_twice() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-scale-2").await;
    for n in 0..20 {
        let (procedure, data) = crate::helpers::sample_application();
        let (status, created) = app
            .json(
                TestRequest::post()
                    .uri(&format!("/api/v1/procedures/{procedure}/submissions"))
                    .insert_header(bearer(&token))
                    .insert_header(("idempotency-key", format!("two-workers-{n}")))
                    .set_json(json!({"data": data})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
    }
    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .expect("connect");
    // Overdue, so that both workers also try to write today's digest at the same moment.
    diesel::sql_query("UPDATE submissions SET due_date = current_date - 3")
        .execute(&mut connection)
        .await
        .expect("overdue");
    let today = madoguchi::forms::lint::city_today();
    let digest = |pool: madoguchi::db::DbPool,
                  catalog: std::sync::Arc<madoguchi::forms::Catalog>| async move {
        let mut connection = pool.get().await.expect("connection");
        madoguchi::notify::digest::enqueue_overdue_digests(
            &mut connection,
            &catalog,
            "https://madoguchi.example",
            today,
        )
        .await
        .expect("digest")
    };
    let (first, second) = tokio::join!(
        digest(app.state.pool.clone(), app.state.catalog.clone()),
        digest(app.state.pool.clone(), app.state.catalog.clone()),
    );
    assert_eq!(first + second, 1, "one digest for the one division");
    let rows = count(&mut connection, "SELECT count(*) AS count FROM outbox").await;
    assert!(rows > 20, "{rows} outbox rows");

    // Two workers drain the outbox at once, each with a mailer of its own.
    let worker = |pool: madoguchi::db::DbPool, settings: madoguchi::config::EmailSettings| async move {
        let (mailer, sent) = madoguchi::notify::mailer::Mailer::memory(&settings).expect("mailer");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            let pass = madoguchi::worker::run_once(&pool, &mailer, &settings)
                .await
                .expect("pass");
            if pass.sent + pass.retried + pass.failed == 0 {
                break;
            }
        }
        let sent = sent.lock().map(|sent| sent.clone()).unwrap_or_default();
        message_ids(&sent)
    };
    let email = app.state.settings.email.clone();
    let (one, two) = tokio::join!(
        worker(app.state.pool.clone(), email.clone()),
        worker(app.state.pool.clone(), email),
    );
    let all: BTreeSet<&String> = one.iter().chain(&two).collect();
    assert_eq!(one.len() + two.len(), rows as usize, "every row sent");
    assert_eq!(all.len(), rows as usize, "none sent twice");
    assert_eq!(
        count(
            &mut connection,
            "SELECT count(*) AS count FROM outbox WHERE status <> 'sent'"
        )
        .await,
        0
    );
}

/// `madoguchi worker` as a child process; killed (SIGKILL) when dropped.
struct Worker(Child);

impl Worker {
    fn start(database_url: &str, smtp_port: u16, settings: &[(&'static str, String)]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
            .arg("worker")
            .envs(settings.iter().map(|(name, value)| (*name, value.as_str())))
            .env("MADOGUCHI_PROFILE", "test")
            .env("DATABASE_URL", database_url)
            .env("MADOGUCHI__EMAIL__TRANSPORT", "smtp")
            .env("MADOGUCHI__EMAIL__SMTP_HOST", "127.0.0.1")
            .env("MADOGUCHI__EMAIL__SMTP_PORT", smtp_port.to_string())
            .env("MADOGUCHI__EMAIL__SMTP_TLS", "none")
            .env("MADOGUCHI__EMAIL__POLL_INTERVAL_SECONDS", "1")
            .env("MADOGUCHI__EMAIL__RETRY_BASE_SECONDS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("madoguchi worker");
        Self(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

#[actix_web::test]
async fn kill_9_of_a_server_and_a_worker_under_load_loses_nothing_and_sends_nothing_twice_beyond_one_batch()
 {
    let seaweed = SeaweedFs::start().await;
    // Each message takes 20 ms at the SMTP server, so a worker is killed mid-batch.
    let smtp = crate::notify::SmtpServer::start(0.02, None);
    let database = TestDatabase::new().await;
    let settings = shared_settings(&seaweed, "kill-9");
    let mut one = start_server(&database.url, &settings).await;
    let two = start_server(&database.url, &settings).await;
    let mut worker_one = Worker::start(&database.url, smtp.port, &settings);
    let _worker_two = Worker::start(&database.url, smtp.port, &settings);
    let token = sign_in(&one.base, "card-scale-3").await;
    let field = crate::submissions::first_file_field("hoiku-riyo-moshikomi");

    // 8 senders, half on each server: an application and an upload each round, until the kill
    // is done and the killed server has failed a request (however slow the machine, the load is
    // still running when the kill comes, and goes on against the dead server for a moment).
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let base = if sender % 2 == 0 {
                one.base.clone()
            } else {
                two.base.clone()
            };
            let token = token.clone();
            let field = field.clone();
            let stop = Arc::clone(&stop);
            let failed = Arc::clone(&failed);
            tokio::spawn(async move {
                let http = client();
                let draft: Option<Value> = match http
                    .post(format!("{base}/api/v1/drafts"))
                    .bearer_auth(&token)
                    .json(&json!({"procedure_id": "hoiku-riyo-moshikomi", "data": {}}))
                    .send()
                    .await
                {
                    Ok(response) => response.json().await.ok(),
                    Err(_) => None,
                };
                let draft_id = draft
                    .as_ref()
                    .and_then(|draft| draft["id"].as_str())
                    .map(str::to_owned);
                let mut applications = Vec::new();
                let mut uploads = Vec::new();
                for attempt in 0..400 {
                    // (through the reference: diesel's `load` would be found on the Arc first)
                    if AtomicBool::load(&stop, Ordering::Relaxed) {
                        break;
                    }
                    let key = format!("scale-kill-{sender}-{attempt}");
                    let outcome = apply(&base, &token, &key).await.ok();
                    if !matches!(outcome, Some((201, _))) {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    applications.push((key.clone(), outcome));
                    if let Some(draft_id) = &draft_id {
                        let (content_type, body) = multipart(PDF);
                        let stored = async {
                            let response = http
                                .post(format!(
                                    "{base}/api/v1/drafts/{draft_id}/attachments?field={field}"
                                ))
                                .bearer_auth(&token)
                                .header("content-type", content_type)
                                .body(body)
                                .send()
                                .await
                                .ok()?;
                            if response.status() != 201 {
                                return None;
                            }
                            response.json::<Value>().await.ok()
                        }
                        .await;
                        uploads.extend(stored.and_then(|s| s["id"].as_str().map(str::to_owned)));
                    }
                }
                (applications, uploads)
            })
        })
        .collect();

    let mut connection = AsyncPgConnection::establish(&database.url)
        .await
        .expect("connect");
    let started = Instant::now();
    while (count(&mut connection, "SELECT count(*) AS count FROM submissions").await < 30
        || count(
            &mut connection,
            "SELECT count(*) AS count FROM outbox WHERE status = 'sent'",
        )
        .await
            < 5)
        && started.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    one.kill();
    worker_one.kill();
    // The requests in flight may all have been answered just before the kill; the senders on the
    // killed server then fail their next one.
    let killed = Instant::now();
    while AtomicUsize::load(&failed, Ordering::Relaxed) == 0
        && killed.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);

    let mut acknowledged = Vec::new();
    let mut unanswered = Vec::new();
    let mut uploads = Vec::new();
    for sender in senders {
        let (applications, stored) = sender.await.expect("sender");
        uploads.extend(stored);
        for (key, outcome) in applications {
            match outcome {
                Some((201, body)) => acknowledged.push(body),
                _ => unanswered.push(key),
            }
        }
    }
    assert!(
        acknowledged.len() >= 30,
        "{} acknowledged",
        acknowledged.len()
    );
    assert!(
        !unanswered.is_empty(),
        "the killed server's requests failed: the kill came during the load"
    );

    // Every acknowledged application and upload is there, readable through the surviving server.
    for body in &acknowledged {
        let id = body["id"].as_str().expect("id");
        let detail = client()
            .get(format!("{}/api/v1/submissions/{id}", two.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("detail");
        assert_eq!(detail.status(), 200, "acknowledged application {id}");
    }
    for id in &uploads {
        let file = client()
            .get(format!("{}/api/v1/attachments/{id}", two.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("download");
        assert_eq!(file.status(), 200, "acknowledged upload {id}");
        assert_eq!(file.bytes().await.expect("bytes").as_ref(), PDF);
    }
    // Retries of the unanswered keys on the survivor: one application per key.
    for key in &unanswered {
        let (status, _) = apply(&two.base, &token, key).await.expect("retry");
        assert_eq!(status, 201);
    }
    assert_eq!(
        count(&mut connection, "SELECT count(*) AS count FROM submissions").await as usize,
        acknowledged.len() + unanswered.len()
    );

    // The surviving worker sends everything, the killed worker's claimed batch included.
    let started = Instant::now();
    while count(
        &mut connection,
        "SELECT count(*) AS count FROM outbox WHERE status <> 'sent'",
    )
    .await
        > 0
        && started.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        count(
            &mut connection,
            "SELECT count(*) AS count FROM outbox WHERE status <> 'sent'"
        )
        .await,
        0,
        "every notice sent"
    );
    let rows = count(&mut connection, "SELECT count(*) AS count FROM outbox").await as usize;
    let messages = smtp.wait_for(rows, Duration::from_secs(10));
    let mut arrivals: BTreeMap<String, usize> = BTreeMap::new();
    for message in &messages {
        let id = message["message_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        *arrivals.entry(id).or_default() += 1;
    }
    assert_eq!(arrivals.len(), rows, "every outbox row arrived");
    // At-least-once: only messages the killed worker had handed to SMTP but not yet marked sent
    // can arrive twice, and it held at most one batch (10).
    let twice = arrivals.values().filter(|n| **n > 1).count();
    assert!(twice <= 10, "{twice} messages arrived more than once");
    assert!(arrivals.values().all(|n| *n <= 2));
}
