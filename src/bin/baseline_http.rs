//! The HTTP ceiling for the catalog benchmark (see `benches/run.sh`): a bare actix-web server whose
//! only handler answers GET /api/v1/procedures with the same JSON list the real service serves,
//! serialised once at startup from the same catalog with the same types. No middleware, no
//! state, no per-request work beyond writing bytes: what actix-web alone costs on this machine.

use std::path::PathBuf;

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use clap::Parser;
use madoguchi::forms::Catalog;
use madoguchi::forms::model::Definition;
use madoguchi::routes::catalog::{ProcedureSummary, Text};

// The service's allocator, so the ceiling differs from the service only in the handler.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(about = "A bare actix-web handler serving the catalog listing, for benchmarks")]
struct Cli {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long, default_value_t = 8081)]
    port: u16,
    /// HTTP worker threads; 0 = one per core, as `madoguchi serve` does by default.
    #[arg(long, default_value_t = 0)]
    workers: usize,
    #[arg(long, default_value = "forms")]
    forms: PathBuf,
}

/// The listing entry exactly as `routes::catalog::list_procedures` builds it without `lang`.
fn summary(definition: &Definition) -> ProcedureSummary {
    let fee_yen = definition.fee.as_ref().map_or(Some(0), |fee| {
        fee.fixed
            .or_else(|| fee.per_unit.as_ref().map(|unit| unit.amount))
    });
    ProcedureSummary {
        id: definition.id.clone(),
        title: Text::Both(definition.title.clone()),
        summary: definition.summary.clone().map(Text::Both),
        category: definition.category.clone(),
        division: definition.division.clone(),
        assurance: definition.assurance,
        processing_days: definition.processing_days,
        national: definition.national,
        fee_yen,
    }
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let catalog = Catalog::load(&cli.forms).map_err(|report| {
        anyhow::anyhow!(
            "the catalog in {} has mistakes:\n{report}",
            cli.forms.display()
        )
    })?;
    let list: Vec<ProcedureSummary> = catalog
        .procedures
        .values()
        .map(|procedure| summary(&procedure.definition))
        .collect();
    let body = web::Bytes::from(serde_json::to_vec(&list)?);
    eprintln!(
        "baseline_http: {} procedures, {} bytes, on {}:{}",
        list.len(),
        body.len(),
        cli.host,
        cli.port
    );
    let mut server = HttpServer::new(move || {
        let body = body.clone();
        App::new().route(
            "/api/v1/procedures",
            web::get().to(move || {
                let body = body.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(body)
                }
            }),
        )
    });
    if cli.workers > 0 {
        server = server.workers(cli.workers);
    }
    server
        .bind((cli.host.as_str(), cli.port))
        .with_context(|| format!("binding {}:{}", cli.host, cli.port))?
        .run()
        .await
        .context("the server stopped with an error")
}
