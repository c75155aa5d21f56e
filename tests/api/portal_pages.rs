//! The portal's pages after applying, driven as a browser would (cookies, the forms' hidden
//! fields): 申請履歴, an application's page with who viewed it, a return answered through the
//! correction page, withdrawal, the account's email change through the real SMTP fixture, and
//! another resident's application as the 404 page.

use std::time::Duration;

use actix_web::test::TestRequest;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use madoguchi::forms::Assurance;
use madoguchi::forms::model::{Field, FieldType, FileKind};
use serde_json::{Value, json};

use crate::helpers::{CATALOG, TestApp, bearer, settings_with_test_pki};
use crate::portal_flow::{Browser, hidden, inputs, pairs};

/// A procedure anyone signed in may apply for, routed to its division's queue, whose example
/// needs no file, with two plain text answers a clerk can comment on and at least one more.
struct Returnable {
    procedure: String,
    division: String,
    data: Value,
    commented: [String; 2],
    other: String,
}

fn returnable() -> Returnable {
    returnable_of(Assurance::None)
}

fn returnable_of(assurance: Assurance) -> Returnable {
    let plain = [
        FieldType::Text,
        FieldType::Phone,
        FieldType::Kana,
        FieldType::Email,
    ];
    CATALOG
        .procedures
        .values()
        .filter(|p| p.definition.assurance == assurance && p.definition.routing.is_empty())
        .find_map(|p| {
            let example = p
                .definition
                .examples
                .iter()
                .find(|e| e.valid && e.as_of.is_none())?;
            if example.data.to_string().contains("01900000-") {
                return None;
            }
            let answered: Vec<String> = p
                .definition
                .pages
                .iter()
                .flat_map(|page| page.fields.iter())
                .filter(|field| field.kind() != FieldType::Info)
                .filter(|field| example.data.get(&field.id).is_some())
                .map(|field| field.id.clone())
                .collect();
            let simple: Vec<String> = p
                .definition
                .pages
                .iter()
                .flat_map(|page| page.fields.iter())
                .filter(|field| plain.contains(&field.kind()))
                .filter(|field| field.show_if.is_none() && field.required_if.is_none())
                .filter(|field| example.data.get(&field.id).is_some_and(Value::is_string))
                .map(|field| field.id.clone())
                .collect();
            let [first, second, ..] = simple.as_slice() else {
                return None;
            };
            let other = answered.iter().find(|id| *id != first && *id != second)?;
            Some(Returnable {
                procedure: p.definition.id.clone(),
                division: p.definition.division.clone(),
                data: example.data.clone(),
                commented: [first.clone(), second.clone()],
                other: other.clone(),
            })
        })
        .expect("a procedure with two plain answers to comment on")
}

async fn apply(app: &TestApp, token: &str, procedure: &str, data: &Value, key: &str) -> String {
    let (status, created) = app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/procedures/{procedure}/submissions"))
                .insert_header(bearer(token))
                .insert_header(("idempotency-key", key.to_owned()))
                .set_json(json!({ "data": data })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().expect("id").to_owned()
}

fn staff_post(path: &str, token: &str, body: Value) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header(bearer(token))
        .set_json(body)
}

/// A clerk of `division` takes the next application of its queue.
async fn claim(app: &TestApp, clerk: &str, division: &str) {
    let (status, claimed) = app
        .json(staff_post(
            &format!("/api/v1/staff/queues/{division}/claim"),
            clerk,
            json!({}),
        ))
        .await;
    assert_eq!(status, 200, "{claimed}");
}

async fn transition(app: &TestApp, clerk: &str, id: &str, body: Value) {
    let (status, answer) = app
        .json(staff_post(
            &format!("/api/v1/staff/submissions/{id}/transitions"),
            clerk,
            body,
        ))
        .await;
    assert_eq!(status, 200, "{answer}");
}

/// The application as its resident's API sees it.
async fn mine(app: &TestApp, token: &str, id: &str) -> Value {
    let (status, detail) = app
        .json(
            TestRequest::get()
                .uri(&format!("/api/v1/submissions/{id}"))
                .insert_header(bearer(token)),
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    detail
}

/// The JSON pointer of the first string equal to `needle` in `value`.
fn pointer_to(value: &Value, needle: &str, at: &str) -> Option<String> {
    match value {
        Value::String(text) if text == needle => Some(at.to_owned()),
        Value::Object(map) => map
            .iter()
            .find_map(|(key, inner)| pointer_to(inner, needle, &format!("{at}/{key}"))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, inner)| pointer_to(inner, needle, &format!("{at}/{index}"))),
        _ => None,
    }
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

#[actix_web::test]
async fn the_history_lists_only_my_applications_newest_first_and_my_drafts() {
    let app = TestApp::spawn().await;
    let (procedure, data) = crate::helpers::sample_application();
    let alice = app.resident("pages-alice").await;
    let bob = app.resident("pages-bob").await;
    let first = apply(&app, &alice, &procedure, &data, "a1").await;
    let second = apply(&app, &alice, &procedure, &data, "a2").await;
    let theirs = apply(&app, &bob, &procedure, &data, "b1").await;
    let reference = |detail: Value| detail["reference"].as_str().unwrap().to_owned();
    let first_ref = reference(mine(&app, &alice, &first).await);
    let second_ref = reference(mine(&app, &alice, &second).await);
    let their_ref = reference(mine(&app, &bob, &theirs).await);

    let mut browser = Browser::new(&app);
    browser.sign_in("pages-alice").await;
    let page = browser.get("/applications").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert_eq!(count(&page.html, "<h1"), 1);
    assert!(page.html.contains(&first_ref) && page.html.contains(&second_ref));
    assert!(
        !page.html.contains(&their_ref),
        "another resident's application"
    );
    assert!(
        page.html.find(&second_ref) < page.html.find(&first_ref),
        "newest first"
    );
    assert!(page.html.contains("送信済"), "{}", page.html);
    assert!(
        page.html
            .contains(&format!(r#"href="/applications/{first}""#))
    );
    let english = browser.get("/applications?lang=en").await;
    assert!(english.html.contains("Submitted"), "{}", english.html);
    // A draft started on the pages is listed with its way back in.
    let start = browser.get(&format!("/procedures/{procedure}/apply")).await;
    let csrf = hidden(&start.html, "csrf");
    let started = browser
        .post(
            &format!("/procedures/{procedure}/apply"),
            &pairs(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.html);
    let with_draft = browser.get("/applications").await;
    assert!(
        with_draft
            .html
            .contains(&format!(r#"href="{}""#, started.location)),
        "the draft resumes from the history: {}",
        with_draft.html
    );
}

#[actix_web::test]
async fn another_residents_application_is_the_404_page_everywhere() {
    let app = TestApp::spawn().await;
    let (procedure, data) = crate::helpers::sample_application();
    let bob = app.resident("pages-bob-2").await;
    let theirs = apply(&app, &bob, &procedure, &data, "b2").await;
    let mut browser = Browser::new(&app);
    browser.sign_in("pages-alice-2").await;
    for path in [
        format!("/applications/{theirs}"),
        format!("/applications/{theirs}/withdraw"),
        format!("/applications/{theirs}/correct"),
        "/applications/not-an-id".to_owned(),
        format!("/applications/{}", uuid::Uuid::new_v4()),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.html);
        assert!(page.html.contains("ページが見つかりません"), "{path}");
    }
    // Nor can a form post reach it.
    let own = browser.get("/account").await;
    let csrf = hidden(&own.html, "csrf");
    let refused = browser
        .post(
            &format!("/applications/{theirs}/withdraw"),
            &pairs(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(refused.status, 404, "{}", refused.html);
    assert_eq!(mine(&app, &bob, &theirs).await["status"], "submitted");
}

#[actix_web::test]
async fn the_application_page_shows_who_viewed_it_and_why_a_my_number_was_revealed() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let subject = "card-9502";
    let resident = app.resident(subject).await;
    let procedure = CATALOG
        .procedures
        .values()
        .find(|p| {
            p.definition.routing.is_empty()
                && p.definition.examples.iter().any(|e| {
                    let text = e.data.to_string();
                    e.valid
                        && e.as_of.is_none()
                        && text.contains("123456789018")
                        && !text.contains("01900000-")
                })
        })
        .expect("a procedure collecting a My Number");
    let data = procedure
        .definition
        .examples
        .iter()
        .find(|e| e.valid && e.as_of.is_none() && e.data.to_string().contains("123456789018"))
        .expect("example")
        .data
        .clone();
    let (signature, nonce) = app
        .card_signature(&resident, &procedure.definition.id, &data, "sign-alice")
        .await;
    let (status, created) = app
        .json(
            TestRequest::post()
                .uri(&format!(
                    "/api/v1/procedures/{}/submissions",
                    procedure.definition.id
                ))
                .insert_header(bearer(&resident))
                .insert_header(("idempotency-key", "pages-mn"))
                .set_json(json!({"data": data, "signature": signature, "signing_nonce": nonce})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();

    let mut browser = Browser::new(&app);
    browser.sign_in(subject).await;
    let before = browser.get(&format!("/applications/{id}")).await;
    assert_eq!(before.status, 200, "{}", before.html);
    assert_eq!(count(&before.html, "<h1"), 1);
    assert!(before.html.contains("誰が私の情報を見たか"));
    assert!(before.html.contains("まだ誰もこの申請を開いていません"));
    assert!(
        before.html.contains("********9018"),
        "masked: {}",
        before.html
    );
    assert!(!before.html.contains("123456789018"), "never the number");

    let division = &procedure.definition.division;
    let clerk = app.staff(division, "clerk").await;
    let (status, opened) = app
        .json(
            TestRequest::get()
                .uri(&format!("/api/v1/staff/submissions/{id}"))
                .insert_header(bearer(&clerk)),
        )
        .await;
    assert_eq!(status, 200, "{opened}");
    let viewed = browser.get(&format!("/applications/{id}")).await;
    assert_eq!(count(&viewed.html, r#"class="access-entry""#), 1);
    assert!(viewed.html.contains("申請内容の閲覧"), "{}", viewed.html);
    assert!(viewed.html.contains("職員 clerk"));
    let division_name = &CATALOG
        .organisation
        .divisions
        .get(division)
        .expect("division")
        .name;
    assert!(
        viewed
            .html
            .contains(&format!("職員 clerk（{}）", division_name.ja)),
        "the staff member's division: {}",
        viewed.html
    );

    claim(&app, &clerk, division).await;
    let field_path = pointer_to(&data, "123456789018", "").expect("the My Number's pointer");
    let (status, revealed) = app
        .json(staff_post(
            &format!("/api/v1/staff/submissions/{id}/reveal"),
            &clerk,
            json!({"field_path": field_path, "reason": "住基ネットとの照合のため"}),
        ))
        .await;
    assert_eq!(status, 200, "{revealed}");
    let after = browser.get(&format!("/applications/{id}")).await;
    assert!(after.html.contains("マイナンバーの表示"), "{}", after.html);
    assert!(after.html.contains("住基ネットとの照合のため"));
    assert!(!after.html.contains("123456789018"), "still masked");
    let english = browser.get(&format!("/applications/{id}?lang=en")).await;
    assert!(english.html.contains("Who viewed my data, and why"));
    assert!(english.html.contains("Revealed a My Number"));
    assert!(english.html.contains(&division_name.en));
}

#[actix_web::test]
async fn a_return_with_two_comments_is_corrected_on_a_page_of_just_those_fields_once() {
    let app = TestApp::spawn().await;
    let sample = returnable();
    let subject = "pages-return";
    let resident = app.resident(subject).await;
    let id = apply(&app, &resident, &sample.procedure, &sample.data, "r1").await;
    let clerk = app.staff(&sample.division, "clerk").await;
    claim(&app, &clerk, &sample.division).await;
    let [first, second] = &sample.commented;
    transition(
        &app,
        &clerk,
        &id,
        json!({
            "action": "return",
            "reason": "記載内容の確認をお願いします",
            "field_comments": [
                {"path": format!("/{first}"), "comment": "一つ目の項目を確認してください"},
                {"path": format!("/{second}"), "comment": "二つ目の項目を確認してください"},
            ],
        }),
    )
    .await;

    let mut browser = Browser::new(&app);
    browser.sign_in(subject).await;
    let page = browser.get(&format!("/applications/{id}")).await;
    assert!(page.html.contains("差し戻されています"), "{}", page.html);
    assert!(page.html.contains("一つ目の項目を確認してください"));
    assert!(
        page.html
            .contains(&format!(r#"href="/applications/{id}/correct""#))
    );

    let form = browser.get(&format!("/applications/{id}/correct")).await;
    assert_eq!(form.status, 200, "{}", form.html);
    assert_eq!(count(&form.html, "<h1"), 1);
    for field in [first, second] {
        assert!(
            form.html.contains(&format!(r#"name="{field}""#)),
            "{field} is on the page: {}",
            form.html
        );
    }
    assert!(
        !form.html.contains(&format!(r#"name="{}""#, sample.other))
            && !form.html.contains(&format!(r#"name="{}."#, sample.other)),
        "only the commented fields: {}",
        form.html
    );
    assert!(form.html.contains("二つ目の項目を確認してください"));
    let csrf = hidden(&form.html, "csrf");
    let key = hidden(&form.html, "idempotency_key");
    let definition = &CATALOG
        .get(&sample.procedure)
        .expect("procedure")
        .definition;
    let field_of = |id: &str| {
        definition
            .pages
            .iter()
            .flat_map(|page| page.fields.iter())
            .find(|field| field.id == id)
            .expect("field")
            .clone()
    };

    // A bad answer comes back with the error summary, nothing sent.
    let mut bad = pairs(&[("csrf", &csrf), ("idempotency_key", &key)]);
    bad.push((first.clone(), "\u{202e}bad".to_owned()));
    let mut files = Vec::new();
    inputs(
        &field_of(second),
        second,
        &sample.data[second.as_str()],
        &mut bad,
        &mut files,
    );
    let refused = browser
        .post(&format!("/applications/{id}/correct"), &bad)
        .await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(refused.html.contains(r#"class="error-summary""#));
    assert_eq!(mine(&app, &resident, &id).await["status"], "returned");

    let mut good = pairs(&[("csrf", &csrf), ("idempotency_key", &key)]);
    for field in [first, second] {
        inputs(
            &field_of(field),
            field,
            &sample.data[field.as_str()],
            &mut good,
            &mut files,
        );
    }
    // The double tap: the same form twice at once is one resubmission, and both taps land on
    // the application's page. The row is held locked meanwhile, so that both taps are inside
    // the resubmission at the same moment: the second must wait for the first and replay its
    // answer (without the key it would find the application no longer returned: a 409).
    let mut holder = AsyncPgConnection::establish(&app.database.url)
        .await
        .expect("connect");
    diesel::sql_query("BEGIN")
        .execute(&mut holder)
        .await
        .expect("begin");
    diesel::sql_query(format!(
        "SELECT 1 FROM submissions WHERE id = '{id}' FOR UPDATE"
    ))
    .execute(&mut holder)
    .await
    .expect("lock the row");
    let release = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        diesel::sql_query("COMMIT")
            .execute(&mut holder)
            .await
            .expect("commit");
    };
    let body = serde_urlencoded::to_string(&good).expect("form");
    let tap = || {
        TestRequest::post()
            .uri(&format!("/applications/{id}/correct"))
            .insert_header(("cookie", browser.cookie_header()))
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .set_payload(body.clone())
    };
    let (first_tap, second_tap, ()) =
        futures_util::future::join3(app.call(tap()), app.call(tap()), release).await;
    for tapped in [first_tap, second_tap] {
        assert_eq!(tapped.status().as_u16(), 303);
        assert_eq!(
            tapped
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok()),
            Some(format!("/applications/{id}").as_str())
        );
    }
    // And later, from the back button: still the same answer.
    let again = browser
        .post(&format!("/applications/{id}/correct"), &good)
        .await;
    assert_eq!(again.status, 303, "{}", again.html);

    let detail = mine(&app, &resident, &id).await;
    assert_eq!(detail["status"], "submitted", "back in the queue");
    assert_eq!(detail["revision"], 2, "one resubmission: {detail}");
    let resubmissions = detail["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|event| event["from_status"] == "returned")
        .count();
    assert_eq!(resubmissions, 1);
    let (status, queue) = app
        .json(
            TestRequest::get()
                .uri(&format!(
                    "/api/v1/staff/queues/{}/submissions",
                    sample.division
                ))
                .insert_header(bearer(&clerk)),
        )
        .await;
    assert_eq!(status, 200, "{queue}");
    assert!(
        queue.to_string().contains(&id),
        "in its queue again: {queue}"
    );
    let shown = browser.get(&format!("/applications/{id}")).await;
    assert!(shown.html.contains("送信済") && !shown.html.contains("差し戻されています"));
}

/// A card-sign application of `subject`, signed with the test PKI's card through the API and
/// returned by a clerk with a comment on its first plain answer: (the sample, the resident's
/// token, the application's id).
async fn returned_card_sign(app: &TestApp, subject: &str) -> (Returnable, String, String) {
    let sample = returnable_of(Assurance::CardSign);
    let resident = app.resident(subject).await;
    let (signature, nonce) = app
        .card_signature(&resident, &sample.procedure, &sample.data, "sign-alice")
        .await;
    let (status, created) = app
        .json(
            TestRequest::post()
                .uri(&format!(
                    "/api/v1/procedures/{}/submissions",
                    sample.procedure
                ))
                .insert_header(bearer(&resident))
                .insert_header(("idempotency-key", "signed-1"))
                .set_json(
                    json!({"data": sample.data, "signature": signature, "signing_nonce": nonce}),
                ),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let clerk = app.staff(&sample.division, "clerk").await;
    claim(app, &clerk, &sample.division).await;
    let [first, _] = &sample.commented;
    transition(
        app,
        &clerk,
        &id,
        json!({
            "action": "return",
            "reason": "記載内容の確認をお願いします",
            "field_comments": [{"path": format!("/{first}"), "comment": "この項目を確認してください"}],
        }),
    )
    .await;
    (sample, resident, id)
}

/// Without a signer for the pages (production today), a card-sign return says to correct it
/// from an app that signs with the card, and offers no button that could only fail.
#[actix_web::test]
async fn without_a_signer_a_card_sign_return_says_where_to_correct_it() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let subject = "pages-return-unsigned";
    let (sample, resident, id) = returned_card_sign(&app, subject).await;
    let mut browser = Browser::new(&app);
    browser.sign_in(subject).await;
    let form = browser.get(&format!("/applications/{id}/correct")).await;
    assert_eq!(form.status, 200, "{}", form.html);
    assert!(
        form.html
            .contains("マイナンバーカードに対応したアプリから訂正してください"),
        "{}",
        form.html
    );
    assert!(!form.html.contains("署名へ進む") && !form.html.contains(r#"value="send""#));
    // The form sent anyway (an old page): refused with a page, nothing resubmitted.
    let [first, _] = &sample.commented;
    let mut sent = pairs(&[
        ("csrf", &hidden(&form.html, "csrf")),
        ("idempotency_key", &hidden(&form.html, "idempotency_key")),
    ]);
    sent.push((
        first.clone(),
        sample.data[first.as_str()]
            .as_str()
            .unwrap_or("x")
            .to_owned(),
    ));
    let refused = browser
        .post(&format!("/applications/{id}/correct"), &sent)
        .await;
    assert!(
        (400..500).contains(&refused.status),
        "{}: {}",
        refused.status,
        refused.html
    );
    assert_eq!(mine(&app, &resident, &id).await["status"], "returned");
}

/// A returned `card-sign` application is signed again: the correction page leads to a page
/// showing exactly what will be signed (the corrected answers, the form's version, the account
/// and a fresh nonce), the configured dev signer signs that payload with the test PKI's card (a
/// real CMS, verified as a card's), and the resubmission carries the new signature, once.
#[actix_web::test]
async fn a_returned_card_sign_application_is_signed_again_when_corrected() {
    let mut settings = settings_with_test_pki();
    let pki = crate::helpers::test_pki();
    settings.portal.signer = "dev".to_owned();
    settings.portal.dev_signer_certificate = pki.join("sign-alice.pem").display().to_string();
    settings.portal.dev_signer_key = pki.join("sign-alice.key").display().to_string();
    let app = TestApp::with_settings(settings).await;
    let subject = "pages-return-signed";
    let (sample, resident, id) = returned_card_sign(&app, subject).await;
    let [first, _] = &sample.commented;
    let mut browser = Browser::new(&app);
    browser.sign_in(subject).await;
    let form = browser.get(&format!("/applications/{id}/correct")).await;
    assert_eq!(form.status, 200, "{}", form.html);
    assert!(form.html.contains("署名へ進む"), "{}", form.html);
    let key = hidden(&form.html, "idempotency_key");
    let definition = &CATALOG
        .get(&sample.procedure)
        .expect("procedure")
        .definition;
    let field = definition
        .pages
        .iter()
        .flat_map(|page| page.fields.iter())
        .find(|field| field.id == *first)
        .expect("field");
    let mut corrected = pairs(&[
        ("csrf", &hidden(&form.html, "csrf")),
        ("idempotency_key", &key),
    ]);
    let mut files = Vec::new();
    inputs(
        field,
        first,
        &sample.data[first.as_str()],
        &mut corrected,
        &mut files,
    );
    let signing = browser
        .post(&format!("/applications/{id}/correct"), &corrected)
        .await;
    assert_eq!(signing.status, 200, "{}", signing.html);
    assert!(signing.html.contains("署名する内容"), "{}", signing.html);
    assert!(signing.html.contains(&format!(
        "&quot;procedure_id&quot;: &quot;{}&quot;",
        sample.procedure
    )));
    let nonce = hidden(&signing.html, "signing_nonce");
    assert!(
        signing
            .html
            .contains(&format!("&quot;nonce&quot;: &quot;{nonce}&quot;"))
    );
    assert_eq!(
        mine(&app, &resident, &id).await["status"],
        "returned",
        "nothing is sent before it is signed"
    );

    // The signing page carries the corrected answers as shown; sent with its nonce, they are
    // signed and resubmitted, and the form sent again (a double tap) resubmits nothing more.
    let answers = hidden(&signing.html, "answers")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let answers: Value = serde_json::from_str(&answers).expect("the answers as JSON");
    assert_eq!(answers[first.as_str()], sample.data[first.as_str()]);
    let sign = pairs(&[
        ("csrf", &hidden(&signing.html, "csrf")),
        ("idempotency_key", &key),
        ("signing_nonce", &nonce),
        ("answers", &answers.to_string()),
    ]);
    let sent = browser
        .post(&format!("/applications/{id}/correct"), &sign)
        .await;
    assert_eq!(sent.status, 303, "{}", sent.html);
    assert_eq!(sent.location, format!("/applications/{id}"));
    let again = browser
        .post(&format!("/applications/{id}/correct"), &sign)
        .await;
    assert_eq!(
        again.status, 303,
        "a double tap lands on the same page: {}",
        again.html
    );

    let detail = mine(&app, &resident, &id).await;
    assert_eq!(detail["status"], "submitted", "{detail}");
    assert_eq!(detail["revision"], 2, "one resubmission: {detail}");
    let mut connection = AsyncPgConnection::establish(&app.database.url)
        .await
        .expect("connect");
    #[derive(diesel::QueryableByName)]
    struct Signed {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        revision: i32,
    }
    let signed: Vec<Signed> =
        diesel::sql_query("SELECT revision FROM submission_signatures ORDER BY revision")
            .load(&mut connection)
            .await
            .expect("signatures");
    assert_eq!(
        signed.iter().map(|s| s.revision).collect::<Vec<_>>(),
        vec![1, 2],
        "each revision carries its own signature"
    );
}

#[actix_web::test]
async fn withdrawal_is_confirmed_first_and_refused_after_a_decision() {
    let app = TestApp::spawn().await;
    let sample = returnable();
    let subject = "pages-withdraw";
    let resident = app.resident(subject).await;
    let open = apply(&app, &resident, &sample.procedure, &sample.data, "w1").await;
    let mut browser = Browser::new(&app);
    browser.sign_in(subject).await;

    let question = browser.get(&format!("/applications/{open}/withdraw")).await;
    assert_eq!(question.status, 200, "{}", question.html);
    assert_eq!(count(&question.html, "<h1"), 1);
    assert!(question.html.contains(r#"<label for="reason">"#));
    let csrf = hidden(&question.html, "csrf");
    // Without the CSRF token nothing happens.
    let forged = browser
        .post(
            &format!("/applications/{open}/withdraw"),
            &pairs(&[("reason", "x")]),
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.html);
    assert_eq!(mine(&app, &resident, &open).await["status"], "submitted");

    let done = browser
        .post(
            &format!("/applications/{open}/withdraw"),
            &pairs(&[("csrf", &csrf), ("reason", "別の窓口で手続きしました")]),
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.html);
    let detail = mine(&app, &resident, &open).await;
    assert_eq!(detail["status"], "withdrawn");
    let page = browser.get(&format!("/applications/{open}")).await;
    assert!(page.html.contains("取下げ"), "{}", page.html);
    assert!(!page.html.contains("withdraw-link"), "no second withdrawal");

    let decided = apply(&app, &resident, &sample.procedure, &sample.data, "w2").await;
    let clerk = app.staff(&sample.division, "clerk").await;
    claim(&app, &clerk, &sample.division).await;
    transition(&app, &clerk, &decided, json!({"action": "complete"})).await;
    let question = browser
        .get(&format!("/applications/{decided}/withdraw"))
        .await;
    assert_eq!(question.status, 409, "{}", question.html);
    let refused = browser
        .post(
            &format!("/applications/{decided}/withdraw"),
            &pairs(&[("csrf", &csrf)]),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.html);
    assert!(
        refused.html.contains("処理完了"),
        "says why: {}",
        refused.html
    );
    assert_eq!(mine(&app, &resident, &decided).await["status"], "completed");
}

#[actix_web::test]
async fn an_email_change_is_confirmed_through_a_real_email_and_bad_input_comes_back() {
    let server = crate::notify::SmtpServer::start(0.0, None);
    let app = TestApp::with_settings(crate::notify::smtp_settings(server.port)).await;
    let mut browser = Browser::new(&app);
    browser.sign_in("pages-account").await;
    let page = browser.get("/account").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert_eq!(count(&page.html, "<h1"), 1);
    assert!(page.html.contains(r#"<label for="email">"#));
    assert!(page.html.contains("登録されていません"));
    let csrf = hidden(&page.html, "csrf");

    let forged = browser
        .post(
            "/account",
            &pairs(&[("email", "forged@example.jp"), ("language", "ja")]),
        )
        .await;
    assert_eq!(forged.status, 403, "{}", forged.html);

    for (lang, message) in [
        ("ja", "メールアドレスが正しくありません"),
        ("en", "is not a valid email address"),
    ] {
        let bad = browser
            .post(
                &format!("/account?lang={lang}"),
                &pairs(&[
                    ("csrf", &csrf),
                    ("email", "not an address"),
                    ("language", "ja"),
                ]),
            )
            .await;
        assert_eq!(bad.status, 422, "{}", bad.html);
        assert!(bad.html.contains(r#"class="error-summary""#));
        assert!(bad.html.contains(r##"href="#email""##));
        assert!(bad.html.contains(message), "{lang}: {}", bad.html);
        assert!(bad.html.contains(r#"value="not an address""#), "kept");
    }

    let saved = browser
        .post(
            "/account",
            &pairs(&[
                ("csrf", &csrf),
                ("email", "pages-account@example.jp"),
                ("language", "en"),
            ]),
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.html);
    let pending = browser.get(&saved.location).await;
    assert!(pending.html.contains("pages-account@example.jp"));
    assert!(
        pending.html.contains(r#"id="pending-email""#),
        "{}",
        pending.html
    );

    let pass = crate::notify::worker_pass(&app).await;
    assert_eq!(pass.sent, 1, "the confirmation");
    let messages = server.wait_for(1, Duration::from_secs(5));
    let message = messages
        .iter()
        .find(|m| crate::notify::recipient(m) == "pages-account@example.jp")
        .expect("the confirmation email arrived");
    let text = message["text"].as_str().unwrap_or_default();
    let marker = "/account/email/confirm?token=";
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("a link in {text}"))
        + marker.len();
    let token: String = text[start..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    let path = format!("{marker}{token}");

    // Opening the link changes nothing; its button does.
    let confirm = browser.get(&path).await;
    assert_eq!(confirm.status, 200, "{}", confirm.html);
    let confirm_csrf = hidden(&confirm.html, "csrf");
    let token = hidden(&confirm.html, "token");
    let still = browser.get("/account").await;
    assert!(still.html.contains(r#"id="pending-email""#));
    let confirmed = browser
        .post(
            "/account/email/confirm",
            &pairs(&[("csrf", &confirm_csrf), ("token", &token)]),
        )
        .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.html);
    assert!(confirmed.html.contains(r#"id="email-confirmed""#));
    let account = browser.get("/account").await;
    assert!(
        !account.html.contains(r#"id="pending-email""#),
        "{}",
        account.html
    );
    assert!(account.html.contains("pages-account@example.jp"));
    assert!(
        account.html.contains(r#"value="en" checked"#),
        "notices in English"
    );
    let used = browser
        .post(
            "/account/email/confirm",
            &pairs(&[("csrf", &confirm_csrf), ("token", &token)]),
        )
        .await;
    assert_eq!(used.status, 422, "a used link: {}", used.html);
}

/// Every string in `value` that is a placeholder attachment id of the examples, with the id of
/// the file field it answers (the last path segment that is not an index).
fn placeholders(value: &Value, field: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::String(text) if text.starts_with("01900000-") => {
            found.push((text.clone(), field.to_owned()));
        }
        Value::Object(map) => {
            for (key, inner) in map {
                placeholders(inner, key, found);
            }
        }
        Value::Array(items) => {
            for inner in items {
                placeholders(inner, field, found);
            }
        }
        _ => {}
    }
}

#[actix_web::test]
async fn an_applications_files_are_downloads_for_its_resident_only() {
    let app = TestApp::spawn().await;
    let (procedure, example) = CATALOG
        .procedures
        .values()
        .filter(|p| {
            p.definition.routing.is_empty()
                && matches!(
                    p.definition.assurance,
                    Assurance::None | Assurance::CardAuth
                )
        })
        .find_map(|p| {
            let example = p.definition.examples.iter().find(|e| {
                e.valid && e.as_of.is_none() && e.data.to_string().contains("01900000-")
            })?;
            // Every file it answers takes a PDF.
            let mut found = Vec::new();
            placeholders(&example.data, "", &mut found);
            let fields: Vec<&Field> = p
                .definition
                .pages
                .iter()
                .flat_map(|page| page.fields.iter())
                .flat_map(|field| std::iter::once(field).chain(field.fields.iter()))
                .collect();
            let takes_pdf = |id: &str| {
                fields
                    .iter()
                    .any(|field| field.id == id && field.accepted_kinds().contains(&FileKind::Pdf))
            };
            found
                .iter()
                .all(|(_, field)| takes_pdf(field))
                .then(|| (p.definition.id.clone(), example.data.clone()))
        })
        .expect("a procedure whose example has a file");
    let subject = "card-pages-files";
    let resident = app.resident(subject).await;
    let (status, draft) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/drafts")
                .insert_header(bearer(&resident))
                .set_json(json!({"procedure_id": procedure, "data": {}})),
        )
        .await;
    assert_eq!(status, 201, "{draft}");
    let draft_id = draft["id"].as_str().expect("draft id").to_owned();
    let pdf = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    let mut found = Vec::new();
    placeholders(&example, "", &mut found);
    let mut text = example.to_string();
    let mut uploaded = Vec::new();
    for (placeholder, field) in found {
        let boundary = "pages-boundary";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(pdf);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let (status, attachment) = app
            .json(
                TestRequest::post()
                    .uri(&format!(
                        "/api/v1/drafts/{draft_id}/attachments?field={field}"
                    ))
                    .insert_header(bearer(&resident))
                    .insert_header((
                        "content-type",
                        format!("multipart/form-data; boundary={boundary}"),
                    ))
                    .set_payload(body),
            )
            .await;
        assert_eq!(status, 201, "{field}: {attachment}");
        let id = attachment["id"].as_str().expect("attachment id").to_owned();
        text = text.replace(&placeholder, &id);
        uploaded.push(id);
    }
    let data: Value = serde_json::from_str(&text).expect("answers");
    let (status, created) = app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/procedures/{procedure}/submissions"))
                .insert_header(bearer(&resident))
                .insert_header(("idempotency-key", "pages-files"))
                .set_json(json!({"data": data, "draft_id": draft_id})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();

    let mut browser = Browser::new(&app);
    browser.sign_in(subject).await;
    let page = browser.get(&format!("/applications/{id}")).await;
    let href = format!("/applications/{id}/files/{}", uploaded[0]);
    assert!(
        page.html.contains(&format!(r#"href="{href}""#)),
        "{}",
        page.html
    );
    let cookie = browser.cookie_header();
    let response = app
        .call(
            TestRequest::get()
                .uri(&href)
                .insert_header(("cookie", cookie.clone())),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| crate::helpers::header(&response, name);
    assert_eq!(header("content-type"), "application/pdf");
    assert!(header("content-disposition").starts_with("attachment"));
    assert_eq!(header("x-content-type-options"), "nosniff");
    let body = actix_web::test::read_body(response).await;
    assert_eq!(&body[..], &pdf[..]);

    let missing = browser
        .get(&format!(
            "/applications/{id}/files/{}",
            uuid::Uuid::new_v4()
        ))
        .await;
    assert_eq!(missing.status, 404);
    let mut other = Browser::new(&app);
    other.sign_in("card-pages-files-other").await;
    let theirs = other.get(&href).await;
    assert_eq!(theirs.status, 404, "{}", theirs.html);
}
