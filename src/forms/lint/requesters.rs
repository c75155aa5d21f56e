//! `requesters`: the law's rules on who may request a certificate online.

use super::*;

/// The relationships the law lets request each kind of certificate (CERTIFICATES: 住民基本台帳法
/// 第12条 for resident records, 第15条の4 for removed ones, 戸籍法 第10条 for family registers). Third parties must state
/// a reason, which is done at the counter, never online.
pub(super) fn lawful_relationships(who: Residency) -> &'static [Relationship] {
    match who {
        Residency::Residents | Residency::ResidentsAndFormer => {
            &[Relationship::Person, Relationship::Household]
        }
        Residency::ResidentsAndHonseki => &[
            Relationship::Person,
            Relationship::Spouse,
            Relationship::LinealAscendant,
            Relationship::LinealDescendant,
        ],
    }
}

/// `requesters`: the keys that carry the law's rules about who may request online.
pub(super) fn check_requesters(
    definition: &Definition,
    placed: &[Placed<'_>],
    organisation: Option<&Organisation>,
    site: Site<'_>,
    collector: &mut Collector,
) {
    let Some(requesters) = &definition.requesters else {
        return;
    };
    if definition.assurance != Assurance::CardSign {
        collector.at(
            site,
            "/assurance",
            "a form with `requesters` needs `assurance: card-sign`: the signature certificate's address is what decides who may apply and where the result goes".to_owned(),
        );
    }
    if requesters.who == Residency::Residents
        && let Some(organisation) = organisation
        && organisation.city.is_none()
    {
        collector.at(
            site,
            "/requesters/who",
            "`who: residents` needs the city's address in catalog.yaml (`city: {name: …, address: 石川県加賀市}`)".to_owned(),
        );
    }
    for item in placed {
        if item.from_block && item.field.id == "delivery_method" {
            collector.at(
                site,
                &item.pointer,
                format!(
                    "the result is sent to the {} (`requesters.send_to`); the postal-delivery block lets the resident choose another address, remove it",
                    match requesters.send_to {
                        SendTo::RegisteredAddress => "registered address",
                        SendTo::SignatureAddress => "address on the signature certificate",
                    }
                ),
            );
        }
    }
    let Some(rule) = &requesters.relationship else {
        return;
    };
    let lawful = lawful_relationships(requesters.who);
    let names = |list: &[Relationship]| {
        list.iter()
            .map(|relationship| relationship.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (index, relationship) in rule.allowed.iter().enumerate() {
        if !lawful.contains(relationship) {
            collector.at(
                site,
                &format!("/requesters/relationship/allowed/{index}"),
                format!(
                    "`{}` may not request this certificate online (for `who: {}` the law allows {})",
                    relationship.as_str(),
                    serde_json::to_value(requesters.who)
                        .ok()
                        .and_then(|value| value.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    names(lawful)
                ),
            );
        }
    }
    let Some(item) = placed.iter().find(|item| item.field.id == rule.field) else {
        collector.at(
            site,
            "/requesters/relationship/field",
            format!(
                "`requesters.relationship.field` names an unknown field `{}`",
                rule.field
            ),
        );
        return;
    };
    if !matches!(item.field.kind(), FieldType::Radio | FieldType::Select) {
        collector.at(
            site,
            "/requesters/relationship/field",
            format!(
                "the relationship field `{}` must be a radio or select",
                rule.field
            ),
        );
        return;
    }
    for (index, option) in item.field.options.iter().enumerate() {
        let allowed = rule
            .allowed
            .iter()
            .any(|relationship| relationship.as_str() == option.value);
        if !allowed {
            collector.at(
                site,
                &if item.from_block {
                    item.pointer.clone()
                } else {
                    format!("{}/options/{index}/value", item.pointer)
                },
                format!(
                    "field `{}`: option `{}` is not an allowed requester (`requesters.relationship.allowed`: {})",
                    rule.field,
                    option.value,
                    names(&rule.allowed)
                ),
            );
        }
    }
}
