//! The HTTP edge: actix handlers only. They parse, authorize, call the domain and map errors;
//! the domain never sees actix types.

pub mod auth;
pub mod catalog;
pub mod deadline;
pub mod docs;
pub mod extract;
pub mod guard;
pub mod health;
pub mod openapi;
pub mod outbox;
pub mod payments;
pub mod queues;
pub mod staff;
pub mod statistics;
pub mod submissions;

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "madoguchi",
        description = "Municipal e-application backend: procedures as files, My Number Card identity, division queues, email.",
        license(name = "Apache-2.0"),
    ),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        catalog::list_categories,
        catalog::list_procedures,
        catalog::get_procedure,
        catalog::get_procedure_schema,
        catalog::validate_answers,
        auth::start,
        auth::complete,
        auth::oidc_callback,
        auth::refresh,
        auth::logout,
        auth::me,
        auth::update_me,
        auth::confirm_email,
        auth::my_facts,
        submissions::submit,
        submissions::list,
        submissions::detail,
        submissions::withdraw,
        submissions::resubmit,
        submissions::access_log,
        submissions::create_draft,
        submissions::list_drafts,
        submissions::get_draft,
        submissions::update_draft,
        submissions::discard_draft,
        submissions::upload,
        submissions::upload_for_correction,
        submissions::download,
        outbox::failed,
        outbox::retry,
        staff::login,
        staff::oidc_start,
        staff::oidc_complete,
        staff::oidc_callback,
        staff::create_staff,
        staff::list_staff,
        staff::put_membership,
        staff::delete_membership,
        staff::update_account,
        staff::account_history,
        staff::reset_password,
        staff::me,
        staff::change_password,
        queues::list_queues,
        queues::queue_page,
        queues::claim,
        queues::open,
        queues::reveal,
        queues::download,
        queues::add_note,
        queues::transition,
        queues::release,
        queues::assign,
        queues::revision_diff,
        payments::create_payment,
        payments::payment_notification,
        payments::return_page,
        payments::payment_status,
        payments::staff_payments,
        payments::payments_needing_attention,
        payments::refund_payment,
        payments::request_payment,
        payments::settlement_mismatches,
        statistics::public_report,
        statistics::staff_report,
        statistics::put_counter,
    ),
    components(schemas(
        crate::error::Problem,
        crate::messages::FieldError,
        crate::messages::Localized,
        catalog::Language,
        crate::forms::model::Field,
        crate::forms::model::FieldType,
        crate::forms::model::Choice,
        crate::forms::model::FileKind,
        crate::forms::model::AccountType,
        crate::forms::model::Page,
    )),
    tags(
        (name = "operations", description = "Health and metrics"),
        (name = "catalog", description = "The procedures a resident can apply for"),
        (name = "identity", description = "Signing in with the My Number Card, sessions"),
        (name = "submissions", description = "Applying and following my applications"),
        (name = "drafts", description = "Partial answers and attachments"),
        (name = "payments", description = "Paying an application's fee"),
        (name = "staff", description = "City staff: sign-in, division queues, processing, administration"),
        (name = "statistics", description = "Usage statistics and open data: aggregates only, small counts suppressed"),
    )
)]
pub struct ApiDoc;

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(docs::page)
        .service(docs::script)
        .service(
            web::scope("/api/v1")
                .route("/openapi.json", web::get().to(openapi_json))
                .service(catalog::list_categories)
                .service(catalog::list_procedures)
                .service(catalog::get_procedure)
                .service(catalog::get_procedure_schema)
                .service(catalog::validate_answers)
                .service(auth::start)
                .service(auth::complete)
                .service(auth::oidc_callback)
                .service(auth::refresh)
                .service(auth::logout)
                .service(auth::me)
                .service(auth::update_me)
                .service(auth::confirm_email)
                .service(auth::my_facts)
                .service(submissions::submit)
                .service(submissions::list)
                .service(submissions::detail)
                .service(submissions::withdraw)
                .service(submissions::resubmit)
                .service(submissions::access_log)
                .service(submissions::create_draft)
                .service(submissions::list_drafts)
                .service(submissions::get_draft)
                .service(submissions::update_draft)
                .service(submissions::discard_draft)
                .service(submissions::upload)
                .service(submissions::upload_for_correction)
                .service(submissions::download)
                .service(outbox::failed)
                .service(outbox::retry)
                .service(staff::login)
                .service(staff::oidc_start)
                .service(staff::oidc_complete)
                .service(staff::oidc_callback)
                .service(staff::create_staff)
                .service(staff::list_staff)
                .service(staff::put_membership)
                .service(staff::delete_membership)
                .service(staff::update_account)
                .service(staff::account_history)
                .service(staff::reset_password)
                .service(staff::me)
                .service(staff::change_password)
                .service(queues::list_queues)
                .service(queues::queue_page)
                .service(queues::claim)
                .service(queues::open)
                .service(queues::reveal)
                .service(queues::download)
                .service(queues::add_note)
                .service(queues::transition)
                .service(queues::release)
                .service(queues::assign)
                .service(queues::revision_diff)
                .service(payments::create_payment)
                .service(payments::payment_notification)
                .service(payments::return_page)
                .service(payments::payment_status)
                .service(payments::payments_needing_attention)
                .service(payments::settlement_mismatches)
                .service(payments::staff_payments)
                .service(payments::refund_payment)
                .service(payments::request_payment)
                .service(statistics::public_report)
                .service(statistics::staff_report)
                .service(statistics::put_counter),
        );
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(openapi_document())
}

/// The OpenAPI document as published: paths in full, common errors, the bearer scheme.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::complete(ApiDoc::openapi())
}
