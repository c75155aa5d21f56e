//! Stored files on every backend: the same attachment suite against the filesystem, memory and a
//! real S3-compatible server (SeaweedFS, started by the test on loopback), and the S3 store going
//! down under an upload.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::test::TestRequest;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use madoguchi::config::Settings;
use madoguchi::storage::{Backend, Storage, StorageError};
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{TestApp, bearer, test_settings};

pub(crate) const ACCESS_KEY: &str = "madoguchi-test";
pub(crate) const SECRET_KEY: &str = "madoguchi-test-secret";
pub(crate) const BUCKET: &str = "madoguchi";

/// `N` different free ports. Each is held until all are chosen: a port let go at once can be
/// handed out again by the next bind to port 0, and `weed mini` would then find two of its
/// services on one port.
fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    std::array::from_fn(|n| held[n].local_addr().expect("its address").port())
}

/// `weed mini` (master, volume, filer and S3 in one process) on 127.0.0.1 with every port chosen
/// here, its data in a temporary directory; killed when dropped.
pub(crate) struct SeaweedFs {
    child: Child,
    pub(crate) endpoint: String,
    log: std::fs::File,
    _data: tempfile::TempDir,
}

impl SeaweedFs {
    pub(crate) async fn start() -> Self {
        let weed = crate::fixtures::weed();
        let data = tempfile::tempdir().expect("tempdir");
        let log = tempfile::tempfile().expect("temp file for weed's output");
        let flags = [
            "-s3.port",
            "-master.port",
            "-master.port.grpc",
            "-volume.port",
            "-volume.port.grpc",
            "-filer.port",
            "-filer.port.grpc",
            "-s3.port.grpc",
            "-admin.port",
            "-admin.port.grpc",
            "-debug.port",
        ];
        let ports = flags
            .into_iter()
            .zip(free_ports::<11>())
            .collect::<Vec<_>>();
        let s3_port = ports[0].1;
        let mut command = Command::new(weed);
        command
            .arg("mini")
            .arg(format!("-dir={}", data.path().display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            .args(ports.iter().map(|(flag, port)| format!("{flag}={port}")))
            // Services with a port of their own that the tests do not use: off.
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false"])
            .args(["-admin.ui=false", "-master.telemetry=false"])
            .arg(format!("-bucket={BUCKET}"))
            // `weed mini` makes these the S3 administrator's credentials.
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log.try_clone().expect("clone log"));
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{} could not start: {e}", weed.display()));
        let mut fixture = Self {
            child,
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            log,
            _data: data,
        };
        // Ready when an object can be written, read back and deleted with the credentials. A
        // bucket that lists is not enough: the volume server can register after the filer, and
        // until it has a writable volume every upload fails.
        let probe = Storage::s3(&fixture.s3_settings("readiness-probe").s3).expect("s3 client");
        let started = Instant::now();
        let mut last = String::new();
        let mut attempt = 0;
        while started.elapsed() < Duration::from_secs(90) {
            attempt += 1;
            if let Ok(Some(status)) = fixture.child.try_wait() {
                panic!(
                    "SeaweedFS exited ({status}) before it was ready:\n{}",
                    crate::fixtures::read_log(&mut fixture.log)
                );
            }
            match write_read_delete(&probe, &format!("probe-{attempt}")).await {
                Ok(()) => return fixture,
                Err(error) => last = error,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "SeaweedFS did not store an object within 90 s (last error: {last}):\n{}",
            crate::fixtures::read_log(&mut fixture.log)
        );
    }

    /// Storage settings for this server's bucket; `prefix` keeps tests sharing one apart.
    pub(crate) fn s3_settings(&self, prefix: &str) -> madoguchi::storage::StorageSettings {
        let mut storage = test_settings().storage;
        storage.backend = Backend::S3;
        storage.s3.endpoint = self.endpoint.clone();
        storage.s3.bucket = BUCKET.to_owned();
        storage.s3.prefix = prefix.to_owned();
        storage.s3.allow_http = true;
        // Long enough for a machine loaded by the other tests; the test of a store that is down
        // sets its own, shorter bound.
        storage.s3.request_timeout_seconds = 20;
        storage.s3.access_key_id = ACCESS_KEY.to_owned();
        storage.s3.secret_access_key = SecretString::from(SECRET_KEY);
        storage
    }

    pub(crate) fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One object through the store and back: the probe of a store that is ready for uploads.
async fn write_read_delete(storage: &Storage, key: &str) -> Result<(), String> {
    storage
        .put(key, b"probe")
        .await
        .map_err(|e| format!("put: {e:?}"))?;
    let read = storage.get(key).await.map_err(|e| format!("get: {e:?}"))?;
    if read.as_ref() != b"probe" {
        return Err(format!("read back {read:?}"));
    }
    storage
        .delete(key)
        .await
        .map_err(|e| format!("delete: {e:?}"))
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        self.stop();
    }
}

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

fn upload(draft: &str, field: &str, token: &str, bytes: &[u8], name: &str) -> TestRequest {
    let boundary = "storage-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    TestRequest::post()
        .uri(&format!("/api/v1/drafts/{draft}/attachments?field={field}"))
        .insert_header(bearer(token))
        .insert_header((
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        ))
        .set_payload(body)
}

async fn new_draft(app: &TestApp, token: &str) -> String {
    let (status, draft) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/drafts")
                .insert_header(bearer(token))
                .set_json(json!({"procedure_id": "hoiku-riyo-moshikomi", "data": {}})),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    draft["id"].as_str().expect("id").to_owned()
}

async fn stored_keys(storage: &Storage) -> Vec<String> {
    let mut keys = storage
        .keys_older_than(Duration::ZERO)
        .await
        .expect("listing the store");
    keys.sort();
    keys
}

/// The attachment suite, the same for every backend.
async fn attachment_suite(settings: Settings) {
    let app = TestApp::with_settings(settings).await;
    let storage = app.state.storage.clone();
    assert!(stored_keys(&storage).await.is_empty(), "a fresh store");
    let alice = app.resident("card-storage-1").await;
    let mallory = app.resident("card-storage-2").await;
    let field = crate::submissions::first_file_field("hoiku-riyo-moshikomi");
    let draft = new_draft(&app, &alice).await;

    // Stored under its id, never its name; read back whole by its owner only.
    let (status, stored) = app
        .json(upload(
            &draft,
            &field,
            &alice,
            PDF,
            "山田太郎_源泉徴収票.pdf",
        ))
        .await;
    assert_eq!(status, 201, "{stored}");
    let id = stored["id"].as_str().expect("id").to_owned();
    assert_eq!(stored_keys(&storage).await, vec![id.clone()]);
    let response = app
        .call(
            TestRequest::get()
                .uri(&format!("/api/v1/attachments/{id}"))
                .insert_header(bearer(&alice)),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        crate::helpers::header(&response, "content-type"),
        "application/pdf"
    );
    let body = actix_web::test::read_body(response).await;
    assert_eq!(body.as_ref(), PDF);
    let (status, _) = app
        .get_as(&format!("/api/v1/attachments/{id}"), &mallory)
        .await;
    assert_eq!(status, 404, "another resident's file");

    // Refused content is never stored.
    let (status, problem) = app
        .json(upload(
            &draft,
            &field,
            &alice,
            b"MZ\x90\x00 not a pdf",
            "a.pdf",
        ))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(stored_keys(&storage).await.len(), 1);

    // A create-only write never replaces a stored object.
    let again = storage.put(&id, b"%PDF-1.4 replaced").await;
    assert!(
        matches!(again, Err(StorageError::AlreadyExists)),
        "{again:?}"
    );
    assert_eq!(storage.get(&id).await.expect("get").as_ref(), PDF);

    // Discarding the draft deletes its file.
    let (status, _) = app
        .json(
            TestRequest::delete()
                .uri(&format!("/api/v1/drafts/{draft}"))
                .insert_header(bearer(&alice)),
        )
        .await;
    assert_eq!(status, 204);
    assert!(stored_keys(&storage).await.is_empty());

    // An object no row names (a crash before its row committed) is swept; named ones stay.
    let kept_draft = new_draft(&app, &alice).await;
    let (status, kept) = app
        .json(upload(&kept_draft, &field, &alice, PDF, "b.pdf"))
        .await;
    assert_eq!(status, 201, "{kept}");
    storage
        .put("0190aaaa-0000-7000-8000-000000000000", PDF)
        .await
        .expect("an orphan");
    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .expect("connect");
    let swept = madoguchi::submissions::attachments::sweep(
        &mut connection,
        &storage,
        chrono::Duration::days(30),
        Duration::ZERO,
    )
    .await
    .expect("sweep");
    assert_eq!(swept.orphaned_files, 1);
    assert_eq!(
        stored_keys(&storage).await,
        vec![kept["id"].as_str().expect("id").to_owned()]
    );
}

#[actix_web::test]
async fn the_attachment_suite_passes_on_the_filesystem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings();
    settings.storage.backend = Backend::Fs;
    settings.submissions.attachments_dir = dir.path().to_owned();
    attachment_suite(settings).await;
}

#[actix_web::test]
async fn the_attachment_suite_passes_in_memory() {
    let mut settings = test_settings();
    settings.storage.backend = Backend::Memory;
    attachment_suite(settings).await;
}

#[actix_web::test]
async fn the_attachment_suite_passes_on_s3() {
    let seaweed = SeaweedFs::start().await;
    let mut settings = test_settings();
    settings.storage = seaweed.s3_settings("suite");
    attachment_suite(settings).await;
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

#[actix_web::test]
async fn with_the_object_store_down_an_upload_is_answered_503_and_nothing_is_half_stored() {
    let mut seaweed = SeaweedFs::start().await;
    let mut settings = test_settings();
    settings.storage = seaweed.s3_settings("down");
    settings.storage.s3.request_timeout_seconds = 3;
    let app = TestApp::with_settings(settings).await;
    let token = app.resident("card-storage-3").await;
    let field = crate::submissions::first_file_field("hoiku-riyo-moshikomi");
    let draft = new_draft(&app, &token).await;
    let (status, stored) = app.json(upload(&draft, &field, &token, PDF, "a.pdf")).await;
    assert_eq!(status, 201, "{stored}");

    seaweed.stop();
    let started = Instant::now();
    let response = app.call(upload(&draft, &field, &token, PDF, "b.pdf")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(crate::helpers::header(&response, "retry-after"), "5");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered within the request bound, took {:?}",
        started.elapsed()
    );
    // Reading a stored file with the store down is a 503 too, not a 500.
    let id = stored["id"].as_str().expect("id");
    let response = app
        .call(
            TestRequest::get()
                .uri(&format!("/api/v1/attachments/{id}"))
                .insert_header(bearer(&token)),
        )
        .await;
    assert_eq!(response.status(), 503);

    // Only the first upload has a row.
    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .expect("connect");
    let rows = diesel::sql_query("SELECT count(*) AS count FROM attachments")
        .get_result::<Count>(&mut connection)
        .await
        .expect("count")
        .count;
    assert_eq!(rows, 1);
}
