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
