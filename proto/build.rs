//! Compiles the gridledger.v1 gRPC services. Transaction messages come from
//! gridledger-core (extern_path) so there is one Rust type per message.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        // Build scripts are single-threaded; the vendored protoc means no apt step.
        unsafe { std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?) };
    }
    let dir = std::path::PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let files = [
        "gridledger/v1/tx.proto",
        "gridledger/v1/chain.proto",
        "gridledger/v1/auth.proto",
        "gridledger/v1/data.proto",
        "gridledger/v1/peer.proto",
        "gridledger/v1/admin.proto",
        "gridledger/v1/supplier.proto",
    ]
    .map(|f| dir.join(f));
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let mut b = tonic_prost_build::configure()
        .file_descriptor_set_path(
            std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("gridledger_descriptor.bin"),
        )
        .bytes(".gridledger.v1.SubmitRequest.signed_tx")
        .bytes(".gridledger.v1.DocumentChunk.data");
    for m in [
        "SignedTx",
        "TxBody",
        "OrgKind",
        "RegisterOrg",
        "RegisterSigner",
        "InstrumentKind",
        "RegisterInstrument",
        "CertificateKind",
        "LoadPointError",
        "IssueCertificate",
        "RecordReading",
        "RevokeSigner",
        "ProposeChange",
        "AddNode",
        "RemoveNode",
        "CastVote",
        "AuthorisationScope",
        "GrantAuthorisation",
        "RecordAccreditation",
        "RegisterPersonnelCertificate",
        "EquipmentKind",
        "RegisterEquipment",
        "IssueCalibration",
        "PlanSubject",
        "SchedulePlan",
        "OpenDispute",
        "AcceptCalibration",
        "ReadingValues",
        "PurgePrivate",
        "AnchorDocument",
        "BindCustomer",
        "CustomerBinding",
        "RegisterModel",
        "PublishDemandPlan",
        "DemandPlanBody",
        "DemandLine",
        "AcknowledgeDemand",
        "AckBody",
        "Delivery",
        "PublishTestBatch",
        "TestBatchResults",
        "InstrumentTest",
    ] {
        b = b.extern_path(
            format!(".gridledger.v1.{m}"),
            format!("::gridledger_core::pb::{m}"),
        );
    }
    // The consortium views are printed as JSON by the CLI (`gridledger admin show`).
    for m in [
        "Member",
        "ListMembersResponse",
        "ClusterNode",
        "ListNodesResponse",
        "ProposalView",
        "ListProposalsResponse",
        "ChannelView",
        "ListChannelsResponse",
        "CollectionView",
        "ListCollectionsResponse",
        "ConsortiumConfig",
    ] {
        b = b.type_attribute(format!(".gridledger.v1.{m}"), "#[derive(serde::Serialize)]");
    }
    b.compile_protos(&files, &[dir.to_path_buf()])?;
    Ok(())
}
