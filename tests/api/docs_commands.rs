//! The commands in README.md and docs/FORMS.md work exactly as written: they are read from the
//! documents and run (the README's `curl` examples against the real server process).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::TestDatabase;

fn document(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The commands of the first ```sh block after `marker`, continuation lines joined, each with
/// its trailing `# comment` (empty when none).
fn shell_block(text: &str, marker: &str) -> Vec<(String, String)> {
    let after = &text[text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} not found"))..];
    let start = after.find("```sh\n").expect("a ```sh block") + "```sh\n".len();
    let block = &after[start..];
    let block = &block[..block.find("```").expect("the block's end")];
    let mut commands = Vec::new();
    let mut pending = String::new();
    for line in block.lines() {
        let (code, comment) = match comment_start(line) {
            Some(at) => (&line[..at], line[at + 1..].trim()),
            None => (line, ""),
        };
        let code = code.trim_end();
        if let Some(continued) = code.strip_suffix('\\') {
            pending.push_str(continued);
            continue;
        }
        pending.push_str(code);
        let command = pending.split_whitespace().collect::<Vec<_>>().join(" ");
        pending.clear();
        if !command.is_empty() {
            commands.push((command, comment.to_owned()));
        }
    }
    commands
}

/// Where a shell comment starts: a `#` after a blank, outside quotes.
fn comment_start(line: &str) -> Option<usize> {
    let mut quote = None;
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(open), _) if c == open => quote = None,
            (None, '#') if previous.is_whitespace() => return Some(at),
            _ => {}
        }
        previous = c;
    }
    None
}

#[test]
fn shell_blocks_are_read_with_their_continuations_and_comments() {
    let text = "Try it:\n\n```sh\na 'x # y' \\\n  b   # 422, on purpose\nc\n```\n";
    assert_eq!(
        shell_block(text, "Try it"),
        vec![
            ("a 'x # y' b".to_owned(), "422, on purpose".to_owned()),
            ("c".to_owned(), String::new())
        ]
    );
}

/// `madoguchi serve` on a free port; killed when dropped.
struct Server {
    child: std::process::Child,
    port: u16,
}

impl Server {
    async fn start(database_url: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
            .arg("serve")
            .env("MADOGUCHI_PROFILE", "test")
            .env("DATABASE_URL", database_url)
            .env("MADOGUCHI__SERVER__PORT", port.to_string())
            .env("MADOGUCHI__SERVER__WORKERS", "1")
            .env("MADOGUCHI__EMAIL__WORKER_IN_SERVE", "false")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("madoguchi serve");
        let server = Self { child, port };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await
                && response.status().is_success()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not start within 30 s");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_web::test]
async fn the_readme_examples_answer_as_the_readme_says() {
    let examples = shell_block(&document("README.md"), "Try it");
    assert!(examples.len() >= 4, "{examples:?}");
    let database = TestDatabase::new().await;
    let server = Server::start(&database.url).await;
    for (command, comment) in &examples {
        assert!(command.starts_with("curl "), "{command}");
        assert!(
            command.contains("localhost:8080"),
            "the README examples use serve's default address: {command}"
        );
        let expected: u16 = comment
            .get(..3)
            .and_then(|status| status.parse().ok())
            .unwrap_or_else(|| panic!("{command}: the comment must start with the status"));
        // Exactly the README's command; only the port is this test's, and curl reports the status.
        let run = format!(
            "{} -w '\\n%{{http_code}}'",
            command.replace("localhost:8080", &format!("localhost:{}", server.port))
        );
        let output =
            tokio::task::spawn_blocking(move || Command::new("bash").args(["-c", &run]).output())
                .await
                .expect("join")
                .expect("bash runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let (body, status) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
        assert_eq!(status, expected.to_string(), "{command}\n{body}");
        let body: serde_json::Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{command}: the answer is not JSON ({e}): {body:?}"));
        if expected == 200 && command.contains("q=") {
            assert!(
                body.to_string().contains("juminhyo-copy-request"),
                "{command}: {body}"
            );
        }
        if expected == 422 {
            assert_eq!(body["status"], 422, "{body}");
            let copies = body["errors"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|error| error["path"] == "/copies");
            assert!(
                copies.is_some_and(|error| error["code"] == "too_large"),
                "the README says the copies are too many: {body}"
            );
        }
    }
}

#[test]
fn the_forms_check_commands_of_forms_md_work_as_written() {
    let commands = shell_block(&document("docs/FORMS.md"), "Check your work with");
    assert!(commands.len() >= 5, "{commands:?}");
    for (command, _) in &commands {
        let arguments = command
            .strip_prefix("cargo run -- ")
            .unwrap_or_else(|| panic!("not a `cargo run --` command: {command}"));
        let output = Command::new(env!("CARGO_BIN_EXE_madoguchi"))
            .args(arguments.split_whitespace())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("madoguchi runs");
        assert!(
            output.status.success(),
            "{command}: {}\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
