//! The benchmarks' load generator (see `benches/run.sh` and docs/BENCHMARKS.md).
//!
//! `loadgen submit` signs residents in with the dev provider and sends applications, each with its
//! own Idempotency-Key (with `--fetch-definition`, each application first fetches the procedure's
//! definition, as a client that starts from nothing does); `loadgen upload` uploads a PDF into one
//! draft per resident (attachment throughput); `loadgen openforms` sends the same answers to Open
//! Forms' submission API for the peer comparison (benches/peer/); `loadgen catalog` lists the
//! catalog; `loadgen staff-login` signs a staff member in with a password over and over (the
//! argon2 load beside the catalog reads); `loadgen get --url …` fetches any URL.
//! Either closed-loop (`--concurrency` requests always in flight: the maximum throughput) or
//! open-loop (`--rate` requests per second whatever the answers: latency at a given load, timed
//! from when each request was due, so a slow server cannot hide its queueing).
//!
//! Human text goes to stderr, one JSON line to stdout. Latencies are kept in full and sorted, so
//! the percentiles are exact without a histogram crate (a minute at a few thousand requests per
//! second is a few MB).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web::Bytes;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use futures_util::{StreamExt, TryStreamExt};
use madoguchi::forms::model::{Field, FieldType};
use madoguchi::forms::{Assurance, Catalog};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderValue, SET_COOKIE};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;

#[derive(Parser)]
#[command(about = "Load generator for madoguchi's benchmarks")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Sign residents in, then submit applications (~1 KB of answers each).
    Submit {
        #[command(flatten)]
        load: Load,
        /// The server's base URL.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        base: String,
        /// Residents to sign in; requests rotate over them.
        #[arg(long, default_value_t = 100)]
        residents: usize,
        /// The procedure to apply for; by default the one whose first valid example is closest
        /// to 1 KB among those a card sign-in may submit without attachments.
        #[arg(long)]
        procedure: Option<String>,
        /// The catalog directory the example answers come from.
        #[arg(long, default_value = "forms")]
        forms: PathBuf,
        /// Per application, GET the procedure's definition before submitting (both timed as one).
        #[arg(long)]
        fetch_definition: bool,
    },
    /// Open Forms' anonymous submission flow with the example answers of a madoguchi procedure:
    /// create a submission, save the one step's data, complete (benches/peer/run.sh).
    Openforms {
        #[command(flatten)]
        load: Load,
        /// Open Forms' base URL.
        #[arg(long, default_value = "http://127.0.0.1:18000")]
        base: String,
        /// The madoguchi procedure whose first valid example is sent; the Open Forms form has the
        /// procedure's id as its slug (benches/peer/openforms_form.py builds it).
        #[arg(long)]
        procedure: String,
        /// The catalog directory the example answers come from.
        #[arg(long, default_value = "forms")]
        forms: PathBuf,
        /// Per application, GET the form's definition first (the client's fourth call).
        #[arg(long)]
        fetch_definition: bool,
    },
    /// Sign residents in, open a draft each, then upload a PDF of `--size-kb` into the drafts
    /// (the server needs attachment limits raised for long runs; see benches/run.sh).
    Upload {
        #[command(flatten)]
        load: Load,
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        base: String,
        #[arg(long, default_value_t = 32)]
        residents: usize,
        /// A procedure with a file field that accepts PDF.
        #[arg(long, default_value = "hoiku-riyo-moshikomi")]
        procedure: String,
        #[arg(long, default_value = "forms")]
        forms: PathBuf,
        #[arg(long, default_value_t = 100)]
        size_kb: usize,
    },
    /// GET /api/v1/procedures (the whole catalog listing).
    Catalog {
        #[command(flatten)]
        load: Load,
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        base: String,
    },
    /// POST /api/v1/staff/login; each request is one argon2id check. Requests rotate over the
    /// logins (one per clerk: parallel attempts on one account count against its failure limit).
    /// The password, the same for every login, comes from the environment so it is not on the
    /// command line.
    StaffLogin {
        #[command(flatten)]
        load: Load,
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        base: String,
        /// Comma-separated staff logins.
        #[arg(long, value_delimiter = ',', required = true)]
        logins: Vec<String>,
        /// The environment variable holding the password.
        #[arg(long, default_value = "MADOGUCHI_STAFF_PASSWORD")]
        password_env: String,
    },
    /// Polls a URL until it answers 200, about every millisecond, then exits (startup timing).
    /// One process with one connection attempt at a time: polling by starting a program per try
    /// would take a core from the server it is timing.
    WaitReady {
        #[arg(long)]
        url: String,
        /// Seconds to give up after (exit status 1).
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
    },
    /// GET any URL.
    Get {
        #[command(flatten)]
        load: Load,
        #[arg(long)]
        url: String,
    },
}

#[derive(Args, Clone)]
struct Load {
    /// Requests in flight (closed loop). Ignored with --rate.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Open loop: requests per second, sent on schedule whatever the answers.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds to send for (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds sent first and left out of the figures.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Stop after this many requests (warm-up included), whichever comes first.
    #[arg(long)]
    requests: Option<u64>,
    /// A name for this run in the JSON line.
    #[arg(long)]
    label: Option<String>,
}

/// What one request (or, for the flows, one application) is.
enum Target {
    Submit {
        /// The definition fetched before each application, if asked.
        definition_url: Option<String>,
        /// Parsed once: the client's own cost per request is counted against the server's
        /// figure, so it does no work a real client would not repeat.
        url: reqwest::Url,
        tokens: Vec<HeaderValue>,
        /// Serialised once, shared by every request without a copy.
        body: Bytes,
        run: String,
    },
    Upload {
        /// One draft's upload URL per resident, in the order of `tokens`.
        urls: Vec<String>,
        tokens: Vec<HeaderValue>,
        body: Arc<[u8]>,
        content_type: String,
    },
    Get {
        url: String,
    },
    /// POST one of the JSON bodies, in turn.
    PostJson {
        url: String,
        bodies: Vec<Arc<[u8]>>,
    },
    OpenForms(Box<OpenForms>),
}

impl Target {
    /// Sends one request or flow; the status is the first non-2xx one, else the last one, and the
    /// bytes are every answer's body together.
    async fn perform(&self, client: &reqwest::Client, index: u64) -> (u16, usize) {
        match self {
            Self::Submit {
                definition_url,
                url,
                tokens,
                body,
                run,
            } => {
                let mut bytes = 0;
                if let Some(definition_url) = definition_url {
                    let (status, read) = exchange(client.get(definition_url)).await;
                    bytes += read;
                    if !(200..300).contains(&status) {
                        return (status, bytes);
                    }
                }
                let token = &tokens[(index % tokens.len() as u64) as usize];
                let (status, read) = exchange(
                    client
                        .post(url.clone())
                        .header(AUTHORIZATION, token.clone())
                        .header(CONTENT_TYPE, "application/json")
                        .header("idempotency-key", format!("{run}-{index}"))
                        .body(body.clone()),
                )
                .await;
                (status, bytes + read)
            }
            Self::Upload {
                urls,
                tokens,
                body,
                content_type,
            } => {
                let resident = (index % tokens.len() as u64) as usize;
                exchange(
                    client
                        .post(&urls[resident])
                        .header(AUTHORIZATION, tokens[resident].clone())
                        .header(CONTENT_TYPE, content_type.as_str())
                        .body(body.to_vec()),
                )
                .await
            }
            Self::Get { url } => exchange(client.get(url)).await,
            Self::PostJson { url, bodies } => {
                let body = &bodies[(index % bodies.len() as u64) as usize];
                exchange(
                    client
                        .post(url)
                        .header(CONTENT_TYPE, "application/json")
                        .body(body.to_vec()),
                )
                .await
            }
            Self::OpenForms(peer) => peer.apply(client).await,
        }
    }
}

async fn exchange(request: reqwest::RequestBuilder) -> (u16, usize) {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.bytes().await {
                Ok(body) => (status, body.len()),
                Err(_) => (0, 0),
            }
        }
        Err(_) => (0, 0),
    }
}

struct Sample {
    /// Seconds from the start of the run to when the request was due.
    due: f64,
    latency_us: u64,
    /// The HTTP status, or 0 when no answer came (connection error, timeout).
    status: u16,
    bytes: usize,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Mode::WaitReady { url, timeout } = &cli.mode {
        return wait_ready(url, *timeout).await;
    }
    let concurrency = match &cli.mode {
        Mode::Submit { load, .. }
        | Mode::Upload { load, .. }
        | Mode::Openforms { load, .. }
        | Mode::Catalog { load, .. }
        | Mode::StaffLogin { load, .. }
        | Mode::Get { load, .. } => load.concurrency,
        Mode::WaitReady { .. } => unreachable!("answered above"),
    };
    let client = client(concurrency)?;
    let (load, mode, target, extra) = match cli.mode {
        Mode::Submit {
            load,
            base,
            residents,
            procedure,
            forms,
            fetch_definition,
        } => {
            let tokens = sign_in(&client, &base, residents.max(1), load.concurrency).await?;
            let (procedure, answers) =
                choose_procedure(&client, &base, &forms, procedure.as_deref(), &tokens).await?;
            let body = Bytes::from(serde_json::to_vec(&json!({"data": answers}))?);
            let answers_bytes = serde_json::to_vec(&answers)?.len();
            eprintln!(
                "{} residents signed in; applying for {procedure} ({answers_bytes} bytes of answers)",
                tokens.len()
            );
            let extra = json!({"procedure": procedure, "answers_bytes": answers_bytes, "residents": tokens.len(), "fetch_definition": fetch_definition});
            let target = Target::Submit {
                definition_url: fetch_definition
                    .then(|| format!("{base}/api/v1/procedures/{procedure}")),
                url: format!("{base}/api/v1/procedures/{procedure}/submissions")
                    .parse()
                    .context("the submissions URL")?,
                tokens,
                body,
                run: format!("bench-{}", uuid::Uuid::new_v4().simple()),
            };
            let mode = if fetch_definition {
                "submit+definition"
            } else {
                "submit"
            };
            (load, mode, target, extra)
        }
        Mode::Openforms {
            load,
            base,
            procedure,
            forms,
            fetch_definition,
        } => {
            let answers = example_answers(&forms, &procedure)?;
            let peer = OpenForms::prepare(
                &client,
                &base,
                &procedure,
                &answers,
                &load,
                fetch_definition,
            )
            .await?;
            let extra = json!({"procedure": procedure, "answers_bytes": serde_json::to_vec(&answers)?.len(), "fetch_definition": fetch_definition});
            let mode = if fetch_definition {
                "openforms+definition"
            } else {
                "openforms"
            };
            (load, mode, Target::OpenForms(Box::new(peer)), extra)
        }
        Mode::Upload {
            load,
            base,
            residents,
            procedure,
            forms,
            size_kb,
        } => {
            let tokens = sign_in(&client, &base, residents.max(1), load.concurrency).await?;
            let field = first_file_field(&forms, &procedure)?;
            let mut urls = Vec::with_capacity(tokens.len());
            for token in &tokens {
                let draft: Value = client
                    .post(format!("{base}/api/v1/drafts"))
                    .header(AUTHORIZATION, token.clone())
                    .json(&json!({"procedure_id": procedure, "data": {}}))
                    .send()
                    .await?
                    .error_for_status()
                    .context("opening a draft")?
                    .json()
                    .await?;
                let draft = draft["id"].as_str().context("no draft id")?;
                urls.push(format!(
                    "{base}/api/v1/drafts/{draft}/attachments?field={field}"
                ));
            }
            let mut pdf = b"%PDF-1.4\n".to_vec();
            pdf.resize(size_kb.max(1) * 1024, b' ');
            let boundary = "loadgen-boundary";
            let mut body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
            )
            .into_bytes();
            body.extend_from_slice(&pdf);
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            eprintln!(
                "{} residents signed in; uploading {size_kb} KB PDFs into {procedure}/{field}",
                tokens.len()
            );
            let extra =
                json!({"procedure": procedure, "size_kb": size_kb, "residents": tokens.len()});
            let target = Target::Upload {
                urls,
                tokens,
                body: body.into(),
                content_type: format!("multipart/form-data; boundary={boundary}"),
            };
            (load, "upload", target, extra)
        }
        Mode::Catalog { load, base } => {
            let url = format!("{base}/api/v1/procedures");
            (load, "catalog", Target::Get { url }, json!({}))
        }
        Mode::StaffLogin {
            load,
            base,
            logins,
            password_env,
        } => {
            let password = std::env::var(&password_env)
                .with_context(|| format!("the password in ${password_env}"))?;
            let bodies = logins
                .iter()
                .map(|login| {
                    serde_json::to_vec(&json!({"login": login, "password": password}))
                        .map(Arc::from)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let extra = json!({"accounts": logins.len()});
            let target = Target::PostJson {
                url: format!("{base}/api/v1/staff/login"),
                bodies,
            };
            (load, "staff-login", target, extra)
        }
        Mode::Get { load, url } => (load, "get", Target::Get { url }, json!({})),
        Mode::WaitReady { .. } => unreachable!("answered above"),
    };
    let samples = match load.rate {
        Some(rate) if rate > 0.0 => open_loop(&client, Arc::new(target), &load, rate).await,
        Some(_) => bail!("--rate must be positive"),
        None => closed_loop(&client, Arc::new(target), &load).await,
    };
    report(mode, &load, &samples, extra)
}

async fn wait_ready(url: &str, timeout: f64) -> anyhow::Result<()> {
    // A new connection per try: a server that is not listening yet refuses it at once.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(1))
        .build()
        .context("building the HTTP client")?;
    let deadline = Instant::now() + Duration::from_secs_f64(timeout);
    loop {
        if let Ok(response) = client.get(url).send().await
            && response.status() == reqwest::StatusCode::OK
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("{url} did not answer 200 within {timeout} s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(1) * 2)
        .timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
        .context("building the HTTP client")
}

/// Signs `count` residents in with the dev provider; returns their bearer headers.
async fn sign_in(
    client: &reqwest::Client,
    base: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<HeaderValue>> {
    futures_util::stream::iter(0..count)
        .map(|index| async move {
            let started: Value = client
                .post(format!("{base}/api/v1/auth/dev/start"))
                .send()
                .await
                .context("starting a dev sign-in (is the server up, with the dev provider?)")?
                .error_for_status()?
                .json()
                .await?;
            let completed: Value = client
                .post(format!("{base}/api/v1/auth/dev/complete"))
                .json(&json!({
                    "challenge_id": started["challenge_id"],
                    "subject": format!("bench-resident-{index}"),
                }))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let token = completed["access_token"]
                .as_str()
                .context("no access_token in the sign-in answer")?;
            Ok::<_, anyhow::Error>(HeaderValue::from_str(&format!("Bearer {token}"))?)
        })
        .buffer_unordered(concurrency.clamp(1, 16))
        .try_collect()
        .await
}

/// The id of the procedure's first file field (also inside groups).
fn first_file_field(forms: &std::path::Path, procedure: &str) -> anyhow::Result<String> {
    fn walk(fields: &[Field]) -> Option<String> {
        fields.iter().find_map(|field| match field.kind() {
            FieldType::File => Some(field.id.clone()),
            FieldType::Group => walk(&field.fields),
            _ => None,
        })
    }
    let catalog =
        Catalog::load(forms).map_err(|report| anyhow::anyhow!("the catalog: {report}"))?;
    catalog
        .get(procedure)
        .and_then(|p| {
            p.definition
                .pages
                .iter()
                .find_map(|page| walk(&page.fields))
        })
        .with_context(|| format!("{procedure} has no file field"))
}

/// The first valid example (not tied to a date) of a procedure in the catalog files.
fn example_answers(forms: &std::path::Path, procedure: &str) -> anyhow::Result<Value> {
    let catalog = Catalog::load(forms).map_err(|report| {
        anyhow::anyhow!("the catalog in {} has mistakes:\n{report}", forms.display())
    })?;
    let definition = &catalog
        .procedures
        .get(procedure)
        .with_context(|| format!("no procedure {procedure} in {}", forms.display()))?
        .definition;
    definition
        .examples
        .iter()
        .find(|example| example.valid && example.as_of.is_none())
        .map(|example| example.data.clone())
        .with_context(|| format!("{procedure} has no valid example"))
}

/// One anonymous visitor of Open Forms: its cookies (session, CSRF secret) and the CSRF token
/// its API hands out in a header, both needed by every write.
#[derive(Default)]
struct Visitor {
    cookies: BTreeMap<String, String>,
    csrf_token: Option<String>,
}

impl Visitor {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn with_session(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let mut request = request.header(COOKIE, self.cookie_header());
        if let Some(token) = &self.csrf_token {
            request = request.header("x-csrftoken", token);
        }
        request
    }

    /// Sends a request in this visitor's session and keeps what the answer sets; returns the
    /// status, the body, and whether it was a 2xx.
    async fn exchange(&mut self, request: reqwest::RequestBuilder) -> (u16, Bytes) {
        let Ok(response) = self.with_session(request).send().await else {
            return (0, Bytes::new());
        };
        let status = response.status().as_u16();
        for cookie in response.headers().get_all(SET_COOKIE) {
            let Ok(cookie) = cookie.to_str() else {
                continue;
            };
            let pair = cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        if let Some(token) = response
            .headers()
            .get("x-csrftoken")
            .and_then(|value| value.to_str().ok())
        {
            self.csrf_token = Some(token.to_owned());
        }
        match response.bytes().await {
            Ok(body) => (status, body),
            Err(_) => (0, Bytes::new()),
        }
    }
}

/// Open Forms' public submission API, as its own SDK drives it for a one-step form: (the form's
/// definition,) create a submission, PUT the step's data, complete.
struct OpenForms {
    base: String,
    /// GET: the form's definition (the SDK's first call); also how a visitor gets its CSRF token.
    form_api_url: String,
    /// The body that creates a submission of the form.
    create_body: Arc<[u8]>,
    step_uuid: String,
    step_body: Arc<[u8]>,
    complete_body: Arc<[u8]>,
    fetch_definition: bool,
    /// Idle visitors; each application takes one and gives it back, so none is used twice at once.
    visitors: Mutex<Vec<Visitor>>,
    /// The first failure's answer, shown once on stderr.
    reported_failure: std::sync::atomic::AtomicBool,
}

impl OpenForms {
    async fn prepare(
        client: &reqwest::Client,
        base: &str,
        slug: &str,
        answers: &Value,
        load: &Load,
        fetch_definition: bool,
    ) -> anyhow::Result<Self> {
        let form: Value = client
            .get(format!("{base}/api/v2/forms/{slug}"))
            .send()
            .await
            .context("fetching the form from Open Forms (is it up, with the form built?)")?
            .error_for_status()?
            .json()
            .await?;
        let form_uuid = form["uuid"].as_str().context("no uuid in the form")?;
        let step_uuid = form["steps"][0]["uuid"]
            .as_str()
            .context("the form has no step")?;
        let form_api_url = format!("{base}/api/v2/forms/{form_uuid}");
        let visitors = if load.rate.is_some() {
            256
        } else {
            load.concurrency.max(1)
        };
        let peer = Self {
            base: base.to_owned(),
            create_body: serde_json::to_vec(&json!({
                "form": form_api_url,
                "formUrl": format!("{base}/{slug}"),
                "anonymous": true,
            }))?
            .into(),
            form_api_url,
            step_uuid: step_uuid.to_owned(),
            step_body: serde_json::to_vec(&json!({"data": answers}))?.into(),
            complete_body: serde_json::to_vec(&json!({
                "privacyPolicyAccepted": true,
                "statementOfTruthAccepted": true,
            }))?
            .into(),
            fetch_definition,
            visitors: Mutex::new(Vec::new()),
            reported_failure: std::sync::atomic::AtomicBool::new(false),
        };
        // Every visitor opens the form once before the run, as madoguchi's residents sign in once.
        let mut ready = Vec::with_capacity(visitors);
        for _ in 0..visitors {
            let mut visitor = Visitor::default();
            let (status, _) = visitor.exchange(client.get(&peer.form_api_url)).await;
            if status != 200 || visitor.csrf_token.is_none() {
                bail!(
                    "opening the form answered {status} (CSRF token given: {})",
                    visitor.csrf_token.is_some()
                );
            }
            ready.push(visitor);
        }
        if let Ok(mut idle) = peer.visitors.lock() {
            *idle = ready;
        }
        // One application before the run, so a form the answers do not fit stops here.
        let (status, _) = peer.apply(client).await;
        if !(200..300).contains(&status) {
            bail!("Open Forms did not complete a submission of the example answers ({status})");
        }
        Ok(peer)
    }

    async fn apply(&self, client: &reqwest::Client) -> (u16, usize) {
        let visitor = self.visitors.lock().ok().and_then(|mut idle| idle.pop());
        let mut visitor = visitor.unwrap_or_default();
        let (status, bytes, failure) = self.flow(client, &mut visitor).await;
        if let Some(body) = failure
            && !self.reported_failure.swap(true, Ordering::Relaxed)
        {
            eprintln!(
                "Open Forms answered {status}: {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(500)
                    .collect::<String>()
            );
        }
        if let Ok(mut idle) = self.visitors.lock() {
            idle.push(visitor);
        }
        (status, bytes)
    }

    /// The calls of one application; on a non-2xx answer, stops and hands back that answer.
    async fn flow(
        &self,
        client: &reqwest::Client,
        visitor: &mut Visitor,
    ) -> (u16, usize, Option<Bytes>) {
        let mut total = 0;
        let json_post = |url: String, body: &Arc<[u8]>| {
            client
                .post(url)
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec())
        };
        if self.fetch_definition || visitor.csrf_token.is_none() {
            let (status, body) = visitor.exchange(client.get(&self.form_api_url)).await;
            total += body.len();
            if status != 200 {
                return (status, total, Some(body));
            }
        }
        let (status, body) = visitor
            .exchange(json_post(
                format!("{}/api/v2/submissions", self.base),
                &self.create_body,
            ))
            .await;
        total += body.len();
        let Some(submission) = (status == 201)
            .then(|| serde_json::from_slice::<Value>(&body).ok())
            .flatten()
            .and_then(|created| created["id"].as_str().map(str::to_owned))
        else {
            return (status, total, Some(body));
        };
        let step_url = format!(
            "{}/api/v2/submissions/{submission}/steps/{}",
            self.base, self.step_uuid
        );
        let (status, body) = visitor
            .exchange(
                client
                    .put(step_url)
                    .header(CONTENT_TYPE, "application/json")
                    .body(self.step_body.to_vec()),
            )
            .await;
        total += body.len();
        if !(200..300).contains(&status) {
            return (status, total, Some(body));
        }
        let (status, body) = visitor
            .exchange(json_post(
                format!("{}/api/v2/submissions/{submission}/_complete", self.base),
                &self.complete_body,
            ))
            .await;
        total += body.len();
        let failure = (!(200..300).contains(&status)).then_some(body);
        (status, total, failure)
    }
}

fn has_files(fields: &[Field]) -> bool {
    fields
        .iter()
        .any(|field| field.kind() == FieldType::File || has_files(&field.fields))
}

/// Picks the procedure and answers: the named one, or the card-auth (or open) procedures without
/// attachments, closest to 1 KB of answers first, keeping the first one the server accepts today
/// (some examples are only valid on certain dates).
async fn choose_procedure(
    client: &reqwest::Client,
    base: &str,
    forms: &std::path::Path,
    wanted: Option<&str>,
    tokens: &[HeaderValue],
) -> anyhow::Result<(String, Value)> {
    let catalog = Catalog::load(forms).map_err(|report| {
        anyhow::anyhow!("the catalog in {} has mistakes:\n{report}", forms.display())
    })?;
    let mut candidates: Vec<(usize, String, Value)> = catalog
        .procedures
        .values()
        .map(|procedure| &procedure.definition)
        .filter(|definition| wanted.is_none_or(|id| id == definition.id))
        .filter(|definition| wanted.is_some() || definition.assurance <= Assurance::CardAuth)
        .filter(|definition| {
            wanted.is_some() || !definition.pages.iter().any(|page| has_files(&page.fields))
        })
        .filter_map(|definition| {
            let example = definition
                .examples
                .iter()
                .find(|example| example.valid && example.as_of.is_none())?;
            let size = serde_json::to_vec(&example.data).map_or(0, |bytes| bytes.len());
            Some((
                size.abs_diff(1024),
                definition.id.clone(),
                example.data.clone(),
            ))
        })
        .collect();
    candidates.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let token = tokens.first().context("no resident signed in")?;
    for (_, id, answers) in candidates.into_iter().take(10) {
        let response = client
            .post(format!("{base}/api/v1/procedures/{id}/submissions"))
            .header(AUTHORIZATION, token.clone())
            .header("idempotency-key", uuid::Uuid::new_v4().to_string())
            .json(&json!({"data": answers}))
            .send()
            .await?;
        let status = response.status();
        if status.as_u16() == 201 {
            return Ok((id, answers));
        }
        let body = response.text().await.unwrap_or_default();
        eprintln!(
            "skipping {id}: the server answered {status}: {}",
            body.chars().take(300).collect::<String>()
        );
    }
    bail!("no procedure's example was accepted by the server")
}

/// `concurrency` tasks, each sending its next request as soon as the last one is answered.
async fn closed_loop(client: &reqwest::Client, target: Arc<Target>, load: &Load) -> Vec<Sample> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(load.warmup + load.duration);
    let next = Arc::new(AtomicU64::new(0));
    let limit = load.requests.unwrap_or(u64::MAX);
    let tasks: Vec<_> = (0..load.concurrency.max(1))
        .map(|_| {
            let (client, target, next) = (client.clone(), target.clone(), next.clone());
            tokio::spawn(async move {
                let mut samples = Vec::new();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let due = Instant::now();
                    if index >= limit || due >= deadline {
                        break;
                    }
                    samples.push(send(&client, &target, index, started, due).await);
                }
                samples
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await.unwrap_or_default());
    }
    samples
}

/// Requests sent on a fixed schedule, each timed from when it was due.
async fn open_loop(
    client: &reqwest::Client,
    target: Arc<Target>,
    load: &Load,
    rate: f64,
) -> Vec<Sample> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(load.warmup + load.duration);
    let limit = load.requests.unwrap_or(u64::MAX);
    let samples = Arc::new(Mutex::new(Vec::new()));
    // A bound on requests in flight, so an overwhelmed server cannot exhaust the client; waiting
    // here still counts against the latency, since it is measured from the due time.
    let in_flight = Arc::new(Semaphore::new(4096));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..limit {
        let due = started + Duration::from_secs_f64(index as f64 / rate);
        if due >= deadline {
            break;
        }
        tokio::time::sleep_until(due).await;
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        let (client, target, samples) = (client.clone(), target.clone(), samples.clone());
        tasks.spawn(async move {
            let sample = send(&client, &target, index, started, due).await;
            drop(permit);
            if let Ok(mut samples) = samples.lock() {
                samples.push(sample);
            }
        });
        // Reap finished tasks as we go, so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let mut samples = samples
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    samples.sort_by(|a, b| a.due.total_cmp(&b.due));
    samples
}

async fn send(
    client: &reqwest::Client,
    target: &Target,
    index: u64,
    started: Instant,
    due: Instant,
) -> Sample {
    let (status, bytes) = target.perform(client, index).await;
    Sample {
        due: due.duration_since(started).as_secs_f64(),
        latency_us: due.elapsed().as_micros() as u64,
        status,
        bytes,
    }
}

fn percentile(sorted: &[u64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1000.0
}

fn report(mode: &str, load: &Load, samples: &[Sample], extra: Value) -> anyhow::Result<()> {
    let measured: Vec<&Sample> = samples.iter().filter(|s| s.due >= load.warmup).collect();
    if measured.is_empty() {
        bail!("no request was sent after the warm-up");
    }
    // The window runs from the end of the warm-up to the last answer.
    let window = measured
        .iter()
        .map(|s| s.due + s.latency_us as f64 / 1e6)
        .fold(load.warmup, f64::max)
        - load.warmup;
    let mut latencies: Vec<u64> = measured.iter().map(|s| s.latency_us).collect();
    latencies.sort_unstable();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for sample in &measured {
        let key = match sample.status {
            0 => "no_answer".to_owned(),
            status => status.to_string(),
        };
        *statuses.entry(key).or_default() += 1;
    }
    let ok = measured
        .iter()
        .filter(|s| (200..300).contains(&s.status))
        .count();
    let errors = measured.len() - ok;
    let throughput = measured.len() as f64 / window.max(1e-9);
    let ok_throughput = ok as f64 / window.max(1e-9);
    let mean_bytes = measured.iter().map(|s| s.bytes).sum::<usize>() / measured.len();
    let (p50, p90, p99, max) = (
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
    );
    let mean = latencies.iter().sum::<u64>() as f64 / latencies.len() as f64 / 1000.0;
    let loop_kind = match load.rate {
        Some(rate) => format!("open loop at {rate:.0} req/s"),
        None => format!("closed loop, {} in flight", load.concurrency),
    };
    eprintln!(
        "{mode}{}: {loop_kind}, {window:.1} s measured after {:.1} s warm-up",
        load.label
            .as_deref()
            .map(|l| format!(" [{l}]"))
            .unwrap_or_default(),
        load.warmup
    );
    eprintln!(
        "  {} requests, {throughput:.1} req/s ({ok_throughput:.1} req/s 2xx), {errors} errors",
        measured.len()
    );
    eprintln!(
        "  latency ms: p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  max {max:.2}  mean {mean:.2}"
    );
    eprintln!("  statuses: {statuses:?}; mean body {mean_bytes} bytes");
    let mut line = json!({
        "mode": mode,
        "label": load.label,
        "concurrency": load.rate.map_or(Some(load.concurrency), |_| None),
        "rate": load.rate,
        "seconds": window,
        "requests": measured.len(),
        "ok": ok,
        "errors": errors,
        "throughput_rps": throughput,
        "ok_throughput_rps": ok_throughput,
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "max_ms": max,
        "mean_ms": mean,
        "statuses": statuses,
        "body_bytes": mean_bytes,
    });
    if let (Value::Object(line), Value::Object(extra)) = (&mut line, extra) {
        line.extend(extra);
    }
    println!("{line}");
    Ok(())
}
