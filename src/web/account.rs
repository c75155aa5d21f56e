//! The resident's account: the email address notices go to (a new one is pending until the link
//! sent to it is opened) and the language of notices; and the page that link opens.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use minijinja::context;
use validator::ValidateEmail;

use super::apply::{self, ErrorLink};
use super::lang::Lang;
use super::render::Page;
use super::session::{self, CSRF_FIELD, PageSession};
use super::sign_in::{Visit, visit};
use crate::identity::residents::{self, Resident};
use crate::messages::{FieldError, Localized};
use crate::state::AppState;

/// The longest address SMTP carries (RFC 5321), as the API allows.
const MAX_EMAIL_CHARS: usize = 254;

fn pick(text: &Localized, lang: Lang) -> String {
    match lang {
        Lang::Ja => text.ja.clone(),
        Lang::En => text.en.clone(),
    }
}

fn render_account(
    page: &Page,
    resident: &Resident,
    email: &str,
    language: &str,
    errors: &[FieldError],
    saved: bool,
    status: StatusCode,
) -> HttpResponse {
    let lang = page.lang;
    let links: Vec<ErrorLink> = errors
        .iter()
        .map(|error| ErrorLink {
            href: if error.path == "/language" {
                "#language-ja".to_owned()
            } else {
                "#email".to_owned()
            },
            message: pick(&error.message, lang),
        })
        .collect();
    let email_error = errors
        .iter()
        .find(|error| error.path == "/email")
        .map(|error| pick(&error.message, lang));
    page.render(
        status,
        "account.html",
        context! {
            current_email => resident.email.clone().filter(|_| resident.email_confirmed),
            pending_email => resident.pending_email.clone(),
            email,
            language,
            email_error,
            saved,
            errors => links,
        },
    )
}

/// What the account page shows before anything is typed.
async fn current(
    state: &AppState,
    page: &Page,
    resident_id: uuid::Uuid,
) -> Result<Resident, HttpResponse> {
    let mut connection = crate::db::connection(&state.pool)
        .await
        .map_err(|error| page.failure(error))?;
    match residents::find(&mut connection, resident_id).await {
        Ok(Some(resident)) => Ok(resident),
        Ok(None) => Err(page.not_found()),
        Err(error) => Err(page.failure(error)),
    }
}

#[get("/account")]
pub async fn account(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Visit { page, resident, .. } = match visit(&request).await {
        Ok(visit) => visit,
        Err(answer) => return answer,
    };
    let resident = match current(&state, &page, resident.id).await {
        Ok(resident) => resident,
        Err(answer) => return answer,
    };
    let language = resident.language.clone();
    let saved = request
        .query_string()
        .split('&')
        .any(|pair| pair == "saved=1");
    render_account(&page, &resident, "", &language, &[], saved, StatusCode::OK)
}

/// Saves the language, and a new address as pending with its confirmation email (through the
/// outbox, in the same transaction). An empty address field keeps the current one.
#[post("/account")]
pub async fn save_account(
    request: HttpRequest,
    state: web::Data<AppState>,
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
    let input = match apply::read_form(&request, payload, &state).await {
        Ok(input) => input,
        Err(error) => return page.failure(error),
    };
    if !session.allows_post(input.get(CSRF_FIELD)) {
        return page.forbidden();
    }
    let email = input.get("email").unwrap_or_default().trim().to_owned();
    let language = input.get("language").unwrap_or_default().to_owned();
    let mut errors = Vec::new();
    if !email.is_empty() {
        if email.chars().count() > MAX_EMAIL_CHARS {
            errors.push(FieldError::new("/email", "too_long"));
        } else if !email.validate_email() || !crate::input::is_acceptable(&email) {
            errors.push(FieldError::new("/email", "invalid_email"));
        }
    }
    if language != "ja" && language != "en" {
        errors.push(FieldError::new("/language", "invalid_option"));
    }
    let known = match current(&state, &page, resident.id).await {
        Ok(known) => known,
        Err(answer) => return answer,
    };
    if !errors.is_empty() {
        // What was typed comes back, never silently dropped.
        let shown_language = if errors.iter().any(|error| error.path == "/language") {
            known.language.clone()
        } else {
            language
        };
        return render_account(
            &page,
            &known,
            &email,
            &shown_language,
            &errors,
            false,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let mut connection = match crate::db::connection(&state.pool).await {
        Ok(connection) => connection,
        Err(error) => return page.failure(error),
    };
    let changed = residents::change_contact(
        &mut connection,
        resident.id,
        (!email.is_empty()).then_some(email.as_str()),
        Some(language.as_str()),
        &state.settings.server.public_url,
    )
    .await;
    match changed {
        Ok(()) => Page::see_other("/account?saved=1"),
        Err(error) => page.failure(error),
    }
}

/// The page the confirmation email links to. Opening a link changes nothing (mail scanners open
/// links too): the button posts the token.
#[get("/account/email/confirm")]
pub async fn confirm_email_page(request: HttpRequest) -> HttpResponse {
    let mut session = PageSession::of(&request, session::RESIDENT);
    let page = Page::new(&request).with_session(session.csrf(), false);
    let token: String = serde_urlencoded::from_str::<Vec<(String, String)>>(request.query_string())
        .unwrap_or_default()
        .into_iter()
        .find(|(key, _)| key == "token")
        .map(|(_, value)| value)
        .unwrap_or_default();
    page.ok(
        "email_confirm.html",
        context! { token, done => false, invalid => false },
    )
}

/// Confirms the address whose link carried the token. No sign-in needed: the token proves the
/// mailbox; the CSRF token proves the form is ours.
#[post("/account/email/confirm")]
pub async fn confirm_email(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> HttpResponse {
    let mut session = PageSession::of(&request, session::RESIDENT);
    let page = Page::new(&request).with_session(session.csrf(), false);
    let input = match apply::read_form(&request, payload, &state).await {
        Ok(input) => input,
        Err(error) => return page.failure(error),
    };
    if !session.allows_post(input.get(CSRF_FIELD)) {
        return page.forbidden();
    }
    let token = input.get("token").unwrap_or_default().trim().to_owned();
    let mut connection = match crate::db::connection(&state.pool).await {
        Ok(connection) => connection,
        Err(error) => return page.failure(error),
    };
    match residents::confirm_email(&mut connection, &token).await {
        Ok(true) => page.ok(
            "email_confirm.html",
            context! { token => "", done => true, invalid => false },
        ),
        Ok(false) => page.render(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email_confirm.html",
            context! { token => "", done => false, invalid => true },
        ),
        Err(error) => page.failure(error),
    }
}
