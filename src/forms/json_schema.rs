//! JSON Schema (2020-12) of a procedure's submission data, so a client can check answers before
//! sending them.
//!
//! The schema describes what the server accepts *before* normalisation (full-width digits,
//! hyphens of every width). It is sound — anything the server accepts, it accepts — and as strict
//! as JSON Schema can say. Some checks cannot be said in JSON Schema: the My Number check digit,
//! date limits relative to today, lengths after normalisation, and conditions whose JSON Logic has
//! no JSON Schema equivalent; the server alone enforces those. A property whose condition could
//! not be translated carries `"x-madoguchi-untranslated-condition": true`.

use serde_json::{Map, Value, json};

use super::model::{Definition, Field, FieldType};

pub const UNTRANSLATED: &str = "x-madoguchi-untranslated-condition";

/// Error codes the exported schema cannot express; the server still enforces them.
pub const SERVER_ONLY_CODES: [&str; 7] = [
    "invalid_my_number",
    "date_too_early",
    "date_too_late",
    "too_short",
    "too_long",
    "pattern_mismatch",
    "invalid_date",
];

const SEPARATORS: &str = r"\s\-‐‑‒–—―−ー－ｰ()（）〒";
const DIGIT: &str = "[0-9０-９]";

pub fn export(definition: &Definition) -> Value {
    let mut schema = object_schema(definition.pages.iter().flat_map(|page| {
        page.fields
            .iter()
            .map(move |field| (field, page.show_if.as_ref()))
    }));
    let object = schema.as_object_mut();
    if let Some(object) = object {
        object.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        object.insert(
            "$id".into(),
            json!(format!("/api/v1/procedures/{}/schema", definition.id)),
        );
        object.insert("title".into(), json!(definition.title.en));
    }
    schema
}

/// The schema of an object whose properties are `fields`, each possibly under a page condition.
fn object_schema<'a>(fields: impl Iterator<Item = (&'a Field, Option<&'a Value>)>) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    let mut conditionals = Vec::new();
    for (field, page_condition) in fields {
        if field.kind() == FieldType::Info {
            continue;
        }
        let value_schema = value_schema(field);
        let visibility: Vec<&Value> = page_condition
            .into_iter()
            .chain(field.show_if.as_ref())
            .collect();
        let always_visible = visibility.is_empty();
        let visible_when = translate_all(&visibility);
        let required_when = field.required_if.as_ref().map(translate);

        let mut untranslated = visible_when.is_none();
        if always_visible {
            properties.insert(field.id.clone(), value_schema);
            if field.required {
                required.push(json!(field.id));
            }
        } else {
            // A hidden answer is dropped unchecked, so the value is only constrained when shown.
            properties.insert(field.id.clone(), json!({}));
            if let Some(condition) = &visible_when {
                let mut then = json!({"properties": {field.id.clone(): value_schema}});
                if field.required {
                    then["required"] = json!([field.id]);
                }
                conditionals.push(json!({"if": condition, "then": then}));
            }
        }
        if let Some(required_when) = required_when {
            match (required_when, &visible_when) {
                (Some(condition), Some(visible)) => {
                    conditionals.push(json!({
                        "if": {"allOf": [visible, condition]},
                        "then": {"required": [field.id]},
                    }));
                }
                _ => untranslated = true,
            }
        }
        if untranslated && let Some(Value::Object(property)) = properties.get_mut(&field.id) {
            property.insert(UNTRANSLATED.into(), json!(true));
        }
    }
    let mut schema = json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    });
    if !conditionals.is_empty() {
        schema["allOf"] = Value::Array(conditionals);
    }
    schema
}

fn digits_pattern(count: &str, leading_zero: bool) -> String {
    let separators = format!("[{SEPARATORS}]*");
    let first = if leading_zero {
        format!("[0０]{separators}")
    } else {
        String::new()
    };
    format!("^{separators}{first}(?:{DIGIT}{separators}){count}$")
}

fn value_schema(field: &Field) -> Value {
    let label = field.label.as_ref().map(|label| label.en.clone());
    let mut schema = match field.kind() {
        FieldType::Text | FieldType::Textarea => json!({"type": "string"}),
        FieldType::Kana => json!({
            "type": "string",
            "pattern": "^[\\s\u{30A1}-\u{30FA}ー・ヽヾ\u{FF66}-\u{FF9F}]+$",
        }),
        FieldType::Email => {
            json!({"type": "string", "pattern": "^\\s*[^@\\s]+@[^@\\s]+\\.[^@\\s]+\\s*$"})
        }
        FieldType::Phone => json!({"type": "string", "pattern": digits_pattern("{9,10}", true)}),
        FieldType::PostalCode => json!({"type": "string", "pattern": digits_pattern("{7}", false)}),
        FieldType::MyNumber => json!({"type": "string", "pattern": digits_pattern("{12}", false)}),
        FieldType::Address => json!({
            "type": "object",
            "properties": {
                "postal_code": {"type": "string", "pattern": digits_pattern("{7}", false)},
                "address": {"type": "string", "minLength": 1},
                "building": {"type": ["string", "null"]},
            },
            "required": ["postal_code", "address"],
            "additionalProperties": false,
        }),
        FieldType::Date => json!({
            "type": "string",
            "pattern": format!("^\\s*{DIGIT}{{4}}[-/－／]{DIGIT}{{1,2}}[-/－／]{DIGIT}{{1,2}}\\s*$"),
        }),
        FieldType::Integer | FieldType::Money => {
            let mut number = json!({"type": "integer"});
            bounds(field, &mut number);
            json!({"anyOf": [number, {"type": "string", "pattern": format!("^\\s*-?(?:{DIGIT}|[,，])+\\s*$")}]})
        }
        FieldType::Decimal => {
            let mut number = json!({"type": "number"});
            bounds(field, &mut number);
            json!({"anyOf": [number, {"type": "string"}]})
        }
        FieldType::Select | FieldType::Radio => json!({
            "type": "string",
            "enum": field.options.iter().map(|option| option.value.clone()).collect::<Vec<_>>(),
        }),
        FieldType::MultiSelect => {
            let mut schema = json!({
                "type": "array",
                "uniqueItems": true,
                "items": {"enum": field.options.iter().map(|option| option.value.clone()).collect::<Vec<_>>()},
            });
            counts(field, &mut schema);
            schema
        }
        FieldType::Boolean => json!({"type": "boolean"}),
        FieldType::Consent if field.required && field.required_if.is_none() => {
            json!({"const": true})
        }
        FieldType::Consent => json!({"type": "boolean"}),
        FieldType::File => json!({
            "type": "array",
            "items": {"type": "string", "pattern": "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"},
            "maxItems": field.max_files.unwrap_or(1),
        }),
        FieldType::Group => {
            let mut schema = json!({
                "type": "array",
                "items": object_schema(field.fields.iter().map(|child| (child, None))),
            });
            counts(field, &mut schema);
            schema
        }
        FieldType::BankAccount => {
            let types = field.allowed_account_types();
            json!({
                "type": "object",
                "properties": {
                    "bank_code": {"type": "string", "pattern": digits_pattern("{4}", false)},
                    "branch_code": {"type": "string", "pattern": digits_pattern("{3}", false)},
                    "account_type": {"enum": types},
                    "account_number": {"type": "string", "pattern": digits_pattern("{1,7}", false)},
                    "holder_kana": {"type": "string", "pattern": "^[\\s\u{30A1}-\u{30FA}ー・\u{FF66}-\u{FF9F}]+$"},
                },
                "required": ["bank_code", "branch_code", "account_type", "account_number", "holder_kana"],
                "additionalProperties": false,
            })
        }
        FieldType::Info => json!({}),
    };
    if let (Some(label), Some(object)) = (label, schema.as_object_mut()) {
        object.insert("title".into(), json!(label));
    }
    schema
}

fn bounds(field: &Field, schema: &mut Value) {
    if let Some(min) = field.min.as_ref().filter(|v| v.is_number()) {
        schema["minimum"] = min.clone();
    } else if field.kind() == FieldType::Money {
        schema["minimum"] = json!(0);
    }
    if let Some(max) = field.max.as_ref().filter(|v| v.is_number()) {
        schema["maximum"] = max.clone();
    }
}

fn counts(field: &Field, schema: &mut Value) {
    if let Some(min) = field.min_items {
        schema["minItems"] = json!(min);
    }
    if let Some(max) = field.max_items {
        schema["maxItems"] = json!(max);
    }
}

fn translate_all(conditions: &[&Value]) -> Option<Value> {
    let translated: Option<Vec<Value>> = conditions.iter().map(|c| translate(c)).collect();
    translated.map(|mut all| match all.len() {
        0 => json!(true),
        1 => all.remove(0),
        _ => json!({"allOf": all}),
    })
}

fn var_name(value: &Value) -> Option<&str> {
    match value.get("var")? {
        Value::String(name) if !name.contains('.') => Some(name),
        _ => None,
    }
}

/// JSON Logic → a JSON Schema that holds of the data exactly when the condition does, for the
/// shapes forms use (comparisons with constants, membership, truthiness, and/or/not).
fn translate(condition: &Value) -> Option<Value> {
    if let Value::Bool(flag) = condition {
        return Some(json!(flag));
    }
    let object = condition.as_object()?;
    if object.len() != 1 {
        return None;
    }
    let (operator, argument) = object.iter().next()?;
    let arguments: Vec<&Value> = match argument {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let equals = |name: &str, constant: &Value| json!({"properties": {name: {"const": constant}}, "required": [name]});
    match (operator.as_str(), arguments.as_slice()) {
        ("==" | "===", [left, right]) | ("!=" | "!==", [left, right]) => {
            let positive = match (var_name(left), var_name(right)) {
                (Some(name), None) if !right.is_object() => equals(name, right),
                (None, Some(name)) if !left.is_object() => equals(name, left),
                _ => return None,
            };
            // Loose equality would also match "1" to 1; forms compare strings to strings.
            if matches!(right, Value::Number(_)) || matches!(left, Value::Number(_)) {
                return None;
            }
            Some(if operator.starts_with('!') {
                json!({"not": positive})
            } else {
                positive
            })
        }
        ("in", [needle, Value::Array(haystack)]) => {
            let name = var_name(needle)?;
            if haystack.iter().any(|item| !item.is_string()) {
                return None;
            }
            Some(json!({"properties": {name: {"enum": haystack}}, "required": [name]}))
        }
        ("in", [needle, haystack]) if needle.is_string() => {
            let name = var_name(haystack)?;
            Some(json!({
                "properties": {name: {"type": "array", "contains": {"const": needle}}},
                "required": [name],
            }))
        }
        ("and", items) => {
            Some(json!({"allOf": items.iter().map(|c| translate(c)).collect::<Option<Vec<_>>>()?}))
        }
        ("or", items) => {
            Some(json!({"anyOf": items.iter().map(|c| translate(c)).collect::<Option<Vec<_>>>()?}))
        }
        ("!", [inner]) => Some(json!({"not": translate(inner)?})),
        ("!!", [inner]) => truthy(var_name(inner)?),
        ("var", _) => truthy(var_name(condition)?),
        _ => None,
    }
}

fn truthy(name: &str) -> Option<Value> {
    Some(json!({
        "properties": {name: {"not": {"enum": [false, "", 0, null, []]}}},
        "required": [name],
    }))
}
