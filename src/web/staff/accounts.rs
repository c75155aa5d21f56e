//! Admin: the staff accounts of the divisions I administer, each with its roles there, its
//! audit history, and the admin's actions (role, deactivate or reactivate, a new password to be
//! replaced at first use). The domain (`identity::staff_admin`) decides who may change what.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use minijinja::context;
use serde::Serialize;
use uuid::Uuid;

use super::{Clerk, Pairs, city_time, clerk, first, texts};
use crate::error::ApiError;
use crate::identity::staff::{self, Role};
use crate::identity::staff_admin;
use crate::state::AppState;
use crate::web::render::Page;

#[get("/staff/admin/accounts")]
pub async fn list(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let clerk = match clerk(&request).await {
        Ok(clerk) => clerk,
        Err(answer) => return answer,
    };
    let divisions = clerk.administered();
    if divisions.is_empty() {
        return clerk.page.not_found();
    }
    let listed = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        staff::list_in_divisions(&mut connection, &divisions).await
    }
    .await;
    match listed {
        Ok(accounts) => clerk.ok("staff/accounts.html", context! { accounts }),
        Err(error) => clerk.page.failure(error),
    }
}

#[derive(Serialize)]
struct Event {
    at: String,
    action: String,
    division: Option<String>,
    role: Option<String>,
    by: Option<String>,
}

async fn render_account(
    clerk: &Clerk,
    state: &AppState,
    id: Uuid,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let divisions = clerk.administered();
    if divisions.is_empty() {
        return clerk.page.not_found();
    }
    let loaded = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        let history = staff_admin::history(&mut connection, id, &divisions).await?;
        let account = staff::list_in_divisions(&mut connection, &divisions)
            .await?
            .into_iter()
            .find(|account| account.id == id);
        Ok::<_, ApiError>((history, account))
    }
    .await;
    let (history, account) = match loaded {
        Ok((history, Some(account))) => (history, account),
        Ok((_, None)) => return clerk.page.not_found(),
        Err(error) => return clerk.page.failure(error),
    };
    let history: Vec<Event> = history
        .into_iter()
        .map(|event| Event {
            at: city_time(event.at),
            action: event.action,
            division: event.division,
            role: event.role,
            by: event.actor_name,
        })
        .collect();
    clerk.render(
        status,
        "staff/account.html",
        context! {
            account,
            history,
            divisions,
            roles => ["clerk", "supervisor", "admin"],
            error,
        },
    )
}

#[get("/staff/admin/accounts/{id}")]
pub async fn show(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let clerk = match clerk(&request).await {
        Ok(clerk) => clerk,
        Err(answer) => return answer,
    };
    let Ok(id) = id.parse::<Uuid>() else {
        return clerk.page.not_found();
    };
    render_account(&clerk, &state, id, None, StatusCode::OK).await
}

/// One admin action on an account: `role` (with `division` and `role`), `deactivate`,
/// `reactivate` or `password` (with `password`).
#[post("/staff/admin/accounts/{id}")]
pub async fn change(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<Pairs>,
) -> HttpResponse {
    let clerk = match clerk(&request).await {
        Ok(clerk) => clerk,
        Err(answer) => return answer,
    };
    let form = form.into_inner();
    if !clerk.allows_post(first(&form, "csrf")) {
        return clerk.page.forbidden();
    }
    let Ok(id) = id.parse::<Uuid>() else {
        return clerk.page.not_found();
    };
    let divisions = clerk.administered();
    if divisions.is_empty() {
        return clerk.page.not_found();
    }
    let lang = clerk.page.lang;
    let action = first(&form, "action").unwrap_or_default();
    if action == "password" && !staff::long_enough(first(&form, "password").unwrap_or_default()) {
        let error = texts::text(lang, "new_password_short").to_owned();
        return render_account(
            &clerk,
            &state,
            id,
            Some(error),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let changed = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        match action {
            "role" => {
                let (Some(division), Some(role)) = (
                    first(&form, "division"),
                    first(&form, "role").and_then(Role::parse),
                ) else {
                    return Err(ApiError::not_found());
                };
                if !divisions.iter().any(|d| d == division) {
                    return Err(ApiError::not_found());
                }
                staff_admin::set_membership(
                    &mut connection,
                    clerk.id,
                    id,
                    division,
                    role,
                    &divisions,
                )
                .await?;
            }
            "deactivate" | "reactivate" => {
                let active = action == "reactivate";
                staff_admin::set_active(&mut connection, clerk.id, id, active, &divisions).await?;
            }
            "password" => {
                let password = first(&form, "password").unwrap_or_default();
                staff_admin::reset_password(&mut connection, clerk.id, id, password, &divisions)
                    .await?;
            }
            _ => return Err(ApiError::not_found()),
        }
        Ok(())
    }
    .await;
    match changed {
        Ok(()) => {
            tracing::info!(staff_id = %id, changed_by = %clerk.id, action, "staff account changed on the console");
            Page::see_other(&format!("/staff/admin/accounts/{id}"))
        }
        Err(ApiError::Client { status, detail, .. }) if status != StatusCode::NOT_FOUND => {
            let error = super::pick(&detail, lang);
            render_account(&clerk, &state, id, Some(error), status).await
        }
        Err(error) => clerk.page.failure(error),
    }
}
