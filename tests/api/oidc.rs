//! OpenID Connect login against a real OpenID Provider (tests/fixtures/oidc).
//!
//! Each test starts its own provider (oidc-provider, ~0.5 s) on 127.0.0.1 and logs in headlessly:
//! the fixture's interaction page logs in `login_hint` without a form.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use madoguchi::config::OidcSettings;
use madoguchi::forms::Assurance;
use madoguchi::identity::AuthError;
use madoguchi::identity::oidc::OidcClient;
use reqwest::Url;
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, BufReader};

const CLIENT_ID: &str = "madoguchi-test";
const CLIENT_SECRET: &str = "s3cret for tests";
// Never called: the login stops at the redirect to it.
const REDIRECT_URI: &str = "http://127.0.0.1:9/api/v1/auth/oidc/callback";
const STAFF_REDIRECT_URI: &str = "http://127.0.0.1:9/api/v1/staff/auth/oidc/callback";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running test OpenID Provider; killed on drop (and it exits by itself when its stdin closes).
struct Provider {
    issuer: String,
    _child: tokio::process::Child,
}

impl Provider {
    /// Starts `node server.mjs` with a random port and `env`, waiting (bounded) for `READY`.
    async fn start(env: &[(&str, &str)]) -> Self {
        let fixture = crate::fixtures::node_fixture("oidc");
        let stderr = tempfile::tempfile().expect("temp file for the provider's stderr");
        let mut command = tokio::process::Command::new("node");
        command
            .arg("server.mjs")
            .current_dir(fixture)
            .env("PORT", "0")
            .env("CLIENT_ID", CLIENT_ID)
            .env("REDIRECT_URI", REDIRECT_URI)
            .env("EXIT_ON_STDIN_EOF", "1")
            .env_remove("ISSUER")
            .env_remove("HOST")
            .env_remove("ACCOUNTS")
            .env_remove("DEFAULT_SUB")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.try_clone().expect("clone stderr file"))
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("node runs (is Node.js installed?)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let read =
            tokio::time::timeout(STARTUP_TIMEOUT, BufReader::new(stdout).read_line(&mut line))
                .await;
        let Some(issuer) = line.trim().strip_prefix("READY ").map(str::to_owned) else {
            let _ = child.start_kill();
            let mut stderr = stderr;
            let log = crate::fixtures::read_log(&mut stderr);
            panic!("the test OpenID Provider did not start ({read:?}, stdout {line:?}):\n{log}");
        };
        Self {
            issuer,
            _child: child,
        }
    }

    /// A provider whose client authenticates with client_secret_basic.
    async fn with_client_secret() -> Self {
        Self::start(&[
            ("CLIENT_AUTH", "client_secret_basic"),
            ("CLIENT_SECRET", CLIENT_SECRET),
        ])
        .await
    }

    fn settings(&self) -> OidcSettings {
        settings(&self.issuer)
    }
}

/// Client-secret settings for the provider at `issuer`, RS256.
fn settings(issuer: &str) -> OidcSettings {
    OidcSettings {
        issuer: issuer.to_owned(),
        client_id: CLIENT_ID.to_owned(),
        client_secret: SecretString::from(CLIENT_SECRET),
        private_key_path: String::new(),
        private_key_id: String::new(),
        redirect_uri: REDIRECT_URI.to_owned(),
        scopes: ["openid", "name", "address", "birthdate", "gender"]
            .map(str::to_owned)
            .to_vec(),
        id_token_algorithm: "RS256".to_owned(),
        assurance: Assurance::CardAuth,
    }
}

/// What the provider sent the browser back with.
#[derive(Debug)]
struct Callback {
    code: String,
    state: String,
    iss: String,
}

/// A headless browser: follows the provider's redirects by hand (cookies too, as reqwest's
/// `cookies` feature is off) until the redirect to our callback, which it does not follow.
async fn log_in(authorization_url: &str, login_hint: &str) -> Callback {
    log_in_back_to(authorization_url, login_hint, REDIRECT_URI).await
}

async fn log_in_back_to(authorization_url: &str, login_hint: &str, redirect_uri: &str) -> Callback {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(HTTP_TIMEOUT)
        .no_proxy()
        .build()
        .expect("http client");
    let mut url = Url::parse(authorization_url).expect("authorization URL");
    url.query_pairs_mut().append_pair("login_hint", login_hint);
    let mut cookies = BTreeMap::<String, String>::new();
    for _ in 0..10 {
        assert_eq!(
            url.host_str(),
            Some("127.0.0.1"),
            "left the test host: {url}"
        );
        let cookie_header = cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        let response = browser
            .get(url.clone())
            .header(reqwest::header::COOKIE, cookie_header)
            .send()
            .await
            .expect("provider answers");
        for set_cookie in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let set_cookie = set_cookie.to_str().expect("ASCII cookie");
            let pair = set_cookie.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let expired = set_cookie
                    .to_ascii_lowercase()
                    .contains("expires=thu, 01 jan 1970");
                if value.is_empty() || expired {
                    cookies.remove(name.trim());
                } else {
                    cookies.insert(name.trim().to_owned(), value.to_owned());
                }
            }
        }
        assert!(
            response.status().is_redirection(),
            "expected a redirect from {url}, got {}: {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .expect("Location")
            .to_str()
            .expect("ASCII Location");
        let next = url.join(location).expect("Location is a URL");
        if next.as_str().starts_with(redirect_uri) {
            let query: BTreeMap<String, String> = next.query_pairs().into_owned().collect();
            assert!(!query.contains_key("error"), "provider refused: {query:?}");
            return Callback {
                code: query.get("code").expect("code").clone(),
                state: query.get("state").expect("state").clone(),
                iss: query.get("iss").expect("iss (RFC 9207)").clone(),
            };
        }
        url = next;
    }
    panic!("no redirect to the callback after 10 hops");
}

/// Discovers, starts a login with `state`, and logs `login_hint` in.
async fn authorize(client: &OidcClient, login_hint: &str) -> (Callback, String, String) {
    let request = client.authorization_request("challenge-id-1");
    let callback = log_in(&request.url, login_hint).await;
    assert_eq!(callback.state, "challenge-id-1");
    (callback, request.nonce, request.pkce_verifier)
}

#[tokio::test]
async fn a_resident_logs_in_with_client_secret_basic() {
    let provider = Provider::with_client_secret().await;
    let client = OidcClient::discover(&provider.settings())
        .await
        .expect("discovery");

    let request = client.authorization_request("challenge-id-1");
    let url = Url::parse(&request.url).expect("authorization URL");
    let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(url.path(), "/auth");
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["state"], "challenge-id-1");
    assert_eq!(query["nonce"], request.nonce);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["scope"], "openid name address birthdate gender");
    assert_eq!(query["redirect_uri"], REDIRECT_URI);

    let callback = log_in(&request.url, "test-resident-0042").await;
    assert_eq!(callback.state, "challenge-id-1");
    assert_eq!(callback.iss, provider.issuer);
    let identity = client
        .complete(&callback.code, &request.pkce_verifier, &request.nonce)
        .await
        .expect("login completes");

    assert_eq!(identity.provider, "oidc");
    assert_eq!(identity.issuer, provider.issuer);
    assert_eq!(identity.subject, "test-resident-0042");
    assert_eq!(identity.assurance, Assurance::CardAuth);
    assert_eq!(identity.email, None);
}

/// An RSA key for the client: the PEM file and the public JWK Set the provider is given.
fn client_key(dir: &Path) -> (String, String) {
    let pem = dir.join("client.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .args(["-pkeyopt", "rsa_keygen_pubexp:65537", "-out"])
        .arg(&pem)
        .stderr(Stdio::null()) // its progress dots
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl genpkey");
    let modulus = std::process::Command::new("openssl")
        .args(["rsa", "-noout", "-modulus", "-in"])
        .arg(&pem)
        .output()
        .expect("openssl runs");
    let modulus = String::from_utf8(modulus.stdout).expect("ASCII");
    let modulus = modulus
        .trim()
        .strip_prefix("Modulus=")
        .expect("Modulus=<hex>");
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(hex::decode(modulus).expect("hex modulus"));
    let jwks = serde_json::json!({"keys": [{
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "client-key-1", "n": n, "e": "AQAB",
    }]});
    (pem.to_string_lossy().into_owned(), jwks.to_string())
}

#[tokio::test]
async fn a_resident_logs_in_with_private_key_jwt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (pem, jwks) = client_key(dir.path());
    let provider =
        Provider::start(&[("CLIENT_AUTH", "private_key_jwt"), ("CLIENT_JWKS", &jwks)]).await;
    let settings = OidcSettings {
        client_secret: SecretString::from(""),
        private_key_path: pem,
        private_key_id: "client-key-1".to_owned(),
        ..provider.settings()
    };
    let client = OidcClient::discover(&settings).await.expect("discovery");

    let (callback, nonce, verifier) = authorize(&client, "test-resident-0001").await;
    let identity = client
        .complete(&callback.code, &verifier, &nonce)
        .await
        .expect("login completes");

    assert_eq!(identity.issuer, provider.issuer);
    assert_eq!(identity.subject, "test-resident-0001");
}

/// An EC P-256 private key (PKCS#8 PEM) made by openssl, and its public JWK Set.
fn ec_client_key(dir: &Path) -> (String, String) {
    let pem = dir.join("client-ec.pem");
    let status = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&pem)
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl genpkey EC");
    let public = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&pem)
        .output()
        .expect("openssl runs");
    // SubjectPublicKeyInfo ends with the uncompressed point 04 ‖ x ‖ y.
    let point = &public.stdout[public.stdout.len() - 65..];
    assert_eq!(point[0], 4, "uncompressed EC point");
    let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "client-ec-1",
        "x": encode(&point[1..33]), "y": encode(&point[33..65]),
    }]});
    (pem.to_string_lossy().into_owned(), jwks.to_string())
}

#[tokio::test]
async fn a_resident_logs_in_with_private_key_jwt_signed_es256() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (pem, jwks) = ec_client_key(dir.path());
    let provider =
        Provider::start(&[("CLIENT_AUTH", "private_key_jwt"), ("CLIENT_JWKS", &jwks)]).await;
    let settings = OidcSettings {
        client_secret: SecretString::from(""),
        private_key_path: pem,
        private_key_id: "client-ec-1".to_owned(),
        ..provider.settings()
    };
    let client = OidcClient::discover(&settings)
        .await
        .expect("an EC key is accepted");

    let (callback, nonce, verifier) = authorize(&client, "test-resident-0001").await;
    let identity = client
        .complete(&callback.code, &verifier, &nonce)
        .await
        .expect("the provider accepts the ES256 client assertion");
    assert_eq!(identity.subject, "test-resident-0001");
}

#[tokio::test]
async fn private_key_jwt_with_another_key_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_, registered) = client_key(dir.path());
    let other_dir = tempfile::tempdir().expect("temp dir");
    let (other_pem, _) = client_key(other_dir.path());
    let provider = Provider::start(&[
        ("CLIENT_AUTH", "private_key_jwt"),
        ("CLIENT_JWKS", &registered),
    ])
    .await;
    let settings = OidcSettings {
        client_secret: SecretString::from(""),
        private_key_path: other_pem,
        private_key_id: "client-key-1".to_owned(),
        ..provider.settings()
    };
    let client = OidcClient::discover(&settings).await.expect("discovery");

    let (callback, nonce, verifier) = authorize(&client, "test-resident-0001").await;
    let error = client.complete(&callback.code, &verifier, &nonce).await;

    assert!(
        matches!(&error, Err(AuthError::ProviderRefused(code)) if code == "invalid_client"),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_replayed_code_is_refused_by_the_provider() {
    let provider = Provider::with_client_secret().await;
    let client = OidcClient::discover(&provider.settings())
        .await
        .expect("discovery");
    let (callback, nonce, verifier) = authorize(&client, "test-resident-0001").await;
    client
        .complete(&callback.code, &verifier, &nonce)
        .await
        .expect("first use");

    let replay = client.complete(&callback.code, &verifier, &nonce).await;

    assert!(
        matches!(&replay, Err(AuthError::ProviderRefused(code)) if code == "invalid_grant"),
        "{replay:?}"
    );
}

#[tokio::test]
async fn a_wrong_nonce_is_an_invalid_token() {
    let provider = Provider::with_client_secret().await;
    let client = OidcClient::discover(&provider.settings())
        .await
        .expect("discovery");
    let (callback, _nonce, verifier) = authorize(&client, "test-resident-0001").await;
    // The nonce of another login (another browser's challenge).
    let other_nonce = client.authorization_request("challenge-id-2").nonce;

    let result = client
        .complete(&callback.code, &verifier, &other_nonce)
        .await;

    assert!(matches!(result, Err(AuthError::InvalidToken)), "{result:?}");
}

#[tokio::test]
async fn the_id_token_algorithm_is_pinned_by_configuration() {
    // The provider signs RS256; we accept only ES256.
    let provider = Provider::with_client_secret().await;
    let settings = OidcSettings {
        id_token_algorithm: "ES256".to_owned(),
        ..provider.settings()
    };
    let client = OidcClient::discover(&settings).await.expect("discovery");
    let (callback, nonce, verifier) = authorize(&client, "test-resident-0001").await;

    let result = client.complete(&callback.code, &verifier, &nonce).await;

    assert!(matches!(result, Err(AuthError::InvalidToken)), "{result:?}");
}

#[tokio::test]
async fn an_es256_provider_works_when_configured() {
    let provider = Provider::start(&[
        ("CLIENT_AUTH", "client_secret_basic"),
        ("CLIENT_SECRET", CLIENT_SECRET),
        ("ID_TOKEN_ALG", "ES256"),
    ])
    .await;
    let settings = OidcSettings {
        id_token_algorithm: "ES256".to_owned(),
        ..provider.settings()
    };
    let client = OidcClient::discover(&settings).await.expect("discovery");
    let (callback, nonce, verifier) = authorize(&client, "test-resident-0007").await;

    let identity = client
        .complete(&callback.code, &verifier, &nonce)
        .await
        .expect("login completes");

    assert_eq!(identity.subject, "test-resident-0007");
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_by_the_provider() {
    let provider = Provider::with_client_secret().await;
    let settings = OidcSettings {
        client_secret: SecretString::from("not the secret"),
        ..provider.settings()
    };
    let client = OidcClient::discover(&settings).await.expect("discovery");
    let (callback, nonce, verifier) = authorize(&client, "test-resident-0001").await;

    let result = client.complete(&callback.code, &verifier, &nonce).await;

    assert!(
        matches!(&result, Err(AuthError::ProviderRefused(code)) if code == "invalid_client"),
        "{result:?}"
    );
}

#[tokio::test]
async fn discovery_of_an_absent_provider_fails_quickly() {
    // A port nobody listens on: connection refused, no hang.
    let settings = settings("http://127.0.0.1:9");
    let started = std::time::Instant::now();
    assert!(OidcClient::discover(&settings).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// The whole sign-in through this service's own HTTP API: start, the provider's login, the
/// callback, a session for the resident; and a forged `state`, a replayed callback and a foreign
/// `iss` refused.
#[actix_web::test]
async fn a_resident_signs_in_through_the_api_and_forgeries_are_refused() {
    use actix_web::test::TestRequest;

    let provider = Provider::with_client_secret().await;
    let mut settings = crate::helpers::test_settings();
    settings.identity.providers = vec!["oidc".to_owned()];
    settings.identity.oidc = provider.settings();
    let app = crate::helpers::TestApp::with_settings(settings).await;

    let (status, started) = app
        .json(TestRequest::post().uri("/api/v1/auth/oidc/start"))
        .await;
    assert_eq!(status, 200, "{started}");
    let url = started["authorization_url"]
        .as_str()
        .expect("authorization_url");
    let callback = log_in(url, "resident-api-42").await;
    assert_eq!(
        callback.state,
        started["challenge_id"].as_str().unwrap_or_default()
    );

    let query = |state: &str, iss: &str| {
        format!(
            // ':' and '/' may stand unencoded in a query (RFC 3986 §3.4).
            "/api/v1/auth/oidc/callback?code={}&state={state}&iss={iss}",
            callback.code
        )
    };
    let (status, problem) = app
        .json(TestRequest::get().uri(&query(&callback.state, "http://127.0.0.1:1/evil")))
        .await;
    assert_eq!(status, 401, "{problem}");
    assert_eq!(problem["code"], "auth.invalid_challenge");

    let forged = uuid::Uuid::now_v7().to_string();
    let (status, problem) = app
        .json(TestRequest::get().uri(&query(&forged, &callback.iss)))
        .await;
    assert_eq!(status, 401, "{problem}");
    assert_eq!(problem["code"], "auth.invalid_challenge");

    let (status, tokens) = app
        .json(TestRequest::get().uri(&query(&callback.state, &callback.iss)))
        .await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().expect("access token");
    let (status, me) = app.get_as("/api/v1/me", token).await;
    assert_eq!(status, 200);
    assert_eq!(me["provider"], "oidc");
    assert_eq!(me["assurance"], "card-auth");
    assert!(
        me.get("name").is_none() && !me.to_string().contains("試験"),
        "the account keeps no basic facts: {me}"
    );
    // The session does, from the ID token (the fixture's generic fictional resident).
    let (status, facts) = app.get_as("/api/v1/me/facts", token).await;
    assert_eq!(status, 200, "{facts}");
    assert_eq!(facts["source"], "sign_in");
    assert_eq!(facts["issuer"], provider.issuer);
    assert_eq!(
        facts["facts"],
        serde_json::json!({
            "name": "試験 太郎",
            "address": "石川県加賀市テスト町２－２",
            "birth_date": "1990-01-01",
            "gender": "male",
        })
    );

    let (status, problem) = app
        .json(TestRequest::get().uri(&query(&callback.state, &callback.iss)))
        .await;
    assert_eq!(status, 401, "a replayed callback: {problem}");
}

/// Signing in on the pages: the portal sends the browser to the provider, and the callback
/// (to the page path) is accepted only in the browser that started it, once, landing back on
/// the page the resident came from.
#[actix_web::test]
async fn a_resident_signs_in_on_the_pages_and_lands_where_they_were() {
    use crate::portal_flow::{Browser, hidden, pairs};
    const PORTAL_REDIRECT_URI: &str = "http://127.0.0.1:9/sign-in/oidc/callback";

    let provider = Provider::start(&[
        ("CLIENT_AUTH", "client_secret_basic"),
        ("CLIENT_SECRET", CLIENT_SECRET),
        ("REDIRECT_URI", PORTAL_REDIRECT_URI),
    ])
    .await;
    let mut settings = crate::helpers::test_settings();
    settings.identity.providers = vec!["oidc".to_owned()];
    settings.identity.oidc = OidcSettings {
        redirect_uri: PORTAL_REDIRECT_URI.to_owned(),
        ..provider.settings()
    };
    let app = crate::helpers::TestApp::with_settings(settings).await;
    let mut browser = Browser::new(&app);
    let page = browser.get("/sign-in?next=/drafts").await;
    assert!(
        page.html.contains(r#"action="/sign-in/oidc""#),
        "{}",
        page.html
    );
    assert!(
        !page.html.contains(r#"action="/sign-in/dev""#),
        "dev is not offered"
    );
    let started = browser
        .post(
            "/sign-in/oidc",
            &pairs(&[("csrf", &hidden(&page.html, "csrf")), ("next", "/drafts")]),
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.html);
    let callback =
        log_in_back_to(&started.location, "resident-portal-7", PORTAL_REDIRECT_URI).await;
    let back = format!(
        "/sign-in/oidc/callback?code={}&state={}&iss={}",
        callback.code, callback.state, callback.iss
    );

    let mut stranger = Browser::new(&app);
    let refused = stranger.get(&back).await;
    assert_eq!(
        refused.status, 401,
        "another browser's callback: {}",
        refused.html
    );

    let landed = browser.get(&back).await;
    assert_eq!(landed.status, 303, "{}", landed.html);
    assert_eq!(landed.location, "/drafts");
    let drafts = browser.get("/drafts").await;
    assert_eq!(drafts.status, 200, "{}", drafts.html);
    assert_eq!(browser.get(&back).await.status, 401, "a replayed callback");
}

/// Staff sign in through the city's own IdP: the first sign-in links the account named by the
/// login claim to the IdP's subject; afterwards another IdP user claiming the same login, an
/// unknown person, a deactivated account and a resident's sign-in attempt are all refused.
#[actix_web::test]
async fn staff_sign_in_through_the_city_idp_and_the_link_is_pinned_to_the_subject() {
    use actix_web::test::TestRequest;
    use madoguchi::config::StaffOidcSettings;
    use madoguchi::identity::staff::{Membership, Role};

    let accounts = serde_json::json!({
        "entra-7f3a": {"preferred_username": "sato@city.example.lg.jp", "email": "sato@city.example.lg.jp", "email_verified": true},
        "entra-impostor": {"preferred_username": "sato@city.example.lg.jp"},
        "entra-stranger": {"preferred_username": "stranger@city.example.lg.jp"},
    });
    let provider = Provider::start(&[
        ("CLIENT_AUTH", "client_secret_basic"),
        ("CLIENT_SECRET", CLIENT_SECRET),
        (
            "REDIRECT_URI",
            &format!("{REDIRECT_URI},{STAFF_REDIRECT_URI}"),
        ),
        ("ACCOUNTS", &accounts.to_string()),
    ])
    .await;
    let mut settings = crate::helpers::test_settings();
    // Residents sign in at the same provider, so their `state` can be tried on the staff side.
    settings.identity.providers = vec!["oidc".to_owned()];
    settings.identity.oidc = provider.settings();
    settings.staff.sign_in = vec!["oidc".to_owned()];
    settings.staff.oidc = StaffOidcSettings {
        client: OidcSettings {
            redirect_uri: STAFF_REDIRECT_URI.to_owned(),
            scopes: ["openid", "profile", "email"].map(str::to_owned).to_vec(),
            ..provider.settings()
        },
        login_claim: "preferred_username".to_owned(),
    };
    let app = crate::helpers::TestApp::with_settings(settings).await;
    let division = "kosodate".to_owned();
    let mut connection = app.state.pool.get().await.expect("connection");
    let sato = madoguchi::identity::staff::create(
        &mut connection,
        "sato@city.example.lg.jp",
        "佐藤",
        None,
        None,
        &[Membership {
            division: division.clone(),
            role: Role::Clerk,
        }],
        None,
    )
    .await
    .expect("an account without a password");
    drop(connection);

    let sign_in_at_idp = |who: &'static str| {
        let app = &app;
        async move {
            let (status, started) = app
                .json(TestRequest::post().uri("/api/v1/staff/auth/oidc/start"))
                .await;
            assert_eq!(status, 200, "{started}");
            let url = started["authorization_url"]
                .as_str()
                .expect("authorization_url");
            log_in_back_to(url, who, STAFF_REDIRECT_URI).await
        }
    };
    let callback_uri = |callback: &Callback| {
        format!(
            "/api/v1/staff/auth/oidc/callback?code={}&state={}&iss={}",
            callback.code, callback.state, callback.iss
        )
    };

    // The first sign-in links the account; the session opens the division's queues.
    let callback = sign_in_at_idp("entra-7f3a").await;
    let (status, tokens) = app
        .json(TestRequest::get().uri(&callback_uri(&callback)))
        .await;
    assert_eq!(status, 200, "{tokens}");
    let token = tokens["access_token"].as_str().expect("access token");
    let (status, queues) = app.get_as("/api/v1/staff/queues", token).await;
    assert_eq!(status, 200, "{queues}");
    assert!(
        queues.as_array().is_some_and(|queues| !queues.is_empty()),
        "{queues}"
    );
    let (status, me_as_resident) = app.get_as("/api/v1/me", token).await;
    assert_eq!(
        status, 401,
        "a staff token is no resident's: {me_as_resident}"
    );

    // The next sign-in goes through the JSON completion a staff web app would use.
    let callback = sign_in_at_idp("entra-7f3a").await;
    let (status, tokens) = app
        .json(
            TestRequest::post()
                .uri("/api/v1/staff/auth/oidc/complete")
                .set_json(
                    serde_json::json!({"challenge_id": callback.state, "code": callback.code}),
                ),
        )
        .await;
    assert_eq!(status, 200, "{tokens}");

    // Another IdP user with the same login claim cannot take the linked account.
    let callback = sign_in_at_idp("entra-impostor").await;
    let (status, problem) = app
        .json(TestRequest::get().uri(&callback_uri(&callback)))
        .await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["code"], "auth.staff_not_registered");

    // Someone the IdP knows but the city never gave an account.
    let callback = sign_in_at_idp("entra-stranger").await;
    let (status, problem) = app
        .json(TestRequest::get().uri(&callback_uri(&callback)))
        .await;
    assert_eq!(status, 403, "{problem}");

    // A resident's sign-in (its `state` and code) does not complete a staff sign-in.
    let (status, started) = app
        .json(TestRequest::post().uri("/api/v1/auth/oidc/start"))
        .await;
    assert_eq!(status, 200, "{started}");
    let resident_callback = log_in(
        started["authorization_url"]
            .as_str()
            .expect("authorization_url"),
        "entra-7f3a",
    )
    .await;
    let (status, problem) = app
        .json(TestRequest::get().uri(&callback_uri(&resident_callback)))
        .await;
    assert_eq!(status, 401, "{problem}");
    assert_eq!(problem["code"], "auth.invalid_challenge");

    // Password sign-in is off in this city, and the account has no password anyway.
    let (status, _) = app
        .json(TestRequest::post().uri("/api/v1/staff/login").set_json(
            serde_json::json!({"login": "sato@city.example.lg.jp", "password": "x".repeat(12)}),
        ))
        .await;
    assert_eq!(status, 404);

    // A deactivated account signs in no more, and its live token opens nothing.
    {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        use madoguchi::db::schema::staff;
        let mut connection = app.state.pool.get().await.expect("connection");
        let (issuer, subject): (Option<String>, Option<String>) = staff::table
            .find(sato)
            .select((staff::oidc_issuer, staff::oidc_subject))
            .first(&mut connection)
            .await
            .expect("the account");
        assert_eq!(issuer.as_deref(), Some(provider.issuer.as_str()));
        assert_eq!(subject.as_deref(), Some("entra-7f3a"));
        diesel::update(staff::table.find(sato))
            .set(staff::active.eq(false))
            .execute(&mut connection)
            .await
            .expect("deactivate");
    }
    let callback = sign_in_at_idp("entra-7f3a").await;
    let (status, problem) = app
        .json(TestRequest::get().uri(&callback_uri(&callback)))
        .await;
    assert_eq!(status, 403, "{problem}");
    let (status, problem) = app.get_as("/api/v1/staff/queues", token).await;
    assert_eq!(
        status, 401,
        "a deactivated account's token opens nothing: {problem}"
    );
}

#[tokio::test]
async fn the_assurance_of_an_oidc_sign_in_comes_from_configuration() {
    // A city's own IdP that does not use the My Number Card.
    let provider = Provider::with_client_secret().await;
    let settings = OidcSettings {
        assurance: Assurance::None,
        ..provider.settings()
    };
    let client = OidcClient::discover(&settings).await.expect("discovery");
    let (callback, nonce, verifier) = authorize(&client, "test-resident-0001").await;

    let identity = client
        .complete(&callback.code, &verifier, &nonce)
        .await
        .expect("login completes");

    assert_eq!(identity.assurance, Assurance::None);
}

#[tokio::test]
async fn basic_facts_come_from_userinfo_when_the_id_token_lacks_them() {
    let provider = Provider::start(&[
        ("CLIENT_AUTH", "client_secret_basic"),
        ("CLIENT_SECRET", CLIENT_SECRET),
        ("CONFORM_ID_TOKEN_CLAIMS", "1"),
    ])
    .await;
    let client = OidcClient::discover(&provider.settings())
        .await
        .expect("discovery");
    let (callback, nonce, verifier) = authorize(&client, "test-resident-0001").await;

    let identity = client
        .complete(&callback.code, &verifier, &nonce)
        .await
        .expect("login completes");

    let facts = identity.facts.expect("facts from userinfo");
    assert_eq!(facts.name.as_deref(), Some("加賀 花子"));
    assert_eq!(
        facts.address.as_deref(),
        Some("石川県加賀市大聖寺南町ニ４１")
    );
    assert_eq!(facts.birth_date.as_deref(), Some("1985-04-01"));
    assert_eq!(facts.gender.as_deref(), Some("female"));
}

/// The city's IdP links only accounts an admin made for IdP sign-in: a password account whose
/// login an IdP user claims stays as it is, and an email address names an account only when the
/// provider says it verified it.
#[actix_web::test]
async fn the_city_idp_links_only_accounts_made_for_it_and_only_verified_addresses() {
    use actix_web::test::TestRequest;
    use madoguchi::config::StaffOidcSettings;
    use madoguchi::identity::staff::{Membership, Role};

    let accounts = serde_json::json!({
        "idp-tanaka": {"preferred_username": "tanaka"},
        "idp-unverified": {"preferred_username": "x", "email": "kato@city.example.lg.jp"},
        "idp-denied": {"preferred_username": "y", "email": "kato@city.example.lg.jp", "email_verified": false},
        "idp-kato": {"preferred_username": "z", "email": "kato@city.example.lg.jp", "email_verified": true},
    });
    let provider = Provider::start(&[
        ("CLIENT_AUTH", "client_secret_basic"),
        ("CLIENT_SECRET", CLIENT_SECRET),
        ("REDIRECT_URI", STAFF_REDIRECT_URI),
        ("ACCOUNTS", &accounts.to_string()),
    ])
    .await;
    let app_with_claim = |claim: &str| {
        let mut settings = crate::helpers::test_settings();
        settings.staff.sign_in = vec!["password".to_owned(), "oidc".to_owned()];
        settings.staff.oidc = StaffOidcSettings {
            client: OidcSettings {
                redirect_uri: STAFF_REDIRECT_URI.to_owned(),
                scopes: ["openid", "profile", "email"].map(str::to_owned).to_vec(),
                ..provider.settings()
            },
            login_claim: claim.to_owned(),
        };
        crate::helpers::TestApp::with_settings(settings)
    };
    async fn create(app: &crate::helpers::TestApp, login: &str, password: Option<&str>) {
        let mut connection = app.state.pool.get().await.expect("connection");
        madoguchi::identity::staff::create(
            &mut connection,
            login,
            "職員",
            None,
            password,
            &[Membership {
                division: "kosodate".to_owned(),
                role: Role::Clerk,
            }],
            None,
        )
        .await
        .expect("account");
    }
    async fn sign_in(app: &crate::helpers::TestApp, who: &str) -> (u16, serde_json::Value) {
        let (status, started) = app
            .json(TestRequest::post().uri("/api/v1/staff/auth/oidc/start"))
            .await;
        assert_eq!(status, 200, "{started}");
        let url = started["authorization_url"].as_str().expect("url");
        let callback = log_in_back_to(url, who, STAFF_REDIRECT_URI).await;
        app.json(TestRequest::get().uri(&format!(
            "/api/v1/staff/auth/oidc/callback?code={}&state={}&iss={}",
            callback.code, callback.state, callback.iss
        )))
        .await
    }

    let app = app_with_claim("preferred_username").await;
    create(&app, "tanaka", Some(crate::helpers::STAFF_PASSWORD)).await;
    let (status, problem) = sign_in(&app, "idp-tanaka").await;
    assert_eq!(
        status, 403,
        "a password account is not taken over: {problem}"
    );
    assert_eq!(problem["code"], "auth.staff_not_registered");
    let (status, tokens) = app
        .json(TestRequest::post().uri("/api/v1/staff/login").set_json(
            serde_json::json!({"login": "tanaka", "password": crate::helpers::STAFF_PASSWORD}),
        ))
        .await;
    assert_eq!(status, 200, "the password still works: {tokens}");

    let app = app_with_claim("email").await;
    create(&app, "kato@city.example.lg.jp", None).await;
    for unverified in ["idp-unverified", "idp-denied"] {
        let (status, problem) = sign_in(&app, unverified).await;
        assert_eq!(status, 403, "{unverified}: {problem}");
        assert_eq!(problem["code"], "auth.staff_not_registered");
    }
    let (status, tokens) = sign_in(&app, "idp-kato").await;
    assert_eq!(status, 200, "a verified address links: {tokens}");
}

/// The console's "sign in with the city's IdP": the sign-in page offers it beside the password,
/// the provider sends the browser back to the console's callback, which is accepted only in the
/// browser that started it and only once, and lands on the page asked for; sign-out ends it.
#[actix_web::test]
async fn staff_sign_in_on_the_console_through_the_city_idp_and_sign_out() {
    use crate::page_client::{Browser, hidden};
    use madoguchi::config::StaffOidcSettings;
    use madoguchi::identity::staff::{Membership, Role};
    const CONSOLE_REDIRECT_URI: &str = "http://127.0.0.1:9/staff/sign-in/oidc/callback";

    let accounts = serde_json::json!({
        "entra-c0ns": {"preferred_username": "ito@city.example.lg.jp"},
        "entra-stranger": {"preferred_username": "stranger@city.example.lg.jp"},
    });
    let provider = Provider::start(&[
        ("CLIENT_AUTH", "client_secret_basic"),
        ("CLIENT_SECRET", CLIENT_SECRET),
        ("REDIRECT_URI", CONSOLE_REDIRECT_URI),
        ("ACCOUNTS", &accounts.to_string()),
    ])
    .await;
    let mut settings = crate::helpers::test_settings();
    settings.staff.sign_in = vec!["password".to_owned(), "oidc".to_owned()];
    settings.staff.oidc = StaffOidcSettings {
        client: OidcSettings {
            redirect_uri: CONSOLE_REDIRECT_URI.to_owned(),
            scopes: ["openid", "profile"].map(str::to_owned).to_vec(),
            ..provider.settings()
        },
        login_claim: "preferred_username".to_owned(),
    };
    let app = crate::helpers::TestApp::with_settings(settings).await;
    let division = crate::staff::samples().remove(0).division;
    let mut connection = app.state.pool.get().await.expect("connection");
    madoguchi::identity::staff::create(
        &mut connection,
        "ito@city.example.lg.jp",
        "伊藤",
        None,
        None,
        &[Membership {
            division: division.clone(),
            role: Role::Clerk,
        }],
        None,
    )
    .await
    .expect("an account without a password");
    drop(connection);

    let queue = format!("/staff/queues/{division}");
    let start = |browser_page: &str| {
        (
            hidden(browser_page, "csrf"),
            browser_page.contains(r#"action="/staff/sign-in/oidc""#),
        )
    };
    let mut browser = Browser::new(&app);
    let asked = browser.get(&queue).await;
    assert_eq!(asked.status, 303, "{}", asked.html);
    let page = browser.get(&asked.location).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let (csrf, offered) = start(&page.html);
    assert!(offered, "the IdP is offered: {}", page.html);
    assert!(page.html.contains(r#"name="password""#), "and the password");
    let started = browser
        .post(
            "/staff/sign-in/oidc",
            &[("csrf", &csrf), ("next", queue.as_str())],
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.html);
    assert!(
        started.location.starts_with(&provider.issuer),
        "{}",
        started.location
    );
    let callback = log_in_back_to(&started.location, "entra-c0ns", CONSOLE_REDIRECT_URI).await;
    let back = format!(
        "/staff/sign-in/oidc/callback?code={}&state={}&iss={}",
        callback.code, callback.state, callback.iss
    );

    let mut stranger = Browser::new(&app);
    assert_eq!(
        stranger.get(&back).await.status,
        401,
        "another browser's callback"
    );
    let landed = browser.get(&back).await;
    assert_eq!(landed.status, 303, "{}", landed.html);
    assert_eq!(landed.location, queue);
    let list = browser.get(&queue).await;
    assert_eq!(list.status, 200, "{}", list.html);
    assert_eq!(browser.get(&back).await.status, 401, "a replayed callback");

    // Someone the IdP knows but the city gave no account gets the refusal page, no session.
    let page = stranger.get("/staff/sign-in").await;
    let (csrf, _) = start(&page.html);
    let started = stranger
        .post("/staff/sign-in/oidc", &[("csrf", &csrf)])
        .await;
    let callback = log_in_back_to(&started.location, "entra-stranger", CONSOLE_REDIRECT_URI).await;
    let refused = stranger
        .get(&format!(
            "/staff/sign-in/oidc/callback?code={}&state={}&iss={}",
            callback.code, callback.state, callback.iss
        ))
        .await;
    assert_eq!(refused.status, 401, "{}", refused.html);
    assert_eq!(stranger.get("/staff").await.status, 303, "not signed in");

    // A start without the page's token is refused.
    let mut forger = Browser::new(&app);
    let forged = forger
        .post("/staff/sign-in/oidc", &[("next", "/staff")])
        .await;
    assert_eq!(forged.status, 403, "{}", forged.html);

    // Sign-out needs the token, ends the session, and the page asks for a sign-in again.
    let csrf = hidden(&list.html, "csrf");
    let out = browser.post("/staff/sign-out", &[("csrf", "wrong")]).await;
    assert_eq!(out.status, 403, "{}", out.html);
    let out = browser.post("/staff/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.location.as_str()), (303, "/staff/sign-in"));
    let after = browser.get(&queue).await;
    assert!(
        after.status == 303 || after.status == 401,
        "signed out: {} {}",
        after.status,
        after.html
    );
}
