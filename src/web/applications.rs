//! After applying: 申請履歴 (the resident's applications, newest first, and their drafts), an
//! application's page (timeline, answers with My Numbers masked, files, due date, and who viewed
//! the data and why), the correction of a return (差し戻し) and withdrawal (取下げ).
//!
//! Everything is the domain's (`crate::submissions`): the pages only choose what to show. Another
//! resident's application is the 404 page, as an unknown one is: its existence is not revealed.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use minijinja::context;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::apply::{self, ErrorLink};
use super::lang::Lang;
use super::questions::{self, Vouched};
use super::render::Page;
use super::session::CSRF_FIELD;
use super::sign_in::{Resident, Visit, visit};
use crate::forms::model::{Field, FieldType, Page as DefinitionPage};
use crate::forms::{Assurance, Procedure};
use crate::identity::facts::{FactsSource, VouchedFacts};
use crate::messages::{FieldError, Localized};
use crate::state::AppState;
use crate::submissions::lifecycle::{Action, Status};
use crate::submissions::{
    self, Event, SubmissionDetail, SubmissionError, attachments, drafts, signing,
};

/// Applications per page of the history.
const PER_PAGE: i64 = 20;

/// The longest reason a resident may give for a withdrawal.
const MAX_REASON_CHARS: usize = 1000;

fn pick(text: &Localized, lang: Lang) -> String {
    match lang {
        Lang::Ja => text.ja.clone(),
        Lang::En => text.en.clone(),
    }
}

/// A database connection, or the 503 page.
macro_rules! connect {
    ($state:expr, $page:expr) => {
        match crate::db::connection(&$state.pool).await {
            Ok(connection) => connection,
            Err(error) => return $page.failure(error),
        }
    };
}

/// Runs `visit` (the sign-in check), answering with its page when there is no resident.
macro_rules! signed_in {
    ($request:expr) => {
        match visit(&$request).await {
            Ok(visit) => visit,
            Err(answer) => return answer,
        }
    };
}

pub(super) fn status_label(status: Status, lang: Lang) -> &'static str {
    match lang {
        Lang::Ja => status.label_ja(),
        Lang::En => status.label_en(),
    }
}

fn date_text(date: NaiveDate, lang: Lang) -> String {
    match lang {
        Lang::Ja => format!(
            "{}（{}）",
            date.format("%Y-%m-%d"),
            crate::forms::wareki::format(date)
        ),
        Lang::En => date.format("%Y-%m-%d").to_string(),
    }
}

fn time_text(at: DateTime<Utc>) -> String {
    apply::city_time(at)
}

/// An application id from the address; anything that is not one is simply not found.
fn parse_id(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text).ok()
}

#[derive(Serialize)]
struct Listed {
    href: String,
    title: String,
    reference: String,
    status: &'static str,
    status_code: &'static str,
    submitted: String,
    due: Option<String>,
}

/// 申請履歴: my applications, newest first, a page at a time, and my drafts.
#[get("/applications")]
pub async fn history(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Visit { page, resident, .. } = signed_in!(request);
    let lang = page.lang;
    // `?page=` out of range or not a number is the first page, not an error.
    let number: i64 = serde_urlencoded::from_str::<Vec<(String, String)>>(request.query_string())
        .unwrap_or_default()
        .into_iter()
        .find(|(key, _)| key == "page")
        .and_then(|(_, value)| value.parse::<i64>().ok())
        .filter(|number| (1..=10_000).contains(number))
        .unwrap_or(1);
    let mut connection = connect!(state, page);
    let (listed, more) = match submissions::page_for_resident(
        &mut connection,
        &state.catalog,
        resident.id,
        number - 1,
        PER_PAGE,
    )
    .await
    {
        Ok(found) => found,
        Err(error) => return page.failure(error),
    };
    let drafts = match drafts::list(&mut connection, &state.sealer, resident.id).await {
        Ok(drafts) => drafts,
        Err(error) => return page.failure(error),
    };
    let applications: Vec<Listed> = listed
        .into_iter()
        .map(|summary| Listed {
            href: format!("/applications/{}", summary.id),
            title: pick(&summary.procedure_title, lang),
            reference: summary.reference,
            status: status_label(summary.status, lang),
            status_code: summary.status.as_str(),
            submitted: time_text(summary.submitted_at),
            due: summary.due_date.map(|date| date_text(date, lang)),
        })
        .collect();
    let drafts: Vec<apply::DraftLink> = drafts
        .iter()
        .map(|draft| apply::draft_link(&state, draft, lang))
        .collect();
    page.ok(
        "applications.html",
        context! {
            applications,
            drafts,
            page_number => number,
            previous_href => (number > 1).then(|| format!("/applications?page={}", number - 1)),
            next_href => more.then(|| format!("/applications?page={}", number + 1)),
        },
    )
}

/// One clerk's comment on a field, as the resident reads it.
#[derive(Serialize, Clone)]
struct Comment {
    /// The field's label (the field id when the definition no longer has it).
    field: String,
    comment: String,
    /// The top-level field the comment is about.
    #[serde(skip)]
    field_id: String,
}

/// The comments of a return event: `[{path, comment}]`, labelled from the definition.
fn comments_of(event: &Event, procedure: Option<&Procedure>, lang: Lang) -> Vec<Comment> {
    let Some(Value::Array(items)) = &event.comments else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let path = item.get("path")?.as_str()?;
            let comment = item.get("comment")?.as_str()?.to_owned();
            let field_id = path.split('/').nth(1).unwrap_or_default().to_owned();
            let field = procedure
                .and_then(|p| field_of(&p.definition.pages, &field_id))
                .and_then(|field| field.label.as_ref())
                .map_or_else(|| field_id.clone(), |label| pick(label, lang));
            Some(Comment {
                field,
                comment,
                field_id,
            })
        })
        .collect()
}

fn field_of<'a>(pages: &'a [DefinitionPage], id: &str) -> Option<&'a Field> {
    pages
        .iter()
        .flat_map(|page| page.fields.iter())
        .find(|field| field.id == id)
}

/// The return the application is waiting on: its last event, when that made it `returned`.
fn open_return(detail: &SubmissionDetail) -> Option<&Event> {
    detail
        .history
        .iter()
        .rev()
        .find(|event| event.to_status == Status::Returned.as_str())
        .filter(|_| detail.summary.status == Status::Returned)
}

#[derive(Serialize)]
struct Step {
    status: &'static str,
    at: String,
    by: &'static str,
    reason: Option<String>,
    comments: Vec<Comment>,
}

#[derive(Serialize)]
struct Viewed {
    staff: String,
    division: Option<String>,
    action: String,
    reason: Option<String>,
    at: String,
}

#[derive(Serialize)]
struct File {
    href: String,
    kind: String,
    size: String,
    at: String,
}

fn size_text(bytes: i64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", (bytes + 1023) / 1024)
    }
}

/// The address that emails sent before the portal linked to; they keep working.
#[get("/submissions/{id}")]
pub async fn emailed_link(id: web::Path<Uuid>) -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/applications/{id}"),
        ))
        .finish()
}

/// An application's page: where it stands, what happened, what I sent, and who looked at it.
#[get("/applications/{id}")]
pub async fn application(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let Visit { page, resident, .. } = signed_in!(request);
    let Some(id) = parse_id(&id) else {
        return page.not_found();
    };
    let lang = page.lang;
    let mut connection = connect!(state, page);
    let detail =
        match submissions::get_for_resident(&mut connection, &state.submissions(), resident.id, id)
            .await
        {
            Ok(detail) => detail,
            Err(error) => return page.failure(error),
        };
    let log = match submissions::access_log_for_resident(&mut connection, resident.id, id).await {
        Ok(log) => log,
        Err(error) => return page.failure(error),
    };
    let summary = &detail.summary;
    let procedure = state.catalog.get(&summary.procedure_id);
    let organisation = &state.catalog.organisation;
    let division_name = |id: &str| {
        organisation
            .divisions
            .get(id)
            .map_or_else(|| id.to_owned(), |division| pick(&division.name, lang))
    };
    let timeline: Vec<Step> = detail
        .history
        .iter()
        .map(|event| Step {
            status: Status::parse(&event.to_status).map_or("", |status| status_label(status, lang)),
            at: time_text(event.at),
            by: match event.actor_kind.as_str() {
                "resident" => lang.text("by_you"),
                "staff" => lang.text("by_staff"),
                _ => lang.text("by_system"),
            },
            reason: event.reason.clone(),
            comments: comments_of(event, procedure, lang),
        })
        .collect();
    let viewed: Vec<Viewed> = log
        .iter()
        .map(|entry| Viewed {
            staff: entry.staff_name.clone(),
            division: entry.division.as_deref().map(division_name),
            action: match entry.action.as_str() {
                "view" => lang.text("access_view").to_owned(),
                "reveal_my_number" => lang.text("access_reveal").to_owned(),
                "download" | "download_attachment" => lang.text("access_download").to_owned(),
                other => other.to_owned(),
            },
            reason: entry.reason.clone(),
            at: time_text(entry.at),
        })
        .collect();
    let files: Vec<File> = detail
        .attachments
        .iter()
        .map(|file| File {
            href: format!("/applications/{id}/files/{}", file.id),
            kind: file_kind(&file.content_type),
            size: size_text(file.size_bytes),
            at: time_text(file.created_at),
        })
        .collect();
    let paid = match crate::payments::of_submission(&mut connection, id).await {
        Ok(list) => list
            .into_iter()
            .rfind(|payment| payment.status == crate::payments::PaymentStatus::Succeeded),
        Err(error) => return page.failure(error),
    };
    let answers = procedure
        .map(|procedure| apply::answers(&procedure.definition, &detail.data, Uuid::nil(), lang))
        .unwrap_or_default();
    let returned = open_return(&detail).map(|event| {
        context! {
            reason => event.reason.clone(),
            comments => comments_of(event, procedure, lang),
            correct_href => format!("/applications/{id}/correct"),
        }
    });
    page.ok(
        "application.html",
        context! {
            title => pick(&summary.procedure_title, lang),
            reference => summary.reference.clone(),
            status => status_label(summary.status, lang),
            status_code => summary.status.as_str(),
            submitted => time_text(summary.submitted_at),
            due_date => summary.due_date.map(|date| date_text(date, lang)),
            fee => (summary.fee_yen > 0).then(|| super::pages::yen(summary.fee_yen as u64, lang)),
            division => procedure.map(|p| division_name(&p.definition.division)),
            returned,
            timeline,
            answers,
            files,
            viewed,
            pay_href => (summary.status == Status::AwaitingPayment && state.payments.is_some()).then(|| format!("/applications/{id}/pay")),
            confirmation_href => paid.map(|payment| format!("/payments/{}/confirmation", payment.id)),
            withdraw_href => (!summary.status.is_final()).then(|| format!("/applications/{id}/withdraw")),
        },
    )
}

/// One of the application's files, as a download (never shown inline: no stored content runs
/// in this origin). Only a file of this application, of this resident.
#[get("/applications/{id}/files/{file}")]
pub async fn download(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let Visit { page, resident, .. } = signed_in!(request);
    let (Some(id), Some(file)) = (parse_id(&path.0), parse_id(&path.1)) else {
        return page.not_found();
    };
    let mut connection = connect!(state, page);
    let detail =
        match submissions::get_for_resident(&mut connection, &state.submissions(), resident.id, id)
            .await
        {
            Ok(detail) => detail,
            Err(error) => return page.failure(error),
        };
    if !detail
        .attachments
        .iter()
        .any(|attached| attached.id == file)
    {
        return page.not_found();
    }
    match attachments::download_for_resident(&mut connection, &state.storage, resident.id, file)
        .await
    {
        Ok((content_type, bytes)) => {
            let mut response = HttpResponse::Ok();
            if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&content_type) {
                response.insert_header((actix_web::http::header::CONTENT_TYPE, value));
            }
            response
                .insert_header((
                    actix_web::http::header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{file}\""),
                ))
                .insert_header((actix_web::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                .body(bytes)
        }
        Err(error) => page.failure(error),
    }
}

fn file_kind(content_type: &str) -> String {
    match content_type {
        "application/pdf" => "PDF",
        "image/jpeg" => "JPEG",
        "image/png" => "PNG",
        "image/heic" => "HEIC",
        other => other,
    }
    .to_owned()
}

/// The key of one answer to one return: the same for every tab and every repeat of the form, so
/// a double tap resubmits once; another after the next return.
fn correction_key(id: Uuid, revision: i32) -> String {
    let digest = Sha256::digest(format!("portal-correction:{id}:{revision}"));
    format!("correction-{}", hex::encode(&digest[..16]))
}

/// What the correction page is about: the returned application, its procedure, the comments,
/// and a page holding only the commented fields (in the definition's order).
struct Correction<'a> {
    detail: SubmissionDetail,
    procedure: &'a Procedure,
    comments: Vec<Comment>,
    reason: Option<String>,
    fields: DefinitionPage,
    /// Whether these pages can have a card-sign resubmission signed (`portal.signer`).
    can_sign: bool,
}

enum NotCorrectable {
    /// Not (or no longer) returned: the application's page says where it stands.
    NotReturned(Uuid),
    Failed(SubmissionError),
}

async fn correction<'a>(
    state: &'a AppState,
    connection: &mut diesel_async::AsyncPgConnection,
    resident_id: Uuid,
    id: Uuid,
    lang: Lang,
) -> Result<Correction<'a>, NotCorrectable> {
    let detail = submissions::get_for_resident(connection, &state.submissions(), resident_id, id)
        .await
        .map_err(NotCorrectable::Failed)?;
    let Some(event) = open_return(&detail) else {
        return Err(NotCorrectable::NotReturned(id));
    };
    // Answered against the version of the form the application pinned, as the domain checks.
    let procedure = state
        .catalog
        .get(&detail.summary.procedure_id)
        .filter(|procedure| procedure.content_hash == detail.content_hash)
        .ok_or(NotCorrectable::Failed(SubmissionError::DefinitionChanged))?;
    let comments = comments_of(event, Some(procedure), lang);
    let reason = event.reason.clone();
    let definition = &procedure.definition;
    let fields: Vec<Field> = definition
        .pages
        .iter()
        .flat_map(|page| page.fields.iter())
        .filter(|field| field.kind() != FieldType::Info)
        .filter(|field| comments.iter().any(|comment| comment.field_id == field.id))
        .cloned()
        .collect();
    let fields = DefinitionPage {
        id: "correction".to_owned(),
        title: Localized::new("訂正", "Correction"),
        show_if: None,
        fields,
    };
    Ok(Correction {
        detail,
        procedure,
        comments,
        reason,
        fields,
        can_sign: apply::signer_configured(state),
    })
}

fn render_correction(
    page: &Page,
    correction: &Correction<'_>,
    data: &Value,
    errors: &[FieldError],
    status: StatusCode,
) -> HttpResponse {
    let lang = page.lang;
    let id = correction.detail.summary.id;
    let definition = &correction.procedure.definition;
    let widgets = questions::widgets(
        definition,
        &correction.fields,
        data,
        errors,
        &Vouched::default(),
        lang,
    );
    let mut links = apply::error_links(&widgets, errors, lang);
    // Errors the page has no input for (another answer the change made inconsistent) are listed
    // too, so nothing is refused without a word.
    for error in errors {
        let message = pick(&error.message, lang);
        if !links.iter().any(|link| link.message == message) {
            links.push(ErrorLink {
                href: "#correction-form".to_owned(),
                message,
            });
        }
    }
    let mut by_widget: BTreeMap<String, Vec<Comment>> = BTreeMap::new();
    for comment in &correction.comments {
        by_widget
            .entry(questions::dom_id(&format!("/{}", comment.field_id)))
            .or_default()
            .push(comment.clone());
    }
    let multipart = correction.fields.fields.iter().any(|field| {
        field.kind() == FieldType::File || field.fields.iter().any(|f| f.kind() == FieldType::File)
    });
    page.render(
        status,
        "correct.html",
        context! {
            title => pick(&definition.title, lang),
            reference => correction.detail.summary.reference.clone(),
            reason => correction.reason.clone(),
            widgets,
            comments => by_widget,
            errors => links,
            action => format!("/applications/{id}/correct"),
            back_href => format!("/applications/{id}"),
            idempotency_key => correction_key(id, correction.detail.revision),
            multipart,
            card_sign => definition.assurance == Assurance::CardSign,
            can_sign => correction.can_sign,
        },
    )
}

/// The correction page: only the fields the clerk commented on, each with its comment.
#[get("/applications/{id}/correct")]
pub async fn correct_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let Visit { page, resident, .. } = signed_in!(request);
    let Some(id) = parse_id(&id) else {
        return page.not_found();
    };
    let mut connection = connect!(state, page);
    match correction(&state, &mut connection, resident.id, id, page.lang).await {
        Ok(correction) => {
            let data = correction.detail.data.clone();
            render_correction(&page, &correction, &data, &[], StatusCode::OK)
        }
        Err(NotCorrectable::NotReturned(id)) => Page::see_other(&format!("/applications/{id}")),
        Err(NotCorrectable::Failed(error)) => page.failure(error),
    }
}

/// Sends the corrected answers: the commented fields as typed, everything else as it was (masked
/// My Numbers put back by the domain), as the next revision. A repeat of the same form (the same
/// key) lands on the application's page without a second resubmission.
#[post("/applications/{id}/correct")]
pub async fn correct(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let Visit {
        page,
        session,
        resident,
    } = signed_in!(request);
    let Some(id) = parse_id(&id) else {
        return page.not_found();
    };
    let input = match apply::read_form(&request, payload, &state).await {
        Ok(input) => input,
        Err(error) => return page.failure(error),
    };
    if !session.allows_post(input.get(CSRF_FIELD)) {
        return page.forbidden();
    }
    let done = Page::see_other(&format!("/applications/{id}"));
    let key = input
        .get("idempotency_key")
        .filter(|key| !key.is_empty() && key.len() <= 200)
        .map(str::to_owned);
    let mut connection = connect!(state, page);
    if let Some(key) = &key {
        match submissions::answer_for_key(&mut connection, resident.id, key).await {
            Ok(Some(_)) => return done,
            Ok(None) => {}
            Err(error) => return page.failure(error),
        }
    }
    let correction = match correction(&state, &mut connection, resident.id, id, page.lang).await {
        Ok(correction) => correction,
        Err(NotCorrectable::NotReturned(_)) => return done,
        Err(NotCorrectable::Failed(error)) => return page.failure(error),
    };
    let Some(key) = key.filter(|key| *key == correction_key(id, correction.detail.revision)) else {
        // A form drawn for an earlier return: show the current one.
        return Page::see_other(&format!("/applications/{id}/correct"));
    };
    if let Some(nonce) = input.get("signing_nonce").filter(|nonce| !nonce.is_empty()) {
        let signed = Signed {
            key,
            nonce,
            answers: input.get("answers").unwrap_or_default(),
        };
        return send_signed(
            &state,
            &page,
            &mut connection,
            &resident,
            &correction,
            signed,
        )
        .await;
    }

    // Files first: each becomes an attachment of the returned application.
    let (uploaded, errors) = match apply::store_uploads(
        &state,
        &mut connection,
        resident.id,
        attachments::UploadTarget::Returned(id),
        &correction.fields,
        &input.files,
    )
    .await
    {
        Ok(stored) => stored,
        Err(error) => return page.failure(error),
    };

    let previous = correction
        .detail
        .data
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut data: Map<String, Value> = previous.clone();
    for field in &correction.fields.fields {
        data.remove(&field.id);
        if let Some(value) =
            questions::read_field(field, &field.id, &input, previous.get(&field.id), &uploaded)
        {
            data.insert(field.id.clone(), value);
        }
    }
    let action = input.get("action").unwrap_or("send");
    if apply::change_group(&mut data, &correction.fields, action) {
        // A member added or removed: the same page again, nothing judged or sent yet.
        return render_correction(
            &page,
            &correction,
            &Value::Object(data),
            &errors,
            StatusCode::OK,
        );
    }
    let data = Value::Object(data);
    if !errors.is_empty() {
        return render_correction(
            &page,
            &correction,
            &data,
            &errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let restored = match submissions::restore_for_resubmission(
        &mut connection,
        &state.sealer,
        resident.id,
        id,
        &data,
    )
    .await
    {
        Ok(restored) => restored,
        Err(error) => return page.failure(error),
    };
    let procedure = correction.procedure;
    if procedure.definition.assurance == Assurance::CardSign {
        return signing_page(
            &state,
            &page,
            &mut connection,
            &resident,
            &correction,
            &data,
            &restored,
            &key,
        )
        .await;
    }
    let vouched = match apply::vouched_facts(&mut connection, &resident, procedure).await {
        Ok(vouched) => vouched,
        Err(error) => return page.failure(error),
    };
    let answered = submissions::resubmit(
        &mut connection,
        &state.submissions(),
        submissions::Resubmission {
            resident_id: resident.id,
            assurance: resident.assurance,
            id,
            data: restored,
            signature: None,
            idempotency_key: Some(key),
            vouched,
        },
    )
    .await;
    match answered {
        Ok(_) => done,
        Err(SubmissionError::Invalid(found)) => render_correction(
            &page,
            &correction,
            &data,
            &found,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(error) => page.failure(error),
    }
}

/// A card-sign procedure's corrected answers are signed again before they are sent: the page
/// shows exactly what will be signed (My Numbers masked on the page only), and carries the
/// answers as drawn to the signing step, which restores them as this step did.
#[allow(clippy::too_many_arguments)]
async fn signing_page(
    state: &AppState,
    page: &Page,
    connection: &mut diesel_async::AsyncPgConnection,
    resident: &Resident,
    correction: &Correction<'_>,
    data: &Value,
    restored: &Value,
    key: &str,
) -> HttpResponse {
    let id = correction.detail.summary.id;
    let procedure = correction.procedure;
    match submissions::check_answers(procedure, restored) {
        Ok(_) => {}
        Err(SubmissionError::Invalid(found)) => {
            return render_correction(
                page,
                correction,
                data,
                &found,
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
        Err(error) => return page.failure(error),
    }
    if !apply::signer_configured(state) {
        return page.failure(crate::identity::AuthError::ProviderDisabled);
    }
    let nonce = match signing::issue_nonce(connection, resident.id, &procedure.definition.id).await
    {
        Ok(nonce) => nonce,
        Err(error) => return page.failure(error),
    };
    let shown = signing::payload(procedure, data, resident.id, &nonce);
    let shown = serde_json::from_slice::<Value>(&shown)
        .ok()
        .and_then(|document| serde_json::to_string_pretty(&document).ok())
        .unwrap_or_default();
    let lang = page.lang;
    page.ok(
        "sign.html",
        context! {
            title => pick(&procedure.definition.title, lang),
            payload => shown,
            action => format!("/applications/{id}/correct"),
            idempotency_key => key,
            signing_nonce => nonce,
            answers => data.to_string(),
            back_href => format!("/applications/{id}/correct"),
        },
    )
}

/// What the signing page sends back.
struct Signed<'a> {
    key: String,
    nonce: &'a str,
    /// The corrected answers as the signing page showed them (My Numbers masked).
    answers: &'a str,
}

/// Signs the corrected answers through the configured signer and resubmits them with the
/// signature; the nonce is used up with the resubmission, so a signature counts once.
async fn send_signed(
    state: &AppState,
    page: &Page,
    connection: &mut diesel_async::AsyncPgConnection,
    resident: &Resident,
    correction: &Correction<'_>,
    signed: Signed<'_>,
) -> HttpResponse {
    let id = correction.detail.summary.id;
    let procedure = correction.procedure;
    let data = match serde_json::from_str::<Value>(signed.answers) {
        Ok(data) if data.is_object() && procedure.definition.assurance == Assurance::CardSign => {
            data
        }
        _ => return Page::see_other(&format!("/applications/{id}/correct")),
    };
    let restored = match submissions::restore_for_resubmission(
        connection,
        &state.sealer,
        resident.id,
        id,
        &data,
    )
    .await
    {
        Ok(restored) => restored,
        Err(error) => return page.failure(error),
    };
    let signature =
        match apply::sign_with_card(state, procedure, resident, &restored, signed.nonce).await {
            Ok(signature) => signature,
            Err(error) => return page.failure(error),
        };
    let vouched = if signature.evidence.facts.is_empty() {
        match apply::vouched_facts(connection, resident, procedure).await {
            Ok(vouched) => vouched,
            Err(error) => return page.failure(error),
        }
    } else {
        Some(VouchedFacts {
            source: FactsSource::Signature,
            issuer: signature.evidence.signer.issuer.clone(),
            facts: signature.evidence.facts.clone(),
            verified_at: signature.evidence.verified_at,
        })
    };
    let answered = submissions::resubmit(
        connection,
        &state.submissions(),
        submissions::Resubmission {
            resident_id: resident.id,
            assurance: resident.assurance,
            id,
            data: restored,
            signature: Some(signature),
            idempotency_key: Some(signed.key),
            vouched,
        },
    )
    .await;
    match answered {
        Ok(_) => Page::see_other(&format!("/applications/{id}")),
        Err(SubmissionError::Invalid(found)) => render_correction(
            page,
            correction,
            &data,
            &found,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(error) => page.failure(error),
    }
}

/// Whether the application may still be withdrawn; the refusal otherwise (the domain's, so the
/// page and the API say the same).
fn withdrawable(status: Status) -> Result<(), SubmissionError> {
    match crate::submissions::lifecycle::next(status, Action::Withdraw) {
        Some(_) => Ok(()),
        None => Err(SubmissionError::NotAllowed {
            from: status,
            action: Action::Withdraw,
        }),
    }
}

fn render_withdraw(
    page: &Page,
    detail: &SubmissionDetail,
    reason: &str,
    errors: Vec<ErrorLink>,
    status: StatusCode,
) -> HttpResponse {
    let lang = page.lang;
    let id = detail.summary.id;
    page.render(
        status,
        "withdraw.html",
        context! {
            title => pick(&detail.summary.procedure_title, lang),
            reference => detail.summary.reference.clone(),
            status => status_label(detail.summary.status, lang),
            reason,
            reason_error => errors.first().map(|error| error.message.clone()),
            errors,
            action => format!("/applications/{id}/withdraw"),
            back_href => format!("/applications/{id}"),
            max_reason => MAX_REASON_CHARS,
        },
    )
}

/// 取下げ, first the question: are you sure (and why, if you like).
#[get("/applications/{id}/withdraw")]
pub async fn withdraw_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let Visit { page, resident, .. } = signed_in!(request);
    let Some(id) = parse_id(&id) else {
        return page.not_found();
    };
    let mut connection = connect!(state, page);
    let detail =
        match submissions::get_for_resident(&mut connection, &state.submissions(), resident.id, id)
            .await
        {
            Ok(detail) => detail,
            Err(error) => return page.failure(error),
        };
    if let Err(refusal) = withdrawable(detail.summary.status) {
        return page.failure(refusal);
    }
    render_withdraw(&page, &detail, "", Vec::new(), StatusCode::OK)
}

/// 取下げ: done by the domain, which refuses it after a decision (the refusal page, 409).
#[post("/applications/{id}/withdraw")]
pub async fn withdraw(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let Visit {
        page,
        session,
        resident,
    } = signed_in!(request);
    let Some(id) = parse_id(&id) else {
        return page.not_found();
    };
    let input = match apply::read_form(&request, payload, &state).await {
        Ok(input) => input,
        Err(error) => return page.failure(error),
    };
    if !session.allows_post(input.get(CSRF_FIELD)) {
        return page.forbidden();
    }
    let reason = input.get("reason").unwrap_or_default().trim().to_owned();
    let lang = page.lang;
    let mut refusals = Vec::new();
    if reason.chars().count() > MAX_REASON_CHARS {
        refusals.push(FieldError::new("/reason", "too_long"));
    }
    if !crate::input::is_acceptable(&reason) {
        refusals.push(FieldError::new("/reason", crate::input::INVALID_CHARACTER));
    }
    let mut connection = connect!(state, page);
    if !refusals.is_empty() {
        let detail = match submissions::get_for_resident(
            &mut connection,
            &state.submissions(),
            resident.id,
            id,
        )
        .await
        {
            Ok(detail) => detail,
            Err(error) => return page.failure(error),
        };
        let errors = refusals
            .iter()
            .map(|error| ErrorLink {
                href: "#reason".to_owned(),
                message: pick(&error.message, lang),
            })
            .collect();
        return render_withdraw(
            &page,
            &detail,
            &reason,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    let reason = (!reason.is_empty()).then_some(reason);
    match submissions::withdraw(
        &mut connection,
        &state.submissions(),
        resident.id,
        id,
        reason,
    )
    .await
    {
        Ok(_) => Page::see_other(&format!("/applications/{id}")),
        Err(error) => page.failure(error),
    }
}

/// The interface texts of these pages: key, Japanese, English.
pub(super) const TEXTS: &[(&str, &str, &str)] = &[
    ("history_title", "申請履歴", "Your applications"),
    (
        "history_lead",
        "これまでに送信した申請と、その状況です。新しいものから順に表示しています。",
        "The applications you have sent and where each stands, newest first.",
    ),
    (
        "no_applications",
        "まだ申請はありません。",
        "You have not sent any applications yet.",
    ),
    ("status", "状況", "Status"),
    ("submitted_at", "申請日時", "Sent"),
    ("previous_page", "前のページ", "Previous page"),
    ("next_page", "次のページ", "Next page"),
    ("page_label", "ページ", "Page"),
    ("history_drafts", "下書き", "Drafts"),
    (
        "history_drafts_lead",
        "送信していない下書きは、続きから入力できます。",
        "Drafts not yet sent can be finished from where you left off.",
    ),
    ("all_drafts", "下書きの一覧", "All drafts"),
    ("application_title", "申請の詳細", "Application"),
    ("timeline", "これまでの経過", "What has happened"),
    ("by_you", "あなた", "You"),
    ("by_staff", "担当職員", "Staff"),
    ("by_system", "システム", "The system"),
    ("reason", "理由", "Reason"),
    ("your_answers", "申請内容", "Your answers"),
    ("files", "添付ファイル", "Attached files"),
    (
        "no_files",
        "添付ファイルはありません。",
        "No files are attached.",
    ),
    ("download_file", "ファイル", "File"),
    ("file_kind", "形式", "Type"),
    ("file_size", "大きさ", "Size"),
    (
        "viewed_title",
        "誰が私の情報を見たか",
        "Who viewed my data, and why",
    ),
    (
        "viewed_lead",
        "市の職員がこの申請を開いたときと、マイナンバーを表示したときは、必ず記録されます。マイナンバーの表示には理由の入力が必要です。",
        "Every time city staff open this application, and every time they reveal a My Number, it is recorded. Revealing a My Number requires a reason.",
    ),
    (
        "viewed_none",
        "まだ誰もこの申請を開いていません。",
        "Nobody has opened this application yet.",
    ),
    ("viewed_who", "職員", "Staff member"),
    ("viewed_what", "内容", "What"),
    ("viewed_when", "日時", "When"),
    ("access_view", "申請内容の閲覧", "Opened the application"),
    (
        "access_reveal",
        "マイナンバーの表示",
        "Revealed a My Number",
    ),
    ("access_download", "添付ファイルの表示", "Opened a file"),
    (
        "returned_title",
        "差し戻されています",
        "Returned for correction",
    ),
    (
        "returned_lead",
        "担当課から次の点の訂正を求められています。訂正して再送信してください。",
        "The division asks you to correct the following. Correct it and send it again.",
    ),
    (
        "clerk_comment",
        "担当課からのコメント",
        "Comment from the division",
    ),
    ("correct_button", "訂正する", "Correct the application"),
    (
        "correct_title",
        "申請内容の訂正",
        "Correct your application",
    ),
    (
        "correct_lead",
        "コメントのあった項目だけを表示しています。ほかの内容は申請したときのままです。",
        "Only the items with a comment are shown; everything else stays as you sent it.",
    ),
    ("resubmit", "訂正して再送信する", "Send the correction"),
    (
        "withdraw_link",
        "この申請を取り下げる",
        "Withdraw this application",
    ),
    ("withdraw_title", "申請の取下げ", "Withdraw the application"),
    (
        "withdraw_lead",
        "取り下げると、この申請は処理されません。元に戻すことはできません。必要な場合は、あらためて申請してください。",
        "Once withdrawn, this application will not be processed, and this cannot be undone. Apply again if you need to.",
    ),
    (
        "withdraw_reason",
        "取り下げる理由（任意）",
        "Why you are withdrawing (optional)",
    ),
    (
        "withdraw_reason_hint",
        "1000文字以内。担当課に伝わります。",
        "Up to 1000 characters. The division will see it.",
    ),
    ("withdraw_button", "取り下げる", "Withdraw"),
    (
        "cancel_withdraw",
        "取り下げずに戻る",
        "Keep the application and go back",
    ),
    ("account_title", "アカウント", "Account"),
    (
        "email_label",
        "通知を受け取るメールアドレス",
        "Email address for notices",
    ),
    (
        "email_hint",
        "申請の状況が変わったときにお知らせします。変更すると、新しいアドレスに確認のメールを送ります。",
        "We tell you when an application changes. When you change it, we send a confirmation email to the new address.",
    ),
    ("email_confirmed", "確認済み", "Confirmed"),
    ("email_none", "登録されていません", "None set"),
    (
        "email_pending",
        "確認待ち（届いたメールのリンクを開いてください）",
        "Waiting for confirmation (open the link in the email we sent)",
    ),
    ("notice_language", "お知らせの言語", "Language of notices"),
    ("japanese", "日本語", "Japanese"),
    ("english", "英語", "English"),
    ("save", "保存する", "Save"),
    (
        "email_confirm_title",
        "メールアドレスの確認",
        "Confirm your email address",
    ),
    (
        "email_confirm_lead",
        "このメールアドレスで通知を受け取る場合は、下のボタンを押してください。",
        "Press the button below to receive notices at this address.",
    ),
    ("email_confirm_button", "確認する", "Confirm"),
    (
        "email_confirmed_done",
        "メールアドレスを確認しました。これからの通知はこのアドレスに届きます。",
        "Your email address is confirmed. Notices will go to it from now on.",
    ),
    (
        "email_confirm_invalid",
        "確認用のリンクが無効か、有効期限（24時間）が切れています。アカウントのページからもう一度メールアドレスを登録してください。",
        "The confirmation link is invalid or has expired (24 hours). Set the email address again from your account page.",
    ),
    ("saved", "保存しました。", "Saved."),
];
