//! The law's rules on who may request a certificate online (`requesters` in a definition),
//! enforced at submission on the signature certificate's verified address.

use actix_web::test::TestRequest;
use serde_json::{Value, json};

use crate::helpers::{CATALOG, TestApp, bearer, settings_with_test_pki};
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

/// Every certificate form that can be requested online, and whether the law keeps it to the
/// city's residents (CERTIFICATES: 住民票 and its 記載事項証明書 are residents only; a removed
/// record and the tax certificates also serve former residents; 戸籍 and the certificates kept
/// by the 本籍地 also serve non-residents whose 本籍 is here).
const CERTIFICATE_FORMS: &[(&str, bool)] = &[
    ("juminhyo-copy-request", true),
    ("juminhyo-kisai-jiko-shomei", true),
    ("juminhyo-joshu-copy", false),
    ("shotoku-kazei-shomei", false),
    ("hikazei-shomei", false),
    ("koseki-shomei-request", false),
    ("koseki-fuhyo-copy", false),
    ("joseki-shomei-request", false),
    ("kaiseigen-koseki-request", false),
    ("mibun-shomeisho-request", false),
    ("dokushin-shomeisho-request", false),
];

#[actix_web::test]
async fn every_certificate_form_refuses_or_accepts_a_tokyo_signature_certificate_as_the_law_says() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let token = app.resident("card-2004").await;
    for &(procedure, residents_only) in CERTIFICATE_FORMS {
        let definition = &CATALOG.get(procedure).expect("procedure").definition;
        assert!(
            definition.requesters.is_some(),
            "{procedure} states who may request it online"
        );
        let (status, body) = submit_signed(&app, &token, procedure, "sign-tokyo").await;
        if residents_only {
            assert_eq!(status, 403, "{procedure}: {body}");
            assert_eq!(body["code"], "submission.residents_only", "{procedure}");
        } else {
            assert_eq!(status, 201, "{procedure}: {body}");
        }
    }
}

#[actix_web::test]
async fn a_resubmission_after_a_return_is_checked_against_the_requesters_rule_too() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let token = app.resident("card-2005").await;
    let procedure = "juminhyo-copy-request";
    let (status, created) = submit_signed(&app, &token, procedure, "sign-alice").await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("an id").to_owned();

    let division = &CATALOG
        .get(procedure)
        .expect("procedure")
        .definition
        .division;
    let clerk = app.staff(division, "clerk").await;
    let post = |path: String, token: &str, body: Value| {
        TestRequest::post()
            .uri(&path)
            .insert_header(bearer(token))
            .set_json(body)
    };
    let (status, claimed) = app
        .json(post(
            format!("/api/v1/staff/queues/{division}/claim"),
            &clerk,
            json!({}),
        ))
        .await;
    assert_eq!(status, 200, "{claimed}");
    let (status, returned) = app
        .json(post(
            format!("/api/v1/staff/submissions/{id}/transitions"),
            &clerk,
            json!({"action": "return", "reason": "通数をご確認ください"}),
        ))
        .await;
    assert_eq!(status, 200, "{returned}");

    let definition = &CATALOG.get(procedure).expect("procedure").definition;
    let data = definition
        .examples
        .iter()
        .find(|example| example.valid)
        .expect("a valid example")
        .data
        .clone();
    let resubmit = |signature: String, nonce: String| {
        post(
            format!("/api/v1/submissions/{id}/resubmit"),
            &token,
            json!({"data": data, "signature": signature, "signing_nonce": nonce}),
        )
    };

    // Answered with a signature certificate of someone who has moved to Tokyo: refused, as a
    // first application would be, and the application stays returned.
    let (signature, nonce) = app
        .card_signature(&token, procedure, &data, "sign-tokyo")
        .await;
    let (status, problem) = app.json(resubmit(signature, nonce)).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["code"], "submission.residents_only");
    let (_, mine) = app
        .json(
            TestRequest::get()
                .uri(&format!("/api/v1/submissions/{id}"))
                .insert_header(bearer(&token)),
        )
        .await;
    assert_eq!(mine["status"], "returned", "{mine}");

    // Signed by a resident of the city, the answer goes through.
    let (signature, nonce) = app
        .card_signature(&token, procedure, &data, "sign-alice")
        .await;
    let (status, answered) = app.json(resubmit(signature, nonce)).await;
    assert_eq!(status, 200, "{answered}");
    assert_eq!(answered["revision"], 2);
}
