//! Conditions in JSON Logic, evaluated by datalogic-rs.
//!
//! JSON Logic is a standard with a browser implementation (json-logic-js), so a client can show
//! and hide fields with the same rules the server enforces.

use std::sync::LazyLock;

use datalogic_rs::Engine;
use serde_json::Value;

static ENGINE: LazyLock<Engine> = LazyLock::new(Engine::new);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LogicError(String);

/// The operators of the JSON Logic standard (jsonlogic.com/operations.html). Conditions use only
/// these, so browsers running json-logic-js evaluate them the same way.
const STANDARD_OPERATORS: [&str; 34] = [
    "var",
    "missing",
    "missing_some",
    "if",
    "?:",
    "==",
    "===",
    "!=",
    "!==",
    "!",
    "!!",
    "or",
    "and",
    ">",
    ">=",
    "<",
    "<=",
    "max",
    "min",
    "+",
    "-",
    "*",
    "/",
    "%",
    "map",
    "reduce",
    "filter",
    "all",
    "none",
    "some",
    "merge",
    "in",
    "cat",
    "substr",
];

/// Checks that a condition is well-formed JSON Logic using only standard operators.
pub fn compile(condition: &Value) -> Result<(), LogicError> {
    check_operators(condition)?;
    ENGINE
        .compile(condition)
        .map(|_| ())
        .map_err(|error| LogicError(format!("not valid JSON Logic ({error})")))
}

/// Deeper conditions than this are refused: nobody writes them, and evaluating them recurses.
const MAX_DEPTH: usize = 32;

fn check_operators(node: &Value) -> Result<(), LogicError> {
    check_node(node, 0)
}

fn check_node(node: &Value, depth: usize) -> Result<(), LogicError> {
    if depth > MAX_DEPTH {
        return Err(LogicError(format!(
            "the condition is nested more than {MAX_DEPTH} levels deep"
        )));
    }
    match node {
        Value::Object(map) => {
            if map.len() != 1 {
                let keys: Vec<&str> = map.keys().map(String::as_str).collect();
                return Err(LogicError(format!(
                    "an operation is an object with exactly one operator, found {}",
                    if keys.is_empty() {
                        "none".to_owned()
                    } else {
                        keys.join(", ")
                    }
                )));
            }
            for (operator, argument) in map {
                if !STANDARD_OPERATORS.contains(&operator.as_str()) {
                    return Err(LogicError(format!(
                        "unknown operator `{operator}` (the operators are {})",
                        STANDARD_OPERATORS.join(" ")
                    )));
                }
                check_arity(operator, argument)?;
                check_node(argument, depth + 1)?;
            }
            Ok(())
        }
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| check_node(item, depth + 1)),
        _ => Ok(()),
    }
}

/// How many values each operator takes (json-logic-js treats a non-list argument as one value).
fn arity(operator: &str) -> (usize, Option<usize>) {
    match operator {
        "==" | "===" | "!=" | "!==" | ">" | ">=" | "in" | "/" | "%" | "missing_some" => {
            (2, Some(2))
        }
        "<" | "<=" => (2, Some(3)),
        "!" | "!!" => (1, Some(1)),
        "var" => (0, Some(2)),
        "substr" => (2, Some(3)),
        "map" | "filter" | "all" | "none" | "some" => (2, Some(2)),
        "reduce" => (3, Some(3)),
        "?:" => (3, Some(3)),
        "-" => (1, Some(2)),
        "if" | "and" | "or" | "+" | "*" | "max" | "min" => (1, None),
        _ => (0, None),
    }
}

fn check_arity(operator: &str, argument: &Value) -> Result<(), LogicError> {
    let count = match argument {
        Value::Array(items) => items.len(),
        _ => 1,
    };
    let (least, most) = arity(operator);
    let fits = count >= least && most.is_none_or(|most| count <= most);
    if fits {
        return Ok(());
    }
    let wanted = match most {
        Some(most) if most == least => format!("{least}"),
        Some(most) => format!("{least} to {most}"),
        None => format!("at least {least}"),
    };
    let plural = if wanted == "1" { "value" } else { "values" };
    Err(LogicError(format!(
        "`{operator}` takes {wanted} {plural}, found {count}"
    )))
}

pub fn evaluate(condition: &Value, data: &Value) -> Result<Value, LogicError> {
    ENGINE
        .eval_into::<Value, _, _>(condition, data)
        .map_err(|error| LogicError(error.to_string()))
}

/// JSON Logic truthiness: false, null, 0, "" and [] are false.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0),
        Value::String(text) => !text.is_empty(),
        Value::Array(items) => !items.is_empty(),
        Value::Object(_) => true,
    }
}

/// Whether a condition holds. A condition that fails at run time (a type mismatch the checker
/// could not foresee) counts as false and is logged, so a form never crashes a request.
pub fn holds(condition: &Value, data: &Value) -> bool {
    match evaluate(condition, data) {
        Ok(result) => truthy(&result),
        Err(error) => {
            tracing::warn!(%error, "condition failed; treated as false");
            false
        }
    }
}

/// The field names a condition reads: the first segment of each `var` path, and the names given
/// to `missing` / `missing_some`.
pub fn variables(condition: &Value) -> Vec<String> {
    let mut names = Vec::new();
    collect_variables(condition, &mut names);
    names.sort();
    names.dedup();
    names
}

fn collect_variables(node: &Value, names: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (operator, argument) in map {
                match operator.as_str() {
                    "var" => {
                        let path = match argument {
                            Value::Array(items) => items.first(),
                            other => Some(other),
                        };
                        if let Some(Value::String(path)) = path
                            && let Some(first) = path.split('.').next()
                            && !first.is_empty()
                        {
                            names.push(first.to_owned());
                        }
                    }
                    "missing" => push_strings(argument, names),
                    // The expression argument of these reads each element (`current`,
                    // `accumulator`), not the form's fields: only the array source names fields.
                    "map" | "filter" | "all" | "some" | "none" | "reduce" => {
                        if let Some(items) = argument.as_array() {
                            if let Some(source) = items.first() {
                                collect_variables(source, names);
                            }
                            if operator == "reduce"
                                && let Some(initial) = items.get(2)
                            {
                                collect_variables(initial, names);
                            }
                        }
                    }
                    "missing_some" => {
                        if let Some(list) = argument.as_array().and_then(|items| items.get(1)) {
                            push_strings(list, names);
                        }
                    }
                    _ => collect_variables(argument, names),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_variables(item, names)),
        _ => {}
    }
}

fn push_strings(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::String(name) => names.push(name.clone()),
        Value::Array(items) => items.iter().for_each(|item| push_strings(item, names)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn conditions_evaluate_with_json_logic_semantics() {
        let condition =
            json!({"and": [{"==": [{"var": "kind"}, "transfer"]}, {">": [{"var": "n"}, 2]}]});
        assert!(holds(&condition, &json!({"kind": "transfer", "n": 3})));
        assert!(!holds(&condition, &json!({"kind": "transfer", "n": 1})));
        assert!(!holds(&condition, &json!({})));
        assert!(holds(&json!(true), &json!({})));
    }

    #[test]
    fn variables_are_found_in_nested_expressions() {
        let condition =
            json!({"or": [{"var": "a.b"}, {"in": [{"var": ["c", 0]}, [1]]}, {"missing": ["d"]}]});
        assert_eq!(variables(&condition), ["a", "c", "d"]);
        let sum = json!({"reduce": [{"var": "items"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]});
        assert_eq!(variables(&sum), ["items"]);
    }

    #[test]
    fn an_unknown_operator_does_not_compile() {
        assert!(compile(&json!({"frobnicate": [1]})).is_err());
        assert!(compile(&json!({"==": [{"var": "x"}, 1]})).is_ok());
    }
}
