//! Applying on the pages: start (a server draft), one question page per definition page (the
//! draft saved on every 「次へ」), the resident's drafts, 申請内容の確認 and 受付完了.
//!
//! Everything goes through the domain (`crate::submissions`, `crate::forms`): the draft logic and
//! its limits, the validator, attachments, idempotent submission. The confirm form carries an
//! Idempotency-Key derived from the draft's id and last change: every tab, back button and double
//! tap that sends the same answers sends the same key, so one application is made.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use futures_util::StreamExt;
use minijinja::{Value as Template, context};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::lang::Lang;
use super::questions::{self, FormInput, Vouched};
use super::render::Page;
use super::sign_in::{Resident, Visit, visit};
use crate::forms::lint::city_today;
use crate::forms::model::{Definition, FieldType};
use crate::forms::validate::{self, CheckOptions};
use crate::forms::{Assurance, Procedure};
use crate::identity::AuthError;
use crate::identity::facts::{self, VouchedFacts};
use crate::messages::{FieldError, Localized};
use crate::state::AppState;
use crate::submissions::{
    self, CardSignature, NewSubmission, SubmissionError, attachments, drafts, signing,
};

fn pick(text: &Localized, lang: Lang) -> String {
    match lang {
        Lang::Ja => text.ja.clone(),
        Lang::En => text.en.clone(),
    }
}

/// Runs `work` with a database connection; a pool or database failure is the 503 page.
macro_rules! connect {
    ($state:expr, $page:expr) => {
        match crate::db::connection(&$state.pool).await {
            Ok(connection) => connection,
            Err(error) => return $page.failure(error),
        }
    };
}

/// Whether the resident's sign-in is strong enough to apply for `procedure` (a card-sign
/// procedure needs the card sign-in, and its signature at the end).
fn strong_enough(procedure: &Procedure, resident: &Resident) -> bool {
    let needed = procedure.definition.assurance.min(Assurance::CardAuth);
    resident.assurance >= needed
}

fn needs_card(page: &Page, procedure: &Procedure) -> HttpResponse {
    let lang = page.lang;
    page.render(
        StatusCode::FORBIDDEN,
        "refused.html",
        context! {
            message => format!("{} {}", pick(&procedure.definition.title, lang), lang.text("needs_card")),
        },
    )
}

#[derive(Serialize)]
pub(super) struct DraftLink {
    href: String,
    title: String,
    updated: String,
    expires: String,
}

pub(super) fn city_time(at: chrono::DateTime<chrono::Utc>) -> String {
    let local = at + chrono::Duration::hours(9);
    local.format("%Y-%m-%d %H:%M").to_string()
}

pub(super) fn draft_link(state: &AppState, draft: &drafts::Draft, lang: Lang) -> DraftLink {
    let title = state.catalog.get(&draft.procedure_id).map_or_else(
        || draft.procedure_id.clone(),
        |p| pick(&p.definition.title, lang),
    );
    DraftLink {
        href: format!("/drafts/{}/pages/1", draft.id),
        title,
        updated: city_time(draft.updated_at),
        expires: city_time(draft.expires_at),
    }
}

/// Before the first question: the resident's drafts of this procedure to carry on with, and
/// the button that starts a new one.
#[get("/procedures/{id}/apply")]
pub async fn apply_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let Visit { page, resident, .. } = match visit(&request).await {
        Ok(visit) => visit,
        Err(answer) => return answer,
    };
    let Some(procedure) = state.catalog.get(&id) else {
        return page.not_found();
    };
    if !strong_enough(procedure, &resident) {
        return needs_card(&page, procedure);
    }
    let mut connection = connect!(state, page);
    let drafts = match drafts::list(&mut connection, &state.sealer, resident.id).await {
        Ok(drafts) => drafts,
        Err(error) => return page.failure(error),
    };
    let lang = page.lang;
    let drafts: Vec<DraftLink> = drafts
        .iter()
        .filter(|draft| draft.procedure_id == procedure.definition.id)
        .map(|draft| draft_link(&state, draft, lang))
        .collect();
    page.ok(
        "apply.html",
        context! {
            title => pick(&procedure.definition.title, lang),
            procedure_id => procedure.definition.id.clone(),
            drafts,
        },
    )
}

/// Starts an application: a new server draft, then its first page.
#[post("/procedures/{id}/apply")]
pub async fn start(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let Visit {
        page,
        session,
        resident,
    } = match visit(&request).await {
        Ok(visit) => visit,
        Err(answer) => return answer,
    };
    let input = match read_form(&request, payload, &state).await {
        Ok(input) => input,
        Err(error) => return page.failure(error),
    };
    if !session.allows_post(input.get(super::session::CSRF_FIELD)) {
        return page.forbidden();
    }
    let Some(procedure) = state.catalog.get(&id) else {
        return page.not_found();
    };
    if !strong_enough(procedure, &resident) {
        return needs_card(&page, procedure);
    }
    let mut connection = connect!(state, page);
    let draft = drafts::save(
        &mut connection,
        &state.submissions(),
        state.draft_limits(),
        resident.id,
        None,
        &procedure.definition.id,
        &Value::Object(Map::new()),
    )
    .await;
    match draft {
        Ok(draft) => Page::see_other(&format!("/drafts/{}/pages/1", draft.id)),
        Err(error) => page.failure(error),
    }
}

/// The resident's saved drafts, on any device they sign in on.
#[get("/drafts")]
pub async fn list_drafts(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Visit { page, resident, .. } = match visit(&request).await {
        Ok(visit) => visit,
        Err(answer) => return answer,
    };
    let mut connection = connect!(state, page);
    let drafts = match drafts::list(&mut connection, &state.sealer, resident.id).await {
        Ok(drafts) => drafts,
        Err(error) => return page.failure(error),
    };
    let lang = page.lang;
    let drafts: Vec<DraftLink> = drafts
        .iter()
        .map(|draft| draft_link(&state, draft, lang))
        .collect();
    page.ok("drafts.html", context! { drafts })
}

/// A draft with its procedure, if it is the resident's.
struct Loaded<'a> {
    draft: drafts::Draft,
    procedure: &'a Procedure,
}

async fn load<'a>(
    state: &'a AppState,
    connection: &mut diesel_async::AsyncPgConnection,
    resident: &Resident,
    id: Uuid,
) -> Result<Loaded<'a>, SubmissionError> {
    let draft = drafts::get(connection, &state.sealer, resident.id, id).await?;
    let procedure = state
        .catalog
        .get(&draft.procedure_id)
        .ok_or(SubmissionError::NotFound)?;
    Ok(Loaded { draft, procedure })
}

/// The answers as conditions see them (normalised, hidden ones gone) when they check; as
/// stored otherwise.
fn condition_data(definition: &Definition, data: &Value) -> Value {
    let options = CheckOptions {
        today: city_today(),
        partial: true,
    };
    match validate::validate(definition, data, options) {
        Ok(validated) => Value::Object(validated.data),
        Err(_) => data.clone(),
    }
}

/// Indexes (0-based) of the pages shown for these answers.
fn shown_pages(definition: &Definition, data: &Value) -> Vec<usize> {
    let seen = condition_data(definition, data);
    definition
        .pages
        .iter()
        .enumerate()
        .filter(|(_, page)| questions::page_shown(page, &seen))
        .map(|(index, _)| index)
        .collect()
}

/// The facts the provider vouched for at sign-in, for procedures that need an identity.
pub(super) async fn vouched_facts(
    connection: &mut diesel_async::AsyncPgConnection,
    resident: &Resident,
    procedure: &Procedure,
) -> Result<Option<VouchedFacts>, SubmissionError> {
    if procedure.definition.assurance < Assurance::CardAuth {
        return Ok(None);
    }
    let Some(session) = resident.session else {
        return Ok(None);
    };
    facts::of_session(connection, session, resident.id)
        .await
        .map_err(|error| SubmissionError::Database(error.into()))
}

/// The answers the card vouched for, filled in read-only: the applicant's name and date of birth
/// (the address stays editable, since the card carries no postal code).
fn fixed_answers(definition: &Definition, vouched: Option<&VouchedFacts>, lang: Lang) -> Vouched {
    let Some(vouched) = vouched else {
        return Vouched::default();
    };
    let has = |id: &str, kind: FieldType| {
        definition
            .pages
            .iter()
            .flat_map(|page| page.fields.iter())
            .any(|field| field.id == id && field.kind() == kind)
    };
    let mut fixed = Vec::new();
    if let Some(name) = &vouched.facts.name
        && has("applicant_name", FieldType::Text)
    {
        fixed.push((
            "applicant_name".to_owned(),
            name.clone(),
            Value::String(name.clone()),
        ));
    }
    if let Some(birth) = vouched
        .facts
        .birth_date
        .as_deref()
        .and_then(|text| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        && has("applicant_birth_date", FieldType::Date)
    {
        let text = birth.format("%Y-%m-%d").to_string();
        fixed.push((
            "applicant_birth_date".to_owned(),
            format!("{text}（{}）", crate::forms::wareki::format(birth)),
            Value::String(text),
        ));
    }
    Vouched {
        fixed,
        source: lang.text("vouched_source").to_owned(),
    }
}

/// The city's address for `prefill: city` fields: `portal.city_address`, else the catalog's city.
fn city_address(state: &AppState) -> questions::CityAddress {
    let portal = &state.settings.portal;
    let address = if portal.city_address.is_empty() {
        state
            .catalog
            .organisation
            .city
            .as_ref()
            .map(|city| city.address.clone())
            .unwrap_or_default()
    } else {
        portal.city_address.clone()
    };
    questions::CityAddress {
        postal_code: portal.city_postal_code.clone(),
        address,
    }
}

/// Puts the vouched answers into `data`; and, to be drawn on the page that asks for it, the
/// card's address where none was typed yet.
fn apply_fixed(
    data: &mut Map<String, Value>,
    fixed: &Vouched,
    vouched: Option<&VouchedFacts>,
    page: Option<&crate::forms::model::Page>,
) {
    for (id, _, value) in &fixed.fixed {
        data.insert(id.clone(), value.clone());
    }
    let asks_address =
        page.is_some_and(|page| page.fields.iter().any(|f| f.id == "applicant_address"));
    if let Some(address) = vouched.and_then(|v| v.facts.address.as_deref())
        && asks_address
        && !fixed.fixed.is_empty()
        && !data.contains_key("applicant_address")
    {
        data.insert(
            "applicant_address".to_owned(),
            serde_json::json!({ "address": address }),
        );
    }
}

#[derive(Serialize)]
pub(super) struct ErrorLink {
    pub(super) href: String,
    pub(super) message: String,
}

pub(super) fn error_links(
    widgets: &[questions::Widget],
    errors: &[FieldError],
    lang: Lang,
) -> Vec<ErrorLink> {
    fn walk(widgets: &[questions::Widget], out: &mut Vec<(String, String)>) {
        for widget in widgets {
            out.push((widget.id.clone(), widget.focus.clone()));
            for member in &widget.members {
                walk(&member.widgets, out);
            }
        }
    }
    let mut inputs = Vec::new();
    walk(widgets, &mut inputs);
    let mut links = Vec::new();
    for (id, focus) in &inputs {
        for error in errors {
            let target = questions::dom_id(&error.path);
            // Sub-parts (an address's postal code) have inputs of their own.
            let href = if &target == id {
                focus.clone()
            } else if target.starts_with(&format!("{id}-")) && !widgets_have(&inputs, &target) {
                target
            } else {
                continue;
            };
            links.push(ErrorLink {
                href: format!("#{href}"),
                message: pick(&error.message, lang),
            });
        }
    }
    links
}

fn widgets_have(inputs: &[(String, String)], id: &str) -> bool {
    inputs.iter().any(|(known, _)| known == id)
}

struct QuestionPage<'a> {
    page: &'a Page,
    draft_id: Uuid,
    procedure: &'a Procedure,
    number: usize,
    data: &'a Value,
    errors: &'a [FieldError],
    fixed: &'a Vouched,
}

fn render_question(view: QuestionPage<'_>, status: StatusCode) -> HttpResponse {
    let QuestionPage {
        page,
        draft_id,
        procedure,
        number,
        data,
        errors,
        fixed,
    } = view;
    let lang = page.lang;
    let definition = &procedure.definition;
    let Some(page_definition) = definition.pages.get(number - 1) else {
        return page.not_found();
    };
    let widgets = questions::widgets(definition, page_definition, data, errors, fixed, lang);
    let error_links = error_links(&widgets, errors, lang);
    let shown = shown_pages(definition, data);
    let position = shown.iter().position(|index| *index == number - 1);
    let back_href = match position {
        Some(at) if at > 0 => format!("/drafts/{draft_id}/pages/{}", shown[at - 1] + 1),
        _ => format!("/procedures/{}/apply", definition.id),
    };
    let multipart = page_definition.fields.iter().any(|field| {
        field.kind() == FieldType::File || field.fields.iter().any(|f| f.kind() == FieldType::File)
    });
    page.render(
        status,
        "question.html",
        context! {
            procedure_title => pick(&definition.title, lang),
            page_title => pick(&page_definition.title, lang),
            step => position.map_or(number, |at| at + 1),
            steps => shown.len(),
            action => format!("/drafts/{draft_id}/pages/{number}"),
            widgets,
            errors => error_links,
            back_href,
            multipart,
        },
    )
}

/// One question page of a draft.
#[get("/drafts/{id}/pages/{number}")]
pub async fn question(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, usize)>,
) -> HttpResponse {
    let (id, number) = path.into_inner();
    let Visit { page, resident, .. } = match visit(&request).await {
        Ok(visit) => visit,
        Err(answer) => return answer,
    };
    let mut connection = connect!(state, page);
    let Loaded { draft, procedure } = match load(&state, &mut connection, &resident, id).await {
        Ok(loaded) => loaded,
        Err(error) => return page.failure(error),
    };
    if number == 0 || number > procedure.definition.pages.len() {
        return page.not_found();
    }
    let vouched = match vouched_facts(&mut connection, &resident, procedure).await {
        Ok(vouched) => vouched,
        Err(error) => return page.failure(error),
    };
    let fixed = fixed_answers(&procedure.definition, vouched.as_ref(), page.lang);
    let mut data = draft.data.as_object().cloned().unwrap_or_default();
    if let Some(page_definition) = procedure.definition.pages.get(number - 1) {
        questions::prefill_city(&mut data, page_definition, &city_address(&state));
    }
    apply_fixed(
        &mut data,
        &fixed,
        vouched.as_ref(),
        procedure.definition.pages.get(number - 1),
    );
    let data = Value::Object(data);
    // A page hidden by the answers so far leads on to the next one shown.
    let shown = shown_pages(&procedure.definition, &data);
    if !shown.contains(&(number - 1)) {
        return match shown.iter().find(|index| **index >= number) {
            Some(next) => Page::see_other(&format!("/drafts/{id}/pages/{}", next + 1)),
            None => Page::see_other(&format!("/drafts/{id}/confirm")),
        };
    }
    render_question(
        QuestionPage {
            page: &page,
            draft_id: id,
            procedure,
            number,
            data: &data,
            errors: &[],
            fixed: &fixed,
        },
        StatusCode::OK,
    )
}

/// The pointer of a file input's answer: `children[0].photo` → `/children/0/photo`.
pub(super) fn pointer_of(name: &str) -> String {
    format!("/{}", name.replace("].", "/").replace('[', "/"))
}

/// 「次へ」, or adding or removing a group member: reads the page's answers (and files), then
/// either shows the page again (errors, or the group changed) or saves the draft and goes on.
#[post("/drafts/{id}/pages/{number}")]
pub async fn save_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, usize)>,
    payload: web::Payload,
) -> HttpResponse {
    let (id, number) = path.into_inner();
    let Visit {
        page,
        session,
        resident,
    } = match visit(&request).await {
        Ok(visit) => visit,
        Err(answer) => return answer,
    };
    let input = match read_form(&request, payload, &state).await {
        Ok(input) => input,
        Err(error) => return page.failure(error),
    };
    if !session.allows_post(input.get(super::session::CSRF_FIELD)) {
        return page.forbidden();
    }
    let mut connection = connect!(state, page);
    let Loaded { draft, procedure } = match load(&state, &mut connection, &resident, id).await {
        Ok(loaded) => loaded,
        Err(error) => return page.failure(error),
    };
    let definition = &procedure.definition;
    let Some(page_definition) = number
        .checked_sub(1)
        .and_then(|index| definition.pages.get(index))
    else {
        return page.not_found();
    };
    let vouched = match vouched_facts(&mut connection, &resident, procedure).await {
        Ok(vouched) => vouched,
        Err(error) => return page.failure(error),
    };
    let fixed = fixed_answers(definition, vouched.as_ref(), page.lang);

    // Files first: each becomes an attachment of the draft, named in the answer by its id.
    let (uploaded, mut errors) = match store_uploads(
        &state,
        &mut connection,
        resident.id,
        attachments::UploadTarget::Draft(id),
        page_definition,
        &input.files,
    )
    .await
    {
        Ok(stored) => stored,
        Err(error) => return page.failure(error),
    };

    let previous = draft.data.as_object().cloned().unwrap_or_default();
    let mut data = previous.clone();
    for field in &page_definition.fields {
        if field.kind() == FieldType::Info {
            continue;
        }
        data.remove(&field.id);
        if let Some(value) =
            questions::read_field(field, &field.id, &input, previous.get(&field.id), &uploaded)
        {
            data.insert(field.id.clone(), value);
        }
    }
    apply_fixed(&mut data, &fixed, vouched.as_ref(), None);

    let action = input.get("action").unwrap_or("next");
    let changed_group = change_group(&mut data, page_definition, action);
    let view = |data: &Value, errors: &[FieldError], status| {
        render_question(
            QuestionPage {
                page: &page,
                draft_id: id,
                procedure,
                number,
                data,
                errors,
                fixed: &fixed,
            },
            status,
        )
    };
    if changed_group {
        // Keep what can be kept; the page comes back either way, without judging half-filled
        // answers yet.
        let data = Value::Object(data);
        let _ = drafts::save(
            &mut connection,
            &state.submissions(),
            state.draft_limits(),
            resident.id,
            Some(id),
            &definition.id,
            &data,
        )
        .await;
        return view(&data, &errors, StatusCode::OK);
    }

    let data = Value::Object(data);
    let own: Vec<&str> = questions::page_field_ids(page_definition);
    let on_this_page = |error: &FieldError| {
        own.iter().any(|field| {
            error.path == format!("/{field}") || error.path.starts_with(&format!("/{field}/"))
        })
    };
    let restored = match drafts::restore_for_submission(
        &mut connection,
        &state.sealer,
        resident.id,
        id,
        &definition.id,
        &data,
    )
    .await
    {
        Ok(restored) => restored,
        Err(error) => return page.failure(error),
    };
    if let Err(found) =
        validate::validate(definition, &restored, CheckOptions::complete(city_today()))
    {
        errors.extend(found.into_iter().filter(|error| on_this_page(error)));
    }
    if !errors.is_empty() {
        return view(&data, &errors, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let saved = drafts::save(
        &mut connection,
        &state.submissions(),
        state.draft_limits(),
        resident.id,
        Some(id),
        &definition.id,
        &data,
    )
    .await;
    let saved = match saved {
        Ok(saved) => saved,
        Err(SubmissionError::Invalid(found)) => {
            return view(&data, &found, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(error) => return page.failure(error),
    };
    let shown = shown_pages(definition, &saved.data);
    match shown.iter().find(|index| **index >= number) {
        Some(next) => Page::see_other(&format!("/drafts/{id}/pages/{}", next + 1)),
        None => Page::see_other(&format!("/drafts/{id}/confirm")),
    }
}

/// `add:<group>` appends an empty member, `remove:<group>:<index>` removes one. Returns whether
/// the action was one of them.
pub(super) fn change_group(
    data: &mut Map<String, Value>,
    page: &crate::forms::model::Page,
    action: &str,
) -> bool {
    let mut parts = action.split(':');
    let (verb, group) = (parts.next(), parts.next());
    let Some(group) = group.filter(|group| {
        page.fields
            .iter()
            .any(|field| field.id == *group && field.kind() == FieldType::Group)
    }) else {
        return false;
    };
    let members = data
        .entry(group.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(items) = members else {
        *members = Value::Array(Vec::new());
        return true;
    };
    match (
        verb,
        parts.next().and_then(|index| index.parse::<usize>().ok()),
    ) {
        (Some("add"), _) if items.len() < 100 => items.push(Value::Object(Map::new())),
        (Some("remove"), Some(index)) if index < items.len() => {
            items.remove(index);
        }
        _ => return false,
    }
    if items.is_empty() {
        data.remove(group);
    }
    true
}

/// The key of one attempt to send a draft as it is now: the same for every tab and every repeat
/// of the same answers, new once they change.
fn attempt_key(draft: &drafts::Draft) -> String {
    let digest = Sha256::digest(format!(
        "portal:{}:{}",
        draft.id,
        draft.updated_at.timestamp_micros()
    ));
    format!("portal-{}", hex::encode(&digest[..16]))
}

#[derive(Serialize)]
pub(super) struct Answer {
    label: String,
    value: String,
    members: Vec<Vec<Answer>>,
    change_href: String,
}

#[derive(Serialize)]
pub(super) struct PageAnswers {
    title: String,
    change_href: String,
    answers: Vec<Answer>,
}

pub(super) fn answers(
    definition: &Definition,
    data: &Value,
    draft_id: Uuid,
    lang: Lang,
) -> Vec<PageAnswers> {
    let seen = condition_data(definition, data);
    definition
        .pages
        .iter()
        .enumerate()
        .filter(|(_, page)| questions::page_shown(page, &seen))
        .map(|(index, page)| {
            let change_href = format!("/drafts/{draft_id}/pages/{}", index + 1);
            let answers = page
                .fields
                .iter()
                .filter(|field| field.kind() != FieldType::Info)
                .filter_map(|field| {
                    let value = data.get(&field.id)?;
                    let members = if field.kind() == FieldType::Group {
                        value
                            .as_array()
                            .map(|items| {
                                items
                                    .iter()
                                    .map(|item| {
                                        field
                                            .fields
                                            .iter()
                                            .filter_map(|inner| {
                                                let answer = item.get(&inner.id)?;
                                                Some(Answer {
                                                    label: inner
                                                        .label
                                                        .as_ref()
                                                        .map(|l| pick(l, lang))
                                                        .unwrap_or_default(),
                                                    value: questions::display(inner, answer, lang),
                                                    members: Vec::new(),
                                                    change_href: String::new(),
                                                })
                                            })
                                            .collect()
                                    })
                                    .collect()
                            })
                            .unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    Some(Answer {
                        label: field
                            .label
                            .as_ref()
                            .map(|l| pick(l, lang))
                            .unwrap_or_default(),
                        value: if field.kind() == FieldType::Group {
                            String::new()
                        } else {
                            questions::display(field, value, lang)
                        },
                        members,
                        change_href: format!(
                            "{change_href}#{}",
                            questions::dom_id(&format!("/{}", field.id))
                        ),
                    })
                })
                .collect();
            PageAnswers {
                title: pick(&page.title, lang),
                change_href,
                answers,
            }
        })
        .collect()
}

/// 申請内容の確認: every answer with a link back to its page, the fee and the documents; what
/// is still missing, if anything; and the button that sends it.
#[get("/drafts/{id}/confirm")]
pub async fn confirm(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> HttpResponse {
    let Visit { page, resident, .. } = match visit(&request).await {
        Ok(visit) => visit,
        Err(answer) => return answer,
    };
    let mut connection = connect!(state, page);
    let Loaded { draft, procedure } = match load(&state, &mut connection, &resident, *id).await {
        Ok(loaded) => loaded,
        Err(error) => return page.failure(error),
    };
    let restored = match drafts::restore_for_submission(
        &mut connection,
        &state.sealer,
        resident.id,
        draft.id,
        &draft.procedure_id,
        &draft.data,
    )
    .await
    {
        Ok(restored) => restored,
        Err(error) => return page.failure(error),
    };
    render_confirm(
        signer_configured(&state),
        &page,
        procedure,
        &draft,
        &restored,
        StatusCode::OK,
    )
}

fn render_confirm(
    can_sign: bool,
    page: &Page,
    procedure: &Procedure,
    draft: &drafts::Draft,
    restored: &Value,
    status: StatusCode,
) -> HttpResponse {
    let lang = page.lang;
    let definition = &procedure.definition;
    let checked = submissions::check_answers(procedure, restored);
    let shown = shown_pages(definition, &draft.data);
    let (fee, missing): (Option<u64>, Vec<ErrorLink>) = match &checked {
        Ok(validated) => (Some(validated.fee), Vec::new()),
        Err(SubmissionError::Invalid(errors)) => (
            None,
            errors
                .iter()
                .map(|error| {
                    let field = error.path.split('/').nth(1).unwrap_or_default();
                    let number = definition
                        .pages
                        .iter()
                        .position(|page| page.fields.iter().any(|f| f.id == field))
                        .map_or(1, |index| index + 1);
                    ErrorLink {
                        href: format!(
                            "/drafts/{}/pages/{number}#{}",
                            draft.id,
                            questions::dom_id(&error.path)
                        ),
                        message: pick(&error.message, lang),
                    }
                })
                .collect(),
        ),
        Err(_) => (None, Vec::new()),
    };
    let documents: Vec<Template> = definition
        .file_fields()
        .into_iter()
        .map(|field| {
            let count = count_files(&draft.data, &field.id);
            context! {
                label => field.label.as_ref().map(|l| pick(l, lang)).unwrap_or_default(),
                count,
            }
        })
        .collect();
    page.render(
        status,
        "confirm.html",
        context! {
            title => pick(&definition.title, lang),
            pages => answers(definition, &draft.data, draft.id, lang),
            fee => fee.map(|fee| if fee == 0 { lang.text("free").to_owned() } else { super::pages::yen(fee, lang) }),
            // Computed from the pinned definition as the submission will freeze it.
            breakdown => checked.as_ref().ok().and_then(|validated| validated.breakdown.as_ref()).map(|breakdown| super::payments::shown(breakdown, lang)),
            fee_note => definition.fee.as_ref().and_then(|fee| fee.note.as_ref()).map(|note| pick(note, lang)),
            documents,
            missing,
            complete => checked.is_ok(),
            card_sign => definition.assurance == Assurance::CardSign,
            can_sign,
            action => format!("/drafts/{}/submit", draft.id),
            sign_action => format!("/drafts/{}/sign", draft.id),
            idempotency_key => attempt_key(draft),
            back_href => shown.last().map_or_else(
                || format!("/drafts/{}/pages/1", draft.id),
                |last| format!("/drafts/{}/pages/{}", draft.id, last + 1),
            ),
        },
    )
}

fn count_files(value: &Value, field_id: &str) -> usize {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(key, inner)| {
                if key == field_id {
                    inner.as_array().map_or(0, Vec::len)
                } else {
                    count_files(inner, field_id)
                }
            })
            .sum(),
        Value::Array(items) => items.iter().map(|item| count_files(item, field_id)).sum(),
        _ => 0,
    }
}

/// Sends the draft. A repeat of an attempt (the same key) replays its answer, so it lands on the
/// same 受付完了 page; an attempt for answers changed since the confirm page was drawn goes back
/// to it; answers the domain finds incomplete go back to it with what is missing.
#[post("/drafts/{id}/submit")]
pub async fn submit(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    payload: web::Payload,
) -> HttpResponse {
    let id = *id;
    let Visit {
        page,
        session,
        resident,
    } = match visit(&request).await {
        Ok(visit) => visit,
        Err(answer) => return answer,
    };
    let input = match read_form(&request, payload, &state).await {
        Ok(input) => input,
        Err(error) => return page.failure(error),
    };
    if !session.allows_post(input.get(super::session::CSRF_FIELD)) {
        return page.forbidden();
    }
    let Some(key) = input
        .get("idempotency_key")
        .filter(|key| !key.is_empty() && key.len() <= 200)
        .map(str::to_owned)
    else {
        return Page::see_other(&format!("/drafts/{id}/confirm"));
    };
    let mut connection = connect!(state, page);
    match submissions::answer_for_key(&mut connection, resident.id, &key).await {
        Ok(Some(answer)) => return received_redirect(&answer.body),
        Ok(None) => {}
        Err(error) => return page.failure(error),
    }
    let Loaded { draft, procedure } = match load(&state, &mut connection, &resident, id).await {
        Ok(loaded) => loaded,
        Err(error) => return page.failure(error),
    };
    if attempt_key(&draft) != key {
        return Page::see_other(&format!("/drafts/{id}/confirm"));
    }
    let data = match drafts::restore_for_submission(
        &mut connection,
        &state.sealer,
        resident.id,
        id,
        &draft.procedure_id,
        &draft.data,
    )
    .await
    {
        Ok(data) => data,
        Err(error) => return page.failure(error),
    };
    let signature = if procedure.definition.assurance == Assurance::CardSign {
        let Some(nonce) = input.get("signing_nonce").filter(|nonce| !nonce.is_empty()) else {
            return Page::see_other(&format!("/drafts/{id}/confirm"));
        };
        match sign_with_card(&state, procedure, &resident, &data, nonce).await {
            Ok(signature) => Some(signature),
            Err(error) => return page.failure(error),
        }
    } else {
        None
    };
    let vouched = match signature.as_ref().filter(|s| !s.evidence.facts.is_empty()) {
        Some(signed) => Some(VouchedFacts {
            source: facts::FactsSource::Signature,
            issuer: signed.evidence.signer.issuer.clone(),
            facts: signed.evidence.facts.clone(),
            verified_at: signed.evidence.verified_at,
        }),
        None => match vouched_facts(&mut connection, &resident, procedure).await {
            Ok(vouched) => vouched,
            Err(error) => return page.failure(error),
        },
    };
    let stored = submissions::submit(
        &mut connection,
        &state.submissions(),
        NewSubmission {
            resident_id: resident.id,
            assurance: resident.assurance,
            procedure_id: procedure.definition.id.clone(),
            data: data.clone(),
            idempotency_key: key,
            signature,
            draft_id: Some(id),
            vouched,
        },
    )
    .await;
    match stored {
        Ok(answer) => received_redirect(&answer.body),
        Err(SubmissionError::Invalid(_)) => render_confirm(
            signer_configured(&state),
            &page,
            procedure,
            &draft,
            &data,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(error) => page.failure(error),
    }
}

/// Whether the pages can have a card-sign application signed (`portal.signer`).
pub(super) fn signer_configured(state: &AppState) -> bool {
    state.settings.portal.signer == "dev" && state.jpki.is_some()
}

/// Hands the exact signing payload (the answers as they will be stored, this resident's account
/// and the nonce issued for it) to the configured signer, and verifies what comes back as a
/// card's signature is verified.
pub(super) async fn sign_with_card(
    state: &AppState,
    procedure: &Procedure,
    resident: &Resident,
    data: &Value,
    nonce: &str,
) -> Result<CardSignature, crate::error::ApiError> {
    if !signer_configured(state) {
        return Err(AuthError::ProviderDisabled.into());
    }
    let payload = signing::payload(procedure, data, resident.id, nonce);
    let portal = &state.settings.portal;
    let cms = crate::identity::dev::sign(
        &portal.dev_signer_certificate,
        &portal.dev_signer_key,
        &payload,
    )
    .await
    .map_err(crate::error::ApiError::internal)?;
    let verifier = state.jpki.as_ref().ok_or(AuthError::ProviderDisabled)?;
    verifier.refresh_crl_if_stale().await;
    let evidence = verifier.verify_signature(&cms, &payload, chrono::Utc::now())?;
    Ok(CardSignature {
        cms,
        evidence,
        nonce: nonce.to_owned(),
    })
}

/// Before a card-sign application is sent: a nonce is issued, and the page shows exactly what
/// will be signed (My Numbers masked on the page only), with the button that signs and sends.
#[post("/drafts/{id}/sign")]
pub async fn sign(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    payload: web::Payload,
) -> HttpResponse {
    let id = *id;
    let Visit {
        page,
        session,
        resident,
    } = match visit(&request).await {
        Ok(visit) => visit,
        Err(answer) => return answer,
    };
    let input = match read_form(&request, payload, &state).await {
        Ok(input) => input,
        Err(error) => return page.failure(error),
    };
    if !session.allows_post(input.get(super::session::CSRF_FIELD)) {
        return page.forbidden();
    }
    let mut connection = connect!(state, page);
    let Loaded { draft, procedure } = match load(&state, &mut connection, &resident, id).await {
        Ok(loaded) => loaded,
        Err(error) => return page.failure(error),
    };
    if procedure.definition.assurance != Assurance::CardSign || !signer_configured(&state) {
        return page.not_found();
    }
    let key = attempt_key(&draft);
    if input.get("idempotency_key") != Some(key.as_str()) {
        return Page::see_other(&format!("/drafts/{id}/confirm"));
    }
    let restored = match drafts::restore_for_submission(
        &mut connection,
        &state.sealer,
        resident.id,
        id,
        &draft.procedure_id,
        &draft.data,
    )
    .await
    {
        Ok(restored) => restored,
        Err(error) => return page.failure(error),
    };
    if submissions::check_answers(procedure, &restored).is_err() {
        return Page::see_other(&format!("/drafts/{id}/confirm"));
    }
    let nonce =
        match signing::issue_nonce(&mut connection, resident.id, &procedure.definition.id).await {
            Ok(nonce) => nonce,
            Err(error) => return page.failure(error),
        };
    let shown = signing::payload(procedure, &draft.data, resident.id, &nonce);
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
            action => format!("/drafts/{id}/submit"),
            idempotency_key => key,
            signing_nonce => nonce,
            back_href => format!("/drafts/{id}/confirm"),
        },
    )
}

fn received_redirect(body: &Value) -> HttpResponse {
    match body.get("id").and_then(Value::as_str) {
        Some(id) => Page::see_other(&format!("/submissions/{id}/received")),
        None => Page::see_other("/drafts"),
    }
}

/// 受付完了: the reference number, what happens next, the due date.
#[get("/submissions/{id}/received")]
pub async fn received(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> HttpResponse {
    let Visit { page, resident, .. } = match visit(&request).await {
        Ok(visit) => visit,
        Err(answer) => return answer,
    };
    let mut connection = connect!(state, page);
    let detail = match submissions::get_for_resident(
        &mut connection,
        &state.submissions(),
        resident.id,
        *id,
    )
    .await
    {
        Ok(detail) => detail,
        Err(error) => return page.failure(error),
    };
    let lang = page.lang;
    let summary = &detail.summary;
    let division = state
        .catalog
        .get(&summary.procedure_id)
        .and_then(|p| {
            state
                .catalog
                .organisation
                .divisions
                .get(&p.definition.division)
        })
        .map(|division| pick(&division.name, lang));
    // Unpaid, it is not in the division's queue yet: "what next" is the payment.
    let awaiting_payment = summary.status == submissions::lifecycle::Status::AwaitingPayment;
    page.ok(
        "received.html",
        context! {
            title => pick(&summary.procedure_title, lang),
            reference => summary.reference.clone(),
            due_date => summary.due_date.map(|date| match lang {
                Lang::Ja => format!("{}（{}）", date.format("%Y-%m-%d"), crate::forms::wareki::format(date)),
                Lang::En => date.format("%Y-%m-%d").to_string(),
            }),
            fee => (summary.fee_yen > 0).then(|| super::pages::yen(summary.fee_yen as u64, lang)),
            division,
            awaiting_payment,
            pay_href => (awaiting_payment && state.payments.is_some()).then(|| format!("/applications/{}/pay", summary.id)),
        },
    )
}

/// Reads a posted form, URL-encoded or multipart (pages with file inputs), within the body
/// limits: the JSON limit for text, the attachment limit per file.
pub(super) async fn read_form(
    request: &HttpRequest,
    mut payload: web::Payload,
    state: &AppState,
) -> Result<FormInput, crate::error::ApiError> {
    let content_type = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text_limit = state.settings.server.max_json_body_bytes;
    if content_type.starts_with("multipart/form-data") {
        let file_limit = state.settings.submissions.max_attachment_mb * 1024 * 1024;
        let bound =
            std::time::Duration::from_secs(state.settings.server.upload_body_timeout_seconds);
        let reading = read_multipart(request, payload, text_limit, file_limit);
        return tokio::time::timeout(bound, reading)
            .await
            .unwrap_or_else(|_| Err(too_slow()));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| malformed())?;
        if body.len() + chunk.len() > text_limit {
            return Err(crate::error::handlers::payload_too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&body).map_err(|_| malformed())?;
    Ok(FormInput {
        pairs,
        files: Vec::new(),
    })
}

async fn read_multipart(
    request: &HttpRequest,
    payload: web::Payload,
    text_limit: usize,
    file_limit: usize,
) -> Result<FormInput, crate::error::ApiError> {
    let mut multipart = actix_multipart::Multipart::new(request.headers(), payload);
    let mut input = FormInput::default();
    let mut text_bytes = 0;
    while let Some(part) = multipart.next().await {
        let mut part = part.map_err(|_| malformed())?;
        let name = part.name().unwrap_or_default().to_owned();
        let is_file = part
            .content_disposition()
            .and_then(|disposition| disposition.get_filename())
            .is_some();
        let limit = if is_file { file_limit } else { text_limit };
        let mut bytes = Vec::new();
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|_| malformed())?;
            if bytes.len() + chunk.len() > limit {
                return Err(crate::error::handlers::payload_too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        if is_file {
            if !bytes.is_empty() {
                input.files.push((name, bytes));
            }
        } else {
            text_bytes += bytes.len();
            if text_bytes > text_limit {
                return Err(crate::error::handlers::payload_too_large());
            }
            let text = String::from_utf8(bytes).map_err(|_| malformed())?;
            input.pairs.push((name, text));
        }
    }
    Ok(input)
}

fn malformed() -> crate::error::ApiError {
    crate::error::ApiError::client(
        StatusCode::BAD_REQUEST,
        "request.invalid_form",
        "送信内容を読み取れませんでした。ページを開き直して、もう一度送信してください。",
        "We could not read what was sent. Reload the page and send it again.",
    )
}

fn too_slow() -> crate::error::ApiError {
    crate::error::ApiError::client(
        StatusCode::REQUEST_TIMEOUT,
        "request.body_timeout",
        "ファイルの送信に時間がかかりすぎたため中断しました。通信環境を確認して、もう一度送ってください。",
        "The file took too long to arrive; check the connection and send it again.",
    )
}

/// Stores a page's files as attachments of `target` (a draft, or a returned application being
/// corrected): the attachment ids by form field name, and a field error for each file refused.
/// Any other failure is the caller's to answer.
pub(super) async fn store_uploads(
    state: &AppState,
    connection: &mut diesel_async::AsyncPgConnection,
    resident_id: Uuid,
    target: attachments::UploadTarget,
    page_definition: &crate::forms::model::Page,
    files: &[(String, Vec<u8>)],
) -> Result<(HashMap<String, Vec<String>>, Vec<FieldError>), SubmissionError> {
    let mut uploaded: HashMap<String, Vec<String>> = HashMap::new();
    let mut errors: Vec<FieldError> = Vec::new();
    for (name, bytes) in files {
        let Some(field) = questions::file_field_of(page_definition, name) else {
            continue;
        };
        let stored = attachments::upload(
            connection,
            &state.catalog,
            &state.storage,
            attachments::Upload {
                resident_id,
                target,
                field_id: &field.id,
                bytes,
                max_per_draft: state.settings.submissions.max_attachments_per_draft,
                max_pending_bytes: state
                    .settings
                    .submissions
                    .max_pending_upload_mb_per_resident
                    * 1024
                    * 1024,
            },
        )
        .await;
        match stored {
            Ok(info) => uploaded
                .entry(name.clone())
                .or_default()
                .push(info.id.to_string()),
            Err(SubmissionError::Invalid(refusals)) => {
                errors.extend(refusals.into_iter().map(|refusal| FieldError {
                    path: pointer_of(name),
                    ..refusal
                }));
            }
            Err(SubmissionError::UploadQuota) => errors.push(FieldError {
                path: pointer_of(name),
                code: "invalid_attachment".to_owned(),
                message: Localized::new(
                    "保存できるファイルの容量を超えています。不要な下書きを削除してください。",
                    "You have reached the storage allowed for files; discard drafts you no longer need.",
                ),
            }),
            Err(error) => return Err(error),
        }
    }
    Ok((uploaded, errors))
}
