//! Applying through the portal's pages as a browser would: a cookie jar, the forms' hidden
//! fields (the CSRF token, the Idempotency-Key), redirects followed by hand, files as multipart.

use std::collections::HashMap;

use actix_web::test::{self, TestRequest};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use madoguchi::forms::Assurance;
use madoguchi::forms::model::{Definition, Field, FieldType};
use serde_json::Value;

use crate::helpers::{CATALOG, TestApp, test_settings};

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: String,
    pub html: String,
}

/// A cookie jar in front of the app.
pub struct Browser<'a> {
    app: &'a TestApp,
    pub(crate) cookies: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: HashMap::new(),
        }
    }

    pub(crate) fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: TestRequest) -> Answer {
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.insert_header(("cookie", self.cookie_header()))
        };
        let response = self.app.call(request).await;
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|value| value.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = test::read_body(response).await;
        Answer {
            status,
            location,
            html: String::from_utf8(body.to_vec()).unwrap(),
        }
    }

    pub async fn get(&mut self, uri: &str) -> Answer {
        self.send(TestRequest::get().uri(uri)).await
    }

    pub async fn post(&mut self, uri: &str, pairs: &[(String, String)]) -> Answer {
        let body = serde_urlencoded::to_string(pairs).unwrap();
        self.send(
            TestRequest::post()
                .uri(uri)
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload(body),
        )
        .await
    }

    async fn post_multipart(
        &mut self,
        uri: &str,
        pairs: &[(String, String)],
        files: &[(String, Vec<u8>)],
    ) -> Answer {
        let boundary = "----madoguchi-test-boundary";
        let mut body = Vec::new();
        for (name, value) in pairs {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        for (name, bytes) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"document.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        self.send(
            TestRequest::post()
                .uri(uri)
                .insert_header((
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                ))
                .set_payload(body),
        )
        .await
    }

    /// Signs in with the development card as `subject`, from the sign-in page.
    pub(crate) async fn sign_in(&mut self, subject: &str) {
        let page = self.get("/sign-in?next=/drafts").await;
        assert_eq!(page.status, 200, "{}", page.html);
        let csrf = hidden(&page.html, "csrf");
        let signed = self
            .post(
                "/sign-in/dev",
                &pairs(&[("csrf", &csrf), ("next", "/drafts"), ("subject", subject)]),
            )
            .await;
        assert_eq!(signed.status, 303, "{}", signed.html);
        assert_eq!(signed.location, "/drafts");
    }
}

pub fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// The value of the first hidden input named `name`.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden {name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// A tiny file the attachment check accepts as a PDF.
fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".to_vec()
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        _ => String::new(),
    }
}

/// The form inputs that answer `field` with `value` (as the page names them), and the files.
pub(crate) fn inputs(
    field: &Field,
    name: &str,
    value: &Value,
    into: &mut Vec<(String, String)>,
    files: &mut Vec<(String, Vec<u8>)>,
) {
    match field.kind() {
        FieldType::Info => {}
        FieldType::Date => {
            let text = text_of(value);
            let parts: Vec<&str> = text.split(['-', '/']).collect();
            for (part, suffix) in parts.iter().zip(["year", "month", "day"]) {
                into.push((format!("{name}.{suffix}"), (*part).to_owned()));
            }
        }
        FieldType::MultiSelect => {
            for item in value.as_array().into_iter().flatten() {
                into.push((name.to_owned(), text_of(item)));
            }
        }
        FieldType::Address | FieldType::BankAccount => {
            for (key, part) in value.as_object().into_iter().flatten() {
                into.push((format!("{name}.{key}"), text_of(part)));
            }
        }
        FieldType::File => {
            for _ in value.as_array().into_iter().flatten() {
                files.push((name.to_owned(), pdf()));
            }
        }
        FieldType::Group => {
            let members = value.as_array().cloned().unwrap_or_default();
            into.push((format!("{name}.count"), members.len().to_string()));
            for (index, member) in members.iter().enumerate() {
                for inner in &field.fields {
                    if let Some(answer) = member.get(&inner.id) {
                        inputs(
                            inner,
                            &format!("{name}[{index}].{}", inner.id),
                            answer,
                            into,
                            files,
                        );
                    }
                }
            }
        }
        FieldType::Consent => {
            if value == &Value::Bool(true) {
                into.push((name.to_owned(), "true".to_owned()));
            }
        }
        _ => into.push((name.to_owned(), text_of(value))),
    }
}

/// The first valid example that needs no fixed "today".
fn example(definition: &Definition) -> Option<Value> {
    definition
        .examples
        .iter()
        .find(|example| example.valid && example.as_of.is_none())
        .map(|example| example.data.clone())
}

/// Answers every page of `draft` from `data` through the forms, up to the confirm page.
pub(crate) async fn fill_in(
    browser: &mut Browser<'_>,
    definition: &Definition,
    draft_page: &str,
    data: &Value,
) {
    let mut location = draft_page.to_owned();
    for _ in 0..(definition.pages.len() + 2) {
        if location.ends_with("/confirm") {
            return;
        }
        let page = browser.get(&location).await;
        if page.status == 303 {
            location = page.location;
            continue;
        }
        assert_eq!(page.status, 200, "{location}: {}", page.html);
        let number: usize = location.rsplit('/').next().unwrap().parse().unwrap();
        let mut sent = vec![("csrf".to_owned(), hidden(&page.html, "csrf"))];
        let mut files = Vec::new();
        for field in &definition.pages[number - 1].fields {
            if let Some(value) = data.get(&field.id) {
                inputs(field, &field.id, value, &mut sent, &mut files);
            }
        }
        let answered = if page.html.contains("multipart/form-data") {
            browser.post_multipart(&location, &sent, &files).await
        } else {
            browser.post(&location, &sent).await
        };
        assert_eq!(answered.status, 303, "{location}: {}", answered.html);
        location = answered.location;
    }
    panic!("never reached the confirm page of {}", definition.id);
}

async fn count_applications(app: &TestApp) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .unwrap();
    let rows: Vec<Count> = diesel::sql_query("SELECT count(*) AS count FROM submissions")
        .load(&mut connection)
        .await
        .unwrap();
    rows[0].count
}

/// Starts an application to `procedure` and returns the first page's address.
pub(crate) async fn start(browser: &mut Browser<'_>, procedure: &str) -> String {
    let apply = browser.get(&format!("/procedures/{procedure}/apply")).await;
    assert_eq!(apply.status, 200, "{}", apply.html);
    let started = browser
        .post(
            &format!("/procedures/{procedure}/apply"),
            &pairs(&[("csrf", &hidden(&apply.html, "csrf"))]),
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.html);
    assert!(
        started.location.ends_with("/pages/1"),
        "{}",
        started.location
    );
    started.location
}

/// Sends the confirm page's form; returns the 受付完了 page.
async fn send(browser: &mut Browser<'_>, confirm_href: &str) -> (Answer, Vec<(String, String)>) {
    let confirm = browser.get(confirm_href).await;
    assert_eq!(confirm.status, 200, "{}", confirm.html);
    assert!(confirm.html.contains("申請内容の確認"), "{}", confirm.html);
    let form = pairs(&[
        ("csrf", &hidden(&confirm.html, "csrf")),
        ("idempotency_key", &hidden(&confirm.html, "idempotency_key")),
    ]);
    let submit = confirm_href.replace("/confirm", "/submit");
    let sent = browser.post(&submit, &form).await;
    assert_eq!(sent.status, 303, "{}", sent.html);
    assert!(sent.location.ends_with("/received"), "{}", sent.location);
    let received = browser.get(&sent.location).await;
    assert_eq!(received.status, 200, "{}", received.html);
    assert!(received.html.contains("申請を受け付けました"));
    assert!(received.html.contains("受付番号"));
    assert!(received.html.contains("担当課が内容を確認します。"));
    (received, form)
}

#[actix_web::test]
async fn pages_need_a_session_and_every_post_its_csrf_token() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    let anonymous = browser.get("/drafts").await;
    assert_eq!(anonymous.status, 303);
    assert_eq!(anonymous.location, "/sign-in?next=/drafts");

    browser.sign_in("portal-session").await;
    let cookie = browser.cookies["madoguchi_session"].clone();
    assert!(
        !cookie.contains("eyJ0eXAi") && !cookie.contains("eyJhbGci") && !cookie.contains("csrf"),
        "the token pair is sealed, not readable: {cookie}"
    );
    let drafts = browser.get("/drafts").await;
    assert_eq!(drafts.status, 200, "{}", drafts.html);
    assert!(drafts.html.contains("保存した下書き"));
    let csrf = hidden(&drafts.html, "csrf");

    // Without the token, with another one, or from another origin: refused, and still signed in.
    let without = browser.post("/sign-out", &[]).await;
    assert_eq!(without.status, 403, "{}", without.html);
    assert!(without.html.contains("受け付けられませんでした"));
    let wrong = browser
        .post("/sign-out", &pairs(&[("csrf", &"0".repeat(64))]))
        .await;
    assert_eq!(wrong.status, 403);
    let foreign = browser
        .send(
            TestRequest::post()
                .uri("/sign-out")
                .insert_header(("origin", "https://evil.example"))
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload(format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(foreign.status, 403);
    assert_eq!(browser.get("/drafts").await.status, 200);

    // A sealed cookie changed by one character does not open.
    let mut forged = Browser::new(&app);
    let mut tampered = cookie.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    forged
        .cookies
        .insert("madoguchi_session".to_owned(), tampered);
    assert_eq!(forged.get("/drafts").await.status, 303);

    // Signing out revokes the session: the old cookie, replayed, finds it over.
    let out = browser.post("/sign-out", &pairs(&[("csrf", &csrf)])).await;
    assert_eq!(out.status, 303);
    assert_eq!(browser.get("/drafts").await.status, 303);
    let mut replay = Browser::new(&app);
    replay
        .cookies
        .insert("madoguchi_session".to_owned(), cookie);
    let expired = replay.get("/drafts").await;
    assert_eq!(expired.status, 401, "{}", expired.html);
    assert!(expired.html.contains("有効期限が切れました"));
    assert!(expired.html.contains("/sign-in?next=/drafts"));
}

#[actix_web::test]
async fn an_expired_access_token_is_refreshed_without_the_resident_noticing() {
    let mut settings = test_settings();
    // With the 5 s leeway, an access token lives one second: the next page after a pause must
    // refresh the pair.
    settings.identity.session.access_ttl_seconds = -4;
    let app = TestApp::with_settings(settings).await;
    let mut browser = Browser::new(&app);
    browser.sign_in("portal-refresh").await;
    let first = browser.cookies["madoguchi_session"].clone();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // Two tabs load a page at once, both with the expired access token: both refresh the same
    // pair, and both stay signed in (the second is not taken for a stolen copy).
    let mut other_tab = Browser::new(&app);
    other_tab
        .cookies
        .insert("madoguchi_session".to_owned(), first.clone());
    let (page, other) =
        futures_util::future::join(browser.get("/drafts"), other_tab.get("/drafts")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert_eq!(other.status, 200, "{}", other.html);
    let second = browser.cookies["madoguchi_session"].clone();
    assert_ne!(first, second, "the refreshed pair is written back");
    assert_ne!(first, other_tab.cookies["madoguchi_session"]);
    // The first cookie presented again after the grace period is a copy: the session ends, in
    // every tab.
    crate::auth::age_rotations(&app).await;
    let mut stale = Browser::new(&app);
    stale.cookies.insert("madoguchi_session".to_owned(), first);
    assert_eq!(stale.get("/drafts").await.status, 401);
    assert_eq!(browser.get("/drafts").await.status, 401);
    assert_eq!(other_tab.get("/drafts").await.status, 401);
}

/// When the session ends in the middle of an application (the refresh token expired), the page
/// says so and its sign-in leads back to the page the resident was on, with everything saved
/// by 「次へ」 still there; a 「次へ」 sent after the expiry leads back to its page too.
#[actix_web::test]
async fn the_session_expired_page_leads_back_to_the_saved_draft() {
    let app = TestApp::spawn().await;
    let (definition, data) = CATALOG
        .procedures
        .values()
        .map(|procedure| &procedure.definition)
        .filter(|definition| definition.assurance == Assurance::None)
        .filter(|definition| definition.pages.len() >= 2 && definition.pages[0].show_if.is_none())
        .find_map(|definition| {
            let data = example(definition)?;
            let saved_text = definition.pages[0].fields.iter().any(|field| {
                field.kind() == FieldType::Text && data.get(&field.id).is_some_and(Value::is_string)
            });
            (saved_text && !data.to_string().contains("01900000-")).then_some((definition, data))
        })
        .expect("a procedure of two pages or more with a text answer on the first");
    let mut browser = Browser::new(&app);
    browser.sign_in("portal-expiry").await;
    let first = start(&mut browser, &definition.id).await;
    let page = browser.get(&first).await;
    let mut sent = vec![("csrf".to_owned(), hidden(&page.html, "csrf"))];
    let mut files = Vec::new();
    for field in &definition.pages[0].fields {
        if let Some(value) = data.get(&field.id) {
            inputs(field, &field.id, value, &mut sent, &mut files);
        }
    }
    let saved = browser.post(&first, &sent).await;
    assert_eq!(saved.status, 303, "{}", saved.html);
    let next_page = saved.location.clone();
    let typed = definition.pages[0]
        .fields
        .iter()
        .filter(|field| field.kind() == FieldType::Text)
        .find_map(|field| data.get(&field.id).and_then(Value::as_str))
        .expect("a text answer")
        .to_owned();

    // The refresh token expires (the access token with it, as far as the session goes).
    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .unwrap();
    diesel::sql_query("UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
        .execute(&mut connection)
        .await
        .unwrap();

    // 「次へ」 on the next page after the expiry (in another tab: the page is shown once, then
    // the cookie no longer holds the tokens): the expired page, leading back to that page.
    let mut other_tab = Browser::new(&app);
    other_tab.cookies = browser.cookies.clone();
    let late = other_tab
        .send(
            TestRequest::post()
                .uri(&next_page)
                .insert_header(("referer", format!("http://localhost{next_page}")))
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload("csrf=x"),
        )
        .await;
    assert_eq!(late.status, 401, "{}", late.html);
    assert!(
        late.html
            .contains(&format!(r#"href="/sign-in?next={next_page}""#)),
        "{}",
        late.html
    );

    let expired = browser.get(&first).await;
    assert_eq!(expired.status, 401, "{}", expired.html);
    assert!(
        expired.html.contains("有効期限が切れました"),
        "{}",
        expired.html
    );
    assert!(expired.html.contains("下書きとして保存されています"));
    let sign_in_href = format!("/sign-in?next={first}");
    assert!(
        expired.html.contains(&format!(r#"href="{sign_in_href}""#)),
        "{}",
        expired.html
    );

    // Signing in again from it returns to the draft's page, with the saved answers.
    let sign_in = browser.get(&sign_in_href).await;
    assert_eq!(sign_in.status, 200, "{}", sign_in.html);
    assert_eq!(hidden(&sign_in.html, "next"), first);
    let signed = browser
        .post(
            "/sign-in/dev",
            &pairs(&[
                ("csrf", &hidden(&sign_in.html, "csrf")),
                ("next", &first),
                ("subject", "portal-expiry"),
            ]),
        )
        .await;
    assert_eq!(signed.status, 303, "{}", signed.html);
    assert_eq!(signed.location, first);
    let back = browser.get(&first).await;
    assert_eq!(back.status, 200, "{}", back.html);
    assert!(
        back.html.contains(&typed),
        "the saved answer is there: {}",
        back.html
    );
}

#[actix_web::test]
async fn the_sign_in_form_refuses_an_empty_holder_in_both_languages() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    for (lang, message) in [("ja", "カード保持者ID"), ("en", "card holder id")] {
        let page = browser.get(&format!("/sign-in?lang={lang}")).await;
        let refused = browser
            .post(
                "/sign-in/dev",
                &pairs(&[("csrf", &hidden(&page.html, "csrf")), ("subject", "")]),
            )
            .await;
        assert_eq!(refused.status, 422, "{}", refused.html);
        assert!(refused.html.contains(r##"<a href="#subject">"##));
        assert!(refused.html.contains(message), "{}", refused.html);
    }
    let off_site = browser.get("/sign-in?next=//evil.example/").await;
    assert!(!off_site.html.contains(r#"value="//evil"#));
    assert!(!off_site.html.contains(r#"href="//evil"#));
}

/// A `none` procedure through its pages, one application, and the double tap.
#[actix_web::test]
async fn a_procedure_without_the_card_is_applied_for_through_the_pages_once() {
    let app = TestApp::spawn().await;
    let definition = CATALOG
        .procedures
        .values()
        .map(|p| &p.definition)
        .filter(|d| d.assurance == Assurance::None && d.file_fields().is_empty())
        .find(|d| d.pages.len() > 1 && example(d).is_some())
        .expect("a none procedure of several pages");
    let data = example(definition).unwrap();
    let mut browser = Browser::new(&app);
    browser.sign_in("portal-none").await;
    let first = start(&mut browser, &definition.id).await;
    let draft = first.trim_end_matches("/pages/1").to_owned();
    fill_in(&mut browser, definition, &first, &data).await;

    // The draft is listed, and can be resumed: the first page shows what was saved.
    let drafts = browser.get("/drafts").await;
    assert!(drafts.html.contains(&definition.title.ja));

    let (received, form) = send(&mut browser, &format!("{draft}/confirm")).await;
    assert_eq!(count_applications(&app).await, 1);
    // The same form again (a double tap, the back button): the same answer, nothing new.
    let again = browser.post(&format!("{draft}/submit"), &form).await;
    assert_eq!(again.status, 303, "{}", again.html);
    let replayed = browser.get(&again.location).await;
    // The same page, but for its CSRF token, which is masked afresh on every page.
    let without_tokens = |html: &str| {
        let mut parts = html.split("name=\"csrf\" value=\"");
        let mut kept = parts.next().unwrap_or_default().to_owned();
        for part in parts {
            kept.push_str(part.split_once('"').map_or(part, |(_, rest)| rest));
        }
        kept
    };
    assert_eq!(
        without_tokens(&replayed.html),
        without_tokens(&received.html)
    );
    assert_eq!(count_applications(&app).await, 1);
}

/// A card-auth procedure with a repeatable group and a file: members added and removed with
/// the buttons (no script), a file uploaded as multipart, the card's facts shown read-only.
#[actix_web::test]
async fn a_card_procedure_with_members_and_a_file_is_applied_for_through_the_pages() {
    let app = TestApp::spawn().await;
    let has = |definition: &Definition, kind: FieldType| {
        definition
            .pages
            .iter()
            .flat_map(|page| page.fields.iter())
            .any(|field| field.kind() == kind)
    };
    let definition = CATALOG
        .procedures
        .values()
        .map(|p| &p.definition)
        .filter(|d| d.assurance == Assurance::CardAuth)
        .filter(|d| has(d, FieldType::Group) && has(d, FieldType::File))
        .find(|d| {
            example(d).is_some_and(|data| {
                d.pages.iter().flat_map(|p| p.fields.iter()).any(|field| {
                    field.kind() == FieldType::Group
                        && data
                            .get(&field.id)
                            .and_then(Value::as_array)
                            .is_some_and(|m| !m.is_empty())
                })
            })
        })
        .expect("a card-auth procedure with a group and a file");
    let data = example(definition).unwrap();
    let mut browser = Browser::new(&app);
    browser.sign_in("portal-card").await;
    let first = start(&mut browser, &definition.id).await;
    let draft = first.trim_end_matches("/pages/1").to_owned();

    // On the group's page: add two members, remove the first, without answering anything else.
    let (number, group) = definition
        .pages
        .iter()
        .enumerate()
        .find_map(|(index, page)| {
            page.fields
                .iter()
                .find(|field| field.kind() == FieldType::Group)
                .map(|field| (index + 1, field))
        })
        .unwrap();
    let group_page = format!("{draft}/pages/{number}");
    let page = browser.get(&group_page).await;
    if page.status == 200 {
        let csrf = hidden(&page.html, "csrf");
        let add = format!("add:{}", group.id);
        let mut once = pairs(&[("csrf", &csrf), ("action", &add)]);
        once.push((format!("{}.count", group.id), "0".to_owned()));
        let added = browser.post_multipart(&group_page, &once, &[]).await;
        assert_eq!(added.status, 200, "{}", added.html);
        // Enter in a text box presses the first submit button: it must be 「次へ」.
        let form = added
            .html
            .find(&format!(r#"action="{group_page}""#))
            .unwrap();
        let first_button = form + added.html[form..].find(r#"type="submit""#).unwrap();
        assert!(
            added.html[first_button..first_button + 60].contains(r#"value="next""#),
            "{}",
            &added.html[first_button..]
        );
        assert!(added.html.contains(&format!(r#"id="f-{}-0""#, group.id)));
        let mut twice = pairs(&[("csrf", &csrf), ("action", &add)]);
        twice.push((format!("{}.count", group.id), "1".to_owned()));
        let added = browser.post_multipart(&group_page, &twice, &[]).await;
        assert!(added.html.contains(&format!(r#"id="f-{}-1""#, group.id)));
        let remove = format!("remove:{}:0", group.id);
        let mut removing = pairs(&[("csrf", &csrf), ("action", &remove)]);
        removing.push((format!("{}.count", group.id), "2".to_owned()));
        let removed = browser.post_multipart(&group_page, &removing, &[]).await;
        assert!(removed.html.contains(&format!(r#"id="f-{}-0""#, group.id)));
        assert!(!removed.html.contains(&format!(r#"id="f-{}-1""#, group.id)));
    }

    fill_in(&mut browser, definition, &first, &data).await;
    // The applicant's name comes from the card, read-only, with its source.
    let applicant_page = definition
        .pages
        .iter()
        .position(|page| page.fields.iter().any(|f| f.id == "applicant_name"));
    if let Some(index) = applicant_page {
        let shown = browser.get(&format!("{draft}/pages/{}", index + 1)).await;
        assert!(shown.html.contains("窓口\u{3000}試子"), "{}", shown.html);
        assert!(shown.html.contains("マイナンバーカードで確認済み"));
        assert!(!shown.html.contains(r#"name="applicant_name""#));
    }
    let confirm = browser.get(&format!("{draft}/confirm")).await;
    for file in definition.file_fields() {
        if data.to_string().contains(&format!("\"{}\"", file.id)) {
            assert!(confirm.html.contains(&file.label.as_ref().unwrap().ja));
        }
    }
    send(&mut browser, &format!("{draft}/confirm")).await;
    assert_eq!(count_applications(&app).await, 1);
}

#[actix_web::test]
async fn bad_answers_come_back_with_an_error_summary_in_japanese_and_english() {
    let app = TestApp::spawn().await;
    let definition = CATALOG
        .procedures
        .values()
        .map(|p| &p.definition)
        .find(|d| {
            d.assurance == Assurance::None
                && d.pages[0]
                    .fields
                    .iter()
                    .any(|f| f.kind() == FieldType::Phone && f.required)
        })
        .expect("a none procedure asking a phone number on its first page");
    let phone = definition.pages[0]
        .fields
        .iter()
        .find(|f| f.kind() == FieldType::Phone)
        .unwrap();
    let mut browser = Browser::new(&app);
    browser.sign_in("portal-errors").await;
    let first = start(&mut browser, &definition.id).await;
    for (lang, words) in [
        ("ja", "入力内容を確認してください"),
        ("en", "There is a problem"),
    ] {
        let page = browser.get(&format!("{first}?lang={lang}")).await;
        let sent = pairs(&[("csrf", &hidden(&page.html, "csrf")), (&phone.id, "12345")]);
        let refused = browser.post(&first, &sent).await;
        assert_eq!(refused.status, 422, "{}", refused.html);
        assert!(refused.html.contains(words), "{lang}: {}", refused.html);
        assert!(
            refused
                .html
                .contains(&format!(r##"<a href="#f-{}">"##, phone.id))
        );
        assert!(refused.html.contains(&format!(r#"id="f-{}""#, phone.id)));
        assert!(refused.html.contains(r#"aria-invalid="true""#));
        assert!(
            refused.html.contains(r#"value="12345""#),
            "what was typed stays"
        );
        assert_eq!(refused.html.matches("<h1").count(), 1);
        let label = phone.label.as_ref().unwrap();
        assert!(
            refused
                .html
                .contains(if lang == "ja" { &label.ja } else { &label.en })
        );
    }
    // Without the token, nothing is saved.
    let forged = browser
        .post(&first, &pairs(&[(&phone.id, "0312345678")]))
        .await;
    assert_eq!(forged.status, 403);
}

#[actix_web::test]
async fn a_resident_cannot_open_anothers_draft() {
    let app = TestApp::spawn().await;
    let (procedure, _) = crate::helpers::sample_application();
    let mut owner = Browser::new(&app);
    owner.sign_in("portal-owner").await;
    let first = start(&mut owner, &procedure).await;
    let draft = first.trim_end_matches("/pages/1").to_owned();
    let mut stranger = Browser::new(&app);
    stranger.sign_in("portal-stranger").await;
    for address in [first.clone(), format!("{draft}/confirm")] {
        let refused = stranger.get(&address).await;
        assert_eq!(refused.status, 404, "{address}");
        assert!(refused.html.contains("ページが見つかりません"));
    }
    let page = stranger.get("/drafts").await;
    let posted = stranger
        .post(&first, &pairs(&[("csrf", &hidden(&page.html, "csrf"))]))
        .await;
    assert_eq!(posted.status, 404);
    assert_eq!(owner.get(&first).await.status, 200);
    for malformed in ["/drafts/not-a-draft/pages/1", &format!("{draft}/pages/x")] {
        let missing = owner.get(malformed).await;
        assert_eq!(missing.status, 404, "{malformed}");
        assert!(
            missing.html.contains("ページが見つかりません"),
            "{malformed}"
        );
    }
}

/// Every procedure's first question page and its confirm page, from a valid example saved as a
/// draft (through the API, as another device would), in both languages for the first page.
#[actix_web::test]
async fn every_procedure_renders_its_first_page_and_its_confirm_page() {
    let mut settings = test_settings();
    settings.submissions.max_drafts_per_resident = 1000;
    let app = TestApp::with_settings(settings).await;
    let token = app.resident("portal-all").await;
    let mut browser = Browser::new(&app);
    browser.sign_in("portal-all").await;
    assert_eq!(CATALOG.procedures.len(), 173);
    for (id, procedure) in &CATALOG.procedures {
        let definition = &procedure.definition;
        let example = definition
            .examples
            .iter()
            .find(|example| example.valid)
            .unwrap_or_else(|| panic!("{id} has a valid example"));
        let mut data = example.data.clone();
        // An example written for a fixed "today" may have dates out of range now: those
        // answers are left out (the page then asks for them).
        let mut draft = Value::Null;
        for _ in 0..2 {
            let (status, body) = app
                .json(
                    TestRequest::post()
                        .uri("/api/v1/drafts")
                        .insert_header(crate::helpers::bearer(&token))
                        .set_json(serde_json::json!({"procedure_id": id, "data": data})),
                )
                .await;
            if status == 201 {
                draft = body;
                break;
            }
            assert_eq!(status, 422, "{id}: {body}");
            for error in body["errors"].as_array().unwrap() {
                let field = error["path"].as_str().unwrap().split('/').nth(1).unwrap();
                data.as_object_mut().unwrap().remove(field);
            }
        }
        assert!(draft.is_object(), "{id}: no draft could be saved");
        let complete = data == example.data
            && definition.assurance != Assurance::CardSign
            && example.as_of.is_none()
            && !data.to_string().contains("01900000-");
        let draft = draft["id"].as_str().unwrap();
        for lang in ["ja", "en"] {
            let first = browser
                .get(&format!("/drafts/{draft}/pages/1?lang={lang}"))
                .await;
            let first = if first.status == 303 {
                browser.get(&first.location).await
            } else {
                first
            };
            assert_eq!(first.status, 200, "{id} in {lang}: {}", first.html);
            assert_eq!(first.html.matches("<h1").count(), 1, "{id}");
            assert!(first.html.contains(r#"name="csrf""#), "{id}");
        }
        let confirm = browser
            .get(&format!("/drafts/{draft}/confirm?lang=ja"))
            .await;
        assert_eq!(confirm.status, 200, "{id}: {}", confirm.html);
        assert!(confirm.html.contains("申請内容の確認"), "{id}");
        assert!(confirm.html.contains("変更"), "{id}");
        if complete {
            assert!(
                !confirm.html.contains("まだ申請できません"),
                "{id}: a valid example is complete: {}",
                confirm.html
            );
            assert!(confirm.html.contains(r#"name="idempotency_key""#), "{id}");
        }
    }
}

/// A card-sign procedure: the page shows what will be signed, the configured dev signer signs
/// that exact payload with the test PKI's card, and the application carries the signature.
#[actix_web::test]
async fn a_card_sign_procedure_is_signed_by_the_dev_signer_and_sent() {
    let mut settings = crate::helpers::settings_with_test_pki();
    let pki = crate::helpers::test_pki();
    settings.portal.signer = "dev".to_owned();
    settings.portal.dev_signer_certificate = pki.join("sign-alice.pem").display().to_string();
    settings.portal.dev_signer_key = pki.join("sign-alice.key").display().to_string();
    let app = TestApp::with_settings(settings).await;
    let (procedure, data) = crate::helpers::samples(Assurance::CardSign, 1).remove(0);
    let definition = &CATALOG.get(&procedure).unwrap().definition;
    let mut browser = Browser::new(&app);
    browser.sign_in("portal-sign").await;
    let first = start(&mut browser, &procedure).await;
    let draft = first.trim_end_matches("/pages/1").to_owned();
    fill_in(&mut browser, definition, &first, &data).await;

    let confirm = browser.get(&format!("{draft}/confirm")).await;
    assert!(confirm.html.contains("署名へ進む"), "{}", confirm.html);
    assert!(confirm.html.contains(&format!(r#"action="{draft}/sign""#)));
    assert!(
        !confirm
            .html
            .contains(&format!(r#"action="{draft}/submit""#)),
        "no sending without signing"
    );
    let key = hidden(&confirm.html, "idempotency_key");
    let signing = browser
        .post(
            &format!("{draft}/sign"),
            &pairs(&[
                ("csrf", &hidden(&confirm.html, "csrf")),
                ("idempotency_key", &key),
            ]),
        )
        .await;
    assert_eq!(signing.status, 200, "{}", signing.html);
    assert!(signing.html.contains("署名する内容"));
    assert!(signing.html.contains(&format!(
        "&quot;procedure_id&quot;: &quot;{procedure}&quot;"
    )));
    let nonce = hidden(&signing.html, "signing_nonce");
    assert!(
        signing.html.contains(&nonce),
        "the nonce is part of what is shown"
    );
    let sent = browser
        .post(
            &format!("{draft}/submit"),
            &pairs(&[
                ("csrf", &hidden(&signing.html, "csrf")),
                ("idempotency_key", &key),
                ("signing_nonce", &nonce),
            ]),
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.html);
    let received = browser.get(&sent.location).await;
    assert!(
        received.html.contains("申請を受け付けました"),
        "{}",
        received.html
    );
    assert_eq!(count_applications(&app).await, 1);
    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .unwrap();
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    let signatures: Vec<Count> =
        diesel::sql_query("SELECT count(*) AS count FROM submission_signatures")
            .load(&mut connection)
            .await
            .unwrap();
    assert_eq!(signatures[0].count, 1, "the signature is stored with it");
}

/// A page's one simple follow-up carries its condition for the reveal script, which is served
/// from this origin with JSON Logic; without a script it is shown with a note of when it applies.
#[actix_web::test]
async fn a_simple_follow_up_can_be_revealed_by_the_script() {
    let app = TestApp::spawn().await;
    let (definition, number, follow_up) = CATALOG
        .procedures
        .values()
        .map(|p| &p.definition)
        .filter(|d| d.assurance == Assurance::None)
        .find_map(|d| {
            d.pages.iter().enumerate().find_map(|(index, page)| {
                if index > 0 || page.show_if.is_some() {
                    return None;
                }
                page.fields.iter().find_map(|field| {
                    let condition = field.show_if.as_ref()?;
                    let read = madoguchi::forms::logic::variables(condition);
                    let [name] = read.as_slice() else { return None };
                    let source = page.fields.iter().find(|f| &f.id == name)?;
                    matches!(
                        source.kind(),
                        FieldType::Radio | FieldType::Select | FieldType::Boolean
                    )
                    .then_some((d, index + 1, field))
                })
            })
        })
        .expect("a none procedure whose first page has a simple follow-up");
    let mut browser = Browser::new(&app);
    browser.sign_in("portal-reveal").await;
    let first = start(&mut browser, &definition.id).await;
    assert!(first.ends_with(&format!("/pages/{number}")));
    let page = browser.get(&first).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("data-show-if=\"{"), "{}", page.html);
    assert!(page.html.contains(&format!(r#"id="f-{}""#, follow_up.id)));
    assert!(page.html.contains(r#"class="hint conditional""#));
    let scripts: Vec<&str> = page
        .html
        .match_indices(r#"<script src=""#)
        .map(|(at, marker)| {
            let start = at + marker.len();
            &page.html[start..start + page.html[start..].find('"').unwrap()]
        })
        .collect();
    assert_eq!(scripts.len(), 2, "{scripts:?}");
    for script in scripts {
        let served = browser.get(script).await;
        assert_eq!(served.status, 200, "{script}");
        assert!(served.html.contains("jsonLogic"), "{script}");
    }
}

/// A place that must be in the city (`prefill: city`) starts with the city's address and the
/// postal code's first digits from the configuration, still editable; other addresses start
/// without them, and what the resident typed instead is what is kept.
#[actix_web::test]
async fn a_place_in_the_city_starts_with_the_citys_address_and_stays_editable() {
    let mut settings = test_settings();
    settings.portal.city_postal_code = "922".to_owned();
    settings.portal.city_address = String::new();
    let app = TestApp::with_settings(settings).await;
    let procedure = "kosodate-yorisoi-omutsu";
    let field = "other_delivery_address";
    let definition = &CATALOG.get(procedure).unwrap().definition;
    let number = definition
        .pages
        .iter()
        .position(|page| page.fields.iter().any(|f| f.id == field))
        .unwrap()
        + 1;
    let mut browser = Browser::new(&app);
    browser.sign_in("portal-prefill").await;
    let first = start(&mut browser, procedure).await;
    let draft = first.trim_end_matches("/pages/1").to_owned();
    let place = browser.get(&format!("{draft}/pages/{number}")).await;
    assert_eq!(place.status, 200, "{}", place.html);
    assert!(
        place
            .html
            .contains(&format!(r#"name="{field}.postal_code" value="922""#)),
        "{}",
        place.html
    );
    assert!(
        place
            .html
            .contains(&format!(r#"name="{field}.address" value="石川県加賀市""#))
    );
    assert!(
        place
            .html
            .contains(r#"name="applicant_address.postal_code" value="""#),
        "the applicant's own address is not assumed: {}",
        place.html
    );

    // The resident completes it: their answer is kept and shown, not the city's start.
    let mut data = example(definition).expect("an example");
    data["delivery_address_same"] = Value::String("other".to_owned());
    data[field] =
        serde_json::json!({"postal_code": "922-0423", "address": "石川県加賀市山代温泉北部2-1"});
    fill_in(&mut browser, definition, &first, &data).await;
    let again = browser.get(&format!("{draft}/pages/{number}")).await;
    assert!(again.html.contains("山代温泉北部2-1"), "{}", again.html);
    assert!(
        !again
            .html
            .contains(&format!(r#"name="{field}.postal_code" value="922""#))
    );
    let confirm = browser.get(&format!("{draft}/confirm")).await;
    assert!(confirm.html.contains("山代温泉北部2-1"), "{}", confirm.html);
}
