//! Reading the rollups into a published report: procedures (rare ones rolled up into their
//! category) × months, every count suppressed as [`super::suppression`] says, every share shown
//! only where its numerator and denominator are. The public page, the staff page, the CSV and the
//! JSON are all this one report (staff: restricted to their divisions), so they agree.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate};
use diesel::QueryableByName;
use diesel::sql_types::{Array, BigInt, Date, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;

use super::definitions::{MeasureDefinition, breakdown_definition, measures, suppression_note};
use super::histogram::Histogram;
use super::suppression::{Mask, suppress, suppress_with, with_totals};
use crate::config::StatisticsSettings;
use crate::db::DbError;
use crate::forms::Catalog;
use crate::messages::Localized;
use crate::statistics_breakdown::{Breakdown, OTHER as OTHER_DISTRICTS, UNKNOWN};

/// One procedure (or group) over the period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowStatistics {
    /// A procedure id; `other:<category>` for the rarely used procedures of a category;
    /// `assurance:<level>` in `by_assurance`; `total` for all.
    pub id: String,
    pub name: Localized,
    /// One entry per month of `months`, in order.
    pub months: Vec<Cells>,
    /// The whole period.
    pub period: Cells,
}

/// The measures of one row and month (definitions in `measures`). A value is null when it is
/// hidden (its key is then in `hidden`) or when it does not apply (nothing to divide by).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct Cells {
    pub received: Option<i64>,
    pub received_per_day: Option<f64>,
    pub cumulative: Option<i64>,
    pub card_signed_share: Option<f64>,
    pub online_share: Option<f64>,
    pub decided: Option<i64>,
    pub median_days: Option<u32>,
    pub p90_days: Option<u32>,
    pub within_standard_share: Option<f64>,
    pub return_rate: Option<f64>,
    pub withdrawal_rate: Option<f64>,
    pub rejection_rate: Option<f64>,
    pub overdue_at_end: Option<i64>,
    pub paid: Option<i64>,
    pub paid_yen: Option<i64>,
    pub refunded: Option<i64>,
    pub refunded_yen: Option<i64>,
    pub late_successes: Option<i64>,
    /// The keys of the measures hidden here (shown as X).
    pub hidden: Vec<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatisticsReport {
    /// 全国地方公共団体コード (6 digits).
    pub city_code: String,
    pub city_name: Localized,
    /// Counts below this are hidden.
    pub minimum_cell: i64,
    /// The months covered, `YYYY-MM`, oldest first.
    pub months: Vec<String>,
    pub rows: Vec<RowStatistics>,
    pub by_assurance: Vec<RowStatistics>,
    pub total: RowStatistics,
    pub measures: Vec<MeasureDefinition>,
    pub note: Localized,
    /// Receipts by district or by age band, when the city opted in (`statistics.breakdown`).
    pub breakdown: Option<BreakdownTable>,
}

/// Receipts by the city's chosen breakdown × month, suppressed as the other tables are. It
/// counts the applications that carry a breakdown value (those received since the city opted
/// in), so its total can be below the report's.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BreakdownTable {
    /// `district` (町丁目 code) or `age_band` (10-year band: `0-9` … `80-89`, `90+`).
    pub kind: String,
    pub title: Localized,
    pub definition: Localized,
    /// One per value; `unknown` when the card's facts gave none.
    pub rows: Vec<BreakdownRow>,
    /// The column totals (`id` `total`).
    pub total: BreakdownRow,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BreakdownRow {
    /// The district code, the age band, `unknown`, or `total`.
    pub id: String,
    pub name: Localized,
    /// Receipts per month of `months`; null when hidden.
    pub received: Vec<Option<i64>>,
    /// Receipts over the period; null when hidden.
    pub period: Option<i64>,
}

/// The months of a report: `count` months ending with `today`'s.
pub fn months_ending(today: NaiveDate, count: u32) -> Vec<NaiveDate> {
    let last = today.with_day(1).unwrap_or(today);
    (0..count)
        .rev()
        .filter_map(|back| last.checked_sub_months(Months::new(back)))
        .collect()
}

/// The counts of one procedure in one month, as the rollups hold them.
#[derive(Debug, Clone, Default)]
pub struct Raw {
    pub received: i64,
    pub card_signed: i64,
    pub returned: i64,
    pub withdrawn: i64,
    pub completed: i64,
    pub rejected: i64,
    pub with_standard: i64,
    pub within_standard: i64,
    pub histogram: Histogram,
    /// Counter (窓口) applications, if entered.
    pub counter: Option<i64>,
    pub overdue: i64,
    /// Payments confirmed in the month, and their yen; refunds likewise; late successes.
    pub paid: i64,
    pub paid_yen: i64,
    pub refunded: i64,
    pub refunded_yen: i64,
    pub late_successes: i64,
}

impl Raw {
    fn decided(&self) -> i64 {
        self.completed + self.rejected
    }

    fn add(&mut self, other: &Self) {
        self.received += other.received;
        self.card_signed += other.card_signed;
        self.returned += other.returned;
        self.withdrawn += other.withdrawn;
        self.completed += other.completed;
        self.rejected += other.rejected;
        self.with_standard += other.with_standard;
        self.within_standard += other.within_standard;
        self.histogram.merge(&other.histogram);
        self.overdue += other.overdue;
        self.paid += other.paid;
        self.paid_yen += other.paid_yen;
        self.refunded += other.refunded;
        self.refunded_yen += other.refunded_yen;
        self.late_successes += other.late_successes;
    }
}

#[derive(QueryableByName)]
struct MonthlyRow {
    #[diesel(sql_type = Date)]
    month: NaiveDate,
    #[diesel(sql_type = Text)]
    procedure_id: String,
    #[diesel(sql_type = BigInt)]
    received: i64,
    #[diesel(sql_type = BigInt)]
    card_signed: i64,
    #[diesel(sql_type = BigInt)]
    returned: i64,
    #[diesel(sql_type = BigInt)]
    withdrawn: i64,
    #[diesel(sql_type = BigInt)]
    completed: i64,
    #[diesel(sql_type = BigInt)]
    rejected: i64,
    #[diesel(sql_type = BigInt)]
    with_standard: i64,
    #[diesel(sql_type = BigInt)]
    within_standard: i64,
    #[diesel(sql_type = Array<BigInt>)]
    processing_days: Vec<i64>,
}

#[derive(QueryableByName)]
struct PaymentRow {
    #[diesel(sql_type = Date)]
    month: NaiveDate,
    #[diesel(sql_type = Text)]
    procedure_id: String,
    #[diesel(sql_type = BigInt)]
    paid: i64,
    #[diesel(sql_type = BigInt)]
    paid_yen: i64,
    #[diesel(sql_type = BigInt)]
    refunded: i64,
    #[diesel(sql_type = BigInt)]
    refunded_yen: i64,
    #[diesel(sql_type = BigInt)]
    late_successes: i64,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = Date)]
    month: NaiveDate,
    #[diesel(sql_type = Text)]
    procedure_id: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// The rollups of `months` per procedure: `divisions` None for everything (public), else only
/// those divisions' rows (the queues' rule: the division is in the WHERE).
pub async fn load(
    connection: &mut AsyncPgConnection,
    divisions: Option<&[String]>,
    months: &[NaiveDate],
) -> Result<BTreeMap<String, Vec<Raw>>, DbError> {
    let (Some(first), Some(last)) = (months.first().copied(), months.last().copied()) else {
        return Ok(BTreeMap::new());
    };
    let end = last.checked_add_months(Months::new(1)).unwrap_or(last);
    let divisions: Option<Vec<String>> = divisions.map(<[String]>::to_vec);
    let monthly: Vec<MonthlyRow> = diesel::sql_query(
        "SELECT month, procedure_id, received, card_signed, returned, withdrawn, completed, rejected,
                with_standard, within_standard, processing_days
           FROM statistics_monthly
          WHERE month >= $1 AND month < $2 AND ($3::text[] IS NULL OR division = ANY($3))",
    )
    .bind::<Date, _>(first)
    .bind::<Date, _>(end)
    .bind::<Nullable<Array<Text>>, _>(&divisions)
    .load(connection)
    .await
    .map_err(DbError::classify)?;
    let counter: Vec<CountRow> = diesel::sql_query(
        "SELECT month, procedure_id, count FROM statistics_counter_counts
          WHERE month >= $1 AND month < $2 AND ($3::text[] IS NULL OR division = ANY($3))",
    )
    .bind::<Date, _>(first)
    .bind::<Date, _>(end)
    .bind::<Nullable<Array<Text>>, _>(&divisions)
    .load(connection)
    .await
    .map_err(DbError::classify)?;
    // Each month's last recorded day holds its day's-end overdue figure.
    let overdue: Vec<CountRow> = diesel::sql_query(
        "SELECT date_trunc('month', d.day)::date AS month, d.procedure_id, sum(d.overdue)::bigint AS count
           FROM statistics_daily d
           JOIN (SELECT max(day) AS day FROM statistics_daily
                  WHERE day >= $1 AND day < $2 GROUP BY date_trunc('month', day)) l ON l.day = d.day
          WHERE ($3::text[] IS NULL OR d.division = ANY($3))
          GROUP BY 1, 2",
    )
    .bind::<Date, _>(first)
    .bind::<Date, _>(end)
    .bind::<Nullable<Array<Text>>, _>(&divisions)
    .load(connection)
    .await
    .map_err(DbError::classify)?;

    // Payments are few beside applications: plain queries over the payments tables, by the city
    // month in which the provider confirmed the payment or the refund.
    let payments: Vec<PaymentRow> = diesel::sql_query(
        "WITH range AS (SELECT ($1::date)::timestamp AT TIME ZONE 'Asia/Tokyo' AS since,
                               ($2::date)::timestamp AT TIME ZONE 'Asia/Tokyo' AS until),
         paid AS (
             SELECT date_trunc('month', p.settled_at AT TIME ZONE 'Asia/Tokyo')::date AS month,
                    s.procedure_id, count(*) AS paid, sum(p.amount_yen) AS paid_yen,
                    count(*) FILTER (WHERE p.attention = 'late_success') AS late_successes
               FROM payments p JOIN submissions s ON s.id = p.submission_id, range
              WHERE p.status = 'succeeded' AND p.settled_at >= range.since AND p.settled_at < range.until
                AND ($3::text[] IS NULL OR s.division = ANY($3))
              GROUP BY 1, 2),
         refunded AS (
             SELECT date_trunc('month', r.created_at AT TIME ZONE 'Asia/Tokyo')::date AS month,
                    s.procedure_id, count(*) AS refunded, sum(r.amount_yen) AS refunded_yen
               FROM refunds r JOIN payments p ON p.id = r.payment_id
               JOIN submissions s ON s.id = p.submission_id, range
              WHERE r.status = 'succeeded' AND r.created_at >= range.since AND r.created_at < range.until
                AND ($3::text[] IS NULL OR s.division = ANY($3))
              GROUP BY 1, 2)
         SELECT coalesce(paid.month, refunded.month) AS month,
                coalesce(paid.procedure_id, refunded.procedure_id) AS procedure_id,
                coalesce(paid.paid, 0)::bigint AS paid, coalesce(paid.paid_yen, 0)::bigint AS paid_yen,
                coalesce(refunded.refunded, 0)::bigint AS refunded,
                coalesce(refunded.refunded_yen, 0)::bigint AS refunded_yen,
                coalesce(paid.late_successes, 0)::bigint AS late_successes
           FROM paid FULL JOIN refunded USING (month, procedure_id)",
    )
    .bind::<Date, _>(first)
    .bind::<Date, _>(end)
    .bind::<Nullable<Array<Text>>, _>(&divisions)
    .load(connection)
    .await
    .map_err(DbError::classify)?;

    fn slot<'r>(
        raws: &'r mut BTreeMap<String, Vec<Raw>>,
        months: &[NaiveDate],
        procedure: &str,
        month: NaiveDate,
    ) -> Option<&'r mut Raw> {
        let position = months.iter().position(|m| *m == month)?;
        raws.entry(procedure.to_owned())
            .or_insert_with(|| vec![Raw::default(); months.len()])
            .get_mut(position)
    }
    let mut raws: BTreeMap<String, Vec<Raw>> = BTreeMap::new();
    for row in monthly {
        if let Some(raw) = slot(&mut raws, months, &row.procedure_id, row.month) {
            raw.add(&Raw {
                received: row.received,
                card_signed: row.card_signed,
                returned: row.returned,
                withdrawn: row.withdrawn,
                completed: row.completed,
                rejected: row.rejected,
                with_standard: row.with_standard,
                within_standard: row.within_standard,
                histogram: Histogram::from_counts(row.processing_days),
                ..Raw::default()
            });
        }
    }
    for row in counter {
        if let Some(raw) = slot(&mut raws, months, &row.procedure_id, row.month) {
            raw.counter = Some(raw.counter.unwrap_or(0) + row.count);
        }
    }
    for row in overdue {
        if let Some(raw) = slot(&mut raws, months, &row.procedure_id, row.month) {
            raw.overdue += row.count;
        }
    }
    for row in payments {
        if let Some(raw) = slot(&mut raws, months, &row.procedure_id, row.month) {
            raw.paid += row.paid;
            raw.paid_yen += row.paid_yen;
            raw.refunded += row.refunded;
            raw.refunded_yen += row.refunded_yen;
            raw.late_successes += row.late_successes;
        }
    }
    Ok(raws)
}

/// A published row before suppression: its members' counts merged per month.
struct Group {
    id: String,
    name: Localized,
    months: Vec<Raw>,
    /// Online share needs every member's counter count for the month.
    counter: Vec<Option<i64>>,
}

fn group(id: String, name: Localized, members: &[&Vec<Raw>], months: usize) -> Group {
    let mut merged = vec![Raw::default(); months];
    let mut counter: Vec<Option<i64>> = vec![Some(0); months];
    for member in members {
        for (month, raw) in member.iter().enumerate() {
            merged[month].add(raw);
            counter[month] = match (counter[month], raw.counter) {
                (Some(sum), Some(count)) => Some(sum + count),
                // A member that received nothing online needs no counter figure either.
                (Some(sum), None) if raw.received == 0 => Some(sum),
                _ => None,
            };
        }
    }
    Group {
        id,
        name,
        months: merged,
        counter,
    }
}

/// Everything a report needs besides the counts.
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    pub settings: &'a StatisticsSettings,
    pub months: &'a [NaiveDate],
    pub today: NaiveDate,
}

/// Builds the suppressed report from per-procedure counts.
pub fn build(context: &Context<'_>, raws: &BTreeMap<String, Vec<Raw>>) -> StatisticsReport {
    let minimum = context.settings.minimum_cell;
    let months = context.months.len();
    let catalog = context.catalog;
    let category_of = |procedure: &str| {
        catalog
            .procedures
            .get(procedure)
            .map_or_else(|| "other".to_owned(), |p| p.definition.category.clone())
    };

    // Procedures used fewer than `minimum` times in the whole period are shown only inside
    // their category's "other" row.
    let mut groups: Vec<Group> = Vec::new();
    let mut rare: BTreeMap<String, Vec<&Vec<Raw>>> = BTreeMap::new();
    for (procedure, row) in raws {
        let total: i64 = row.iter().map(|raw| raw.received).sum();
        if total < minimum {
            rare.entry(category_of(procedure)).or_default().push(row);
            continue;
        }
        let name = catalog.procedures.get(procedure).map_or_else(
            || Localized::new(procedure.clone(), procedure.clone()),
            |p| p.definition.title.clone(),
        );
        groups.push(group(procedure.clone(), name, &[row], months));
    }
    for (category, members) in rare {
        let category_name = catalog.organisation.categories.get(&category).map_or_else(
            || Localized::new(category.clone(), category.clone()),
            Clone::clone,
        );
        let name = Localized::new(
            format!("その他の手続（{}）", category_name.ja),
            format!("Other procedures ({})", category_name.en),
        );
        groups.push(group(format!("other:{category}"), name, &members, months));
    }

    let mut by_level: BTreeMap<&'static str, Vec<&Vec<Raw>>> = BTreeMap::new();
    for (procedure, row) in raws {
        let level = catalog
            .procedures
            .get(procedure)
            .map_or("none", |p| p.definition.assurance.as_str());
        by_level.entry(level).or_default().push(row);
    }
    let assurance_groups: Vec<Group> = by_level
        .into_iter()
        .map(|(level, members)| {
            let name = match level {
                "card-sign" => Localized::new("署名用電子証明書で署名", "Signed with the card"),
                "card-auth" => Localized::new("カードで本人確認", "Card sign-in"),
                _ => Localized::new("ログインのみ", "Sign-in only"),
            };
            group(format!("assurance:{level}"), name, &members, months)
        })
        .collect();

    let all: Vec<&Vec<Raw>> = raws.values().collect();
    let (rows, total) = publish(context, &groups, &all);
    let (by_assurance, _) = publish(context, &assurance_groups, &all);
    StatisticsReport {
        city_code: context.settings.city_code.clone(),
        city_name: Localized::new(
            context.settings.city_name_ja.clone(),
            context.settings.city_name_en.clone(),
        ),
        minimum_cell: minimum,
        months: context
            .months
            .iter()
            .map(|m| m.format("%Y-%m").to_string())
            .collect(),
        rows,
        by_assurance,
        total,
        measures: measures(),
        note: suppression_note(minimum),
        breakdown: None,
    }
}

/// Orders breakdown values: age bands by age, codes as text, then `other`, `unknown` last.
fn breakdown_order(value: &str) -> (u8, u32, String) {
    let age = value
        .split(['-', '+'])
        .next()
        .and_then(|from| from.parse::<u32>().ok());
    let rank = match value {
        UNKNOWN => 2,
        OTHER_DISTRICTS => 1,
        _ => 0,
    };
    (rank, age.unwrap_or(0), value.to_owned())
}

/// Districts used fewer than `minimum` times in the whole period are shown only inside one
/// "other districts" row, as rare procedures are inside their category's: a row of hidden cells
/// would still tell that someone there applied.
fn gather_rare_districts(
    counts: &BTreeMap<String, Vec<i64>>,
    months: usize,
    minimum: i64,
) -> BTreeMap<String, Vec<i64>> {
    let mut gathered: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (value, row) in counts {
        let rare = value != UNKNOWN && row.iter().sum::<i64>() < minimum;
        let key = if rare {
            OTHER_DISTRICTS
        } else {
            value.as_str()
        };
        let target = gathered
            .entry(key.to_owned())
            .or_insert_with(|| vec![0; months]);
        for (sum, count) in target.iter_mut().zip(row) {
            *sum += count;
        }
    }
    gathered
}

/// The breakdown table from receipts per value and month (`counts[value][month]`).
pub fn build_breakdown(
    breakdown: &Breakdown,
    counts: &BTreeMap<String, Vec<i64>>,
    months: usize,
    minimum: i64,
) -> Option<BreakdownTable> {
    let kind = breakdown.kind()?;
    let gathered;
    let counts = if matches!(breakdown, Breakdown::District(_)) {
        gathered = gather_rare_districts(counts, months, minimum);
        &gathered
    } else {
        counts
    };
    let mut values: Vec<&String> = counts.keys().collect();
    values.sort_by_key(|value| breakdown_order(value));
    let matrix: Vec<Vec<i64>> = values.iter().map(|value| counts[*value].clone()).collect();
    // Rows × (months + period), the last line the totals; None where hidden.
    let lines: Vec<Vec<Option<i64>>> = if matrix.is_empty() {
        vec![vec![Some(0); months + 1]]
    } else {
        let mask = suppress(&matrix, minimum);
        with_totals(&matrix)
            .into_iter()
            .zip(mask.hidden)
            .map(|(line, hidden)| {
                line.into_iter()
                    .zip(hidden)
                    .map(|(value, hidden)| (!hidden).then_some(value))
                    .collect()
            })
            .collect()
    };
    let row = |id: &str, name: Localized, mut cells: Vec<Option<i64>>| {
        let period = cells.pop().flatten();
        BreakdownRow {
            id: id.to_owned(),
            name,
            received: cells,
            period,
        }
    };
    let mut lines = lines.into_iter();
    let rows: Vec<BreakdownRow> = values
        .iter()
        .zip(lines.by_ref())
        .map(|(value, cells)| row(value, breakdown.name_of(value), cells))
        .collect();
    let total = row(
        "total",
        Localized::new("合計", "Total"),
        lines.next().unwrap_or_default(),
    );
    Some(BreakdownTable {
        kind: kind.to_owned(),
        title: breakdown.title(),
        definition: breakdown_definition(kind),
        rows,
        total,
    })
}

fn share(numerator: i64, denominator: i64) -> Option<f64> {
    #[allow(clippy::cast_precision_loss)]
    (denominator > 0).then(|| (numerator as f64 * 1000.0 / denominator as f64).round() / 10.0)
}

/// The grid (with totals) of one measure: groups × months.
fn matrix(groups: &[Group], value: impl Fn(&Raw) -> i64) -> Vec<Vec<i64>> {
    groups
        .iter()
        .map(|group| group.months.iter().map(&value).collect())
        .collect()
}

/// Hides a share's numerator where its denominator is hidden, or where what is left of the
/// denominator (denominator − numerator) is itself a small count.
fn numerator_mask(
    numerators: &[Vec<i64>],
    denominators: &[Vec<i64>],
    denominator_mask: &Mask,
    minimum: i64,
) -> Mask {
    let numerator_grid = with_totals(numerators);
    let denominator_grid = with_totals(denominators);
    let mut forced = denominator_mask.clone();
    for (r, row) in forced.hidden.iter_mut().enumerate() {
        for (c, hidden) in row.iter_mut().enumerate() {
            let rest = denominator_grid[r][c] - numerator_grid[r][c];
            *hidden |= rest > 0 && rest < minimum;
        }
    }
    suppress_with(numerators, minimum, Some(&forced))
}

/// The suppressed rows and the total row.
fn publish(
    context: &Context<'_>,
    groups: &[Group],
    all: &[&Vec<Raw>],
) -> (Vec<RowStatistics>, RowStatistics) {
    let minimum = context.settings.minimum_cell;
    let months = context.months.len();
    let total_group = group(
        "total".to_owned(),
        Localized::new("全手続", "All procedures"),
        all,
        months,
    );
    if groups.is_empty() {
        let empty = RowStatistics {
            id: total_group.id,
            name: total_group.name,
            months: vec![Cells::default(); months],
            period: Cells::default(),
        };
        return (Vec::new(), empty);
    }
    let received = matrix(groups, |raw| raw.received);
    let decided = matrix(groups, Raw::decided);
    let with_standard = matrix(groups, |raw| raw.with_standard);
    let received_mask = suppress(&received, minimum);
    let decided_mask = suppress(&decided, minimum);
    let standard_mask = suppress(&with_standard, minimum);
    let signed_mask = numerator_mask(
        &matrix(groups, |raw| raw.card_signed),
        &received,
        &received_mask,
        minimum,
    );
    let returned_mask = numerator_mask(
        &matrix(groups, |raw| raw.returned),
        &received,
        &received_mask,
        minimum,
    );
    let withdrawn_mask = numerator_mask(
        &matrix(groups, |raw| raw.withdrawn),
        &received,
        &received_mask,
        minimum,
    );
    let rejected_mask = numerator_mask(
        &matrix(groups, |raw| raw.rejected),
        &decided,
        &decided_mask,
        minimum,
    );
    let within_mask = numerator_mask(
        &matrix(groups, |raw| raw.within_standard),
        &with_standard,
        &standard_mask,
        minimum,
    );
    // An amount is hidden exactly where its count is: whether a hidden cell can be worked out
    // from totals depends only on which cells are hidden, so the count's mask protects it too.
    let paid_mask = suppress(&matrix(groups, |raw| raw.paid), minimum);
    let refunded_mask = suppress(&matrix(groups, |raw| raw.refunded), minimum);
    let late_mask = suppress(&matrix(groups, |raw| raw.late_successes), minimum);
    // Overdue counts are snapshots: they add across rows but not across months, so each
    // month is its own one-column table; the period shows the last month's.
    let overdue_masks: Vec<Mask> = (0..months)
        .map(|month| {
            let column: Vec<Vec<i64>> = groups
                .iter()
                .map(|g| vec![g.months[month].overdue])
                .collect();
            suppress(&column, minimum)
        })
        .collect();

    let days: Vec<i64> = context
        .months
        .iter()
        .map(|month| days_counted(*month, context.today))
        .collect();
    let period_days: i64 = days.iter().sum();

    let mut members: Vec<&Group> = groups.iter().collect();
    members.push(&total_group);
    let mut published = Vec::new();
    for (r, group) in members.iter().enumerate() {
        let period_raw = group.months.iter().fold(Raw::default(), |mut sum, raw| {
            sum.add(raw);
            sum
        });
        let period_counter = group
            .counter
            .iter()
            .try_fold(0, |sum, count| count.map(|c| sum + c));
        let cells_of = |c: usize, raw: &Raw, counter: Option<i64>, day_count: i64| {
            let mut cells = Cells::default();
            let mut hidden: Vec<String> = Vec::new();
            let mut hide = |key: &str| hidden.push(key.to_owned());
            if received_mask.hidden[r][c] {
                hide("received");
                hide("received_per_day");
            } else {
                cells.received = Some(raw.received);
                #[allow(clippy::cast_precision_loss)]
                {
                    cells.received_per_day = (day_count > 0)
                        .then(|| (raw.received as f64 * 10.0 / day_count as f64).round() / 10.0);
                }
            }
            if signed_mask.hidden[r][c] {
                hide("card_signed_share");
            } else {
                cells.card_signed_share = share(raw.card_signed, raw.received);
            }
            match counter {
                Some(count) if !(received_mask.hidden[r][c] || (count > 0 && count < minimum)) => {
                    cells.online_share = share(raw.received, raw.received + count);
                }
                Some(_) => hide("online_share"),
                None => {}
            }
            if decided_mask.hidden[r][c] {
                hide("decided");
                hide("median_days");
                hide("p90_days");
            } else {
                cells.decided = Some(raw.decided());
                cells.median_days = raw.histogram.percentile_disc(0.5);
                cells.p90_days = raw.histogram.percentile_disc(0.9);
            }
            if within_mask.hidden[r][c] {
                hide("within_standard_share");
            } else {
                cells.within_standard_share = share(raw.within_standard, raw.with_standard);
            }
            if returned_mask.hidden[r][c] {
                hide("return_rate");
            } else {
                cells.return_rate = share(raw.returned, raw.received);
            }
            if withdrawn_mask.hidden[r][c] {
                hide("withdrawal_rate");
            } else {
                cells.withdrawal_rate = share(raw.withdrawn, raw.received);
            }
            if rejected_mask.hidden[r][c] {
                hide("rejection_rate");
            } else {
                cells.rejection_rate = share(raw.rejected, raw.decided());
            }
            if paid_mask.hidden[r][c] {
                hide("paid");
                hide("paid_yen");
            } else {
                cells.paid = Some(raw.paid);
                cells.paid_yen = Some(raw.paid_yen);
            }
            if refunded_mask.hidden[r][c] {
                hide("refunded");
                hide("refunded_yen");
            } else {
                cells.refunded = Some(raw.refunded);
                cells.refunded_yen = Some(raw.refunded_yen);
            }
            if late_mask.hidden[r][c] {
                hide("late_successes");
            } else {
                cells.late_successes = Some(raw.late_successes);
            }
            cells.hidden = hidden;
            cells
        };
        let mut month_cells: Vec<Cells> = (0..months)
            .map(|m| cells_of(m, &group.months[m], group.counter[m], days[m]))
            .collect();
        let mut period = cells_of(months, &period_raw, period_counter, period_days);
        // Cumulative receipts: only while every month so far is shown (else a difference of
        // two cumulative figures would give a hidden month).
        let mut running = Some(0);
        for cells in &mut month_cells {
            running = running.zip(cells.received).map(|(sum, count)| sum + count);
            cells.cumulative = running;
            if running.is_none() {
                cells.hidden.push("cumulative".to_owned());
            }
        }
        period.cumulative = running;
        if running.is_none() {
            period.hidden.push("cumulative".to_owned());
        }
        for (m, cells) in month_cells.iter_mut().enumerate() {
            // Row r of the one-column table; the total row is its column total.
            if overdue_masks[m].hidden[r][0] {
                cells.hidden.push("overdue_at_end".to_owned());
            } else {
                cells.overdue_at_end = Some(group.months[m].overdue);
            }
        }
        if let Some(last) = month_cells.last() {
            period.overdue_at_end = last.overdue_at_end;
            if last.hidden.iter().any(|key| key == "overdue_at_end") {
                period.hidden.push("overdue_at_end".to_owned());
            }
        }
        published.push(RowStatistics {
            id: group.id.clone(),
            name: group.name.clone(),
            months: month_cells,
            period,
        });
    }
    let total = published.pop().unwrap_or_else(|| RowStatistics {
        id: "total".to_owned(),
        name: Localized::new("全手続", "All procedures"),
        months: Vec::new(),
        period: Cells::default(),
    });
    (published, total)
}

#[derive(QueryableByName)]
struct BreakdownCount {
    #[diesel(sql_type = Date)]
    month: NaiveDate,
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Receipts per breakdown value and month of `months`, of `kind`, for `divisions` (None: all).
pub async fn load_breakdown(
    connection: &mut AsyncPgConnection,
    kind: &str,
    divisions: Option<&[String]>,
    months: &[NaiveDate],
) -> Result<BTreeMap<String, Vec<i64>>, DbError> {
    let (Some(first), Some(last)) = (months.first().copied(), months.last().copied()) else {
        return Ok(BTreeMap::new());
    };
    let end = last.checked_add_months(Months::new(1)).unwrap_or(last);
    let divisions: Option<Vec<String>> = divisions.map(<[String]>::to_vec);
    let rows: Vec<BreakdownCount> = diesel::sql_query(
        "SELECT month, value, sum(received)::bigint AS count FROM statistics_breakdown_monthly
          WHERE kind = $1 AND month >= $2 AND month < $3
            AND ($4::text[] IS NULL OR division = ANY($4))
          GROUP BY month, value",
    )
    .bind::<Text, _>(kind)
    .bind::<Date, _>(first)
    .bind::<Date, _>(end)
    .bind::<Nullable<Array<Text>>, _>(&divisions)
    .load(connection)
    .await
    .map_err(DbError::classify)?;
    let mut counts: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for row in rows {
        if let Some(position) = months.iter().position(|m| *m == row.month) {
            counts
                .entry(row.value)
                .or_insert_with(|| vec![0; months.len()])[position] += row.count;
        }
    }
    Ok(counts)
}

/// The report of the configured period up to `today`: everything (`divisions` None, the public
/// one) or the given divisions' procedures; with the breakdown the city opted into.
pub async fn report(
    connection: &mut AsyncPgConnection,
    catalog: &Catalog,
    settings: &StatisticsSettings,
    breakdown: &Breakdown,
    divisions: Option<&[String]>,
    today: NaiveDate,
) -> Result<StatisticsReport, DbError> {
    let months = months_ending(today, settings.months);
    let raws = load(connection, divisions, &months).await?;
    let mut report = build(
        &Context {
            catalog,
            settings,
            months: &months,
            today,
        },
        &raws,
    );
    if let Some(kind) = breakdown.kind() {
        let counts = load_breakdown(connection, kind, divisions, &months).await?;
        report.breakdown = build_breakdown(breakdown, &counts, months.len(), settings.minimum_cell);
    }
    Ok(report)
}

/// Calendar days a month counts for the per-day average: all of them, or up to today.
fn days_counted(month: NaiveDate, today: NaiveDate) -> i64 {
    let next = month.checked_add_months(Months::new(1)).unwrap_or(month);
    let end = if today >= month && today < next {
        today.succ_opt().unwrap_or(today)
    } else if today < month {
        month
    } else {
        next
    };
    (end - month).num_days()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn months_end_with_the_current_one() {
        let months = months_ending(day("2026-02-14"), 3);
        assert_eq!(
            months,
            vec![day("2025-12-01"), day("2026-01-01"), day("2026-02-01")]
        );
    }

    #[test]
    fn per_day_counts_the_days_so_far() {
        assert_eq!(days_counted(day("2026-02-01"), day("2026-02-14")), 14);
        assert_eq!(days_counted(day("2026-01-01"), day("2026-02-14")), 31);
        assert_eq!(days_counted(day("2026-03-01"), day("2026-02-14")), 0);
    }

    #[test]
    fn a_small_breakdown_cell_is_hidden_with_its_complements() {
        let breakdown = Breakdown::AgeBand;
        let counts: BTreeMap<String, Vec<i64>> = [
            ("30-39".to_owned(), vec![9, 40]),
            ("40-49".to_owned(), vec![30, 25]),
            ("unknown".to_owned(), vec![12, 50]),
            ("20-29".to_owned(), vec![70, 33]),
        ]
        .into_iter()
        .collect();
        let table = build_breakdown(&breakdown, &counts, 2, 10).unwrap();
        let ids: Vec<&str> = table.rows.iter().map(|row| row.id.as_str()).collect();
        assert_eq!(ids, ["20-29", "30-39", "40-49", "unknown"]);
        let thirties = &table.rows[1];
        assert_eq!(
            thirties.received,
            vec![None, None],
            "9 and its row complement"
        );
        // Column 0 loses another cell, and no shown figure gives the 9 back.
        let hidden_in_first_month = table
            .rows
            .iter()
            .filter(|row| row.received[0].is_none())
            .count();
        assert!(hidden_in_first_month >= 2);
        assert_eq!(table.total.period, Some(269));
        assert_eq!(table.rows[0].period, Some(103));
        assert!(build_breakdown(&Breakdown::None, &counts, 2, 10).is_none());
    }

    #[test]
    fn rarely_seen_districts_are_shown_only_together() {
        let districts = crate::statistics_breakdown::Districts::parse(
            "大聖寺,0010-00,大聖寺\n山代温泉,0030-00,山代温泉\n橋立町,0080-00,橋立町\n塩屋町,0090-00,塩屋町\n",
            "加賀市",
        )
        .unwrap();
        let counts: BTreeMap<String, Vec<i64>> = [
            ("0010-00".to_owned(), vec![30, 40]),
            ("0030-00".to_owned(), vec![25, 20]),
            ("0080-00".to_owned(), vec![2, 3]),
            ("0090-00".to_owned(), vec![0, 4]),
            ("unknown".to_owned(), vec![1, 0]),
        ]
        .into_iter()
        .collect();
        let table = build_breakdown(&Breakdown::District(districts), &counts, 2, 10).unwrap();
        let ids: Vec<&str> = table.rows.iter().map(|row| row.id.as_str()).collect();
        assert_eq!(ids, ["0010-00", "0030-00", "other", "unknown"]);
        assert_eq!(table.rows[2].name.ja, "その他の町丁目");
        // 2 + 3 + 4: shown together only as a row of hidden small cells with its total.
        assert_eq!(table.rows[2].period, None, "9 is under the minimum");
        assert_eq!(table.total.period, Some(125));
    }

    #[test]
    fn shares_round_to_a_tenth_of_a_percent() {
        assert_eq!(share(1, 3), Some(33.3));
        assert_eq!(share(0, 0), None);
    }
}
