//! Building the application: the actix `App` around the state ([`crate::state`]), and the
//! running server.
//!
//! Tests build the very same `App` through [`build_app`], so what they exercise is what runs.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{DefaultHeaders, ErrorHandlers, from_fn};
use actix_web::{App, HttpRequest, HttpServer, web};
use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Settings;
use crate::db::{self, DbPool};
use crate::error::handlers;
use crate::forms::Catalog;
use crate::routes;
use crate::state::AppState;
use crate::submissions::sealing::Sealer;
use crate::telemetry::{self, Metrics};

/// The actix application with every route, limit and error renderer.
pub fn build_app(
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let listing = web::Data::new(routes::catalog::Listing::new(&state.catalog));
    build_app_with(state, metrics, listing)
}

/// [`build_app`] with the catalog listing already serialised: the server makes it once and
/// shares it between its workers rather than serialising and gzipping it in each.
pub fn build_app_with(
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
    listing: web::Data<routes::catalog::Listing>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let json_limit = state.settings.server.max_json_body_bytes;
    let https = state.settings.server.public_url.starts_with("https://");
    App::new()
        .app_data(state)
        .app_data(listing)
        .app_data(metrics)
        .app_data(
            web::JsonConfig::default()
                .limit(json_limit)
                .error_handler(handlers::json_error),
        )
        .app_data(web::PayloadConfig::default().limit(json_limit))
        .app_data(web::QueryConfig::default().error_handler(handlers::query_error))
        .app_data(web::PathConfig::default().error_handler(path_error))
        .configure(routes::configure)
        .configure(crate::web::configure)
        .default_service(web::to(unmatched))
        .wrap(from_fn(crate::web::session::write_cookie))
        .wrap(from_fn(routes::deadline::deadline))
        .wrap(ErrorHandlers::new().default_handler(handlers::render_problem))
        .wrap(from_fn(routes::guard::guard))
        .wrap(security_headers(https))
        .wrap(from_fn(telemetry::observe_request))
        // gzip for clients that ask (pages, definitions, schemas, lists); a response that is
        // already encoded (the precompressed catalog listing) is left as it is.
        .wrap(actix_web::middleware::Compress::default())
}

/// A path segment of the wrong type (`/drafts/not-a-uuid`) is not found: the portal's 404 page
/// on its own paths, problem+json elsewhere.
fn path_error(error: actix_web::error::PathError, request: &HttpRequest) -> actix_web::Error {
    if crate::web::owns(request.path()) {
        let page = crate::web::Page::new(request).not_found();
        return actix_web::error::InternalError::from_response(error, page).into();
    }
    handlers::path_error(error, request)
}

/// A path nothing matched: the portal's 404 page for its own paths, problem+json for the API.
async fn unmatched(request: actix_web::HttpRequest) -> actix_web::HttpResponse {
    if crate::web::owns(request.path()) {
        crate::web::not_found(request).await
    } else {
        routes::openapi::unmatched(request).await
    }
}

/// When each startup phase ended, counted from the start of [`Application::build`].
#[derive(Default)]
struct Phases {
    catalog: std::time::Duration,
    database: std::time::Duration,
    versions: std::time::Duration,
    state: std::time::Duration,
    listing: std::time::Duration,
}

/// A ready-to-run server: database resolved and migrated, catalog loaded, listener bound.
pub struct Application {
    server: actix_web::dev::Server,
    port: u16,
    // Keeps a private PostgreSQL cluster alive for as long as the server runs.
    _cluster: Option<db::cluster::PrivateCluster>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // What startup spends, phase by phase, in the "serving" log line (benches/run.sh times
        // the whole of it from outside).
        let started = std::time::Instant::now();
        let mut phases = Phases::default();
        let catalog = Arc::new(Catalog::load(&settings.forms.dir).map_err(|report| {
            anyhow::anyhow!(
                "the procedure catalog in {} has mistakes; fix them (see `madoguchi forms check`):\n{report}",
                settings.forms.dir.display()
            )
        })?);
        phases.catalog = started.elapsed();
        // The listing (three serialisations, gzipped) needs only the catalog: it is built on
        // another core while this one waits for the database.
        let listing = tokio::task::spawn_blocking({
            let catalog = catalog.clone();
            move || routes::catalog::Listing::new(&catalog)
        });
        let resolved = db::cluster::resolve(&settings.database, "madoguchi").await?;
        if settings.database.migrate_on_start {
            let applied = db::run_migrations(&resolved.url).await?;
            if !applied.is_empty() {
                tracing::info!(count = applied.len(), "applied migrations");
            }
        }
        phases.database = started.elapsed();
        let workers = match settings.server.workers {
            // actix-web's own default: one worker per core.
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            workers => workers,
        };
        let pool = db::build_pool_for_threads(&resolved.url, &settings.database, workers)?;
        catalog
            .record_versions(&pool)
            .await
            .context("recording procedure versions")?;
        phases.versions = started.elapsed();

        if settings.email.worker_in_serve
            && let Some(provider) = crate::payments::provider_from(&settings.payments)
        {
            tokio::spawn(
                crate::payments::reconciler::Worker {
                    pool: pool.clone(),
                    catalog: catalog.clone(),
                    sealer: Sealer::from_config(&settings.submissions.sealing_keys)?,
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
        if settings.email.worker_in_serve {
            let mailer = crate::notify::mailer::Mailer::from_settings(&settings.email)?;
            tokio::spawn(crate::worker::run(
                pool.clone(),
                mailer,
                settings.email.clone(),
                crate::worker::Digests {
                    catalog: catalog.clone(),
                    public_url: settings.server.public_url.clone(),
                },
                crate::worker::Attachments::from_settings(&settings)?,
                crate::worker::Statistics::from_settings(&settings, catalog.clone()),
            ));
        }
        let listener = std::net::TcpListener::bind(settings.bind_address())
            .with_context(|| format!("binding {:?}", settings.bind_address()))?;
        let port = listener.local_addr()?.port();
        let tls = load_tls(&settings)?;
        let migrate = settings.database.migrate_on_start;
        let state = web::Data::new(AppState::build(settings, pool, catalog).await?);
        if migrate {
            run_data_migrations(&state.pool, &state.sealer, &state.catalog).await?;
        }
        phases.state = started.elapsed();
        let metrics = web::Data::new(Metrics::new()?);
        let listing = web::Data::new(listing.await.context("building the catalog listing")?);
        phases.listing = started.elapsed();
        let server = HttpServer::new(move || {
            build_app_with(state.clone(), metrics.clone(), listing.clone())
        })
        .shutdown_timeout(10)
        .workers(workers);
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls)?,
            None => server.listen(listener)?,
        }
        .run();
        tracing::info!(
            port,
            catalog_ms = phases.catalog.as_millis(),
            database_ms = phases.database.as_millis(),
            versions_ms = phases.versions.as_millis(),
            state_ms = phases.state.as_millis(),
            listing_ms = phases.listing.as_millis(),
            total_ms = started.elapsed().as_millis(),
            "madoguchi is serving"
        );
        Ok(Self {
            server,
            port,
            _cluster: resolved.cluster,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.server.await.context("server stopped with an error")
    }
}

/// Headers every answer carries unless its handler set its own: nothing is cached (answers hold
/// personal data; the public catalog sets its own caching), nothing is sniffed, framed or sent
/// as a referrer, and the API's documents may load nothing. Pages set their own policy.
fn security_headers(https: bool) -> DefaultHeaders {
    let headers = DefaultHeaders::new()
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "no-referrer"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ));
    if https {
        headers.add((header::STRICT_TRANSPORT_SECURITY, "max-age=31536000"))
    } else {
        headers
    }
}

/// The data migrations that need the application's keys and catalog, after the schema
/// migrations (`madoguchi migrate`, or `serve` where it migrates on start). Each runs once.
pub async fn run_data_migrations(
    pool: &DbPool,
    sealer: &Sealer,
    catalog: &Catalog,
) -> anyhow::Result<()> {
    let mut connection = db::connection(pool).await?;
    if let Some(done) =
        crate::submissions::sealing::legacy::migrate(&mut connection, sealer, catalog).await?
    {
        tracing::info!(
            drafts = done.drafts,
            submissions = done.submissions,
            revisions = done.revisions,
            "re-sealed My Numbers to their rows"
        );
    }
    Ok(())
}

fn load_tls(settings: &Settings) -> anyhow::Result<Option<rustls::ServerConfig>> {
    let server = &settings.server;
    if server.tls_cert_path.is_empty() {
        return Ok(None);
    }
    let certificates = CertificateDer::pem_file_iter(&server.tls_cert_path)
        .with_context(|| format!("opening {}", server.tls_cert_path))?
        .collect::<Result<Vec<_>, _>>()
        .context("reading the TLS certificate chain")?;
    let key = PrivateKeyDer::from_pem_file(&server.tls_key_path)
        .with_context(|| format!("reading the TLS private key {}", server.tls_key_path))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certificates, key)
    .context("the TLS certificate and key do not match")?;
    Ok(Some(config))
}
