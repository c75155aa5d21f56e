//! The staff console: a clerk's day in the browser, under `/staff/…`. Like the portal it renders
//! HTML on the server and works with plain form posts; every handler calls the domain
//! (`crate::queues`, `crate::identity::staff`, `crate::notify`) exactly as the JSON edge does,
//! so a view through a page is audited as a view through the API.
//!
//! The page session is the portal's module with the staff kind ([`session::STAFF`]): another
//! cookie, holding staff tokens only.

mod accounts;
mod application;
mod dashboard;
mod decide;
mod diff;
mod emails;
mod fees;
mod queue;
mod saved_filters;
mod sign_in;
mod statistics;
mod texts;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use minijinja::{Value, context};
use uuid::Uuid;

use super::render::Page;
use super::session::{self, PageSession, Standing};
use crate::identity::staff::{self, Membership, Role};
use crate::queues::Viewer;
use crate::state::AppState;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(sign_in::sign_in_page)
        .service(sign_in::sign_in)
        .service(sign_in::sign_in_oidc)
        .service(sign_in::oidc_callback)
        .service(sign_in::password_page)
        .service(sign_in::change_password)
        .service(sign_in::sign_out)
        .service(dashboard::dashboard)
        .service(queue::list)
        .service(queue::claim)
        .service(queue::bulk)
        .service(saved_filters::save)
        .service(saved_filters::change)
        .service(application::show)
        .service(application::emailed_link)
        .service(application::attachment)
        .service(decide::decide)
        .service(decide::add_note)
        .service(decide::reveal)
        .service(fees::request_payment)
        .service(diff::show)
        .service(emails::list)
        .service(emails::retry)
        .service(accounts::list)
        .service(accounts::create)
        .service(accounts::show)
        .service(accounts::change)
        .service(statistics::show)
        .service(statistics::enter_counter);
}

/// `/staff/sign-in?next=<path>`.
fn sign_in_href(next: &str) -> String {
    format!("/staff/sign-in?next={}", form_urlencoded_component(next))
}

/// Percent-encodes one query component.
fn form_urlencoded_component(text: &str) -> String {
    serde_urlencoded::to_string([("", text)])
        .map(|pair| pair.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// A signed-in staff member on a console page, with the page and its session.
pub struct Clerk {
    pub page: Page,
    pub session: PageSession,
    pub id: Uuid,
    pub memberships: Vec<Membership>,
    csrf: String,
}

impl Clerk {
    /// The clerk as the queue domain sees them.
    pub fn viewer(&self) -> Viewer<'_> {
        Viewer {
            id: self.id,
            memberships: &self.memberships,
        }
    }

    pub fn divisions(&self) -> Vec<String> {
        self.memberships
            .iter()
            .map(|m| m.division.clone())
            .collect()
    }

    pub fn role_in(&self, division: &str) -> Option<Role> {
        self.viewer().role_in(division)
    }

    /// The divisions the clerk administers (none: the admin pages are not theirs, a 404).
    pub fn administered(&self) -> Vec<String> {
        self.memberships
            .iter()
            .filter(|membership| membership.role == Role::Admin)
            .map(|membership| membership.division.clone())
            .collect()
    }

    pub fn is_admin(&self) -> bool {
        self.memberships.iter().any(|m| m.role == Role::Admin)
    }

    /// Whether a POST of this page may act (CSRF token and origin).
    pub fn allows_post(&self, sent: Option<&str>) -> bool {
        self.session.allows_post(sent)
    }

    /// Renders a console page: the layout's navigation and the console's texts added.
    pub fn render(&self, status: StatusCode, template: &str, values: Value) -> HttpResponse {
        let console = context! {
            s => texts::of(self.page.lang),
            staff_nav => true,
            is_admin => self.is_admin(),
            console_csrf => self.csrf.clone(),
        };
        self.page
            .render(status, template, context! { ..values, ..console })
    }

    pub fn ok(&self, template: &str, values: Value) -> HttpResponse {
        self.render(StatusCode::OK, template, values)
    }
}

/// Renders a console page for someone not (yet) signed in.
fn render_public(page: &Page, status: StatusCode, template: &str, values: Value) -> HttpResponse {
    let console = context! {
        s => texts::of(page.lang),
        staff_nav => false,
        is_admin => false,
    };
    page.render(status, template, context! { ..values, ..console })
}

/// What a console page needs first: a signed-in staff member of an active account who owes no
/// password change, or the answer to give instead (the sign-in page, the session-expired page,
/// the forced password change, or the 503 page). Memberships are read fresh on every request,
/// as the API's extractor does, so a removed role takes effect at once.
pub async fn clerk(request: &HttpRequest) -> Result<Clerk, HttpResponse> {
    let signed_in = signed_in(request).await?;
    if signed_in.password_change_required {
        return Err(Page::see_other("/staff/password"));
    }
    Ok(signed_in.clerk)
}

/// A signed-in staff member who may still owe a password change.
struct SignedIn {
    clerk: Clerk,
    password_change_required: bool,
}

async fn signed_in(request: &HttpRequest) -> Result<SignedIn, HttpResponse> {
    let page = Page::new(request);
    let mut session = PageSession::of(request, session::STAFF);
    let standing = match session.standing().await {
        Ok(standing) => standing,
        Err(error) => return Err(page.failure(error)),
    };
    let back = if request.method() == actix_web::http::Method::GET {
        page.here()
    } else {
        "/staff".to_owned()
    };
    let claims = match standing {
        Standing::SignedIn(claims) => claims,
        Standing::Anonymous => return Err(Page::see_other(&sign_in_href(&back))),
        Standing::Expired => {
            let csrf = session.csrf();
            return Err(render_public(
                &page.with_session(csrf, false),
                StatusCode::UNAUTHORIZED,
                "staff/expired.html",
                context! { sign_in_href => sign_in_href(&back) },
            ));
        }
    };
    let Some(state) = request.app_data::<web::Data<AppState>>() else {
        return Err(
            page.failure(crate::error::ApiError::internal(anyhow::anyhow!(
                "application state missing"
            ))),
        );
    };
    let standing = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        staff::standing(&mut connection, claims.sub).await
    }
    .await;
    let standing = match standing {
        Ok(Some(standing)) => standing,
        // Deactivated since the sign-in: the session is over.
        Ok(None) => {
            let _ = session.sign_out().await;
            return Err(Page::see_other(&sign_in_href(&back)));
        }
        Err(error) => return Err(page.failure(error)),
    };
    let csrf = session.csrf();
    Ok(SignedIn {
        clerk: Clerk {
            page: page.with_session(csrf.clone(), false),
            session,
            id: claims.sub,
            memberships: standing.memberships,
            csrf,
        },
        password_change_required: standing.password_change_required,
    })
}

/// A posted form as name–value pairs, repeated names kept (checkboxes, per-field comments).
pub type Pairs = Vec<(String, String)>;

fn first<'a>(pairs: &'a Pairs, name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// A time as the city reads it (JST), to the minute.
fn city_time(at: chrono::DateTime<chrono::Utc>) -> String {
    (at + chrono::Duration::hours(9))
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// A date as `2026-11-23（令和8年11月23日）`: both calendars, as staff read them on paper.
fn both_calendars(date: chrono::NaiveDate) -> String {
    format!(
        "{}（{}）",
        date.format("%Y-%m-%d"),
        crate::forms::wareki::format(date)
    )
}

fn status_label(
    status: crate::submissions::lifecycle::Status,
    lang: super::lang::Lang,
) -> &'static str {
    match lang {
        super::lang::Lang::Ja => status.label_ja(),
        super::lang::Lang::En => status.label_en(),
    }
}

fn pick(text: &crate::messages::Localized, lang: super::lang::Lang) -> String {
    match lang {
        super::lang::Lang::Ja => text.ja.clone(),
        super::lang::Lang::En => text.en.clone(),
    }
}
