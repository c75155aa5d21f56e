//! The law's rules on who may request a certificate online (`requesters` in a definition),
//! enforced at submission on the signature certificate's verified address.

use serde_json::{Value, json};

use crate::helpers::{CATALOG, TestApp, settings_with_test_pki};
use crate::submissions::submit;

/// Submits the first valid example of `procedure`, signed with the test card `card`.
async fn submit_signed(app: &TestApp, token: &str, procedure: &str, card: &str) -> (u16, Value) {
    let definition = &CATALOG.get(procedure).expect("procedure").definition;
    let data = definition
        .examples
        .iter()
        .find(|example| example.valid)
        .expect("a valid example")
        .data
        .clone();
    let (signature, nonce) = app.card_signature(token, procedure, &data, card).await;
    app.json(submit(
        procedure,
        token,
        &format!("{procedure}-{card}"),
        json!({"data": data, "signature": signature, "signing_nonce": nonce}),
    ))
    .await
}

#[actix_web::test]
async fn a_tokyo_signature_certificate_is_refused_for_a_resident_record_copy() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let token = app.resident("card-2001").await;
    let (status, problem) =
        submit_signed(&app, &token, "juminhyo-copy-request", "sign-tokyo").await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["code"], "submission.residents_only");
    assert!(
        problem["detail"]["ja"]
            .as_str()
            .is_some_and(|detail| detail.contains("市内に住民登録")),
        "{problem}"
    );

    // The same request signed by a resident of the city goes through.
    let (status, created) =
        submit_signed(&app, &token, "juminhyo-copy-request", "sign-alice").await;
    assert_eq!(status, 201, "{created}");
}

#[actix_web::test]
async fn a_tokyo_signature_certificate_is_refused_for_a_certificate_of_resident_record_entries() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let token = app.resident("card-2002").await;
    let (status, problem) =
        submit_signed(&app, &token, "juminhyo-kisai-jiko-shomei", "sign-tokyo").await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["code"], "submission.residents_only");
}

#[actix_web::test]
async fn a_tokyo_signature_certificate_is_accepted_for_a_family_register_certificate() {
    // Mr. A lives in Tokyo; his 本籍 is here, so he may request his 戸籍 online.
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let token = app.resident("card-2003").await;
    let (status, created) =
        submit_signed(&app, &token, "koseki-shomei-request", "sign-tokyo").await;
    assert_eq!(status, 201, "{created}");
}
