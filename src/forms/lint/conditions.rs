//! Conditions: their shape, operators, the fields they name, the values they compare with,
//! and the patterns on which the browser's and the server's JSON Logic engines disagree.

use super::*;

/// What a condition must evaluate to: a yes/no (`show_if`, `required_if`, `when`) or a value
/// (a computed fee).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    Test,
    Value,
}

#[derive(PartialEq, Eq)]
pub(super) enum Outcome {
    Fine,
    Reported,
    /// Well-formed, but it reads no field and is false: it can never hold.
    NeverTrue,
}

pub(super) const CONDITION_EXAMPLE: &str = r#"{"==": [{"var": "a_field"}, "a value"]}"#;

/// Checks one condition; `scope` is `None` when the fields it may name are not all known (the
/// form includes a broken block), so names are not checked.
pub(super) fn check_condition(
    condition: &Value,
    scope: Option<&Scope<'_>>,
    expect: Expect,
    what: &str,
    pointer: &str,
    site: Site<'_>,
    collector: &mut Collector,
) -> Outcome {
    let shape_ok = matches!(
        (expect, condition),
        (_, Value::Object(_)) | (Expect::Test, Value::Bool(_)) | (Expect::Value, Value::Number(_))
    );
    if !shape_ok {
        let wanted = match expect {
            Expect::Test => {
                format!("a JSON Logic condition such as {CONDITION_EXAMPLE}, or true / false")
            }
            Expect::Value => "a number or a JSON Logic expression".to_owned(),
        };
        let found = match condition {
            Value::String(_) => format!("{} (a text is not evaluated)", describe_value(condition)),
            other => describe_value(other),
        };
        collector.at(
            site,
            pointer,
            format!("{what} must be {wanted}; found {found}"),
        );
        return Outcome::Reported;
    }
    if let Err(error) = logic::compile(condition) {
        collector.at(site, pointer, format!("{what}: {error}"));
        return Outcome::Reported;
    }
    let names = logic::variables(condition);
    let mut outcome = Outcome::Fine;
    if let Some(scope) = scope {
        for name in &names {
            if !scope.contains_key(name.as_str()) {
                collector.at(
                    site,
                    pointer,
                    format!("{what} names an unknown field `{name}`"),
                );
                outcome = Outcome::Reported;
            }
        }
        let mut mismatches = Vec::new();
        compared_literals(condition, scope, &mut mismatches);
        engine_differences(condition, scope, &mut mismatches);
        for message in mismatches {
            collector.at(site, pointer, format!("{what} {message}"));
            outcome = Outcome::Reported;
        }
    }
    if outcome == Outcome::Fine
        && expect == Expect::Test
        && names.is_empty()
        && !logic::holds(condition, &Value::Object(Default::default()))
    {
        return Outcome::NeverTrue;
    }
    outcome
}

/// The field a `{"var": "name"}` reads, when it names a field of the scope directly.
pub(super) fn var_field<'a>(node: &Value, scope: &Scope<'a>) -> Option<&'a Field> {
    let name = match node.as_object()?.get("var")? {
        Value::String(name) => name,
        Value::Array(items) => items.first()?.as_str()?,
        _ => return None,
    };
    scope.get(name).copied()
}

pub(super) fn is_literal(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// A literal compared with a field must be a value the field can have: one of a choice's
/// options, or true / false for a yes/no field. Otherwise the comparison never holds.
pub(super) fn literal_mismatch(field: &Field, literal: &Value) -> Option<String> {
    use FieldType as T;
    let id = &field.id;
    match field.kind() {
        T::Select | T::Radio | T::MultiSelect => {
            let text = match literal {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                _ => String::new(),
            };
            if field.options.iter().any(|option| option.value == text) {
                return None;
            }
            let values: Vec<&str> = field.options.iter().map(|o| o.value.as_str()).collect();
            Some(format!(
                "compares `{id}` with {}, which is not one of its options ({})",
                describe_value(literal),
                values.join(", ")
            ))
        }
        T::Boolean | T::Consent if !literal.is_boolean() => Some(format!(
            "compares the yes/no field `{id}` with {}; compare with true or false",
            describe_value(literal)
        )),
        _ => None,
    }
}

pub(super) fn compared_literals(node: &Value, scope: &Scope<'_>, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (operator, argument) in map {
                let items = argument.as_array().map(Vec::as_slice).unwrap_or_default();
                match (operator.as_str(), items) {
                    ("==" | "===" | "!=" | "!==", [left, right]) => {
                        for (side, other) in [(left, right), (right, left)] {
                            if let Some(field) = var_field(side, scope)
                                && is_literal(other)
                                && field.kind() != FieldType::MultiSelect
                            {
                                out.extend(literal_mismatch(field, other));
                            }
                        }
                    }
                    ("in", [needle, Value::Array(list)]) => {
                        if let Some(field) = var_field(needle, scope)
                            && field.kind() != FieldType::MultiSelect
                        {
                            for literal in list.iter().filter(|item| is_literal(item)) {
                                out.extend(literal_mismatch(field, literal));
                            }
                        }
                    }
                    ("in", [needle, haystack]) if is_literal(needle) => {
                        if let Some(field) = var_field(haystack, scope)
                            && field.kind() == FieldType::MultiSelect
                        {
                            out.extend(literal_mismatch(field, needle));
                        }
                    }
                    _ => {}
                }
                compared_literals(argument, scope, out);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| compared_literals(item, scope, out)),
        _ => {}
    }
}

/// The field a `var` reads and whether it gives a default (`{"var": ["name", 0]}`).
pub(super) fn var_with_default<'a>(node: &Value, scope: &Scope<'a>) -> Option<(&'a Field, bool)> {
    let argument = node.as_object()?.get("var")?;
    let has_default = argument.as_array().is_some_and(|items| items.len() > 1);
    var_field(node, scope).map(|field| (field, has_default))
}

pub(super) fn is_number_field(field: &Field) -> bool {
    matches!(
        field.kind(),
        FieldType::Integer | FieldType::Decimal | FieldType::Money
    )
}

/// Patterns on which the browser's json-logic-js and the server's datalogic-rs disagree (found
/// by replaying conditions through both, tests/api/logic_engines.rs). Each is refused, with the
/// way to write it that both evaluate alike.
pub(super) fn engine_differences(node: &Value, scope: &Scope<'_>, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (operator, argument) in map {
                let items = argument.as_array().map(Vec::as_slice).unwrap_or_default();
                match (operator.as_str(), items) {
                    ("==" | "!=", [left, right]) => {
                        for (side, other) in [(left, right), (right, left)] {
                            let Some(field) = var_field(side, scope) else {
                                continue;
                            };
                            let id = &field.id;
                            let loose = matches!(other, Value::Bool(false) | Value::Null)
                                || other.as_f64() == Some(0.0)
                                || matches!(other.as_str(), Some("" | "true" | "false"));
                            if loose {
                                out.push(format!(
                                    "compares `{id}` with {} using `{operator}`, which the browser and the server evaluate differently when `{id}` is not answered; use `===` / `!==`, or `!` / `!!` to test for an answer",
                                    describe_value(other)
                                ));
                            }
                            if field.kind() == FieldType::MultiSelect && is_literal(other) {
                                out.push(format!(
                                    "compares the multi_select `{id}` (a list) with `{operator}`, which the browser and the server evaluate differently; use {{\"in\": [\"value\", {{\"var\": \"{id}\"}}]}}"
                                ));
                            }
                        }
                    }
                    ("<" | "<=" | ">" | ">=", operands) => {
                        for operand in operands {
                            if let Some(field) = var_field(operand, scope)
                                && !is_number_field(field)
                                && field.kind() != FieldType::Date
                            {
                                out.push(format!(
                                    "orders `{}` with `{operator}`, but only numbers and dates can be ordered alike in the browser and on the server",
                                    field.id
                                ));
                            }
                        }
                    }
                    ("+" | "-" | "*" | "/" | "%" | "min" | "max", operands) => {
                        for operand in operands {
                            let Some((field, has_default)) = var_with_default(operand, scope)
                            else {
                                continue;
                            };
                            let id = &field.id;
                            if !is_number_field(field) {
                                out.push(format!(
                                    "computes with `{id}`, which is not a number field; the browser and the server disagree on text"
                                ));
                            } else if !has_default && (!field.required || field.show_if.is_some()) {
                                out.push(format!(
                                    "computes with `{id}`, which may be unanswered: the browser then gets no number and the server 0; give a default, {{\"var\": [\"{id}\", 0]}}"
                                ));
                            }
                        }
                        if matches!(operator.as_str(), "/" | "%")
                            && items.get(1).and_then(Value::as_f64) == Some(0.0)
                        {
                            out.push(format!("divides by 0 with `{operator}`"));
                        }
                    }
                    _ => {}
                }
                engine_differences(argument, scope, out);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| engine_differences(item, scope, out)),
        _ => {}
    }
}
