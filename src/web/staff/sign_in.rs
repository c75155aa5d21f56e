//! Staff signing in and out on the console: password (with the API's per-address limit and
//! growing waits), the city's OpenID Provider, the forced change of a password an admin gave,
//! and sign-out (the session's refresh family revoked).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use minijinja::context;
use serde::Deserialize;
use uuid::Uuid;

use super::{render_public, signed_in, texts};
use crate::forms::Assurance;
use crate::identity::session::{self as tokens, Principal};
use crate::identity::{AuthError, challenge, staff};
use crate::state::AppState;
use crate::web::render::Page;
use crate::web::session::{self, PageSession, Pending};
use crate::web::sign_in::safe_next;

/// Where a sign-in goes when it names no page.
const HOME: &str = "/staff";

fn oidc_offered(state: &AppState) -> bool {
    state.settings.staff.allows("oidc") && state.staff_oidc.is_some()
}

#[derive(serde::Serialize)]
struct ErrorLink {
    href: &'static str,
    message: &'static str,
}

fn form_page(
    request: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    next: Option<String>,
    login: &str,
    errors: Vec<ErrorLink>,
) -> HttpResponse {
    let mut session = PageSession::of(request, session::STAFF);
    let csrf = session.csrf();
    let page = Page::new(request).with_session(csrf, false);
    render_public(
        &page,
        status,
        "staff/sign_in.html",
        context! {
            next => next.unwrap_or_default(),
            login,
            password_offered => state.settings.staff.allows("password"),
            oidc_offered => oidc_offered(state),
            errors,
        },
    )
}

#[derive(Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
}

#[get("/staff/sign-in")]
pub async fn sign_in_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<SignInQuery>,
) -> HttpResponse {
    let next = safe_next(query.next.as_deref());
    form_page(&request, &state, StatusCode::OK, next, "", Vec::new())
}

#[derive(Deserialize)]
pub struct PasswordSignIn {
    csrf: Option<String>,
    next: Option<String>,
    login: Option<String>,
    password: Option<String>,
}

/// Signs in with login and password through the same domain call as `POST /api/v1/staff/login`,
/// behind the same per-address limit.
#[post("/staff/sign-in")]
pub async fn sign_in(
    request: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<PasswordSignIn>,
) -> HttpResponse {
    let page = Page::new(&request);
    let mut session = PageSession::of(&request, session::STAFF);
    if !session.allows_post(form.csrf.as_deref()) {
        return page.forbidden();
    }
    if !state.settings.staff.allows("password") {
        return page.not_found();
    }
    let next = safe_next(form.next.as_deref()).filter(|next| next.starts_with("/staff"));
    let login = form.login.as_deref().unwrap_or_default().trim();
    let password = form.password.as_deref().unwrap_or_default();
    let lang = page.lang;
    let refuse = |status, errors| form_page(&request, &state, status, next.clone(), login, errors);
    let mut missing = Vec::new();
    if login.is_empty() {
        missing.push(ErrorLink {
            href: "#login",
            message: texts::text(lang, "login_required"),
        });
    }
    if password.is_empty() {
        missing.push(ErrorLink {
            href: "#password",
            message: texts::text(lang, "password_required"),
        });
    }
    if !missing.is_empty() {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, missing);
    }
    if let Some(peer) = request.peer_addr().map(|address| address.ip()) {
        let address =
            crate::client_address::client_address(peer, request.headers(), &state.trusted_proxies);
        let admitted = async {
            let mut connection = crate::db::connection(&state.pool).await?;
            crate::identity::throttle::admit(
                &mut connection,
                address,
                state.settings.staff.login_attempts_per_minute,
            )
            .await
            .map_err(crate::db::DbError::classify)
        }
        .await;
        match admitted {
            Ok(true) => {}
            Ok(false) => {
                return refuse(
                    StatusCode::TOO_MANY_REQUESTS,
                    vec![ErrorLink {
                        href: "#login",
                        message: texts::text(lang, "too_many_attempts"),
                    }],
                );
            }
            Err(error) => return page.failure(error),
        }
    }
    let signed = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        let id = staff::sign_in(&mut connection, &state.settings.staff, login, password).await?;
        let pair = tokens::start_session(
            &mut connection,
            &state.keyring,
            Principal::Staff,
            id,
            Assurance::None,
            None,
        )
        .await?;
        Ok::<_, AuthError>((id, pair))
    }
    .await;
    match signed {
        Ok((id, pair)) => {
            session.sign_in(&pair);
            tracing::info!(staff_id = %id, method = "password", "staff signed in on the console");
            Page::see_other(&next.unwrap_or_else(|| HOME.to_owned()))
        }
        Err(AuthError::Database(error)) => page.failure(error),
        Err(_) => refuse(
            StatusCode::UNAUTHORIZED,
            vec![ErrorLink {
                href: "#login",
                message: texts::text(lang, "bad_credentials"),
            }],
        ),
    }
}

#[derive(Deserialize)]
pub struct RedirectSignIn {
    csrf: Option<String>,
    next: Option<String>,
}

/// Starts a sign-in at the city's OpenID Provider; it comes back to [`oidc_callback`], which
/// must find the same `state` in this browser's staff session.
#[post("/staff/sign-in/oidc")]
pub async fn sign_in_oidc(
    request: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<RedirectSignIn>,
) -> HttpResponse {
    let page = Page::new(&request);
    let mut session = PageSession::of(&request, session::STAFF);
    if !session.allows_post(form.csrf.as_deref()) {
        return page.forbidden();
    }
    let Some(client) = state.staff_oidc.as_ref().filter(|_| oidc_offered(&state)) else {
        return page.not_found();
    };
    let id = Uuid::now_v7();
    let authorization = client.authorization_request(&id.to_string());
    let created = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        challenge::create_with_id(
            &mut connection,
            id,
            staff::OIDC_CHALLENGE,
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
        next: safe_next(form.next.as_deref())
            .filter(|next| next.starts_with("/staff"))
            .unwrap_or_else(|| HOME.to_owned()),
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

/// Where the city's OpenID Provider sends staff back when the console started the sign-in
/// (`staff.oidc.client.redirect_uri` names this path for a console deployment).
#[get("/staff/sign-in/oidc/callback")]
pub async fn oidc_callback(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> HttpResponse {
    let page = Page::new(&request);
    let mut session = PageSession::of(&request, session::STAFF);
    let Some(client) = state.staff_oidc.as_ref() else {
        return page.not_found();
    };
    let refused = |page: &Page| {
        page.refused(
            StatusCode::UNAUTHORIZED,
            &crate::messages::Localized::new(
                texts::text(crate::web::lang::Lang::Ja, "oidc_failed"),
                texts::text(crate::web::lang::Lang::En, "oidc_failed"),
            ),
        )
    };
    let pending = session.take_redirect();
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
    let signed = async {
        let id = staff::complete_provider_sign_in(
            &state.pool,
            client,
            &state.settings.staff.oidc.login_claim,
            challenge_id,
            code,
        )
        .await?;
        let mut connection = crate::db::connection(&state.pool).await?;
        let pair = tokens::start_session(
            &mut connection,
            &state.keyring,
            Principal::Staff,
            id,
            Assurance::None,
            None,
        )
        .await?;
        Ok::<_, AuthError>((id, pair))
    }
    .await;
    match signed {
        Ok((id, pair)) => {
            session.sign_in(&pair);
            tracing::info!(staff_id = %id, method = "oidc", "staff signed in on the console");
            Page::see_other(&pending.next)
        }
        Err(AuthError::Database(error)) => page.failure(error),
        Err(error) => {
            tracing::warn!(%error, "a console sign-in at the city's OpenID Provider failed");
            refused(&page)
        }
    }
}

fn password_form(clerk: &super::Clerk, status: StatusCode, errors: Vec<ErrorLink>) -> HttpResponse {
    let wrong_current = errors.iter().any(|e| e.href == "#current_password");
    let short_new = errors.iter().any(|e| e.href == "#new_password");
    clerk.render(
        status,
        "staff/password.html",
        context! { errors, wrong_current, short_new },
    )
}

/// The forced change of a password an admin gave (and a voluntary one): every other page
/// leads here until it is done, as the API answers 403 `auth.password_change_required`.
#[get("/staff/password")]
pub async fn password_page(request: HttpRequest) -> HttpResponse {
    match signed_in(&request).await {
        Ok(signed) => password_form(&signed.clerk, StatusCode::OK, Vec::new()),
        Err(answer) => answer,
    }
}

#[derive(Deserialize)]
pub struct PasswordChange {
    csrf: Option<String>,
    current_password: Option<String>,
    new_password: Option<String>,
}

#[post("/staff/password")]
pub async fn change_password(
    request: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<PasswordChange>,
) -> HttpResponse {
    let mut signed = match signed_in(&request).await {
        Ok(signed) => signed,
        Err(answer) => return answer,
    };
    let clerk = &mut signed.clerk;
    if !clerk.allows_post(form.csrf.as_deref()) {
        return clerk.page.forbidden();
    }
    if !state.settings.staff.allows("password") {
        return clerk.page.not_found();
    }
    let lang = clerk.page.lang;
    let current = form.current_password.as_deref().unwrap_or_default();
    let new = form.new_password.as_deref().unwrap_or_default();
    if !staff::long_enough(new) {
        let errors = vec![ErrorLink {
            href: "#new_password",
            message: texts::text(lang, "new_password_short"),
        }];
        return password_form(clerk, StatusCode::UNPROCESSABLE_ENTITY, errors);
    }
    let changed = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        staff::change_password(
            &mut connection,
            &state.settings.staff,
            clerk.id,
            current,
            new,
        )
        .await?;
        tokens::start_session(
            &mut connection,
            &state.keyring,
            Principal::Staff,
            clerk.id,
            Assurance::None,
            None,
        )
        .await
    }
    .await;
    match changed {
        Ok(pair) => {
            clerk.session.sign_in(&pair);
            tracing::info!(staff_id = %clerk.id, "staff password changed on the console; other sessions ended");
            Page::see_other(HOME)
        }
        Err(AuthError::BadCredentials) => {
            let errors = vec![ErrorLink {
                href: "#current_password",
                message: texts::text(lang, "current_password_wrong"),
            }];
            password_form(clerk, StatusCode::UNPROCESSABLE_ENTITY, errors)
        }
        Err(error) => clerk.page.failure(error),
    }
}

#[derive(Deserialize)]
pub struct SignOut {
    csrf: Option<String>,
}

#[post("/staff/sign-out")]
pub async fn sign_out(request: HttpRequest, form: web::Form<SignOut>) -> HttpResponse {
    let page = Page::new(&request);
    let mut session = PageSession::of(&request, session::STAFF);
    if !session.allows_post(form.csrf.as_deref()) {
        return page.forbidden();
    }
    match session.sign_out().await {
        Ok(()) => Page::see_other("/staff/sign-in"),
        Err(error) => page.failure(error),
    }
}
