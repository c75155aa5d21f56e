//! How long loading and checking the whole catalog takes (the server does it at every start),
//! side by side with a baseline: only reading and parsing the same YAML files.
//!
//! Run: `cargo bench --bench catalog_load`. Prints the median of 15 runs of each and the ratio.

use std::path::Path;
use std::time::{Duration, Instant};

use madoguchi::forms::Catalog;
use madoguchi::forms::lint::definition_files;
use madoguchi::forms::source::SourceDocument;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let dir = Path::new("forms");
    let runs = 15;
    let mut full = Vec::new();
    let mut parse_only = Vec::new();
    let mut procedures = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let files = definition_files(dir);
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            std::hint::black_box(SourceDocument::parse(&text).ok());
        }
        parse_only.push(started.elapsed());

        let started = Instant::now();
        match Catalog::load(dir) {
            Ok(catalog) => procedures = std::hint::black_box(catalog).procedures.len(),
            Err(report) => panic!("the catalog has problems:\n{report}"),
        }
        full.push(started.elapsed());
    }
    let full = median(full);
    let parse_only = median(parse_only);
    println!("catalog: {procedures} procedures, median of {runs} runs");
    println!("  load + check + examples + JSON Schema export: {full:?}");
    println!("  baseline, read + parse YAML only:             {parse_only:?}");
    println!(
        "  ratio (full / parse only):                    {:.1}",
        full.as_secs_f64() / parse_only.as_secs_f64()
    );
}
