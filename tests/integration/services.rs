//! Standard gRPC health and reflection, blocks by range, and the block stream.

use futures::StreamExt as _;
use gridledger_proto::v1 as pb;
use gridledger_tests::DevNode;

async fn channel(node: &DevNode) -> tonic::transport::Channel {
    // Reuse the CLI's mTLS setup, then take its channel for the other services.
    let p = gridledger_client::profile::Profile::load(&node.profile()).unwrap();
    let read = |f: &std::path::Path| std::fs::read(f).unwrap();
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(read(&p.ca)))
        .identity(tonic::transport::Identity::from_pem(
            read(&p.cert),
            read(&p.key),
        ))
        .domain_name("localhost");
    tonic::transport::Channel::from_shared(p.endpoint)
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn health_and_reflection_work_for_stock_tools() {
    let node = DevNode::start(5);
    let ch = channel(&node).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch.clone());
    let r = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "gridledger.v1.ChainService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut refl = ServerReflectionClient::new(ch);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut resp = refl
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .unwrap()
        .into_inner();
    let Some(Ok(first)) = resp.next().await else {
        panic!("no reflection answer")
    };
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("unexpected reflection answer")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"gridledger.v1.ChainService".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn blocks_chain_by_hash_and_the_stream_delivers_new_blocks_from_a_cursor() {
    let node = DevNode::start(10);
    let mut c = node.client().await;
    let status = c
        .get_status(pb::GetStatusRequest::default())
        .await
        .unwrap()
        .into_inner();
    let blocks = c
        .get_blocks(pb::GetBlocksRequest {
            from_height: 1,
            limit: 5000,
            include_leaves: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .blocks;
    assert_eq!(blocks.len() as u64, status.height);
    let mut prev = vec![0u8; 32];
    let mut next_index = 0;
    for b in &blocks {
        let h = gridledger_core::block::BlockHeader::decode(&b.header).unwrap();
        assert_eq!(h.hash().to_vec(), b.hash, "hash = SHA-256(0x02 || header)");
        assert_eq!(b.prev_hash, prev);
        assert_eq!(b.first_index, next_index);
        assert_eq!(b.leaves.len() as u64, b.leaf_count);
        prev = b.hash.clone();
        next_index += b.leaf_count;
    }
    assert_eq!(next_index, status.tree_size);

    // Watch from the next height, then commit: the stream delivers that block.
    let mut stream = c
        .watch_blocks(pb::WatchBlocksRequest {
            from_height: status.height,
            include_leaves: false,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(
        first.height, status.height,
        "the cursor's own block comes first"
    );
    let o = node.cli(&["load", "--count", "10", "--json"]);
    assert!(o.status.success());
    let mut seen = 0;
    while seen < 10 {
        let b = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
            .await
            .expect("block within 10 s")
            .unwrap()
            .unwrap();
        assert!(b.height > status.height);
        seen += b.leaf_count;
    }
    assert_eq!(seen, 10);
}
