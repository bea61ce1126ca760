//! AdminService: reads of the consortium's members, nodes and proposals, from the ledger
//! and (in a cluster) Raft's membership.

use std::sync::Arc;

use gridledger_proto::v1 as pb;
use gridledger_services::ServiceError;
use tonic::{Request, Response, Status};

use crate::channels::Channels;
use crate::ledger::Ledger;
use crate::store::Store;

/// The UTC calendar day (YYYY-MM-DD) of a time: node registrations' validity is compared
/// with it by the membership driver (never inside apply, which takes no clock).
pub fn utc_day(t: std::time::SystemTime) -> String {
    let days = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or(0) as i64;
    gridledger_core::metrology::day_string(days)
}

/// The AdminService handlers.
pub struct Admin<S: Store> {
    /// The system channel's ledger.
    pub ledger: Arc<Ledger<S>>,
    /// Every channel.
    pub channels: Arc<Channels<S>>,
    /// Raft, in a cluster.
    pub raft: Option<crate::raft::Raft>,
}

type R<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl<S: Store> pb::admin_service_server::AdminService for Admin<S> {
    async fn list_members(&self, _: Request<pb::ListMembersRequest>) -> R<pb::ListMembersResponse> {
        Ok(Response::new(pb::ListMembersResponse {
            members: self
                .ledger
                .orgs()
                .into_iter()
                .map(|(org_id, k)| pb::Member {
                    org_id,
                    kind: k.as_str_name().into(),
                })
                .collect(),
        }))
    }

    async fn list_nodes(&self, _: Request<pb::ListNodesRequest>) -> R<pb::ListNodesResponse> {
        let registered = self.ledger.nodes().map_err(ServiceError::from)?;
        let mut nodes: Vec<pb::ClusterNode> = Vec::new();
        let mut leader_id = String::new();
        let reg = |id: u64| registered.iter().find(|r| r.raft_id == id);
        if let Some(raft) = &self.raft {
            let m = raft.metrics().borrow().clone();
            let membership = m.membership_config.membership();
            let voters: std::collections::BTreeSet<u64> = membership.voter_ids().collect();
            for (id, n) in membership.nodes() {
                if Some(*id) == m.current_leader {
                    leader_id = n.name.clone();
                }
                nodes.push(pb::ClusterNode {
                    raft_id: *id,
                    node_id: n.name.clone(),
                    peer: n.peer.clone(),
                    api: n.api.clone(),
                    role: if voters.contains(id) {
                        "voter"
                    } else {
                        "learner"
                    }
                    .into(),
                    org_id: reg(*id).map(|r| r.org_id.clone()).unwrap_or_default(),
                    valid_from: reg(*id).map(|r| r.valid_from.clone()).unwrap_or_default(),
                    valid_until: reg(*id).map(|r| r.valid_until.clone()).unwrap_or_default(),
                });
            }
        }
        for r in registered.clone() {
            if !nodes.iter().any(|n| n.raft_id == r.raft_id) {
                nodes.push(pb::ClusterNode {
                    raft_id: r.raft_id,
                    node_id: r.node_id,
                    peer: r.peer,
                    api: r.api,
                    role: if r.removed { "removed" } else { "registered" }.into(),
                    org_id: r.org_id,
                    valid_from: r.valid_from,
                    valid_until: r.valid_until,
                });
            }
        }
        nodes.sort_by_key(|n| n.raft_id);
        Ok(Response::new(pb::ListNodesResponse { nodes, leader_id }))
    }

    async fn list_proposals(
        &self,
        _: Request<pb::ListProposalsRequest>,
    ) -> R<pb::ListProposalsResponse> {
        let proposals = self
            .ledger
            .proposals()
            .map_err(ServiceError::from)?
            .into_iter()
            .map(|(id, p)| pb::ProposalView {
                proposal_id: id,
                change_json: serde_json::to_string(&p.change).unwrap_or_default(),
                proposer_org: p.proposer_org,
                approvals: p.approvals.into_iter().collect(),
                denials: p.denials.into_iter().collect(),
                status: format!("{:?}", p.status).to_lowercase(),
            })
            .collect();
        Ok(Response::new(pb::ListProposalsResponse { proposals }))
    }

    async fn list_channels(
        &self,
        r: Request<pb::ListChannelsRequest>,
    ) -> R<pb::ListChannelsResponse> {
        let caller = gridledger_services::auth::layer::principal(r.extensions())?;
        let regulator = caller
            .roles
            .contains(&gridledger_services::auth::Role::Regulator);
        let mut channels = Vec::new();
        for name in std::iter::once(String::new()).chain(self.channels.names()) {
            let Some(l) = self.channels.get(&name) else {
                continue;
            };
            let members = l
                .channel_def()
                .map(|d| d.members.clone())
                .unwrap_or_default();
            // A channel's existence and members are consortium configuration, public to
            // every member; how much it holds is activity, which only those who may read
            // the channel see (0 for the others).
            let (tree_size, height) =
                if name.is_empty() || regulator || members.contains(&caller.org) {
                    let tip = l.tip();
                    (tip.size, tip.height)
                } else {
                    (0, 0)
                };
            channels.push(pb::ChannelView {
                member_orgs: members,
                name,
                origin: l.origin().to_string(),
                tree_size,
                height,
            });
        }
        Ok(Response::new(pb::ListChannelsResponse { channels }))
    }

    async fn list_collections(
        &self,
        _: Request<pb::ListCollectionsRequest>,
    ) -> R<pb::ListCollectionsResponse> {
        let collections = self
            .ledger
            .collections()
            .map_err(ServiceError::from)?
            .into_iter()
            .map(|c| pb::CollectionView {
                name: c.name,
                member_orgs: c.members,
                record_types: c.record_types,
                version: c.version,
            })
            .collect();
        Ok(Response::new(pb::ListCollectionsResponse { collections }))
    }

    async fn get_config(&self, _: Request<pb::GetConfigRequest>) -> R<pb::ConsortiumConfig> {
        let policy = match self.ledger.approval_policy().map_err(ServiceError::from)? {
            gridledger_core::contract::ApprovalPolicy::RegulatorOrMajority => {
                "regulator_or_majority"
            }
            gridledger_core::contract::ApprovalPolicy::Regulator => "regulator",
            gridledger_core::contract::ApprovalPolicy::Majority => "majority",
        };
        Ok(Response::new(pb::ConsortiumConfig {
            origin: self.ledger.origin().to_string(),
            approval_policy: policy.into(),
        }))
    }
}
