//! The staff side under attack: password guessing (waits, one failure count, answers that tell
//! nothing), argon2 off the request workers, client addresses behind proxies, IdP linking, My
//! Number reveals, the failed-email list per division, and the last admin of a division.

use actix_web::test::TestRequest;
use diesel_async::RunQueryDsl;
use madoguchi::identity::staff::{self, Membership, Role};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{STAFF_PASSWORD, TestApp, bearer, test_settings};
use crate::staff::pointer_of;

/// Creates a password account `login` as a clerk of kosodate.
async fn account(app: &TestApp, login: &str) -> Uuid {
    let mut connection = app.state.pool.get().await.expect("connection");
    staff::create(
        &mut connection,
        login,
        "田中",
        None,
        Some(STAFF_PASSWORD),
        &[Membership {
            division: "kosodate".to_owned(),
            role: Role::Clerk,
        }],
        None,
    )
    .await
    .expect("account")
}

fn login(login: &str, password: &str) -> TestRequest {
    TestRequest::post()
        .uri("/api/v1/staff/login")
        .set_json(json!({"login": login, "password": password}))
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    count: i32,
}

/// Password attempts of `login` counted as failed since its last success.
async fn failures(app: &TestApp, login: &str) -> i32 {
    let mut connection = app.state.pool.get().await.expect("connection");
    let row: Count = diesel::sql_query("SELECT failed_logins AS count FROM staff WHERE login = $1")
        .bind::<diesel::sql_types::Text, _>(login)
        .get_result(&mut connection)
        .await
        .expect("failures");
    row.count
}

#[actix_web::test]
async fn forty_parallel_wrong_guesses_check_no_more_passwords_than_the_limit() {
    let mut settings = test_settings();
    // A wait longer than the whole burst takes.
    settings.staff.login_delay_seconds = 600;
    settings.staff.login_delay_max_seconds = 600;
    // Forty requests queue for a few connections while passwords are hashed.
    settings.database.pool_timeout_seconds = 60;
    let app = TestApp::with_settings(settings).await;
    account(&app, "tanaka").await;
    let limit = app.state.settings.staff.max_failed_logins;
    let guesses = (0..40).map(|n| app.json(login("tanaka", &format!("wrong guess number {n}"))));
    let answers = futures_util::future::join_all(guesses).await;
    // Every checked password was counted before it was checked; the rest were not checked.
    assert_eq!(failures(&app, "tanaka").await, limit);
    for (status, problem) in answers {
        assert_eq!(status, 401, "{problem}");
        assert_eq!(problem["code"], "auth.bad_credentials");
    }
    let (status, _) = app.json(login("tanaka", STAFF_PASSWORD)).await;
    assert_eq!(
        status, 401,
        "inside the wait even the right password is not checked"
    );
    assert_eq!(failures(&app, "tanaka").await, limit);
}

#[actix_web::test]
async fn an_unknown_login_a_wrong_password_and_a_wait_answer_alike() {
    let mut settings = test_settings();
    settings.staff.max_failed_logins = 2;
    let app = TestApp::with_settings(settings).await;
    account(&app, "tanaka").await;
    let unknown = app.json(login("nobody", "some password 1")).await;
    let wrong = app.json(login("tanaka", "some password 1")).await;
    assert_eq!(app.json(login("tanaka", "some password 2")).await, wrong);
    // The account is now waiting.
    let waiting = app.json(login("tanaka", STAFF_PASSWORD)).await;
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong.1["code"], "auth.bad_credentials");
    assert_eq!(
        unknown, wrong,
        "an unknown login looks like a wrong password"
    );
    assert_eq!(waiting, wrong, "a wait looks like a wrong password");
}

/// Seconds until the wait of `login` ends (negative once it is over), by the database's clock.
async fn wait_left(app: &TestApp, login: &str) -> f64 {
    #[derive(diesel::QueryableByName)]
    struct Left {
        #[diesel(sql_type = diesel::sql_types::Double)]
        seconds: f64,
    }
    let mut connection = app.state.pool.get().await.expect("connection");
    let row: Left = diesel::sql_query(
        "SELECT coalesce(extract(epoch FROM locked_until - now()), -1)::float8 AS seconds \
         FROM staff WHERE login = $1",
    )
    .bind::<diesel::sql_types::Text, _>(login)
    .get_result(&mut connection)
    .await
    .expect("wait");
    row.seconds
}

#[actix_web::test]
async fn the_right_password_works_again_after_the_wait() {
    let mut settings = test_settings();
    settings.staff.max_failed_logins = 2;
    // A wait that no slow machine outlasts between two requests (a 1 s wait began before the
    // second guess's argon2, which can queue behind other tests' for longer than that); its end
    // is then brought forward in the database instead of slept through.
    settings.staff.login_delay_seconds = 120;
    settings.staff.login_delay_max_seconds = 120;
    let app = TestApp::with_settings(settings).await;
    account(&app, "tanaka").await;
    for n in 0..2 {
        let (status, _) = app.json(login("tanaka", &format!("wrong guess {n}"))).await;
        assert_eq!(status, 401);
    }
    assert_eq!(app.json(login("tanaka", STAFF_PASSWORD)).await.0, 401);
    let left = wait_left(&app, "tanaka").await;
    assert!(
        (60.0..=120.0).contains(&left),
        "the wait is login_delay_seconds from the second failure: {left} s left"
    );
    let mut connection = app.state.pool.get().await.expect("connection");
    diesel::sql_query(
        "UPDATE staff SET locked_until = now() - interval '1 second' WHERE login = 'tanaka'",
    )
    .execute(&mut connection)
    .await
    .expect("the wait is over");
    drop(connection);
    let (status, tokens) = app.json(login("tanaka", STAFF_PASSWORD)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        failures(&app, "tanaka").await,
        0,
        "a success resets the count"
    );
    // One more failure after a success does not start a wait.
    assert_eq!(app.json(login("tanaka", "wrong again 1")).await.0, 401);
    let (status, body): (u16, Value) = app.json(login("tanaka", STAFF_PASSWORD)).await;
    assert_eq!(status, 200, "{body}");
}
#[actix_web::test]
async fn healthz_stays_fast_while_passwords_are_checked() {
    use actix_web::test::{call_service, init_service};
    use std::cell::Cell;
    use std::time::{Duration, Instant};
    let app = TestApp::spawn().await;
    account(&app, "tanaka").await;
    // One service, built once, on this one thread: it stands for one actix worker, and work
    // done on it stalls every other request it holds.
    let service = init_service(madoguchi::startup::build_app(
        app.state.clone(),
        app.metrics.clone(),
    ))
    .await;
    let status = |request: TestRequest| {
        let service = &service;
        async move { call_service(service, request.to_request()).await.status() }
    };
    assert_eq!(status(TestRequest::get().uri("/healthz")).await, 200);
    // The middle of three, as any one can be slowed by the machine (or another test's argon2).
    let mut solo = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        assert_eq!(status(login("tanaka", STAFF_PASSWORD)).await, 200);
        solo.push(started.elapsed());
    }
    solo.sort();
    let one_login = solo[1];

    let done = Cell::new(false);
    let logins = async {
        let logins = (0..8).map(|_| status(login("tanaka", STAFF_PASSWORD)));
        let answers = futures_util::future::join_all(logins).await;
        done.set(true);
        answers
    };
    // A health check asked for every 2 ms: how late the worker gets to it is how long the
    // loop's round takes beyond those 2 ms.
    let polls = async {
        let mut rounds = Vec::new();
        while !done.get() {
            let asked = Instant::now();
            tokio::time::sleep(Duration::from_millis(2)).await;
            assert_eq!(status(TestRequest::get().uri("/healthz")).await, 200);
            rounds.push(asked.elapsed());
        }
        rounds.sort();
        rounds
    };
    let (answers, rounds) = futures_util::future::join(logins, polls).await;
    assert!(answers.iter().all(|status| *status == 200), "{answers:?}");
    assert!(rounds.len() > 4, "healthz was polled while the logins ran");
    // How long the worker stalled: what the rounds took beyond a quarter of a login each. Were
    // argon2 run on it, each of the eight checks would stall it for most of a login (3.6 to 7.5
    // logins in all, when tried); off it, only a busy machine does, now and then. (The
    // 90th percentile round against a quarter login failed on a busy machine: 8 ms against
    // 32 ms / 4, as one round in ten waits that long for a core.)
    let allowance = one_login / 4;
    let stalled: Duration = rounds
        .iter()
        .map(|round| round.saturating_sub(allowance))
        .sum();
    assert!(
        stalled < one_login * 2,
        "healthz stalled {stalled:?} beyond {allowance:?} a round (longest rounds {:?}) while \
         one login takes {one_login:?}",
        &rounds[rounds.len().saturating_sub(3)..]
    );
}

/// A wrong password from `peer`, forwarded for `forwarded` when given.
fn attempt_from(peer: &str, forwarded: Option<(&'static str, &str)>) -> TestRequest {
    let request = login("nobody", "wrong password 123").peer_addr(peer.parse().expect("address"));
    match forwarded {
        Some((name, value)) => request.insert_header((name, value.to_owned())),
        None => request,
    }
}

#[actix_web::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_allowance() {
    let mut settings = test_settings();
    settings.server.trusted_proxies = vec!["10.0.0.0/8".to_owned()];
    // Few enough that none comes back (one every 20 s) while the test runs.
    settings.staff.login_attempts_per_minute = 3;
    let app = TestApp::with_settings(settings).await;
    let limit = app.state.settings.staff.login_attempts_per_minute;
    let proxy = "10.1.2.3:40000";
    for _ in 0..limit {
        let forwarded = Some(("x-forwarded-for", "198.51.100.1"));
        assert_eq!(app.json(attempt_from(proxy, forwarded)).await.0, 401);
    }
    // The same client, whatever it put on the left and through another proxy hop.
    for forwarded in [
        ("x-forwarded-for", "198.51.100.1"),
        ("x-forwarded-for", "192.0.2.50, 198.51.100.1, 10.9.9.9"),
        ("forwarded", "for=198.51.100.1;proto=https"),
    ] {
        let (status, problem) = app.json(attempt_from(proxy, Some(forwarded))).await;
        assert_eq!(status, 429, "{forwarded:?}: {problem}");
        assert_eq!(problem["code"], "auth.too_many_attempts");
    }
    for other in [
        ("x-forwarded-for", "198.51.100.2"),
        ("forwarded", "for=\"[2001:db8::2]:4711\""),
    ] {
        let (status, _) = app.json(attempt_from(proxy, Some(other))).await;
        assert_eq!(
            status, 401,
            "another client has its own allowance: {other:?}"
        );
    }
}

#[actix_web::test]
async fn from_an_untrusted_peer_forwarding_headers_are_ignored() {
    let mut settings = test_settings();
    settings.server.trusted_proxies = vec!["10.0.0.0/8".to_owned()];
    // Few enough that none comes back (one every 20 s) while the test runs.
    settings.staff.login_attempts_per_minute = 3;
    let app = TestApp::with_settings(settings).await;
    let limit = app.state.settings.staff.login_attempts_per_minute;
    let peer = "203.0.113.7:40000";
    for n in 0..limit {
        let forwarded = format!("198.51.100.{n}");
        let request = attempt_from(peer, Some(("x-forwarded-for", &forwarded)));
        assert_eq!(app.json(request).await.0, 401);
    }
    let forwarded = Some(("forwarded", "for=198.51.100.200"));
    let (status, problem) = app.json(attempt_from(peer, forwarded)).await;
    assert_eq!(
        status, 429,
        "a new forwarded address buys nothing: {problem}"
    );
}

/// An application with a My Number, submitted with a card signature; its id, the My Number's
/// pointer and the division.
pub(crate) async fn my_number_application(
    app: &TestApp,
    resident: &str,
) -> (String, String, String) {
    let procedure = crate::helpers::CATALOG
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
    let token = app.resident(resident).await;
    let (signature, nonce) = app
        .card_signature(&token, &procedure.definition.id, &data, "sign-alice")
        .await;
    let (status, created) = app
        .json(
            TestRequest::post()
                .uri(&format!(
                    "/api/v1/procedures/{}/submissions",
                    procedure.definition.id
                ))
                .insert_header(bearer(&token))
                .insert_header(("idempotency-key", resident.to_owned()))
                .set_json(json!({
                    "data": data,
                    "signature": signature,
                    "signing_nonce": nonce,
                })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let field_path = pointer_of(&data, "123456789018", "").expect("the My Number's pointer");
    (
        created["id"].as_str().expect("id").to_owned(),
        field_path,
        procedure.definition.division.clone(),
    )
}

fn staff_post(path: &str, token: &str, body: Value) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header(bearer(token))
        .set_json(body)
}

const REASON: &str = "住基ネットとの照合のため";

#[actix_web::test]
async fn only_the_assignee_or_a_supervisor_reveals_a_my_number_and_only_while_it_is_open() {
    let app = TestApp::with_settings(crate::helpers::settings_with_test_pki()).await;
    let (id, field_path, division) = my_number_application(&app, "card-9701").await;
    let (clerk, other_clerk, supervisor) = (
        app.staff(&division, "clerk").await,
        app.staff(&division, "clerk").await,
        app.staff(&division, "supervisor").await,
    );
    let reveal = |token: &str| {
        staff_post(
            &format!("/api/v1/staff/submissions/{id}/reveal"),
            token,
            json!({"field_path": field_path, "reason": REASON}),
        )
    };

    let (status, problem) = app.json(reveal(&clerk)).await;
    assert_eq!(status, 403, "nobody's yet, so not this clerk's: {problem}");
    assert_eq!(problem["code"], "staff.not_assignee");
    assert!(problem["detail"]["ja"].is_string() && problem["detail"]["en"].is_string());
    let (status, claimed) = app
        .json(staff_post(
            &format!("/api/v1/staff/queues/{division}/claim"),
            &clerk,
            json!({}),
        ))
        .await;
    assert_eq!(status, 200, "{claimed}");
    let (status, problem) = app.json(reveal(&other_clerk)).await;
    assert_eq!(status, 403, "another clerk's: {problem}");
    assert_eq!(problem["code"], "staff.not_assignee");
    let (status, revealed) = app.json(reveal(&clerk)).await;
    assert_eq!(status, 200, "the assignee: {revealed}");
    assert_eq!(revealed["my_number"], "123456789018");
    let (status, revealed) = app.json(reveal(&supervisor)).await;
    assert_eq!(status, 200, "a supervisor: {revealed}");

    let (status, done) = app
        .json(staff_post(
            &format!("/api/v1/staff/submissions/{id}/transitions"),
            &clerk,
            json!({"action": "complete"}),
        ))
        .await;
    assert_eq!(status, 200, "{done}");
    let (status, problem) = app.json(reveal(&clerk)).await;
    assert_eq!(status, 409, "closed: {problem}");
    assert_eq!(problem["code"], "my_number.application_closed");
    assert!(problem["detail"]["ja"].is_string() && problem["detail"]["en"].is_string());
    let (status, revealed) = app.json(reveal(&supervisor)).await;
    assert_eq!(status, 200, "a supervisor may on a closed one: {revealed}");
}

#[actix_web::test]
async fn a_my_number_reveal_needs_a_specific_reason_and_stays_within_the_hourly_limit() {
    let mut settings = crate::helpers::settings_with_test_pki();
    settings.staff.my_number_reveals_per_hour = 2;
    let app = TestApp::with_settings(settings).await;
    let (id, field_path, division) = my_number_application(&app, "card-9702").await;
    let supervisor = app.staff(&division, "supervisor").await;
    let reveal = |reason: &str| {
        staff_post(
            &format!("/api/v1/staff/submissions/{id}/reveal"),
            &supervisor,
            json!({"field_path": field_path, "reason": reason}),
        )
    };
    for vague in [".", "確認", "..........", "  照合  ", "!!!???...,,,"] {
        let (status, problem) = app.json(reveal(vague)).await;
        assert_eq!(status, 422, "{vague:?}: {problem}");
        assert_eq!(
            crate::helpers::field_errors(&problem),
            [("/reason".to_owned(), "too_vague".to_owned())],
            "{vague:?}"
        );
    }
    for reason in [REASON, "checking the resident register"] {
        let (status, revealed) = app.json(reveal(reason)).await;
        assert_eq!(status, 200, "{reason}: {revealed}");
    }
    let (status, problem) = app.json(reveal(REASON)).await;
    assert_eq!(status, 429, "{problem}");
    assert_eq!(problem["code"], "my_number.reveal_limit");
    assert!(problem["detail"]["ja"].is_string() && problem["detail"]["en"].is_string());

    // Every reveal that happened is on the resident's access log, with its reason.
    let mut connection = app.state.pool.get().await.expect("connection");
    let logged: Vec<Count> = diesel::sql_query(
        "SELECT count(*)::int AS count FROM access_log WHERE action = 'reveal_my_number'",
    )
    .load(&mut connection)
    .await
    .expect("count");
    assert_eq!(logged[0].count, 2);
}

async fn sql(app: &TestApp, statement: &str) {
    let mut connection = app.state.pool.get().await.expect("connection");
    diesel::sql_query(statement)
        .execute(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
}

/// A failed message about submission `about` (or, without one, a division digest to `to`).
async fn failed_message(app: &TestApp, about: Option<&str>, to: &str) -> String {
    let id = Uuid::new_v4().to_string();
    let (template, submission) = match about {
        Some(submission) => ("resident_status", format!("'{submission}'")),
        None => ("division_overdue", "NULL".to_owned()),
    };
    sql(
        app,
        &format!(
            "INSERT INTO outbox (id, template, language, recipient, payload, submission_id, status, attempts, last_error) \
             VALUES ('{id}', '{template}', 'ja', '{to}', '{{}}', {submission}, 'failed', 8, 'refused')"
        ),
    )
    .await;
    id
}

#[actix_web::test]
async fn an_admin_sees_and_retries_only_their_own_divisions_failed_emails() {
    let app = TestApp::spawn().await;
    let (procedure, data) = crate::helpers::sample_application();
    let mut submissions = Vec::new();
    for (resident, division) in [("card-9801", "kosodate"), ("card-9802", "zeimu")] {
        let token = app.resident(resident).await;
        let (status, created) = app
            .json(
                TestRequest::post()
                    .uri(&format!("/api/v1/procedures/{procedure}/submissions"))
                    .insert_header(bearer(&token))
                    .insert_header(("idempotency-key", resident.to_owned()))
                    .set_json(json!({"data": data})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().expect("id").to_owned();
        sql(
            &app,
            &format!("UPDATE submissions SET division = '{division}' WHERE id = '{id}'"),
        )
        .await;
        submissions.push(id);
    }
    let ours = failed_message(&app, Some(&submissions[0]), "a@example.jp").await;
    let our_digest = failed_message(&app, None, "kosodate@city.example.lg.jp").await;
    let theirs = failed_message(&app, Some(&submissions[1]), "b@example.jp").await;
    let their_digest = failed_message(&app, None, "zeimu@city.example.lg.jp").await;
    let admin = app.staff("kosodate", "admin").await;

    let (status, listed) = app
        .get_as("/api/v1/staff/admin/outbox/failed", &admin)
        .await;
    assert_eq!(status, 200, "{listed}");
    let mut ids: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|message| message["id"].as_str())
        .collect();
    ids.sort();
    let mut expected = vec![ours.as_str(), our_digest.as_str()];
    expected.sort();
    assert_eq!(ids, expected, "only kosodate's messages");

    let retry = |id: &str| {
        TestRequest::post()
            .uri(&format!("/api/v1/staff/admin/outbox/{id}/retry"))
            .insert_header(bearer(&admin))
    };
    for other in [&theirs, &their_digest] {
        let (status, problem) = app.json(retry(other)).await;
        assert_eq!(status, 404, "another division's message: {problem}");
    }
    for own in [&ours, &our_digest] {
        assert_eq!(app.json(retry(own)).await.0, 204);
    }
    let clerk = app.staff("kosodate", "clerk").await;
    let (status, _) = app
        .get_as("/api/v1/staff/admin/outbox/failed", &clerk)
        .await;
    assert_eq!(status, 403);
}

#[actix_web::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let app = TestApp::spawn().await;
    for round in 0..8 {
        let division = format!("division-{round}");
        let (first_id, first) = app.staff_member(&division, "admin").await;
        let (second_id, second) = app.staff_member(&division, "admin").await;
        let demote = |id: Uuid, token: &str| {
            TestRequest::put()
                .uri(&format!(
                    "/api/v1/staff/admin/staff/{id}/memberships/{division}"
                ))
                .insert_header(bearer(token))
                .set_json(json!({"role": "clerk"}))
        };
        let (one, other) = futures_util::future::join(
            app.json(demote(second_id, &first)),
            app.json(demote(first_id, &second)),
        )
        .await;
        let mut statuses = [one.0, other.0];
        statuses.sort_unstable();
        assert_eq!(statuses[0], 204, "round {round}: {one:?} {other:?}");
        assert!(
            [403, 409].contains(&statuses[1]),
            "round {round}: the second is refused: {one:?} {other:?}"
        );
        let mut connection = app.state.pool.get().await.expect("connection");
        let admins: Count = diesel::sql_query(
            "SELECT count(*)::int AS count FROM staff_memberships WHERE division = $1 AND role = 'admin'",
        )
        .bind::<diesel::sql_types::Text, _>(&division)
        .get_result(&mut connection)
        .await
        .expect("count");
        assert_eq!(admins.count, 1, "round {round}");
    }
}
