//! A definition's `fee` and `payment`: the shape of the lines, postage rates from catalog.yaml,
//! exemptions, and that no amount can come out negative or fractional.

use super::*;
use crate::forms::fees::{self, Amount};
use crate::forms::model::{PaymentTiming, PerUnitFee};

/// Checks `fee` and `payment`.
pub(super) fn check_fee(
    definition: &Definition,
    top: &Scope<'_>,
    complete: bool,
    site: Site<'_>,
    collector: &mut Collector,
) {
    let scope = complete.then_some(top);
    if let Some(payment) = &definition.payment
        && payment.timing == PaymentTiming::AtSubmit
        && definition.fee.is_none()
    {
        collector.at(
            site,
            "/payment/timing",
            "`payment.timing: at_submit` needs a `fee` to compute the amount from the answers"
                .to_owned(),
        );
    }
    let Some(fee) = &definition.fee else {
        return;
    };
    let kinds = [
        fee.fixed.is_some(),
        fee.per_unit.is_some(),
        fee.computed.is_some(),
        !fee.lines.is_empty(),
    ];
    if kinds.iter().filter(|set| **set).count() != 1 {
        collector.at(
            site,
            "/fee",
            "`fee` takes exactly one of `fixed`, `per_unit`, `computed`, `lines`".to_owned(),
        );
    }
    let mut ids = HashSet::new();
    if let Some(per_unit) = &fee.per_unit {
        check_quantity(
            per_unit,
            top,
            complete,
            "/fee/per_unit/quantity",
            site,
            collector,
        );
    }
    if let Some(computed) = &fee.computed {
        check_condition(
            computed,
            scope,
            Expect::Value,
            "the computed fee",
            "/fee/computed",
            site,
            collector,
        );
    }
    for (index, line) in fee.lines.iter().enumerate() {
        let pointer = format!("/fee/lines/{index}");
        check_line_id(&line.id, &pointer, &mut ids, site, collector);
        let amounts = [
            line.fixed.is_some(),
            line.per_unit.is_some(),
            line.computed.is_some(),
        ];
        if amounts.iter().filter(|set| **set).count() != 1 {
            collector.at(
                site,
                &pointer,
                format!(
                    "fee line `{}` takes exactly one of `fixed`, `per_unit`, `computed`",
                    line.id
                ),
            );
        }
        if let Some(per_unit) = &line.per_unit {
            let at = format!("{pointer}/per_unit/quantity");
            check_quantity(per_unit, top, complete, &at, site, collector);
        }
        if let Some(computed) = &line.computed {
            check_condition(
                computed,
                scope,
                Expect::Value,
                &format!("fee line `{}`", line.id),
                &format!("{pointer}/computed"),
                site,
                collector,
            );
        }
    }
    for (index, exemption) in fee.exemptions.iter().enumerate() {
        let pointer = format!("/fee/exemptions/{index}");
        check_line_id(&exemption.id, &pointer, &mut ids, site, collector);
        check_text(
            &exemption.reason,
            &format!("{pointer}/reason"),
            site,
            collector,
        );
        if complete && !top.contains_key(exemption.evidence.as_str()) {
            collector.at(
                site,
                &format!("{pointer}/evidence"),
                format!(
                    "exemption `{}`: evidence names an unknown field `{}`",
                    exemption.id, exemption.evidence
                ),
            );
        }
        check_condition(
            &exemption.when,
            scope,
            Expect::Test,
            &format!("exemption `{}` `when`", exemption.id),
            &format!("{pointer}/when"),
            site,
            collector,
        );
    }
    for (index, postage) in fee.postage.iter().enumerate() {
        let pointer = format!("/fee/postage/{index}");
        if postage.yen.is_some() || postage.label.is_some() {
            collector.at(
                site,
                &pointer,
                "postage names a `rate`; its price and name come from catalog.yaml `postage`"
                    .to_owned(),
            );
        }
        if let Some(when) = &postage.when {
            check_condition(
                when,
                scope,
                Expect::Test,
                "postage `when`",
                &format!("{pointer}/when"),
                site,
                collector,
            );
        }
    }
}

/// Fills each postage line's price and name from catalog.yaml, so the price is part of the
/// definition (and its content hash) that a submission pins.
pub(super) fn resolve_postage(
    definition: &mut Definition,
    organisation: Option<&Organisation>,
    site: Site<'_>,
    collector: &mut Collector,
) {
    let (Some(fee), Some(organisation)) = (&mut definition.fee, organisation) else {
        return;
    };
    for (index, postage) in fee.postage.iter_mut().enumerate() {
        match organisation.postage.get(&postage.rate) {
            Some(rate) => {
                postage.yen = Some(rate.yen);
                postage.label = Some(rate.name.clone());
            }
            None => collector.at(
                site,
                &format!("/fee/postage/{index}/rate"),
                format!(
                    "unknown postage rate `{}` (the rates in catalog.yaml are {})",
                    postage.rate,
                    keys(&organisation.postage)
                ),
            ),
        }
    }
}

fn check_line_id(
    id: &str,
    pointer: &str,
    ids: &mut HashSet<String>,
    site: Site<'_>,
    collector: &mut Collector,
) {
    if id == "total" || id == fees::SINGLE_LINE || !ids.insert(id.to_owned()) {
        collector.at(
            site,
            &format!("{pointer}/id"),
            format!("line id `{id}` is used twice or reserved (`fee`, `total`)"),
        );
    }
}

/// A per-unit quantity must be an integer field that cannot go below zero.
fn check_quantity(
    per_unit: &PerUnitFee,
    top: &Scope<'_>,
    complete: bool,
    pointer: &str,
    site: Site<'_>,
    collector: &mut Collector,
) {
    if !complete {
        return;
    }
    let quantity = &per_unit.quantity;
    match top.get(quantity.as_str()) {
        Some(field) if field.kind() == FieldType::Integer => {
            if field
                .min
                .as_ref()
                .and_then(Value::as_f64)
                .is_none_or(|min| min < 0.0)
            {
                collector.at(
                    site,
                    pointer,
                    format!("fee quantity `{quantity}` needs `min` of 0 or more, or the fee can go negative"),
                );
            }
        }
        Some(_) => collector.at(
            site,
            pointer,
            format!("fee quantity `{quantity}` must be an integer field"),
        ),
        None => collector.at(
            site,
            pointer,
            format!("fee quantity names an unknown field `{quantity}`"),
        ),
    }
}

/// Evaluates every computed fee on the valid examples and on their boundary variations
/// (`fees::probes`); the first answers that give a negative, fractional or non-numeric amount
/// are reported.
pub(super) fn check_fee_probes(
    definition: &Definition,
    bases: &[serde_json::Map<String, Value>],
    site: Site<'_>,
    collector: &mut Collector,
) {
    let Some(fee) = &definition.fee else {
        return;
    };
    let probes = fees::probes(definition, bases);
    for (index, (id, _, amount)) in fees::amounts(fee).into_iter().enumerate() {
        let Amount::Computed(expression) = amount else {
            continue;
        };
        let (pointer, what) = if id == fees::SINGLE_LINE {
            ("/fee/computed".to_owned(), "the computed fee".to_owned())
        } else {
            (
                format!("/fee/lines/{index}/computed"),
                format!("fee line `{id}`"),
            )
        };
        if let Some((described, problem)) = probes.iter().find_map(|(described, data)| {
            fees::evaluate(expression, data)
                .err()
                .map(|problem| (described, problem))
        }) {
            collector.at(
                site,
                &pointer,
                format!("{what} {problem} for {described}; a fee must be whole, non-negative yen"),
            );
        }
    }
}
