//! Class III documents in an object store (DESIGN.md §4): the `object_store` crate, local
//! disk by default, content-addressed by SHA-256 (`sha256/<first two hex>/<sha256>`).
//!
//! An upload streams into a multipart write while SHA-256, MD5 and the size are computed;
//! it stops as soon as the bytes run past the anchor's declared size, and it completes
//! (the object appears under its name) only if all three match the anchor. Otherwise the
//! multipart write is aborted, so a refused upload leaves nothing behind.

use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use gridledger_core::pb::AnchorDocument;
use gridledger_core::private::DocumentHasher;
use gridledger_services::ServiceError;
use gridledger_services::documents::DocumentStore;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, WriteMultipart};

/// Documents in an [`ObjectStore`].
pub struct ObjectDocuments {
    store: Arc<dyn ObjectStore>,
    max_bytes: u64,
}

impl std::fmt::Debug for ObjectDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ObjectDocuments({}, max {} bytes)",
            self.store, self.max_bytes
        )
    }
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("document store: {e}"))
}

// Content addressing needs a well-formed digest: anything else is refused here, so no
// caller of the store can slice a short name or reach outside `sha256/`.
fn path_of(sha256: &str) -> Result<ObjectPath, ServiceError> {
    gridledger_services::documents::check_sha(sha256)?;
    Ok(ObjectPath::from(format!(
        "sha256/{}/{sha256}",
        &sha256[..2]
    )))
}

impl ObjectDocuments {
    /// Documents on local disk under `dir` (created if missing).
    ///
    /// # Errors
    /// The directory cannot be created or opened.
    pub fn local(dir: &std::path::Path, max_bytes: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(Self::new(Arc::new(store), max_bytes))
    }

    /// Documents in any object store (S3 and others in production).
    pub fn new(store: Arc<dyn ObjectStore>, max_bytes: u64) -> Self {
        Self { store, max_bytes }
    }
}

impl DocumentStore for ObjectDocuments {
    fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    fn put(
        &self,
        anchor: AnchorDocument,
        mut data: BoxStream<'static, Result<Bytes, ServiceError>>,
    ) -> BoxFuture<'static, Result<(), ServiceError>> {
        let store = self.store.clone();
        let max = self.max_bytes;
        Box::pin(async move {
            let upload = store
                .put_multipart(&path_of(&anchor.sha256)?)
                .await
                .map_err(internal)?;
            let mut w = WriteMultipart::new(upload);
            let mut hasher = DocumentHasher::default();
            let failed = loop {
                let chunk = match data.next().await {
                    None => break None,
                    Some(Err(e)) => break Some(e),
                    Some(Ok(c)) => c,
                };
                hasher.update(&chunk);
                // Stop at the first byte too many: never buffer or store an oversized body.
                if hasher.size() > anchor.size {
                    break Some(ServiceError::InvalidArgument(format!(
                        "the document runs past the {} bytes its anchor declares; nothing was stored",
                        anchor.size
                    )));
                }
                if hasher.size() > max {
                    break Some(ServiceError::TooLarge(format!(
                        "the document runs past this node's limit of {max} bytes; nothing was stored"
                    )));
                }
                // Waits while too many parts are in flight: back-pressure on the client.
                if let Err(e) = w.wait_for_capacity(4).await {
                    break Some(internal(e));
                }
                w.write(&chunk);
            };
            let failed = failed.or_else(|| {
                hasher.clone().finish().check(&anchor).err().map(|why| {
                    ServiceError::InvalidArgument(format!(
                        "the document does not match its anchor: {why}; nothing was stored"
                    ))
                })
            });
            match failed {
                Some(e) => {
                    // Best effort: the error the client must see is `e`.
                    let _ = w.abort().await;
                    Err(e)
                }
                None => {
                    w.finish().await.map_err(internal)?;
                    Ok(())
                }
            }
        })
    }

    fn get(
        &self,
        sha256: &str,
    ) -> BoxFuture<
        'static,
        Result<Option<BoxStream<'static, Result<Bytes, ServiceError>>>, ServiceError>,
    > {
        let store = self.store.clone();
        let path = path_of(sha256);
        Box::pin(async move {
            let path = path?;
            match store.get(&path).await {
                Ok(r) => Ok(Some(r.into_stream().map(|c| c.map_err(internal)).boxed())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(internal(e)),
            }
        })
    }

    fn contains(&self, sha256: &str) -> BoxFuture<'static, Result<bool, ServiceError>> {
        let store = self.store.clone();
        let path = path_of(sha256);
        Box::pin(async move {
            let path = path?;
            match store.head(&path).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(e) => Err(internal(e)),
            }
        })
    }

    fn delete(&self, sha256: &str) -> BoxFuture<'static, Result<(), ServiceError>> {
        let store = self.store.clone();
        let path = path_of(sha256);
        Box::pin(async move {
            let path = path?;
            match store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(internal(e)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn malformed_ids_are_refused_not_sliced() {
        let d = ObjectDocuments::new(Arc::new(object_store::memory::InMemory::new()), 1 << 20);
        for bad in ["", "a", "é", "../etc/passwd", &"A".repeat(64)] {
            assert!(
                matches!(d.contains(bad).await, Err(ServiceError::InvalidArgument(_))),
                "{bad:?}"
            );
            assert!(d.get(bad).await.is_err(), "{bad:?}");
            assert!(d.delete(bad).await.is_err(), "{bad:?}");
        }
        assert!(!d.contains(&"a".repeat(64)).await.unwrap());
    }
}
