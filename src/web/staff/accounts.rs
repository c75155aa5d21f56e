//! Admin: the staff accounts of the divisions I administer, each with its roles there, its
//! audit history, and the admin's actions (role, deactivate or reactivate, a new password to be
//! replaced at first use). The domain (`identity::staff_admin`) decides who may change what.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use minijinja::context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use validator::ValidateEmail;

use super::{Clerk, Pairs, city_time, clerk, first, texts};
use crate::error::ApiError;
use crate::identity::staff::{self, Membership, Role};
use crate::identity::staff_admin;
use crate::messages::{FieldError, Localized};
use crate::state::AppState;
use crate::web::render::Page;

#[get("/staff/admin/accounts")]
pub async fn list(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let clerk = match clerk(&request).await {
        Ok(clerk) => clerk,
        Err(answer) => return answer,
    };
    render_list(&clerk, &state, &NewAccount::default(), &[], StatusCode::OK).await
}

/// The create-account form as posted (the password is never sent back to the page).
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct NewAccount {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default, skip_serializing)]
    password: String,
    #[serde(default)]
    division: String,
    #[serde(default)]
    role: String,
}

/// The accounts of my divisions and the form that creates one, with `errors` above it.
async fn render_list(
    clerk: &Clerk,
    state: &AppState,
    form: &NewAccount,
    errors: &[FieldError],
    status: StatusCode,
) -> HttpResponse {
    let divisions = clerk.administered();
    if divisions.is_empty() {
        return clerk.page.not_found();
    }
    let listed = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        staff::list_in_divisions(&mut connection, &divisions).await
    }
    .await;
    let errors: Vec<_> = errors
        .iter()
        .map(|error| {
            context! {
                href => format!("#new-{}", error.path.trim_start_matches('/')),
                message => super::pick(&error.message, clerk.page.lang),
            }
        })
        .collect();
    match listed {
        Ok(accounts) => clerk.render(
            status,
            "staff/accounts.html",
            context! {
                accounts,
                divisions,
                roles => ["clerk", "supervisor", "admin"],
                new => form,
                password_optional => state.settings.staff.allows("oidc"),
                errors,
            },
        ),
        Err(error) => clerk.page.failure(error),
    }
}

fn field_error(path: &str, code: &str, ja: &str, en: &str) -> FieldError {
    FieldError {
        path: path.to_owned(),
        code: code.to_owned(),
        message: Localized::new(ja, en),
    }
}

/// The form's mistakes, each named in both languages.
fn check_new(form: &NewAccount, divisions: &[String], password_optional: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let login = form.login.trim();
    if login.is_empty() || login.chars().count() > 64 || login.chars().any(char::is_whitespace) {
        errors.push(field_error(
            "/login",
            "invalid",
            "ログインIDを空白なしの64文字以内で入力してください。",
            "Enter a login of at most 64 characters without spaces.",
        ));
    }
    let name = form.display_name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(field_error(
            "/display_name",
            "invalid",
            "氏名を100文字以内で入力してください。",
            "Enter a name of at most 100 characters.",
        ));
    }
    let email = form.email.trim();
    if !email.is_empty() && !email.validate_email() {
        errors.push(field_error(
            "/email",
            "invalid",
            "メールアドレスを name@example.lg.jp のように入力してください。",
            "Enter an email address like name@example.lg.jp.",
        ));
    }
    let no_password = form.password.is_empty() && password_optional;
    if !no_password && !staff::long_enough(&form.password) {
        errors.push(field_error(
            "/password",
            "too_short",
            "パスワードは12文字以上で入力してください。",
            "Enter a password of at least 12 characters.",
        ));
    }
    if !divisions.contains(&form.division) {
        errors.push(field_error(
            "/division",
            "invalid",
            "管理している課を選んでください。",
            "Choose a division you administer.",
        ));
    }
    if Role::parse(&form.role).is_none() {
        errors.push(field_error(
            "/role",
            "invalid",
            "役割を選んでください。",
            "Choose a role.",
        ));
    }
    errors
}

/// An admin creates an account in a division they administer, as `POST /staff/admin/staff`
/// does: a password given here must be changed at first use.
#[post("/staff/admin/accounts")]
pub async fn create(
    request: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<NewAccount>,
) -> HttpResponse {
    let clerk = match clerk(&request).await {
        Ok(clerk) => clerk,
        Err(answer) => return answer,
    };
    let form = form.into_inner();
    if !clerk.allows_post(Some(&form.csrf)) {
        return clerk.page.forbidden();
    }
    let divisions = clerk.administered();
    if divisions.is_empty() {
        return clerk.page.not_found();
    }
    let errors = check_new(&form, &divisions, state.settings.staff.allows("oidc"));
    if !errors.is_empty() {
        return render_list(
            &clerk,
            &state,
            &form,
            &errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let Some(role) = Role::parse(&form.role) else {
        return clerk.page.not_found();
    };
    let email = Some(form.email.trim()).filter(|email| !email.is_empty());
    let password = Some(form.password.as_str()).filter(|password| !password.is_empty());
    let created = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        Ok::<_, ApiError>(
            staff::create(
                &mut connection,
                form.login.trim(),
                form.display_name.trim(),
                email,
                password,
                &[Membership {
                    division: form.division.clone(),
                    role,
                }],
                Some(clerk.id),
            )
            .await?,
        )
    }
    .await;
    match created {
        Ok(id) => {
            tracing::info!(staff_id = %id, created_by = %clerk.id, "staff account created on the console");
            Page::see_other(&format!("/staff/admin/accounts/{id}"))
        }
        Err(ApiError::Client { status, detail, .. }) if status == StatusCode::CONFLICT => {
            let taken = FieldError {
                path: "/login".to_owned(),
                code: "taken".to_owned(),
                message: detail,
            };
            render_list(&clerk, &state, &form, &[taken], status).await
        }
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
    let removable: Vec<&String> = account
        .memberships
        .iter()
        .map(|membership| &membership.division)
        .filter(|division| divisions.contains(division))
        .collect();
    clerk.render(
        status,
        "staff/account.html",
        context! {
            removable,
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

/// One admin action on an account: `role` (with `division` and `role`), `remove` (with
/// `division`), `deactivate`,
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
            "remove" => {
                let Some(division) = first(&form, "division")
                    .filter(|division| divisions.iter().any(|d| d == division))
                else {
                    return Err(ApiError::not_found());
                };
                staff_admin::remove_membership(&mut connection, clerk.id, id, division).await?;
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
