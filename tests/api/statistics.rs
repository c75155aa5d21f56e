//! The usage dashboard against a real database: rollups from application events (idempotent,
//! safe with two workers), suppression as published, exact percentiles, division isolation on
//! the API and the console, and no personal data in any output.

use actix_web::test::TestRequest;
use chrono::{Datelike, Months, NaiveDate};
use diesel::sql_types::{Array, BigInt, Date, Integer, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use madoguchi::identity::staff::{self, Membership, Role};
use madoguchi::statistics::rollup;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{CATALOG, STAFF_PASSWORD, TestApp, bearer};
use crate::page_client::{Browser, hidden};
use crate::staff::{Sample, apply, two_divisions};

/// The first day of the month `back` months before this one (city time).
fn month(back: u32) -> NaiveDate {
    let today = madoguchi::forms::lint::city_today();
    today
        .with_day(1)
        .unwrap()
        .checked_sub_months(Months::new(back))
        .unwrap()
}

fn label(date: NaiveDate) -> String {
    date.format("%Y-%m").to_string()
}

async fn resident(app: &TestApp) -> Uuid {
    let id = Uuid::new_v4();
    let mut connection = app.state.pool.get().await.expect("connection");
    diesel::sql_query(
        "INSERT INTO residents (id, provider, issuer, subject, email) VALUES ($1, 'dev', 'seed', $2, NULL)",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(id.to_string())
    .execute(&mut connection)
    .await
    .expect("resident");
    id
}

/// `count` applications for `procedure` received from `start` (city time, one a minute),
/// each with its receipt event, and — when `decided_after_days` — completed that many calendar
/// days later (`(i * 7919) % spread` days, varied). Straight into the tables, as the service
/// writes them.
async fn seed(
    app: &TestApp,
    procedure: &str,
    start: NaiveDate,
    count: i32,
    decided_spread_days: Option<i32>,
) {
    let resident = resident(app).await;
    let definition = &CATALOG.procedures[procedure].definition;
    let mut connection = app.state.pool.get().await.expect("connection");
    let at = start.and_hms_opt(0, 30, 0).unwrap().and_utc() - chrono::Duration::hours(9);
    // Three statements, in order: the events must get their ids in the order the service
    // writes them (a receipt before its decision).
    let batch = format!("SEED-{}-", Uuid::new_v4().simple());
    diesel::sql_query(
        "INSERT INTO submissions (id, reference, resident_id, procedure_id, content_hash, status,
                                  data, fee_yen, queue, division, submitted_at, decided_at)
         SELECT gen_random_uuid(), $7 || i, $1, $2,
                (SELECT content_hash FROM procedure_versions WHERE procedure_id = $2 LIMIT 1),
                CASE WHEN $6 > 0 THEN 'completed' ELSE 'submitted' END,
                '{}', 0, $3, $3, $4 + i * interval '1 minute',
                CASE WHEN $6 > 0 THEN $4 + i * interval '1 minute' + ((i * 7919) % greatest($6, 1)) * interval '1 day' END
           FROM generate_series(1, $5) AS i",
    )
    .bind::<SqlUuid, _>(resident)
    .bind::<Text, _>(procedure)
    .bind::<Text, _>(&definition.division)
    .bind::<Timestamptz, _>(at)
    .bind::<Integer, _>(count)
    .bind::<Integer, _>(decided_spread_days.unwrap_or(0))
    .bind::<Text, _>(&batch)
    .execute(&mut connection)
    .await
    .expect("seeding applications");
    diesel::sql_query(
        "INSERT INTO submission_events (submission_id, actor_kind, to_status, created_at)
         SELECT id, 'resident', 'submitted', submitted_at FROM submissions
          WHERE starts_with(reference, $1) ORDER BY submitted_at",
    )
    .bind::<Text, _>(&batch)
    .execute(&mut connection)
    .await
    .expect("seeding receipts");
    diesel::sql_query(
        "INSERT INTO submission_events (submission_id, actor_kind, from_status, to_status, created_at)
         SELECT id, 'staff', 'in_progress', 'completed', decided_at FROM submissions
          WHERE starts_with(reference, $1) AND decided_at IS NOT NULL ORDER BY decided_at",
    )
    .bind::<Text, _>(&batch)
    .execute(&mut connection)
    .await
    .expect("seeding decisions");
}

/// Runs the worker's rollup pass (events settle at once in tests).
async fn refresh(app: &TestApp) -> rollup::Refreshed {
    let mut connection = app.state.pool.get().await.expect("connection");
    rollup::refresh(&mut connection, &app.state.catalog, &app.state.calendar, 0)
        .await
        .expect("rollup")
}

fn row<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|row| row["id"] == id)
        .unwrap_or_else(|| panic!("no row {id} in {report}"))
}

fn month_index(report: &Value, date: NaiveDate) -> usize {
    report["months"]
        .as_array()
        .expect("months")
        .iter()
        .position(|m| m == &json!(label(date)))
        .expect("month in the report")
}

fn hidden_keys(cells: &Value) -> Vec<String> {
    cells["hidden"]
        .as_array()
        .expect("hidden")
        .iter()
        .map(|key| key.as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn a_cell_of_nine_is_hidden_and_so_is_its_complement() {
    let app = TestApp::spawn().await;
    let (a, b) = two_divisions();
    let (m1, m2) = (month(2), month(1));
    seed(&app, &a.procedure, m1, 9, None).await;
    seed(&app, &a.procedure, m2, 40, None).await;
    seed(&app, &b.procedure, m1, 30, None).await;
    seed(&app, &b.procedure, m2, 25, None).await;
    let refreshed = refresh(&app).await;
    assert_eq!(refreshed.events, 104);

    let (status, report) = app.get("/api/v1/statistics").await;
    assert_eq!(status, 200, "{report}");
    let (i1, i2) = (month_index(&report, m1), month_index(&report, m2));
    let a_row = row(&report, &a.procedure);
    let b_row = row(&report, &b.procedure);
    // The 9 is hidden…
    assert_eq!(a_row["months"][i1]["received"], Value::Null);
    assert!(hidden_keys(&a_row["months"][i1]).contains(&"received".to_owned()));
    // …and so is its complement in its row (else 49 − 40 gives it) and in its column (else
    // 39 − 30 gives it), and the cycle closes on the fourth cell.
    assert_eq!(
        a_row["months"][i2]["received"],
        Value::Null,
        "row complement"
    );
    assert_eq!(
        b_row["months"][i1]["received"],
        Value::Null,
        "column complement"
    );
    assert_eq!(b_row["months"][i2]["received"], Value::Null, "closing cell");
    // The totals stay, and cannot give any hidden cell back.
    assert_eq!(a_row["period"]["received"], 49);
    assert_eq!(b_row["period"]["received"], 55);
    assert_eq!(report["total"]["months"][i1]["received"], 39);
    assert_eq!(report["total"]["months"][i2]["received"], 65);
    assert_eq!(report["total"]["period"]["received"], 104);
    // The cumulative figure would give a hidden month as a difference: hidden too.
    assert_eq!(a_row["months"][i2]["cumulative"], Value::Null);

    // The CSV says X where the JSON says hidden.
    let csv = csv(&app, "/statistics/open-data.csv").await;
    let a_m1 = csv
        .lines()
        .find(|line| line.contains(&format!(",{},{},", label(m1), a.procedure)))
        .expect("a line for the procedure and month");
    assert!(a_m1.starts_with("172065,加賀市,"), "{a_m1}");
    assert_eq!(a_m1.split(',').nth(5), Some("X"), "{a_m1}");
}

async fn csv(app: &TestApp, path: &str) -> String {
    let response = app.call(TestRequest::get().uri(path)).await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        crate::helpers::header(&response, "content-type"),
        "text/csv; charset=utf-8"
    );
    String::from_utf8(actix_web::test::read_body(response).await.to_vec()).expect("UTF-8")
}

#[actix_web::test]
async fn rollups_are_idempotent_and_safe_with_two_workers() {
    let app = TestApp::spawn().await;
    let (a, _) = two_divisions();
    seed(&app, &a.procedure, month(1), 300, Some(20)).await;
    // Two workers at once: one folds, the other finds the watermark taken or nothing left.
    let (first, second) = tokio::join!(refresh(&app), refresh(&app));
    assert_eq!(first.events + second.events, 600, "{first:?} {second:?}");
    let again = refresh(&app).await;
    assert_eq!(again.events, 0, "a folded range is not read again");

    let mut connection = app.state.pool.get().await.expect("connection");
    #[derive(diesel::QueryableByName)]
    struct Totals {
        #[diesel(sql_type = BigInt)]
        received: i64,
        #[diesel(sql_type = BigInt)]
        completed: i64,
    }
    let totals: Totals = diesel::sql_query(
        "SELECT sum(received)::bigint AS received, sum(completed)::bigint AS completed FROM statistics_monthly",
    )
    .get_result(&mut connection)
    .await
    .expect("totals");
    assert_eq!((totals.received, totals.completed), (300, 300));
}

#[derive(diesel::QueryableByName)]
struct Percentiles {
    #[diesel(sql_type = Date)]
    month: NaiveDate,
    #[diesel(sql_type = Integer)]
    median: i32,
    #[diesel(sql_type = Integer)]
    p90: i32,
}

#[actix_web::test]
async fn histogram_percentiles_equal_percentile_disc_over_10k_raw_rows() {
    let app = TestApp::spawn().await;
    let (a, b) = two_divisions();
    // 10,000 applications over three months, decided 0–36 calendar days later.
    seed(&app, &a.procedure, month(4), 4000, Some(37)).await;
    seed(&app, &b.procedure, month(3), 3500, Some(29)).await;
    seed(&app, &a.procedure, month(2), 2500, Some(11)).await;
    let refreshed = refresh(&app).await;
    assert_eq!(refreshed.events, 20_000);

    // The oracle: business days straight from the raw rows in SQL (weekdays not in the
    // configured holidays, after the day of receipt up to the day of decision).
    let holidays: Vec<NaiveDate> = app.state.settings.calendar.holidays.clone();
    let mut connection = app.state.pool.get().await.expect("connection");
    let raw = "WITH days AS (
                   SELECT (decided_at AT TIME ZONE 'Asia/Tokyo')::date AS decided_on,
                          (SELECT count(*) FROM generate_series(
                                (submitted_at AT TIME ZONE 'Asia/Tokyo')::date + 1,
                                (decided_at AT TIME ZONE 'Asia/Tokyo')::date, interval '1 day') AS d
                            WHERE extract(isodow FROM d) < 6 AND NOT d::date = ANY($1))::int AS taken
                     FROM submissions WHERE decided_at IS NOT NULL)";
    let by_month: Vec<Percentiles> = diesel::sql_query(format!(
        "{raw} SELECT date_trunc('month', decided_on)::date AS month,
                      percentile_disc(0.5) WITHIN GROUP (ORDER BY taken) AS median,
                      percentile_disc(0.9) WITHIN GROUP (ORDER BY taken) AS p90
                 FROM days GROUP BY 1 ORDER BY 1"
    ))
    .bind::<Array<Date>, _>(&holidays)
    .load(&mut connection)
    .await
    .expect("percentile_disc by month");
    let overall: Percentiles = diesel::sql_query(format!(
        "{raw} SELECT min(date_trunc('month', decided_on))::date AS month,
                      percentile_disc(0.5) WITHIN GROUP (ORDER BY taken) AS median,
                      percentile_disc(0.9) WITHIN GROUP (ORDER BY taken) AS p90
                 FROM days"
    ))
    .bind::<Array<Date>, _>(&holidays)
    .get_result(&mut connection)
    .await
    .expect("percentile_disc overall");
    drop(connection);

    let (status, report) = app.get("/api/v1/statistics").await;
    assert_eq!(status, 200);
    assert!(by_month.len() >= 3, "decisions fall in several months");
    for expected in &by_month {
        let cells = &report["total"]["months"][month_index(&report, expected.month)];
        assert_eq!(
            cells["median_days"], expected.median,
            "{} median",
            expected.month
        );
        assert_eq!(cells["p90_days"], expected.p90, "{} p90", expected.month);
    }
    // Merged across all months (and both procedures), still exact.
    assert_eq!(report["total"]["period"]["median_days"], overall.median);
    assert_eq!(report["total"]["period"]["p90_days"], overall.p90);
    assert_eq!(report["total"]["period"]["decided"], 10_000);
}

/// A staff account of `division` signed in on the console.
async fn console<'a>(app: &'a TestApp, division: &str) -> Browser<'a> {
    let login = format!("{division}-clerk-{}", Uuid::new_v4().simple());
    let mut connection = app.state.pool.get().await.expect("connection");
    staff::create(
        &mut connection,
        &login,
        "職員",
        None,
        Some(STAFF_PASSWORD),
        &[Membership {
            division: division.to_owned(),
            role: Role::Clerk,
        }],
        None,
    )
    .await
    .expect("staff account");
    drop(connection);
    let mut browser = Browser::new(app);
    let page = browser.get("/staff/sign-in").await;
    let csrf = hidden(&page.html, "csrf");
    let signed = browser
        .post(
            "/staff/sign-in",
            &[
                ("csrf", &csrf),
                ("login", &login),
                ("password", STAFF_PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed.status, 303, "{}", signed.html);
    browser
}

fn title(sample: &Sample) -> String {
    CATALOG.procedures[&sample.procedure]
        .definition
        .title
        .ja
        .clone()
}

#[actix_web::test]
async fn a_clerk_sees_only_their_divisions() {
    let app = TestApp::spawn().await;
    let (a, b) = two_divisions();
    seed(&app, &a.procedure, month(1), 30, Some(5)).await;
    seed(&app, &b.procedure, month(1), 30, Some(5)).await;
    refresh(&app).await;

    let token = app.staff(&a.division, "clerk").await;
    let (status, report) = app.get_as("/api/v1/staff/statistics", &token).await;
    assert_eq!(status, 200, "{report}");
    let ids: Vec<&str> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![a.procedure.as_str()]);
    assert_eq!(report["total"]["period"]["received"], 30);
    // Without a token: 401.
    let (status, _) = app.get("/api/v1/staff/statistics").await;
    assert_eq!(status, 401);

    // The console page: the same.
    let mut browser = console(&app, &a.division).await;
    let page = browser.get("/staff/statistics").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains(&title(&a)), "own procedure shown");
    assert!(
        !page.html.contains(&title(&b)),
        "another division's procedure not shown"
    );
    assert!(page.html.contains("<svg"), "charts are drawn on the server");

    // Counter counts: own procedure yes, another division's is not found.
    let this_month = label(month(0));
    let (status, body) = app
        .json(
            TestRequest::put()
                .uri("/api/v1/staff/statistics/counter")
                .insert_header(bearer(&token))
                .set_json(json!({"procedure_id": b.procedure, "month": this_month, "count": 20})),
        )
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app
        .json(
            TestRequest::put()
                .uri("/api/v1/staff/statistics/counter")
                .insert_header(bearer(&token))
                .set_json(json!({"procedure_id": a.procedure, "month": "2026-13", "count": -1})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let mut fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, vec!["count", "month"], "{body}");
    // Through the console form (CSRF): 30 online + 70 at the counter = 30 %.
    let csrf = hidden(&page.html, "csrf");
    let saved = browser
        .post(
            "/staff/statistics/counter",
            &[
                ("csrf", &csrf),
                ("procedure", &a.procedure),
                ("month", &label(month(1))),
                ("count", "70"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.html);
    let refused = browser
        .post(
            "/staff/statistics/counter",
            &[
                ("csrf", "forged"),
                ("procedure", &a.procedure),
                ("month", &label(month(1))),
                ("count", "1"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    let (_, report) = app.get("/api/v1/statistics").await;
    let cells = &row(&report, &a.procedure)["months"][month_index(&report, month(1))];
    assert_eq!(cells["online_share"], 30.0, "{cells}");
}

/// Every string under a key that names a person, an address, a contact or a My Number.
fn personal_values(data: &Value, key: &str, found: &mut Vec<String>) {
    match data {
        Value::Object(map) => {
            for (name, value) in map {
                personal_values(value, name, found);
            }
        }
        Value::Array(items) => {
            for item in items {
                personal_values(item, key, found);
            }
        }
        Value::String(text) => {
            let personal = [
                "name",
                "kana",
                "address",
                "mail",
                "phone",
                "my_number",
                "birth",
            ]
            .iter()
            .any(|word| key.contains(word));
            if personal && text.chars().count() >= 3 {
                found.push(text.clone());
            }
        }
        _ => {}
    }
}

#[actix_web::test]
async fn no_personal_data_in_any_output_of_a_seeded_run() {
    let app = TestApp::spawn().await;
    let (a, b) = two_divisions();
    // Real applications through the API, with names, addresses and emails in their answers…
    let mut secrets = Vec::new();
    for (index, sample) in [&a, &b].into_iter().enumerate() {
        let token = app.resident(&format!("stats-resident-{index}")).await;
        for n in 0..12 {
            apply(&app, &token, sample, &format!("stats-{index}-{n}")).await;
        }
        personal_values(&sample.data, "", &mut secrets);
    }
    // …a resident email and a My Number-shaped string stored beside them…
    let email = "taro.kaga@example.jp";
    let my_number = "123456789018";
    {
        let mut connection = app.state.pool.get().await.expect("connection");
        diesel::sql_query("UPDATE residents SET email = $1")
            .bind::<Text, _>(email)
            .execute(&mut connection)
            .await
            .expect("email");
        diesel::sql_query(
            "UPDATE submissions SET data = data || jsonb_build_object('note', $1::text)",
        )
        .bind::<Text, _>(format!("{my_number} 加賀市大聖寺南町ニ41"))
        .execute(&mut connection)
        .await
        .expect("data");
    }
    secrets.extend([
        email.to_owned(),
        my_number.to_owned(),
        "大聖寺南町".to_owned(),
    ]);
    assert!(
        secrets.len() >= 4,
        "the samples hold personal answers: {secrets:?}"
    );
    // …and bulk history.
    seed(&app, &a.procedure, month(1), 50, Some(9)).await;
    refresh(&app).await;

    let token = app.staff(&a.division, "clerk").await;
    let mut outputs = Vec::new();
    for path in [
        "/statistics",
        "/statistics?lang=en",
        "/statistics/open-data.csv",
        "/statistics/open-data-definitions.csv",
    ] {
        let response = app.call(TestRequest::get().uri(path)).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        outputs.push((
            path.to_owned(),
            String::from_utf8(actix_web::test::read_body(response).await.to_vec()).unwrap(),
        ));
    }
    for (path, token) in [
        ("/api/v1/statistics", None),
        ("/api/v1/staff/statistics", Some(&token)),
    ] {
        let mut request = TestRequest::get().uri(path);
        if let Some(token) = token {
            request = request.insert_header(bearer(token));
        }
        let response = app.call(request).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        outputs.push((
            path.to_owned(),
            String::from_utf8(actix_web::test::read_body(response).await.to_vec()).unwrap(),
        ));
    }
    let mut browser = console(&app, &a.division).await;
    outputs.push((
        "/staff/statistics".to_owned(),
        browser.get("/staff/statistics").await.html,
    ));

    // The run produced figures (so the grep looks at something)…
    assert!(outputs.iter().any(|(_, text)| text.contains("172065")));
    // …and none of them carries anything personal.
    for (path, text) in &outputs {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{path} contains {secret:?}"
            );
        }
        assert!(!text.contains("SEED-"), "{path} names an application");
    }
}

#[actix_web::test]
async fn the_public_page_has_charts_tables_and_definitions_in_both_languages() {
    let app = TestApp::spawn().await;
    let (a, _) = two_divisions();
    seed(&app, &a.procedure, month(1), 25, Some(8)).await;
    refresh(&app).await;
    let mut browser = Browser::new(&app);
    let page = browser.get("/statistics").await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("オンライン申請の利用状況"));
    assert_eq!(page.html.matches("<svg").count(), 4, "four charts");
    assert!(
        page.html.contains("percentile_disc 0.5"),
        "definitions beside the measures"
    );
    assert!(page.html.contains("/statistics/open-data.csv"));
    assert!(!page.html.contains("<script"), "no chart script");
    let english = browser.get("/statistics?lang=en").await;
    assert!(english.html.contains("How the online counter is used"));
    let definitions = csv(&app, "/statistics/open-data-definitions.csv").await;
    assert!(definitions.contains("CC BY 4.0"));
    assert!(definitions.starts_with("項目名,説明,Name,Description"));
}

/// Labels every application without a district so far with `code`, as submit would have.
async fn label_district(app: &TestApp, code: &str) {
    let mut connection = app.state.pool.get().await.expect("connection");
    diesel::sql_query(
        "UPDATE submissions SET district_code = $1 WHERE district_code IS NULL AND age_band IS NULL",
    )
    .bind::<Text, _>(code)
    .execute(&mut connection)
    .await
    .expect("district");
}

fn breakdown_row<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["breakdown"]["rows"]
        .as_array()
        .expect("breakdown rows")
        .iter()
        .find(|row| row["id"] == id)
        .unwrap_or_else(|| panic!("no breakdown row {id} in {report}"))
}

fn with_breakdown(kind: &str) -> madoguchi::config::Settings {
    let mut settings = crate::helpers::test_settings();
    settings.statistics.breakdown = kind.to_owned();
    settings
}

#[actix_web::test]
async fn the_district_breakdown_is_rolled_up_and_suppressed_like_the_rest() {
    let app = TestApp::with_settings(with_breakdown("district")).await;
    let (a, _) = two_divisions();
    let (m1, m2) = (month(2), month(1));
    seed(&app, &a.procedure, m1, 9, None).await;
    label_district(&app, "0030-00").await;
    seed(&app, &a.procedure, m2, 40, None).await;
    label_district(&app, "0030-00").await;
    seed(&app, &a.procedure, m1, 30, None).await;
    label_district(&app, "0011-00").await;
    seed(&app, &a.procedure, m2, 25, None).await;
    label_district(&app, "0011-00").await;
    assert_eq!(refresh(&app).await.events, 104);

    let (status, report) = app.get("/api/v1/statistics").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["breakdown"]["kind"], "district");
    let (i1, i2) = (month_index(&report, m1), month_index(&report, m2));
    let yamashiro = breakdown_row(&report, "0030-00");
    let minami = breakdown_row(&report, "0011-00");
    assert_eq!(yamashiro["name"]["ja"], "山代温泉");
    // The 9, its row and column complements, and the cell closing the cycle.
    assert_eq!(yamashiro["received"][i1], Value::Null);
    assert_eq!(yamashiro["received"][i2], Value::Null, "row complement");
    assert_eq!(minami["received"][i1], Value::Null, "column complement");
    assert_eq!(minami["received"][i2], Value::Null, "closing cell");
    assert_eq!(yamashiro["period"], 49);
    assert_eq!(minami["period"], 55);
    let total = &report["breakdown"]["total"];
    assert_eq!(total["received"][i1], 39);
    assert_eq!(total["received"][i2], 65);
    assert_eq!(total["period"], 104);

    // The open-data file says X where the JSON says null, and the page shows the table.
    let csv = csv(&app, "/statistics/open-data-breakdown.csv").await;
    let line = csv
        .lines()
        .find(|line| line.contains(&format!(",{},district,0030-00,", label(m1))))
        .expect("a line for the district and month");
    assert_eq!(
        line,
        format!("172065,加賀市,{},district,0030-00,山代温泉,X", label(m1))
    );
    let page = app.call(TestRequest::get().uri("/statistics")).await;
    let html = String::from_utf8(actix_web::test::read_body(page).await.to_vec()).unwrap();
    assert!(
        html.contains("町丁目別の受付件数"),
        "the page has the table"
    );
    assert!(html.contains("id=\"breakdown-0030-00\""));
}

/// Applies for a card-auth procedure as the dev card's holder (facts: 大聖寺南町, born
/// 1990-04-01); the stored breakdown columns.
async fn apply_with_card(app: &TestApp) -> (Option<String>, Option<String>) {
    let token = app.resident("card-breakdown").await;
    let (procedure, data) =
        crate::helpers::samples(madoguchi::forms::Assurance::CardAuth, 1).remove(0);
    let (status, created) = app
        .json(crate::submissions::submit(
            &procedure,
            &token,
            "breakdown",
            json!({"data": data}),
        ))
        .await;
    assert_eq!(status, 201, "{created}");
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        district_code: Option<String>,
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        age_band: Option<String>,
    }
    let mut connection = app.state.pool.get().await.expect("connection");
    let stored: Stored =
        diesel::sql_query("SELECT district_code, age_band FROM submissions WHERE id = $1")
            .bind::<SqlUuid, _>(Uuid::parse_str(created["id"].as_str().unwrap()).unwrap())
            .get_result(&mut connection)
            .await
            .expect("the application");
    (stored.district_code, stored.age_band)
}

#[actix_web::test]
async fn the_breakdown_is_derived_at_submit_only_when_the_city_opted_in() {
    let app = TestApp::with_settings(with_breakdown("district")).await;
    assert_eq!(
        apply_with_card(&app).await,
        (Some("0011-00".to_owned()), None)
    );

    let app = TestApp::with_settings(with_breakdown("age_band")).await;
    let expected = madoguchi::statistics_breakdown::age_band(
        NaiveDate::from_ymd_opt(1990, 4, 1).unwrap(),
        madoguchi::forms::lint::city_today(),
    );
    assert_eq!(apply_with_card(&app).await, (None, expected));

    // Not opted in: nothing derived, nothing rolled up, no table, no file.
    let app = TestApp::spawn().await;
    assert_eq!(apply_with_card(&app).await, (None, None));
    refresh(&app).await;
    let (status, report) = app.get("/api/v1/statistics").await;
    assert_eq!(status, 200);
    assert_eq!(report["breakdown"], Value::Null);
    let response = app
        .call(TestRequest::get().uri("/statistics/open-data-breakdown.csv"))
        .await;
    assert_eq!(response.status().as_u16(), 404);
    let mut connection = app.state.pool.get().await.expect("connection");
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    let rows: Count =
        diesel::sql_query("SELECT count(*) AS count FROM statistics_breakdown_monthly")
            .get_result(&mut connection)
            .await
            .expect("count");
    assert_eq!(rows.count, 0);
}

#[actix_web::test]
async fn the_report_is_kept_until_a_refresh_brings_new_figures() {
    let app = TestApp::spawn().await;
    let (a, _) = two_divisions();
    seed(&app, &a.procedure, month(0), 20, None).await;
    refresh(&app).await;
    let first = app.state.statistics_report(None).await.expect("report");
    let again = app.state.statistics_report(None).await.expect("report");
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "served from the cache"
    );
    assert_eq!(first.total.period.received, Some(20));

    seed(&app, &a.procedure, month(0), 15, None).await;
    let unchanged = app.state.statistics_report(None).await.expect("report");
    assert_eq!(unchanged.total.period.received, Some(20), "not folded yet");
    refresh(&app).await;
    let (status, report) = app.get("/api/v1/statistics").await;
    assert_eq!(status, 200);
    assert_eq!(
        report["total"]["period"]["received"], 35,
        "the new rollup shows"
    );
}

/// `count` payments of `yen` confirmed on the 2nd of `month` (city time) for applications to
/// `procedure` not paid yet, the first `late` of them after a recorded failure; returns their ids.
async fn pay(
    app: &TestApp,
    procedure: &str,
    month: NaiveDate,
    count: i32,
    yen: i64,
    late: i32,
) -> Vec<Uuid> {
    #[derive(diesel::QueryableByName)]
    struct Paid {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let at = month
        .succ_opt()
        .unwrap()
        .and_hms_opt(3, 0, 0)
        .unwrap()
        .and_utc();
    let mut connection = app.state.pool.get().await.expect("connection");
    let paid: Vec<Paid> = diesel::sql_query(
        "INSERT INTO payments (id, submission_id, resident_id, provider, order_id, amount_yen, status,
                               attention, idempotency_key, settled_at)
         SELECT gen_random_uuid(), s.id, s.resident_id, 'fake', 'O-' || s.id, $3, 'succeeded',
                CASE WHEN s.n <= $4 THEN 'late_success' END, 'K-' || s.id, $5
           FROM (SELECT id, resident_id, row_number() OVER (ORDER BY id) AS n FROM submissions
                  WHERE procedure_id = $1 AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.submission_id = submissions.id)
                  ORDER BY id LIMIT $2) AS s
         RETURNING id",
    )
    .bind::<Text, _>(procedure)
    .bind::<BigInt, _>(i64::from(count))
    .bind::<BigInt, _>(yen)
    .bind::<BigInt, _>(i64::from(late))
    .bind::<Timestamptz, _>(at)
    .load(&mut connection)
    .await
    .expect("payments");
    assert_eq!(paid.len(), count as usize);
    paid.into_iter().map(|p| p.id).collect()
}

#[actix_web::test]
async fn payment_figures_are_counted_by_month_and_suppressed_like_the_rest() {
    let app = TestApp::spawn().await;
    let (a, b) = two_divisions();
    let (m1, m2) = (month(2), month(1));
    seed(&app, &a.procedure, m1, 40, None).await;
    seed(&app, &b.procedure, m1, 40, None).await;
    refresh(&app).await;
    pay(&app, &a.procedure, m1, 12, 300, 1).await;
    let refunded = pay(&app, &a.procedure, m2, 14, 300, 0).await;
    pay(&app, &b.procedure, m1, 3, 200, 0).await;
    pay(&app, &b.procedure, m2, 20, 200, 0).await;
    let (staff, _) = app.staff_member(&a.division, "clerk").await;
    let mut connection = app.state.pool.get().await.expect("connection");
    diesel::sql_query(
        "INSERT INTO refunds (id, payment_id, amount_yen, reason, requested_by, status, created_at)
         SELECT gen_random_uuid(), id, 100, 'test', $2, 'succeeded', $3 FROM unnest($1::uuid[]) AS id LIMIT 10",
    )
    .bind::<Array<SqlUuid>, _>(&refunded)
    .bind::<SqlUuid, _>(staff)
    .bind::<Timestamptz, _>(m2.succ_opt().unwrap().and_hms_opt(5, 0, 0).unwrap().and_utc())
    .execute(&mut connection)
    .await
    .expect("refunds");

    let (status, report) = app.get("/api/v1/statistics").await;
    assert_eq!(status, 200, "{report}");
    let (i1, i2) = (month_index(&report, m1), month_index(&report, m2));
    let a_row = row(&report, &a.procedure);
    let b_row = row(&report, &b.procedure);
    // B's 3 payments are hidden, amount too, with the complements that keep them hidden.
    assert_eq!(b_row["months"][i1]["paid"], Value::Null);
    assert_eq!(b_row["months"][i1]["paid_yen"], Value::Null);
    assert!(hidden_keys(&b_row["months"][i1]).contains(&"paid_yen".to_owned()));
    assert_eq!(b_row["months"][i2]["paid"], Value::Null, "row complement");
    assert_eq!(
        a_row["months"][i1]["paid"],
        Value::Null,
        "column complement"
    );
    assert_eq!(a_row["months"][i2]["paid"], Value::Null, "closing cell");
    assert_eq!(a_row["period"]["paid"], 26);
    assert_eq!(a_row["period"]["paid_yen"], 26 * 300);
    assert_eq!(report["total"]["months"][i1]["paid"], 15);
    assert_eq!(
        report["total"]["months"][i1]["paid_yen"],
        12 * 300 + 3 * 200
    );
    // Ten refunds of 100 yen, in the month the provider completed them.
    assert_eq!(a_row["months"][i2]["refunded"], 10);
    assert_eq!(a_row["months"][i2]["refunded_yen"], 1000);
    assert_eq!(a_row["months"][i1]["refunded"], 0);
    // One late success: under the minimum, hidden.
    assert_eq!(a_row["months"][i1]["late_successes"], Value::Null);
    assert!(hidden_keys(&a_row["months"][i1]).contains(&"late_successes".to_owned()));

    let csv = csv(&app, "/statistics/open-data.csv").await;
    let header = csv.lines().next().unwrap_or_default();
    assert!(header.ends_with(",オンライン納付件数,オンライン納付額（円）,返金件数,返金額（円）,遅延した支払完了の件数"), "{header}");
}
