//! Sealing of My Numbers (個人番号) inside stored answers: XChaCha20-Poly1305 with a key id, so
//! keys can be rotated (the first configured key seals, every key opens).
//!
//! A sealed value is the string `sealed:v2:<kid>:<base64(nonce ‖ ciphertext)>`. The associated
//! data binds the procedure, the owning row (an application's revision, or a draft) and the field
//! path, so a sealed value copied into another application, revision, draft or field fails to
//! open. Version 1 values (bound to procedure and path only) are re-sealed once by
//! [`migrate_legacy`]; nothing else opens them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::forms::model::{Field, FieldType};

const PREFIX: &str = "sealed:v2:";
const LEGACY_PREFIX: &str = "sealed:v1:";

pub struct Sealer {
    keys: Vec<(String, XChaCha20Poly1305)>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Sealer")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("not a sealed value")]
    NotSealed,
    #[error("no key `{0}` to open this value")]
    UnknownKey(String),
    #[error("the sealed value is damaged or was moved from another row or field")]
    Damaged,
}

/// The row a sealed value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// One revision of an application (`submissions.data` is its current revision's copy).
    Revision {
        submission: Uuid,
        revision: i32,
    },
    Draft(Uuid),
}

/// Where sealed values live: the procedure and the owning row. With a field's JSON pointer it
/// makes the associated data of the seal.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub procedure_id: &'a str,
    pub owner: Owner,
}

impl<'a> Scope<'a> {
    /// The scope of one revision of an application.
    pub fn revision(procedure_id: &'a str, submission: Uuid, revision: i32) -> Self {
        Self {
            procedure_id,
            owner: Owner::Revision {
                submission,
                revision,
            },
        }
    }

    fn associated_data(&self, pointer: &str) -> String {
        let procedure = self.procedure_id;
        match self.owner {
            Owner::Revision {
                submission,
                revision,
            } => format!("{procedure}|submission:{submission}|revision:{revision}|{pointer}"),
            Owner::Draft(draft) => format!("{procedure}|draft:{draft}|{pointer}"),
        }
    }
}

impl Sealer {
    /// `kid:base64(32 bytes),…`; empty = a random key (development only).
    pub fn from_config(keys: &SecretString) -> anyhow::Result<Self> {
        let mut parsed = Vec::new();
        for entry in keys
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (kid, encoded) = entry
                .split_once(':')
                .ok_or_else(|| anyhow::anyhow!("submissions.sealing_keys: expected kid:base64"))?;
            let bytes = BASE64
                .decode(encoded)
                .map_err(|_| anyhow::anyhow!("submissions.sealing_keys: `{kid}` is not base64"))?;
            anyhow::ensure!(
                bytes.len() == 32,
                "submissions.sealing_keys: `{kid}` must be 32 bytes"
            );
            let cipher = XChaCha20Poly1305::new_from_slice(&bytes)
                .map_err(|_| anyhow::anyhow!("submissions.sealing_keys: bad key `{kid}`"))?;
            parsed.push((kid.to_owned(), cipher));
        }
        if parsed.is_empty() {
            let key = crate::identity::challenge::random_bytes(32);
            let cipher = XChaCha20Poly1305::new_from_slice(&key)
                .map_err(|_| anyhow::anyhow!("random sealing key"))?;
            parsed.push(("ephemeral".to_owned(), cipher));
        }
        Ok(Self { keys: parsed })
    }

    /// Seals the value of the field at `pointer` of a row in `scope`.
    pub fn seal(&self, plaintext: &str, scope: &Scope<'_>, pointer: &str) -> String {
        self.seal_with(PREFIX, plaintext, &scope.associated_data(pointer))
    }

    /// Opens a value sealed by [`Sealer::seal`] with the same scope and pointer.
    pub fn open(
        &self,
        sealed: &str,
        scope: &Scope<'_>,
        pointer: &str,
    ) -> Result<String, SealError> {
        let rest = sealed.strip_prefix(PREFIX).ok_or(SealError::NotSealed)?;
        self.open_with(rest, &scope.associated_data(pointer))
    }

    fn seal_with(&self, prefix: &str, plaintext: &str, aad: &str) -> String {
        let (kid, cipher) = &self.keys[0];
        let nonce_bytes = crate::identity::challenge::random_bytes(24);
        let nonce = XNonce::from_slice(&nonce_bytes);
        // Encryption with a valid key and nonce cannot fail for inputs this small.
        let ciphertext = cipher
            .encrypt(
                nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut blob = nonce_bytes;
        blob.extend(ciphertext);
        format!("{prefix}{kid}:{}", BASE64.encode(blob))
    }

    fn open_with(&self, rest: &str, aad: &str) -> Result<String, SealError> {
        let (kid, encoded) = rest.split_once(':').ok_or(SealError::Damaged)?;
        let (_, cipher) = self
            .keys
            .iter()
            .find(|(id, _)| id == kid)
            .ok_or_else(|| SealError::UnknownKey(kid.to_owned()))?;
        let blob = BASE64.decode(encoded).map_err(|_| SealError::Damaged)?;
        if blob.len() < 24 {
            return Err(SealError::Damaged);
        }
        let (nonce, ciphertext) = blob.split_at(24);
        let plaintext = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError::Damaged)?;
        String::from_utf8(plaintext).map_err(|_| SealError::Damaged)
    }

    /// True for any sealed value, of this version or the legacy one.
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX) || value.starts_with(LEGACY_PREFIX)
    }
}

/// Logs a sealed value that does not open in its row: someone moved or altered stored data.
/// The alarm names the row and path, never the value.
pub fn integrity_alarm(scope: &Scope<'_>, pointer: &str, error: &SealError) {
    tracing::error!(
        alarm = "sealed_value_integrity",
        procedure = scope.procedure_id,
        owner = ?scope.owner,
        path = pointer,
        error = %error,
        "a sealed My Number does not open in its own row"
    );
}

/// `********9018`: enough for the resident to recognise their number, useless to anyone else.
pub fn mask(my_number: &str) -> String {
    let last: String = my_number
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("********{last}")
}

/// Replaces the clear My Numbers in `data` with sealed values, recursing into groups.
pub fn seal_answers<'a>(
    sealer: &Sealer,
    fields: impl Iterator<Item = &'a Field>,
    data: &Map<String, Value>,
    scope: &Scope<'_>,
) -> Map<String, Value> {
    let mut sealed = data.clone();
    for_each_my_number(fields, &mut sealed, "", &mut |pointer, value| {
        if !Sealer::is_sealed(value) {
            *value = sealer.seal(value, scope, pointer);
        }
    });
    sealed
}

/// Calls `visit` with the pointer and the value of every My Number answer present in `data`.
fn for_each_my_number<'a>(
    fields: impl Iterator<Item = &'a Field>,
    data: &mut Map<String, Value>,
    prefix: &str,
    visit: &mut dyn FnMut(&str, &mut String),
) {
    for field in fields {
        // Built only where it is used: this walk runs for every application stored.
        let pointer = || format!("{prefix}/{}", field.id);
        match (field.kind(), data.get_mut(&field.id)) {
            (FieldType::MyNumber, Some(Value::String(value))) => visit(&pointer(), value),
            (FieldType::Group, Some(Value::Array(items))) => {
                let pointer = pointer();
                for (index, item) in items.iter_mut().enumerate() {
                    if let Value::Object(object) = item {
                        let item_pointer = format!("{pointer}/{index}");
                        for_each_my_number(field.fields.iter(), object, &item_pointer, visit);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Replaces sealed My Numbers with their masked form (`********9018`) for display. A value that
/// does not open in its row is shown as `********` and raises the integrity alarm.
pub fn mask_answers(sealer: &Sealer, value: &Value, scope: &Scope<'_>) -> Value {
    mask_answers_at(sealer, value, scope, "")
}

/// As [`mask_answers`], for the part of the answers at `pointer`.
pub fn mask_answers_at(sealer: &Sealer, value: &Value, scope: &Scope<'_>, pointer: &str) -> Value {
    map_sealed(
        value,
        pointer,
        &mut |pointer, sealed| match sealer.open(sealed, scope, pointer) {
            Ok(plain) => mask(&plain),
            Err(error) => {
                integrity_alarm(scope, pointer, &error);
                "********".to_owned()
            }
        },
    )
}

/// A copy of `value` with every sealed string replaced by `replace(pointer, sealed)`.
fn map_sealed(
    value: &Value,
    pointer: &str,
    replace: &mut dyn FnMut(&str, &str) -> String,
) -> Value {
    match value {
        Value::String(text) if Sealer::is_sealed(text) => Value::String(replace(pointer, text)),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, inner)| {
                    let inner = map_sealed(inner, &format!("{pointer}/{key}"), replace);
                    (key.clone(), inner)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(index, inner)| map_sealed(inner, &format!("{pointer}/{index}"), replace))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Answers sent again after the resident saw them masked: wherever `incoming` holds the masked
/// form of the My Number sealed at the same place in `stored`, the clear number is put back, so a
/// resumed draft can be saved or submitted without typing the number again. Anything else the
/// resident typed is left as it is.
pub fn restore_masked(
    sealer: &Sealer,
    incoming: &Value,
    stored: &Value,
    scope: &Scope<'_>,
) -> Value {
    let mut restored = incoming.clone();
    restore_into(sealer, &mut restored, stored, scope, "");
    restored
}

fn restore_into(
    sealer: &Sealer,
    incoming: &mut Value,
    stored: &Value,
    scope: &Scope<'_>,
    pointer: &str,
) {
    match (incoming, stored) {
        (Value::Object(new), Value::Object(old)) => {
            for (key, value) in new.iter_mut() {
                if let Some(previous) = old.get(key) {
                    restore_into(sealer, value, previous, scope, &format!("{pointer}/{key}"));
                }
            }
        }
        (Value::Array(new), Value::Array(old)) => {
            for (index, (value, previous)) in new.iter_mut().zip(old).enumerate() {
                restore_into(
                    sealer,
                    value,
                    previous,
                    scope,
                    &format!("{pointer}/{index}"),
                );
            }
        }
        (Value::String(masked), Value::String(sealed)) if Sealer::is_sealed(sealed) => {
            if let Ok(plain) = sealer.open(sealed, scope, pointer)
                && *masked == mask(&plain)
            {
                *masked = plain;
            }
        }
        _ => {}
    }
}

/// One-off re-sealing of data stored before row binding (run once, after the schema migrations,
/// recorded in `data_migrations`): clear My Numbers in drafts are sealed to their draft, and
/// version 1 values in applications and revisions are sealed again to their revision.
pub mod legacy {
    use diesel::prelude::*;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    use serde_json::Value;
    use uuid::Uuid;

    use super::{
        LEGACY_PREFIX, Owner, Scope, SealError, Sealer, integrity_alarm, map_sealed, seal_answers,
    };
    use crate::db::schema::{data_migrations, drafts, submission_revisions, submissions};
    use crate::forms::Catalog;

    const NAME: &str = "reseal_my_numbers_v2";

    /// What the re-sealing changed.
    #[derive(Debug, Default, PartialEq, Eq)]
    pub struct Resealed {
        pub drafts: usize,
        pub submissions: usize,
        pub revisions: usize,
    }

    /// Runs the re-sealing unless it already ran; `None` when it had.
    pub async fn migrate(
        connection: &mut AsyncPgConnection,
        sealer: &Sealer,
        catalog: &Catalog,
    ) -> anyhow::Result<Option<Resealed>> {
        connection
            .transaction::<_, anyhow::Error, _>(|connection| {
                Box::pin(async move {
                    let claimed = diesel::insert_into(data_migrations::table)
                        .values(data_migrations::name.eq(NAME))
                        .on_conflict_do_nothing()
                        .execute(connection)
                        .await?;
                    if claimed == 0 {
                        return Ok(None);
                    }
                    Ok(Some(reseal_all(connection, sealer, catalog).await?))
                })
            })
            .await
    }

    async fn reseal_all(
        connection: &mut AsyncPgConnection,
        sealer: &Sealer,
        catalog: &Catalog,
    ) -> anyhow::Result<Resealed> {
        let mut done = Resealed::default();
        let rows: Vec<(Uuid, String, Value)> = drafts::table
            .select((drafts::id, drafts::procedure_id, drafts::data))
            .for_update()
            .load(connection)
            .await?;
        for (id, procedure_id, data) in rows {
            let (Some(procedure), Value::Object(map)) = (catalog.get(&procedure_id), &data) else {
                continue;
            };
            let scope = Scope {
                procedure_id: &procedure_id,
                owner: Owner::Draft(id),
            };
            let fields = procedure
                .definition
                .pages
                .iter()
                .flat_map(|p| p.fields.iter());
            let sealed = Value::Object(seal_answers(sealer, fields, map, &scope));
            if sealed != data {
                diesel::update(drafts::table.find(id))
                    .set(drafts::data.eq(&sealed))
                    .execute(connection)
                    .await?;
                done.drafts += 1;
            }
        }

        let rows: Vec<(Uuid, String, i32, Value)> = submissions::table
            .select((
                submissions::id,
                submissions::procedure_id,
                submissions::revision,
                submissions::data,
            ))
            .for_update()
            .load(connection)
            .await?;
        for (id, procedure_id, revision, data) in rows {
            let owner = Owner::Revision {
                submission: id,
                revision,
            };
            if let Some(resealed) = reseal_v1(sealer, &procedure_id, owner, &data)? {
                diesel::update(submissions::table.find(id))
                    .set(submissions::data.eq(&resealed))
                    .execute(connection)
                    .await?;
                done.submissions += 1;
            }
        }

        let rows: Vec<(Uuid, i32, String, Value)> = submission_revisions::table
            .inner_join(submissions::table)
            .select((
                submission_revisions::submission_id,
                submission_revisions::revision,
                submissions::procedure_id,
                submission_revisions::data,
            ))
            .load(connection)
            .await?;
        for (id, revision, procedure_id, data) in rows {
            let owner = Owner::Revision {
                submission: id,
                revision,
            };
            if let Some(resealed) = reseal_v1(sealer, &procedure_id, owner, &data)? {
                diesel::update(
                    submission_revisions::table
                        .filter(submission_revisions::submission_id.eq(id))
                        .filter(submission_revisions::revision.eq(revision)),
                )
                .set(submission_revisions::data.eq(&resealed))
                .execute(connection)
                .await?;
                done.revisions += 1;
            }
        }
        Ok(done)
    }

    /// `data` with every version 1 value opened (bound to procedure and path) and sealed again
    /// to its row; `None` when there was none. A value sealed with a key that is not configured
    /// stops the migration: better to stop than to lose a My Number.
    fn reseal_v1(
        sealer: &Sealer,
        procedure_id: &str,
        owner: Owner,
        data: &Value,
    ) -> anyhow::Result<Option<Value>> {
        let scope = Scope {
            procedure_id,
            owner,
        };
        let mut failure = None;
        let mut changed = false;
        let resealed = map_sealed(data, "", &mut |pointer, sealed| {
            let Some(rest) = sealed.strip_prefix(LEGACY_PREFIX) else {
                return sealed.to_owned();
            };
            match sealer.open_with(rest, &format!("{procedure_id}{pointer}")) {
                Ok(plain) => {
                    changed = true;
                    sealer.seal(&plain, &scope, pointer)
                }
                // A missing key stops the migration: the operator must add the old key.
                Err(SealError::UnknownKey(kid)) => {
                    failure = Some(anyhow::anyhow!(
                        "{owner:?} {pointer}: sealed with key `{kid}`, which is not in submissions.sealing_keys"
                    ));
                    sealed.to_owned()
                }
                // Damaged (or sealed with a development key that died with its process): nobody
                // can open it; it stays as it is and is reported.
                Err(error) => {
                    integrity_alarm(&scope, pointer, &error);
                    sealed.to_owned()
                }
            }
        });
        if let Some(error) = failure {
            return Err(error);
        }
        Ok(changed.then_some(resealed))
    }

    #[cfg(test)]
    pub(super) fn seal_v1(sealer: &Sealer, plain: &str, context: &str) -> String {
        sealer.seal_with(LEGACY_PREFIX, plain, context)
    }

    #[cfg(test)]
    pub(super) fn reseal_for_test(
        sealer: &Sealer,
        procedure_id: &str,
        owner: Owner,
        data: &Value,
    ) -> anyhow::Result<Option<Value>> {
        reseal_v1(sealer, procedure_id, owner, data)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scope(owner: Owner) -> Scope<'static> {
        Scope {
            procedure_id: "p",
            owner,
        }
    }

    #[test]
    fn seal_open_rotate_and_bind_row_and_field() {
        let old = SecretString::from(format!("k1:{}", BASE64.encode([7u8; 32])));
        let sealer = Sealer::from_config(&old).unwrap();
        let application = Uuid::now_v7();
        let here = scope(Owner::Revision {
            submission: application,
            revision: 1,
        });
        let sealed = sealer.seal("123456789018", &here, "/my_number");
        assert!(!sealed.contains("123456789018"));
        assert_eq!(
            sealer.open(&sealed, &here, "/my_number").unwrap(),
            "123456789018"
        );
        for (elsewhere, pointer) in [
            (here, "/other_field"),
            (
                scope(Owner::Revision {
                    submission: Uuid::now_v7(),
                    revision: 1,
                }),
                "/my_number",
            ),
            (
                scope(Owner::Revision {
                    submission: application,
                    revision: 2,
                }),
                "/my_number",
            ),
            (scope(Owner::Draft(application)), "/my_number"),
        ] {
            assert!(matches!(
                sealer.open(&sealed, &elsewhere, pointer),
                Err(SealError::Damaged)
            ));
        }

        let rotated = SecretString::from(format!(
            "k2:{},k1:{}",
            BASE64.encode([9u8; 32]),
            BASE64.encode([7u8; 32])
        ));
        let rotated = Sealer::from_config(&rotated).unwrap();
        assert_eq!(
            rotated.open(&sealed, &here, "/my_number").unwrap(),
            "123456789018"
        );
        assert!(rotated.seal("1", &here, "/c").starts_with("sealed:v2:k2:"));
        assert_eq!(mask("123456789018"), "********9018");
    }

    #[test]
    fn masked_values_are_restored_only_where_they_match() {
        let sealer = Sealer::from_config(&SecretString::from(String::new())).unwrap();
        let draft = scope(Owner::Draft(Uuid::now_v7()));
        let stored = json!({
            "my_number": sealer.seal("123456789018", &draft, "/my_number"),
            "members": [{"my_number": sealer.seal("987654321098", &draft, "/members/0/my_number")}],
        });
        let incoming = json!({
            "my_number": "********9018",
            "members": [{"my_number": "********0000"}],
        });
        let restored = restore_masked(&sealer, &incoming, &stored, &draft);
        assert_eq!(restored["my_number"], "123456789018");
        // A mask that is not this number's stays as typed (and fails validation).
        assert_eq!(restored["members"][0]["my_number"], "********0000");
    }

    #[test]
    fn legacy_values_are_resealed_to_their_row() {
        let sealer = Sealer::from_config(&SecretString::from(String::new())).unwrap();
        let owner = Owner::Revision {
            submission: Uuid::now_v7(),
            revision: 3,
        };
        let data = json!({
            "my_number": legacy::seal_v1(&sealer, "123456789018", "p/my_number"),
            "name": "加賀 太郎",
        });
        let resealed = legacy::reseal_for_test(&sealer, "p", owner, &data)
            .unwrap()
            .unwrap();
        let value = resealed["my_number"].as_str().unwrap();
        assert!(value.starts_with(PREFIX));
        assert_eq!(
            sealer.open(value, &scope(owner), "/my_number").unwrap(),
            "123456789018"
        );
        assert_eq!(resealed["name"], "加賀 太郎");
        assert!(
            legacy::reseal_for_test(&sealer, "p", owner, &resealed)
                .unwrap()
                .is_none()
        );
    }
}
