//! One application as a clerk reads it: the answers page by page (dates in both calendars, My
//! Numbers masked), beside the basic facts the card vouched for with differences marked, the
//! attachments (downloaded, or shown inline when the type is safe to), the fee, the history,
//! the revisions and the internal notes, and the forms that decide it.
//!
//! The page opens the application through `queues::processing::open`, the API's own call, so
//! each view is in the resident's access log exactly as a view through the API.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, web};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{Clerk, both_calendars, city_time, clerk, pick, status_label, texts};
use crate::error::ApiError;
use crate::forms::model::{Definition, Field, FieldType};
use crate::identity::staff::{self, Role};
use crate::messages::FieldError;
use crate::queues::processing::{self, StaffSubmission};
use crate::state::AppState;
use crate::submissions::lifecycle::Status;
use crate::web::lang::Lang;

/// One answer as shown.
#[derive(Debug, Serialize)]
pub struct Answer {
    /// The answer's JSON pointer (what a field comment names).
    pub path: String,
    /// An HTML id made from the pointer.
    pub anchor: String,
    pub label: String,
    pub value: String,
    /// A masked My Number, which may be revealed with a reason.
    pub my_number: bool,
    /// What the card says for this answer, when it says something.
    pub card: Option<String>,
    pub mismatch: bool,
}

#[derive(Debug, Serialize)]
pub struct AnswerPage {
    pub title: String,
    pub answers: Vec<Answer>,
}

/// An id for HTML from a JSON pointer: `/children/0/name` → `a-children-0-name`.
pub fn anchor_of(path: &str) -> String {
    let mut anchor = String::from("a");
    for c in path.chars() {
        anchor.push(if c.is_ascii_alphanumeric() { c } else { '-' });
    }
    anchor
}

/// The text of an answer of `field`.
fn shown(field: &Field, value: &Value, lang: Lang) -> String {
    let choice = |text: &str| {
        field
            .options
            .iter()
            .find(|option| option.value == text)
            .map_or_else(|| text.to_owned(), |option| pick(&option.label, lang))
    };
    match (field.kind(), value) {
        (FieldType::Date, Value::String(text)) => {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_or_else(|_| text.clone(), both_calendars)
        }
        (FieldType::Select | FieldType::Radio, Value::String(text)) => choice(text),
        (FieldType::MultiSelect, Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(choice)
            .collect::<Vec<_>>()
            .join("、"),
        (_, Value::Bool(flag)) => texts::text(lang, if *flag { "yes" } else { "no" }).to_owned(),
        (FieldType::File, Value::Array(items)) => {
            texts::text(lang, "files").replace("{n}", &items.len().to_string())
        }
        (_, Value::Object(parts)) => parts
            .values()
            .map(|part| match part {
                Value::String(text) => text.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .filter(|text| !text.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
        (_, Value::String(text)) => text.clone(),
        (_, Value::Null) => String::new(),
        (_, other) => other.to_string(),
    }
}

/// Text compared without spaces of either width, so 「山田 太郎」 and 「山田　太郎」 agree.
fn comparable(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.nfkc().filter(|c| !c.is_whitespace()).collect()
}

/// What the card vouched for, by the answer it stands beside.
fn card_value(
    facts: Option<&crate::identity::facts::VouchedFacts>,
    path: &str,
    value: &Value,
) -> Option<(String, bool)> {
    let facts = &facts?.facts;
    let (card, answer) = match path {
        "/applicant_name" => (facts.name.clone()?, value.as_str()?.to_owned()),
        "/applicant_birth_date" => (facts.birth_date.clone()?, value.as_str()?.to_owned()),
        "/applicant_address" => (
            facts.address.clone()?,
            value
                .get("address")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| value.as_str().map(str::to_owned))?,
        ),
        _ => return None,
    };
    let mismatch = if path == "/applicant_address" {
        // The card carries the whole address; an answer may add a building or leave out the
        // prefecture: one containing the other agrees.
        let (card, answer) = (comparable(&card), comparable(&answer));
        !(card.contains(&answer) || answer.contains(&card))
    } else {
        comparable(&card) != comparable(&answer)
    };
    Some((card, mismatch))
}

fn push_field(
    field: &Field,
    data: &Value,
    base: &str,
    label_prefix: &str,
    facts: Option<&crate::identity::facts::VouchedFacts>,
    lang: Lang,
    into: &mut Vec<Answer>,
) {
    let path = format!("{base}/{}", field.id);
    let label = format!(
        "{label_prefix}{}",
        field
            .label
            .as_ref()
            .map_or_else(|| field.id.clone(), |label| pick(label, lang))
    );
    let Some(value) = data.get(&field.id) else {
        return;
    };
    match field.kind() {
        FieldType::Info => {}
        FieldType::Group => {
            for (index, item) in value.as_array().into_iter().flatten().enumerate() {
                let prefix = format!("{label} {} / ", index + 1);
                for inner in &field.fields {
                    push_field(
                        inner,
                        item,
                        &format!("{path}/{index}"),
                        &prefix,
                        None,
                        lang,
                        into,
                    );
                }
            }
        }
        kind => {
            let card = card_value(facts, &path, value);
            into.push(Answer {
                anchor: anchor_of(&path),
                my_number: kind == FieldType::MyNumber
                    && value.as_str().is_some_and(|text| text.starts_with('*')),
                value: shown(field, value, lang),
                mismatch: card.as_ref().is_some_and(|(_, mismatch)| *mismatch),
                card: card.map(|(card, _)| card),
                label,
                path,
            });
        }
    }
}

/// The answers of `data`, page by page as the definition asks them (pages with no answer left
/// out).
pub fn answer_pages(
    definition: &Definition,
    data: &Value,
    facts: Option<&crate::identity::facts::VouchedFacts>,
    lang: Lang,
) -> Vec<AnswerPage> {
    definition
        .pages
        .iter()
        .map(|page| {
            let mut answers = Vec::new();
            for field in &page.fields {
                push_field(field, data, "", "", facts, lang, &mut answers);
            }
            AnswerPage {
                title: pick(&page.title, lang),
                answers,
            }
        })
        .filter(|page| !page.answers.is_empty())
        .collect()
}

#[derive(Serialize)]
struct Event {
    at: String,
    from: Option<&'static str>,
    to: &'static str,
    by: String,
    reason: Option<String>,
    comments: Vec<(String, String)>,
}

#[derive(Serialize)]
struct Attachment {
    id: Uuid,
    content_type: String,
    size_kb: i64,
    previewable: bool,
}

#[derive(Serialize)]
struct Note {
    by: String,
    at: String,
    body: String,
}

/// One line of the fee form (事後決済).
#[derive(Serialize)]
struct FeeLine {
    anchor: String,
    name: String,
    label: String,
    yen: i64,
}

#[derive(Serialize)]
struct ErrorLink {
    href: String,
    message: String,
}

/// What a page shows after a POST: the errors of a form (with the values it sent), or a notice.
#[derive(Default, Serialize)]
pub struct Outcome {
    pub errors: Vec<FieldError>,
    /// The form the errors belong to: `return`, `reject`, `note`, `reveal`, `fee`.
    pub form: String,
    pub sent_reason: String,
    pub sent_note: String,
    /// Field comments as sent, by pointer.
    pub sent_comments: Vec<(String, String)>,
}

fn name_of(names: &[(Uuid, String)], id: Option<Uuid>, lang: Lang) -> String {
    match id {
        Some(id) => names
            .iter()
            .find(|(known, _)| *known == id)
            .map_or_else(|| id.to_string(), |(_, name)| name.clone()),
        None => texts::text(lang, "by_resident").to_owned(),
    }
}

/// Opens the application (a recorded view) and renders it with `outcome`.
pub async fn render(
    clerk: &Clerk,
    state: &AppState,
    id: Uuid,
    outcome: Outcome,
    status: StatusCode,
) -> HttpResponse {
    let lang = clerk.page.lang;
    let opened = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        let submission =
            processing::open(&mut connection, &state.submissions(), clerk.viewer(), id).await?;
        let members =
            staff::list_in_divisions(&mut connection, std::slice::from_ref(&submission.division))
                .await?;
        let breakdown = crate::payments::requests::frozen(&mut connection, id).await?;
        let payments = crate::payments::of_submission(&mut connection, id).await?;
        Ok::<_, ApiError>((submission, members, breakdown, payments))
    }
    .await;
    let (submission, members, breakdown, payments) = match opened {
        Ok(opened) => opened,
        Err(error) => return clerk.page.failure(error),
    };
    let names: Vec<(Uuid, String)> = members
        .iter()
        .map(|member| (member.id, member.display_name.clone()))
        .collect();
    let StaffSubmission {
        id,
        reference,
        procedure_id,
        procedure_title,
        status: current,
        queue,
        division,
        assignee_id,
        fee_yen,
        submitted_at,
        due_date,
        overdue,
        revision,
        data,
        history,
        revisions,
        notes,
        attachments,
        verified_identity,
        ..
    } = submission;
    let pages = state
        .catalog
        .get(&procedure_id)
        .map(|procedure| {
            answer_pages(
                &procedure.definition,
                &data,
                verified_identity.as_ref(),
                lang,
            )
        })
        .unwrap_or_default();
    let history: Vec<Event> = history
        .into_iter()
        .map(|event| Event {
            at: city_time(event.at),
            from: event
                .from_status
                .as_deref()
                .and_then(Status::parse)
                .map(|status| status_label(status, lang)),
            to: Status::parse(&event.to_status).map_or("", |status| status_label(status, lang)),
            by: match event.actor_kind.as_str() {
                "staff" => name_of(&names, event.actor_id, lang),
                "resident" => texts::text(lang, "by_resident").to_owned(),
                _ => texts::text(lang, "by_system").to_owned(),
            },
            reason: event.reason,
            comments: event
                .comments
                .and_then(|comments| {
                    serde_json::from_value::<Vec<processing::FieldComment>>(comments).ok()
                })
                .unwrap_or_default()
                .into_iter()
                .map(|comment| (comment.path, comment.comment))
                .collect(),
        })
        .collect();
    let attachments: Vec<Attachment> = attachments
        .into_iter()
        .map(|file| Attachment {
            previewable: previewable(&file.content_type),
            id: file.id,
            size_kb: (file.size_bytes + 1023) / 1024,
            content_type: file.content_type,
        })
        .collect();
    let notes: Vec<Note> = notes
        .into_iter()
        .map(|note| Note {
            by: note.staff_name,
            at: city_time(note.created_at),
            body: note.body,
        })
        .collect();
    let supervising = clerk.role_in(&division) >= Some(Role::Supervisor);
    let mine = assignee_id == Some(clerk.id);
    let may_decide = current == Status::InProgress && (mine || supervising);
    // The frozen breakdown and every payment attempt, as the resident and the provider saw them.
    let breakdown_shown = breakdown
        .as_ref()
        .map(|breakdown| crate::web::payments::shown(breakdown, lang));
    let payments_shown: Vec<minijinja::Value> = payments
        .iter()
        .map(|payment| {
            context! {
                order_id => payment.order_id.clone(),
                status => texts::text(lang, &format!("payment_{}", payment.status.as_str())),
                attention => payment.attention.as_deref().map(|attention| {
                    texts::text(lang, &format!("payment_attention_{attention}"))
                }),
                amount => crate::web::payments::money(payment.amount_yen, lang),
                provider_reference => payment.provider_reference.clone(),
                settled_at => payment.settled_at.map(city_time),
            }
        })
        .collect();
    // 事後決済: one number per fee or postage line of the estimate, while it is being handled.
    let fee_lines: Vec<FeeLine> = breakdown
        .filter(|breakdown| {
            may_decide
                && state.payments.is_some()
                && breakdown.timing == Some(crate::forms::model::PaymentTiming::AfterReview)
        })
        .map(|breakdown| {
            breakdown
                .lines
                .into_iter()
                .filter(|line| line.kind != crate::forms::fees::LineKind::Exemption)
                .enumerate()
                .map(|(index, line)| FeeLine {
                    anchor: anchor_of(&format!("/lines/{index}/yen")),
                    name: format!(
                        "{}{}:{}",
                        super::fees::LINE,
                        if line.kind == crate::forms::fees::LineKind::Postage {
                            "postage"
                        } else {
                            "fee"
                        },
                        line.id
                    ),
                    label: pick(&line.label, lang),
                    yen: line.yen,
                })
                .collect()
        })
        .unwrap_or_default();
    let errors: Vec<ErrorLink> = outcome
        .errors
        .iter()
        .map(|error| ErrorLink {
            href: format!("#{}-{}", outcome.form, error_anchor(&error.path)),
            message: pick(&error.message, lang),
        })
        .collect();
    let error_at: Vec<String> = outcome
        .errors
        .iter()
        .map(|error| format!("{}-{}", outcome.form, error_anchor(&error.path)))
        .collect();
    clerk.render(
        status,
        "staff/application.html",
        context! {
            id,
            reference,
            procedure => pick(&procedure_title, lang),
            status => status_label(current, lang),
            status_code => current.as_str(),
            queue,
            assignee => assignee_id.map(|id| name_of(&names, Some(id), lang)),
            fee_yen,
            breakdown => breakdown_shown,
            payments => payments_shown,
            submitted_at => city_time(submitted_at),
            due => due_date.map(both_calendars),
            overdue,
            paused => current == Status::Returned,
            pages,
            card => verified_identity.as_ref().map(|vouched| context! {
                issuer => vouched.issuer.clone(),
                verified_at => city_time(vouched.verified_at),
            }),
            history,
            revisions => revisions.iter().map(|r| context! {
                n => r.revision,
                at => city_time(r.created_at),
            }).collect::<Vec<_>>(),
            revision,
            attachments,
            notes,
            may_start => current == Status::Submitted,
            may_decide,
            fee_lines,
            taken_by_other => current == Status::InProgress && !mine && !supervising,
            may_reveal => supervising || (mine && !current.is_final()),
            errors,
            error_at,
            form => outcome.form,
            sent_reason => outcome.sent_reason,
            sent_note => outcome.sent_note,
            sent_comments => outcome.sent_comments.into_iter().collect::<std::collections::BTreeMap<_, _>>(),
        },
    )
}

/// The element an error's pointer leads to within its form.
fn error_anchor(path: &str) -> String {
    match path {
        "/reason" => "reason".to_owned(),
        "/body" => "body".to_owned(),
        other => anchor_of(other),
    }
}

/// The address that staff emails sent before the console linked to; they keep working.
#[get("/staff/submissions/{id}")]
pub async fn emailed_link(id: web::Path<Uuid>) -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, format!("/staff/applications/{id}")))
        .finish()
}

#[get("/staff/applications/{id}")]
pub async fn show(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let clerk = match clerk(&request).await {
        Ok(clerk) => clerk,
        Err(answer) => return answer,
    };
    // Not an id: the same 404 as another division's application.
    let Ok(id) = id.parse::<Uuid>() else {
        return clerk.page.not_found();
    };
    render(&clerk, &state, id, Outcome::default(), StatusCode::OK).await
}

/// Types a browser shows without running anything of the file's: images and PDF (HEIC is
/// downloaded only; browsers do not show it).
fn previewable(content_type: &str) -> bool {
    matches!(content_type, "image/png" | "image/jpeg" | "application/pdf")
}

#[derive(Deserialize)]
pub struct AttachmentQuery {
    #[serde(default)]
    inline: bool,
}

/// An attachment of an application of my divisions, through the API's audited call: as a
/// download, or (`?inline=true`, images and PDF only) shown in the browser under a sandbox
/// that runs nothing and reaches nothing.
#[get("/staff/attachments/{id}")]
pub async fn attachment(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<AttachmentQuery>,
) -> HttpResponse {
    let clerk = match clerk(&request).await {
        Ok(clerk) => clerk,
        Err(answer) => return answer,
    };
    let Ok(id) = id.parse::<Uuid>() else {
        return clerk.page.not_found();
    };
    let fetched = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        processing::download_attachment(&mut connection, &state.storage, clerk.viewer(), id)
            .await
            .map_err(ApiError::from)
    }
    .await;
    let (content_type, bytes) = match fetched {
        Ok(fetched) => fetched,
        Err(error) => return clerk.page.failure(error),
    };
    let inline = query.inline && previewable(&content_type);
    let mut response = HttpResponse::Ok().body(bytes);
    let headers = response.headers_mut();
    if let Ok(value) = header::HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    let disposition = if inline { "inline" } else { "attachment" };
    if let Ok(value) = header::HeaderValue::from_str(&format!("{disposition}; filename=\"{id}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "sandbox; default-src 'none'; img-src 'self'; object-src 'self'",
        ),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_html_ids() {
        assert_eq!(
            anchor_of("/children/0/birth_date"),
            "a-children-0-birth-date"
        );
    }

    #[test]
    fn spaces_of_either_width_do_not_make_a_mismatch() {
        assert_eq!(comparable("山田　太郎"), comparable("山田 太郎"));
        assert_ne!(comparable("山田 太郎"), comparable("山田 次郎"));
    }
}
