//! Class III documents (DESIGN.md §4): upload a file with its signed anchor, and
//! download one verified end to end: the anchor's receipt against the trust policy, then
//! the bytes against the proven anchor's size, SHA-256 and MD5, before the file appears.

use std::io::Read as _;
use std::path::Path;

use gridledger_core::pb::{self, tx_body::Payload};
use gridledger_core::private::DocumentHasher;
use gridledger_core::receipt::Receipt;
use gridledger_core::trust::Policy;
use gridledger_proto::v1 as gpb;
use prost::Message as _;

use crate::error::ClientError;
use crate::profile::Profile;

/// Bytes per upload chunk (under the node's per-message limit).
const CHUNK: usize = 32 * 1024;

fn io(path: &Path, e: std::io::Error) -> ClientError {
    ClientError::Config(format!("{}: {e}", path.display()))
}

/// The digests of a file, read in chunks (never whole in memory).
///
/// # Errors
/// The file cannot be read.
pub fn digest_file(path: &Path) -> Result<gridledger_core::private::Digests, ClientError> {
    let mut f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut h = DocumentHasher::default();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf).map_err(|e| io(path, e))?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

/// The signed anchor of `path` (encoded SignedTx of an AnchorDocument with the file's
/// SHA-256, MD5 and size), signed with the profile's key.
///
/// # Errors
/// Unreadable file or key.
pub fn signed_anchor(
    p: &Profile,
    path: &Path,
    subject: &str,
    media_type: &str,
) -> Result<Vec<u8>, ClientError> {
    let d = digest_file(path)?;
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ClientError::Config(format!("{}: no file name", path.display())))?
        .to_string();
    let anchor = pb::AnchorDocument {
        sha256: d.sha256,
        md5: d.md5,
        size: d.size,
        media_type: media_type.to_string(),
        file_name,
        subject: subject.to_string(),
    };
    Ok(p.sign(Payload::AnchorDocument(anchor))?.encode_to_vec())
}

/// Signs an anchor for `path` and uploads it with the file's bytes; returns what the
/// node recorded.
///
/// # Errors
/// Unreadable file or key; the node's refusal (over its limit, digests that do not
/// match, a rule of the anchor).
pub async fn upload(
    p: &Profile,
    path: &Path,
    subject: &str,
    media_type: &str,
) -> Result<gpb::DocumentInfo, ClientError> {
    let signed = signed_anchor(p, path, subject, media_type)?;
    // Read the file again as the stream is sent: it is never held whole in memory.
    let mut f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let first = gpb::DocumentChunk {
        signed_tx: signed,
        data: Default::default(),
    };
    let path_buf = path.to_path_buf();
    let rest = futures::stream::iter(std::iter::from_fn(move || {
        let mut buf = vec![0u8; CHUNK];
        match f.read(&mut buf) {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some(gpb::DocumentChunk {
                    signed_tx: Default::default(),
                    data: buf.into(),
                })
            }
            Err(e) => {
                // The node then sees fewer bytes than the anchor says and refuses.
                eprintln!("error: {}: {e}", path_buf.display());
                None
            }
        }
    }));
    let head = futures::stream::iter([first]);
    let mut c = gpb::data_service_client::DataServiceClient::new(crate::grpc::channel(p).await?);
    use futures::StreamExt as _;
    Ok(c.upload_document(head.chain(rest)).await?.into_inner())
}

/// Downloads document `sha256` to `out`, verified: the anchor's receipt under `policy`,
/// the anchor is for this digest, and the bytes' size, SHA-256 and MD5 are the proven
/// anchor's. The bytes go to a temporary file beside `out`, renamed into place only
/// once verified. Returns the proven anchor and its leaf index.
///
/// # Errors
/// Verification failures ([`ClientError::Malformed`], receipt errors), transport, I/O.
pub async fn download(
    p: &Profile,
    policy: &Policy,
    sha256: &str,
    out: &Path,
) -> Result<(pb::AnchorDocument, u64), ClientError> {
    use futures::StreamExt as _;
    use std::io::Write as _;
    let mut c = gpb::data_service_client::DataServiceClient::new(crate::grpc::channel(p).await?)
        .max_decoding_message_size(crate::grpc::MAX_RESPONSE_BYTES);
    let info = c
        .get_document(gpb::DocumentRequest {
            sha256: sha256.to_string(),
            receipt: true,
        })
        .await?
        .into_inner();
    let proven = Receipt::parse(&info.receipt)?.verify(policy)?;
    let tx = pb::SignedTx::decode(proven.leaf.as_slice())
        .map_err(|e| ClientError::Malformed(format!("proven leaf: {e}")))?;
    let anchor = match pb::TxBody::decode(tx.body.as_slice())
        .ok()
        .and_then(|b| b.payload)
    {
        Some(Payload::AnchorDocument(a)) => a,
        _ => {
            return Err(ClientError::Malformed(format!(
                "leaf {} is not a document anchor",
                proven.index
            )));
        }
    };
    if anchor.sha256 != sha256 {
        return Err(ClientError::Malformed(format!(
            "asked for document {sha256}, the proven anchor is for {}",
            anchor.sha256
        )));
    }
    let tmp = out.with_extension("partial");
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    let mut h = DocumentHasher::default();
    let mut stream = c
        .download_document(gpb::DocumentRequest {
            sha256: sha256.to_string(),
            receipt: false,
        })
        .await?
        .into_inner();
    let result = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            h.update(&chunk.data);
            // A server that streams forever is cut off at the proven size.
            if h.size() > anchor.size {
                return Err(ClientError::Malformed(format!(
                    "the server sent more than the {} bytes the anchor proves",
                    anchor.size
                )));
            }
            f.write_all(&chunk.data).map_err(|e| io(&tmp, e))?;
        }
        h.clone()
            .finish()
            .check(&anchor)
            .map_err(|why| ClientError::Malformed(format!("downloaded document: {why}")))?;
        f.sync_all().map_err(|e| io(&tmp, e))
    }
    .await;
    match result {
        Ok(()) => {
            std::fs::rename(&tmp, out).map_err(|e| io(out, e))?;
            Ok((anchor, proven.index))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}
