//! The procedure catalog: the definition language, loading and checking `forms/`, validating
//! submission data, and exporting JSON Schema.
//!
//! A city's IT team adds a procedure by adding a YAML file; everything else follows from it.

pub mod fees;
pub mod json_schema;
pub mod lint;
pub mod logic;
pub mod model;
pub mod normalize;
mod parallel;
pub mod search;
pub mod source;
pub mod validate;
pub mod wareki;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, RwLock};

use diesel::upsert::on_constraint;
use diesel_async::RunQueryDsl;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use lint::{CheckReport, Problem};
pub use model::{Assurance, Definition, Organisation};

use crate::db::{DbError, DbPool};

/// One procedure as served: its resolved definition and what is derived from it once at load.
#[derive(Debug)]
pub struct Procedure {
    pub definition: Definition,
    /// SHA-256 of the resolved definition (examples excluded): the version a submission pins.
    pub content_hash: String,
    pub source: PathBuf,
    /// JSON Schema 2020-12 of the submission data.
    pub schema: Value,
}

impl Procedure {
    /// A strong validator for HTTP caching: the content hash.
    pub fn etag(&self) -> String {
        format!("\"{}\"", &self.content_hash[..32])
    }
}

/// The whole catalog, loaded once at startup and served from memory.
#[derive(Debug)]
pub struct Catalog {
    pub organisation: Organisation,
    pub procedures: BTreeMap<String, Procedure>,
    /// Changes whenever any definition or the organisation changes.
    pub etag: String,
}

impl Catalog {
    /// Loads and checks every definition under `dir`. Any problem refuses the whole catalog:
    /// the server must not start with a broken form.
    pub fn load(dir: &Path) -> Result<Self, CheckReport> {
        let loaded = lint::check_catalog(dir, &[])?;
        let mut procedures = BTreeMap::new();
        let mut catalog_hasher = Sha256::new();
        let organisation_json = serde_json::to_vec(&loaded.organisation).unwrap_or_default();
        catalog_hasher.update(&organisation_json);
        let compiled = parallel::map(loaded.definitions, |(definition, source)| Procedure {
            content_hash: content_hash(&definition),
            schema: json_schema::export(&definition),
            definition,
            source,
        });
        for procedure in compiled {
            catalog_hasher.update(procedure.content_hash.as_bytes());
            procedures.insert(procedure.definition.id.clone(), procedure);
        }
        Ok(Self {
            organisation: loaded.organisation,
            procedures,
            etag: format!("\"{}\"", &hex::encode(catalog_hasher.finalize())[..32]),
        })
    }

    pub fn get(&self, id: &str) -> Option<&Procedure> {
        self.procedures.get(id)
    }

    /// Records every served definition version, so submissions can pin it and old versions
    /// stay readable after a file changes.
    pub async fn record_versions(&self, pool: &DbPool) -> Result<(), DbError> {
        use crate::db::schema::procedure_versions::dsl as pv;
        use diesel::{ExpressionMethods, QueryDsl};
        let mut connection = crate::db::connection(pool).await?;
        // Usually every version is there already (a restart): asking which are costs one small
        // query, where sending every definition (~1 MB of JSON) to be ignored cost most of startup.
        let hashes: Vec<&str> = self
            .procedures
            .values()
            .map(|procedure| procedure.content_hash.as_str())
            .collect();
        let known: std::collections::HashSet<String> = pv::procedure_versions
            .filter(pv::content_hash.eq_any(&hashes))
            .select(pv::content_hash)
            .load::<String>(&mut connection)
            .await
            .map_err(DbError::classify)?
            .into_iter()
            .collect();
        let rows: Vec<_> = self
            .procedures
            .values()
            .filter(|procedure| !known.contains(&procedure.content_hash))
            .map(|procedure| {
                (
                    pv::content_hash.eq(procedure.content_hash.clone()),
                    pv::procedure_id.eq(procedure.definition.id.clone()),
                    pv::version.eq(procedure.definition.version as i32),
                    pv::definition
                        .eq(serde_json::to_value(&procedure.definition).unwrap_or(Value::Null)),
                )
            })
            .collect();
        for chunk in rows.chunks(500) {
            diesel::insert_into(pv::procedure_versions)
                .values(chunk)
                .on_conflict(on_constraint("procedure_versions_pkey"))
                .do_nothing()
                .execute(&mut connection)
                .await
                .map_err(DbError::classify)?;
        }
        Ok(())
    }
}

/// SHA-256 over the canonical JSON of a resolved definition (struct field order is fixed and
/// maps are sorted, so the same content always gives the same hash).
pub fn content_hash(definition: &Definition) -> String {
    let bytes = serde_json::to_vec(definition).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}

static PATTERNS: LazyLock<RwLock<HashMap<String, regex::Regex>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

/// Whether `text` matches a field's `pattern` as a whole. Patterns are checked to compile when
/// the catalog loads, so an invalid one here can only come from a caller bypassing the checker.
pub fn pattern_matches(pattern: &str, text: &str) -> bool {
    if let Ok(cache) = PATTERNS.read()
        && let Some(regex) = cache.get(pattern)
    {
        return regex.is_match(text);
    }
    let Ok(regex) = regex::Regex::new(&format!("^(?:{pattern})$")) else {
        return false;
    };
    let matched = regex.is_match(text);
    if let Ok(mut cache) = PATTERNS.write() {
        cache.insert(pattern.to_owned(), regex);
    }
    matched
}
