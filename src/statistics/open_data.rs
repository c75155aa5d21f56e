//! The open-data files: the report as a UTF-8 CSV led by the 全国地方公共団体コード and the city's
//! name, then month, procedure id and name, then the measures (hidden values as `X`, values that
//! do not apply empty); and a definitions file beside it. Both under CC BY 4.0.

use super::definitions::{breakdown_definition, measures, suppression_note};
use super::report::{Cells, RowStatistics, StatisticsReport};

pub const LICENSE: &str = "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/deed.ja)";

fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// One measure as the CSV writes it: `X` when hidden, empty when it does not apply.
pub fn value(cells: &Cells, key: &str) -> String {
    if cells.hidden.iter().any(|hidden| hidden == key) {
        return "X".to_owned();
    }
    let number = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_default();
    let count = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    let days = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_default();
    match key {
        "received" => count(cells.received),
        "received_per_day" => number(cells.received_per_day),
        "cumulative" => count(cells.cumulative),
        "card_signed_share" => number(cells.card_signed_share),
        "online_share" => number(cells.online_share),
        "decided" => count(cells.decided),
        "median_days" => days(cells.median_days),
        "p90_days" => days(cells.p90_days),
        "within_standard_share" => number(cells.within_standard_share),
        "return_rate" => number(cells.return_rate),
        "withdrawal_rate" => number(cells.withdrawal_rate),
        "rejection_rate" => number(cells.rejection_rate),
        "overdue_at_end" => count(cells.overdue_at_end),
        "paid" => count(cells.paid),
        "paid_yen" => count(cells.paid_yen),
        "refunded" => count(cells.refunded),
        "refunded_yen" => count(cells.refunded_yen),
        "late_successes" => count(cells.late_successes),
        _ => String::new(),
    }
}

/// The CSV: one line per month and row (procedures, then the total), CRLF line ends.
pub fn csv(report: &StatisticsReport) -> String {
    let keys: Vec<&str> = measures().iter().map(|m| m.key).collect();
    let mut out = String::new();
    let mut header = vec![
        "全国地方公共団体コード".to_owned(),
        "地方公共団体名".to_owned(),
        "年月".to_owned(),
        "手続ID".to_owned(),
        "手続名".to_owned(),
    ];
    header.extend(measures().iter().map(|m| m.name.ja.clone()));
    out.push_str(
        &header
            .iter()
            .map(|h| field(h))
            .collect::<Vec<_>>()
            .join(","),
    );
    out.push_str("\r\n");
    let rows: Vec<&RowStatistics> = report.rows.iter().chain([&report.total]).collect();
    for (index, month) in report.months.iter().enumerate() {
        for row in &rows {
            let Some(cells) = row.months.get(index) else {
                continue;
            };
            let mut line = vec![
                field(&report.city_code),
                field(&report.city_name.ja),
                field(month),
                field(&row.id),
                field(&row.name.ja),
            ];
            line.extend(keys.iter().map(|key| value(cells, key)));
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
    }
    out
}

/// The breakdown's CSV (when the city opted in): one line per month and value (then the
/// total), led like the main file, receipts `X` where hidden.
pub fn breakdown_csv(report: &StatisticsReport) -> Option<String> {
    let table = report.breakdown.as_ref()?;
    let mut out = String::from(
        "全国地方公共団体コード,地方公共団体名,年月,区分,区分コード,区分名,受付件数\r\n",
    );
    for (index, month) in report.months.iter().enumerate() {
        for row in table.rows.iter().chain([&table.total]) {
            let count = match row.received.get(index) {
                Some(Some(count)) => count.to_string(),
                Some(None) => "X".to_owned(),
                None => continue,
            };
            let line = [
                field(&report.city_code),
                field(&report.city_name.ja),
                field(month),
                field(&table.kind),
                field(&row.id),
                field(&row.name.ja),
                count,
            ];
            out.push_str(&line.join(","));
            out.push_str("\r\n");
        }
    }
    Some(out)
}

/// The definitions file: one line per column of the CSV (and of the breakdown's, if any).
pub fn definitions_csv(minimum: i64, breakdown: Option<&str>) -> String {
    let note = suppression_note(minimum);
    let mut out = String::from("項目名,説明,Name,Description\r\n");
    let fixed = [
        (
            "全国地方公共団体コード",
            "総務省の全国地方公共団体コード（6桁、検査数字を含む）。",
            "Local government code",
            "The 6-digit local government code (with its check digit).",
        ),
        (
            "地方公共団体名",
            "地方公共団体の名称。",
            "Local government",
            "The city's name.",
        ),
        (
            "年月",
            "集計した月（日本時間、YYYY-MM）。",
            "Month",
            "The month counted (Japan time, YYYY-MM).",
        ),
        (
            "手続ID",
            "手続の識別子。other: で始まるものは利用の少ない手続を分類ごとにまとめた行、total は全手続の合計。",
            "Procedure id",
            "The procedure's id; other:… rows group a category's rarely used procedures; total is all procedures.",
        ),
        (
            "手続名",
            "手続の名称。",
            "Procedure",
            "The procedure's name.",
        ),
    ];
    for (name, text, en_name, en_text) in fixed {
        out.push_str(&[field(name), field(text), field(en_name), field(en_text)].join(","));
        out.push_str("\r\n");
    }
    for measure in &measures() {
        out.push_str(
            &[
                field(&measure.name.ja),
                field(&measure.definition.ja),
                field(&measure.name.en),
                field(&measure.definition.en),
            ]
            .join(","),
        );
        out.push_str("\r\n");
    }
    if let Some(kind) = breakdown {
        let definition = breakdown_definition(kind);
        let columns = [
            (
                "区分",
                "内訳の種類（breakdown ファイル）。district は町丁目、age_band は年齢階級。",
                "Breakdown",
                "The breakdown file's kind: district or age_band.",
            ),
            (
                "区分コード",
                "町丁目コード、または年齢階級（0-9、10-19、…、90+）。other は利用の少ない町丁目をまとめた行、unknown は不明、total は合計。",
                "Breakdown code",
                "The district code or the age band (0-9, 10-19, …, 90+); other gathers rarely seen districts; unknown, or total.",
            ),
            (
                "区分名",
                "町丁目名または年齢階級の名称。",
                "Breakdown name",
                "The district's or the band's name.",
            ),
        ];
        for (name, text, en_name, en_text) in columns {
            out.push_str(&[field(name), field(text), field(en_name), field(en_text)].join(","));
            out.push_str("\r\n");
        }
        out.push_str(
            &[
                field("受付件数（区分別）"),
                field(&definition.ja),
                field("Received (by breakdown)"),
                field(&definition.en),
            ]
            .join(","),
        );
        out.push_str("\r\n");
    }
    out.push_str(&[field("X"), field(&note.ja), field("X"), field(&note.en)].join(","));
    out.push_str("\r\n");
    out.push_str(
        &[
            field("ライセンス"),
            field(LICENSE),
            field("License"),
            field(LICENSE),
        ]
        .join(","),
    );
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_and_quotes_are_quoted() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("加賀市"), "加賀市");
    }

    #[test]
    fn hidden_is_x_and_missing_is_empty() {
        let cells = Cells {
            received: Some(12),
            hidden: vec!["card_signed_share".to_owned()],
            ..Cells::default()
        };
        assert_eq!(value(&cells, "received"), "12");
        assert_eq!(value(&cells, "card_signed_share"), "X");
        assert_eq!(value(&cells, "online_share"), "");
    }
}
