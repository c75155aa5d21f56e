//! Notifications through a real SMTP server (aiosmtpd, started by the tests on 127.0.0.1):
//! delivery, STARTTLS over rustls, an SMTP outage, a worker killed mid-batch, and snapshots of
//! the rendered emails.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::test::TestRequest;
use madoguchi::config::{EmailTransport, SmtpTls};
use serde_json::{Value, json};

use crate::helpers::{CATALOG, TestApp, bearer};

/// The SMTP fixture process; it exits when dropped (its stdin closes).
pub(crate) struct SmtpServer {
    child: Child,
    pub(crate) port: u16,
    maildir: tempfile::TempDir,
}

impl SmtpServer {
    pub(crate) fn start(delay_seconds: f64, tls: Option<(&Path, &Path)>) -> Self {
        Self::start_on(0, delay_seconds, tls)
    }

    fn start_on(port: u16, delay_seconds: f64, tls: Option<(&Path, &Path)>) -> Self {
        let maildir = tempfile::tempdir().expect("maildir");
        let stderr = tempfile::tempfile().expect("temp file for the SMTP fixture's stderr");
        let mut command = Command::new(crate::fixtures::smtp_python());
        command
            .arg("tests/fixtures/smtp/server.py")
            .env("MAILDIR", maildir.path())
            .env("PORT", port.to_string())
            .env("DELAY_SECONDS", delay_seconds.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.try_clone().expect("clone stderr file"));
        if let Some((cert, key)) = tls {
            command.env("TLS_CERT", cert).env("TLS_KEY", key);
        }
        let mut child = command
            .spawn()
            .expect("the SMTP fixture (tests/fixtures/smtp/server.py) runs");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let Some(port) = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|port| port.parse().ok())
        else {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = stderr;
            panic!(
                "the SMTP fixture did not start ({read:?}, stdout {line:?}):\n{}",
                crate::fixtures::read_log(&mut stderr)
            );
        };
        Self {
            child,
            port,
            maildir,
        }
    }

    /// The decoded messages (recipients, subject, Message-ID, text, HTML), in arrival order.
    pub(crate) fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.maildir.path())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|file| std::fs::read_to_string(file).ok())
            .filter_map(|text| serde_json::from_str(&text).ok())
            .collect()
    }

    /// Waits (bounded) until at least `count` messages arrived.
    pub(crate) fn wait_for(&self, count: usize, limit: Duration) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let messages = self.messages();
            if messages.len() >= count || started.elapsed() > limit {
                return messages;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn smtp_settings(port: u16) -> madoguchi::config::Settings {
    let mut settings = crate::helpers::test_settings();
    settings.email.transport = EmailTransport::Smtp;
    settings.email.smtp_host = "127.0.0.1".to_owned();
    settings.email.smtp_port = port;
    settings.email.smtp_tls = SmtpTls::None;
    settings.email.smtp_timeout_seconds = 3;
    settings
}

async fn resident_with_email(app: &TestApp, subject: &str) -> String {
    let token = app.resident(subject).await;
    app.confirmed_email(&token, &format!("{subject}@example.jp"))
        .await;
    token
}

async fn apply(app: &TestApp, token: &str, key: &str) -> Value {
    let (procedure, data) = crate::helpers::sample_application();
    let (status, created) = app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/procedures/{procedure}/submissions"))
                .insert_header(bearer(token))
                .insert_header(("idempotency-key", key.to_owned()))
                .set_json(json!({"data": data})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

pub(crate) async fn worker_pass(app: &TestApp) -> madoguchi::worker::Pass {
    let mailer = madoguchi::notify::mailer::Mailer::from_settings(&app.state.settings.email)
        .expect("mailer");
    madoguchi::worker::run_once(&app.state.pool, &mailer, &app.state.settings.email)
        .await
        .expect("worker pass")
}

pub(crate) fn recipient(message: &Value) -> &str {
    message["to"][0].as_str().unwrap_or_default()
}

#[actix_web::test]
async fn the_received_email_arrives_through_real_smtp_without_the_answers() {
    let server = SmtpServer::start(0.0, None);
    let app = TestApp::with_settings(smtp_settings(server.port)).await;
    let token = resident_with_email(&app, "mail-resident-1").await;
    let created = apply(&app, &token, "mail-1").await;
    let reference = created["reference"].as_str().unwrap_or_default().to_owned();

    let pass = worker_pass(&app).await;
    assert_eq!(pass.sent, 2, "the resident and the division");
    let messages = server.wait_for(2, Duration::from_secs(5));
    let to_resident = messages
        .iter()
        .find(|m| recipient(m) == "mail-resident-1@example.jp")
        .expect("the resident's email arrived");
    let subject = to_resident["subject"].as_str().unwrap_or_default();
    assert!(
        subject.contains(&reference) && subject.contains("申請を受け付けました"),
        "{subject}"
    );
    let text = to_resident["text"].as_str().unwrap_or_default();
    assert!(text.contains(&format!("受付番号: {reference}")), "{text}");
    let (procedure, data) = crate::helpers::sample_application();
    let title = &CATALOG
        .get(&procedure)
        .expect("procedure")
        .definition
        .title
        .ja;
    assert!(text.contains(title.as_str()), "{text}");
    // Nothing of the answers travels by email.
    let whole = to_resident.to_string();
    for value in data.as_object().into_iter().flat_map(|o| o.values()) {
        if let Some(answer) = value.as_str().filter(|t| t.chars().count() >= 4) {
            assert!(
                !whole.contains(answer),
                "the email leaks an answer: {answer}"
            );
        }
    }
    let division = messages
        .iter()
        .find(|m| *m != to_resident)
        .expect("division notice");
    assert!(
        recipient(division).ends_with("@city.example.lg.jp"),
        "{division}"
    );
}

#[actix_web::test]
async fn starttls_through_rustls_verifies_the_server_certificate() {
    let pki = tempfile::tempdir().expect("tempdir");
    let (ca, server_pem, server_key) = crate::helpers::localhost_certificate(pki.path());
    let server = SmtpServer::start(0.0, Some((&server_pem, &server_key)));
    let mut settings = smtp_settings(server.port);
    settings.email.smtp_tls = SmtpTls::Starttls;

    // Without our CA the certificate is not trusted: nothing is sent, the row waits for a retry.
    let app = TestApp::with_settings(settings.clone()).await;
    let token = resident_with_email(&app, "mail-resident-2").await;
    apply(&app, &token, "tls-1").await;
    let pass = worker_pass(&app).await;
    assert_eq!(pass.sent, 0);
    assert!(server.messages().is_empty());

    settings.email.smtp_ca_certificate = ca.display().to_string();
    let trusting = TestApp::with_settings(settings).await;
    let token = resident_with_email(&trusting, "mail-resident-3").await;
    apply(&trusting, &token, "tls-2").await;
    let pass = worker_pass(&trusting).await;
    assert_eq!(pass.sent, 2, "{pass:?}");
    assert_eq!(server.wait_for(2, Duration::from_secs(5)).len(), 2);
}

#[actix_web::test]
async fn with_smtp_down_applications_succeed_and_the_email_arrives_later() {
    // Reserve a port, then leave it closed: the SMTP server is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let app = TestApp::with_settings(smtp_settings(port)).await;
    let token = resident_with_email(&app, "mail-resident-4").await;
    let created = apply(&app, &token, "down-1").await;

    let pass = worker_pass(&app).await;
    assert_eq!((pass.sent, pass.retried, pass.failed), (0, 2, 0));

    let server = SmtpServer::start_on(port, 0.0, None);
    // The retry is scheduled later; bring it forward instead of waiting for the backoff.
    let mut connection = app.state.pool.get().await.expect("connection");
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("UPDATE outbox SET next_attempt_at = now()"),
        &mut connection,
    )
    .await
    .expect("reschedule");
    let pass = worker_pass(&app).await;
    assert_eq!(pass.sent, 2);
    let messages = server.wait_for(2, Duration::from_secs(5));
    let reference = created["reference"].as_str().unwrap_or("?");
    assert!(
        messages
            .iter()
            .any(|m| m["subject"].as_str().is_some_and(|s| s.contains(reference)))
    );
}

#[actix_web::test]
async fn a_worker_killed_mid_batch_loses_no_email() {
    let server = SmtpServer::start(1.0, None);
    let app = TestApp::with_settings(smtp_settings(server.port)).await;
    let token = resident_with_email(&app, "mail-resident-5").await;
    for key in ["crash-1", "crash-2"] {
        apply(&app, &token, key).await;
    }
    let worker = |database_url: &str| {
        Command::new(env!("CARGO_BIN_EXE_madoguchi"))
            .arg("worker")
            .env("MADOGUCHI_PROFILE", "test")
            .env("DATABASE_URL", database_url)
            .env("MADOGUCHI__EMAIL__TRANSPORT", "smtp")
            .env("MADOGUCHI__EMAIL__SMTP_HOST", "127.0.0.1")
            .env("MADOGUCHI__EMAIL__SMTP_PORT", server.port.to_string())
            .env("MADOGUCHI__EMAIL__SMTP_TLS", "none")
            .env("MADOGUCHI__EMAIL__POLL_INTERVAL_SECONDS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("madoguchi worker")
    };
    // Kill -9 once the first message of the batch has been accepted, before the batch commits.
    let mut first = worker(&app.database.url);
    let arrived = server.wait_for(1, Duration::from_secs(15));
    assert!(!arrived.is_empty(), "the worker started sending");
    first.kill().expect("kill -9");
    let _ = first.wait();

    let mut second = worker(&app.database.url);
    let started = Instant::now();
    let mut connection = app.state.pool.get().await.expect("connection");
    loop {
        #[derive(diesel::QueryableByName)]
        struct Pending {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            count: i64,
        }
        let pending: Pending = diesel_async::RunQueryDsl::get_result(
            diesel::sql_query("SELECT count(*) AS count FROM outbox WHERE status <> 'sent'"),
            &mut connection,
        )
        .await
        .expect("count");
        if pending.count == 0 || started.elapsed() > Duration::from_secs(30) {
            assert_eq!(pending.count, 0, "every notice was sent after the restart");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = second.kill();
    let _ = second.wait();

    // Every outbox row's message reached the server (at least once; the stable Message-ID marks
    // the one the killed worker had already handed over).
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: uuid::Uuid,
    }
    let rows: Vec<Row> = diesel_async::RunQueryDsl::load(
        diesel::sql_query("SELECT id FROM outbox"),
        &mut connection,
    )
    .await
    .expect("rows");
    assert_eq!(rows.len(), 4);
    let messages = server.messages();
    assert!(
        messages.len() > rows.len(),
        "the killed worker had handed one message over before dying, so it arrives twice ({} messages)",
        messages.len()
    );
    for row in rows {
        let id = format!("<{}@madoguchi>", row.id);
        assert!(
            messages.iter().any(|m| m["message_id"] == id.as_str()),
            "{id} was delivered"
        );
    }
}

#[test]
fn rendered_emails_are_snapshotted() {
    use madoguchi::notify::NoticeData;
    use madoguchi::notify::templates::render;
    let data = |event: &str, status: &str| NoticeData {
        event: event.to_owned(),
        reference: "K7QM-4XTR-9BZP".to_owned(),
        procedure_title_ja: "住民票の写しの交付請求".to_owned(),
        procedure_title_en: "Request for a certified copy of the resident record (juminhyo)"
            .to_owned(),
        status: status.to_owned(),
        link: "https://madoguchi.example/submissions/0190".to_owned(),
        payment: None,
    };
    for (template, language, event, status) in [
        ("resident_status", "ja", "received", "送信済"),
        ("resident_status", "en", "received", "Submitted"),
        ("resident_status", "ja", "returned", "差し戻し"),
        ("resident_status", "en", "completed", "Completed"),
        ("division_status", "ja", "received", "送信済"),
    ] {
        let email = render(template, language, &data(event, status)).expect("renders");
        insta::assert_snapshot!(
            format!("{template}-{language}-{event}"),
            format!(
                "Subject: {}\n\n{}\n---\n{}",
                email.subject, email.text, email.html
            )
        );
    }
}

#[actix_web::test]
async fn a_withdrawal_is_announced_in_the_residents_language() {
    let app = TestApp::spawn().await;
    let token = resident_with_email(&app, "mail-resident-6").await;
    let (status, _) = app
        .json(
            TestRequest::patch()
                .uri("/api/v1/me")
                .insert_header(bearer(&token))
                .set_json(json!({"language": "en"})),
        )
        .await;
    assert_eq!(status, 204);
    let created = apply(&app, &token, "lang-1").await;
    app.run_pending_jobs().await;
    let id = created["id"].as_str().unwrap_or_default();
    let (status, _) = app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/submissions/{id}/withdraw"))
                .insert_header(bearer(&token)),
        )
        .await;
    assert_eq!(status, 200);
    let sent = app.run_pending_jobs().await;
    let subjects: Vec<String> = sent
        .iter()
        .map(|m| {
            String::from_utf8_lossy(&m.formatted())
                .lines()
                .find(|l| l.starts_with("Subject:"))
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        sent.len(),
        1,
        "only the resident hears of a withdrawal by default: {subjects:?}"
    );
    assert!(subjects[0].contains("withdrawn"), "{subjects:?}");
}

#[actix_web::test]
async fn smtp_down_during_a_load_fails_no_application_and_every_email_is_sent_later() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let app = TestApp::with_settings(smtp_settings(port)).await;
    let token = resident_with_email(&app, "mail-resident-7").await;
    let service = actix_web::test::init_service(madoguchi::startup::build_app(
        app.state.clone(),
        app.metrics.clone(),
    ))
    .await;
    let (procedure, data) = crate::helpers::sample_application();
    let requests = (0..30).map(|n| {
        let request = TestRequest::post()
            .uri(&format!("/api/v1/procedures/{procedure}/submissions"))
            .insert_header(bearer(&token))
            .insert_header(("idempotency-key", format!("load-{n}")))
            .set_json(json!({"data": data}))
            .to_request();
        actix_web::test::call_service(&service, request)
    });
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.status().as_u16(), 201);
    }
    // The worker tries while SMTP is down: nothing is lost, everything waits.
    let mut passes = 0;
    loop {
        let pass = worker_pass(&app).await;
        assert_eq!(pass.sent + pass.failed, 0);
        passes += 1;
        if pass.retried == 0 || passes > 10 {
            break;
        }
    }
    let server = SmtpServer::start_on(port, 0.0, None);
    let mut connection = app.state.pool.get().await.expect("connection");
    let started = Instant::now();
    let mut sent = 0;
    while sent < 60 && started.elapsed() < Duration::from_secs(30) {
        diesel_async::RunQueryDsl::execute(
            diesel::sql_query("UPDATE outbox SET next_attempt_at = now() WHERE status = 'pending'"),
            &mut connection,
        )
        .await
        .expect("reschedule");
        sent += worker_pass(&app).await.sent;
    }
    assert_eq!(sent, 60, "30 residents' notices and 30 division notices");
    assert_eq!(server.wait_for(60, Duration::from_secs(10)).len(), 60);
}

#[actix_web::test]
async fn divisions_get_one_overdue_digest_a_day_with_reference_numbers_only() {
    let app = TestApp::spawn().await;
    let token = resident_with_email(&app, "mail-resident-8").await;
    let created = apply(&app, &token, "late-1").await;
    app.run_pending_jobs().await; // the receipt notices
    let mut connection = app.state.pool.get().await.expect("connection");
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("UPDATE submissions SET due_date = current_date - 3"),
        &mut connection,
    )
    .await
    .expect("make it overdue");
    let today = madoguchi::forms::lint::city_today();
    let queued = madoguchi::notify::digest::enqueue_overdue_digests(
        &mut connection,
        &app.state.catalog,
        "https://madoguchi.example",
        today,
    )
    .await
    .expect("digest");
    assert_eq!(queued, 1);
    let again = madoguchi::notify::digest::enqueue_overdue_digests(
        &mut connection,
        &app.state.catalog,
        "https://madoguchi.example",
        today,
    )
    .await
    .expect("digest");
    assert_eq!(again, 0, "at most one digest a day");

    let sent = app.run_pending_jobs().await;
    assert_eq!(sent.len(), 1);
    let message = String::from_utf8_lossy(&sent[0].formatted()).into_owned();
    let (procedure, _) = crate::helpers::sample_application();
    let division = &CATALOG
        .get(&procedure)
        .expect("procedure")
        .definition
        .division;
    let email = &app.state.catalog.organisation.divisions[division].email;
    assert!(message.contains(&format!("To: {email}")), "{message}");
    let rendered = madoguchi::notify::templates::render(
        "division_overdue",
        "ja",
        &serde_json::from_value(json!({
            "event": "overdue", "reference": created["reference"], "procedure_title_ja": "",
            "procedure_title_en": "", "status": "1", "link": "https://madoguchi.example/x"
        }))
        .expect("notice"),
    )
    .expect("renders");
    assert!(
        rendered
            .text
            .contains(created["reference"].as_str().unwrap_or("?"))
    );
    assert!(rendered.subject.contains("1 件"));
}

#[test]
fn an_smtp_fixture_that_cannot_start_says_why() {
    let missing = Path::new("/nonexistent/madoguchi-test-cert.pem");
    let failure = std::panic::catch_unwind(|| SmtpServer::start(0.0, Some((missing, missing))))
        .err()
        .expect("a missing certificate stops the fixture");
    let message = failure
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("did not start"), "{message}");
    // The fixture's own stderr (Python's traceback), not just "no READY line".
    assert!(message.contains("FileNotFoundError"), "{message}");
}
