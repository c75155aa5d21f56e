//! `madoguchi forms check`: loading the catalog and reporting every mistake as `file:line: message`.
//!
//! The same checks run when the server starts, so a broken catalog is refused before it can
//! serve a broken form. Every rule of docs/FORMS.md is checked here, on the definition itself,
//! and reported once, at the line of the offending key, in words a city's IT person reads
//! without knowing Rust. Examples are run only on a definition that has no other mistake, so a
//! mistake is never reported as a misbehaving example.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::logic;
use super::model::{
    Assurance, Block, Definition, Field, FieldType, Organisation, Page, Relationship, Residency,
    SendTo,
};
use super::source::{SourceDocument, escape};
use super::validate::{self, CheckOptions};
use crate::error::Localized;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
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

/// The error codes of docs/FORMS.md, which examples may expect.
pub const ERROR_CODES: [&str; 28] = [
    "required",
    "unknown_field",
    "invalid_type",
    "too_short",
    "too_long",
    "pattern_mismatch",
    "invalid_kana",
    "invalid_email",
    "invalid_phone",
    "invalid_postal_code",
    "invalid_date",
    "date_too_early",
    "date_too_late",
    "not_integer",
    "not_number",
    "too_small",
    "too_large",
    "invalid_option",
    "duplicate_option",
    "too_few_items",
    "too_many_items",
    "must_consent",
    "invalid_my_number",
    "invalid_bank_code",
    "invalid_branch_code",
    "invalid_account_number",
    "invalid_account_type",
    "invalid_attachment",
];

const APPLICANT_EVENTS: [&str; 5] = ["received", "returned", "completed", "rejected", "withdrawn"];
const DIVISION_EVENTS: [&str; 3] = ["received", "resubmitted", "withdrawn"];

#[derive(Default)]
struct Collector {
    problems: Vec<Problem>,
}

/// One file being checked: where its problems go and the line of each of its values.
#[derive(Clone, Copy)]
struct Site<'a> {
    path: &'a Path,
    document: &'a SourceDocument,
}

impl Collector {
    fn at(&mut self, site: Site<'_>, pointer: &str, message: String) {
        self.problems.push(Problem {
            file: site.path.to_owned(),
            line: site.document.line_of(pointer),
            message,
        });
    }

    fn count_in(&self, path: &Path) -> usize {
        self.problems.iter().filter(|p| p.file == path).count()
    }
}

/// A shared block: its fields when it parsed, and whether it is usable by definitions (a block
/// with a mistake is reported once, at the block, and the forms including it are not blamed).
struct LoadedBlock {
    path: PathBuf,
    parsed: Option<(Block, SourceDocument)>,
    broken: bool,
}

type Blocks = BTreeMap<String, LoadedBlock>;

/// Loads and checks the catalog in `dir`. With `only`, the whole catalog is still read (rules
/// such as unique ids span files) but only the problems in those files are reported; a file in
/// `only` outside `dir` is checked as part of the catalog, as a definition or, in a folder
/// starting with `_`, as a block.
pub fn check_catalog(dir: &Path, only: &[PathBuf]) -> Result<LoadedCatalog, CheckReport> {
    let mut collector = Collector::default();
    let organisation_path = dir.join("catalog.yaml");
    let organisation = parse_file::<Organisation>(&organisation_path, &mut collector).map(
        |(organisation, document)| {
            let site = Site {
                path: &organisation_path,
                document: &document,
            };
            check_organisation(&organisation, site, &mut collector);
            organisation
        },
    );

    let chosen: HashSet<PathBuf> = only.iter().map(|path| canonical(path)).collect();
    let mut block_files = yaml_files(&dir.join("_blocks"));
    let mut files = definition_files(dir);
    for path in only {
        let known = |list: &[PathBuf]| list.iter().any(|p| canonical(p) == canonical(path));
        if is_block_path(path) {
            if !known(&block_files) {
                block_files.push(path.clone());
            }
        } else if path.file_name().is_none_or(|name| name != "catalog.yaml") && !known(&files) {
            files.push(path.clone());
        }
    }
    let blocks = load_blocks(&block_files, &mut collector);

    let mut parsed = Vec::new();
    for path in files {
        if let Some((definition, document)) = parse_file::<Definition>(&path, &mut collector) {
            parsed.push((path, definition, document));
        }
    }
    let mut by_id: BTreeMap<&str, Vec<&Path>> = BTreeMap::new();
    for (path, definition, _) in &parsed {
        by_id.entry(definition.id.as_str()).or_default().push(path);
    }
    for (path, definition, document) in &parsed {
        let others: Vec<String> = by_id[definition.id.as_str()]
            .iter()
            .filter(|other| *other != path)
            .map(|other| other.display().to_string())
            .collect();
        if !others.is_empty() {
            collector.at(
                Site { path, document },
                "/id",
                format!(
                    "procedure id `{}` is also used by {}",
                    definition.id,
                    others.join(", ")
                ),
            );
        }
    }

    let mut definitions = Vec::new();
    for (path, definition, document) in parsed {
        let site = Site {
            path: &path,
            document: &document,
        };
        let (resolved, complete) = check_definition(
            definition,
            site,
            organisation.as_ref(),
            &blocks,
            &mut collector,
        );
        if complete && collector.count_in(&path) == 0 {
            check_examples(&resolved, site, organisation.as_ref(), &mut collector);
        }
        if chosen.is_empty() || chosen.contains(&canonical(&path)) {
            definitions.push((resolved, path));
        }
    }

    let mut problems = collector.problems;
    if !chosen.is_empty() {
        problems.retain(|problem| chosen.contains(&canonical(&problem.file)));
    }
    problems.sort();
    problems.dedup();
    match organisation {
        Some(organisation) if problems.is_empty() => Ok(LoadedCatalog {
            organisation,
            definitions,
        }),
        _ if problems.is_empty() => Err(CheckReport {
            problems: vec![Problem {
                file: organisation_path,
                line: 1,
                message: "the catalog cannot be used without a valid catalog.yaml".to_owned(),
            }],
        }),
        _ => Err(CheckReport { problems }),
    }
}

/// The catalog folder a file belongs to: the nearest folder above it holding `catalog.yaml`.
pub fn catalog_root(file: &Path) -> Option<PathBuf> {
    let absolute = std::fs::canonicalize(file).ok()?;
    absolute
        .ancestors()
        .skip(1)
        .find(|dir| dir.join("catalog.yaml").is_file())
        .map(Path::to_path_buf)
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// Blocks live in a folder whose name starts with `_` (`forms/_blocks/`).
fn is_block_path(path: &Path) -> bool {
    path.parent()
        .and_then(Path::file_name)
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with('_'))
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
/// with their line, in plain words.
fn parse_file<T: DeserializeOwned>(
    path: &Path,
    collector: &mut Collector,
) -> Option<(T, SourceDocument)> {
    let whole = |collector: &mut Collector, line: usize, message: String| {
        collector.problems.push(Problem {
            file: path.to_owned(),
            line,
            message,
        });
    };
    let text = match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                whole(collector, 1, "the file is not UTF-8 text".to_owned());
                return None;
            }
        },
        Err(error) => {
            whole(collector, 1, format!("cannot read the file: {error}"));
            return None;
        }
    };
    let document = match SourceDocument::parse(&text) {
        Ok(document) => document,
        Err((line, message)) => {
            whole(collector, line, format!("YAML syntax: {message}"));
            return None;
        }
    };
    let site = Site {
        path,
        document: &document,
    };
    if !document.value.is_object() {
        let found = if document.value.is_null() {
            "the file is empty".to_owned()
        } else {
            format!("found {}", describe_value(&document.value))
        };
        collector.at(
            site,
            "",
            format!("the file must be a mapping of `key: value` lines; {found}"),
        );
        return None;
    }
    check_raw(&document.value, "", site, collector);
    match serde_path_to_error::deserialize::<_, T>(document.value.clone()) {
        Ok(value) => Some((value, document)),
        Err(error) => {
            let mut pointer = pointer_of(error.path());
            let raw = error.inner().to_string();
            // For an unknown key, point at the key itself.
            if let Some(key) = raw
                .strip_prefix("unknown field `")
                .and_then(|rest| rest.split('`').next())
            {
                let parent = pointer.clone();
                pointer = format!("{parent}/{}", escape(key));
                if document.line_of(&pointer) == document.line_of(&parent) {
                    pointer = parent;
                }
            }
            let key = error
                .path()
                .iter()
                .next_back()
                .and_then(|segment| match segment {
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    _ => None,
                });
            let message = plain_message(&raw);
            let message = match key {
                Some(key) if !raw.starts_with("unknown field") && !raw.starts_with("missing") => {
                    format!("`{key}`: {message}")
                }
                _ => message,
            };
            collector.at(site, &pointer, message);
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

/// serde's messages rewritten without Rust's type names, keeping the valid choices.
fn plain_message(raw: &str) -> String {
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

fn plain_expected(expected: &str) -> String {
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

fn plain_found(found: &str) -> String {
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

fn describe_value(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => format!("the number {number}"),
        Value::String(text) => format!("the text \"{text}\""),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

/// Rules on the text as written, which deserialising would lose: a third language next to
/// `ja`/`en` (read by nobody) and an empty list that would silently mean "everything".
fn check_raw(value: &Value, pointer: &str, site: Site<'_>, collector: &mut Collector) {
    match value {
        Value::Object(map) => {
            let is_text = map.contains_key("ja") || map.contains_key("en");
            for (key, child) in map {
                let child_pointer = format!("{pointer}/{}", escape(key));
                if is_text && key != "ja" && key != "en" {
                    collector.at(
                        site,
                        &child_pointer,
                        format!("a text has only `ja` and `en`; `{key}` would never be shown"),
                    );
                    continue;
                }
                if child.as_array().is_some_and(Vec::is_empty) {
                    let all = match key.as_str() {
                        "accept" => Some("pdf, jpeg, png, heic"),
                        "account_types" => Some("ordinary, current, savings"),
                        _ => None,
                    };
                    if let Some(all) = all {
                        collector.at(
                            site,
                            &child_pointer,
                            format!(
                                "`{key}: []` lists nothing; list some of {all}, or remove the key to allow all of them"
                            ),
                        );
                    }
                }
                // Conditions and example data are not definition text.
                if !matches!(
                    key.as_str(),
                    "show_if" | "required_if" | "when" | "computed" | "data"
                ) {
                    check_raw(child, &child_pointer, site, collector);
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                check_raw(item, &format!("{pointer}/{index}"), site, collector);
            }
        }
        _ => {}
    }
}

fn check_organisation(organisation: &Organisation, site: Site<'_>, collector: &mut Collector) {
    for (id, name) in &organisation.categories {
        check_text(
            name,
            &format!("/categories/{}", escape(id)),
            site,
            collector,
        );
    }
    for (id, division) in &organisation.divisions {
        let pointer = format!("/divisions/{}", escape(id));
        check_text(&division.name, &format!("{pointer}/name"), site, collector);
        if !super::normalize::is_email(&division.email) {
            collector.at(
                site,
                &format!("{pointer}/email"),
                format!("division `{id}` needs a valid email address"),
            );
        }
    }
    for (id, queue) in &organisation.queues {
        let pointer = format!("/queues/{}", escape(id));
        check_text(&queue.name, &format!("{pointer}/name"), site, collector);
        if !organisation.divisions.contains_key(&queue.division) {
            collector.at(
                site,
                &format!("{pointer}/division"),
                format!(
                    "queue `{id}` names an unknown division `{}` (the divisions are {})",
                    queue.division,
                    keys(&organisation.divisions)
                ),
            );
        }
        if organisation.divisions.contains_key(id) {
            collector.at(
                site,
                &pointer,
                format!("queue `{id}` has the same id as a division"),
            );
        }
    }
}

fn keys<V>(map: &BTreeMap<String, V>) -> String {
    map.keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Both languages must say something.
fn check_text(text: &Localized, pointer: &str, site: Site<'_>, collector: &mut Collector) {
    for (language, value) in [("ja", &text.ja), ("en", &text.en)] {
        if value.trim().is_empty() {
            collector.at(
                site,
                &format!("{pointer}/{language}"),
                format!("the {language} text is empty"),
            );
        }
    }
}

fn valid_snake_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn valid_option_value(value: &str) -> bool {
    let mut chars = value.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Limits on uploads a form may set (the same as the editor schema's).
const MAX_FILES: usize = 20;
const MAX_SIZE_MB: u32 = 50;
/// 標準処理期間 longer than a year is a typo.
const MAX_PROCESSING_DAYS: u32 = 365;

fn valid_kebab_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && !id.ends_with('-')
        && !id.contains("--")
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn type_name(kind: FieldType) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A date limit exactly as the runtime reads it: `YYYY-MM-DD`, `today`, `today+N`, `today-N`.
/// Returns the offset from today, or the fixed date.
enum DateLimit {
    Today(i64),
    Fixed(chrono::NaiveDate),
}

fn parse_date_limit(text: &str) -> Option<DateLimit> {
    if let Some(offset) = text.strip_prefix("today") {
        if offset.is_empty() {
            return Some(DateLimit::Today(0));
        }
        let (sign, digits) = offset.split_at_checked(1)?;
        if !matches!(sign, "+" | "-")
            || digits.is_empty()
            || digits.len() > 5
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let days: i64 = digits.parse().ok()?;
        // What the runtime reads must be what we read.
        validate::date_limit(text, chrono::NaiveDate::from_ymd_opt(2000, 1, 1)?)?;
        return Some(DateLimit::Today(if sign == "-" { -days } else { days }));
    }
    if text.len() != 10 {
        return None;
    }
    let date = validate::date_limit(text, chrono::NaiveDate::MIN)?;
    Some(DateLimit::Fixed(date))
}

/// Checks one list of fields as written in a file (blocks unresolved): every rule that needs
/// only the field itself, each at its key's line.
fn check_fields(fields: &[Field], base: &str, site: Site<'_>, collector: &mut Collector) {
    for (index, field) in fields.iter().enumerate() {
        let pointer = format!("{base}/{index}");
        let key = |name: &str| format!("{pointer}/{name}");
        if let Some(name) = &field.include {
            let extra = !field.id.is_empty() || field.field_type.is_some() || field.label.is_some();
            if extra {
                collector.at(
                    site,
                    &pointer,
                    format!("an `include: {name}` entry takes no other keys"),
                );
            }
            continue;
        }
        let id = field.id.as_str();
        if id.is_empty() {
            collector.at(site, &pointer, "a field needs an `id`".to_owned());
        } else if !valid_snake_id(id) {
            collector.at(
                site,
                &key("id"),
                format!("field id `{id}` must be snake_case (a-z, 0-9, _), starting with a letter"),
            );
        }
        let Some(kind) = field.field_type else {
            collector.at(site, &pointer, format!("field `{id}` needs a `type`"));
            continue;
        };
        match (&field.label, kind) {
            (None, FieldType::Info) => {}
            (None, _) => collector.at(site, &pointer, format!("field `{id}` needs a `label`")),
            (Some(label), _) => check_text(label, &key("label"), site, collector),
        }
        if let Some(help) = &field.help {
            check_text(help, &key("help"), site, collector);
        }
        for name in inapplicable_keys(field, kind) {
            collector.at(
                site,
                &key(name),
                format!(
                    "field `{id}`: `{name}` does not apply to type {}",
                    type_name(kind)
                ),
            );
        }
        if field.required && field.required_if.is_some() {
            collector.at(site,
                &key("required_if"),
                format!(
                    "field `{id}`: `required: true` already makes it required; keep `required` or `required_if`, not both"
                ),
            );
        }
        match kind {
            FieldType::Select | FieldType::Radio | FieldType::MultiSelect => {
                if field.options.is_empty() {
                    collector.at(site, &pointer, format!("field `{id}` needs `options`"));
                }
                let mut values = HashSet::new();
                for (option_index, option) in field.options.iter().enumerate() {
                    let at = format!("{pointer}/options/{option_index}");
                    if option.value.trim().is_empty() {
                        collector.at(
                            site,
                            &format!("{at}/value"),
                            format!("field `{id}`: an option needs a `value`"),
                        );
                    } else if !valid_option_value(&option.value) {
                        collector.at(
                            site,
                            &format!("{at}/value"),
                            format!(
                                "field `{id}`: option value `{}` may use only a-z, 0-9, _ and -, starting with a letter or digit (the label is what people read)",
                                option.value
                            ),
                        );
                    } else if !values.insert(option.value.as_str()) {
                        collector.at(
                            site,
                            &format!("{at}/value"),
                            format!("field `{id}`: option `{}` appears twice", option.value),
                        );
                    }
                }
                for (option_index, option) in field.options.iter().enumerate() {
                    check_text(
                        &option.label,
                        &format!("{pointer}/options/{option_index}/label"),
                        site,
                        collector,
                    );
                }
            }
            FieldType::Group if field.fields.is_empty() => {
                collector.at(site, &pointer, format!("group `{id}` needs `fields`"));
            }
            FieldType::Info => {
                if field.required || field.required_if.is_some() {
                    let name = if field.required {
                        "required"
                    } else {
                        "required_if"
                    };
                    collector.at(
                        site,
                        &key(name),
                        format!("info `{id}` carries no value and cannot be required"),
                    );
                }
                match &field.text {
                    None => collector.at(site, &pointer, format!("info `{id}` needs `text`")),
                    Some(text) => check_text(text, &key("text"), site, collector),
                }
            }
            FieldType::Date => {
                let mut limits = Vec::new();
                for (name, bound) in [("min", &field.min), ("max", &field.max)] {
                    let Some(bound) = bound else { continue };
                    match bound.as_str().and_then(parse_date_limit) {
                        Some(limit) => limits.push(limit),
                        None => collector.at(site,
                            &key(name),
                            format!(
                                "field `{id}`: the date limit {} cannot be read; write `YYYY-MM-DD`, `today`, `today+N` or `today-N` (N in days)",
                                describe_value(bound)
                            ),
                        ),
                    }
                }
                let above = match limits.as_slice() {
                    [DateLimit::Fixed(min), DateLimit::Fixed(max)] => min > max,
                    [DateLimit::Today(min), DateLimit::Today(max)] => min > max,
                    _ => false,
                };
                if above && field.min.is_some() && field.max.is_some() {
                    collector.at(
                        site,
                        &key("max"),
                        format!("field `{id}`: `max` is before `min`, so no date is allowed"),
                    );
                }
            }
            FieldType::Integer | FieldType::Decimal | FieldType::Money => {
                let whole = kind != FieldType::Decimal;
                let mut numbers = Vec::new();
                for (name, bound) in [("min", &field.min), ("max", &field.max)] {
                    let Some(bound) = bound else { continue };
                    match bound.as_f64() {
                        Some(number) if whole && number.fract() != 0.0 => collector.at(
                            site,
                            &key(name),
                            format!(
                                "field `{id}`: `{name}` must be a whole number for type {}",
                                type_name(kind)
                            ),
                        ),
                        Some(number) if kind == FieldType::Money && number < 0.0 => collector.at(
                            site,
                            &key(name),
                            format!("field `{id}`: an amount of money is never below 0"),
                        ),
                        Some(number) => numbers.push(number),
                        None => collector.at(
                            site,
                            &key(name),
                            format!(
                                "field `{id}`: `{name}` must be a number, found {}",
                                describe_value(bound)
                            ),
                        ),
                    }
                }
                if let [min, max] = numbers.as_slice()
                    && min > max
                {
                    collector.at(site,
                        &key("max"),
                        format!("field `{id}`: `max` ({max}) is below `min` ({min}), so no value is allowed"),
                    );
                }
            }
            FieldType::File => {
                if field.max_files.is_some_and(|n| n > MAX_FILES) {
                    collector.at(
                        site,
                        &key("max_files"),
                        format!("field `{id}`: `max_files` is at most {MAX_FILES}"),
                    );
                }
                if field.max_size_mb.is_some_and(|n| n > MAX_SIZE_MB) {
                    collector.at(
                        site,
                        &key("max_size_mb"),
                        format!("field `{id}`: `max_size_mb` is at most {MAX_SIZE_MB}"),
                    );
                }
                if field.max_files == Some(0) {
                    collector.at(
                        site,
                        &key("max_files"),
                        format!("field `{id}`: `max_files` must be at least 1"),
                    );
                }
                if field.max_size_mb == Some(0) {
                    collector.at(
                        site,
                        &key("max_size_mb"),
                        format!("field `{id}`: `max_size_mb` must be at least 1"),
                    );
                }
                let mut kinds = HashSet::new();
                for (accept_index, accepted) in field.accept.iter().enumerate() {
                    if !kinds.insert(accepted.mime()) {
                        collector.at(
                            site,
                            &format!("{pointer}/accept/{accept_index}"),
                            format!("field `{id}`: a file type appears twice in `accept`"),
                        );
                    }
                }
            }
            _ => {}
        }
        if let Some(pattern) = &field.pattern
            && let Err(error) = regex::Regex::new(pattern)
        {
            let reason = error
                .to_string()
                .lines()
                .rev()
                .find(|line| !line.trim().is_empty())
                .map(|line| line.trim().trim_start_matches("error: ").to_owned())
                .unwrap_or_default();
            collector.at(
                site,
                &key("pattern"),
                format!("field `{id}`: `pattern` is not a valid regular expression: {reason}"),
            );
        }
        if let (Some(min), Some(max)) = (field.min_length, field.max_length)
            && min > max
        {
            collector.at(
                site,
                &key("max_length"),
                format!("field `{id}`: `max_length` ({max}) is below `min_length` ({min})"),
            );
        }
        if field.max_length == Some(0) {
            collector.at(
                site,
                &key("max_length"),
                format!("field `{id}`: `max_length: 0` allows no text"),
            );
        }
        if let (Some(min), Some(max)) = (field.min_items, field.max_items)
            && min > max
        {
            collector.at(
                site,
                &key("max_items"),
                format!("field `{id}`: `max_items` ({max}) is below `min_items` ({min})"),
            );
        }
        if field.max_items == Some(0) {
            collector.at(
                site,
                &key("max_items"),
                format!("field `{id}`: `max_items: 0` allows nothing"),
            );
        }
        if kind == FieldType::MultiSelect
            && let Some(min) = field.min_items
            && min > field.options.len()
            && !field.options.is_empty()
        {
            collector.at(
                site,
                &key("min_items"),
                format!(
                    "field `{id}`: `min_items` ({min}) is more than the {} options",
                    field.options.len()
                ),
            );
        }
        if kind == FieldType::Group {
            check_fields(&field.fields, &key("fields"), site, collector);
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

/// Every `include:` in a list of fields, groups included, with its pointer.
fn includes(fields: &[Field], base: &str, out: &mut Vec<(String, String)>) {
    for (index, field) in fields.iter().enumerate() {
        let pointer = format!("{base}/{index}");
        if let Some(name) = &field.include {
            out.push((format!("{pointer}/include"), name.clone()));
        }
        includes(&field.fields, &format!("{pointer}/fields"), out);
    }
}

fn block_list(blocks: &Blocks) -> String {
    blocks
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads every block, reports its own mistakes at the block, and marks the blocks definitions
/// cannot use: broken ones, and those that include an unknown, broken or circular block.
fn load_blocks(files: &[PathBuf], collector: &mut Collector) -> Blocks {
    let mut blocks = Blocks::new();
    for path in files {
        let Some(name) = stem(path) else { continue };
        let before = collector.count_in(path);
        let parsed = parse_file::<Block>(path, collector);
        if let Some((block, document)) = &parsed {
            let site = Site { path, document };
            if block.fields.is_empty() {
                collector.at(
                    site,
                    "/fields",
                    "a block needs at least one field".to_owned(),
                );
            }
            check_fields(&block.fields, "/fields", site, collector);
        }
        let broken = parsed.is_none() || collector.count_in(path) > before;
        blocks.insert(
            name,
            LoadedBlock {
                path: path.clone(),
                parsed,
                broken,
            },
        );
    }

    // Includes between blocks: unknown names, then cycles, each reported once at the include.
    let mut edges: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (name, loaded) in &blocks {
        let mut found = Vec::new();
        if let Some((block, _)) = &loaded.parsed {
            includes(&block.fields, "/fields", &mut found);
        }
        edges.insert(name.clone(), found);
    }
    let mut newly_broken = BTreeSet::new();
    for (name, found) in &edges {
        let Some((_, document)) = &blocks[name].parsed else {
            continue;
        };
        let site = Site {
            path: &blocks[name].path,
            document,
        };
        for (pointer, target) in found {
            if !blocks.contains_key(target) {
                collector.at(
                    site,
                    pointer,
                    format!(
                        "unknown block `{target}` (no _blocks/{target}.yaml; the blocks are {})",
                        block_list(&blocks)
                    ),
                );
                newly_broken.insert(name.clone());
            }
        }
    }
    for cycle in cycles(&edges) {
        let Some((first, pointer)) = cycle.first() else {
            continue;
        };
        let Some((_, document)) = &blocks[first].parsed else {
            continue;
        };
        let chain: Vec<String> = cycle
            .iter()
            .map(|(name, _)| format!("_blocks/{name}.yaml"))
            .chain(std::iter::once(format!("_blocks/{first}.yaml")))
            .collect();
        collector.at(
            Site {
                path: &blocks[first].path,
                document,
            },
            pointer,
            format!(
                "circular include: {} (a block may not include itself, directly or through another block)",
                chain.join(" includes ")
            ),
        );
        newly_broken.extend(cycle.into_iter().map(|(name, _)| name));
    }
    for name in newly_broken {
        if let Some(loaded) = blocks.get_mut(&name) {
            loaded.broken = true;
        }
    }
    // A block including an unusable block is unusable too (already reported where it starts).
    loop {
        let spread: Vec<String> = edges
            .iter()
            .filter(|(name, found)| {
                !blocks[*name].broken
                    && found
                        .iter()
                        .any(|(_, target)| blocks.get(target).is_none_or(|b| b.broken))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if spread.is_empty() {
            break;
        }
        for name in spread {
            if let Some(loaded) = blocks.get_mut(&name) {
                loaded.broken = true;
            }
        }
    }

    // What needs the resolved block: unique ids and conditions naming the block's own fields
    // (a block is self-contained: it cannot know the form it is included in).
    for loaded in blocks.values() {
        if loaded.broken {
            continue;
        }
        let Some((block, document)) = &loaded.parsed else {
            continue;
        };
        let site = Site {
            path: &loaded.path,
            document,
        };
        let mut placement = Placement::default();
        let placed = place(&block.fields, "/fields", None, &blocks, 0, &mut placement);
        check_ids(&placed, site, collector);
        let scope = scope_of(&placed, &HashMap::new());
        for item in &placed {
            check_field_conditions(item, &scope, site, collector);
        }
    }
    let failing: Vec<String> = blocks
        .iter()
        .filter(|(_, loaded)| !loaded.broken && collector.count_in(&loaded.path) > 0)
        .map(|(name, _)| name.clone())
        .collect();
    for name in failing {
        if let Some(loaded) = blocks.get_mut(&name) {
            loaded.broken = true;
        }
    }
    blocks
}

/// The include cycles among blocks, each once: the blocks in order, with the pointer of the
/// include leading to the next one.
fn cycles(edges: &BTreeMap<String, Vec<(String, String)>>) -> Vec<Vec<(String, String)>> {
    let mut found: Vec<Vec<(String, String)>> = Vec::new();
    let mut seen_sets: HashSet<BTreeSet<String>> = HashSet::new();
    let mut done: HashSet<String> = HashSet::new();
    for start in edges.keys() {
        let mut path: Vec<(String, String)> = Vec::new();
        visit(start, edges, &mut path, &mut done, &mut |cycle| {
            let members: BTreeSet<String> = cycle.iter().map(|(name, _)| name.clone()).collect();
            if seen_sets.insert(members) {
                found.push(cycle);
            }
        });
    }
    found
}

fn visit(
    name: &str,
    edges: &BTreeMap<String, Vec<(String, String)>>,
    path: &mut Vec<(String, String)>,
    done: &mut HashSet<String>,
    report: &mut impl FnMut(Vec<(String, String)>),
) {
    if done.contains(name) {
        return;
    }
    for (pointer, target) in edges.get(name).into_iter().flatten() {
        path.push((name.to_owned(), pointer.clone()));
        if let Some(start) = path.iter().position(|(on_path, _)| on_path == target) {
            report(path[start..].to_vec());
        } else {
            visit(target, edges, path, done, report);
        }
        path.pop();
    }
    done.insert(name.to_owned());
}

/// A field after blocks are resolved, with the pointer to blame for it in the file being
/// checked: its own entry, or the `include` line for a field that came from a block.
struct Placed<'a> {
    field: &'a Field,
    pointer: String,
    from_block: bool,
    children: Vec<Placed<'a>>,
}

impl Placed<'_> {
    /// The line of one of the field's keys, or of the include line for a block's field.
    fn key(&self, name: &str) -> String {
        if self.from_block {
            self.pointer.clone()
        } else {
            format!("{}/{name}", self.pointer)
        }
    }
}

#[derive(Default)]
struct Placement {
    /// Includes of blocks that do not exist: (pointer, name).
    missing: Vec<(String, String)>,
    /// An included block is broken: it is reported at the block, and the form cannot be
    /// checked as a whole (its examples would fail for the block's reason).
    incomplete: bool,
}

/// Blocks may include blocks; cycles are refused when blocks load, this is a backstop.
const MAX_INCLUDE_DEPTH: usize = 16;

fn place<'a>(
    fields: &'a [Field],
    base: &str,
    blame: Option<&str>,
    blocks: &'a Blocks,
    depth: usize,
    placement: &mut Placement,
) -> Vec<Placed<'a>> {
    let mut out = Vec::new();
    if depth > MAX_INCLUDE_DEPTH {
        placement.incomplete = true;
        return out;
    }
    for (index, field) in fields.iter().enumerate() {
        let own = format!("{base}/{index}");
        let pointer = blame.map_or(own.clone(), str::to_owned);
        match &field.include {
            Some(name) => match blocks.get(name) {
                Some(LoadedBlock {
                    parsed: Some((block, _)),
                    broken: false,
                    ..
                }) => {
                    out.extend(place(
                        &block.fields,
                        "",
                        Some(&pointer),
                        blocks,
                        depth + 1,
                        placement,
                    ));
                }
                Some(_) => placement.incomplete = true,
                None => {
                    if blame.is_none() {
                        placement
                            .missing
                            .push((format!("{own}/include"), name.clone()));
                    }
                }
            },
            None => {
                let children = place(
                    &field.fields,
                    &format!("{own}/fields"),
                    blame,
                    blocks,
                    depth + 1,
                    placement,
                );
                out.push(Placed {
                    field,
                    pointer,
                    from_block: blame.is_some(),
                    children,
                });
            }
        }
    }
    out
}

/// Field ids are unique in the form (blocks included) and inside each group item.
fn check_ids(placed: &[Placed<'_>], site: Site<'_>, collector: &mut Collector) {
    let mut seen: HashMap<&str, &Placed<'_>> = HashMap::new();
    for item in placed {
        let id = item.field.id.as_str();
        if let Some(first) = seen.get(id) {
            let from = if item.from_block || first.from_block {
                " (a block brings fields with fixed ids)"
            } else {
                ""
            };
            collector.at(
                site,
                &item.key("id"),
                format!(
                    "field id `{id}` appears twice (first at line {}){from}",
                    site.document.line_of(&first.key("id"))
                ),
            );
        } else {
            seen.insert(id, item);
        }
        if !item.children.is_empty() {
            check_ids(&item.children, site, collector);
        }
    }
}

/// The fields a condition may name: the form's, and inside a group item also the item's own.
type Scope<'a> = HashMap<&'a str, &'a Field>;

fn scope_of<'a>(placed: &[Placed<'a>], outer: &Scope<'a>) -> Scope<'a> {
    let mut scope = outer.clone();
    for item in placed {
        scope.insert(item.field.id.as_str(), item.field);
    }
    scope
}

fn check_field_conditions(
    item: &Placed<'_>,
    scope: &Scope<'_>,
    site: Site<'_>,
    collector: &mut Collector,
) {
    let id = &item.field.id;
    // A block's own conditions are checked once, at the block.
    let conditions = if item.from_block {
        [("show_if", None), ("required_if", None)]
    } else {
        [
            ("show_if", item.field.show_if.as_ref()),
            ("required_if", item.field.required_if.as_ref()),
        ]
    };
    for (key, condition) in conditions {
        let Some(condition) = condition else { continue };
        let pointer = item.key(key);
        let what = format!("field `{id}`: `{key}`");
        if check_condition(
            condition,
            Some(scope),
            Expect::Test,
            &what,
            &pointer,
            site,
            collector,
        ) == Outcome::NeverTrue
        {
            let effect = if key == "show_if" {
                "the field is never shown"
            } else {
                "the field is never required"
            };
            collector.at(
                site,
                &pointer,
                format!("{what} can never be true, so {effect}"),
            );
        }
    }
    if !item.children.is_empty() {
        let inner = scope_of(&item.children, scope);
        for child in &item.children {
            check_field_conditions(child, &inner, site, collector);
        }
    }
}

/// What a condition must evaluate to: a yes/no (`show_if`, `required_if`, `when`) or a value
/// (a computed fee).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Test,
    Value,
}

#[derive(PartialEq, Eq)]
enum Outcome {
    Fine,
    Reported,
    /// Well-formed, but it reads no field and is false: it can never hold.
    NeverTrue,
}

const CONDITION_EXAMPLE: &str = r#"{"==": [{"var": "a_field"}, "a value"]}"#;

/// Checks one condition; `scope` is `None` when the fields it may name are not all known (the
/// form includes a broken block), so names are not checked.
fn check_condition(
    condition: &Value,
    scope: Option<&Scope<'_>>,
    expect: Expect,
    what: &str,
    pointer: &str,
    site: Site<'_>,
    collector: &mut Collector,
) -> Outcome {
    let shape_ok = matches!(
        (expect, condition),
        (_, Value::Object(_)) | (Expect::Test, Value::Bool(_)) | (Expect::Value, Value::Number(_))
    );
    if !shape_ok {
        let wanted = match expect {
            Expect::Test => {
                format!("a JSON Logic condition such as {CONDITION_EXAMPLE}, or true / false")
            }
            Expect::Value => "a number or a JSON Logic expression".to_owned(),
        };
        let found = match condition {
            Value::String(_) => format!("{} (a text is not evaluated)", describe_value(condition)),
            other => describe_value(other),
        };
        collector.at(
            site,
            pointer,
            format!("{what} must be {wanted}; found {found}"),
        );
        return Outcome::Reported;
    }
    if let Err(error) = logic::compile(condition) {
        collector.at(site, pointer, format!("{what}: {error}"));
        return Outcome::Reported;
    }
    let names = logic::variables(condition);
    let mut outcome = Outcome::Fine;
    if let Some(scope) = scope {
        for name in &names {
            if !scope.contains_key(name.as_str()) {
                collector.at(
                    site,
                    pointer,
                    format!("{what} names an unknown field `{name}`"),
                );
                outcome = Outcome::Reported;
            }
        }
        let mut mismatches = Vec::new();
        compared_literals(condition, scope, &mut mismatches);
        engine_differences(condition, scope, &mut mismatches);
        for message in mismatches {
            collector.at(site, pointer, format!("{what} {message}"));
            outcome = Outcome::Reported;
        }
    }
    if outcome == Outcome::Fine
        && expect == Expect::Test
        && names.is_empty()
        && !logic::holds(condition, &Value::Object(Default::default()))
    {
        return Outcome::NeverTrue;
    }
    outcome
}

/// The field a `{"var": "name"}` reads, when it names a field of the scope directly.
fn var_field<'a>(node: &Value, scope: &Scope<'a>) -> Option<&'a Field> {
    let name = match node.as_object()?.get("var")? {
        Value::String(name) => name,
        Value::Array(items) => items.first()?.as_str()?,
        _ => return None,
    };
    scope.get(name).copied()
}

fn is_literal(value: &Value) -> bool {
    matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_))
}

/// A literal compared with a field must be a value the field can have: one of a choice's
/// options, or true / false for a yes/no field. Otherwise the comparison never holds.
fn literal_mismatch(field: &Field, literal: &Value) -> Option<String> {
    use FieldType as T;
    let id = &field.id;
    match field.kind() {
        T::Select | T::Radio | T::MultiSelect => {
            let text = match literal {
                Value::String(text) => text.clone(),
                Value::Number(number) => number.to_string(),
                _ => String::new(),
            };
            if field.options.iter().any(|option| option.value == text) {
                return None;
            }
            let values: Vec<&str> = field.options.iter().map(|o| o.value.as_str()).collect();
            Some(format!(
                "compares `{id}` with {}, which is not one of its options ({})",
                describe_value(literal),
                values.join(", ")
            ))
        }
        T::Boolean | T::Consent if !literal.is_boolean() => Some(format!(
            "compares the yes/no field `{id}` with {}; compare with true or false",
            describe_value(literal)
        )),
        _ => None,
    }
}

fn compared_literals(node: &Value, scope: &Scope<'_>, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (operator, argument) in map {
                let items = argument.as_array().map(Vec::as_slice).unwrap_or_default();
                match (operator.as_str(), items) {
                    ("==" | "===" | "!=" | "!==", [left, right]) => {
                        for (side, other) in [(left, right), (right, left)] {
                            if let Some(field) = var_field(side, scope)
                                && is_literal(other)
                                && field.kind() != FieldType::MultiSelect
                            {
                                out.extend(literal_mismatch(field, other));
                            }
                        }
                    }
                    ("in", [needle, Value::Array(list)]) => {
                        if let Some(field) = var_field(needle, scope)
                            && field.kind() != FieldType::MultiSelect
                        {
                            for literal in list.iter().filter(|item| is_literal(item)) {
                                out.extend(literal_mismatch(field, literal));
                            }
                        }
                    }
                    ("in", [needle, haystack]) if is_literal(needle) => {
                        if let Some(field) = var_field(haystack, scope)
                            && field.kind() == FieldType::MultiSelect
                        {
                            out.extend(literal_mismatch(field, needle));
                        }
                    }
                    _ => {}
                }
                compared_literals(argument, scope, out);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| compared_literals(item, scope, out)),
        _ => {}
    }
}

/// The field a `var` reads and whether it gives a default (`{"var": ["name", 0]}`).
fn var_with_default<'a>(node: &Value, scope: &Scope<'a>) -> Option<(&'a Field, bool)> {
    let argument = node.as_object()?.get("var")?;
    let has_default = argument.as_array().is_some_and(|items| items.len() > 1);
    var_field(node, scope).map(|field| (field, has_default))
}

fn is_number_field(field: &Field) -> bool {
    matches!(
        field.kind(),
        FieldType::Integer | FieldType::Decimal | FieldType::Money
    )
}

/// Patterns on which the browser's json-logic-js and the server's datalogic-rs disagree (found
/// by replaying conditions through both, tests/api/logic_engines.rs). Each is refused, with the
/// way to write it that both evaluate alike.
fn engine_differences(node: &Value, scope: &Scope<'_>, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            for (operator, argument) in map {
                let items = argument.as_array().map(Vec::as_slice).unwrap_or_default();
                match (operator.as_str(), items) {
                    ("==" | "!=", [left, right]) => {
                        for (side, other) in [(left, right), (right, left)] {
                            let Some(field) = var_field(side, scope) else {
                                continue;
                            };
                            let id = &field.id;
                            let loose = matches!(other, Value::Bool(false) | Value::Null)
                                || other.as_f64() == Some(0.0)
                                || matches!(other.as_str(), Some("" | "true" | "false"));
                            if loose {
                                out.push(format!(
                                    "compares `{id}` with {} using `{operator}`, which the browser and the server evaluate differently when `{id}` is not answered; use `===` / `!==`, or `!` / `!!` to test for an answer",
                                    describe_value(other)
                                ));
                            }
                            if field.kind() == FieldType::MultiSelect && is_literal(other) {
                                out.push(format!(
                                    "compares the multi_select `{id}` (a list) with `{operator}`, which the browser and the server evaluate differently; use {{\"in\": [\"value\", {{\"var\": \"{id}\"}}]}}"
                                ));
                            }
                        }
                    }
                    ("<" | "<=" | ">" | ">=", operands) => {
                        for operand in operands {
                            if let Some(field) = var_field(operand, scope)
                                && !is_number_field(field)
                                && field.kind() != FieldType::Date
                            {
                                out.push(format!(
                                    "orders `{}` with `{operator}`, but only numbers and dates can be ordered alike in the browser and on the server",
                                    field.id
                                ));
                            }
                        }
                    }
                    ("+" | "-" | "*" | "/" | "%" | "min" | "max", operands) => {
                        for operand in operands {
                            let Some((field, has_default)) = var_with_default(operand, scope)
                            else {
                                continue;
                            };
                            let id = &field.id;
                            if !is_number_field(field) {
                                out.push(format!(
                                    "computes with `{id}`, which is not a number field; the browser and the server disagree on text"
                                ));
                            } else if !has_default && (!field.required || field.show_if.is_some()) {
                                out.push(format!(
                                    "computes with `{id}`, which may be unanswered: the browser then gets no number and the server 0; give a default, {{\"var\": [\"{id}\", 0]}}"
                                ));
                            }
                        }
                        if matches!(operator.as_str(), "/" | "%")
                            && items.get(1).and_then(Value::as_f64) == Some(0.0)
                        {
                            out.push(format!("divides by 0 with `{operator}`"));
                        }
                    }
                    _ => {}
                }
                engine_differences(argument, scope, out);
            }
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| engine_differences(item, scope, out)),
        _ => {}
    }
}

/// Checks one definition as written and with blocks resolved. Returns the resolved definition
/// and whether it could be checked as a whole (no broken block included).
fn check_definition(
    mut definition: Definition,
    site: Site<'_>,
    organisation: Option<&Organisation>,
    blocks: &Blocks,
    collector: &mut Collector,
) -> (Definition, bool) {
    let path = site.path;
    if !valid_kebab_id(&definition.id) {
        collector.at(
            site,
            "/id",
            format!(
                "id `{}` must be kebab-case (a-z, 0-9 and single hyphens), starting with a letter",
                definition.id
            ),
        );
    }
    if stem(path).as_deref() != Some(definition.id.as_str()) {
        collector.at(
            site,
            "/id",
            format!("id `{}` must equal the file name", definition.id),
        );
    }
    if definition.processing_days > MAX_PROCESSING_DAYS {
        collector.at(
            site,
            "/processing_days",
            format!("`processing_days` is at most {MAX_PROCESSING_DAYS} business days"),
        );
    }
    if definition.version == 0 {
        collector.at(
            site,
            "/version",
            "`version` starts at 1 and goes up when the form's meaning changes".to_owned(),
        );
    }
    let folder = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|name| name.to_str());
    if folder != Some(definition.category.as_str()) {
        collector.at(
            site,
            "/category",
            format!(
                "category `{}` must equal the folder name",
                definition.category
            ),
        );
    }
    check_text(&definition.title, "/title", site, collector);
    if let Some(summary) = &definition.summary {
        check_text(summary, "/summary", site, collector);
    }
    if let Some(organisation) = organisation {
        if !organisation.categories.contains_key(&definition.category) {
            collector.at(
                site,
                "/category",
                format!(
                    "unknown category `{}` (the categories in catalog.yaml are {})",
                    definition.category,
                    keys(&organisation.categories)
                ),
            );
        }
        if !organisation.divisions.contains_key(&definition.division) {
            collector.at(
                site,
                "/division",
                format!(
                    "unknown division `{}` (the divisions in catalog.yaml are {})",
                    definition.division,
                    keys(&organisation.divisions)
                ),
            );
        }
        for (index, rule) in definition.routing.iter().enumerate() {
            if !known_queue(organisation, &rule.queue) {
                collector.at(
                    site,
                    &format!("/routing/{index}/queue"),
                    format!(
                        "unknown queue `{}` (a division, or one of the queues in catalog.yaml: {})",
                        rule.queue,
                        keys(&organisation.queues)
                    ),
                );
            }
        }
    }
    for (list, allowed, name) in [
        (
            &definition.notify.applicant,
            &APPLICANT_EVENTS[..],
            "applicant",
        ),
        (
            &definition.notify.division,
            &DIVISION_EVENTS[..],
            "division",
        ),
    ] {
        for (index, event) in list.iter().enumerate() {
            if !allowed.contains(&event.as_str()) {
                collector.at(
                    site,
                    &format!("/notify/{name}/{index}"),
                    format!(
                        "unknown {name} event `{event}` (the events are {})",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    if definition.pages.is_empty() {
        collector.at(site, "/pages", "a form needs at least one page".to_owned());
    }
    let mut page_ids: HashMap<&str, usize> = HashMap::new();
    for (page_index, page) in definition.pages.iter().enumerate() {
        let pointer = format!("/pages/{page_index}");
        if !valid_snake_id(&page.id) {
            collector.at(
                site,
                &format!("{pointer}/id"),
                format!(
                    "page id `{}` must be snake_case (a-z, 0-9, _), starting with a letter",
                    page.id
                ),
            );
        } else if let Some(first) = page_ids.insert(page.id.as_str(), page_index) {
            collector.at(
                site,
                &format!("{pointer}/id"),
                format!(
                    "page id `{}` appears twice (first at line {})",
                    page.id,
                    site.document.line_of(&format!("/pages/{first}/id"))
                ),
            );
        }
        check_text(&page.title, &format!("{pointer}/title"), site, collector);
        if page.fields.is_empty() {
            collector.at(site, &pointer, format!("page `{}` has no fields", page.id));
        }
        check_fields(&page.fields, &format!("{pointer}/fields"), site, collector);
    }

    let mut placement = Placement::default();
    let mut placed = Vec::new();
    for (page_index, page) in definition.pages.iter().enumerate() {
        placed.extend(place(
            &page.fields,
            &format!("/pages/{page_index}/fields"),
            None,
            blocks,
            0,
            &mut placement,
        ));
    }
    for (pointer, name) in &placement.missing {
        collector.at(
            site,
            pointer,
            format!(
                "unknown block `{name}` (no _blocks/{name}.yaml; the blocks are {})",
                block_list(blocks)
            ),
        );
    }
    let complete = placement.missing.is_empty() && !placement.incomplete;
    check_ids(&placed, site, collector);
    let top = scope_of(&placed, &HashMap::new());
    let scope = complete.then_some(&top);

    for (page_index, page) in definition.pages.iter().enumerate() {
        let Some(condition) = &page.show_if else {
            continue;
        };
        let pointer = format!("/pages/{page_index}/show_if");
        let what = format!("page `{}`: `show_if`", page.id);
        if check_condition(
            condition,
            scope,
            Expect::Test,
            &what,
            &pointer,
            site,
            collector,
        ) == Outcome::NeverTrue
        {
            collector.at(
                site,
                &pointer,
                format!("page `{}` can never be shown", page.id),
            );
        }
    }
    if complete {
        for item in &placed {
            check_field_conditions(item, &top, site, collector);
        }
    } else {
        for item in placed.iter().filter(|item| !item.from_block) {
            // Names cannot be checked without the broken block's fields; shapes still can.
            for (key, condition) in [
                ("show_if", &item.field.show_if),
                ("required_if", &item.field.required_if),
            ] {
                if let Some(condition) = condition {
                    let what = format!("field `{}`: `{key}`", item.field.id);
                    check_condition(
                        condition,
                        None,
                        Expect::Test,
                        &what,
                        &item.key(key),
                        site,
                        collector,
                    );
                }
            }
        }
    }
    if let Some(fee) = &definition.fee {
        let kinds = [
            fee.fixed.is_some(),
            fee.per_unit.is_some(),
            fee.computed.is_some(),
        ];
        if kinds.iter().filter(|set| **set).count() != 1 {
            collector.at(
                site,
                "/fee",
                "`fee` takes exactly one of `fixed`, `per_unit`, `computed`".to_owned(),
            );
        }
        if let Some(per_unit) = &fee.per_unit
            && complete
        {
            match top
                .get(per_unit.quantity.as_str())
                .map(|field| field.kind())
            {
                Some(FieldType::Integer) => {}
                Some(_) => collector.at(
                    site,
                    "/fee/per_unit/quantity",
                    format!(
                        "fee quantity `{}` must be an integer field",
                        per_unit.quantity
                    ),
                ),
                None => collector.at(
                    site,
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
                computed,
                scope,
                Expect::Value,
                "the computed fee",
                "/fee/computed",
                site,
                collector,
            );
        }
    }
    for (index, rule) in definition.routing.iter().enumerate() {
        let pointer = format!("/routing/{index}/when");
        if check_condition(
            &rule.when,
            scope,
            Expect::Test,
            "routing `when`",
            &pointer,
            site,
            collector,
        ) == Outcome::NeverTrue
        {
            collector.at(
                site,
                &pointer,
                "routing `when` can never be true, so the rule never applies".to_owned(),
            );
        }
    }

    check_requesters(&definition, &placed, organisation, site, collector);

    definition.pages = definition
        .pages
        .into_iter()
        .map(|page| Page {
            fields: resolve(&page.fields, blocks, 0),
            ..page
        })
        .collect();
    (definition, complete)
}

fn known_queue(organisation: &Organisation, queue: &str) -> bool {
    organisation.divisions.contains_key(queue) || organisation.queues.contains_key(queue)
}

/// The same fields with includes replaced, recursively, as owned values.
fn resolve(fields: &[Field], blocks: &Blocks, depth: usize) -> Vec<Field> {
    let mut resolved = Vec::new();
    if depth > MAX_INCLUDE_DEPTH {
        return resolved;
    }
    for field in fields {
        match &field.include {
            Some(name) => {
                if let Some(LoadedBlock {
                    parsed: Some((block, _)),
                    broken: false,
                    ..
                }) = blocks.get(name)
                {
                    resolved.extend(resolve(&block.fields, blocks, depth + 1));
                }
            }
            None => {
                let mut field = field.clone();
                field.fields = resolve(&field.fields, blocks, depth + 1);
                resolved.push(field);
            }
        }
    }
    resolved
}

fn check_examples(
    definition: &Definition,
    site: Site<'_>,
    organisation: Option<&Organisation>,
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
            site,
            "/examples",
            "needs at least one valid and one invalid example".to_owned(),
        );
    }
    for (index, example) in definition.examples.iter().enumerate() {
        let pointer = format!("/examples/{index}");
        let name = &example.name;
        if example.valid && !example.errors.is_empty() {
            collector.at(
                site,
                &format!("{pointer}/valid"),
                format!("example `{name}` has both `valid: true` and `errors`"),
            );
            continue;
        }
        if !example.valid && example.errors.is_empty() {
            collector.at(
                site,
                &pointer,
                format!("example `{name}` needs `valid: true` or `errors`"),
            );
            continue;
        }
        if !example.data.is_object() {
            collector.at(
                site,
                &format!("{pointer}/data"),
                format!(
                    "example `{name}`: `data` must be a mapping of field ids to values, found {}",
                    describe_value(&example.data)
                ),
            );
            continue;
        }
        let mut declared_ok = true;
        for (error_index, error) in example.errors.iter().enumerate() {
            let at = format!("{pointer}/errors/{error_index}");
            if !ERROR_CODES.contains(&error.code.as_str()) {
                collector.at(
                    site,
                    &format!("{at}/code"),
                    format!(
                        "example `{name}`: unknown error code `{}` (the codes are {})",
                        error.code,
                        ERROR_CODES.join(", ")
                    ),
                );
                declared_ok = false;
            }
            if !error.path.starts_with('/') {
                collector.at(
                    site,
                    &format!("{at}/path"),
                    format!(
                        "example `{name}`: an error path is a JSON pointer such as /field_id, found `{}`",
                        error.path
                    ),
                );
                declared_ok = false;
            }
        }
        if let (Some(queue), Some(organisation)) = (&example.queue, organisation)
            && !known_queue(organisation, queue)
        {
            collector.at(
                site,
                &format!("{pointer}/queue"),
                format!("example `{name}`: unknown queue `{queue}`"),
            );
            declared_ok = false;
        }
        if example.fee.is_some() && definition.fee.is_none() {
            collector.at(
                site,
                &format!("{pointer}/fee"),
                format!("example `{name}` expects a fee, but the form has no `fee`"),
            );
            declared_ok = false;
        }
        if !declared_ok {
            continue;
        }
        let today = example.as_of.unwrap_or_else(city_today);
        let result = validate::validate(definition, &example.data, CheckOptions::complete(today));
        match result {
            Ok(accepted) if example.valid => {
                if let Some(fee) = example.fee
                    && fee != accepted.fee
                {
                    collector.at(
                        site,
                        &format!("{pointer}/fee"),
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
                        site,
                        &format!("{pointer}/queue"),
                        format!(
                            "example `{name}`: routed to `{}`, expected `{queue}`",
                            accepted.queue
                        ),
                    );
                }
            }
            Ok(_) => collector.at(
                site,
                &pointer,
                format!("example `{name}` should be invalid but was accepted"),
            ),
            Err(errors) => {
                let actual: BTreeSet<(String, String)> = errors
                    .into_iter()
                    .map(|error| (error.path, error.code))
                    .collect();
                let expected: BTreeSet<(String, String)> = example
                    .errors
                    .iter()
                    .map(|error| (error.path.clone(), error.code.clone()))
                    .collect();
                if actual != expected {
                    let describe = |set: Vec<&(String, String)>| {
                        set.iter()
                            .map(|(path, code)| format!("{path} {code}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    let missing = describe(expected.difference(&actual).collect());
                    let unexpected = describe(actual.difference(&expected).collect());
                    collector.at(
                        site,
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

/// The relationships the law lets request each kind of certificate (CERTIFICATES: 住民基本台帳法
/// 第12条 for resident records, 戸籍法 第10条 for family registers). Third parties must state
/// a reason, which is done at the counter, never online.
fn lawful_relationships(who: Residency) -> &'static [Relationship] {
    match who {
        Residency::Residents => &[Relationship::Person, Relationship::Household],
        Residency::ResidentsAndHonseki => &[
            Relationship::Person,
            Relationship::Spouse,
            Relationship::LinealAscendant,
            Relationship::LinealDescendant,
        ],
    }
}

/// `requesters`: the keys that carry the law's rules about who may request online.
fn check_requesters(
    definition: &Definition,
    placed: &[Placed<'_>],
    organisation: Option<&Organisation>,
    site: Site<'_>,
    collector: &mut Collector,
) {
    let Some(requesters) = &definition.requesters else {
        return;
    };
    if definition.assurance != Assurance::CardSign {
        collector.at(
            site,
            "/assurance",
            "a form with `requesters` needs `assurance: card-sign`: the signature certificate's address is what decides who may apply and where the result goes".to_owned(),
        );
    }
    if requesters.who == Residency::Residents
        && let Some(organisation) = organisation
        && organisation.city.is_none()
    {
        collector.at(
            site,
            "/requesters/who",
            "`who: residents` needs the city's address in catalog.yaml (`city: {name: …, address: 石川県加賀市}`)".to_owned(),
        );
    }
    for item in placed {
        if item.from_block && item.field.id == "delivery_method" {
            collector.at(
                site,
                &item.pointer,
                format!(
                    "the result is sent to the {} (`requesters.send_to`); the postal-delivery block lets the resident choose another address, remove it",
                    match requesters.send_to {
                        SendTo::RegisteredAddress => "registered address",
                        SendTo::SignatureAddress => "address on the signature certificate",
                    }
                ),
            );
        }
    }
    let Some(rule) = &requesters.relationship else {
        return;
    };
    let lawful = lawful_relationships(requesters.who);
    let names = |list: &[Relationship]| {
        list.iter()
            .map(|relationship| relationship.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (index, relationship) in rule.allowed.iter().enumerate() {
        if !lawful.contains(relationship) {
            collector.at(
                site,
                &format!("/requesters/relationship/allowed/{index}"),
                format!(
                    "`{}` may not request this certificate online (for `who: {}` the law allows {})",
                    relationship.as_str(),
                    serde_json::to_value(requesters.who)
                        .ok()
                        .and_then(|value| value.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    names(lawful)
                ),
            );
        }
    }
    let Some(item) = placed.iter().find(|item| item.field.id == rule.field) else {
        collector.at(
            site,
            "/requesters/relationship/field",
            format!(
                "`requesters.relationship.field` names an unknown field `{}`",
                rule.field
            ),
        );
        return;
    };
    if !matches!(item.field.kind(), FieldType::Radio | FieldType::Select) {
        collector.at(
            site,
            "/requesters/relationship/field",
            format!(
                "the relationship field `{}` must be a radio or select",
                rule.field
            ),
        );
        return;
    }
    for (index, option) in item.field.options.iter().enumerate() {
        let allowed = rule
            .allowed
            .iter()
            .any(|relationship| relationship.as_str() == option.value);
        if !allowed {
            collector.at(
                site,
                &if item.from_block {
                    item.pointer.clone()
                } else {
                    format!("{}/options/{index}/value", item.pointer)
                },
                format!(
                    "field `{}`: option `{}` is not an allowed requester (`requesters.relationship.allowed`: {})",
                    rule.field,
                    option.value,
                    names(&rule.allowed)
                ),
            );
        }
    }
}
