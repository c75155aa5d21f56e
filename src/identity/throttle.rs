//! Staff password attempts per client address, counted in PostgreSQL so that the allowance holds
//! across every app server (an in-memory limiter would give N servers N allowances).
//!
//! GCRA, as the governor crate did it in memory: each address has a time from which its next
//! attempt is free; an attempt moves it on by one interval (a minute divided by the allowance),
//! and is refused when that would put it more than a minute ahead. Refused attempts cost nothing,
//! so a burst of the whole allowance is possible, then one attempt per interval.

use std::net::IpAddr;

use diesel::sql_types::{Double, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(diesel::QueryableByName)]
struct Admitted {
    #[diesel(sql_type = Text)]
    #[allow(dead_code)]
    address: String,
}

/// Whether `address` may make an attempt now (and counts it), `per_minute` attempts a minute.
pub async fn admit(
    connection: &mut AsyncPgConnection,
    address: IpAddr,
    per_minute: u32,
) -> Result<bool, diesel::result::Error> {
    let interval = 60.0 / f64::from(per_minute.max(1));
    let admitted: Option<Admitted> = diesel::sql_query(
        "INSERT INTO address_throttle AS t (address, allowed_from) \
         VALUES ($1, now() + make_interval(secs => $2)) \
         ON CONFLICT (address) DO UPDATE \
           SET allowed_from = GREATEST(t.allowed_from, now()) + make_interval(secs => $2) \
           WHERE GREATEST(t.allowed_from, now()) + make_interval(secs => $2) \
             <= now() + interval '60 seconds' \
         RETURNING address",
    )
    .bind::<Text, _>(address.to_string())
    .bind::<Double, _>(interval)
    .get_result(connection)
    .await
    .map(Some)
    .or_else(|error| match error {
        diesel::result::Error::NotFound => Ok(None),
        error => Err(error),
    })?;
    Ok(admitted.is_some())
}

/// Forgets addresses whose allowance is full again (the worker's housekeeping).
pub async fn purge_expired(
    connection: &mut AsyncPgConnection,
) -> Result<usize, diesel::result::Error> {
    diesel::sql_query("DELETE FROM address_throttle WHERE allowed_from < now()")
        .execute(connection)
        .await
}
