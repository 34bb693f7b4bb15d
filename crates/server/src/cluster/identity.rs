//! One identity for the whole cluster: every node presents the same self-signed certificate, so a client
//! that trusted one node on first use trusts every other node it fails over to.
//!
//! The certificate and its key are kept in the stream `STREAM-identity` (one message, on
//! `STREAM-identity.tls`). The first node to start publishes the one in its data directory (made if
//! there is none, so a single server that becomes a cluster's first node keeps the identity its users
//! trust) with "expected last subject sequence 0": of two nodes starting at once, one wins, and the
//! other takes the winner's. Every node writes the cluster's certificate into its data directory before
//! it loads it. The key travels to NATS and is kept there: the NATS servers are the cluster's own (they
//! hold every message and account too); secure them as such (docs/OPERATIONS.md, *Cluster mode*).
//! An operator's own certificate (`--tls-cert`/`--tls-key`) is used as given, on every node.

use std::path::Path;

use async_nats::jetstream;
use serde::{Deserialize, Serialize};

use super::{publish_expecting, ready, Cluster, ClusterConfig, ClusterError};
use crate::tls;

#[derive(Serialize, Deserialize)]
struct Identity {
    cert: String,
    key: String,
}

/// Makes the cluster's certificate the one kept in `dir`: takes it from the cluster, or gives the cluster
/// this node's. Returns whether the certificate in `dir` was replaced by the cluster's.
pub async fn shared_certificate(config: &ClusterConfig, dir: &Path) -> Result<bool, ClusterError> {
    let cluster = Cluster::dial(config).await?;
    let name = format!("{}-identity", cluster.stream);
    let subject = format!("{name}.tls");
    let stream_config = jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![format!("{name}.>")],
        max_messages_per_subject: 1,
        num_replicas: cluster.replicas(),
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    };
    let stream = ready(&cluster.urls, || {
        cluster.js.get_or_create_stream(stream_config.clone())
    })
    .await?;
    let failed = |detail: String| ClusterError::JetStream {
        urls: cluster.urls.clone(),
        detail,
    };
    let kept = |identity: Identity| {
        tls::keep_self_signed(dir, identity.cert.as_bytes(), identity.key.as_bytes())
            .map_err(|e| failed(e.to_string()))
    };
    // A stream just made (by this node or another starting with it) may not answer for a moment:
    // reading and publishing are tried again for a while.
    let current = || {
        ready(&cluster.urls, || async {
            match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(m) => Ok(Some(m.payload)),
                Err(e)
                    if e.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
                {
                    Ok(None)
                }
                Err(e) => Err(e),
            }
        })
    };
    let parse = |payload: &[u8]| {
        serde_json::from_slice::<Identity>(payload).map_err(|e| failed(format!("{subject}: {e}")))
    };
    if let Some(payload) = current().await? {
        return kept(parse(&payload)?);
    }
    let (cert, key) = tls::self_signed_pem(dir).map_err(|e| failed(e.to_string()))?;
    let ours = Identity {
        cert: String::from_utf8_lossy(&cert).into_owned(),
        key: String::from_utf8_lossy(&key).into_owned(),
    };
    let payload = serde_json::to_vec(&ours).map_err(|e| failed(e.to_string()))?;
    // Published only if the subject is still empty (`None` when another node's came first).
    let publish = || publish_expecting(&cluster.js, &subject, payload.clone().into(), 0);
    if ready(&cluster.urls, publish).await?.is_some() {
        return Ok(false);
    }
    // Another node's came first (or this one's, whose ack was lost): that one is the cluster's.
    match current().await? {
        Some(payload) => kept(parse(&payload)?),
        None => Err(failed("the certificate published is gone".into())),
    }
}
