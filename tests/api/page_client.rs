//! A browser for page tests: a cookie jar in front of the app, form posts, redirects followed by
//! hand, and the hidden fields of a page's forms.

use std::collections::HashMap;

use actix_web::test::{self, TestRequest};

use crate::helpers::TestApp;

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: String,
    pub html: String,
    /// The body as sent (a file is not text).
    pub body: Vec<u8>,
    pub cache_control: String,
    pub content_security_policy: String,
    pub content_disposition: String,
}

pub struct Browser<'a> {
    app: &'a TestApp,
    pub cookies: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&mut self, request: TestRequest) -> Answer {
        let request = if self.cookies.is_empty() {
            request
        } else {
            request.insert_header(("cookie", self.cookie_header()))
        };
        let response = self.app.call(request).await;
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|value| value.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let status = response.status().as_u16();
        let location = header("location");
        let cache_control = header("cache-control");
        let content_security_policy = header("content-security-policy");
        let content_disposition = header("content-disposition");
        let body = test::read_body(response).await;
        Answer {
            status,
            location,
            html: String::from_utf8_lossy(&body).into_owned(),
            body: body.to_vec(),
            cache_control,
            content_security_policy,
            content_disposition,
        }
    }

    pub async fn get(&mut self, uri: &str) -> Answer {
        self.send(TestRequest::get().uri(uri)).await
    }

    pub async fn post(&mut self, uri: &str, pairs: &[(&str, &str)]) -> Answer {
        let body = serde_urlencoded::to_string(pairs).unwrap();
        self.send(
            TestRequest::post()
                .uri(uri)
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload(body),
        )
        .await
    }
}

/// The value of the first hidden input named `name`.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no hidden {name} in {html}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}
