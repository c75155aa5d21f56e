//! The published OpenAPI document against real answers: for a walk through the whole service
//! (apply, upload, download, return, correct, diff, withdraw, the staff side, errors) every
//! response's status must be documented for its operation, its Content-Type must be one the
//! document lists, and a JSON body must match the documented schema.

use actix_web::test::TestRequest;
use serde_json::{Value, json};

use crate::helpers::{CATALOG, TestApp, bearer, sample_application};

/// Checks one real answer against the document; returns a description of each mismatch.
fn check(
    document: &Value,
    method: &str,
    template: &str,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Vec<String> {
    let at = format!("{method} {template} → {status}");
    let operation = &document["paths"][template][method.to_lowercase()];
    if operation.is_null() {
        return vec![format!("{at}: the operation is not documented")];
    }
    let response = &operation["responses"][status.to_string()];
    if response.is_null() {
        return vec![format!("{at}: the status is not documented")];
    }
    let Some(content) = response["content"].as_object() else {
        return if body.is_empty() {
            vec![]
        } else {
            vec![format!(
                "{at}: a body ({content_type}) where none is documented"
            )]
        };
    };
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    let Some(documented) = content.get(media_type) else {
        let listed: Vec<&String> = content.keys().collect();
        return vec![format!(
            "{at}: Content-Type {content_type}, documented {listed:?}"
        )];
    };
    if !media_type.ends_with("json") {
        return vec![];
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return vec![format!("{at}: the body is not JSON")];
    };
    // The schema with the document's components beside it, so its `$ref`s resolve.
    let mut schema = documented["schema"].clone();
    if let Value::Object(object) = &mut schema {
        object.insert("components".to_owned(), document["components"].clone());
    }
    let validator = match jsonschema::draft202012::new(&schema) {
        Ok(validator) => validator,
        Err(error) => return vec![format!("{at}: the documented schema is broken: {error}")],
    };
    validator
        .iter_errors(&value)
        .map(|error| format!("{at}: {} at {}", error, error.instance_path()))
        .collect()
}

/// Sends requests and checks each answer.
struct Walk<'a> {
    app: &'a TestApp,
    document: Value,
    problems: Vec<String>,
    count: usize,
}

impl Walk<'_> {
    async fn send(&mut self, method: &str, template: &str, request: TestRequest) -> Value {
        let response = self.app.call(request).await;
        let status = response.status().as_u16();
        let content_type = crate::helpers::header(&response, "content-type");
        let body = actix_web::test::read_body(response).await;
        self.count += 1;
        self.problems.extend(check(
            &self.document,
            method,
            template,
            status,
            &content_type,
            &body,
        ));
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    }
}

fn multipart_pdf() -> (String, Vec<u8>) {
    let boundary = "madoguchi-contract-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    );
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[actix_web::test]
async fn real_answers_match_the_published_document() {
    let app = TestApp::spawn().await;
    let (_, document) = app.get("/api/v1/openapi.json").await;
    let mut walk = Walk {
        app: &app,
        document,
        problems: Vec::new(),
        count: 0,
    };
    let resident = app.resident("card-contract-1").await;
    let (procedure, data) = sample_application();
    let definition = &CATALOG.procedures[&procedure].definition;
    let division = definition.division.clone();
    let text_field = definition
        .pages
        .iter()
        .flat_map(|page| page.fields.iter())
        .find(|field| {
            field.kind() == madoguchi::forms::model::FieldType::Text
                && data.get(&field.id).is_some()
        })
        .map(|field| field.id.clone())
        .expect("a text answer");
    let (clerk_id, clerk) = app.staff_member(&division, "supervisor").await;
    let get = |path: &str, token: &str| TestRequest::get().uri(path).insert_header(bearer(token));
    let post = |path: &str, token: &str, body: Value| {
        TestRequest::post()
            .uri(path)
            .insert_header(bearer(token))
            .set_json(body)
    };

    // The catalog and operations.
    walk.send("GET", "/healthz", TestRequest::get().uri("/healthz"))
        .await;
    walk.send("GET", "/readyz", TestRequest::get().uri("/readyz"))
        .await;
    for (template, path) in [
        ("/api/v1/categories", "/api/v1/categories".to_owned()),
        (
            "/api/v1/procedures",
            "/api/v1/procedures?q=%E4%BD%8F%E6%B0%91".to_owned(),
        ),
        (
            "/api/v1/procedures/{id}",
            format!("/api/v1/procedures/{procedure}"),
        ),
        (
            "/api/v1/procedures/{id}/schema",
            format!("/api/v1/procedures/{procedure}/schema"),
        ),
        (
            "/api/v1/procedures/{id}",
            "/api/v1/procedures/none".to_owned(),
        ),
    ] {
        walk.send("GET", template, TestRequest::get().uri(&path))
            .await;
    }
    walk.send(
        "POST",
        "/api/v1/procedures/{id}/validate",
        TestRequest::post()
            .uri(&format!("/api/v1/procedures/{procedure}/validate"))
            .set_json(json!({})),
    )
    .await;

    // The resident applies, uploads, downloads.
    walk.send("GET", "/api/v1/me", get("/api/v1/me", &resident))
        .await;
    let submitted = walk
        .send(
            "POST",
            "/api/v1/procedures/{id}/submissions",
            post(
                &format!("/api/v1/procedures/{procedure}/submissions"),
                &resident,
                json!({"data": data}),
            )
            .insert_header(("idempotency-key", "contract-1")),
        )
        .await;
    let id = submitted["id"].as_str().expect("id").to_owned();
    walk.send(
        "GET",
        "/api/v1/submissions",
        get("/api/v1/submissions", &resident),
    )
    .await;
    walk.send(
        "GET",
        "/api/v1/submissions/{id}",
        get(&format!("/api/v1/submissions/{id}"), &resident),
    )
    .await;
    let draft = walk
        .send(
            "POST",
            "/api/v1/drafts",
            post(
                "/api/v1/drafts",
                &resident,
                json!({"procedure_id": "hoiku-riyo-moshikomi", "data": {}}),
            ),
        )
        .await;
    let draft_id = draft["id"].as_str().expect("draft").to_owned();
    let file_field = CATALOG.procedures["hoiku-riyo-moshikomi"]
        .definition
        .pages
        .iter()
        .flat_map(|page| page.fields.iter())
        .find(|field| field.kind() == madoguchi::forms::model::FieldType::File)
        .map(|field| field.id.clone())
        .expect("a file field");
    let (content_type, body) = multipart_pdf();
    let attachment = walk
        .send(
            "POST",
            "/api/v1/drafts/{id}/attachments",
            TestRequest::post()
                .uri(&format!(
                    "/api/v1/drafts/{draft_id}/attachments?field={file_field}"
                ))
                .insert_header(bearer(&resident))
                .insert_header(("content-type", content_type))
                .set_payload(body),
        )
        .await;
    let attachment_id = attachment["id"].as_str().expect("attachment").to_owned();
    walk.send(
        "GET",
        "/api/v1/attachments/{id}",
        get(&format!("/api/v1/attachments/{attachment_id}"), &resident),
    )
    .await;
    walk.send("GET", "/api/v1/drafts", get("/api/v1/drafts", &resident))
        .await;

    // The staff side: claim, return, the resident corrects, the diff.
    walk.send(
        "GET",
        "/api/v1/staff/queues",
        get("/api/v1/staff/queues", &clerk),
    )
    .await;
    walk.send(
        "GET",
        "/api/v1/staff/queues/{queue}/submissions",
        get(
            &format!("/api/v1/staff/queues/{division}/submissions?from=2026-01-01"),
            &clerk,
        ),
    )
    .await;
    walk.send(
        "POST",
        "/api/v1/staff/queues/{queue}/claim",
        post(
            &format!("/api/v1/staff/queues/{division}/claim"),
            &clerk,
            json!({}),
        ),
    )
    .await;
    walk.send(
        "GET",
        "/api/v1/staff/submissions/{id}",
        get(&format!("/api/v1/staff/submissions/{id}"), &clerk),
    )
    .await;
    walk.send(
        "POST",
        "/api/v1/staff/submissions/{id}/transitions",
        post(
            &format!("/api/v1/staff/submissions/{id}/transitions"),
            &clerk,
            json!({"action": "return", "reason": "ご確認ください",
                   "field_comments": [{"path": format!("/{text_field}"), "comment": "x"}]}),
        ),
    )
    .await;
    let mut corrected = data.clone();
    corrected[&text_field] = json!("訂正後");
    walk.send(
        "POST",
        "/api/v1/submissions/{id}/resubmit",
        post(
            &format!("/api/v1/submissions/{id}/resubmit"),
            &resident,
            json!({"data": corrected}),
        ),
    )
    .await;
    let diff = walk
        .send(
            "GET",
            "/api/v1/staff/submissions/{id}/revisions/{n}/diff",
            get(
                &format!("/api/v1/staff/submissions/{id}/revisions/2/diff"),
                &clerk,
            ),
        )
        .await;
    assert!(diff[0]["new"].is_string(), "{diff}");
    walk.send(
        "POST",
        "/api/v1/staff/submissions/{id}/assign",
        post(
            &format!("/api/v1/staff/submissions/{id}/assign"),
            &clerk,
            json!({"staff_id": clerk_id}),
        ),
    )
    .await;
    walk.send("GET", "/api/v1/staff/me", get("/api/v1/staff/me", &clerk))
        .await;

    // The resident withdraws; errors are documented problems too.
    walk.send(
        "POST",
        "/api/v1/submissions/{id}/withdraw",
        TestRequest::post()
            .uri(&format!("/api/v1/submissions/{id}/withdraw"))
            .insert_header(bearer(&resident)),
    )
    .await;
    walk.send(
        "POST",
        "/api/v1/submissions/{id}/withdraw",
        post(
            &format!("/api/v1/submissions/{id}/withdraw"),
            &resident,
            json!({"reason": "x"}),
        ),
    )
    .await;
    walk.send(
        "POST",
        "/api/v1/staff/login",
        TestRequest::post()
            .uri("/api/v1/staff/login")
            .set_json(json!({"login": "a\u{0}", "password": "b"})),
    )
    .await;
    walk.send(
        "POST",
        "/api/v1/staff/login",
        TestRequest::post()
            .uri("/api/v1/staff/login")
            .insert_header(("content-encoding", "gzip"))
            .set_json(json!({})),
    )
    .await;

    walk.send(
        "GET",
        "/api/v1/procedures",
        TestRequest::get().uri("/api/v1/procedures?q=%00"),
    )
    .await;

    // The usage statistics (after a rollup pass, so there are figures to describe).
    {
        let mut connection = app.state.pool.get().await.expect("connection");
        madoguchi::statistics::rollup::refresh(
            &mut connection,
            &app.state.catalog,
            &app.state.calendar,
            0,
        )
        .await
        .expect("statistics rollup");
    }
    walk.send(
        "GET",
        "/api/v1/statistics",
        TestRequest::get().uri("/api/v1/statistics"),
    )
    .await;
    walk.send(
        "GET",
        "/api/v1/staff/statistics",
        get("/api/v1/staff/statistics", &clerk),
    )
    .await;
    for body in [
        json!({"procedure_id": procedure, "month": "2026-11", "count": 12}),
        json!({"procedure_id": procedure, "month": "11/2026", "count": 12}),
        json!({"procedure_id": "no-such-procedure", "month": "2026-11", "count": 12}),
    ] {
        walk.send(
            "PUT",
            "/api/v1/staff/statistics/counter",
            TestRequest::put()
                .uri("/api/v1/staff/statistics/counter")
                .insert_header(bearer(&clerk))
                .set_json(body),
        )
        .await;
    }

    assert!(walk.problems.is_empty(), "{:#?}", walk.problems);
    assert!(walk.count >= 29, "{} answers", walk.count);
}
