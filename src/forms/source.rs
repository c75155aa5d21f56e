//! Reading YAML into JSON values while remembering where each value came from.
//!
//! Definitions are checked as `serde_json::Value`s (the same shape the API serves), but a mistake
//! must be reported as `file:line`. We read the YAML event stream ourselves (yaml-rust2's marked
//! parser) and can record, for every JSON pointer, the line it starts on.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Number, Value};
use yaml_rust2::Yaml;

use crate::messages::escape;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A parsed YAML document and the line of every value in it (1-based).
///
/// The lines are found only when a problem asks for one: a catalog without mistakes, the one
/// every server start reads, never needs them, and recording a pointer for every value was about
/// a seventh of reading the catalog (docs/BENCHMARKS.md, session 10). The text is kept to read
/// them from then.
#[derive(Debug, Clone)]
pub struct SourceDocument {
    pub value: Value,
    text: String,
    lines: OnceLock<HashMap<String, usize>>,
}

impl SourceDocument {
    /// Parses one YAML document. The error carries the line and a message.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let builder = build(text, false)?;
        Ok(Self {
            value: builder.root.unwrap_or(Value::Null),
            text: text.to_owned(),
            lines: OnceLock::new(),
        })
    }

    /// The line where the value at `pointer` starts, or of its nearest ancestor.
    pub fn line_of(&self, pointer: &str) -> usize {
        let lines = self.lines.get_or_init(|| {
            // The text parsed once already, so it parses the same way again.
            build(&self.text, true)
                .map(|builder| builder.lines)
                .unwrap_or_default()
        });
        let mut pointer = pointer.to_owned();
        loop {
            if let Some(line) = lines.get(&pointer) {
                return *line;
            }
            match pointer.rfind('/') {
                Some(index) => pointer.truncate(index),
                None => return 1,
            }
        }
    }
}

/// Reads `text` into a value, and the line of every value if `record_lines`.
fn build(text: &str, record_lines: bool) -> Result<Builder, (usize, String)> {
    let mut builder = Builder {
        record_lines,
        ..Builder::default()
    };
    Parser::new_from_str(text)
        .load(&mut builder, false)
        .map_err(|error| (error.marker().line(), error.info().to_owned()))?;
    match builder.error.take() {
        Some(message) => Err((builder.error_line.unwrap_or(1), message)),
        None => Ok(builder),
    }
}

enum Frame {
    Mapping {
        map: Map<String, Value>,
        pending_key: Option<String>,
        pointer: String,
        anchor: usize,
    },
    Sequence {
        items: Vec<Value>,
        pointer: String,
        anchor: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Value>,
    /// Whether to fill `lines` (and the frames' pointers it is built from).
    record_lines: bool,
    lines: HashMap<String, usize>,
    anchors: HashMap<usize, Value>,
    error: Option<String>,
    error_line: Option<usize>,
    /// Containers opened beyond `MAX_DEPTH`, skipped rather than built.
    skipped: usize,
    /// Values built so far, aliases counted in full: a few lines of anchors can expand to
    /// billions of values.
    size: usize,
}

/// No definition comes near these; beyond them the input is refused with a message instead of
/// exhausting the stack or memory.
const MAX_DEPTH: usize = 64;
const MAX_SIZE: usize = 1_000_000;

/// The number of values in `value`, counting up to `limit`.
fn size_of(value: &Value, limit: usize) -> usize {
    let mut total = 1;
    let children: Box<dyn Iterator<Item = &Value>> = match value {
        Value::Array(items) => Box::new(items.iter()),
        Value::Object(map) => Box::new(map.values()),
        _ => return total,
    };
    for child in children {
        if total >= limit {
            break;
        }
        total += size_of(child, limit - total);
    }
    total
}

impl Builder {
    /// The pointer of the value about to be read, when the current container is waiting for a
    /// value (not a mapping key).
    fn next_value_pointer(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Mapping {
                pending_key: Some(key),
                pointer,
                ..
            }) => Some(format!("{pointer}/{}", escape(key))),
            Some(Frame::Mapping { .. }) => None,
            Some(Frame::Sequence { items, pointer, .. }) => {
                Some(format!("{pointer}/{}", items.len()))
            }
        }
    }

    /// Whether the current container is a mapping waiting for a key.
    fn awaiting_key(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame::Mapping {
                pending_key: None,
                ..
            })
        )
    }

    fn fail(&mut self, message: &str, mark: Marker) {
        if self.error.is_none() {
            self.error = Some(message.to_owned());
            self.error_line = Some(mark.line());
        }
    }

    /// Places a finished value into its parent (or as the root).
    fn push_value(&mut self, value: Value, anchor: usize, mark: Marker) {
        if anchor > 0 {
            self.anchors.insert(anchor, value.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Sequence { items, .. }) => items.push(value),
            Some(Frame::Mapping {
                map, pending_key, ..
            }) => match pending_key.take() {
                Some(key) => {
                    if map.insert(key.clone(), value).is_some() {
                        self.fail(&format!("the key `{key}` appears twice"), mark);
                    }
                }
                None => match value {
                    Value::String(key) => *pending_key = Some(key),
                    Value::Number(number) => *pending_key = Some(number.to_string()),
                    Value::Bool(flag) => *pending_key = Some(flag.to_string()),
                    _ => self.fail("a mapping key must be a plain value", mark),
                },
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.size > MAX_SIZE {
            self.fail("the text has too many values", mark);
            return;
        }
        if self.skipped > 0 {
            match event {
                Event::MappingStart(..) | Event::SequenceStart(..) => self.skipped += 1,
                Event::MappingEnd | Event::SequenceEnd => {
                    self.skipped = self.skipped.saturating_sub(1);
                }
                _ => {}
            }
            return;
        }
        self.size += 1;
        match event {
            Event::MappingStart(..) | Event::SequenceStart(..) if self.stack.len() >= MAX_DEPTH => {
                self.fail(
                    &format!("the text is nested more than {MAX_DEPTH} levels deep"),
                    mark,
                );
                self.skipped = 1;
            }
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                let mut pointer = String::new();
                if self.record_lines {
                    pointer = self.next_value_pointer().unwrap_or_default();
                    // A nested mapping starts on the line after its key; the key's line is the
                    // one people look for, so keep it when we have it.
                    self.lines.entry(pointer.clone()).or_insert(mark.line());
                }
                if self.awaiting_key() {
                    self.fail("a mapping key must be a plain value", mark);
                }
                self.stack
                    .push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Mapping {
                            map: Map::new(),
                            pending_key: None,
                            pointer,
                            anchor,
                        }
                    } else {
                        Frame::Sequence {
                            items: Vec::new(),
                            pointer,
                            anchor,
                        }
                    });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let (value, anchor) = match self.stack.pop() {
                    Some(Frame::Mapping { map, anchor, .. }) => (Value::Object(map), anchor),
                    Some(Frame::Sequence { items, anchor, .. }) => (Value::Array(items), anchor),
                    None => return,
                };
                self.push_value(value, anchor, mark);
            }
            Event::Scalar(text, style, anchor, _tag) => {
                if self.record_lines {
                    match self.next_value_pointer() {
                        Some(pointer) => {
                            self.lines.entry(pointer).or_insert(mark.line());
                        }
                        None => {
                            // A key: remember its line under the pointer of the value it introduces.
                            if let Some(Frame::Mapping { pointer, .. }) = self.stack.last() {
                                self.lines
                                    .insert(format!("{pointer}/{}", escape(&text)), mark.line());
                            }
                        }
                    }
                }
                let value = if style == TScalarStyle::Plain {
                    plain_scalar(&text)
                } else {
                    Value::String(text)
                };
                self.push_value(value, anchor, mark);
            }
            Event::Alias(anchor) => {
                let value = self.anchors.get(&anchor).cloned().unwrap_or(Value::Null);
                self.size += size_of(&value, MAX_SIZE);
                if self.size > MAX_SIZE {
                    self.fail("the text expands to too many values (`*` aliases)", mark);
                    return;
                }
                self.push_value(value, 0, mark);
            }
            _ => {}
        }
    }
}

/// YAML 1.2 core schema resolution of an unquoted scalar.
fn plain_scalar(text: &str) -> Value {
    match Yaml::from_str(text) {
        Yaml::Null => Value::Null,
        Yaml::Boolean(flag) => Value::Bool(flag),
        Yaml::Integer(number) => Value::Number(number.into()),
        Yaml::Real(real) => real
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(text.to_owned()), Value::Number),
        _ => Value::String(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_their_lines() {
        let text = "id: a\ntitle:\n  ja: あ\n  en: A\nlist:\n  - x\n  - {k: 1}\nquoted: \"0761\"\nplain: 0761\n";
        let Ok(document) = SourceDocument::parse(text) else {
            panic!("the sample parses")
        };
        assert_eq!(document.value["title"]["ja"], "あ");
        assert_eq!(document.value["quoted"], "0761");
        assert_eq!(document.value["plain"], 761);
        assert_eq!(document.line_of("/id"), 1);
        assert_eq!(document.line_of("/title/en"), 4);
        assert_eq!(document.line_of("/list/1/k"), 7);
        assert_eq!(document.line_of("/list/1/unknown"), 7);
        // Reading the lines or not, the value is the same.
        let with_lines = build(text, true).ok().and_then(|builder| builder.root);
        assert_eq!(with_lines.as_ref(), Some(&document.value));
    }

    #[test]
    fn structural_mistakes_are_found_without_the_lines() {
        // A mapping as a key, and a key twice: both found on the first read, with their line.
        let nested_key = SourceDocument::parse(
            "a: 1
? {b: 1}
: 2
",
        )
        .err();
        assert_eq!(
            nested_key,
            Some((2, "a mapping key must be a plain value".to_owned()))
        );
        let twice = SourceDocument::parse(
            "a: 1
b:
  c: 1
  c: 2
",
        )
        .err();
        assert_eq!(twice.map(|(line, _)| line), Some(4));
    }

    #[test]
    fn duplicate_keys_are_an_error_with_a_line() {
        let error = SourceDocument::parse("a: 1\nb: 2\na: 3\n").err();
        assert_eq!(error.map(|(line, _)| line), Some(3));
    }
}
