//! Fees and payments: the breakdown frozen at submission, and paying it.

use actix_web::test::TestRequest;
use serde_json::{Value, json};

use crate::helpers::{CATALOG, TestApp, bearer, settings_with_test_pki};
use crate::submissions::submit;

/// The valid example of `procedure` called `name`.
fn example(procedure: &str, name: &str) -> Value {
    CATALOG
        .get(procedure)
        .expect("procedure")
        .definition
        .examples
        .iter()
        .find(|example| example.name == name)
        .expect("example")
        .data
        .clone()
}

/// Submits `data` for `procedure`, signed with the test card `card`.
async fn submit_signed(
    app: &TestApp,
    token: &str,
    procedure: &str,
    data: &Value,
    card: &str,
    key: &str,
) -> (u16, Value) {
    let (signature, nonce) = app.card_signature(token, procedure, data, card).await;
    app.json(submit(
        procedure,
        token,
        key,
        json!({"data": data, "signature": signature, "signing_nonce": nonce}),
    ))
    .await
}

/// Mr. A's request: two full copies of his 戸籍, mailed to Tokyo.
fn two_koseki_copies() -> Value {
    example(
        "koseki-shomei-request",
        "two full certificates for a passport",
    )
}

#[actix_web::test]
async fn a_family_register_request_freezes_its_fee_and_postage_at_submission() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let token = app.resident("card-7001").await;
    let data = two_koseki_copies();

    // The confirm step shows the breakdown before anything is stored.
    let (status, checked) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/procedures/koseki-shomei-request/validate")
                .insert_header(bearer(&token))
                .set_json(&data),
        )
        .await;
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["fee_breakdown"]["total_yen"], 1010, "{checked}");

    let (status, created) = submit_signed(
        &app,
        &token,
        "koseki-shomei-request",
        &data,
        "sign-tokyo",
        "koseki-1",
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let breakdown = &created["fee_breakdown"];
    let lines: Vec<(String, String, i64)> = breakdown["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|line| {
            (
                line["kind"].as_str().unwrap_or_default().to_owned(),
                line["id"].as_str().unwrap_or_default().to_owned(),
                line["yen"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("fee".to_owned(), "fee".to_owned(), 900),
            ("postage".to_owned(), "standard_letter".to_owned(), 110)
        ]
    );
    assert_eq!(breakdown["total_yen"], 1010);
    assert_eq!(breakdown["timing"], "at_submit");
    assert_eq!(created["fee_yen"], 900);

    // Stored with the application: the resident sees the same breakdown later.
    let id = created["id"].as_str().expect("id");
    let (status, detail) = app
        .get_as(&format!("/api/v1/submissions/{id}"), &token)
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(&detail["fee_breakdown"], breakdown);
}

#[actix_web::test]
async fn a_client_cannot_name_its_own_amount() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let token = app.resident("card-7002").await;
    let data = two_koseki_copies();
    let (signature, nonce) = app
        .card_signature(&token, "koseki-shomei-request", &data, "sign-tokyo")
        .await;
    for (key, extra) in [
        ("fee_yen", json!(1)),
        ("fee_breakdown", json!({"total_yen": 1})),
    ] {
        let mut body = json!({"data": data, "signature": signature, "signing_nonce": nonce});
        body[key] = extra;
        let (status, problem) = app
            .json(submit(
                "koseki-shomei-request",
                &token,
                &format!("amount-{key}"),
                body,
            ))
            .await;
        assert_eq!(status, 422, "{key}: {problem}");
        assert_eq!(problem["errors"][0]["path"], format!("/{key}"), "{problem}");
    }
}
