//! The usage statistics on the console: the report of my divisions' procedures (the same
//! suppressed tables as the public page), and the monthly counter (窓口) counts I enter.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use minijinja::context;
use serde::Serialize;

use super::{Clerk, Pairs, clerk, first, pick};
use crate::forms::lint::city_today;
use crate::queues::QueueError;
use crate::state::AppState;
use crate::statistics::counter;
use crate::web::statistics::view;

#[derive(Serialize)]
struct Choice {
    id: String,
    name: String,
}

#[derive(Serialize)]
struct EnteredRow {
    month: String,
    procedure: String,
    count: i64,
}

async fn render(
    clerk: &Clerk,
    state: &AppState,
    status: StatusCode,
    saved: bool,
    errors: Vec<crate::messages::FieldError>,
) -> HttpResponse {
    let divisions = clerk.divisions();
    let loaded = async {
        let report = state
            .statistics_report(Some(&divisions))
            .await
            .map_err(QueueError::Database)?;
        let mut connection = crate::db::connection(&state.pool).await?;
        let entered = counter::entered(&mut connection, clerk.viewer(), 36).await?;
        Ok::<_, QueueError>((report, entered))
    }
    .await;
    let (report, entered) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => return clerk.page.failure(error),
    };
    let lang = clerk.page.lang;
    let procedures: Vec<Choice> = counter::procedures_for(&state.catalog, clerk.viewer())
        .into_iter()
        .map(|(id, title)| Choice {
            id: id.to_owned(),
            name: pick(title, lang),
        })
        .collect();
    let entered: Vec<EnteredRow> = entered
        .into_iter()
        .map(|row| EnteredRow {
            month: row.month.format("%Y-%m").to_string(),
            procedure: state.catalog.procedures.get(&row.procedure_id).map_or_else(
                || row.procedure_id.clone(),
                |p| pick(&p.definition.title, lang),
            ),
            count: row.count,
        })
        .collect();
    let errors: Vec<_> = errors
        .into_iter()
        .map(|error| context! { path => error.path, message => pick(&error.message, lang) })
        .collect();
    clerk.render(
        status,
        "staff/statistics.html",
        context! {
            ..view(&report, lang),
            ..context! {
                procedures,
                entered,
                saved,
                errors,
                this_month => city_today().format("%Y-%m").to_string(),
            }
        },
    )
}

#[get("/staff/statistics")]
pub async fn show(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let clerk = match clerk(&request).await {
        Ok(clerk) => clerk,
        Err(answer) => return answer,
    };
    let saved = request.query_string() == "saved=1";
    render(&clerk, &state, StatusCode::OK, saved, Vec::new()).await
}

#[post("/staff/statistics/counter")]
pub async fn enter_counter(
    request: HttpRequest,
    state: web::Data<AppState>,
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
    let parsed = counter::parse(
        first(&form, "month").unwrap_or_default(),
        first(&form, "count").unwrap_or_default(),
        city_today(),
    );
    let (month, count) = match parsed {
        Ok(parsed) => parsed,
        Err(QueueError::Invalid(errors)) => {
            return render(
                &clerk,
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                false,
                errors,
            )
            .await;
        }
        Err(error) => return clerk.page.failure(error),
    };
    let procedure = first(&form, "procedure").unwrap_or_default().to_owned();
    let recorded = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        counter::record(
            &mut connection,
            &state.catalog,
            clerk.viewer(),
            &procedure,
            month,
            count,
        )
        .await
    }
    .await;
    match recorded {
        Ok(()) => crate::web::render::Page::see_other("/staff/statistics?saved=1"),
        Err(QueueError::NotFound) => clerk.page.not_found(),
        Err(error) => clerk.page.failure(error),
    }
}
