//! Rendering a page: the templates (compiled into the binary), the layout's shared context, and
//! the headers every page carries.

use std::sync::LazyLock;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::{Environment, Value, context};

use super::assets;
use super::lang::{self, Lang};
use crate::state::AppState;

/// Scripts, styles, images and form posts from this origin only; no inline script or style, no
/// frames. Pages answer GET forms to themselves.
pub const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'self'";

/// Seconds a resident is asked to wait before retrying a 503.
const RETRY_AFTER_SECONDS: u32 = 30;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut environment = Environment::new();
    // A misspelt name fails the page (and the tests) instead of printing nothing.
    environment.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
    environment.set_formatter(escape_html);
    // Compiled into the binary; a template error is a bug the tests catch (every page rendered).
    for (name, source) in [
        ("base.html", include_str!("../../templates/web/base.html")),
        (
            "macros.html",
            include_str!("../../templates/web/macros.html"),
        ),
        ("home.html", include_str!("../../templates/web/home.html")),
        (
            "procedures.html",
            include_str!("../../templates/web/procedures.html"),
        ),
        (
            "procedure.html",
            include_str!("../../templates/web/procedure.html"),
        ),
        (
            "sign_in.html",
            include_str!("../../templates/web/sign_in.html"),
        ),
        (
            "accessibility.html",
            include_str!("../../templates/web/accessibility.html"),
        ),
        (
            "not_found.html",
            include_str!("../../templates/web/not_found.html"),
        ),
        (
            "breakdown.html",
            include_str!("../../templates/web/breakdown.html"),
        ),
        ("pay.html", include_str!("../../templates/web/pay.html")),
        (
            "checkout.html",
            include_str!("../../templates/web/checkout.html"),
        ),
        (
            "payment_return.html",
            include_str!("../../templates/web/payment_return.html"),
        ),
        (
            "payment_confirmation.html",
            include_str!("../../templates/web/payment_confirmation.html"),
        ),
        (
            "unavailable.html",
            include_str!("../../templates/web/unavailable.html"),
        ),
        (
            "forbidden.html",
            include_str!("../../templates/web/forbidden.html"),
        ),
        (
            "refused.html",
            include_str!("../../templates/web/refused.html"),
        ),
        (
            "expired.html",
            include_str!("../../templates/web/expired.html"),
        ),
        ("apply.html", include_str!("../../templates/web/apply.html")),
        (
            "fields.html",
            include_str!("../../templates/web/fields.html"),
        ),
        (
            "question.html",
            include_str!("../../templates/web/question.html"),
        ),
        (
            "drafts.html",
            include_str!("../../templates/web/drafts.html"),
        ),
        (
            "confirm.html",
            include_str!("../../templates/web/confirm.html"),
        ),
        ("sign.html", include_str!("../../templates/web/sign.html")),
        (
            "received.html",
            include_str!("../../templates/web/received.html"),
        ),
        (
            "applications.html",
            include_str!("../../templates/web/applications.html"),
        ),
        (
            "application.html",
            include_str!("../../templates/web/application.html"),
        ),
        (
            "correct.html",
            include_str!("../../templates/web/correct.html"),
        ),
        (
            "withdraw.html",
            include_str!("../../templates/web/withdraw.html"),
        ),
        (
            "account.html",
            include_str!("../../templates/web/account.html"),
        ),
        (
            "email_confirm.html",
            include_str!("../../templates/web/email_confirm.html"),
        ),
        (
            "staff/base.html",
            include_str!("../../templates/web/staff/base.html"),
        ),
        (
            "staff/sign_in.html",
            include_str!("../../templates/web/staff/sign_in.html"),
        ),
        (
            "staff/password.html",
            include_str!("../../templates/web/staff/password.html"),
        ),
        (
            "staff/dashboard.html",
            include_str!("../../templates/web/staff/dashboard.html"),
        ),
        (
            "statistics.html",
            include_str!("../../templates/web/statistics.html"),
        ),
        (
            "statistics_body.html",
            include_str!("../../templates/web/statistics_body.html"),
        ),
        (
            "staff/statistics.html",
            include_str!("../../templates/web/staff/statistics.html"),
        ),
        (
            "staff/queue.html",
            include_str!("../../templates/web/staff/queue.html"),
        ),
        (
            "staff/application.html",
            include_str!("../../templates/web/staff/application.html"),
        ),
        (
            "staff/revealed.html",
            include_str!("../../templates/web/staff/revealed.html"),
        ),
        (
            "staff/diff.html",
            include_str!("../../templates/web/staff/diff.html"),
        ),
        (
            "staff/emails.html",
            include_str!("../../templates/web/staff/emails.html"),
        ),
        (
            "staff/expired.html",
            include_str!("../../templates/web/staff/expired.html"),
        ),
        (
            "staff/accounts.html",
            include_str!("../../templates/web/staff/accounts.html"),
        ),
        (
            "staff/account.html",
            include_str!("../../templates/web/staff/account.html"),
        ),
    ] {
        if let Err(error) = environment.add_template(name, source) {
            tracing::error!(%error, name, "a page template does not compile");
        }
    }
    environment
});

/// Escapes the five characters that matter in HTML text and quoted attributes; the default
/// also escapes `/`, which makes every address on a page longer for nothing.
fn escape_html(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(text) if !value.is_safe() && state.auto_escape() != minijinja::AutoEscape::None => {
            let mut escaped = String::with_capacity(text.len());
            for c in text.chars() {
                match c {
                    '&' => escaped.push_str("&amp;"),
                    '<' => escaped.push_str("&lt;"),
                    '>' => escaped.push_str("&gt;"),
                    '"' => escaped.push_str("&quot;"),
                    '\'' => escaped.push_str("&#39;"),
                    _ => escaped.push(c),
                }
            }
            out.write_str(&escaped).map_err(minijinja::Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// What every page of one request shares: its language and where it is.
pub struct Page {
    pub lang: Lang,
    /// The language sent as `?lang=`, to remember in the cookie.
    chosen: Option<Lang>,
    path: String,
    query: String,
    secure: bool,
    city: Option<crate::messages::Localized>,
    /// The CSRF token for the page's forms, when it has any.
    csrf: Option<String>,
    /// Whether a resident is signed in (the header then offers sign-out).
    signed_in: bool,
}

impl Page {
    pub fn new(request: &HttpRequest) -> Self {
        let state = request.app_data::<web::Data<AppState>>();
        Self {
            lang: Lang::of(request),
            chosen: Lang::from_query(request.query_string()),
            path: request.path().to_owned(),
            query: request.query_string().to_owned(),
            secure: state
                .is_some_and(|state| state.settings.server.public_url.starts_with("https://")),
            city: state.and_then(|state| {
                state
                    .catalog
                    .organisation
                    .city
                    .as_ref()
                    .map(|city| city.name.clone())
            }),
            csrf: None,
            signed_in: false,
        }
    }

    /// A page with forms: `csrf` goes into each (the `csrf_field` macro). `signed_in` adds
    /// the resident's links and sign-out to the header.
    pub fn with_session(mut self, csrf: String, signed_in: bool) -> Self {
        self.csrf = Some(csrf);
        self.signed_in = signed_in;
        self
    }

    /// The current address, path and query, as a place to come back to.
    pub fn here(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// Renders `template` with the layout's context and `values`.
    pub fn render(&self, status: StatusCode, template: &str, values: Value) -> HttpResponse {
        let other = self.lang.other();
        let shared = context! {
            lang => self.lang.code(),
            other_lang => other.code(),
            switch_href => lang::switch_href(&self.path, &self.query, other),
            t => self.lang.texts(),
            city => self.city.as_ref().map(|city| match self.lang {
                Lang::Ja => city.ja.clone(),
                Lang::En => city.en.clone(),
            }),
            tokens_css => assets::href("tokens.css"),
            site_css => assets::href("site.css"),
            logic_js => assets::href("json-logic.js"),
            reveal_js => assets::href("reveal.js"),
            csrf => self.csrf.clone(),
            signed_in => self.signed_in,
        };
        let rendered = TEMPLATES
            .get_template(template)
            .and_then(|page| page.render(context! { ..values, ..shared }));
        let body = match rendered {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, template, "a page did not render");
                return HttpResponse::InternalServerError().finish();
            }
        };
        let mut response = HttpResponse::build(status);
        response
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_POLICY))
            // Not the API's `no-referrer`: under it browsers send `Origin: null` with a page's
            // own form posts, which the CSRF check refuses. Other origins still get nothing.
            .insert_header((header::REFERRER_POLICY, "same-origin"))
            // Public pages hold no personal data but depend on the language cookie; a page with
            // forms of a session (answers, drafts) is never stored.
            .insert_header((
                header::CACHE_CONTROL,
                if self.csrf.is_some() {
                    "no-store"
                } else {
                    "no-cache"
                },
            ))
            .insert_header((header::VARY, "Cookie"));
        if let Some(chosen) = self.chosen {
            let secure = if self.secure { "; Secure" } else { "" };
            response.insert_header((
                header::SET_COOKIE,
                format!(
                    "{}={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly{secure}",
                    lang::COOKIE,
                    chosen.code()
                ),
            ));
        }
        response.body(body)
    }

    pub fn ok(&self, template: &str, values: Value) -> HttpResponse {
        self.render(StatusCode::OK, template, values)
    }

    pub fn not_found(&self) -> HttpResponse {
        self.render(StatusCode::NOT_FOUND, "not_found.html", context! {})
    }

    /// A POST without this session's CSRF token, or from another origin.
    pub fn forbidden(&self) -> HttpResponse {
        self.render(StatusCode::FORBIDDEN, "forbidden.html", context! {})
    }

    /// A refusal the resident can act on, in their language: `detail` says what and why.
    pub fn refused(&self, status: StatusCode, detail: &crate::messages::Localized) -> HttpResponse {
        let message = match self.lang {
            Lang::Ja => detail.ja.clone(),
            Lang::En => detail.en.clone(),
        };
        self.render(status, "refused.html", context! { message })
    }

    /// The page for a domain error, through the same mapping as the API's (error.rs): not found
    /// is the 404 page, an unavailable database the 503 page, other refusals their message,
    /// and anything else a fixed 500 page whose cause goes to the log only.
    pub fn failure(&self, error: impl Into<crate::error::ApiError>) -> HttpResponse {
        use crate::error::ApiError;
        match error.into() {
            ApiError::Client { status, .. } if status == StatusCode::NOT_FOUND => self.not_found(),
            ApiError::Client { status, detail, .. } => self.refused(status, &detail),
            ApiError::Unavailable(error) => {
                tracing::warn!(error = %error, "a page found the database unavailable");
                self.unavailable()
            }
            ApiError::Internal(error) => {
                tracing::error!(error = ?error, "a page failed");
                self.render(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "refused.html",
                    context! { message => self.lang.text("internal_error") },
                )
            }
        }
    }

    /// 303 See Other to `location` (after a POST, so a reload does not post again).
    pub fn see_other(location: &str) -> HttpResponse {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, location))
            .finish()
    }

    /// The database (or another service a page needs) is unavailable: a 503 that asks to retry
    /// the same address, after Retry-After.
    pub fn unavailable(&self) -> HttpResponse {
        let retry_href = if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        };
        let mut response = self.render(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable.html",
            context! { retry_href, retry_after => RETRY_AFTER_SECONDS },
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            header::HeaderValue::from(RETRY_AFTER_SECONDS),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[actix_web::test]
    async fn unavailable_is_a_503_page_with_a_retry_link() {
        let request = TestRequest::get()
            .uri("/procedures/x?lang=en")
            .to_http_request();
        let response = Page::new(&request).unavailable();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "30");
        assert_eq!(
            response
                .headers()
                .get(header::CONTENT_SECURITY_POLICY)
                .unwrap(),
            PAGE_POLICY
        );
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .unwrap_or_default();
        let html = String::from_utf8_lossy(&body);
        assert!(html.contains(r#"<html lang="en">"#), "{html}");
        assert!(
            html.contains(r#"href="/procedures/x?lang=en""#),
            "a retry link to the same address: {html}"
        );
    }
}
