//! Bad input at the HTTP level: characters that cannot be stored, compressed bodies, dates and
//! cursors out of range, tokens of residents who are gone, unknown or malformed bodies. Each is a
//! 4xx problem+json, never a 500.

use actix_web::test::TestRequest;
use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::{CATALOG, TestApp, bearer, field_errors, sample_application};

/// A procedure's definition and the id of one of its plain text fields.
fn text_field() -> (String, String, Value) {
    use madoguchi::forms::model::FieldType;
    let (procedure, data) = sample_application();
    let definition = &CATALOG.procedures[&procedure].definition;
    let field = definition
        .pages
        .iter()
        .flat_map(|page| page.fields.iter())
        .find(|field| field.kind() == FieldType::Text && data.get(&field.id).is_some())
        .map(|field| field.id.clone())
        .expect("the sample answers a text field");
    (procedure, field, data)
}

async fn submit(app: &TestApp, token: &str, procedure: &str, data: &Value) -> (u16, Value) {
    app.json(
        TestRequest::post()
            .uri(&format!("/api/v1/procedures/{procedure}/submissions"))
            .insert_header(bearer(token))
            .insert_header(("idempotency-key", uuid::Uuid::new_v4().to_string()))
            .set_json(json!({"data": data})),
    )
    .await
}

fn assert_invalid_character(status: u16, body: &Value, path: &str) {
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "request.invalid_character", "{body}");
    assert!(
        field_errors(body).contains(&(path.to_owned(), "invalid_character".to_owned())),
        "{body}"
    );
    let error = &body["errors"][0]["message"];
    assert!(error["ja"].as_str().is_some_and(|text| !text.is_empty()));
    assert!(error["en"].as_str().is_some_and(|text| !text.is_empty()));
}

#[actix_web::test]
async fn a_nul_in_the_staff_login_is_a_422_field_error_without_signing_in() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/staff/login")
                .set_json(json!({"login": "clerk\u{0}", "password": "x"})),
        )
        .await;
    assert_invalid_character(status, &body, "/login");
}

#[actix_web::test]
async fn refused_characters_in_answers_keys_queries_and_paths_are_422() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-bad-input-1").await;
    let (procedure, field, data) = text_field();

    for (text, refused) in [
        ("a\u{0}b", true),
        ("\u{1b}[2J", true),
        ("\u{85}", true),
        ("abc\u{202e}fed", true),
        ("\u{2066}x\u{2069}", true),
    ] {
        let mut answers = data.clone();
        answers[&field] = json!(text);
        let (status, body) = submit(&app, &token, &procedure, &answers).await;
        assert_eq!(refused, status == 422, "{text:?}: {body}");
        assert_invalid_character(status, &body, &format!("/data/{field}"));
    }
    // A key of the answers is stored too (JSONB).
    let mut answers = data.clone();
    answers["x\u{0}"] = json!(1);
    let (status, body) = submit(&app, &token, &procedure, &answers).await;
    assert_invalid_character(status, &body, "/data/x\u{0}");

    // Query strings and paths, before any handler.
    let (status, body) = app.get("/api/v1/procedures?q=%E4%BD%8F%00").await;
    assert_invalid_character(status, &body, "/query/q");
    let staff = app.staff("madoguchi", "clerk").await;
    let (status, body) = app
        .get_as("/api/v1/staff/queues/madoguchi%00/submissions", &staff)
        .await;
    assert_invalid_character(status, &body, "/path");
    let (status, body) = app
        .get_as(
            "/api/v1/staff/queues/madoguchi/submissions?procedure=%E2%80%AE",
            &staff,
        )
        .await;
    assert_invalid_character(status, &body, "/query/procedure");
}

#[actix_web::test]
async fn line_breaks_tabs_and_single_direction_marks_are_still_accepted() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-bad-input-2").await;
    let (procedure, field, data) = text_field();
    let mut answers = data.clone();
    answers[&field] = json!("山田\u{200f}");
    let (status, body) = submit(&app, &token, &procedure, &answers).await;
    assert_eq!(status, 201, "{body}");
}

#[actix_web::test]
async fn a_lone_surrogate_escape_is_a_400_problem() {
    let app = TestApp::spawn().await;
    let response = app
        .call(
            TestRequest::post()
                .uri("/api/v1/staff/login")
                .insert_header(("content-type", "application/json"))
                .set_payload(r#"{"login": "\ud800", "password": "x"}"#),
        )
        .await;
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        crate::helpers::header(&response, "content-type"),
        "application/problem+json"
    );
}

#[actix_web::test]
async fn the_definition_language_refuses_the_same_characters_as_the_api() {
    use madoguchi::forms::validate::{CheckOptions, validate};
    let (procedure, field, data) = text_field();
    let definition = &CATALOG.procedures[&procedure].definition;
    let today = chrono::Utc::now().date_naive();
    assert!(validate(definition, &data, CheckOptions::complete(today)).is_ok());
    for text in ["a\u{0}", "\u{7}", "\u{202d}x"] {
        let mut answers = data.clone();
        answers[&field] = json!(text);
        let errors =
            validate(definition, &answers, CheckOptions::complete(today)).expect_err("refused");
        assert!(
            errors
                .iter()
                .any(|e| e.path == format!("/{field}") && e.code == "invalid_character"),
            "{text:?}: {errors:?}"
        );
        assert!(!madoguchi::input::is_acceptable(text), "the edge agrees");
    }
}

#[actix_web::test]
async fn a_compressed_request_body_is_refused_with_415_before_it_is_read() {
    let app = TestApp::spawn().await;
    let response = app
        .call(
            TestRequest::post()
                .uri("/api/v1/staff/login")
                .insert_header(("content-type", "application/json"))
                .insert_header(("content-encoding", "gzip"))
                .set_payload(gzip(br#"{"login": "a", "password": "b"}"#)),
        )
        .await;
    assert_eq!(response.status().as_u16(), 415);
    assert_eq!(
        crate::helpers::header(&response, "content-type"),
        "application/problem+json"
    );
    let body: Value = actix_web::test::read_body_json(response).await;
    assert_eq!(body["code"], "request.unsupported_encoding");
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

async fn queue_page(app: &TestApp, token: &str, query: &str) -> (u16, Value) {
    app.get_as(
        &format!("/api/v1/staff/queues/madoguchi/submissions?{query}"),
        token,
    )
    .await
}

#[actix_web::test]
async fn queue_filter_dates_and_forged_cursors_out_of_range_are_422() {
    let app = TestApp::spawn().await;
    let staff = app.staff("madoguchi", "clerk").await;
    let (status, body) = queue_page(&app, &staff, "from=2026-01-01&to=2026-12-31").await;
    assert_eq!(status, 200, "{body}");

    for (query, path) in [
        ("from=-200000-01-01", "/from"),
        ("to=%2B262142-12-31", "/to"),
        ("from=0001-01-01", "/from"),
    ] {
        let (status, body) = queue_page(&app, &staff, query).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(
            field_errors(&body),
            [(path.to_owned(), "date_out_of_range".to_owned())],
            "{query}"
        );
    }
    // A cursor is opaque, but a forged one must not reach PostgreSQL with a year it refuses
    // (4800 BC here).
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("-213636000000000000:{}", uuid::Uuid::nil()));
    let (status, body) = queue_page(&app, &staff, &format!("cursor={forged}")).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        field_errors(&body),
        [("/cursor".to_owned(), "invalid_cursor".to_owned())]
    );
}

#[actix_web::test]
async fn a_valid_token_of_a_resident_who_is_gone_is_401() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-bad-input-gone").await;
    let (status, me) = app.get_as("/api/v1/me", &token).await;
    assert_eq!(status, 200, "{me}");
    {
        use diesel_async::RunQueryDsl;
        let mut connection = app.state.pool.get().await.expect("connection");
        diesel::sql_query("DELETE FROM residents WHERE id = $1")
            .bind::<diesel::sql_types::Uuid, _>(
                me["id"]
                    .as_str()
                    .and_then(|id| id.parse::<uuid::Uuid>().ok())
                    .expect("id"),
            )
            .execute(&mut connection)
            .await
            .expect("delete the resident");
    }
    let (procedure, data) = sample_application();
    let (status, body) = submit(&app, &token, &procedure, &data).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "auth.invalid_token");
    let (status, body) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/drafts")
                .insert_header(bearer(&token))
                .set_json(json!({"procedure_id": procedure, "data": {}})),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = app.get_as("/api/v1/me", &token).await;
    assert_eq!(status, 401);
}

#[actix_web::test]
async fn unknown_fields_are_refused_where_the_document_says_additional_properties_false() {
    let app = TestApp::spawn().await;
    let (status, body) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/staff/login")
                .set_json(json!({"login": "a", "password": "b", "admin": true})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        field_errors(&body),
        [("/admin".to_owned(), "unknown_field".to_owned())]
    );

    // Every request body schema of the document is closed, and says so.
    let (_, document) = app.get("/api/v1/openapi.json").await;
    let schemas = document["components"]["schemas"]
        .as_object()
        .expect("schemas");
    for name in [
        "StaffLogin",
        "SubmitRequest",
        "DraftRequest",
        "CompleteLogin",
        "RefreshRequest",
        "UpdateMe",
        "CompleteStaffOidc",
        "MembershipChange",
        "AccountChange",
        "PasswordReset",
        "PasswordChange",
        "RevealRequest",
        "NoteRequest",
        "TransitionRequest",
        "AssignRequest",
        "NewStaff",
        "ResubmitRequest",
        "WithdrawRequest",
        "FieldComment",
    ] {
        assert_eq!(
            schemas[name]["additionalProperties"],
            json!(false),
            "{name}: {}",
            schemas[name]
        );
    }
}

#[actix_web::test]
async fn withdraw_takes_no_body_or_an_object_and_refuses_anything_else() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-bad-input-withdraw").await;
    let (procedure, data) = sample_application();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, body) = submit(&app, &token, &procedure, &data).await;
        assert_eq!(status, 201, "{body}");
        ids.push(body["id"].as_str().expect("id").to_owned());
    }
    let withdraw = |id: &str| {
        TestRequest::post()
            .uri(&format!("/api/v1/submissions/{id}/withdraw"))
            .insert_header(bearer(&token))
    };
    let json_payload = |payload: &'static str| {
        withdraw(&ids[0])
            .insert_header(("content-type", "application/json"))
            .set_payload(payload)
    };
    for (request, expected) in [
        (json_payload("{not json"), 400),
        (json_payload("[]"), 422),
        (json_payload(r#"{"reason": "x", "extra": 1}"#), 422),
        (json_payload(r#"{"reason": "\u0000"}"#), 422),
        (
            withdraw(&ids[0])
                .insert_header(("content-type", "application/json"))
                .set_payload(vec![b' '; 300 * 1024]),
            413,
        ),
        (
            withdraw(&ids[0])
                .insert_header(("content-type", "text/plain"))
                .set_payload("please"),
            415,
        ),
    ] {
        let (status, body) = app.json(request).await;
        assert_eq!(status, expected, "{body}");
        assert!(body["code"].is_string(), "{body}");
    }
    let (_, detail) = app
        .get_as(&format!("/api/v1/submissions/{}", ids[0]), &token)
        .await;
    assert_eq!(detail["status"], "submitted", "nothing above withdrew it");

    let (status, body) = app.json(withdraw(&ids[0])).await;
    assert_eq!(status, 200, "no body: {body}");
    let (status, _) = app.json(withdraw(&ids[0]).set_json(json!(null))).await;
    assert_eq!(status, 409, "null is no body; already withdrawn");
    let (status, body) = app.json(withdraw(&ids[1]).set_json(json!({}))).await;
    assert_eq!(status, 200, "an empty object: {body}");
    let (status, body) = app
        .json(withdraw(&ids[2]).set_json(json!({"reason": "引っ越しのため"})))
        .await;
    assert_eq!(status, 200, "a reason: {body}");
}

/// The hostile strings: NUL, a lone surrogate (as the JSON escape a client would send), bidi
/// controls, and 1 MB of text (54 KB percent-encoded in paths and queries: a URI holds 64 KB).
const LONE_SURROGATE: &str = "\u{e000}lone-surrogate\u{e000}";
fn hostile(in_uri: bool) -> Vec<String> {
    let characters = if in_uri { 6_000 } else { 1024 * 1024 / 3 };
    vec![
        "a\u{0}b".to_owned(),
        LONE_SURROGATE.to_owned(),
        "\u{202e}\u{2066}abc\u{2069}".to_owned(),
        "長".repeat(characters),
    ]
}

/// What a generated request is made of: real ids and valid answers, so that a hostile string
/// gets as far into the server as it can.
struct Fixture {
    document: Value,
    procedure: String,
    division: String,
    text_field: String,
    answers: Value,
    submission: String,
    draft: String,
    staff_id: String,
}

impl Fixture {
    /// A value for `schema` with `bad` at the string leaf number `target` (counted down as
    /// leaves are passed; pass a negative number for none) and plausible values elsewhere.
    fn fill(&self, schema: &Value, name: &str, bad: &str, target: &mut i64, depth: usize) -> Value {
        if let Some(reference) = schema["$ref"].as_str() {
            let schema_name = reference.rsplit('/').next().unwrap_or_default();
            let resolved = &self.document["components"]["schemas"][schema_name];
            return self.fill(resolved, name, bad, target, depth);
        }
        for combinator in ["oneOf", "anyOf", "allOf"] {
            if let Some(first) = schema[combinator].as_array().and_then(|all| {
                all.iter()
                    .find(|s| s["type"] != "null")
                    .or_else(|| all.first())
            }) {
                return self.fill(first, name, bad, target, depth);
            }
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(kind) => vec![kind.as_str()],
            Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let is = |kind: &str| types.contains(&kind);
        fn hit(target: &mut i64) -> bool {
            *target -= 1;
            *target == -1
        }
        if is("string") {
            if hit(target) {
                return json!(bad);
            }
            if let Some(first) = schema["enum"].as_array().and_then(|all| all.first()) {
                return first.clone();
            }
            return match (schema["format"].as_str(), name) {
                (Some("uuid"), _) => json!(uuid::Uuid::nil()),
                (Some("date"), _) => json!("2026-04-01"),
                (Some("date-time"), _) => json!("2026-04-01T00:00:00Z"),
                (_, "procedure_id") => json!(self.procedure),
                (_, "division") => json!(self.division),
                _ => json!("x"),
            };
        }
        if is("integer") || is("number") {
            return json!(1);
        }
        if is("boolean") {
            return json!(true);
        }
        if is("array") {
            return if depth < 4 {
                json!([self.fill(&schema["items"], name, bad, target, depth + 1)])
            } else {
                json!([])
            };
        }
        let mut object = serde_json::Map::new();
        if depth < 4
            && let Some(properties) = schema["properties"].as_object()
        {
            for (property, property_schema) in properties {
                let value = self.fill(property_schema, property, bad, target, depth + 1);
                object.insert(property.clone(), value);
            }
        }
        if object.is_empty() && (is("object") || types.is_empty()) {
            // Free-form: the answers of a procedure, with the string in a text answer or a key.
            let mut answers = self.answers.clone();
            if hit(target) {
                answers[&self.text_field] = json!(bad);
            }
            if hit(target) {
                answers[bad] = json!("x");
            }
            return answers;
        }
        Value::Object(object)
    }

    /// The value of a path or query parameter that is not under test.
    fn parameter(&self, path: &str, parameter: &Value) -> String {
        let name = parameter["name"].as_str().unwrap_or_default();
        match name {
            "provider" => "dev".to_owned(),
            "queue" | "division" => self.division.clone(),
            "n" => "1".to_owned(),
            "id" if path.starts_with("/api/v1/procedures/") => self.procedure.clone(),
            "id" if path.contains("/submissions/") => self.submission.clone(),
            "id" if path.contains("/drafts/") => self.draft.clone(),
            "id" if path.contains("/admin/staff/") => self.staff_id.clone(),
            _ if parameter["schema"]["format"] == "uuid" => uuid::Uuid::nil().to_string(),
            _ if parameter["schema"]["type"] == "integer" => "1".to_owned(),
            _ => "x".to_owned(),
        }
    }
}

fn percent_encoded(text: &str) -> String {
    if text == LONE_SURROGATE {
        return "%ED%A0%80".to_owned(); // U+D800 as (invalid) UTF-8
    }
    text.bytes().map(|byte| format!("%{byte:02X}")).collect()
}

/// Every operation of the published document, each text parameter and each string leaf of its
/// body in turn set to each hostile string, with real ids and valid values elsewhere.
#[actix_web::test]
async fn hostile_strings_in_every_text_field_of_every_operation_are_never_a_5xx() {
    let app = TestApp::spawn().await;
    let resident = app.resident("card-bad-input-hostile").await;
    let (procedure, text_field, answers) = text_field();
    let division = CATALOG.procedures[&procedure].definition.division.clone();
    let (staff_id, staff) = app.staff_member(&division, "admin").await;
    let (status, submitted) = submit(&app, &resident, &procedure, &answers).await;
    assert_eq!(status, 201, "{submitted}");
    let (status, draft) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/drafts")
                .insert_header(bearer(&resident))
                .set_json(json!({"procedure_id": procedure, "data": {}})),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let (_, document) = app.get("/api/v1/openapi.json").await;
    let fixture = Fixture {
        document,
        procedure,
        division,
        text_field,
        answers,
        submission: submitted["id"].as_str().expect("id").to_owned(),
        draft: draft["id"].as_str().expect("id").to_owned(),
        staff_id: staff_id.to_string(),
    };
    let service = actix_web::test::init_service(madoguchi::startup::build_app(
        app.state.clone(),
        app.metrics.clone(),
    ))
    .await;

    let started = std::time::Instant::now();
    let mut requests = 0;
    let mut failures = Vec::new();
    let paths = fixture.document["paths"].as_object().expect("paths");
    for (template, item) in paths {
        for (method, operation) in item.as_object().expect("operations") {
            let Ok(method) = method.to_uppercase().parse::<actix_web::http::Method>() else {
                continue;
            };
            let token = if template.contains("/staff/") {
                &staff
            } else {
                &resident
            };
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let body_schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            // Where a string can go: each free-text path or query parameter, each body leaf.
            let mut slots: Vec<(Option<usize>, i64)> = parameters
                .iter()
                .enumerate()
                .filter(|(_, p)| matches!(p["in"].as_str(), Some("path" | "query")))
                .filter(|(_, p)| p["schema"]["type"] == "string" && p["schema"]["enum"].is_null())
                .map(|(index, _)| (Some(index), -1))
                .collect();
            if !body_schema.is_null() {
                let mut count = i64::MAX;
                fixture.fill(body_schema, "", "", &mut count, 0);
                slots.extend((0..i64::MAX - count).map(|leaf| (None, leaf)));
            }
            for (parameter, leaf) in slots {
                for bad in hostile(parameter.is_some()) {
                    let mut uri = template.clone();
                    let mut query = Vec::new();
                    for (index, p) in parameters.iter().enumerate() {
                        let name = p["name"].as_str().unwrap_or_default();
                        let value = if Some(index) == parameter {
                            percent_encoded(&bad)
                        } else {
                            fixture.parameter(template, p)
                        };
                        match p["in"].as_str() {
                            Some("path") => uri = uri.replace(&format!("{{{name}}}"), &value),
                            Some("query") if Some(index) == parameter => {
                                query.push(format!("{name}={value}"));
                            }
                            _ => {}
                        }
                    }
                    if !query.is_empty() {
                        uri = format!("{uri}?{}", query.join("&"));
                    }
                    let mut request = TestRequest::default()
                        .method(method.clone())
                        .uri(&uri)
                        .insert_header(bearer(token))
                        .insert_header(("idempotency-key", uuid::Uuid::new_v4().to_string()));
                    if !body_schema.is_null() {
                        let mut target = if parameter.is_some() { -1 } else { leaf };
                        let body = fixture.fill(body_schema, "", &bad, &mut target, 0);
                        let body = body.to_string().replace(LONE_SURROGATE, "\\ud800");
                        request = request
                            .insert_header(("content-type", "application/json"))
                            .set_payload(body);
                    }
                    requests += 1;
                    let status =
                        match actix_web::test::try_call_service(&service, request.to_request())
                            .await
                        {
                            Ok(response) => response.status().as_u16(),
                            Err(error) => error.as_response_error().status_code().as_u16(),
                        };
                    if status >= 500 {
                        let at = parameter.map_or(format!("body leaf {leaf}"), |index| {
                            format!("parameter {}", parameters[index]["name"])
                        });
                        let sample: String = bad.chars().take(12).collect();
                        failures.push(format!("{method} {template} {at} {sample:?}: {status}"));
                    }
                }
            }
        }
    }
    assert!(requests > 300, "{requests} requests");
    assert!(
        failures.is_empty(),
        "{} of {requests}: {failures:#?}",
        failures.len()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}
