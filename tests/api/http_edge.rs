//! The HTTP edge: health, metrics, OpenAPI, and problem+json for every kind of bad request.

use actix_web::test::TestRequest;

use crate::helpers::TestApp;

#[actix_web::test]
async fn readiness_checks_the_database() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn readiness_is_503_problem_when_the_database_is_unreachable() {
    let mut settings = crate::helpers::test_settings();
    settings.database.pool_timeout_seconds = 1;
    let app = TestApp::with_settings(settings.clone()).await;
    // A pool pointing at a port where nothing listens.
    let unreachable =
        madoguchi::db::build_pool("postgres://postgres@127.0.0.1:1/none", &settings.database)
            .expect("pool");
    let state = actix_web::web::Data::new(
        madoguchi::state::AppState::build(settings, unreachable, app.state.catalog.clone())
            .await
            .expect("state"),
    );
    let service =
        actix_web::test::init_service(madoguchi::startup::build_app(state, app.metrics.clone()))
            .await;
    let response =
        actix_web::test::call_service(&service, TestRequest::get().uri("/readyz").to_request())
            .await;
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(
        crate::helpers::header(&response, "content-type"),
        "application/problem+json"
    );
    let body: serde_json::Value = actix_web::test::read_body_json(response).await;
    assert_eq!(body["code"], "unavailable");
}

#[actix_web::test]
async fn unknown_route_is_a_problem_json_404() {
    let app = TestApp::spawn().await;
    let response = app
        .call(TestRequest::get().uri("/api/v1/nothing-here"))
        .await;
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(
        crate::helpers::header(&response, "content-type"),
        "application/problem+json"
    );
    let body: serde_json::Value = actix_web::test::read_body_json(response).await;
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["status"], 404);
    assert!(
        body["detail"]["ja"]
            .as_str()
            .is_some_and(|text| !text.is_empty())
    );
    assert!(
        body["detail"]["en"]
            .as_str()
            .is_some_and(|text| !text.is_empty())
    );
}

#[actix_web::test]
async fn wrong_method_is_a_problem_json_405() {
    let app = TestApp::spawn().await;
    let response = app
        .call(TestRequest::delete().uri("/api/v1/categories"))
        .await;
    // actix answers an unmatched method on a known resource with 405 or 404 depending on the
    // route kind; either way it must be problem+json, never a bare body.
    assert!(matches!(response.status().as_u16(), 404 | 405));
    assert_eq!(
        crate::helpers::header(&response, "content-type"),
        "application/problem+json"
    );
}

#[actix_web::test]
async fn malformed_json_is_a_problem_json_400() {
    let app = TestApp::spawn().await;
    let response = app
        .call(
            TestRequest::post()
                .uri("/api/v1/procedures/juminhyo-copy-request/validate")
                .insert_header(("content-type", "application/json"))
                .set_payload("{\"broken\": "),
        )
        .await;
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        crate::helpers::header(&response, "content-type"),
        "application/problem+json"
    );
    let body: serde_json::Value = actix_web::test::read_body_json(response).await;
    assert_eq!(body["code"], "request.invalid_json");
}

#[actix_web::test]
async fn oversized_body_is_a_problem_json_413() {
    let app = TestApp::spawn().await;
    let limit = app.state.settings.server.max_json_body_bytes;
    let big = format!("{{\"x\": \"{}\"}}", "a".repeat(limit + 10));
    let response = app
        .call(
            TestRequest::post()
                .uri("/api/v1/procedures/juminhyo-copy-request/validate")
                .insert_header(("content-type", "application/json"))
                .set_payload(big),
        )
        .await;
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(
        crate::helpers::header(&response, "content-type"),
        "application/problem+json"
    );
}

#[actix_web::test]
async fn wrong_content_type_is_a_problem_json_415() {
    let app = TestApp::spawn().await;
    let response = app
        .call(
            TestRequest::post()
                .uri("/api/v1/procedures/juminhyo-copy-request/validate")
                .insert_header(("content-type", "text/plain"))
                .set_payload("{}"),
        )
        .await;
    assert_eq!(response.status().as_u16(), 415);
    assert_eq!(
        crate::helpers::header(&response, "content-type"),
        "application/problem+json"
    );
}

#[actix_web::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let response = app.call(TestRequest::get().uri("/healthz")).await;
    assert!(response.headers().contains_key("x-request-id"));
    let response = app
        .call(
            TestRequest::get()
                .uri("/healthz")
                .insert_header(("x-request-id", "abc-123")),
        )
        .await;
    assert_eq!(crate::helpers::header(&response, "x-request-id"), "abc-123");
}

#[actix_web::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = TestApp::spawn().await;
    app.get("/api/v1/procedures/juminhyo-copy-request").await;
    let response = app.call(TestRequest::get().uri("/metrics")).await;
    let text =
        String::from_utf8(actix_web::test::read_body(response).await.to_vec()).unwrap_or_default();
    assert!(
        text.contains("route=\"/api/v1/procedures/{id}\""),
        "metrics use the route pattern, not the concrete path:\n{text}"
    );
    assert!(!text.contains("juminhyo-copy-request"));
}

#[actix_web::test]
async fn openapi_document_is_3_1_and_lists_the_catalog() {
    let app = TestApp::spawn().await;
    let (status, document) = app.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        document["openapi"]
    );
    for path in [
        "/api/v1/categories",
        "/api/v1/procedures",
        "/api/v1/procedures/{id}",
        "/api/v1/procedures/{id}/schema",
        "/readyz",
    ] {
        assert!(document["paths"][path].is_object(), "{path} is documented");
    }
    let response = app.call(TestRequest::get().uri("/docs")).await;
    assert_eq!(response.status().as_u16(), 200);
}

#[actix_web::test]
async fn the_server_speaks_https_through_rustls_when_a_certificate_is_configured() {
    let pki = tempfile::tempdir().expect("tempdir");
    let (ca, server_pem, server_key) = crate::helpers::localhost_certificate(pki.path());
    let database = crate::helpers::TestDatabase::new().await;
    let mut settings = crate::helpers::test_settings();
    settings.database.url = database.url.clone();
    settings.server.port = 0;
    settings.server.workers = 1;
    settings.server.tls_cert_path = server_pem.display().to_string();
    settings.server.tls_key_path = server_key.display().to_string();
    settings.email.worker_in_serve = false;
    let application = madoguchi::startup::Application::build(settings)
        .await
        .expect("server builds");
    let port = application.port();
    let server = actix_web::rt::spawn(application.run_until_stopped());

    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca).expect("ca")).expect("pem");
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client");
    let response = client
        .get(format!("https://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .expect("https request");
    assert_eq!(response.status().as_u16(), 200);

    // A client that does not trust the certificate is refused by its own TLS stack.
    let untrusting = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    assert!(
        untrusting
            .get(format!("https://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_err()
    );
    server.abort();
}

#[actix_web::test]
async fn a_known_path_with_another_method_is_405_with_allow() {
    let app = TestApp::spawn().await;
    let response = app
        .call(TestRequest::delete().uri("/api/v1/procedures/juminhyo-copy-request"))
        .await;
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(crate::helpers::header(&response, "allow"), "GET");
    assert_eq!(
        crate::helpers::header(&response, "content-type"),
        "application/problem+json"
    );
    let response = app
        .call(TestRequest::delete().uri("/api/v1/no/such/thing"))
        .await;
    assert_eq!(response.status().as_u16(), 404);
}
