//! Conditions in JSON Logic, evaluated by datalogic-rs.
//!
//! JSON Logic is a standard with a browser implementation (json-logic-js), so a client can show
//! and hide fields with the same rules the server enforces.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::LazyLock;

use datalogic_rs::bumpalo::Bump;
use datalogic_rs::{DataValue, Engine, FromDataValue, Logic};
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
    with_result(condition, data, |result| {
        Value::from_arena(result).map_err(|error| LogicError(error.to_string()))
    })
}

/// How many compiled conditions a thread keeps before starting over (a catalog has a few hundred).
const COMPILED_PER_THREAD: usize = 4096;

thread_local! {
    /// Conditions compiled on this thread, keyed by where the condition lives (a definition's
    /// conditions stay put for as long as the catalog is loaded). The address is only a hint: an
    /// entry is used only while its copy of the condition is still equal to the one asked for.
    static COMPILED: RefCell<HashMap<usize, (Value, Rc<Logic>)>> = RefCell::new(HashMap::new());
    /// Where evaluations put the data and their results; emptied after each one.
    static ARENA: RefCell<Bump> = RefCell::new(Bump::new());
}

/// Evaluates `condition` against `data` and hands the result to `read`. Every application is
/// checked against its form's conditions, often a few times (visibility to a fixed point, group
/// items), so each condition is compiled once per thread rather than on every evaluation, and
/// the data goes into a reused arena rather than a deep copy.
fn with_result<T>(
    condition: &Value,
    data: &Value,
    read: impl FnOnce(&DataValue<'_>) -> Result<T, LogicError>,
) -> Result<T, LogicError> {
    let logic = compiled(condition)?;
    ARENA.with_borrow_mut(|arena| {
        let outcome = ENGINE
            .evaluate(&logic, data, arena)
            .map_err(|error| LogicError(error.to_string()))
            .and_then(read);
        arena.reset();
        outcome
    })
}

fn compiled(condition: &Value) -> Result<Rc<Logic>, LogicError> {
    let address = std::ptr::from_ref(condition) as usize;
    let known = COMPILED.with_borrow(|compiled| {
        compiled
            .get(&address)
            .filter(|(source, _)| source == condition)
            .map(|(_, logic)| Rc::clone(logic))
    });
    if let Some(logic) = known {
        return Ok(logic);
    }
    let logic = Rc::new(
        ENGINE
            .compile(condition)
            .map_err(|error| LogicError(error.to_string()))?,
    );
    COMPILED.with_borrow_mut(|compiled| {
        if compiled.len() >= COMPILED_PER_THREAD {
            compiled.clear();
        }
        compiled.insert(address, (condition.clone(), Rc::clone(&logic)));
    });
    Ok(logic)
}

/// [`truthy`] for a result still in the engine's arena.
fn truthy_data(value: &DataValue<'_>) -> bool {
    match value {
        DataValue::Null => false,
        DataValue::Bool(flag) => *flag,
        // As the value would read once converted: a non-finite number has no JSON form (null).
        DataValue::Number(number) => {
            let number = number.as_f64();
            number.is_finite() && number != 0.0
        }
        DataValue::String(text) => !text.is_empty(),
        DataValue::Array(items) => !items.is_empty(),
        DataValue::Object(_) => true,
    }
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
    match with_result(condition, data, |result| Ok(truthy_data(result))) {
        Ok(result) => result,
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

/// Adds to `names` the top-level answers `condition` can read. Returns false when that cannot be
/// told from the condition alone: a `var` whose path is computed, a number or empty (the whole
/// data), or a `missing` list that is not written out.
pub fn collect_reads<'a>(condition: &'a Value, names: &mut Vec<&'a str>) -> bool {
    match condition {
        Value::Object(map) => map.iter().all(|(operator, argument)| {
            match operator.as_str() {
                "var" => {
                    let path = match argument {
                        Value::Array(items) => items.first(),
                        other => Some(other),
                    };
                    match path
                        .and_then(Value::as_str)
                        .and_then(|path| path.split('.').next())
                    {
                        Some(first) if !first.is_empty() => {
                            names.push(first);
                            // A default (`{"var": ["a", default]}`) may read answers too.
                            argument.as_array().is_none_or(|items| {
                                items.iter().skip(1).all(|item| collect_reads(item, names))
                            })
                        }
                        _ => false,
                    }
                }
                "missing" => literal_names(argument, names),
                "missing_some" => argument.as_array().is_some_and(|items| {
                    items
                        .first()
                        .is_some_and(|least| collect_reads(least, names))
                        && items.get(1).is_some_and(|list| literal_names(list, names))
                }),
                // The element expressions of these read each element (`current`, `accumulator`),
                // not the answers: only the array source and reduce's start can name answers.
                "map" | "filter" | "all" | "some" | "none" | "reduce" => {
                    argument.as_array().is_some_and(|items| {
                        items
                            .first()
                            .is_none_or(|source| collect_reads(source, names))
                            && (operator != "reduce"
                                || items
                                    .get(2)
                                    .is_none_or(|initial| collect_reads(initial, names)))
                    })
                }
                _ => collect_reads(argument, names),
            }
        }),
        Value::Array(items) => items.iter().all(|item| collect_reads(item, names)),
        _ => true,
    }
}

fn literal_names<'a>(value: &'a Value, names: &mut Vec<&'a str>) -> bool {
    match value {
        Value::String(name) => {
            names.push(name.split('.').next().unwrap_or(name));
            true
        }
        Value::Array(items) => items.iter().all(|item| literal_names(item, names)),
        _ => false,
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

    /// What `holds` gave before conditions were kept compiled: the engine's one-shot evaluation.
    fn holds_one_shot(condition: &Value, data: &Value) -> bool {
        ENGINE
            .eval_into::<Value, _, _>(condition, data)
            .is_ok_and(|result| truthy(&result))
    }

    fn conditions_in(node: &Value, found: &mut Vec<Value>) {
        match node {
            Value::Object(map) => {
                for (key, value) in map {
                    if matches!(key.as_str(), "show_if" | "required_if" | "when") {
                        found.push(value.clone());
                    } else {
                        conditions_in(value, found);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|item| conditions_in(item, found)),
            _ => {}
        }
    }

    #[test]
    fn compiled_conditions_agree_with_one_shot_evaluation_across_the_catalog() {
        let forms = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("forms");
        let catalog = crate::forms::Catalog::load(&forms).expect("the catalog loads");
        let mut checked = 0;
        for procedure in catalog.procedures.values() {
            let definition = serde_json::to_value(&procedure.definition).expect("serialises");
            let mut conditions = Vec::new();
            conditions_in(&definition, &mut conditions);
            let mut data: Vec<Value> = procedure
                .definition
                .examples
                .iter()
                .map(|example| example.data.clone())
                .collect();
            data.push(json!({}));
            for condition in &conditions {
                for answers in &data {
                    // Twice: the second evaluation runs the compiled condition kept by the first.
                    for _ in 0..2 {
                        assert_eq!(
                            holds(condition, answers),
                            holds_one_shot(condition, answers),
                            "{condition} on {answers}"
                        );
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 500, "only {checked} conditions checked");
    }

    #[test]
    fn results_are_truthy_as_json_logic_says() {
        for value in [
            json!(null),
            json!(false),
            json!(true),
            json!(0),
            json!(0.0),
            json!(-1.5),
            json!(""),
            json!("0"),
            json!([]),
            json!([0]),
            json!({}),
        ] {
            let data = json!({"a": value});
            assert_eq!(
                holds(&json!({"var": "a"}), &data),
                holds_one_shot(&json!({"var": "a"}), &data),
                "{value}"
            );
        }
        // Division by zero has no JSON number: as before, not true.
        let zero = json!({"/": [1, {"var": "n"}]});
        assert_eq!(
            holds(&zero, &json!({"n": 0})),
            holds_one_shot(&zero, &json!({"n": 0}))
        );
    }

    #[test]
    fn a_condition_replaced_in_place_is_compiled_again() {
        let data = json!({"x": 1});
        let mut condition = json!({"==": [{"var": "x"}, 1]});
        assert!(holds(&condition, &data));
        // Same place in memory, another condition: the kept compilation must not be reused.
        condition = json!({"==": [{"var": "x"}, 2]});
        assert!(!holds(&condition, &data));
    }

    #[test]
    fn the_answers_a_condition_reads_are_known_unless_a_path_is_computed() {
        let reads = |condition: Value| {
            let mut names = Vec::new();
            let knowable = collect_reads(&condition, &mut names);
            let mut names: Vec<String> = names.into_iter().map(str::to_owned).collect();
            names.sort();
            names.dedup();
            knowable.then_some(names)
        };
        assert_eq!(
            reads(
                json!({"and": [{"==": [{"var": "pets"}, true]}, {"var": ["address.city", {"var": "town"}]}]})
            ),
            Some(vec![
                "address".to_owned(),
                "pets".to_owned(),
                "town".to_owned()
            ])
        );
        assert_eq!(
            reads(json!({"missing_some": [1, ["a", "b.c"]]})),
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert_eq!(
            reads(
                json!({"some": [{"var": "members"}, {"==": [{"var": "relationship"}, "child"]}]})
            ),
            Some(vec!["members".to_owned()])
        );
        assert_eq!(reads(json!(true)), Some(vec![]));
        // The whole data, a computed path, a computed list of names: anything may be read.
        assert_eq!(reads(json!({"!!": {"var": ""}})), None);
        assert_eq!(reads(json!({"var": {"cat": ["a", "b"]}})), None);
        assert_eq!(reads(json!({"missing": {"var": "names"}})), None);
        assert_eq!(reads(json!({"var": 0})), None);
    }

    #[test]
    fn an_unknown_operator_does_not_compile() {
        assert!(compile(&json!({"frobnicate": [1]})).is_err());
        assert!(compile(&json!({"==": [{"var": "x"}, 1]})).is_ok());
    }
}
