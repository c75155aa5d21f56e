//! The resident's side of an application: apply, idempotency, signatures, drafts, attachments,
//! isolation between residents, withdrawal, and sealed My Numbers.

use actix_web::test::TestRequest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use madoguchi::forms::Assurance;
use serde_json::{Value, json};

use crate::helpers::{
    CATALOG, TestApp, bearer, card_sign, field_errors, samples, settings_with_test_pki,
};

pub(crate) fn submit(procedure: &str, token: &str, key: &str, body: Value) -> TestRequest {
    TestRequest::post()
        .uri(&format!("/api/v1/procedures/{procedure}/submissions"))
        .insert_header(bearer(token))
        .insert_header(("idempotency-key", key.to_owned()))
        .set_json(body)
}

#[actix_web::test]
async fn valid_applications_of_none_and_card_auth_procedures_are_stored() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-1001").await;
    let mut stored = 0;
    for assurance in [Assurance::None, Assurance::CardAuth] {
        let chosen = samples(assurance, 3);
        assert!(!chosen.is_empty(), "{assurance:?} has samples");
        for (procedure, data) in chosen {
            let (status, body) = app
                .json(submit(
                    &procedure,
                    &token,
                    &format!("k-{procedure}"),
                    json!({"data": data}),
                ))
                .await;
            assert_eq!(status, 201, "{procedure}: {body}");
            let reference = body["reference"].as_str().unwrap_or_default();
            assert_eq!(reference.len(), 14, "{reference}");
            assert_eq!(body["status"], "submitted");
            stored += 1;
        }
    }
    let (_, mine) = app.get_as("/api/v1/submissions", &token).await;
    assert_eq!(mine.as_array().map(Vec::len), Some(stored));
    assert!(mine[0].get("data").is_none(), "lists carry no answers");
}

/// The basic facts the sign-in vouched for (here the fake card's) are kept with applications to
/// procedures that need an identity, shown to the resident and to staff, and never with the
/// others; they last only as long as the session.
#[actix_web::test]
async fn the_facts_of_the_sign_in_travel_with_card_auth_applications_only() {
    let app = TestApp::spawn().await;
    let tokens = app.resident_tokens("card-1003").await;
    let token = tokens["access_token"].as_str().expect("token").to_owned();
    let (status, facts) = app.get_as("/api/v1/me/facts", &token).await;
    assert_eq!(status, 200, "{facts}");
    assert_eq!(facts["source"], "sign_in");
    assert_eq!(facts["issuer"], "dev");
    let expected_name = facts["facts"]["name"].clone();
    assert!(expected_name.is_string(), "{facts}");

    let mut applied = Vec::new();
    for assurance in [Assurance::None, Assurance::CardAuth] {
        let (procedure, data) = samples(assurance, 1).remove(0);
        let (status, created) = app
            .json(submit(
                &procedure,
                &token,
                &format!("facts-{procedure}"),
                json!({"data": data}),
            ))
            .await;
        assert_eq!(status, 201, "{created}");
        applied.push((
            assurance,
            procedure,
            created["id"].as_str().expect("id").to_owned(),
        ));
    }
    for (assurance, procedure, id) in &applied {
        let (status, mine) = app
            .get_as(&format!("/api/v1/submissions/{id}"), &token)
            .await;
        assert_eq!(status, 200, "{mine}");
        if *assurance == Assurance::None {
            assert!(mine["verified_identity"].is_null(), "{procedure}: {mine}");
        } else {
            assert_eq!(mine["verified_identity"]["facts"]["name"], expected_name);
            assert_eq!(mine["verified_identity"]["source"], "sign_in");
            let division = division_of(&app, id).await;
            let clerk = app.staff(&division, "clerk").await;
            let (status, opened) = app
                .get_as(&format!("/api/v1/staff/submissions/{id}"), &clerk)
                .await;
            assert_eq!(status, 200, "{opened}");
            assert_eq!(opened["verified_identity"]["facts"]["name"], expected_name);
        }
    }

    // Logging out forgets the session's facts (the application keeps its own copy).
    let (status, _) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/auth/logout")
                .set_json(json!({"refresh_token": tokens["refresh_token"]})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.get_as("/api/v1/me/facts", &token).await;
    assert_eq!(status, 401, "the session ended, its access token with it");
    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .expect("connect");
    let left: i64 = diesel::dsl::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM session_facts)",
    ))
    .get_result(&mut connection)
    .await
    .expect("count");
    assert_eq!(left, 0, "the session's facts are gone");
}

#[actix_web::test]
async fn a_card_sign_procedure_needs_a_valid_card_signature_over_the_exact_answers() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let token = app.resident("card-1002").await;
    let procedure = CATALOG.get("juminhyo-copy-request").expect("procedure");
    let data = procedure.definition.examples[0].data.clone();

    let (status, problem) = app
        .json(submit(
            &procedure.definition.id,
            &token,
            "unsigned",
            json!({"data": data}),
        ))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "submission.signature_required");

    // The validate endpoint hands out the bytes to sign, only to a signed-in resident: they
    // name the account and a single-use nonce.
    let (status, anonymous) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/procedures/juminhyo-copy-request/validate")
                .set_json(&data),
        )
        .await;
    assert_eq!(status, 200, "{anonymous}");
    assert!(anonymous.get("signing_payload").is_none(), "{anonymous}");
    let (status, checked) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/procedures/juminhyo-copy-request/validate")
                .insert_header(bearer(&token))
                .set_json(&data),
        )
        .await;
    assert_eq!(status, 200, "{checked}");
    let nonce = checked["signing_nonce"].as_str().expect("nonce").to_owned();
    let payload = BASE64
        .decode(checked["signing_payload"].as_str().unwrap_or_default())
        .expect("base64");
    let resident_id = app.get_as("/api/v1/me", &token).await.1["id"].clone();
    let signed: Value = serde_json::from_slice(&payload).expect("JSON payload");
    assert_eq!(signed["nonce"], nonce);
    assert_eq!(signed["resident_id"], resident_id);
    assert_eq!(signed["data"], data);

    // A signature over other bytes is refused.
    let wrong = card_sign("sign-alice", b"something else");
    let (status, problem) = app
        .json(submit(
            "juminhyo-copy-request",
            &token,
            "wrong",
            json!({"data": data, "signature": BASE64.encode(wrong), "signing_nonce": nonce}),
        ))
        .await;
    assert_eq!(status, 401, "{problem}");
    assert_eq!(problem["code"], "auth.bad_signature");

    // A revoked signing certificate is refused.
    let revoked = card_sign("sign-revoked", &payload);
    let (status, problem) = app
        .json(submit(
            "juminhyo-copy-request",
            &token,
            "revoked",
            json!({"data": data, "signature": BASE64.encode(revoked), "signing_nonce": nonce}),
        ))
        .await;
    assert_eq!(status, 401);
    assert_eq!(problem["code"], "auth.certificate_revoked");

    let signature = card_sign("sign-alice", &payload);
    let (status, created) = app
        .json(submit(
            "juminhyo-copy-request",
            &token,
            "signed",
            json!({"data": data, "signature": BASE64.encode(&signature), "signing_nonce": nonce}),
        ))
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["fee_yen"], 600);

    // Who the signature certificate says the applicant is travels with the application.
    let (status, mine) = app
        .json(
            TestRequest::get()
                .uri(&format!(
                    "/api/v1/submissions/{}",
                    created["id"].as_str().unwrap_or_default()
                ))
                .insert_header(bearer(&token)),
        )
        .await;
    assert_eq!(status, 200, "{mine}");
    let verified = &mine["verified_identity"];
    assert_eq!(verified["source"], "signature", "{mine}");
    assert_eq!(verified["facts"]["name"], "加賀\u{3000}花子");
    assert_eq!(verified["facts"]["birth_date"], "319850401");
    assert_eq!(verified["facts"]["address"], "石川県加賀市大聖寺南町ニ４１");

    // The evidence is kept with the application.
    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .expect("connect");
    #[derive(diesel::QueryableByName)]
    struct Evidence {
        #[diesel(sql_type = diesel::sql_types::Bytea)]
        cms: Vec<u8>,
    }
    let evidence: Evidence = diesel::sql_query("SELECT cms FROM submission_signatures")
        .get_result(&mut connection)
        .await
        .expect("signature row");
    assert_eq!(evidence.cms, signature);
}

#[actix_web::test]
async fn an_invalid_application_gets_every_field_error_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-1003").await;
    let (procedure, mut data) = samples(Assurance::CardAuth, 1).remove(0);
    let object = data.as_object_mut().expect("object");
    let first_required = object.keys().next().cloned().expect("a field");
    object.remove(&first_required);
    object.insert("no_such_field".to_owned(), json!("x"));
    let (status, problem) = app
        .json(submit(&procedure, &token, "bad", json!({"data": data})))
        .await;
    assert_eq!(status, 422, "{problem}");
    let errors = field_errors(&problem);
    assert!(
        errors.contains(&("/no_such_field".to_owned(), "unknown_field".to_owned())),
        "{errors:?}"
    );
    assert!(errors.len() >= 2, "every error at once: {errors:?}");
    let (_, mine) = app.get_as("/api/v1/submissions", &token).await;
    assert_eq!(mine, json!([]));
}

#[actix_web::test]
async fn twenty_concurrent_retries_with_one_key_create_one_application() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-1004").await;
    let (procedure, data) = samples(Assurance::None, 1).remove(0);
    let service = actix_web::test::init_service(madoguchi::startup::build_app(
        app.state.clone(),
        app.metrics.clone(),
    ))
    .await;
    let requests = (0..20).map(|_| {
        let request = submit(&procedure, &token, "same-key", json!({"data": data})).to_request();
        actix_web::test::call_service(&service, request)
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut ids = std::collections::BTreeSet::new();
    for response in responses {
        assert_eq!(response.status().as_u16(), 201);
        let body: Value = actix_web::test::read_body_json(response).await;
        ids.insert(body["id"].to_string());
    }
    assert_eq!(ids.len(), 1, "every retry got the same application");
    let mut connection = app.state.pool.get().await.expect("connection");
    assert_eq!(
        madoguchi::submissions::count(&mut connection)
            .await
            .expect("count"),
        1
    );

    // The same key with different answers is refused.
    let mut changed = data.clone();
    if let Some(object) = changed.as_object_mut() {
        object.insert("no_such_field".to_owned(), json!(1));
    }
    let (status, problem) = app
        .json(submit(
            &procedure,
            &token,
            "same-key",
            json!({"data": changed}),
        ))
        .await;
    assert_eq!(status, 422);
    assert_eq!(problem["code"], "idempotency.key_reused");

    let (status, problem) = app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/procedures/{procedure}/submissions"))
                .insert_header(bearer(&token))
                .set_json(json!({"data": data})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(problem["code"], "request.idempotency_key_required");
}

fn multipart(bytes: &[u8], filename: &str) -> (String, Vec<u8>) {
    let boundary = "madoguchi-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

#[actix_web::test]
async fn residents_cannot_see_each_others_applications_drafts_or_attachments() {
    let app = TestApp::spawn().await;
    let alice = app.resident("card-2001").await;
    let mallory = app.resident("card-2002").await;
    let (procedure, data) = samples(Assurance::None, 1).remove(0);
    let (_, created) = app
        .json(submit(&procedure, &alice, "a1", json!({"data": data})))
        .await;
    let id = created["id"].as_str().unwrap_or_default().to_owned();

    let (_, draft) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/drafts")
                .insert_header(bearer(&alice))
                .set_json(json!({"procedure_id": "hoiku-riyo-moshikomi", "data": {}})),
        )
        .await;
    let draft_id = draft["id"].as_str().unwrap_or_default().to_owned();
    let file_field = first_file_field("hoiku-riyo-moshikomi");
    let (content_type, body) = multipart(PDF, "shuro.pdf");
    let (status, attachment) = app
        .json(
            TestRequest::post()
                .uri(&format!(
                    "/api/v1/drafts/{draft_id}/attachments?field={file_field}"
                ))
                .insert_header(bearer(&alice))
                .insert_header(("content-type", content_type))
                .set_payload(body),
        )
        .await;
    assert_eq!(status, 201, "{attachment}");
    let attachment_id = attachment["id"].as_str().unwrap_or_default().to_owned();

    for path in [
        format!("/api/v1/submissions/{id}"),
        format!("/api/v1/submissions/{id}/access-log"),
        format!("/api/v1/drafts/{draft_id}"),
        format!("/api/v1/attachments/{attachment_id}"),
    ] {
        let (status, _) = app.get_as(&path, &alice).await;
        assert_eq!(status, 200, "the owner reads {path}");
        let (status, problem) = app.get_as(&path, &mallory).await;
        assert_eq!(status, 404, "another resident gets 404 for {path}");
        assert_eq!(problem["code"], "not_found");
    }
    let (status, _) = app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/submissions/{id}/withdraw"))
                .insert_header(bearer(&mallory)),
        )
        .await;
    assert_eq!(status, 404);
}

pub(crate) fn first_file_field(procedure: &str) -> String {
    fn walk(fields: &[madoguchi::forms::model::Field]) -> Option<String> {
        fields.iter().find_map(|field| match field.kind() {
            madoguchi::forms::model::FieldType::File => Some(field.id.clone()),
            madoguchi::forms::model::FieldType::Group => walk(&field.fields),
            _ => None,
        })
    }
    CATALOG
        .get(procedure)
        .and_then(|p| {
            p.definition
                .pages
                .iter()
                .find_map(|page| walk(&page.fields))
        })
        .expect("a file field")
}

#[actix_web::test]
async fn an_exe_renamed_pdf_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-3001").await;
    let (_, draft) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/drafts")
                .insert_header(bearer(&token))
                .set_json(json!({"procedure_id": "hoiku-riyo-moshikomi", "data": {}})),
        )
        .await;
    let draft_id = draft["id"].as_str().unwrap_or_default().to_owned();
    let field = first_file_field("hoiku-riyo-moshikomi");
    // A Windows executable (MZ header, PE signature) named like a PDF.
    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".to_vec();
    exe.resize(128, 0);
    exe[0x3c] = 0x40;
    exe.extend_from_slice(b"PE\0\0");
    let (content_type, body) = multipart(&exe, "shuro.pdf");
    let (status, problem) = app
        .json(
            TestRequest::post()
                .uri(&format!(
                    "/api/v1/drafts/{draft_id}/attachments?field={field}"
                ))
                .insert_header(bearer(&token))
                .insert_header(("content-type", content_type))
                .set_payload(body),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        field_errors(&problem),
        vec![("/file".to_owned(), "invalid_file_type".to_owned())]
    );
}

#[actix_web::test]
async fn drafts_resume_on_another_device_and_are_checked_only_for_what_is_filled() {
    let app = TestApp::spawn().await;
    let phone = app.resident("card-4001").await;
    let laptop = app.resident("card-4001").await;
    let (status, draft) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/drafts")
                .insert_header(bearer(&phone))
                .set_json(json!({"procedure_id": "juminhyo-copy-request", "data": {"copies": 2}})),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let id = draft["id"].as_str().unwrap_or_default().to_owned();
    let (status, resumed) = app.get_as(&format!("/api/v1/drafts/{id}"), &laptop).await;
    assert_eq!(status, 200);
    assert_eq!(resumed["data"]["copies"], 2);

    let (status, problem) = app
        .json(
            TestRequest::put()
                .uri(&format!("/api/v1/drafts/{id}"))
                .insert_header(bearer(&laptop))
                .set_json(json!({"procedure_id": "juminhyo-copy-request", "data": {"copies": 99}})),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        field_errors(&problem),
        vec![("/copies".to_owned(), "too_large".to_owned())]
    );

    let (status, _) = app
        .json(
            TestRequest::delete()
                .uri(&format!("/api/v1/drafts/{id}"))
                .insert_header(bearer(&laptop)),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = app.get_as(&format!("/api/v1/drafts/{id}"), &phone).await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn withdrawal_is_possible_before_a_decision_and_refused_after() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-5001").await;
    let chosen = samples(Assurance::None, 2);
    let (first, first_data) = &chosen[0];
    let (_, created) = app
        .json(submit(first, &token, "w1", json!({"data": first_data})))
        .await;
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    let (status, body) = app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/submissions/{id}/withdraw"))
                .insert_header(bearer(&token))
                .set_json(json!({"reason": "別の方法で手続しました"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "withdrawn");
    let (_, detail) = app
        .get_as(&format!("/api/v1/submissions/{id}"), &token)
        .await;
    let history: Vec<&str> = detail["history"]
        .as_array()
        .map(|h| h.iter().filter_map(|e| e["to_status"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(history, ["submitted", "withdrawn"]);

    // A decided application cannot be withdrawn.
    let (second, second_data) = &chosen[1];
    let (_, created) = app
        .json(submit(second, &token, "w2", json!({"data": second_data})))
        .await;
    let id: uuid::Uuid = created["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    let mut connection = app.state.pool.get().await.expect("connection");
    use madoguchi::submissions::{ActorKind, lifecycle::Action, transition};
    transition(
        &mut connection,
        id,
        Action::Start,
        ActorKind::System,
        None,
        None,
    )
    .await
    .expect("start");
    transition(
        &mut connection,
        id,
        Action::Complete,
        ActorKind::System,
        None,
        None,
    )
    .await
    .expect("complete");
    let (status, problem) = app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/submissions/{id}/withdraw"))
                .insert_header(bearer(&token)),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "submission.transition_not_allowed");
    assert!(
        problem["detail"]["ja"]
            .as_str()
            .is_some_and(|t| t.contains("処理完了")),
        "{problem}"
    );
}

#[actix_web::test]
async fn my_numbers_are_sealed_in_the_database_and_masked_for_the_resident() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let token = app.resident("card-6001").await;
    // A procedure whose valid example carries a My Number (signed with the test card if needed).
    let (procedure, data) = CATALOG
        .procedures
        .values()
        .find_map(|p| {
            let example = p
                .definition
                .examples
                .iter()
                .find(|e| e.valid && e.as_of.is_none())?;
            let text = example.data.to_string();
            (text.contains("123456789018") && !text.contains("01900000-"))
                .then(|| (p.definition.id.clone(), example.data.clone()))
        })
        .expect("a procedure collecting a My Number");
    let (signature, nonce) = app
        .card_signature(&token, &procedure, &data, "sign-alice")
        .await;
    let (status, created) = app
        .json(submit(
            &procedure,
            &token,
            "mn",
            json!({"data": data, "signature": signature, "signing_nonce": nonce}),
        ))
        .await;
    assert_eq!(status, 201, "{created}");

    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .expect("connect");
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::Text)]
        data: String,
    }
    for table in ["submissions", "submission_revisions"] {
        let rows: Vec<Stored> =
            diesel::sql_query(format!("SELECT data::text AS data FROM {table}"))
                .load(&mut connection)
                .await
                .expect("rows");
        assert!(!rows.is_empty());
        for row in rows {
            assert!(
                !row.data.contains("123456789018"),
                "{table} holds a plaintext My Number"
            );
            assert!(row.data.contains("sealed:v2:"), "{table}: {}", row.data);
        }
    }
    let id = created["id"].as_str().unwrap_or_default();
    let (_, detail) = app
        .get_as(&format!("/api/v1/submissions/{id}"), &token)
        .await;
    let shown = detail["data"].to_string();
    assert!(!shown.contains("123456789018"));
    assert!(shown.contains("********9018"), "{shown}");
}

#[actix_web::test]
async fn expired_drafts_are_gone_and_purged() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-7001").await;
    let (_, draft) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/drafts")
                .insert_header(bearer(&token))
                .set_json(json!({"procedure_id": "juminhyo-copy-request", "data": {}})),
        )
        .await;
    let id = draft["id"].as_str().unwrap_or_default().to_owned();
    let mut connection = app.state.pool.get().await.expect("connection");
    diesel::sql_query("UPDATE drafts SET expires_at = now() - interval '1 day'")
        .execute(&mut connection)
        .await
        .expect("expire");
    let (status, _) = app.get_as(&format!("/api/v1/drafts/{id}"), &token).await;
    assert_eq!(status, 404, "an expired draft is not offered");
    let purged = madoguchi::submissions::drafts::purge_expired(&mut connection, &app.state.storage)
        .await
        .expect("purge");
    assert_eq!(purged, 1);
}

/// The division an application was routed to.
async fn division_of(app: &TestApp, id: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Routed {
        #[diesel(sql_type = diesel::sql_types::Text)]
        division: String,
    }
    let mut connection = app.state.pool.get().await.expect("connection");
    let routed: Routed = diesel::sql_query("SELECT division FROM submissions WHERE id = $1::uuid")
        .bind::<diesel::sql_types::Text, _>(id)
        .get_result(&mut connection)
        .await
        .expect("the application");
    routed.division
}

/// A session's facts stop counting when the session would have expired, and the worker's
/// housekeeping deletes them.
#[actix_web::test]
async fn expired_session_facts_are_not_used_and_are_purged() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-1004").await;
    assert_eq!(app.get_as("/api/v1/me/facts", &token).await.0, 200);
    let mut connection = app.state.pool.get().await.expect("connection");
    diesel::sql_query("UPDATE session_facts SET expires_at = now() - interval '1 second'")
        .execute(&mut connection)
        .await
        .expect("expire");

    assert_eq!(app.get_as("/api/v1/me/facts", &token).await.0, 404);
    let purged = madoguchi::identity::facts::purge_expired(&mut connection)
        .await
        .expect("purge");
    assert_eq!(purged, 1);
}
