//! Signing in and out on the pages: the providers the configuration offers (the `dev` card in
//! development and tests), the page a sign-in returns to, the "session expired" page, and the
//! check that a page's resident is signed in.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use super::render::Page;
use super::session::{self, PageSession, Pending, Standing};
use crate::forms::Assurance;
use crate::identity::{AuthError, challenge, dev, residents};
use crate::state::AppState;

/// A place on this site to return to: a path, never another origin (`//host`, `/\host`).
pub fn safe_next(next: Option<&str>) -> Option<String> {
    next.filter(|next| {
        next.starts_with('/')
            && !next.starts_with("//")
            && !next.starts_with("/\\")
            && !next.contains(['\r', '\n'])
    })
    .map(str::to_owned)
}

/// `/sign-in?next=<path>`.
pub fn sign_in_href(next: &str) -> String {
    format!("/sign-in?next={}", percent_encode(next))
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (byte as char).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// A signed-in resident, as a page sees them.
#[derive(Debug, Clone, Copy)]
pub struct Resident {
    pub id: Uuid,
    pub assurance: Assurance,
    /// The session (refresh family), which holds the facts the provider vouched for.
    pub session: Option<Uuid>,
}

/// The resident a page is for, with the page and its session; or the answer to give instead:
/// the sign-in page (never signed in), the session-expired page, or the 503 page.
pub struct Visit {
    pub page: Page,
    pub session: PageSession,
    pub resident: Resident,
}

pub async fn visit(request: &HttpRequest) -> Result<Visit, HttpResponse> {
    let page = Page::new(request);
    let mut session = PageSession::of(request, session::RESIDENT);
    let standing = match session.standing().await {
        Ok(standing) => standing,
        Err(error) => return Err(page.failure(error)),
    };
    // A POST is not a place to return to: its page is (the draft's page, say).
    let back = if request.method() == actix_web::http::Method::GET {
        page.here()
    } else {
        request
            .headers()
            .get(actix_web::http::header::REFERER)
            .and_then(|value| value.to_str().ok())
            .and_then(|referer| referer.find("://").map(|at| &referer[at + 3..]))
            .and_then(|rest| rest.find('/').map(|at| rest[at..].to_owned()))
            .unwrap_or_else(|| "/drafts".to_owned())
    };
    match standing {
        Standing::SignedIn(claims) => {
            let csrf = session.csrf();
            Ok(Visit {
                page: page.with_session(csrf, true),
                session,
                resident: Resident {
                    id: claims.sub,
                    assurance: claims.assurance,
                    session: claims.sid,
                },
            })
        }
        Standing::Anonymous => Err(Page::see_other(&sign_in_href(&back))),
        Standing::Expired => {
            let csrf = session.csrf();
            Err(page.with_session(csrf, false).render(
                StatusCode::UNAUTHORIZED,
                "expired.html",
                context! { sign_in_href => sign_in_href(&back) },
            ))
        }
    }
}

fn providers(state: &AppState) -> Vec<&'static str> {
    let offered = &state.settings.identity.providers;
    let mut providers = Vec::new();
    if offered.iter().any(|p| p == "oidc") && state.oidc.is_some() {
        providers.push("oidc");
    }
    if offered.iter().any(|p| p == "dev") {
        providers.push("dev");
    }
    providers
}

#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
}

fn sign_in_page(
    request: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    next: Option<String>,
    subject: &str,
    errors: Vec<minijinja::Value>,
) -> HttpResponse {
    let mut session = PageSession::of(request, session::RESIDENT);
    let csrf = session.csrf();
    let page = Page::new(request).with_session(csrf, false);
    page.render(
        status,
        "sign_in.html",
        context! {
            providers => providers(state),
            next => next.clone().unwrap_or_default(),
            back => next,
            subject,
            errors,
        },
    )
}

/// The ways to sign in; `next` is where to go afterwards.
#[get("/sign-in")]
pub async fn sign_in(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<SignInQuery>,
) -> HttpResponse {
    let next = safe_next(query.next.as_deref());
    sign_in_page(&request, &state, StatusCode::OK, next, "", Vec::new())
}

#[derive(Deserialize)]
pub struct DevSignIn {
    csrf: Option<String>,
    next: Option<String>,
    subject: Option<String>,
}

/// The fake card (development and tests only; the production profile refuses the provider):
/// the holder id typed in stands for a card.
#[post("/sign-in/dev")]
pub async fn sign_in_dev(
    request: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<DevSignIn>,
) -> HttpResponse {
    let page = Page::new(&request);
    let mut session = PageSession::of(&request, session::RESIDENT);
    if !session.allows_post(form.csrf.as_deref()) {
        return page.forbidden();
    }
    if !state.settings.identity.providers.iter().any(|p| p == "dev") {
        return page.not_found();
    }
    let next = safe_next(form.next.as_deref());
    let subject = form.subject.as_deref().unwrap_or_default().trim();
    if subject.is_empty() || subject.chars().count() > 64 {
        let message = page.lang.text("sign_in_dev_invalid");
        let errors = vec![context! { href => "#subject", message }];
        return sign_in_page(
            &request,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            next,
            subject,
            errors,
        );
    }
    let signed_in = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        let ttl = state.settings.identity.challenge_ttl_seconds;
        let created = challenge::create(&mut connection, "dev", ttl, None, None).await?;
        challenge::consume(&mut connection, "dev", created.id).await?;
        let identity = dev::identity(subject);
        let resident = residents::sign_in(&mut connection, &identity).await?;
        crate::identity::session::start_resident_session(
            &mut connection,
            &state.keyring,
            resident,
            &identity,
        )
        .await
    }
    .await;
    match signed_in {
        Ok(pair) => {
            session.sign_in(&pair);
            tracing::info!(provider = "dev", "resident signed in on the portal");
            Page::see_other(&next.unwrap_or_else(|| "/drafts".to_owned()))
        }
        Err(error) => page.failure(error),
    }
}

#[derive(Deserialize)]
pub struct RedirectSignIn {
    csrf: Option<String>,
    next: Option<String>,
}

/// Starts a sign-in at the OpenID Provider (the Digital Authentication App): the browser goes
/// there and comes back to [`oidc_callback`], which must find the same `state` in this
/// browser's session (a callback from someone else's sign-in is refused).
#[post("/sign-in/oidc")]
pub async fn sign_in_oidc(
    request: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<RedirectSignIn>,
) -> HttpResponse {
    let page = Page::new(&request);
    let mut session = PageSession::of(&request, session::RESIDENT);
    if !session.allows_post(form.csrf.as_deref()) {
        return page.forbidden();
    }
    let Some(client) = state
        .oidc
        .as_ref()
        .filter(|_| providers(&state).contains(&"oidc"))
    else {
        return page.not_found();
    };
    let id = Uuid::now_v7();
    let authorization = client.authorization_request(&id.to_string());
    let created = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        challenge::create_with_id(
            &mut connection,
            id,
            "oidc",
            state.settings.identity.challenge_ttl_seconds,
            Some(authorization.nonce.clone()),
            Some(authorization.pkce_verifier.clone()),
        )
        .await
    }
    .await;
    if let Err(error) = created {
        return page.failure(error);
    }
    session.start_redirect(Pending {
        state: id.to_string(),
        next: safe_next(form.next.as_deref()).unwrap_or_else(|| "/drafts".to_owned()),
    });
    Page::see_other(&authorization.url)
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

/// Where the OpenID Provider sends the resident back when the portal started the sign-in
/// (`identity.oidc.redirect_uri` names this path for a portal deployment).
#[get("/sign-in/oidc/callback")]
pub async fn oidc_callback(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> HttpResponse {
    let page = Page::new(&request);
    let mut session = PageSession::of(&request, session::RESIDENT);
    let Some(client) = state.oidc.as_ref() else {
        return page.not_found();
    };
    let pending = session.take_redirect();
    let refused = |page: &Page| {
        page.refused(
            StatusCode::UNAUTHORIZED,
            &crate::messages::Localized::new(
                "ログインを完了できませんでした。もう一度ログインしてください。",
                "The sign-in could not be completed. Please sign in again.",
            ),
        )
    };
    let Some(pending) = pending.filter(|pending| query.state.as_deref() == Some(&pending.state))
    else {
        return refused(&page);
    };
    if query.error.is_some()
        || query
            .iss
            .as_deref()
            .is_some_and(|iss| iss != client.issuer())
    {
        return refused(&page);
    }
    let (Some(code), Ok(challenge_id)) = (query.code.as_deref(), Uuid::parse_str(&pending.state))
    else {
        return refused(&page);
    };
    let signed_in = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        let stored = challenge::consume(&mut connection, "oidc", challenge_id).await?;
        let (Some(nonce), Some(verifier)) = (&stored.oidc_nonce, &stored.pkce_verifier) else {
            return Err(AuthError::InvalidChallenge);
        };
        // No connection is held while the provider answers.
        drop(connection);
        let identity = client.complete(code, verifier, nonce).await?;
        let mut connection = crate::db::connection(&state.pool).await?;
        let resident = residents::sign_in(&mut connection, &identity).await?;
        crate::identity::session::start_resident_session(
            &mut connection,
            &state.keyring,
            resident,
            &identity,
        )
        .await
    }
    .await;
    match signed_in {
        Ok(pair) => {
            session.sign_in(&pair);
            tracing::info!(provider = "oidc", "resident signed in on the portal");
            Page::see_other(&pending.next)
        }
        Err(AuthError::Database(error)) => page.failure(error),
        Err(error) => {
            tracing::warn!(%error, "a portal sign-in at the OpenID Provider failed");
            refused(&page)
        }
    }
}

#[derive(Deserialize)]
pub struct SignOut {
    csrf: Option<String>,
}

/// Signs out: the session's refresh family is revoked, as the API's logout does.
#[post("/sign-out")]
pub async fn sign_out(request: HttpRequest, form: web::Form<SignOut>) -> HttpResponse {
    let page = Page::new(&request);
    let mut session = PageSession::of(&request, session::RESIDENT);
    if !session.allows_post(form.csrf.as_deref()) {
        return page.forbidden();
    }
    match session.sign_out().await {
        Ok(()) => Page::see_other("/"),
        Err(error) => page.failure(error),
    }
}
