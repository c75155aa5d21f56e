//! A queue's list: filters as a GET form, oldest first, one keyset page at a time (the domain's
//! cursor, one SELECT whatever the table holds), the due date as text and colour, 「次を担当する」,
//! and a supervisor's bulk assign or release with a reason.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::NaiveDate;
use minijinja::context;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    Clerk, Pairs, both_calendars, city_time, clerk, first, form_urlencoded_component, pick,
    status_label, texts,
};
use crate::error::ApiError;
use crate::forms::lint::city_today;
use crate::identity::staff::{self, Role};
use crate::messages::{FieldError, Localized};
use crate::queues::processing::{self, StaffAction};
use crate::queues::saved_filters;
use crate::queues::{self, AssigneeFilter, DUE_SOON_BUSINESS_DAYS, PageFilter, QueueError};
use crate::state::AppState;
use crate::submissions::lifecycle::Status;
use crate::web::render::Page;

/// The list's query as the filter form sends it: every value text, an empty one meaning "any".
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    procedure: String,
    #[serde(default)]
    assignee: String,
    #[serde(default)]
    overdue: String,
    #[serde(default)]
    due: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    cursor: String,
    /// What the last POST did, for the banner.
    #[serde(default)]
    claimed: String,
    #[serde(default)]
    done: String,
}

impl ListQuery {
    /// The filter form's fields as a query string: what a saved filter keeps (no page, no banner).
    pub fn filters_only(&self) -> String {
        let kept = ListQuery {
            cursor: String::new(),
            claimed: String::new(),
            done: String::new(),
            ..self.clone()
        };
        serde_urlencoded::to_string(&kept).unwrap_or_default()
    }
}

fn some(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|text| !text.is_empty())
}

fn field_error(path: &str, ja: &str, en: &str) -> FieldError {
    FieldError {
        path: path.to_owned(),
        code: "invalid".to_owned(),
        message: Localized::new(ja, en),
    }
}

/// The domain's filter for the query, or the errors to show beside the form.
pub(super) fn filter_of(
    state: &AppState,
    query: &ListQuery,
) -> Result<PageFilter, Vec<FieldError>> {
    let mut errors = Vec::new();
    let status = some(&query.status).and_then(|text| {
        let parsed = Status::parse(text);
        if parsed.is_none() {
            errors.push(field_error(
                "/status",
                "状態を選び直してください。",
                "Choose a status again.",
            ));
        }
        parsed
    });
    let assignee = some(&query.assignee).and_then(|text| match text.parse::<AssigneeFilter>() {
        Ok(assignee) => Some(assignee),
        Err(_) => {
            errors.push(field_error(
                "/assignee",
                "担当者を選び直してください。",
                "Choose an assignee again.",
            ));
            None
        }
    });
    let mut date = |path: &str, text: &str| {
        some(text).and_then(|text| match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(date) if (queues::EARLIEST_DATE..=queues::LATEST_DATE).contains(&date) => Some(date),
            _ => {
                errors.push(field_error(
                    path,
                    "日付は 2026-12-01 のように入力してください。",
                    "Enter a date like 2026-12-01.",
                ));
                None
            }
        })
    };
    let from = date("/from", &query.from);
    let to = date("/to", &query.to);
    let due_by = (query.due == "soon").then(|| {
        state
            .calendar
            .add_business_days(city_today(), DUE_SOON_BUSINESS_DAYS)
    });
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(PageFilter {
        status,
        procedure: some(&query.procedure).map(str::to_owned),
        assignee,
        overdue: (query.overdue == "true").then_some(true),
        from,
        to,
        due_by,
        cursor: some(&query.cursor).map(str::to_owned),
        limit: Some(50),
    })
}

#[derive(Serialize)]
struct Row {
    id: Uuid,
    reference: String,
    procedure: String,
    status: &'static str,
    submitted_at: String,
    due_text: String,
    /// `overdue`, `soon`, `paused` or `ok`: the colour, always with words beside it.
    due_class: &'static str,
    due_state: &'static str,
    assignee: String,
}

#[derive(Serialize)]
struct SavedLink {
    id: Uuid,
    name: String,
    href: String,
}

#[derive(Serialize)]
struct Choice {
    value: String,
    label: String,
}

#[derive(Serialize)]
struct ErrorLink {
    href: String,
    message: String,
}

fn errors_of(errors: &[FieldError], lang: crate::web::lang::Lang) -> Vec<ErrorLink> {
    errors
        .iter()
        .map(|error| ErrorLink {
            href: format!(
                "#{}",
                error
                    .path
                    .trim_start_matches('/')
                    .split('/')
                    .next()
                    .unwrap_or_default()
            ),
            message: pick(&error.message, lang),
        })
        .collect()
}

/// Renders the list for `query`, with `errors` of a form above it (the filters or a bulk action).
pub(super) async fn render(
    clerk: &Clerk,
    state: &AppState,
    queue_id: &str,
    query: &ListQuery,
    mut errors: Vec<FieldError>,
    status: StatusCode,
) -> HttpResponse {
    let lang = clerk.page.lang;
    let Some(queue) = queues::visible_queues(&state.catalog, &clerk.divisions())
        .into_iter()
        .find(|queue| queue.id == queue_id)
    else {
        return clerk.page.not_found();
    };
    let filter = match filter_of(state, query) {
        Ok(filter) => Some(filter),
        Err(mut invalid) => {
            errors.append(&mut invalid);
            None
        }
    };
    let loaded = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        let saved = saved_filters::list(&mut connection, clerk.id, queue_id).await?;
        let page = match filter {
            Some(filter) => {
                match queues::page(
                    &mut connection,
                    &state.catalog,
                    clerk.viewer(),
                    queue_id,
                    filter,
                )
                .await
                {
                    Ok(page) => Some(page),
                    Err(QueueError::Invalid(invalid)) => {
                        return Ok((None, Vec::new(), saved, invalid));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            None => None,
        };
        let members =
            staff::list_in_divisions(&mut connection, std::slice::from_ref(&queue.division))
                .await?;
        Ok::<_, ApiError>((page, members, saved, Vec::new()))
    }
    .await;
    let (page, members, saved, invalid) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return clerk.page.failure(error),
    };
    // The domain refused the filters (a cursor not from this list): the page names it in its
    // own words, not the API's.
    let status = if invalid.is_empty() {
        status
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    errors.extend(invalid.into_iter().map(|mut error| {
        if error.path == "/cursor" {
            error.message = Localized::new(
                "ページの指定が正しくありません。最初のページからやり直してください。",
                "This page of the list does not exist; start again from the first page.",
            );
        }
        error
    }));
    let name_of = |id: Option<Uuid>| {
        id.map(|id| {
            members
                .iter()
                .find(|member| member.id == id)
                .map_or_else(|| id.to_string(), |member| member.display_name.clone())
        })
        .unwrap_or_else(|| texts::text(lang, "unassigned").to_owned())
    };
    let today = city_today();
    let soon = state
        .calendar
        .add_business_days(today, DUE_SOON_BUSINESS_DAYS);
    let (rows, next_cursor) = match page {
        Some(page) => (
            page.items
                .into_iter()
                .map(|item| {
                    let (due_class, due_state) = match (item.status, item.due_date) {
                        (Status::Returned, _) => ("paused", "paused"),
                        (_, None) => ("ok", ""),
                        _ if item.overdue => ("overdue", "overdue"),
                        (Status::Submitted | Status::InProgress, Some(due)) if due <= soon => {
                            ("soon", "due_soon")
                        }
                        _ => ("ok", ""),
                    };
                    Row {
                        id: item.id,
                        reference: item.reference,
                        procedure: pick(&item.procedure_title, lang),
                        status: status_label(item.status, lang),
                        submitted_at: city_time(item.submitted_at),
                        due_text: item.due_date.map_or_else(
                            || texts::text(lang, "no_due_date").to_owned(),
                            both_calendars,
                        ),
                        due_class,
                        due_state,
                        assignee: name_of(item.assignee_id),
                    }
                })
                .collect::<Vec<_>>(),
            page.next_cursor,
        ),
        None => (Vec::new(), None),
    };
    let mut kept = query.clone();
    kept.claimed.clear();
    kept.done.clear();
    let next_href = next_cursor.map(|cursor| {
        kept.cursor = cursor;
        format!(
            "/staff/queues/{queue_id}?{}",
            serde_urlencoded::to_string(&kept).unwrap_or_default()
        )
    });
    let statuses: Vec<Choice> = [
        Status::Submitted,
        Status::InProgress,
        Status::Returned,
        Status::Completed,
        Status::Rejected,
        Status::Withdrawn,
    ]
    .into_iter()
    .map(|status| Choice {
        value: status.as_str().to_owned(),
        label: status_label(status, lang).to_owned(),
    })
    .collect();
    let procedures: Vec<Choice> = state
        .catalog
        .procedures
        .values()
        .filter(|procedure| procedure.definition.division == queue.division)
        .map(|procedure| Choice {
            value: procedure.definition.id.clone(),
            label: pick(&procedure.definition.title, lang),
        })
        .collect();
    let people: Vec<Choice> = members
        .iter()
        .filter(|member| member.active)
        .map(|member| Choice {
            value: member.id.to_string(),
            label: member.display_name.clone(),
        })
        .collect();
    let supervising = clerk.role_in(&queue.division) >= Some(Role::Supervisor);
    let saved: Vec<SavedLink> = saved
        .into_iter()
        .map(|filter| SavedLink {
            href: format!("/staff/queues/{queue_id}?{}", filter.query),
            id: filter.id,
            name: filter.name,
        })
        .collect();
    clerk.render(
        status,
        "staff/queue.html",
        context! {
            queue_id,
            queue_name => pick(&queue.name, lang),
            q => query,
            rows,
            next_href,
            paged => !query.cursor.is_empty(),
            statuses,
            procedures,
            people,
            supervising,
            saved,
            errors => errors_of(&errors, lang),
            nothing_claimed => query.claimed == "none",
            done => query.done.parse::<usize>().ok(),
        },
    )
}

#[get("/staff/queues/{queue}")]
pub async fn list(
    request: HttpRequest,
    state: web::Data<AppState>,
    queue: web::Path<String>,
    query: web::Query<ListQuery>,
) -> HttpResponse {
    let clerk = match clerk(&request).await {
        Ok(clerk) => clerk,
        Err(answer) => return answer,
    };
    let query = query.into_inner();
    let invalid = filter_of(&state, &query).is_err();
    let status = if invalid {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(&clerk, &state, &queue, &query, Vec::new(), status).await
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: Option<String>,
}

/// 「次を担当する」: the oldest unclaimed item of the queue becomes mine (the domain's claim, safe
/// under concurrency), and opens.
#[post("/staff/queues/{queue}/claim")]
pub async fn claim(
    request: HttpRequest,
    state: web::Data<AppState>,
    queue: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> HttpResponse {
    let clerk = match clerk(&request).await {
        Ok(clerk) => clerk,
        Err(answer) => return answer,
    };
    if !clerk.allows_post(form.csrf.as_deref()) {
        return clerk.page.forbidden();
    }
    let claimed = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        queues::claim(&mut connection, &state.catalog, clerk.viewer(), &queue).await
    }
    .await;
    match claimed {
        Ok(Some(item)) => Page::see_other(&format!("/staff/applications/{}", item.id)),
        Ok(None) => Page::see_other(&format!(
            "/staff/queues/{}?claimed=none",
            form_urlencoded_component(&queue)
        )),
        Err(error) => clerk.page.failure(error),
    }
}

/// A supervisor assigns the selected applications to one member, or releases them to the queue;
/// the reason is written on each as an internal note. Each application is its own transaction
/// through the domain, which checks the role and the division again.
#[post("/staff/queues/{queue}/bulk")]
pub async fn bulk(
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
    let lang = clerk.page.lang;
    let ids: Vec<Uuid> = form
        .iter()
        .filter(|(name, _)| name == "id")
        .filter_map(|(_, value)| value.parse().ok())
        .collect();
    let action = first(&form, "action").unwrap_or_default();
    let reason = first(&form, "reason").map(str::trim).unwrap_or_default();
    let assignee = first(&form, "staff_id").and_then(|id| id.parse::<Uuid>().ok());
    let mut errors = Vec::new();
    let text = |key| {
        Localized::new(
            texts::text(crate::web::lang::Lang::Ja, key),
            texts::text(crate::web::lang::Lang::En, key),
        )
    };
    if ids.is_empty() {
        errors.push(FieldError {
            path: "/bulk".to_owned(),
            code: "required".to_owned(),
            message: text("bulk_none_selected"),
        });
    }
    if reason.is_empty() {
        errors.push(FieldError {
            path: "/reason".to_owned(),
            code: "required".to_owned(),
            message: text("bulk_reason_required"),
        });
    }
    if action == "assign" && assignee.is_none() {
        errors.push(FieldError {
            path: "/staff_id".to_owned(),
            code: "required".to_owned(),
            message: text("bulk_assignee_required"),
        });
    }
    if action != "assign" && action != "release" {
        return clerk.page.not_found();
    }
    if !errors.is_empty() {
        return render(
            &clerk,
            &state,
            &queue,
            &ListQuery::default(),
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let note_key = if action == "assign" {
        "bulk_note_assign"
    } else {
        "bulk_note_release"
    };
    let note = format!("{}: {reason}", texts::text(lang, note_key));
    let mut done = 0;
    for id in ids {
        let changed = async {
            let mut connection = crate::db::connection(&state.pool).await?;
            match assignee.filter(|_| action == "assign") {
                Some(staff_id) => {
                    processing::assign(&mut connection, clerk.viewer(), id, staff_id).await?;
                }
                None => {
                    processing::apply(
                        &mut connection,
                        &state.submissions(),
                        clerk.viewer(),
                        id,
                        StaffAction::Release,
                        None,
                        &[],
                    )
                    .await?;
                }
            }
            processing::add_note(&mut connection, clerk.viewer(), id, Some(&note)).await
        }
        .await;
        match changed {
            Ok(_) => done += 1,
            Err(QueueError::Database(error)) => return clerk.page.failure(error),
            Err(error) => {
                let shown = ApiError::from(error);
                let message = match shown {
                    ApiError::Client { detail, .. } => detail,
                    _ => Localized::new("処理できませんでした。", "It could not be done."),
                };
                errors.push(FieldError {
                    path: "/bulk".to_owned(),
                    code: "refused".to_owned(),
                    message,
                });
            }
        }
    }
    if !errors.is_empty() {
        let query = ListQuery {
            done: done.to_string(),
            ..ListQuery::default()
        };
        return render(&clerk, &state, &queue, &query, errors, StatusCode::CONFLICT).await;
    }
    Page::see_other(&format!(
        "/staff/queues/{}?done={done}",
        form_urlencoded_component(&queue)
    ))
}
