//! 事後決済 (`payment.timing: after_review`): the amount is known only once staff have looked
//! (a closed register's page count, say). The clerk handling the application sets the fee lines
//! with a reason; the application leaves the queue as 支払待ち, the resident is emailed a payment
//! request, pays as for `at_submit`, and the application comes back to the clerk in progress.
//!
//! Every setting is kept in `fee_requests` (who, why, the breakdown and the one it replaced),
//! and the status change is an event of the application's history with the reason.

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::PaymentError;
use crate::db::schema::{fee_requests, submissions};
use crate::forms::fees::{BreakdownLine, FeeBreakdown, LineKind};
use crate::forms::model::PaymentTiming;
use crate::messages::{FieldError, Localized};
use crate::submissions::ActorKind;
use crate::submissions::lifecycle::Status;

const MAX_LINES: usize = 20;
const MAX_REASON: usize = 400;
/// Far above any municipal fee: a typo of a few zeros is caught here, not at the provider.
const MAX_LINE_YEN: i64 = 1_000_000;

/// One line as staff set it. `label` defaults to the frozen line of the same id, else 手数料 /
/// 郵送料 / 減免.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeeLineInput {
    pub kind: LineKind,
    pub id: String,
    #[serde(default)]
    pub label: Option<Localized>,
    /// Yen: at least 0 for fees and postage, at most 0 for an exemption.
    pub yen: i64,
}

/// Who asks, and whether they may act on an application they are not assigned to.
#[derive(Debug, Clone, Copy)]
pub struct Clerk {
    pub id: Uuid,
    pub supervisor: bool,
}

fn field(path: String, code: &str, ja: &str, en: &str) -> FieldError {
    FieldError {
        path,
        code: code.to_owned(),
        message: Localized::new(ja, en),
    }
}

/// The breakdown staff asked for, checked line by line; the errors name the lines.
pub fn breakdown_from(
    lines: &[FeeLineInput],
    reason: &str,
    frozen: Option<&FeeBreakdown>,
) -> Result<FeeBreakdown, Vec<FieldError>> {
    let mut errors = Vec::new();
    let reason_length = reason.trim().chars().count();
    if reason_length == 0 || reason_length > MAX_REASON {
        errors.push(field(
            "/reason".to_owned(),
            "required",
            "金額を決めた理由を400文字以内で入力してください（申請の履歴に残ります）。",
            "Give the reason for the amount, up to 400 characters (it is kept in the application's history).",
        ));
    }
    if lines.is_empty() || lines.len() > MAX_LINES {
        errors.push(field(
            "/lines".to_owned(),
            "count",
            "明細は1行以上20行以内で入力してください。",
            "Give between 1 and 20 lines.",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let id = line.id.trim();
        if id.is_empty()
            || id.len() > 40
            || !id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            || !seen.insert(id.to_owned())
        {
            errors.push(field(
                format!("/lines/{index}/id"),
                "line_id",
                "明細の識別子は英小文字・数字・_ の40文字以内で、重複しないようにしてください。",
                "A line id is up to 40 lowercase letters, digits or _, and unique.",
            ));
        }
        let in_range = match line.kind {
            LineKind::Fee | LineKind::Postage => (0..=MAX_LINE_YEN).contains(&line.yen),
            LineKind::Exemption => (-MAX_LINE_YEN..=0).contains(&line.yen),
        };
        if !in_range {
            errors.push(field(
                format!("/lines/{index}/yen"),
                "out_of_range",
                "金額は手数料・郵送料なら0円以上100万円以下、減免なら0円以下の整数で入力してください。",
                "An amount is a whole number of yen: 0 to 1,000,000 for a fee or postage, 0 or less for an exemption.",
            ));
        }
        if let Some(label) = &line.label
            && (label.ja.trim().is_empty()
                || label.en.trim().is_empty()
                || label.ja.chars().count() > 60
                || label.en.chars().count() > 60)
        {
            errors.push(field(
                format!("/lines/{index}/label"),
                "required",
                "明細の名前は日本語と英語で60文字以内で入力してください。",
                "A line's label is given in Japanese and English, up to 60 characters each.",
            ));
        }
        let label = line.label.clone().unwrap_or_else(|| {
            frozen
                .and_then(|frozen| frozen.lines.iter().find(|known| known.id == id))
                .map(|known| known.label.clone())
                .unwrap_or_else(|| match line.kind {
                    LineKind::Fee => Localized::new("手数料", "Fee"),
                    LineKind::Postage => Localized::new("郵送料", "Postage"),
                    LineKind::Exemption => Localized::new("減免", "Exemption"),
                })
        });
        out.push(BreakdownLine {
            kind: line.kind,
            id: id.to_owned(),
            label,
            yen: line.yen,
        });
    }
    let total_yen: i64 = out.iter().map(|line| line.yen).sum();
    if errors.is_empty() && total_yen <= 0 {
        errors.push(field(
            "/lines".to_owned(),
            "nothing_to_pay",
            "合計が0円以下です。支払が不要なら、支払を依頼せずに処理を続けてください。",
            "The total is 0 yen or less; if nothing is to be paid, carry on without asking for payment.",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(FeeBreakdown {
        lines: out,
        total_yen,
        timing: Some(PaymentTiming::AfterReview),
    })
}

/// The division of an application in `divisions`; `NotFound` for any other.
pub async fn division_of(
    connection: &mut AsyncPgConnection,
    divisions: &[String],
    submission_id: Uuid,
) -> Result<String, PaymentError> {
    submissions::table
        .find(submission_id)
        .filter(submissions::division.eq_any(divisions))
        .select(submissions::division)
        .first(connection)
        .await
        .optional()?
        .ok_or(PaymentError::NotFound)
}

/// The breakdown frozen with an application: for an `after_review` one, the estimate staff
/// start from.
pub async fn frozen(
    connection: &mut AsyncPgConnection,
    submission_id: Uuid,
) -> Result<Option<FeeBreakdown>, PaymentError> {
    let value: Option<Option<Value>> = submissions::table
        .find(submission_id)
        .select(submissions::fee_breakdown)
        .first(connection)
        .await
        .optional()?;
    Ok(value
        .flatten()
        .and_then(|value| serde_json::from_value(value).ok()))
}

/// Sets the fee of an `after_review` application in progress and asks the resident to pay: one
/// transaction with the application locked (the breakdown, the status, the history, the email
/// in the outbox). Only for the assignee or a supervisor of a division in `divisions`.
pub async fn request_payment(
    connection: &mut AsyncPgConnection,
    context: &crate::submissions::Context<'_>,
    divisions: &[String],
    clerk: Clerk,
    submission_id: Uuid,
    lines: &[FeeLineInput],
    reason: &str,
) -> Result<FeeBreakdown, PaymentError> {
    if !context.payments_online {
        return Err(PaymentError::NotFound);
    }
    let reason = reason.trim().to_owned();
    connection
        .transaction::<FeeBreakdown, PaymentError, _>(|connection| {
            Box::pin(async move {
                type Located = (String, Option<Value>, Option<Uuid>, String, String, Uuid);
                let row: Option<Located> = submissions::table
                    .find(submission_id)
                    .filter(submissions::division.eq_any(divisions))
                    .select((
                        submissions::status,
                        submissions::fee_breakdown,
                        submissions::assignee_id,
                        submissions::reference,
                        submissions::procedure_id,
                        submissions::resident_id,
                    ))
                    .for_update()
                    .first(connection)
                    .await
                    .optional()?;
                let Some((status, frozen, assignee, reference, procedure_id, resident_id)) = row
                else {
                    return Err(PaymentError::NotFound);
                };
                let frozen: Option<FeeBreakdown> =
                    frozen.clone().and_then(|value| serde_json::from_value(value).ok());
                if frozen.as_ref().and_then(|frozen| frozen.timing)
                    != Some(PaymentTiming::AfterReview)
                {
                    return Err(PaymentError::NotAfterReview);
                }
                if Status::parse(&status) != Some(Status::InProgress) {
                    return Err(PaymentError::NotInProgress);
                }
                if assignee != Some(clerk.id) && !clerk.supervisor {
                    return Err(PaymentError::NotAssignee);
                }
                let breakdown = breakdown_from(lines, &reason, frozen.as_ref())
                    .map_err(PaymentError::Invalid)?;
                let value = serde_json::to_value(&breakdown).unwrap_or(Value::Null);
                let now = Utc::now();
                diesel::insert_into(fee_requests::table)
                    .values((
                        fee_requests::id.eq(Uuid::now_v7()),
                        fee_requests::submission_id.eq(submission_id),
                        fee_requests::staff_id.eq(clerk.id),
                        fee_requests::reason.eq(&reason),
                        fee_requests::breakdown.eq(&value),
                        fee_requests::previous
                            .eq(frozen.as_ref().and_then(|f| serde_json::to_value(f).ok())),
                        fee_requests::created_at.eq(now),
                    ))
                    .execute(connection)
                    .await?;
                // The assignee stays: the application comes back to them once paid.
                diesel::update(submissions::table.find(submission_id))
                    .set((
                        submissions::fee_breakdown.eq(&value),
                        submissions::fee_yen.eq(breakdown.fee_yen().max(0)),
                        submissions::status.eq(Status::AwaitingPayment.as_str()),
                        submissions::payment_requested_at.eq(now),
                        submissions::updated_at.eq(now),
                    ))
                    .execute(connection)
                    .await?;
                crate::submissions::record_event(
                    connection,
                    submission_id,
                    ActorKind::Staff,
                    Some(clerk.id),
                    Some(Status::InProgress),
                    Status::AwaitingPayment,
                    Some(&reason),
                )
                .await?;
                let notice = super::notice(
                    connection,
                    context,
                    super::NoticeKind::Request,
                    resident_id,
                    submission_id,
                    &reference,
                    &procedure_id,
                    &breakdown,
                    None,
                )
                .await?;
                crate::notify::enqueue(connection, &notice).await?;
                tracing::info!(submission_id = %submission_id, staff_id = %clerk.id, total_yen = breakdown.total_yen, "payment requested after review");
                Ok(breakdown)
            })
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: LineKind, id: &str, yen: i64) -> FeeLineInput {
        FeeLineInput {
            kind,
            id: id.to_owned(),
            label: None,
            yen,
        }
    }

    #[test]
    fn the_lines_make_the_total_and_keep_the_frozen_labels() {
        let frozen = FeeBreakdown {
            lines: vec![BreakdownLine {
                kind: LineKind::Postage,
                id: "standard_letter".to_owned(),
                label: Localized::new("郵送料（定形）", "Postage (letter)"),
                yen: 110,
            }],
            total_yen: 110,
            timing: Some(PaymentTiming::AfterReview),
        };
        let breakdown = breakdown_from(
            &[
                line(LineKind::Fee, "fee", 2250),
                line(LineKind::Postage, "standard_letter", 140),
            ],
            "改製原戸籍が3つありました",
            Some(&frozen),
        )
        .expect("valid");
        assert_eq!(breakdown.total_yen, 2390);
        assert_eq!(breakdown.fee_yen(), 2250);
        assert_eq!(breakdown.lines[0].label.ja, "手数料");
        assert_eq!(breakdown.lines[1].label.ja, "郵送料（定形）");
    }

    #[test]
    fn bad_lines_are_named() {
        let errors = breakdown_from(
            &[
                line(LineKind::Fee, "fee", -1),
                line(LineKind::Exemption, "Fee", 5),
                line(LineKind::Postage, "fee", 0),
            ],
            " ",
            None,
        )
        .expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|error| error.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/reason",
                "/lines/0/yen",
                "/lines/1/id",
                "/lines/1/yen",
                "/lines/2/id"
            ]
        );
        let free = breakdown_from(&[line(LineKind::Fee, "fee", 0)], "免除", None)
            .expect_err("nothing to pay");
        assert_eq!(free[0].code, "nothing_to_pay");
    }
}
