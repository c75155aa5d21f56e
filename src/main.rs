use std::process::ExitCode;

use clap::Parser;

// mimalloc: the system allocator took 12.5 % of the server's CPU per submission at saturation
// (issue #21); the README ("Dependencies, and why") and docs/BENCHMARKS.md give the measured
// difference.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = madoguchi::cli::Cli::parse();
    match madoguchi::cli::run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("madoguchi: {error:#}");
            ExitCode::FAILURE
        }
    }
}
