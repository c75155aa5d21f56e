//! `madoguchi forms check`: loading the catalog and reporting every mistake as `file:line: message`.
//!
//! The same checks run when the server starts, so a broken catalog is refused before it can
//! serve a broken form.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::logic;
use super::model::{Block, Definition, Field, FieldType, Organisation, Page};
use super::source::{SourceDocument, escape};
use super::validate::{self, CheckOptions};
use crate::error::Localized;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// Every problem found, printable one per line as `file:line: message`.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub problems: Vec<Problem>,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in &self.problems {
            writeln!(
                formatter,
                "{}:{}: {}",
                problem.file.display(),
                problem.line,
                problem.message
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for CheckReport {}

/// A catalog that passed every check.
#[derive(Debug)]
pub struct LoadedCatalog {
    pub organisation: Organisation,
    /// Definitions with blocks resolved, and the file each came from.
    pub definitions: Vec<(Definition, PathBuf)>,
}

/// The date in Japan, which is what "today" means to a city's forms (no daylight saving).
pub fn city_today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(9)).date_naive()
}

struct Collector {
    problems: Vec<Problem>,
}

impl Collector {
    fn at(&mut self, file: &Path, document: &SourceDocument, pointer: &str, message: String) {
        self.problems.push(Problem {
            file: file.to_owned(),
            line: document.line_of(pointer),
            message,
        });
    }
}

struct LoadedBlock {
    block: Block,
}

/// Loads and checks the catalog in `dir`. With `only`, just those definition files are checked
/// (the organisation and blocks are always read, since definitions refer to them).
pub fn check_catalog(dir: &Path, only: &[PathBuf]) -> Result<LoadedCatalog, CheckReport> {
    let mut collector = Collector {
        problems: Vec::new(),
    };
    let organisation_path = dir.join("catalog.yaml");
    let organisation: Option<Organisation> =
        parse_file(&organisation_path, &mut collector).map(|(organisation, _)| organisation);
    if let Some(organisation) = &organisation {
        check_organisation(organisation, &organisation_path, &mut collector);
    }

    let mut blocks = HashMap::new();
    for path in yaml_files(&dir.join("_blocks")) {
        let Some(name) = stem(&path) else { continue };
        if let Some((block, document)) = parse_file::<Block>(&path, &mut collector) {
            check_fields(&block.fields, "/fields", &path, &document, &mut collector);
            blocks.insert(name, LoadedBlock { block });
        }
    }

    let files: Vec<PathBuf> = if only.is_empty() {
        definition_files(dir)
    } else {
        only.to_vec()
    };
    let mut definitions = Vec::new();
    let mut seen_ids: HashMap<String, PathBuf> = HashMap::new();
    for path in files {
        let Some((definition, document)) = parse_file::<Definition>(&path, &mut collector) else {
            continue;
        };
        if let Some(first) = seen_ids.get(&definition.id) {
            collector.at(
                &path,
                &document,
                "/id",
                format!(
                    "duplicate procedure id `{}` (also in {})",
                    definition.id,
                    first.display()
                ),
            );
        } else {
            seen_ids.insert(definition.id.clone(), path.clone());
        }
        let before = collector.problems.len();
        let resolved = check_definition(
            definition,
            &path,
            &document,
            organisation.as_ref(),
            &blocks,
            &mut collector,
        );
        if collector.problems.len() == before {
            check_examples(&resolved, &path, &document, &mut collector);
        }
        definitions.push((resolved, path));
    }

    match organisation {
        Some(organisation) if collector.problems.is_empty() => Ok(LoadedCatalog {
            organisation,
            definitions,
        }),
        _ => Err(CheckReport {
            problems: collector.problems,
        }),
    }
}

/// All `forms/<category>/<id>.yaml` files, sorted (folders starting with `_` hold blocks).
pub fn definition_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let hidden = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with('_') || name.starts_with('.'));
        if path.is_dir() && !hidden {
            files.extend(yaml_files(&path));
        }
    }
    files.sort();
    files
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn stem(path: &Path) -> Option<String> {
    path.file_stem()
        .and_then(|stem| stem.to_str())
        .map(str::to_owned)
}

/// Reads and deserialises one YAML file, reporting syntax errors, unknown keys and wrong types
/// with their line.
fn parse_file<T: DeserializeOwned>(
    path: &Path,
    collector: &mut Collector,
) -> Option<(T, SourceDocument)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            collector.problems.push(Problem {
                file: path.to_owned(),
                line: 1,
                message: format!("cannot read the file: {error}"),
            });
            return None;
        }
    };
    let document = match SourceDocument::parse(&text) {
        Ok(document) => document,
        Err((line, message)) => {
            collector.problems.push(Problem {
                file: path.to_owned(),
                line,
                message: format!("YAML syntax: {message}"),
            });
            return None;
        }
    };
    match serde_path_to_error::deserialize::<_, T>(document.value.clone()) {
        Ok(value) => Some((value, document)),
        Err(error) => {
            let mut pointer = pointer_of(error.path());
            let message = error.inner().to_string();
            // For an unknown key, point at the key itself.
            if let Some(key) = message
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
            {
                let parent = pointer.clone();
                pointer = format!("{parent}/{}", escape(key));
                if document.line_of(&pointer) == document.line_of(&parent) {
                    pointer = parent;
                }
            }
            collector.at(path, &document, &pointer, message);
            None
        }
    }
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
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

fn check_organisation(organisation: &Organisation, path: &Path, collector: &mut Collector) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let Ok(document) = SourceDocument::parse(&text) else {
        return;
    };
    for (id, queue) in &organisation.queues {
        if !organisation.divisions.contains_key(&queue.division) {
            collector.at(
                path,
                &document,
                &format!("/queues/{}", escape(id)),
                format!(
                    "queue `{id}` names an unknown division `{}`",
                    queue.division
                ),
            );
        }
        if organisation.divisions.contains_key(id) {
            collector.at(
                path,
                &document,
                &format!("/queues/{}", escape(id)),
                format!("queue `{id}` has the same id as a division"),
            );
        }
    }
    for (id, division) in &organisation.divisions {
        if !super::normalize::is_email(&division.email) {
            collector.at(
                path,
                &document,
                &format!("/divisions/{}/email", escape(id)),
                format!("division `{id}` needs a valid email address"),
            );
        }
    }
}

fn text_missing(text: &Localized) -> Option<&'static str> {
    if text.ja.trim().is_empty() {
        Some("ja")
    } else if text.en.trim().is_empty() {
        Some("en")
    } else {
        None
    }
}

fn valid_field_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks one list of fields as written in a file (blocks unresolved).
fn check_fields(
    fields: &[Field],
    base: &str,
    path: &Path,
    document: &SourceDocument,
    collector: &mut Collector,
) {
    for (index, field) in fields.iter().enumerate() {
        let pointer = format!("{base}/{index}");
        let mut problem = |message: String| collector.at(path, document, &pointer, message);
        if field.include.is_some() {
            if !field.id.is_empty() || field.field_type.is_some() || field.label.is_some() {
                problem("an `include` entry takes no other keys".to_owned());
            }
            continue;
        }
        if !valid_field_id(&field.id) {
            problem(format!(
                "field id `{}` must be snake_case (a-z, 0-9, _), starting with a letter",
                field.id
            ));
        }
        let Some(kind) = field.field_type else {
            problem(format!("field `{}` needs a `type`", field.id));
            continue;
        };
        match (&field.label, kind) {
            (None, FieldType::Info) => {}
            (None, _) => problem(format!("field `{}` needs a `label`", field.id)),
            (Some(label), _) => {
                if let Some(language) = text_missing(label) {
                    problem(format!(
                        "field `{}`: label has no {language} text",
                        field.id
                    ));
                }
            }
        }
        if let Some(language) = field.help.as_ref().and_then(text_missing) {
            problem(format!("field `{}`: help has no {language} text", field.id));
        }
        for key in inapplicable_keys(field, kind) {
            problem(format!(
                "field `{}`: `{key}` does not apply to type {}",
                field.id,
                serde_json::to_value(kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ));
        }
        match kind {
            FieldType::Select | FieldType::Radio | FieldType::MultiSelect => {
                if field.options.is_empty() {
                    problem(format!("field `{}` needs `options`", field.id));
                }
                let mut values = HashSet::new();
                for option in &field.options {
                    if !values.insert(option.value.as_str()) {
                        problem(format!(
                            "field `{}`: option `{}` appears twice",
                            field.id, option.value
                        ));
                    }
                    if let Some(language) = text_missing(&option.label) {
                        problem(format!(
                            "field `{}`: option `{}` has no {language} label",
                            field.id, option.value
                        ));
                    }
                }
            }
            FieldType::Group if field.fields.is_empty() => {
                problem(format!("group `{}` needs `fields`", field.id));
            }
            FieldType::Info => match &field.text {
                None => problem(format!("info `{}` needs `text`", field.id)),
                Some(text) => {
                    if let Some(language) = text_missing(text) {
                        problem(format!("info `{}`: text has no {language} text", field.id));
                    }
                }
            },
            FieldType::Date => {
                for bound in [&field.min, &field.max].into_iter().flatten() {
                    let ok = bound.as_str().is_some_and(|text| {
                        validate::date_limit(text, chrono::NaiveDate::MIN).is_some()
                            || text.starts_with("today")
                    });
                    if !ok {
                        problem(format!(
                            "field `{}`: a date limit is `YYYY-MM-DD`, `today`, `today+N` or `today-N`",
                            field.id
                        ));
                    }
                }
            }
            FieldType::Integer | FieldType::Decimal | FieldType::Money => {
                for bound in [&field.min, &field.max].into_iter().flatten() {
                    if !bound.is_number() {
                        problem(format!("field `{}`: `min`/`max` must be numbers", field.id));
                    }
                }
            }
            _ => {}
        }
        if let Some(pattern) = &field.pattern
            && let Err(error) = regex::Regex::new(pattern)
        {
            problem(format!(
                "field `{}`: pattern is not a valid regular expression: {error}",
                field.id
            ));
        }
        if let (Some(min), Some(max)) = (field.min_items, field.max_items)
            && min > max
        {
            problem(format!(
                "field `{}`: min_items is above max_items",
                field.id
            ));
        }
        if kind == FieldType::Group {
            check_fields(
                &field.fields,
                &format!("{pointer}/fields"),
                path,
                document,
                collector,
            );
        }
    }
}

/// Keys set on a field that have no meaning for its type.
fn inapplicable_keys(field: &Field, kind: FieldType) -> Vec<&'static str> {
    use FieldType as T;
    let texty = matches!(kind, T::Text | T::Textarea | T::Kana);
    let numeric = matches!(kind, T::Integer | T::Decimal | T::Money | T::Date);
    let choices = matches!(kind, T::Select | T::Radio | T::MultiSelect);
    let counted = matches!(kind, T::MultiSelect | T::Group);
    let checks: [(&'static str, bool, bool); 13] = [
        ("min_length", field.min_length.is_some(), texty),
        ("max_length", field.max_length.is_some(), texty),
        ("pattern", field.pattern.is_some(), kind == T::Text),
        ("min", field.min.is_some(), numeric),
        ("max", field.max.is_some(), numeric),
        ("options", !field.options.is_empty(), choices),
        ("min_items", field.min_items.is_some(), counted),
        ("max_items", field.max_items.is_some(), counted),
        ("accept", !field.accept.is_empty(), kind == T::File),
        ("max_size_mb", field.max_size_mb.is_some(), kind == T::File),
        ("max_files", field.max_files.is_some(), kind == T::File),
        ("fields", !field.fields.is_empty(), kind == T::Group),
        (
            "account_types",
            !field.account_types.is_empty(),
            kind == T::BankAccount,
        ),
    ];
    let mut keys: Vec<&'static str> = checks
        .into_iter()
        .filter(|(_, set, applies)| *set && !applies)
        .map(|(key, _, _)| key)
        .collect();
    if field.text.is_some() && kind != T::Info {
        keys.push("text");
    }
    keys
}

/// A field after blocks are resolved, with the pointer in the definition file to blame for it
/// (the `include` line for fields that came from a block).
struct Placed<'a> {
    field: &'a Field,
    pointer: String,
}

fn place<'a>(
    fields: &'a [Field],
    base: &str,
    blocks: &'a HashMap<String, LoadedBlock>,
    out: &mut Vec<Placed<'a>>,
    missing_blocks: &mut Vec<(String, String)>,
) {
    for (index, field) in fields.iter().enumerate() {
        let pointer = format!("{base}/{index}");
        match &field.include {
            Some(name) => match blocks.get(name) {
                Some(loaded) => {
                    let mut inner = Vec::new();
                    place(&loaded.block.fields, "", blocks, &mut inner, missing_blocks);
                    out.extend(inner.into_iter().map(|placed| Placed {
                        field: placed.field,
                        pointer: pointer.clone(),
                    }));
                }
                None => missing_blocks.push((pointer, name.clone())),
            },
            None => out.push(Placed { field, pointer }),
        }
    }
}

/// The same fields with includes replaced, recursively, as owned values.
fn resolve(fields: &[Field], blocks: &HashMap<String, LoadedBlock>, depth: usize) -> Vec<Field> {
    let mut resolved = Vec::new();
    for field in fields {
        match &field.include {
            Some(name) if depth < 8 => {
                if let Some(loaded) = blocks.get(name) {
                    resolved.extend(resolve(&loaded.block.fields, blocks, depth + 1));
                }
            }
            Some(_) => {}
            None => {
                let mut field = field.clone();
                field.fields = resolve(&field.fields, blocks, depth + 1);
                resolved.push(field);
            }
        }
    }
    resolved
}

fn check_definition(
    mut definition: Definition,
    path: &Path,
    document: &SourceDocument,
    organisation: Option<&Organisation>,
    blocks: &HashMap<String, LoadedBlock>,
    collector: &mut Collector,
) -> Definition {
    let mut problem =
        |pointer: &str, message: String| collector.at(path, document, pointer, message);

    if stem(path).as_deref() != Some(definition.id.as_str()) {
        problem(
            "/id",
            format!("id `{}` must equal the file name", definition.id),
        );
    }
    let folder = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|name| name.to_str());
    if folder != Some(definition.category.as_str()) {
        problem(
            "/category",
            format!(
                "category `{}` must equal the folder name",
                definition.category
            ),
        );
    }
    for (pointer, text) in [
        ("/title", Some(&definition.title)),
        ("/summary", definition.summary.as_ref()),
    ] {
        if let Some(language) = text.and_then(text_missing) {
            problem(pointer, format!("missing {language} translation"));
        }
    }
    if let Some(organisation) = organisation {
        if !organisation.categories.contains_key(&definition.category) {
            problem(
                "/category",
                format!(
                    "unknown category `{}` (see catalog.yaml)",
                    definition.category
                ),
            );
        }
        if !organisation.divisions.contains_key(&definition.division) {
            problem(
                "/division",
                format!(
                    "unknown division `{}` (see catalog.yaml)",
                    definition.division
                ),
            );
        }
        for (index, rule) in definition.routing.iter().enumerate() {
            let known = organisation.divisions.contains_key(&rule.queue)
                || organisation.queues.contains_key(&rule.queue);
            if !known {
                problem(
                    &format!("/routing/{index}/queue"),
                    format!("unknown queue `{}` (see catalog.yaml)", rule.queue),
                );
            }
        }
    }
    for (index, event) in definition.notify.applicant.iter().enumerate() {
        if !["received", "returned", "completed", "rejected", "withdrawn"].contains(&event.as_str())
        {
            problem(
                &format!("/notify/applicant/{index}"),
                format!("unknown applicant event `{event}`"),
            );
        }
    }
    for (index, event) in definition.notify.division.iter().enumerate() {
        if !["received", "resubmitted", "withdrawn"].contains(&event.as_str()) {
            problem(
                &format!("/notify/division/{index}"),
                format!("unknown division event `{event}`"),
            );
        }
    }

    // Fields as written, then as resolved.
    let mut page_ids = HashSet::new();
    for (page_index, page) in definition.pages.iter().enumerate() {
        let pointer = format!("/pages/{page_index}");
        if !page_ids.insert(page.id.clone()) {
            problem(&pointer, format!("page id `{}` appears twice", page.id));
        }
        if let Some(language) = text_missing(&page.title) {
            problem(
                &pointer,
                format!("page `{}`: title has no {language} text", page.id),
            );
        }
        if page.fields.is_empty() {
            problem(&pointer, format!("page `{}` has no fields", page.id));
        }
    }
    for (page_index, page) in definition.pages.iter().enumerate() {
        check_fields(
            &page.fields,
            &format!("/pages/{page_index}/fields"),
            path,
            document,
            collector,
        );
    }

    let mut placed = Vec::new();
    let mut missing_blocks = Vec::new();
    for (page_index, page) in definition.pages.iter().enumerate() {
        place(
            &page.fields,
            &format!("/pages/{page_index}/fields"),
            blocks,
            &mut placed,
            &mut missing_blocks,
        );
    }
    for (pointer, name) in missing_blocks {
        collector.at(
            path,
            document,
            &pointer,
            format!("unknown block `{name}` (no forms/_blocks/{name}.yaml)"),
        );
    }
    let mut top_ids: HashMap<&str, FieldType> = HashMap::new();
    for item in &placed {
        if top_ids
            .insert(item.field.id.as_str(), item.field.kind())
            .is_some()
        {
            collector.at(
                path,
                document,
                &item.pointer,
                format!("field id `{}` appears twice in the form", item.field.id),
            );
        }
    }
    let top_names: HashSet<&str> = top_ids.keys().copied().collect();

    for (page_index, page) in definition.pages.iter().enumerate() {
        if let Some(condition) = &page.show_if {
            let pointer = format!("/pages/{page_index}/show_if");
            check_condition(
                collector, path, document, &pointer, condition, &top_names, "show_if",
            );
            if logic::variables(condition).is_empty()
                && !logic::holds(condition, &Value::Object(Default::default()))
            {
                collector.at(
                    path,
                    document,
                    &pointer,
                    format!("page `{}` can never be shown", page.id),
                );
            }
        }
    }
    for item in &placed {
        check_field_conditions(
            item.field,
            &item.pointer,
            &top_names,
            &mut |pointer, condition, scope, what| {
                check_condition(collector, path, document, pointer, condition, scope, what)
            },
        );
    }
    if let Some(fee) = &definition.fee {
        if let Some(per_unit) = &fee.per_unit {
            match top_ids.get(per_unit.quantity.as_str()) {
                Some(FieldType::Integer) => {}
                Some(_) => collector.at(
                    path,
                    document,
                    "/fee/per_unit/quantity",
                    format!(
                        "fee quantity `{}` must be an integer field",
                        per_unit.quantity
                    ),
                ),
                None => collector.at(
                    path,
                    document,
                    "/fee/per_unit/quantity",
                    format!(
                        "fee quantity names an unknown field `{}`",
                        per_unit.quantity
                    ),
                ),
            }
        }
        if let Some(computed) = &fee.computed {
            check_condition(
                collector,
                path,
                document,
                "/fee/computed",
                computed,
                &top_names,
                "computed fee",
            );
        }
        let kinds = [
            fee.fixed.is_some(),
            fee.per_unit.is_some(),
            fee.computed.is_some(),
        ];
        if kinds.iter().filter(|set| **set).count() != 1 {
            collector.at(
                path,
                document,
                "/fee",
                "fee takes exactly one of `fixed`, `per_unit`, `computed`".to_owned(),
            );
        }
    }
    for (index, rule) in definition.routing.iter().enumerate() {
        check_condition(
            collector,
            path,
            document,
            &format!("/routing/{index}/when"),
            &rule.when,
            &top_names,
            "routing rule",
        );
    }

    definition.pages = definition
        .pages
        .into_iter()
        .map(|page| Page {
            fields: resolve(&page.fields, blocks, 0),
            ..page
        })
        .collect();
    definition
}

fn check_condition(
    collector: &mut Collector,
    path: &Path,
    document: &SourceDocument,
    pointer: &str,
    condition: &Value,
    scope: &HashSet<&str>,
    what: &str,
) {
    if let Err(error) = logic::compile(condition) {
        collector.at(path, document, pointer, format!("{what}: {error}"));
        return;
    }
    for name in logic::variables(condition) {
        if !scope.contains(name.as_str()) {
            collector.at(
                path,
                document,
                pointer,
                format!("{what} names an unknown field `{name}`"),
            );
        }
    }
}

fn check_field_conditions(
    field: &Field,
    pointer: &str,
    scope: &HashSet<&str>,
    check: &mut impl FnMut(&str, &Value, &HashSet<&str>, &str),
) {
    for (key, condition) in [
        ("show_if", &field.show_if),
        ("required_if", &field.required_if),
    ] {
        if let Some(condition) = condition {
            check(
                pointer,
                condition,
                scope,
                &format!("field `{}`: {key}", field.id),
            );
        }
    }
    if field.kind() == FieldType::Group {
        let mut inner_scope = scope.clone();
        let mut seen = HashSet::new();
        for child in &field.fields {
            inner_scope.insert(child.id.as_str());
        }
        for child in &field.fields {
            if child.include.is_none() && !seen.insert(child.id.as_str()) {
                check(
                    pointer,
                    &Value::Bool(true),
                    scope,
                    &format!(
                        "group `{}`: field id `{}` appears twice",
                        field.id, child.id
                    ),
                );
            }
            check_field_conditions(child, pointer, &inner_scope, check);
        }
    }
}

fn check_examples(
    definition: &Definition,
    path: &Path,
    document: &SourceDocument,
    collector: &mut Collector,
) {
    let valid = definition.examples.iter().filter(|e| e.valid).count();
    let invalid = definition
        .examples
        .iter()
        .filter(|e| !e.errors.is_empty())
        .count();
    if valid == 0 || invalid == 0 {
        collector.at(
            path,
            document,
            "/examples",
            "needs at least one valid and one invalid example".to_owned(),
        );
    }
    for (index, example) in definition.examples.iter().enumerate() {
        let pointer = format!("/examples/{index}");
        let today = example.as_of.unwrap_or_else(city_today);
        let result = validate::validate(definition, &example.data, CheckOptions::complete(today));
        let name = &example.name;
        if example.valid && !example.errors.is_empty() {
            collector.at(
                path,
                document,
                &pointer,
                format!("example `{name}` has both `valid: true` and `errors`"),
            );
            continue;
        }
        if !example.valid && example.errors.is_empty() {
            collector.at(
                path,
                document,
                &pointer,
                format!("example `{name}` needs `valid: true` or `errors`"),
            );
            continue;
        }
        match result {
            Ok(accepted) if example.valid => {
                if let Some(fee) = example.fee
                    && fee != accepted.fee
                {
                    collector.at(
                        path,
                        document,
                        &pointer,
                        format!(
                            "example `{name}`: fee is {} yen, expected {fee}",
                            accepted.fee
                        ),
                    );
                }
                if let Some(queue) = &example.queue
                    && queue != &accepted.queue
                {
                    collector.at(
                        path,
                        document,
                        &pointer,
                        format!(
                            "example `{name}`: routed to `{}`, expected `{queue}`",
                            accepted.queue
                        ),
                    );
                }
            }
            Ok(_) => collector.at(
                path,
                document,
                &pointer,
                format!("example `{name}` should be invalid but was accepted"),
            ),
            Err(errors) => {
                let actual: BTreeMap<(String, String), ()> = errors
                    .into_iter()
                    .map(|error| ((error.path, error.code), ()))
                    .collect();
                let expected: BTreeMap<(String, String), ()> = example
                    .errors
                    .iter()
                    .map(|error| ((error.path.clone(), error.code.clone()), ()))
                    .collect();
                if actual != expected {
                    let describe = |set: Vec<&(String, String)>| {
                        set.iter()
                            .map(|(path, code)| format!("{path} {code}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let missing = describe(
                        expected
                            .keys()
                            .filter(|key| !actual.contains_key(*key))
                            .collect(),
                    );
                    let unexpected = describe(
                        actual
                            .keys()
                            .filter(|key| !expected.contains_key(*key))
                            .collect(),
                    );
                    collector.at(
                        path,
                        document,
                        &pointer,
                        format!(
                            "example `{name}` does not behave as declared: expected but not produced [{missing}]; produced but not expected [{unexpected}]"
                        ),
                    );
                }
            }
        }
    }
}
