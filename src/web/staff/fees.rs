//! 事後決済 on the console: the assignee (or a supervisor) of an in-progress application paid
//! `after_review` sets its fee lines with a reason — one number per line of the estimate frozen
//! at submission — and the resident is asked to pay. The domain call is the JSON edge's
//! (`payments::requests`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, post, web};
use uuid::Uuid;

use super::application::{self, Outcome};
use super::{Pairs, clerk, first};
use crate::forms::fees::LineKind;
use crate::identity::staff::Role;
use crate::messages::FieldError;
use crate::payments::PaymentError;
use crate::payments::requests::{self, Clerk, FeeLineInput};
use crate::state::AppState;
use crate::web::render::Page;

/// The prefix of a line's form name: `line:postage:standard_letter`.
pub const LINE: &str = "line:";

fn kind_of(text: &str) -> Option<LineKind> {
    match text {
        "fee" => Some(LineKind::Fee),
        "postage" => Some(LineKind::Postage),
        _ => None,
    }
}

/// The form's lines in their order; a number that is not one is refused as out of range.
fn lines_of(form: &Pairs) -> Vec<FeeLineInput> {
    form.iter()
        .filter_map(|(name, value)| {
            let (kind, id) = name.strip_prefix(LINE)?.split_once(':')?;
            Some(FeeLineInput {
                kind: kind_of(kind)?,
                id: id.to_owned(),
                label: None,
                yen: value.trim().parse().unwrap_or(-1),
            })
        })
        .collect()
}

#[post("/staff/applications/{id}/fee")]
pub async fn request_payment(
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
    let lines = lines_of(&form);
    let reason = first(&form, "reason").unwrap_or_default().to_owned();
    let requested = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        let division = requests::division_of(&mut connection, &clerk.divisions(), id).await?;
        let acting = Clerk {
            id: clerk.id,
            supervisor: clerk.role_in(&division) >= Some(Role::Supervisor),
        };
        requests::request_payment(
            &mut connection,
            &state.submissions(),
            &clerk.divisions(),
            acting,
            id,
            &lines,
            &reason,
        )
        .await
    }
    .await;
    match requested {
        Ok(_) => Page::see_other(&format!("/staff/applications/{id}")),
        Err(PaymentError::Invalid(errors)) => {
            // "/lines" (the total) stands beside the first line.
            let errors = errors
                .into_iter()
                .map(|error| FieldError {
                    path: if error.path == "/lines" {
                        "/lines/0/yen".to_owned()
                    } else {
                        error.path
                    },
                    ..error
                })
                .collect();
            let outcome = Outcome {
                errors,
                form: "fee".to_owned(),
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
        Err(error) => clerk.page.failure(crate::error::ApiError::from(error)),
    }
}
