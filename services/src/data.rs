//! DataService: metering records with per-record access checks. The same functions serve
//! the gRPC methods and the gateway's routes, so both apply the same rules.

use std::sync::Arc;

use gridledger_proto::v1 as pb;
use tonic::{Request, Response, Status};

use crate::auth::layer::principal;
use crate::auth::{Principal, may_read_readings};
use crate::backend::DataBackend;
use crate::error::{Result, ServiceError};

/// Most days one readings request returns.
pub const MAX_DAYS: usize = 366;
/// Most meters bound to one resident (bounds token size).
pub const MAX_BOUND_METERS: usize = 64;

/// Checks a `YYYY-MM-DD` day.
///
/// # Errors
/// INVALID_ARGUMENT naming the parameter.
pub fn check_day(what: &str, d: &str) -> Result<()> {
    if gridledger_core::metrology::day_number(d).is_some() {
        Ok(())
    } else {
        Err(ServiceError::InvalidArgument(format!(
            "{what} must be a date YYYY-MM-DD, got {d:?}"
        )))
    }
}

fn check_asset(asset: &str) -> Result<()> {
    if asset.is_empty() || asset.len() > gridledger_core::contract::MAX_ID_LEN {
        return Err(ServiceError::InvalidArgument(format!(
            "asset_no must be 1-{} bytes",
            gridledger_core::contract::MAX_ID_LEN
        )));
    }
    Ok(())
}

/// Today's UTC date, YYYY-MM-DD: views that judge validity or due dates ask for it (the
/// contracts never do; they take the block's context).
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    gridledger_core::metrology::day_string((secs / 86_400) as i64)
}

/// The data operations over a backend.
#[derive(Debug)]
pub struct Data<B> {
    backend: Arc<B>,
}

impl<B> Clone for Data<B> {
    fn clone(&self) -> Self {
        Self {
            backend: self.backend.clone(),
        }
    }
}

impl<B: DataBackend> Data<B> {
    /// Wraps a backend.
    pub fn new(backend: Arc<B>) -> Self {
        Self { backend }
    }

    pub(crate) fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// Stamps a view with the ledger's origin and tree size.
    ///
    /// # Errors
    /// Storage failures.
    pub fn stamped(&self, mut v: pb::DataView) -> Result<pb::DataView> {
        let (origin, size) = self.backend.position()?;
        v.origin = origin;
        v.tree_size = size;
        Ok(v)
    }

    /// An instrument (class I: anyone).
    ///
    /// # Errors
    /// INVALID_ARGUMENT, NOT_FOUND.
    pub fn meter(&self, asset: &str) -> Result<pb::Meter> {
        check_asset(asset)?;
        self.backend
            .meter(asset)?
            .ok_or_else(|| ServiceError::NotFound(format!("no instrument {asset:?}")))
    }

    /// The caller's bound meters (residents).
    ///
    /// # Errors
    /// Storage failures.
    pub fn my_meters(&self, p: &Principal) -> Result<Vec<pb::Meter>> {
        let mut out = Vec::new();
        for m in p.bound_meters().take(MAX_BOUND_METERS) {
            if let Some(meter) = self.backend.meter(m)? {
                out.push(meter);
            }
        }
        Ok(out)
    }

    /// Readings of one meter, if the caller may read them.
    ///
    /// A meter the caller may not read is answered exactly like one that does not
    /// exist (PERMISSION_DENIED either way), so residents cannot probe which asset
    /// numbers exist through this route.
    ///
    /// # Errors
    /// INVALID_ARGUMENT for bad dates, PERMISSION_DENIED.
    pub fn readings(
        &self,
        p: &Principal,
        asset: &str,
        from: &str,
        to: &str,
    ) -> Result<pb::GetReadingsResponse> {
        check_asset(asset)?;
        check_day("from", from)?;
        check_day("to", to)?;
        if from > to {
            return Err(ServiceError::InvalidArgument(format!(
                "from ({from}) is after to ({to})"
            )));
        }
        let span = gridledger_core::metrology::day_number(to).unwrap_or(0)
            - gridledger_core::metrology::day_number(from).unwrap_or(0);
        if span >= MAX_DAYS as i64 {
            return Err(ServiceError::InvalidArgument(format!(
                "a request covers at most {MAX_DAYS} days; {from} to {to} is {} days",
                span + 1
            )));
        }
        let denied = || {
            ServiceError::PermissionDenied(format!(
                "{} may not read the readings of meter {asset:?}",
                p.describe()
            ))
        };
        let owner = match self.backend.meter(asset)? {
            Some(m) => m.owner_org,
            None => return Err(denied()),
        };
        if !may_read_readings(p, asset, &owner, from, to) {
            return Err(denied());
        }
        let readings = self.backend.readings(asset, from, to, MAX_DAYS)?;
        // The on-ledger half of the policy: the grant's org must belong to the collection
        // each payload was written under (a collection redefined without an org cuts
        // that org off at once).
        let mut checked: Vec<&str> = Vec::new();
        for r in &readings {
            if checked.contains(&r.collection.as_str()) {
                continue;
            }
            let members = self
                .backend
                .collection_members(&r.collection)?
                .unwrap_or_default();
            if !members.contains(&p.org) {
                return Err(ServiceError::PermissionDenied(format!(
                    "org {:?} is not a member of collection {:?}, which holds these readings",
                    p.org, r.collection
                )));
            }
            checked.push(&r.collection);
        }
        Ok(pb::GetReadingsResponse {
            asset_no: asset.to_string(),
            readings,
        })
    }
}

#[tonic::async_trait]
impl<B: DataBackend> pb::data_service_server::DataService for Data<B> {
    async fn get_meter(
        &self,
        r: Request<pb::GetMeterRequest>,
    ) -> std::result::Result<Response<pb::Meter>, Status> {
        Ok(Response::new(self.meter(&r.get_ref().asset_no)?))
    }

    async fn list_my_meters(
        &self,
        r: Request<pb::ListMyMetersRequest>,
    ) -> std::result::Result<Response<pb::ListMyMetersResponse>, Status> {
        let p = principal(r.extensions())?;
        Ok(Response::new(pb::ListMyMetersResponse {
            meters: self.my_meters(p)?,
        }))
    }

    async fn get_instrument(
        &self,
        r: Request<pb::RecordQuery>,
    ) -> std::result::Result<Response<pb::DataView>, Status> {
        let q = r.get_ref();
        Ok(Response::new(
            self.stamped(self.instrument_view(&q.id, q.receipts)?)?,
        ))
    }

    async fn get_traceability(
        &self,
        r: Request<pb::RecordQuery>,
    ) -> std::result::Result<Response<pb::DataView>, Status> {
        let q = r.get_ref();
        Ok(Response::new(
            self.stamped(self.traceability(&q.id, &q.date, q.receipts)?)?,
        ))
    }

    async fn get_institution(
        &self,
        r: Request<pb::RecordQuery>,
    ) -> std::result::Result<Response<pb::DataView>, Status> {
        let q = r.get_ref();
        Ok(Response::new(self.stamped(self.institution(
            &q.id,
            &today(),
            q.receipts,
        )?)?))
    }

    async fn settlement_check(
        &self,
        r: Request<pb::SettlementRequest>,
    ) -> std::result::Result<Response<pb::DataView>, Status> {
        let p = principal(r.extensions())?;
        let q = r.get_ref();
        Ok(Response::new(self.stamped(self.settlement(
            p,
            &q.asset_no,
            &q.from,
            &q.to,
            q.receipts,
        )?)?))
    }

    async fn list_plans(
        &self,
        r: Request<pb::PlansRequest>,
    ) -> std::result::Result<Response<pb::DataView>, Status> {
        let q = r.get_ref();
        Ok(Response::new(self.stamped(self.plans(
            &q.status,
            &q.subject_id,
            &today(),
            q.receipts,
        )?)?))
    }

    async fn upload_document(
        &self,
        r: Request<tonic::Streaming<pb::DocumentChunk>>,
    ) -> std::result::Result<Response<pb::DocumentInfo>, Status> {
        use futures::StreamExt as _;
        let mut incoming = r.into_inner();
        let first = incoming.message().await?.ok_or_else(|| {
            ServiceError::InvalidArgument("an upload needs at least the anchor chunk".into())
        })?;
        if first.signed_tx.is_empty() {
            return Err(ServiceError::InvalidArgument(
                "the first chunk must carry the signed AnchorDocument transaction".into(),
            )
            .into());
        }
        let head = futures::stream::iter((!first.data.is_empty()).then(|| Ok(first.data.clone())));
        let rest = incoming.map(|m| match m {
            Ok(c) if !c.signed_tx.is_empty() => Err(ServiceError::InvalidArgument(
                "only the first chunk may carry a transaction".into(),
            )),
            Ok(c) => Ok(c.data),
            Err(s) => Err(ServiceError::InvalidArgument(format!(
                "upload stream broke: {}",
                s.message()
            ))),
        });
        let info = self
            .upload(first.signed_tx.into(), Box::pin(head.chain(rest)))
            .await?;
        Ok(Response::new(info))
    }

    async fn get_document(
        &self,
        r: Request<pb::DocumentRequest>,
    ) -> std::result::Result<Response<pb::DocumentInfo>, Status> {
        let q = r.get_ref();
        Ok(Response::new(self.document(&q.sha256, q.receipt).await?))
    }

    type DownloadDocumentStream =
        futures::stream::BoxStream<'static, std::result::Result<pb::DocumentChunk, Status>>;

    async fn download_document(
        &self,
        r: Request<pb::DocumentRequest>,
    ) -> std::result::Result<Response<Self::DownloadDocumentStream>, Status> {
        use futures::StreamExt as _;
        let (_, data) = self.document_bytes(&r.get_ref().sha256).await?;
        Ok(Response::new(Box::pin(data.map(|c| {
            c.map(|data| pb::DocumentChunk {
                signed_tx: Default::default(),
                data,
            })
            .map_err(Status::from)
        }))))
    }

    async fn get_bindings(
        &self,
        r: Request<pb::RecordQuery>,
    ) -> std::result::Result<Response<pb::DataView>, Status> {
        let p = principal(r.extensions())?;
        let q = r.get_ref();
        Ok(Response::new(
            self.stamped(self.bindings_view(p, &q.id, q.receipts)?)?,
        ))
    }

    async fn get_readings(
        &self,
        r: Request<pb::GetReadingsRequest>,
    ) -> std::result::Result<Response<pb::GetReadingsResponse>, Status> {
        let p = principal(r.extensions())?;
        let q = r.get_ref();
        Ok(Response::new(self.readings(
            p,
            &q.asset_no,
            &q.from,
            &q.to,
        )?))
    }
}
