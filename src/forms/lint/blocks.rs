//! Blocks: loading them, include cycles, and placing a form's fields with blocks resolved.

use super::*;

/// Every `include:` in a list of fields, groups included, with its pointer.
pub(super) fn includes(fields: &[Field], base: &str, out: &mut Vec<(String, String)>) {
    for (index, field) in fields.iter().enumerate() {
        let pointer = format!("{base}/{index}");
        if let Some(name) = &field.include {
            out.push((format!("{pointer}/include"), name.clone()));
        }
        includes(&field.fields, &format!("{pointer}/fields"), out);
    }
}

pub(super) fn block_list(blocks: &Blocks) -> String {
    blocks
        .keys()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads every block, reports its own mistakes at the block, and marks the blocks definitions
/// cannot use: broken ones, and those that include an unknown, broken or circular block.
pub(super) fn load_blocks(files: &[PathBuf], collector: &mut Collector) -> Blocks {
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
pub(super) fn cycles(
    edges: &BTreeMap<String, Vec<(String, String)>>,
) -> Vec<Vec<(String, String)>> {
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

pub(super) fn visit(
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

pub(super) fn place<'a>(
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
pub(super) fn check_ids(placed: &[Placed<'_>], site: Site<'_>, collector: &mut Collector) {
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

pub(super) fn scope_of<'a>(placed: &[Placed<'a>], outer: &Scope<'a>) -> Scope<'a> {
    let mut scope = outer.clone();
    for item in placed {
        scope.insert(item.field.id.as_str(), item.field);
    }
    scope
}

pub(super) fn check_field_conditions(
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
