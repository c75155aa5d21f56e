//! Fee breakdowns: what a definition's `fee` costs for given answers, line by line (fees,
//! return postage, claimed exemptions), and the check that no fee expression can come out
//! negative or fractional.
//!
//! The breakdown is computed on the server from the pinned definition and frozen with the
//! application; a client never supplies an amount.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::logic;
use super::model::{Condition, Definition, Fee, FieldType, PaymentTiming, PerUnitFee};
use crate::messages::Localized;

/// The line id of a fee written directly under `fee` (`fixed`, `per_unit` or `computed`).
pub const SINGLE_LINE: &str = "fee";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Fee,
    Postage,
    /// Negative: it waives the fee lines, pending a clerk's confirmation.
    Exemption,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BreakdownLine {
    pub kind: LineKind,
    pub id: String,
    pub label: Localized,
    pub yen: i64,
}

/// What an application costs, as frozen with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FeeBreakdown {
    pub lines: Vec<BreakdownLine>,
    /// What the resident pays: the sum of the lines, never below zero.
    pub total_yen: i64,
    /// Absent when the fee is not paid online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timing: Option<PaymentTiming>,
}

impl FeeBreakdown {
    /// The fee lines alone (手数料), before any exemption.
    pub fn fee_yen(&self) -> i64 {
        self.lines
            .iter()
            .filter(|line| line.kind == LineKind::Fee)
            .map(|line| line.yen)
            .sum()
    }

    /// Yen by line id plus `total`: the shape examples assert.
    pub fn by_id(&self) -> BTreeMap<String, i64> {
        let mut map: BTreeMap<String, i64> = BTreeMap::new();
        for line in &self.lines {
            *map.entry(line.id.clone()).or_default() += line.yen;
        }
        map.insert("total".to_owned(), self.total_yen);
        map
    }
}

/// The breakdown for accepted data; `None` when the procedure is free.
pub fn breakdown(definition: &Definition, data: &Value) -> Option<FeeBreakdown> {
    let fee = definition.fee.as_ref()?;
    let mut lines = Vec::new();
    for (id, label, amount) in amounts(fee) {
        let yen = match amount {
            Amount::Fixed(yen) => yen as i64,
            Amount::PerUnit(per_unit) => {
                let units = data.get(&per_unit.quantity).and_then(Value::as_u64);
                (per_unit.amount * units.unwrap_or(0)) as i64
            }
            Amount::Computed(expression) => match evaluate(expression, data) {
                Ok(yen) => yen,
                Err(problem) => {
                    // `forms check` probes every expression, so this is a gap in its probing:
                    // charge nothing rather than a wrong amount, and say so.
                    tracing::warn!(procedure = %definition.id, line = %id, %problem, "fee expression failed");
                    0
                }
            },
        };
        lines.push(BreakdownLine {
            kind: LineKind::Fee,
            id,
            label,
            yen,
        });
    }
    let fees: i64 = lines.iter().map(|line| line.yen).sum();
    if let Some(exemption) = fee
        .exemptions
        .iter()
        .find(|exemption| logic::holds(&exemption.when, data))
        && fees > 0
    {
        lines.push(BreakdownLine {
            kind: LineKind::Exemption,
            id: exemption.id.clone(),
            label: exemption.reason.clone(),
            yen: -fees,
        });
    }
    for postage in &fee.postage {
        if postage
            .when
            .as_ref()
            .is_none_or(|when| logic::holds(when, data))
        {
            lines.push(BreakdownLine {
                kind: LineKind::Postage,
                id: postage.rate.clone(),
                label: postage
                    .label
                    .clone()
                    .unwrap_or_else(|| Localized::new("郵送料", "Postage")),
                yen: postage.yen.unwrap_or(0) as i64,
            });
        }
    }
    let total_yen = lines.iter().map(|line| line.yen).sum::<i64>().max(0);
    Some(FeeBreakdown {
        lines,
        total_yen,
        timing: definition.payment.as_ref().map(|payment| payment.timing),
    })
}

pub(crate) enum Amount<'a> {
    Fixed(u64),
    PerUnit(&'a PerUnitFee),
    Computed(&'a Condition),
}

/// Every fee line with its id, label and amount: the single line written under `fee`, or the
/// named `lines`.
pub(crate) fn amounts(fee: &Fee) -> Vec<(String, Localized, Amount<'_>)> {
    let single = fee
        .fixed
        .map(Amount::Fixed)
        .or(fee.per_unit.as_ref().map(Amount::PerUnit))
        .or(fee.computed.as_ref().map(Amount::Computed));
    if let Some(amount) = single {
        return vec![(
            SINGLE_LINE.to_owned(),
            Localized::new("手数料", "Fee"),
            amount,
        )];
    }
    fee.lines
        .iter()
        .filter_map(|line| {
            let amount = line
                .fixed
                .map(Amount::Fixed)
                .or(line.per_unit.as_ref().map(Amount::PerUnit))
                .or(line.computed.as_ref().map(Amount::Computed))?;
            Some((line.id.clone(), line.label.clone(), amount))
        })
        .collect()
}

/// A computed fee in whole, non-negative yen, or why not.
pub fn evaluate(expression: &Condition, data: &Value) -> Result<i64, String> {
    let value = logic::evaluate(expression, data).map_err(|error| error.to_string())?;
    let Some(yen) = value.as_f64() else {
        return Err(format!("gives {value}, not a number"));
    };
    if !yen.is_finite() || yen.fract() != 0.0 {
        return Err(format!("gives {yen} yen, not a whole number"));
    }
    if yen < 0.0 {
        return Err(format!("gives {yen} yen, a negative amount"));
    }
    Ok(yen as i64)
}

/// The answers `forms check` evaluates every fee expression on: each base (the valid examples'
/// data), then each base with one top-level field moved to each of its boundary values
/// (integers: min, max, and 0 when unbounded below; choices: every option; yes/no: both), then
/// every base with all integers at their minimum and at their maximum.
pub fn probes(definition: &Definition, bases: &[Map<String, Value>]) -> Vec<(String, Value)> {
    let mut boundaries: Vec<(&str, Vec<Value>)> = Vec::new();
    let mut lows = Map::new();
    let mut highs = Map::new();
    for field in definition.pages.iter().flat_map(|page| page.fields.iter()) {
        let values: Vec<Value> = match field.kind() {
            FieldType::Integer | FieldType::Money | FieldType::Decimal => {
                let low = field.min.clone().unwrap_or(Value::from(0));
                let high = field.max.clone().unwrap_or(Value::from(999));
                lows.insert(field.id.clone(), low.clone());
                highs.insert(field.id.clone(), high.clone());
                vec![low, high]
            }
            FieldType::Select | FieldType::Radio => field
                .options
                .iter()
                .map(|choice| Value::from(choice.value.clone()))
                .collect(),
            FieldType::Boolean | FieldType::Consent => vec![Value::Bool(true), Value::Bool(false)],
            _ => continue,
        };
        boundaries.push((field.id.as_str(), values));
    }
    let mut probes = Vec::new();
    for (index, base) in bases.iter().enumerate() {
        let described = |change: &str| format!("example {} with {change}", index + 1);
        probes.push((described("its own answers"), Value::Object(base.clone())));
        for (id, values) in &boundaries {
            for value in values {
                let mut data = base.clone();
                data.insert((*id).to_owned(), value.clone());
                probes.push((described(&format!("{id} = {value}")), Value::Object(data)));
            }
        }
        for (name, extremes) in [
            ("every number at its minimum", &lows),
            ("every number at its maximum", &highs),
        ] {
            let mut data = base.clone();
            data.extend(extremes.clone());
            probes.push((described(name), Value::Object(data)));
        }
    }
    probes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn definition(fee: Value) -> Definition {
        serde_json::from_value(json!({
            "id": "x", "version": 1, "title": {"ja": "x", "en": "x"}, "category": "koseki",
            "division": "madoguchi", "assurance": "none", "processing_days": 1,
            "fee": fee,
            "payment": {"timing": "at_submit"},
            "pages": [{"id": "p", "title": {"ja": "p", "en": "p"}, "fields": [
                {"id": "copies", "type": "integer", "min": 1, "max": 10},
                {"id": "pension", "type": "boolean"},
                {"id": "evidence", "type": "text"}
            ]}]
        }))
        .unwrap()
    }

    #[test]
    fn lines_postage_and_an_exemption_add_up() {
        let definition = definition(json!({
            "lines": [
                {"id": "copies", "label": {"ja": "戸籍", "en": "Copies"}, "per_unit": {"amount": 450, "quantity": "copies"}},
                {"id": "handling", "label": {"ja": "手数料", "en": "Handling"}, "fixed": 100}
            ],
            "postage": [{"rate": "standard_letter", "yen": 110}],
            "exemptions": [{"id": "pension", "reason": {"ja": "年金", "en": "Pension"}, "evidence": "evidence", "when": {"var": "pension"}}]
        }));
        let paid = breakdown(&definition, &json!({"copies": 2})).unwrap();
        assert_eq!(paid.total_yen, 1110);
        assert_eq!(paid.fee_yen(), 1000);
        assert_eq!(paid.by_id()["standard_letter"], 110);
        assert_eq!(paid.timing, Some(PaymentTiming::AtSubmit));
        let exempt = breakdown(&definition, &json!({"copies": 2, "pension": true})).unwrap();
        assert_eq!(exempt.by_id()["pension"], -1000);
        assert_eq!(exempt.total_yen, 110, "postage is still paid");
    }

    #[test]
    fn a_computed_fee_must_be_whole_and_not_negative() {
        let data = json!({"copies": 3});
        assert_eq!(
            evaluate(&json!({"*": [{"var": "copies"}, 450]}), &data),
            Ok(1350)
        );
        assert!(evaluate(&json!({"*": [{"var": "copies"}, 0.5]}), &data).is_err());
        assert!(evaluate(&json!({"-": [100, {"*": [{"var": "copies"}, 50]}]}), &data).is_err());
        assert!(evaluate(&json!({"cat": ["a", 1]}), &data).is_err());
    }

    #[test]
    fn probes_reach_the_boundaries_of_every_field() {
        let definition = definition(json!({"fixed": 1}));
        assert!(
            probes(&definition, &[]).is_empty(),
            "nothing to vary without an example"
        );
        let base = json!({"copies": 2}).as_object().unwrap().clone();
        let probes = probes(&definition, &[base]);
        let copies: Vec<&Value> = probes
            .iter()
            .filter_map(|(_, data)| data.get("copies"))
            .collect();
        assert!(copies.contains(&&json!(1)) && copies.contains(&&json!(10)));
        // A discount that only goes wrong at the maximum is caught.
        let expression = json!({"-": [500, {"*": [{"var": "copies"}, 60]}]});
        assert!(
            probes
                .iter()
                .any(|(_, data)| evaluate(&expression, data).is_err())
        );
    }
}
