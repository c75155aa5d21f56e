//! The front door of the integration tests: `TestApp` builds the real application on a fresh
//! PostgreSQL database of its own (cloned from a template migrated once), dropped afterwards.

use std::sync::{Arc, LazyLock};

use actix_web::dev::ServiceResponse;
use actix_web::test::{self, TestRequest};
use actix_web::web;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use madoguchi::config::{Profile, Settings};
use madoguchi::db;
use madoguchi::forms::Catalog;
use madoguchi::startup::build_app;
use madoguchi::state::AppState;
use madoguchi::telemetry::Metrics;
use serde_json::Value;
use tokio::sync::OnceCell;

/// The catalog is read-only: load it once for the whole test binary.
pub static CATALOG: LazyLock<Arc<Catalog>> = LazyLock::new(|| {
    Arc::new(
        Catalog::load(std::path::Path::new("forms"))
            .unwrap_or_else(|report| panic!("the catalog has problems:\n{report}")),
    )
});

pub fn test_settings() -> Settings {
    Settings::load(std::path::Path::new("config"), Profile::Test).expect("test settings load")
}

struct Server {
    admin_url: String,
    template: String,
}

static SERVER: OnceCell<Server> = OnceCell::const_new();

/// Finds the server once and migrates a template database named after the migrations' content,
/// so runs with the same migrations reuse it and a changed migration gets a new one.
async fn server() -> &'static Server {
    SERVER
        .get_or_init(|| async {
            let settings = test_settings();
            let resolved = db::cluster::resolve(&settings.database, "postgres")
                .await
                .expect("a PostgreSQL server for the tests");
            let admin_url = resolved.admin_url;
            std::mem::forget(resolved.cluster); // keep a private cluster alive for the process
            let template = format!("madoguchi_template_{}", migrations_fingerprint());
            let mut admin = AsyncPgConnection::establish(&admin_url)
                .await
                .expect("admin connection");
            // One process at a time builds the template.
            diesel::sql_query("SELECT pg_advisory_lock(727274)")
                .execute(&mut admin)
                .await
                .expect("lock");
            db::create_database_if_missing(&admin_url, &template)
                .await
                .expect("template database");
            // Applies only what is pending, so an interrupted earlier run is completed.
            db::run_migrations(&db::with_database(&admin_url, &template))
                .await
                .expect("migrations apply to the template");
            diesel::sql_query("SELECT pg_advisory_unlock(727274)")
                .execute(&mut admin)
                .await
                .expect("unlock");
            Server {
                admin_url,
                template,
            }
        })
        .await
}

fn migrations_fingerprint() -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    let mut entries: Vec<_> = std::fs::read_dir("migrations")
        .expect("migrations dir")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    entries.sort();
    for dir in entries {
        for file in ["up.sql", "down.sql"] {
            hasher.update(std::fs::read(dir.join(file)).unwrap_or_default());
        }
    }
    hex::encode(&hasher.finalize()[..6])
}

/// A database of one test's own, dropped when the value is dropped.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

impl TestDatabase {
    pub async fn new() -> Self {
        let server = server().await;
        let name = format!("madoguchi_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&server.admin_url)
            .await
            .expect("admin connection");
        let mut attempts = 0;
        loop {
            // Two clones of one template at the same instant can collide; retry briefly.
            let created = diesel::sql_query(format!(
                "CREATE DATABASE \"{name}\" TEMPLATE \"{}\"",
                server.template
            ))
            .execute(&mut admin)
            .await;
            match created {
                Ok(_) => break,
                Err(error) if attempts < 20 => {
                    attempts += 1;
                    tracing::debug!(%error, "retrying template clone");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(error) => panic!("creating test database: {error}"),
            }
        }
        Self {
            url: db::with_database(&server.admin_url, &name),
            admin_url: server.admin_url.clone(),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside async; use a small runtime of its own on another thread.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = AsyncPgConnection::establish(&admin_url).await?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .execute(&mut admin)
                    .await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: test database {} was not dropped", self.name);
        }
    }
}

pub struct TestApp {
    pub database: TestDatabase,
    pub state: web::Data<AppState>,
    pub metrics: web::Data<Metrics>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::with_settings(test_settings()).await
    }

    pub async fn with_settings(settings: Settings) -> Self {
        let database = TestDatabase::new().await;
        let pool = db::build_pool(&database.url, &settings.database).expect("pool");
        // As at startup: every served definition version is on record before anyone applies.
        CATALOG
            .record_versions(&pool)
            .await
            .expect("record procedure versions");
        let state = web::Data::new(
            AppState::build(settings, pool, CATALOG.clone())
                .await
                .expect("app state"),
        );
        Self {
            database,
            state,
            metrics: web::Data::new(Metrics::new().expect("metrics")),
        }
    }

    pub async fn call(&self, request: TestRequest) -> ServiceResponse {
        let app = test::init_service(build_app(self.state.clone(), self.metrics.clone())).await;
        match test::try_call_service(&app, request.to_request()).await {
            Ok(response) => response.map_into_boxed_body(),
            // A refusal raised before a handler runs (a body over the limit) comes back as an
            // error here; the real server renders it the same way.
            Err(error) => ServiceResponse::new(
                TestRequest::default().to_http_request(),
                error.error_response(),
            ),
        }
    }

    /// Sends the request; returns the status, the response and the body parsed as JSON (Null
    /// when the body is empty or not JSON).
    pub async fn json(&self, request: TestRequest) -> (u16, Value) {
        let response = self.call(request).await;
        let status = response.status().as_u16();
        let body = test::read_body(response).await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.json(TestRequest::get().uri(path)).await
    }

    /// GET with a bearer token.
    pub async fn get_as(&self, path: &str, token: &str) -> (u16, Value) {
        self.json(TestRequest::get().uri(path).insert_header(bearer(token)))
            .await
    }
}

/// The field errors of a problem response as sorted `(path, code)` pairs.
pub fn field_errors(problem: &Value) -> Vec<(String, String)> {
    let mut errors: Vec<(String, String)> = problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|error| {
                    (
                        error["path"].as_str().unwrap_or_default().to_owned(),
                        error["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    errors.sort();
    errors
}

/// A response header as text ("" when absent).
pub fn header<B>(response: &ServiceResponse<B>, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

impl TestApp {
    /// Signs in a resident with the dev provider; returns the token pair as JSON.
    pub async fn resident_tokens(&self, subject: &str) -> Value {
        let (status, started) = self
            .json(TestRequest::post().uri("/api/v1/auth/dev/start"))
            .await;
        assert_eq!(status, 200, "{started}");
        let (status, tokens) = self
            .json(
                TestRequest::post()
                    .uri("/api/v1/auth/dev/complete")
                    .set_json(serde_json::json!({
                        "challenge_id": started["challenge_id"],
                        "subject": subject,
                    })),
            )
            .await;
        assert_eq!(status, 200, "{tokens}");
        tokens
    }

    /// A bearer access token of a resident signed in with the dev provider.
    pub async fn resident(&self, subject: &str) -> String {
        self.resident_tokens(subject).await["access_token"]
            .as_str()
            .expect("access token")
            .to_owned()
    }
}

pub fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

/// The test PKI (tests/fixtures/pki), generated once per test run into a temporary directory.
pub fn test_pki() -> &'static std::path::Path {
    static PKI: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = std::process::Command::new("bash")
            .arg("tests/fixtures/pki/make-test-pki.sh")
            .arg(dir.path())
            .env("MAKE_TEST_PKI_QUIET", "1")
            .status()
            .expect("run make-test-pki.sh");
        assert!(status.success(), "the test PKI script failed");
        dir
    })
    .path()
}

/// Settings with the `jpki` provider trusting the test PKI's root and CRL.
pub fn settings_with_test_pki() -> Settings {
    let mut settings = test_settings();
    let pki = test_pki();
    settings.identity.providers = vec!["dev".to_owned(), "jpki".to_owned()];
    settings.identity.jpki.trust_anchors = vec![pki.join("root-ca.pem")];
    settings.identity.jpki.crl = pki.join("crl.pem").display().to_string();
    settings
}

impl TestApp {
    /// As a signed-in resident would: asks `…/validate` for the bytes to sign (they carry the
    /// resident's account and a fresh single-use nonce), signs them with the test card `card`,
    /// and returns the body fields `signature` (base64 CMS) and `signing_nonce`.
    pub async fn card_signature(
        &self,
        token: &str,
        procedure: &str,
        data: &Value,
        card: &str,
    ) -> (String, String) {
        self.card_signature_from(token, procedure, data, card, None)
            .await
    }

    /// As [`TestApp::card_signature`], for answers resumed from `draft` (My Numbers masked).
    pub async fn card_signature_from(
        &self,
        token: &str,
        procedure: &str,
        data: &Value,
        card: &str,
        draft: Option<&str>,
    ) -> (String, String) {
        let query = draft.map_or_else(String::new, |draft| format!("?draft={draft}"));
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let (status, checked) = self
            .json(
                TestRequest::post()
                    .uri(&format!("/api/v1/procedures/{procedure}/validate{query}"))
                    .insert_header(bearer(token))
                    .set_json(data),
            )
            .await;
        assert_eq!(status, 200, "{checked}");
        let payload = engine
            .decode(
                checked["signing_payload"]
                    .as_str()
                    .expect("a signing payload"),
            )
            .expect("base64");
        let nonce = checked["signing_nonce"]
            .as_str()
            .expect("a nonce")
            .to_owned();
        (engine.encode(card_sign(card, &payload)), nonce)
    }
}

impl TestApp {
    /// Sets the resident's email address and confirms it through the link the service sends, as
    /// the resident would (notices go only to a confirmed address).
    pub async fn confirmed_email(&self, token: &str, address: &str) {
        let (status, _) = self
            .json(
                TestRequest::patch()
                    .uri("/api/v1/me")
                    .insert_header(bearer(token))
                    .set_json(serde_json::json!({"email": address})),
            )
            .await;
        assert_eq!(status, 204);
        #[derive(diesel::QueryableByName)]
        struct Link {
            #[diesel(sql_type = diesel::sql_types::Text)]
            link: String,
        }
        let mut connection = AsyncPgConnection::establish(&self.database.url)
            .await
            .expect("connect");
        let links: Vec<Link> = diesel::sql_query(
            "SELECT payload->>'link' AS link FROM outbox \
             WHERE template = 'email_confirmation' AND recipient = $1 ORDER BY created_at DESC LIMIT 1",
        )
        .bind::<diesel::sql_types::Text, _>(address)
        .load(&mut connection)
        .await
        .expect("the confirmation in the outbox");
        let confirmation = links[0].link.split("token=").nth(1).expect("token");
        let (status, problem) = self
            .json(
                TestRequest::post()
                    .uri("/api/v1/me/email/confirm")
                    .set_json(serde_json::json!({"token": confirmation})),
            )
            .await;
        assert_eq!(status, 204, "{problem}");
        // Delivered, as far as the tests that count emails are concerned.
        diesel::sql_query(
            "DELETE FROM outbox WHERE template = 'email_confirmation' AND recipient = $1",
        )
        .bind::<diesel::sql_types::Text, _>(address)
        .execute(&mut connection)
        .await
        .expect("clear the confirmation");
    }
}

/// A detached CMS signature (DER) over `content` with a test card's signing key.
pub fn card_sign(card: &str, content: &[u8]) -> Vec<u8> {
    let pki = test_pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("content");
    let output = dir.path().join("signature.der");
    std::fs::write(&input, content).expect("write content");
    let status = std::process::Command::new("openssl")
        .args([
            "cms", "-sign", "-binary", "-md", "sha256", "-outform", "DER", "-signer",
        ])
        .arg(pki.join(format!("{card}.pem")))
        .arg("-inkey")
        .arg(pki.join(format!("{card}.key")))
        .arg("-in")
        .arg(&input)
        .arg("-out")
        .arg(&output)
        .status()
        .expect("openssl cms");
    assert!(status.success());
    std::fs::read(output).expect("read signature")
}

impl TestApp {
    /// Runs the email worker once against an in-memory mailer; returns the messages it sent.
    pub async fn run_pending_jobs(&self) -> Vec<lettre::Message> {
        let (mailer, sent) =
            madoguchi::notify::mailer::Mailer::memory(&self.state.settings.email).expect("mailer");
        madoguchi::worker::run_once(&self.state.pool, &mailer, &self.state.settings.email)
            .await
            .expect("worker pass");
        sent.lock()
            .map(|messages| messages.clone())
            .unwrap_or_default()
    }
}

/// The password of every staff account the tests create.
pub const STAFF_PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    /// Creates a staff account with `role` in `division` (directly, as `madoguchi staff create`
    /// does) and signs it in through `POST /api/v1/staff/login`; returns its id and access token.
    pub async fn staff_member(&self, division: &str, role: &str) -> (uuid::Uuid, String) {
        use madoguchi::identity::staff::{self, Membership, Role};
        let login = format!("{division}-{role}-{}", uuid::Uuid::new_v4().simple());
        let mut connection = self.state.pool.get().await.expect("connection");
        let id = staff::create(
            &mut connection,
            &login,
            &format!("職員 {role}"),
            None,
            Some(STAFF_PASSWORD),
            &[Membership {
                division: division.to_owned(),
                role: Role::parse(role).expect("clerk, supervisor or admin"),
            }],
            None,
        )
        .await
        .expect("staff account");
        drop(connection);
        let (status, tokens) = self
            .json(
                TestRequest::post()
                    .uri("/api/v1/staff/login")
                    .set_json(serde_json::json!({"login": login, "password": STAFF_PASSWORD})),
            )
            .await;
        assert_eq!(status, 200, "{tokens}");
        (
            id,
            tokens["access_token"]
                .as_str()
                .expect("access token")
                .to_owned(),
        )
    }

    /// A bearer token of a new staff member with `role` in `division`.
    pub async fn staff(&self, division: &str, role: &str) -> String {
        self.staff_member(division, role).await.1
    }
}

/// A throwaway CA and a server certificate for 127.0.0.1 (serverAuth) signed by it, made with
/// openssl in `dir`. Returns the paths of `ca.pem`, `server.pem` and `server.key`.
pub fn localhost_certificate(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success(), "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=madoguchi test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

/// Up to `count` procedures of an assurance level whose first valid example needs no attachment
/// and no fixed "today", with that example's answers.
pub fn samples(assurance: madoguchi::forms::Assurance, count: usize) -> Vec<(String, Value)> {
    CATALOG
        .procedures
        .values()
        .filter(|p| p.definition.assurance == assurance)
        .filter_map(|p| {
            let example = p
                .definition
                .examples
                .iter()
                .find(|e| e.valid && e.as_of.is_none())?;
            let uses_files = example.data.to_string().contains("01900000-");
            (!uses_files).then(|| (p.definition.id.clone(), example.data.clone()))
        })
        .take(count)
        .collect()
}

/// One procedure anyone signed in may apply for, with valid answers.
pub fn sample_application() -> (String, Value) {
    samples(madoguchi::forms::Assurance::None, 1).remove(0)
}
