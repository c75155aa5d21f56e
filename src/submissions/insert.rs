//! The rows of a new application in ONE statement: the submission, its first event, its first
//! revision, the identity facts kept with it, its notices and the idempotency answer, as
//! data-modifying CTEs. One round trip where there were six or seven, and the answers are sent
//! (and serialised) once: the revision copies them from the submission's `RETURNING`. The
//! resident's notice is written only if they have a confirmed address, in their language; that
//! lookup is part of the outbox insert.
//!
//! A query type of its own rather than `sql_query`: diesel prepares it once per connection.
//! benches/submission.pgbench runs the same statement.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Bytea, Date, Int2, Int8, Jsonb, Nullable, Text, Timestamptz};
use serde_json::Value;
use uuid::Uuid;

/// The statement; each `?` is a bind, pushed in order by `walk_ast`.
const SQL: &str = "\
WITH s AS (INSERT INTO submissions (id, reference, resident_id, procedure_id, content_hash, status, data, \
                                    fee_yen, fee_breakdown, queue, division, submitted_at, due_date, \
                                    district_code, age_band) \
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id, resident_id, status, data), \
e AS (INSERT INTO submission_events (submission_id, actor_kind, actor_id, from_status, to_status) \
      SELECT id, 'resident', resident_id, NULL, status FROM s), \
r AS (INSERT INTO submission_revisions (submission_id, revision, data) SELECT id, 1, data FROM s), \
f AS (INSERT INTO submission_identity_facts (submission_id, revision, source, issuer, facts, verified_at) \
      SELECT id, 1, ?, ?, ?, ? FROM s WHERE ?), \
o1 AS (INSERT INTO outbox (id, template, language, recipient, payload, submission_id) \
       SELECT ?, 'resident_status', p.language, p.email, \
              CASE WHEN p.language = 'en' THEN ?::jsonb ELSE ?::jsonb END, s.id \
       FROM s JOIN residents p ON p.id = s.resident_id \
       WHERE ? AND p.email_confirmed AND p.email IS NOT NULL), \
o2 AS (INSERT INTO outbox (id, template, language, recipient, payload, submission_id) \
       SELECT ?, 'division_status', 'ja', ?::text, ?::jsonb, s.id FROM s WHERE ?) \
INSERT INTO idempotency_keys (resident_id, key, request_hash, response_status, response_body) \
VALUES (?, ?, ?, ?, ?)";

/// A new application's rows (see the module's description).
#[derive(QueryId)]
pub struct NewApplication {
    pub id: Uuid,
    pub reference: String,
    pub resident_id: Uuid,
    pub procedure_id: String,
    pub content_hash: String,
    pub status: &'static str,
    pub data: Value,
    pub fee_yen: i64,
    pub fee_breakdown: Option<Value>,
    pub queue: String,
    pub division: String,
    pub submitted_at: DateTime<Utc>,
    pub due_date: Option<NaiveDate>,
    /// The statistics' breakdown value, when the city opted in (`crate::statistics_breakdown`).
    pub district_code: Option<String>,
    pub age_band: Option<String>,
    /// The basic facts vouched for the resident, for a procedure that needs an identity
    /// (`crate::identity::facts`): all four set, or none.
    pub facts_source: Option<&'static str>,
    pub facts_issuer: Option<String>,
    pub facts: Option<Value>,
    pub facts_verified_at: Option<DateTime<Utc>>,
    /// The resident's notice in Japanese and in English (`None`: the form tells them nothing).
    pub resident_notice_ja: Option<Value>,
    pub resident_notice_en: Option<Value>,
    /// The division's address and notice (`None`: the form tells it nothing).
    pub division_recipient: Option<String>,
    pub division_notice: Option<Value>,
    /// Outbox ids for the two notices, time-ordered like every other.
    pub notice_ids: [Uuid; 2],
    pub idempotency_key: String,
    pub request_hash: Vec<u8>,
    pub response_status: i16,
    pub response_body: Value,
}

impl QueryFragment<Pg> for NewApplication {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        type Id = diesel::sql_types::Uuid;
        let mut pieces = SQL.split('?');
        let mut sql =
            |out: &mut AstPass<'_, 'b, Pg>| out.push_sql(pieces.next().unwrap_or_default());
        let flag = |set: bool| if set { &true } else { &false };

        sql(&mut out);
        out.push_bind_param::<Id, _>(&self.id)?;
        sql(&mut out);
        out.push_bind_param::<Text, _>(&self.reference)?;
        sql(&mut out);
        out.push_bind_param::<Id, _>(&self.resident_id)?;
        sql(&mut out);
        out.push_bind_param::<Text, _>(&self.procedure_id)?;
        sql(&mut out);
        out.push_bind_param::<Text, _>(&self.content_hash)?;
        sql(&mut out);
        out.push_bind_param::<Text, _>(self.status)?;
        sql(&mut out);
        out.push_bind_param::<Jsonb, _>(&self.data)?;
        sql(&mut out);
        out.push_bind_param::<Int8, _>(&self.fee_yen)?;
        sql(&mut out);
        out.push_bind_param::<Nullable<Jsonb>, _>(&self.fee_breakdown)?;
        sql(&mut out);
        out.push_bind_param::<Text, _>(&self.queue)?;
        sql(&mut out);
        out.push_bind_param::<Text, _>(&self.division)?;
        sql(&mut out);
        out.push_bind_param::<Timestamptz, _>(&self.submitted_at)?;
        sql(&mut out);
        out.push_bind_param::<Nullable<Date>, _>(&self.due_date)?;
        sql(&mut out);
        out.push_bind_param::<Nullable<Text>, _>(&self.district_code)?;
        sql(&mut out);
        out.push_bind_param::<Nullable<Text>, _>(&self.age_band)?;

        sql(&mut out);
        out.push_bind_param::<Nullable<Text>, _>(&self.facts_source)?;
        sql(&mut out);
        out.push_bind_param::<Nullable<Text>, _>(&self.facts_issuer)?;
        sql(&mut out);
        out.push_bind_param::<Nullable<Jsonb>, _>(&self.facts)?;
        sql(&mut out);
        out.push_bind_param::<Nullable<Timestamptz>, _>(&self.facts_verified_at)?;
        sql(&mut out);
        out.push_bind_param::<Bool, _>(flag(self.facts.is_some()))?;

        sql(&mut out);
        out.push_bind_param::<Id, _>(&self.notice_ids[0])?;
        sql(&mut out);
        out.push_bind_param::<Nullable<Jsonb>, _>(&self.resident_notice_en)?;
        sql(&mut out);
        out.push_bind_param::<Nullable<Jsonb>, _>(&self.resident_notice_ja)?;
        sql(&mut out);
        out.push_bind_param::<Bool, _>(flag(self.resident_notice_ja.is_some()))?;

        sql(&mut out);
        out.push_bind_param::<Id, _>(&self.notice_ids[1])?;
        sql(&mut out);
        out.push_bind_param::<Nullable<Text>, _>(&self.division_recipient)?;
        sql(&mut out);
        out.push_bind_param::<Nullable<Jsonb>, _>(&self.division_notice)?;
        sql(&mut out);
        out.push_bind_param::<Bool, _>(flag(self.division_notice.is_some()))?;

        sql(&mut out);
        out.push_bind_param::<Id, _>(&self.resident_id)?;
        sql(&mut out);
        out.push_bind_param::<Text, _>(&self.idempotency_key)?;
        sql(&mut out);
        out.push_bind_param::<Bytea, _>(&self.request_hash)?;
        sql(&mut out);
        out.push_bind_param::<Int2, _>(&self.response_status)?;
        sql(&mut out);
        out.push_bind_param::<Jsonb, _>(&self.response_body)?;
        sql(&mut out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_statement_has_a_bind_for_each_value() {
        // 15 submission columns, 5 for the facts, 4 + 4 for the notices, 5 for the idempotency
        // answer.
        assert_eq!(super::SQL.matches('?').count(), 33);
    }
}
