//! Question pages from a definition: each field of a page as the inputs a resident fills in
//! (what the `field` macro of templates/web/question.html draws), and the posted form read back
//! into answers of the shape the domain checks (docs/FORMS.md: one JSON object keyed by field id).
//!
//! Names and ids are stable, so pages can be driven by tests and tools: a field's input is named
//! by its id (`applicant_name`), a group member's by `group[index].field`, the parts of a
//! compound field by `.part` (`applicant_birth_date.year`, `payee.bank_code`). The HTML id is
//! the answer's JSON pointer with `-` for `/` and an `f` before it (`f-children-0-name`), so an
//! error's pointer names the input it belongs to.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::lang::Lang;
use crate::forms::logic;
use crate::forms::model::{
    AccountType, Definition, Field, FieldType, Page as DefinitionPage, Prefill,
};
use crate::forms::normalize;
use crate::messages::{FieldError, Localized};

fn pick(text: &Localized, lang: Lang) -> String {
    match lang {
        Lang::Ja => text.ja.clone(),
        Lang::En => text.en.clone(),
    }
}

/// What a posted form holds: its text pairs (in order, repeated names kept) and the files sent.
#[derive(Debug, Default)]
pub struct FormInput {
    pub pairs: Vec<(String, String)>,
    /// `(input name, bytes)` of each non-empty file part.
    pub files: Vec<(String, Vec<u8>)>,
}

impl FormInput {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The text sent for `name`, trimmed, if not empty.
    fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    }
}

/// The HTML id of the input at a JSON pointer.
pub fn dom_id(pointer: &str) -> String {
    format!("f{}", pointer.replace('/', "-"))
}

/// Whether a definition page is shown for these answers.
pub fn page_shown(page: &DefinitionPage, data: &Value) -> bool {
    page.show_if
        .as_ref()
        .is_none_or(|condition| logic::holds(condition, data))
}

/// Ids of the value fields of a page (those whose answers the page owns).
pub fn page_field_ids(page: &DefinitionPage) -> Vec<&str> {
    page.fields
        .iter()
        .filter(|field| field.kind() != FieldType::Info)
        .map(|field| field.id.as_str())
        .collect()
}

/// One option of a choice.
#[derive(Debug, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub checked: bool,
    pub id: String,
}

/// One member of a repeatable group.
#[derive(Debug, Serialize)]
pub struct Member {
    pub number: usize,
    pub index: usize,
    pub widgets: Vec<Widget>,
}

/// An uploaded file already in the answer.
#[derive(Debug, Serialize)]
pub struct Uploaded {
    pub id: String,
    pub number: usize,
}

/// A field as the page draws it.
#[derive(Debug, Default, Serialize)]
pub struct Widget {
    pub kind: &'static str,
    pub name: String,
    pub id: String,
    pub label: String,
    pub help: Option<String>,
    pub required: bool,
    /// When the field applies, for a field whose condition reads answers on the same page (shown
    /// to everyone, since the page cannot hide it without a script).
    pub applies_when: Option<String>,
    pub value: String,
    /// The parts of a date, an address or a bank account.
    pub parts: HashMap<&'static str, String>,
    pub options: Vec<Choice>,
    pub errors: Vec<String>,
    /// Dates: the answer in the Japanese era, when it is a date.
    pub wareki: Option<String>,
    /// Read-only: the value the card vouched for, and where it comes from.
    pub vouched: Option<String>,
    pub files: Vec<Uploaded>,
    pub accept: String,
    pub kinds: String,
    pub size_mb: u32,
    pub max_files: usize,
    pub members: Vec<Member>,
    pub can_add: bool,
    pub text: Option<String>,
    pub inputmode: Option<&'static str>,
    pub autocomplete: Option<&'static str>,
    pub input_type: &'static str,
    /// Bank accounts: the holder's reading differs from the applicant's.
    pub warning: Option<String>,
    /// Where a link in the error summary should lead (the first input).
    pub focus: String,
    /// The page's one simple follow-up: its condition (JSON Logic, for static/reveal.js), the
    /// input it reads and that input's kind.
    pub reveal: Option<String>,
    pub reveal_reads: String,
    pub reveal_kind: &'static str,
}

/// Values of the resident the page knows beyond the answers.
#[derive(Debug, Default, Clone)]
pub struct Vouched {
    /// `(field id, value as shown, answer)` filled from the card, read-only.
    pub fixed: Vec<(String, String, Value)>,
    /// Where they come from, as the page says it.
    pub source: String,
}

/// The city's address and postal code, for the fields that say `prefill: city`.
#[derive(Debug, Default, Clone)]
pub struct CityAddress {
    pub postal_code: String,
    pub address: String,
}

/// Fills the fields of a page that say `prefill: city` with the city's address, still editable,
/// on a page not answered yet: a page saved once is drawn as saved, so an address the resident
/// emptied stays empty.
pub fn prefill_city(data: &mut Map<String, Value>, page: &DefinitionPage, city: &CityAddress) {
    if page_field_ids(page).iter().any(|id| data.contains_key(*id)) {
        return;
    }
    for field in &page.fields {
        if field.prefill != Some(Prefill::City) {
            continue;
        }
        let value = match field.kind() {
            FieldType::Address => {
                let mut parts = Map::new();
                for (key, part) in [
                    ("postal_code", &city.postal_code),
                    ("address", &city.address),
                ] {
                    if !part.is_empty() {
                        parts.insert(key.to_owned(), Value::String(part.clone()));
                    }
                }
                Value::Object(parts)
            }
            FieldType::PostalCode => Value::String(city.postal_code.clone()),
            _ => continue,
        };
        if value != Value::Object(Map::new()) && value != Value::String(String::new()) {
            data.insert(field.id.clone(), value);
        }
    }
}

/// The widgets of a page for `data` (the answers so far), with `errors` (pointer → messages).
pub fn widgets(
    definition: &Definition,
    page: &DefinitionPage,
    data: &Value,
    errors: &[FieldError],
    vouched: &Vouched,
    lang: Lang,
) -> Vec<Widget> {
    let same_page: Vec<&str> = page.fields.iter().map(|f| f.id.as_str()).collect();
    let mut revealed = false;
    page.fields
        .iter()
        .filter(|field| {
            // A field whose condition reads only other pages' answers is decided now; one that
            // reads this page's is drawn with a note of when it applies.
            match &field.show_if {
                None => true,
                Some(condition) => {
                    reads_page(condition, &same_page) || logic::holds(condition, data)
                }
            }
        })
        .map(|field| {
            let pointer = format!("/{}", field.id);
            let mut widget = draw(
                field,
                &field.id,
                &pointer,
                data.get(&field.id),
                errors,
                lang,
            );
            if let Some(condition) = &field.show_if
                && reads_page(condition, &same_page)
            {
                widget.applies_when = Some(applies_when(definition, condition, lang));
                if !revealed && let Some((reads, kind)) = simple_follow_up(page, condition) {
                    revealed = true;
                    widget.reveal = Some(condition.to_string());
                    widget.reveal_reads = reads;
                    widget.reveal_kind = kind;
                }
            }
            if let Some((_, shown, _)) = vouched.fixed.iter().find(|(id, _, _)| id == &field.id) {
                widget.vouched = Some(format!("{shown}（{}）", vouched.source));
            }
            if field.kind() == FieldType::BankAccount {
                widget.warning = holder_differs(data, data.get(&field.id), lang);
            }
            widget
        })
        .collect()
}

/// A follow-up the script may reveal (UI.md: at most one, and simple): its condition reads one
/// answer, a choice of one option on the same page.
fn simple_follow_up(page: &DefinitionPage, condition: &Value) -> Option<(String, &'static str)> {
    let read = logic::variables(condition);
    let [name] = read.as_slice() else {
        return None;
    };
    let source = page.fields.iter().find(|field| &field.id == name)?;
    match source.kind() {
        FieldType::Radio | FieldType::Select => Some((name.clone(), "choice")),
        FieldType::Boolean => Some((name.clone(), "boolean")),
        _ => None,
    }
}

fn reads_page(condition: &Value, same_page: &[&str]) -> bool {
    logic::variables(condition)
        .iter()
        .any(|name| same_page.contains(&name.as_str()))
}

/// "「理由」で「転入」を選んだ場合" for the simple conditions, a plain "if it applies" otherwise.
fn applies_when(definition: &Definition, condition: &Value, lang: Lang) -> String {
    let simple = condition.as_object().and_then(|object| {
        let (operator, operands) = object.iter().next()?;
        if !["==", "==="].contains(&operator.as_str()) {
            return None;
        }
        let operands = operands.as_array()?;
        let name = operands.first()?.get("var")?.as_str()?;
        let wanted = operands.get(1)?;
        let field = find_field(definition, name)?;
        let label = field.label.as_ref().map(|l| pick(l, lang))?;
        let answer = match wanted {
            Value::String(value) => field
                .options
                .iter()
                .find(|option| &option.value == value)
                .map(|option| pick(&option.label, lang))?,
            Value::Bool(true) => lang.text("yes").to_owned(),
            Value::Bool(false) => lang.text("no").to_owned(),
            _ => return None,
        };
        Some(match lang {
            Lang::Ja => format!("「{label}」で「{answer}」を選んだ場合に答えてください。"),
            Lang::En => format!("Answer if you chose “{answer}” for “{label}”."),
        })
    });
    simple.unwrap_or_else(|| lang.text("applies_if").to_owned())
}

fn find_field<'a>(definition: &'a Definition, id: &str) -> Option<&'a Field> {
    definition
        .pages
        .iter()
        .flat_map(|page| page.fields.iter())
        .find(|field| field.id == id)
}

fn plain_kana(text: &str) -> String {
    normalize::text(text)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// A warning when an account holder's reading is not the applicant's: payments to another
/// person's account were the commonest avoidable mistake (UI.md).
fn holder_differs(data: &Value, account: Option<&Value>, lang: Lang) -> Option<String> {
    let holder = account?.get("holder_kana")?.as_str()?;
    let applicant = data.get("applicant_kana")?.as_str()?;
    (plain_kana(holder) != plain_kana(applicant)).then(|| lang.text("holder_differs").to_owned())
}

fn text_value(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(number)) => number.to_string(),
        _ => String::new(),
    }
}

fn errors_at(errors: &[FieldError], pointer: &str, lang: Lang, nested: bool) -> Vec<String> {
    errors
        .iter()
        .filter(|error| {
            error.path == pointer || (nested && error.path.starts_with(&format!("{pointer}/")))
        })
        .map(|error| pick(&error.message, lang))
        .collect()
}

fn draw(
    field: &Field,
    name: &str,
    pointer: &str,
    value: Option<&Value>,
    errors: &[FieldError],
    lang: Lang,
) -> Widget {
    let id = dom_id(pointer);
    let kind = field.kind();
    let mut widget = Widget {
        kind: kind_name(kind),
        name: name.to_owned(),
        id: id.clone(),
        focus: id.clone(),
        label: field
            .label
            .as_ref()
            .map(|l| pick(l, lang))
            .unwrap_or_default(),
        help: field.help.as_ref().map(|h| pick(h, lang)),
        required: field.required,
        input_type: "text",
        ..Widget::default()
    };
    let compound = matches!(kind, FieldType::Address | FieldType::BankAccount);
    if kind != FieldType::Group {
        widget.errors = errors_at(errors, pointer, lang, compound);
    }
    match kind {
        FieldType::Text => widget.value = text_value(value),
        FieldType::Textarea => widget.value = text_value(value),
        FieldType::Kana => widget.value = text_value(value),
        FieldType::Email => {
            widget.value = text_value(value);
            widget.input_type = "email";
            widget.autocomplete = Some("email");
        }
        FieldType::Phone => {
            widget.value = text_value(value);
            widget.input_type = "tel";
            widget.autocomplete = Some("tel");
        }
        FieldType::PostalCode => {
            widget.value = text_value(value);
            widget.inputmode = Some("numeric");
            widget.autocomplete = Some("postal-code");
        }
        FieldType::Integer | FieldType::Money => {
            widget.value = text_value(value);
            widget.inputmode = Some("numeric");
        }
        FieldType::Decimal => {
            widget.value = text_value(value);
            widget.inputmode = Some("decimal");
        }
        FieldType::MyNumber => {
            // Only what the domain masked ever comes back: a full number typed on a page that
            // failed is not echoed, it has to be typed again.
            let shown = text_value(value);
            widget.value = if shown.starts_with('*') {
                shown
            } else {
                String::new()
            };
            widget.inputmode = Some("numeric");
            widget.autocomplete = Some("off");
        }
        FieldType::Date => {
            let text = text_value(value);
            let mut parts = text.splitn(3, '-');
            for key in ["year", "month", "day"] {
                widget.parts.insert(
                    key,
                    parts
                        .next()
                        .map(|part| part.trim_start_matches('0').to_owned())
                        .unwrap_or_default(),
                );
            }
            widget.wareki = chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .ok()
                .map(crate::forms::wareki::format);
            widget.focus = format!("{id}-year");
        }
        FieldType::Select | FieldType::Radio | FieldType::MultiSelect => {
            let chosen: Vec<String> = match value {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                other => vec![text_value(other)],
            };
            widget.options = field
                .options
                .iter()
                .enumerate()
                .map(|(index, option)| Choice {
                    value: option.value.clone(),
                    label: pick(&option.label, lang),
                    checked: chosen.contains(&option.value),
                    id: format!("{id}-{index}"),
                })
                .collect();
            if kind != FieldType::Select {
                widget.focus = format!("{id}-0");
            }
        }
        FieldType::Boolean => {
            let chosen = value.and_then(Value::as_bool);
            widget.options = [(true, "yes"), (false, "no")]
                .into_iter()
                .enumerate()
                .map(|(index, (answer, text))| Choice {
                    value: answer.to_string(),
                    label: lang.text(text).to_owned(),
                    checked: chosen == Some(answer),
                    id: format!("{id}-{index}"),
                })
                .collect();
            widget.focus = format!("{id}-0");
        }
        FieldType::Consent => widget.value = text_value(value),
        FieldType::Address => {
            for key in ["postal_code", "address", "building"] {
                widget
                    .parts
                    .insert(key, text_value(value.and_then(|v| v.get(key))));
            }
            widget.focus = format!("{id}-postal_code");
        }
        FieldType::BankAccount => {
            for key in [
                "bank_code",
                "branch_code",
                "account_type",
                "account_number",
                "holder_kana",
            ] {
                widget
                    .parts
                    .insert(key, text_value(value.and_then(|v| v.get(key))));
            }
            let chosen = widget
                .parts
                .get("account_type")
                .cloned()
                .unwrap_or_default();
            widget.options = field
                .allowed_account_types()
                .into_iter()
                .enumerate()
                .map(|(index, account_type)| {
                    let value = account_type_value(account_type);
                    Choice {
                        checked: chosen == value,
                        value: value.to_owned(),
                        label: lang.text(&format!("account_{value}")).to_owned(),
                        id: format!("{id}-account_type-{index}"),
                    }
                })
                .collect();
            widget.focus = format!("{id}-bank_code");
        }
        FieldType::File => {
            let ids: Vec<&str> = match value {
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            widget.files = ids
                .iter()
                .enumerate()
                .map(|(index, file)| Uploaded {
                    id: (*file).to_owned(),
                    number: index + 1,
                })
                .collect();
            let kinds = field.accepted_kinds();
            widget.accept = kinds
                .iter()
                .map(|kind| kind.mime())
                .collect::<Vec<_>>()
                .join(",");
            widget.kinds = kinds
                .iter()
                .map(|kind| kind.label())
                .collect::<Vec<_>>()
                .join(", ");
            widget.size_mb = field.size_limit_mb();
            widget.max_files = field.max_files.unwrap_or(1);
        }
        FieldType::Group => {
            widget.errors = errors_at(errors, pointer, lang, false);
            let items: Vec<&Value> = match value {
                Some(Value::Array(items)) => items.iter().collect(),
                _ => Vec::new(),
            };
            widget.members = items
                .iter()
                .enumerate()
                .map(|(index, item)| Member {
                    number: index + 1,
                    index,
                    widgets: field
                        .fields
                        .iter()
                        .map(|inner| {
                            draw(
                                inner,
                                &format!("{name}[{index}].{}", inner.id),
                                &format!("{pointer}/{index}/{}", inner.id),
                                item.get(&inner.id),
                                errors,
                                lang,
                            )
                        })
                        .collect(),
                })
                .collect();
            widget.can_add = field.max_items.is_none_or(|max| items.len() < max);
            widget.value = items.len().to_string();
            widget.focus = format!("{id}-add");
        }
        FieldType::Info => {
            widget.text = field.text.as_ref().map(|text| pick(text, lang));
        }
    }
    widget
}

fn account_type_value(account_type: AccountType) -> &'static str {
    match account_type {
        AccountType::Ordinary => "ordinary",
        AccountType::Current => "current",
        AccountType::Savings => "savings",
    }
}

fn kind_name(kind: FieldType) -> &'static str {
    match kind {
        FieldType::Text => "text",
        FieldType::Textarea => "textarea",
        FieldType::Kana => "kana",
        FieldType::Email => "email",
        FieldType::Phone => "phone",
        FieldType::PostalCode => "postal_code",
        FieldType::Address => "address",
        FieldType::Date => "date",
        FieldType::Integer => "integer",
        FieldType::Decimal => "decimal",
        FieldType::Money => "money",
        FieldType::Select => "select",
        FieldType::Radio => "radio",
        FieldType::MultiSelect => "multi_select",
        FieldType::Boolean => "boolean",
        FieldType::Consent => "consent",
        FieldType::File => "file",
        FieldType::Group => "group",
        FieldType::BankAccount => "bank_account",
        FieldType::MyNumber => "my_number",
        FieldType::Info => "info",
    }
}

/// Reads the answers of a page's fields from a posted form. `previous` is the answer stored so
/// far (files stay unless removed; new uploads are in `uploaded`, by input name).
pub fn read_field(
    field: &Field,
    name: &str,
    input: &FormInput,
    previous: Option<&Value>,
    uploaded: &HashMap<String, Vec<String>>,
) -> Option<Value> {
    let text = |suffix: &str| input.text(&format!("{name}{suffix}"));
    match field.kind() {
        FieldType::Info => None,
        FieldType::Text
        | FieldType::Textarea
        | FieldType::Kana
        | FieldType::Email
        | FieldType::Phone
        | FieldType::PostalCode
        | FieldType::Integer
        | FieldType::Decimal
        | FieldType::Money
        | FieldType::Select
        | FieldType::Radio
        | FieldType::MyNumber => text("").map(Value::String),
        FieldType::Date => {
            let parts: Vec<String> = ["year", "month", "day"]
                .iter()
                .map(|part| {
                    input
                        .get(&format!("{name}.{part}"))
                        .map(normalize::text)
                        .unwrap_or_default()
                })
                .collect();
            if parts.iter().all(String::is_empty) {
                return None;
            }
            let pad = |part: &str| {
                if part.len() == 1 {
                    format!("0{part}")
                } else {
                    part.to_owned()
                }
            };
            Some(Value::String(format!(
                "{}-{}-{}",
                parts[0],
                pad(&parts[1]),
                pad(&parts[2])
            )))
        }
        FieldType::MultiSelect => {
            let chosen: Vec<Value> = input
                .all(name)
                .into_iter()
                .map(|value| Value::String(value.to_owned()))
                .collect();
            (!chosen.is_empty()).then_some(Value::Array(chosen))
        }
        FieldType::Boolean => match input.get(name) {
            Some("true") => Some(Value::Bool(true)),
            Some("false") => Some(Value::Bool(false)),
            _ => None,
        },
        FieldType::Consent => (input.get(name) == Some("true")).then_some(Value::Bool(true)),
        FieldType::Address => compound(name, input, &["postal_code", "address", "building"]),
        FieldType::BankAccount => compound(
            name,
            input,
            &[
                "bank_code",
                "branch_code",
                "account_type",
                "account_number",
                "holder_kana",
            ],
        ),
        FieldType::File => {
            // Files already uploaded: those in the saved answer, and those the page carried
            // back (uploaded with answers that were refused, so never saved). Whose they are is
            // checked when the application is sent.
            let removed = input.all(&format!("{name}.remove"));
            let mut ids: Vec<String> = previous
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            for kept in input.all(&format!("{name}.keep")) {
                if !ids.iter().any(|id| id == kept) {
                    ids.push(kept.to_owned());
                }
            }
            ids.retain(|id| !removed.contains(&id.as_str()));
            if let Some(new) = uploaded.get(name) {
                ids.extend(new.iter().cloned());
            }
            (!ids.is_empty()).then(|| Value::Array(ids.into_iter().map(Value::String).collect()))
        }
        FieldType::Group => {
            let count = input
                .get(&format!("{name}.count"))
                .and_then(|count| count.parse::<usize>().ok())
                .unwrap_or(0)
                .min(100);
            let before = previous.and_then(Value::as_array);
            let members: Vec<Value> = (0..count)
                .map(|index| {
                    let earlier = before.and_then(|items| items.get(index));
                    let mut member = Map::new();
                    for inner in &field.fields {
                        if let Some(value) = read_field(
                            inner,
                            &format!("{name}[{index}].{}", inner.id),
                            input,
                            earlier.and_then(|item| item.get(&inner.id)),
                            uploaded,
                        ) {
                            member.insert(inner.id.clone(), value);
                        }
                    }
                    Value::Object(member)
                })
                .collect();
            (count > 0).then_some(Value::Array(members))
        }
    }
}

fn compound(name: &str, input: &FormInput, keys: &[&str]) -> Option<Value> {
    let mut object = Map::new();
    for key in keys {
        if let Some(value) = input.text(&format!("{name}.{key}")) {
            object.insert((*key).to_owned(), Value::String(value));
        }
    }
    (!object.is_empty()).then_some(Value::Object(object))
}

/// The field a file input's name belongs to (`children[0].photo` → the `photo` field), with the
/// fields it may be found in.
pub fn file_field_of<'a>(page: &'a DefinitionPage, name: &str) -> Option<&'a Field> {
    let (group, inner) = match name.split_once('[') {
        Some((group, rest)) => (Some(group), rest.split_once("].").map(|(_, inner)| inner)?),
        None => (None, name),
    };
    let fields = match group {
        Some(group) => &page.fields.iter().find(|f| f.id == group)?.fields,
        None => &page.fields,
    };
    fields
        .iter()
        .find(|field| field.id == inner && field.kind() == FieldType::File)
}

/// The answer shown on the confirm page.
pub fn display(field: &Field, value: &Value, lang: Lang) -> String {
    match field.kind() {
        FieldType::Select | FieldType::Radio => {
            let chosen = value.as_str().unwrap_or_default();
            field
                .options
                .iter()
                .find(|option| option.value == chosen)
                .map_or_else(|| chosen.to_owned(), |option| pick(&option.label, lang))
        }
        FieldType::MultiSelect => value
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|chosen| {
                        field
                            .options
                            .iter()
                            .find(|option| option.value == chosen)
                            .map_or_else(|| chosen.to_owned(), |option| pick(&option.label, lang))
                    })
                    .collect::<Vec<_>>()
                    .join(lang.text("list_separator"))
            })
            .unwrap_or_default(),
        FieldType::Boolean => match value.as_bool() {
            Some(true) => lang.text("yes").to_owned(),
            Some(false) => lang.text("no").to_owned(),
            None => String::new(),
        },
        FieldType::Consent => lang.text("consented").to_owned(),
        FieldType::Date => {
            let text = value.as_str().unwrap_or_default();
            match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                Ok(date) => format!("{text}（{}）", crate::forms::wareki::format(date)),
                Err(_) => text.to_owned(),
            }
        }
        FieldType::Address => {
            let part = |key: &str| {
                value
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let mut shown = format!("〒{} {}", part("postal_code"), part("address"));
            let building = part("building");
            if !building.is_empty() {
                shown.push(' ');
                shown.push_str(&building);
            }
            shown
        }
        FieldType::BankAccount => {
            let part = |key: &str| {
                value
                    .get(key)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            format!(
                "{} {} / {} {} {} {} / {}",
                lang.text("bank_code"),
                part("bank_code"),
                lang.text("branch_code"),
                part("branch_code"),
                lang.text(&format!("account_{}", part("account_type"))),
                part("account_number"),
                part("holder_kana"),
            )
        }
        FieldType::File => {
            let count = value.as_array().map_or(0, Vec::len);
            format!("{count}{}", lang.text("files_unit"))
        }
        FieldType::MyNumber => {
            let text = value.as_str().unwrap_or_default();
            if text.starts_with('*') {
                text.to_owned()
            } else {
                crate::submissions::sealing::mask(text)
            }
        }
        _ => text_value(Some(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(kind: FieldType) -> Field {
        Field {
            id: "x".to_owned(),
            field_type: Some(kind),
            ..Field::default()
        }
    }

    fn input(pairs: &[(&str, &str)]) -> FormInput {
        FormInput {
            pairs: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            files: Vec::new(),
        }
    }

    #[test]
    fn a_date_is_read_from_its_three_parts_in_full_width_too() {
        let sent = input(&[("x.year", "１９９０"), ("x.month", "4"), ("x.day", "1")]);
        assert_eq!(
            read_field(&field(FieldType::Date), "x", &sent, None, &HashMap::new()),
            Some(Value::String("1990-04-01".to_owned()))
        );
        let empty = input(&[("x.year", ""), ("x.month", ""), ("x.day", "")]);
        assert_eq!(
            read_field(&field(FieldType::Date), "x", &empty, None, &HashMap::new()),
            None
        );
    }

    #[test]
    fn a_full_my_number_is_never_drawn_back() {
        let lang = Lang::Ja;
        let definition_field = field(FieldType::MyNumber);
        let typed = Value::String("123456789018".to_owned());
        let drawn = draw(&definition_field, "x", "/x", Some(&typed), &[], lang);
        assert_eq!(drawn.value, "");
        let masked = Value::String("********9018".to_owned());
        let drawn = draw(&definition_field, "x", "/x", Some(&masked), &[], lang);
        assert_eq!(drawn.value, "********9018");
    }

    #[test]
    fn files_carried_back_stay_and_files_ticked_for_removal_go() {
        let saved = serde_json::json!(["a"]);
        let sent = input(&[("x.keep", "a"), ("x.keep", "b"), ("x.remove", "a")]);
        let uploaded = HashMap::from([("x".to_owned(), vec!["c".to_owned()])]);
        assert_eq!(
            read_field(&field(FieldType::File), "x", &sent, Some(&saved), &uploaded),
            Some(serde_json::json!(["b", "c"]))
        );
    }

    #[test]
    fn the_citys_address_fills_only_the_fields_that_ask_for_it_on_a_page_not_yet_answered() {
        let mut place = field(FieldType::Address);
        place.prefill = Some(Prefill::City);
        let mut postal = field(FieldType::PostalCode);
        postal.id = "p".to_owned();
        postal.prefill = Some(Prefill::City);
        let mut other = field(FieldType::Address);
        other.id = "o".to_owned();
        let page = DefinitionPage {
            id: "place".to_owned(),
            title: Localized::new("場所", "Place"),
            show_if: None,
            fields: vec![place, postal, other],
        };
        let city = CityAddress {
            postal_code: "922".to_owned(),
            address: "石川県加賀市".to_owned(),
        };
        let mut fresh = Map::new();
        prefill_city(&mut fresh, &page, &city);
        assert_eq!(
            Value::Object(fresh),
            serde_json::json!({
                "x": {"postal_code": "922", "address": "石川県加賀市"},
                "p": "922",
            })
        );
        // A page saved once is drawn as saved: an emptied address stays empty.
        let mut saved = Map::new();
        saved.insert("o".to_owned(), serde_json::json!({"address": "金沢市"}));
        prefill_city(&mut saved, &page, &city);
        assert_eq!(saved.len(), 1);
        // Nothing configured: nothing filled in.
        let mut unset = Map::new();
        prefill_city(&mut unset, &page, &CityAddress::default());
        assert!(unset.is_empty());
    }

    #[test]
    fn group_members_are_read_by_index() {
        let mut group = field(FieldType::Group);
        group.fields = vec![Field {
            id: "name".to_owned(),
            field_type: Some(FieldType::Text),
            ..Field::default()
        }];
        let sent = input(&[("x.count", "2"), ("x[0].name", "一郎"), ("x[1].name", "")]);
        assert_eq!(
            read_field(&group, "x", &sent, None, &HashMap::new()),
            Some(serde_json::json!([{"name": "一郎"}, {}]))
        );
    }
}
