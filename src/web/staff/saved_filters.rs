//! A clerk's saved filters on a queue list: save the filters in use under a name, rename or
//! delete one. Every form carries the CSRF token; the domain keys each statement by the clerk,
//! so another clerk's filter is a 404 page.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use uuid::Uuid;

use super::queue::{ListQuery, filter_of, render};
use super::{Clerk, Pairs, clerk, first, form_urlencoded_component};
use crate::queues::{self, QueueError, saved_filters};
use crate::state::AppState;
use crate::web::render::Page;

/// Whether `queue` is one of the clerk's queues (else the pages answer 404, as the list does).
fn visible(clerk: &Clerk, state: &AppState, queue: &str) -> bool {
    queues::visible_queues(&state.catalog, &clerk.divisions())
        .iter()
        .any(|visible| visible.id == queue)
}

/// The filter fields of a posted form (the token and the name left out).
fn query_of(form: &Pairs) -> ListQuery {
    let fields: Vec<&(String, String)> = form
        .iter()
        .filter(|(name, _)| name != "csrf" && name != "name" && name != "action")
        .collect();
    serde_urlencoded::to_string(fields)
        .ok()
        .and_then(|text| serde_urlencoded::from_str(&text).ok())
        .unwrap_or_default()
}

/// The answer to a refused or failed change: the list again with the errors, or the 404 or
/// failure page.
async fn refused(
    clerk: &Clerk,
    state: &AppState,
    queue: &str,
    query: &ListQuery,
    error: QueueError,
) -> HttpResponse {
    match error {
        QueueError::Invalid(errors) => {
            render(
                clerk,
                state,
                queue,
                query,
                errors,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        QueueError::NotFound => clerk.page.not_found(),
        error => clerk.page.failure(error),
    }
}

/// Saves the filters in use (the list's hidden fields) under a name.
#[post("/staff/queues/{queue}/filters")]
pub async fn save(
    request: HttpRequest,
    state: web::Data<AppState>,
    queue: web::Path<String>,
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
    if !visible(&clerk, &state, &queue) {
        return clerk.page.not_found();
    }
    let query = query_of(&form);
    if let Err(errors) = filter_of(&state, &query) {
        return render(
            &clerk,
            &state,
            &queue,
            &query,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let stored = query.filters_only();
    let saved = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        saved_filters::save(
            &mut connection,
            clerk.id,
            &queue,
            first(&form, "name").unwrap_or_default(),
            &stored,
        )
        .await
    }
    .await;
    match saved {
        Ok(_) => Page::see_other(&format!(
            "/staff/queues/{}?{stored}",
            form_urlencoded_component(&queue)
        )),
        Err(error) => refused(&clerk, &state, &queue, &query, error).await,
    }
}

/// Renames (`action=rename`, with `name`) or deletes (`action=delete`) one of my filters.
#[post("/staff/queues/{queue}/filters/{id}")]
pub async fn change(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
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
    let (queue, id) = path.into_inner();
    let Ok(id) = id.parse::<Uuid>() else {
        return clerk.page.not_found();
    };
    if !visible(&clerk, &state, &queue) {
        return clerk.page.not_found();
    }
    let action = first(&form, "action").unwrap_or_default();
    let changed = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        match action {
            "rename" => {
                let name = first(&form, "name").unwrap_or_default();
                saved_filters::rename(&mut connection, clerk.id, id, name).await
            }
            "delete" => saved_filters::delete(&mut connection, clerk.id, id).await,
            _ => Err(QueueError::NotFound),
        }
    }
    .await;
    match changed {
        Ok(()) => Page::see_other(&format!(
            "/staff/queues/{}",
            form_urlencoded_component(&queue)
        )),
        Err(error) => refused(&clerk, &state, &queue, &ListQuery::default(), error).await,
    }
}
