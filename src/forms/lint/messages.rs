//! Messages in plain words: serde's errors without Rust's type names, values described.

use super::*;

pub(super) fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut pointer = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            Segment::Map { key } => pointer.push_str(&format!("/{}", escape(key))),
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    pointer
}

/// serde's messages rewritten without Rust's type names, keeping the valid choices.
pub(super) fn plain_message(raw: &str) -> String {
    let backticked = |text: &str| -> Vec<String> {
        text.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    if let Some(rest) = raw.strip_prefix("unknown field ") {
        let names = backticked(rest);
        let Some((key, choices)) = names.split_first() else {
            return "unknown key".to_owned();
        };
        return if choices.is_empty() {
            format!("unknown key `{key}`")
        } else {
            format!(
                "unknown key `{key}`; the keys here are {}",
                choices.join(", ")
            )
        };
    }
    if let Some(rest) = raw.strip_prefix("missing field ") {
        return format!("missing key {rest}");
    }
    if let Some(rest) = raw.strip_prefix("unknown variant ") {
        let names = backticked(rest);
        let Some((value, choices)) = names.split_first() else {
            return "not one of the choices".to_owned();
        };
        return format!(
            "`{value}` is not one of the choices: {}",
            choices.join(", ")
        );
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = raw.strip_prefix(prefix)
            && let Some((found, expected)) = rest.rsplit_once(", expected ")
        {
            return format!(
                "expected {}, found {}",
                plain_expected(expected),
                plain_found(found)
            );
        }
    }
    if raw.starts_with("input contains invalid characters")
        || raw.starts_with("premature end of input")
        || raw.starts_with("trailing input")
        || raw.starts_with("input is out of range")
        || raw.starts_with("no possible date")
    {
        return "expected a date written YYYY-MM-DD".to_owned();
    }
    raw.to_owned()
}

pub(super) fn plain_expected(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "a string" => "a text".to_owned(),
        "a boolean" => "true or false".to_owned(),
        "a sequence" => "a list".to_owned(),
        "a map" => "a mapping of `key: value` lines".to_owned(),
        "struct Localized" => "a text in both languages, {ja: …, en: …}".to_owned(),
        "a formatted date string" => "a date written YYYY-MM-DD".to_owned(),
        other if other.starts_with("struct ") => "a mapping of `key: value` lines".to_owned(),
        other if other.starts_with("variant identifier") || other.starts_with("one of") => {
            "one of the listed choices".to_owned()
        }
        other => other.to_owned(),
    }
}

pub(super) fn plain_found(found: &str) -> String {
    if let Some(text) = found.strip_prefix("string ") {
        return format!("the text {text}");
    }
    for prefix in ["integer ", "floating point "] {
        if let Some(number) = found.strip_prefix(prefix) {
            return format!("the number {}", number.trim_matches('`'));
        }
    }
    if let Some(flag) = found.strip_prefix("boolean ") {
        return flag.trim_matches('`').to_owned();
    }
    match found {
        "map" => "a mapping".to_owned(),
        "sequence" => "a list".to_owned(),
        "null" | "unit value" => "nothing".to_owned(),
        other => other.to_owned(),
    }
}

pub(super) fn describe_value(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => format!("the number {number}"),
        Value::String(text) => format!("the text \"{text}\""),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}
