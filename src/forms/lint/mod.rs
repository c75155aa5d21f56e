//! `madoguchi forms check`: loading the catalog and reporting every mistake as `file:line: message`.
//!
//! The same checks run when the server starts, so a broken catalog is refused before it can
//! serve a broken form. Every rule of docs/FORMS.md is checked here, on the definition itself,
//! and reported once, at the line of the offending key, in words a city's IT person reads
//! without knowing Rust. Examples are run only on a definition that has no other mistake, so a
//! mistake is never reported as a misbehaving example.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::logic;
use super::model::{
    Assurance, Block, Definition, Field, FieldType, Organisation, Page, Relationship, Residency,
    SendTo,
};
use super::source::SourceDocument;
use super::validate::{self, CheckOptions};
use crate::messages::{Localized, escape};

mod blocks;
mod conditions;
mod definition;
mod fees;
mod fields;
mod messages;
mod requesters;

use blocks::*;
use conditions::*;
use definition::*;
use fees::*;
use fields::*;
use messages::*;
use requesters::*;

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

    // Each file is read and checked on its own, so files are spread over the cores (most of
    // startup); each keeps its own problems, merged in file order.
    let mut parsed = Vec::new();
    let read = super::parallel::map(files, |path| {
        let mut own = Collector::default();
        let parsed = parse_file::<Definition>(&path, &mut own);
        (path, parsed, own.problems)
    });
    for (path, definition, problems) in read {
        collector.problems.extend(problems);
        if let Some((definition, document)) = definition {
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

    // A file's problems so far (YAML as written, a shared id) keep its examples from running.
    let parsed: Vec<_> = parsed
        .into_iter()
        .map(|(path, definition, document)| {
            let faulty = collector.count_in(&path) > 0;
            (path, definition, document, faulty)
        })
        .collect();
    let checked = super::parallel::map(parsed, |(path, definition, document, faulty)| {
        let mut own = Collector::default();
        let site = Site {
            path: &path,
            document: &document,
        };
        let (resolved, complete) =
            check_definition(definition, site, organisation.as_ref(), &blocks, &mut own);
        if complete && !faulty && own.problems.is_empty() {
            check_examples(&resolved, site, organisation.as_ref(), &mut own);
        }
        (path, resolved, own.problems)
    });
    let mut definitions = Vec::new();
    for (path, resolved, problems) in checked {
        collector.problems.extend(problems);
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
    check_raw(&document.value, &mut String::new(), site, collector);
    match serde_path_to_error::deserialize::<_, T>(&document.value) {
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

/// Rules on the text as written, which deserialising would lose: a third language next to
/// `ja`/`en` (read by nobody) and an empty list that would silently mean "everything".
fn check_raw(value: &Value, pointer: &mut String, site: Site<'_>, collector: &mut Collector) {
    // One pointer buffer for the whole walk, grown and cut back per child: this runs on every
    // value of every file at startup, and a problem is rare.
    let parent = pointer.len();
    match value {
        Value::Object(map) => {
            let is_text = map.contains_key("ja") || map.contains_key("en");
            for (key, child) in map {
                pointer.push('/');
                pointer.push_str(&escape(key));
                check_raw_entry(key, child, is_text, pointer, site, collector);
                pointer.truncate(parent);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let _ = write!(pointer, "/{index}");
                check_raw(item, pointer, site, collector);
                pointer.truncate(parent);
            }
        }
        _ => {}
    }
}

/// One `key: child` of a mapping, `pointer` pointing at the child.
fn check_raw_entry(
    key: &str,
    child: &Value,
    is_text: bool,
    pointer: &mut String,
    site: Site<'_>,
    collector: &mut Collector,
) {
    if is_text && key != "ja" && key != "en" {
        collector.at(
            site,
            pointer,
            format!("a text has only `ja` and `en`; `{key}` would never be shown"),
        );
        return;
    }
    if child.as_array().is_some_and(Vec::is_empty) {
        let all = match key {
            "accept" => Some("pdf, jpeg, png, heic"),
            "account_types" => Some("ordinary, current, savings"),
            _ => None,
        };
        if let Some(all) = all {
            collector.at(
                site,
                pointer,
                format!(
                    "`{key}: []` lists nothing; list some of {all}, or remove the key to allow all of them"
                ),
            );
        }
    }
    // Conditions and example data are not definition text.
    if !matches!(
        key,
        "show_if" | "required_if" | "when" | "computed" | "data"
    ) {
        check_raw(child, pointer, site, collector);
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

/// The fields a condition may name: the form's, and inside a group item also the item's own.
type Scope<'a> = HashMap<&'a str, &'a Field>;

/// Blocks may include blocks; cycles are refused when blocks load, this is a backstop.
const MAX_INCLUDE_DEPTH: usize = 16;
