//! What a resubmission changed: revision `n` against the one before, through the API's audited
//! call (My Numbers stay masked), each changed answer named by its label, old beside new.

use actix_web::{HttpRequest, HttpResponse, get, web};
use minijinja::context;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::{clerk, pick};
use crate::error::ApiError;
use crate::forms::model::{Definition, Field};
use crate::queues::processing;
use crate::state::AppState;
use crate::web::lang::Lang;

#[derive(Serialize)]
struct Row {
    path: String,
    label: String,
    old: Option<String>,
    new: Option<String>,
}

fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// The label of the answer at `path` (`/children/1/name` → 「子 2 / 氏名」), the pointer itself
/// where the definition has no such field.
fn label_of(definition: &Definition, path: &str, lang: Lang) -> String {
    let mut fields: Vec<&Field> = definition
        .pages
        .iter()
        .flat_map(|page| page.fields.iter())
        .collect();
    let mut parts = Vec::new();
    let mut segments = path.trim_start_matches('/').split('/').peekable();
    while let Some(segment) = segments.next() {
        let Some(field) = fields.iter().find(|field| field.id == segment).copied() else {
            parts.push(segment.to_owned());
            continue;
        };
        let label = field
            .label
            .as_ref()
            .map_or_else(|| field.id.clone(), |label| pick(label, lang));
        if let Some(index) = segments
            .peek()
            .and_then(|next| next.parse::<usize>().ok())
            .filter(|_| !field.fields.is_empty())
        {
            segments.next();
            parts.push(format!("{label} {}", index + 1));
        } else {
            parts.push(label);
        }
        fields = field.fields.iter().collect();
    }
    parts.join(" / ")
}

#[get("/staff/applications/{id}/revisions/{n}")]
pub async fn show(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let clerk = match clerk(&request).await {
        Ok(clerk) => clerk,
        Err(answer) => return answer,
    };
    let (id, revision) = path.into_inner();
    let (Ok(id), Ok(revision)) = (id.parse::<Uuid>(), revision.parse::<i32>()) else {
        return clerk.page.not_found();
    };
    let diffed = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        let changes =
            processing::revision_diff(&mut connection, &state.sealer, clerk.viewer(), id, revision)
                .await?;
        let procedure = processing::procedure_of(&mut connection, clerk.viewer(), id).await?;
        Ok::<_, ApiError>((changes, procedure))
    }
    .await;
    let (changes, procedure_id) = match diffed {
        Ok(diffed) => diffed,
        Err(error) => return clerk.page.failure(error),
    };
    let lang = clerk.page.lang;
    let definition = state.catalog.get(&procedure_id).map(|p| &p.definition);
    let rows: Vec<Row> = changes
        .into_iter()
        .map(|change| Row {
            label: definition.map_or_else(
                || change.path.clone(),
                |definition| label_of(definition, &change.path, lang),
            ),
            old: change.old.as_ref().map(text_of),
            new: change.new.as_ref().map(text_of),
            path: change.path,
        })
        .collect();
    clerk.ok(
        "staff/diff.html",
        context! { id, revision, previous => revision - 1, rows },
    )
}
