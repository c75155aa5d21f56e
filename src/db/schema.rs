// @generated automatically by Diesel CLI.

diesel::table! {
    access_log (id) {
        id -> Int8,
        submission_id -> Uuid,
        staff_id -> Uuid,
        action -> Text,
        reason -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    address_throttle (address) {
        address -> Text,
        allowed_from -> Timestamptz,
    }
}

diesel::table! {
    attachments (id) {
        id -> Uuid,
        resident_id -> Uuid,
        draft_id -> Nullable<Uuid>,
        submission_id -> Nullable<Uuid>,
        content_type -> Text,
        size_bytes -> Int8,
        sha256 -> Bytea,
        storage_key -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    auth_challenges (id) {
        id -> Uuid,
        provider -> Text,
        challenge -> Bytea,
        oidc_nonce -> Nullable<Text>,
        pkce_verifier -> Nullable<Text>,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    data_migrations (name) {
        name -> Text,
        applied_at -> Timestamptz,
    }
}

diesel::table! {
    drafts (id) {
        id -> Uuid,
        resident_id -> Uuid,
        procedure_id -> Text,
        data -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    fee_requests (id) {
        id -> Uuid,
        submission_id -> Uuid,
        staff_id -> Uuid,
        reason -> Text,
        breakdown -> Jsonb,
        previous -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    idempotency_keys (resident_id, key) {
        resident_id -> Uuid,
        key -> Text,
        request_hash -> Bytea,
        response_status -> Int2,
        response_body -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    outbox (id) {
        id -> Uuid,
        template -> Text,
        language -> Text,
        recipient -> Text,
        payload -> Jsonb,
        submission_id -> Nullable<Uuid>,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    payment_notifications (id) {
        id -> Int8,
        provider -> Text,
        event_id -> Text,
        payment_id -> Nullable<Uuid>,
        body -> Bytea,
        received_at -> Timestamptz,
    }
}

diesel::table! {
    payments (id) {
        id -> Uuid,
        submission_id -> Uuid,
        resident_id -> Uuid,
        provider -> Text,
        order_id -> Text,
        amount_yen -> Int8,
        status -> Text,
        provider_reference -> Nullable<Text>,
        attention -> Nullable<Text>,
        idempotency_key -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        settled_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    procedure_versions (content_hash) {
        content_hash -> Text,
        procedure_id -> Text,
        version -> Int4,
        definition -> Jsonb,
        first_seen_at -> Timestamptz,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Uuid,
        token_hash -> Bytea,
        family_id -> Uuid,
        resident_id -> Nullable<Uuid>,
        staff_id -> Nullable<Uuid>,
        assurance -> Text,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    refunds (id) {
        id -> Uuid,
        payment_id -> Uuid,
        amount_yen -> Int8,
        reason -> Text,
        requested_by -> Uuid,
        status -> Text,
        provider_reference -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    residents (id) {
        id -> Uuid,
        provider -> Text,
        issuer -> Text,
        subject -> Text,
        email -> Nullable<Text>,
        language -> Text,
        created_at -> Timestamptz,
        last_login_at -> Nullable<Timestamptz>,
        email_confirmed -> Bool,
        pending_email -> Nullable<Text>,
        email_token_hash -> Nullable<Bytea>,
        email_token_expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    session_facts (family_id) {
        family_id -> Uuid,
        resident_id -> Uuid,
        issuer -> Text,
        facts -> Jsonb,
        verified_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    settlement_mismatches (id) {
        id -> Int8,
        report_id -> Uuid,
        kind -> Text,
        order_id -> Text,
        payment_id -> Nullable<Uuid>,
        our_amount_yen -> Nullable<Int8>,
        provider_amount_yen -> Nullable<Int8>,
        provider_reference -> Nullable<Text>,
    }
}

diesel::table! {
    settlement_reports (id) {
        id -> Uuid,
        provider -> Text,
        settlement_date -> Date,
        provider_lines -> Int4,
        our_payments -> Int4,
        mismatches -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    signing_nonces (nonce) {
        nonce -> Text,
        resident_id -> Uuid,
        procedure_id -> Text,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    staff (id) {
        id -> Uuid,
        login -> Text,
        display_name -> Text,
        email -> Nullable<Text>,
        password_hash -> Nullable<Text>,
        failed_logins -> Int4,
        locked_until -> Nullable<Timestamptz>,
        active -> Bool,
        created_at -> Timestamptz,
        oidc_issuer -> Nullable<Text>,
        oidc_subject -> Nullable<Text>,
        password_change_required -> Bool,
    }
}

diesel::table! {
    staff_account_events (id) {
        id -> Int8,
        staff_id -> Uuid,
        actor_id -> Nullable<Uuid>,
        action -> Text,
        division -> Nullable<Text>,
        role -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    staff_memberships (staff_id, division) {
        staff_id -> Uuid,
        division -> Text,
        role -> Text,
    }
}

diesel::table! {
    staff_notes (id) {
        id -> Uuid,
        submission_id -> Uuid,
        staff_id -> Uuid,
        body -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    staff_saved_filters (id) {
        id -> Uuid,
        staff_id -> Uuid,
        queue_id -> Text,
        name -> Text,
        query -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    statistics_breakdown_monthly (month, procedure_id, division, kind, value) {
        month -> Date,
        procedure_id -> Text,
        division -> Text,
        kind -> Text,
        value -> Text,
        received -> Int8,
    }
}

diesel::table! {
    statistics_counter_counts (month, procedure_id) {
        month -> Date,
        procedure_id -> Text,
        division -> Text,
        count -> Int8,
        entered_by -> Uuid,
        entered_at -> Timestamptz,
    }
}

diesel::table! {
    statistics_daily (day, procedure_id, division) {
        day -> Date,
        procedure_id -> Text,
        division -> Text,
        received -> Int8,
        overdue -> Int8,
    }
}

diesel::table! {
    statistics_monthly (month, procedure_id, division) {
        month -> Date,
        procedure_id -> Text,
        division -> Text,
        received -> Int8,
        card_signed -> Int8,
        returned -> Int8,
        withdrawn -> Int8,
        completed -> Int8,
        rejected -> Int8,
        with_standard -> Int8,
        within_standard -> Int8,
        processing_days -> Array<Nullable<Int8>>,
    }
}

diesel::table! {
    statistics_watermark (singleton) {
        singleton -> Bool,
        last_event_id -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    submission_events (id) {
        id -> Int8,
        submission_id -> Uuid,
        actor_kind -> Text,
        actor_id -> Nullable<Uuid>,
        from_status -> Nullable<Text>,
        to_status -> Text,
        reason -> Nullable<Text>,
        created_at -> Timestamptz,
        comments -> Nullable<Jsonb>,
    }
}

diesel::table! {
    submission_identity_facts (submission_id, revision) {
        submission_id -> Uuid,
        revision -> Int4,
        source -> Text,
        issuer -> Text,
        facts -> Jsonb,
        verified_at -> Timestamptz,
    }
}

diesel::table! {
    submission_revisions (submission_id, revision) {
        submission_id -> Uuid,
        revision -> Int4,
        data -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    submission_signatures (submission_id, revision) {
        submission_id -> Uuid,
        revision -> Int4,
        cms -> Bytea,
        certificate -> Bytea,
        digest -> Bytea,
        revocation_checked_at -> Timestamptz,
        verified_at -> Timestamptz,
    }
}

diesel::table! {
    submissions (id) {
        id -> Uuid,
        reference -> Text,
        resident_id -> Uuid,
        procedure_id -> Text,
        content_hash -> Text,
        status -> Text,
        data -> Jsonb,
        revision -> Int4,
        fee_yen -> Int8,
        queue -> Text,
        division -> Text,
        assignee_id -> Nullable<Uuid>,
        submitted_at -> Timestamptz,
        due_date -> Nullable<Date>,
        returned_at -> Nullable<Timestamptz>,
        decided_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
        fee_breakdown -> Nullable<Jsonb>,
        payment_requested_at -> Nullable<Timestamptz>,
        district_code -> Nullable<Text>,
        age_band -> Nullable<Text>,
    }
}

diesel::joinable!(access_log -> staff (staff_id));
diesel::joinable!(access_log -> submissions (submission_id));
diesel::joinable!(attachments -> drafts (draft_id));
diesel::joinable!(attachments -> residents (resident_id));
diesel::joinable!(attachments -> submissions (submission_id));
diesel::joinable!(drafts -> residents (resident_id));
diesel::joinable!(fee_requests -> staff (staff_id));
diesel::joinable!(fee_requests -> submissions (submission_id));
diesel::joinable!(idempotency_keys -> residents (resident_id));
diesel::joinable!(outbox -> submissions (submission_id));
diesel::joinable!(payment_notifications -> payments (payment_id));
diesel::joinable!(payments -> residents (resident_id));
diesel::joinable!(payments -> submissions (submission_id));
diesel::joinable!(refresh_tokens -> residents (resident_id));
diesel::joinable!(refresh_tokens -> staff (staff_id));
diesel::joinable!(refunds -> payments (payment_id));
diesel::joinable!(refunds -> staff (requested_by));
diesel::joinable!(session_facts -> residents (resident_id));
diesel::joinable!(settlement_mismatches -> payments (payment_id));
diesel::joinable!(settlement_mismatches -> settlement_reports (report_id));
diesel::joinable!(signing_nonces -> residents (resident_id));
diesel::joinable!(staff_memberships -> staff (staff_id));
diesel::joinable!(staff_notes -> staff (staff_id));
diesel::joinable!(staff_notes -> submissions (submission_id));
diesel::joinable!(staff_saved_filters -> staff (staff_id));
diesel::joinable!(statistics_counter_counts -> staff (entered_by));
diesel::joinable!(submission_events -> submissions (submission_id));
diesel::joinable!(submission_identity_facts -> submissions (submission_id));
diesel::joinable!(submission_revisions -> submissions (submission_id));
diesel::joinable!(submission_signatures -> submissions (submission_id));
diesel::joinable!(submissions -> procedure_versions (content_hash));
diesel::joinable!(submissions -> residents (resident_id));
diesel::joinable!(submissions -> staff (assignee_id));

diesel::allow_tables_to_appear_in_same_query!(
    access_log,
    address_throttle,
    attachments,
    auth_challenges,
    data_migrations,
    drafts,
    fee_requests,
    idempotency_keys,
    outbox,
    payment_notifications,
    payments,
    procedure_versions,
    refresh_tokens,
    refunds,
    residents,
    session_facts,
    settlement_mismatches,
    settlement_reports,
    signing_nonces,
    staff,
    staff_account_events,
    staff_memberships,
    staff_notes,
    staff_saved_filters,
    statistics_breakdown_monthly,
    statistics_counter_counts,
    statistics_daily,
    statistics_monthly,
    statistics_watermark,
    submission_events,
    submission_identity_facts,
    submission_revisions,
    submission_signatures,
    submissions,
);
