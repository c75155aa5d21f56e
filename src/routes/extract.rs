//! Typed extractors for "who is asking", so a handler cannot forget to check.
//!
//! `ResidentAuth` and `StaffAuth` read `Authorization: Bearer <jwt>`, verify it with the service's
//! keyring (signature, kid, iss, aud, exp), refuse the other kind of principal, and check that
//! the token's session is still open (a logout or revocation ends its access tokens at once).

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, web};
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::ApiError;
use crate::forms::Assurance;
use crate::identity::AuthError;
use crate::identity::session::{self, Claims, Principal};
use crate::identity::staff::{self, Membership, Role};
use crate::state::AppState;

fn bearer_claims(request: &HttpRequest) -> Result<Claims, ApiError> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))?;
    let token = request
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .ok_or(AuthError::MissingToken)?;
    Ok(state.keyring.verify(token.trim())?)
}

/// The verified claims of a `kind` principal whose session is still open, and the connection
/// that checked it (for the caller's own lookups).
fn open_session(
    request: &HttpRequest,
    kind: Principal,
) -> impl Future<Output = Result<(Claims, crate::db::DbConn), ApiError>> + use<> {
    let claims = bearer_claims(request);
    let state = request.app_data::<web::Data<AppState>>().cloned();
    async move {
        let claims = claims?;
        if claims.kind != kind {
            return Err(AuthError::InvalidToken.into());
        }
        let state = state.ok_or_else(|| ApiError::internal(anyhow::anyhow!("state missing")))?;
        let mut connection = crate::db::connection(&state.pool).await?;
        if !session::is_live(&mut connection, &claims).await? {
            return Err(AuthError::InvalidToken.into());
        }
        Ok((claims, connection))
    }
}

/// A signed-in resident.
#[derive(Debug, Clone, Copy)]
pub struct ResidentAuth {
    pub id: Uuid,
    pub assurance: Assurance,
    /// The session the token belongs to (absent only in tokens issued before sessions had ids).
    pub session: Option<Uuid>,
}

impl ResidentAuth {
    /// Refuses with 403 when the sign-in was weaker than `needed`.
    pub fn require(&self, needed: Assurance) -> Result<(), ApiError> {
        if self.assurance >= needed {
            Ok(())
        } else {
            Err(AuthError::InsufficientAssurance.into())
        }
    }
}

impl FromRequest for ResidentAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let signed_in = open_session(request, Principal::Resident);
        Box::pin(async move {
            let (claims, _) = signed_in.await?;
            Ok(Self {
                id: claims.sub,
                assurance: claims.assurance,
                session: claims.sid,
            })
        })
    }
}

/// A signed-in staff member with their divisions and roles, read fresh from the database so a
/// removed membership takes effect at once.
#[derive(Debug, Clone)]
pub struct StaffAuth {
    pub id: Uuid,
    pub memberships: Vec<Membership>,
}

impl StaffAuth {
    pub fn role_in(&self, division: &str) -> Option<Role> {
        self.memberships
            .iter()
            .find(|membership| membership.division == division)
            .map(|membership| membership.role)
    }

    pub fn divisions(&self) -> Vec<String> {
        self.memberships
            .iter()
            .map(|m| m.division.clone())
            .collect()
    }

    /// The caller as the queue domain sees them.
    pub fn viewer(&self) -> crate::queues::Viewer<'_> {
        crate::queues::Viewer {
            id: self.id,
            memberships: &self.memberships,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.memberships.iter().any(|m| m.role == Role::Admin)
    }

    /// The divisions where the staff member holds at least `role`; 403 if there are none.
    pub fn divisions_with_role(&self, role: Role) -> Result<Vec<String>, ApiError> {
        let divisions: Vec<String> = self
            .memberships
            .iter()
            .filter(|membership| membership.role >= role)
            .map(|membership| membership.division.clone())
            .collect();
        if divisions.is_empty() {
            return Err(role_required());
        }
        Ok(divisions)
    }

    /// 403 unless the staff member holds at least `role` in `division`.
    pub fn require_role(&self, division: &str, role: Role) -> Result<(), ApiError> {
        match self.role_in(division) {
            Some(held) if held >= role => Ok(()),
            _ => Err(role_required()),
        }
    }
}

/// 403: the caller's role does not allow this.
pub fn role_required() -> ApiError {
    ApiError::client(
        StatusCode::FORBIDDEN,
        "auth.role_required",
        "この操作を行う権限がありません。",
        "Your role does not allow this.",
    )
}

impl FromRequest for StaffAuth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let signed_in = StaffSelf::from_request(request, payload);
        Box::pin(async move {
            let StaffSelf {
                id,
                memberships,
                password_change_required,
            } = signed_in.await?;
            if password_change_required {
                return Err(AuthError::PasswordChangeRequired.into());
            }
            Ok(Self { id, memberships })
        })
    }
}

/// A signed-in staff member who may still owe the change of a password an admin gave them: for
/// their own account only (`/staff/me`, `/staff/me/password`). Everything else takes
/// [`StaffAuth`], which refuses such a member with 403 `auth.password_change_required`.
#[derive(Debug, Clone)]
pub struct StaffSelf {
    pub id: Uuid,
    pub memberships: Vec<Membership>,
    pub password_change_required: bool,
}

impl FromRequest for StaffSelf {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let signed_in = open_session(request, Principal::Staff);
        Box::pin(async move {
            let (claims, mut connection) = signed_in.await?;
            let standing = staff::standing(&mut connection, claims.sub)
                .await?
                .ok_or(AuthError::InvalidToken)?;
            Ok(Self {
                id: claims.sub,
                memberships: standing.memberships,
                password_change_required: standing.password_change_required,
            })
        })
    }
}

/// A JSON request body that must be an object of type `T`, with no text that cannot be stored
/// ([`crate::input`]).
///
/// serde would happily build a struct from a JSON array (`[null, null]`); a client that sends
/// one has made a mistake we should name. Type errors are reported with the JSON pointer of the
/// offending value.
pub struct Body<T>(pub T);

impl<T> Body<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Body<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // Read as checked JSON text (size limit, media type and syntax as for any JSON body),
        // then turned into a `T` straight from the text.
        let json = web::Json::<Box<RawValue>>::from_request(request, payload);
        Box::pin(async move { Ok(Body(object_of(json.await?.get())?)) })
    }
}

/// `text`, one JSON value, as a `T`, if it is an object holding only storable text.
///
/// Nearly every body holds no character that could be refused, and a scan of its text tells:
/// such a body becomes a `T` without a `serde_json::Value` of it built, checked and converted
/// first (docs/BENCHMARKS.md, session 10). A body that might hold one is read as a `Value`,
/// so each refused string is named by its JSON pointer.
fn object_of<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    if !text.starts_with('{') {
        return Err(body_error("", "invalid_type"));
    }
    if may_hold_refused_characters(text) {
        // Escapes are decoded only here, and the checked text may still hold one that is not
        // JSON: a lone surrogate (`\ud800`) is a 400, as any other syntax error.
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|_| crate::error::handlers::invalid_json())?;
        let mut refused = Vec::new();
        crate::input::json_errors(&value, "", &mut refused);
        if !refused.is_empty() {
            return Err(super::guard::invalid_characters(refused));
        }
        return serde_path_to_error::deserialize::<_, T>(value).map_err(type_error);
    }
    // Tracking the path costs a copy of every key on the way; only a body that fails needs it,
    // so that one is read a second time with it.
    serde_json::from_str::<T>(text).or_else(|_| {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
            Err(error) => Err(type_error(error)),
            Ok(read) => Ok(read),
        }
    })
}

/// Whether JSON text may hold, once unescaped, a character no stored text may hold
/// ([`crate::input::is_refused`]): one written as is, or any `\u` escape at all.
fn may_hold_refused_characters(text: &str) -> bool {
    text.contains("\\u") || text.chars().any(crate::input::is_refused)
}

/// The 422 for a body of the wrong shape, located by JSON pointer (a 400 for text that is not
/// JSON, which the checked text should never be).
fn type_error(error: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    if error.inner().is_syntax() || error.inner().is_eof() {
        return crate::error::handlers::invalid_json();
    }
    let path: String = error
        .path()
        .iter()
        .filter_map(|segment| match segment {
            serde_path_to_error::Segment::Map { key } => Some(format!("/{key}")),
            serde_path_to_error::Segment::Seq { index } => Some(format!("/{index}")),
            _ => None,
        })
        .collect();
    let message = error.inner().to_string();
    let code = if message.starts_with("missing field") {
        "required"
    } else if message.starts_with("unknown field") {
        "unknown_field"
    } else {
        "invalid_type"
    };
    // A missing field is not on the path yet; an unknown one may already be.
    let path = match (code, message.split('`').nth(1)) {
        ("required" | "unknown_field", Some(field)) if !path.ends_with(&format!("/{field}")) => {
            format!("{path}/{field}")
        }
        _ => path,
    };
    body_error(&path, code)
}

/// A JSON body that may be left out: no body at all (or a JSON `null`, as the document's
/// nullable schema allows) gives `None`; anything else must be a valid [`Body`] (an object of
/// `T`, within the JSON size limit), so a malformed body is refused rather than taken for "no
/// body".
pub struct OptionalBody<T>(pub Option<T>);

impl<T: serde::de::DeserializeOwned + 'static> FromRequest for OptionalBody<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
        let headers = request.headers();
        let sent = headers.contains_key(TRANSFER_ENCODING)
            || headers
                .get(CONTENT_LENGTH)
                .is_some_and(|length| length.as_bytes() != b"0");
        if !sent {
            return Box::pin(std::future::ready(Ok(Self(None))));
        }
        let json = web::Json::<Box<RawValue>>::from_request(request, payload);
        Box::pin(async move {
            match json.await?.get() {
                "null" => Ok(Self(None)),
                text => Ok(Self(Some(object_of(text)?))),
            }
        })
    }
}

fn body_error(path: &str, code: &str) -> ApiError {
    ApiError::validation(
        "request.invalid_body",
        vec![crate::messages::FieldError {
            path: path.to_owned(),
            code: code.to_owned(),
            message: crate::messages::message(code, None),
        }],
    )
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::{Value, json};

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Request {
        data: Value,
        note: Option<String>,
    }

    /// The body's refusal as (code, [(pointer, field code)]).
    fn refusal(text: &str) -> (&'static str, Vec<(String, String)>) {
        match object_of::<Request>(text) {
            Err(ApiError::Client { code, errors, .. }) => (
                code,
                errors
                    .into_iter()
                    .map(|error| (error.path, error.code))
                    .collect(),
            ),
            other => panic!("expected a refusal of {text}, got {other:?}"),
        }
    }

    #[test]
    fn a_body_reads_the_same_whether_its_text_is_scanned_or_parsed_whole() {
        // Plain text takes the scan; an escape (here a harmless あ) takes the whole parse.
        let plain = r#"{"data":{"name":"加賀 太郎","items":[{"n":1}]},"note":"窓口"}"#;
        let escaped = r#"{"data":{"name":"加賀 太郎","items":[{"n":1}]},"note":"\u7a93口"}"#;
        assert!(!may_hold_refused_characters(plain));
        assert!(may_hold_refused_characters(escaped));
        let expected = Request {
            data: json!({"name": "加賀 太郎", "items": [{"n": 1}]}),
            note: Some("窓口".to_owned()),
        };
        assert_eq!(object_of::<Request>(plain).unwrap(), expected);
        assert_eq!(object_of::<Request>(escaped).unwrap(), expected);
    }

    #[test]
    fn refused_characters_are_named_by_pointer_whether_escaped_or_written_as_is() {
        for text in [
            r#"{"data":{"a":["ok","x\u0000"]}}"#,
            "{\"data\":{\"a\":[\"ok\",\"x\u{202e}\"]}}",
            "{\"data\":{\"a\":[\"ok\",\"x\u{85}\"]}}",
        ] {
            assert_eq!(
                refusal(text),
                (
                    "request.invalid_character",
                    vec![("/data/a/1".to_owned(), "invalid_character".to_owned())]
                ),
                "{text}"
            );
        }
    }

    #[test]
    fn a_lone_surrogate_escape_is_invalid_json() {
        match object_of::<Request>(r#"{"data":{"a":"\ud800"}}"#) {
            Err(ApiError::Client { status, code, .. }) => {
                assert_eq!((status.as_u16(), code), (400, "request.invalid_json"));
            }
            other => panic!("expected a 400, got {other:?}"),
        }
    }

    #[test]
    fn the_wrong_shape_is_named_by_pointer() {
        let shape = |text| refusal(text).1;
        assert_eq!(
            shape("[1, 2]"),
            [("".to_owned(), "invalid_type".to_owned())]
        );
        assert_eq!(
            shape(r#"{"note":"x"}"#),
            [("/data".to_owned(), "required".to_owned())]
        );
        assert_eq!(
            shape(r#"{"data":{},"extra":1}"#),
            [("/extra".to_owned(), "unknown_field".to_owned())]
        );
        assert_eq!(
            shape(r#"{"data":{},"note":5}"#),
            [("/note".to_owned(), "invalid_type".to_owned())]
        );
    }
}
