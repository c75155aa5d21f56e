//! The resident portal's pages, at the HTML level: language, landmarks, search, policy headers,
//! error pages, and every procedure's start page.

use actix_web::test::{self, TestRequest};

use crate::helpers::{CATALOG, TestApp, header};

struct Page {
    status: u16,
    html: String,
    csp: String,
    set_cookie: String,
    content_type: String,
}

async fn page(app: &TestApp, request: TestRequest) -> Page {
    let response = app.call(request).await;
    let status = response.status().as_u16();
    let csp = header(&response, "content-security-policy");
    let set_cookie = header(&response, "set-cookie");
    let content_type = header(&response, "content-type");
    let body = test::read_body(response).await;
    Page {
        status,
        html: String::from_utf8(body.to_vec()).expect("UTF-8 page"),
        csp,
        set_cookie,
        content_type,
    }
}

async fn get(app: &TestApp, uri: &str) -> Page {
    page(app, TestRequest::get().uri(&encode(uri))).await
}

/// Percent-encodes what is not ASCII, as a browser sends it.
fn encode(uri: &str) -> String {
    uri.bytes()
        .map(|byte| {
            if byte.is_ascii() && byte != b' ' {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// What every page must be: HTML in its language, with the landmarks, the language switch and a
/// policy that allows only this origin, and nothing that policy would block.
fn assert_page(page: &Page, lang: &str) {
    let html = &page.html;
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(
        html.contains(&format!(r#"<html lang="{lang}">"#)),
        "lang {lang}: {html}"
    );
    assert!(html.contains("<title>") && html.contains("</title>"));
    assert!(html.contains(r##"<a class="skip-link" href="#main">"##));
    assert!(html.contains(r#"<main id="main""#));
    let other = if lang == "ja" { "en" } else { "ja" };
    assert!(
        html.contains(&format!(r#"lang="{other}" hreflang="{other}""#)),
        "a switch to {other}: {html}"
    );
    assert!(page.csp.contains("default-src 'self'"), "{}", page.csp);
    assert!(page.csp.contains("script-src 'self'"), "{}", page.csp);
    assert!(!page.csp.contains("unsafe-inline"), "{}", page.csp);
    assert!(!html.contains("style="), "no style attributes");
    assert!(!html.contains("<style"), "no style elements");
    for (index, _) in html.match_indices("<script") {
        let tag_end = html[index..].find('>').expect("tag end") + index;
        assert!(html[index..tag_end].contains(" src="), "no inline script");
        assert!(
            html[tag_end + 1..].starts_with("</script>"),
            "no inline script body"
        );
    }
    for control in ["<input", "<select", "<textarea", "<button"] {
        for (index, _) in html.match_indices(control) {
            let tag = &html[index..index + html[index..].find('>').expect("tag end")];
            assert!(
                !tag.contains("disabled") && !tag.contains("readonly"),
                "no disabled or read-only controls: {tag}"
            );
        }
    }
}

fn first_procedure_where(title_contains: &str) -> String {
    CATALOG
        .procedures
        .values()
        .find(|p| p.definition.title.ja.contains(title_contains))
        .map(|p| p.definition.id.clone())
        .expect("a procedure with that title")
}

#[actix_web::test]
async fn home_is_japanese_first_with_categories_search_and_a_language_switch() {
    let app = TestApp::spawn().await;
    let home = get(&app, "/").await;
    assert_eq!(home.status, 200);
    assert_page(&home, "ja");
    assert!(
        home.html
            .contains("<title>オンライン申請 | 加賀市 オンライン申請</title>")
    );
    assert!(home.html.contains(r#"href="/?lang=en""#), "{}", home.html);
    assert!(
        home.html
            .contains(r#"<form class="search" method="get" action="/procedures""#)
    );
    assert!(home.html.contains(r#"<label for="q">手続きを探す</label>"#));
    assert!(
        home.html
            .contains(r#"href="/procedures?category=juminhyo""#)
    );
    assert!(
        home.set_cookie.is_empty(),
        "no cookie until a language is chosen"
    );
}

#[actix_web::test]
async fn the_language_chosen_is_kept_in_a_cookie() {
    let app = TestApp::spawn().await;
    let english = get(&app, "/procedures?category=juminhyo&lang=en").await;
    assert_eq!(english.status, 200);
    assert_page(&english, "en");
    assert!(
        english
            .html
            .contains("<h1>Resident records and My Number</h1>")
    );
    assert!(
        english.set_cookie.starts_with("lang=en; Path=/;"),
        "{}",
        english.set_cookie
    );
    assert!(english.set_cookie.contains("HttpOnly"));
    assert!(
        english
            .html
            .contains(r#"href="/procedures?category=juminhyo&amp;lang=ja""#),
        "the switch keeps the other parameters: {}",
        english.html
    );
    let later = page(
        &app,
        TestRequest::get()
            .uri("/accessibility")
            .insert_header(("cookie", "lang=en")),
    )
    .await;
    assert_page(&later, "en");
    assert!(later.html.contains("WCAG 2.2"));
    assert!(
        later
            .html
            .contains("<title>Accessibility statement | Kaga City Online applications</title>")
    );
}

#[actix_web::test]
async fn the_search_finds_procedures_by_kanji_and_by_kana() {
    let app = TestApp::spawn().await;
    let juminhyo = first_procedure_where("住民票");
    let by_kanji = get(&app, "/procedures?q=住民票").await;
    assert_eq!(by_kanji.status, 200);
    assert_page(&by_kanji, "ja");
    assert!(
        by_kanji
            .html
            .contains(&format!(r#"href="/procedures/{juminhyo}""#))
    );

    let card = first_procedure_where("マイナンバーカード");
    for kana in ["まいなんばーかーど", "マイナンバーカード", "ﾏｲﾅﾝﾊﾞｰｶｰﾄﾞ"]
    {
        let found = get(&app, &format!("/procedures?q={kana}")).await;
        assert_eq!(found.status, 200);
        assert!(
            found
                .html
                .contains(&format!(r#"href="/procedures/{card}""#)),
            "{kana} finds {card}"
        );
        assert!(
            !found
                .html
                .contains(&format!(r#"href="/procedures/{juminhyo}""#))
        );
    }
    // The JSON catalog searches the same way.
    let (status, listed) = app
        .get(&encode("/api/v1/procedures?q=まいなんばーかーど"))
        .await;
    assert_eq!(status, 200);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == card.as_str())
    );

    let nothing = get(&app, "/procedures?q=zzzz-no-such-words").await;
    assert!(nothing.html.contains("該当する手続きはありません"));
}

#[actix_web::test]
async fn each_listed_procedure_says_what_it_needs() {
    let app = TestApp::spawn().await;
    let all = get(&app, "/procedures?lang=en").await;
    assert_eq!(all.status, 200);
    assert_eq!(
        all.html.matches(r#"<li class="procedure">"#).count(),
        CATALOG.procedures.len()
    );
    for needed in [
        "Sign-in only",
        "My Number Card (signature)",
        "Free",
        "Attachments",
    ] {
        assert!(all.html.contains(needed), "{needed}");
    }
}

#[actix_web::test]
async fn bad_search_input_rerenders_with_an_error_summary_and_hostile_text_is_escaped() {
    let app = TestApp::spawn().await;
    let long = get(&app, &format!("/procedures?q={}", "あ".repeat(101))).await;
    assert_eq!(long.status, 400);
    assert_page(&long, "ja");
    assert!(
        long.html
            .contains(r#"<div class="error-summary" role="alert""#)
    );
    assert!(
        long.html
            .contains(r##"<a href="#q">検索語は100文字以内で入力してください。</a>"##)
    );
    assert!(long.html.contains(r#"aria-invalid="true""#));

    let hostile = get(&app, "/procedures?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert_eq!(hostile.status, 200);
    assert!(
        hostile
            .html
            .contains("&lt;script&gt;alert(1)&lt;/script&gt;")
    );
    assert_page(&hostile, "ja");
}

#[actix_web::test]
async fn unknown_pages_answer_the_portals_404_page_and_the_api_keeps_its_problems() {
    let app = TestApp::spawn().await;
    for uri in [
        "/no-such-page",
        "/procedures/no-such-procedure",
        "/procedures?category=no-such-category",
        "/static/0000/site.css",
    ] {
        let missing = get(&app, uri).await;
        assert_eq!(missing.status, 404, "{uri}");
        assert_page(&missing, "ja");
        assert!(missing.html.contains("ページが見つかりません"), "{uri}");
    }
    let english = get(&app, "/no-such-page?lang=en").await;
    assert!(english.html.contains("<h1>Page not found</h1>"));

    let api = app
        .call(TestRequest::get().uri("/api/v1/no-such-thing"))
        .await;
    assert_eq!(api.status().as_u16(), 404);
    assert_eq!(header(&api, "content-type"), "application/problem+json");
}

#[actix_web::test]
async fn stylesheets_are_served_from_the_binary_with_long_caching() {
    let app = TestApp::spawn().await;
    let home = get(&app, "/").await;
    let hrefs: Vec<&str> = home
        .html
        .match_indices(r#"<link rel="stylesheet" href=""#)
        .map(|(index, found)| {
            let start = index + found.len();
            &home.html[start..start + home.html[start..].find('"').unwrap()]
        })
        .collect();
    assert_eq!(hrefs.len(), 2, "{}", home.html);
    for href in hrefs {
        assert!(href.starts_with("/static/"), "{href}");
        let response = app.call(TestRequest::get().uri(href)).await;
        assert_eq!(response.status().as_u16(), 200, "{href}");
        assert_eq!(header(&response, "content-type"), "text/css; charset=utf-8");
        assert_eq!(
            header(&response, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        let css = test::read_body(response).await;
        assert!(std::str::from_utf8(&css).unwrap().contains("--"));
    }
}

#[actix_web::test]
async fn the_start_page_says_what_to_prepare_and_leads_to_sign_in() {
    let app = TestApp::spawn().await;
    let with_basis = CATALOG
        .procedures
        .values()
        .map(|p| &p.definition)
        .find(|d| d.legal_basis.is_some() && !d.file_fields().is_empty())
        .expect("a procedure with a legal basis and an attachment");
    let start = get(&app, &format!("/procedures/{}", with_basis.id)).await;
    assert_eq!(start.status, 200);
    assert_page(&start, "ja");
    let html = &start.html;
    assert!(html.contains(&format!("<h1>{}</h1>", with_basis.title.ja)));
    assert!(html.contains(with_basis.legal_basis.as_deref().unwrap()));
    assert!(html.contains("標準処理期間"));
    assert!(html.contains("ファイル形式"));
    assert!(html.contains(&format!(
        r#"<a class="button button-start" href="/procedures/{}/apply">申請をはじめる</a>"#,
        with_basis.id
    )));

    let signed = first_procedure_where("住民票の写し");
    let english = get(&app, &format!("/procedures/{signed}?lang=en")).await;
    assert!(english.html.contains("Standard processing period"));

    let sign_in = get(&app, &format!("/sign-in?next=/procedures/{signed}")).await;
    assert_eq!(sign_in.status, 200);
    assert_page(&sign_in, "ja");
    assert!(sign_in.html.contains(r#"action="/sign-in/dev""#));
    assert!(
        sign_in
            .html
            .contains(&format!(r#"href="/procedures/{signed}""#))
    );
    let elsewhere = get(&app, "/sign-in?next=//evil.example/").await;
    assert!(
        !elsewhere.html.contains(r#"href="//evil.example"#),
        "no link off the site: {}",
        elsewhere.html
    );
}

#[actix_web::test]
async fn every_procedures_start_page_renders_in_japanese_and_english() {
    let app = TestApp::spawn().await;
    assert_eq!(CATALOG.procedures.len(), 173);
    for (id, procedure) in &CATALOG.procedures {
        for (lang, title) in [
            ("ja", &procedure.definition.title.ja),
            ("en", &procedure.definition.title.en),
        ] {
            let start = get(&app, &format!("/procedures/{id}?lang={lang}")).await;
            assert_eq!(start.status, 200, "{id} in {lang}");
            assert_page(&start, lang);
            let escaped = title.replace('&', "&amp;").replace('\'', "&#39;");
            assert!(start.html.contains(&escaped), "{id} in {lang}: title");
            assert!(start.html.contains(&format!("/procedures/{id}/apply")));
        }
    }
}
