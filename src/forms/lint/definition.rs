//! One definition: its top-level keys, pages, fees, routing, and examples.

use super::*;

/// Checks one definition as written and with blocks resolved. Returns the resolved definition
/// and whether it could be checked as a whole (no broken block included).
pub(super) fn check_definition(
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
    check_fee(&definition, &top, complete, site, collector);
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
    resolve_postage(&mut definition, organisation, site, collector);

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

pub(super) fn known_queue(organisation: &Organisation, queue: &str) -> bool {
    organisation.divisions.contains_key(queue) || organisation.queues.contains_key(queue)
}

/// The same fields with includes replaced, recursively, as owned values.
pub(super) fn resolve(fields: &[Field], blocks: &Blocks, depth: usize) -> Vec<Field> {
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

pub(super) fn check_examples(
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
    let mut bases = Vec::new();
    for (index, example) in definition.examples.iter().enumerate() {
        let pointer = format!("/examples/{index}");
        let name = &example.name;
        // What a resident pays is asserted line by line, not only the fee's total.
        if definition.fee.is_some() && example.valid && example.breakdown.is_none() {
            collector.at(
                site,
                &pointer,
                format!(
                    "example `{name}`: the form has a `fee`, so a valid example declares its `breakdown` (yen by line id and `total`, e.g. {{fee: 300, standard_letter: 110, total: 410}})"
                ),
            );
        }
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
        if (example.fee.is_some() || example.breakdown.is_some()) && definition.fee.is_none() {
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
                // Without catalog.yaml postage has no price; its own problem is reported there.
                if let Some(expected) = example
                    .breakdown
                    .as_ref()
                    .filter(|_| organisation.is_some())
                {
                    let actual = accepted
                        .breakdown
                        .as_ref()
                        .map(|breakdown| breakdown.by_id())
                        .unwrap_or_default();
                    if &actual != expected {
                        let show = |map: &BTreeMap<String, i64>| {
                            map.iter()
                                .map(|(id, yen)| format!("{id}: {yen}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        collector.at(
                            site,
                            &format!("{pointer}/breakdown"),
                            format!(
                                "example `{name}`: the breakdown is {{{}}}, expected {{{}}}",
                                show(&actual),
                                show(expected)
                            ),
                        );
                    }
                }
                bases.push(accepted.data.clone());
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
    check_fee_probes(definition, &bases, site, collector);
}
