//! Fees and payments: the breakdown frozen at submission, and paying it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use actix_web::test::TestRequest;
use serde_json::{Value, json};

use crate::helpers::{CATALOG, TestApp, bearer, settings_with_test_pki};
use crate::submissions::submit;

/// The valid example of `procedure` called `name`.
fn example(procedure: &str, name: &str) -> Value {
    CATALOG
        .get(procedure)
        .expect("procedure")
        .definition
        .examples
        .iter()
        .find(|example| example.name == name)
        .expect("example")
        .data
        .clone()
}

/// Submits `data` for `procedure`, signed with the test card `card`.
async fn submit_signed(
    app: &TestApp,
    token: &str,
    procedure: &str,
    data: &Value,
    card: &str,
    key: &str,
) -> (u16, Value) {
    let (signature, nonce) = app.card_signature(token, procedure, data, card).await;
    app.json(submit(
        procedure,
        token,
        key,
        json!({"data": data, "signature": signature, "signing_nonce": nonce}),
    ))
    .await
}

/// Mr. A's request: two full copies of his 戸籍, mailed to Tokyo.
fn two_koseki_copies() -> Value {
    example(
        "koseki-shomei-request",
        "two full certificates for a passport",
    )
}

#[actix_web::test]
async fn a_family_register_request_freezes_its_fee_and_postage_at_submission() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let token = app.resident("card-7001").await;
    let data = two_koseki_copies();

    // The confirm step shows the breakdown before anything is stored.
    let (status, checked) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/procedures/koseki-shomei-request/validate")
                .insert_header(bearer(&token))
                .set_json(&data),
        )
        .await;
    assert_eq!(status, 200, "{checked}");
    assert_eq!(checked["fee_breakdown"]["total_yen"], 1010, "{checked}");

    let (status, created) = submit_signed(
        &app,
        &token,
        "koseki-shomei-request",
        &data,
        "sign-tokyo",
        "koseki-1",
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let breakdown = &created["fee_breakdown"];
    let lines: Vec<(String, String, i64)> = breakdown["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|line| {
            (
                line["kind"].as_str().unwrap_or_default().to_owned(),
                line["id"].as_str().unwrap_or_default().to_owned(),
                line["yen"].as_i64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("fee".to_owned(), "fee".to_owned(), 900),
            ("postage".to_owned(), "standard_letter".to_owned(), 110)
        ]
    );
    assert_eq!(breakdown["total_yen"], 1010);
    assert_eq!(breakdown["timing"], "at_submit");
    assert_eq!(created["fee_yen"], 900);

    // Stored with the application: the resident sees the same breakdown later.
    let id = created["id"].as_str().expect("id");
    let (status, detail) = app
        .get_as(&format!("/api/v1/submissions/{id}"), &token)
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(&detail["fee_breakdown"], breakdown);
}

#[actix_web::test]
async fn a_client_cannot_name_its_own_amount() {
    let app = TestApp::with_settings(settings_with_test_pki()).await;
    let token = app.resident("card-7002").await;
    let data = two_koseki_copies();
    let (signature, nonce) = app
        .card_signature(&token, "koseki-shomei-request", &data, "sign-tokyo")
        .await;
    for (key, extra) in [
        ("fee_yen", json!(1)),
        ("fee_breakdown", json!({"total_yen": 1})),
    ] {
        let mut body = json!({"data": data, "signature": signature, "signing_nonce": nonce});
        body[key] = extra;
        let (status, problem) = app
            .json(submit(
                "koseki-shomei-request",
                &token,
                &format!("amount-{key}"),
                body,
            ))
            .await;
        assert_eq!(status, 422, "{key}: {problem}");
        assert_eq!(problem["errors"][0]["path"], format!("/{key}"), "{problem}");
    }
}

// --- paying, against the fake provider process --------------------------------------------

const MERCHANT_ID: &str = "30132";
const SERVICE_ID: &str = "103";
const HASH_KEY: &str = "c48e0e4d5f0a8b2e9c1d7f3a6b5e4d3c2b1a0f9e";

/// The fake SB Payment Service (tests/fixtures/sbps/server.py); exits when dropped.
struct FakeProvider {
    child: Child,
    port: u16,
}

impl FakeProvider {
    fn start() -> Self {
        let mut child = Command::new("python3")
            .arg("tests/fixtures/sbps/server.py")
            .env("MERCHANT_ID", MERCHANT_ID)
            .env("SERVICE_ID", SERVICE_ID)
            .env("HASH_KEY", HASH_KEY)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the fake provider (tests/fixtures/sbps/server.py) runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("READY line");
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("the fake provider did not start: {line:?}"));
        Self { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn control(&self, action: &str, body: Value) -> Value {
        let response = reqwest::Client::new()
            .post(self.url(&format!("/control/{action}")))
            .json(&body)
            .send()
            .await
            .expect("fake provider answers");
        assert!(
            response.status().is_success(),
            "{action}: {}",
            response.status()
        );
        response.json().await.expect("json")
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The service listening on a real loopback port (the provider posts its notifications there),
/// paying through the fake provider.
struct Paying {
    app: TestApp,
    fake: FakeProvider,
    server: actix_web::dev::ServerHandle,
}

impl Paying {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// As [`Paying::start`], with `adjust` applied to the settings last.
    async fn start_with(adjust: impl FnOnce(&mut madoguchi::config::Settings)) -> Self {
        let fake = FakeProvider::start();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let port = listener.local_addr().expect("address").port();
        let mut settings = settings_with_test_pki();
        settings.server.public_url = format!("http://127.0.0.1:{port}");
        settings.payments.provider = "sbps".to_owned();
        settings.payments.reconcile_after_seconds = 0;
        settings.payments.sbps.purchase_url = fake.url("/purchase");
        settings.payments.sbps.api_url = fake.url("/api");
        settings.payments.sbps.merchant_id = MERCHANT_ID.to_owned();
        settings.payments.sbps.service_id = SERVICE_ID.to_owned();
        settings.payments.sbps.hash_key = HASH_KEY.to_owned().into();
        adjust(&mut settings);
        let app = TestApp::with_settings(settings).await;
        let (state, metrics) = (app.state.clone(), app.metrics.clone());
        let server = actix_web::HttpServer::new(move || {
            madoguchi::startup::build_app(state.clone(), metrics.clone())
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            app,
            fake,
            server: handle,
        }
    }

    /// Mr. A applies for two 戸籍 copies; returns his token and the application.
    async fn apply(&self, subject: &str) -> (String, Value) {
        let token = self.app.resident(subject).await;
        let (status, created) = submit_signed(
            &self.app,
            &token,
            "koseki-shomei-request",
            &two_koseki_copies(),
            "sign-tokyo",
            &format!("apply-{subject}"),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        (token, created)
    }

    async fn create_payment(&self, token: &str, application: &str, key: &str) -> (u16, Value) {
        self.app
            .json(
                TestRequest::post()
                    .uri(&format!("/api/v1/submissions/{application}/payments"))
                    .insert_header(bearer(token))
                    .insert_header(("idempotency-key", key.to_owned())),
            )
            .await
    }

    /// As the resident's browser: posts the checkout form to the provider's page, in
    /// Shift_JIS. Returns the page's status.
    async fn post_checkout(&self, checkout: &Value, change: Option<(&str, &str)>) -> u16 {
        let action = checkout["action"].as_str().expect("action");
        let mut body = Vec::new();
        for pair in checkout["fields"].as_array().expect("fields") {
            let name = pair[0].as_str().expect("name");
            let mut value = pair[1].as_str().expect("value");
            if let Some((changed, to)) = change
                && changed == name
            {
                value = to;
            }
            if !body.is_empty() {
                body.push(b'&');
            }
            body.extend(percent_encode(name));
            body.push(b'=');
            body.extend(percent_encode(value));
        }
        reqwest::Client::new()
            .post(action)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("the provider's page answers")
            .status()
            .as_u16()
    }

    async fn application_status(&self, token: &str, id: &str) -> String {
        let (_, detail) = self
            .app
            .get_as(&format!("/api/v1/submissions/{id}"), token)
            .await;
        detail["status"].as_str().unwrap_or_default().to_owned()
    }

    async fn payment(&self, token: &str, id: &str) -> Value {
        let (status, view) = self
            .app
            .get_as(&format!("/api/v1/payments/{id}"), token)
            .await;
        assert_eq!(status, 200, "{view}");
        view["payment"].clone()
    }

    /// Applies and starts paying: (token, application id, payment id, order id, checkout).
    async fn apply_and_open_payment(&self, subject: &str) -> (String, String, String, String) {
        let (token, created) = self.apply(subject).await;
        let id = created["id"].as_str().expect("id").to_owned();
        let (status, body) = self
            .create_payment(&token, &id, &format!("pay-{subject}"))
            .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(self.post_checkout(&body["checkout"], None).await, 200);
        let payment = body["payment"]["id"].as_str().expect("id").to_owned();
        let order = body["payment"]["order_id"]
            .as_str()
            .expect("order")
            .to_owned();
        (token, id, payment, order)
    }

    async fn notification_rows(&self) -> i64 {
        use diesel_async::RunQueryDsl;
        let mut connection = madoguchi::db::connection(&self.app.state.pool)
            .await
            .expect("connection");
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            count: i64,
        }
        diesel::sql_query("SELECT count(*) AS count FROM payment_notifications")
            .get_result::<Count>(&mut connection)
            .await
            .expect("count")
            .count
    }

    /// The payloads of the queued emails of `template`.
    async fn outbox_payloads(&self, template: &str) -> Vec<Value> {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use madoguchi::db::schema::outbox;
        let mut connection = madoguchi::db::connection(&self.app.state.pool)
            .await
            .expect("connection");
        outbox::table
            .filter(outbox::template.eq(template))
            .select(outbox::payload)
            .load(&mut connection)
            .await
            .expect("outbox")
    }

    async fn reconcile(&self) -> madoguchi::payments::reconciler::Pass {
        let state = &self.app.state;
        madoguchi::payments::reconciler::run_once(
            &state.pool,
            &state.submissions(),
            state.payments.as_deref().expect("a provider"),
            &state.settings.payments,
        )
        .await
        .expect("a reconciler pass")
    }

    async fn stop(self) {
        self.server.stop(false).await;
    }
}

/// `application/x-www-form-urlencoded` in Shift_JIS, as a browser posts a form whose
/// `accept-charset` is Shift_JIS.
fn percent_encode(text: &str) -> Vec<u8> {
    let (bytes, _, _) = encoding_rs::SHIFT_JIS.encode(text);
    let mut out = Vec::new();
    for byte in bytes.iter() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => out.push(*byte),
            b' ' => out.push(b'+'),
            other => out.extend(format!("%{other:02X}").into_bytes()),
        }
    }
    out
}

#[actix_web::test]
async fn mr_a_pays_for_a_family_register_copy_and_postage_and_then_it_enters_the_queue() {
    let paying = Paying::start().await;
    let (token, created) = paying.apply("card-7101").await;
    let id = created["id"].as_str().expect("id");
    // Stored first, in no queue until paid.
    assert_eq!(created["status"], "awaiting_payment");
    let clerk = paying.app.staff("madoguchi", "clerk").await;
    let queue = |clerk: String| {
        let app = &paying.app;
        async move {
            let (status, page) = app
                .get_as("/api/v1/staff/queues/madoguchi/submissions", &clerk)
                .await;
            assert_eq!(status, 200, "{page}");
            page.to_string()
        }
    };
    assert!(!queue(clerk.clone()).await.contains(id));
    paying.app.confirmed_email(&token, "mr-a@example.jp").await;

    let (status, body) = paying.create_payment(&token, id, "pay-1").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["payment"]["amount_yen"], 1010);
    assert_eq!(body["checkout"]["charset"], "Shift_JIS");
    assert_eq!(paying.post_checkout(&body["checkout"], None).await, 200);
    let order = body["payment"]["order_id"].as_str().expect("order");
    let delivered = paying
        .fake
        .control("pay", json!({"order_id": order, "result": "OK"}))
        .await;
    assert_eq!(delivered["delivered"], json!([[200, "OK,"]]));

    let payment = paying
        .payment(&token, body["payment"]["id"].as_str().expect("id"))
        .await;
    assert_eq!(payment["status"], "succeeded");
    assert!(payment["provider_reference"].is_string(), "{payment}");
    assert_eq!(paying.application_status(&token, id).await, "submitted");
    assert!(queue(clerk).await.contains(id));

    // A payment confirmation is queued for him: the breakdown and the provider's reference, and
    // nothing of his answers.
    let confirmations = paying.outbox_payloads("payment_confirmation").await;
    assert_eq!(confirmations.len(), 1, "{confirmations:?}");
    let paid = &confirmations[0]["payment"];
    assert_eq!(paid["total_yen"], 1010);
    assert_eq!(paid["provider_reference"], payment["provider_reference"]);
    assert_eq!(paid["lines"][1]["yen"], 110);
    let text = confirmations[0].to_string();
    assert!(
        !text.contains("大聖寺") && !text.contains("加賀 太郎"),
        "{text}"
    );
    let sent = paying.app.run_pending_jobs().await;
    assert!(
        sent.iter().any(|message| message
            .envelope()
            .to()
            .iter()
            .any(|to| to.to_string() == "mr-a@example.jp")),
        "the confirmation is sent"
    );
    paying.stop().await;
}

#[actix_web::test]
async fn one_idempotency_key_gives_one_payment_and_a_tampered_amount_is_refused_by_the_hash() {
    let paying = Paying::start().await;
    let (token, created) = paying.apply("card-7102").await;
    let id = created["id"].as_str().expect("id");
    let (first_status, first) = paying.create_payment(&token, id, "same-key").await;
    let (second_status, second) = paying.create_payment(&token, id, "same-key").await;
    assert_eq!((first_status, second_status), (201, 200));
    assert_eq!(first["payment"]["id"], second["payment"]["id"]);
    // Another key while that payment is under way offers the same payment, never a second.
    let (_, third) = paying.create_payment(&token, id, "another-key").await;
    assert_eq!(first["payment"]["id"], third["payment"]["id"]);

    // The browser form says 1 yen instead of 1,010: the provider refuses it.
    assert_eq!(
        paying
            .post_checkout(&first["checkout"], Some(("amount", "1")))
            .await,
        400
    );
    assert_eq!(paying.post_checkout(&first["checkout"], None).await, 200);
    paying.stop().await;
}

#[actix_web::test]
async fn a_bad_hash_is_refused_and_a_forged_return_url_changes_nothing() {
    let paying = Paying::start().await;
    let (token, id, payment, order) = paying.apply_and_open_payment("card-7103").await;
    let genuine = paying
        .fake
        .control("notification", json!({"order_id": order, "result": "OK"}))
        .await;
    let body = genuine["body"].as_str().expect("body");
    let forged = body
        .replace("res_result=OK", "res_result=OK&")
        .replace("amount=1010", "amount=1");
    let mut bad_hash = body.to_owned();
    let at = bad_hash.find("sps_hashcode=").expect("hash") + "sps_hashcode=".len();
    bad_hash.replace_range(at..at + 1, if &body[at..at + 1] == "0" { "1" } else { "0" });
    for tampered in [forged, bad_hash] {
        let response = paying
            .app
            .call(
                TestRequest::post()
                    .uri("/api/v1/payments/notifications/sbps")
                    .insert_header(("content-type", "application/x-www-form-urlencoded"))
                    .set_payload(tampered),
            )
            .await;
        assert_eq!(response.status().as_u16(), 400);
        let problem: Value =
            serde_json::from_slice(&actix_web::test::read_body(response).await).expect("json");
        assert_eq!(problem["code"], "payment.notification_invalid", "{problem}");
    }
    assert_eq!(paying.notification_rows().await, 0, "nothing stored");

    // The browser comes back claiming success: the page shows what we know, and changes nothing.
    let (status, shown) = paying
        .app
        .get(&format!(
            "/api/v1/payments/{payment}/return?res_result=OK&order_id={order}"
        ))
        .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["status"], "created");
    assert_eq!(paying.payment(&token, &payment).await["status"], "created");
    assert_eq!(
        paying.application_status(&token, &id).await,
        "awaiting_payment"
    );

    // The genuine notification is accepted.
    let response = paying
        .app
        .call(
            TestRequest::post()
                .uri("/api/v1/payments/notifications/sbps")
                .set_payload(body.to_owned()),
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        paying.payment(&token, &payment).await["status"],
        "succeeded"
    );
    paying.stop().await;
}

#[actix_web::test]
async fn duplicated_and_reordered_notifications_end_paid() {
    let paying = Paying::start().await;
    // Duplicated: both acknowledged, stored once.
    let (token, id, payment, order) = paying.apply_and_open_payment("card-7104").await;
    let delivered = paying
        .fake
        .control(
            "pay",
            json!({"order_id": order, "result": "OK", "deliver": "duplicate"}),
        )
        .await;
    assert_eq!(delivered["delivered"], json!([[200, "OK,"], [200, "OK,"]]));
    assert_eq!(paying.notification_rows().await, 1);
    assert_eq!(
        paying.payment(&token, &payment).await["status"],
        "succeeded"
    );
    assert_eq!(paying.application_status(&token, &id).await, "submitted");

    // Reordered: the failure arrives after the success was taken; then the success again.
    let (token, id, payment, order) = paying.apply_and_open_payment("card-7105").await;
    paying
        .fake
        .control(
            "pay",
            json!({"order_id": order, "result": "OK", "deliver": "drop"}),
        )
        .await;
    paying
        .fake
        .control("notify", json!({"order_id": order, "result": "NG"}))
        .await;
    assert_eq!(paying.payment(&token, &payment).await["status"], "failed");
    assert_eq!(
        paying.application_status(&token, &id).await,
        "awaiting_payment"
    );
    paying
        .fake
        .control("notify", json!({"order_id": order, "result": "OK"}))
        .await;
    let settled = paying.payment(&token, &payment).await;
    assert_eq!(settled["status"], "succeeded", "success wins");
    assert_eq!(settled["attention"], "late_success", "and staff are told");
    assert_eq!(paying.application_status(&token, &id).await, "submitted");
    // A late failure changes nothing.
    paying
        .fake
        .control("notify", json!({"order_id": order, "result": "NG"}))
        .await;
    assert_eq!(
        paying.payment(&token, &payment).await["status"],
        "succeeded"
    );
    paying.stop().await;
}

#[actix_web::test]
async fn a_dropped_notification_is_settled_by_one_reconciler_run() {
    let paying = Paying::start().await;
    let (token, id, payment, order) = paying.apply_and_open_payment("card-7106").await;
    paying
        .fake
        .control(
            "pay",
            json!({"order_id": order, "result": "OK", "deliver": "drop"}),
        )
        .await;
    assert_eq!(paying.payment(&token, &payment).await["status"], "created");
    let pass = paying.reconcile().await;
    assert_eq!((pass.settled, pass.still_open), (1, 0), "{pass:?}");
    assert_eq!(
        paying.payment(&token, &payment).await["status"],
        "succeeded"
    );
    assert_eq!(paying.application_status(&token, &id).await, "submitted");
    // Nothing left open: a second run finds nothing.
    assert_eq!(paying.reconcile().await.settled, 0);
    // The metrics count payments by provider and status, whoever settled them.
    let response = paying.app.call(TestRequest::get().uri("/metrics")).await;
    let text = String::from_utf8_lossy(&actix_web::test::read_body(response).await).into_owned();
    assert!(
        text.contains("madoguchi_payments{provider=\"sbps\",status=\"succeeded\"} 1"),
        "{text}"
    );
    paying.stop().await;
}

#[actix_web::test]
async fn a_payment_for_a_withdrawn_application_is_flagged_for_a_refund() {
    let paying = Paying::start().await;
    let (token, id, payment, order) = paying.apply_and_open_payment("card-7108").await;
    let (status, _) = paying
        .app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/submissions/{id}/withdraw"))
                .insert_header(bearer(&token)),
        )
        .await;
    assert_eq!(status, 200);
    // The resident had the provider's page open and pays anyway.
    paying
        .fake
        .control("pay", json!({"order_id": order, "result": "OK"}))
        .await;
    let settled = paying.payment(&token, &payment).await;
    assert_eq!(settled["status"], "succeeded");
    assert_eq!(settled["attention"], "refund_due");
    assert_eq!(paying.application_status(&token, &id).await, "withdrawn");
    // Supervisors of the division see it in the list of payments needing a person; clerks don't.
    let supervisor = paying.app.staff("madoguchi", "supervisor").await;
    let (status, list) = paying
        .app
        .get_as("/api/v1/staff/payments/attention", &supervisor)
        .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list[0]["id"], settled["id"]);
    let other = paying.app.staff("zeimu", "admin").await;
    let (_, list) = paying
        .app
        .get_as("/api/v1/staff/payments/attention", &other)
        .await;
    assert_eq!(list, json!([]), "another division's admin sees none of it");
    let clerk = paying.app.staff("madoguchi", "clerk").await;
    let (status, _) = paying
        .app
        .get_as("/api/v1/staff/payments/attention", &clerk)
        .await;
    assert_eq!(status, 403);
    paying.stop().await;
}

#[actix_web::test]
async fn refunds_are_guarded_against_doubles_and_never_exceed_the_capture() {
    let paying = Paying::start().await;
    let (token, id, payment, order) = paying.apply_and_open_payment("card-7107").await;
    paying
        .fake
        .control("pay", json!({"order_id": order, "result": "OK"}))
        .await;
    let supervisor = paying.app.staff("madoguchi", "supervisor").await;
    let clerk = paying.app.staff("madoguchi", "clerk").await;
    let refund = |token: String, amount: i64, expected: i64| {
        let app = &paying.app;
        let payment = payment.clone();
        async move {
            app.json(
                TestRequest::post()
                    .uri(&format!("/api/v1/staff/payments/{payment}/refunds"))
                    .insert_header(bearer(&token))
                    .set_json(json!({"amount_yen": amount, "expected_refundable_yen": expected, "reason": "郵送不要になったため"})),
            )
            .await
        }
    };
    let (status, _) = refund(clerk, 110, 1010).await;
    assert_eq!(status, 403, "a clerk cannot refund");

    // Staff see the breakdown and what is refundable.
    let (status, view) = paying
        .app
        .get_as(
            &format!("/api/v1/staff/submissions/{id}/payments"),
            &supervisor,
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["breakdown"]["total_yen"], 1010);
    assert_eq!(view["payments"][0]["refundable_yen"], 1010);

    // Postage refunded; the same click again is a 409, not a second refund.
    let (status, made) = refund(supervisor.clone(), 110, 1010).await;
    assert_eq!(status, 201, "{made}");
    let (status, problem) = refund(supervisor.clone(), 110, 1010).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "refund.stale");

    // 20 at once, each for 100 yen of the 900 left: never more than captured.
    let attempts = (0..20).map(|_| refund(supervisor.clone(), 100, 900));
    let results = futures_util::future::join_all(attempts).await;
    let made = results.iter().filter(|(status, _)| *status == 201).count();
    assert!(
        results
            .iter()
            .all(|(status, _)| [201, 409].contains(status)),
        "{results:?}"
    );
    assert_eq!(made, 1, "one refund per refundable amount seen");
    let (_, view) = paying
        .app
        .get_as(
            &format!("/api/v1/staff/submissions/{id}/payments"),
            &supervisor,
        )
        .await;
    let refunded: i64 = view["payments"][0]["refunds"]
        .as_array()
        .expect("refunds")
        .iter()
        .map(|refund| refund["amount_yen"].as_i64().unwrap_or_default())
        .sum();
    assert_eq!(refunded, 210);
    assert_eq!(view["payments"][0]["refundable_yen"], 800);
    let at_provider = paying
        .fake
        .control("order", json!({"order_id": order}))
        .await;
    assert_eq!(at_provider["refunded"], 210);

    // More than is left: 409.
    let (status, problem) = refund(supervisor, 900, 800).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("refund.exceeds_available"))
    );
    let _ = token;
    paying.stop().await;
}

/// Emails through the real SMTP test server.
fn through_smtp(port: u16) -> impl FnOnce(&mut madoguchi::config::Settings) {
    move |settings| {
        let smtp = crate::notify::smtp_settings(port);
        settings.email = smtp.email;
    }
}

async fn staff_act(app: &TestApp, token: &str, id: &str, body: Value) -> (u16, Value) {
    app.json(
        TestRequest::post()
            .uri(&format!("/api/v1/staff/submissions/{id}/transitions"))
            .insert_header(bearer(token))
            .set_json(body),
    )
    .await
}

async fn set_fee(app: &TestApp, token: &str, id: &str, body: Value) -> (u16, Value) {
    app.json(
        TestRequest::post()
            .uri(&format!("/api/v1/staff/submissions/{id}/fee"))
            .insert_header(bearer(token))
            .set_json(body),
    )
    .await
}

#[actix_web::test]
async fn after_review_a_clerk_sets_the_fee_the_email_arrives_by_smtp_and_the_resident_pays() {
    let smtp = crate::notify::SmtpServer::start(0.0, None);
    let paying = Paying::start_with(through_smtp(smtp.port)).await;
    let app = &paying.app;
    let token = app.resident("card-7201").await;
    app.confirmed_email(&token, "kaiseigen@example.jp").await;
    let data = example(
        "kaiseigen-koseki-request",
        "one Heisei pre-revision copy for inheritance",
    );
    let (status, created) = submit_signed(
        app,
        &token,
        "kaiseigen-koseki-request",
        &data,
        "sign-tokyo",
        "after-review-1",
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    // Paid after review: it goes straight to the queue, its breakdown an estimate.
    assert_eq!(created["status"], "submitted");
    assert_eq!(created["fee_breakdown"]["timing"], "after_review");
    assert_eq!(created["fee_breakdown"]["total_yen"], 860);
    let (status, problem) = paying.create_payment(&token, &id, "too-early").await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (409, Some("payment.nothing_to_pay"))
    );

    let (clerk_id, clerk) = app.staff_member("madoguchi", "clerk").await;
    let other_clerk = app.staff("madoguchi", "clerk").await;
    let elsewhere = app.staff("zeimu", "supervisor").await;
    let (status, _) = staff_act(app, &clerk, &id, json!({"action": "start"})).await;
    assert_eq!(status, 200);

    let fee = json!({
        "lines": [
            {"kind": "fee", "id": "fee", "yen": 2250},
            {"kind": "postage", "id": "standard_letter", "yen": 110}
        ],
        "reason": "平成改製原戸籍が3つに分かれていたため3通分"
    });
    // Another division sees nothing; a colleague who is not the assignee may not; bad lines are
    // named in both languages.
    let (status, _) = set_fee(app, &elsewhere, &id, fee.clone()).await;
    assert_eq!(status, 404);
    let (status, problem) = set_fee(app, &other_clerk, &id, fee.clone()).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (403, Some("queue.not_assignee"))
    );
    let (status, problem) = set_fee(
        app,
        &clerk,
        &id,
        json!({"lines": [{"kind": "fee", "id": "fee", "yen": -5}], "reason": ""}),
    )
    .await;
    assert_eq!(status, 422, "{problem}");
    let paths: Vec<&str> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|error| error["path"].as_str())
        .collect();
    assert_eq!(paths, ["/reason", "/lines/0/yen"], "{problem}");
    assert!(
        problem["errors"][1]["message"]["en"].is_string(),
        "{problem}"
    );
    assert_eq!(paying.application_status(&token, &id).await, "in_progress");

    let (status, set) = set_fee(app, &clerk, &id, fee.clone()).await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["total_yen"], 2360);
    assert_eq!(
        set["lines"][1]["label"]["ja"],
        created["fee_breakdown"]["lines"][1]["label"]["ja"]
    );
    assert_eq!(
        paying.application_status(&token, &id).await,
        "awaiting_payment"
    );
    // Set once: asking again is refused until the application is back in progress.
    let (status, _) = set_fee(app, &clerk, &id, fee.clone()).await;
    assert_eq!(status, 409);
    // Recorded in the history with who and why.
    let (status, detail) = app
        .get_as(&format!("/api/v1/staff/submissions/{id}"), &clerk)
        .await;
    assert_eq!(status, 200, "{detail}");
    let last = detail["history"]
        .as_array()
        .and_then(|history| history.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["to_status"], "awaiting_payment", "{detail}");
    assert_eq!(last["reason"], "平成改製原戸籍が3つに分かれていたため3通分");
    assert_eq!(last["actor_id"], clerk_id.to_string());

    // The payment request arrives through the SMTP server: the lines and the total, no answers.
    let pass = crate::notify::worker_pass(app).await;
    assert!(pass.sent >= 1, "{pass:?}");
    let messages = smtp.wait_for(1, std::time::Duration::from_secs(5));
    let request = messages
        .iter()
        .find(|message| {
            crate::notify::recipient(message) == "kaiseigen@example.jp"
                && message["subject"]
                    .as_str()
                    .is_some_and(|subject| subject.contains("お支払いのお願い"))
        })
        .unwrap_or_else(|| panic!("the payment request arrived: {messages:?}"));
    let text = request["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("2,250円") && text.contains("合計: 2,360円"),
        "{text}"
    );
    assert!(
        text.contains(created["reference"].as_str().expect("reference")),
        "{text}"
    );
    let whole = request.to_string();
    for answer in ["加賀 源造", "大聖寺", "加賀 太郎", "0761-72-3456"] {
        assert!(!whole.contains(answer), "the request leaks {answer}");
    }

    // The resident pays the same way as at submission, the amount the clerk set.
    let (status, body) = paying.create_payment(&token, &id, "after-review-pay").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["payment"]["amount_yen"], 2360);
    assert_eq!(paying.post_checkout(&body["checkout"], None).await, 200);
    let order = body["payment"]["order_id"].as_str().expect("order");
    paying
        .fake
        .control("pay", json!({"order_id": order, "result": "OK"}))
        .await;
    let payment = paying
        .payment(&token, body["payment"]["id"].as_str().expect("id"))
        .await;
    assert_eq!(payment["status"], "succeeded");
    // Back with the clerk, in progress; the clerk finishes it.
    assert_eq!(paying.application_status(&token, &id).await, "in_progress");
    let (status, done) = staff_act(app, &clerk, &id, json!({"action": "complete"})).await;
    assert_eq!(status, 200, "{done}");

    let before = smtp.wait_for(usize::MAX, std::time::Duration::ZERO).len();
    crate::notify::worker_pass(app).await;
    let messages = smtp.wait_for(before + 1, std::time::Duration::from_secs(5));
    let confirmation = messages
        .iter()
        .find(|message| {
            message["subject"]
                .as_str()
                .is_some_and(|subject| subject.contains("決済完了のお知らせ"))
        })
        .unwrap_or_else(|| panic!("the confirmation arrived: {messages:?}"));
    let text = confirmation["text"].as_str().unwrap_or_default();
    assert!(text.contains("合計: 2,360円"), "{text}");
    assert!(
        text.contains(payment["provider_reference"].as_str().expect("reference")),
        "{text}"
    );
    paying.stop().await;
}

/// `madoguchi serve` as a real process on `port`, receiving the provider's notifications for the
/// database of `paying`; killed with SIGKILL when dropped.
struct ServeProcess(Child);

impl ServeProcess {
    async fn start(paying: &Paying, port: u16) -> Self {
        let sbps = &paying.app.state.settings.payments.sbps;
        // Wrapped at once: dropped on any path, it is killed and reaped.
        let server = Self(
            Command::new(env!("CARGO_BIN_EXE_madoguchi"))
                .arg("serve")
                .env("MADOGUCHI_PROFILE", "test")
                .env("DATABASE_URL", &paying.app.database.url)
                .env("MADOGUCHI__SERVER__PORT", port.to_string())
                .env(
                    "MADOGUCHI__SERVER__PUBLIC_URL",
                    format!("http://127.0.0.1:{port}"),
                )
                .env("MADOGUCHI__SERVER__WORKERS", "2")
                // No reconciler inside: the test runs exactly one, after the kill.
                .env("MADOGUCHI__EMAIL__WORKER_IN_SERVE", "false")
                .env("MADOGUCHI__PAYMENTS__PROVIDER", "sbps")
                .env(
                    "MADOGUCHI__PAYMENTS__SBPS__PURCHASE_URL",
                    &sbps.purchase_url,
                )
                .env("MADOGUCHI__PAYMENTS__SBPS__API_URL", &sbps.api_url)
                .env("MADOGUCHI__PAYMENTS__SBPS__MERCHANT_ID", MERCHANT_ID)
                .env("MADOGUCHI__PAYMENTS__SBPS__SERVICE_ID", SERVICE_ID)
                .env("MADOGUCHI__PAYMENTS__SBPS__HASH_KEY", HASH_KEY)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("madoguchi serve"),
        );
        let started = std::time::Instant::now();
        while started.elapsed() < std::time::Duration::from_secs(30) {
            if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await
                && response.status().is_success()
            {
                return server;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the server did not start within 30 s");
    }

    fn kill(&mut self) {
        // Child::kill sends SIGKILL: no shutdown, no flushing, requests cut off mid-way.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn open_payments(paying: &Paying) -> i64 {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use madoguchi::db::schema::payments;
    let mut connection = madoguchi::db::connection(&paying.app.state.pool)
        .await
        .expect("connection");
    payments::table
        .filter(payments::status.eq_any(["created", "pending"]))
        .count()
        .get_result(&mut connection)
        .await
        .expect("count")
}

#[actix_web::test]
async fn notifications_dropped_and_the_server_killed_mid_flow_leave_nothing_pending_after_one_reconciler_run()
 {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port");
    // The provider notifies the real server process, not the in-process one.
    let paying = Paying::start_with(|settings| {
        settings.server.public_url = format!("http://127.0.0.1:{port}");
    })
    .await;
    let mut opened = Vec::new();
    for n in 0..8 {
        let (token, id, payment, order) = paying
            .apply_and_open_payment(&format!("card-73{n:02}"))
            .await;
        opened.push((token, id, payment, order));
    }
    let mut server = ServeProcess::start(&paying, port).await;

    // The resident pays each; two notifications are dropped by the provider, the others are
    // delivered while the server is killed part-way.
    let fake_url = paying.fake.url("/control/pay");
    let orders: Vec<(usize, String)> = opened
        .iter()
        .enumerate()
        .map(|(n, (_, _, _, order))| (n, order.clone()))
        .collect();
    let payer = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut delivered = Vec::new();
        for (n, order) in orders {
            let deliver = if n % 4 == 1 { "drop" } else { "normal" };
            let answer: Value = client
                .post(&fake_url)
                .json(&json!({"order_id": order, "result": "OK", "deliver": deliver}))
                .send()
                .await
                .expect("the fake provider answers")
                .json()
                .await
                .expect("json");
            delivered.push(answer["delivered"].clone());
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        }
        delivered
    });
    let started = std::time::Instant::now();
    while open_payments(&paying).await > 6 && started.elapsed() < std::time::Duration::from_secs(20)
    {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    server.kill();
    let delivered = payer.await.expect("payer");
    let lost = delivered
        .iter()
        .filter(|answer| answer[0][0] != 200)
        .count();
    assert!(
        lost >= 2,
        "notifications were lost to the kill or dropped: {delivered:?}"
    );
    let stuck = open_payments(&paying).await;
    assert!(
        stuck > 0 && stuck < 8,
        "the kill came mid-flow: {stuck} open"
    );

    let pass = paying.reconcile().await;
    assert_eq!(pass.still_open, 0, "{pass:?}");
    assert_eq!(open_payments(&paying).await, 0, "nothing left pending");
    for (token, id, payment, _) in &opened {
        assert_eq!(paying.payment(token, payment).await["status"], "succeeded");
        assert_eq!(paying.application_status(token, id).await, "submitted");
    }
    // Each application entered its queue once, whoever settled it.
    for (_, id, _, _) in &opened {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use madoguchi::db::schema::submission_events;
        let mut connection = madoguchi::db::connection(&paying.app.state.pool)
            .await
            .expect("connection");
        let paid: i64 = submission_events::table
            .filter(submission_events::submission_id.eq(uuid::Uuid::parse_str(id).expect("id")))
            .filter(submission_events::reason.eq("paid"))
            .count()
            .get_result(&mut connection)
            .await
            .expect("count");
        assert_eq!(paid, 1, "{id}");
    }
    paying.stop().await;
}

#[actix_web::test]
async fn a_withdrawal_after_payment_flags_the_payment_for_a_supervisors_refund() {
    let paying = Paying::start().await;
    let (token, id, payment, order) = paying.apply_and_open_payment("card-7109").await;
    paying
        .fake
        .control("pay", json!({"order_id": order, "result": "OK"}))
        .await;
    assert_eq!(paying.application_status(&token, &id).await, "submitted");
    assert!(paying.payment(&token, &payment).await["attention"].is_null());
    let (status, _) = paying
        .app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/submissions/{id}/withdraw"))
                .insert_header(bearer(&token)),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        paying.payment(&token, &payment).await["attention"],
        "refund_due"
    );
    let supervisor = paying.app.staff("madoguchi", "supervisor").await;
    let (_, list) = paying
        .app
        .get_as("/api/v1/staff/payments/attention", &supervisor)
        .await;
    assert_eq!(list[0]["id"], payment.as_str(), "{list}");
    // The whole fee goes back in one refund (the provider's cancel, not a partial refund).
    let (status, made) = paying
        .app
        .json(
            TestRequest::post()
                .uri(&format!("/api/v1/staff/payments/{payment}/refunds"))
                .insert_header(bearer(&supervisor))
                .set_json(json!({"amount_yen": 1010, "expected_refundable_yen": 1010, "reason": "取下げのため"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let at_provider = paying
        .fake
        .control("order", json!({"order_id": order}))
        .await;
    assert_eq!(at_provider["refunded"], 1010);
    paying.stop().await;
}

#[actix_web::test]
async fn the_daily_settlement_report_lists_each_kind_of_mismatch_for_the_accountant() {
    let paying = Paying::start().await;
    // Four paid orders: one left out of the file, one with another amount, one paid here but
    // failed at the provider in our records, one matching; and a sale we never made.
    let mut orders = Vec::new();
    for n in 0..4 {
        let (token, _, payment, order) = paying
            .apply_and_open_payment(&format!("card-74{n:02}"))
            .await;
        paying
            .fake
            .control("pay", json!({"order_id": order, "result": "OK"}))
            .await;
        assert_eq!(
            paying.payment(&token, &payment).await["status"],
            "succeeded"
        );
        orders.push((payment, order));
    }
    let (missing, differs, stale, matching) = (&orders[0], &orders[1], &orders[2], &orders[3]);
    paying
        .fake
        .control("settlement_omit", json!({"order_id": missing.1}))
        .await;
    paying
        .fake
        .control(
            "settlement_amount",
            json!({"order_id": differs.1, "amount": 101}),
        )
        .await;
    paying
        .fake
        .control(
            "settlement_extra",
            json!({"order_id": "MDGunknown", "tracking_id": "99999999999999", "amount": 450}),
        )
        .await;
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use madoguchi::db::schema::payments;
        let mut connection = madoguchi::db::connection(&paying.app.state.pool)
            .await
            .expect("connection");
        // As if our record of it were wrong: the provider settled it, we hold it failed.
        diesel::update(payments::table.filter(payments::order_id.eq(&stale.1)))
            .set(payments::status.eq("failed"))
            .execute(&mut connection)
            .await
            .expect("update");
    }

    let mut sbps = paying.app.state.settings.payments.sbps.clone();
    sbps.settlement_url = paying.fake.url("/settlement");
    let provider = madoguchi::payments::sbps::Sbps::new(sbps);
    let today = madoguchi::submissions::city_date(chrono::Utc::now());
    let mut connection = madoguchi::db::connection(&paying.app.state.pool)
        .await
        .expect("connection");
    let report = madoguchi::payments::settlement::report(&mut connection, &provider, today)
        .await
        .expect("report");
    assert!(report.made);
    assert_eq!(
        (
            report.provider_lines,
            report.our_payments,
            report.mismatches
        ),
        (4, 3, 4),
        "{report:?}"
    );
    // Made once a day: another run (another worker) changes nothing.
    let again = madoguchi::payments::settlement::report(&mut connection, &provider, today)
        .await
        .expect("report");
    assert!(!again.made);
    drop(connection);

    let admin = paying.app.staff("madoguchi", "admin").await;
    let (status, list) = paying
        .app
        .get_as("/api/v1/staff/payments/settlement-mismatches", &admin)
        .await;
    assert_eq!(status, 200, "{list}");
    let kinds: Vec<(String, String)> = list
        .as_array()
        .expect("list")
        .iter()
        .map(|m| {
            (
                m["kind"].as_str().unwrap_or_default().to_owned(),
                m["order_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("missing".to_owned(), missing.1.clone()),
            ("amount_differs".to_owned(), differs.1.clone()),
            ("status_differs".to_owned(), stale.1.clone()),
            ("unknown".to_owned(), "MDGunknown".to_owned()),
        ],
        "{list}"
    );
    assert_eq!(list[1]["our_amount_yen"], 1010);
    assert_eq!(list[1]["provider_amount_yen"], 101);
    assert!(!list.to_string().contains(&matching.1));
    // Another division's admin sees only the sale nobody here made; a supervisor nothing.
    let other = paying.app.staff("zeimu", "admin").await;
    let (_, list) = paying
        .app
        .get_as("/api/v1/staff/payments/settlement-mismatches", &other)
        .await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["kind"], "unknown");
    let supervisor = paying.app.staff("madoguchi", "supervisor").await;
    let (status, _) = paying
        .app
        .get_as("/api/v1/staff/payments/settlement-mismatches", &supervisor)
        .await;
    assert_eq!(status, 403);
    paying.stop().await;
}

/// A staff member with `role` in `division`, signed in on the console.
async fn console_clerk<'a>(
    app: &'a TestApp,
    division: &str,
    role: &str,
) -> crate::page_client::Browser<'a> {
    use madoguchi::identity::staff::{self, Membership, Role};
    let login = format!("{division}-{role}-{}", uuid::Uuid::new_v4().simple());
    let mut connection = app.state.pool.get().await.expect("connection");
    staff::create(
        &mut connection,
        &login,
        "職員",
        None,
        Some(crate::helpers::STAFF_PASSWORD),
        &[Membership {
            division: division.to_owned(),
            role: Role::parse(role).expect("role"),
        }],
        None,
    )
    .await
    .expect("staff account");
    drop(connection);
    let mut browser = crate::page_client::Browser::new(app);
    let page = browser.get("/staff/sign-in").await;
    let csrf = crate::page_client::hidden(&page.html, "csrf");
    let signed = browser
        .post(
            "/staff/sign-in",
            &[
                ("csrf", &csrf),
                ("login", &login),
                ("password", crate::helpers::STAFF_PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed.status, 303, "{}", signed.html);
    browser
}

#[actix_web::test]
async fn on_the_console_the_assignee_sets_the_fee_with_a_reason_and_the_application_waits_for_payment()
 {
    let paying = Paying::start().await;
    let app = &paying.app;
    let token = app.resident("card-7501").await;
    let data = example(
        "kaiseigen-koseki-request",
        "an extract of two persons, two copies",
    );
    let (status, created) = submit_signed(
        app,
        &token,
        "kaiseigen-koseki-request",
        &data,
        "sign-tokyo",
        "console-fee-1",
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    let page = format!("/staff/applications/{id}");
    let fee = format!("/staff/applications/{id}/fee");

    let mut clerk = console_clerk(app, "madoguchi", "clerk").await;
    let opened = clerk.get(&page).await;
    assert_eq!(opened.status, 200, "{}", opened.html);
    assert!(
        !opened.html.contains(&fee),
        "no fee form before it is taken up"
    );
    let csrf = crate::page_client::hidden(&opened.html, "csrf");
    let started = clerk
        .post(
            &format!("/staff/applications/{id}/decide"),
            &[("csrf", &csrf), ("action", "start")],
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.html);
    let opened = clerk.get(&page).await;
    // One number per line of the estimate: 2 copies × 750 yen, and the letter's postage.
    assert!(
        opened.html.contains(r#"name="line:fee:fee""#) && opened.html.contains(r#"value="1500""#),
        "{}",
        opened.html
    );
    assert!(
        opened
            .html
            .contains(r#"name="line:postage:standard_letter""#)
    );
    let csrf = crate::page_client::hidden(&opened.html, "csrf");

    // Without the token: refused. A wrong number and no reason: both named, nothing changed.
    let forged = clerk
        .post(&fee, &[("line:fee:fee", "2250"), ("reason", "x")])
        .await;
    assert_eq!(forged.status, 403);
    let refused = clerk
        .post(
            &fee,
            &[
                ("csrf", &csrf),
                ("line:fee:fee", "千円"),
                ("line:postage:standard_letter", "110"),
                ("reason", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.html);
    assert!(
        refused.html.contains(r##"href="#fee-reason""##),
        "{}",
        refused.html
    );
    assert!(
        refused.html.contains(r##"href="#fee-a-lines-0-yen""##),
        "{}",
        refused.html
    );
    assert_eq!(paying.application_status(&token, &id).await, "in_progress");

    // Another division's clerk: the same 404 as for anything not theirs.
    let mut elsewhere = console_clerk(app, "zeimu", "supervisor").await;
    let their_page = elsewhere.get("/staff").await;
    let their_csrf = crate::page_client::hidden(&their_page.html, "csrf");
    let theirs = elsewhere
        .post(
            &fee,
            &[
                ("csrf", &their_csrf),
                ("line:fee:fee", "2250"),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(theirs.status, 404);

    let set = clerk
        .post(
            &fee,
            &[
                ("csrf", &csrf),
                ("line:fee:fee", "2250"),
                ("line:postage:standard_letter", "140"),
                ("reason", "3通分、重量により郵送料140円"),
            ],
        )
        .await;
    assert_eq!(set.status, 303, "{}", set.html);
    assert_eq!(
        paying.application_status(&token, &id).await,
        "awaiting_payment"
    );
    let (_, detail) = app
        .get_as(&format!("/api/v1/submissions/{id}"), &token)
        .await;
    assert_eq!(detail["fee_breakdown"]["total_yen"], 2390, "{detail}");
    let shown = clerk.get(&page).await;
    assert!(
        shown.html.contains("3通分、重量により郵送料140円"),
        "in the history"
    );
    assert!(!shown.html.contains(&fee), "set once");
    // The clerk sees the frozen breakdown and that nothing is paid yet.
    assert!(
        shown.html.contains(r#"<td id="total">2,390円</td>"#),
        "{}",
        shown.html
    );
    assert!(shown.html.contains("お支払いはまだありません。"));

    // The resident pays; the clerk sees the payment's state and the provider's reference.
    let (status, body) = paying.create_payment(&token, &id, "console-pay-1").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(paying.post_checkout(&body["checkout"], None).await, 200);
    let order = body["payment"]["order_id"].as_str().expect("order");
    let waiting = clerk.get(&page).await;
    assert!(waiting.html.contains(order), "{}", waiting.html);
    assert!(!waiting.html.contains("支払済み"), "not paid yet");
    paying
        .fake
        .control("pay", json!({"order_id": order, "result": "OK"}))
        .await;
    let payment = paying
        .payment(&token, body["payment"]["id"].as_str().expect("id"))
        .await;
    let reference = payment["provider_reference"].as_str().expect("reference");
    let paid = clerk.get(&page).await;
    let state = &paid.html[paid.html.find(order).expect("the payment's row")..];
    assert!(
        state.contains("支払済み") && state.contains(reference),
        "{}",
        paid.html
    );
    paying.stop().await;
}

/// HTML text as a value again (the pages escape `&`, quotes and angle brackets).
fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The provider form of a checkout page as the API gives it: action and fields in order.
fn checkout_of(html: &str) -> Value {
    let at = html.find(r#"id="checkout""#).expect("the checkout form");
    let tag = &html[html[..at].rfind("<form").expect("form")..at];
    let start = tag.find(r#"action=""#).expect("action") + 8;
    let action = unescape(&tag[start..start + tag[start..].find('"').unwrap()]);
    let form = &html[at..];
    let form = &form[..form.find("</form>").expect("form end")];
    let mut fields = Vec::new();
    for input in form.split(r#"<input type="hidden" name=""#).skip(1) {
        let (name, rest) = input.split_once('"').unwrap();
        let rest = rest.strip_prefix(r#" value=""#).unwrap();
        let value = &rest[..rest.find('"').unwrap()];
        fields.push(json!([unescape(name), unescape(value)]));
    }
    json!({"action": action, "fields": fields})
}

async fn application_status(app: &TestApp, id: &str) -> String {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use madoguchi::db::schema::submissions;
    let mut connection = madoguchi::db::connection(&app.state.pool)
        .await
        .expect("connection");
    submissions::table
        .find(uuid::Uuid::parse_str(id).expect("uuid"))
        .select(submissions::status)
        .first(&mut connection)
        .await
        .expect("status")
}

async fn payment_rows(app: &TestApp) -> i64 {
    use diesel_async::RunQueryDsl;
    let mut connection = madoguchi::db::connection(&app.state.pool)
        .await
        .expect("connection");
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        count: i64,
    }
    diesel::sql_query("SELECT count(*) AS count FROM payments")
        .get_result::<Count>(&mut connection)
        .await
        .expect("count")
        .count
}

/// Mr. A on the pages: the fee on the confirm page, 支払待ち after sending, 「支払う」, the
/// provider's page through a plain form, the notification, and then his application paid with
/// its お支払い確認. Another resident finds neither page.
#[actix_web::test]
async fn on_the_pages_a_resident_sees_the_fee_pays_it_and_sees_the_confirmation() {
    use crate::page_client;
    use crate::portal_flow::{self, hidden, pairs};
    let pki = crate::helpers::test_pki();
    let paying = Paying::start_with(|settings| {
        settings.portal.signer = "dev".to_owned();
        settings.portal.dev_signer_certificate = pki.join("sign-alice.pem").display().to_string();
        settings.portal.dev_signer_key = pki.join("sign-alice.key").display().to_string();
    })
    .await;
    let app = &paying.app;
    let procedure = "koseki-shomei-request";
    let definition = &CATALOG.get(procedure).expect("procedure").definition;
    let mut flow = portal_flow::Browser::new(app);
    flow.sign_in("pay-pages-1").await;
    let first = portal_flow::start(&mut flow, procedure).await;
    let draft = first.trim_end_matches("/pages/1").to_owned();
    portal_flow::fill_in(&mut flow, definition, &first, &two_koseki_copies()).await;

    // The confirm page: the breakdown the submission will freeze.
    let confirm = flow.get(&format!("{draft}/confirm")).await;
    assert_eq!(confirm.status, 200, "{}", confirm.html);
    assert!(confirm.html.contains("お支払いの内訳"), "{}", confirm.html);
    assert!(confirm.html.contains("900円"), "{}", confirm.html);
    assert!(confirm.html.contains("110円"), "{}", confirm.html);
    assert!(
        confirm.html.contains(r#"<td id="total">1,010円</td>"#),
        "{}",
        confirm.html
    );
    let key = hidden(&confirm.html, "idempotency_key");
    let signing = flow
        .post(
            &format!("{draft}/sign"),
            &pairs(&[
                ("csrf", &hidden(&confirm.html, "csrf")),
                ("idempotency_key", &key),
            ]),
        )
        .await;
    assert_eq!(signing.status, 200, "{}", signing.html);
    let sent = flow
        .post(
            &format!("{draft}/submit"),
            &pairs(&[
                ("csrf", &hidden(&signing.html, "csrf")),
                ("idempotency_key", &key),
                ("signing_nonce", &hidden(&signing.html, "signing_nonce")),
            ]),
        )
        .await;
    assert_eq!(sent.status, 303, "{}", sent.html);
    let id = sent
        .location
        .strip_prefix("/submissions/")
        .and_then(|rest| rest.strip_suffix("/received"))
        .expect("the received page")
        .to_owned();
    let received = flow.get(&sent.location).await;
    assert!(
        received
            .html
            .contains(&format!(r#"href="/applications/{id}/pay""#)),
        "{}",
        received.html
    );
    assert!(
        received
            .html
            .contains("お支払いが確認できると、申請が担当課に届き")
            && !received.html.contains("担当課が内容を確認します。"),
        "unpaid, what comes next is the payment: {}",
        received.html
    );

    // From here with the page client, in the same session.
    let mut pages = page_client::Browser::new(app);
    pages.cookies = flow.cookies.clone();
    let application = pages.get(&format!("/applications/{id}")).await;
    assert!(
        application.html.contains("支払待ち"),
        "{}",
        application.html
    );
    assert!(application.html.contains(r#"id="pay-link""#));
    let pay = pages.get(&format!("/applications/{id}/pay")).await;
    assert_eq!(pay.status, 200, "{}", pay.html);
    assert!(
        pay.html.contains(r#"<td id="total">1,010円</td>"#),
        "{}",
        pay.html
    );
    let csrf = page_client::hidden(&pay.html, "csrf");
    let pay_key = page_client::hidden(&pay.html, "idempotency_key");
    // A double tap: two posts of one form make one payment.
    let mut checkouts = Vec::new();
    for _ in 0..2 {
        let checkout = pages
            .post(
                &format!("/applications/{id}/pay"),
                &[("csrf", &csrf), ("idempotency_key", &pay_key)],
            )
            .await;
        assert_eq!(checkout.status, 200, "{}", checkout.html);
        assert!(checkout.html.contains(r#"accept-charset="Shift_JIS""#));
        assert!(
            checkout
                .content_security_policy
                .contains(&format!("form-action 'self' {}", paying.fake.url(""))),
            "{}",
            checkout.content_security_policy
        );
        checkouts.push(checkout_of(&checkout.html));
    }
    assert_eq!(
        checkouts[0], checkouts[1],
        "the same payment, the same form"
    );
    assert_eq!(payment_rows(app).await, 1);
    let checkout = &checkouts[0];
    assert_eq!(checkout["action"], paying.fake.url("/purchase"));
    let field = |name: &str| {
        checkout["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|pair| pair[0] == name)
            .and_then(|pair| pair[1].as_str())
            .unwrap_or_else(|| panic!("no {name} in {checkout}"))
            .to_owned()
    };
    assert_eq!(field("amount"), "1010");
    let order = field("order_id");
    let return_url = field("success_url");
    let payment = return_url
        .rsplit('/')
        .nth(1)
        .expect("the payment in the return URL")
        .to_owned();
    assert_eq!(
        return_url,
        format!(
            "{}/payments/{payment}/return",
            app.state.settings.server.public_url
        )
    );
    assert_eq!(paying.post_checkout(checkout, None).await, 200);

    // Back from the provider before its notification: a forged query changes nothing.
    let mut anyone = page_client::Browser::new(app);
    let back = anyone
        .get(&format!(
            "/payments/{payment}/return?res_result=OK&order_id={order}"
        ))
        .await;
    assert_eq!(back.status, 200, "{}", back.html);
    assert!(
        back.html.contains("お支払いを確認しています"),
        "{}",
        back.html
    );
    assert_eq!(application_status(app, &id).await, "awaiting_payment");

    let delivered = paying
        .fake
        .control("pay", json!({"order_id": order, "result": "OK"}))
        .await;
    assert_eq!(delivered["delivered"], json!([[200, "OK,"]]));
    let back = anyone.get(&format!("/payments/{payment}/return")).await;
    assert!(
        back.html.contains("お支払いが完了しました"),
        "{}",
        back.html
    );
    assert!(
        !back.html.contains("1,010"),
        "the return page shows no amount"
    );

    let application = pages.get(&format!("/applications/{id}")).await;
    assert!(
        application.html.contains(r#"id="payment-state">支払済み"#),
        "{}",
        application.html
    );
    assert!(!application.html.contains(r#"id="pay-link""#));
    let confirmation_href = format!("/payments/{payment}/confirmation");
    assert!(application.html.contains(&confirmation_href));
    let confirmation = pages.get(&confirmation_href).await;
    assert_eq!(confirmation.status, 200, "{}", confirmation.html);
    assert!(
        confirmation.html.contains("<h1>お支払い確認</h1>"),
        "{}",
        confirmation.html
    );
    assert!(!confirmation.html.contains("領収証書"));
    assert!(confirmation.html.contains(r#"<td id="total">1,010円</td>"#));
    assert!(
        confirmation.html.contains(r#"id="provider-reference""#),
        "{}",
        confirmation.html
    );
    assert!(
        !confirmation.html.contains("大聖寺") && !confirmation.html.contains("カガ タロウ"),
        "no answers on the confirmation"
    );
    let english = pages.get(&format!("{confirmation_href}?lang=en")).await;
    assert!(
        english.html.contains("<h1>Payment confirmation</h1>"),
        "{}",
        english.html
    );
    assert!(english.html.contains("¥1,010"));

    // Another resident: neither page is there.
    let mut other = portal_flow::Browser::new(app);
    other.sign_in("pay-pages-2").await;
    let mut stranger = page_client::Browser::new(app);
    stranger.cookies = other.cookies.clone();
    assert_eq!(
        stranger
            .get(&format!("/applications/{id}/pay"))
            .await
            .status,
        404
    );
    assert_eq!(stranger.get(&confirmation_href).await.status, 404);
    paying.stop().await;
}
