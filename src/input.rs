//! What the service accepts at its edge, before any handler runs.
//!
//! - One character rule for every text that can be stored (JSON bodies, their keys, query
//!   strings and paths) and for the answers of a procedure ([`crate::forms::validate`]):
//!   PostgreSQL cannot hold U+0000 in `text` or `jsonb`, and control characters that are not
//!   line breaks or tabs, or bidi embeddings, overrides and isolates, only ever hide or disguise
//!   what staff read. They are a 422 field error `invalid_character`, never a database error.
//!   See docs/DECISIONS.md ("Bad input").
//! - Compressed request bodies are refused (415): no operation needs one, and inflating them
//!   would happen before any size limit.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_ENCODING;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};
use serde_json::Value;

use crate::error::{ApiError, FieldError};

/// The field error code for a refused character.
pub const INVALID_CHARACTER: &str = "invalid_character";

/// True for a character no stored text may hold.
pub fn is_refused(c: char) -> bool {
    match c {
        '\t' | '\n' | '\r' => false,
        // C0 controls (U+0000 first of all), DEL and the C1 controls.
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        // Bidi embeddings and overrides (LRE…RLO) and isolates (LRI…PDI). The single marks
        // LRM, RLM and ALM stay allowed: they have no scope and cannot reorder a whole line.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

/// True when `text` may be stored.
pub fn is_acceptable(text: &str) -> bool {
    !text.chars().any(is_refused)
}

/// One `invalid_character` error per string or object key in `value` that may not be stored,
/// located by JSON pointer under `path`.
pub fn json_errors(value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    match value {
        Value::String(text) if !is_acceptable(text) => {
            errors.push(FieldError::new(path, INVALID_CHARACTER));
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                json_errors(item, &format!("{path}/{index}"), errors);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let item_path = format!("{path}/{}", crate::forms::source::escape(key));
                if is_acceptable(key) {
                    json_errors(item, &item_path, errors);
                } else {
                    errors.push(FieldError::new(&item_path, INVALID_CHARACTER));
                }
            }
        }
        _ => {}
    }
}

/// The 422 for a body with refused characters.
pub fn invalid_characters(errors: Vec<FieldError>) -> ApiError {
    ApiError::validation("request.invalid_character", errors)
}

/// Middleware: refuses compressed request bodies, and query strings or paths with refused
/// characters, before routing, with problem+json.
pub async fn guard(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(refusal) = refusal(&request) {
        let response = refusal.error_response();
        return Ok(request.into_response(response).map_into_right_body());
    }
    Ok(next.call(request).await?.map_into_left_body())
}

fn refusal(request: &ServiceRequest) -> Option<ApiError> {
    let encoding = request.headers().get(CONTENT_ENCODING);
    if encoding.is_some_and(|value| !value.as_bytes().eq_ignore_ascii_case(b"identity")) {
        return Some(ApiError::client(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request.unsupported_encoding",
            "圧縮したリクエスト本文（Content-Encoding）には対応していません。圧縮せずに送信してください。",
            "Compressed request bodies (Content-Encoding) are not accepted; send the body uncompressed.",
        ));
    }
    let mut errors = Vec::new();
    if !is_acceptable(&percent_decoded(request.path())) {
        errors.push(FieldError::new("/path", INVALID_CHARACTER));
    }
    // A query that is not valid percent-encoded UTF-8 is left to the query extractor (400).
    let query = request.query_string();
    if let Ok(pairs) = web::Query::<Vec<(String, String)>>::from_query(query) {
        for (name, value) in pairs.iter() {
            if !is_acceptable(name) || !is_acceptable(value) {
                let name = if is_acceptable(name) {
                    name.as_str()
                } else {
                    ""
                };
                errors.push(FieldError::new(
                    &format!("/query/{}", crate::forms::source::escape(name)),
                    INVALID_CHARACTER,
                ));
            }
        }
    }
    (!errors.is_empty()).then(|| invalid_characters(errors))
}

/// `%XX` decoded, lossily (an invalid UTF-8 sequence cannot hold a refused character).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .filter(|_| bytes[index] == b'%')
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match hex {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_controls_and_bidi_overrides_are_refused_line_breaks_and_marks_are_not() {
        for text in [
            "a\u{0}b",
            "\u{1b}[31m",
            "\u{7f}",
            "\u{85}",
            "abc\u{202e}fed",
            "\u{2067}",
        ] {
            assert!(!is_acceptable(text), "{text:?}");
        }
        for text in [
            "一行目\n二行目\r\n",
            "\tindent",
            "שלום\u{200f}",
            "住民票",
            "😀",
            "",
        ] {
            assert!(is_acceptable(text), "{text:?}");
        }
    }

    #[test]
    fn json_errors_point_at_strings_and_keys() {
        let value =
            serde_json::json!({"a": ["ok", "x\u{0}"], "b\u{0}": 1, "c/d": {"e": "\u{202e}"}});
        let mut errors = Vec::new();
        json_errors(&value, "", &mut errors);
        let paths: Vec<_> = errors.iter().map(|error| error.path.as_str()).collect();
        assert_eq!(paths, ["/a/1", "/b\u{0}", "/c~1d/e"]);
    }

    #[test]
    fn percent_decoding_finds_an_encoded_nul() {
        assert_eq!(percent_decoded("/a%00b%zz%E4%BD%8F"), "/a\u{0}b%zz住");
    }
}
