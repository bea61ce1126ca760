//! A three-node dev cluster of real processes (Raft over mutual TLS on 127.0.0.1-3):
//! replication to the same root, writes redirected by followers, the leader killed under
//! load without losing an acknowledged transaction, writes resuming under a new leader,
//! and the killed node catching up after a restart.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gridledger_core::merkle;
use gridledger_proto::v1 as pb;
use gridledger_proto::v1::chain_service_client::ChainServiceClient;
use gridledger_tests::bin;
use tonic::Code;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::util::instrument_tx;

const ORIGIN: &str = "gridledger.example/metering";

struct Cluster {
    dir: tempfile::TempDir,
    dev: Child,
    // Nodes restarted by hand (not children of the dev process).
    restarted: Vec<Child>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gl-cluster-")
            .tempdir()
            .unwrap();
        Self::launch(dir)
    }

    /// Stops the dev process (which stops its nodes), the nodes restarted by hand, and,
    /// belt and braces, any node process left; waits until they are gone.
    fn stop_all(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.dev.id().to_string())
            .status();
        let _ = self.dev.wait();
        for ch in &mut self.restarted {
            let _ = ch.kill();
            let _ = ch.wait();
        }
        self.restarted.clear();
        for i in 1..=3 {
            if let Ok(pid) = std::fs::read_to_string(self.node_dir(i).join("node.pid")) {
                let _ = Command::new("kill")
                    .arg("-9")
                    .arg(pid.trim())
                    .stderr(Stdio::null())
                    .status();
                wait_gone(pid.trim());
            }
        }
    }

    /// Stops everything, keeping the directory.
    fn shutdown(mut self) -> tempfile::TempDir {
        self.stop_all();
        let empty = tempfile::Builder::new()
            .prefix("gl-empty-")
            .tempdir()
            .unwrap();
        std::mem::replace(&mut self.dir, empty)
    }

    fn launch(dir: tempfile::TempDir) -> Self {
        let log = std::fs::File::create(dir.path().join("dev.log")).unwrap();
        let dev = Command::new(bin("gridledger-node"))
            .args([
                "dev",
                "--nodes",
                "3",
                "--listen",
                "127.0.0.1:0",
                "--meters",
                "10",
                "--days",
                "1",
                "--data-dir",
            ])
            .arg(dir.path())
            .env("RUST_LOG", "warn,openraft=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Cluster {
            dir,
            dev,
            restarted: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !c.log().contains("gridledger dev cluster of 3 nodes") {
            assert!(
                Instant::now() < deadline,
                "cluster did not start: {}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dev.log")).unwrap_or_default()
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}"))
    }

    fn api(&self, i: usize) -> String {
        let e: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(self.dir.path().join("endpoints.json")).unwrap(),
        )
        .unwrap();
        e["nodes"][i - 1]["grpc"]
            .as_str()
            .unwrap()
            .trim_start_matches("https://")
            .to_string()
    }

    async fn client(&self, i: usize) -> Option<ChainServiceClient<Channel>> {
        self.client_at(&self.api(i)).await
    }

    async fn client_at(&self, api: &str) -> Option<ChainServiceClient<Channel>> {
        Some(ChainServiceClient::new(self.channel_at(api).await?))
    }

    async fn channel_at(&self, api: &str) -> Option<Channel> {
        let d = self.dir.path();
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(
                std::fs::read(d.join("ca.pem")).unwrap(),
            ))
            .identity(Identity::from_pem(
                std::fs::read(d.join("client.pem")).unwrap(),
                std::fs::read(d.join("client-key.pem")).unwrap(),
            ))
            .domain_name("localhost");
        let ch = Channel::from_shared(format!("https://{api}"))
            .unwrap()
            .tls_config(tls)
            .unwrap()
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(5))
            .connect()
            .await
            .ok()?;
        Some(ch)
    }

    async fn status(&self, i: usize) -> Option<pb::ChainStatus> {
        self.client(i)
            .await?
            .get_status(pb::GetStatusRequest::default())
            .await
            .ok()
            .map(|r| r.into_inner())
    }

    /// The leader's index (1-based) as the live nodes in `among` report it.
    async fn leader(&self, among: &[usize]) -> usize {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            for &i in among {
                if let Some(s) = self.status(i).await
                    && let Some(l) = s
                        .leader_id
                        .strip_prefix("node-")
                        .and_then(|x| x.parse::<usize>().ok())
                    && among.contains(&l)
                {
                    return l;
                }
            }
            assert!(Instant::now() < deadline, "no leader among {among:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Restarts node `i` by hand, as an operator would.
    fn run_node(&mut self, i: usize) -> std::process::ExitStatus {
        let cfg = self.node_dir(i).join("config.toml");
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(self.node_dir(i).join("node.log"))
            .unwrap();
        let mut child = Command::new(bin("gridledger-node"))
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "warn,openraft=info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        std::fs::write(self.node_dir(i).join("node.pid"), child.id().to_string()).unwrap();
        // Give a node that refuses to start the chance to say so.
        std::thread::sleep(Duration::from_millis(1500));
        let status = child.try_wait().unwrap();
        self.restarted.push(child);
        status.unwrap_or_else(|| std::os::unix::process::ExitStatusExt::from_raw(0))
    }

    fn pid(&self, i: usize) -> String {
        std::fs::read_to_string(self.node_dir(i).join("node.pid"))
            .unwrap()
            .trim()
            .to_string()
    }

    fn signing_key(&self) -> ed25519_dalek::SigningKey {
        gridledger_node::config::read_signing_key(&self.dir.path().join("client-signing.key"))
            .unwrap()
    }
}

async fn converged(c: &Cluster, nodes: &[usize], at_least: u64) -> (u64, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut seen = Vec::new();
        for &i in nodes {
            if let Some(s) = c.status(i).await {
                seen.push((s.tree_size, s.root));
            }
        }
        if seen.len() == nodes.len()
            && seen.windows(2).all(|w| w[0] == w[1])
            && seen[0].0 >= at_least
        {
            return seen.swap_remove(0);
        }
        assert!(
            Instant::now() < deadline,
            "nodes {nodes:?} did not converge: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn wait_gone(pid: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_replicate_survive_a_killed_leader_and_catch_up() {
    let mut c = Cluster::start();
    let (seeded, _) = converged(&c, &[1, 2, 3], 1).await;
    let leader = c.leader(&[1, 2, 3]).await;
    let follower = (1..=3).find(|&i| i != leader).unwrap();

    // A follower refuses writes with UNAVAILABLE and the leader's address.
    let key = c.signing_key();
    let tx = |n: u64| {
        instrument_tx(
            &key,
            ORIGIN,
            "grid-north",
            n,
            &format!("CL-{n:08}"),
            "220V 5(60)A",
        )
    };
    let e = c
        .client(follower)
        .await
        .unwrap()
        .submit(pb::SubmitRequest {
            private_payload: None,
            signed_tx: tx(1).into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert_eq!(
        e.metadata()
            .get("x-gridledger-leader")
            .and_then(|v| v.to_str().ok()),
        Some(c.api(leader).as_str())
    );

    // Load on the leader; kill -9 it part-way. Record every acknowledgement.
    let mut acked: Vec<(u64, [u8; 32])> = Vec::new();
    let mut lc = c.client(leader).await.unwrap();
    let killed_at = 150;
    for n in 100..400u64 {
        if n == killed_at {
            let pid = c.pid(leader);
            assert!(
                Command::new("kill")
                    .args(["-9", &pid])
                    .status()
                    .unwrap()
                    .success()
            );
            wait_gone(&pid);
        }
        let leaf = tx(n);
        match lc
            .submit(pb::SubmitRequest {
                private_payload: None,
                signed_tx: leaf.clone().into(),
            })
            .await
        {
            Ok(r) => acked.push((r.into_inner().leaf_index, merkle::leaf_hash(&leaf))),
            Err(_) => break,
        }
    }
    assert!(
        acked.len() >= (killed_at - 100) as usize,
        "acknowledged {} before the kill",
        acked.len()
    );

    // The survivors elect a new leader and take writes within a few seconds.
    let survivors: Vec<usize> = (1..=3).filter(|&i| i != leader).collect();
    let started = Instant::now();
    let new_leader = c.leader(&survivors).await;
    let mut nl = c.client(new_leader).await.unwrap();
    let resumed = loop {
        match nl
            .submit(pb::SubmitRequest {
                private_payload: None,
                signed_tx: tx(10_000).into(),
            })
            .await
        {
            Ok(r) => break r.into_inner(),
            Err(e)
                if e.code() == Code::Unavailable && started.elapsed() < Duration::from_secs(15) =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("writes did not resume: {e:?}"),
        }
    };
    let failover = started.elapsed();
    assert!(
        failover < Duration::from_secs(10),
        "failover took {failover:?}"
    );

    // No acknowledged transaction was lost: each is at its index on every survivor.
    for &i in &survivors {
        let mut cl = c.client(i).await.unwrap();
        for (index, hash) in &acked {
            let e = cl
                .get_entry(pb::GetEntryRequest {
                    index: *index,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(merkle::leaf_hash(&e.leaf), *hash, "node {i} leaf {index}");
        }
    }

    // The killed node restarts by hand and catches up to the same root.
    let cfg = c.node_dir(leader).join("config.toml");
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(c.node_dir(leader).join("node.log"))
        .unwrap();
    let child = Command::new(bin("gridledger-node"))
        .args(["run", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    std::fs::write(c.node_dir(leader).join("node.pid"), child.id().to_string()).unwrap();
    c.restarted.push(child);
    let (size, _) = converged(&c, &[1, 2, 3], resumed.tree_size).await;
    assert!(size > seeded, "{size} > {seeded}");

    // Receipts from every node verify under the trust policy's quorum of 2, with the
    // CLI and with the independent Python verifier.
    let trust = c.dir.path().join("trust.json");
    for i in 1..=3 {
        let profile = c.node_dir(i).join("profile.toml");
        let out = c.dir.path().join(format!("r{i}.tlog-proof"));
        let cli = |args: &[&std::ffi::OsStr]| {
            Command::new(bin("gridledger"))
                .args(args)
                .env("GRIDLEDGER_PROFILE", &profile)
                .output()
                .unwrap()
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let o = cli(&[
                "receipt".as_ref(),
                "--index".as_ref(),
                "7".as_ref(),
                "-o".as_ref(),
                out.as_os_str(),
            ]);
            if o.status.success() {
                break;
            }
            // Right after start-up a node may not have collected a quorum yet.
            assert!(
                Instant::now() < deadline,
                "node {i}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let o = cli(&[
            "verify".as_ref(),
            out.as_os_str(),
            "--trust".as_ref(),
            trust.as_os_str(),
        ]);
        assert!(
            o.status.success(),
            "node {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let o = gridledger_tests::python_verify(&[
            "receipt".as_ref(),
            "--trust".as_ref(),
            trust.as_os_str(),
            out.as_os_str(),
        ]);
        assert!(
            o.status.success(),
            "python, node {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let s: serde_json::Value =
            serde_json::from_slice(&cli(&["status".as_ref(), "--json".as_ref()]).stdout).unwrap();
        assert_eq!(s["node_id"], format!("node-{i}"));
        assert!(
            s["leader_id"]
                .as_str()
                .is_some_and(|l| l.starts_with("node-")),
            "{s}"
        );
    }

    // A single node serving a checkpoint signed only by itself is refused under quorum 2,
    // even for the true root: one member's word is not enough.
    let valid = std::fs::read_to_string(c.dir.path().join("r1.tlog-proof")).unwrap();
    let (proof, note) = valid.split_once("\n\n").unwrap();
    let note = gridledger_core::note::SignedNote::parse(note).unwrap();
    let key =
        gridledger_node::config::read_signing_key(&c.node_dir(1).join("node-signing.key")).unwrap();
    let lone = gridledger_core::note::NoteSigner::new(&format!("{ORIGIN}/node-1"), key).unwrap();
    let forged = gridledger_core::note::SignedNote {
        sigs: vec![lone.sign(&note.text)],
        text: note.text.clone(),
    };
    let bad = c.dir.path().join("lone.tlog-proof");
    std::fs::write(&bad, format!("{proof}\n\n{forged}")).unwrap();
    let o = Command::new(bin("gridledger"))
        .args([
            "verify".as_ref(),
            bad.as_os_str(),
            "--trust".as_ref(),
            trust.as_os_str(),
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = gridledger_tests::python_verify(&[
        "receipt".as_ref(),
        "--trust".as_ref(),
        trust.as_os_str(),
        bad.as_os_str(),
    ]);
    assert!(!o.status.success());
    eprintln!(
        "failover: {failover:?}; acknowledged before the kill: {}",
        acked.len()
    );
}

/// Submits `n` transactions one by one to the leader among `among`; returns the last
/// tree size.
async fn write(c: &Cluster, among: &[usize], from: u64, n: u64) -> u64 {
    let key = c.signing_key();
    let mut size = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = from;
    while i < from + n {
        let leader = c.leader(among).await;
        let Some(mut cl) = c.client(leader).await else {
            continue;
        };
        let leaf = instrument_tx(
            &key,
            ORIGIN,
            "grid-north",
            i,
            &format!("PW-{i:08}"),
            "220V 5(60)A",
        );
        match cl
            .submit(pb::SubmitRequest {
                private_payload: None,
                signed_tx: leaf.into(),
            })
            .await
        {
            Ok(r) => {
                size = r.into_inner().tree_size;
                i += 1;
            }
            Err(e) if e.code() == Code::AlreadyExists => i += 1,
            Err(e) => {
                assert!(Instant::now() < deadline, "writes keep failing: {e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_leader_a_far_behind_node_and_a_tampered_node() {
    // Small snapshots, so a node that misses a few hundred blocks needs one.
    let dir = Cluster::start().shutdown();
    for i in 1..=3 {
        let p = dir.path().join(format!("node-{i}/config.toml"));
        let cfg = std::fs::read_to_string(&p).unwrap();
        assert!(
            cfg.contains("snapshot_every = 5000") && cfg.contains("snapshot_keep = 1000"),
            "{cfg}"
        );
        std::fs::write(
            &p,
            cfg.replace("snapshot_every = 5000", "snapshot_every = 20")
                .replace("snapshot_keep = 1000", "snapshot_keep = 0"),
        )
        .unwrap();
    }
    let mut c = Cluster::launch(dir);
    converged(&c, &[1, 2, 3], 1).await;

    // A partition, approximated by SIGSTOP: the paused leader loses its role, the others
    // carry on, and after SIGCONT it rejoins as a follower and converges.
    let leader = c.leader(&[1, 2, 3]).await;
    let others: Vec<usize> = (1..=3).filter(|&i| i != leader).collect();
    let pid = c.pid(leader);
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let size = write(&c, &others, 1000, 20).await;
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    converged(&c, &[1, 2, 3], size).await;

    // Far behind: node 3 is down while many blocks commit and the log is compacted; on
    // restart it catches up by snapshot.
    let pid3 = c.pid(3);
    assert!(
        Command::new("kill")
            .args(["-9", &pid3])
            .status()
            .unwrap()
            .success()
    );
    wait_gone(&pid3);
    let size = write(&c, &[1, 2], 2000, 120).await;
    let status = c.run_node(3);
    assert!(status.success(), "node 3 restarts");
    converged(&c, &[1, 2, 3], size).await;
    let log3 = std::fs::read_to_string(c.node_dir(3).join("node.log"))
        .unwrap()
        .to_lowercase();
    assert!(
        log3.contains("install_full_snapshot"),
        "node 3 caught up by snapshot; its log:\n{log3}"
    );

    // Tampered storage: node 2 is stopped, one recent leaf is changed on disk; it refuses
    // to start (so it neither serves nor signs) and says why. The other two carry on.
    let pid2 = c.pid(2);
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid2])
            .status()
            .unwrap()
            .success()
    );
    wait_gone(&pid2);
    {
        use gridledger_node::store::{Cf, Durability, Store, WriteBatch, rocks::RocksStore};
        let store = RocksStore::open(&c.node_dir(2).join("data/ledger")).unwrap();
        let key = (size - 2).to_be_bytes();
        let mut v = store.get(Cf::Leaves, &key).unwrap().unwrap();
        v[40] ^= 1;
        let mut b = WriteBatch::new();
        b.put(Cf::Leaves, key.to_vec(), v);
        store.write(b, Durability::Sync).unwrap();
    }
    let status = c.run_node(2);
    assert!(
        !status.success(),
        "a node with a tampered ledger must refuse to start"
    );
    let log2 = std::fs::read_to_string(c.node_dir(2).join("node.log")).unwrap();
    assert!(log2.contains("corrupt"), "{log2}");
    let size = write(&c, &[1, 3], 5000, 5).await;
    converged(&c, &[1, 3], size).await;
}

fn free(ip: &str) -> String {
    let l = std::net::TcpListener::bind((ip, 0)).unwrap();
    format!("{ip}:{}", l.local_addr().unwrap().port())
}

/// A profile for `key`, otherwise the same as node 1's (the demo orgs' admin keys are
/// deterministic, so the test can act as grid-north's admin and as the regulator).
fn profile_with_key(c: &Cluster, name: &str, key: &ed25519_dalek::SigningKey) -> PathBuf {
    let key_file = c.dir.path().join(format!("{name}.key"));
    gridledger_node::config::write_secret(&key_file, &hex::encode(key.to_bytes())).unwrap();
    let base = std::fs::read_to_string(c.node_dir(1).join("profile.toml")).unwrap();
    let line = base.lines().find(|l| l.starts_with("signing_key")).unwrap();
    let p = c.dir.path().join(format!("{name}.toml"));
    std::fs::write(
        &p,
        base.replace(line, &format!("signing_key = {key_file:?}")),
    )
    .unwrap();
    p
}

fn cli(profile: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin("gridledger"))
        .args(args)
        .env("GRIDLEDGER_PROFILE", profile)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_approved_node_joins_the_cluster() {
    use gridledger_node::config::{MemberConfig, NodeConfig};
    let mut c = Cluster::start();
    converged(&c, &[1, 2, 3], 1).await;

    // The operator of node 4 prepares it: certificate from the consortium CA, keys, config.
    let nd = c.node_dir(4);
    std::fs::create_dir_all(&nd).unwrap();
    let o = Command::new(bin("gridledger-node"))
        .args(["pki", "node", "--ca"])
        .arg(c.dir.path())
        .arg("--out")
        .arg(&nd)
        .args([
            "--node-id",
            "node-4",
            "--org",
            "grid-north",
            "--san",
            "127.0.0.4",
            "--san",
            "localhost",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let key = ed25519_dalek::SigningKey::from_bytes(&[44; 32]);
    gridledger_node::config::write_secret(
        &nd.join("node-signing.key"),
        &hex::encode(key.to_bytes()),
    )
    .unwrap();
    let vk = gridledger_core::note::NoteSigner::new(&format!("{ORIGIN}/node-4"), key)
        .unwrap()
        .verifier_key()
        .to_string();
    let (api, peer) = (free("127.0.0.4"), free("127.0.0.4"));
    let mut cfg = NodeConfig::load(&c.node_dir(3).join("config.toml")).unwrap();
    cfg.node_id = "node-4".into();
    cfg.data_dir = nd.join("data");
    cfg.signing_key = nd.join("node-signing.key");
    cfg.api.listen = api.parse().unwrap();
    cfg.api.cert = nd.join("node-4.pem");
    cfg.api.key = nd.join("node-4-key.pem");
    let cl = cfg.cluster.as_mut().unwrap();
    cl.id = 4;
    cl.peer_listen = peer.parse().unwrap();
    cl.bootstrap = false;
    cl.members.push(MemberConfig {
        id: 4,
        name: "node-4".into(),
        peer: peer.clone(),
        api: api.clone(),
        checkpoint_key: Some(vk.clone()),
    });
    std::fs::write(
        nd.join("config.toml"),
        toml::to_string_pretty(&cfg).unwrap(),
    )
    .unwrap();
    std::fs::write(nd.join("node.log"), "").unwrap();
    assert!(
        c.run_node(4).success(),
        "node 4 starts and waits to be added"
    );

    // grid-north's admin proposes it; votes by others than admins are refused.
    let admin = profile_with_key(
        &c,
        "gn-admin",
        &gridledger_node::demo::org_key("grid-north"),
    );
    let regulator = profile_with_key(
        &c,
        "regulator",
        &gridledger_node::demo::org_key("reg-metrology"),
    );
    let propose = [
        "admin",
        "propose-add-node",
        "--proposal",
        "add-node-4",
        "--raft-id",
        "4",
        "--node-id",
        "node-4",
        "--org",
        "grid-north",
        "--peer",
        &peer,
        "--api",
        &api,
        "--checkpoint-key",
        &vk,
    ];
    let o = cli(&admin, &propose);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = cli(
        &c.node_dir(1).join("profile.toml"),
        &["admin", "vote", "--proposal", "add-node-4", "--approve"],
    );
    assert_eq!(o.status.code(), Some(2), "an operator key may not vote");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("4.5/vote"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = cli(&admin, &propose);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    // The regulator approves: the leader adds node 4, which catches up.
    let o = cli(
        &regulator,
        &["admin", "vote", "--proposal", "add-node-4", "--approve"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = cli(
        &regulator,
        &["admin", "vote", "--proposal", "add-node-4", "--approve"],
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already decided"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let target = c.status(1).await.unwrap().tree_size;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(mut cl4) = c.client_at(&api).await
            && let Ok(s) = cl4.get_status(pb::GetStatusRequest::default()).await
        {
            let s = s.into_inner();
            if s.tree_size >= target && s.leader_id.starts_with("node-") {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "node 4 did not join; its log:\n{}",
            std::fs::read_to_string(nd.join("node.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // AdminService shows it promoted to voter, and the proposal approved.
    let mut admin_api = gridledger_proto::v1::admin_service_client::AdminServiceClient::new(
        c.channel_at(&c.api(1)).await.unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let nodes = admin_api
            .list_nodes(pb::ListNodesRequest {})
            .await
            .unwrap()
            .into_inner();
        if nodes
            .nodes
            .iter()
            .any(|n| n.raft_id == 4 && n.role == "voter" && n.org_id == "grid-north")
        {
            assert_eq!(nodes.nodes.iter().filter(|n| n.role == "voter").count(), 4);
            break;
        }
        assert!(Instant::now() < deadline, "node 4 not a voter: {nodes:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let p = admin_api
        .list_proposals(pb::ListProposalsRequest {})
        .await
        .unwrap()
        .into_inner();
    let add = p
        .proposals
        .iter()
        .find(|x| x.proposal_id == "add-node-4")
        .unwrap();
    assert_eq!(add.status, "approved");
    assert_eq!(add.approvals, vec!["reg-metrology".to_string()]);
    let m = admin_api
        .list_members(pb::ListMembersRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.members.len(), 9);

    // Node 1's config does not name node 4, yet it collects node 4's signature from the
    // approved registration: a later checkpoint served by node 1 carries node 4's line.
    let mut cl1 = c.client(1).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0u64;
    loop {
        // New blocks give node 4 something to sign at a size node 1 also has.
        let leaf = instrument_tx(
            &c.signing_key(),
            ORIGIN,
            "grid-north",
            700_000 + n,
            &format!("J4-{n}"),
            "220V",
        );
        n += 1;
        let leader = c.leader(&[1, 2, 3]).await;
        if let Some(mut l) = c.client(leader).await {
            let _ = l
                .submit(pb::SubmitRequest {
                    private_payload: None,
                    signed_tx: leaf.into(),
                })
                .await;
        }
        let note = cl1
            .get_checkpoint(pb::GetCheckpointRequest::default())
            .await
            .unwrap()
            .into_inner()
            .note;
        if note.contains(&format!("\u{2014} {ORIGIN}/node-4 ")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 1 never served node 4's signature:\n{note}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Channels on the three-node cluster, as a client sees them: approved by a vote, written
/// through any node, read with `--channel`, receipts with a quorum of the members'
/// channel signatures that both our CLI and the independent Python verifier accept under
/// a policy derived from the system one; other orgs' channels are closed to this client.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn channels_are_separate_logs_with_quorum_receipts() {
    use gridledger_node::demo::org_key;
    let c = Cluster::start();
    converged(&c, &[1, 2, 3], 1).await;
    let regulator = profile_with_key(&c, "regulator", &org_key("reg-metrology"));
    let ok = |o: std::process::Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    for (id, name, members) in [
        ("ch-supply", "supply", ["grid-north", "sup-alpha"]),
        ("ch-quality", "quality", ["sup-alpha", "sup-beta"]),
    ] {
        let mut args = vec!["admin", "propose-channel", "--proposal", id, "--name", name];
        for m in members {
            args.extend(["--member", m]);
        }
        ok(cli(&regulator, &args));
        ok(cli(
            &regulator,
            &["admin", "vote", "--proposal", id, "--approve"],
        ));
    }
    // A channel name the contracts refuse, and a vote on a decided proposal.
    let o = cli(
        &regulator,
        &[
            "admin",
            "propose-channel",
            "--proposal",
            "bad",
            "--name",
            "Bad Name",
            "--member",
            "grid-north",
        ],
    );
    assert!(!o.status.success());
    let o = cli(
        &regulator,
        &["admin", "vote", "--proposal", "ch-supply", "--approve"],
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("4.5/vote"),
        "{o:?}"
    );

    // Write to the channel through whichever node leads.
    let north = org_key("grid-north");
    let supply = format!("{ORIGIN}/supply");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut written = 0u64;
    while written < 10 {
        let leader = c.leader(&[1, 2, 3]).await;
        let Some(mut cl) = c.client(leader).await else {
            continue;
        };
        let leaf = instrument_tx(
            &north,
            &supply,
            "grid-north",
            5_000 + written,
            &format!("CH-{written}"),
            "220V",
        );
        match cl
            .submit(pb::SubmitRequest {
                private_payload: None,
                signed_tx: leaf.into(),
            })
            .await
        {
            Ok(r) => {
                assert_eq!(
                    r.into_inner().leaf_index,
                    written,
                    "the channel has its own indexes"
                );
                written += 1;
            }
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "channel writes keep failing: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    // A transaction for an origin that is no channel of this ledger never gets ordered.
    let mut cl = c.client(c.leader(&[1, 2, 3]).await).await.unwrap();
    let stray = instrument_tx(
        &north,
        &format!("{ORIGIN}/nope"),
        "grid-north",
        6_000,
        "X-1",
        "220V",
    );
    let e = cl
        .submit(pb::SubmitRequest {
            private_payload: None,
            signed_tx: stray.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("4.1/origin"), "{e:?}");

    // Every node has the same channel tree, separate from the system tree.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut roots = Vec::new();
        for i in 1..=3 {
            if let Some(mut cl) = c.client(i).await
                && let Ok(s) = cl
                    .get_status(pb::GetStatusRequest {
                        channel: "supply".into(),
                    })
                    .await
            {
                let s = s.into_inner();
                roots.push((s.origin, s.tree_size, s.root));
            }
        }
        if roots.len() == 3 && roots.windows(2).all(|w| w[0] == w[1]) && roots[0].1 == 10 {
            assert_eq!(roots[0].0, supply);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "channel did not converge: {roots:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let system = c.status(1).await.unwrap();
    assert_eq!(system.origin, ORIGIN);

    // A receipt fetched from a follower verifies under the derived quorum-2 policy, with
    // our CLI and with the independent Python verifier.
    let leader = c.leader(&[1, 2, 3]).await;
    let follower = if leader == 1 { 2 } else { 1 };
    let profile = c.node_dir(follower).join("profile.toml");
    let receipt = c.dir.path().join("supply-3.tlog-proof");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = cli(
            &profile,
            &[
                "--channel",
                "supply",
                "receipt",
                "--index",
                "3",
                "-o",
                receipt.to_str().unwrap(),
            ],
        );
        if o.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no quorum receipt: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let trust = c.dir.path().join("trust.json");
    let out = ok(cli(
        &profile,
        &[
            "--channel",
            "supply",
            "verify",
            receipt.to_str().unwrap(),
            "--trust",
            trust.to_str().unwrap(),
        ],
    ));
    assert!(out.contains(&supply), "{out}");
    // Under the system policy (the wrong origin) the same receipt does not verify.
    let o = cli(
        &profile,
        &[
            "verify",
            receipt.to_str().unwrap(),
            "--trust",
            trust.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let derived = c.dir.path().join("trust-supply.json");
    std::fs::write(
        &derived,
        ok(cli(
            &profile,
            &[
                "--channel",
                "supply",
                "trust",
                "--trust",
                trust.to_str().unwrap(),
            ],
        )),
    )
    .unwrap();
    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&derived).unwrap()).unwrap();
    assert_eq!(policy["origin"], supply.as_str());
    assert_eq!(policy["quorum"], 2);
    let py = gridledger_tests::python_verify(&[
        "receipt".as_ref(),
        "--trust".as_ref(),
        derived.as_os_str(),
        receipt.as_os_str(),
    ]);
    assert!(
        py.status.success(),
        "python: {}{}",
        String::from_utf8_lossy(&py.stdout),
        String::from_utf8_lossy(&py.stderr)
    );

    // This client's org (grid-north) is not a member of `quality`, and `nope` does not exist.
    let mut cl = c.client(1).await.unwrap();
    let e = cl
        .get_checkpoint(pb::GetCheckpointRequest {
            channel: "quality".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = cl
        .get_entry(pb::GetEntryRequest {
            index: 0,
            channel: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let o = cli(&profile, &["--channel", "quality", "checkpoint"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("member orgs"),
        "{o:?}"
    );

    // Every member sees which channels exist and who is in them, but only members (and
    // the regulator) see how much a channel holds.
    let channels = |profile: &Path| -> Vec<serde_json::Value> {
        let v: serde_json::Value =
            serde_json::from_str(&ok(cli(profile, &["admin", "show", "channels", "--json"])))
                .unwrap();
        v["channels"].as_array().unwrap().clone()
    };
    let size_of = |list: &[serde_json::Value], name: &str| {
        list.iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no channel {name:?} in {list:?}"))["tree_size"]
            .as_u64()
            .unwrap()
    };
    let north = channels(&profile);
    assert_eq!(size_of(&north, "supply"), 10);
    assert!(size_of(&north, "") > 0);
    let beta = profile_for_org(&c, "sup-beta");
    let theirs = channels(&beta);
    assert_eq!(size_of(&theirs, "supply"), 0, "not a member of supply");
    assert_eq!(size_of(&theirs, ""), size_of(&north, ""));
    let supply_row = theirs.iter().find(|c| c["name"] == "supply").unwrap();
    assert_eq!(supply_row["origin"], supply.as_str());
    assert_eq!(
        supply_row["member_orgs"],
        serde_json::json!(["grid-north", "sup-alpha"])
    );
    let table = ok(cli(&beta, &["admin", "show", "channels"]));
    assert!(table.lines().next().unwrap().contains("origin"), "{table}");
    assert!(table.contains(&supply), "{table}");
}

/// A CLI profile whose client certificate names `org` (issued by the dev CA).
fn profile_for_org(c: &Cluster, org: &str) -> PathBuf {
    let ca = gridledger_node::pki::Ca::load(c.dir.path()).unwrap();
    let pem = ca.client(&format!("{org}-system"), org).unwrap();
    let name = format!("client-{org}");
    gridledger_node::pki::write_pair(c.dir.path(), &name, &pem).unwrap();
    let base = std::fs::read_to_string(c.node_dir(1).join("profile.toml")).unwrap();
    let swap = |text: String, field: &str, file: String| {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{field} =")))
            .unwrap()
            .to_string();
        text.replace(&line, &format!("{field} = {:?}", c.dir.path().join(file)))
    };
    let text = swap(base, "cert", format!("{name}.pem"));
    let text = swap(text, "key", format!("{name}-key.pem"));
    let p = c.dir.path().join(format!("{org}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}
