//! The public pages: home, the catalog and its search, a procedure's start page, the sign-in
//! and the accessibility statement.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::lang::Lang;
use super::render::Page;
use crate::forms::model::{Definition, Field};
use crate::forms::search::Search;
use crate::messages::Localized;
use crate::state::AppState;

/// Longer searches are refused with the error summary: no title is anywhere near this long.
const MAX_SEARCH_CHARS: usize = 100;

fn pick(text: &Localized, lang: Lang) -> String {
    match lang {
        Lang::Ja => text.ja.clone(),
        Lang::En => text.en.clone(),
    }
}

/// `1,500円` or `¥1,500`.
pub(super) fn yen(amount: u64, lang: Lang) -> String {
    let digits = amount.to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    format!(
        "{}{grouped}{}",
        lang.text("yen_before"),
        lang.text("yen_after")
    )
}

/// The fee as residents read it before they answer anything.
fn fee_text(definition: &Definition, lang: Lang) -> String {
    match &definition.fee {
        Some(fee) if fee.fixed.is_some_and(|amount| amount > 0) => {
            yen(fee.fixed.unwrap_or_default(), lang)
        }
        Some(fee) if fee.per_unit.is_some() => {
            let amount = fee.per_unit.as_ref().map_or(0, |unit| unit.amount);
            format!("{}{}", yen(amount, lang), lang.text("per_unit"))
        }
        Some(fee) if fee.computed.is_some() => lang.text("fee_computed").to_owned(),
        _ => lang.text("free").to_owned(),
    }
}

/// A procedure in a list, with what it needs.
#[derive(Serialize)]
struct Listed {
    id: String,
    title: String,
    summary: Option<String>,
    assurance: &'static str,
    fee: String,
    attachments: usize,
    processing_days: u32,
}

fn listed(definition: &Definition, lang: Lang) -> Listed {
    Listed {
        id: definition.id.clone(),
        title: pick(&definition.title, lang),
        summary: definition.summary.as_ref().map(|s| pick(s, lang)),
        assurance: definition.assurance.as_str(),
        fee: fee_text(definition, lang),
        attachments: definition.file_fields().len(),
        processing_days: definition.processing_days,
    }
}

#[derive(Serialize)]
struct CategoryLink {
    id: String,
    name: String,
    count: usize,
}

fn categories(state: &AppState, lang: Lang) -> Vec<CategoryLink> {
    let catalog = &state.catalog;
    catalog
        .organisation
        .categories
        .iter()
        .map(|(id, name)| CategoryLink {
            id: id.clone(),
            name: pick(name, lang),
            count: catalog
                .procedures
                .values()
                .filter(|p| &p.definition.category == id)
                .count(),
        })
        .filter(|category| category.count > 0)
        .collect()
}

#[get("/")]
pub async fn home(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let page = Page::new(&request);
    let categories = categories(&state, page.lang);
    page.ok("home.html", context! { categories, q => "" })
}

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    category: Option<String>,
}

/// The catalog: everything, one category, or a search.
#[get("/procedures")]
pub async fn procedures(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> HttpResponse {
    let page = Page::new(&request);
    let lang = page.lang;
    let q = query.q.clone().unwrap_or_default();
    let category = match &query.category {
        None => None,
        Some(id) => match state.catalog.organisation.categories.get(id) {
            Some(name) => Some(pick(name, lang)),
            None => return page.not_found(),
        },
    };
    if q.chars().count() > MAX_SEARCH_CHARS {
        let errors = vec![context! { href => "#q", message => lang.text("search_too_long") }];
        return page.render(
            StatusCode::BAD_REQUEST,
            "procedures.html",
            context! { q, errors, category, searched => true, results => Vec::<Listed>::new() },
        );
    }
    let search = Search::new(&q);
    let results: Vec<Listed> = state
        .catalog
        .procedures
        .values()
        .map(|procedure| &procedure.definition)
        .filter(|definition| {
            query
                .category
                .as_ref()
                .is_none_or(|id| &definition.category == id)
                && search.matches(definition)
        })
        .map(|definition| listed(definition, lang))
        .collect();
    page.ok(
        "procedures.html",
        context! { q, category, results, searched => !search.is_empty(), errors => Vec::<()>::new() },
    )
}

#[derive(Serialize)]
struct Attachment {
    label: String,
    help: Option<String>,
    kinds: String,
    size_mb: u32,
    max_files: Option<usize>,
    /// `required`, `optional` or `conditional`.
    need: &'static str,
}

fn attachment(field: &Field, lang: Lang) -> Attachment {
    Attachment {
        label: field
            .label
            .as_ref()
            .map_or_else(|| field.id.clone(), |label| pick(label, lang)),
        help: field.help.as_ref().map(|help| pick(help, lang)),
        kinds: field
            .accepted_kinds()
            .iter()
            .map(|kind| kind.label())
            .collect::<Vec<_>>()
            .join(", "),
        size_mb: field.size_limit_mb(),
        max_files: field.max_files,
        need: if field.required_if.is_some() || field.show_if.is_some() {
            "conditional"
        } else if field.required {
            "required"
        } else {
            "optional"
        },
    }
}

/// A procedure's start page: what it is, what to prepare, and the way in.
#[get("/procedures/{id}")]
pub async fn start_page(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let page = Page::new(&request);
    let lang = page.lang;
    let Some(procedure) = state.catalog.get(&id) else {
        return page.not_found();
    };
    let definition = &procedure.definition;
    let organisation = &state.catalog.organisation;
    let attachments: Vec<Attachment> = definition
        .file_fields()
        .into_iter()
        .map(|field| attachment(field, lang))
        .collect();
    let start_href = format!("/procedures/{}/apply", definition.id);
    page.ok(
        "procedure.html",
        context! {
            procedure => listed(definition, lang),
            category => organisation.categories.get(&definition.category).map(|name| pick(name, lang)),
            division => organisation.divisions.get(&definition.division).map(|division| pick(&division.name, lang)),
            legal_basis => definition.legal_basis.clone(),
            fee_note => definition.fee.as_ref().and_then(|fee| fee.note.as_ref()).map(|note| pick(note, lang)),
            attachments,
            start_href,
        },
    )
}

#[get("/accessibility")]
pub async fn accessibility(request: HttpRequest) -> HttpResponse {
    Page::new(&request).ok("accessibility.html", context! {})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_the_code_asks_for_exists() {
        for key in [
            "yen_before",
            "yen_after",
            "per_unit",
            "fee_computed",
            "free",
            "search_too_long",
        ] {
            assert!(Lang::Ja.texts().contains_key(key), "{key}");
        }
    }

    #[test]
    fn yen_groups_thousands_in_both_languages() {
        assert_eq!(yen(300, Lang::Ja), "300円");
        assert_eq!(yen(1500, Lang::Ja), "1,500円");
        assert_eq!(yen(1234567, Lang::En), "¥1,234,567");
    }
}
