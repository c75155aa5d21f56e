//! The published API contract, and answers that follow from it.
//!
//! The document is generated from the handlers (utoipa); here we complete it with what every
//! operation can answer (problem+json errors, the bearer scheme), and use its path templates to
//! tell "no such resource" (404) from "no such method on this resource" (405 with `Allow`).

use std::sync::LazyLock;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

use crate::error::{ApiError, PROBLEM_JSON};

/// Errors any operation may answer, with the problem+json body.
const COMMON_ERRORS: [(&str, &str); 7] = [
    ("400", "The request is malformed (query, JSON, headers)."),
    ("404", "No such resource, or not yours."),
    (
        "415",
        "The body is not of a supported type, or is compressed (Content-Encoding).",
    ),
    (
        "422",
        "A parameter or the body is not acceptable (e.g. a control character); field errors list why.",
    ),
    ("429", "Too many requests."),
    ("500", "Internal error; the body says nothing more."),
    ("503", "The database is unreachable or busy; retry later."),
];
const BODY_ERRORS: [(&str, &str); 1] = [("413", "The body is too large.")];
const AUTH_ERRORS: [(&str, &str); 2] = [
    (
        "401",
        "Sign-in required, or the token is invalid or expired.",
    ),
    (
        "403",
        "Signed in, but not allowed (role or assurance level).",
    ),
];

fn problem_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build(),
    )
}

fn complete_operation(operation: &mut Operation) {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = operation.request_body.is_some();
    let mut add = |code: &str, description: &str| {
        let responses = &mut operation.responses.responses;
        match responses.get_mut(code) {
            // A documented status may also answer problem+json (e.g. a 404 from the router).
            Some(RefOr::T(response)) if !response.content.contains_key(PROBLEM_JSON) => {
                if let RefOr::T(problem) = problem_response(description)
                    && let Some(content) = problem.content.get(PROBLEM_JSON)
                {
                    response
                        .content
                        .insert(PROBLEM_JSON.to_owned(), content.clone());
                }
            }
            Some(_) => {}
            None => {
                responses.insert(code.to_owned(), problem_response(description));
            }
        }
    };
    for (code, description) in COMMON_ERRORS {
        add(code, description);
    }
    if has_body {
        for (code, description) in BODY_ERRORS {
            add(code, description);
        }
    }
    if secured {
        for (code, description) in AUTH_ERRORS {
            add(code, description);
        }
    }
    // Error statuses always answer problem+json, whatever a handler's annotation said.
    for (code, response) in operation.responses.responses.iter_mut() {
        if let RefOr::T(response) = response
            && (code.starts_with('4') || code.starts_with('5'))
        {
            response
                .content
                .retain(|media_type, _| media_type == PROBLEM_JSON);
            if response.content.is_empty()
                && let RefOr::T(problem) = problem_response(&response.description)
            {
                response.content = problem.content;
            }
        }
    }
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// Writes the `/api/v1` prefix into the paths, documents the common errors on every operation,
/// and declares the bearer scheme.
pub fn complete(mut document: OpenApi) -> OpenApi {
    let paths = std::mem::take(&mut document.paths.paths);
    for (path, mut item) in paths {
        operations(&mut item).for_each(complete_operation);
        let operational = ["/healthz", "/readyz", "/metrics"].contains(&path.as_str());
        let full = if operational {
            path
        } else {
            format!("/api/v1{path}")
        };
        document.paths.paths.insert(full, item);
    }
    let components = document.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        "bearer".to_owned(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    document
}

/// Path templates of the document as regular expressions, with the methods each allows.
static ROUTES: LazyLock<Vec<(regex::Regex, Vec<&'static str>)>> = LazyLock::new(|| {
    let mut document = super::openapi_document();
    let mut routes = Vec::new();
    for (path, item) in &mut document.paths.paths {
        let segments: Vec<String> = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "[^/]+".to_owned()
                } else {
                    regex::escape(segment)
                }
            })
            .collect();
        let pattern = regex::Regex::new(&format!("^{}$", segments.join("/")));
        let methods: Vec<&'static str> = [
            (item.get.is_some(), "GET"),
            (item.post.is_some(), "POST"),
            (item.put.is_some(), "PUT"),
            (item.patch.is_some(), "PATCH"),
            (item.delete.is_some(), "DELETE"),
        ]
        .into_iter()
        .filter_map(|(present, method)| present.then_some(method))
        .collect();
        if let Ok(pattern) = pattern {
            routes.push((pattern, methods));
        }
    }
    routes
});

/// What the router could not match: 405 with `Allow` when the path exists with other methods,
/// otherwise 404. Both as problem+json.
pub async fn unmatched(request: HttpRequest) -> HttpResponse {
    let path = request.path();
    let allowed: Vec<&str> = ROUTES
        .iter()
        .filter(|(pattern, _)| pattern.is_match(path))
        .flat_map(|(_, methods)| methods.iter().copied())
        .collect();
    if allowed.is_empty() {
        return ApiError::not_found().error_response();
    }
    let mut response = ApiError::client(
        StatusCode::METHOD_NOT_ALLOWED,
        "request.method_not_allowed",
        "このメソッドは使えません。",
        "This method is not allowed here.",
    )
    .error_response();
    if let Ok(value) = HeaderValue::from_str(&allowed.join(", ")) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}
