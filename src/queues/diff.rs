//! What changed between two revisions of the answers, leaf by leaf, as JSON pointers.
//!
//! Sealed My Numbers are sealed with a fresh nonce every time, so two sealings of the same number
//! differ: they are opened to compare, and shown masked either way.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::submissions::sealing::{self, Scope, Sealer};

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

/// The changed leaves from `old` to `new`, each with the scope its My Numbers were sealed in
/// (two revisions of one application). Paths use the same unescaped pointers the sealing binds
/// (field ids are plain identifiers).
pub fn changes(
    sealer: &Sealer,
    old: (&Scope<'_>, &Value),
    new: (&Scope<'_>, &Value),
) -> Vec<Change> {
    let mut out = Vec::new();
    let scopes = Scopes {
        sealer,
        old: old.0,
        new: new.0,
    };
    scopes.walk(Some(old.1), Some(new.1), "", &mut out);
    out
}

struct Scopes<'a> {
    sealer: &'a Sealer,
    old: &'a Scope<'a>,
    new: &'a Scope<'a>,
}

impl Scopes<'_> {
    fn walk(&self, old: Option<&Value>, new: Option<&Value>, pointer: &str, out: &mut Vec<Change>) {
        match (old, new) {
            (Some(Value::Object(a)), Some(Value::Object(b))) => {
                let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    let pointer = format!("{pointer}/{key}");
                    self.walk(a.get(key), b.get(key), &pointer, out);
                }
            }
            (Some(Value::Array(a)), Some(Value::Array(b))) => {
                for index in 0..a.len().max(b.len()) {
                    let pointer = format!("{pointer}/{index}");
                    self.walk(a.get(index), b.get(index), &pointer, out);
                }
            }
            _ => {
                let absent_same = old.is_none() && new.is_none();
                let same = old.is_some() == new.is_some()
                    && self.plain(self.old, old, pointer) == self.plain(self.new, new, pointer);
                if absent_same || same {
                    return;
                }
                out.push(Change {
                    path: pointer.to_owned(),
                    old: old.map(|value| self.shown(self.old, value, pointer)),
                    new: new.map(|value| self.shown(self.new, value, pointer)),
                });
            }
        }
    }

    /// The value to compare: a sealed My Number opened (a value that does not open compares as
    /// null and is reported by the masking below).
    fn plain(&self, scope: &Scope<'_>, value: Option<&Value>, pointer: &str) -> Value {
        match value {
            Some(Value::String(text)) if Sealer::is_sealed(text) => self
                .sealer
                .open(text, scope, pointer)
                .map(Value::String)
                .unwrap_or(Value::Null),
            other => other.cloned().unwrap_or(Value::Null),
        }
    }

    /// The value to show: masked wherever a My Number is, also inside a group that appeared or
    /// disappeared as a whole.
    fn shown(&self, scope: &Scope<'_>, value: &Value, pointer: &str) -> Value {
        sealing::mask_answers_at(self.sealer, value, scope, pointer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submissions::sealing::Owner;
    use serde_json::json;
    use uuid::Uuid;

    #[test]
    fn leaves_are_compared_and_my_numbers_masked() {
        let sealer = Sealer::from_config(&secrecy::SecretString::from(String::new())).unwrap();
        let id = Uuid::now_v7();
        let first = Scope {
            procedure_id: "p",
            owner: Owner::Revision {
                submission: id,
                revision: 1,
            },
        };
        let second = Scope {
            procedure_id: "p",
            owner: Owner::Revision {
                submission: id,
                revision: 2,
            },
        };
        let old = json!({
            "name": "山田",
            "my_number": sealer.seal("123456789018", &first, "/my_number"),
            "children": [{"name": "一郎"}],
        });
        let new = json!({
            "name": "山田",
            // Sealed again: different bytes, same number, so no change.
            "my_number": sealer.seal("123456789018", &second, "/my_number"),
            "children": [{"name": "一郎"}, {"name": "二郎"}],
            "phone": "0761000000",
        });
        let found = changes(&sealer, (&first, &old), (&second, &new));
        let paths: Vec<&str> = found.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["/children/1", "/phone"]);
        assert_eq!(found[1].old, None);

        let changed = json!({"my_number": sealer.seal("999999999999", &second, "/my_number")});
        let found = changes(
            &sealer,
            (&first, &json!({"my_number": old["my_number"]})),
            (&second, &changed),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].old, Some(json!("********9018")));
        assert_eq!(found[0].new, Some(json!("********9999")));
    }
}
