//! Object storage for stored files (attachments), through Apache Arrow's `object_store`: a local
//! directory (the default), memory (tests), or an S3-compatible service shared by every app server
//! and worker. Keys are ids the caller makes; an original file name never reaches the store.
//!
//! Writes are create-only (`PutMode::Create`), so a retried upload can never overwrite an object.
//! The caller writes the object first and its row afterwards, in the row's transaction; an object
//! whose row never committed is an orphan the worker's sweep removes (see
//! `submissions::attachments::sweep`), so no row ever names a missing object.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::Deserialize;

/// `[storage]`: which backend keeps stored files.
#[derive(Debug, Clone, Deserialize)]
pub struct StorageSettings {
    pub backend: Backend,
    pub s3: S3Settings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// `submissions.attachments_dir` on this machine: one server only.
    Fs,
    /// This process's memory: tests only, gone at exit.
    Memory,
    /// An S3-compatible bucket, shared by every server and worker.
    S3,
}

/// `[storage.s3]`. Credentials come from the environment: `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`), or `MADOGUCHI__STORAGE__S3__ACCESS_KEY_ID`
/// and `MADOGUCHI__STORAGE__S3__SECRET_ACCESS_KEY`, which win when set.
#[derive(Debug, Clone, Deserialize)]
pub struct S3Settings {
    /// The service's URL; empty for AWS itself.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    /// Objects live under this prefix in the bucket.
    pub prefix: String,
    /// Plain HTTP to the endpoint (a store on the same host or private network).
    pub allow_http: bool,
    /// How long one request to the store may take before the upload is answered 503.
    pub request_timeout_seconds: u64,
    pub access_key_id: String,
    pub secret_access_key: secrecy::SecretString,
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no object under this key")]
    NotFound,
    /// A create-only write found the key taken.
    #[error("an object under this key exists")]
    AlreadyExists,
    #[error("the storage is full")]
    Full,
    /// The store did not answer or failed: retry later.
    #[error("object storage is unavailable")]
    Unavailable(#[source] object_store::Error),
}

impl From<object_store::Error> for StorageError {
    fn from(error: object_store::Error) -> Self {
        match error {
            object_store::Error::NotFound { .. } => Self::NotFound,
            object_store::Error::AlreadyExists { .. } => Self::AlreadyExists,
            error if is_disk_full(&error) => Self::Full,
            error => Self::Unavailable(error),
        }
    }
}

fn is_disk_full(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if current
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
        {
            return true;
        }
        cause = current.source();
    }
    false
}

/// Where stored files live; cheap to clone (one shared client).
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// The directory of the filesystem backend, whose writes are made durable with fsync.
    local_dir: Option<PathBuf>,
}

/// The store's name only: the S3 client's own `Debug` would print its credentials.
impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.store)
    }
}

impl Storage {
    /// The backend the settings choose; `attachments_dir` is the filesystem backend's directory.
    pub fn from_settings(
        settings: &StorageSettings,
        attachments_dir: &FsPath,
    ) -> anyhow::Result<Self> {
        match settings.backend {
            Backend::Fs => Self::local(attachments_dir),
            Backend::Memory => Ok(Self::memory()),
            Backend::S3 => Self::s3(&settings.s3),
        }
    }

    pub fn local(dir: &FsPath) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|error| anyhow::anyhow!("creating {}: {error}", dir.display()))?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(Self {
            store: Arc::new(store),
            local_dir: Some(dir.canonicalize()?),
        })
    }

    pub fn memory() -> Self {
        Self {
            store: Arc::new(object_store::memory::InMemory::new()),
            local_dir: None,
        }
    }

    pub fn s3(settings: &S3Settings) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !settings.bucket.is_empty(),
            "storage.s3.bucket is needed for the s3 backend"
        );
        let timeout = Duration::from_secs(settings.request_timeout_seconds.max(1));
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            // A store that is down must turn into a prompt 503, not minutes of retrying.
            .with_retry(object_store::RetryConfig {
                backoff: object_store::BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(1),
                    base: 2.0,
                },
                max_retries: 2,
                retry_timeout: timeout,
            })
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(2))
                    .with_timeout(timeout),
            )
            // After the client options, which would replace it.
            .with_allow_http(settings.allow_http);
        if !settings.access_key_id.is_empty() {
            use secrecy::ExposeSecret;
            builder = builder
                .with_access_key_id(&settings.access_key_id)
                .with_secret_access_key(settings.secret_access_key.expose_secret());
        }
        if !settings.endpoint.is_empty() {
            builder = builder
                .with_endpoint(&settings.endpoint)
                // Most S3-compatible services address buckets by path, not by host name.
                .with_virtual_hosted_style_request(false);
        }
        let store = builder.build()?;
        let store: Arc<dyn ObjectStore> = if settings.prefix.is_empty() {
            Arc::new(store)
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(
                store,
                settings.prefix.as_str(),
            ))
        };
        Ok(Self {
            store,
            local_dir: None,
        })
    }

    /// Stores `bytes` under a new `key`; an existing object is never replaced. Returns once the
    /// object is durable (fsync on the filesystem backend; S3 acknowledges durable writes).
    pub async fn put(&self, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        self.store
            .put_opts(
                &Path::from(key),
                PutPayload::from(Bytes::copy_from_slice(bytes)),
                options,
            )
            .await?;
        if let Some(dir) = &self.local_dir {
            sync_file(&dir.join(key))
                .await
                .map_err(|error| StorageError::Unavailable(generic(error)))?;
        }
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Bytes, StorageError> {
        Ok(self.store.get(&Path::from(key)).await?.bytes().await?)
    }

    /// Deletes an object; one that is already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Keys of the objects written more than `age` ago (candidates for the orphan sweep).
    pub async fn keys_older_than(&self, age: Duration) -> Result<Vec<String>, StorageError> {
        let cutoff = chrono::Utc::now()
            - chrono::Duration::from_std(age).unwrap_or_else(|_| chrono::Duration::days(365));
        let mut keys = Vec::new();
        let mut listing = self.store.list(None);
        while let Some(meta) = listing.next().await {
            let meta = match meta {
                Ok(meta) => meta,
                // The listing of an empty filesystem store before its first write.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(error) => return Err(error.into()),
            };
            if meta.last_modified <= cutoff {
                keys.push(meta.location.to_string());
            }
        }
        Ok(keys)
    }

    /// Deletes the objects of rows that are gone. A failure is logged and left to the sweep.
    pub async fn delete_all(&self, keys: &[String]) {
        for key in keys {
            if let Err(error) = self.delete(key).await {
                tracing::warn!(error = %error, "a stored file could not be deleted; the sweep will retry");
            }
        }
    }
}

fn generic(error: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: Box::new(error),
    }
}

/// fsync of a file and of its directory, so an acknowledged upload survives a power cut.
async fn sync_file(path: &FsPath) -> std::io::Result<()> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        std::fs::File::open(&path)?.sync_all()?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_create_only_write_never_replaces_an_object() {
        let storage = Storage::memory();
        storage.put("k", b"first").await.expect("put");
        let again = storage.put("k", b"second").await;
        assert!(
            matches!(again, Err(StorageError::AlreadyExists)),
            "{again:?}"
        );
        assert_eq!(storage.get("k").await.expect("get").as_ref(), b"first");
    }

    #[tokio::test]
    async fn the_filesystem_backend_lists_deletes_and_refuses_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = Storage::local(dir.path()).expect("local");
        assert!(
            storage
                .keys_older_than(Duration::ZERO)
                .await
                .expect("list")
                .is_empty()
        );
        storage.put("a", b"bytes").await.expect("put");
        assert!(matches!(
            storage.put("a", b"other").await,
            Err(StorageError::AlreadyExists)
        ));
        assert_eq!(
            storage.keys_older_than(Duration::ZERO).await.expect("list"),
            vec!["a".to_owned()]
        );
        assert!(
            storage
                .keys_older_than(Duration::from_secs(3600))
                .await
                .expect("list")
                .is_empty()
        );
        storage.delete("a").await.expect("delete");
        storage.delete("a").await.expect("deleting twice is fine");
        assert!(matches!(
            storage.get("a").await,
            Err(StorageError::NotFound)
        ));
    }
}
