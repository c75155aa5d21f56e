//! What the service accepts at its edge, before any handler runs (pages and API alike):
//! - query strings and paths with characters no stored text may hold ([`crate::input`]) are a
//!   422 with problem+json;
//! - compressed request bodies are refused (415): no operation needs one, and inflating them
//!   would happen before any size limit.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_ENCODING;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use crate::error::ApiError;
use crate::input::{INVALID_CHARACTER, is_acceptable};
use crate::messages::FieldError;

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
                    &format!("/query/{}", crate::messages::escape(name)),
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
    fn percent_decoding_finds_an_encoded_nul() {
        assert_eq!(percent_decoded("/a%00b%zz%E4%BD%8F"), "/a\u{0}b%zz住");
    }
}
