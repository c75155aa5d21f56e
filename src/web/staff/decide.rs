//! Deciding an application on the console: start, release, return with a reason and comments
//! on chosen answers (one textarea per answer, no script needed), complete, reject with a
//! reason; internal notes; revealing a My Number with a reason the resident will see. Each is
//! the domain call the JSON edge makes (`queues::processing`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use minijinja::context;
use uuid::Uuid;

use super::application::{self, Outcome};
use super::{Pairs, clerk, first};
use crate::queues::QueueError;
use crate::queues::processing::{self, FieldComment, StaffAction};
use crate::state::AppState;
use crate::web::render::Page;

/// The prefix of a field comment's form name: `comment:/applicant_phone`.
const COMMENT: &str = "comment:";

fn action_of(text: &str) -> Option<StaffAction> {
    match text {
        "start" => Some(StaffAction::Start),
        "release" => Some(StaffAction::Release),
        "return" => Some(StaffAction::Return),
        "complete" => Some(StaffAction::Complete),
        "reject" => Some(StaffAction::Reject),
        _ => None,
    }
}

#[post("/staff/applications/{id}/decide")]
pub async fn decide(
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
    let (Ok(id), Some(action)) = (
        id.parse::<Uuid>(),
        first(&form, "action").and_then(action_of),
    ) else {
        return clerk.page.not_found();
    };
    let reason = first(&form, "reason").unwrap_or_default().to_owned();
    // Only the answers commented on: an empty textarea is no comment.
    let comments: Vec<FieldComment> = if action == StaffAction::Return {
        form.iter()
            .filter_map(|(name, value)| {
                let path = name.strip_prefix(COMMENT)?;
                (!value.trim().is_empty()).then(|| FieldComment {
                    path: path.to_owned(),
                    comment: value.trim().to_owned(),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let applied = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        processing::apply(
            &mut connection,
            &state.submissions(),
            clerk.viewer(),
            id,
            action,
            Some(reason.as_str()),
            &comments,
        )
        .await
    }
    .await;
    match applied {
        Ok(_) => Page::see_other(&format!("/staff/applications/{id}")),
        Err(QueueError::Invalid(errors)) => {
            let form_name = match action {
                StaffAction::Reject => "reject",
                _ => "return",
            };
            let outcome = Outcome {
                errors,
                form: form_name.to_owned(),
                sent_reason: reason,
                sent_comments: comments
                    .into_iter()
                    .map(|comment| (comment.path, comment.comment))
                    .collect(),
                ..Outcome::default()
            };
            application::render(
                &clerk,
                &state,
                id,
                outcome,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => clerk.page.failure(error),
    }
}

#[post("/staff/applications/{id}/notes")]
pub async fn add_note(
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
    let body = first(&form, "body").unwrap_or_default().to_owned();
    let added = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        processing::add_note(&mut connection, clerk.viewer(), id, Some(&body)).await
    }
    .await;
    match added {
        Ok(_) => Page::see_other(&format!("/staff/applications/{id}#notes")),
        Err(QueueError::Invalid(errors)) => {
            let outcome = Outcome {
                errors,
                form: "note".to_owned(),
                sent_note: body,
                ..Outcome::default()
            };
            application::render(
                &clerk,
                &state,
                id,
                outcome,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => clerk.page.failure(error),
    }
}

/// Reveals one My Number: the reason is required and specific, and the resident sees it in
/// their access log (the page says so before and after). The number is shown once, on a page
/// nothing caches, never in an address.
#[post("/staff/applications/{id}/reveal")]
pub async fn reveal(
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
    let field_path = first(&form, "field_path").unwrap_or_default().to_owned();
    let reason = first(&form, "reason").unwrap_or_default().to_owned();
    let revealed = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        processing::reveal(
            &mut connection,
            &state.sealer,
            clerk.viewer(),
            id,
            &field_path,
            Some(&reason),
            state.settings.staff.my_number_reveals_per_hour,
        )
        .await
    }
    .await;
    match revealed {
        Ok(my_number) => {
            let mut response = clerk.ok(
                "staff/revealed.html",
                context! { id, my_number, field_path, reason },
            );
            response.headers_mut().insert(
                actix_web::http::header::CACHE_CONTROL,
                actix_web::http::header::HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(QueueError::Invalid(errors)) => {
            // The errors stand beside the field whose number was asked for.
            let errors = errors
                .into_iter()
                .map(|mut error| {
                    if error.path == "/reason" {
                        error.path = field_path.clone();
                    }
                    error
                })
                .collect();
            let outcome = Outcome {
                errors,
                form: "reveal".to_owned(),
                sent_reason: reason,
                ..Outcome::default()
            };
            application::render(
                &clerk,
                &state,
                id,
                outcome,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(error) => clerk.page.failure(error),
    }
}
