//! A server for tests (this crate's and the client's): bound to 127.0.0.1:0, stopped on demand.

use std::net::SocketAddr;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Config, ServerError};

/// The defaults, but without flood control or connection caps: tests send fast on purpose.
pub fn config() -> Config {
    Config {
        flood_rate: 0.0,
        max_per_ip: usize::MAX,
        ..Config::default()
    }
}

/// A real server running in the current runtime.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The browser client's address, for a server started with [`TestServer::start_web`].
    pub web: Option<SocketAddr>,
    /// The IRC front end's address, for a server started with [`TestServer::start_irc`].
    pub irc: Option<SocketAddr>,
    /// The lab client's address, for a server started with [`TestServer::start_irc`].
    pub lab: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<(), ServerError>>,
}

impl TestServer {
    /// Starts a server with [`config`].
    pub async fn start() -> Self {
        Self::start_with(config()).await
    }

    pub async fn start_with(config: Config) -> Self {
        let listener = crate::bind("127.0.0.1:0".parse().expect("valid address"), 1024)
            .expect("bind 127.0.0.1:0");
        Self::start_on(vec![listener], config)
    }

    /// Starts a server on listeners the test bound; `addr` is the first one's.
    pub fn start_on(listeners: Vec<tokio::net::TcpListener>, config: Config) -> Self {
        Self::start_all(listeners, Vec::new(), config)
    }

    /// Starts a server that also serves the browser client ([`crate::web`]) on 127.0.0.1:0.
    pub async fn start_web(config: Config) -> Self {
        let any = "127.0.0.1:0".parse().expect("valid address");
        let chat = crate::bind(any, 1024).expect("bind 127.0.0.1:0");
        let web = crate::bind(any, 1024).expect("bind 127.0.0.1:0");
        Self::start_all(vec![chat], vec![web], config)
    }

    /// Starts a server with the browser client on the given addresses (a restart on the same ports).
    pub async fn start_web_at(chat: SocketAddr, web: SocketAddr, config: Config) -> Self {
        let chat = crate::bind(chat, 1024).expect("bind the chat address again");
        let web = crate::bind(web, 1024).expect("bind the web address again");
        Self::start_all(vec![chat], vec![web], config)
    }

    /// Starts a server that also serves IRC clients ([`crate::frontend::irc`]), the lab's client
    /// ([`crate::lab`]) and the browser client on 127.0.0.1:0: every way in at once.
    pub async fn start_irc(config: Config) -> Self {
        let any = "127.0.0.1:0".parse().expect("valid address");
        let bind = || crate::bind(any, 1024).expect("bind 127.0.0.1:0");
        let listeners = crate::Listeners {
            chat: vec![bind()],
            irc: vec![bind()],
            lab: vec![bind()],
            web: vec![bind()],
            ..Default::default()
        };
        Self::start_listeners(listeners, config)
    }

    fn start_all(
        listeners: Vec<tokio::net::TcpListener>,
        web: Vec<tokio::net::TcpListener>,
        config: Config,
    ) -> Self {
        let listeners = crate::Listeners {
            chat: listeners,
            web,
            ..Default::default()
        };
        Self::start_listeners(listeners, config)
    }

    fn start_listeners(listeners: crate::Listeners, config: Config) -> Self {
        let first = |l: &[tokio::net::TcpListener]| {
            l.first().map(|l| l.local_addr().expect("bound address"))
        };
        let addr = first(&listeners.chat).expect("a chat listener");
        let web = first(&listeners.web);
        let irc = first(&listeners.irc);
        let lab = first(&listeners.lab);
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(crate::run_all(listeners, config, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            web,
            irc,
            lab,
            stop: Some(stop),
            handle,
        }
    }

    /// Triggers shutdown and waits (at most 10 s) for the server to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(std::time::Duration::from_secs(10), &mut self.handle)
            .await
            .expect("server stops within 10 s")
            .expect("server task")
            .expect("server ran");
    }

    /// Waits (at most 10 s) for the server to stop by itself, and returns how it ended.
    pub async fn stopped(mut self) -> Result<(), ServerError> {
        tokio::time::timeout(std::time::Duration::from_secs(10), &mut self.handle)
            .await
            .expect("server stops within 10 s")
            .expect("server task")
    }
}

/// A `nats-server -js` on a free loopback port, stopped when dropped.
pub struct Nats {
    child: std::process::Child,
    addr: SocketAddr,
    pub url: String,
    dir: tempfile::TempDir,
}

impl Nats {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Self::spawn(addr, dir.path());
        Self {
            child,
            addr,
            url: format!("nats://{addr}"),
            dir,
        }
    }

    fn spawn(addr: SocketAddr, dir: &std::path::Path) -> std::process::Child {
        let child = std::process::Command::new("nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &addr.port().to_string(),
                "-js",
                "-sd",
            ])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server (Debian's nats-server package; ./test installs it)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child
    }

    /// Kills the server (SIGKILL): its clients see it vanish.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.child = Self::spawn(self.addr, self.dir.path());
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free at the moment.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Three `nats-server`s with JetStream, clustered, on free loopback ports (a stream made on them is
/// replicated on all three), stopped when dropped.
pub struct NatsCluster {
    servers: Vec<Option<std::process::Child>>,
    configs: Vec<std::path::PathBuf>,
    dirs: Vec<std::path::PathBuf>,
    addrs: Vec<SocketAddr>,
    /// The servers' monitoring ports (`/healthz`).
    monitors: Vec<SocketAddr>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, route)| format!("nats-route://127.0.0.1:{route}"))
            .collect();
        let mut cluster = Self {
            servers: Vec::new(),
            configs: Vec::new(),
            dirs: Vec::new(),
            addrs: Vec::new(),
            monitors: Vec::new(),
            _dir: dir,
        };
        for (i, (client, route)) in ports.iter().enumerate() {
            let config = cluster._dir.path().join(format!("nats-{i}.conf"));
            let monitor = SocketAddr::from(([127, 0, 0, 1], free_port()));
            cluster.monitors.push(monitor);
            let text = format!(
                "server_name: nats-{i}\nlisten: 127.0.0.1:{client}\nhttp: {monitor}\njetstream {{}}\n\
                 cluster {{\n  name: test\n  listen: 127.0.0.1:{route}\n  routes: [{}]\n}}\n",
                routes.join(", ")
            );
            std::fs::write(&config, text).expect("write a NATS config");
            cluster.configs.push(config);
            cluster
                .dirs
                .push(cluster._dir.path().join(format!("data-{i}")));
            cluster
                .addrs
                .push(SocketAddr::from(([127, 0, 0, 1], *client)));
        }
        for i in 0..3 {
            let child = cluster.spawn(i);
            cluster.servers.push(Some(child));
        }
        for i in 0..3 {
            cluster.wait_healthy(i);
        }
        cluster
    }

    /// Waits until server `i` says it is healthy: JetStream up, with a leader for the cluster.
    fn wait_healthy(&self, i: usize) {
        use std::io::{Read, Write};
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let answer = std::net::TcpStream::connect(self.monitors[i]).and_then(|mut s| {
                s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")?;
                let mut answer = String::new();
                s.read_to_string(&mut answer)?;
                Ok(answer)
            });
            if answer.is_ok_and(|a| a.starts_with("HTTP/1.0 200") || a.starts_with("HTTP/1.1 200"))
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server {i} never became healthy"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    fn spawn(&self, i: usize) -> std::process::Child {
        // NATTER_TEST_NATS_LOGS=DIR keeps the servers' debug logs there (DIR/PID-SERVER.log).
        let log = std::env::var_os("NATTER_TEST_NATS_LOGS").map(|dir| {
            let path = std::path::Path::new(&dir).join(format!("{}-{i}.log", std::process::id()));
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        });
        let child = std::process::Command::new("nats-server")
            .arg("-c")
            .arg(&self.configs[i])
            .arg("-sd")
            .arg(&self.dirs[i])
            .args(log.is_some().then_some("-D"))
            .stdout(std::process::Stdio::null())
            .stderr(log.map_or_else(std::process::Stdio::null, std::process::Stdio::from))
            .spawn()
            .expect("nats-server (Debian's nats-server package; ./test installs it)");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(self.addrs[i]).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child
    }

    /// Every server's URL, for `--cluster`.
    pub fn urls(&self) -> Vec<String> {
        self.addrs.iter().map(|a| format!("nats://{a}")).collect()
    }

    /// SIGKILLs server `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.servers[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `i` again, with its storage.
    pub fn restart(&mut self, i: usize) {
        let child = self.spawn(i);
        self.servers[i] = Some(child);
        self.wait_healthy(i);
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for child in self.servers.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
