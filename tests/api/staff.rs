//! The staff side: sign-in, queues and their pages, claiming under concurrency,
//! division isolation, processing (return with comments, resubmit, complete), deadlines that
//! skip closed days and pause while returned, the audit trail, and masked My Numbers.

use std::collections::{BTreeSet, HashMap};
use std::sync::{LazyLock, Mutex, Once};

use actix_web::test::TestRequest;
use chrono::NaiveDate;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::RunQueryDsl;
use madoguchi::forms::Assurance;
use madoguchi::forms::lint::city_today;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    CATALOG, STAFF_PASSWORD, TestApp, bearer, field_errors, settings_with_test_pki, test_settings,
};

/// A procedure residents signed in with the dev card can apply for, without attachments,
/// without routing rules (so its queue is its division) and with a processing period.
#[derive(Clone)]
pub(crate) struct Sample {
    pub(crate) procedure: String,
    pub(crate) division: String,
    days: u32,
    pub(crate) data: Value,
}

pub(crate) fn samples() -> Vec<Sample> {
    CATALOG
        .procedures
        .values()
        .filter(|p| {
            matches!(
                p.definition.assurance,
                Assurance::None | Assurance::CardAuth
            )
        })
        .filter(|p| p.definition.routing.is_empty() && p.definition.processing_days > 0)
        .filter_map(|p| {
            let example = p
                .definition
                .examples
                .iter()
                .find(|e| e.valid && e.as_of.is_none())?;
            (!example.data.to_string().contains("01900000-")).then(|| Sample {
                procedure: p.definition.id.clone(),
                division: p.definition.division.clone(),
                days: p.definition.processing_days,
                data: example.data.clone(),
            })
        })
        .collect()
}

fn sample() -> Sample {
    samples().remove(0)
}

/// Two samples of different divisions.
pub(crate) fn two_divisions() -> (Sample, Sample) {
    let all = samples();
    let first = all[0].clone();
    let second = all
        .iter()
        .find(|s| s.division != first.division)
        .expect("samples in two divisions")
        .clone();
    (first, second)
}

pub(crate) async fn apply(app: &TestApp, token: &str, sample: &Sample, key: &str) -> Uuid {
    let (status, body) = app
        .json(
            TestRequest::post()
                .uri(&format!(
                    "/api/v1/procedures/{}/submissions",
                    sample.procedure
                ))
                .insert_header(bearer(token))
                .insert_header(("idempotency-key", key.to_owned()))
                .set_json(json!({"data": sample.data})),
        )
        .await;
    assert_eq!(status, 201, "{}: {body}", sample.procedure);
    body["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("id")
}

fn staff_get(path: &str, token: &str) -> TestRequest {
    TestRequest::get().uri(path).insert_header(bearer(token))
}

fn staff_post(path: &str, token: &str, body: Value) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header(bearer(token))
        .set_json(body)
}

async fn sql(app: &TestApp, statement: &str) {
    let mut connection = app.state.pool.get().await.expect("connection");
    diesel::sql_query(statement)
        .execute(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("{statement}: {error}"));
}

#[derive(diesel::QueryableByName)]
struct Text {
    #[diesel(sql_type = diesel::sql_types::Text)]
    text: String,
}

async fn texts(app: &TestApp, query: &str) -> Vec<String> {
    let mut connection = app.state.pool.get().await.expect("connection");
    let rows: Vec<Text> = diesel::sql_query(query)
        .load(&mut connection)
        .await
        .unwrap_or_else(|error| panic!("{query}: {error}"));
    rows.into_iter().map(|row| row.text).collect()
}

fn date(text: &str) -> NaiveDate {
    text.parse().expect("a date")
}

#[actix_web::test]
async fn staff_sign_in_with_a_password_and_an_unknown_login_is_refused() {
    let app = TestApp::spawn().await;
    let mut connection = app.state.pool.get().await.expect("connection");
    madoguchi::identity::staff::create(
        &mut connection,
        "tanaka",
        "田中",
        None,
        Some(STAFF_PASSWORD),
        &[madoguchi::identity::staff::Membership {
            division: "kosodate".to_owned(),
            role: madoguchi::identity::staff::Role::Clerk,
        }],
        None,
    )
    .await
    .expect("account");
    drop(connection);
    let login = |password: &str| {
        TestRequest::post()
            .uri("/api/v1/staff/login")
            .set_json(json!({"login": "tanaka", "password": password}))
    };

    let (status, tokens) = app.json(login(STAFF_PASSWORD)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    let (status, queues) = app
        .json(staff_get(
            "/api/v1/staff/queues",
            tokens["access_token"].as_str().unwrap_or_default(),
        ))
        .await;
    assert_eq!(status, 200, "{queues}");
    // A resident's token is not a staff token.
    let resident = app.resident("card-9001").await;
    let (status, _) = app.json(staff_get("/api/v1/staff/queues", &resident)).await;
    assert_eq!(status, 401);

    let (status, problem) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/staff/login")
                .set_json(json!({"login": "nobody", "password": STAFF_PASSWORD})),
        )
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (401, Some("auth.bad_credentials"))
    );

    // Waits after repeated failures: tests/api/staff_security.rs.
}

#[actix_web::test]
async fn fifty_concurrent_claims_on_twenty_items_give_each_item_to_exactly_one_clerk() {
    let mut settings = test_settings();
    settings.database.pool_size = 24;
    let app = TestApp::with_settings(settings).await;
    let sample = sample();
    let resident = app.resident("card-9101").await;
    let mut submitted = BTreeSet::new();
    for n in 0..20 {
        submitted.insert(apply(&app, &resident, &sample, &format!("c{n}")).await);
    }
    let mut clerks = Vec::new();
    for _ in 0..10 {
        clerks.push(app.staff_member(&sample.division, "clerk").await);
    }

    let service = actix_web::test::init_service(madoguchi::startup::build_app(
        app.state.clone(),
        app.metrics.clone(),
    ))
    .await;
    let claims = (0..50).map(|n| {
        let (clerk, token) = &clerks[n % clerks.len()];
        let request = TestRequest::post()
            .uri(&format!("/api/v1/staff/queues/{}/claim", sample.division))
            .insert_header(bearer(token))
            .to_request();
        let service = &service;
        async move {
            let response = actix_web::test::call_service(service, request).await;
            let status = response.status().as_u16();
            let body = actix_web::test::read_body(response).await;
            (
                *clerk,
                status,
                serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
            )
        }
    });
    let results = futures_util::future::join_all(claims).await;

    let mut claimed: HashMap<Uuid, Uuid> = HashMap::new();
    let mut nothing_left = 0;
    for (clerk, status, body) in results {
        match status {
            200 => {
                let id: Uuid = body["id"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .expect("id");
                assert_eq!(body["status"], "in_progress");
                assert_eq!(body["assignee_id"], json!(clerk));
                let previous = claimed.insert(id, clerk);
                assert!(previous.is_none(), "{id} was handed out twice");
            }
            204 => nothing_left += 1,
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert_eq!(claimed.len(), 20, "every item was claimed");
    assert_eq!(nothing_left, 30, "the other 30 claims found nothing left");
    assert_eq!(claimed.keys().copied().collect::<BTreeSet<_>>(), submitted);

    // The database agrees: one assignee each, one `start` event each.
    for (id, clerk) in &claimed {
        let assignee = texts(
            &app,
            &format!("SELECT assignee_id::text AS text FROM submissions WHERE id = '{id}'"),
        )
        .await;
        assert_eq!(assignee, [clerk.to_string()]);
        let starts = texts(
            &app,
            &format!(
                "SELECT actor_id::text AS text FROM submission_events
                  WHERE submission_id = '{id}' AND to_status = 'in_progress'"
            ),
        )
        .await;
        assert_eq!(starts, [clerk.to_string()], "exactly one start event");
    }
}

#[actix_web::test]
async fn a_clerk_of_one_division_cannot_see_or_touch_another_divisions_work() {
    let app = TestApp::spawn().await;
    let (ours, theirs) = two_divisions();
    let resident = app.resident("card-9201").await;
    let their_id = apply(&app, &resident, &theirs, "b1").await;
    let our_id = apply(&app, &resident, &ours, "a1").await;
    let clerk_a = app.staff(&ours.division, "clerk").await;
    let supervisor_a = app.staff(&ours.division, "supervisor").await;
    let (clerk_b_id, clerk_b) = app.staff_member(&theirs.division, "clerk").await;

    // An attachment on division B's application.
    let attachment = Uuid::now_v7();
    app.state
        .storage
        .put(&attachment.to_string(), b"%PDF-1.4\n%%EOF\n")
        .await
        .expect("stored");
    sql(
        &app,
        &format!(
            "INSERT INTO attachments (id, resident_id, submission_id, content_type, size_bytes, sha256, storage_key)
             SELECT '{attachment}', resident_id, id, 'application/pdf', 15, '\\x00', '{attachment}'
               FROM submissions WHERE id = '{their_id}'"
        ),
    )
    .await;
    let attempts = [
        staff_get(&format!("/api/v1/staff/submissions/{their_id}"), &clerk_a),
        staff_get(
            &format!("/api/v1/staff/queues/{}/submissions", theirs.division),
            &clerk_a,
        ),
        staff_post(
            &format!("/api/v1/staff/queues/{}/claim", theirs.division),
            &clerk_a,
            json!({}),
        ),
        staff_post(
            &format!("/api/v1/staff/submissions/{their_id}/notes"),
            &clerk_a,
            json!({"body": "見ました"}),
        ),
        staff_post(
            &format!("/api/v1/staff/submissions/{their_id}/transitions"),
            &clerk_a,
            json!({"action": "start"}),
        ),
        staff_post(
            &format!("/api/v1/staff/submissions/{their_id}/transitions"),
            &supervisor_a,
            json!({"action": "reject", "reason": "x"}),
        ),
        staff_post(
            &format!("/api/v1/staff/submissions/{their_id}/assign"),
            &supervisor_a,
            json!({"staff_id": clerk_b_id}),
        ),
        staff_post(
            &format!("/api/v1/staff/submissions/{their_id}/reveal"),
            &clerk_a,
            json!({"field_path": "/my_number", "reason": "住基ネットとの照合のため"}),
        ),
        staff_get(
            &format!("/api/v1/staff/submissions/{their_id}/revisions/1/diff"),
            &clerk_a,
        ),
        staff_get(&format!("/api/v1/staff/attachments/{attachment}"), &clerk_a),
    ];
    for request in attempts {
        let request = request.to_request();
        let path = request.path().to_owned();
        let response = actix_web::test::call_service(
            &actix_web::test::init_service(madoguchi::startup::build_app(
                app.state.clone(),
                app.metrics.clone(),
            ))
            .await,
            request,
        )
        .await;
        let status = response.status().as_u16();
        let body: Value = actix_web::test::read_body_json(response).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body["code"], "not_found", "{path}");
    }
    // Nothing happened to division B's application, and nobody of A left a trace.
    let state = texts(
        &app,
        &format!(
            "SELECT status || ':' || coalesce(assignee_id::text, '-') AS text FROM submissions WHERE id = '{their_id}'"
        ),
    )
    .await;
    assert_eq!(state, ["submitted:-"]);
    for table in ["staff_notes", "access_log"] {
        let rows = texts(&app, &format!("SELECT id::text AS text FROM {table}")).await;
        assert!(rows.is_empty(), "{table}: {rows:?}");
    }

    // A's queues do not include B's; B's clerk sees and downloads B's work.
    let (_, queues) = app.json(staff_get("/api/v1/staff/queues", &clerk_a)).await;
    let ids: Vec<&str> = queues
        .as_array()
        .expect("queues")
        .iter()
        .filter_map(|q| q["id"].as_str())
        .collect();
    assert!(ids.contains(&ours.division.as_str()), "{ids:?}");
    assert!(!ids.contains(&theirs.division.as_str()), "{ids:?}");
    let (status, _) = app
        .json(staff_get(
            &format!("/api/v1/staff/submissions/{our_id}"),
            &clerk_a,
        ))
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .json(staff_get(
            &format!("/api/v1/staff/submissions/{their_id}"),
            &clerk_b,
        ))
        .await;
    assert_eq!(status, 200);
    let response = app
        .call(staff_get(
            &format!("/api/v1/staff/attachments/{attachment}"),
            &clerk_b,
        ))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let actions = texts(
        &app,
        &format!(
            "SELECT action AS text FROM access_log WHERE submission_id = '{their_id}' ORDER BY id"
        ),
    )
    .await;
    assert_eq!(actions, ["view", "download_attachment"]);
}

#[actix_web::test]
async fn due_dates_skip_closed_days_and_pause_while_returned() {
    let app = TestApp::spawn().await;
    // The configured calendar: 2026-11-20 is a Friday and 11-23 (Mon) 勤労感謝の日; the city hall
    // is closed 12/29–1/3.
    let calendar = &app.state.calendar;
    assert_eq!(
        calendar.add_business_days(date("2026-11-20"), 1),
        date("2026-11-24")
    );
    assert_eq!(
        calendar.add_business_days(date("2026-11-20"), 3),
        date("2026-11-26")
    );
    assert_eq!(
        calendar.add_business_days(date("2026-12-28"), 1),
        date("2027-01-04")
    );
    assert_eq!(
        calendar.business_days_between(date("2026-11-20"), date("2026-11-30")),
        5
    );

    let sample = sample();
    let resident = app.resident("card-9301").await;
    let id = apply(&app, &resident, &sample, "d1").await;
    let (_, mine) = app
        .json(staff_get(&format!("/api/v1/submissions/{id}"), &resident))
        .await;
    let due = date(mine["due_date"].as_str().expect("a due date"));
    assert_eq!(due, calendar.add_business_days(city_today(), sample.days));

    let clerk = app.staff(&sample.division, "clerk").await;
    let (status, _) = app
        .json(staff_post(
            &format!("/api/v1/staff/queues/{}/claim", sample.division),
            &clerk,
            json!({}),
        ))
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .json(staff_post(
            &format!("/api/v1/staff/submissions/{id}/transitions"),
            &clerk,
            json!({"action": "return", "reason": "添付書類の確認のため"}),
        ))
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("returned")),
        "{body}"
    );

    // Twelve days with the resident.
    sql(
        &app,
        &format!(
            "UPDATE submissions SET returned_at = returned_at - interval '12 days' WHERE id = '{id}'"
        ),
    )
    .await;
    let returned_on = texts(
        &app,
        &format!(
            "SELECT to_char(returned_at AT TIME ZONE 'Asia/Tokyo', 'YYYY-MM-DD') AS text FROM submissions WHERE id = '{id}'"
        ),
    )
    .await;
    let paused = calendar.business_days_between(date(&returned_on[0]), city_today());
    assert!(paused > 0, "twelve calendar days hold business days");

    let (status, answered) = app
        .json(staff_post(
            &format!("/api/v1/submissions/{id}/resubmit"),
            &resident,
            json!({"data": sample.data}),
        ))
        .await;
    assert_eq!(status, 200, "{answered}");
    assert_eq!(answered["status"], "submitted");
    assert_eq!(answered["revision"], 2);
    let moved = date(answered["due_date"].as_str().expect("due date"));
    assert_eq!(moved, calendar.add_business_days(due, paused));
    assert!(moved > due);
    let cleared = texts(
        &app,
        &format!(
            "SELECT coalesce(returned_at::text, 'none') AS text FROM submissions WHERE id = '{id}'"
        ),
    )
    .await;
    assert_eq!(cleared, ["none"]);

    // Overdue: past its date and with the city.
    sql(
        &app,
        &format!("UPDATE submissions SET due_date = current_date - 3 WHERE id = '{id}'"),
    )
    .await;
    let (_, queues) = app.json(staff_get("/api/v1/staff/queues", &clerk)).await;
    let queue = queues
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["id"] == json!(sample.division)))
        .expect("the division's queue");
    assert_eq!(
        (queue["new"].as_i64(), queue["overdue"].as_i64()),
        (Some(1), Some(1)),
        "{queue}"
    );
    let (_, page) = app
        .json(staff_get(
            &format!(
                "/api/v1/staff/queues/{}/submissions?overdue=true",
                sample.division
            ),
            &clerk,
        ))
        .await;
    assert_eq!(page["items"][0]["id"], json!(id));
    assert_eq!(page["items"][0]["overdue"], true);
    let (_, page) = app
        .json(staff_get(
            &format!(
                "/api/v1/staff/queues/{}/submissions?overdue=false",
                sample.division
            ),
            &clerk,
        ))
        .await;
    assert_eq!(page["items"], json!([]));
}

/// Counts the statements each test database receives, through diesel's instrumentation hook on
/// every new connection (the pool's too): the connection remembers its database from the URL
/// it was opened with, so parallel tests do not see each other's queries.
static QUERIES: LazyLock<Mutex<HashMap<String, Vec<String>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));
/// The statements each test database's connections prepared once and cached.
static CACHED: LazyLock<Mutex<HashMap<String, Vec<String>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

struct QueryLog {
    database: Option<String>,
}

impl Instrumentation for QueryLog {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartEstablishConnection { url, .. } => {
                let path = url.split('?').next().unwrap_or_default();
                self.database = path.rsplit('/').next().map(str::to_owned);
            }
            InstrumentationEvent::StartQuery { query, .. } => {
                let text = query.to_string();
                // Not work done for the request: the session settings of a new connection.
                if text.starts_with("SET ") {
                    return;
                }
                if let (Some(database), Ok(mut log)) = (&self.database, QUERIES.lock()) {
                    log.entry(database.clone()).or_default().push(text);
                }
            }
            InstrumentationEvent::CacheQuery { sql, .. } => {
                if let (Some(database), Ok(mut cached)) = (&self.database, CACHED.lock()) {
                    cached
                        .entry(database.clone())
                        .or_default()
                        .push(sql.to_owned());
                }
            }
            _ => {}
        }
    }
}

fn count_queries() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        diesel::connection::set_default_instrumentation(|| {
            Some(Box::new(QueryLog { database: None }))
        })
        .expect("instrumentation");
    });
}

fn take_queries(database: &str) -> Vec<String> {
    QUERIES
        .lock()
        .map(|mut log| log.remove(database).unwrap_or_default())
        .unwrap_or_default()
}

/// Every statement of an application is prepared once per connection and then reused: a
/// statement diesel cannot cache (a `sql_query`, a multi-row INSERT) would be parsed and planned
/// again for every application, a round trip more each time (the throughput benchmark found two).
#[actix_web::test]
async fn an_application_reuses_prepared_statements() {
    count_queries();
    let mut settings = crate::helpers::test_settings();
    settings.database.pool_size = 1;
    let app = TestApp::with_settings(settings).await;
    let sample = sample();
    let resident = app.resident("card-9402").await;
    apply(&app, &resident, &sample, "warm-up").await;

    take_queries(&app.database.name);
    apply(&app, &resident, &sample, "measured").await;
    let ran = take_queries(&app.database.name);
    let cached = CACHED
        .lock()
        .map(|cached| cached.get(&app.database.name).cloned().unwrap_or_default())
        .unwrap_or_default();
    let statements: Vec<&str> = ran
        .iter()
        .map(|text| text.split(" -- binds:").next().unwrap_or_default())
        .filter(|sql| !["BEGIN", "COMMIT"].contains(sql))
        .collect();
    // An application with no signature, attachment or draft: the session check and the one
    // statement (src/submissions/insert.rs), in autocommit.
    assert_eq!(statements.len(), 2, "{ran:#?}");
    assert!(statements[0].starts_with("SELECT EXISTS"), "{ran:#?}");
    assert!(
        statements[1].starts_with("WITH s AS (INSERT INTO submissions"),
        "{ran:#?}"
    );
    assert!(!ran.iter().any(|sql| sql == "BEGIN"), "{ran:#?}");
    let unprepared: Vec<&&str> = statements
        .iter()
        .filter(|sql| !cached.iter().any(|c| c == **sql))
        .collect();
    assert!(
        unprepared.is_empty(),
        "prepared again each time: {unprepared:#?}"
    );
}

#[actix_web::test]
async fn a_queue_page_costs_the_same_three_statements_whatever_the_table_holds() {
    count_queries();
    let app = TestApp::spawn().await;
    let sample = sample();
    let resident = app.resident("card-9401").await;
    apply(&app, &resident, &sample, "q1").await;
    let clerk = app.staff(&sample.division, "clerk").await;
    let division = &sample.division;
    let page_of = |query: &str| {
        staff_get(
            &format!("/api/v1/staff/queues/{division}/submissions?{query}"),
            &clerk,
        )
    };

    // A small table.
    take_queries(&app.database.name);
    let (status, page) = app.json(page_of("limit=10")).await;
    assert_eq!(status, 200, "{page}");
    let small = take_queries(&app.database.name);

    // 3,000 more applications over every procedure of the catalog, in this and other divisions.
    sql(
        &app,
        "INSERT INTO submissions (id, reference, resident_id, procedure_id, content_hash, status,
                                  data, fee_yen, queue, division, submitted_at, due_date)
         SELECT gen_random_uuid(), 'R' || n, s.resident_id, v.procedure_id, v.content_hash,
                (ARRAY['submitted','in_progress','returned','completed'])[1 + n % 4], '{}', 0,
                CASE WHEN n % 3 = 0 THEN s.queue ELSE 'other-' || (n % 40) END,
                CASE WHEN n % 3 = 0 THEN s.division ELSE 'other-' || (n % 40) END,
                now() - n * interval '1 minute', current_date + (n % 20) - 10
           FROM generate_series(1, 3000) AS n
           CROSS JOIN (SELECT resident_id, queue, division FROM submissions LIMIT 1) AS s
           JOIN LATERAL (SELECT procedure_id, content_hash FROM procedure_versions
                          ORDER BY procedure_id OFFSET n % 170 LIMIT 1) AS v ON true",
    )
    .await;

    let filters = [
        "limit=10",
        "limit=50&status=in_progress",
        "overdue=true&assignee=none",
        "from=2020-01-01&to=2099-12-31&procedure=no-such-procedure",
    ];
    for filter in filters {
        take_queries(&app.database.name);
        let (status, page) = app.json(page_of(filter)).await;
        assert_eq!(status, 200, "{filter}: {page}");
        let large = take_queries(&app.database.name);
        assert_eq!(
            large.len(),
            small.len(),
            "{filter}: the same number of statements with 3,000 more rows: {large:#?}"
        );
        assert_eq!(
            large.len(),
            3,
            "the session is open, who is asking (memberships), then the page: {large:#?}"
        );
        let page_sql = &large[2];
        assert!(
            page_sql.contains("\"submissions\".\"division\" = ANY("),
            "{page_sql}"
        );
    }

    // Following next_cursor visits every row of the queue once, oldest first, 3 statements a page.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(cursor) => format!("limit=200&cursor={cursor}"),
            None => "limit=200".to_owned(),
        };
        take_queries(&app.database.name);
        let (status, page) = app.json(page_of(&query)).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(take_queries(&app.database.name).len(), 3);
        pages += 1;
        for item in page["items"].as_array().expect("items") {
            assert!(item.get("data").is_none(), "no answers in lists");
            seen.push((
                item["submitted_at"].as_str().unwrap_or_default().to_owned(),
                item["id"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen.len(),
        1 + 1000,
        "the sample and every third generated row"
    );
    assert_eq!(pages, 6);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), seen.len(), "no row twice");

    let (status, problem) = app.json(page_of("cursor=garbage")).await;
    assert_eq!(status, 422);
    assert_eq!(
        field_errors(&problem),
        [("/cursor".to_owned(), "invalid_cursor".to_owned())]
    );
}

/// The JSON pointer of the first string equal to `needle` in `value`.
pub(crate) fn pointer_of(value: &Value, needle: &str, at: &str) -> Option<String> {
    match value {
        Value::String(text) if text == needle => Some(at.to_owned()),
        Value::Object(map) => map
            .iter()
            .find_map(|(key, inner)| pointer_of(inner, needle, &format!("{at}/{key}"))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, inner)| pointer_of(inner, needle, &format!("{at}/{index}"))),
        _ => None,
    }
}

#[actix_web::test]
async fn staff_see_my_numbers_masked_unless_revealed_with_a_reason_and_residents_see_who_looked() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let resident = app.resident("card-9501").await;
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
                .insert_header(("idempotency-key", "mn"))
                .set_json(json!({
                    "data": data,
                    "signature": signature,
                    "signing_nonce": nonce,
                })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let field_path = pointer_of(&data, "123456789018", "").expect("the My Number's pointer");
    let clerk = app.staff(&procedure.definition.division, "clerk").await;

    let (status, opened) = app
        .json(staff_get(
            &format!("/api/v1/staff/submissions/{id}"),
            &clerk,
        ))
        .await;
    assert_eq!(status, 200, "{opened}");
    let shown = opened["data"].to_string();
    assert!(!shown.contains("123456789018"), "masked for staff: {shown}");
    assert_eq!(
        opened["data"].pointer(&field_path),
        Some(&json!("********9018"))
    );

    // Only the assignee (or a supervisor) reveals: the clerk takes it on.
    let (status, claimed) = app
        .json(staff_post(
            &format!(
                "/api/v1/staff/queues/{}/claim",
                procedure.definition.division
            ),
            &clerk,
            json!({}),
        ))
        .await;
    assert_eq!(status, 200, "{claimed}");
    let reveal = |body: Value| {
        staff_post(
            &format!("/api/v1/staff/submissions/{id}/reveal"),
            &clerk,
            body,
        )
    };
    for without in [
        json!({"field_path": field_path}),
        json!({"field_path": field_path, "reason": "  "}),
    ] {
        let (status, problem) = app.json(reveal(without)).await;
        assert_eq!(status, 422, "{problem}");
        assert_eq!(
            field_errors(&problem),
            [("/reason".to_owned(), "required".to_owned())]
        );
    }
    let (status, problem) = app
        .json(reveal(
            json!({"field_path": "/no_such_field", "reason": "住基ネットとの照合のため"}),
        ))
        .await;
    assert_eq!(status, 422, "{problem}");
    let (status, revealed) = app
        .json(reveal(
            json!({"field_path": field_path, "reason": "住基ネットとの照合のため"}),
        ))
        .await;
    assert_eq!(status, 200, "{revealed}");
    assert_eq!(revealed["my_number"], "123456789018");

    // The resident sees who opened the application and why the number was revealed.
    let (status, log) = app
        .json(staff_get(
            &format!("/api/v1/submissions/{id}/access-log"),
            &resident,
        ))
        .await;
    assert_eq!(status, 200, "{log}");
    let entries: Vec<(String, String, Value)> = log
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_owned(),
                e["staff_name"].as_str().unwrap_or_default().to_owned(),
                e["reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("view".to_owned(), "職員 clerk".to_owned(), Value::Null),
            (
                "reveal_my_number".to_owned(),
                "職員 clerk".to_owned(),
                json!("住基ネットとの照合のため")
            ),
        ]
    );
}

#[actix_web::test]
async fn an_application_goes_from_submission_through_a_return_to_completion() {
    let app = TestApp::spawn().await;
    let sample = samples()
        .into_iter()
        .find(|s| s.data.get("applicant_phone").is_some())
        .expect("a sample with a phone number");
    let resident = app.resident("card-9601").await;
    app.confirmed_email(&resident, "resident@example.jp").await;
    let id = apply(&app, &resident, &sample, "h1").await;
    let (clerk_id, clerk) = app.staff_member(&sample.division, "clerk").await;
    let other_clerk = app.staff(&sample.division, "clerk").await;
    let queue = &sample.division;

    let (status, claimed) = app
        .json(staff_post(
            &format!("/api/v1/staff/queues/{queue}/claim"),
            &clerk,
            json!({}),
        ))
        .await;
    assert_eq!(status, 200, "{claimed}");
    assert_eq!(claimed["id"], json!(id));
    let response = app
        .call(staff_post(
            &format!("/api/v1/staff/queues/{queue}/claim"),
            &other_clerk,
            json!({}),
        ))
        .await;
    assert_eq!(response.status().as_u16(), 204, "nothing else to claim");

    // Only the assignee (or a supervisor) decides.
    let (status, problem) = app
        .json(staff_post(
            &format!("/api/v1/staff/submissions/{id}/transitions"),
            &other_clerk,
            json!({"action": "complete"}),
        ))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("staff.not_assignee"))
    );
    let (status, problem) = app
        .json(staff_post(
            &format!("/api/v1/staff/submissions/{id}/transitions"),
            &clerk,
            json!({"action": "return", "field_comments": [{"path": "/applicant_phone", "comment": "x"}]}),
        ))
        .await;
    assert_eq!(status, 422, "a return needs a reason: {problem}");
    assert_eq!(
        field_errors(&problem),
        [("/reason".to_owned(), "required".to_owned())]
    );
    let (status, note) = app
        .json(staff_post(
            &format!("/api/v1/staff/submissions/{id}/notes"),
            &clerk,
            json!({"body": "電話番号が古い可能性あり"}),
        ))
        .await;
    assert_eq!(status, 201, "{note}");
    let (status, returned) = app
        .json(staff_post(
            &format!("/api/v1/staff/submissions/{id}/transitions"),
            &clerk,
            json!({
                "action": "return",
                "reason": "記載内容の確認をお願いします",
                "field_comments": [{"path": "/applicant_phone", "comment": "日中つながる番号をご記入ください"}],
            }),
        ))
        .await;
    assert_eq!(status, 200, "{returned}");
    assert_eq!(returned["status"], "returned");

    // The resident sees the return and what to correct, and not the internal note.
    let (_, mine) = app
        .json(staff_get(&format!("/api/v1/submissions/{id}"), &resident))
        .await;
    assert_eq!(mine["status"], "returned");
    let last = mine["history"]
        .as_array()
        .and_then(|h| h.last())
        .cloned()
        .expect("history");
    assert_eq!(last["reason"], "記載内容の確認をお願いします");
    assert_eq!(last["comments"][0]["path"], "/applicant_phone");
    assert!(
        !mine.to_string().contains("電話番号が古い"),
        "notes stay internal"
    );

    let mut corrected = sample.data.clone();
    corrected["applicant_phone"] = json!("0761-72-9999");
    let resubmit_with_key = |data: &Value| {
        staff_post(
            &format!("/api/v1/submissions/{id}/resubmit"),
            &resident,
            json!({"data": data}),
        )
        .insert_header(("Idempotency-Key", "correction-1"))
    };
    let (status, answered) = app.json(resubmit_with_key(&corrected)).await;
    assert_eq!(status, 200, "{answered}");
    // The answer was lost on the way: the retry with the same key gets it again, and nothing
    // is stored twice.
    let (status, replayed) = app.json(resubmit_with_key(&corrected)).await;
    assert_eq!((status, &replayed), (200, &answered));
    assert_eq!(replayed["revision"], 2);
    let (status, problem) = app.json(resubmit_with_key(&sample.data)).await;
    assert_eq!(status, 422, "the key of another request: {problem}");
    let (status, problem) = app
        .json(staff_post(
            &format!("/api/v1/submissions/{id}/resubmit"),
            &resident,
            json!({"data": corrected}),
        ))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("submission.transition_not_allowed"))
    );

    let (status, diff) = app
        .json(staff_get(
            &format!("/api/v1/staff/submissions/{id}/revisions/2/diff"),
            &clerk,
        ))
        .await;
    assert_eq!(status, 200, "{diff}");
    assert_eq!(diff.as_array().map(Vec::len), Some(1), "{diff}");
    assert_eq!(diff[0]["path"], "/applicant_phone");
    assert!(
        diff[0]["new"].as_str().is_some_and(|p| p.contains("9999")),
        "{diff}"
    );

    let (status, claimed) = app
        .json(staff_post(
            &format!("/api/v1/staff/queues/{queue}/claim"),
            &other_clerk,
            json!({}),
        ))
        .await;
    assert_eq!(status, 200, "the answer is back in the queue: {claimed}");
    // A supervisor hands it back to the first clerk, who completes it.
    let supervisor = app.staff(&sample.division, "supervisor").await;
    let (status, assigned) = app
        .json(staff_post(
            &format!("/api/v1/staff/submissions/{id}/assign"),
            &supervisor,
            json!({"staff_id": clerk_id}),
        ))
        .await;
    assert_eq!(status, 200, "{assigned}");
    let (status, done) = app
        .json(staff_post(
            &format!("/api/v1/staff/submissions/{id}/transitions"),
            &clerk,
            json!({"action": "complete"}),
        ))
        .await;
    assert_eq!(
        (status, done["status"].as_str()),
        (200, Some("completed")),
        "{done}"
    );
    let (status, _) = app
        .json(staff_post(
            &format!("/api/v1/staff/submissions/{id}/transitions"),
            &clerk,
            json!({"action": "reject", "reason": "x"}),
        ))
        .await;
    assert_eq!(status, 409, "a decision is final");

    let (status, opened) = app
        .json(staff_get(
            &format!("/api/v1/staff/submissions/{id}"),
            &clerk,
        ))
        .await;
    assert_eq!(status, 200);
    let history: Vec<&str> = opened["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter_map(|e| e["to_status"].as_str())
        .collect();
    assert_eq!(
        history,
        [
            "submitted",
            "in_progress",
            "returned",
            "submitted",
            "in_progress",
            "completed"
        ]
    );
    assert_eq!(opened["revisions"].as_array().map(Vec::len), Some(2));
    assert_eq!(opened["notes"][0]["body"], "電話番号が古い可能性あり");
    assert_eq!(opened["assignee_id"], json!(clerk_id));

    let events = texts(
        &app,
        &format!(
            "SELECT template || ':' || (payload->>'event') AS text FROM outbox
              WHERE submission_id = '{id}' ORDER BY created_at, template"
        ),
    )
    .await;
    for expected in [
        "resident_status:received",
        "resident_status:returned",
        "resident_status:completed",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected} in {events:?}"
        );
    }

    // Every emailed link leads to the application's page (the portal's or the console's, which
    // send a visitor without a session to sign in), and so do the links of earlier emails.
    let links = texts(
        &app,
        &format!(
            "SELECT DISTINCT template || ' ' || (payload->>'link') AS text FROM outbox
              WHERE submission_id = '{id}'"
        ),
    )
    .await;
    assert!(
        links
            .iter()
            .any(|line| line.starts_with("division_status "))
    );
    assert!(
        links
            .iter()
            .any(|line| line.starts_with("resident_status "))
    );
    let public_url = &app.state.settings.server.public_url;
    let mut browser = crate::page_client::Browser::new(&app);
    for line in &links {
        let (template, link) = line.split_once(' ').expect("template and link");
        let page = if template.starts_with("division") {
            format!("/staff/applications/{id}")
        } else {
            format!("/applications/{id}")
        };
        assert_eq!(link, format!("{public_url}{page}"), "{template}");
        let visit = browser.get(&page).await;
        assert_eq!(visit.status, 303, "{page}: {}", visit.html);
        assert!(
            visit.location.contains("sign-in"),
            "{page}: {}",
            visit.location
        );
        let earlier = browser
            .get(&page.replace("/applications/", "/submissions/"))
            .await;
        assert_eq!(
            (earlier.status, earlier.location.as_str()),
            (301, page.as_str())
        );
    }
}

#[actix_web::test]
async fn an_admin_manages_the_staff_of_their_own_division_only() {
    let app = TestApp::spawn().await;
    let (ours, theirs) = two_divisions();
    let admin = app.staff(&ours.division, "admin").await;
    let clerk = app.staff(&ours.division, "clerk").await;
    let new_staff = |division: &str, login: &str| {
        json!({
            "login": login,
            "display_name": "新任 職員",
            "password": STAFF_PASSWORD,
            "division": division,
            "role": "clerk",
        })
    };
    let (status, created) = app
        .json(staff_post(
            "/api/v1/staff/admin/staff",
            &admin,
            new_staff(&ours.division, "shinnin"),
        ))
        .await;
    assert_eq!(status, 201, "{created}");
    let (status, problem) = app
        .json(staff_post(
            "/api/v1/staff/admin/staff",
            &admin,
            new_staff(&ours.division, "shinnin"),
        ))
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("staff.login_taken"))
    );
    let (status, _) = app
        .json(staff_post(
            "/api/v1/staff/admin/staff",
            &admin,
            new_staff(&theirs.division, "other"),
        ))
        .await;
    assert_eq!(status, 403, "not an admin of the other division");
    let (status, _) = app
        .json(staff_post(
            "/api/v1/staff/admin/staff",
            &clerk,
            new_staff(&ours.division, "x"),
        ))
        .await;
    assert_eq!(status, 403, "a clerk manages no one");
    let mut without_password = new_staff(&ours.division, "no-password");
    without_password["password"] = Value::Null;
    let (status, problem) = app
        .json(staff_post(
            "/api/v1/staff/admin/staff",
            &admin,
            without_password,
        ))
        .await;
    assert_eq!(status, 422, "staff sign in with passwords here: {problem}");
    assert_eq!(
        field_errors(&problem),
        vec![("/password".to_owned(), "required".to_owned())]
    );

    let (status, listed) = app
        .json(staff_get("/api/v1/staff/admin/staff", &admin))
        .await;
    assert_eq!(status, 200, "{listed}");
    let logins: Vec<&str> = listed
        .as_array()
        .expect("staff")
        .iter()
        .filter_map(|s| s["login"].as_str())
        .collect();
    assert_eq!(logins.len(), 3, "{logins:?}");
    assert!(logins.contains(&"shinnin"));
    assert!(!listed.to_string().contains("argon2"), "no password hashes");
    let (status, _) = app
        .json(staff_get("/api/v1/staff/admin/staff", &clerk))
        .await;
    assert_eq!(status, 403);

    // The new account signs in, but must replace the password the admin chose before anything
    // else.
    let (status, tokens) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/staff/login")
                .set_json(json!({"login": "shinnin", "password": STAFF_PASSWORD})),
        )
        .await;
    assert_eq!(status, 200);
    let token = tokens["access_token"].as_str().expect("token");
    let (status, problem) = app.json(staff_get("/api/v1/staff/queues", token)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("auth.password_change_required"))
    );
    let (status, me) = app.json(staff_get("/api/v1/staff/me", token)).await;
    assert_eq!(
        (status, &me["password_change_required"]),
        (200, &json!(true))
    );
    let change =
        json!({"current_password": STAFF_PASSWORD, "new_password": "my own passphrase now"});
    let (status, fresh) = app
        .json(staff_post("/api/v1/staff/me/password", token, change))
        .await;
    assert_eq!(status, 200, "{fresh}");
    let token = fresh["access_token"].as_str().expect("token");
    let (status, _) = app.json(staff_get("/api/v1/staff/queues", token)).await;
    assert_eq!(status, 200, "free to work once the password is their own");
}

fn staff_send(
    method: actix_web::http::Method,
    path: &str,
    token: &str,
    body: Value,
) -> TestRequest {
    TestRequest::default()
        .method(method)
        .uri(path)
        .insert_header(bearer(token))
        .set_json(body)
}

/// An admin moves people between roles and out of the division, and deactivates an account,
/// which ends its sessions at once; nobody can leave a division without an admin, and an admin
/// cannot deactivate someone who also works for another division.
#[actix_web::test]
async fn an_admin_changes_roles_and_deactivates_accounts_of_their_division() {
    use actix_web::http::Method;
    let app = TestApp::spawn().await;
    let (ours, theirs) = two_divisions();
    let (admin_id, admin) = app.staff_member(&ours.division, "admin").await;
    let (clerk_id, clerk) = app.staff_member(&ours.division, "clerk").await;
    let (other_id, _) = app.staff_member(&theirs.division, "clerk").await;
    // Each change as (status, problem code).
    let change = |method: Method, path: String, token: &str, body: Value| {
        let request = staff_send(method, &path, token, body);
        let app = &app;
        async move {
            let (status, problem) = app.json(request).await;
            (status, problem["code"].as_str().map(str::to_owned))
        }
    };
    let membership =
        |id: Uuid, division: &str| format!("/api/v1/staff/admin/staff/{id}/memberships/{division}");
    let account = |id: Uuid| format!("/api/v1/staff/admin/staff/{id}");
    let sign_in = |login: Value| {
        TestRequest::post()
            .uri("/api/v1/staff/login")
            .set_json(json!({"login": login, "password": STAFF_PASSWORD}))
    };

    // Promote the clerk to supervisor: their next request carries the new role.
    let promote = json!({"role": "supervisor"});
    let done = change(
        Method::PUT,
        membership(clerk_id, &ours.division),
        &admin,
        promote,
    )
    .await;
    assert_eq!(done, (204, None));
    let (status, me) = app.json(staff_get("/api/v1/staff/me", &clerk)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        me["memberships"],
        json!([{"division": ours.division, "role": "supervisor"}])
    );
    assert_eq!(me["has_password"], true);

    // A clerk of another division cannot be pulled into ours: their own admin would then no
    // longer be able to deactivate them or reset their password.
    let join = json!({"role": "clerk"});
    let refused = change(
        Method::PUT,
        membership(other_id, &ours.division),
        &admin,
        join,
    )
    .await;
    assert_eq!(refused, (403, Some("staff.outside_divisions".to_owned())));
    // Someone who works in both (an admin of both, or the command line, put them there):
    // deactivating them is not ours alone to decide.
    sql(
        &app,
        &format!(
            "INSERT INTO staff_memberships (staff_id, division, role) VALUES ('{other_id}', '{}', 'clerk')",
            ours.division
        ),
    )
    .await;
    let off = json!({"active": false});
    let refused = change(Method::PATCH, account(other_id), &admin, off.clone()).await;
    assert_eq!(refused, (403, Some("staff.outside_divisions".to_owned())));
    let elsewhere = json!({"role": "admin"});
    let refused = change(
        Method::PUT,
        membership(other_id, &theirs.division),
        &admin,
        elsewhere,
    )
    .await;
    assert_eq!(refused.0, 403, "not an admin of the other division");
    let done = change(
        Method::DELETE,
        membership(other_id, &ours.division),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(done, (204, None));
    let again = change(
        Method::DELETE,
        membership(other_id, &ours.division),
        &admin,
        json!({}),
    )
    .await;
    assert_eq!(again.0, 404, "no longer in the division");

    // The only admin cannot step down or be deactivated.
    let step_down = json!({"role": "clerk"});
    let refused = change(
        Method::PUT,
        membership(admin_id, &ours.division),
        &admin,
        step_down,
    )
    .await;
    assert_eq!(refused, (409, Some("staff.last_admin".to_owned())));
    let refused = change(Method::PATCH, account(admin_id), &admin, off.clone()).await;
    assert_eq!(refused, (409, Some("staff.last_admin".to_owned())));

    // Deactivation: the live access token stops working and so does the refresh token.
    let (status, tokens) = app.json(sign_in(me["login"].clone())).await;
    assert_eq!(status, 200, "{tokens}");
    let refused = change(Method::PATCH, account(clerk_id), &clerk, off.clone()).await;
    assert_eq!(refused.0, 403, "a supervisor manages no accounts");
    let done = change(Method::PATCH, account(clerk_id), &admin, off.clone()).await;
    assert_eq!(done, (204, None));
    let (status, _) = app.json(staff_get("/api/v1/staff/queues", &clerk)).await;
    assert_eq!(status, 401, "the access token of a deactivated account");
    let refresh = TestRequest::post()
        .uri("/api/v1/auth/refresh")
        .set_json(json!({"refresh_token": tokens["refresh_token"]}));
    let (status, _) = app.json(refresh).await;
    assert_eq!(status, 401, "the refresh token of a deactivated account");
    let (status, _) = app.json(sign_in(me["login"].clone())).await;
    assert_eq!(status, 401, "a deactivated account cannot sign in");
    let (status, listed) = app
        .json(staff_get("/api/v1/staff/admin/staff", &admin))
        .await;
    assert_eq!(status, 200);
    let listed_clerk = listed
        .as_array()
        .and_then(|all| all.iter().find(|s| s["id"] == json!(clerk_id)))
        .expect("the clerk is listed");
    assert_eq!(listed_clerk["active"], false);

    // Reactivated, they sign in again.
    let on = json!({"active": true});
    let done = change(Method::PATCH, account(clerk_id), &admin, on).await;
    assert_eq!(done, (204, None));
    let (status, _) = app.json(staff_get("/api/v1/staff/queues", &clerk)).await;
    assert_eq!(status, 401, "the sessions ended at deactivation stay ended");
    let (status, signed_in) = app.json(sign_in(me["login"].clone())).await;
    assert_eq!(status, 200);
    let clerk = signed_in["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let unknown = change(Method::PATCH, account(Uuid::now_v7()), &admin, off).await;
    assert_eq!(unknown.0, 404);

    // Every change is on the account's audit trail, with who made it.
    let history = |id: Uuid, token: &str| staff_get(&format!("{}/history", account(id)), token);
    let (status, trail) = app.json(history(clerk_id, &admin)).await;
    assert_eq!(status, 200, "{trail}");
    let entries: Vec<(&str, Option<&str>, Option<&str>)> = trail
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let text = |key: &str| e[key].as_str();
            (
                text("action").unwrap_or_default(),
                text("role"),
                text("actor_name"),
            )
        })
        .collect();
    let by_admin = Some("職員 admin");
    assert_eq!(
        entries,
        [
            ("created", None, None),
            ("role_set", Some("clerk"), None),
            ("role_set", Some("supervisor"), by_admin),
            ("deactivated", None, by_admin),
            ("reactivated", None, by_admin),
        ],
        "{trail}"
    );
    let (status, _) = app.json(history(other_id, &admin)).await;
    assert_eq!(status, 404, "no longer in a division the admin runs");
    let (status, problem) = app.json(history(clerk_id, &clerk)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("auth.role_required")),
        "a supervisor reads no trails"
    );

    // The clerk forgot their password: the admin sets a new one, which must be replaced at once.
    let reset = |password: &str| json!({"password": password});
    let password_of = |id: Uuid| format!("{}/password", account(id));
    let refused = change(Method::PUT, password_of(clerk_id), &admin, reset("short")).await;
    assert_eq!(refused.0, 422);
    let temporary = "temporary passphrase 2026";
    let done = change(Method::PUT, password_of(clerk_id), &admin, reset(temporary)).await;
    assert_eq!(done, (204, None));
    let (status, _) = app.json(sign_in(me["login"].clone())).await;
    assert_eq!(status, 401, "the old password is gone");
    let (status, tokens) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/staff/login")
                .set_json(json!({"login": me["login"], "password": temporary})),
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().expect("token");
    let (status, problem) = app.json(staff_get("/api/v1/staff/queues", token)).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("auth.password_change_required"))
    );

    let (_, trail) = app.json(history(clerk_id, &admin)).await;
    let last = trail
        .as_array()
        .and_then(|t| t.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&last["action"], &last["actor_name"]),
        (&json!("password_reset"), &json!("職員 admin"))
    );
}

/// A staff member replaces the password an admin gave them; the old one and every other session
/// stop working.
#[actix_web::test]
async fn staff_change_their_own_password_and_other_sessions_end() {
    let app = TestApp::spawn().await;
    let (_, token) = app.staff_member("kosodate", "clerk").await;
    let (_, me) = app.json(staff_get("/api/v1/staff/me", &token)).await;
    let login = me["login"].clone();
    let (status, other_session) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/staff/login")
                .set_json(json!({
                    "login": login, "password": STAFF_PASSWORD,
                })),
        )
        .await;
    assert_eq!(status, 200);
    let new_password = "a much longer passphrase of mine";

    let (status, problem) = app
        .json(staff_post(
            "/api/v1/staff/me/password",
            &token,
            json!({
                "current_password": "not my password at all", "new_password": new_password,
            }),
        ))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        field_errors(&problem),
        vec![("/current_password".to_owned(), "incorrect".to_owned())]
    );
    let (status, problem) = app
        .json(staff_post(
            "/api/v1/staff/me/password",
            &token,
            json!({
                "current_password": STAFF_PASSWORD, "new_password": "short",
            }),
        ))
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        field_errors(&problem),
        vec![("/new_password".to_owned(), "too_short".to_owned())]
    );

    let (status, fresh) = app
        .json(staff_post(
            "/api/v1/staff/me/password",
            &token,
            json!({
                "current_password": STAFF_PASSWORD, "new_password": new_password,
            }),
        ))
        .await;
    assert_eq!(status, 200, "{fresh}");
    let sign_in = |password: &str| {
        TestRequest::post()
            .uri("/api/v1/staff/login")
            .set_json(json!({"login": login, "password": password}))
    };
    assert_eq!(app.json(sign_in(STAFF_PASSWORD)).await.0, 401);
    assert_eq!(app.json(sign_in(new_password)).await.0, 200);
    let (_, admin) = app.staff_member("kosodate", "admin").await;
    let (_, trail) = app
        .json(staff_get(
            &format!(
                "/api/v1/staff/admin/staff/{}/history",
                me["id"].as_str().unwrap_or_default()
            ),
            &admin,
        ))
        .await;
    let last = trail
        .as_array()
        .and_then(|t| t.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["action"], "password_changed", "{trail}");
    assert_eq!(
        last["actor_id"], me["id"],
        "changed by the person themselves"
    );
    let refresh = |pair: &Value| {
        TestRequest::post()
            .uri("/api/v1/auth/refresh")
            .set_json(json!({"refresh_token": pair["refresh_token"]}))
    };
    assert_eq!(
        app.json(refresh(&other_session)).await.0,
        401,
        "the other session ended"
    );
    assert_eq!(app.json(refresh(&fresh)).await.0, 200, "this one goes on");
}

#[actix_web::test]
async fn password_attempts_are_rate_limited_per_client_address() {
    let mut settings = test_settings();
    // The allowance comes back one attempt per minute / allowance, counted from the first: the
    // whole burst and the refused attempt must fall inside that. At the default 10 that is 6 s,
    // less than ten argon2 checks can take on a busy machine (they queue behind every other
    // test's); at 3 it is 20 s.
    settings.staff.login_attempts_per_minute = 3;
    let app = TestApp::with_settings(settings).await;
    let limit = app.state.settings.staff.login_attempts_per_minute;
    let attempt = |peer: &str| {
        actix_web::test::TestRequest::post()
            .uri("/api/v1/staff/login")
            .peer_addr(peer.parse().expect("address"))
            .set_json(serde_json::json!({"login": "nobody", "password": "wrong password 123"}))
    };
    for _ in 0..limit {
        let (status, _) = app.json(attempt("203.0.113.7:40000")).await;
        assert_eq!(status, 401);
    }
    let (status, problem) = app.json(attempt("203.0.113.7:40001")).await;
    assert_eq!(status, 429, "{problem}");
    assert_eq!(problem["code"], "auth.too_many_attempts");
    let (status, _) = app.json(attempt("198.51.100.9:40000")).await;
    assert_eq!(status, 401, "another client is not affected");
}

#[actix_web::test]
async fn a_correction_can_bring_a_new_attachment_that_staff_then_read() {
    use madoguchi::forms::model::FieldType;
    let app = TestApp::spawn().await;
    let resident = app.resident("card-8001").await;
    // A procedure with a top-level file field whose valid example names attachments.
    let (procedure, field, example) = CATALOG
        .procedures
        .values()
        .filter(|p| {
            matches!(
                p.definition.assurance,
                Assurance::None | Assurance::CardAuth
            )
        })
        .filter(|p| p.definition.routing.is_empty())
        .find_map(|p| {
            let example = p
                .definition
                .examples
                .iter()
                .find(|e| e.valid && e.as_of.is_none())?;
            let field = p
                .definition
                .pages
                .iter()
                .flat_map(|page| page.fields.iter())
                .find(|f| f.kind() == FieldType::File && example.data.get(&f.id).is_some())?;
            Some((p.definition.clone(), field.clone(), example.data.clone()))
        })
        .expect("a procedure with an attachment in its example");
    // A file of a type the field accepts (checked by content, so the bytes must be right).
    use madoguchi::forms::model::FileKind;
    let pdf: &[u8] =
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";
    let png: &[u8] =
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";
    let jpeg: &[u8] = b"\xff\xd8\xff\xe0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0\xff\xd9";
    let accepts = |kind: FileKind| {
        field.accept.is_empty() && kind != FileKind::Heic || field.accept.contains(&kind)
    };
    let file: &[u8] = if accepts(FileKind::Pdf) {
        pdf
    } else if accepts(FileKind::Png) {
        png
    } else {
        jpeg
    };
    let field = field.id.clone();
    let multipart = || {
        let boundary = "correction-boundary";
        let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        (format!("multipart/form-data; boundary={boundary}"), body)
    };
    let upload = |uri: String| {
        let (content_type, body) = multipart();
        TestRequest::post()
            .uri(&uri)
            .insert_header(bearer(&resident))
            .insert_header(("content-type", content_type))
            .set_payload(body)
    };

    // Fill a draft, replacing the example's attachment ids with real uploads.
    let (_, draft) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/drafts")
                .insert_header(bearer(&resident))
                .set_json(json!({"procedure_id": procedure.id, "data": {}})),
        )
        .await;
    let draft_id = draft["id"].as_str().expect("draft").to_owned();
    let mut text = example.to_string();
    let placeholders: BTreeSet<String> = regex::Regex::new("01900000-[0-9a-f-]{27}")
        .expect("regex")
        .find_iter(&text)
        .map(|m| m.as_str().to_owned())
        .collect();
    for placeholder in placeholders {
        // Upload against the field that holds this placeholder (top level here, else the first file field).
        let (status, stored) = app
            .json(upload(format!(
                "/api/v1/drafts/{draft_id}/attachments?field={field}"
            )))
            .await;
        assert_eq!(status, 201, "{stored}");
        text = text.replace(&placeholder, stored["id"].as_str().expect("id"));
    }
    let data: Value = serde_json::from_str(&text).expect("json");
    let (status, created) = app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/procedures/{}/submissions", procedure.id))
                .insert_header(bearer(&resident))
                .insert_header(("idempotency-key", "with-files"))
                .set_json(json!({"data": data, "draft_id": draft_id})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();

    // Not returned yet: no correction uploads.
    let (status, problem) = app
        .json(upload(format!(
            "/api/v1/submissions/{id}/attachments?field={field}"
        )))
        .await;
    assert_eq!(status, 409, "{problem}");

    let clerk = app.staff(&procedure.division, "clerk").await;
    let (status, _) = app
        .json(staff_post(
            &format!("/api/v1/staff/queues/{}/claim", procedure.division),
            &clerk,
            json!({}),
        ))
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .json(staff_post(
            &format!("/api/v1/staff/submissions/{id}/transitions"),
            &clerk,
            json!({"action": "return", "reason": "書類が不鮮明です"}),
        ))
        .await;
    assert_eq!(status, 200);

    let (status, replacement) = app
        .json(upload(format!(
            "/api/v1/submissions/{id}/attachments?field={field}"
        )))
        .await;
    assert_eq!(status, 201, "{replacement}");
    let replacement_id = replacement["id"].as_str().expect("id").to_owned();
    let mut corrected = data.clone();
    corrected[&field] = json!([replacement_id]);
    let (status, body) = app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/submissions/{id}/resubmit"))
                .insert_header(bearer(&resident))
                .set_json(json!({"data": corrected})),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, view) = app
        .json(staff_get(
            &format!("/api/v1/staff/submissions/{id}"),
            &clerk,
        ))
        .await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = view["attachments"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["id"].as_str()).collect())
        .unwrap_or_default();
    assert!(listed.contains(&replacement_id.as_str()), "{listed:?}");
    let response = app
        .call(staff_get(
            &format!("/api/v1/staff/attachments/{replacement_id}"),
            &clerk,
        ))
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(actix_web::test::read_body(response).await.as_ref(), file);
}

/// `madoguchi staff create` as a city's IT team runs it: a first admin with a password from the
/// environment, and an account without one, which only a city using its own IdP may create.
#[actix_web::test]
async fn the_staff_create_command_makes_accounts_with_or_without_a_password() {
    let app = TestApp::spawn().await;
    let create = |login: &str, extra: &[&str], environment: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_madoguchi"));
        command
            .args(["staff", "create", "--login", login, "--name", "加賀 一郎"])
            .args(["--division", "kosodate", "--role", "admin"])
            .args(extra)
            .env("MADOGUCHI_PROFILE", "test")
            .env("DATABASE_URL", &app.database.url)
            .env("MADOGUCHI_STAFF_PASSWORD", STAFF_PASSWORD)
            .stdin(std::process::Stdio::null());
        for (name, value) in environment {
            command.env(name, value);
        }
        command.output().expect("madoguchi runs")
    };

    let output = create("first-admin", &[], &[]);
    assert!(output.status.success(), "{output:?}");
    let (status, _) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/staff/login")
                .set_json(json!({"login": "first-admin", "password": STAFF_PASSWORD})),
        )
        .await;
    assert_eq!(status, 200);

    let output = create("idp-only", &["--no-password"], &[]);
    assert!(!output.status.success(), "password sign-in only: refused");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("staff.sign_in"),
        "{output:?}"
    );
    let output = create(
        "idp-only",
        &["--no-password"],
        &[
            ("MADOGUCHI__STAFF__SIGN_IN", "password,oidc"),
            (
                "MADOGUCHI__STAFF__OIDC__ISSUER",
                "https://idp.city.example.lg.jp",
            ),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let (status, listed) = app
        .json(staff_get(
            "/api/v1/staff/admin/staff",
            &sign_in(&app, "first-admin").await,
        ))
        .await;
    assert_eq!(status, 200, "{listed}");
    let idp_only = listed
        .as_array()
        .and_then(|all| all.iter().find(|s| s["login"] == "idp-only"))
        .expect("listed");
    assert_eq!(
        (&idp_only["has_password"], &idp_only["linked_to_provider"]),
        (&json!(false), &json!(false))
    );
}

async fn sign_in(app: &TestApp, login: &str) -> String {
    let (status, tokens) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/staff/login")
                .set_json(json!({"login": login, "password": STAFF_PASSWORD})),
        )
        .await;
    assert_eq!(status, 200, "{tokens}");
    tokens["access_token"].as_str().expect("token").to_owned()
}

/// Linking to the city's IdP: once by login, then only by subject; a city that moves to another
/// IdP gets its accounts linked again there.
#[actix_web::test]
async fn an_idp_account_is_linked_once_per_issuer() {
    use madoguchi::identity::AuthError;
    use madoguchi::identity::staff::{Membership, Role, create, sign_in_with_provider};
    let app = TestApp::spawn().await;
    let mut connection = app.state.pool.get().await.expect("connection");
    let membership = Membership {
        division: "kosodate".to_owned(),
        role: Role::Clerk,
    };
    let suzuki = create(
        &mut connection,
        "suzuki",
        "鈴木",
        None,
        None,
        &[membership],
        None,
    )
    .await
    .expect("account");
    let (old_idp, new_idp) = ("https://idp-old.city.example", "https://idp.city.example");

    let first = sign_in_with_provider(&mut connection, old_idp, "sub-1", Some("suzuki")).await;
    assert_eq!(first.ok(), Some(suzuki));
    let by_subject = sign_in_with_provider(&mut connection, old_idp, "sub-1", None).await;
    assert_eq!(by_subject.ok(), Some(suzuki), "the subject alone suffices");
    let impostor = sign_in_with_provider(&mut connection, old_idp, "sub-2", Some("suzuki")).await;
    assert!(matches!(impostor, Err(AuthError::StaffNotRegistered)));

    let moved = sign_in_with_provider(&mut connection, new_idp, "sub-9", Some("suzuki")).await;
    assert_eq!(moved.ok(), Some(suzuki), "linked again at the new issuer");
    let stale = sign_in_with_provider(&mut connection, old_idp, "sub-1", None).await;
    assert!(
        matches!(stale, Err(AuthError::StaffNotRegistered)),
        "the old link is gone"
    );
    let trail = madoguchi::identity::staff_admin::history(
        &mut connection,
        suzuki,
        &["kosodate".to_owned()],
    )
    .await
    .expect("trail");
    let actions: Vec<&str> = trail.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "created",
            "role_set",
            "linked_to_provider",
            "linked_to_provider"
        ]
    );
}
