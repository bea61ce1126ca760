//! `gridledger-node pki` certificates run a real node (`gridledger-node run --config`):
//! an organisation-system certificate is accepted; a server-only certificate, or one from
//! another CA, is refused at the first RPC.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use gridledger_proto::v1 as pb;
use gridledger_proto::v1::chain_service_client::ChainServiceClient;
use gridledger_tests::{bin, stderr};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

fn pki(args: &[&str]) -> std::process::Output {
    Command::new(bin("gridledger-node"))
        .arg("pki")
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: std::process::Output) {
    assert!(o.status.success(), "{}", stderr(&o));
}

async fn client(
    port: u16,
    dir: &Path,
    ca: &str,
    name: &str,
) -> Result<ChainServiceClient<Channel>, String> {
    let read = |f: &Path| std::fs::read(f).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&dir.join(ca))))
        .identity(Identity::from_pem(
            read(&dir.join(format!("{name}.pem"))),
            read(&dir.join(format!("{name}-key.pem"))),
        ))
        .domain_name("localhost");
    let ch = Channel::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(ChainServiceClient::new(ch))
}

struct Node(Child);
impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pki_certificates_run_a_node_and_only_client_certificates_of_its_ca_get_in() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let p = |s: &str| d.join(s).to_str().unwrap().to_string();
    ok(pki(&["ca", "--out", &p("pki"), "--org", "Test Consortium"]));
    ok(pki(&[
        "node",
        "--ca",
        &p("pki"),
        "--out",
        &p("pki"),
        "--node-id",
        "node-9",
        "--org",
        "grid-north",
        "--san",
        "localhost",
        "--san",
        "127.0.0.1",
    ]));
    ok(pki(&[
        "org",
        "--ca",
        &p("pki"),
        "--out",
        &p("pki"),
        "--org",
        "sup-alpha",
        "--name",
        "erp",
    ]));
    ok(pki(&[
        "server",
        "--ca",
        &p("pki"),
        "--out",
        &p("pki"),
        "--org",
        "grid-north",
        "--san",
        "localhost",
    ]));
    // Never overwrite a key.
    let again = pki(&[
        "org",
        "--ca",
        &p("pki"),
        "--out",
        &p("pki"),
        "--org",
        "sup-alpha",
        "--name",
        "erp",
    ]);
    assert!(
        !again.status.success() && stderr(&again).contains("refusing to overwrite"),
        "{}",
        stderr(&again)
    );
    // Another consortium's CA and system certificate.
    ok(pki(&["ca", "--out", &p("other"), "--org", "Other"]));
    ok(pki(&[
        "org",
        "--ca",
        &p("other"),
        "--out",
        &p("other"),
        "--org",
        "sup-alpha",
        "--name",
        "erp",
    ]));

    std::fs::write(d.join("signing.key"), hex::encode([5u8; 32])).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        "node_id = \"node-9\"\norigin = \"test.example/pki\"\ndata_dir = {:?}\nsigning_key = {:?}\n[api]\nlisten = \"127.0.0.1:{port}\"\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n",
        p("data"),
        p("signing.key"),
        p("pki/node-9.pem"),
        p("pki/node-9-key.pem"),
        p("pki/ca.pem"),
    );
    std::fs::write(d.join("node.toml"), config).unwrap();
    let _node = Node(
        Command::new(bin("gridledger-node"))
            .args(["run", "--config", &p("node.toml")])
            .stderr(std::fs::File::create(d.join("node.log")).unwrap())
            .spawn()
            .unwrap(),
    );

    let pki_dir = d.join("pki");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(mut c) = client(port, &pki_dir, "ca.pem", "erp").await
            && let Ok(s) = c.get_status(pb::GetStatusRequest::default()).await
        {
            break s.into_inner();
        }
        assert!(
            Instant::now() < deadline,
            "node did not serve: {}",
            std::fs::read_to_string(d.join("node.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.origin, "test.example/pki");
    assert_eq!(status.node_id, "node-9");

    // A server-only certificate (no clientAuth usage) is not a client identity.
    let refused = match client(port, &pki_dir, "ca.pem", "public").await {
        Err(_) => true,
        Ok(mut c) => c.get_status(pb::GetStatusRequest::default()).await.is_err(),
    };
    assert!(refused, "a certificate without clientAuth must be refused");
    // A system certificate from another CA is refused (the client trusts our CA).
    let refused = match client(port, &d.join("other"), "../pki/ca.pem", "erp").await {
        Err(_) => true,
        Ok(mut c) => c.get_status(pb::GetStatusRequest::default()).await.is_err(),
    };
    assert!(refused, "a certificate from another CA must be refused");
}
