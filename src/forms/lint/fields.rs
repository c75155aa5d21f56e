//! The rules on one field as written: keys, texts, limits, options, patterns.

use super::*;

pub(super) fn type_name(kind: FieldType) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A date limit exactly as the runtime reads it: `YYYY-MM-DD`, `today`, `today+N`, `today-N`.
/// Returns the offset from today, or the fixed date.
pub(super) enum DateLimit {
    Today(i64),
    Fixed(chrono::NaiveDate),
}

pub(super) fn parse_date_limit(text: &str) -> Option<DateLimit> {
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
pub(super) fn check_fields(
    fields: &[Field],
    base: &str,
    site: Site<'_>,
    collector: &mut Collector,
) {
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
pub(super) fn inapplicable_keys(field: &Field, kind: FieldType) -> Vec<&'static str> {
    use FieldType as T;
    let texty = matches!(kind, T::Text | T::Textarea | T::Kana);
    let numeric = matches!(kind, T::Integer | T::Decimal | T::Money | T::Date);
    let choices = matches!(kind, T::Select | T::Radio | T::MultiSelect);
    let counted = matches!(kind, T::MultiSelect | T::Group);
    let checks: [(&'static str, bool, bool); 14] = [
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
        (
            "prefill",
            field.prefill.is_some(),
            matches!(kind, T::Address | T::PostalCode),
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
