//! The application's state: everything a request handler of either edge may need, built once
//! from the configuration. Both edges depend on it; `startup` builds the server around it.

use std::sync::Arc;

use actix_web::cookie::Key;
use anyhow::Context;
use rand::RngCore;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha512};

use crate::calendar::BusinessCalendar;
use crate::config::Settings;
use crate::db::DbPool;
use crate::forms::Catalog;
use crate::identity::jpki::JpkiVerifier;
use crate::identity::oidc::OidcClient;
use crate::identity::session::Keyring;
use crate::submissions::attachments::Storage;
use crate::submissions::sealing::Sealer;

/// Everything a request handler may need, built once.
pub struct AppState {
    pub settings: Settings,
    pub pool: DbPool,
    pub catalog: Arc<Catalog>,
    pub keyring: Keyring,
    /// Present when the `jpki` provider is enabled.
    pub jpki: Option<JpkiVerifier>,
    /// Present when the `oidc` provider is enabled and configured.
    pub oidc: Option<OidcClient>,
    /// Present when staff may sign in through the city's own OpenID Provider.
    pub staff_oidc: Option<OidcClient>,
    pub sealer: Sealer,
    pub calendar: BusinessCalendar,
    pub storage: Storage,
    /// `server.trusted_proxies`, parsed.
    pub trusted_proxies: Vec<crate::client_address::Cidr>,
    /// The payment provider, when online payment is on.
    pub payments: Option<std::sync::Arc<dyn crate::payments::PaymentProvider>>,
    /// Seals the portal's session cookies.
    pub cookie_key: CookieKey,
    /// The usage statistics' breakdown the city opted into (`statistics.breakdown`).
    pub breakdown: crate::statistics_breakdown::Breakdown,
    /// The built statistics reports, until the rollups change.
    pub statistics_reports: crate::statistics::cache::ReportCache,
}

impl AppState {
    /// Builds the services the configuration asks for (keys, the card verifier, …).
    pub async fn build(
        settings: Settings,
        pool: DbPool,
        catalog: Arc<Catalog>,
    ) -> anyhow::Result<Self> {
        let keyring = Keyring::from_settings(&settings.identity.session)?;
        let jpki = if settings.identity.providers.iter().any(|p| p == "jpki")
            && !settings.identity.jpki.trust_anchors.is_empty()
        {
            Some(JpkiVerifier::from_settings(&settings.identity.jpki).await?)
        } else {
            None
        };
        let oidc = if settings.identity.providers.iter().any(|p| p == "oidc")
            && !settings.identity.oidc.issuer.is_empty()
        {
            Some(
                OidcClient::discover(&settings.identity.oidc)
                    .await
                    .context("identity.oidc")?,
            )
        } else {
            None
        };
        let staff_oidc = if settings.staff.allows("oidc") {
            Some(
                OidcClient::discover(&settings.staff.oidc.client)
                    .await
                    .context("staff.oidc")?,
            )
        } else {
            None
        };
        let sealer = Sealer::from_config(&settings.submissions.sealing_keys)?;
        let calendar = BusinessCalendar::new(settings.calendar.holidays.iter().copied());
        let storage =
            Storage::from_settings(&settings.storage, &settings.submissions.attachments_dir)
                .context("storage")?;
        // Counted in PostgreSQL (identity::throttle), shared by every server.
        anyhow::ensure!(
            settings.staff.login_attempts_per_minute >= 1,
            "staff.login_attempts_per_minute must be at least 1"
        );
        let trusted_proxies = settings
            .server
            .trusted_proxies
            .iter()
            .filter_map(|proxy| crate::client_address::Cidr::parse(proxy))
            .collect();
        let cookie_key = CookieKey::from_settings(&settings);
        let payments = crate::payments::provider_from(&settings.payments);
        let breakdown = breakdown_from(&settings.statistics)?;
        Ok(Self {
            settings,
            pool,
            catalog,
            keyring,
            jpki,
            oidc,
            staff_oidc,
            sealer,
            calendar,
            storage,
            trusted_proxies,
            cookie_key,
            payments,
            breakdown,
            statistics_reports: crate::statistics::cache::ReportCache::default(),
        })
    }

    pub fn draft_limits(&self) -> crate::submissions::drafts::DraftLimits {
        crate::submissions::drafts::DraftLimits {
            ttl_days: self.settings.submissions.draft_ttl_days,
            max_per_resident: self.settings.submissions.max_drafts_per_resident,
        }
    }

    /// The usage statistics' report of `divisions` (None: the public one) today, from the cache
    /// while the rollups are unchanged.
    pub async fn statistics_report(
        &self,
        divisions: Option<&[String]>,
    ) -> Result<Arc<crate::statistics::report::StatisticsReport>, crate::db::DbError> {
        let mut connection = crate::db::connection(&self.pool).await?;
        let sources = crate::statistics::cache::Sources {
            catalog: &self.catalog,
            settings: &self.settings.statistics,
            breakdown: &self.breakdown,
        };
        self.statistics_reports
            .report(
                &mut connection,
                &sources,
                divisions,
                crate::forms::lint::city_today(),
            )
            .await
    }

    /// What the submission code borrows from the application.
    pub fn submissions(&self) -> crate::submissions::Context<'_> {
        crate::submissions::Context {
            catalog: &self.catalog,
            sealer: &self.sealer,
            calendar: &self.calendar,
            public_url: &self.settings.server.public_url,
            payments_online: self.payments.is_some(),
            breakdown: &self.breakdown,
        }
    }
}

/// The breakdown the city chose; its district table read and checked now, so a bad one stops
/// startup rather than an application.
pub fn breakdown_from(
    settings: &crate::config::StatisticsSettings,
) -> anyhow::Result<crate::statistics_breakdown::Breakdown> {
    use crate::statistics_breakdown::{Breakdown, Districts};
    Ok(match settings.breakdown.as_str() {
        "district" => {
            let text = std::fs::read_to_string(&settings.districts_file).with_context(|| {
                format!("statistics.districts_file: {}", settings.districts_file)
            })?;
            Breakdown::District(
                Districts::parse(&text, &settings.city_name_ja).with_context(|| {
                    format!("statistics.districts_file: {}", settings.districts_file)
                })?,
            )
        }
        "age_band" => Breakdown::AgeBand,
        _ => Breakdown::None,
    })
}

/// The key that seals the portal's session cookies (`crate::web::session`).
pub struct CookieKey(Key);

impl CookieKey {
    /// Derived from the first `identity.session.signing_keys` secret (with a label of its own, so
    /// the cookie key is never the JWT key), so page sessions survive a restart as tokens do; a
    /// random key when none is configured (development and tests, as for the tokens).
    pub fn from_settings(settings: &Settings) -> Self {
        let configured = settings.identity.session.signing_keys.expose_secret();
        let secret = configured
            .split(',')
            .map(str::trim)
            .find(|entry| !entry.is_empty())
            .and_then(|entry| entry.split_once(':'))
            .map(|(_, secret)| secret.as_bytes().to_vec());
        let material = match secret {
            Some(secret) => {
                let mut hasher = Sha512::new();
                hasher.update(b"madoguchi page session cookie v1\0");
                hasher.update(&secret);
                hasher.finalize().to_vec()
            }
            None => {
                let mut random = vec![0u8; 64];
                rand::rng().fill_bytes(&mut random);
                random
            }
        };
        // SHA-512 and the random branch both give the 64 bytes `Key::from` needs.
        Self(Key::from(&material))
    }

    pub fn key(&self) -> &Key {
        &self.0
    }
}

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("CookieKey(..)")
    }
}
