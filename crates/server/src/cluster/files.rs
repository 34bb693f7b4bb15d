//! Shared files in cluster mode: the bytes of every shared file are kept in a JetStream object store
//! (bucket `STREAM-files`, one object per content, named by its SHA-256, replicated like the stream),
//! so any node serves any file.
//!
//! The node that takes an upload puts its bytes into the bucket *before* it publishes the share — so a
//! node that reads the share can always find them — and keeps a copy in its own content store. A node
//! asked for a file it has not got yet (`fetch`) copies it from the bucket into its content store first,
//! checking the SHA-256, and serves it from there (resumable downloads and `Range` work as on one node).
//! The share itself (who shared what where, with its message) travels the stream with the message and
//! is recorded by every node's read model. Objects expire with `--file-days` (the bucket's max age); each
//! node's expiry deletes its own copies.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, object_store};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ready, Cluster, ClusterError};

/// The cluster's object store of shared files.
#[derive(Clone)]
pub struct SharedFiles {
    store: object_store::ObjectStore,
}

impl std::fmt::Debug for SharedFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedFiles")
    }
}

impl SharedFiles {
    /// Opens (or makes) the cluster's bucket; objects live `days` (`None`: forever).
    pub async fn open(cluster: &Cluster, days: Option<u32>) -> Result<Self, ClusterError> {
        let bucket = format!("{}-files", cluster.stream);
        let config = object_store::Config {
            bucket: bucket.clone(),
            max_age: days.map_or(Duration::ZERO, |d| {
                Duration::from_secs(u64::from(d) * 86_400)
            }),
            storage: jetstream::stream::StorageType::File,
            num_replicas: cluster.replicas(),
            ..Default::default()
        };
        let store = ready(&cluster.urls, || async {
            match cluster.js.get_object_store(&bucket).await {
                Ok(store) => Ok(store),
                Err(_) => cluster
                    .js
                    .create_object_store(config.clone())
                    .await
                    .map_err(|e| e.to_string()),
            }
        })
        .await?;
        Ok(Self { store })
    }

    /// Puts the bytes at `path` into the bucket as `sha256`, unless they are there already.
    pub async fn put(&self, sha256: &str, path: &Path) -> Result<(), String> {
        if self.store.info(sha256).await.is_ok() {
            return Ok(());
        }
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|e| e.to_string())?;
        self.store
            .put(sha256, &mut file)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Copies the bytes of `sha256` from the bucket to `dest` (written beside it first, checked, then
    /// moved into place). Fails when the bucket has no such object or the bytes are not that content.
    pub async fn get(&self, sha256: &str, dest: &Path) -> Result<(), String> {
        let mut object = self.store.get(sha256).await.map_err(|e| e.to_string())?;
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| e.to_string())?;
        }
        static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let copy = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let part = dest.with_extension(format!("fetching-{}-{copy}", std::process::id()));
        let copied = async {
            let mut out = tokio::fs::File::create(&part)
                .await
                .map_err(|e| e.to_string())?;
            let mut hash = Sha256::new();
            let mut buf = vec![0; 128 * 1024];
            loop {
                let n = object.read(&mut buf).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
                out.write_all(&buf[..n]).await.map_err(|e| e.to_string())?;
            }
            out.flush().await.map_err(|e| e.to_string())?;
            let got = natter_proto::file::hex(&hash.finalize());
            if got != sha256 {
                return Err(format!("the cluster's copy of {sha256} is {got}"));
            }
            tokio::fs::rename(&part, dest)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if copied.is_err() {
            let _ = tokio::fs::remove_file(&part).await;
        }
        copied
    }
}
