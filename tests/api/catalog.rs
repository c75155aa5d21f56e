//! The public catalog API.

use actix_web::test::TestRequest;
use serde_json::json;

use crate::helpers::{TestApp, field_errors};

#[actix_web::test]
async fn categories_count_their_procedures() {
    let app = TestApp::spawn().await;
    let (status, categories) = app.get("/api/v1/categories").await;
    assert_eq!(status, 200);
    let juminhyo = categories
        .as_array()
        .and_then(|all| all.iter().find(|c| c["id"] == "juminhyo"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(juminhyo["name"]["ja"], "住民票・印鑑・マイナンバー");
    let expected = app
        .state
        .catalog
        .procedures
        .values()
        .filter(|p| p.definition.category == "juminhyo")
        .count();
    assert_eq!(juminhyo["count"], expected);
}

#[actix_web::test]
async fn procedures_are_searchable_in_japanese_and_english_and_filterable() {
    let app = TestApp::spawn().await;
    let (status, found) = app
        .get("/api/v1/procedures?q=%E4%BD%8F%E6%B0%91%E7%A5%A8")
        .await; // 住民票
    assert_eq!(status, 200);
    let ids: Vec<&str> = found
        .as_array()
        .map(|l| l.iter().filter_map(|p| p["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(ids.contains(&"juminhyo-copy-request"), "{ids:?}");

    let (_, found) = app
        .get("/api/v1/procedures?q=resident+record&lang=en")
        .await;
    let first = &found[0];
    assert!(
        first["title"].is_string(),
        "lang=en gives plain strings: {first}"
    );
    assert!(
        first["title"]
            .as_str()
            .is_some_and(|t| t.to_lowercase().contains("resident record"))
    );

    let (_, signed) = app.get("/api/v1/procedures?auth=card-sign").await;
    assert!(
        signed
            .as_array()
            .is_some_and(|l| !l.is_empty() && l.iter().all(|p| p["assurance"] == "card-sign"))
    );

    let (_, none) = app
        .get("/api/v1/procedures?category=juminhyo&q=zzzz-no-such-words")
        .await;
    assert_eq!(none, json!([]));

    let (status, problem) = app.get("/api/v1/procedures?auth=platinum").await;
    assert_eq!(status, 400, "{problem}");
    assert_eq!(problem["code"], "request.invalid_query");
}

#[actix_web::test]
async fn a_procedure_and_its_schema_are_served_with_etags() {
    let app = TestApp::spawn().await;
    let response = app
        .call(TestRequest::get().uri("/api/v1/procedures/juminhyo-copy-request"))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let etag = crate::helpers::header(&response, "etag");
    let body: serde_json::Value = actix_web::test::read_body_json(response).await;
    assert_eq!(body["definition"]["id"], "juminhyo-copy-request");
    assert_eq!(body["division_name"]["ja"], "窓口課");
    assert!(
        body["definition"]["examples"].is_null(),
        "examples are for the test suite, not clients"
    );
    assert_eq!(body["content_hash"].as_str().map(str::len), Some(64));
    // Blocks are resolved: the applicant's fields are there.
    let fields = body["definition"]["pages"][0]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(fields.iter().any(|f| f["id"] == "applicant_name"));

    let again = app
        .call(
            TestRequest::get()
                .uri("/api/v1/procedures/juminhyo-copy-request")
                .insert_header(("if-none-match", etag.as_str())),
        )
        .await;
    assert_eq!(again.status().as_u16(), 304);

    let (status, schema) = app
        .get("/api/v1/procedures/juminhyo-copy-request/schema")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );

    let (status, problem) = app.get("/api/v1/procedures/no-such-procedure").await;
    assert_eq!(status, 404);
    assert_eq!(problem["code"], "not_found");
}

#[actix_web::test]
async fn answers_are_checked_with_every_field_error_in_both_languages() {
    let app = TestApp::spawn().await;
    let (status, problem) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/procedures/juminhyo-copy-request/validate")
                .set_json(json!({
                    "applicant_name": "加賀 太郎",
                    "applicant_kana": "かが",
                    "applicant_birth_date": "1985-04-01",
                    "applicant_address": {"postal_code": "922-8622", "address": "石川県加賀市大聖寺南町ニ41"},
                    "scope": "household",
                    "copies": "１２",
                    "purpose": "employment",
                    "favourite_colour": "blue"
                })),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["code"], "form.invalid");
    assert_eq!(
        field_errors(&problem),
        vec![
            ("/applicant_kana".to_owned(), "invalid_kana".to_owned()),
            ("/applicant_phone".to_owned(), "required".to_owned()),
            ("/copies".to_owned(), "too_large".to_owned()),
            ("/favourite_colour".to_owned(), "unknown_field".to_owned()),
        ]
    );
    for error in problem["errors"].as_array().cloned().unwrap_or_default() {
        assert!(
            error["message"]["ja"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(
            error["message"]["en"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }

    let (status, accepted) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/procedures/juminhyo-copy-request/validate")
                .set_json(json!({
                    "applicant_name": "加賀 太郎",
                    "applicant_kana": "ｶｶﾞ ﾀﾛｳ",
                    "applicant_birth_date": "1985-04-01",
                    "applicant_address": {"postal_code": "９２２ー８６２２", "address": "石川県加賀市大聖寺南町ニ41"},
                    "applicant_phone": "0761-72-1111",
                    "scope": "household",
                    "copies": "２",
                    "purpose": "employment",
                    "purpose_other": "stale answer from a hidden field"
                })),
        )
        .await;
    assert_eq!(status, 200, "{accepted}");
    assert_eq!(accepted["fee_yen"], 600);
    assert_eq!(accepted["data"]["applicant_kana"], "カガ タロウ");
    assert_eq!(
        accepted["data"]["applicant_address"]["postal_code"],
        "9228622"
    );
    assert_eq!(accepted["data"]["copies"], 2);
    assert!(
        accepted["data"].get("purpose_other").is_none(),
        "hidden answers are not kept"
    );
}

/// Gunzips a response body.
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut plain)
        .expect("a gzip body");
    plain
}

#[actix_web::test]
async fn the_catalog_and_definitions_are_gzipped_for_clients_that_ask() {
    let app = TestApp::spawn().await;
    let plain = app
        .call(TestRequest::get().uri("/api/v1/procedures?lang=ja"))
        .await;
    assert!(!plain.headers().contains_key("content-encoding"));
    let plain_etag = crate::helpers::header(&plain, "etag");
    let plain = actix_web::test::read_body(plain).await;

    let gzipped = app
        .call(
            TestRequest::get()
                .uri("/api/v1/procedures?lang=ja")
                .insert_header(("accept-encoding", "br;q=1, gzip;q=0.8")),
        )
        .await;
    assert_eq!(crate::helpers::header(&gzipped, "content-encoding"), "gzip");
    assert_eq!(crate::helpers::header(&gzipped, "vary"), "Accept-Encoding");
    let gzip_etag = crate::helpers::header(&gzipped, "etag");
    assert_ne!(
        gzip_etag, plain_etag,
        "another representation, another ETag"
    );
    let gzipped = actix_web::test::read_body(gzipped).await;
    assert!(
        gzipped.len() * 3 < plain.len(),
        "{} vs {}",
        gzipped.len(),
        plain.len()
    );
    assert_eq!(gunzip(&gzipped), plain.to_vec());

    // The precompressed body revalidates like the plain one.
    let again = app
        .call(
            TestRequest::get()
                .uri("/api/v1/procedures?lang=ja")
                .insert_header(("accept-encoding", "gzip"))
                .insert_header(("if-none-match", gzip_etag.as_str())),
        )
        .await;
    assert_eq!(again.status().as_u16(), 304);

    // gzip refused with q=0: plain.
    let refused = app
        .call(
            TestRequest::get()
                .uri("/api/v1/procedures?lang=ja")
                .insert_header(("accept-encoding", "gzip;q=0, identity")),
        )
        .await;
    assert!(!refused.headers().contains_key("content-encoding"));

    // Anything else is compressed on the way out.
    let definition = app
        .call(
            TestRequest::get()
                .uri("/api/v1/procedures/juminhyo-copy-request")
                .insert_header(("accept-encoding", "gzip")),
        )
        .await;
    assert_eq!(
        crate::helpers::header(&definition, "content-encoding"),
        "gzip"
    );
    let definition = actix_web::test::read_body(definition).await;
    let definition: serde_json::Value =
        serde_json::from_slice(&gunzip(&definition)).expect("JSON inside");
    assert_eq!(definition["definition"]["id"], "juminhyo-copy-request");
}
