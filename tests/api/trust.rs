//! The findings of the independent security review, one test each: My Numbers never stored in
//! clear and bound to their row, signatures used once, storage limits per resident, metrics,
//! headers, sessions that end at once, confirmed email, and the deployment files.

use actix_web::test::TestRequest;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

use crate::helpers::{
    CATALOG, TestApp, bearer, card_sign, settings_with_test_pki, test_pki, test_settings,
};
use crate::staff::pointer_of;
use crate::submissions::submit;

/// A card-sign procedure whose valid example carries My Numbers (top level and in a group),
/// with that example.
fn my_number_procedure() -> (String, Value) {
    CATALOG
        .procedures
        .values()
        .find_map(|p| {
            let example = p
                .definition
                .examples
                .iter()
                .find(|e| e.valid && e.as_of.is_none())?;
            let text = example.data.to_string();
            (p.definition.routing.is_empty()
                && text.contains("123456789018")
                && !text.contains("01900000-"))
            .then(|| (p.definition.id.clone(), example.data.clone()))
        })
        .expect("a procedure collecting a My Number")
}

/// Every 12-digit run in `text` that passes the My Number check digit.
fn my_numbers_in(text: &str) -> Vec<String> {
    let digits: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut start = 0;
    while start < digits.len() {
        if !digits[start].is_ascii_digit() {
            start += 1;
            continue;
        }
        let end = (start..digits.len())
            .find(|&i| !digits[i].is_ascii_digit())
            .unwrap_or(digits.len());
        if end - start == 12 {
            let run: String = digits[start..end].iter().collect();
            if madoguchi::forms::normalize::is_my_number(&run) {
                found.push(run);
            }
        }
        start = end;
    }
    found
}

#[derive(QueryableByName)]
struct Cell {
    #[diesel(sql_type = diesel::sql_types::Text)]
    place: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

/// Every text and JSON value of every table, as text, with where it was.
async fn every_stored_value(url: &str) -> Vec<Cell> {
    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        column_name: String,
    }
    let mut connection = AsyncPgConnection::establish(url).await.expect("connect");
    let columns: Vec<Column> = diesel::sql_query(
        // procedure_versions holds the published definitions, whose examples are not anyone's.
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND data_type IN ('text', 'jsonb', 'json', 'character varying') \
         AND table_name NOT IN ('__diesel_schema_migrations', 'procedure_versions')",
    )
    .load(&mut connection)
    .await
    .expect("columns");
    assert!(columns.len() > 20, "the scan sees the schema");
    let mut cells = Vec::new();
    for column in columns {
        let (table, name) = (&column.table_name, &column.column_name);
        // Byte columns hold hashes, DER certificates and CMS signatures, never answers (and
        // their dates look like 12-digit numbers).
        let value = format!("\"{name}\"::text");
        let query = format!(
            "SELECT '{table}.{name}' AS place, {value} AS value FROM \"{table}\" WHERE \"{name}\" IS NOT NULL"
        );
        cells.extend(
            diesel::sql_query(query)
                .load::<Cell>(&mut connection)
                .await
                .unwrap_or_else(|error| panic!("{table}.{name}: {error}")),
        );
    }
    cells
}

#[actix_web::test]
async fn no_my_number_is_stored_in_clear_in_any_table() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let token = app.resident("card-trust-01").await;
    let (procedure, data) = my_number_procedure();
    let numbers = my_numbers_in(&data.to_string());
    assert!(numbers.len() >= 2, "the example has several My Numbers");

    // A draft saved, read back (masked), saved again with the masked values, then submitted.
    let (status, draft) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/drafts")
                .insert_header(bearer(&token))
                .set_json(json!({"procedure_id": procedure, "data": data})),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let draft_id = draft["id"].as_str().expect("id").to_owned();
    assert!(
        my_numbers_in(&draft.to_string()).is_empty(),
        "the draft comes back masked: {draft}"
    );
    assert!(draft.to_string().contains("********9018"));
    let (status, resaved) = app
        .json(
            TestRequest::put()
                .uri(&format!("/api/v1/drafts/{draft_id}"))
                .insert_header(bearer(&token))
                .set_json(json!({"procedure_id": procedure, "data": draft["data"]})),
        )
        .await;
    assert_eq!(
        status, 200,
        "the masked values are accepted back: {resaved}"
    );

    // The resident submits what they saw (masked) from the draft; the server restores it.
    let (signature, nonce) = app
        .card_signature_from(
            &token,
            &procedure,
            &resaved["data"],
            "sign-alice",
            Some(&draft_id),
        )
        .await;
    let (status, created) = app
        .json(submit(
            &procedure,
            &token,
            "from-draft",
            json!({"data": resaved["data"], "draft_id": draft_id, "signature": signature, "signing_nonce": nonce}),
        ))
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();

    // A second draft stays in the database, so drafts are scanned too.
    let (status, _) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/drafts")
                .insert_header(bearer(&token))
                .set_json(json!({"procedure_id": procedure, "data": data})),
        )
        .await;
    assert_eq!(status, 201);

    // The clerk reveals one: the number is right, though it went through a masked draft.
    let supervisor = app
        .staff(
            &CATALOG
                .get(&procedure)
                .expect("procedure")
                .definition
                .division,
            "supervisor",
        )
        .await;
    let (status, revealed) = app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/staff/submissions/{id}/reveal"))
                .insert_header(bearer(&supervisor))
                .set_json(json!({
                    "field_path": pointer_of(&data, "123456789018", "").expect("pointer"),
                    "reason": "住民基本台帳ネットワークとの照合のため",
                })),
        )
        .await;
    assert_eq!(status, 200, "{revealed}");
    assert_eq!(revealed["my_number"], "123456789018");
    app.run_pending_jobs().await;

    // The numbers this resident gave, not any digits that pass the check digit: a random hex
    // nonce or hash holds a valid-looking 12-digit run now and then.
    let leaks: Vec<String> = every_stored_value(&app.database.url)
        .await
        .into_iter()
        .filter(|cell| {
            my_numbers_in(&cell.value)
                .iter()
                .any(|found| numbers.contains(found))
        })
        .map(|cell| cell.place)
        .collect();
    assert!(leaks.is_empty(), "My Numbers in clear in: {leaks:?}");
}

#[actix_web::test]
async fn a_sealed_my_number_copied_into_another_application_does_not_open() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let token = app.resident("card-trust-02").await;
    let (procedure, data) = my_number_procedure();
    let mut ids = Vec::new();
    for key in ["first", "second"] {
        let (signature, nonce) = app
            .card_signature(&token, &procedure, &data, "sign-alice")
            .await;
        let (status, created) = app
            .json(submit(
                &procedure,
                &token,
                key,
                json!({"data": data, "signature": signature, "signing_nonce": nonce}),
            ))
            .await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    let field = pointer_of(&data, "123456789018", "").expect("pointer");
    let path: Vec<String> = field
        .trim_start_matches('/')
        .split('/')
        .map(|part| format!("'{part}'"))
        .collect();
    // Someone with database access copies the first application's sealed value into the second.
    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .expect("connect");
    diesel::sql_query(format!(
        "UPDATE submissions SET data = jsonb_set(data, ARRAY[{path}], \
         (SELECT data #> ARRAY[{path}] FROM submissions WHERE id = '{first}')) WHERE id = '{second}'",
        path = path.join(","),
        first = ids[0],
        second = ids[1],
    ))
    .execute(&mut connection)
    .await
    .expect("copy the sealed value");

    let supervisor = app
        .staff(
            &CATALOG
                .get(&procedure)
                .expect("procedure")
                .definition
                .division,
            "supervisor",
        )
        .await;
    let reveal = |id: &str| {
        TestRequest::post()
            .uri(&format!("/api/v1/staff/submissions/{id}/reveal"))
            .insert_header(bearer(&supervisor))
            .set_json(
                json!({"field_path": field, "reason": "住民基本台帳ネットワークとの照合のため"}),
            )
    };
    let (status, problem) = app.json(reveal(&ids[1])).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "my_number.integrity_failed");
    // The staff view shows the moved value as unreadable, not as the other resident's number.
    let (status, opened) = app
        .json(
            TestRequest::get()
                .uri(&format!("/api/v1/staff/submissions/{}", ids[1]))
                .insert_header(bearer(&supervisor)),
        )
        .await;
    assert_eq!(status, 200, "{opened}");
    assert_eq!(opened["data"].pointer(&field), Some(&json!("********")));
    // Its own value still opens.
    let (status, revealed) = app.json(reveal(&ids[0])).await;
    assert_eq!(status, 200, "{revealed}");
}

#[actix_web::test]
async fn a_card_signature_counts_once_and_only_for_the_account_it_was_made_for() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let alice = app.resident("card-trust-03").await;
    let mallory = app.resident("card-trust-04").await;
    let procedure = "juminhyo-copy-request";
    let data = CATALOG
        .get(procedure)
        .expect("procedure")
        .definition
        .examples[0]
        .data
        .clone();
    let (signature, nonce) = app
        .card_signature(&alice, procedure, &data, "sign-alice")
        .await;
    let body = json!({"data": data, "signature": signature, "signing_nonce": nonce});

    // Another account presenting Alice's stored signature: the signed bytes name Alice.
    let (status, problem) = app
        .json(submit(procedure, &mallory, "steal", body.clone()))
        .await;
    assert_eq!(status, 401, "{problem}");
    assert_eq!(problem["code"], "auth.bad_signature");

    let (status, created) = app
        .json(submit(procedure, &alice, "once", body.clone()))
        .await;
    assert_eq!(status, 201, "{created}");
    // A retry of the same request is the same application…
    let (status, again) = app
        .json(submit(procedure, &alice, "once", body.clone()))
        .await;
    assert_eq!((status, &again["id"]), (201, &created["id"]));
    // …but the same signature as a new application is refused.
    let (status, problem) = app.json(submit(procedure, &alice, "twice", body)).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "signature.nonce_invalid");
    // A signature without its nonce proves nothing.
    let (status, problem) = app
        .json(submit(
            procedure,
            &alice,
            "no-nonce",
            json!({"data": data, "signature": signature}),
        ))
        .await;
    assert_eq!(status, 409, "{problem}");
}

#[actix_web::test]
async fn clear_drafts_of_before_are_sealed_once_by_the_data_migration() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-trust-05").await;
    let (procedure, data) = my_number_procedure();
    let (status, draft) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/drafts")
                .insert_header(bearer(&token))
                .set_json(json!({"procedure_id": procedure, "data": {}})),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let draft_id = draft["id"].as_str().expect("id").to_owned();
    // As an older version stored it: the answers in clear.
    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .expect("connect");
    diesel::sql_query("UPDATE drafts SET data = $1 WHERE id = $2::uuid")
        .bind::<diesel::sql_types::Jsonb, _>(&data)
        .bind::<diesel::sql_types::Text, _>(&draft_id)
        .execute(&mut connection)
        .await
        .expect("store in clear");

    let state = &app.state;
    madoguchi::startup::run_data_migrations(&state.pool, &state.sealer, &state.catalog)
        .await
        .expect("data migration");
    let stored: Vec<Cell> = diesel::sql_query(format!(
        "SELECT 'drafts.data' AS place, data::text AS value FROM drafts WHERE id = '{draft_id}'"
    ))
    .load(&mut connection)
    .await
    .expect("read back");
    assert!(
        my_numbers_in(&stored[0].value).is_empty(),
        "{}",
        stored[0].value
    );
    let (status, resumed) = app
        .get_as(&format!("/api/v1/drafts/{draft_id}"), &token)
        .await;
    assert_eq!(status, 200);
    assert!(resumed.to_string().contains("********9018"), "{resumed}");

    // It runs once: a clear value written afterwards is not its business any more.
    let migrations: Vec<Cell> =
        diesel::sql_query("SELECT 'data_migrations' AS place, name AS value FROM data_migrations")
            .load(&mut connection)
            .await
            .expect("recorded");
    assert_eq!(migrations.len(), 1);
}

fn files_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| entries.count())
}

fn upload(draft: &str, field: &str, token: &str, bytes: &[u8]) -> TestRequest {
    let boundary = "trust-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
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

fn pdf_of(size: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.4\n".to_vec();
    bytes.resize(size, b' ');
    bytes
}

#[actix_web::test]
async fn one_resident_cannot_fill_the_disk() {
    let attachments = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings();
    settings.submissions.attachments_dir = attachments.path().to_owned();
    settings.submissions.max_drafts_per_resident = 2;
    settings.submissions.max_pending_upload_mb_per_resident = 1;
    let app = TestApp::with_settings(settings).await;
    let token = app.resident("card-trust-06").await;
    let procedure = "hoiku-riyo-moshikomi";
    let field = crate::submissions::first_file_field(procedure);
    let new_draft = || {
        TestRequest::post()
            .uri("/api/v1/drafts")
            .insert_header(bearer(&token))
            .set_json(json!({"procedure_id": procedure, "data": {}}))
    };
    let mut drafts = Vec::new();
    for _ in 0..2 {
        let (status, draft) = app.json(new_draft()).await;
        assert_eq!(status, 201, "{draft}");
        drafts.push(draft["id"].as_str().expect("id").to_owned());
    }
    let (status, problem) = app.json(new_draft()).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "draft.limit_reached");

    // 1 MiB of pending uploads in all: two of 400 KiB fit, a third does not.
    let file = pdf_of(400 * 1024);
    for draft in &drafts {
        let (status, stored) = app.json(upload(draft, &field, &token, &file)).await;
        assert_eq!(status, 201, "{stored}");
    }
    let (status, problem) = app.json(upload(&drafts[0], &field, &token, &file)).await;
    assert_eq!(status, 413, "{problem}");
    assert_eq!(problem["code"], "attachment.quota_exceeded");
    assert_eq!(files_in(attachments.path()), 2);

    // Discarding a draft deletes its file.
    let (status, _) = app
        .json(
            TestRequest::delete()
                .uri(&format!("/api/v1/drafts/{}", drafts[0]))
                .insert_header(bearer(&token)),
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(files_in(attachments.path()), 1);

    // An expired draft's file goes with it.
    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .expect("connect");
    diesel::sql_query("UPDATE drafts SET expires_at = now() - interval '1 day'")
        .execute(&mut connection)
        .await
        .expect("expire");
    let storage = &app.state.storage;
    let purged = madoguchi::submissions::drafts::purge_expired(&mut connection, storage)
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    assert_eq!(files_in(attachments.path()), 0);

    // A file no row names (a crash before the row was committed) is swept.
    std::fs::write(attachments.path().join("stray"), b"left behind").expect("write");
    let swept = madoguchi::submissions::attachments::sweep(
        &mut connection,
        storage,
        chrono::Duration::days(30),
        std::time::Duration::ZERO,
    )
    .await
    .expect("sweep");
    assert_eq!(swept.orphaned_files, 1);
    assert_eq!(files_in(attachments.path()), 0);
}

#[actix_web::test]
async fn metrics_labels_are_bounded_and_production_closes_metrics_without_the_token() {
    let app = TestApp::spawn().await;
    app.call(
        TestRequest::default()
            .method(actix_web::http::Method::from_bytes(b"BREW").expect("method"))
            .uri("/healthz"),
    )
    .await;
    let (status, _) = app.json(TestRequest::get().uri("/metrics")).await;
    assert_eq!(status, 200);
    let text = actix_web::body::to_bytes(
        app.call(TestRequest::get().uri("/metrics"))
            .await
            .into_body(),
    )
    .await
    .expect("body");
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("method=\"other\""), "{text}");
    assert!(!text.contains("BREW"), "{text}");

    let mut settings = test_settings();
    settings.server.metrics_open = false;
    settings.server.metrics_token = secrecy::SecretString::from("scraper-token-1");
    let closed = TestApp::with_settings(settings).await;
    for header in [None, Some("Bearer wrong"), Some("scraper-token-1")] {
        let mut request = TestRequest::get().uri("/metrics");
        if let Some(value) = header {
            request = request.insert_header(("authorization", value));
        }
        let (status, _) = closed.json(request).await;
        assert_eq!(status, 404, "{header:?}");
    }
    let (status, _) = closed
        .json(
            TestRequest::get()
                .uri("/metrics")
                .insert_header(("authorization", "Bearer scraper-token-1")),
        )
        .await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn answers_with_personal_data_are_not_cached_and_carry_security_headers() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-trust-07").await;
    let response = app
        .call(
            TestRequest::get()
                .uri("/api/v1/me")
                .insert_header(bearer(&token)),
        )
        .await;
    assert_eq!(response.status(), 200);
    let header = |name: &str| crate::helpers::header(&response, name);
    assert_eq!(header("cache-control"), "no-store");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("referrer-policy"), "no-referrer");
    assert!(header("content-security-policy").contains("frame-ancestors 'none'"));
    let tokens = app
        .call(TestRequest::post().uri("/api/v1/auth/dev/start"))
        .await;
    assert_eq!(crate::helpers::header(&tokens, "cache-control"), "no-store");
    // The public catalog keeps its own caching.
    let catalog = app.call(TestRequest::get().uri("/api/v1/procedures")).await;
    assert!(crate::helpers::header(&catalog, "cache-control").starts_with("public"));
}

#[actix_web::test]
async fn the_api_reference_loads_nothing_from_another_origin() {
    let app = TestApp::spawn().await;
    let page = app.call(TestRequest::get().uri("/docs")).await;
    assert_eq!(page.status(), 200);
    let policy = crate::helpers::header(&page, "content-security-policy");
    assert!(policy.contains("default-src 'self'"), "{policy}");
    let html = actix_web::body::to_bytes(page.into_body())
        .await
        .expect("body");
    let html = String::from_utf8_lossy(&html);
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert!(html.contains("src=\"/docs/rapidoc-min.js\""));

    let script = app
        .call(
            TestRequest::get()
                .uri("/docs/rapidoc-min.js")
                .insert_header(("accept-encoding", "gzip")),
        )
        .await;
    assert_eq!(script.status(), 200);
    assert_eq!(crate::helpers::header(&script, "content-encoding"), "gzip");
    let plain = app
        .call(TestRequest::get().uri("/docs/rapidoc-min.js"))
        .await;
    let body = actix_web::body::to_bytes(plain.into_body())
        .await
        .expect("body");
    assert!(body.len() > 500_000, "the inflated script");
    assert!(String::from_utf8_lossy(&body[..200]).is_ascii());
}

#[actix_web::test]
async fn an_access_token_stops_working_when_its_session_ends() {
    let app = TestApp::spawn().await;
    let tokens = app.resident_tokens("card-trust-08").await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let (status, _) = app.get_as("/api/v1/me", &access).await;
    assert_eq!(status, 200);
    let (status, _) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/auth/logout")
                .insert_header(bearer(&access))
                .set_json(json!({"refresh_token": tokens["refresh_token"]})),
        )
        .await;
    assert!(status < 300, "logout: {status}");
    let (status, problem) = app.get_as("/api/v1/me", &access).await;
    assert_eq!(status, 401, "{problem}");

    // A reused refresh token revokes the family, and its live access token with it.
    let tokens = app.resident_tokens("card-trust-08").await;
    let first = tokens["refresh_token"].clone();
    let (status, rotated) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/auth/refresh")
                .set_json(json!({"refresh_token": first})),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let live = rotated["access_token"].as_str().expect("access").to_owned();
    assert_eq!(app.get_as("/api/v1/me", &live).await.0, 200);
    // (Past the few seconds in which concurrent requests may present it again.)
    crate::auth::age_rotations(&app).await;
    let (status, _) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/auth/refresh")
                .set_json(json!({"refresh_token": first})),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(app.get_as("/api/v1/me", &live).await.0, 401);
}

#[actix_web::test]
async fn notices_go_only_to_a_confirmed_address() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-trust-09").await;
    let (status, _) = app
        .json(
            TestRequest::patch()
                .uri("/api/v1/me")
                .insert_header(bearer(&token))
                .set_json(json!({"email": "kaga.taro@example.jp", "language": "ja"})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, me) = app.get_as("/api/v1/me", &token).await;
    assert_eq!(me["email_confirmed"], false, "{me}");
    assert_eq!(me["pending_email"], "kaga.taro@example.jp");

    // Unconfirmed: applying sends nothing to that address, only the confirmation link.
    let (procedure, data) = crate::helpers::sample_application();
    let (status, _) = app
        .json(submit(&procedure, &token, "before", json!({"data": data})))
        .await;
    assert_eq!(status, 201);
    let sent = app.run_pending_jobs().await;
    let to_resident: Vec<_> = sent
        .iter()
        .filter(|m| format!("{:?}", m.envelope().to()).contains("kaga.taro"))
        .collect();
    assert_eq!(to_resident.len(), 1, "only the confirmation was sent there");
    // The link of the confirmation, as the outbox recorded it.
    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .expect("connect");
    let links: Vec<Cell> = diesel::sql_query(
        "SELECT template AS place, payload->>'link' AS value FROM outbox WHERE recipient = 'kaga.taro@example.jp'",
    )
    .load(&mut connection)
    .await
    .expect("outbox");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].place, "email_confirmation");
    let confirmation = links[0]
        .value
        .split("token=")
        .nth(1)
        .expect("a link with the token")
        .to_owned();
    assert_eq!(confirmation.len(), 64, "{}", links[0].value);

    let confirm = |token: &str| {
        TestRequest::post()
            .uri("/api/v1/me/email/confirm")
            .set_json(json!({"token": token}))
    };
    let (status, problem) = app.json(confirm("00")).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "email.confirmation_invalid");
    let (status, _) = app.json(confirm(&confirmation)).await;
    assert_eq!(status, 204);
    let (status, _) = app.json(confirm(&confirmation)).await;
    assert_eq!(status, 422, "a link works once");

    let (status, _) = app
        .json(submit(&procedure, &token, "after", json!({"data": data})))
        .await;
    assert_eq!(status, 201);
    let sent = app.run_pending_jobs().await;
    assert!(
        sent.iter()
            .any(|m| format!("{:?}", m.envelope().to()).contains("kaga.taro")),
        "the received notice goes to the confirmed address"
    );
}

#[actix_web::test]
async fn a_card_checked_against_an_expired_crl_is_a_503() {
    let mut settings = settings_with_test_pki();
    settings.identity.jpki.crl = test_pki().join("crl-expired.pem").display().to_string();
    let app = TestApp::with_settings(settings).await;
    let token = app.resident("card-trust-10").await;
    let procedure = "juminhyo-copy-request";
    let data = CATALOG
        .get(procedure)
        .expect("procedure")
        .definition
        .examples[0]
        .data
        .clone();
    let (_, checked) = app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/procedures/{procedure}/validate"))
                .insert_header(bearer(&token))
                .set_json(&data),
        )
        .await;
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let payload = engine
        .decode(checked["signing_payload"].as_str().expect("payload"))
        .expect("base64");
    let response = app
        .call(submit(
            procedure,
            &token,
            "stale-crl",
            json!({
                "data": data,
                "signature": engine.encode(card_sign("sign-alice", &payload)),
                "signing_nonce": checked["signing_nonce"],
            }),
        ))
        .await;
    assert_eq!(response.status(), 503);
    assert_eq!(crate::helpers::header(&response, "retry-after"), "5");
}

#[test]
fn the_image_runs_production_and_the_compose_demo_says_it_is_development() {
    let dockerfile = std::fs::read_to_string("Dockerfile").expect("Dockerfile");
    let final_stage = dockerfile.rsplit("\nFROM ").next().expect("a final stage");
    assert!(
        final_stage
            .lines()
            .any(|line| line.trim() == "ENV MADOGUCHI_PROFILE=production"),
        "the image's default profile is production"
    );
    assert!(final_stage.contains("USER madoguchi"));
    assert!(
        final_stage.contains("chown -R madoguchi"),
        "the service user can write its data directories"
    );

    let compose = std::fs::read_to_string("docker-compose.yml").expect("compose file");
    let documents = yaml_rust2::YamlLoader::load_from_str(&compose).expect("valid YAML");
    let app = &documents[0]["services"]["app"]["environment"];
    assert_eq!(
        app["MADOGUCHI_PROFILE"].as_str(),
        Some("development"),
        "the demo opts into development explicitly"
    );
    assert!(compose.contains("DEVELOPMENT profile"), "and says so");
    assert_eq!(app["MADOGUCHI__EMAIL__SMTP_HOST"].as_str(), Some("mail"));
}

#[test]
fn production_refuses_clear_smtp_and_http_issuers() {
    let variables = [
        ("MADOGUCHI__EMAIL__SMTP_TLS", "none"),
        ("MADOGUCHI__IDENTITY__OIDC__ISSUER", "http://idp.example"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let error = madoguchi::config::Settings::load_with_environment(
        std::path::Path::new("config"),
        madoguchi::config::Profile::Production,
        Some(variables),
    )
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(error.contains("smtp_tls"), "{error}");
    assert!(
        error.contains("identity.oidc.issuer must be https"),
        "{error}"
    );
}
