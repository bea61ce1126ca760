//! Connecting to a node over mutual TLS.

use gridledger_proto::v1::chain_service_client::ChainServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::error::ClientError;
use crate::profile::Profile;

/// Largest response the CLI accepts (a block with leaves, a long receipt).
pub const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Connects to the node that takes writes: the profile's node, or the Raft leader it
/// names in its status (a follower answers writes with UNAVAILABLE and the leader's
/// address; going there first saves the round trip).
///
/// # Errors
/// As [`connect`].
pub async fn connect_leader(p: &Profile) -> Result<ChainServiceClient<Channel>, ClientError> {
    Ok(ChainServiceClient::new(leader_channel(p).await?)
        .max_decoding_message_size(MAX_RESPONSE_BYTES))
}

/// A channel to the current leader (writes go there), found through the profile's node.
///
/// # Errors
/// As [`channel`].
pub async fn leader_channel(p: &Profile) -> Result<Channel, ClientError> {
    let ch = channel(p).await?;
    let s = ChainServiceClient::new(ch.clone())
        .get_status(gridledger_proto::v1::GetStatusRequest::default())
        .await?
        .into_inner();
    if s.leader_api.is_empty() || s.leader_id == s.node_id {
        return Ok(ch);
    }
    let mut leader = p.clone();
    leader.endpoint = format!("https://{}", s.leader_api);
    channel(&leader).await
}

/// Opens a ChainService client on the profile's endpoint with its client certificate.
///
/// # Errors
/// As [`channel`].
pub async fn connect(p: &Profile) -> Result<ChainServiceClient<Channel>, ClientError> {
    Ok(ChainServiceClient::new(channel(p).await?).max_decoding_message_size(MAX_RESPONSE_BYTES))
}

/// Opens a mutual-TLS channel to the profile's endpoint, for any of the node's services.
///
/// # Errors
/// Config errors for unreadable files; transport errors when the node is unreachable.
pub async fn channel(p: &Profile) -> Result<Channel, ClientError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| ClientError::Config(format!("cannot read {}: {e}", path.display())))
    };
    let uri: tonic::transport::Uri = p
        .endpoint
        .parse()
        .map_err(|e| ClientError::Config(format!("endpoint {:?}: {e}", p.endpoint)))?;
    let host = uri
        .host()
        .unwrap_or("localhost")
        .trim_matches(['[', ']'])
        .to_string();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&p.ca)?))
        .identity(Identity::from_pem(read(&p.cert)?, read(&p.key)?))
        .domain_name(p.server_name.clone().unwrap_or(host));
    Channel::builder(uri)
        .tls_config(tls)
        .map_err(|e| ClientError::Transport(format!("TLS setup: {e}")))?
        .connect()
        .await
        .map_err(|e| ClientError::Transport(format!("cannot connect to {}: {e}", p.endpoint)))
}

/// A dynamic token for class II reads (DESIGN.md §4): asked of the node's AuthService
/// with the profile's certificate, scoped to exactly `scope`, single use and short-lived,
/// so a token that leaks from a log is worth nothing.
///
/// # Errors
/// Transport errors; the node's refusal (the on-ledger policy does not admit this org).
pub async fn dynamic_token(p: &Profile, scope: Vec<String>) -> Result<String, ClientError> {
    let t = gridledger_proto::v1::auth_service_client::AuthServiceClient::new(channel(p).await?)
        .issue_dynamic_token(gridledger_proto::v1::DynamicTokenRequest {
            scope,
            ttl_seconds: 60,
            single_use: true,
        })
        .await?;
    Ok(t.into_inner().token)
}

/// A request carrying `token` as its bearer credential.
///
/// # Errors
/// A token that is not a valid header value.
pub fn with_bearer<T>(msg: T, token: &str) -> Result<tonic::Request<T>, ClientError> {
    let mut r = tonic::Request::new(msg);
    let v = format!("Bearer {token}")
        .parse()
        .map_err(|_| ClientError::Malformed("the dynamic token is not a header value".into()))?;
    r.metadata_mut().insert("authorization", v);
    Ok(r)
}
