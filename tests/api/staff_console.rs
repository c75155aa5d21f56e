//! The staff console through its pages, as a browser uses it: sign-in with a cookie and CSRF
//! tokens, claiming, opening (and the access log it writes), returning with field comments,
//! the diff after a resubmission, completing, revealing a My Number, division isolation, and
//! the forced password change.

use actix_web::test::TestRequest;
use diesel_async::RunQueryDsl;
use madoguchi::identity::staff::{self, Membership, Role};
use madoguchi::queues::saved_filters;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{STAFF_PASSWORD, TestApp, bearer, settings_with_test_pki};
use crate::page_client::{Browser, hidden};
use crate::staff::{Sample, apply, samples, two_divisions};

/// Creates a staff account with `role` in `division` (`created_by` an admin: the password must
/// be changed first); returns its id and login.
async fn account(
    app: &TestApp,
    division: &str,
    role: Role,
    created_by: Option<Uuid>,
) -> (Uuid, String) {
    let login = format!("{division}-{}-{}", role.as_str(), Uuid::new_v4().simple());
    let mut connection = app.state.pool.get().await.expect("connection");
    let id = staff::create(
        &mut connection,
        &login,
        &format!("職員 {}", role.as_str()),
        None,
        Some(STAFF_PASSWORD),
        &[Membership {
            division: division.to_owned(),
            role,
        }],
        created_by,
    )
    .await
    .expect("staff account");
    (id, login)
}

/// Signs `login` in on the console's sign-in page; returns where it went.
async fn sign_in(browser: &mut Browser<'_>, login: &str) -> String {
    let page = browser.get("/staff/sign-in").await;
    assert_eq!(page.status, 200, "{}", page.html);
    let csrf = hidden(&page.html, "csrf");
    let signed = browser
        .post(
            "/staff/sign-in",
            &[
                ("csrf", &csrf),
                ("login", login),
                ("password", STAFF_PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed.status, 303, "{}", signed.html);
    signed.location
}

/// A new staff member of `division`, signed in on the console.
async fn clerk<'a>(app: &'a TestApp, division: &str, role: Role) -> (Uuid, Browser<'a>) {
    let (id, login) = account(app, division, role, None).await;
    let mut browser = Browser::new(app);
    assert_eq!(sign_in(&mut browser, &login).await, "/staff");
    (id, browser)
}

/// The CSRF token of a console page.
async fn csrf_of(browser: &mut Browser<'_>, path: &str) -> String {
    let page = browser.get(path).await;
    assert_eq!(page.status, 200, "{path}: {}", page.html);
    hidden(&page.html, "csrf")
}

/// 「次を担当する」 on the queue's page; the application it opened.
async fn claim_next(browser: &mut Browser<'_>, queue: &str) -> String {
    let csrf = csrf_of(browser, &format!("/staff/queues/{queue}")).await;
    let claimed = browser
        .post(&format!("/staff/queues/{queue}/claim"), &[("csrf", &csrf)])
        .await;
    assert_eq!(claimed.status, 303, "{}", claimed.html);
    claimed.location
}

#[derive(diesel::QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    text: String,
}

async fn texts(app: &TestApp, query: &str) -> Vec<String> {
    let mut connection = app.state.pool.get().await.expect("connection");
    diesel::sql_query(query)
        .load::<Text>(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("{query}: {error}"))
        .into_iter()
        .map(|row| row.text)
        .collect()
}

/// The access log of an application, as `action:reason` lines.
async fn access_log(app: &TestApp, id: &str) -> Vec<String> {
    texts(
        app,
        &format!(
            "SELECT action || ':' || coalesce(reason, '') AS text FROM access_log \
              WHERE submission_id = '{id}' ORDER BY created_at, id"
        ),
    )
    .await
}

fn reference_of(app_html: &str) -> String {
    let start = app_html.find("<h1>").expect("a heading") + 4;
    app_html[start..]
        .split_whitespace()
        .next()
        .expect("reference")
        .to_owned()
}

/// A sample with a phone number and another text answer to comment on.
fn sample_with_two_text_answers() -> (Sample, String) {
    samples()
        .into_iter()
        .filter(|s| s.data.get("applicant_phone").is_some())
        .find_map(|s| {
            let other = s
                .data
                .as_object()?
                .iter()
                .find(|(key, value)| *key != "applicant_phone" && value.is_string())
                .map(|(key, _)| format!("/{key}"))?;
            Some((s, other))
        })
        .expect("a sample with a phone number and another text answer")
}

#[actix_web::test]
async fn a_clerk_claims_opens_returns_with_two_comments_sees_the_diff_and_completes() {
    let app = TestApp::spawn().await;
    let (sample, other_path) = sample_with_two_text_answers();
    let resident = app.resident("card-7001").await;
    app.confirmed_email(&resident, "resident-7001@example.jp")
        .await;
    let id = apply(&app, &resident, &sample, "console-1")
        .await
        .to_string();
    let queue = sample.division.clone();
    let (_, mut browser) = clerk(&app, &queue, Role::Clerk).await;

    let dashboard = browser.get("/staff").await;
    assert_eq!(dashboard.status, 200, "{}", dashboard.html);
    assert_eq!(dashboard.html.matches("<h1>").count(), 1);
    assert!(
        dashboard
            .html
            .contains(&format!(r#"href="/staff/queues/{queue}?status=submitted""#)),
        "the new count links to the filtered list: {}",
        dashboard.html
    );
    let list = browser
        .get(&format!(
            "/staff/queues/{queue}?status=submitted&assignee=none"
        ))
        .await;
    assert_eq!(list.status, 200, "{}", list.html);
    assert!(list.html.contains(&format!("/staff/applications/{id}")));

    assert_eq!(
        claim_next(&mut browser, &queue).await,
        format!("/staff/applications/{id}")
    );
    assert!(
        access_log(&app, &id).await.is_empty(),
        "claiming reads nothing"
    );
    let opened = browser.get(&format!("/staff/applications/{id}")).await;
    assert_eq!(opened.status, 200, "{}", opened.html);
    assert_eq!(
        access_log(&app, &id).await,
        ["view:"],
        "the view is recorded"
    );
    assert!(opened.html.contains(r#"data-status="in_progress""#));
    let phone_box = r#"name="comment:/applicant_phone""#;
    let other_box = format!(r#"name="comment:{other_path}""#);
    assert!(opened.html.contains(phone_box), "{}", opened.html);
    assert!(opened.html.contains(&other_box));

    // A return needs a reason: the page comes back with the error and the comments kept.
    let csrf = hidden(&opened.html, "csrf");
    let decide = format!("/staff/applications/{id}/decide");
    let phone_comment = "日中つながる番号をご記入ください";
    let other_comment = "記載内容をご確認ください";
    let phone_name = "comment:/applicant_phone".to_owned();
    let other_name = format!("comment:{other_path}");
    let refused = browser
        .post(
            &decide,
            &[
                ("csrf", &csrf),
                ("action", "return"),
                ("reason", " "),
                (&phone_name, phone_comment),
                (&other_name, other_comment),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(
        refused.html.contains(r##"href="#return-reason""##),
        "{}",
        refused.html
    );
    assert!(refused.html.contains(phone_comment), "the comment is kept");
    let returned = browser
        .post(
            &decide,
            &[
                ("csrf", &csrf),
                ("action", "return"),
                ("reason", "記載内容の確認をお願いします"),
                (&phone_name, phone_comment),
                (&other_name, other_comment),
                ("comment:/unused", " "),
            ],
        )
        .await;
    assert_eq!(returned.status, 303, "{}", returned.html);

    // The resident sees both comments and answers through the API.
    let (_, mine) = app
        .json(
            TestRequest::get()
                .uri(&format!("/api/v1/submissions/{id}"))
                .insert_header(bearer(&resident)),
        )
        .await;
    assert_eq!(mine["status"], "returned");
    let comments = mine["history"]
        .as_array()
        .and_then(|history| history.last())
        .map(|last| last["comments"].clone())
        .expect("the return");
    assert_eq!(
        comments,
        json!([
            {"path": "/applicant_phone", "comment": phone_comment},
            {"path": other_path, "comment": other_comment},
        ])
    );
    let mut corrected = sample.data.clone();
    corrected["applicant_phone"] = json!("0761-72-9999");
    let (status, answered) = app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/submissions/{id}/resubmit"))
                .insert_header(bearer(&resident))
                .insert_header(("idempotency-key", "console-correction"))
                .set_json(json!({"data": corrected})),
        )
        .await;
    assert_eq!(status, 200, "{answered}");

    // The answer is back in the queue; the clerk takes it again and reads what changed.
    assert_eq!(
        claim_next(&mut browser, &queue).await,
        format!("/staff/applications/{id}")
    );
    let opened = browser.get(&format!("/staff/applications/{id}")).await;
    assert!(
        opened
            .html
            .contains(&format!(r#"href="/staff/applications/{id}/revisions/2""#)),
        "{}",
        opened.html
    );
    let diff = browser
        .get(&format!("/staff/applications/{id}/revisions/2"))
        .await;
    assert_eq!(diff.status, 200, "{}", diff.html);
    assert!(
        diff.html.contains(r#"data-path="/applicant_phone""#),
        "{}",
        diff.html
    );
    assert!(
        // Stored as normalised (digits only).
        diff.html.contains("<mark>0761729999</mark>"),
        "{}",
        diff.html
    );
    assert_eq!(
        diff.html.matches(r#"class="changed""#).count(),
        1,
        "only the phone changed"
    );

    let csrf = hidden(&opened.html, "csrf");
    let done = browser
        .post(&decide, &[("csrf", &csrf), ("action", "complete")])
        .await;
    assert_eq!(done.status, 303, "{}", done.html);
    let closed = browser.get(&format!("/staff/applications/{id}")).await;
    assert!(closed.html.contains(r#"data-status="completed""#));
    assert!(closed.html.contains("処理完了"));
    assert!(
        !closed.html.contains(r#"value="complete""#),
        "no decision is offered once decided"
    );
    let notices = texts(
        &app,
        &format!(
            "SELECT template || ':' || (payload->>'event') AS text FROM outbox \
              WHERE submission_id = '{id}' ORDER BY created_at"
        ),
    )
    .await;
    assert!(
        notices.iter().any(|n| n == "resident_status:completed"),
        "{notices:?}"
    );
    assert!(
        notices.iter().any(|n| n == "resident_status:returned"),
        "{notices:?}"
    );
}

#[actix_web::test]
async fn two_clerks_claiming_at_once_get_different_applications() {
    let app = TestApp::spawn().await;
    let sample = samples().remove(0);
    let resident = app.resident("card-7002").await;
    let first = apply(&app, &resident, &sample, "c-1").await;
    let second = apply(&app, &resident, &sample, "c-2").await;
    let queue = sample.division.clone();
    let (_, mut one) = clerk(&app, &queue, Role::Clerk).await;
    let (_, mut two) = clerk(&app, &queue, Role::Clerk).await;
    let one_csrf = csrf_of(&mut one, &format!("/staff/queues/{queue}")).await;
    let two_csrf = csrf_of(&mut two, &format!("/staff/queues/{queue}")).await;
    let claim = format!("/staff/queues/{queue}/claim");
    let (one_form, two_form) = ([("csrf", one_csrf.as_str())], [("csrf", two_csrf.as_str())]);
    let (a, b) = futures_util::join!(one.post(&claim, &one_form), two.post(&claim, &two_form));
    assert_eq!((a.status, b.status), (303, 303), "{a:?} {b:?}");
    let mut got = [a.location, b.location];
    got.sort();
    let mut expected = [
        format!("/staff/applications/{first}"),
        format!("/staff/applications/{second}"),
    ];
    expected.sort();
    assert_eq!(got, expected);
    // Nothing is left: the page says so.
    let empty = one.post(&claim, &[("csrf", &one_csrf)]).await;
    assert_eq!(empty.status, 303);
    let page = one.get(&empty.location).await;
    assert!(
        page.html.contains("担当できる新着の申請はありません"),
        "{}",
        page.html
    );
}

#[actix_web::test]
async fn another_divisions_clerk_gets_404_pages_and_sees_nothing_of_it() {
    let app = TestApp::spawn().await;
    let (ours, theirs) = two_divisions();
    let resident = app.resident("card-7003").await;
    let id = apply(&app, &resident, &ours, "iso-1").await;
    let (_, mut owner) = clerk(&app, &ours.division, Role::Clerk).await;
    let reference = reference_of(&owner.get(&format!("/staff/applications/{id}")).await.html);
    let (_, mut outsider) = clerk(&app, &theirs.division, Role::Supervisor).await;

    for path in [
        format!("/staff/applications/{id}"),
        format!("/staff/applications/{id}/revisions/1"),
        format!("/staff/queues/{}", ours.division),
        "/staff/applications/not-an-id".to_owned(),
    ] {
        let page = outsider.get(&path).await;
        assert_eq!(page.status, 404, "{path}: {}", page.html);
        assert!(!page.html.contains(&reference), "{path}");
    }
    let csrf = csrf_of(&mut outsider, "/staff").await;
    for (path, action) in [
        (format!("/staff/applications/{id}/decide"), "start"),
        (format!("/staff/applications/{id}/notes"), ""),
        (format!("/staff/queues/{}/claim", ours.division), ""),
    ] {
        let page = outsider
            .post(&path, &[("csrf", &csrf), ("action", action), ("body", "x")])
            .await;
        assert_eq!(page.status, 404, "{path}: {}", page.html);
    }
    let bulk = outsider
        .post(
            &format!("/staff/queues/{}/bulk", theirs.division),
            &[
                ("csrf", &csrf),
                ("action", "release"),
                ("reason", "整理のため"),
                ("id", &id.to_string()),
            ],
        )
        .await;
    assert_eq!(bulk.status, 409, "{}", bulk.html);
    for path in [
        "/staff".to_owned(),
        format!("/staff/queues/{}", theirs.division),
        format!("/staff/queues/{}?assignee=none", theirs.division),
    ] {
        let page = outsider.get(&path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.html.contains(&reference), "{path}: {}", page.html);
        assert!(!page.html.contains(&id.to_string()), "{path}");
    }
    assert_eq!(
        access_log(&app, &id.to_string()).await,
        ["view:"],
        "only the owner's view"
    );
    let status = texts(
        &app,
        &format!("SELECT status AS text FROM submissions WHERE id = '{id}'"),
    )
    .await;
    assert_eq!(status, ["submitted"], "untouched by the outsider");
}

#[actix_web::test]
async fn a_reveal_asks_for_a_reason_says_the_resident_will_see_it_and_is_in_their_log() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let (id, field_path, division) =
        crate::staff_security::my_number_application(&app, "card-7004").await;
    let (_, mut browser) = clerk(&app, &division, Role::Clerk).await;
    assert_eq!(
        claim_next(&mut browser, &division).await,
        format!("/staff/applications/{id}")
    );
    let opened = browser.get(&format!("/staff/applications/{id}")).await;
    assert_eq!(opened.status, 200, "{}", opened.html);
    assert!(opened.html.contains("********9018"), "masked");
    assert!(!opened.html.contains("123456789018"));
    assert!(
        opened
            .html
            .contains("表示したこととその理由は、申請者が「閲覧記録」で確認できます。"),
        "the form says the resident will see it"
    );
    let csrf = hidden(&opened.html, "csrf");
    let reveal = format!("/staff/applications/{id}/reveal");
    let vague = browser
        .post(
            &reveal,
            &[
                ("csrf", &csrf),
                ("field_path", &field_path),
                ("reason", "確認"),
            ],
        )
        .await;
    assert_eq!(vague.status, 422, "{}", vague.html);
    assert!(!vague.html.contains("123456789018"));
    assert!(vague.html.contains("理由を具体的に"), "{}", vague.html);
    let shown = browser
        .post(
            &reveal,
            &[
                ("csrf", &csrf),
                ("field_path", &field_path),
                ("reason", "住基ネットとの照合のため"),
            ],
        )
        .await;
    assert_eq!(shown.status, 200, "{}", shown.html);
    assert!(shown.html.contains("123456789018"));
    assert_eq!(shown.cache_control, "no-store");

    let resident = app.resident("card-7004").await;
    let (status, log) = app
        .json(
            TestRequest::get()
                .uri(&format!("/api/v1/submissions/{id}/access-log"))
                .insert_header(bearer(&resident)),
        )
        .await;
    assert_eq!(status, 200, "{log}");
    let actions: Vec<(String, Value)> = log
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["reason"].clone(),
            )
        })
        .collect();
    assert!(
        actions.contains(&(
            "reveal_my_number".to_owned(),
            json!("住基ネットとの照合のため")
        )),
        "{actions:?}"
    );
}

#[actix_web::test]
async fn posts_need_the_csrf_token_and_resident_and_staff_cookies_never_cross() {
    let app = TestApp::spawn().await;
    let sample = samples().remove(0);
    let resident = app.resident("card-7005").await;
    apply(&app, &resident, &sample, "csrf-1").await;
    let (_, mut browser) = clerk(&app, &sample.division, Role::Clerk).await;
    let claim = format!("/staff/queues/{}/claim", sample.division);
    let refused = browser.post(&claim, &[]).await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    let refused = browser.post(&claim, &[("csrf", "forged")]).await;
    assert_eq!(refused.status, 403);
    let csrf = csrf_of(&mut browser, "/staff").await;
    let other_site = browser
        .send(
            TestRequest::post()
                .uri(&claim)
                .insert_header(("origin", "https://evil.example"))
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload(format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(other_site.status, 403);
    let status = texts(&app, "SELECT status AS text FROM submissions").await;
    assert_eq!(status, ["submitted"], "nothing was claimed");

    // A resident signed in on the portal is not signed in on the console.
    let mut portal = Browser::new(&app);
    let page = portal.get("/sign-in?next=/drafts").await;
    let csrf = hidden(&page.html, "csrf");
    let signed = portal
        .post(
            "/sign-in/dev",
            &[
                ("csrf", &csrf),
                ("next", "/drafts"),
                ("subject", "card-7005"),
            ],
        )
        .await;
    assert_eq!(signed.status, 303);
    let console = portal.get("/staff").await;
    assert_eq!(console.status, 303);
    assert!(
        console.location.starts_with("/staff/sign-in"),
        "{console:?}"
    );
    // Nor does the resident's cookie under the staff cookie's name open anything.
    let resident_cookie = portal.cookies["madoguchi_session"].clone();
    let mut renamed = Browser::new(&app);
    renamed
        .cookies
        .insert("madoguchi_staff_session".to_owned(), resident_cookie);
    assert_eq!(renamed.get("/staff").await.status, 303);
    // And a staff member's cookie opens no resident page.
    let drafts = browser.get("/drafts").await;
    assert_eq!(drafts.status, 303, "{}", drafts.html);
    assert!(drafts.location.starts_with("/sign-in"), "{drafts:?}");
}

#[actix_web::test]
async fn a_password_an_admin_gave_must_be_changed_before_any_console_page() {
    let app = TestApp::spawn().await;
    let sample = samples().remove(0);
    let (admin, _) = app.staff_member(&sample.division, "admin").await;
    let (_, login) = account(&app, &sample.division, Role::Clerk, Some(admin)).await;
    let mut browser = Browser::new(&app);
    assert_eq!(sign_in(&mut browser, &login).await, "/staff");
    for path in [
        "/staff".to_owned(),
        format!("/staff/queues/{}", sample.division),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(
            (page.status, page.location.as_str()),
            (303, "/staff/password"),
            "{path}"
        );
    }
    let form = browser.get("/staff/password").await;
    assert_eq!(form.status, 200, "{}", form.html);
    let csrf = hidden(&form.html, "csrf");
    let claim = browser
        .post(
            &format!("/staff/queues/{}/claim", sample.division),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(claim.location, "/staff/password", "POSTs too");
    let wrong = browser
        .post(
            "/staff/password",
            &[
                ("csrf", &csrf),
                ("current_password", "not the password at all"),
                ("new_password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(
        wrong.html.contains("現在のパスワードが違います"),
        "{}",
        wrong.html
    );
    let short = browser
        .post(
            "/staff/password",
            &[
                ("csrf", &csrf),
                ("current_password", STAFF_PASSWORD),
                ("new_password", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, 422);
    assert!(short.html.contains("12文字以上"));
    let changed = browser
        .post(
            "/staff/password",
            &[
                ("csrf", &csrf),
                ("current_password", STAFF_PASSWORD),
                ("new_password", "a brand new passphrase"),
            ],
        )
        .await;
    assert_eq!(
        (changed.status, changed.location.as_str()),
        (303, "/staff"),
        "{}",
        changed.html
    );
    assert_eq!(browser.get("/staff").await.status, 200);
    // Signing out ends the session.
    let csrf = csrf_of(&mut browser, "/staff").await;
    let out = browser.post("/staff/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(browser.get("/staff").await.status, 303);
}

#[actix_web::test]
async fn an_admin_sees_the_failed_emails_of_their_division_and_retries_one() {
    let app = TestApp::spawn().await;
    let (ours, theirs) = two_divisions();
    let resident = app.resident("card-7006").await;
    app.confirmed_email(&resident, "resident-7006@example.jp")
        .await;
    let id = apply(&app, &resident, &ours, "mail-1").await;
    let mut connection = app.state.pool.get().await.expect("connection");
    diesel::sql_query(
        "UPDATE outbox SET status = 'failed', attempts = 8, last_error = 'mailbox unavailable'",
    )
    .execute(&mut connection)
    .await
    .expect("fail the outbox");
    drop(connection);
    let (_, mut admin) = clerk(&app, &ours.division, Role::Admin).await;
    let page = admin.get("/staff/admin/emails").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("mailbox unavailable"), "{}", page.html);
    assert!(page.html.contains(&format!("/staff/applications/{id}")));
    let message = texts(
        &app,
        "SELECT id::text AS text FROM outbox WHERE status = 'failed'",
    )
    .await
    .remove(0);
    let (_, mut outsider) = clerk(&app, &theirs.division, Role::Admin).await;
    let theirs_page = outsider.get("/staff/admin/emails").await;
    assert!(!theirs_page.html.contains("mailbox unavailable"));
    let csrf = hidden(&theirs_page.html, "csrf");
    let refused = outsider
        .post(
            &format!("/staff/admin/emails/{message}/retry"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, 404);
    let (_, mut plain_clerk) = clerk(&app, &ours.division, Role::Clerk).await;
    assert_eq!(plain_clerk.get("/staff/admin/emails").await.status, 404);

    let csrf = hidden(&page.html, "csrf");
    let retried = admin
        .post(
            &format!("/staff/admin/emails/{message}/retry"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(
        (retried.status, retried.location.as_str()),
        (303, "/staff/admin/emails?retried=true")
    );
    let status = texts(
        &app,
        &format!("SELECT status AS text FROM outbox WHERE id = '{message}'"),
    )
    .await;
    assert_eq!(status, ["pending"]);
}

#[actix_web::test]
async fn the_card_verified_facts_stand_beside_the_answers_and_a_different_name_is_marked() {
    let app = TestApp::spawn().await;
    let mut sample = samples()
        .into_iter()
        .find(|s| {
            crate::helpers::CATALOG
                .get(&s.procedure)
                .is_some_and(|p| p.definition.assurance == madoguchi::forms::Assurance::CardAuth)
                && s.data.get("applicant_name").is_some()
        })
        .expect("a card-auth sample with the applicant's name");
    sample.data["applicant_name"] = json!("別人　花子");
    let resident = app.resident("card-7007").await;
    let id = apply(&app, &resident, &sample, "facts-1").await;
    let (_, mut browser) = clerk(&app, &sample.division, Role::Clerk).await;
    let page = browser.get(&format!("/staff/applications/{id}")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let row = page
        .html
        .split(r#"<tr id="a-applicant-name""#)
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .expect("the name's row");
    assert!(row.starts_with(r#" class="mismatch""#), "{row}");
    assert!(
        row.contains("窓口\u{3000}試子"),
        "the card's name beside it: {row}"
    );
    assert!(row.contains("不一致"), "{row}");
}

#[actix_web::test]
async fn a_supervisor_assigns_several_at_once_with_a_reason_noted_on_each() {
    let app = TestApp::spawn().await;
    let sample = samples().remove(0);
    let resident = app.resident("card-7008").await;
    let first = apply(&app, &resident, &sample, "b-1").await.to_string();
    let second = apply(&app, &resident, &sample, "b-2").await.to_string();
    let queue = sample.division.clone();
    let (clerk_id, _) = clerk(&app, &queue, Role::Clerk).await;
    let (_, mut supervisor) = clerk(&app, &queue, Role::Supervisor).await;
    let list = supervisor.get(&format!("/staff/queues/{queue}")).await;
    assert!(
        list.html.contains(r#"name="id""#),
        "checkboxes for a supervisor"
    );
    let csrf = hidden(&list.html, "csrf");
    let bulk = format!("/staff/queues/{queue}/bulk");
    let clerk_id = clerk_id.to_string();
    let refused = supervisor
        .post(
            &bulk,
            &[
                ("csrf", &csrf),
                ("action", "assign"),
                ("staff_id", &clerk_id),
                ("id", &first),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "a reason is required");
    assert!(
        refused.html.contains(r##"href="#reason""##),
        "{}",
        refused.html
    );
    let done = supervisor
        .post(
            &bulk,
            &[
                ("csrf", &csrf),
                ("action", "assign"),
                ("staff_id", &clerk_id),
                ("reason", "担当の偏りをならすため"),
                ("id", &first),
                ("id", &second),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.html);
    let assigned = texts(
        &app,
        "SELECT assignee_id::text || ':' || status AS text FROM submissions ORDER BY submitted_at",
    )
    .await;
    assert_eq!(
        assigned,
        [
            format!("{clerk_id}:in_progress"),
            format!("{clerk_id}:in_progress")
        ]
    );
    let notes = texts(&app, "SELECT body AS text FROM staff_notes").await;
    assert_eq!(notes, ["一括割当: 担当の偏りをならすため"; 2]);

    // A clerk has no bulk form, and the domain refuses a forged one.
    let (_, mut plain) = clerk(&app, &queue, Role::Clerk).await;
    let list = plain.get(&format!("/staff/queues/{queue}")).await;
    assert!(!list.html.contains(r#"name="id""#));
    let csrf = hidden(&list.html, "csrf");
    let forged = plain
        .post(
            &bulk,
            &[
                ("csrf", &csrf),
                ("action", "assign"),
                ("staff_id", &clerk_id),
                ("reason", "勝手に"),
                ("id", &first),
            ],
        )
        .await;
    assert_eq!(forged.status, 409, "{}", forged.html);
}

#[actix_web::test]
async fn a_bad_filter_is_named_in_japanese_and_english_and_paging_keeps_the_filters() {
    let app = TestApp::spawn().await;
    let sample = samples().remove(0);
    let resident = app.resident("card-7009").await;
    for n in 0..51 {
        apply(&app, &resident, &sample, &format!("p-{n}")).await;
    }
    let queue = sample.division.clone();
    let (_, mut browser) = clerk(&app, &queue, Role::Clerk).await;
    let bad = browser
        .get(&format!("/staff/queues/{queue}?from=2026-13-45"))
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.html.contains(r##"href="#from""##), "{}", bad.html);
    assert!(
        bad.html
            .contains("日付は 2026-12-01 のように入力してください。")
    );
    let bad = browser
        .get(&format!("/staff/queues/{queue}?from=2026-13-45&lang=en"))
        .await;
    assert!(
        bad.html.contains("Enter a date like 2026-12-01."),
        "{}",
        bad.html
    );
    let bad = browser
        .get(&format!("/staff/queues/{queue}?cursor=garbage&lang=ja"))
        .await;
    assert_eq!(bad.status, 422, "{}", bad.html);

    let first = browser
        .get(&format!("/staff/queues/{queue}?status=submitted"))
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.html.matches("/staff/applications/").count(), 50);
    let next = first
        .html
        .split(r#"rel="next""#)
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .map(|href| href.trim_end_matches("\" ").replace("&amp;", "&"))
        .expect("a next link");
    assert!(next.contains("status=submitted"), "{next}");
    let second = browser.get(&next).await;
    assert_eq!(second.status, 200, "{next}: {}", second.html);
    assert_eq!(second.html.matches("/staff/applications/").count(), 1);
}

#[actix_web::test]
async fn an_admin_manages_the_accounts_of_their_division_with_an_audit_history() {
    let app = TestApp::spawn().await;
    let (ours, theirs) = two_divisions();
    let (clerk_id, mut clerk_browser) = clerk(&app, &ours.division, Role::Clerk).await;
    let (_, mut admin) = clerk(&app, &ours.division, Role::Admin).await;
    let list = admin.get("/staff/admin/accounts").await;
    assert_eq!(list.status, 200, "{}", list.html);
    assert!(
        list.html
            .contains(&format!("/staff/admin/accounts/{clerk_id}"))
    );
    let account = format!("/staff/admin/accounts/{clerk_id}");
    let page = admin.get(&account).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let csrf = hidden(&page.html, "csrf");

    let changed = admin
        .post(
            &account,
            &[
                ("csrf", &csrf),
                ("action", "role"),
                ("division", &ours.division),
                ("role", "supervisor"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.html);
    let short = admin
        .post(
            &account,
            &[
                ("csrf", &csrf),
                ("action", "password"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, 422);
    assert!(short.html.contains("12文字以上"));
    let deactivated = admin
        .post(&account, &[("csrf", &csrf), ("action", "deactivate")])
        .await;
    assert_eq!(deactivated.status, 303, "{}", deactivated.html);
    let page = admin.get(&account).await;
    assert!(
        page.html.contains(r#"<dd id="account-state">無効"#),
        "{}",
        page.html
    );
    for event in ["作成", "役割を設定", "無効にした"] {
        assert!(page.html.contains(event), "{event} in the audit history");
    }
    // Their session ends at once: the page says so and leads to the sign-in.
    let after = clerk_browser.get("/staff").await;
    assert_eq!(after.status, 401, "{}", after.html);
    assert!(
        after
            .html
            .contains(r#"href="/staff/sign-in?next=%2Fstaff""#)
    );

    // Another division's admin finds no such account; a clerk has no admin pages.
    let (_, mut outsider) = clerk(&app, &theirs.division, Role::Admin).await;
    assert_eq!(outsider.get(&account).await.status, 404);
    let outsider_csrf = csrf_of(&mut outsider, "/staff").await;
    let refused = outsider
        .post(
            &account,
            &[("csrf", &outsider_csrf), ("action", "reactivate")],
        )
        .await;
    assert_eq!(refused.status, 404, "{}", refused.html);
    let (_, mut plain) = clerk(&app, &ours.division, Role::Clerk).await;
    assert_eq!(plain.get("/staff/admin/accounts").await.status, 404);
}

#[actix_web::test]
async fn attachments_download_and_images_open_inline_under_a_sandbox() {
    let app = TestApp::spawn().await;
    let (ours, theirs) = two_divisions();
    let resident = app.resident("card-7010").await;
    let id = apply(&app, &resident, &ours, "file-1").await;
    // A stored file of the application (the upload path has tests of its own).
    let png: &[u8] =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let attachment = Uuid::now_v7();
    let key = format!("console-test-{attachment}");
    app.state.storage.put(&key, png).await.expect("stored");
    let mut connection = app.state.pool.get().await.expect("connection");
    diesel::sql_query(format!(
        "INSERT INTO attachments (id, resident_id, submission_id, content_type, size_bytes, sha256, storage_key) \
         SELECT '{attachment}', resident_id, id, 'image/png', {}, '\\x00', '{key}' FROM submissions WHERE id = '{id}'",
        png.len()
    ))
    .execute(&mut connection)
    .await
    .expect("the attachment row");
    drop(connection);

    let (_, mut browser) = clerk(&app, &ours.division, Role::Clerk).await;
    let page = browser.get(&format!("/staff/applications/{id}")).await;
    assert!(
        page.html.contains(&format!(
            r#"href="/staff/attachments/{attachment}?inline=true""#
        )),
        "{}",
        page.html
    );
    let shown = browser
        .get(&format!("/staff/attachments/{attachment}?inline=true"))
        .await;
    assert_eq!(shown.status, 200);
    assert_eq!(shown.body, png);
    assert!(shown.content_disposition.starts_with("inline"), "{shown:?}");
    assert!(
        shown.content_security_policy.starts_with("sandbox"),
        "{shown:?}"
    );
    let downloaded = browser
        .get(&format!("/staff/attachments/{attachment}"))
        .await;
    assert!(downloaded.content_disposition.starts_with("attachment"));
    let log = access_log(&app, &id.to_string()).await;
    assert_eq!(
        log,
        ["view:", "download_attachment:", "download_attachment:"]
    );
    let (_, mut outsider) = clerk(&app, &theirs.division, Role::Clerk).await;
    let refused = outsider
        .get(&format!("/staff/attachments/{attachment}"))
        .await;
    assert_eq!(refused.status, 404);
    assert_ne!(refused.body, png);
}

/// A form's pairs as the page client takes them.
fn post(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

/// The `href` of the link whose text is `text`.
fn link_to(html: &str, text: &str) -> Option<String> {
    let end = html.find(&format!(">{text}</a>"))?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    Some(html[start..end].trim_end_matches('"').replace("&amp;", "&"))
}

/// The id in the action of the rename/delete form of the saved filter `name`.
fn saved_filter_id(html: &str, queue: &str, name: &str) -> String {
    let link = html
        .find(&format!(">{name}</a>"))
        .unwrap_or_else(|| panic!("no saved filter {name}: {html}"));
    let marker = format!("/staff/queues/{queue}/filters/");
    let start = link + html[link..].find(&marker).expect("its form") + marker.len();
    html[start..start + 36].to_owned()
}

#[actix_web::test]
async fn a_clerk_saves_renames_and_deletes_filters_that_only_they_see() {
    let app = TestApp::spawn().await;
    let queue = samples().remove(0).division;
    let (_, mut mine) = clerk(&app, &queue, Role::Clerk).await;
    let (_, mut colleague) = clerk(&app, &queue, Role::Supervisor).await;
    let list = format!("/staff/queues/{queue}");
    let save = format!("/staff/queues/{queue}/filters");

    let csrf = csrf_of(&mut mine, &list).await;
    let refused = mine
        .post(&save, &[("name", "期限切れ"), ("overdue", "true")])
        .await;
    assert_eq!(refused.status, 403, "no token: {}", refused.html);
    let unnamed = mine
        .post(
            &save,
            &[("csrf", &csrf), ("name", "  "), ("overdue", "true")],
        )
        .await;
    assert_eq!(unnamed.status, 422, "{}", unnamed.html);
    assert!(
        unnamed.html.contains(r##"href="#name""##),
        "{}",
        unnamed.html
    );
    assert!(
        unnamed
            .html
            .contains("保存する条件の名前を入力してください。")
    );
    let bad_filter = mine
        .post(
            &save,
            &[
                ("csrf", &csrf),
                ("name", "壊れた条件"),
                ("from", "2026-13-45"),
            ],
        )
        .await;
    assert_eq!(bad_filter.status, 422, "a bad filter is not saved");

    let saved = mine
        .post(
            &save,
            &[
                ("csrf", &csrf),
                ("name", "期限切れ"),
                ("status", "in_progress"),
                ("overdue", "true"),
                ("cursor", "not kept"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.html);
    assert!(
        saved.location.contains("overdue=true"),
        "{}",
        saved.location
    );
    let page = mine.get(&list).await;
    let href = link_to(&page.html, "期限切れ").expect("the saved filter's link");
    assert!(
        href.starts_with(&list) && href.contains("status=in_progress"),
        "{href}"
    );
    assert!(!href.contains("cursor=not"), "the page is not kept: {href}");
    let opened = mine.get(&href).await;
    assert_eq!(opened.status, 200, "{}", opened.html);
    assert!(opened.html.contains(r#"value="in_progress" selected"#));
    assert!(
        opened
            .html
            .contains(r#"id="overdue" name="overdue" value="true" checked"#)
    );
    let id = saved_filter_id(&page.html, &queue, "期限切れ");

    // A colleague of the same queue sees none of it and cannot change it.
    let theirs = colleague.get(&list).await;
    assert!(!theirs.html.contains("期限切れ"), "{}", theirs.html);
    let csrf_theirs = hidden(&theirs.html, "csrf");
    let edit = format!("/staff/queues/{queue}/filters/{id}");
    for action in ["rename", "delete"] {
        let refused = colleague
            .post(
                &edit,
                &[
                    ("csrf", &csrf_theirs),
                    ("action", action),
                    ("name", "盗った"),
                ],
            )
            .await;
        assert_eq!(refused.status, 404, "{action}: {}", refused.html);
    }

    // Rename; a name already used is refused in both languages' terms.
    let saved = mine
        .post(
            &save,
            &[("csrf", &csrf), ("name", "未割当"), ("assignee", "none")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.html);
    let taken = mine
        .post(
            &edit,
            &[("csrf", &csrf), ("action", "rename"), ("name", "未割当")],
        )
        .await;
    assert_eq!(taken.status, 422, "{}", taken.html);
    assert!(taken.html.contains("同じ名前の条件がすでにあります。"));
    let renamed = mine
        .post(
            &edit,
            &[
                ("csrf", &csrf),
                ("action", "rename"),
                ("name", "遅れている処理中"),
            ],
        )
        .await;
    assert_eq!(renamed.status, 303, "{}", renamed.html);
    let page = mine.get(&list).await;
    assert!(link_to(&page.html, "遅れている処理中").is_some());
    assert!(link_to(&page.html, "期限切れ").is_none());

    let deleted = mine
        .post(&edit, &[("csrf", &csrf), ("action", "delete")])
        .await;
    assert_eq!(deleted.status, 303, "{}", deleted.html);
    let page = mine.get(&list).await;
    assert!(link_to(&page.html, "遅れている処理中").is_none());
    assert!(link_to(&page.html, "未割当").is_some());
    let again = mine
        .post(&edit, &[("csrf", &csrf), ("action", "delete")])
        .await;
    assert_eq!(again.status, 404, "deleted already");
}

#[actix_web::test]
async fn two_saves_at_once_cannot_both_take_the_last_place() {
    let app = TestApp::spawn().await;
    let queue = samples().remove(0).division;
    let (clerk_id, _) = account(&app, &queue, Role::Clerk, None).await;
    let mut connection = app.state.pool.get().await.expect("connection");
    for n in 1..saved_filters::MAX_PER_QUEUE {
        saved_filters::save(
            &mut connection,
            clerk_id,
            &queue,
            &format!("条件{n}"),
            "overdue=true",
        )
        .await
        .expect("room for it");
    }

    // One place left, two servers saving different names at the same moment.
    let mut first = app.state.pool.get().await.expect("connection");
    let mut second = app.state.pool.get().await.expect("connection");
    let (a, b) = futures_util::join!(
        saved_filters::save(&mut first, clerk_id, &queue, "最後A", "status=new"),
        saved_filters::save(&mut second, clerk_id, &queue, "最後B", "status=new"),
    );
    assert_eq!(
        [a.is_ok(), b.is_ok()]
            .iter()
            .filter(|saved| **saved)
            .count(),
        1,
        "exactly one takes the last place: {a:?} {b:?}"
    );
    let kept = saved_filters::list(&mut connection, clerk_id, &queue)
        .await
        .expect("list");
    assert_eq!(kept.len() as i64, saved_filters::MAX_PER_QUEUE);
}

#[actix_web::test]
async fn an_admin_creates_an_account_in_their_division_and_removes_it_from_the_division() {
    let app = TestApp::spawn().await;
    let (ours, theirs) = two_divisions();
    let (_, mut admin) = clerk(&app, &ours.division, Role::Admin).await;
    let csrf = csrf_of(&mut admin, "/staff/admin/accounts").await;
    let login = format!("new-{}", Uuid::new_v4().simple());
    let form = |division: &str, password: &str| {
        vec![
            ("csrf".to_owned(), csrf.clone()),
            ("login".to_owned(), login.clone()),
            ("display_name".to_owned(), "新任 職員".to_owned()),
            ("email".to_owned(), String::new()),
            ("password".to_owned(), password.to_owned()),
            ("division".to_owned(), division.to_owned()),
            ("role".to_owned(), "clerk".to_owned()),
        ]
    };

    let refused = admin
        .post(
            "/staff/admin/accounts",
            &post(&form(&ours.division, STAFF_PASSWORD))[1..],
        )
        .await;
    assert_eq!(refused.status, 403, "no token: {}", refused.html);
    let bad = admin
        .post(
            "/staff/admin/accounts",
            &post(&form(&theirs.division, "short")),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.html);
    for (href, text) in [
        (
            "#new-password",
            "パスワードは12文字以上で入力してください。",
        ),
        ("#new-division", "管理している課を選んでください。"),
    ] {
        assert!(bad.html.contains(&format!(r#"href="{href}""#)), "{href}");
        assert!(bad.html.contains(text), "{text}");
    }
    assert!(
        bad.html.contains(&format!(r#"value="{login}""#)),
        "the login is kept"
    );
    assert!(!bad.html.contains(r#"value="short""#), "never the password");

    let created = admin
        .post(
            "/staff/admin/accounts",
            &post(&form(&ours.division, STAFF_PASSWORD)),
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.html);
    let account = created.location.clone();
    assert!(account.starts_with("/staff/admin/accounts/"), "{account}");
    let again = admin
        .post(
            "/staff/admin/accounts",
            &post(&form(&ours.division, STAFF_PASSWORD)),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.html);
    assert!(again.html.contains("このログインIDは既に使われています。"));

    // The new clerk signs in and must choose their own password first.
    let mut newcomer = Browser::new(&app);
    assert_eq!(sign_in(&mut newcomer, &login).await, "/staff");
    assert_eq!(newcomer.get("/staff").await.location, "/staff/password");

    let page = admin.get(&account).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("作成"), "the audit history");
    let removed = admin
        .post(
            &account,
            &[
                ("csrf", &csrf),
                ("action", "remove"),
                ("division", &ours.division),
            ],
        )
        .await;
    assert_eq!(removed.status, 303, "{}", removed.html);
    // No longer of the division: the admin's pages know it no more.
    assert_eq!(admin.get(&account).await.status, 404);
    let id: Uuid = account
        .rsplit('/')
        .next()
        .and_then(|id| id.parse().ok())
        .expect("an id");
    let events = texts(
        &app,
        &format!(
            "SELECT action AS text FROM staff_account_events WHERE staff_id = '{id}' ORDER BY id"
        ),
    )
    .await;
    assert_eq!(events, ["created", "role_set", "removed_from_division"]);
}
