//! Class III documents (DESIGN.md §4): streamed uploads checked against their signed
//! anchor, anchors as ImageJson, downloads. The same functions serve gRPC
//! (`DataService.UploadDocument`, `GetDocument`, `DownloadDocument`) and the gateway
//! (`POST /v1/documents`, `GET /v1/documents/{sha256}`, `.../content`).
//!
//! An upload is one request: the signed `AnchorDocument` transaction first, then the
//! bytes. The node refuses at once an anchor whose declared size exceeds its limit,
//! streams the bytes into the object store while hashing (stopping as soon as they run
//! past the declared size), keeps them only if size, SHA-256 and MD5 all match the
//! anchor, and only then commits the anchor. A failed upload leaves nothing behind.

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use gridledger_core::metrology::keys;
use gridledger_core::pb::{AnchorDocument, tx_body::Payload};
use gridledger_core::private::{DocumentRec, is_hex};
use gridledger_proto::v1 as pb;
use serde_json::{Value, json};

use crate::backend::DataBackend;
use crate::data::Data;
use crate::error::{Result, ServiceError};

/// Where documents' bytes live (the node implements it over `object_store`).
pub trait DocumentStore: Send + Sync + 'static {
    /// Largest upload accepted, bytes.
    fn max_bytes(&self) -> u64;
    /// Streams `data` in, checking it against `anchor` as it goes: refuses it (and keeps
    /// nothing) when it is larger than the anchor says or its size, SHA-256 or MD5
    /// differ from the anchor's.
    fn put(
        &self,
        anchor: AnchorDocument,
        data: BoxStream<'static, Result<Bytes>>,
    ) -> BoxFuture<'static, Result<()>>;
    /// The bytes of a document, if this node's store holds them.
    fn get(
        &self,
        sha256: &str,
    ) -> BoxFuture<'static, Result<Option<BoxStream<'static, Result<Bytes>>>>>;
    /// Whether this node's store holds a document.
    fn contains(&self, sha256: &str) -> BoxFuture<'static, Result<bool>>;
    /// Removes a document (an upload whose anchor was refused).
    fn delete(&self, sha256: &str) -> BoxFuture<'static, Result<()>>;
}

/// Checks a document id in a path or request.
///
/// # Errors
/// INVALID_ARGUMENT.
pub fn check_sha(sha: &str) -> Result<()> {
    if is_hex(sha, 32) {
        Ok(())
    } else {
        Err(ServiceError::InvalidArgument(format!(
            "a document id is its SHA-256 as 64 lower-case hex digits, got {sha:?}"
        )))
    }
}

// The anchor of an upload, from a transaction whose signature verifies: a forged or
// garbled anchor is refused before a single byte is stored.
fn anchor_of(signed_tx: &[u8]) -> Result<AnchorDocument> {
    let bad = |why: String| {
        ServiceError::InvalidArgument(format!(
            "an upload starts with a signed AnchorDocument transaction: {why}"
        ))
    };
    let (tx, body) = gridledger_core::tx::decode(signed_tx).map_err(|e| bad(e.to_string()))?;
    gridledger_core::tx::verify(&tx).map_err(|e| {
        ServiceError::Unauthenticated(format!("the anchor's signature does not verify: {e}"))
    })?;
    match body.payload {
        Some(Payload::AnchorDocument(a)) => Ok(a),
        _ => Err(bad("the transaction is not an AnchorDocument".into())),
    }
}

/// Deletes stored bytes when dropped armed: an upload whose anchor is refused, or whose
/// request is dropped (client gone, timeout) between storing the bytes and committing
/// the anchor, leaves nothing behind. Bytes some anchor holds are kept (a concurrent
/// upload of the same document may have won).
struct Unanchored<B: DataBackend> {
    backend: std::sync::Arc<B>,
    sha: Option<String>,
}

impl<B: DataBackend> Drop for Unanchored<B> {
    fn drop(&mut self) {
        let (Some(sha), Ok(rt)) = (self.sha.take(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let b = self.backend.clone();
        rt.spawn(async move {
            if matches!(b.record(&keys::document(&sha)), Ok(None))
                && let Err(e) = b.documents().delete(&sha).await
            {
                tracing::warn!(sha256 = %sha, error = %e, "could not delete unanchored document");
            }
        });
    }
}

impl<B: DataBackend> Data<B> {
    /// The anchor of a document and whether this node holds its bytes.
    ///
    /// # Errors
    /// INVALID_ARGUMENT, NOT_FOUND.
    pub async fn document(&self, sha: &str, receipt: bool) -> Result<pb::DocumentInfo> {
        check_sha(sha)?;
        let (leaf, rec) = self.anchor(sha)?;
        let stored = self.backend().documents().contains(sha).await?;
        Ok(pb::DocumentInfo {
            sha256: rec.sha256,
            md5: rec.md5,
            size: rec.size,
            media_type: rec.media_type,
            file_name: rec.file_name,
            subject: rec.subject,
            leaf_index: leaf,
            receipt: if receipt {
                self.backend().receipt(leaf)?
            } else {
                String::new()
            },
            stored,
        })
    }

    fn anchor(&self, sha: &str) -> Result<(u64, DocumentRec)> {
        let (leaf, json) = self
            .backend()
            .record(&keys::document(sha))?
            .ok_or_else(|| ServiceError::NotFound(format!("no document {sha} is anchored")))?;
        let rec: DocumentRec = serde_json::from_slice(&json).map_err(|e| {
            ServiceError::Internal(format!("anchor record of {sha} does not parse: {e}"))
        })?;
        Ok((leaf, rec))
    }

    /// A document's bytes (with its anchor, for the response headers).
    ///
    /// # Errors
    /// INVALID_ARGUMENT, NOT_FOUND (not anchored, or not held by this node).
    pub async fn document_bytes(
        &self,
        sha: &str,
    ) -> Result<(DocumentRec, BoxStream<'static, Result<Bytes>>)> {
        check_sha(sha)?;
        let (_, rec) = self.anchor(sha)?;
        let data = self.backend().documents().get(sha).await?.ok_or_else(|| {
            ServiceError::NotFound(format!(
                "document {sha} is anchored but this node's object store does not hold it; \
                 ask the node it was uploaded to"
            ))
        })?;
        Ok((rec, data))
    }

    /// Uploads a document: see the module docs.
    ///
    /// # Errors
    /// INVALID_ARGUMENT (not an anchor, bytes that do not match it), RESOURCE_EXHAUSTED
    /// (over the node's limit), ALREADY_EXISTS, and the anchor's contract rejections.
    pub async fn upload(
        &self,
        signed_tx: Bytes,
        data: BoxStream<'static, Result<Bytes>>,
    ) -> Result<pb::DocumentInfo> {
        let anchor = anchor_of(&signed_tx)?;
        check_sha(&anchor.sha256)?;
        if !is_hex(&anchor.md5, 16) {
            return Err(ServiceError::InvalidArgument(
                "the anchor's md5 must be 32 lower-case hex digits".into(),
            ));
        }
        let store = self.backend().documents();
        let max = store.max_bytes();
        if anchor.size > max {
            return Err(ServiceError::TooLarge(format!(
                "the document is {} bytes; this node accepts at most {max}",
                anchor.size
            )));
        }
        if let Some((leaf, _)) = self.backend().record(&keys::document(&anchor.sha256))? {
            return Err(ServiceError::AlreadyExists(format!(
                "document {} is already anchored at leaf {leaf}",
                anchor.sha256
            )));
        }
        let sha = anchor.sha256.clone();
        store.put(anchor, data).await?;
        let mut guard = Unanchored {
            backend: self.backend().clone(),
            sha: Some(sha.clone()),
        };
        self.backend().submit_tx(signed_tx).await?;
        guard.sha = None;
        self.document(&sha, false).await
    }
}

/// A document's anchor as ImageJson (DESIGN.md §5).
pub fn image_json(d: &pb::DocumentInfo, origin: &str, tree_size: u64) -> Value {
    let mut v = json!({
        "type": "ImageJson",
        "property": {
            "description": format!("class III document about {}", d.subject),
            "origin": origin,
            "tree_size": tree_size,
            "data_class": "III",
        },
        "sha256": d.sha256,
        "md5": d.md5,
        "size": d.size,
        "media_type": d.media_type,
        "file_name": d.file_name,
        "subject": d.subject,
        "leaf_index": d.leaf_index,
        "stored": d.stored,
        "download": format!("/v1/documents/{}/content", d.sha256),
    });
    if !d.receipt.is_empty() {
        v["receipt"] = json!(d.receipt);
    }
    v
}
