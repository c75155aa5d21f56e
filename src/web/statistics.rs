//! The public usage dashboard (`/statistics`) and its open-data files: the report the JSON API
//! gives (`crate::statistics::report`), drawn as server-side SVG charts, each with its
//! definition beside it and a data table under it; no script.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use minijinja::context;
use serde::Serialize;

use super::lang::Lang;
use super::render::Page;
use crate::messages::Localized;
use crate::state::AppState;
use crate::statistics::open_data;
use crate::statistics::report::{Cells, RowStatistics, StatisticsReport};
use crate::statistics::svg::{Bar, BarChart};

fn pick(text: &Localized, lang: Lang) -> String {
    match lang {
        Lang::Ja => text.ja.clone(),
        Lang::En => text.en.clone(),
    }
}

/// A measure as a page shows it: `X` when hidden, `—` when it does not apply.
fn shown(cells: &Cells, key: &str) -> String {
    let value = open_data::value(cells, key);
    if value.is_empty() {
        "—".to_owned()
    } else {
        value
    }
}

/// A measure as a chart draws it: as the table shows it (`X` hidden, `—` a gap).
fn bar_of(cells: &Cells, key: &str) -> Bar {
    if cells.hidden.iter().any(|hidden| hidden == key) {
        return Bar::Hidden;
    }
    #[allow(clippy::cast_precision_loss)]
    let value = match key {
        "received" => cells.received.map(|v| v as f64),
        "median_days" => cells.median_days.map(f64::from),
        "card_signed_share" => cells.card_signed_share,
        "within_standard_share" => cells.within_standard_share,
        _ => None,
    };
    value.map_or(Bar::Empty, Bar::Value)
}

#[derive(Serialize)]
struct Chart {
    svg: String,
    name: String,
    definition: String,
    /// (month, value) for the data table.
    values: Vec<(String, String)>,
}

#[derive(Serialize)]
struct Row {
    id: String,
    name: String,
    values: Vec<String>,
}

/// The breakdown table as the page shows it: `X` where hidden.
#[derive(Serialize)]
struct BreakdownView {
    title: String,
    /// The rows' heading: 町丁目 or 年齢階級.
    kind: String,
    definition: String,
    csv_label: String,
    rows: Vec<Row>,
}

fn breakdown_view(report: &StatisticsReport, lang: Lang) -> Option<BreakdownView> {
    let table = report.breakdown.as_ref()?;
    let count = |value: &Option<i64>| value.map_or_else(|| "X".to_owned(), |v| v.to_string());
    Some(BreakdownView {
        title: pick(&table.title, lang),
        kind: match (table.kind.as_str(), lang) {
            ("district", Lang::Ja) => "町丁目",
            ("district", Lang::En) => "District",
            (_, Lang::Ja) => "年齢階級",
            (_, Lang::En) => "Age band",
        }
        .to_owned(),
        definition: pick(&table.definition, lang),
        csv_label: format!(
            "{}{}",
            pick(&table.title, lang),
            if lang == Lang::Ja {
                "（CSV）"
            } else {
                " (CSV)"
            }
        ),
        rows: table
            .rows
            .iter()
            .chain([&table.total])
            .map(|row| Row {
                id: row.id.clone(),
                name: pick(&row.name, lang),
                values: row
                    .received
                    .iter()
                    .chain([&row.period])
                    .map(count)
                    .collect(),
            })
            .collect(),
    })
}

#[derive(Serialize)]
struct Measure {
    key: &'static str,
    name: String,
    definition: String,
}

/// The charts and tables of a report, in `lang`.
pub(super) fn view(report: &StatisticsReport, lang: Lang) -> minijinja::Value {
    let measures: Vec<Measure> = report
        .measures
        .iter()
        .map(|m| Measure {
            key: m.key,
            name: pick(&m.name, lang),
            definition: pick(&m.definition, lang),
        })
        .collect();
    let charts: Vec<Chart> = [
        ("received", if lang == Lang::Ja { "件" } else { "" }),
        ("median_days", if lang == Lang::Ja { "日" } else { "" }),
        ("within_standard_share", "%"),
        ("card_signed_share", "%"),
    ]
    .into_iter()
    .filter_map(|(key, unit)| {
        let measure = measures.iter().find(|m| m.key == key)?;
        let chart = BarChart {
            id: key.to_owned(),
            title: format!("{}（{}）", measure.name, pick(&report.total.name, lang)),
            labels: report.months.clone(),
            values: report
                .total
                .months
                .iter()
                .map(|cells| bar_of(cells, key))
                .collect(),
            unit: unit.to_owned(),
        };
        Some(Chart {
            svg: chart.render(),
            name: measure.name.clone(),
            definition: measure.definition.clone(),
            values: report
                .months
                .iter()
                .zip(&report.total.months)
                .map(|(month, cells)| (month.clone(), shown(cells, key)))
                .collect(),
        })
    })
    .collect();
    let rows = |rows: &[RowStatistics]| -> Vec<Row> {
        rows.iter()
            .chain([&report.total])
            .map(|row| Row {
                id: row.id.clone(),
                name: pick(&row.name, lang),
                values: measures.iter().map(|m| shown(&row.period, m.key)).collect(),
            })
            .collect()
    };
    context! {
        months => report.months,
        first_month => report.months.first(),
        last_month => report.months.last(),
        city_code => report.city_code,
        city_name => pick(&report.city_name, lang),
        note => pick(&report.note, lang),
        charts,
        rows => rows(&report.rows),
        assurance_rows => rows(&report.by_assurance),
        breakdown => breakdown_view(report, lang),
        measures,
        st => texts(lang),
    }
}

#[derive(Serialize)]
struct Texts {
    title: &'static str,
    intro: &'static str,
    period: &'static str,
    procedure: &'static str,
    by_procedure: &'static str,
    by_assurance: &'static str,
    level: &'static str,
    month: &'static str,
    whole_period: &'static str,
    definitions: &'static str,
    open_data: &'static str,
    csv: &'static str,
    definitions_file: &'static str,
    json: &'static str,
    license: &'static str,
    code: &'static str,
    counter_title: &'static str,
    counter_intro: &'static str,
    counter_month: &'static str,
    counter_count: &'static str,
    counter_save: &'static str,
    counter_saved: &'static str,
    counter_entered: &'static str,
    staff_scope: &'static str,
}

fn texts(lang: Lang) -> Texts {
    match lang {
        Lang::Ja => Texts {
            title: "オンライン申請の利用状況",
            intro: "この電子申請サービスの利用状況を、申請の記録から集計したものです。数値は集計値のみで、個人に関する情報は含みません。",
            period: "期間",
            procedure: "手続",
            by_procedure: "手続ごとの状況（期間全体）",
            by_assurance: "本人確認の方法ごとの状況（期間全体）",
            level: "本人確認の方法",
            month: "年月",
            whole_period: "期間計",
            definitions: "各項目の定義",
            open_data: "オープンデータ",
            csv: "集計表（CSV、UTF-8）",
            definitions_file: "項目定義（CSV）",
            json: "API（JSON）",
            license: "ライセンス：クリエイティブ・コモンズ 表示 4.0 国際（CC BY 4.0）",
            code: "全国地方公共団体コード",
            counter_title: "窓口受付件数の入力",
            counter_intro: "オンライン利用率の計算のため、担当課の手続について、窓口で受け付けた件数を月ごとに入力してください。同じ月をもう一度入力すると置き換わります。",
            counter_month: "年月（YYYY-MM）",
            counter_count: "窓口受付件数",
            counter_save: "保存する",
            counter_saved: "保存しました。集計表には次回の表示から反映されます。",
            counter_entered: "入力済みの件数",
            staff_scope: "あなたの所属課の手続のみを表示しています。",
        },
        Lang::En => Texts {
            title: "How the online counter is used",
            intro: "Usage of this e-application service, counted from its own application records. Only totals are shown; nothing here is about any one person.",
            period: "Period",
            procedure: "Procedure",
            by_procedure: "By procedure (whole period)",
            by_assurance: "By how residents prove who they are (whole period)",
            level: "Identity check",
            month: "Month",
            whole_period: "Whole period",
            definitions: "What each measure means",
            open_data: "Open data",
            csv: "Table (CSV, UTF-8)",
            definitions_file: "Column definitions (CSV)",
            json: "API (JSON)",
            license: "License: Creative Commons Attribution 4.0 International (CC BY 4.0)",
            code: "Local government code",
            counter_title: "Counter applications",
            counter_intro: "For the online share, enter each month how many applications for your division's procedures were taken at the counter. Entering a month again replaces it.",
            counter_month: "Month (YYYY-MM)",
            counter_count: "Taken at the counter",
            counter_save: "Save",
            counter_saved: "Saved. The tables show it from the next visit.",
            counter_entered: "Counts entered",
            staff_scope: "Only your divisions' procedures are shown.",
        },
    }
}

async fn public_report(
    state: &AppState,
) -> Result<std::sync::Arc<StatisticsReport>, crate::db::DbError> {
    state.statistics_report(None).await
}

#[get("/statistics")]
pub async fn page(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let page = Page::new(&request);
    match public_report(&state).await {
        Ok(report) => page.ok("statistics.html", view(&report, page.lang)),
        Err(error) => page.failure(error),
    }
}

fn csv_response(name: &str, body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

#[get("/statistics/open-data.csv")]
pub async fn open_data_csv(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match public_report(&state).await {
        Ok(report) => csv_response(
            &format!("{}_online_applications.csv", report.city_code),
            open_data::csv(&report),
        ),
        Err(error) => Page::new(&request).failure(error),
    }
}

#[get("/statistics/open-data-definitions.csv")]
pub async fn definitions_csv(state: web::Data<AppState>) -> HttpResponse {
    let settings = &state.settings.statistics;
    csv_response(
        &format!("{}_online_applications_definitions.csv", settings.city_code),
        open_data::definitions_csv(settings.minimum_cell, state.breakdown.kind()),
    )
}

/// Receipts by district or age band; not found unless the city opted in.
#[get("/statistics/open-data-breakdown.csv")]
pub async fn breakdown_csv(request: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let answer = Page::new(&request);
    match public_report(&state).await {
        Ok(report) => match open_data::breakdown_csv(&report) {
            Some(body) => csv_response(
                &format!("{}_online_applications_breakdown.csv", report.city_code),
                body,
            ),
            None => answer.not_found(),
        },
        Err(error) => answer.failure(error),
    }
}
