//! Page sessions: one encrypted cookie that carries the service's own token pair (the access JWT
//! and the rotating refresh token of `crate::identity::session`) and a CSRF token bound to it.
//!
//! The cookie is sealed with actix's private jar (AEAD, the cookie's name authenticated too), under
//! a key derived from the first session signing secret, so the browser can neither read nor
//! alter what it holds. The tokens inside are the same ones an app would hold: their expiry,
//! refresh, revocation and logout are the identity domain's, not this module's. A [`Kind`] names
//! the cookie and the principal it is for, so the staff console can keep a pair of its own.
//!
//! Every POST a page makes carries the CSRF token as a hidden field (the `csrf_field` macro) and
//! must come from this origin (Origin, else Referer) — see [`PageSession::allows_post`].

use actix_web::body::MessageBody;
use actix_web::cookie::{Cookie, CookieJar, SameSite};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, web};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::config::Profile;
use crate::identity::AuthError;
use crate::identity::session::{self, Claims, Principal, TokenPair};
use crate::state::AppState;

/// Which session a cookie holds: its name and the principal its tokens must be for.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub cookie: &'static str,
    pub principal: Principal,
}

/// The resident portal's session.
pub const RESIDENT: Kind = Kind {
    cookie: "madoguchi_session",
    principal: Principal::Resident,
};

/// The staff console's session: another cookie, and tokens that must be a staff member's, so a
/// resident's cookie never opens a staff page and a staff cookie never opens a resident's.
pub const STAFF: Kind = Kind {
    cookie: "madoguchi_staff_session",
    principal: Principal::Staff,
};

/// The name of the hidden form field that carries the CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// What the cookie holds, sealed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stored {
    csrf: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh: Option<String>,
    /// A sign-in under way at an OpenID Provider: its `state`, and the page to return to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending: Option<Pending>,
}

/// A redirect sign-in started in this browser: the callback must come back to the same one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Pending {
    pub state: String,
    pub next: String,
}

/// Who the session speaks for, once its tokens have been checked.
#[derive(Debug, Clone)]
pub enum Standing {
    /// No tokens: never signed in, or signed out.
    Anonymous,
    /// The access token is good (refreshed if it had expired) and its session is still open.
    SignedIn(Claims),
    /// There were tokens, but the session is over: the refresh token expired, was revoked or
    /// was used elsewhere. The page says so and leads back.
    Expired,
}

/// The cookie to write when the response goes out (see [`write_cookie`]).
struct PendingCookie(Cookie<'static>);

/// One request's page session.
pub struct PageSession {
    kind: Kind,
    stored: Stored,
    request: HttpRequest,
    /// Whether `stored` came from a cookie the browser sent (a token minted on this request is
    /// no proof of anything).
    from_browser: bool,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// `pad ‖ token ⊕ pad`, hex: the token, looking different on every page.
fn mask_token(token: &str) -> String {
    let token = hex::decode(token).unwrap_or_default();
    let mut pad = vec![0u8; token.len()];
    rand::rng().fill_bytes(&mut pad);
    let masked: Vec<u8> = token.iter().zip(&pad).map(|(t, p)| t ^ p).collect();
    hex::encode([pad, masked].concat())
}

/// The token inside a masked one (`None` when it is not one).
fn unmask_token(masked: &str) -> Option<Vec<u8>> {
    let bytes = hex::decode(masked).ok()?;
    if bytes.is_empty() || bytes.len() % 2 != 0 {
        return None;
    }
    let (pad, token) = bytes.split_at(bytes.len() / 2);
    Some(token.iter().zip(pad).map(|(t, p)| t ^ p).collect())
}

fn state_of(request: &HttpRequest) -> Option<&AppState> {
    request
        .app_data::<web::Data<AppState>>()
        .map(|data| data.get_ref())
}

/// `scheme://host[:port]` of an absolute URL.
fn origin_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some(&url[..scheme.len() + 3 + end])
}

impl PageSession {
    /// The session the request's cookie holds (a fresh, empty one when it holds none or one that
    /// does not open: another key, tampered, or another kind's).
    pub fn of(request: &HttpRequest, kind: Kind) -> Self {
        let opened = state_of(request).and_then(|state| {
            let sent = request.cookie(kind.cookie)?;
            let mut jar = CookieJar::new();
            jar.add_original(sent.into_owned());
            let opened = jar.private(state.cookie_key.key()).get(kind.cookie)?;
            serde_json::from_str::<Stored>(opened.value()).ok()
        });
        match opened {
            Some(stored) if !stored.csrf.is_empty() => Self {
                kind,
                stored,
                request: request.clone(),
                from_browser: true,
            },
            _ => Self {
                kind,
                stored: Stored {
                    csrf: random_token(),
                    ..Stored::default()
                },
                request: request.clone(),
                from_browser: false,
            },
        }
    }

    /// The CSRF token for this page's forms. Writes the cookie when the token is new, so the
    /// form's POST can be checked against it.
    ///
    /// The token is masked afresh for every page (a random pad, then the token XOR the pad), so
    /// no two responses carry the same bytes: a compressed page that also reflects what someone
    /// typed (a search) cannot be used to guess the token byte by byte (BREACH).
    pub fn csrf(&mut self) -> String {
        if !self.from_browser {
            self.persist();
        }
        mask_token(&self.stored.csrf)
    }

    /// Checks the tokens: verifies the access token, refreshes the pair through the identity
    /// domain when it has expired, and asks whether its session is still open. Errors are the
    /// database's (the caller answers 503).
    pub async fn standing(&mut self) -> Result<Standing, AuthError> {
        let Some(access) = self.stored.access.clone() else {
            return Ok(Standing::Anonymous);
        };
        let state = self
            .request
            .app_data::<web::Data<AppState>>()
            .cloned()
            .ok_or_else(|| AuthError::Internal(anyhow::anyhow!("application state missing")))?;
        let mut connection = crate::db::connection(&state.pool).await?;
        let claims = match state.keyring.verify(&access) {
            Ok(claims) => claims,
            Err(AuthError::ExpiredToken) => {
                let Some(refresh) = self.stored.refresh.clone() else {
                    return Ok(self.expire());
                };
                match session::refresh(&mut connection, &state.keyring, &refresh).await {
                    Ok(pair) => {
                        self.keep(&pair);
                        self.persist();
                        match state.keyring.verify(&pair.access_token) {
                            Ok(claims) => claims,
                            Err(_) => return Ok(self.expire()),
                        }
                    }
                    Err(AuthError::InvalidToken) => return Ok(self.expire()),
                    Err(other) => return Err(other),
                }
            }
            Err(_) => return Ok(self.expire()),
        };
        if claims.kind != self.kind.principal || !session::is_live(&mut connection, &claims).await?
        {
            return Ok(self.expire());
        }
        Ok(Standing::SignedIn(claims))
    }

    /// Forgets the tokens of a session that is over.
    fn expire(&mut self) -> Standing {
        self.stored.access = None;
        self.stored.refresh = None;
        self.persist();
        Standing::Expired
    }

    fn keep(&mut self, pair: &TokenPair) {
        self.stored.access = Some(pair.access_token.clone());
        self.stored.refresh = Some(pair.refresh_token.clone());
    }

    /// Whether a POST may act: it came from this origin, and its form carried this session's
    /// CSRF token (from a cookie the browser sent, not one minted now).
    pub fn allows_post(&self, sent_token: Option<&str>) -> bool {
        let Some(sent) = sent_token else {
            return false;
        };
        self.from_browser
            && unmask_token(sent).is_some_and(|token| {
                hex::decode(&self.stored.csrf).is_ok_and(|stored| constant_time_eq(&token, &stored))
            })
            && same_origin(&self.request)
    }

    /// Starts the session with a fresh pair; the CSRF token changes with it (a token seen
    /// before sign-in is worth nothing after).
    pub fn sign_in(&mut self, pair: &TokenPair) {
        self.keep(pair);
        self.stored.csrf = random_token();
        self.stored.pending = None;
        self.persist();
    }

    /// Ends the session as the API's logout does (its refresh family revoked), and forgets it.
    pub async fn sign_out(&mut self) -> Result<(), AuthError> {
        if let Some(refresh) = self.stored.refresh.take() {
            let state = self
                .request
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| AuthError::Internal(anyhow::anyhow!("application state missing")))?;
            let mut connection = crate::db::connection(&state.pool).await?;
            session::logout(&mut connection, &refresh).await?;
        }
        self.stored = Stored {
            csrf: random_token(),
            ..Stored::default()
        };
        self.persist();
        Ok(())
    }

    /// Remembers a redirect sign-in started in this browser.
    pub fn start_redirect(&mut self, pending: Pending) {
        self.stored.pending = Some(pending);
        self.persist();
    }

    /// The redirect sign-in this browser started, used up.
    pub fn take_redirect(&mut self) -> Option<Pending> {
        let pending = self.stored.pending.take();
        if pending.is_some() {
            self.persist();
        }
        pending
    }

    /// Seals the session into the cookie the response will carry.
    fn persist(&mut self) {
        let Some(state) = state_of(&self.request) else {
            return;
        };
        let Ok(value) = serde_json::to_string(&self.stored) else {
            return;
        };
        let secure = state.settings.profile != Profile::Development
            || state.settings.server.public_url.starts_with("https://");
        let cookie = Cookie::build(self.kind.cookie, value)
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .finish();
        let mut jar = CookieJar::new();
        jar.private_mut(state.cookie_key.key()).add(cookie);
        if let Some(sealed) = jar.get(self.kind.cookie) {
            self.request
                .extensions_mut()
                .insert(PendingCookie(sealed.clone().into_owned()));
        }
        // From now on the browser holds this session.
        self.from_browser = true;
    }
}

fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

/// Whether the request says it comes from a page of this service: its Origin (else its
/// Referer's origin) is the public URL's or the one the request was sent to. A request that
/// names neither (some privacy settings strip both) is left to the CSRF token; `Origin: null`
/// is refused.
fn same_origin(request: &HttpRequest) -> bool {
    let headers = request.headers();
    let claimed = match headers.get(header::ORIGIN) {
        Some(origin) => origin.to_str().ok().map(str::to_owned),
        None => match headers.get(header::REFERER) {
            Some(referer) => referer.to_str().ok().and_then(origin_of).map(str::to_owned),
            None => return true,
        },
    };
    let Some(claimed) = claimed else {
        return false;
    };
    let info = request.connection_info();
    let own = format!("{}://{}", info.scheme(), info.host());
    let public = state_of(request)
        .and_then(|state| origin_of(&state.settings.server.public_url).map(str::to_owned));
    claimed == own || public.is_some_and(|public| claimed == public)
}

/// Writes the session cookie a handler changed (see [`PageSession::persist`]).
pub async fn write_cookie(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(request).await?;
    let pending = response
        .request()
        .extensions_mut()
        .remove::<PendingCookie>();
    if let Some(PendingCookie(cookie)) = pending {
        response.response_mut().add_cookie(&cookie)?;
        // A page that sets a session is never cached anywhere.
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_cut_from_urls() {
        assert_eq!(
            origin_of("https://city.example.jp/drafts/1?x=2"),
            Some("https://city.example.jp")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080"),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("not a url"), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn a_masked_csrf_token_differs_every_time_and_unmasks_to_the_token() {
        let token = random_token();
        let (first, second) = (mask_token(&token), mask_token(&token));
        assert_ne!(first, second);
        assert_eq!(unmask_token(&first), hex::decode(&token).ok());
        assert_eq!(unmask_token(&second), hex::decode(&token).ok());
        // The bare token is not a masked one that unmasks to itself.
        assert_ne!(unmask_token(&token), hex::decode(&token).ok());
        assert_eq!(unmask_token("zz"), None);
        assert_eq!(unmask_token(""), None);
    }
}
