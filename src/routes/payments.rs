//! Paying an application's fee: creating a payment (the hosted-page redirect as a form), the
//! provider's result notification, the return URL (which only shows the state), the payment's
//! status; for staff, the payments and breakdown of an application, and refunds.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{Body, ResidentAuth, StaffAuth};
use crate::db::schema::submissions;
use crate::error::ApiError;
use crate::forms::fees::FeeBreakdown;
use crate::identity::staff::Role;
use crate::payments::notifications::{self, Received};
use crate::payments::refunds::{self, Refund, RefundError, RefundRequest};
use crate::payments::requests::{self, Clerk, FeeLineInput};
use crate::payments::settlement::{self, Mismatch};
use crate::payments::{self, Checkout, Payment, PaymentError, PaymentProvider, ProviderError};
use crate::state::AppState;

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> Self {
        match error {
            PaymentError::NotFound => Self::not_found(),
            PaymentError::NothingToPay => Self::client(
                StatusCode::CONFLICT,
                "payment.nothing_to_pay",
                "この申請にはお支払いいただくものがありません（支払済み、取下げ済み、期限切れなど）。",
                "There is nothing to pay for this application (paid, withdrawn, expired or free).",
            ),
            PaymentError::KeyReused => Self::client(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency.key_reused",
                "この Idempotency-Key は別の申請の支払に使われています。新しいキーで送信してください。",
                "This Idempotency-Key was used for another application's payment; send with a new key.",
            ),
            PaymentError::Refund(RefundError::NotCaptured) => Self::client(
                StatusCode::CONFLICT,
                "refund.not_captured",
                "支払が完了していないため返金できません。",
                "Only a completed payment can be refunded.",
            ),
            PaymentError::Refund(RefundError::Stale { .. }) => Self::client(
                StatusCode::CONFLICT,
                "refund.stale",
                "返金できる金額が変わっています（すでに返金済みの可能性があります）。画面を更新して確認してください。",
                "The refundable amount has changed (a refund may already have been made); reload and check.",
            ),
            PaymentError::Refund(RefundError::Exceeds { .. }) => Self::client(
                StatusCode::CONFLICT,
                "refund.exceeds_available",
                "返金額が返金できる金額を超えています。",
                "The refund is more than what is left to refund.",
            ),
            PaymentError::Provider(ProviderError::BadSignature | ProviderError::Malformed(_)) => {
                Self::client(
                    StatusCode::BAD_REQUEST,
                    "payment.notification_invalid",
                    "通知を検証できません。",
                    "The notification could not be verified.",
                )
            }
            PaymentError::Provider(ProviderError::Refused(_) | ProviderError::Unreachable(_)) => {
                Self::client(
                    StatusCode::BAD_GATEWAY,
                    "payment.provider_unavailable",
                    "決済事業者との通信に失敗しました。しばらくしてからもう一度お試しください。",
                    "The payment provider could not complete the request; try again later.",
                )
            }
            PaymentError::NotAfterReview => Self::client(
                StatusCode::CONFLICT,
                "payment.not_after_review",
                "この手続の手数料は申請時に決まるため、職員が金額を設定することはできません。",
                "This procedure's fee is set at submission; staff cannot set it.",
            ),
            PaymentError::NotInProgress => Self::client(
                StatusCode::CONFLICT,
                "payment.not_in_progress",
                "金額は処理中の申請にだけ設定できます（支払依頼済み、差し戻し中、処理済みなどではできません）。",
                "The fee is set only on an application in progress (not one already asked to pay, returned or decided).",
            ),
            PaymentError::NotAssignee => Self::client(
                StatusCode::FORBIDDEN,
                "queue.not_assignee",
                "担当者または係長以上の職員だけが金額を設定できます。",
                "Only the assignee or a supervisor sets the fee.",
            ),
            PaymentError::Invalid(errors) => Self::validation("payment.fee_invalid", errors),
            PaymentError::Db(error) => error.into(),
        }
    }
}

fn provider(state: &AppState) -> Result<&dyn PaymentProvider, ApiError> {
    state.payments.as_deref().ok_or_else(ApiError::not_found)
}

fn idempotency_key(request: &HttpRequest) -> Result<String, ApiError> {
    request
        .headers()
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= 200)
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::client(
                StatusCode::BAD_REQUEST,
                "request.idempotency_key_required",
                "Idempotency-Key ヘッダーを付けて送信してください（再送しても二重に支払わないようにするためです）。",
                "Send an Idempotency-Key header, so that a retry never starts a second payment.",
            )
        })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedPayment {
    pub payment: Payment,
    /// Post this form (in its charset) to go to the provider's payment page.
    pub checkout: Checkout,
}

/// Starts paying my application awaiting payment: 201 with the payment and the form that
/// takes me to the provider's page; the same Idempotency-Key again returns the same payment
/// (200). The amount is the application's frozen breakdown.
#[utoipa::path(
    tag = "payments",
    params(
        ("id" = Uuid, Path, description = "Application id"),
        ("Idempotency-Key" = String, Header, description = "Unique per payment attempt; reuse it for retries"),
    ),
    responses(
        (status = 201, body = CreatedPayment),
        (status = 200, body = CreatedPayment, description = "A replay, or the payment already under way"),
        (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem),
    ),
    security(("bearer" = []))
)]
#[post("/submissions/{id}/payments")]
pub async fn create_payment(
    request: HttpRequest,
    state: web::Data<AppState>,
    auth: ResidentAuth,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let provider = provider(&state)?;
    let key = idempotency_key(&request)?;
    let mut connection = crate::db::connection(&state.pool).await?;
    let created = payments::create(
        &mut connection,
        provider,
        &state.settings.server.public_url,
        &state.catalog,
        auth.id,
        *id,
        &key,
    )
    .await?;
    let status = if created.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(CreatedPayment {
        payment: created.payment,
        checkout: created.checkout,
    }))
}

/// The provider's result notification, posted server to server. Verified against its hash:
/// anything that fails is answered 400 and changes nothing. A repeated event is acknowledged
/// again and changes nothing.
#[utoipa::path(
    tag = "payments",
    params(("provider" = String, Path)),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Acknowledged in the provider's format"), (status = 400, description = "Refused in the provider's format"))
)]
#[post("/payments/notifications/{provider}")]
pub async fn payment_notification(
    state: web::Data<AppState>,
    name: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let provider = provider(&state)?;
    if provider.name() != name.as_str() {
        return Err(ApiError::not_found());
    }
    let mut connection = crate::db::connection(&state.pool).await?;
    let context = state.submissions();
    match notifications::receive(&mut connection, &context, provider, &body).await {
        Ok(received) => {
            if received == Received::Duplicate {
                tracing::info!(
                    provider = provider.name(),
                    "duplicate notification acknowledged"
                );
            }
            let ack = provider.acknowledge(true);
            Ok(HttpResponse::Ok()
                .content_type(ack.content_type)
                .body(ack.body))
        }
        Err(PaymentError::Provider(
            error @ (ProviderError::BadSignature | ProviderError::Malformed(_)),
        )) => {
            tracing::warn!(provider = provider.name(), %error, "notification refused");
            // 400 with our problem body: the provider retries a notification it sees refused.
            Err(PaymentError::Provider(error).into())
        }
        Err(error) => Err(error.into()),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub payment: Payment,
    /// What the amount is made of, as frozen with the application.
    pub breakdown: Option<FeeBreakdown>,
}

async fn breakdown_of(
    connection: &mut diesel_async::AsyncPgConnection,
    submission_id: Uuid,
) -> Result<Option<FeeBreakdown>, ApiError> {
    let value: Option<Value> = submissions::table
        .find(submission_id)
        .select(submissions::fee_breakdown)
        .first(connection)
        .await
        .map_err(crate::db::DbError::classify)?;
    Ok(value.and_then(|value| serde_json::from_value(value).ok()))
}

/// Where the resident's browser returns from the provider's page. Whatever the query string
/// says, it changes nothing: it shows the state we know (the notification or the reconciler
/// settles the payment).
#[utoipa::path(tag = "payments", params(("id" = Uuid, Path)), responses((status = 200, body = Object)))]
#[get("/payments/{id}/return")]
pub async fn return_page(
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<Value>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    let status: String = crate::db::schema::payments::table
        .find(*id)
        .select(crate::db::schema::payments::status)
        .first(&mut connection)
        .await
        .optional()
        .map_err(crate::db::DbError::classify)?
        .ok_or_else(ApiError::not_found)?;
    // No amount, reference or application here: the URL is unauthenticated.
    Ok(web::Json(
        serde_json::json!({ "id": *id, "status": status }),
    ))
}

/// One of my payments, with the breakdown of what it pays for.
#[utoipa::path(tag = "payments", params(("id" = Uuid, Path)), responses((status = 200, body = PaymentView), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
#[get("/payments/{id}")]
pub async fn payment_status(
    state: web::Data<AppState>,
    auth: ResidentAuth,
    id: web::Path<Uuid>,
) -> Result<web::Json<PaymentView>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    let payment = payments::get_for_resident(&mut connection, auth.id, *id).await?;
    let breakdown = breakdown_of(&mut connection, payment.submission_id).await?;
    Ok(web::Json(PaymentView { payment, breakdown }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StaffPayments {
    pub breakdown: Option<FeeBreakdown>,
    pub payments: Vec<StaffPayment>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StaffPayment {
    #[serde(flatten)]
    pub payment: Payment,
    pub refunds: Vec<Refund>,
    /// What is left to refund.
    pub refundable_yen: i64,
}

/// The division of an application, if the caller works in it.
async fn division_for_staff(
    connection: &mut diesel_async::AsyncPgConnection,
    auth: &StaffAuth,
    submission_id: Uuid,
) -> Result<String, ApiError> {
    let division: String = submissions::table
        .find(submission_id)
        .select(submissions::division)
        .first(connection)
        .await
        .optional()
        .map_err(crate::db::DbError::classify)?
        .ok_or_else(ApiError::not_found)?;
    if auth.role_in(&division).is_none() {
        return Err(ApiError::not_found());
    }
    Ok(division)
}

/// Staff: the breakdown and payments of an application of their division, with refunds.
#[utoipa::path(tag = "staff", params(("id" = Uuid, Path, description = "Application id")), responses((status = 200, body = StaffPayments), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
#[get("/staff/submissions/{id}/payments")]
pub async fn staff_payments(
    state: web::Data<AppState>,
    auth: StaffAuth,
    id: web::Path<Uuid>,
) -> Result<web::Json<StaffPayments>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    division_for_staff(&mut connection, &auth, *id).await?;
    let breakdown = breakdown_of(&mut connection, *id).await?;
    let mut list = Vec::new();
    for payment in payments::of_submission(&mut connection, *id).await? {
        let refunds = refunds::of_payment(&mut connection, payment.id).await?;
        let refunded: i64 = refunds.iter().map(|refund| refund.amount_yen).sum();
        let refundable_yen = if payment.status == payments::PaymentStatus::Succeeded {
            payment.amount_yen - refunded
        } else {
            0
        };
        list.push(StaffPayment {
            payment,
            refunds,
            refundable_yen,
        });
    }
    Ok(web::Json(StaffPayments {
        breakdown,
        payments: list,
    }))
}

/// Admins and supervisors: payments of their divisions that need a person — money taken after a
/// recorded failure (`late_success`), or for an application no longer waiting for it
/// (`refund_due`).
#[utoipa::path(tag = "staff", responses((status = 200, body = [Payment]), (status = 403, body = crate::error::Problem)), security(("bearer" = [])))]
#[get("/staff/payments/attention")]
pub async fn payments_needing_attention(
    state: web::Data<AppState>,
    auth: StaffAuth,
) -> Result<web::Json<Vec<Payment>>, ApiError> {
    let divisions = auth.divisions_with_role(Role::Supervisor)?;
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        payments::needing_attention(&mut connection, &divisions).await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundBody {
    pub amount_yen: i64,
    /// What the caller saw as refundable (`refundable_yen`): a stale value is refused (409), so
    /// the same refund sent twice is made once.
    pub expected_refundable_yen: i64,
    pub reason: String,
}

/// A supervisor or admin of the division refunds part or all of a payment. 409 when the
/// refundable amount is not what the caller saw (a double refund) or is exceeded.
#[utoipa::path(tag = "staff", params(("id" = Uuid, Path, description = "Payment id")), request_body = RefundBody, responses((status = 201, body = Refund), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)), security(("bearer" = [])))]
#[post("/staff/payments/{id}/refunds")]
pub async fn refund_payment(
    state: web::Data<AppState>,
    auth: StaffAuth,
    id: web::Path<Uuid>,
    body: Body<RefundBody>,
) -> Result<HttpResponse, ApiError> {
    let provider = provider(&state)?;
    let body = body.into_inner();
    let mut errors = Vec::new();
    if body.amount_yen <= 0 {
        errors.push(crate::messages::FieldError::new("/amount_yen", "too_small"));
    }
    if body.reason.trim().is_empty() || body.reason.chars().count() > 400 {
        errors.push(crate::messages::FieldError::new("/reason", "required"));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation("refund.invalid", errors));
    }
    let mut connection = crate::db::connection(&state.pool).await?;
    let submission_id: Uuid = crate::db::schema::payments::table
        .find(*id)
        .select(crate::db::schema::payments::submission_id)
        .first(&mut connection)
        .await
        .optional()
        .map_err(crate::db::DbError::classify)?
        .ok_or_else(ApiError::not_found)?;
    let division = division_for_staff(&mut connection, &auth, submission_id).await?;
    auth.require_role(&division, Role::Supervisor)?;
    let refund = refunds::refund(
        &mut connection,
        provider,
        RefundRequest {
            payment_id: *id,
            amount_yen: body.amount_yen,
            expected_available_yen: body.expected_refundable_yen,
            reason: body.reason.trim(),
            staff_id: auth.id,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(refund))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeRequestBody {
    /// Every line of what the resident pays (fees, postage, confirmed exemptions).
    pub lines: Vec<FeeLineInput>,
    /// Why this amount (kept in the application's history).
    pub reason: String,
}

/// 事後決済: the assignee (or a supervisor) of an in-progress application whose procedure is paid
/// `after_review` sets its fee lines with a reason. The application waits for payment (支払待ち),
/// the resident is emailed a payment request, and once paid it comes back in progress.
#[utoipa::path(
    tag = "staff",
    params(("id" = Uuid, Path, description = "Application id")),
    request_body = FeeRequestBody,
    responses(
        (status = 200, body = FeeBreakdown),
        (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem),
    ),
    security(("bearer" = []))
)]
#[post("/staff/submissions/{id}/fee")]
pub async fn request_payment(
    state: web::Data<AppState>,
    auth: StaffAuth,
    id: web::Path<Uuid>,
    body: Body<FeeRequestBody>,
) -> Result<web::Json<FeeBreakdown>, ApiError> {
    let body = body.into_inner();
    let mut connection = crate::db::connection(&state.pool).await?;
    let division = division_for_staff(&mut connection, &auth, *id).await?;
    let clerk = Clerk {
        id: auth.id,
        supervisor: auth.role_in(&division) >= Some(Role::Supervisor),
    };
    let breakdown = requests::request_payment(
        &mut connection,
        &state.submissions(),
        &auth.divisions(),
        clerk,
        *id,
        &body.lines,
        &body.reason,
    )
    .await?;
    Ok(web::Json(breakdown))
}

/// Admins: the differences between the provider's daily settlement files and our payments
/// (missing, amount_differs, unknown, status_differs), newest day first — those of their
/// divisions' payments and those of orders we have no payment for.
#[utoipa::path(tag = "staff", responses((status = 200, body = [Mismatch]), (status = 403, body = crate::error::Problem)), security(("bearer" = [])))]
#[get("/staff/payments/settlement-mismatches")]
pub async fn settlement_mismatches(
    state: web::Data<AppState>,
    auth: StaffAuth,
) -> Result<web::Json<Vec<Mismatch>>, ApiError> {
    let divisions = auth.divisions_with_role(Role::Admin)?;
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        settlement::mismatches(&mut connection, &divisions).await?,
    ))
}
