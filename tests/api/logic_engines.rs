//! The browser (json-logic-js) and the server (datalogic-rs) must evaluate every condition of the
//! catalog alike: this replays each condition on each example through both engines.

use std::io::Write;
use std::process::{Command, Stdio};

use madoguchi::forms::lint::city_today;
use madoguchi::forms::logic;
use madoguchi::forms::model::{Field, FieldType};
use madoguchi::forms::validate::{CheckOptions, validate};
use serde_json::{Map, Value, json};

use crate::helpers::CATALOG;

/// One evaluation: the condition, the data it sees, and where it comes from (for messages).
struct Replay {
    logic: Value,
    data: Value,
    what: String,
    /// A yes/no condition (compared by truthiness) rather than a computed value.
    test: bool,
}

/// The browser's answers, in order.
fn json_logic_js(replays: &[Replay]) -> Vec<Value> {
    let fixture = crate::fixtures::node_fixture("jsonlogic");
    let input: Vec<Value> = replays
        .iter()
        .map(|replay| json!({"logic": replay.logic, "data": replay.data}))
        .collect();
    let mut child = Command::new("node")
        .arg("eval.mjs")
        .current_dir(fixture)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (is Node.js installed?)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&serde_json::to_vec(&input).expect("json"))
        .expect("write");
    let output = child.wait_with_output().expect("node");
    assert!(
        output.status.success(),
        "json-logic-js failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("node prints JSON")
}

fn same_number(left: &Value, right: &Value) -> bool {
    match (left.as_f64(), right.as_f64()) {
        (Some(left), Some(right)) => (left - right).abs() < 1e-9,
        _ => left == right,
    }
}

/// Conditions of the fields, with the data a group item's conditions see (the item over the form).
fn field_replays(fields: &[Field], data: &Map<String, Value>, what: &str, out: &mut Vec<Replay>) {
    for field in fields {
        for (key, condition) in [
            ("show_if", &field.show_if),
            ("required_if", &field.required_if),
        ] {
            if let Some(condition) = condition {
                out.push(Replay {
                    logic: condition.clone(),
                    data: Value::Object(data.clone()),
                    what: format!("{what} / {} {key}", field.id),
                    test: true,
                });
            }
        }
        if field.kind() == FieldType::Group
            && let Some(items) = data.get(&field.id).and_then(Value::as_array)
        {
            for item in items.iter().filter_map(Value::as_object) {
                let mut scoped = data.clone();
                scoped.extend(item.clone());
                field_replays(&field.fields, &scoped, what, out);
            }
        }
    }
}

fn replays() -> Vec<Replay> {
    let mut out = Vec::new();
    for procedure in CATALOG.procedures.values() {
        let definition = &procedure.definition;
        for example in &definition.examples {
            let today = example.as_of.unwrap_or_else(city_today);
            let mut inputs = Vec::new();
            // As the page sends them, and as the server sees them after normalisation.
            if let Some(raw) = example.data.as_object() {
                inputs.push(("sent", raw.clone()));
            }
            if let Ok(accepted) = validate(definition, &example.data, CheckOptions::complete(today))
            {
                inputs.push(("normalised", accepted.data));
            }
            for (form, data) in inputs {
                let what = format!("{} / {} ({form})", definition.id, example.name);
                for page in &definition.pages {
                    if let Some(condition) = &page.show_if {
                        out.push(Replay {
                            logic: condition.clone(),
                            data: Value::Object(data.clone()),
                            what: format!("{what} / page {}", page.id),
                            test: true,
                        });
                    }
                    field_replays(&page.fields, &data, &what, &mut out);
                }
                for rule in &definition.routing {
                    out.push(Replay {
                        logic: rule.when.clone(),
                        data: Value::Object(data.clone()),
                        what: format!("{what} / routing to {}", rule.queue),
                        test: true,
                    });
                }
                if let Some(computed) = definition
                    .fee
                    .as_ref()
                    .and_then(|fee| fee.computed.as_ref())
                {
                    out.push(Replay {
                        logic: computed.clone(),
                        data: Value::Object(data.clone()),
                        what: format!("{what} / computed fee"),
                        test: false,
                    });
                }
            }
        }
    }
    out
}

#[test]
fn every_catalog_condition_evaluates_alike_in_the_browser_and_on_the_server() {
    let replays = replays();
    assert!(replays.len() > 1000, "{} replays", replays.len());
    let browser = json_logic_js(&replays);
    assert_eq!(browser.len(), replays.len());
    let mut differences = Vec::new();
    for (replay, answer) in replays.iter().zip(&browser) {
        let server = logic::evaluate(&replay.logic, &replay.data);
        let agree = match (&server, answer.get("value")) {
            (Ok(server), Some(browser)) if replay.test => {
                logic::truthy(server) == logic::truthy(browser)
            }
            (Ok(server), Some(browser)) => same_number(server, browser),
            (Err(_), None) => true,
            _ => false,
        };
        if !agree {
            differences.push(format!(
                "{}: {} on {} -> server {:?}, browser {}",
                replay.what, replay.logic, replay.data, server, answer
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} evaluations differ:\n{}",
        differences.len(),
        replays.len(),
        differences
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// JSON Logic corners: where the engines part, the pattern must be one `forms check` refuses
/// (tests/api/forms_mistakes.rs has a case for each); anywhere else they must agree. A new
/// version of either engine that parts elsewhere fails here.
#[test]
fn the_engines_part_only_where_forms_check_refuses_the_pattern() {
    let probes = [
        json!({"==": [{"var": "x"}, "1"]}),
        json!({"==": [{"var": "x"}, 1]}),
        json!({"===": [{"var": "x"}, 1]}),
        json!({"!=": [{"var": "x"}, "1"]}),
        json!({"in": [{"var": "x"}, [1, 2]]}),
        json!({"in": ["a", {"var": "list"}]}),
        json!({"in": ["a", {"var": "missing"}]}),
        json!({"in": [{"var": "s"}, "abc"]}),
        json!({"==": [{"var": "list"}, "a"]}),
        json!({"==": [{"var": "missing"}, null]}),
        json!({"==": [{"var": "missing"}, 0]}),
        json!({"==": [{"var": "missing"}, ""]}),
        json!({"==": [{"var": "flag"}, "true"]}),
        json!({"==": [{"var": "flag"}, 1]}),
        json!({"<": [{"var": "missing"}, 3]}),
        json!({">": [{"var": "s"}, 3]}),
        json!({"<": [{"var": "x"}, "10"]}),
        json!({"<": [1, {"var": "x"}, 3]}),
        json!({"!!": [{"var": "list"}]}),
        json!({"!!": [{"var": "empty"}]}),
        json!({"!!": [{"var": "zero_string"}]}),
        json!({"!": [{"var": "obj"}]}),
        json!({"+": [{"var": "x"}, "2"]}),
        json!({"*": [{"var": "x"}, "2"]}),
        json!({"*": [{"var": "missing"}, 450]}),
        json!({"+": [{"var": "missing"}, 1]}),
        json!({"-": [{"var": "s"}, 1]}),
        json!({"/": [{"var": "x"}, 0]}),
        json!({"%": [{"var": "x"}, 0]}),
        json!({"max": []}),
        json!({"min": [{"var": "missing"}, 1]}),
        json!({"cat": [{"var": "missing"}, "a"]}),
        json!({"cat": [{"var": "x"}, "a"]}),
        json!({"substr": ["abcdef", -2]}),
        json!({"var": "list.0"}),
        json!({"var": "obj.k"}),
        json!({"var": ["missing", "dflt"]}),
        json!({"missing": ["x", "missing"]}),
        json!({"missing_some": [1, ["x", "missing"]]}),
        json!({"if": [{"var": "missing"}, 1]}),
        json!({"if": []}),
        json!({"and": []}),
        json!({"or": [{"var": "zero_string"}, 0]}),
        json!({"==": [{"var": "date"}, "2026-04-01"]}),
        json!({"<": [{"var": "date"}, "2026-05-01"]}),
        json!({"some": [{"var": "list"}, {"==": [{"var": ""}, "a"]}]}),
        json!({"all": [{"var": "empty"}, {"==": [{"var": ""}, "a"]}]}),
        json!({"reduce": [{"var": "nums"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}),
        json!({"==": [{"var": "decimal"}, 1.5]}),
        json!({"==": [{"var": "big"}, 9007199254740993_u64]}),
    ];
    let data = json!({
        "x": 1, "s": "abc", "list": ["a"], "empty": [], "zero_string": "0", "flag": true,
        "obj": {"k": 1}, "date": "2026-04-01", "nums": [1, 2, 3], "decimal": 1.5,
        "big": 9007199254740993_u64
    });
    let replays: Vec<Replay> = probes
        .iter()
        .map(|logic| Replay {
            logic: logic.clone(),
            data: data.clone(),
            what: String::new(),
            test: false,
        })
        .collect();
    let browser = json_logic_js(&replays);
    // Refused by forms check: `==`/`!=` with 0, "", "true" or a list; ordering or computing
    // with text; a possibly unanswered number in arithmetic; division by 0; an empty `max`.
    let refused = [
        json!({"==": [{"var": "list"}, "a"]}),
        json!({"==": [{"var": "missing"}, 0]}),
        json!({"==": [{"var": "missing"}, ""]}),
        json!({"==": [{"var": "flag"}, "true"]}),
        json!({">": [{"var": "s"}, 3]}),
        json!({"*": [{"var": "missing"}, 450]}),
        json!({"+": [{"var": "missing"}, 1]}),
        json!({"-": [{"var": "s"}, 1]}),
        json!({"/": [{"var": "x"}, 0]}),
        json!({"%": [{"var": "x"}, 0]}),
        json!({"max": []}),
        json!({"min": [{"var": "missing"}, 1]}),
    ];
    let mut unexpected = Vec::new();
    for (replay, answer) in replays.iter().zip(&browser) {
        let server = logic::evaluate(&replay.logic, &replay.data);
        let same = match (&server, answer.get("value")) {
            (Ok(server), Some(browser)) => server == browser || same_number(server, browser),
            (Err(_), None) => true,
            _ => false,
        };
        if !same && !refused.contains(&replay.logic) {
            unexpected.push(format!(
                "{} -> server {:?}, browser {}",
                replay.logic, server, answer
            ));
        }
    }
    assert!(unexpected.is_empty(), "{unexpected:#?}");
}
