//! The form definition language: the catalog's own examples, the checker, JSON Schema export.

use std::path::{Path, PathBuf};
use std::process::Command;

use madoguchi::forms::json_schema::{SERVER_ONLY_CODES, UNTRANSLATED};
use madoguchi::forms::lint::{self, city_today};
use madoguchi::forms::source::SourceDocument;
use madoguchi::forms::validate::{CheckOptions, validate};
use serde_json::Value;

use crate::helpers::{CATALOG, TestApp};

#[test]
fn every_definition_has_examples_that_behave_as_declared() {
    let loaded =
        lint::check_catalog(Path::new("forms"), &[]).unwrap_or_else(|report| panic!("{report}"));
    let mut ran = 0;
    for (definition, path) in &loaded.definitions {
        assert!(
            definition.examples.iter().any(|e| e.valid),
            "{}: no valid example",
            path.display()
        );
        assert!(
            definition.examples.iter().any(|e| !e.errors.is_empty()),
            "{}: no invalid example",
            path.display()
        );
        for example in &definition.examples {
            let today = example.as_of.unwrap_or_else(city_today);
            let result = validate(definition, &example.data, CheckOptions::complete(today));
            if example.valid {
                let accepted = result.unwrap_or_else(|errors| {
                    panic!("{} / {}: {errors:?}", definition.id, example.name)
                });
                if let Some(fee) = example.fee {
                    assert_eq!(accepted.fee, fee, "{} / {}", definition.id, example.name);
                }
            } else {
                let mut produced: Vec<(String, String)> = result
                    .err()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| (e.path, e.code))
                    .collect();
                let mut expected: Vec<(String, String)> = example
                    .errors
                    .iter()
                    .map(|e| (e.path.clone(), e.code.clone()))
                    .collect();
                produced.sort();
                expected.sort();
                assert_eq!(produced, expected, "{} / {}", definition.id, example.name);
            }
            ran += 1;
        }
    }
    assert!(ran >= 2 * loaded.definitions.len());
}

#[test]
fn every_definition_file_matches_the_editor_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string("forms/form-definition.schema.json").expect("schema file"),
    )
    .expect("schema is JSON");
    let validator = jsonschema::draft202012::new(&schema).expect("the editor schema compiles");
    for path in lint::definition_files(Path::new("forms")) {
        let document =
            SourceDocument::parse(&std::fs::read_to_string(&path).expect("read")).expect("parse");
        let errors: Vec<String> = validator
            .iter_errors(&document.value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

#[test]
fn exported_schemas_are_valid_2020_12_and_agree_with_the_validator() {
    let meta = jsonschema::draft202012::meta::validator();
    for procedure in CATALOG.procedures.values() {
        let definition = &procedure.definition;
        let meta_errors: Vec<String> = meta
            .iter_errors(&procedure.schema)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            meta_errors.is_empty(),
            "{}: not a valid 2020-12 schema: {meta_errors:?}",
            definition.id
        );
        let validator = jsonschema::draft202012::new(&procedure.schema)
            .unwrap_or_else(|error| panic!("{}: {error}", definition.id));
        for example in &definition.examples {
            let today = example.as_of.unwrap_or_else(city_today);
            let server = validate(definition, &example.data, CheckOptions::complete(today));
            let schema_accepts = validator.is_valid(&example.data);
            match server {
                Ok(_) => assert!(
                    schema_accepts,
                    "{} / {}: the server accepts but the schema rejects: {:?}",
                    definition.id,
                    example.name,
                    validator
                        .iter_errors(&example.data)
                        .map(|e| format!("{e} at {}", e.instance_path()))
                        .collect::<Vec<_>>()
                ),
                Err(errors) if schema_accepts => {
                    // Only checks JSON Schema cannot express may be left to the server.
                    for error in errors {
                        let top = error.path.split('/').nth(1).unwrap_or_default();
                        let untranslated =
                            procedure.schema["properties"][top][UNTRANSLATED] == Value::Bool(true);
                        assert!(
                            SERVER_ONLY_CODES.contains(&error.code.as_str()) || untranslated,
                            "{} / {}: the server rejects {} {} but the schema accepts",
                            definition.id,
                            example.name,
                            error.path,
                            error.code
                        );
                    }
                }
                Err(_) => {}
            }
        }
    }
}

/// A scratch catalog: the real organisation and blocks, plus one definition we break.
fn scratch_catalog(definition: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy("forms/catalog.yaml", dir.path().join("catalog.yaml")).expect("copy catalog");
    std::fs::create_dir_all(dir.path().join("_blocks")).expect("blocks dir");
    for entry in std::fs::read_dir("forms/_blocks")
        .expect("blocks")
        .filter_map(Result::ok)
    {
        std::fs::copy(
            entry.path(),
            dir.path().join("_blocks").join(entry.file_name()),
        )
        .expect("copy block");
    }
    std::fs::create_dir_all(dir.path().join("juminhyo")).expect("category dir");
    let file = dir.path().join("juminhyo/juminhyo-copy-request.yaml");
    std::fs::write(&file, definition).expect("write definition");
    (dir, file)
}

fn original() -> String {
    std::fs::read_to_string("forms/juminhyo/juminhyo-copy-request.yaml").expect("read")
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|line| line.contains(needle))
        .map(|index| index + 1)
        .expect("needle present")
}

/// Runs the real binary: `madoguchi forms check --dir DIR FILE`.
fn forms_check(dir: &Path, file: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
        .args(["forms", "check", "--dir"])
        .arg(dir)
        .arg(file)
        .output()
        .expect("run madoguchi");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[test]
fn forms_check_passes_on_the_real_definition() {
    let (dir, file) = scratch_catalog(&original());
    let (ok, output) = forms_check(dir.path(), &file);
    assert!(ok, "{output}");
}

#[test]
fn a_typoed_key_is_reported_with_file_and_line() {
    let broken = original().replacen("processing_days: 3", "procesing_days: 3", 1);
    let (dir, file) = scratch_catalog(&broken);
    let (ok, output) = forms_check(dir.path(), &file);
    assert!(!ok);
    let line = line_of(&broken, "procesing_days");
    assert!(
        output.contains(&format!(
            "{}:{line}: unknown key `procesing_days`",
            file.display()
        )),
        "{output}"
    );
}

#[test]
fn a_condition_on_a_missing_field_is_reported_with_file_and_line() {
    let broken = original().replacen(
        r#"show_if: {"==": [{"var": "purpose"}, "other"]}"#,
        r#"show_if: {"==": [{"var": "purpose_typo"}, "other"]}"#,
        1,
    );
    let (dir, file) = scratch_catalog(&broken);
    let (ok, output) = forms_check(dir.path(), &file);
    assert!(!ok);
    let line = line_of(&broken, "purpose_typo");
    assert!(
        output.contains(&format!(
            "{}:{line}: field `purpose_other`: `show_if` names an unknown field `purpose_typo`",
            file.display()
        )),
        "{output}"
    );
}

#[test]
fn a_missing_english_title_is_reported_with_file_and_line() {
    let broken = original().replacen(
        "  en: Request for a certified copy of the resident record (juminhyo)\n",
        "",
        1,
    );
    let (dir, file) = scratch_catalog(&broken);
    let (ok, output) = forms_check(dir.path(), &file);
    assert!(!ok);
    let line = line_of(&broken, "title:");
    assert!(
        output.contains(&format!("{}:{line}: missing key `en`", file.display())),
        "{output}"
    );
}

#[test]
fn an_example_that_misbehaves_is_reported() {
    let broken = original().replacen("    fee: 600\n", "    fee: 900\n", 1);
    let (dir, file) = scratch_catalog(&broken);
    let (ok, output) = forms_check(dir.path(), &file);
    assert!(!ok);
    assert!(output.contains("fee is 600 yen, expected 900"), "{output}");
}

#[test]
fn the_server_refuses_to_start_on_an_invalid_catalog() {
    let broken = original().replacen("division: madoguchi", "division: no-such-division", 1);
    let (dir, _) = scratch_catalog(&broken);
    let error = madoguchi::forms::Catalog::load(dir.path())
        .err()
        .map(|report| report.to_string())
        .unwrap_or_default();
    assert!(
        error.contains("unknown division `no-such-division`"),
        "{error}"
    );
}

#[actix_web::test]
async fn the_catalog_lists_at_least_170_procedures_with_all_26_national_ones() {
    let app = TestApp::spawn().await;
    let (status, list) = app.get("/api/v1/procedures").await;
    assert_eq!(status, 200);
    let list = list.as_array().cloned().unwrap_or_default();
    assert!(list.len() >= 170, "{} procedures", list.len());
    let national: Vec<&str> = list
        .iter()
        .filter(|p| p["national"] == true)
        .filter_map(|p| p["id"].as_str())
        .collect();
    let expected = [
        "jidou-teate-nintei-seikyu",
        "jidou-teate-gaku-kaitei",
        "jidou-teate-shimei-jusho-henko",
        "jidou-teate-shoumetsu",
        "jidou-teate-mibarai",
        "jidou-teate-kifu",
        "jidou-teate-kifu-henko",
        "jidou-teate-kyushokuhi-choshu",
        "jidou-teate-kyushokuhi-henko",
        "jidou-teate-genkyo",
        "hoiku-kyufu-nintei",
        "hoiku-riyo-moshikomi",
        "hoiku-genkyo",
        "jidou-fuyou-teate-genkyo-jizen",
        "ninshin-todoke",
        "youkaigo-nintei",
        "youkaigo-koushin-nintei",
        "youkaigo-kubun-henko",
        "kyotaku-service-keikaku-irai",
        "kaigo-futan-wariai-saikofu",
        "kaigo-hihokenshasho-saikofu",
        "kogaku-kaigo-service-hi",
        "kaigo-futan-gendogaku-nintei",
        "fukushi-yougu-kounyuhi",
        "jutaku-kaishuhi",
        "jusho-iten-youkaigo-nintei",
    ];
    for id in expected {
        assert!(national.contains(&id), "{id} is listed as national");
    }
    assert_eq!(national.len(), 26);
}

#[test]
fn the_catalog_index_in_forms_readme_is_current() {
    let generated = madoguchi::cli::export_index(Path::new("forms")).expect("export");
    let committed = std::fs::read_to_string("forms/README.md").unwrap_or_default();
    assert!(
        committed == generated,
        "forms/README.md is stale: run `cargo run -- forms export > forms/README.md`"
    );
}
