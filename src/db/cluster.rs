//! Finding a PostgreSQL server when none is configured.
//!
//! Order (DESIGN.md): `DATABASE_URL`; the configured `database.url`; a local server on
//! 127.0.0.1:5432 or the default socket as user `postgres`; a private cluster under
//! `database.embedded_dir`, made and started with the installed `initdb`/`pg_ctl` (as an
//! unprivileged user when we run as root, since PostgreSQL refuses to run as root). If none of that
//! works we stop with one sentence on how to get PostgreSQL.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use super::DatabaseSettings;

/// The local servers tried, as URLs and as said in the log.
const LOCAL_CANDIDATES: [(&str, &str); 2] = [
    ("postgres://postgres@127.0.0.1:5432", "127.0.0.1:5432"),
    (
        "postgres://postgres@%2Fvar%2Frun%2Fpostgresql:5432",
        "/var/run/postgresql",
    ),
];

pub const HOW_TO_GET_POSTGRES: &str = "No PostgreSQL found: set DATABASE_URL, start one with \
`docker compose up -d db`, or install your distribution's package (e.g. `apt-get install postgresql`).";

/// Where the service's data lives, and the private cluster to stop on exit, if we started one.
pub struct ResolvedDatabase {
    /// URL of the service's own database.
    pub url: String,
    /// URL of the server's maintenance database, for creating and dropping databases.
    pub admin_url: String,
    pub cluster: Option<PrivateCluster>,
}

/// Resolves the server and makes sure the database named `database_name` exists on it.
pub async fn resolve(
    settings: &DatabaseSettings,
    database_name: &str,
) -> anyhow::Result<ResolvedDatabase> {
    let explicit = std::env::var("DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .or_else(|| Some(settings.url.clone()).filter(|url| !url.is_empty()));
    if let Some(url) = explicit {
        let source = if std::env::var("DATABASE_URL").is_ok_and(|url| !url.is_empty()) {
            "DATABASE_URL"
        } else {
            "database.url"
        };
        tracing::info!(source, "using the PostgreSQL server configured in {source}");
        let admin_url = super::with_database(&url, "postgres");
        return Ok(ResolvedDatabase {
            url,
            admin_url,
            cluster: None,
        });
    }

    let mut skipped = Vec::new();
    for (server, label) in LOCAL_CANDIDATES {
        let admin_url = format!("{server}/postgres");
        match super::connect_error(&admin_url).await {
            None => {
                super::create_database_if_missing(&admin_url, database_name).await?;
                tracing::info!(
                    server = label,
                    "using the local PostgreSQL server on {label} as user postgres{}",
                    skipped_note(&skipped)
                );
                return Ok(ResolvedDatabase {
                    url: format!("{server}/{database_name}"),
                    admin_url,
                    cluster: None,
                });
            }
            Some(error) => skipped.push(Skipped::from_error(label, &error)),
        }
    }

    if settings.embedded_dir.is_empty() {
        bail!("{HOW_TO_GET_POSTGRES}{}", skipped_note(&skipped));
    }
    let note = skipped_note(&skipped);
    // A server that is there but would not let us in is worth a warning: the user probably meant
    // to use it (e.g. `docker compose up -d db`, which needs its password in DATABASE_URL).
    if skipped.iter().any(|skip| skip.server_present) {
        tracing::warn!(
            "starting a private PostgreSQL cluster under {}{note}",
            settings.embedded_dir
        );
    } else {
        tracing::info!(
            "starting a private PostgreSQL cluster under {}{note}",
            settings.embedded_dir
        );
    }
    let cluster = PrivateCluster::start(Path::new(&settings.embedded_dir))
        .await
        .map_err(|error| anyhow::anyhow!("{HOW_TO_GET_POSTGRES}{note} ({error:#})"))?;
    let admin_url = cluster.url("postgres");
    super::create_database_if_missing(&admin_url, database_name).await?;
    Ok(ResolvedDatabase {
        url: cluster.url(database_name),
        admin_url,
        cluster: Some(cluster),
    })
}

/// A local server that was tried and not used, and why, in one phrase for the log.
#[derive(Debug, PartialEq, Eq)]
struct Skipped {
    reason: String,
    /// Something answered (it refused us), as opposed to nothing listening.
    server_present: bool,
}

impl Skipped {
    /// Reads the driver's error into what the user should do. Through diesel-async a server's
    /// refusal keeps its message, but the driver's own failures keep only their kind: "error
    /// connecting to server" (nothing listens), "invalid configuration" (the server asked for a
    /// password and the URL has none), "authentication error" (SCRAM failed).
    fn from_error(server: &str, error: &str) -> Self {
        let present = |reason: String| Self {
            reason,
            server_present: true,
        };
        if error.contains("password authentication failed")
            || error.contains("authentication error")
        {
            present(format!("{server} refused the password; set DATABASE_URL"))
        } else if error.contains("password missing") || error.contains("invalid configuration") {
            present(format!(
                "{server} asks for a password; set DATABASE_URL (e.g. postgres://postgres:PASSWORD@{server}/madoguchi)"
            ))
        } else if error.contains("pg_hba.conf") {
            present(format!(
                "{server} does not let user postgres in from here (pg_hba.conf); set DATABASE_URL"
            ))
        } else if error.contains("role \"postgres\" does not exist") {
            present(format!("{server} has no user postgres; set DATABASE_URL"))
        } else if error.contains("error connecting to server")
            || error.contains("Connection refused")
            || error.contains("No such file or directory")
        {
            Self {
                reason: format!("no server on {server}"),
                server_present: false,
            }
        } else if error.contains("timed out") {
            present(format!("{server} did not answer within 3 s"))
        } else {
            present(format!("{server} could not be used ({error})"))
        }
    }
}

/// ": reason; reason" after the log line's verb, or nothing.
fn skipped_note(skipped: &[Skipped]) -> String {
    if skipped.is_empty() {
        return String::new();
    }
    let reasons: Vec<&str> = skipped.iter().map(|skip| skip.reason.as_str()).collect();
    format!(" ({})", reasons.join("; "))
}

/// A PostgreSQL cluster of our own, started with `pg_ctl` and stopped when dropped.
pub struct PrivateCluster {
    data_dir: PathBuf,
    port: u16,
    run_as: Option<String>,
    pg_ctl: PathBuf,
    options: String,
    log: PathBuf,
}

impl PrivateCluster {
    pub async fn start(dir: &Path) -> anyhow::Result<Self> {
        let bin_dir = find_postgres_binaries()?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let data_dir = dir.join("data");
        let run_as = unprivileged_user_if_root()?;
        if let Some(user) = &run_as {
            run(Command::new("chown").args(["-R", user]).arg(&dir))?;
        }
        if !data_dir.join("PG_VERSION").exists() {
            tracing::info!(dir = %data_dir.display(), "initialising a private PostgreSQL cluster");
            run(as_user(&run_as, &bin_dir.join("initdb"))
                .args([
                    "--auth=trust",
                    "--username=postgres",
                    "--encoding=UTF8",
                    "--no-sync",
                ])
                .arg("-D")
                .arg(&data_dir))?;
        }
        let port = free_port()?;
        let cluster = Self {
            options: format!(
                "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={}",
                dir.display()
            ),
            log: dir.join("postgres.log"),
            data_dir,
            port,
            run_as,
            pg_ctl: bin_dir.join("pg_ctl"),
        };
        cluster.start_again()?;
        tracing::info!(port, "private PostgreSQL cluster started");
        Ok(cluster)
    }

    /// Starts the (stopped) cluster on the same port and data directory.
    pub fn start_again(&self) -> anyhow::Result<()> {
        run(as_user(&self.run_as, &self.pg_ctl)
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-o", &self.options, "-l"])
            .arg(&self.log)
            .args(["-w", "start"]))
    }

    /// Stops the cluster at once, as a crash or an outage would (tests of recovery use this).
    pub fn stop_now(&self) -> anyhow::Result<()> {
        run(as_user(&self.run_as, &self.pg_ctl)
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "immediate", "-w", "stop"]))
    }

    /// Sends `signal` ("STOP", "CONT") to the postmaster and every process it started, as a
    /// hung host would freeze them all (tests of a server that stops answering use this).
    pub fn signal_all(&self, signal: &str) -> anyhow::Result<()> {
        let pid_file = std::fs::read_to_string(self.data_dir.join("postmaster.pid"))
            .context("reading postmaster.pid")?;
        let postmaster = pid_file
            .lines()
            .next()
            .and_then(|line| line.trim().parse::<u32>().ok())
            .context("postmaster.pid has no pid")?;
        let mut pids = vec![postmaster.to_string()];
        for entry in std::fs::read_dir("/proc")?.filter_map(Result::ok) {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid …: the command name may hold spaces, so split after ')'.
            let parent = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<u32>().ok());
            if parent == Some(postmaster) {
                pids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        run(Command::new("kill").arg("-s").arg(signal).args(&pids))
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let stopped = run(as_user(&self.run_as, &self.pg_ctl)
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "stop"]));
        if let Err(error) = stopped {
            tracing::warn!(error = %error, "stopping the private PostgreSQL cluster failed");
        }
    }
}

fn find_postgres_binaries() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut versioned: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    // Highest major version first.
    versioned.sort_by_key(|path| {
        std::cmp::Reverse(
            path.parent()
                .and_then(Path::file_name)
                .and_then(|name| name.to_str())
                .and_then(|name| name.parse::<u32>().ok())
                .unwrap_or(0),
        )
    });
    on_path
        .into_iter()
        .chain(versioned)
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        .context("initdb and pg_ctl are not installed")
}

/// PostgreSQL refuses to run as root; when we are root, run it as `postgres` or `nobody`.
fn unprivileged_user_if_root() -> anyhow::Result<Option<String>> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .context("running id -u")?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Ok(None);
    }
    for user in ["postgres", "nobody"] {
        let exists = Command::new("id")
            .arg(user)
            .output()
            .is_ok_and(|output| output.status.success());
        if exists {
            return Ok(Some(user.to_owned()));
        }
    }
    bail!("running as root and no unprivileged user (postgres, nobody) exists")
}

fn as_user(user: &Option<String>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut command = Command::new("runuser");
            command.args(["-u", user, "--"]).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("starting {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{:?} failed: {}",
            command.get_program(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_password_says_to_set_database_url() {
        let skip = Skipped::from_error(
            "127.0.0.1:5432",
            "password authentication failed for user \"postgres\"",
        );
        assert_eq!(
            skip.reason,
            "127.0.0.1:5432 refused the password; set DATABASE_URL"
        );
        assert!(skip.server_present);
    }

    #[test]
    fn a_server_asking_for_a_password_says_how_to_give_it() {
        // What a passwordless connection to `docker compose up -d db` gets.
        let skip = Skipped::from_error("127.0.0.1:5432", "invalid configuration");
        assert!(
            skip.reason
                .starts_with("127.0.0.1:5432 asks for a password; set DATABASE_URL")
        );
        assert!(skip.server_present);
    }

    #[test]
    fn nothing_listening_is_no_server() {
        for error in [
            "error connecting to server",
            "error connecting to server: Connection refused (os error 111)",
        ] {
            let skip = Skipped::from_error("127.0.0.1:5432", error);
            assert_eq!(skip.reason, "no server on 127.0.0.1:5432");
            assert!(!skip.server_present);
        }
    }

    #[test]
    fn other_refusals_name_their_cause() {
        let hba = Skipped::from_error(
            "/var/run/postgresql",
            "no pg_hba.conf entry for host \"[local]\", user \"postgres\", database \"postgres\", no encryption",
        );
        assert!(hba.reason.contains("pg_hba.conf"), "{}", hba.reason);
        let odd = Skipped::from_error("127.0.0.1:5432", "something new");
        assert_eq!(
            odd.reason,
            "127.0.0.1:5432 could not be used (something new)"
        );
    }

    #[test]
    fn the_note_lists_every_skipped_server() {
        assert_eq!(skipped_note(&[]), "");
        let note = skipped_note(&[
            Skipped::from_error("127.0.0.1:5432", "password authentication failed"),
            Skipped::from_error("/var/run/postgresql", "No such file or directory"),
        ]);
        assert_eq!(
            note,
            " (127.0.0.1:5432 refused the password; set DATABASE_URL; no server on /var/run/postgresql)"
        );
    }

    /// The driver's real wording for a port where nothing listens.
    #[tokio::test]
    async fn a_real_refused_connection_reads_as_no_server() {
        let error = crate::db::connect_error("postgres://postgres@127.0.0.1:1/postgres")
            .await
            .expect("nothing listens on port 1");
        let skip = Skipped::from_error("127.0.0.1:1", &error);
        assert_eq!(skip.reason, "no server on 127.0.0.1:1", "{error}");
    }
}
