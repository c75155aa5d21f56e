//! Paying on the pages: 「支払う」 (the breakdown and a button), the hand-off to the provider's
//! hosted page (a plain form in the provider's charset, no script), the page the resident comes
//! back to, and the payment confirmation (お支払い確認).
//!
//! The amount is always the application's frozen breakdown (`crate::payments::create`). The pay
//! form carries an Idempotency-Key derived from the application and how many payments it has:
//! a double tap or a second tab sends the same key, so one payment is made; after a failed
//! payment the key is new. The return page never reads the provider's query: only the
//! notification or the reconciler settles a payment.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, post, route, web};
use minijinja::context;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::lang::Lang;
use super::render::{PAGE_POLICY, Page};
use super::session::CSRF_FIELD;
use super::sign_in::{Visit, visit};
use crate::forms::fees::{FeeBreakdown, LineKind};
use crate::messages::Localized;
use crate::payments::{self, PaymentStatus};
use crate::state::AppState;
use crate::submissions::{self, lifecycle::Status};

macro_rules! connect {
    ($state:expr, $page:expr) => {
        match crate::db::connection(&$state.pool).await {
            Ok(connection) => connection,
            Err(error) => return $page.failure(error),
        }
    };
}

fn pick(text: &Localized, lang: Lang) -> String {
    match lang {
        Lang::Ja => text.ja.clone(),
        Lang::En => text.en.clone(),
    }
}

/// Yen as shown, an exemption with a minus sign.
pub(super) fn money(yen: i64, lang: Lang) -> String {
    let shown = super::pages::yen(yen.unsigned_abs(), lang);
    if yen < 0 {
        format!("−{shown}")
    } else {
        shown
    }
}

#[derive(Serialize)]
struct Line {
    label: String,
    amount: String,
    /// A claimed exemption: 0 yen until a clerk confirms it.
    pending: bool,
}

/// The breakdown as the pages show it (`breakdown.html`).
pub(super) fn shown(breakdown: &FeeBreakdown, lang: Lang) -> minijinja::Value {
    let lines: Vec<Line> = breakdown
        .lines
        .iter()
        .map(|line| Line {
            label: pick(&line.label, lang),
            amount: money(line.yen, lang),
            pending: line.kind == LineKind::Exemption,
        })
        .collect();
    context! { lines, total => money(breakdown.total_yen, lang) }
}

/// The key of one attempt to pay: the same for every tab and tap until a payment is made.
fn attempt_key(submission_id: Uuid, payments_so_far: usize) -> String {
    let digest = Sha256::digest(format!("portal-pay:{submission_id}:{payments_so_far}"));
    format!("portal-pay-{}", hex::encode(&digest[..16]))
}

/// The origin (`scheme://host:port`) of an absolute URL, for the pay form's `form-action`.
fn origin(url: &str) -> Option<&str> {
    let rest = url.find("://")? + 3;
    let end = url[rest..].find('/').map_or(url.len(), |at| rest + at);
    let origin = &url[..end];
    // Only what a CSP source expression can hold.
    origin
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '-' | '[' | ']'))
        .then_some(origin)
}

/// 「支払う」: the application's breakdown and the button that starts the payment.
#[get("/applications/{id}/pay")]
pub async fn pay_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> HttpResponse {
    let Visit { page, resident, .. } = match visit(&request).await {
        Ok(visit) => visit,
        Err(answer) => return answer,
    };
    let id = *id;
    let mut connection = connect!(state, page);
    let detail =
        match submissions::get_for_resident(&mut connection, &state.submissions(), resident.id, id)
            .await
        {
            Ok(detail) => detail,
            Err(error) => return page.failure(error),
        };
    let earlier = match payments::of_submission(&mut connection, id).await {
        Ok(earlier) => earlier,
        Err(error) => return page.failure(error),
    };
    let summary = &detail.summary;
    let payable = summary.status == Status::AwaitingPayment
        && state.payments.is_some()
        && detail
            .fee_breakdown
            .as_ref()
            .is_some_and(|b| b.total_yen > 0);
    let lang = page.lang;
    page.ok(
        "pay.html",
        context! {
            title => pick(&summary.procedure_title, lang),
            reference => summary.reference.clone(),
            breakdown => detail.fee_breakdown.as_ref().map(|b| shown(b, lang)),
            payable,
            action => format!("/applications/{id}/pay"),
            idempotency_key => attempt_key(id, earlier.len()),
            back_href => format!("/applications/{id}"),
        },
    )
}

/// Creates the payment (or, for the same key, finds it again) and hands the resident the form
/// that takes them to the provider's page, in the provider's charset.
#[post("/applications/{id}/pay")]
pub async fn pay(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    payload: web::Payload,
) -> HttpResponse {
    let Visit {
        page,
        session,
        resident,
    } = match visit(&request).await {
        Ok(visit) => visit,
        Err(answer) => return answer,
    };
    let form = match super::apply::read_form(&request, payload, &state).await {
        Ok(form) => form,
        Err(error) => return page.failure(error),
    };
    if !session.allows_post(form.get(CSRF_FIELD)) {
        return page.forbidden();
    }
    let id = *id;
    let Some(key) = form
        .get("idempotency_key")
        .filter(|key| !key.is_empty() && key.len() <= 200)
    else {
        return Page::see_other(&format!("/applications/{id}/pay"));
    };
    let Some(provider) = state.payments.as_deref() else {
        return page.not_found();
    };
    let mut connection = connect!(state, page);
    let created = match payments::create(
        &mut connection,
        provider,
        &state.settings.server.public_url,
        &state.catalog,
        resident.id,
        id,
        key,
    )
    .await
    {
        Ok(created) => created,
        Err(error) => return page.failure(error),
    };
    let checkout = created.checkout;
    let Some(provider_origin) = origin(&checkout.action) else {
        tracing::error!(
            provider = provider.name(),
            "the provider's page has no usable origin"
        );
        return page.unavailable();
    };
    let mut response = page.ok(
        "checkout.html",
        context! {
            action => checkout.action.clone(),
            method => checkout.method,
            charset => checkout.charset,
            fields => checkout.fields.clone(),
            amount => money(created.payment.amount_yen, page.lang),
            back_href => format!("/applications/{id}"),
        },
    );
    // This page alone may post to the provider's origin.
    let policy = PAGE_POLICY.replace(
        "form-action 'self'",
        &format!("form-action 'self' {provider_origin}"),
    );
    if let Ok(value) = HeaderValue::from_str(&policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// Where the provider sends the resident back (GET or POST, from another site, so without
/// our session cookie): the state we know, never what the query or body claim.
#[route("/payments/{id}/return", method = "GET", method = "POST")]
pub async fn return_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> HttpResponse {
    let page = Page::new(&request);
    let mut connection = connect!(state, page);
    let status = match payments::status_of(&mut connection, *id).await {
        Ok(Some(status)) => status,
        Ok(None) => return page.not_found(),
        Err(error) => return page.failure(error),
    };
    let outcome = match status {
        PaymentStatus::Created | PaymentStatus::Pending => "checking",
        PaymentStatus::Succeeded => "paid",
        PaymentStatus::Failed | PaymentStatus::Expired | PaymentStatus::Cancelled => "not_paid",
    };
    page.ok("payment_return.html", context! { outcome })
}

/// お支払い確認: the breakdown and the provider's reference of one of my completed payments.
/// Not a receipt (領収証書): the wording is the city's to change.
#[get("/payments/{id}/confirmation")]
pub async fn confirmation(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> HttpResponse {
    let Visit { page, resident, .. } = match visit(&request).await {
        Ok(visit) => visit,
        Err(answer) => return answer,
    };
    let mut connection = connect!(state, page);
    let payment = match payments::get_for_resident(&mut connection, resident.id, *id).await {
        Ok(payment) if payment.status == PaymentStatus::Succeeded => payment,
        Ok(_) => return page.not_found(),
        Err(error) => return page.failure(error),
    };
    let detail = match submissions::get_for_resident(
        &mut connection,
        &state.submissions(),
        resident.id,
        payment.submission_id,
    )
    .await
    {
        Ok(detail) => detail,
        Err(error) => return page.failure(error),
    };
    let lang = page.lang;
    page.render(
        StatusCode::OK,
        "payment_confirmation.html",
        context! {
            title => pick(&detail.summary.procedure_title, lang),
            reference => detail.summary.reference.clone(),
            breakdown => detail.fee_breakdown.as_ref().map(|b| shown(b, lang)),
            amount => money(payment.amount_yen, lang),
            provider_reference => payment.provider_reference.clone(),
            order_id => payment.order_id.clone(),
            paid_at => payment.settled_at.map(super::apply::city_time),
            back_href => format!("/applications/{}", payment.submission_id),
        },
    )
}

/// Interface texts of the pay pages: key, Japanese, English.
pub(super) const TEXTS: &[(&str, &str, &str)] = &[
    ("breakdown_caption", "お支払いの内訳", "What you pay"),
    (
        "exemption_pending",
        "免除（職員の確認待ち）",
        "Exemption (pending a clerk's confirmation)",
    ),
    ("total_to_pay", "お支払い金額", "Amount to pay"),
    ("pay_title", "支払う", "Pay"),
    (
        "pay_lead",
        "「支払う」を押すと、決済事業者のお支払いページへ進みます。",
        "Press Pay to go on to the payment provider's page.",
    ),
    ("pay_button", "支払う", "Pay"),
    (
        "nothing_to_pay",
        "この申請には、いまお支払いいただくものはありません。",
        "There is nothing to pay for this application now.",
    ),
    (
        "back_to_application",
        "申請の詳細へ戻る",
        "Back to the application",
    ),
    (
        "checkout_title",
        "お支払いページへ進む",
        "Go to the payment page",
    ),
    (
        "checkout_lead",
        "下のボタンを押すと、決済事業者のページでお支払いいただけます。金額は申請の内訳のとおりです。",
        "Press the button to pay on the payment provider's page. The amount is your application's breakdown.",
    ),
    ("checkout_button", "お支払いページへ", "To the payment page"),
    (
        "return_checking",
        "お支払いを確認しています",
        "Checking your payment",
    ),
    (
        "return_checking_lead",
        "決済事業者からの結果を待っています。しばらくしてから申請の一覧で状況を確認してください。",
        "We are waiting for the payment provider's result. Check the state in your applications in a little while.",
    ),
    (
        "return_paid",
        "お支払いが完了しました",
        "Your payment is complete",
    ),
    (
        "return_paid_lead",
        "申請は担当課に届きました。お支払い確認は申請の詳細から見られます。",
        "Your application has reached the division. The payment confirmation is on the application's page.",
    ),
    (
        "return_not_paid",
        "お支払いは完了していません",
        "The payment was not completed",
    ),
    (
        "return_not_paid_lead",
        "お支払いは行われていません。申請の詳細からもう一度お支払いいただけます。",
        "No payment was taken. You can pay again from the application's page.",
    ),
    ("to_applications", "申請の一覧へ", "To your applications"),
    (
        "payment_confirmation_title",
        "お支払い確認",
        "Payment confirmation",
    ),
    (
        "payment_confirmation_lead",
        "次のとおりお支払いを確認しました。",
        "We have confirmed the following payment.",
    ),
    (
        "payment_confirmation_note",
        "この画面は、お支払いを確認したことをお知らせするものです。",
        "This page tells you that we have confirmed your payment.",
    ),
    ("paid_amount", "お支払い金額", "Amount paid"),
    ("paid_at", "お支払い日時", "Paid at"),
    ("order_id", "お支払い番号", "Payment number"),
    (
        "provider_reference",
        "決済事業者の受付番号",
        "Provider's reference",
    ),
    ("pay_link", "支払う", "Pay"),
    ("payment_state", "お支払い", "Payment"),
    ("payment_paid", "支払済み", "Paid"),
    (
        "payment_confirmation_link",
        "お支払い確認を見る",
        "See the payment confirmation",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_of_the_providers_page_is_its_scheme_host_and_port() {
        assert_eq!(
            origin("https://stbfep.sps-system.com/f01/FepBuyInfoReceive.do"),
            Some("https://stbfep.sps-system.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:8123/purchase"),
            Some("http://127.0.0.1:8123")
        );
        assert_eq!(origin("https://a.example;script-src *"), None);
        assert_eq!(origin("/relative"), None);
    }

    #[test]
    fn the_pay_key_changes_only_with_a_new_payment() {
        let id = Uuid::now_v7();
        assert_eq!(attempt_key(id, 0), attempt_key(id, 0));
        assert_ne!(attempt_key(id, 0), attempt_key(id, 1));
    }
}
