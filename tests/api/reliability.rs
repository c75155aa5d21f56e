//! Reliability, with the real server process: kill -9 during a load, and PostgreSQL stopping
//! under it. Everything runs on 127.0.0.1, bounded in count and time.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

use crate::helpers::TestDatabase;

/// `madoguchi serve` as a child process; killed (SIGKILL) when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
}

impl Server {
    pub(crate) async fn start(database_url: &str, port: u16) -> Self {
        Self::start_with(database_url, port, &[]).await
    }

    /// Starts with extra `MADOGUCHI__…` settings.
    pub(crate) async fn start_with(
        database_url: &str,
        port: u16,
        settings: &[(&str, &str)],
    ) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
            .arg("serve")
            .envs(settings.iter().copied())
            .env("MADOGUCHI_PROFILE", "test")
            .env("DATABASE_URL", database_url)
            .env("MADOGUCHI__SERVER__PORT", port.to_string())
            .env("MADOGUCHI__SERVER__WORKERS", "2")
            .env("MADOGUCHI__EMAIL__WORKER_IN_SERVE", "false")
            .env("MADOGUCHI__DATABASE__POOL_TIMEOUT_SECONDS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("madoguchi serve");
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(response) = client()
                .get(format!("{}/healthz", server.base))
                .send()
                .await
                && response.status().is_success()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not start within 30 s");
    }

    /// The server process's peak resident memory so far (VmHWM), in KiB: a body inflated and
    /// freed again would not show in the current RSS.
    fn peak_rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc status")
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

pub(crate) async fn sign_in(base: &str, subject: &str) -> String {
    let http = client();
    let started: Value = http
        .post(format!("{base}/api/v1/auth/dev/start"))
        .send()
        .await
        .expect("start")
        .json()
        .await
        .expect("json");
    let tokens: Value = http
        .post(format!("{base}/api/v1/auth/dev/complete"))
        .json(&json!({"challenge_id": started["challenge_id"], "subject": subject}))
        .send()
        .await
        .expect("complete")
        .json()
        .await
        .expect("json");
    tokens["access_token"].as_str().expect("token").to_owned()
}

/// POSTs one application; `Ok(status)` or `Err` when the connection broke.
pub(crate) async fn apply(
    base: &str,
    token: &str,
    key: &str,
) -> Result<(u16, Value), reqwest::Error> {
    let (procedure, data) = crate::helpers::sample_application();
    let response = client()
        .post(format!("{base}/api/v1/procedures/{procedure}/submissions"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({"data": data}))
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

pub(crate) async fn count(connection: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(connection)
        .await
        .expect(sql)
        .count
}

#[actix_web::test]
async fn kill_9_during_a_load_loses_no_acknowledged_application_and_half_stores_none() {
    let database = TestDatabase::new().await;
    let port = free_port();
    let mut server = Server::start(&database.url, port).await;
    let token = sign_in(&server.base, "card-reliability-1").await;

    // 8 senders, 25 applications each, until the server dies under them.
    let base = server.base.clone();
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let base = base.clone();
            let token = token.clone();
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                for attempt in 0..25 {
                    let key = format!("kill-{sender}-{attempt}");
                    let outcome = apply(&base, &token, &key).await.ok();
                    outcomes.push((key, outcome));
                }
                outcomes
            })
        })
        .collect();
    // Let some succeed, then kill -9.
    let mut connection = AsyncPgConnection::establish(&database.url)
        .await
        .expect("connect");
    let started = Instant::now();
    while count(&mut connection, "SELECT count(*) AS count FROM submissions").await < 30
        && started.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();
    let mut acknowledged = Vec::new();
    let mut unacknowledged = Vec::new();
    for sender in senders {
        for (key, outcome) in sender.await.expect("sender") {
            match outcome {
                Some((201, body)) => acknowledged.push((key, body)),
                _ => unacknowledged.push(key),
            }
        }
    }
    // 30 were stored before the kill; a few answers may still have been in flight.
    assert!(
        acknowledged.len() >= 10,
        "{} acknowledged",
        acknowledged.len()
    );
    assert!(
        !unacknowledged.is_empty(),
        "the kill happened during the load"
    );

    // Nothing is half-stored: every stored application has its event, revision, idempotency
    // key and notices.
    for (check, sql) in [
        (
            "event",
            "SELECT count(*) AS count FROM submissions s WHERE NOT EXISTS (SELECT 1 FROM submission_events e WHERE e.submission_id = s.id)",
        ),
        (
            "revision",
            "SELECT count(*) AS count FROM submissions s WHERE NOT EXISTS (SELECT 1 FROM submission_revisions r WHERE r.submission_id = s.id)",
        ),
        (
            "idempotency key",
            "SELECT count(*) AS count FROM submissions s WHERE NOT EXISTS (SELECT 1 FROM idempotency_keys k WHERE k.response_body->>'id' = s.id::text)",
        ),
        (
            "division notice",
            "SELECT count(*) AS count FROM submissions s WHERE NOT EXISTS (SELECT 1 FROM outbox o WHERE o.submission_id = s.id)",
        ),
    ] {
        assert_eq!(
            count(&mut connection, sql).await,
            0,
            "an application without its {check}"
        );
    }

    // After a restart every acknowledged application is there, complete, for its resident.
    let server = Server::start(&database.url, port).await;
    // The test profile's signing key lives only as long as the process: sign in again.
    let token = sign_in(&server.base, "card-reliability-1").await;
    for (_, body) in &acknowledged {
        let id = body["id"].as_str().expect("id");
        let detail: Value = client()
            .get(format!("{}/api/v1/submissions/{id}", server.base))
            .bearer_auth(&token)
            .send()
            .await
            .expect("detail")
            .json()
            .await
            .expect("json");
        assert_eq!(detail["reference"], body["reference"]);
        assert_eq!(detail["history"][0]["to_status"], "submitted");
        assert!(detail["data"].as_object().is_some_and(|d| !d.is_empty()));
    }
    // Retrying the unanswered requests with their keys never duplicates anything.
    for key in &unacknowledged {
        let (status, _) = apply(&server.base, &token, key).await.expect("retry");
        assert_eq!(status, 201);
    }
    let total = count(&mut connection, "SELECT count(*) AS count FROM submissions").await;
    assert_eq!(
        total as usize,
        acknowledged.len() + unacknowledged.len(),
        "one application per key"
    );
}

#[actix_web::test]
async fn with_postgresql_down_the_server_answers_503_and_recovers_by_itself() {
    // A private cluster of our own: the machine's shared server is never stopped.
    let directory = tempfile::tempdir().expect("tempdir");
    let cluster = madoguchi::db::cluster::PrivateCluster::start(directory.path())
        .await
        .expect("private cluster");
    madoguchi::db::create_database_if_missing(&cluster.url("postgres"), "outage")
        .await
        .expect("database");
    let url = cluster.url("outage");
    madoguchi::db::run_migrations(&url)
        .await
        .expect("migrations");
    let server = Server::start(&url, free_port()).await;
    let token = sign_in(&server.base, "card-reliability-2").await;
    let (status, _) = apply(&server.base, &token, "before").await.expect("apply");
    assert_eq!(status, 201);

    // Senders keep applying and reading while PostgreSQL stops under them: every answer is a
    // success or a 503, never a 500 ("connection closed", "terminating connection …").
    let senders = load(&server.base, &token, "stop", Duration::from_secs(3));
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.stop_now().expect("stop PostgreSQL");
    let statuses = collect(senders).await;
    assert!(statuses.contains(&503), "the stop happened during the load");
    assert!(
        statuses
            .iter()
            .all(|status| matches!(status, 200 | 201 | 503)),
        "{statuses:?}"
    );
    for attempt in 0..5 {
        let (status, body) = apply(&server.base, &token, &format!("during-{attempt}"))
            .await
            .expect("the server still answers");
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["code"], "unavailable");
        let ready = client()
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .expect("readyz");
        assert_eq!(ready.status().as_u16(), 503);
    }

    cluster.start_again().expect("start PostgreSQL again");
    let started = Instant::now();
    let mut recovered = false;
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok((201, _)) = apply(&server.base, &token, "after").await {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the server recovers without a restart");
    let ready = client()
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
}

/// 8 senders applying and listing for `duration`; each returns the statuses it got (a 503
/// checked for its problem body and Retry-After on the way).
fn load(
    base: &str,
    token: &str,
    tag: &str,
    duration: Duration,
) -> Vec<tokio::task::JoinHandle<Vec<u16>>> {
    (0..8)
        .map(|sender| {
            let (base, token, tag) = (base.to_owned(), token.to_owned(), tag.to_owned());
            tokio::spawn(async move {
                let started = Instant::now();
                let mut statuses = Vec::new();
                let mut attempt = 0;
                while started.elapsed() < duration {
                    attempt += 1;
                    let status = if sender % 2 == 0 {
                        let key = format!("{tag}-{sender}-{attempt}");
                        apply(&base, &token, &key).await.expect("an answer").0
                    } else {
                        let response = client()
                            .get(format!("{base}/api/v1/submissions"))
                            .bearer_auth(&token)
                            .send()
                            .await
                            .expect("an answer");
                        let status = response.status().as_u16();
                        if status == 503 {
                            assert!(response.headers().contains_key("retry-after"));
                            let body: Value = response.json().await.expect("problem");
                            assert_eq!(body["code"], "unavailable");
                        }
                        status
                    };
                    statuses.push(status);
                }
                statuses
            })
        })
        .collect()
}

async fn collect(senders: Vec<tokio::task::JoinHandle<Vec<u16>>>) -> Vec<u16> {
    let mut statuses = Vec::new();
    for sender in senders {
        statuses.extend(sender.await.expect("sender"));
    }
    statuses
}

/// Thaws the cluster however the test ends, so its drop can stop it.
struct Thaw<'a>(&'a madoguchi::db::cluster::PrivateCluster);

impl Drop for Thaw<'_> {
    fn drop(&mut self) {
        let _ = self.0.signal_all("CONT");
    }
}

#[actix_web::test]
async fn with_postgresql_frozen_requests_get_503_within_the_bound_and_recover_after() {
    let directory = tempfile::tempdir().expect("tempdir");
    let cluster = madoguchi::db::cluster::PrivateCluster::start(directory.path())
        .await
        .expect("private cluster");
    madoguchi::db::create_database_if_missing(&cluster.url("postgres"), "frozen")
        .await
        .expect("database");
    let url = cluster.url("frozen");
    madoguchi::db::run_migrations(&url)
        .await
        .expect("migrations");
    const BOUND: Duration = Duration::from_secs(3);
    const READINESS: Duration = Duration::from_millis(1000);
    let server = Server::start_with(
        &url,
        free_port(),
        &[
            ("MADOGUCHI__DATABASE__REQUEST_TIMEOUT_SECONDS", "3"),
            ("MADOGUCHI__DATABASE__READINESS_TIMEOUT_MS", "1000"),
        ],
    )
    .await;
    let token = sign_in(&server.base, "card-reliability-3").await;
    let (status, _) = apply(&server.base, &token, "before").await.expect("apply");
    assert_eq!(status, 201);

    // SIGSTOP: the server keeps its sockets open and simply stops answering.
    cluster.signal_all("STOP").expect("SIGSTOP PostgreSQL");
    let thaw = Thaw(&cluster);
    let timed = |path: &'static str| {
        let (base, token) = (server.base.clone(), token.clone());
        async move {
            let started = Instant::now();
            let response = client()
                .get(format!("{base}{path}"))
                .bearer_auth(&token)
                .send()
                .await
                .expect("an answer, not a hang");
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after")
                && response.headers().contains_key("x-request-id");
            (path, status, retry_after, started.elapsed())
        }
    };
    let readiness = tokio::spawn(timed("/readyz"));
    let mut requests: Vec<_> = (0..6)
        .map(|_| tokio::spawn(timed("/api/v1/submissions")))
        .collect();
    requests.push(tokio::spawn({
        let (base, token) = (server.base.clone(), token.clone());
        async move {
            let started = Instant::now();
            let (status, _) = apply(&base, &token, "frozen").await.expect("an answer");
            ("apply", status, true, started.elapsed())
        }
    }));
    let ready = readiness.await.expect("readyz");
    let mut answers = Vec::new();
    for request in requests {
        answers.push(request.await.expect("request"));
    }
    drop(thaw);

    let slack = Duration::from_millis(1500);
    assert_eq!(ready.1, 503, "{ready:?}");
    assert!(ready.3 < READINESS + slack, "{ready:?}");
    for answer in &answers {
        assert_eq!(answer.1, 503, "{answer:?}");
        assert!(answer.2, "Retry-After and X-Request-Id: {answer:?}");
        assert!(answer.3 < BOUND + slack, "{answer:?}");
    }

    // Thawed: the same process serves again.
    let started = Instant::now();
    let mut recovered = false;
    while started.elapsed() < Duration::from_secs(30) {
        if let Ok((201, _)) = apply(&server.base, &token, "after").await {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(recovered, "the server recovers without a restart");
    let ready = client()
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
}

#[actix_web::test]
async fn a_gzip_bomb_is_refused_without_growing_the_servers_memory() {
    let database = TestDatabase::new().await;
    let server = Server::start(&database.url, free_port()).await;
    // 240 MiB of JSON whitespace, about 240 KiB compressed: under the 256 KiB body limit.
    let mut inflated = vec![b' '; 240 * 1024 * 1024];
    inflated[0] = b'{';
    let bomb = crate::bad_input::gzip(&inflated);
    drop(inflated);
    assert!(bomb.len() < 256 * 1024, "{} bytes", bomb.len());

    let send = || {
        let (base, bomb) = (server.base.clone(), bomb.clone());
        async move {
            client()
                .post(format!("{base}/api/v1/staff/login"))
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(bomb)
                .send()
                .await
                .map(|response| response.status().as_u16())
        }
    };
    // Warm up the workers and their buffers with ordinary bodies, then measure.
    for _ in 0..8 {
        client()
            .post(format!("{}/api/v1/staff/login", server.base))
            .json(&json!({"login": "nobody", "password": "x".repeat(100_000)}))
            .send()
            .await
            .expect("warm-up");
    }
    let before = server.peak_rss_kib();
    let answers: Vec<_> = (0..6).map(|_| tokio::spawn(send())).collect();
    for answer in answers {
        let status = answer.await.expect("sender").expect("an answer");
        assert!((400..500).contains(&status), "{status}");
    }
    let after = server.peak_rss_kib();
    assert!(
        after < before + 20 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
}

#[actix_web::test]
async fn an_upload_whose_body_stalls_is_answered_408_within_the_bound() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let database = TestDatabase::new().await;
    let port = free_port();
    let server = Server::start_with(
        &database.url,
        port,
        &[("MADOGUCHI__SERVER__UPLOAD_BODY_TIMEOUT_SECONDS", "1")],
    )
    .await;
    let token = sign_in(&server.base, "card-reliability-slow").await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let boundary = "slow-boundary";
    let head = format!(
        "POST /api/v1/drafts/{}/attachments?field=file HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\n\
         Content-Length: 100000\r\n\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\r\n%PDF-1.4\n",
        uuid::Uuid::nil()
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    // …and nothing more. The answer must come within the bound (plus slack), not never.
    let started = Instant::now();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("an answer within 5 s")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request.body_timeout"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[actix_web::test]
async fn a_json_body_that_stalls_is_answered_408_before_the_database_bound() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let database = TestDatabase::new().await;
    let port = free_port();
    let server = Server::start_with(
        &database.url,
        port,
        &[
            ("MADOGUCHI__SERVER__BODY_TIMEOUT_SECONDS", "1"),
            ("MADOGUCHI__DATABASE__REQUEST_TIMEOUT_SECONDS", "4"),
        ],
    )
    .await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = "POST /api/v1/staff/login HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"login\": \"a";
    stream.write_all(head.as_bytes()).await.expect("send");
    let started = Instant::now();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(Duration::from_secs(6), stream.read(&mut answer))
        .await
        .expect("an answer within 6 s")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..read]).to_lowercase();
    assert!(answer.starts_with("http/1.1 408"), "{answer}");
    assert!(answer.contains("request.body_timeout"), "{answer}");
    assert!(answer.contains("x-request-id:"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));

    // A whole body still works afterwards, and one over the limit is still 413.
    let response = client()
        .post(format!("{}/api/v1/staff/login", server.base))
        .json(&json!({"login": "nobody", "password": "wrong"}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 401);
}

/// What actix's HTTP/1 parser refuses never reaches our handlers, so it cannot be problem+json
/// (docs/DECISIONS.md): it must still be a prompt 4xx, and the server must go on serving.
#[actix_web::test]
async fn requests_the_http_layer_refuses_get_a_prompt_4xx_and_harm_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let database = TestDatabase::new().await;
    let port = free_port();
    let server = Server::start(&database.url, port).await;
    let many_headers: String = (0..200).map(|n| format!("X-Filler-{n}: x\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "raw UTF-8 in the path",
            "GET /手続き HTTP/1.1\r\nHost: a\r\n\r\n".as_bytes().to_vec(),
        ),
        (
            "NUL in a header",
            b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Note: a\0b\r\n\r\n".to_vec(),
        ),
        (
            "a Content-Length that is not a number",
            b"POST /api/v1/staff/login HTTP/1.1\r\nHost: a\r\nContent-Length: ten\r\n\r\n".to_vec(),
        ),
        (
            "two different Content-Lengths",
            b"POST /api/v1/staff/login HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"
                .to_vec(),
        ),
        (
            "a chunk size that is not hexadecimal",
            b"POST /api/v1/staff/login HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n\
              Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
                .to_vec(),
        ),
        (
            "too many headers",
            format!("GET /healthz HTTP/1.1\r\nHost: a\r\n{many_headers}\r\n").into_bytes(),
        ),
    ];
    for (case, request) in cases {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        stream.write_all(&request).await.expect("send");
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
            .await
            .unwrap_or_else(|_| panic!("{case}: no answer within 5 s"))
            .unwrap_or_else(|error| panic!("{case}: {error}"));
        let answer = String::from_utf8_lossy(&answer);
        let status: u16 = answer
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("{case}: not an HTTP answer: {answer:?}"));
        assert!((400..500).contains(&status), "{case}: {answer}");
    }
    let response = client()
        .get(format!("{}/readyz", server.base))
        .send()
        .await
        .expect("still serving");
    assert_eq!(response.status(), 200);
}
