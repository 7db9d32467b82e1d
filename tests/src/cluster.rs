//! A local nats-server cluster for the end-to-end suites: real processes
//! (three by default) on free ports, routes between them, each with its own
//! temporary JetStream store, configured by the same renderer as `liaison
//! nats-config --cluster-dir` with the secrets in their environment as the
//! `--secrets-dir` files hold them, and killed on drop. [`Cluster::start`]
//! returns once every node sees the whole cluster and JetStream has a meta
//! leader. Liaison's services are started on it with
//! `liaison_system::system::System::start_on`.

use crate::nats_process::{NatsProcess, free_ports};
use crate::{eventually, http_get};
use anyhow::{Context as _, Result, bail};
use liaison_runtime::nats_conf::{self, Node, ServerTls};
use liaison_runtime::nats_secrets::parse_env;
use liaison_runtime::users::{NatsUser, password};
use std::collections::BTreeMap;
use std::time::Duration;

/// How many times ports are picked again when one was taken meanwhile.
const ATTEMPTS: usize = 4;

/// One node: its configuration and its process.
pub struct ClusterNode {
    pub node: Node,
    process: NatsProcess,
}

/// A running cluster, stopped (SIGKILL) when dropped.
pub struct Cluster {
    nodes: Vec<ClusterNode>,
    /// The nodes' environment: route and user passwords (`nats.env`).
    pub env: BTreeMap<String, String>,
    _work: tempfile::TempDir,
}

impl Cluster {
    /// Starts `size` nodes with `users` and waits until the cluster formed.
    pub async fn start(size: usize, users: &[NatsUser]) -> Result<Self> {
        Self::start_with_tls(size, users, None).await
    }

    /// [`Cluster::start`], serving clients, routes and leaf nodes over TLS
    /// with `tls` (the node certificate must serve as a client's too: the
    /// routes verify each other).
    pub async fn start_with_tls(
        size: usize,
        users: &[NatsUser],
        tls: Option<ServerTls>,
    ) -> Result<Self> {
        crate::test_log();
        let mut last = None;
        for _ in 0..ATTEMPTS {
            match Self::try_start(size, users, tls.as_ref()) {
                Ok(cluster) => {
                    cluster.until_formed(Duration::from_secs(30)).await?;
                    return Ok(cluster);
                }
                // Most likely a port taken between picking and binding.
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
    }

    fn try_start(size: usize, users: &[NatsUser], tls: Option<&ServerTls>) -> Result<Self> {
        let work = tempfile::Builder::new()
            .prefix("liaison-cluster-")
            .tempdir()?;
        let ports = free_ports(size * 4)?;
        let nodes: Vec<Node> = (0..size)
            .map(|n| Node {
                name: format!("liaison-nats-{n}"),
                host: "127.0.0.1".into(),
                client_port: ports[n * 4],
                cluster_port: ports[n * 4 + 1],
                leaf_port: Some(ports[n * 4 + 2]),
                monitor_port: Some(ports[n * 4 + 3]),
                store: work.path().join(format!("node-{n}")).join("jetstream"),
                sync_interval: None,
                tls: tls.cloned(),
            })
            .collect();
        let layout = nats_conf::Cluster {
            name: "liaison-test".into(),
            routes: nodes
                .iter()
                .map(|n| format!("127.0.0.1:{}", n.cluster_port))
                .collect(),
        };
        // Agencies are not users of the configuration (they log in through
        // the gateway's auth callout), so its environment is the same size
        // at 25,000 agencies as at 11.
        let env = parse_env(
            &nats_conf::cluster_env(&layout, users, password().expose()),
            "nats.env",
        )?;
        let mut started = Vec::new();
        for node in nodes {
            let conf = work.path().join(format!("{}.conf", node.name));
            std::fs::write(&conf, nats_conf::node(&layout, &node, users))?;
            let log = work.path().join(format!("{}.log", node.name));
            let process = NatsProcess::start(&conf, &env, &log, node.client_port)
                .with_context(|| format!("starting {}", node.name))?;
            started.push(ClusterNode { node, process });
        }
        Ok(Self {
            nodes: started,
            env,
            _work: work,
        })
    }

    /// Every node's client URL, comma-separated: what clients are given so
    /// that they fail over.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.node.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The nodes, in order.
    pub fn nodes(&self) -> &[ClusterNode] {
        &self.nodes
    }

    /// The index of the node called `name`.
    pub fn index_of(&self, name: &str) -> Result<usize> {
        self.nodes
            .iter()
            .position(|n| n.node.name == name)
            .with_context(|| format!("no node {name:?}"))
    }

    /// Kills node `i` at once (SIGKILL).
    pub fn kill(&mut self, i: usize) -> Result<()> {
        let node = self.nodes.get_mut(i).context("no such node")?;
        node.process.kill();
        Ok(())
    }

    /// Starts node `i` again on its ports and store.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        let node = self.nodes.get_mut(i).context("no such node")?;
        let port = node.node.client_port;
        node.process.restart(port)
    }

    /// Where node `i`'s leaf-node listener is, `127.0.0.1:PORT`.
    pub fn leaf_addr(&self, i: usize) -> Result<String> {
        let node = self.nodes.get(i).context("no such node")?;
        let port = node.node.leaf_port.context("no leaf-node listener")?;
        Ok(format!("127.0.0.1:{port}"))
    }

    /// A page of node `i`'s monitoring port, e.g. `/jsz` or `/leafz`.
    pub async fn monitor(&self, i: usize, path: &str) -> Result<serde_json::Value> {
        let node = self.nodes.get(i).context("no such node")?;
        let port = node.node.monitor_port.context("no monitoring port")?;
        let (status, body) = http_get(([127, 0, 0, 1], port).into(), path).await?;
        if status != 200 {
            bail!("{path} of {} answered {status}", node.node.name);
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// JetStream's view from node `i`.
    pub async fn jsz(&self, i: usize) -> Result<serde_json::Value> {
        self.monitor(i, "/jsz").await
    }

    /// Polls (within `timeout`) until every running node knows the same
    /// JetStream meta leader and sees every running peer as current.
    pub async fn until_formed(&self, timeout: Duration) -> Result<()> {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].process.is_running())
            .collect();
        let seen = std::sync::Mutex::new(String::new());
        let result = eventually("the cluster to form", timeout, || async {
            let mut leaders = Vec::new();
            let mut view = Vec::new();
            for &i in &running {
                let jsz = match self.jsz(i).await {
                    Ok(jsz) => jsz,
                    Err(e) => {
                        view.push(format!("node {i}: {e}"));
                        continue;
                    }
                };
                let meta = &jsz["meta_cluster"];
                let leader = meta["leader"].as_str().unwrap_or_default().to_owned();
                // A node lists its peers, not itself; only the leader knows
                // whether they are current.
                let current = meta["replicas"]
                    .as_array()
                    .map(|r| r.iter().filter(|p| p["current"] == true).count())
                    .unwrap_or_default();
                view.push(format!(
                    "node {i}: leader {leader:?}, {current} peers current"
                ));
                let is_leader = leader == self.nodes[i].node.name;
                if !leader.is_empty() && (!is_leader || current + 1 >= running.len()) {
                    leaders.push((leader, is_leader));
                }
            }
            // One of them must be the leader, seeing every running peer current.
            let led = leaders.iter().any(|(_, is_leader)| *is_leader);
            let mut leaders: Vec<String> = leaders.into_iter().map(|(l, _)| l).collect();
            if let Ok(mut last) = seen.lock() {
                *last = view.join("; ");
            }
            let all = leaders.len() == running.len();
            leaders.dedup();
            Ok((all && led && leaders.len() == 1).then_some(()))
        })
        .await;
        result.map_err(|e| {
            let last = seen.lock().map(|s| s.clone()).unwrap_or_default();
            anyhow::anyhow!("{e} (last seen: {last}): {}", self.log_tails())
        })
    }

    fn log_tails(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{}: {}", n.node.name, n.process.log_tail()))
            .collect::<Vec<_>>()
            .join(" || ")
    }
}
