//! Stylesheets and scripts served from the binary under `/static/<version>/<name>`. The version is a hash of
//! every asset, so a page always names the files it was made with and browsers may keep them
//! for a year.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use sha2::{Digest, Sha256};

/// The Digital Agency's design tokens, as published (see the folder's README).
const TOKENS: &[u8] =
    include_bytes!("../../static/vendor/digital-go-jp-design-tokens-1.1.9/tokens.css");
const SITE: &[u8] = include_bytes!("../../static/site.css");
/// JSON Logic for the browser, as published (see the folder's README).
const LOGIC: &[u8] = include_bytes!("../../static/vendor/json-logic-js-2.0.5/logic.js");
/// Reveals a question page's one simple follow-up.
const REVEAL: &[u8] = include_bytes!("../../static/reveal.js");

/// Name, content type, bytes.
const FILES: [(&str, &str, &[u8]); 4] = [
    ("tokens.css", "text/css; charset=utf-8", TOKENS),
    ("site.css", "text/css; charset=utf-8", SITE),
    ("json-logic.js", "text/javascript; charset=utf-8", LOGIC),
    ("reveal.js", "text/javascript; charset=utf-8", REVEAL),
];

/// The first 12 hex digits of the SHA-256 of every asset.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = Sha256::new();
    for (name, _, bytes) in FILES {
        hasher.update(name.as_bytes());
        hasher.update(bytes);
    }
    hasher.finalize()[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
});

/// The address of an asset for this build.
pub fn href(name: &str) -> String {
    format!("/static/{}/{name}", *VERSION)
}

/// An asset of this build; another version or name is the portal's 404 page.
#[get("/static/{version}/{name}")]
pub async fn serve(request: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    let (version, name) = path.into_inner();
    let found = FILES
        .iter()
        .find(|(file, _, _)| *file == name)
        .filter(|_| version == *VERSION);
    match found {
        Some((_, content_type, bytes)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
            .body(*bytes),
        None => super::Page::new(&request).not_found(),
    }
}
