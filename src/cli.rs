//! The command line: `serve`, `worker`, `migrate`, `forms check`, `forms export`, `staff create`,
//! `statistics refresh`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::forms::lint;
use crate::startup::Application;

#[derive(Parser)]
#[command(name = "madoguchi", version, about = "Municipal e-application backend")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP API.
    Serve,
    /// Send queued email and settle open payments (also runs inside `serve` unless
    /// email.worker_in_serve = false).
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Work with the procedure catalog.
    Forms {
        #[command(subcommand)]
        command: FormsCommand,
    },
    /// Manage staff accounts (how a city creates its first admin).
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// The usage statistics' rollups.
    Statistics {
        #[command(subcommand)]
        command: StatisticsCommand,
    },
}

#[derive(Subcommand)]
pub enum StatisticsCommand {
    /// Fold the application events past the watermark into the rollups now (what the worker
    /// does every minute; safe beside a running worker) and print what was done as JSON.
    Refresh,
}

#[derive(Subcommand)]
pub enum StaffCommand {
    /// Create a staff account. The password is read from MADOGUCHI_STAFF_PASSWORD or, when that
    /// is unset, from the first line of standard input — never from the command line, where
    /// other users and shell history could see it. With --no-password the account signs in only
    /// through the city's OpenID Provider.
    Create {
        #[arg(long)]
        login: String,
        /// Display name, shown to residents in their access log.
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// A division id from forms/catalog.yaml.
        #[arg(long)]
        division: String,
        /// clerk, supervisor or admin.
        #[arg(long)]
        role: String,
        /// No password: the account signs in only through the city's OpenID Provider
        /// (`staff.sign_in` has "oidc"; the provider's login claim must equal --login).
        #[arg(long)]
        no_password: bool,
    },
}

#[derive(Subcommand)]
pub enum FormsCommand {
    /// Check definitions; prints `file:line: message` per mistake and exits 1 if there is any.
    Check {
        /// Catalog folders, or definition, block or catalog.yaml files to check (default: the
        /// whole catalog). A file is checked together with the rest of its catalog.
        paths: Vec<PathBuf>,
        /// The catalog directory (default: `forms.dir` from the configuration).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Print a human-readable index of the catalog (Markdown), grouped by category.
    Export {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Statistics {
            command: StatisticsCommand::Refresh,
        } => {
            let settings = Settings::from_env()?;
            crate::telemetry::init_tracing(&settings.log);
            let catalog = crate::forms::Catalog::load(&settings.forms.dir)
                .map_err(|report| anyhow::anyhow!("the catalog has problems:\n{report}"))?;
            let resolved = crate::db::cluster::resolve(&settings.database, "madoguchi").await?;
            let pool = crate::db::build_pool(&resolved.url, &settings.database)?;
            let statistics =
                crate::worker::Statistics::from_settings(&settings, std::sync::Arc::new(catalog));
            let started = std::time::Instant::now();
            let refreshed = crate::worker::refresh_statistics(&pool, &statistics).await?;
            println!(
                "{{\"events\":{},\"batches\":{},\"busy\":{},\"ms\":{:.3}}}",
                refreshed.events,
                refreshed.batches,
                refreshed.busy,
                started.elapsed().as_secs_f64() * 1000.0
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve => {
            let settings = Settings::from_env()?;
            crate::telemetry::init_tracing(&settings.log);
            let application = Application::build(settings).await?;
            application.run_until_stopped().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker => {
            let settings = Settings::from_env()?;
            crate::telemetry::init_tracing(&settings.log);
            let resolved = crate::db::cluster::resolve(&settings.database, "madoguchi").await?;
            let pool = crate::db::build_pool(&resolved.url, &settings.database)?;
            let mailer = crate::notify::mailer::Mailer::from_settings(&settings.email)?;
            let catalog = crate::forms::Catalog::load(&settings.forms.dir).map_err(|report| {
                anyhow::anyhow!("the procedure catalog has mistakes:\n{report}")
            })?;
            let digests = crate::worker::Digests {
                catalog: std::sync::Arc::new(catalog),
                public_url: settings.server.public_url.clone(),
            };
            if let Some(provider) = crate::payments::provider_from(&settings.payments) {
                tracing::info!("payment reconciler started");
                tokio::spawn(
                    crate::payments::reconciler::Worker {
                        pool: pool.clone(),
                        catalog: digests.catalog.clone(),
                        sealer: crate::submissions::sealing::Sealer::from_config(
                            &settings.submissions.sealing_keys,
                        )?,
                        calendar: crate::calendar::BusinessCalendar::new(
                            settings.calendar.holidays.iter().copied(),
                        ),
                        public_url: settings.server.public_url.clone(),
                        provider,
                        settings: settings.payments.clone(),
                    }
                    .run(),
                );
            }
            let statistics =
                crate::worker::Statistics::from_settings(&settings, digests.catalog.clone());
            tracing::info!("email worker started");
            tokio::select! {
                () = crate::worker::run(
                    pool,
                    mailer,
                    settings.email.clone(),
                    digests,
                    crate::worker::Attachments::from_settings(&settings)?,
                    statistics,
                ) => {}
                _ = tokio::signal::ctrl_c() => tracing::info!("email worker stopping"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let settings = Settings::from_env()?;
            crate::telemetry::init_tracing(&settings.log);
            let resolved = crate::db::cluster::resolve(&settings.database, "madoguchi").await?;
            let applied = crate::db::run_migrations(&resolved.url).await?;
            println!("applied {} migration(s)", applied.len());
            let catalog = crate::forms::Catalog::load(&settings.forms.dir).map_err(|report| {
                anyhow::anyhow!("the procedure catalog has mistakes:\n{report}")
            })?;
            let sealer = crate::submissions::sealing::Sealer::from_config(
                &settings.submissions.sealing_keys,
            )?;
            let pool = crate::db::build_pool(&resolved.url, &settings.database)?;
            crate::startup::run_data_migrations(&pool, &sealer, &catalog).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Forms { command } => Ok(forms_command(command)),
        Command::Staff { command } => staff_command(command).await,
    }
}

async fn staff_command(command: StaffCommand) -> anyhow::Result<ExitCode> {
    use diesel_async::AsyncConnection;

    use crate::identity::staff::{self, Membership, Role};
    match command {
        StaffCommand::Create {
            login,
            name,
            email,
            division,
            role,
            no_password,
        } => {
            let settings = Settings::from_env()?;
            crate::telemetry::init_tracing(&settings.log);
            let role = Role::parse(&role)
                .ok_or_else(|| anyhow::anyhow!("--role must be clerk, supervisor or admin"))?;
            let catalog = crate::forms::Catalog::load(&settings.forms.dir)
                .map_err(|report| anyhow::anyhow!("the catalog has problems:\n{report}"))?;
            anyhow::ensure!(
                catalog.organisation.divisions.contains_key(&division),
                "there is no division `{division}` in forms/catalog.yaml"
            );
            let password = if no_password {
                anyhow::ensure!(
                    settings.staff.allows("oidc"),
                    "--no-password needs staff.sign_in to include \"oidc\": the account could never sign in"
                );
                None
            } else {
                Some(read_staff_password()?)
            };
            let resolved = crate::db::cluster::resolve(&settings.database, "madoguchi").await?;
            let mut connection = diesel_async::AsyncPgConnection::establish(&resolved.url)
                .await
                .context("connecting to the database")?;
            let id = staff::create(
                &mut connection,
                &login,
                &name,
                email.as_deref(),
                password.as_deref(),
                &[Membership { division, role }],
                None,
            )
            .await
            .map_err(|error| anyhow::anyhow!("creating the account: {error}"))?;
            println!("created staff account {login} ({id})");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The new account's password: MADOGUCHI_STAFF_PASSWORD, else the first line of stdin.
fn read_staff_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("MADOGUCHI_STAFF_PASSWORD") {
        return Ok(password);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(
        !password.is_empty(),
        "no password: set MADOGUCHI_STAFF_PASSWORD or pipe it on standard input"
    );
    Ok(password)
}

fn catalog_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.or_else(|| Settings::from_env().ok().map(|settings| settings.forms.dir))
        .unwrap_or_else(|| PathBuf::from("forms"))
}

fn forms_command(command: FormsCommand) -> ExitCode {
    match command {
        FormsCommand::Check { paths, dir } => check_forms(&paths, &catalog_dir(dir)),
        FormsCommand::Export { dir } => match export_index(&catalog_dir(dir)) {
            Ok(markdown) => {
                print!("{markdown}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `forms check`: each folder argument is a catalog; each file is checked with the catalog it
/// lives in (the nearest folder above it with a `catalog.yaml`, else `default_dir`). Exit 2 for
/// a path that does not exist, 1 for mistakes.
fn check_forms(paths: &[PathBuf], default_dir: &std::path::Path) -> ExitCode {
    let started = std::time::Instant::now();
    let mut catalogs: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    for path in paths {
        if !path.exists() {
            eprintln!("{}: no such file or folder", path.display());
            return ExitCode::from(2);
        }
        if path.is_dir() {
            if !path.join("catalog.yaml").is_file() {
                eprintln!(
                    "{}: not a catalog folder (it has no catalog.yaml)",
                    path.display()
                );
                return ExitCode::from(2);
            }
            catalogs.push((path.clone(), Vec::new()));
            continue;
        }
        let root = lint::catalog_root(path).unwrap_or_else(|| default_dir.to_owned());
        let same =
            |dir: &PathBuf| std::fs::canonicalize(dir).ok() == std::fs::canonicalize(&root).ok();
        match catalogs
            .iter_mut()
            .find(|(dir, files)| !files.is_empty() && same(dir))
        {
            Some((_, files)) => files.push(path.clone()),
            None => catalogs.push((root, vec![path.clone()])),
        }
    }
    if catalogs.is_empty() {
        catalogs.push((default_dir.to_owned(), Vec::new()));
    }
    let mut problems = 0;
    let mut checked = 0;
    for (dir, files) in &catalogs {
        match lint::check_catalog(dir, files) {
            Ok(catalog) => {
                checked += if files.is_empty() {
                    catalog.definitions.len()
                } else {
                    files.len()
                };
            }
            Err(report) => {
                print!("{report}");
                problems += report.problems.len();
            }
        }
    }
    if problems > 0 {
        eprintln!("{problems} problem(s)");
        return ExitCode::FAILURE;
    }
    println!(
        "{checked} file(s) checked in {} ms: no problems",
        started.elapsed().as_millis()
    );
    ExitCode::SUCCESS
}

/// The catalog index as Markdown: one table per category with assurance, fee and division.
pub fn export_index(dir: &std::path::Path) -> anyhow::Result<String> {
    use std::fmt::Write;
    let catalog = crate::forms::Catalog::load(dir)
        .map_err(|report| anyhow::anyhow!("the catalog has problems:\n{report}"))
        .context("loading the catalog")?;
    let mut out = String::new();
    writeln!(out, "# Procedure catalog\n")?;
    writeln!(
        out,
        "Generated by `madoguchi forms export` from the definitions in this folder; do not edit by hand.\n"
    )?;
    writeln!(
        out,
        "{} procedures. ★ = one of the 26 child-rearing and care procedures every municipality offers online.\n",
        catalog.procedures.len()
    )?;
    for (category, name) in &catalog.organisation.categories {
        let procedures: Vec<_> = catalog
            .procedures
            .values()
            .filter(|p| &p.definition.category == category)
            .collect();
        if procedures.is_empty() {
            continue;
        }
        writeln!(out, "## {} / {} (`{category}`)\n", name.ja, name.en)?;
        writeln!(
            out,
            "| procedure | 手続 | assurance | fee (yen) | days | division |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for procedure in procedures {
            let d = &procedure.definition;
            let fee = match &d.fee {
                None => "0".to_owned(),
                Some(fee) => fee
                    .fixed
                    .map(|yen| yen.to_string())
                    .or_else(|| {
                        fee.per_unit
                            .as_ref()
                            .map(|u| format!("{} / {}", u.amount, u.quantity))
                    })
                    .unwrap_or_else(|| "computed".to_owned()),
            };
            let division = catalog
                .organisation
                .divisions
                .get(&d.division)
                .map_or(d.division.as_str(), |division| division.name.ja.as_str());
            writeln!(
                out,
                "| {}[`{}`]({}/{}.yaml) {} | {} | {} | {} | {} | {} |",
                if d.national { "★ " } else { "" },
                d.id,
                d.category,
                d.id,
                d.title.en,
                d.title.ja,
                d.assurance.as_str(),
                fee,
                d.processing_days,
                division
            )?;
        }
        writeln!(out)?;
    }
    Ok(out)
}
