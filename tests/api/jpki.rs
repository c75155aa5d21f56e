//! JPKI login through the HTTP API with the test PKI: the card signs the server's challenge.
//! Every failure of IDENTITY.md gets its own clear 401.

use actix_web::test::TestRequest;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::helpers::{TestApp, bearer, settings_with_test_pki, test_pki};

/// What the card does: RSA PKCS#1 v1.5 over SHA-256 of the bytes, with the card's key.
fn card_signs(card: &str, bytes: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("challenge");
    std::fs::write(&input, bytes).expect("write");
    let output = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(test_pki().join(format!("{card}.key")))
        .arg(&input)
        .output()
        .expect("openssl dgst");
    assert!(output.status.success());
    output.stdout
}

fn certificate(card: &str) -> String {
    BASE64.encode(std::fs::read(test_pki().join(format!("{card}.der"))).expect("certificate"))
}

async fn start(app: &TestApp) -> (String, Vec<u8>) {
    let (status, started) = app
        .json(TestRequest::post().uri("/api/v1/auth/jpki/start"))
        .await;
    assert_eq!(status, 200, "{started}");
    (
        started["challenge_id"].as_str().expect("id").to_owned(),
        BASE64
            .decode(started["challenge"].as_str().expect("challenge"))
            .expect("base64"),
    )
}

async fn complete(app: &TestApp, challenge_id: &str, card: &str, signature: &[u8]) -> (u16, Value) {
    app.json(
        TestRequest::post()
            .uri("/api/v1/auth/jpki/complete")
            .set_json(json!({
                "challenge_id": challenge_id,
                "certificate": certificate(card),
                "signature": BASE64.encode(signature),
            })),
    )
    .await
}

#[actix_web::test]
async fn a_card_holder_signs_in_and_each_failure_is_a_clear_401() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;

    let (id, challenge) = start(&app).await;
    let (status, tokens) = complete(
        &app,
        &id,
        "auth-alice",
        &card_signs("auth-alice", &challenge),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let (_, me) = app
        .json(
            TestRequest::get()
                .uri("/api/v1/me")
                .insert_header(bearer(tokens["access_token"].as_str().unwrap_or_default())),
        )
        .await;
    assert_eq!(me["provider"], "jpki");
    assert_eq!(me["assurance"], "card-auth");

    // A replayed challenge.
    let (status, problem) = complete(
        &app,
        &id,
        "auth-alice",
        &card_signs("auth-alice", &challenge),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("auth.invalid_challenge"))
    );

    for (card, signed_bytes, code) in [
        (
            "auth-alice",
            Some(b"not the challenge".as_slice()),
            "auth.bad_signature",
        ),
        ("auth-expired", None, "auth.certificate_expired"),
        ("auth-notyet", None, "auth.certificate_expired"),
        ("auth-impostor", None, "auth.untrusted_certificate"),
        ("auth-bob", None, "auth.certificate_revoked"),
        ("sign-alice", None, "auth.wrong_certificate"),
    ] {
        let (id, challenge) = start(&app).await;
        let signature = card_signs(card, signed_bytes.unwrap_or(&challenge));
        let (status, problem) = complete(&app, &id, card, &signature).await;
        assert_eq!(status, 401, "{card}: {problem}");
        assert_eq!(problem["code"], code, "{card}");
        assert!(
            problem["detail"]["ja"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
        );
    }

    let (status, problem) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/auth/jpki/complete")
                .set_json(json!({
                    "challenge_id": uuid::Uuid::now_v7(),
                    "certificate": "not base64!",
                    "signature": "",
                })),
        )
        .await;
    assert!(status == 400 || status == 401, "{status}: {problem}");
}
