//! Raft over the peer port: a gRPC PeerService carrying openraft's messages as JSON, on
//! mutual TLS where both ends present node certificates (OU=node) of the consortium CA.

use std::sync::Arc;
use std::time::Duration;

use gridledger_proto::v1 as pb;
use gridledger_services::auth::layer::ConnInfo;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::transport::{Channel, ClientTlsConfig};
use tonic::{Request, Response, Status};

use super::{NodeInfo, Raft, TypeConfig};

/// Largest peer message: a snapshot chunk or a batch of full blocks.
pub const MAX_PEER_MESSAGE_BYTES: usize = 64 << 20;

/// The server side: hands peers' messages to the local Raft.
#[derive(Clone)]
pub struct PeerServer {
    raft: Raft,
    own_checkpoint: OwnCheckpoint,
}

/// This node's own signed checkpoint of a channel ("" = system), `None` for no such
/// channel.
pub type OwnCheckpoint = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl PeerServer {
    /// Serves `raft` to peers, and this node's own signed checkpoint.
    pub fn new(raft: Raft, own_checkpoint: OwnCheckpoint) -> Self {
        Self {
            raft,
            own_checkpoint,
        }
    }
}

impl PeerServer {
    /// Peer calls come from node certificates (OU=node) whose CN is a member of this
    /// cluster. A node that is not yet part of any cluster (empty membership) accepts any
    /// consortium node certificate: that is how the leader reaches a node being added.
    fn authorise<T>(&self, r: &Request<T>) -> Result<(), Status> {
        let cert = match r
            .extensions()
            .get::<ConnInfo>()
            .and_then(|c| c.cert.as_ref())
        {
            Some(c) if c.unit == "node" => c,
            Some(c) => {
                return Err(Status::permission_denied(format!(
                    "the peer port accepts node certificates only (OU=node); this one has OU={:?}",
                    c.unit
                )));
            }
            None => {
                return Err(Status::unauthenticated(
                    "the peer port requires a node certificate",
                ));
            }
        };
        // Every Raft RPC passes here: borrow the metrics, do not clone them.
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let mut names = m
            .membership_config
            .membership()
            .nodes()
            .map(|(_, n)| n.name.as_str())
            .peekable();
        let allowed = names.peek().is_none() || names.any(|n| n == cert.name);
        drop(names);
        drop(m);
        if allowed {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "node {:?} is not a member of this cluster",
                cert.name
            )))
        }
    }
}

fn decode<T: DeserializeOwned>(r: Request<pb::RaftPayload>) -> Result<T, Status> {
    serde_json::from_slice(&r.into_inner().json)
        .map_err(|e| Status::invalid_argument(format!("raft message: {e}")))
}

fn reply<T: Serialize, E: Serialize>(r: Result<T, E>) -> Result<Response<pb::RaftReply>, Status> {
    let enc = |v: &dyn erased::Ser| v.json();
    Ok(Response::new(match r {
        Ok(v) => pb::RaftReply {
            ok: enc(&v),
            err: Vec::new(),
        },
        Err(e) => pb::RaftReply {
            ok: Vec::new(),
            err: enc(&e),
        },
    }))
}

mod erased {
    pub trait Ser {
        fn json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn json(&self) -> Vec<u8> {
            serde_json::to_vec(self).expect("openraft messages serialise")
        }
    }
}

#[tonic::async_trait]
impl pb::peer_service_server::PeerService for PeerServer {
    async fn append_entries(
        &self,
        r: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftReply>, Status> {
        self.authorise(&r)?;
        let req: AppendEntriesRequest<TypeConfig> = decode(r)?;
        reply(self.raft.append_entries(req).await)
    }

    async fn vote(&self, r: Request<pb::RaftPayload>) -> Result<Response<pb::RaftReply>, Status> {
        self.authorise(&r)?;
        let req: VoteRequest<u64> = decode(r)?;
        reply(self.raft.vote(req).await)
    }

    async fn get_own_checkpoint(
        &self,
        r: Request<pb::OwnCheckpointRequest>,
    ) -> Result<Response<pb::OwnCheckpoint>, Status> {
        self.authorise(&r)?;
        let channel = &r.get_ref().channel;
        let note = (self.own_checkpoint)(channel)
            .ok_or_else(|| Status::not_found(format!("no channel named {channel:?}")))?;
        Ok(Response::new(pb::OwnCheckpoint { note }))
    }

    async fn install_snapshot(
        &self,
        r: Request<pb::RaftPayload>,
    ) -> Result<Response<pb::RaftReply>, Status> {
        self.authorise(&r)?;
        let req: InstallSnapshotRequest<TypeConfig> = decode(r)?;
        reply(self.raft.install_snapshot(req).await)
    }
}

/// The client side: one lazily connected channel per peer.
#[derive(Clone)]
pub struct PeerNetwork {
    tls: Arc<ClientTlsConfig>,
}

impl PeerNetwork {
    /// Peers are reached with this TLS config (CA plus this node's certificate).
    pub fn new(tls: ClientTlsConfig) -> Self {
        Self { tls: Arc::new(tls) }
    }
}

/// One PeerService method, as a function of a client and a request.
type Rpc = fn(
    pb::peer_service_client::PeerServiceClient<Channel>,
    Request<pb::RaftPayload>,
) -> futures::future::BoxFuture<'static, Result<Response<pb::RaftReply>, Status>>;

/// A connection to one peer.
pub struct PeerClient {
    target: u64,
    addr: String,
    client: Option<pb::peer_service_client::PeerServiceClient<Channel>>,
    tls: Arc<ClientTlsConfig>,
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &NodeInfo) -> PeerClient {
        PeerClient {
            target,
            addr: node.peer.clone(),
            client: None,
            tls: self.tls.clone(),
        }
    }
}

#[derive(Debug)]
struct Msg(String);
impl std::fmt::Display for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for Msg {}

impl PeerClient {
    fn client(&mut self) -> Result<pb::peer_service_client::PeerServiceClient<Channel>, Msg> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let host = self
            .addr
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&self.addr);
        let tls = (*self.tls)
            .clone()
            .domain_name(host.trim_matches(['[', ']']));
        let ch = Channel::from_shared(format!("https://{}", self.addr))
            .map_err(|e| Msg(format!("peer address {:?}: {e}", self.addr)))?
            .tls_config(tls)
            .map_err(|e| Msg(format!("peer TLS: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            .connect_lazy();
        let c = pb::peer_service_client::PeerServiceClient::new(ch)
            .max_decoding_message_size(MAX_PEER_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_PEER_MESSAGE_BYTES);
        self.client = Some(c.clone());
        Ok(c)
    }

    async fn call<Req, Resp, E>(
        &mut self,
        which: Rpc,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<u64, NodeInfo, E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: DeserializeOwned + std::error::Error,
    {
        let client = self
            .client()
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let json = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut r = Request::new(pb::RaftPayload { json });
        r.set_timeout(option.hard_ttl());
        let out = match which(client, r).await {
            Ok(r) => r.into_inner(),
            Err(s) => {
                // A broken channel is rebuilt on the next call.
                self.client = None;
                return Err(RPCError::Unreachable(Unreachable::new(&s)));
            }
        };
        if !out.err.is_empty() {
            let e: E = serde_json::from_slice(&out.err)
                .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
            return Err(RPCError::RemoteError(RemoteError::new(self.target, e)));
        }
        serde_json::from_slice(&out.ok).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        self.call(
            |mut c, r| Box::pin(async move { c.append_entries(r).await }),
            &rpc,
            &option,
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, NodeInfo, RaftError<u64, InstallSnapshotError>>,
    > {
        self.call(
            |mut c, r| Box::pin(async move { c.install_snapshot(r).await }),
            &rpc,
            &option,
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, NodeInfo, RaftError<u64>>> {
        self.call(
            |mut c, r| Box::pin(async move { c.vote(r).await }),
            &rpc,
            &option,
        )
        .await
    }
}
