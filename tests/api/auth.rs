//! Sessions: sign-in, refresh rotation, logout, and strict token checks.

use actix_web::test::TestRequest;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

use crate::helpers::{TestApp, bearer};

#[actix_web::test]
async fn a_resident_signs_in_and_sees_their_account() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-0001").await;
    let (status, me) = app
        .json(
            TestRequest::get()
                .uri("/api/v1/me")
                .insert_header(bearer(&token)),
        )
        .await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["provider"], "dev");
    assert_eq!(me["assurance"], "card-auth");

    let (status, _) = app
        .json(
            TestRequest::patch()
                .uri("/api/v1/me")
                .insert_header(bearer(&token))
                .set_json(json!({"email": "taro@example.jp", "language": "en"})),
        )
        .await;
    assert_eq!(status, 204);
    let (_, me) = app
        .json(
            TestRequest::get()
                .uri("/api/v1/me")
                .insert_header(bearer(&token)),
        )
        .await;
    // The new address waits for its confirmation link; notices are not sent to it before.
    assert_eq!(me["email"], Value::Null);
    assert_eq!(me["pending_email"], "taro@example.jp");
    assert_eq!(me["email_confirmed"], false);
    assert_eq!(me["language"], "en");

    let (status, problem) = app
        .json(
            TestRequest::patch()
                .uri("/api/v1/me")
                .insert_header(bearer(&token))
                .set_json(json!({"email": "not an address", "language": "fr"})),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        crate::helpers::field_errors(&problem),
        vec![
            ("/email".to_owned(), "invalid_email".to_owned()),
            ("/language".to_owned(), "invalid_option".to_owned()),
        ]
    );
}

#[actix_web::test]
async fn the_same_card_is_the_same_account() {
    let app = TestApp::spawn().await;
    let first = app.resident("card-0002").await;
    let second = app.resident("card-0002").await;
    let (_, a) = app
        .json(
            TestRequest::get()
                .uri("/api/v1/me")
                .insert_header(bearer(&first)),
        )
        .await;
    let (_, b) = app
        .json(
            TestRequest::get()
                .uri("/api/v1/me")
                .insert_header(bearer(&second)),
        )
        .await;
    assert_eq!(a["id"], b["id"]);
}

#[actix_web::test]
async fn a_challenge_is_single_use() {
    let app = TestApp::spawn().await;
    let (_, started) = app
        .json(TestRequest::post().uri("/api/v1/auth/dev/start"))
        .await;
    let body = json!({"challenge_id": started["challenge_id"], "subject": "card-0003"});
    let (status, _) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/auth/dev/complete")
                .set_json(&body),
        )
        .await;
    assert_eq!(status, 200);
    let (status, problem) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/auth/dev/complete")
                .set_json(&body),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(problem["code"], "auth.invalid_challenge");
}

async fn refresh(app: &TestApp, token: &Value) -> (u16, Value) {
    app.json(
        TestRequest::post()
            .uri("/api/v1/auth/refresh")
            .set_json(json!({"refresh_token": token})),
    )
    .await
}

/// Moves every rotation back by a minute: past the grace period for concurrent requests.
pub(crate) async fn age_rotations(app: &TestApp) {
    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .expect("connect");
    diesel::sql_query(
        "UPDATE refresh_tokens SET used_at = used_at - interval '1 minute' WHERE used_at IS NOT NULL",
    )
    .execute(&mut connection)
    .await
    .expect("age the rotations");
}

#[actix_web::test]
async fn refresh_rotates_and_a_reused_token_revokes_the_family() {
    let app = TestApp::spawn().await;
    let tokens = app.resident_tokens("card-0004").await;
    let first = tokens["refresh_token"].clone();
    let (status, rotated) = refresh(&app, &first).await;
    assert_eq!(status, 200, "{rotated}");
    assert_ne!(rotated["refresh_token"], first);

    // Someone replays the old token after the grace period: it fails, and the newer one dies
    // with it.
    age_rotations(&app).await;
    let (status, _) = refresh(&app, &first).await;
    assert_eq!(status, 401);
    let (status, _) = refresh(&app, &rotated["refresh_token"]).await;
    assert_eq!(status, 401);
}

/// Two requests that both found the access token expired rotate the same refresh token at once:
/// the second (which waited for the first's row lock) is not taken for a stolen copy, and both
/// clients keep a working session.
#[actix_web::test]
async fn two_requests_refreshing_the_same_token_at_once_both_stay_signed_in() {
    let app = TestApp::spawn().await;
    let tokens = app.resident_tokens("card-0014").await;
    let first = tokens["refresh_token"].clone();
    let ((one_status, one), (two_status, two)) =
        futures_util::future::join(refresh(&app, &first), refresh(&app, &first)).await;
    assert_eq!(one_status, 200, "{one}");
    assert_eq!(two_status, 200, "{two}");
    assert_ne!(one["refresh_token"], two["refresh_token"]);
    for pair in [&one, &two] {
        let (status, me) = app
            .json(
                TestRequest::get()
                    .uri("/api/v1/me")
                    .insert_header(bearer(pair["access_token"].as_str().expect("token"))),
            )
            .await;
        assert_eq!(status, 200, "{me}");
        let (status, next) = refresh(&app, &pair["refresh_token"]).await;
        assert_eq!(status, 200, "each pair rotates on: {next}");
    }
}

#[actix_web::test]
async fn logout_revokes_the_refresh_token() {
    let app = TestApp::spawn().await;
    let tokens = app.resident_tokens("card-0005").await;
    let body = json!({"refresh_token": tokens["refresh_token"]});
    let (status, _) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/auth/logout")
                .set_json(&body),
        )
        .await;
    assert_eq!(status, 204);
    let (status, problem) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/auth/refresh")
                .set_json(&body),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(problem["code"], "auth.invalid_token");
}

#[actix_web::test]
async fn tokens_are_verified_strictly() {
    let app = TestApp::spawn().await;
    let token = app.resident("card-0006").await;

    // Signed with another key (another deployment's), same claims shape.
    let other = TestApp::spawn().await;
    let foreign = other.resident("card-0006").await;
    let (status, problem) = app
        .json(
            TestRequest::get()
                .uri("/api/v1/me")
                .insert_header(bearer(&foreign)),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(problem["code"], "auth.invalid_token");

    // alg: none.
    let payload = token.split('.').nth(1).unwrap_or_default();
    let header = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"alg":"none","typ":"JWT","kid":"ephemeral"}"#,
    );
    let unsigned = format!("{header}.{payload}.");
    let (status, _) = app
        .json(
            TestRequest::get()
                .uri("/api/v1/me")
                .insert_header(bearer(&unsigned)),
        )
        .await;
    assert_eq!(status, 401);

    // A tampered payload.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        br#"{"sub":"00000000-0000-7000-8000-000000000000"}"#,
    );
    let (status, _) = app
        .json(
            TestRequest::get()
                .uri("/api/v1/me")
                .insert_header(bearer(&parts.join("."))),
        )
        .await;
    assert_eq!(status, 401);

    let (status, problem) = app.json(TestRequest::get().uri("/api/v1/me")).await;
    assert_eq!(status, 401);
    assert_eq!(problem["code"], "auth.missing_token");
}

#[actix_web::test]
async fn a_disabled_provider_is_not_found() {
    let app = TestApp::spawn().await;
    let (status, _) = app
        .json(TestRequest::post().uri("/api/v1/auth/oidc/start"))
        .await;
    assert_eq!(status, 404);
}
