//! The daily settlement report: the provider's file of the sales it settled on a day, compared
//! with the payments we recorded as succeeded that day (city time). Every difference is stored
//! for the city's accountant:
//!
//! - `missing`: we recorded a success the provider does not list;
//! - `amount_differs`: both know the order, for different amounts;
//! - `unknown`: the provider lists an order we have no payment for;
//! - `status_differs`: the provider lists a sale of a payment we do not hold as succeeded.
//!
//! One report per provider and day. The worker that inserts the report row does the comparison
//! in the same transaction; another worker waits on the unique key and then finds it done, so
//! several workers never report a day twice. A failed download rolls back and is tried again.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::PaymentError;
use super::provider::{PaymentProvider, SettledSale};
use crate::db::schema::{payments, settlement_mismatches, settlement_reports, submissions};

/// One difference between the provider's file and our payments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Mismatch {
    pub settlement_date: NaiveDate,
    /// `missing`, `amount_differs`, `unknown` or `status_differs`.
    pub kind: String,
    pub order_id: String,
    pub payment_id: Option<Uuid>,
    pub our_amount_yen: Option<i64>,
    pub provider_amount_yen: Option<i64>,
    pub provider_reference: Option<String>,
}

/// What one day's report found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// False when the day had been reported already (by this or another worker).
    pub made: bool,
    pub provider_lines: usize,
    pub our_payments: usize,
    pub mismatches: usize,
}

/// The city's midnight that starts `date` (Japan, UTC+9, no daylight saving), in UTC.
fn city_midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_hms_opt(0, 0, 0)
        .map(|at| at.and_utc() - chrono::Duration::hours(9))
        .unwrap_or_default()
}

/// The comparison itself: pure, so the rules are unit-tested without a provider.
pub fn compare(
    date: NaiveDate,
    ours: &[(Uuid, String, i64)],
    others: &[(Uuid, String, i64, String)],
    sales: &[SettledSale],
) -> Vec<Mismatch> {
    let mut found = Vec::new();
    for (payment_id, order_id, amount) in ours {
        match sales.iter().find(|sale| &sale.order_id == order_id) {
            None => found.push(Mismatch {
                settlement_date: date,
                kind: "missing".to_owned(),
                order_id: order_id.clone(),
                payment_id: Some(*payment_id),
                our_amount_yen: Some(*amount),
                provider_amount_yen: None,
                provider_reference: None,
            }),
            Some(sale) if sale.amount_yen != *amount => found.push(Mismatch {
                settlement_date: date,
                kind: "amount_differs".to_owned(),
                order_id: order_id.clone(),
                payment_id: Some(*payment_id),
                our_amount_yen: Some(*amount),
                provider_amount_yen: Some(sale.amount_yen),
                provider_reference: sale.provider_reference.clone(),
            }),
            Some(_) => {}
        }
    }
    for sale in sales {
        if ours
            .iter()
            .any(|(_, order_id, _)| order_id == &sale.order_id)
        {
            continue;
        }
        let known = others
            .iter()
            .find(|(_, order_id, _, _)| order_id == &sale.order_id);
        // A success recorded on another day is no mismatch when the amounts agree (a payment
        // made just before midnight and settled after it).
        if let Some((_, _, amount, status)) = known
            && status == "succeeded"
            && *amount == sale.amount_yen
        {
            continue;
        }
        found.push(Mismatch {
            settlement_date: date,
            kind: match known {
                None => "unknown",
                Some((_, _, _, status)) if status != "succeeded" => "status_differs",
                Some(_) => "amount_differs",
            }
            .to_owned(),
            order_id: sale.order_id.clone(),
            payment_id: known.map(|(id, _, _, _)| *id),
            our_amount_yen: known.map(|(_, _, amount, _)| *amount),
            provider_amount_yen: Some(sale.amount_yen),
            provider_reference: sale.provider_reference.clone(),
        });
    }
    found
}

/// Makes the report of `date` unless it exists: downloads the provider's file and stores the
/// differences, all in one transaction.
pub async fn report(
    connection: &mut AsyncPgConnection,
    provider: &dyn PaymentProvider,
    date: NaiveDate,
) -> Result<Report, PaymentError> {
    connection
        .transaction::<Report, PaymentError, _>(|connection| {
            Box::pin(async move {
                let id = Uuid::now_v7();
                let inserted = diesel::insert_into(settlement_reports::table)
                    .values((
                        settlement_reports::id.eq(id),
                        settlement_reports::provider.eq(provider.name()),
                        settlement_reports::settlement_date.eq(date),
                    ))
                    .on_conflict_do_nothing()
                    .execute(connection)
                    .await?;
                if inserted == 0 {
                    return Ok(Report::default());
                }
                let sales = provider.settlement(date).await?;
                let (from, to) = (city_midnight(date), city_midnight(date + chrono::Days::new(1)));
                let ours: Vec<(Uuid, String, i64)> = payments::table
                    .filter(payments::provider.eq(provider.name()))
                    .filter(payments::status.eq("succeeded"))
                    .filter(payments::settled_at.ge(from))
                    .filter(payments::settled_at.lt(to))
                    .select((payments::id, payments::order_id, payments::amount_yen))
                    .load(connection)
                    .await?;
                let listed: Vec<String> = sales.iter().map(|sale| sale.order_id.clone()).collect();
                let others: Vec<(Uuid, String, i64, String)> = payments::table
                    .filter(payments::provider.eq(provider.name()))
                    .filter(payments::order_id.eq_any(listed))
                    .select((
                        payments::id,
                        payments::order_id,
                        payments::amount_yen,
                        payments::status,
                    ))
                    .load(connection)
                    .await?;
                let found = compare(date, &ours, &others, &sales);
                for mismatch in &found {
                    diesel::insert_into(settlement_mismatches::table)
                        .values((
                            settlement_mismatches::report_id.eq(id),
                            settlement_mismatches::kind.eq(&mismatch.kind),
                            settlement_mismatches::order_id.eq(&mismatch.order_id),
                            settlement_mismatches::payment_id.eq(mismatch.payment_id),
                            settlement_mismatches::our_amount_yen.eq(mismatch.our_amount_yen),
                            settlement_mismatches::provider_amount_yen
                                .eq(mismatch.provider_amount_yen),
                            settlement_mismatches::provider_reference
                                .eq(&mismatch.provider_reference),
                        ))
                        .execute(connection)
                        .await?;
                }
                diesel::update(settlement_reports::table.find(id))
                    .set((
                        settlement_reports::provider_lines.eq(sales.len() as i32),
                        settlement_reports::our_payments.eq(ours.len() as i32),
                        settlement_reports::mismatches.eq(found.len() as i32),
                    ))
                    .execute(connection)
                    .await?;
                if !found.is_empty() {
                    tracing::warn!(provider = provider.name(), %date, mismatches = found.len(), "settlement differs from our payments");
                }
                Ok(Report {
                    made: true,
                    provider_lines: sales.len(),
                    our_payments: ours.len(),
                    mismatches: found.len(),
                })
            })
        })
        .await
}

/// The mismatches an admin of `divisions` may see, newest day first: those of payments of their
/// divisions, and those of orders we have no payment for (no division; the accountant's).
pub async fn mismatches(
    connection: &mut AsyncPgConnection,
    divisions: &[String],
) -> Result<Vec<Mismatch>, PaymentError> {
    type MismatchRow = (
        NaiveDate,
        String,
        String,
        Option<Uuid>,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<MismatchRow> = settlement_mismatches::table
        .inner_join(settlement_reports::table)
        .left_join(payments::table.left_join(submissions::table))
        .order((
            settlement_reports::settlement_date.desc(),
            settlement_mismatches::id,
        ))
        .limit(1000)
        .select((
            settlement_reports::settlement_date,
            settlement_mismatches::kind,
            settlement_mismatches::order_id,
            settlement_mismatches::payment_id,
            settlement_mismatches::our_amount_yen,
            settlement_mismatches::provider_amount_yen,
            settlement_mismatches::provider_reference,
            submissions::division.nullable(),
        ))
        .load(connection)
        .await?;
    Ok(rows
        .into_iter()
        .filter(|row| {
            row.7
                .as_ref()
                .is_none_or(|division| divisions.contains(division))
        })
        .map(
            |(
                settlement_date,
                kind,
                order_id,
                payment_id,
                our_amount_yen,
                provider_amount_yen,
                provider_reference,
                _,
            )| Mismatch {
                settlement_date,
                kind,
                order_id,
                payment_id,
                our_amount_yen,
                provider_amount_yen,
                provider_reference,
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sale(order_id: &str, amount_yen: i64) -> SettledSale {
        SettledSale {
            order_id: order_id.to_owned(),
            provider_reference: Some(format!("T-{order_id}")),
            amount_yen,
        }
    }

    #[test]
    fn each_kind_of_difference_is_found_once() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 5).expect("date");
        let (a, b, c, d) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let ours = vec![
            (a, "A".to_owned(), 1010),
            (b, "B".to_owned(), 450),
            (c, "C".to_owned(), 300),
        ];
        let others = vec![
            (d, "D".to_owned(), 860, "pending".to_owned()),
            (Uuid::now_v7(), "E".to_owned(), 300, "succeeded".to_owned()),
        ];
        let sales = vec![
            sale("B", 45),
            sale("C", 300),
            sale("D", 860),
            sale("E", 300),
            sale("X", 999),
        ];
        let found = compare(date, &ours, &others, &sales);
        let kinds: Vec<(&str, &str)> = found
            .iter()
            .map(|m| (m.kind.as_str(), m.order_id.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("missing", "A"),
                ("amount_differs", "B"),
                ("status_differs", "D"),
                ("unknown", "X")
            ]
        );
        assert_eq!(
            (found[1].our_amount_yen, found[1].provider_amount_yen),
            (Some(450), Some(45))
        );
        assert!(compare(date, &ours[2..], &[], &sales[1..2]).is_empty());
    }

    #[test]
    fn a_city_day_starts_at_midnight_in_japan() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 6).expect("date");
        assert_eq!(
            city_midnight(date).to_rfc3339(),
            "2026-12-05T15:00:00+00:00"
        );
    }
}
