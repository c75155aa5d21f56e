//! Error policy, and the mapping of domain errors to HTTP answers, shared by both edges.
//!
//! - Domain and database code return `thiserror` enums that say what went wrong in their terms;
//!   none of them knows this module or actix (`crate::layers` checks the direction).
//! - `anyhow` is used only at startup, in CLI commands and in background jobs.
//! - At the HTTP edge everything becomes an [`ApiError`]: a status, a stable machine `code` and
//!   messages in Japanese and English. The JSON edge renders it as RFC 9457 problem+json; the
//!   portal renders the same status and message as a page (`crate::web`).
//! - A 500 body is fixed and says nothing; the cause chain is logged with the request id.
//!   Pool exhaustion and an unreachable database are 503, so clients retry and balancers drain.
//! - Texts and field errors are the shared vocabulary of [`crate::messages`], below everything.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::messages::{FieldError, Localized};

/// The problem+json body (RFC 9457) every error response carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    /// Stable machine code, e.g. `request.invalid_json`.
    pub code: String,
    pub detail: Localized,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{code}: {}", detail.en)]
    Client {
        status: StatusCode,
        code: &'static str,
        detail: Localized,
        errors: Vec<FieldError>,
    },
    /// The database is unreachable or the pool is exhausted: try again later.
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else. Its cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn client(status: StatusCode, code: &'static str, ja: &str, en: &str) -> Self {
        Self::Client {
            status,
            code,
            detail: Localized::new(ja, en),
            errors: Vec::new(),
        }
    }

    pub fn not_found() -> Self {
        Self::client(
            StatusCode::NOT_FOUND,
            "not_found",
            "指定されたものは見つかりません。",
            "The requested resource was not found.",
        )
    }

    pub fn validation(code: &'static str, errors: Vec<FieldError>) -> Self {
        Self::Client {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            detail: Localized::new(
                "入力内容に誤りがあります。各項目のエラーをご確認ください。",
                "Some answers need correcting; see the error for each field.",
            ),
            errors,
        }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }

    fn problem(&self) -> Problem {
        match self {
            Self::Client {
                status,
                code,
                detail,
                errors,
            } => Problem {
                problem_type: format!("https://madoguchi.example/problems/{code}"),
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                status: status.as_u16(),
                code: (*code).to_owned(),
                detail: detail.clone(),
                errors: errors.clone(),
            },
            Self::Unavailable(_) => Problem {
                problem_type: "https://madoguchi.example/problems/unavailable".to_owned(),
                title: "Service Unavailable".to_owned(),
                status: 503,
                code: "unavailable".to_owned(),
                detail: Localized::new(
                    "ただいま混み合っています。しばらくしてからもう一度お試しください。",
                    "The service is busy. Please try again shortly.",
                ),
                errors: Vec::new(),
            },
            Self::Internal(_) => Problem {
                problem_type: "about:blank".to_owned(),
                title: "Internal Server Error".to_owned(),
                status: 500,
                code: "internal".to_owned(),
                detail: Localized::new(
                    "システムエラーが発生しました。",
                    "An internal error occurred.",
                ),
                errors: Vec::new(),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Client { status, .. } => *status,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            Self::Unavailable(cause) => {
                tracing::warn!(error = %cause, "unavailable: a dependency did not answer")
            }
            Self::Client { .. } => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        if matches!(self, Self::Unavailable(_)) {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
        }
        response.json(self.problem())
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(error: crate::db::DbError) -> Self {
        match error {
            crate::db::DbError::Unavailable(cause) => Self::Unavailable(cause),
            crate::db::DbError::Query(cause) if names_missing_resident(&cause) => {
                crate::identity::AuthError::InvalidToken.into()
            }
            crate::db::DbError::Query(cause) => Self::Internal(cause.into()),
        }
    }
}

/// A row refused because its resident does not exist: the (validly signed) token names a
/// resident who is gone, so the caller must sign in again. Checked here, where every write
/// ends up, rather than with one more query on every resident request.
fn names_missing_resident(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::ForeignKeyViolation,
            info,
        ) if info.constraint_name().is_some_and(|name| name.ends_with("_resident_id_fkey"))
    )
}

impl From<crate::identity::AuthError> for ApiError {
    fn from(error: crate::identity::AuthError) -> Self {
        use crate::identity::AuthError as A;
        let unauthorized = StatusCode::UNAUTHORIZED;
        match error {
            A::MissingToken => Self::client(
                unauthorized,
                "auth.missing_token",
                "ログインが必要です。",
                "Sign-in is required.",
            ),
            A::InvalidToken => Self::client(
                unauthorized,
                "auth.invalid_token",
                "認証情報が無効です。もう一度ログインしてください。",
                "The credentials are not valid; please sign in again.",
            ),
            A::ExpiredToken => Self::client(
                unauthorized,
                "auth.expired_token",
                "ログインの有効期限が切れました。",
                "The sign-in has expired.",
            ),
            A::InvalidChallenge => Self::client(
                unauthorized,
                "auth.invalid_challenge",
                "ログインの手続が無効か期限切れです。最初からやり直してください。",
                "The sign-in attempt is unknown, expired or already used; start again.",
            ),
            A::ProviderDisabled => Self::not_found(),
            A::BadSignature => Self::client(
                unauthorized,
                "auth.bad_signature",
                "署名を確認できませんでした。",
                "The signature does not verify.",
            ),
            A::CertificateExpired => Self::client(
                unauthorized,
                "auth.certificate_expired",
                "電子証明書の有効期間外です。",
                "The certificate is expired or not yet valid.",
            ),
            A::UntrustedCertificate => Self::client(
                unauthorized,
                "auth.untrusted_certificate",
                "電子証明書の発行元を確認できません。",
                "The certificate was not issued by a trusted authority.",
            ),
            A::CertificateRevoked => Self::client(
                unauthorized,
                "auth.certificate_revoked",
                "電子証明書は失効しています。",
                "The certificate has been revoked.",
            ),
            A::WrongCertificateUse => Self::client(
                unauthorized,
                "auth.wrong_certificate",
                "この用途に使えない電子証明書です。",
                "This certificate cannot be used for this.",
            ),
            A::ProviderRefused(_) => Self::client(
                unauthorized,
                "auth.provider_refused",
                "認証サービスがログインを拒否しました。",
                "The identity provider refused the sign-in.",
            ),
            A::BadCredentials => Self::client(
                unauthorized,
                "auth.bad_credentials",
                "ログインIDまたはパスワードが違います。",
                "Wrong login or password.",
            ),
            A::Locked => Self::client(
                unauthorized,
                "auth.locked",
                "ログインの失敗が続いたため、一時的にロックされています。",
                "Too many failed attempts; the account is locked for a while.",
            ),
            A::LoginTaken => Self::client(
                StatusCode::CONFLICT,
                "staff.login_taken",
                "このログインIDは既に使われています。",
                "This login is already taken.",
            ),
            A::PasswordChangeRequired => Self::client(
                StatusCode::FORBIDDEN,
                "auth.password_change_required",
                "管理者が設定したパスワードを、まずご自身のパスワードに変更してください（POST /api/v1/staff/me/password）。",
                "Replace the password your admin gave you first (POST /api/v1/staff/me/password).",
            ),
            A::StaffNotRegistered => Self::client(
                StatusCode::FORBIDDEN,
                "auth.staff_not_registered",
                "この職員アカウントは登録されていないか、無効になっています。所属の管理者に連絡してください。",
                "There is no active staff account for you here; ask your division's admin.",
            ),
            A::InsufficientAssurance => Self::client(
                StatusCode::FORBIDDEN,
                "auth.insufficient_assurance",
                "この手続にはマイナンバーカードでのログイン（または署名）が必要です。",
                "This procedure needs a sign-in (or signature) with the My Number Card.",
            ),
            A::Malformed(_) => Self::client(
                StatusCode::BAD_REQUEST,
                "auth.malformed",
                "認証の要求が正しくありません。",
                "The authentication request is malformed.",
            ),
            A::Database(error) => error.into(),
            A::RevocationUnavailable(error) => Self::Unavailable(error),
            A::Internal(error) => Self::Internal(error),
        }
    }
}

/// Renders actix's own extractor and routing errors (bad JSON, wrong content type, oversize
/// bodies, unknown routes) as problem+json instead of actix's plain-text `Display`.
pub mod handlers {
    use actix_web::body::BoxBody;
    use actix_web::dev::ServiceResponse;
    use actix_web::error::{InternalError, JsonPayloadError, PathError, QueryPayloadError};
    use actix_web::http::StatusCode;
    use actix_web::middleware::ErrorHandlerResponse;
    use actix_web::{HttpRequest, HttpResponse, ResponseError};

    use super::ApiError;

    pub fn json_error(error: JsonPayloadError, _request: &HttpRequest) -> actix_web::Error {
        let api_error = match &error {
            JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
                payload_too_large()
            }
            JsonPayloadError::ContentType => ApiError::client(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "request.unsupported_media_type",
                "Content-Type は application/json にしてください。",
                "Send the body as application/json.",
            ),
            JsonPayloadError::Deserialize(inner) if inner.is_data() => ApiError::client(
                StatusCode::UNPROCESSABLE_ENTITY,
                "request.invalid_body",
                "リクエストの内容が仕様に合っていません。",
                "The request body does not match the expected shape.",
            ),
            _ => invalid_json(),
        };
        as_actix_error(error, api_error)
    }

    /// 400: the body is not valid JSON.
    pub fn invalid_json() -> ApiError {
        ApiError::client(
            StatusCode::BAD_REQUEST,
            "request.invalid_json",
            "リクエストの JSON を読み取れません。",
            "The request body is not valid JSON.",
        )
    }

    pub fn query_error(error: QueryPayloadError, _request: &HttpRequest) -> actix_web::Error {
        let api_error = ApiError::client(
            StatusCode::BAD_REQUEST,
            "request.invalid_query",
            "クエリパラメータが正しくありません。",
            "A query parameter is not valid.",
        );
        as_actix_error(error, api_error)
    }

    /// A path segment of the wrong type (`/api/v1/submissions/not-a-uuid`) is not found (the
    /// portal's paths get its 404 page instead: `startup` chooses).
    pub fn path_error(error: PathError, _request: &HttpRequest) -> actix_web::Error {
        as_actix_error(error, ApiError::not_found())
    }

    pub fn payload_too_large() -> ApiError {
        ApiError::client(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request.too_large",
            "送信内容が大きすぎます。",
            "The request body is too large.",
        )
    }

    fn as_actix_error(
        cause: impl std::fmt::Debug + std::fmt::Display + 'static,
        api_error: ApiError,
    ) -> actix_web::Error {
        InternalError::from_response(cause, api_error.error_response()).into()
    }

    /// Replaces any error response that is not already problem+json (a 404 from the router, a
    /// 405, a 413 raised by a payload limit) with a problem+json body of the same status.
    pub fn render_problem<B>(
        response: ServiceResponse<B>,
    ) -> actix_web::Result<ErrorHandlerResponse<B>> {
        let content_type = response
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .map(|value| value.as_bytes());
        let is_problem = content_type == Some(super::PROBLEM_JSON.as_bytes());
        // The portal's error pages (HTML) are answers already, like a problem.
        let is_page = content_type.is_some_and(|value| value.starts_with(b"text/html"));
        if is_problem || is_page {
            return Ok(ErrorHandlerResponse::Response(
                response.map_into_left_body(),
            ));
        }
        let status = response.status();
        let api_error = match status {
            StatusCode::NOT_FOUND => ApiError::not_found(),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::client(
                status,
                "request.method_not_allowed",
                "このメソッドは使えません。",
                "This method is not allowed here.",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => payload_too_large(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::client(
                status,
                "request.unsupported_media_type",
                "この Content-Type には対応していません。",
                "This Content-Type is not supported.",
            ),
            status if status.is_client_error() => ApiError::client(
                status,
                "request.invalid",
                "リクエストが正しくありません。",
                "The request is not valid.",
            ),
            _ => ApiError::Internal(anyhow::anyhow!("unhandled error response {status}")),
        };
        let (request, _) = response.into_parts();
        let body: HttpResponse<BoxBody> = api_error.error_response();
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(request, body).map_into_right_body(),
        ))
    }
}

impl From<crate::submissions::SubmissionError> for ApiError {
    fn from(error: crate::submissions::SubmissionError) -> Self {
        use crate::submissions::SubmissionError as S;
        match error {
            S::NotFound => Self::not_found(),
            S::Invalid(errors) => Self::validation("form.invalid", errors),
            S::IdempotencyKeyReused => Self::client(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency.key_reused",
                "この Idempotency-Key は別の内容の申請に使われています。新しいキーで送信してください。",
                "This Idempotency-Key was used for a different request; send with a new key.",
            ),
            S::NotAllowed { from, action } => Self::Client {
                status: StatusCode::CONFLICT,
                code: "submission.transition_not_allowed",
                detail: Localized::new(
                    format!(
                        "現在の状況（{}）ではこの操作はできません。",
                        from.label_ja()
                    ),
                    format!(
                        "This cannot be done while the application is {} ({action:?}).",
                        from.label_en().to_lowercase()
                    ),
                ),
                errors: Vec::new(),
            },
            S::SignatureRequired => Self::client(
                StatusCode::UNPROCESSABLE_ENTITY,
                "submission.signature_required",
                "この手続はマイナンバーカードによる電子署名が必要です。",
                "This procedure must be signed with the My Number Card.",
            ),
            S::InsufficientAssurance => crate::identity::AuthError::InsufficientAssurance.into(),
            S::ResidentsOnly => Self::client(
                StatusCode::FORBIDDEN,
                "submission.residents_only",
                "この証明書をオンラインで請求できるのは市内に住民登録のある方だけです（署名用電子証明書の住所で確認します）。窓口または住所地の市区町村へご請求ください。",
                "Only residents of the city may request this certificate online (the address on your signature certificate decides). Please ask at the counter, or the city you live in.",
            ),
            S::DefinitionChanged => Self::client(
                StatusCode::CONFLICT,
                "submission.definition_changed",
                "申請後にこの手続の様式が変更されたため、差し戻しに回答できません。申請を取り下げて、新しい様式で申請し直してください。",
                "The form of this procedure changed after you applied, so the return cannot be answered; withdraw the application and apply again with the new form.",
            ),
            S::DraftLimit => Self::client(
                StatusCode::CONFLICT,
                "draft.limit_reached",
                "保存できる下書きの数に達しています。不要な下書きを削除してから保存してください。",
                "You have as many drafts as can be kept; discard one you no longer need, then save.",
            ),
            S::UploadQuota => Self::client(
                StatusCode::PAYLOAD_TOO_LARGE,
                "attachment.quota_exceeded",
                "送信前の添付ファイルの合計が上限に達しています。不要な下書きを削除してください。",
                "Your files not yet sent reach the storage allowance; discard drafts you no longer need.",
            ),
            S::SigningNonce => Self::client(
                StatusCode::CONFLICT,
                "signature.nonce_invalid",
                "この電子署名は使用済みか有効期限切れです。内容を確認し、もう一度署名してください。",
                "This signature was already used or has expired; check the answers and sign again.",
            ),
            S::Storage(crate::storage::StorageError::Full) => {
                tracing::error!(error = %error, "attachment storage is full");
                Self::client(
                    StatusCode::INSUFFICIENT_STORAGE,
                    "storage.full",
                    "ファイルを保存する領域が不足しています。時間をおいてもう一度お試しください。",
                    "There is no room to store the file; please try again later.",
                )
            }
            // The store is down or failing: nothing was stored, the client may retry.
            S::Storage(error @ crate::storage::StorageError::Unavailable(_)) => {
                Self::Unavailable(anyhow::Error::new(error))
            }
            S::Storage(error) => {
                Self::internal(anyhow::Error::new(error).context("attachment storage"))
            }
            S::Database(error) => error.into(),
        }
    }
}

/// `validator` errors of a request DTO as field errors with ja/en messages.
pub fn validation_errors(result: Result<(), validator::ValidationErrors>) -> Vec<FieldError> {
    let Err(errors) = result else {
        return Vec::new();
    };
    let mut list = Vec::new();
    for (field, problems) in errors.field_errors() {
        for problem in problems {
            let code = match problem.code.as_ref() {
                "email" => "invalid_email",
                "length" => "too_long",
                "range" => "too_large",
                other => other,
            };
            list.push(FieldError {
                path: format!("/{field}"),
                code: code.to_owned(),
                message: crate::messages::message(code, None),
            });
        }
    }
    list.sort_by(|a, b| a.path.cmp(&b.path));
    list
}

impl From<crate::queues::QueueError> for ApiError {
    fn from(error: crate::queues::QueueError) -> Self {
        use crate::queues::QueueError as Q;
        match error {
            Q::NotFound => Self::not_found(),
            Q::RoleRequired => Self::client(
                StatusCode::FORBIDDEN,
                "auth.role_required",
                "この操作を行う権限がありません。",
                "Your role does not allow this.",
            ),
            Q::NotAssignee => Self::client(
                StatusCode::FORBIDDEN,
                "staff.not_assignee",
                "担当者（または監督者）だけがこの操作を行えます。",
                "Only the assignee (or a supervisor) can do this.",
            ),
            Q::Invalid(errors) => Self::validation("request.invalid", errors),
            Q::RevealClosed => Self::client(
                StatusCode::CONFLICT,
                "my_number.application_closed",
                "完了した申請のマイナンバーは、監督者または管理者だけが表示できます。",
                "Only a supervisor or an admin can reveal a My Number of a closed application.",
            ),
            Q::RevealLimit => Self::client(
                StatusCode::TOO_MANY_REQUESTS,
                "my_number.reveal_limit",
                "この1時間のマイナンバー表示が上限に達しました。しばらくしてからお試しください。",
                "You have revealed as many My Numbers as an hour allows; try again later.",
            ),
            // Raised as an integrity alarm where it happens; the clerk gets a stable code.
            Q::Sealing(_) => Self::client(
                StatusCode::CONFLICT,
                "my_number.integrity_failed",
                "保存されたマイナンバーがこの申請のものと確認できないため、表示できません。システム管理者に連絡してください。",
                "The stored My Number cannot be confirmed to belong to this application, so it is not shown; tell the system administrator.",
            ),
            Q::Submission(error) => error.into(),
            Q::Database(error) => error.into(),
        }
    }
}
