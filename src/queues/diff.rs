//! What changed between two revisions of the answers, leaf by leaf, as JSON pointers.
//!
//! Sealed My Numbers are sealed with a fresh nonce every time, so two sealings of the same number
//! differ: they are opened to compare, and shown masked either way.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::submissions::sealing::{self, Sealer};

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Change {
    /// JSON pointer of the answer that changed.
    pub path: String,
    /// The answer before: any JSON value (a leaf: text, number, boolean); absent when added.
    #[schema(value_type = Option<Value>)]
    pub old: Option<Value>,
    /// The answer after: any JSON value; absent when removed.
    #[schema(value_type = Option<Value>)]
    pub new: Option<Value>,
}

/// The changed leaves from `old` to `new`. Paths use the same unescaped pointers the sealing
/// binds (field ids are plain identifiers).
pub fn changes(sealer: &Sealer, procedure_id: &str, old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(sealer, procedure_id, Some(old), Some(new), "", &mut out);
    out
}

fn walk(
    sealer: &Sealer,
    procedure_id: &str,
    old: Option<&Value>,
    new: Option<&Value>,
    pointer: &str,
    out: &mut Vec<Change>,
) {
    match (old, new) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                walk(
                    sealer,
                    procedure_id,
                    a.get(key),
                    b.get(key),
                    &format!("{pointer}/{key}"),
                    out,
                );
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for index in 0..a.len().max(b.len()) {
                walk(
                    sealer,
                    procedure_id,
                    a.get(index),
                    b.get(index),
                    &format!("{pointer}/{index}"),
                    out,
                );
            }
        }
        _ => {
            let context = format!("{procedure_id}{pointer}");
            let plain = |value: Option<&Value>| match value {
                Some(Value::String(text)) if Sealer::is_sealed(text) => sealer
                    .open(text, &context)
                    .map(Value::String)
                    .unwrap_or(Value::Null),
                other => other.cloned().unwrap_or(Value::Null),
            };
            let absent_same = old.is_none() && new.is_none();
            if absent_same || (old.is_some() == new.is_some() && plain(old) == plain(new)) {
                return;
            }
            let shown = |value: Option<&Value>| {
                value.map(|value| match value {
                    Value::String(text) if Sealer::is_sealed(text) => {
                        match sealer.open(text, &context) {
                            Ok(plain) => Value::String(sealing::mask(&plain)),
                            Err(_) => Value::String("********".to_owned()),
                        }
                    }
                    // A group that appeared or disappeared as a whole: mask inside it too.
                    other => crate::submissions::mask_sealed(sealer, other, procedure_id, pointer),
                })
            };
            out.push(Change {
                path: pointer.to_owned(),
                old: shown(old),
                new: shown(new),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leaves_are_compared_and_my_numbers_masked() {
        let sealer = Sealer::from_config(&secrecy::SecretString::from(String::new())).unwrap();
        let old = json!({
            "name": "山田",
            "my_number": sealer.seal("123456789018", "p/my_number"),
            "children": [{"name": "一郎"}],
        });
        let new = json!({
            "name": "山田",
            // Sealed again: different bytes, same number, so no change.
            "my_number": sealer.seal("123456789018", "p/my_number"),
            "children": [{"name": "一郎"}, {"name": "二郎"}],
            "phone": "0761000000",
        });
        let found = changes(&sealer, "p", &old, &new);
        let paths: Vec<&str> = found.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["/children/1", "/phone"]);
        assert_eq!(found[1].old, None);

        let changed = json!({"my_number": sealer.seal("999999999999", "p/my_number")});
        let found = changes(
            &sealer,
            "p",
            &json!({"my_number": old["my_number"]}),
            &changed,
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].old, Some(json!("********9018")));
        assert_eq!(found[0].new, Some(json!("********9999")));
    }
}
