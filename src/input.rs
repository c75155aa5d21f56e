//! The character rule for everything the service stores: JSON bodies, their keys, query
//! strings and paths, and the answers of a procedure ([`crate::forms::validate`]).
//! PostgreSQL cannot hold U+0000 in `text` or `jsonb`, and control characters that are not
//! line breaks or tabs, or bidi embeddings, overrides and isolates, only ever hide or disguise
//! what staff read. They are a 422 field error `invalid_character`, never a database error.
//! See docs/DECISIONS.md ("Bad input"). The HTTP guard applying it is `crate::routes::guard`.

use serde_json::Value;

use crate::messages::FieldError;

/// The field error code for a refused character.
pub const INVALID_CHARACTER: &str = "invalid_character";

/// True for a character no stored text may hold.
pub fn is_refused(c: char) -> bool {
    match c {
        '\t' | '\n' | '\r' => false,
        // C0 controls (U+0000 first of all), DEL and the C1 controls.
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Bidi embeddings and overrides (LRE…RLO) and isolates (LRI…PDI). The single marks
        // LRM, RLM and ALM stay allowed: they have no scope and cannot reorder a whole line.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

/// True when `text` may be stored.
pub fn is_acceptable(text: &str) -> bool {
    !text.chars().any(is_refused)
}

/// One `invalid_character` error per string or object key in `value` that may not be stored,
/// located by JSON pointer under `path`.
pub fn json_errors(value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    // Paths are built only on the way to an error: every application passes through here, and
    // nearly all of them have none.
    if all_acceptable(value) {
        return;
    }
    match value {
        Value::String(text) if !is_acceptable(text) => {
            errors.push(FieldError::new(path, INVALID_CHARACTER));
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                json_errors(item, &format!("{path}/{index}"), errors);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let item_path = format!("{path}/{}", crate::messages::escape(key));
                if is_acceptable(key) {
                    json_errors(item, &item_path, errors);
                } else {
                    errors.push(FieldError::new(&item_path, INVALID_CHARACTER));
                }
            }
        }
        _ => {}
    }
}

fn all_acceptable(value: &Value) -> bool {
    match value {
        Value::String(text) => is_acceptable(text),
        Value::Array(items) => items.iter().all(all_acceptable),
        Value::Object(map) => map
            .iter()
            .all(|(key, item)| is_acceptable(key) && all_acceptable(item)),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_controls_and_bidi_overrides_are_refused_line_breaks_and_marks_are_not() {
        for text in [
            "a\u{0}b",
            "\u{1b}[31m",
            "\u{7f}",
            "\u{85}",
            "abc\u{202e}fed",
            "\u{2067}",
        ] {
            assert!(!is_acceptable(text), "{text:?}");
        }
        for text in [
            "一行目\n二行目\r\n",
            "\tindent",
            "שלום\u{200f}",
            "住民票",
            "😀",
            "",
        ] {
            assert!(is_acceptable(text), "{text:?}");
        }
    }

    #[test]
    fn json_errors_point_at_strings_and_keys() {
        let value =
            serde_json::json!({"a": ["ok", "x\u{0}"], "b\u{0}": 1, "c/d": {"e": "\u{202e}"}});
        let mut errors = Vec::new();
        json_errors(&value, "", &mut errors);
        let paths: Vec<_> = errors.iter().map(|error| error.path.as_str()).collect();
        assert_eq!(paths, ["/a/1", "/b\u{0}", "/c~1d/e"]);
    }
}
