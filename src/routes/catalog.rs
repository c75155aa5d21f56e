//! The public catalog: categories, procedures, their definitions and JSON Schemas.
//!
//! Served from memory with strong ETags, so phones on slow networks revalidate for free.

use actix_web::http::header::{self, ETag, EntityTag};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::ResidentAuth;
use crate::error::ApiError;
use crate::forms::Catalog;
use crate::forms::lint::city_today;
use crate::forms::model::{Assurance, Definition};
use crate::forms::search::Search;
use crate::forms::validate::{self, CheckOptions};
use crate::messages::Localized;
use crate::state::AppState;
use crate::submissions::signing;

#[derive(Serialize, ToSchema)]
pub struct Category {
    pub id: String,
    pub name: Text,
    /// Procedures in this category.
    pub count: usize,
}

/// A text in both languages, or in the one asked for with `lang`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum Text {
    Both(Localized),
    One(String),
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Ja,
    En,
}

fn text(value: &Localized, language: Option<Language>) -> Text {
    match language {
        None => Text::Both(value.clone()),
        Some(Language::Ja) => Text::One(value.ja.clone()),
        Some(Language::En) => Text::One(value.en.clone()),
    }
}

#[derive(Deserialize, IntoParams)]
pub struct CategoriesQuery {
    /// `ja` or `en`: texts as plain strings in that language.
    pub lang: Option<Language>,
}

/// Categories with the number of procedures in each.
#[utoipa::path(tag = "catalog", params(CategoriesQuery), responses((status = 200, body = [Category]), (status = 304)))]
#[get("/categories")]
pub async fn list_categories(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<CategoriesQuery>,
) -> HttpResponse {
    let catalog = &state.catalog;
    let categories: Vec<Category> = catalog
        .organisation
        .categories
        .iter()
        .map(|(id, name)| Category {
            id: id.clone(),
            name: text(name, query.lang),
            count: catalog
                .procedures
                .values()
                .filter(|p| &p.definition.category == id)
                .count(),
        })
        .collect();
    cached(&request, &catalog.etag, || {
        HttpResponse::Ok().json(categories)
    })
}

#[derive(Deserialize, IntoParams)]
pub struct ProceduresQuery {
    /// Words to find in the Japanese or English title (full-width input is fine; hiragana finds katakana).
    pub q: Option<String>,
    /// A category id.
    pub category: Option<String>,
    /// Only procedures needing exactly this assurance level.
    pub auth: Option<Assurance>,
    /// `ja` or `en`: texts as plain strings in that language.
    pub lang: Option<Language>,
}

#[derive(Serialize, ToSchema)]
pub struct ProcedureSummary {
    pub id: String,
    pub title: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Text>,
    pub category: String,
    pub division: String,
    pub assurance: Assurance,
    /// 標準処理期間, business days.
    pub processing_days: u32,
    /// One of the 26 child-rearing and care procedures every municipality offers online.
    pub national: bool,
    /// The fee if it does not depend on the answers (per unit for per-unit fees), in yen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_yen: Option<u64>,
}

fn summary(definition: &Definition, language: Option<Language>) -> ProcedureSummary {
    let fee_yen = definition.fee.as_ref().map_or(Some(0), |fee| {
        fee.fixed
            .or_else(|| fee.per_unit.as_ref().map(|unit| unit.amount))
    });
    ProcedureSummary {
        id: definition.id.clone(),
        title: text(&definition.title, language),
        summary: definition.summary.as_ref().map(|s| text(s, language)),
        category: definition.category.clone(),
        division: definition.division.clone(),
        assurance: definition.assurance,
        processing_days: definition.processing_days,
        national: definition.national,
        fee_yen,
    }
}

/// The unfiltered listing, serialised once per language form, and gzipped once too. The catalog
/// does not change while the server runs, and building and serialising ~170 summaries (~100 KB)
/// on every request cost several times what actix-web itself does (docs/BENCHMARKS.md); on a
/// phone the 4× smaller gzip matters more than any server figure.
pub struct Listing {
    both: Serialised,
    ja: Serialised,
    en: Serialised,
}

struct Serialised {
    json: web::Bytes,
    gzip: web::Bytes,
}

impl Serialised {
    fn new(list: &[ProcedureSummary]) -> Self {
        use std::io::Write;
        let json = serde_json::to_vec(list).unwrap_or_default();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let gzip = encoder
            .write_all(&json)
            .and_then(|()| encoder.finish())
            .unwrap_or_default();
        Self {
            json: json.into(),
            gzip: gzip.into(),
        }
    }
}

impl Listing {
    pub fn new(catalog: &Catalog) -> Self {
        let serialise = |language| {
            let list: Vec<ProcedureSummary> = catalog
                .procedures
                .values()
                .map(|procedure| summary(&procedure.definition, language))
                .collect();
            Serialised::new(&list)
        };
        Self {
            both: serialise(None),
            ja: serialise(Some(Language::Ja)),
            en: serialise(Some(Language::En)),
        }
    }

    fn get(&self, language: Option<Language>) -> &Serialised {
        match language {
            None => &self.both,
            Some(Language::Ja) => &self.ja,
            Some(Language::En) => &self.en,
        }
    }
}

/// Whether the client takes gzip (`Accept-Encoding`, a `q=0` refusing it).
fn accepts_gzip(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|parameter| {
                parameter
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

/// The catalog, filtered.
#[utoipa::path(tag = "catalog", params(ProceduresQuery), responses((status = 200, body = [ProcedureSummary]), (status = 304)))]
#[get("/procedures")]
pub async fn list_procedures(
    request: HttpRequest,
    state: web::Data<AppState>,
    listing: web::Data<Listing>,
    query: web::Query<ProceduresQuery>,
) -> HttpResponse {
    let search = Search::new(query.q.as_deref().unwrap_or_default());
    // The ETag varies with the query string, since the body does.
    let etag = format!(
        "{}-{:x}",
        state.catalog.etag.trim_end_matches('"'),
        fxhash(request.query_string())
    ) + "\"";
    // The whole catalog is the common request: served from the listing serialised at startup.
    if search.is_empty() && query.category.is_none() && query.auth.is_none() {
        let serialised = listing.get(query.lang);
        let gzip = accepts_gzip(&request);
        // Another representation, another strong ETag (RFC 9110 §8.8.3).
        let etag = if gzip {
            format!("{}-gzip\"", etag.trim_end_matches('"'))
        } else {
            etag
        };
        return cached(&request, &etag, || {
            let mut response = HttpResponse::Ok();
            response
                .content_type(header::ContentType::json())
                .insert_header((header::VARY, "Accept-Encoding"));
            if gzip {
                response
                    .insert_header((header::CONTENT_ENCODING, "gzip"))
                    .body(serialised.gzip.clone())
            } else {
                response.body(serialised.json.clone())
            }
        });
    }
    let matches = |definition: &Definition| {
        search.matches(definition)
            && query
                .category
                .as_ref()
                .is_none_or(|category| &definition.category == category)
            && query.auth.is_none_or(|auth| definition.assurance == auth)
    };
    let list: Vec<ProcedureSummary> = state
        .catalog
        .procedures
        .values()
        .map(|procedure| &procedure.definition)
        .filter(|definition| matches(definition))
        .map(|definition| summary(definition, query.lang))
        .collect();
    cached(&request, &etag, || HttpResponse::Ok().json(list))
}

fn fxhash(text: &str) -> u64 {
    // FNV-1a: a stable, dependency-free hash for cache keys (not for security).
    text.bytes().fold(0xcbf29ce484222325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3)
    })
}

#[derive(Serialize, ToSchema)]
pub struct ProcedureDetail {
    /// The definition as written in its file (blocks resolved, examples left out).
    pub definition: Definition,
    /// The version a submission made now will pin.
    pub content_hash: String,
    pub division_name: Option<Localized>,
    pub category_name: Option<Localized>,
}

/// One procedure's full definition: pages, fields, conditions, fees.
#[utoipa::path(
    tag = "catalog",
    params(("id" = String, Path, description = "Procedure id")),
    responses(
        (status = 200, body = ProcedureDetail),
        (status = 304),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/procedures/{id}")]
pub async fn get_procedure(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let catalog = &state.catalog;
    let procedure = catalog.get(&id).ok_or_else(ApiError::not_found)?;
    let definition = &procedure.definition;
    Ok(cached(&request, &procedure.etag(), || {
        HttpResponse::Ok().json(ProcedureDetail {
            definition: definition.clone(),
            content_hash: procedure.content_hash.clone(),
            division_name: catalog
                .organisation
                .divisions
                .get(&definition.division)
                .map(|division| division.name.clone()),
            category_name: catalog
                .organisation
                .categories
                .get(&definition.category)
                .cloned(),
        })
    }))
}

/// JSON Schema (2020-12) of the data a submission must carry.
#[utoipa::path(
    tag = "catalog",
    params(("id" = String, Path, description = "Procedure id")),
    responses(
        (status = 200, description = "A JSON Schema", content_type = "application/schema+json", body = Object),
        (status = 304),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/procedures/{id}/schema")]
pub async fn get_procedure_schema(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let procedure = state.catalog.get(&id).ok_or_else(ApiError::not_found)?;
    Ok(cached(&request, &procedure.etag(), || {
        HttpResponse::Ok()
            .content_type("application/schema+json")
            .json(&procedure.schema)
    }))
}

/// Answers 304 when the client already holds this version, else builds the body.
fn cached(request: &HttpRequest, etag: &str, build: impl FnOnce() -> HttpResponse) -> HttpResponse {
    let tag = EntityTag::new_strong(etag.trim_matches('"').to_owned());
    // RFC 9110 §13.1.2: If-None-Match uses weak comparison; `*` matches any version.
    let fresh = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|candidate| candidate.trim().trim_start_matches("W/"))
        .any(|candidate| candidate == "*" || candidate.trim_matches('"') == tag.tag());
    let mut response = if fresh {
        HttpResponse::NotModified().finish()
    } else {
        build()
    };
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("public, max-age=60, must-revalidate"),
    );
    if let Ok(value) = header::HeaderValue::from_str(&ETag(tag).to_string()) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

#[derive(Deserialize, IntoParams)]
pub struct ValidateQuery {
    /// The signed-in resident's draft these answers come from: My Numbers it shows masked are
    /// put back before checking (and in the bytes to sign).
    pub draft: Option<uuid::Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckedAnswers {
    /// The answers as they would be stored: normalised, hidden fields removed.
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
    /// The fee these answers imply, in yen.
    pub fee_yen: u64,
    /// Every line (fees, postage, claimed exemptions) and the total to pay; absent when free.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fee_breakdown: Option<crate::forms::fees::FeeBreakdown>,
    pub content_hash: String,
    /// For card-sign procedures, when a resident is signed in: the exact bytes (base64) to sign
    /// with the card for these answers. They name the resident's account and a single-use nonce.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_payload: Option<String>,
    /// The nonce inside `signing_payload`; send it back with the signature. Valid 30 minutes, once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_nonce: Option<String>,
}

/// Checks answers against the current definition without submitting anything, so a client can
/// show every error (in ja and en) and the fee before the resident signs.
#[utoipa::path(
    tag = "catalog",
    params(("id" = String, Path, description = "Procedure id"), ValidateQuery),
    request_body(content = Object, description = "The answers, keyed by field id"),
    responses(
        (status = 200, body = CheckedAnswers),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/procedures/{id}/validate")]
pub async fn validate_answers(
    state: web::Data<AppState>,
    resident: Option<ResidentAuth>,
    id: web::Path<String>,
    query: web::Query<ValidateQuery>,
    answers: web::Json<serde_json::Value>,
) -> Result<web::Json<CheckedAnswers>, ApiError> {
    let procedure = state.catalog.get(&id).ok_or_else(ApiError::not_found)?;
    let mut answers = answers.into_inner();
    if let (Some(draft), Some(resident)) = (query.draft, &resident) {
        let mut connection = crate::db::connection(&state.pool).await?;
        answers = crate::submissions::drafts::restore_for_submission(
            &mut connection,
            &state.sealer,
            resident.id,
            draft,
            &procedure.definition.id,
            &answers,
        )
        .await?;
    }
    let options = CheckOptions::complete(city_today());
    let accepted = validate::validate(&procedure.definition, &answers, options)
        .map_err(|errors| ApiError::validation("form.invalid", errors))?;
    let mut checked = CheckedAnswers {
        data: accepted.data,
        fee_yen: accepted.fee,
        fee_breakdown: accepted.breakdown,
        content_hash: procedure.content_hash.clone(),
        signing_payload: None,
        signing_nonce: None,
    };
    if let Some(resident) =
        resident.filter(|_| procedure.definition.assurance == Assurance::CardSign)
    {
        let mut connection = crate::db::connection(&state.pool).await?;
        let nonce =
            signing::issue_nonce(&mut connection, resident.id, &procedure.definition.id).await?;
        let payload = signing::payload(procedure, &answers, resident.id, &nonce);
        checked.signing_payload = Some(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            payload,
        ));
        checked.signing_nonce = Some(nonce);
    }
    Ok(web::Json(checked))
}
