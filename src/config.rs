//! Layered settings: `config/default.toml` → `config/{profile}.toml` → `MADOGUCHI__…` variables.
//!
//! Settings are loaded once at startup, validated, and passed through application state — never a
//! global — so tests can build the app with any settings they like.

use std::path::{Path, PathBuf};

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    Development,
    Test,
    Production,
}

impl Profile {
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var("MADOGUCHI_PROFILE").as_deref() {
            Err(_) | Ok("") | Ok("development") => Ok(Self::Development),
            Ok("test") => Ok(Self::Test),
            Ok("production") => Ok(Self::Production),
            Ok(other) => anyhow::bail!(
                "MADOGUCHI_PROFILE={other} is not a profile: use development, test or production"
            ),
        }
    }

    fn file_stem(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Production => "production",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(skip, default = "default_profile")]
    pub profile: Profile,
    pub server: ServerSettings,
    pub database: crate::db::DatabaseSettings,
    pub forms: FormsSettings,
    pub log: LogSettings,
    pub identity: IdentitySettings,
    pub staff: StaffSettings,
    pub submissions: SubmissionSettings,
    pub storage: crate::storage::StorageSettings,
    pub calendar: CalendarSettings,
    pub email: EmailSettings,
    #[serde(default)]
    pub portal: PortalSettings,
    pub payments: PaymentSettings,
    #[serde(default)]
    pub statistics: StatisticsSettings,
}

/// The usage dashboard and its open data (`src/statistics/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StatisticsSettings {
    /// Counts below this are hidden, with whatever would let them be worked out.
    pub minimum_cell: i64,
    /// 全国地方公共団体コード: six digits, the last a check digit.
    pub city_code: String,
    pub city_name_ja: String,
    pub city_name_en: String,
    /// Months a page or file covers, ending with the current one.
    pub months: u32,
    /// Events younger than this are left for the next pass, so one whose transaction commits
    /// late (its id below an already-committed one) is never skipped by the watermark.
    pub settle_seconds: i64,
    /// The city's opt-in breakdown of receipts: `none`, `district` or `age_band` (never both).
    pub breakdown: String,
    /// The district table (`prefix,code,name`) read when `breakdown = "district"`.
    pub districts_file: String,
}

impl Default for StatisticsSettings {
    fn default() -> Self {
        Self {
            minimum_cell: 10,
            city_code: "172065".to_owned(),
            city_name_ja: "加賀市".to_owned(),
            city_name_en: "Kaga City".to_owned(),
            months: 12,
            settle_seconds: 60,
            breakdown: "none".to_owned(),
            districts_file: "config/districts.csv".to_owned(),
        }
    }
}

/// Whether a 全国地方公共団体コード's sixth digit is its check digit (総務省's rule: the first five
/// digits weighted 6, 5, 4, 3, 2; 11 minus the sum modulo 11, its last digit).
pub fn valid_city_code(code: &str) -> bool {
    let digits: Vec<u32> = code.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 6 || code.len() != 6 {
        return false;
    }
    let sum: u32 = digits[..5]
        .iter()
        .zip([6, 5, 4, 3, 2])
        .map(|(d, w)| d * w)
        .sum();
    (11 - sum % 11) % 10 == digits[5]
}

/// The resident portal's pages.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PortalSettings {
    /// How the pages get a `card-sign` application signed: empty (not offered on the pages) or
    /// `dev` (a development signer with a test card's key; refused by the production profile).
    #[serde(default)]
    pub signer: String,
    /// The dev signer's signature certificate and private key (PEM).
    #[serde(default)]
    pub dev_signer_certificate: String,
    #[serde(default)]
    pub dev_signer_key: String,
    /// What `prefill: city` fields start with: the city's postal code (or the first digits every
    /// address in the city shares) and its address (empty: the catalog's `city.address`).
    #[serde(default)]
    pub city_postal_code: String,
    #[serde(default)]
    pub city_address: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentSettings {
    /// `sbps`, `dev`, or empty for no online payment.
    pub provider: String,
    pub expire_after_minutes: i64,
    /// Hours a resident has to pay a fee staff set after review (事後決済).
    pub after_review_expire_after_hours: i64,
    pub reconcile_after_seconds: i64,
    pub reconcile_interval_seconds: u64,
    pub sbps: SbpsSettings,
}

impl PaymentSettings {
    pub fn enabled(&self) -> bool {
        !self.provider.is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SbpsSettings {
    pub purchase_url: String,
    pub api_url: String,
    pub merchant_id: String,
    pub service_id: String,
    pub hash_key: SecretString,
    pub query_function_id: String,
    pub refund_function_id: String,
    /// The partial refund (部分返金要求), whose amount goes under `pay_option_manage`.
    pub partial_refund_function_id: String,
    /// Where the daily settlement file is downloaded; empty: no settlement report.
    #[serde(default)]
    pub settlement_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    Smtp,
    File,
    Log,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Implicit,
    None,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmailSettings {
    pub transport: EmailTransport,
    pub file_dir: PathBuf,
    pub from: String,
    pub smtp_host: String,
    pub smtp_port: u16,
    pub smtp_tls: SmtpTls,
    pub smtp_ca_certificate: String,
    pub smtp_username: String,
    pub smtp_password: SecretString,
    pub smtp_timeout_seconds: u64,
    pub max_attempts: i32,
    pub retry_base_seconds: i64,
    pub worker_in_serve: bool,
    pub poll_interval_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CalendarSettings {
    pub holidays: Vec<chrono::NaiveDate>,
}

fn default_profile() -> Profile {
    Profile::Development
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub public_url: String,
    pub max_json_body_bytes: usize,
    pub tls_cert_path: String,
    pub tls_key_path: String,
    pub workers: usize,
    /// `/metrics` without a token: open in development and test, closed in production.
    pub metrics_open: bool,
    /// A bearer token that opens `/metrics` (a secret: set it in the environment).
    pub metrics_token: SecretString,
    /// Proxies (CIDRs) whose `Forwarded` / `X-Forwarded-For` name the client.
    pub trusted_proxies: Vec<String>,
    pub upload_body_timeout_seconds: u64,
    /// Longest a non-upload request body may take to arrive before a 408.
    pub body_timeout_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FormsSettings {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IdentitySettings {
    pub providers: Vec<String>,
    pub challenge_ttl_seconds: i64,
    pub session: SessionSettings,
    pub jpki: JpkiSettings,
    pub oidc: OidcSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SessionSettings {
    pub issuer: String,
    pub audience: String,
    pub access_ttl_seconds: i64,
    pub refresh_ttl_seconds: i64,
    /// How long after a refresh token was rotated it is still exchanged (for the concurrent
    /// requests that carried it) instead of being taken for a stolen copy.
    #[serde(default = "default_refresh_reuse_grace")]
    pub refresh_reuse_grace_seconds: i64,
    pub signing_keys: SecretString,
}

fn default_refresh_reuse_grace() -> i64 {
    10
}

#[derive(Debug, Clone, Deserialize)]
pub struct JpkiSettings {
    pub trust_anchors: Vec<PathBuf>,
    pub crl: String,
    pub crl_refresh_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OidcSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    pub private_key_path: String,
    pub private_key_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub id_token_algorithm: String,
    /// Residents only: how strongly this provider proves who someone is. The Digital
    /// Authentication App signs in with the My Number Card (`card-auth`); a city's own IdP
    /// without the card is `none`.
    #[serde(default = "card_auth")]
    pub assurance: crate::forms::Assurance,
}

fn card_auth() -> crate::forms::Assurance {
    crate::forms::Assurance::CardAuth
}

/// Staff sign-in through the city's own OpenID Provider.
#[derive(Debug, Clone, Deserialize)]
pub struct StaffOidcSettings {
    #[serde(flatten)]
    pub client: OidcSettings,
    /// The ID token claim that names a staff account's `login`. It links an account to the
    /// provider's subject on the first sign-in; afterwards only the subject counts.
    pub login_claim: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StaffSettings {
    /// `password` and/or `oidc` (the city's own OpenID Provider, `[staff.oidc]`).
    pub sign_in: Vec<String>,
    /// Failed password attempts before each further attempt must wait.
    pub max_failed_logins: i32,
    /// The first wait, in seconds; it doubles with each further failure.
    pub login_delay_seconds: i64,
    /// The longest wait, in seconds.
    pub login_delay_max_seconds: i64,
    pub login_attempts_per_minute: u32,
    pub oidc: StaffOidcSettings,
    /// My Numbers one staff member may reveal in an hour.
    pub my_number_reveals_per_hour: i64,
}

impl StaffSettings {
    pub fn allows(&self, method: &str) -> bool {
        self.sign_in.iter().any(|allowed| allowed == method)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubmissionSettings {
    pub draft_ttl_days: i64,
    pub attachments_dir: PathBuf,
    pub max_attachment_mb: usize,
    pub max_attachments_per_draft: i64,
    pub max_drafts_per_resident: i64,
    pub max_pending_upload_mb_per_resident: i64,
    pub sealing_keys: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Settings that are lists; in the environment they are comma-separated
/// (`MADOGUCHI__STAFF__SIGN_IN=password,oidc`).
const LIST_KEYS: [&str; 7] = [
    "identity.providers",
    "identity.oidc.scopes",
    "identity.jpki.trust_anchors",
    "staff.sign_in",
    "staff.oidc.scopes",
    "calendar.holidays",
    "server.trusted_proxies",
];

impl Settings {
    /// Loads the layers for `profile` from `config_dir` and the environment, then validates.
    pub fn load(config_dir: &Path, profile: Profile) -> anyhow::Result<Self> {
        Self::load_with_environment(config_dir, profile, None)
    }

    /// As [`Self::load`], with the variables taken from `variables` instead of the process
    /// environment when given (tests).
    pub fn load_with_environment(
        config_dir: &Path,
        profile: Profile,
        variables: Option<config::Map<String, String>>,
    ) -> anyhow::Result<Self> {
        let mut environment = config::Environment::with_prefix("MADOGUCHI")
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .list_separator(",")
            .source(variables);
        // Only these keys are lists, so a comma in any other value (a name, a URL) stays put.
        for key in LIST_KEYS {
            environment = environment.with_list_parse_key(key);
        }
        let layered = config::Config::builder()
            .add_source(config::File::from(config_dir.join("default.toml")))
            .add_source(config::File::from(config_dir.join(profile.file_stem())).required(false))
            .add_source(environment)
            .build()
            .with_context(|| format!("reading configuration from {}", config_dir.display()))?;
        let mut settings: Settings = layered
            .try_deserialize()
            .context("configuration has a missing or mistyped key")?;
        settings.profile = profile;
        settings.validate()?;
        Ok(settings)
    }

    /// Loads from `./config` with the profile named by `MADOGUCHI_PROFILE`.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::load(Path::new("config"), Profile::from_env()?)
    }

    /// Refuses settings that would be unsafe or cannot work. The production profile is stricter.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        for provider in &self.identity.providers {
            if !["jpki", "oidc", "dev"].contains(&provider.as_str()) {
                problems.push(format!("identity.providers: unknown provider `{provider}`"));
            }
        }
        if !valid_city_code(&self.statistics.city_code) {
            problems.push(format!(
                "statistics.city_code: `{}` is not a 全国地方公共団体コード (six digits with its check digit)",
                self.statistics.city_code
            ));
        }
        if self.statistics.minimum_cell < 1 {
            problems.push("statistics.minimum_cell: give 1 or more (10 is usual)".to_owned());
        }
        if !(1..=120).contains(&self.statistics.months) {
            problems.push("statistics.months: give 1 to 120".to_owned());
        }
        match self.statistics.breakdown.as_str() {
            "none" | "district" | "age_band" => {}
            other if other == "both" || (other.contains("district") && other.contains("age")) => {
                problems.push(format!(
                    "statistics.breakdown: `{other}` asks for district and age band together; \
                 choose one of them (or none): published together they could single a resident out"
                ));
            }
            other => problems.push(format!(
                "statistics.breakdown: `{other}` is not one of none, district, age_band"
            )),
        }
        for method in &self.staff.sign_in {
            if !["password", "oidc"].contains(&method.as_str()) {
                problems.push(format!("staff.sign_in: unknown method `{method}`"));
            }
        }
        match self.portal.signer.as_str() {
            "" => {}
            "dev" => {
                if self.portal.dev_signer_certificate.is_empty()
                    || self.portal.dev_signer_key.is_empty()
                {
                    problems.push(
                        "portal.signer = \"dev\" needs portal.dev_signer_certificate and portal.dev_signer_key"
                            .to_owned(),
                    );
                }
            }
            other => problems.push(format!("portal.signer: unknown signer `{other}`")),
        }
        if self.staff.sign_in.is_empty() {
            problems.push("staff.sign_in: staff need at least one way to sign in".to_owned());
        }
        if self.staff.allows("oidc") && self.staff.oidc.client.issuer.is_empty() {
            problems.push("staff.sign_in has `oidc`: set staff.oidc.issuer".to_owned());
        }
        if self.identity.oidc.assurance == crate::forms::Assurance::CardSign {
            problems.push(
                "identity.oidc.assurance: a sign-in proves at most card-auth; card-sign is per application"
                    .to_owned(),
            );
        }
        if self.staff.max_failed_logins < 1
            || self.staff.login_delay_seconds < 1
            || self.staff.login_delay_max_seconds < self.staff.login_delay_seconds
        {
            problems.push(
                "staff: max_failed_logins and login_delay_seconds must be at least 1, login_delay_max_seconds at least login_delay_seconds"
                    .to_owned(),
            );
        }
        if self.storage.backend == crate::storage::Backend::S3 && self.storage.s3.bucket.is_empty()
        {
            problems.push("storage.backend = \"s3\" needs storage.s3.bucket".to_owned());
        }
        if self.profile == Profile::Production
            && self.storage.backend == crate::storage::Backend::Memory
        {
            problems.push(
                "storage.backend = \"memory\" loses every file at exit: not in production"
                    .to_owned(),
            );
        }
        for proxy in &self.server.trusted_proxies {
            if crate::client_address::Cidr::parse(proxy).is_none() {
                problems.push(format!(
                    "server.trusted_proxies: `{proxy}` is not an address or a CIDR"
                ));
            }
        }
        if self.database.pool_size == 0 {
            problems.push("database.pool_size must be at least 1".to_owned());
        }
        if self.server.tls_cert_path.is_empty() != self.server.tls_key_path.is_empty() {
            problems.push("server.tls_cert_path and server.tls_key_path go together".to_owned());
        }
        if !self.server.public_url.starts_with("http://")
            && !self.server.public_url.starts_with("https://")
        {
            problems.push("server.public_url must be an http(s) URL".to_owned());
        }
        if !["", "sbps", "dev"].contains(&self.payments.provider.as_str()) {
            problems.push(format!(
                "payments.provider: unknown provider `{}` (sbps, dev, or empty)",
                self.payments.provider
            ));
        }
        if self.payments.provider == "sbps"
            && (self.payments.sbps.purchase_url.is_empty()
                || self.payments.sbps.merchant_id.is_empty()
                || self.payments.sbps.hash_key.expose_secret().is_empty())
        {
            problems.push(
                "payments.sbps: purchase_url, merchant_id and hash_key are needed".to_owned(),
            );
        }
        if self.profile == Profile::Production {
            if self.payments.provider == "dev" {
                problems.push(
                    "production: the `dev` payment provider takes no money; use a real one"
                        .to_owned(),
                );
            }
            if !self.server.public_url.starts_with("https://") {
                problems.push("production: server.public_url must be https".to_owned());
            }
            if self.portal.signer == "dev" {
                problems.push("production: the `dev` signer is for demos only".to_owned());
            }
            if self.identity.providers.iter().any(|p| p == "dev") {
                problems
                    .push("production: the `dev` identity provider is for demos only".to_owned());
            }
            if self
                .identity
                .session
                .signing_keys
                .expose_secret()
                .is_empty()
            {
                problems.push(
                    "production: set identity.session.signing_keys (tokens would not survive a restart)"
                        .to_owned(),
                );
            }
            if self.submissions.sealing_keys.expose_secret().is_empty() {
                problems.push(
                    "production: set submissions.sealing_keys (My Numbers could not be read after a restart)"
                        .to_owned(),
                );
            }
            if self.email.transport != EmailTransport::Smtp {
                problems.push("production: email.transport must be smtp".to_owned());
            }
            if self.email.smtp_tls == SmtpTls::None {
                problems.push(
                    "production: email.smtp_tls must be starttls or implicit (mail would cross the network in clear)"
                        .to_owned(),
                );
            }
            for (key, issuer) in [
                ("identity.oidc.issuer", &self.identity.oidc.issuer),
                ("staff.oidc.issuer", &self.staff.oidc.client.issuer),
            ] {
                if issuer.starts_with("http://") {
                    problems.push(format!("production: {key} must be https"));
                }
            }
            if self.database.url.is_empty() && std::env::var_os("DATABASE_URL").is_none() {
                problems.push(
                    "production: set DATABASE_URL (no local or throwaway database in production)"
                        .to_owned(),
                );
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("invalid configuration:\n  - {}", problems.join("\n  - "))
        }
    }

    pub fn bind_address(&self) -> (String, u16) {
        (self.server.host.clone(), self.server.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_loads_from_the_repository_config() {
        for profile in [Profile::Development, Profile::Test] {
            let settings = Settings::load(Path::new("config"), profile);
            assert!(settings.is_ok(), "{profile:?}: {settings:?}");
        }
    }

    #[test]
    fn production_refuses_the_dev_provider_and_missing_keys() {
        let error = Settings::load(Path::new("config"), Profile::Production)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("signing_keys"), "{error}");
        assert!(error.contains("sealing_keys"), "{error}");
    }

    #[test]
    fn lists_come_from_the_environment_comma_separated() {
        let variables = [
            ("MADOGUCHI__STAFF__SIGN_IN", "password,oidc"),
            (
                "MADOGUCHI__STAFF__OIDC__ISSUER",
                "https://idp.city.example.lg.jp",
            ),
            ("MADOGUCHI__IDENTITY__PROVIDERS", "jpki"),
            (
                "MADOGUCHI__EMAIL__FROM",
                "Kaga City, e-applications <noreply@city.example.lg.jp>",
            ),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
        let settings =
            Settings::load_with_environment(Path::new("config"), Profile::Test, Some(variables))
                .expect("settings load");
        assert_eq!(settings.staff.sign_in, ["password", "oidc"]);
        assert_eq!(settings.identity.providers, ["jpki"]);
        assert_eq!(
            settings.email.from,
            "Kaga City, e-applications <noreply@city.example.lg.jp>"
        );
    }

    #[test]
    fn staff_oidc_needs_an_issuer() {
        let variables = [("MADOGUCHI__STAFF__SIGN_IN".to_owned(), "oidc".to_owned())]
            .into_iter()
            .collect();
        let error =
            Settings::load_with_environment(Path::new("config"), Profile::Test, Some(variables))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
        assert!(error.contains("set staff.oidc.issuer"), "{error}");
    }

    #[test]
    fn statistics_breakdown_is_one_of_district_and_age_band_never_both() {
        let load = |value: &str| {
            let variables = [(
                "MADOGUCHI__STATISTICS__BREAKDOWN".to_owned(),
                value.to_owned(),
            )]
            .into_iter()
            .collect();
            Settings::load_with_environment(Path::new("config"), Profile::Test, Some(variables))
                .err()
                .map(|e| format!("{e:#}"))
        };
        for value in ["none", "district", "age_band"] {
            assert_eq!(load(value), None, "{value}");
        }
        for both in ["district,age_band", "age_band+district", "both"] {
            let error = load(both).unwrap_or_default();
            assert!(
                error.contains("district and age band together"),
                "{both}: {error}"
            );
        }
        let error = load("ward").unwrap_or_default();
        assert!(
            error.contains("not one of none, district, age_band"),
            "{error}"
        );
    }

    #[test]
    fn production_refuses_plain_http_public_url() {
        let error = Settings::load(Path::new("config"), Profile::Production)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("public_url must be https"), "{error}");
    }
}

#[cfg(test)]
mod city_code_tests {
    use super::valid_city_code;

    #[test]
    fn city_codes_carry_their_check_digit() {
        assert!(valid_city_code("172065"), "Kaga City");
        assert!(valid_city_code("131016"), "Chiyoda");
        assert!(valid_city_code("011002"), "Sapporo");
        assert!(!valid_city_code("172066"));
        assert!(!valid_city_code("17206"));
        assert!(!valid_city_code("17206５"));
    }
}
