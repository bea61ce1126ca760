//! AdminService: reads of the consortium's members, nodes and proposals, from the ledger
//! and (in a cluster) Raft's membership.

use std::sync::Arc;

use gridledger_proto::v1 as pb;
use gridledger_services::ServiceError;
use tonic::{Request, Response, Status};

use crate::ledger::Ledger;
use crate::store::Store;

/// The AdminService handlers.
pub struct Admin<S: Store> {
    /// The ledger.
    pub ledger: Arc<Ledger<S>>,
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
                    org_id: registered
                        .iter()
                        .find(|r| r.raft_id == *id)
                        .map(|r| r.org_id.clone())
                        .unwrap_or_default(),
                });
            }
        }
        for r in registered {
            if !nodes.iter().any(|n| n.raft_id == r.raft_id) {
                nodes.push(pb::ClusterNode {
                    raft_id: r.raft_id,
                    node_id: r.node_id,
                    peer: r.peer,
                    api: r.api,
                    role: if r.removed { "removed" } else { "registered" }.into(),
                    org_id: r.org_id,
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
}
