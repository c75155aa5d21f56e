// @generated automatically by Diesel CLI.

diesel::table! {
    procedure_versions (content_hash) {
        content_hash -> Text,
        procedure_id -> Text,
        version -> Int4,
        definition -> Jsonb,
        first_seen_at -> Timestamptz,
    }
}
