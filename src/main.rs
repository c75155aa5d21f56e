use std::process::ExitCode;

use clap::Parser;

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
