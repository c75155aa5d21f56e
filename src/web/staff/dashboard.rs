//! The queues dashboard: for each queue of my divisions, counts of new, in-progress, returned,
//! overdue and due-soon work (the domain's one grouped query), each a link to the filtered list.

use actix_web::{HttpRequest, HttpResponse, get, web};
use minijinja::context;
use serde::Serialize;

use super::{clerk, pick};
use crate::queues;
use crate::state::AppState;

#[derive(Serialize)]
struct Row {
    id: String,
    name: String,
    division: String,
    counts: Vec<Count>,
}

#[derive(Serialize)]
struct Count {
    key: &'static str,
    count: i64,
    href: String,
}

#[get("/staff")]
pub async fn dashboard(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let clerk = match clerk(&request).await {
        Ok(clerk) => clerk,
        Err(answer) => return answer,
    };
    let summaries = async {
        let mut connection = crate::db::connection(&state.pool).await?;
        queues::queues_for(
            &mut connection,
            &state.catalog,
            &state.calendar,
            clerk.viewer(),
        )
        .await
    }
    .await;
    let summaries = match summaries {
        Ok(summaries) => summaries,
        Err(error) => return clerk.page.failure(error),
    };
    let lang = clerk.page.lang;
    let rows: Vec<Row> = summaries
        .into_iter()
        .map(|summary| {
            let base = format!("/staff/queues/{}", summary.id);
            let division = state
                .catalog
                .organisation
                .divisions
                .get(&summary.division)
                .map_or_else(|| summary.division.clone(), |d| pick(&d.name, lang));
            Row {
                counts: vec![
                    Count {
                        key: "new",
                        count: summary.new,
                        href: format!("{base}?status=submitted"),
                    },
                    Count {
                        key: "in_progress",
                        count: summary.in_progress,
                        href: format!("{base}?status=in_progress"),
                    },
                    Count {
                        key: "returned",
                        count: summary.returned,
                        href: format!("{base}?status=returned"),
                    },
                    Count {
                        key: "overdue",
                        count: summary.overdue,
                        href: format!("{base}?overdue=true"),
                    },
                    Count {
                        key: "due_soon",
                        count: summary.due_soon,
                        href: format!("{base}?due=soon"),
                    },
                ],
                name: pick(&summary.name, lang),
                id: summary.id,
                division,
            }
        })
        .collect();
    clerk.ok("staff/dashboard.html", context! { rows })
}
