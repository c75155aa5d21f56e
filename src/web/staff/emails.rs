//! Admin: the emails about my divisions the worker gave up on, with the reason, and a retry
//! (the domain's scope: another division's message is not listed and is a 404 to retry).

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use minijinja::context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{city_time, clerk};
use crate::notify::{self, DivisionsScope};
use crate::state::AppState;
use crate::web::render::Page;

#[derive(Serialize)]
struct Row {
    id: Uuid,
    template: String,
    recipient: String,
    attempts: i32,
    last_error: String,
    created_at: String,
    submission_id: Option<Uuid>,
}

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    retried: bool,
}

#[get("/staff/admin/emails")]
pub async fn list(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> HttpResponse {
    let clerk = match clerk(&request).await {
        Ok(clerk) => clerk,
        Err(answer) => return answer,
    };
    let divisions = clerk.administered();
    let emails = notify::division_emails(&state.catalog, &divisions);
    if divisions.is_empty() {
        return clerk.page.not_found();
    }
    let scope = DivisionsScope {
        divisions: &divisions,
        emails: &emails,
    };
    let failed = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        notify::failed(&mut connection, &scope)
            .await
            .map_err(crate::db::DbError::classify)
    }
    .await;
    let failed = match failed {
        Ok(failed) => failed,
        Err(error) => return clerk.page.failure(error),
    };
    let rows: Vec<Row> = failed
        .into_iter()
        .map(|message| Row {
            id: message.id,
            template: message.template,
            recipient: message.recipient,
            attempts: message.attempts,
            last_error: message.last_error.unwrap_or_default(),
            created_at: city_time(message.created_at),
            submission_id: message.submission_id,
        })
        .collect();
    clerk.ok(
        "staff/emails.html",
        context! { rows, retried => query.retried },
    )
}

#[derive(Deserialize)]
pub struct RetryForm {
    csrf: Option<String>,
}

#[post("/staff/admin/emails/{id}/retry")]
pub async fn retry(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: web::Form<RetryForm>,
) -> HttpResponse {
    let clerk = match clerk(&request).await {
        Ok(clerk) => clerk,
        Err(answer) => return answer,
    };
    if !clerk.allows_post(form.csrf.as_deref()) {
        return clerk.page.forbidden();
    }
    let divisions = clerk.administered();
    let emails = notify::division_emails(&state.catalog, &divisions);
    let Ok(id) = id.parse::<Uuid>() else {
        return clerk.page.not_found();
    };
    if divisions.is_empty() {
        return clerk.page.not_found();
    }
    let scope = DivisionsScope {
        divisions: &divisions,
        emails: &emails,
    };
    let retried = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        notify::retry(&mut connection, id, &scope)
            .await
            .map_err(crate::db::DbError::classify)
    }
    .await;
    match retried {
        Ok(true) => Page::see_other("/staff/admin/emails?retried=true"),
        Ok(false) => clerk.page.not_found(),
        Err(error) => clerk.page.failure(error),
    }
}
