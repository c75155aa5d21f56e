//! Checking submission data against a definition.
//!
//! Order: normalise every answer, decide which fields are visible (conditions see normalised,
//! visible values), drop hidden answers, then check each visible field. Every error is reported,
//! not only the first, each with a JSON pointer, a stable code and a message in ja and en.

use std::borrow::Cow;

use chrono::NaiveDate;
use serde_json::{Map, Value, json};

use super::fees::{self, FeeBreakdown};
use super::logic;
use super::model::{AccountType, Definition, Field, FieldType};
use super::normalize;
use crate::messages::{FieldError, Localized, escape, message};

/// What the checks need besides the data.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// The date `today` means in date limits (the city's local date).
    pub today: NaiveDate,
    /// Drafts: check only what is filled; nothing is required yet.
    pub partial: bool,
}

impl CheckOptions {
    pub fn complete(today: NaiveDate) -> Self {
        Self {
            today,
            partial: false,
        }
    }
}

/// Accepted data: normalised, visible answers only, with the fee and the queue it implies.
#[derive(Debug, Clone, PartialEq)]
pub struct Validated {
    pub data: Map<String, Value>,
    /// The fee lines (手数料) before exemptions, in yen.
    pub fee: u64,
    /// Every line (fees, postage, exemptions) and the total; `None` when free.
    pub breakdown: Option<FeeBreakdown>,
    pub queue: String,
}

/// Checks `input` against `definition`. On success the data is normalised and hidden answers
/// are gone; on failure every problem is listed.
pub fn validate(
    definition: &Definition,
    input: &Value,
    options: CheckOptions,
) -> Result<Validated, Vec<FieldError>> {
    let Some(answers) = input.as_object() else {
        return Err(vec![error("", "invalid_type", None)]);
    };
    let fields: Vec<&Field> = definition
        .pages
        .iter()
        .flat_map(|page| page.fields.iter())
        .collect();
    let mut errors = Vec::new();
    reject_unknown_keys(answers, &fields, "", &mut errors);

    let mut context = Value::Object(visible_context(definition, answers, &fields));
    let hidden = hidden_field_ids(definition, &context);
    // From here on conditions (required_if, group items) see only visible answers.
    if let Value::Object(map) = &mut context {
        map.retain(|key, _| !hidden.contains(&key.as_str()));
    }
    let mut data = Map::new();
    for field in fields
        .iter()
        .filter(|field| !hidden.contains(&field.id.as_str()))
    {
        let path = format!("/{}", escape(&field.id));
        if let Some(value) = check_field(
            field,
            answers.get(&field.id),
            &path,
            &context,
            options,
            &mut errors,
        ) {
            data.insert(field.id.clone(), value);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let accepted = Value::Object(data);
    let breakdown = fees::breakdown(definition, &accepted);
    let fee = breakdown
        .as_ref()
        .map_or(0, |breakdown| breakdown.fee_yen().max(0) as u64);
    let queue = route(definition, &accepted);
    let Value::Object(data) = accepted else {
        unreachable!("built as an object above")
    };
    Ok(Validated {
        data,
        fee,
        breakdown,
        queue,
    })
}

/// The queue accepted data goes to: the first routing rule that holds, else the division.
pub fn route(definition: &Definition, data: &Value) -> String {
    definition
        .routing
        .iter()
        .find(|rule| logic::holds(&rule.when, data))
        .map_or_else(|| definition.division.clone(), |rule| rule.queue.clone())
}

fn reject_unknown_keys(
    answers: &Map<String, Value>,
    fields: &[&Field],
    prefix: &str,
    errors: &mut Vec<FieldError>,
) {
    // A form has tens of fields: scanning them beats building a hash set for every check.
    let known = |key: &str| {
        fields
            .iter()
            .any(|field| field.id == key && field.kind() != FieldType::Info)
    };
    for key in answers.keys() {
        if !known(key) {
            errors.push(error(
                &format!("{prefix}/{}", escape(key)),
                "unknown_field",
                None,
            ));
        }
    }
}

/// Normalised answers as conditions see them. A value that does not normalise is kept raw (it
/// will fail its own check if the field is visible). Only the answers some condition reads are
/// normalised here (each is checked again when kept), unless which those are cannot be told.
fn visible_context(
    definition: &Definition,
    answers: &Map<String, Value>,
    fields: &[&Field],
) -> Map<String, Value> {
    let read = read_by_conditions(definition, fields);
    let mut context = Map::new();
    for field in fields {
        if let Some(value) = answers.get(&field.id)
            && read
                .as_ref()
                .is_none_or(|read| read.contains(&field.id.as_str()))
        {
            context.insert(field.id.clone(), normalised_for_conditions(field, value));
        }
    }
    context
}

/// The top-level answers the definition's visibility and requirement conditions (in groups
/// too) can read; `None` if some condition could read any.
fn read_by_conditions<'a>(
    definition: &'a Definition,
    fields: &[&'a Field],
) -> Option<Vec<&'a str>> {
    fn field_reads<'a>(field: &'a Field, read: &mut Vec<&'a str>) -> bool {
        [&field.show_if, &field.required_if]
            .into_iter()
            .flatten()
            .all(|condition| logic::collect_reads(condition, read))
            && field.fields.iter().all(|inner| field_reads(inner, read))
    }
    let mut read = Vec::new();
    let knowable = definition
        .pages
        .iter()
        .filter_map(|page| page.show_if.as_ref())
        .all(|condition| logic::collect_reads(condition, &mut read))
        && fields.iter().all(|field| field_reads(field, &mut read));
    knowable.then_some(read)
}

fn normalised_for_conditions(field: &Field, value: &Value) -> Value {
    let mut scratch = Vec::new();
    let options = CheckOptions {
        today: NaiveDate::MIN,
        partial: true,
    };
    match field.kind() {
        FieldType::Group | FieldType::File => value.clone(),
        _ => check_value(field, value, "", &Value::Null, options, &mut scratch)
            .unwrap_or_else(|| value.clone()),
    }
}

/// Ids of the top-level fields that are hidden, computed to a fixed point: hiding a field can
/// hide the fields whose conditions read it. Kept as a list: a form hides none or a few, and
/// checking every application went through a hash set of all its fields twice.
fn hidden_field_ids<'a>(definition: &'a Definition, context: &Value) -> Vec<&'a str> {
    let mut hidden: Vec<&str> = Vec::new();
    for _ in 0..8 {
        // Conditions see only the answers of fields still visible.
        let mut restricted = Cow::Borrowed(context);
        if !hidden.is_empty()
            && let Value::Object(map) = restricted.to_mut()
        {
            map.retain(|key, _| !hidden.contains(&key.as_str()));
        }
        let next: Vec<&str> = definition
            .pages
            .iter()
            .flat_map(|page| {
                let page_shown = page
                    .show_if
                    .as_ref()
                    .is_none_or(|c| logic::holds(c, &restricted));
                let restricted = &restricted;
                page.fields.iter().filter(move |field| {
                    !page_shown
                        || field
                            .show_if
                            .as_ref()
                            .is_some_and(|c| !logic::holds(c, restricted))
                })
            })
            .map(|field| field.id.as_str())
            .collect();
        if next == hidden {
            break;
        }
        hidden = next;
    }
    hidden
}

fn is_answered(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::String(text)) => !normalize::is_blank(text),
        Some(_) => true,
    }
}

fn is_required(field: &Field, context: &Value) -> bool {
    field.required
        || field
            .required_if
            .as_ref()
            .is_some_and(|condition| logic::holds(condition, context))
}

/// Checks one visible field. Returns the normalised value to keep, if answered and valid.
fn check_field(
    field: &Field,
    value: Option<&Value>,
    path: &str,
    context: &Value,
    options: CheckOptions,
    errors: &mut Vec<FieldError>,
) -> Option<Value> {
    if field.kind() == FieldType::Info {
        return None;
    }
    if !is_answered(value) {
        if !options.partial && is_required(field, context) {
            errors.push(error(path, "required", field.label.as_ref()));
        }
        return None;
    }
    let value = value?;
    if field.kind() == FieldType::Consent
        && !options.partial
        && is_required(field, context)
        && value != &Value::Bool(true)
    {
        errors.push(error(path, "must_consent", field.label.as_ref()));
        return None;
    }
    check_value(field, value, path, context, options, errors)
}

/// Type checks and normalisation of an answered value.
fn check_value(
    field: &Field,
    value: &Value,
    path: &str,
    context: &Value,
    options: CheckOptions,
    errors: &mut Vec<FieldError>,
) -> Option<Value> {
    let label = field.label.as_ref();
    // The API's character rule (crate::input) holds for answers too, so whatever checks answers
    // against the definition agrees with the API.
    let mut refused = Vec::new();
    crate::input::json_errors(value, path, &mut refused);
    if !refused.is_empty() {
        if value.is_string() {
            errors.push(error(path, crate::input::INVALID_CHARACTER, label));
        } else {
            errors.extend(refused);
        }
        return None;
    }
    let mut fail = |code: &str| {
        errors.push(error(path, code, label));
        None
    };
    match field.kind() {
        FieldType::Text | FieldType::Textarea | FieldType::Kana | FieldType::Email => {
            let Some(raw) = value.as_str() else {
                return fail("invalid_type");
            };
            let text = normalize::text(raw);
            let length = text.chars().count();
            if field.kind() == FieldType::Kana && !normalize::is_katakana(&text) {
                return fail("invalid_kana");
            }
            if field.kind() == FieldType::Email && !normalize::is_email(&text) {
                return fail("invalid_email");
            }
            if field.min_length.is_some_and(|min| length < min) {
                return fail("too_short");
            }
            if field.max_length.is_some_and(|max| length > max) {
                return fail("too_long");
            }
            if let Some(pattern) = &field.pattern
                && !super::pattern_matches(pattern, &text)
            {
                return fail("pattern_mismatch");
            }
            Some(Value::String(text))
        }
        FieldType::Phone | FieldType::PostalCode | FieldType::MyNumber => {
            let Some(raw) = value.as_str() else {
                return fail("invalid_type");
            };
            let digits = normalize::digits(raw);
            let (valid, code) = match field.kind() {
                FieldType::Phone => (normalize::is_phone(&digits), "invalid_phone"),
                FieldType::PostalCode => {
                    (normalize::is_postal_code(&digits), "invalid_postal_code")
                }
                _ => (normalize::is_my_number(&digits), "invalid_my_number"),
            };
            if valid {
                Some(Value::String(digits))
            } else {
                fail(code)
            }
        }
        FieldType::Date => {
            let Some(raw) = value.as_str() else {
                return fail("invalid_type");
            };
            let Some(date) = parse_date(&normalize::text(raw)) else {
                return fail("invalid_date");
            };
            let limit = |bound: &Option<Value>| {
                bound
                    .as_ref()
                    .and_then(Value::as_str)
                    .and_then(|text| date_limit(text, options.today))
            };
            if limit(&field.min).is_some_and(|min| date < min) {
                return fail("date_too_early");
            }
            if limit(&field.max).is_some_and(|max| date > max) {
                return fail("date_too_late");
            }
            Some(Value::String(date.format("%Y-%m-%d").to_string()))
        }
        FieldType::Integer | FieldType::Money => {
            let number = match value {
                Value::Number(number) => number.as_i64().or_else(|| {
                    number
                        .as_f64()
                        .filter(|n| n.fract() == 0.0)
                        .map(|n| n as i64)
                }),
                Value::String(text) => normalize::integer(text),
                _ => return fail("invalid_type"),
            };
            let Some(number) = number else {
                return fail("not_integer");
            };
            let min = bound(&field.min).or(if field.kind() == FieldType::Money {
                Some(0.0)
            } else {
                None
            });
            if min.is_some_and(|min| (number as f64) < min) {
                return fail("too_small");
            }
            if bound(&field.max).is_some_and(|max| (number as f64) > max) {
                return fail("too_large");
            }
            Some(json!(number))
        }
        FieldType::Decimal => {
            let number = match value {
                Value::Number(number) => number.as_f64(),
                Value::String(text) => normalize::decimal(text),
                _ => return fail("invalid_type"),
            };
            let Some(number) = number else {
                return fail("not_number");
            };
            if bound(&field.min).is_some_and(|min| number < min) {
                return fail("too_small");
            }
            if bound(&field.max).is_some_and(|max| number > max) {
                return fail("too_large");
            }
            Some(json!(number))
        }
        FieldType::Select | FieldType::Radio => {
            let Some(choice) = value.as_str() else {
                return fail("invalid_type");
            };
            if field.options.iter().any(|option| option.value == choice) {
                Some(Value::String(choice.to_owned()))
            } else {
                fail("invalid_option")
            }
        }
        FieldType::MultiSelect => {
            let Some(items) = value.as_array() else {
                return fail("invalid_type");
            };
            let mut chosen = Vec::new();
            for item in items {
                let Some(choice) = item.as_str() else {
                    return fail("invalid_type");
                };
                if !field.options.iter().any(|option| option.value == choice) {
                    return fail("invalid_option");
                }
                if chosen.contains(&choice) {
                    return fail("duplicate_option");
                }
                chosen.push(choice);
            }
            check_count(field, items.len(), options).map_or_else(|| Some(value.clone()), &mut fail)
        }
        FieldType::Boolean | FieldType::Consent => match value {
            Value::Bool(_) => Some(value.clone()),
            _ => fail("invalid_type"),
        },
        FieldType::File => {
            let Some(items) = value.as_array() else {
                return fail("invalid_type");
            };
            let all_ids = items.iter().all(|item| {
                item.as_str()
                    .is_some_and(|id| uuid::Uuid::parse_str(id).is_ok())
            });
            if !all_ids {
                return fail("invalid_attachment");
            }
            if items.len() > field.max_files.unwrap_or(1) {
                return fail("too_many_items");
            }
            if !options.partial && field.required && items.is_empty() {
                return fail("required");
            }
            Some(value.clone())
        }
        FieldType::Address => check_address(value, path, label, errors),
        FieldType::BankAccount => check_bank_account(field, value, path, options, errors),
        FieldType::Group => check_group(field, value, path, context, options, errors),
        FieldType::Info => None,
    }
}

fn check_count(field: &Field, count: usize, options: CheckOptions) -> Option<&'static str> {
    if !options.partial && field.min_items.is_some_and(|min| count < min) {
        return Some("too_few_items");
    }
    if field.max_items.is_some_and(|max| count > max) {
        return Some("too_many_items");
    }
    None
}

fn bound(value: &Option<Value>) -> Option<f64> {
    value.as_ref().and_then(Value::as_f64)
}

fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.replace('/', "-");
    NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok()
}

/// `YYYY-MM-DD`, `today`, `today+N`, `today-N` (days).
pub fn date_limit(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    if let Some(offset) = text.strip_prefix("today") {
        if offset.is_empty() {
            return Some(today);
        }
        let days: i64 = offset.trim_start_matches('+').parse().ok()?;
        return today.checked_add_signed(chrono::Duration::days(days));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A sub-field of a composite value (address, bank account), described for messages.
struct Part {
    key: &'static str,
    label: (&'static str, &'static str),
    required: bool,
}

const ADDRESS_PARTS: [Part; 3] = [
    Part {
        key: "postal_code",
        label: ("郵便番号", "Postal code"),
        required: true,
    },
    Part {
        key: "address",
        label: ("住所", "Address"),
        required: true,
    },
    Part {
        key: "building",
        label: ("建物名・部屋番号", "Building and room"),
        required: false,
    },
];

const BANK_PARTS: [Part; 5] = [
    Part {
        key: "bank_code",
        label: ("金融機関コード", "Bank code"),
        required: true,
    },
    Part {
        key: "branch_code",
        label: ("支店コード", "Branch code"),
        required: true,
    },
    Part {
        key: "account_type",
        label: ("預金種別", "Account type"),
        required: true,
    },
    Part {
        key: "account_number",
        label: ("口座番号", "Account number"),
        required: true,
    },
    Part {
        key: "holder_kana",
        label: ("口座名義（カナ）", "Account holder (katakana)"),
        required: true,
    },
];

/// Splits a composite answer into its parts, reporting unknown keys, wrong types and missing
/// required parts. Returns the normalised text of each answered part.
fn composite_parts(
    value: &Value,
    path: &str,
    label: Option<&Localized>,
    parts: &[Part],
    errors: &mut Vec<FieldError>,
) -> Option<Vec<Option<String>>> {
    let Some(object) = value.as_object() else {
        errors.push(error(path, "invalid_type", label));
        return None;
    };
    for key in object.keys() {
        if !parts.iter().any(|part| part.key == key) {
            errors.push(error(
                &format!("{path}/{}", escape(key)),
                "unknown_field",
                None,
            ));
        }
    }
    let mut texts = Vec::new();
    for part in parts {
        // The path and label are made only for an error: this runs for every address answered.
        let part_path = || format!("{path}/{}", part.key);
        let part_label = || Localized::new(part.label.0, part.label.1);
        match object.get(part.key) {
            Some(Value::String(text)) if !normalize::is_blank(text) => {
                texts.push(Some(normalize::text(text)));
            }
            None | Some(Value::Null) | Some(Value::String(_)) => {
                if part.required {
                    errors.push(error(&part_path(), "required", Some(&part_label())));
                }
                texts.push(None);
            }
            Some(_) => {
                errors.push(error(&part_path(), "invalid_type", Some(&part_label())));
                texts.push(None);
            }
        }
    }
    Some(texts)
}

fn check_address(
    value: &Value,
    path: &str,
    label: Option<&Localized>,
    errors: &mut Vec<FieldError>,
) -> Option<Value> {
    let before = errors.len();
    let parts = composite_parts(value, path, label, &ADDRESS_PARTS, errors)?;
    let mut address = Map::new();
    if let Some(postal) = &parts[0] {
        let digits = normalize::digits(postal);
        if normalize::is_postal_code(&digits) {
            address.insert("postal_code".to_owned(), Value::String(digits));
        } else {
            errors.push(error(
                &format!("{path}/postal_code"),
                "invalid_postal_code",
                Some(&Localized::new("郵便番号", "Postal code")),
            ));
        }
    }
    for (part, text) in ADDRESS_PARTS.iter().zip(&parts).skip(1) {
        if let Some(text) = text {
            if text.chars().count() > 200 {
                errors.push(error(&format!("{path}/{}", part.key), "too_long", None));
            }
            address.insert(part.key.to_owned(), Value::String(text.clone()));
        }
    }
    (errors.len() == before).then_some(Value::Object(address))
}

fn check_bank_account(
    field: &Field,
    value: &Value,
    path: &str,
    options: CheckOptions,
    errors: &mut Vec<FieldError>,
) -> Option<Value> {
    let before = errors.len();
    let mut scratch = Vec::new();
    let sink = if options.partial {
        &mut scratch
    } else {
        &mut *errors
    };
    let parts = composite_parts(value, path, field.label.as_ref(), &BANK_PARTS, sink)?;
    // Partial checks still report malformed parts, just not missing ones.
    errors.extend(
        scratch
            .into_iter()
            .filter(|problem| problem.code != "required"),
    );
    let mut account = Map::new();
    let mut part_error = |key: &str, code: &str, label: (&str, &str)| {
        errors.push(error(
            &format!("{path}/{key}"),
            code,
            Some(&Localized::new(label.0, label.1)),
        ));
    };
    if let Some(code) = &parts[0] {
        let digits = normalize::digits(code);
        if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()) {
            account.insert("bank_code".to_owned(), Value::String(digits));
        } else {
            part_error("bank_code", "invalid_bank_code", BANK_PARTS[0].label);
        }
    }
    if let Some(code) = &parts[1] {
        let digits = normalize::digits(code);
        if digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit()) {
            account.insert("branch_code".to_owned(), Value::String(digits));
        } else {
            part_error("branch_code", "invalid_branch_code", BANK_PARTS[1].label);
        }
    }
    if let Some(kind) = &parts[2] {
        let allowed = field.allowed_account_types();
        let parsed: Option<AccountType> = serde_json::from_value(Value::String(kind.clone())).ok();
        match parsed {
            Some(kind) if allowed.contains(&kind) => {
                account.insert("account_type".to_owned(), json!(kind));
            }
            _ => part_error("account_type", "invalid_account_type", BANK_PARTS[2].label),
        }
    }
    if let Some(number) = &parts[3] {
        let digits = normalize::digits(number);
        if (1..=7).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            account.insert(
                "account_number".to_owned(),
                Value::String(format!("{digits:0>7}")),
            );
        } else {
            part_error(
                "account_number",
                "invalid_account_number",
                BANK_PARTS[3].label,
            );
        }
    }
    if let Some(holder) = &parts[4] {
        if normalize::is_katakana(holder) {
            account.insert("holder_kana".to_owned(), Value::String(holder.clone()));
        } else {
            part_error("holder_kana", "invalid_kana", BANK_PARTS[4].label);
        }
    }
    (errors.len() == before).then_some(Value::Object(account))
}

fn check_group(
    field: &Field,
    value: &Value,
    path: &str,
    context: &Value,
    options: CheckOptions,
    errors: &mut Vec<FieldError>,
) -> Option<Value> {
    let Some(items) = value.as_array() else {
        errors.push(error(path, "invalid_type", field.label.as_ref()));
        return None;
    };
    if let Some(code) = check_count(field, items.len(), options) {
        errors.push(error(path, code, field.label.as_ref()));
        return None;
    }
    let before = errors.len();
    let item_fields: Vec<&Field> = field.fields.iter().collect();
    // Only conditions read an item's scope (the form's answers with the item's over them). When
    // no field of the item has one, it is not built: copying the form's answers for every item
    // was most of what checking a group cost.
    let conditional = item_fields
        .iter()
        .any(|item_field| has_conditions(item_field));
    let mut accepted = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_path = format!("{path}/{index}");
        let Some(answers) = item.as_object() else {
            errors.push(error(&item_path, "invalid_type", None));
            continue;
        };
        reject_unknown_keys(answers, &item_fields, &item_path, errors);
        let scope = if conditional {
            Cow::Owned(item_scope(context, &item_fields, answers))
        } else {
            Cow::Borrowed(context)
        };
        let kept = check_item(&item_fields, answers, &item_path, scope, options, errors);
        accepted.push(Value::Object(kept));
    }
    (errors.len() == before).then_some(Value::Array(accepted))
}

/// Whether a field or any field inside it is shown or required on a condition.
fn has_conditions(field: &Field) -> bool {
    field.show_if.is_some()
        || field.required_if.is_some()
        || field.fields.iter().any(has_conditions)
}

/// What conditions inside an item see: `var` reads the item's own answers first, then the form's.
fn item_scope(context: &Value, item_fields: &[&Field], answers: &Map<String, Value>) -> Value {
    let mut scope = context.as_object().cloned().unwrap_or_default();
    for item_field in item_fields {
        if let Some(answer) = answers.get(&item_field.id) {
            scope.insert(
                item_field.id.clone(),
                normalised_for_conditions(item_field, answer),
            );
        }
    }
    Value::Object(scope)
}

/// Checks the visible fields of one group item against its scope; returns the answers to keep.
fn check_item(
    item_fields: &[&Field],
    answers: &Map<String, Value>,
    item_path: &str,
    mut scope: Cow<'_, Value>,
    options: CheckOptions,
    errors: &mut Vec<FieldError>,
) -> Map<String, Value> {
    let shown: Vec<&&Field> = item_fields
        .iter()
        .filter(|item_field| {
            item_field
                .show_if
                .as_ref()
                .is_none_or(|condition| logic::holds(condition, &scope))
        })
        .collect();
    // Hidden answers of the item are invisible to the item's other conditions too.
    if shown.len() < item_fields.len()
        && let Value::Object(map) = scope.to_mut()
    {
        map.retain(|key, _| {
            !item_fields.iter().any(|f| &f.id == key) || shown.iter().any(|f| &f.id == key)
        });
    }
    let mut kept = Map::new();
    for item_field in shown {
        let field_path = format!("{item_path}/{}", escape(&item_field.id));
        if let Some(value) = check_field(
            item_field,
            answers.get(&item_field.id),
            &field_path,
            &scope,
            options,
            errors,
        ) {
            kept.insert(item_field.id.clone(), value);
        }
    }
    kept
}

fn error(path: &str, code: &str, label: Option<&Localized>) -> FieldError {
    FieldError {
        path: path.to_owned(),
        code: code.to_owned(),
        message: message(code, label),
    }
}
