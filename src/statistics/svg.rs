//! A small SVG writer for the dashboard's bar charts: rectangles, lines and text, laid out on a
//! fixed grid, so a chart is the same bytes on every machine (snapshot-tested) and needs no
//! font files, no script and nothing from another origin. Why not a plotting crate: see
//! docs/DECISIONS.md ("Statistics charts").

use std::fmt::Write;

// Drawn at its natural size on a desktop and scaled down to a 390 px phone (about 0.85), so
// the smallest text (11) stays above 9 px there.
const WIDTH: f64 = 400.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 44.0;

/// One slot of a chart, as the data table under it shows the same value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bar {
    /// A bar of this height.
    Value(f64),
    /// Suppressed (the table's `X`): an empty dashed outline marked `X`.
    Hidden,
    /// Nothing to show (the table's `—`, e.g. no decision that month): a gap, no mark.
    Empty,
}

/// One bar chart: a bar per label. A `YYYY-MM` label is drawn as its month, with the year
/// under the first month shown and under each January.
#[derive(Debug, Clone)]
pub struct BarChart {
    /// Used for the element ids (`chart-<id>`), so several charts fit one page.
    pub id: String,
    pub title: String,
    pub labels: Vec<String>,
    pub values: Vec<Bar>,
    /// Appended to the axis maximum (`%`, `件`).
    pub unit: String,
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            _ => escaped.push(c),
        }
    }
    escaped
}

/// A round axis maximum at or above `max`: 1, 2 or 5 times a power of ten. For `whole` data
/// (counts) only one whose half, the middle gridline, is whole too: no axis reads 0.5件.
fn nice_ceiling(max: f64, whole: bool) -> f64 {
    let magnitude = if max <= 0.0 {
        1.0
    } else {
        10f64.powf(max.log10().floor())
    };
    [1.0, 2.0, 5.0, 10.0, 20.0]
        .into_iter()
        .map(|step| step * magnitude)
        .filter(|candidate| !whole || (candidate / 2.0).fract() == 0.0)
        .find(|candidate| *candidate >= max)
        .unwrap_or(20.0 * magnitude)
}

/// Numbers as the axis shows them: no needless decimals.
fn number(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

impl BarChart {
    pub fn render(&self) -> String {
        let id = escape(&self.id);
        let shown = || {
            self.values.iter().filter_map(|bar| match bar {
                Bar::Value(value) => Some(*value),
                _ => None,
            })
        };
        let max = shown().fold(0.0, f64::max);
        let whole = shown().all(|value| value.fract() == 0.0);
        let ceiling = nice_ceiling(max, whole);
        let plot_width = WIDTH - LEFT - RIGHT;
        let plot_height = HEIGHT - TOP - BOTTOM;
        let slots = self.labels.len().max(1);
        #[allow(clippy::cast_precision_loss)]
        let slot = plot_width / slots as f64;
        let bar = (slot * 0.7).max(1.0);
        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="chart-{id}-title" class="chart">"#
        );
        let _ = write!(
            svg,
            r#"<title id="chart-{id}-title">{}</title>"#,
            escape(&self.title)
        );
        let _ = write!(
            svg,
            r##"<text x="8" y="20" font-size="15" fill="#1a1a1a">{}</text>"##,
            escape(&self.title)
        );
        // Axis with gridlines at 0, ½ and the maximum.
        for step in 0..=2u8 {
            let value = ceiling * f64::from(step) / 2.0;
            let y = TOP + plot_height - plot_height * f64::from(step) / 2.0;
            let _ = write!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#c8c8c8" stroke-width="1"/>"##,
                WIDTH - RIGHT
            );
            let _ = write!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end" fill="#1a1a1a">{}{}</text>"##,
                LEFT - 4.0,
                y + 4.0,
                number(value),
                escape(&self.unit)
            );
        }
        for (index, label) in self.labels.iter().enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let x = LEFT + slot * index as f64 + (slot - bar) / 2.0;
            let centre = x + bar / 2.0;
            match self.values.get(index).copied().unwrap_or(Bar::Empty) {
                Bar::Value(value) => {
                    let height = plot_height * (value / ceiling).clamp(0.0, 1.0);
                    let _ = write!(
                        svg,
                        r##"<rect x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{height:.1}" fill="#1d5fa8"/>"##,
                        TOP + plot_height - height
                    );
                }
                Bar::Hidden => {
                    let _ = write!(
                        svg,
                        r##"<rect x="{x:.1}" y="{TOP}" width="{bar:.1}" height="{plot_height:.1}" fill="none" stroke="#767676" stroke-dasharray="4 3"/><text x="{centre:.1}" y="{:.1}" font-size="13" text-anchor="middle" fill="#1a1a1a">X</text>"##,
                        TOP + plot_height / 2.0
                    );
                }
                Bar::Empty => {}
            }
            let (text, year) = match label.split_once('-') {
                Some((year, month)) if year.len() == 4 && month.len() == 2 => {
                    // The year under the first slot, unless a January follows at once.
                    let next_is_january = self
                        .labels
                        .get(index + 1)
                        .is_some_and(|next| next.ends_with("-01"));
                    let shown = month == "01" || (index == 0 && !next_is_january);
                    (month, shown.then_some(year))
                }
                _ => (label.as_str(), None),
            };
            let _ = write!(
                svg,
                r##"<text x="{centre:.1}" y="{:.1}" font-size="13" text-anchor="middle" fill="#1a1a1a">{}</text>"##,
                HEIGHT - BOTTOM + 17.0,
                escape(text)
            );
            if let Some(year) = year {
                let _ = write!(
                    svg,
                    r##"<text x="{centre:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#1a1a1a">{}</text>"##,
                    HEIGHT - BOTTOM + 34.0,
                    escape(year)
                );
            }
        }
        svg.push_str("</svg>");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monthly_receipts_chart() {
        let chart = BarChart {
            id: "received".to_owned(),
            title: "受付件数（月別）".to_owned(),
            labels: vec![
                "2026-10".into(),
                "2026-11".into(),
                "2026-12".into(),
                "2027-01".into(),
            ],
            values: vec![
                Bar::Value(120.0),
                Bar::Hidden,
                Bar::Value(87.0),
                Bar::Value(230.0),
            ],
            unit: "件".to_owned(),
        };
        insta::assert_snapshot!(chart.render());
    }

    #[test]
    fn processing_days_chart() {
        let chart = BarChart {
            id: "days".to_owned(),
            title: "処理日数の分布（開庁日）".to_owned(),
            labels: (0..6).map(|d| d.to_string()).collect(),
            values: vec![
                Bar::Value(3.0),
                Bar::Value(14.0),
                Bar::Value(22.5),
                Bar::Value(9.0),
                Bar::Value(0.0),
                Bar::Empty,
            ],
            unit: "%".to_owned(),
        };
        insta::assert_snapshot!(chart.render());
    }

    #[test]
    fn text_is_escaped_and_an_empty_chart_renders() {
        let chart = BarChart {
            id: "x\"<".to_owned(),
            title: "<script>&".to_owned(),
            labels: vec![],
            values: vec![],
            unit: String::new(),
        };
        let svg = chart.render();
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;&amp;"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn an_empty_month_is_a_gap_and_a_hidden_one_an_x() {
        let chart = BarChart {
            id: "median".to_owned(),
            title: "処理日数の中央値".to_owned(),
            labels: vec!["2026-11".into(), "2026-12".into()],
            values: vec![Bar::Empty, Bar::Hidden],
            unit: "日".to_owned(),
        };
        let svg = chart.render();
        // One outline (the hidden month), no bar at all for the empty one.
        assert_eq!(svg.matches("<rect").count(), 1, "{svg}");
        assert_eq!(svg.matches(">X</text>").count(), 1, "{svg}");
        assert!(
            svg.contains(">2026</text>"),
            "the year under the first month"
        );
    }

    #[test]
    fn axis_maximum_is_round() {
        assert!((nice_ceiling(87.0, false) - 100.0).abs() < 1e-9);
        assert!((nice_ceiling(230.0, false) - 500.0).abs() < 1e-9);
        assert!((nice_ceiling(0.0, false) - 1.0).abs() < 1e-9);
        assert!((nice_ceiling(10.0, false) - 10.0).abs() < 1e-9);
        assert!((nice_ceiling(0.4, false) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn a_chart_of_counts_has_whole_gridlines() {
        // 1 and 5 would put the middle gridline at 0.5 and 2.5.
        assert!((nice_ceiling(0.0, true) - 2.0).abs() < 1e-9);
        assert!((nice_ceiling(1.0, true) - 2.0).abs() < 1e-9);
        assert!((nice_ceiling(3.0, true) - 10.0).abs() < 1e-9);
        assert!((nice_ceiling(12.0, true) - 20.0).abs() < 1e-9);
        for values in [
            vec![],
            vec![Bar::Value(1.0)],
            vec![Bar::Value(4.0), Bar::Hidden],
        ] {
            let chart = BarChart {
                id: "counts".to_owned(),
                title: "受付件数".to_owned(),
                labels: vec!["2026-12".into(); values.len()],
                values,
                unit: "件".to_owned(),
            };
            let svg = chart.render();
            assert!(!svg.contains(".5件"), "{svg}");
        }
    }
}
