//! `/docs`: the API reference in the browser (RapiDoc, vendored and pinned, served from the binary
//! so that it works on a city's closed network and loads nothing from a third party).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get};

/// `rapidoc-min.js`, gzipped as published in the npm package (see its README for the checksum).
const RAPIDOC_GZ: &[u8] = include_bytes!("../../static/vendor/rapidoc-9.3.8/rapidoc-min.js.gz");

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>madoguchi API</title>
<script type="module" src="/docs/rapidoc-min.js"></script>
</head>
<body>
<rapi-doc spec-url="/api/v1/openapi.json" render-style="read" show-header="false"
  allow-try="true" allow-server-selection="false" theme="light"></rapi-doc>
</body>
</html>
"#;

/// The reference page. Its policy allows only this origin; RapiDoc styles its components inline.
#[get("/docs")]
pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(PAGE)
}

/// The script, gzipped as stored when the browser accepts it (every browser does), inflated
/// otherwise.
#[get("/docs/rapidoc-min.js")]
pub async fn script(request: HttpRequest) -> HttpResponse {
    let accepts_gzip = request
        .headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("gzip"));
    let mut response = HttpResponse::Ok();
    response
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .insert_header((header::VARY, HeaderValue::from_static("accept-encoding")));
    if accepts_gzip {
        return response
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(RAPIDOC_GZ);
    }
    let mut inflated = Vec::new();
    match std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(RAPIDOC_GZ), &mut inflated) {
        Ok(_) => response.body(inflated),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}
