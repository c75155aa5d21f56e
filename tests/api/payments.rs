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
