//! The HTML edge: the resident portal and the staff console (`staff`), rendered on the server from the same in-process catalog
//! as the JSON edge (`crate::routes`). Both call the domain; neither calls into the other.
//! Every page works without JavaScript and loads nothing from another origin (docs: UI.md).

mod account;
mod applications;
mod apply;
pub mod assets;
mod lang;
mod pages;
mod payments;
mod questions;
mod render;
pub mod session;
mod sign_in;
mod staff;
mod statistics;

use actix_web::{HttpRequest, HttpResponse, web};

pub use render::Page;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(assets::serve)
        .service(pages::home)
        .service(pages::procedures)
        .service(pages::start_page)
        .service(sign_in::sign_in)
        .service(sign_in::sign_in_dev)
        .service(sign_in::sign_in_oidc)
        .service(sign_in::oidc_callback)
        .service(sign_in::sign_out)
        .service(apply::apply_page)
        .service(apply::start)
        .service(apply::list_drafts)
        .service(apply::question)
        .service(apply::save_page)
        .service(apply::confirm)
        .service(apply::sign)
        .service(apply::submit)
        .service(apply::received)
        .service(applications::history)
        .service(applications::application)
        .service(applications::emailed_link)
        .service(applications::correct_page)
        .service(applications::correct)
        .service(applications::withdraw_page)
        .service(applications::withdraw)
        .service(applications::download)
        .service(payments::pay_page)
        .service(payments::pay)
        .service(payments::return_page)
        .service(payments::confirmation)
        .service(account::account)
        .service(account::save_account)
        .service(account::confirm_email_page)
        .service(account::confirm_email)
        .service(pages::accessibility)
        .service(statistics::page)
        .service(statistics::open_data_csv)
        .service(statistics::definitions_csv)
        .configure(staff::configure);
}

/// Whether an unmatched path is the portal's to answer (with an HTML page) rather than the
/// API's (with problem+json): everything outside the API, its reference and the probes.
pub fn owns(path: &str) -> bool {
    const NOT_OURS: [&str; 5] = ["/api/", "/docs", "/healthz", "/readyz", "/metrics"];
    !NOT_OURS
        .iter()
        .any(|prefix| path == prefix.trim_end_matches('/') || path.starts_with(prefix))
}

/// The portal's answer to a path it does not know.
pub async fn not_found(request: HttpRequest) -> HttpResponse {
    Page::new(&request).not_found()
}
