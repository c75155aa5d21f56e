//! The built reports, kept per scope (public, or a set of divisions) and day until the data
//! under them changes, so serving the dashboard reads one row instead of rebuilding the
//! suppressed tables on every request.
//!
//! The data's generation is the watermark row (its event id, and the time a pass last changed
//! the rollups or the overdue snapshot) and the latest counter entry: a refresh or a new
//! counter count gives a new generation, and the next request builds afresh. Each server keeps
//! its own cache; all of them see the same generation in PostgreSQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::report::{self, StatisticsReport};
use crate::config::StatisticsSettings;
use crate::db::DbError;
use crate::forms::Catalog;
use crate::statistics_breakdown::Breakdown;

/// Scopes kept at most: one per distinct set of divisions that asked, and the public one.
const CAPACITY: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
struct Generation {
    #[diesel(sql_type = BigInt)]
    last_event_id: i64,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    counted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Scope {
    /// Sorted; None for the public report.
    divisions: Option<Vec<String>>,
    today: NaiveDate,
}

#[derive(Default)]
pub struct ReportCache {
    entries: Mutex<HashMap<Scope, (Generation, Arc<StatisticsReport>)>>,
}

/// What building a report needs besides the connection.
pub struct Sources<'a> {
    pub catalog: &'a Catalog,
    pub settings: &'a StatisticsSettings,
    pub breakdown: &'a Breakdown,
}

impl ReportCache {
    /// The report of `divisions` (None: public) on `today`, built only if the data changed
    /// since it was last built.
    pub async fn report(
        &self,
        connection: &mut AsyncPgConnection,
        sources: &Sources<'_>,
        divisions: Option<&[String]>,
        today: NaiveDate,
    ) -> Result<Arc<StatisticsReport>, DbError> {
        let generation: Generation = diesel::sql_query(
            "SELECT last_event_id, updated_at,
                    (SELECT max(entered_at) FROM statistics_counter_counts) AS counted_at
               FROM statistics_watermark",
        )
        .get_result(connection)
        .await
        .map_err(DbError::classify)?;
        let scope = Scope {
            divisions: divisions.map(|divisions| {
                let mut sorted = divisions.to_vec();
                sorted.sort();
                sorted.dedup();
                sorted
            }),
            today,
        };
        if let Some((built, report)) = self.lock().get(&scope)
            && *built == generation
        {
            return Ok(report.clone());
        }
        let built = Arc::new(
            report::report(
                connection,
                sources.catalog,
                sources.settings,
                sources.breakdown,
                divisions,
                today,
            )
            .await?,
        );
        let mut entries = self.lock();
        // Whatever an older generation built is stale now.
        entries.retain(|_, (kept, _)| *kept == generation);
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(scope, (generation, built.clone()));
        Ok(built)
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<Scope, (Generation, Arc<StatisticsReport>)>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
