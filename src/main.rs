//! `natter`: the one binary. It parses the command line and calls a library; nothing else lives here.
//!
//! * `natter serve` — run the chat server (natter-server).
//! * `natter join`  — join a server from a terminal or a script (natter-client).
//!
//! Every failure ends with one line on stderr and a non-zero exit code.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

mod config;

#[derive(Parser)]
#[command(
    name = "natter",
    version,
    about = "A small self-hosted chat server and terminal client"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the chat server.
    Serve(Box<ServeArgs>),
    /// Join a chat server.
    Join(JoinArgs),
    /// Share files with a room or a person (run again, it resumes an interrupted upload).
    Send(SendArgs),
    /// Download a shared file, verified (run again, it resumes what an earlier run left).
    Get(GetArgs),
    /// Look after the server's accounts, in its database (with the server running or not).
    Admin(AdminArgs),
    /// The config file: print a commented example with every key, or check one.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// How a running server is doing: version, uptime, connections, users, rooms, messages, database size.
    Status {
        /// The server (HOST:PORT; HOST alone means port 5500). Asked in plain text on its chat port.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:5500")]
        server: String,
        /// The answer as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// A cluster of natter nodes (`natter serve --cluster`): how it is doing.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// Write the man pages (natter.1 and one per subcommand, natter-serve.1, …) into DIR.
    Man { dir: std::path::PathBuf },
    /// Print the shell completions for SHELL (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Copy a server's history and keys into a new directory, while it runs.
    Backup {
        #[command(flatten)]
        place: DataPlace,
        /// The directory to make (it must not hold a backup yet).
        out: std::path::PathBuf,
    },
    /// Put a backup back into a stopped server's data directory.
    Restore {
        #[command(flatten)]
        place: DataPlace,
        /// Replace the database that is there.
        #[arg(long)]
        force: bool,
        /// The backup directory.
        from: std::path::PathBuf,
    },
    /// Measure a chat server (natter or IRC) from the outside. Run it as its own process.
    Bench {
        #[command(subcommand)]
        scenario: Scenario,
    },
}

#[derive(Subcommand)]
enum Scenario {
    /// C clients in one room, S senders at R msg/s each: throughput, loss, order, latency.
    Fanout(LoadArgs),
    /// Like fanout at a low rate, for latency: one sender at 200 msg/s into 100 clients by default.
    Latency(LoadArgs),
    /// Raise the rate by 1.4x per step until p99 passes a bound or anything is lost, then narrow down.
    Maxrate {
        #[command(flatten)]
        load: LoadArgs,
        /// The p99 latency bound, in milliseconds.
        #[arg(long, default_value_t = 100.0)]
        p99_ms: f64,
        /// Most steps of the ramp.
        #[arg(long, default_value_t = 15)]
        steps: usize,
        /// Extra steps halving the gap between the last rate that passed and the first that failed.
        #[arg(long, default_value_t = 2)]
        refine: usize,
    },
    /// Draw delivered/s and p99 against offered load from bench/compare.sh's JSON lines.
    Plot {
        /// The JSON lines file (bench/results/DATE-compare.json).
        json: std::path::PathBuf,
        /// The PNG to write.
        png: std::path::PathBuf,
    },
    /// The median of every scenario and server in a compare.sh JSON file, as a Markdown table.
    Summary {
        /// The JSON lines file (bench/results/DATE-compare.json).
        json: std::path::PathBuf,
    },
    /// A trivial relay (every line to every other client; nothing parsed or stored) to measure against:
    /// `--dialect lines`.
    Relay {
        #[arg(long, default_value = "127.0.0.1:5800")]
        listen: std::net::SocketAddr,
    },
    /// Shared files: a big file up and down against a raw loopback pipe, the server's memory, chat p99
    /// beside uploads, and many uploads at once (start the server with --user-quota 0).
    Files {
        #[arg(long, default_value = "127.0.0.1:5500")]
        server: String,
        /// The big file's size (K, M, G suffixes).
        #[arg(long, default_value = "1G", value_parser = natter_proto::file::parse_size)]
        size: u64,
        /// Scratch directory for the files (needs about three times --size).
        #[arg(long, default_value = "/tmp/natter-bench-files")]
        dir: std::path::PathBuf,
        /// The server's pid, for its memory.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Uploads at once, and the size of each.
        #[arg(long, default_value_t = 100)]
        concurrent: usize,
        #[arg(long, default_value = "10M", value_parser = natter_proto::file::parse_size)]
        concurrent_size: u64,
        /// Seconds of each chat latency run.
        #[arg(long, default_value_t = 10.0)]
        latency_seconds: f64,
        /// Pace the uploads beside the chat to this many MiB/s (default: as fast as they go).
        #[arg(long)]
        transfer_rate: Option<f64>,
        #[arg(long)]
        json: bool,
        /// Internal: be the uploader that runs beside the chat.
        #[arg(long, hide = true)]
        uploader: bool,
    },
    /// C idle registered clients in rooms of 100: server memory per connection.
    Conns {
        #[arg(long, default_value = "127.0.0.1:5500")]
        server: String,
        #[arg(long, value_enum, default_value_t = BenchDialect::Native)]
        dialect: BenchDialect,
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Connections opened at once.
        #[arg(long, default_value_t = 50)]
        batch: usize,
        /// The server's process id, to read its memory.
        #[arg(long)]
        server_pid: Option<u32>,
        /// Generator processes to spread the clients over (one process holds at most ~19,900 sockets).
        #[arg(long, default_value_t = 1)]
        procs: usize,
        /// Prefix of client and room names, so several generators can share one server.
        #[arg(long, default_value = "")]
        prefix: String,
        /// natter clients say a plain `hello`, so they are in the lobby too (the default configuration)
        /// instead of only in their room.
        #[arg(long)]
        lobby: bool,
        /// Seconds to wait after the last registration before reading the server's memory.
        #[arg(long, default_value_t = 1.0)]
        settle: f64,
        /// Run as one of the generator processes of `--procs`: connect, report on stdout, hold the
        /// clients until stdin closes.
        #[arg(long, hide = true)]
        child: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Clone)]
struct LoadArgs {
    /// The server, or a cluster's nodes comma-separated (the clients spread evenly over them).
    #[arg(long, default_value = "127.0.0.1:5500")]
    server: String,
    #[arg(long, value_enum, default_value_t = BenchDialect::Native)]
    dialect: BenchDialect,
    /// Clients in the room.
    #[arg(long)]
    clients: Option<usize>,
    /// How many of them send.
    #[arg(long)]
    senders: Option<usize>,
    /// Messages per second per sender.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds of sending.
    #[arg(long)]
    duration: Option<f64>,
    /// Room (channel) name, without '#' (with --room-size, the rooms' prefix).
    #[arg(long, default_value = "bench")]
    room: String,
    /// Rooms of this many clients instead of one room (the senders spread over them).
    #[arg(long)]
    room_size: Option<usize>,
    /// Connections opened at once while setting up (ngIRCd wants about 8).
    #[arg(long, default_value_t = 50)]
    connect_batch: usize,
    /// The server's process id, to report its CPU use.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BenchDialect {
    Native,
    Irc,
    /// Plain text lines (ncat --chat, or natter's plain-text mode).
    Lines,
}

#[derive(Args)]
struct ServeArgs {
    /// Settings file (TOML; every flag is a key). Default: ~/.config/natter/natter.toml if it exists.
    /// Flags and NATTER_… variables beat it.
    #[arg(long, value_name = "FILE", env = "NATTER_CONFIG")]
    config: Option<std::path::PathBuf>,
    /// Address to listen on; repeat for several. Use 0.0.0.0:5500 to open the server to your LAN.
    #[arg(long = "listen", value_name = "ADDR", default_value = "127.0.0.1:5500")]
    listen: Vec<SocketAddr>,
    /// Largest frame accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = natter_proto::DEFAULT_MAX_FRAME)]
    max_frame: usize,
    /// Largest message text accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = natter_proto::text::DEFAULT_MAX_TEXT)]
    max_text: usize,
    /// Bytes queued for one client before it is disconnected as too slow.
    #[arg(long, value_name = "BYTES", default_value_t = natter_server::Config::default().max_outbox)]
    max_outbox: usize,
    /// Where the server keeps everything of its own (the database, its TLS certificate, later files).
    /// Default: the platform data directory (~/.local/share/natter on Linux).
    #[arg(long, value_name = "DIR", env = "NATTER_DATA_DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// TLS certificate chain (PEM) for the chat port. Default: a self-signed one made on first start and
    /// kept in the data directory (clients trust it on first use).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Refuse plain text from other machines: they must use TLS (this machine may still use nc).
    #[arg(long)]
    require_tls: bool,
    /// Release owned names unused for this many days, with their private history; 0: never.
    #[arg(long, value_name = "DAYS", default_value_t = 180)]
    name_expiry_days: u32,
    /// Serve the browser client (the page and its WebSocket) at this address, or `none`. Default:
    /// 127.0.0.1:8080 (skipped with a warning if that port is taken). HTTPS with the chat port's
    /// certificate beyond this machine (0.0.0.0:8080 opens it to your LAN); plain HTTP on loopback.
    #[arg(long, value_name = "ADDR|none")]
    web: Option<String>,
    /// Serve IRC clients (irssi, WeeChat, bots) at this address, or `none`. Default: 127.0.0.1:6667
    /// (skipped with a warning if that port is taken). A TLS handshake is accepted on it too.
    #[arg(long, value_name = "ADDR|none")]
    irc: Option<String>,
    /// Also serve IRC at this address for clients that start with TLS (the usual port is 6697), with
    /// the chat port's certificate.
    #[arg(long, value_name = "ADDR")]
    irc_tls: Option<SocketAddr>,
    /// The fewest characters a password may have.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    password_min_chars: u16,
    /// The server's name as IRC clients see it (in 001, 004 and PONG).
    #[arg(long, value_name = "NAME", default_value = "natter")]
    irc_server_name: String,
    /// Serve the lab's own client (the unframed Windows console program natter grew from) at this
    /// address: its own port, since an unframed protocol cannot be told apart from others. Off by default.
    #[arg(long, value_name = "ADDR")]
    lab: Option<SocketAddr>,
    /// A text file whose lines IRC clients get as the message of the day.
    #[arg(long, value_name = "FILE")]
    irc_motd: Option<std::path::PathBuf>,
    /// Where shared files are kept. Default: files/ in the data directory.
    #[arg(long, value_name = "DIR")]
    files_dir: Option<std::path::PathBuf>,
    /// Largest file that can be shared (K, M, G suffixes: powers of 1024); 0 turns file sharing off.
    #[arg(long, value_name = "SIZE", default_value = "1G", value_parser = natter_proto::file::parse_size)]
    max_file_size: u64,
    /// Most bytes of files one user may have shared at once (older ones expire); 0: no limit.
    #[arg(long, value_name = "SIZE", default_value = "5G", value_parser = natter_proto::file::parse_size)]
    user_quota: u64,
    /// Most bytes of files the server keeps in all; 0: only the disk limits it.
    #[arg(long, value_name = "SIZE", default_value = "0", value_parser = natter_proto::file::parse_size)]
    files_max: u64,
    /// Keep shared files this many days (their messages stay, marked expired); 0: forever.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    file_days: u32,
    /// History database file, or :memory: to keep history only while the server runs.
    /// Default: natter.db in the data directory.
    #[arg(long, value_name = "PATH")]
    db: Option<String>,
    /// Recent messages per room replayed on hello and join.
    #[arg(long, value_name = "N", default_value_t = 50)]
    replay: usize,
    /// Delete history older than this many days.
    #[arg(long, value_name = "DAYS")]
    history_days: Option<u32>,
    /// Keep at most this many messages of history.
    #[arg(long, value_name = "N")]
    history_max: Option<u64>,
    /// Never let the history file grow past this many MiB (sends fail with server_error when full).
    #[arg(long, value_name = "MIB")]
    db_max_mb: Option<u64>,
    /// Frames a client may send in a burst before flood control paces it.
    #[arg(long, value_name = "N", default_value_t = natter_server::Config::default().flood_burst)]
    flood_burst: u32,
    /// Frames per second a client may send after its burst; 0 turns flood control off.
    #[arg(long, value_name = "PER_SEC", default_value_t = natter_server::Config::default().flood_rate)]
    flood_rate: f64,
    /// Bytes of a client's frames that may wait for its flood budget before it is disconnected.
    #[arg(long, value_name = "BYTES", default_value_t = natter_server::Config::default().max_recvq)]
    max_recvq: usize,
    /// Seconds of silence after which a client is disconnected (it is pinged halfway); 0 turns this off.
    #[arg(long, value_name = "SECS", default_value_t = natter_server::Config::default().idle_timeout.as_secs_f64())]
    idle_timeout: f64,
    /// Seconds a new connection has to say hello.
    #[arg(long, value_name = "SECS", default_value_t = natter_server::Config::default().hello_timeout.as_secs_f64())]
    hello_timeout: f64,
    /// Connections accepted at once.
    #[arg(long, value_name = "N", default_value_t = natter_server::Config::default().max_clients)]
    max_clients: usize,
    /// Connections accepted at once from one IP address.
    #[arg(long, value_name = "N", default_value_t = natter_server::Config::default().max_per_ip)]
    max_per_ip: usize,
    /// Rooms one user may be in at once (the lobby counts).
    #[arg(long, value_name = "N", default_value_t = natter_server::Config::default().max_rooms)]
    max_rooms: usize,
    /// Rooms with more members than this announce no individual joins and leaves (`/who` lists everyone).
    #[arg(long, value_name = "N", default_value_t = natter_server::Config::default().announce_limit)]
    announce_limit: usize,
    /// Listen backlog (pending connections the kernel queues).
    #[arg(long, value_name = "N", default_value_t = natter_server::Config::default().backlog)]
    backlog: u32,
    /// A reverse proxy in front of natter (repeat for several): connections from it start with a PROXY
    /// protocol header (v1 or v2; chat, IRC and lab ports) and WebSockets through it carry
    /// X-Forwarded-For, naming the client whose address limits, bans and throttles apply to.
    #[arg(long, value_name = "ADDR")]
    trusted_proxy: Vec<std::net::IpAddr>,
    /// Join a cluster: the NATS servers (JetStream) whose stream is the message log shared by every
    /// node, e.g. nats://127.0.0.1:4222 (comma-separated for several). Without it natter keeps its log
    /// in SQLite alone.
    #[arg(long, value_name = "NATS_URLS")]
    cluster: Option<String>,
    /// The cluster's stream (its subjects are NAME.>).
    #[arg(long, value_name = "NAME", default_value = "natter")]
    cluster_stream: String,
    /// Where Prometheus scrapes `/metrics` (and `/healthz`): `web` (the browser client's listener),
    /// an address of its own (plain HTTP, e.g. 127.0.0.1:9500), or `off` (nothing is counted).
    #[arg(long, value_name = "web|ADDR|off", default_value = "web", value_parser = metrics_place)]
    metrics: String,
    /// Also log every message, in the lab's server-console style.
    #[arg(short, long)]
    verbose: bool,
    /// What to log: error, warn, info, debug or trace, or a filter such as `info,natter_server=debug`.
    /// Default: info (RUST_LOG, if set, wins).
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Log lines as text or as JSON objects (one per line, for log collectors).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Language of what the server says to plain-text (nc) users until their /lang: en or zh-CN.
    /// Default: from LC_ALL, LC_MESSAGES or LANG.
    #[arg(long, value_name = "LANG")]
    lang: Option<natter_i18n::Lang>,
}

#[derive(Args)]
struct JoinArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Words given without a flag: answered with a hint instead of clap's bare error.
    #[arg(hide = true)]
    stray: Vec<String>,
    /// Plain line mode even on a terminal.
    #[arg(long)]
    plain: bool,
    /// Timestamps in the full-screen client: short [HH:MM:SS] or full [YYYY-MM-DD HH:MM:SS].
    #[arg(long, value_enum, default_value_t = Timestamps::Short)]
    timestamps: Timestamps,
    /// Ring the terminal bell when someone mentions your name.
    #[arg(long)]
    bell: bool,
}

/// How `natter join`, `natter send` and `natter get` reach the server.
#[derive(Args)]
struct ConnectArgs {
    /// Server to join, as HOST:PORT (HOST alone means port 5500).
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:5500")]
    server: String,
    /// Your name (asked for when missing).
    #[arg(long)]
    name: Option<String>,
    /// Seconds to wait for the server to accept and answer before giving up (or retrying).
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
    /// Language of everything natter says: en or zh-CN. Default: from LC_ALL, LC_MESSAGES or LANG.
    #[arg(long, value_name = "LANG")]
    lang: Option<natter_i18n::Lang>,
    /// Where the key that makes your name yours is kept (default: ~/.local/share/natter).
    #[arg(long, value_name = "DIR", env = "NATTER_DATA_DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// Join as a guest: no key, so the name is not kept for you (and cannot be one somebody owns).
    #[arg(long)]
    guest: bool,
    /// Plain text, no TLS (anyone on the network can read it; for servers that do not speak TLS).
    #[arg(long)]
    no_tls: bool,
    /// Trust only the server certificate with this fingerprint (SHA256:…, as `natter serve` prints it).
    #[arg(long, value_name = "SHA256:…")]
    fingerprint: Option<String>,
    /// Where downloads go (default: your Downloads folder).
    #[arg(long, value_name = "DIR")]
    downloads: Option<std::path::PathBuf>,
}

#[derive(Args)]
struct SendArgs {
    /// The files to share.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<std::path::PathBuf>,
    /// Share privately with this person.
    #[arg(long, value_name = "NAME", conflicts_with = "room")]
    to: Option<String>,
    /// Share with this room (default: lobby).
    #[arg(long, value_name = "ROOM")]
    room: Option<String>,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Args)]
struct GetArgs {
    /// The file's number, as its message shows it (/get 17).
    id: u64,
    /// Where to write it (default: into the downloads directory, never overwriting).
    #[arg(short, long, value_name = "PATH")]
    output: Option<std::path::PathBuf>,
    #[command(flatten)]
    connect: ConnectArgs,
}

impl ConnectArgs {
    /// The options as the client takes them.
    fn options(self) -> natter_client::LineOptions {
        let data_dir = self
            .data_dir
            .or_else(natter_client::identity::default_data_dir);
        natter_client::LineOptions {
            server: self.server,
            name: self.name,
            force_plain: false,
            answer_timeout: std::time::Duration::try_from_secs_f64(self.timeout)
                .unwrap_or(std::time::Duration::from_secs(10)),
            tls: natter_client::tls::TlsOptions {
                off: self.no_tls,
                pin: self.fingerprint,
                known_servers: data_dir
                    .clone()
                    .map(|dir| dir.join(natter_client::tls::KNOWN_SERVERS)),
                same_server: Vec::new(),
            },
            data_dir: match self.guest {
                true => None,
                false => data_dir,
            },
            tui: natter_client::tui::app::Options {
                stamps: natter_client::tui::app::Stamps::Short,
                bell: false,
            },
            downloads: self
                .downloads
                .unwrap_or_else(natter_client::transfer::default_downloads),
        }
    }
}

#[derive(Subcommand)]
enum ClusterAction {
    /// The stream (messages, its NATS leader and replicas), the nodes (their users, how far they have
    /// read) and the names online.
    Status {
        /// The cluster's NATS servers, as the nodes' --cluster.
        #[arg(long, value_name = "NATS_URLS", env = "NATTER_CLUSTER")]
        cluster: String,
        /// The cluster's stream, as the nodes' --cluster-stream.
        #[arg(long, value_name = "NAME", default_value = "natter")]
        cluster_stream: String,
        /// The answer as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print a complete commented config file with every default.
    Example,
    /// Check a config file: every key known, every value good.
    Check { file: std::path::PathBuf },
    /// Every key as a Markdown table (docs/OPERATIONS.md).
    #[command(hide = true)]
    Reference,
}

/// Where a server keeps its files.
#[derive(Args)]
struct DataPlace {
    /// The server's data directory (its database is natter.db there).
    #[arg(long, value_name = "DIR", env = "NATTER_DATA_DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// The database file itself, if it is elsewhere.
    #[arg(long, value_name = "PATH")]
    db: Option<std::path::PathBuf>,
    /// The server's config file: its `data-dir` and `db` (the flags above beat it), e.g.
    /// /etc/natter/natter.toml for the system service.
    #[arg(long, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
}

/// The server's data directory: the one given, else the platform's (`~/.local/share/natter`).
fn data_dir(given: Option<&std::path::Path>) -> Result<std::path::PathBuf, String> {
    match given {
        Some(dir) => Ok(dir.to_owned()),
        None => natter_server::default_db_path()
            .and_then(|db| db.parent().map(|d| d.to_owned()))
            .ok_or_else(|| {
                "no data directory found for the server's files; pass --data-dir DIR".into()
            }),
    }
}

impl DataPlace {
    /// The data directory and the database path.
    fn resolve(&self) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
        let (file_dir, file_db) = match &self.config {
            Some(path) => config::data_place(path)?,
            None => (None, None),
        };
        let dir = data_dir(self.data_dir.as_deref().or(file_dir.as_deref()))?;
        let db = self
            .db
            .clone()
            .or(file_db)
            .unwrap_or_else(|| dir.join("natter.db"));
        Ok((dir, db))
    }
}

#[derive(Args)]
struct AdminArgs {
    #[command(flatten)]
    place: DataPlace,
    /// A cluster's NATS servers: the change goes to the cluster's stream and every node applies it
    /// (`list` still reads the local database, any node's will do).
    #[arg(long, value_name = "NATS_URLS", env = "NATTER_CLUSTER")]
    cluster: Option<String>,
    /// The cluster's stream, as the nodes' --cluster-stream.
    #[arg(long, value_name = "NAME", default_value = "natter")]
    cluster_stream: String,
    #[command(subcommand)]
    action: AdminAction,
}

#[derive(Subcommand)]
enum AdminAction {
    /// List the owned names.
    List,
    /// Release a name: its account, keys and private history are deleted; anyone may use it again.
    Release { name: String },
    /// Replace a name's password with a one-time code (printed), for an owner who lost theirs.
    ResetPassword { name: String },
    /// Make a name's owner a server admin.
    GrantAdmin { name: String },
    /// Make a name's owner no longer a server admin.
    RevokeAdmin { name: String },
    /// Ban a name server-wide: nobody may use it.
    Ban { name: String },
    /// Lift a name's ban.
    Unban { name: String },
    /// Refuse every connection from an address.
    BanAddress { address: std::net::IpAddr },
    /// Lift an address's ban.
    UnbanAddress { address: std::net::IpAddr },
    /// Release the names unused for DAYS (the server does this by itself every hour).
    Expire {
        #[arg(long, default_value_t = 180)]
        days: u32,
        /// Pretend it is this moment (RFC 3339), e.g. to see what a date would release.
        #[arg(long, value_name = "TIME")]
        now: Option<jiff::Timestamp>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Timestamps {
    Short,
    Full,
}

fn main() -> ExitCode {
    // The client's language, known before the command line is parsed so `natter join --help` speaks it
    // too; everything the client says from here on is in it (`/lang` changes it).
    natter_i18n::set_lang(
        lang_from_args(std::env::args()).unwrap_or_else(natter_i18n::Lang::from_env),
    );
    let matches = command_line().get_matches();
    let matches = match with_config_file(matches) {
        Ok(matches) => matches,
        Err(message) => return fail(message),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // History reads run on blocking threads; a handful is plenty (they share SQLite), and each thread that
    // exists costs memory, so cap them well below tokio's default of 512.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(16)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(format!("cannot start the runtime: {e}")),
    };
    let result = match cli.command {
        Cmd::Serve(args) => {
            let serve_matches = matches
                .subcommand_matches("serve")
                .cloned()
                .unwrap_or_default();
            runtime.block_on(serve(*args, serve_matches))
        }
        Cmd::Bench { scenario } => runtime.block_on(bench(scenario)),
        Cmd::Admin(args) if args.cluster.is_some() && !matches!(args.action, AdminAction::List) => {
            runtime.block_on(admin_in_cluster(args))
        }
        Cmd::Admin(args) => admin(args),
        Cmd::Man { dir } => man_pages(&dir),
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut command_line(), "natter", &mut std::io::stdout());
            Ok(())
        }
        Cmd::Status { server, json } => runtime.block_on(status(&server, json)),
        Cmd::Cluster {
            action:
                ClusterAction::Status {
                    cluster,
                    cluster_stream,
                    json,
                },
        } => runtime.block_on(cluster_status(&cluster, cluster_stream, json)),
        Cmd::Config { action } => {
            let cli = command_line();
            let serve = cli.find_subcommand("serve").expect("serve exists");
            match action {
                ConfigAction::Example => {
                    print!("{}", config::example(serve));
                    Ok(())
                }
                ConfigAction::Reference => {
                    let live = [natter_server::LIVE_KEYS, LOG_KEYS].concat();
                    print!("{}", config::reference(serve, &live));
                    Ok(())
                }
                ConfigAction::Check { file } => {
                    let none = serve.clone().get_matches_from(["serve"]);
                    config::file_args(&file, serve, &none)
                        .and_then(|args| {
                            let argv = ["natter", "serve"].map(std::ffi::OsString::from);
                            command_line()
                                .try_get_matches_from(argv.into_iter().chain(args))
                                .map_err(|e| config::refusal(&file, &e))
                        })
                        .map(|_| println!("{}: ok", file.display()))
                }
            }
        }
        Cmd::Backup { place, out } => place.resolve().and_then(|(dir, db)| {
            if !db.exists() {
                return Err(format!("no natter database at {}", db.display()));
            }
            let last = natter_server::store::backup::backup(&db, Some(&dir), &out)
                .map_err(|e| e.to_string())?;
            println!(
                "backed up {} (history up to seq {last}) into {}",
                db.display(),
                out.display()
            );
            Ok(())
        }),
        Cmd::Restore { place, force, from } => place.resolve().and_then(|(dir, db)| {
            let last = natter_server::store::backup::restore(&from, &db, &dir, force)
                .map_err(|e| e.to_string())?;
            println!(
                "restored {} (history up to seq {last}) into {}",
                from.display(),
                db.display()
            );
            Ok(())
        }),
        Cmd::Join(args) if !args.stray.is_empty() => Err(natter_i18n::t!(
            "error-stray-words",
            words = format!("{:?}", args.stray.join(" ")),
            first = &args.stray[0]
        )),
        Cmd::Join(args) => {
            let mut options = args.connect.options();
            options.force_plain = args.plain;
            options.tui = natter_client::tui::app::Options {
                stamps: match args.timestamps {
                    Timestamps::Short => natter_client::tui::app::Stamps::Short,
                    Timestamps::Full => natter_client::tui::app::Stamps::Full,
                },
                bell: args.bell,
            };
            runtime
                .block_on(natter_client::run_join(options))
                .map_err(|e| e.to_string())
        }
        Cmd::Send(args) => runtime
            .block_on(natter_client::cli::run_send(
                args.connect.options(),
                args.files,
                args.room,
                args.to,
            ))
            .map_err(|e| e.to_string()),
        Cmd::Get(args) => runtime
            .block_on(natter_client::cli::run_get(
                args.connect.options(),
                args.id,
                args.output,
            ))
            .map_err(|e| e.to_string()),
    };
    // Don't wait for a blocked stdin reader or a prompt thread on the way out.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(message),
    }
}

fn dialect(d: BenchDialect) -> natter_bench::Dialect {
    match d {
        BenchDialect::Native => natter_bench::Dialect::Native,
        BenchDialect::Irc => natter_bench::Dialect::Irc,
        BenchDialect::Lines => natter_bench::Dialect::Lines,
    }
}

fn load(args: &LoadArgs, defaults: (usize, usize, f64, f64)) -> natter_bench::FanoutOptions {
    natter_bench::FanoutOptions {
        server: args.server.clone(),
        dialect: dialect(args.dialect),
        clients: args.clients.unwrap_or(defaults.0),
        senders: args.senders.unwrap_or(defaults.1),
        rate: args.rate.unwrap_or(defaults.2),
        duration: std::time::Duration::from_secs_f64(args.duration.unwrap_or(defaults.3)),
        room: args.room.clone(),
        room_size: args.room_size,
        connect_batch: args.connect_batch,
        server_pid: args.server_pid,
    }
}

fn print_fanout(r: &natter_bench::FanoutReport, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    println!(
        "{:?} C={} S={} offered {:.0} msg/s: {} of {} delivered ({:.0}/s), lost {}, dup {}, out of order {}, cut {}; \
latency p50 {} us, p90 {} us, p99 {} us, max {} us; generator {:.2} cores{}",
        r.dialect,
        r.clients,
        r.senders,
        r.offered,
        r.delivered,
        r.expected,
        r.deliveries_per_sec,
        r.lost,
        r.duplicates,
        r.out_of_order,
        r.cut,
        r.latency.p50_us,
        r.latency.p90_us,
        r.latency.p99_us,
        r.latency.max_us,
        r.generator_cpu,
        r.server_cpu.map(|c| format!(", server {c:.2} cores")).unwrap_or_default()
    );
}

async fn bench(scenario: Scenario) -> Result<(), String> {
    match scenario {
        Scenario::Fanout(args) => {
            let r = natter_bench::fanout(&load(&args, (100, 10, 100.0, 5.0)))
                .await
                .map_err(|e| e.to_string())?;
            print_fanout(&r, args.json);
        }
        Scenario::Latency(args) => {
            let r = natter_bench::fanout(&load(&args, (100, 1, 200.0, 10.0)))
                .await
                .map_err(|e| e.to_string())?;
            print_fanout(&r, args.json);
        }
        Scenario::Maxrate {
            load: args,
            p99_ms,
            steps,
            refine,
        } => {
            let opts = load(&args, (100, 10, 200.0, 3.0));
            let r = natter_bench::maxrate::maxrate(&opts, (p99_ms * 1000.0) as u64, steps, refine)
                .await
                .map_err(|e| e.to_string())?;
            match (&r.sustained, args.json) {
                (_, true) => println!("{}", serde_json::to_string(&r).unwrap_or_default()),
                (Some(best), false) => {
                    println!("max sustained (p99 <= {p99_ms} ms, nothing lost):");
                    print_fanout(best, false);
                }
                (None, false) => println!("even the first step missed the bound"),
            }
        }
        Scenario::Summary { json } => {
            let lines = std::fs::read_to_string(&json)
                .map_err(|e| format!("cannot read {}: {e}", json.display()))?;
            print!("{}", natter_bench::summary::table(&lines));
        }
        Scenario::Plot { json, png } => {
            let lines = std::fs::read_to_string(&json)
                .map_err(|e| format!("cannot read {}: {e}", json.display()))?;
            natter_bench::plot::draw(&natter_bench::plot::read(&lines), &png)?;
            println!("wrote {}", png.display());
        }
        Scenario::Relay { listen } => {
            let listener = natter_server::bind(listen, 1024)
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            println!(
                "relaying on {}",
                listener.local_addr().map_err(|e| e.to_string())?
            );
            natter_bench::relay::run(listener)
                .await
                .map_err(|e| e.to_string())?;
        }
        Scenario::Files {
            server,
            size,
            dir,
            server_pid,
            concurrent,
            concurrent_size,
            latency_seconds,
            transfer_rate,
            json,
            uploader,
        } => {
            if uploader {
                return natter_bench::files::uploader(
                    &natter_client::net::with_port(&server),
                    &dir,
                    transfer_rate,
                )
                .await
                .map_err(|e| e.to_string());
            }
            let opts = natter_bench::files::FilesOptions {
                server: natter_client::net::with_port(&server),
                size,
                dir,
                server_pid,
                concurrent,
                concurrent_size,
                latency_duration: std::time::Duration::from_secs_f64(latency_seconds.max(1.0)),
                transfer_rate,
            };
            let r = natter_bench::files::files(&opts)
                .await
                .map_err(|e| e.to_string())?;
            if json {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
            } else {
                let mib = |b: Option<f64>| b.map_or("?".to_owned(), |b| format!("{b:.1} MiB"));
                println!(
                    "{} MiB: raw pipe {:.0} MiB/s; upload {:.0} MiB/s ({:.0}% of raw); download {:.0} MiB/s ({:.0}% of raw)",
                    r.size >> 20,
                    r.raw_pipe.mib_per_s,
                    r.upload.mib_per_s,
                    r.upload.of_raw * 100.0,
                    r.download.mib_per_s,
                    r.download.of_raw * 100.0
                );
                println!(
                    "server RSS {} before, {} at its peak during the transfers",
                    mib(r.server_rss_before_mib),
                    mib(r.server_rss_peak_mib)
                );
                println!(
                    "chat p99 (200 msg/s, 100 members): {:.2} ms alone, {:.2} ms beside uploads at {:.0} MiB/s ({} lost)",
                    r.chat_p99_alone_us as f64 / 1000.0,
                    r.chat_p99_with_transfer_us as f64 / 1000.0,
                    r.transfer_mib_per_s_during_chat,
                    r.chat_lost_with_transfer
                );
                println!(
                    "{} uploads of {} MiB at once: {} verified in {:.1} s",
                    r.concurrent_uploads,
                    r.concurrent_size >> 20,
                    r.concurrent_verified,
                    r.concurrent_seconds
                );
            }
        }
        Scenario::Conns {
            server,
            dialect: d,
            clients,
            batch,
            server_pid,
            procs,
            prefix,
            lobby,
            settle,
            child,
            json,
        } => {
            let opts = natter_bench::conns::ConnsOptions {
                server,
                dialect: dialect(d),
                clients,
                batch,
                server_pid,
                procs,
                prefix,
                progress: !child,
                lobby,
                settle,
            };
            if child {
                return natter_bench::conns::child(&opts)
                    .await
                    .map_err(|e| e.to_string());
            }
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot find this program to start generators: {e}"))?;
            let r = natter_bench::conns::conns(&opts, &exe)
                .await
                .map_err(|e| e.to_string())?;
            if json {
                println!("{}", serde_json::to_string(&r).unwrap_or_default());
            } else {
                println!(
                    "{} idle clients{} ({} generator processes) connected in {:.2} s; server RSS {:?} -> {:?} KiB; {:?} bytes per connection",
                    r.clients, if r.lobby { " (also in the lobby)" } else { "" }, r.procs, r.connect_seconds, r.server_rss_before_kib, r.server_rss_after_kib, r.rss_per_connection_bytes
                );
            }
        }
    }
    Ok(())
}

/// For `natter serve`: the settings of its config file (`--config`, `NATTER_CONFIG`, or the default
/// one) under what the command line and environment set.
fn with_config_file(matches: clap::ArgMatches) -> Result<clap::ArgMatches, String> {
    let Some(("serve", serve)) = matches.subcommand() else {
        return Ok(matches);
    };
    let path = match serve.get_one::<std::path::PathBuf>("config") {
        Some(path) => path.clone(),
        None => match config::default_path() {
            Some(path) => path,
            None => return Ok(matches),
        },
    };
    let cli = command_line();
    let serve_cmd = cli.find_subcommand("serve").expect("serve exists");
    let extra = config::file_args(&path, serve_cmd, serve)?;
    let argv = std::env::args_os().chain(extra);
    command_line()
        .try_get_matches_from(argv)
        .map_err(|e| config::refusal(&path, &e))
}

/// The command line's definition: `natter join`'s help in the client's language, and every `serve` flag
/// also read from a `NATTER_…` environment variable (`--max-clients`: `NATTER_MAX_CLIENTS`).
fn command_line() -> clap::Command {
    translated_help(Cli::command()).mut_subcommand("serve", |serve| {
        let ids: Vec<String> = serve
            .get_arguments()
            .filter(|a| a.get_env().is_none() && a.get_long().is_some())
            .filter(|a| !config::NOT_KEYS.contains(&a.get_id().as_str()))
            .map(|a| a.get_id().to_string())
            .collect();
        ids.into_iter().fold(serve, |serve, id| {
            serve.mut_arg(&id, |a| {
                let long = a.get_long().unwrap_or_default().to_owned();
                a.env(format!("NATTER_{}", long.to_uppercase().replace('-', "_")))
            })
        })
    })
}

/// `--lang TAG` or `--lang=TAG` anywhere on the command line.
fn lang_from_args(args: impl Iterator<Item = String>) -> Option<natter_i18n::Lang> {
    let args: Vec<String> = args.collect();
    args.iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--lang") {
            Some("") => args.get(i + 1).and_then(|t| natter_i18n::Lang::parse(t)),
            Some(rest) => rest.strip_prefix('=').and_then(natter_i18n::Lang::parse),
            None => None,
        })
}

/// `natter join`'s help in the client's language: its description and every option's, from the catalogue
/// (`help-cli-join-OPTION`). The server's and the bench's help are for operators and stay in English.
fn translated_help(cli: clap::Command) -> clap::Command {
    use natter_i18n::t;
    ["join", "send", "get"].into_iter().fold(cli, |cli, sub| {
        cli.mut_subcommand(sub, |cmd| {
            let ids: Vec<String> = cmd
                .get_arguments()
                .filter(|a| !a.is_hide_set())
                .map(|a| a.get_id().to_string())
                .collect();
            let about = t!(format!("help-cli-{sub}").as_str());
            ids.into_iter().fold(cmd.about(about), |cmd, id| {
                // `send` and `get` share `join`'s connection options, and their words.
                let key = [
                    format!("help-cli-{sub}-{id}"),
                    format!("help-cli-join-{id}"),
                ]
                .into_iter()
                .find(|key| natter_i18n::has(natter_i18n::Lang::En, key));
                let Some(key) = key else {
                    return cmd; // clap's own (--help): a test keeps natter's options covered
                };
                let text = natter_i18n::text(natter_i18n::lang(), &key, &[]);
                cmd.mut_arg(id, |a| a.help(text))
            })
        })
    })
}

/// `natter man DIR`: the man pages, from the same definitions as `--help`.
fn man_pages(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    clap_mangen::generate_to(command_line(), dir)
        .map_err(|e| format!("cannot write the man pages into {}: {e}", dir.display()))
}

/// `natter status`: asks the server on its chat port (`status` works before `hello`).
async fn status(server: &str, json: bool) -> Result<(), String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let addr = natter_client::net::with_port(server);
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        stream
            .write_all(b"{\"type\":\"status\"}\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        tokio::io::BufReader::new(stream)
            .read_line(&mut line)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(line)
    };
    let line = tokio::time::timeout(std::time::Duration::from_secs(10), ask)
        .await
        .map_err(|_| format!("{addr} did not answer within 10 s"))??;
    let frame: natter_proto::ServerFrame = serde_json::from_str(&line)
        .map_err(|_| format!("{addr} answered, but not as a natter server"))?;
    let natter_proto::ServerFrame::Status {
        version,
        uptime_s,
        connections,
        users,
        rooms,
        last_seq,
        db_bytes,
        last_error,
    } = frame
    else {
        return Err(format!("{addr} does not answer status (an older natter?)"));
    };
    if json {
        println!("{}", line.trim());
        return Ok(());
    }
    let total: usize = connections.values().sum();
    let by: Vec<String> = connections
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    println!("natter {version} at {addr}, up {}", uptime(uptime_s));
    println!(
        "connections: {total} ({}; this one included)",
        by.join(", ")
    );
    println!("signed in: {users}; rooms: {rooms}; messages stored: {last_seq}");
    match db_bytes {
        Some(bytes) => println!("history database: {:.1} MiB", bytes as f64 / 1048576.0),
        None => println!("history database: in memory"),
    }
    match last_error {
        Some(e) => println!(
            "last error: {} at {}",
            e.text,
            natter_proto::time::local_display_wire(&e.at)
        ),
        None => println!("last error: none"),
    }
    Ok(())
}

/// `natter cluster status`: asks the cluster's NATS.
async fn cluster_status(urls: &str, stream: String, json: bool) -> Result<(), String> {
    let config = natter_server::cluster::ClusterConfig {
        urls: urls.split(',').map(|u| u.trim().to_owned()).collect(),
        stream,
    };
    let status = natter_server::cluster::status(&config)
        .await
        .map_err(|e| e.to_string())?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&status).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    let replicas: Vec<String> = status
        .replicas
        .iter()
        .map(|(name, current, lag)| match (current, lag) {
            (true, _) => format!("{name} (current)"),
            (false, Some(lag)) => format!("{name} ({lag} behind)"),
            (false, None) => format!("{name} (not current)"),
        })
        .collect();
    println!(
        "stream {}: {} messages (seq {}–{}); leader {}{}",
        status.stream,
        status.messages,
        status.first_seq,
        status.last_seq,
        status.leader.as_deref().unwrap_or("none"),
        if replicas.is_empty() {
            String::new()
        } else {
            format!(", replicas {}", replicas.join(", "))
        }
    );
    println!("nodes: {}", status.nodes.len());
    for node in &status.nodes {
        println!(
            "  {}: {} signed in, read up to seq {} ({} behind)",
            node.node,
            node.users,
            node.applied,
            status.last_seq.saturating_sub(node.applied)
        );
    }
    println!("names online: {}", status.names);
    Ok(())
}

/// `3d 4h`, `5h 2m`, `42s`.
fn uptime(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, m) => format!("{m}m {}s", secs % 60),
        (0, h, m) => format!("{h}h {m}m"),
        (d, h, _) => format!("{d}d {h}h"),
    }
}

/// `natter admin --cluster`: the change goes to the cluster's stream; every node applies it.
async fn admin_in_cluster(args: AdminArgs) -> Result<(), String> {
    use natter_server::store::admin::AdminChange;
    let config = natter_server::cluster::ClusterConfig {
        urls: args
            .cluster
            .unwrap_or_default()
            .split(',')
            .map(|u| u.trim().to_owned())
            .collect(),
        stream: args.cluster_stream,
    };
    let mut code = None;
    let change = match args.action {
        AdminAction::List => {
            return Err("natter admin list reads a database: leave out --cluster".into())
        }
        AdminAction::Expire { .. } => {
            return Err(
                "in a cluster the nodes release unused names themselves (--name-expiry-days)"
                    .into(),
            )
        }
        AdminAction::Release { name } => AdminChange::Release { name },
        AdminAction::ResetPassword { name } => {
            let (once, change) = AdminChange::once_password(&name)
                .ok_or_else(|| "cannot hash a one-time password".to_owned())?;
            code = Some(once);
            change
        }
        AdminAction::GrantAdmin { name } => AdminChange::SetAdmin { name, on: true },
        AdminAction::RevokeAdmin { name } => AdminChange::SetAdmin { name, on: false },
        AdminAction::Ban { name } => AdminChange::BanName { name, on: true },
        AdminAction::Unban { name } => AdminChange::BanName { name, on: false },
        AdminAction::BanAddress { address } => AdminChange::BanAddress { address, on: true },
        AdminAction::UnbanAddress { address } => AdminChange::BanAddress { address, on: false },
    };
    natter_server::cluster::publish_admin(&config, change)
        .await
        .map_err(|e| e.to_string())?;
    // A name that is not owned is left as it is by every node: the cluster does not answer for it.
    match code {
        Some(code) => println!("{code}"),
        None => println!("sent to the cluster"),
    }
    Ok(())
}

/// `natter admin`: one action on the accounts, one line (or a list) on stdout.
fn admin(args: AdminArgs) -> Result<(), String> {
    use natter_server::store::admin::Admin;
    let (_, path) = args.place.resolve()?;
    if !path.exists() {
        return Err(format!("no natter database at {}", path.display()));
    }
    let mut db = Admin::open(&path).map_err(|e| e.to_string())?;
    let err = |e: natter_server::store::StoreError| e.to_string();
    let owned = |found: bool, name: &str| match found {
        true => Ok(()),
        false => Err(format!("{name} is not an owned name")),
    };
    match args.action {
        AdminAction::List => {
            for n in db.names().map_err(err)? {
                let day = |ms: i64| {
                    jiff::Timestamp::from_millisecond(ms)
                        .map(|t| t.strftime("%Y-%m-%d").to_string())
                        .unwrap_or_default()
                };
                println!(
                    "{}\tsince {}\tlast seen {}\t{} key(s){}{}",
                    n.name,
                    day(n.created_ms),
                    day(n.last_seen_ms),
                    n.keys,
                    if n.password { ", password" } else { "" },
                    if n.admin { ", admin" } else { "" }
                );
            }
        }
        AdminAction::Release { name } => {
            owned(db.release(&name).map_err(err)?, &name)?;
            println!("released {name}");
        }
        AdminAction::ResetPassword { name } => match db.reset_password(&name).map_err(err)? {
            Some(code) => println!("{code}"),
            None => owned(false, &name)?,
        },
        AdminAction::GrantAdmin { name } => owned(db.set_admin(&name, true).map_err(err)?, &name)?,
        AdminAction::RevokeAdmin { name } => {
            owned(db.set_admin(&name, false).map_err(err)?, &name)?
        }
        AdminAction::Ban { name } => db.ban_name(&name, true).map_err(err)?,
        AdminAction::Unban { name } => db.ban_name(&name, false).map_err(err)?,
        AdminAction::BanAddress { address } => db.ban_address(address, true).map_err(err)?,
        AdminAction::UnbanAddress { address } => db.ban_address(address, false).map_err(err)?,
        AdminAction::Expire { days, now } => {
            let now = now.unwrap_or_else(jiff::Timestamp::now).as_millisecond();
            for name in db.expire(now, days).map_err(err)? {
                println!("released {name}");
            }
        }
    }
    Ok(())
}

fn fail(message: String) -> ExitCode {
    eprintln!("natter: {message}");
    ExitCode::FAILURE
}

async fn serve(args: ServeArgs, matches: clap::ArgMatches) -> Result<(), String> {
    let logs = init_logging(args.log_level.as_deref(), args.verbose, args.log_format)?;
    let data_dir = data_dir(args.data_dir.as_deref())?;
    let mut config = settings(&args, &data_dir)?;
    let tls_source = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => natter_server::tls::TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => natter_server::tls::TlsSource::SelfSigned(data_dir.clone()),
    };
    if let (Some(cluster), natter_server::tls::TlsSource::SelfSigned(dir)) =
        (&config.cluster, &tls_source)
    {
        // One identity for the cluster: its nodes present the same certificate.
        let replaced = natter_server::cluster::shared_certificate(cluster, dir)
            .await
            .map_err(|e| e.to_string())?;
        if replaced {
            tracing::warn!(
                event = "certificate_replaced",
                "this node's self-signed certificate was replaced by its cluster's: clients that \
                 pinned the old one will refuse the new one until they are told its fingerprint"
            );
        }
    }
    config.tls = natter_server::tls::load(&tls_source).map_err(|e| e.to_string())?;
    let tls_line = config.tls.as_ref().map(|tls| {
        format!(
            "natter: TLS on the same port, certificate {} ({}{})",
            tls.fingerprint,
            if tls.self_signed { "self-signed, " } else { "" },
            tls.cert_path.display()
        )
    });
    serve_with(args, matches, config, tls_line, logs).await
}

/// The server's settings from its flags (all but TLS, which [`serve`] loads once).
fn settings(args: &ServeArgs, data_dir: &std::path::Path) -> Result<natter_server::Config, String> {
    let db = match &args.db {
        Some(path) => natter_server::store::DbPath::parse(path),
        None => natter_server::store::DbPath::File(data_dir.join("natter.db")),
    };
    Ok(natter_server::Config {
        max_frame: args.max_frame,
        require_tls: args.require_tls,
        name_expiry: (args.name_expiry_days > 0)
            .then(|| std::time::Duration::from_secs(u64::from(args.name_expiry_days) * 86_400)),
        lang: args.lang.unwrap_or_else(natter_i18n::Lang::from_env),
        max_text: args.max_text,
        max_outbox: args.max_outbox,
        flood_burst: args.flood_burst,
        flood_rate: args.flood_rate,
        max_recvq: args.max_recvq,
        idle_timeout: seconds(args.idle_timeout, "--idle-timeout")?,
        hello_timeout: seconds(args.hello_timeout, "--hello-timeout")?,
        max_clients: args.max_clients,
        max_per_ip: args.max_per_ip,
        max_rooms: args.max_rooms,
        announce_limit: args.announce_limit,
        backlog: args.backlog,
        db,
        replay: args.replay,
        retention: natter_server::store::Retention {
            days: args.history_days,
            max_messages: args.history_max,
            max_bytes: args.db_max_mb.map(|mb| mb.saturating_mul(1024 * 1024)),
        },
        files: natter_server::files::FilesConfig {
            dir: (args.max_file_size > 0).then(|| {
                args.files_dir
                    .clone()
                    .unwrap_or_else(|| data_dir.join("files"))
            }),
            max_file: args.max_file_size,
            user_quota: (args.user_quota > 0).then_some(args.user_quota),
            total: (args.files_max > 0).then_some(args.files_max),
            days: (args.file_days > 0).then_some(args.file_days),
            ..Default::default()
        },
        password_min_chars: usize::from(args.password_min_chars),
        metrics_on_web: args.metrics == "web",
        trusted_proxies: args.trusted_proxy.clone(),
        cluster: args
            .cluster
            .as_ref()
            .map(|urls| natter_server::cluster::ClusterConfig {
                urls: urls.split(',').map(|u| u.trim().to_owned()).collect(),
                stream: args.cluster_stream.clone(),
            }),
        irc: natter_server::frontend::irc::IrcConfig {
            server_name: args.irc_server_name.as_str().into(),
            motd: match &args.irc_motd {
                Some(path) => {
                    Some(std::fs::read_to_string(path).map_err(|e| {
                        format!("--irc-motd {}: cannot read it: {e}", path.display())
                    })?)
                }
                None => None,
            },
        },
        ..Default::default()
    })
}

/// [`serve`] once the settings are made: checks, binds and announces everything, then runs until
/// SIGTERM or Ctrl-C, reloading the settings on SIGHUP.
async fn serve_with(
    args: ServeArgs,
    matches: clap::ArgMatches,
    config: natter_server::Config,
    tls_line: Option<String>,
    logs: LogHandle,
) -> Result<(), String> {
    // Everything that can fail is checked before anything is announced: a history file that cannot be
    // opened must not follow a "listening on" line.
    natter_server::store::check(&config.db).map_err(|e| e.to_string())?;
    // Caught from before the first announcement on.
    let shutdown = shutdown_signal();
    let mut listeners = Vec::new();
    for addr in &args.listen {
        let listener = natter_server::bind(*addr, config.backlog)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        let reach = if bound.ip().is_loopback() {
            format!(
                "this machine only; --listen 0.0.0.0:{} opens it to your LAN",
                bound.port()
            )
        } else if bound.ip().is_unspecified() {
            "reachable from other machines on your network".to_owned()
        } else {
            "reachable at this address".to_owned()
        };
        announce(&format!("natter: listening on {bound} ({reach})"));
        listeners.push(listener);
    }
    let (web, web_line) = web_listener(args.web.as_deref(), config.backlog, config.tls.is_some())?;
    let default_irc = SocketAddr::from(([127, 0, 0, 1], 6667));
    let mut irc = optional_listener("--irc", args.irc.as_deref(), default_irc, config.backlog)?;
    let plain_irc = irc.len();
    if let Some(addr) = args.irc_tls {
        if config.tls.is_none() {
            return Err(format!(
                "--irc-tls {addr}: TLS is off (the certificate could not be made or loaded)"
            ));
        }
        let listener = natter_server::bind(addr, config.backlog)
            .map_err(|e| format!("cannot listen on {addr} (--irc-tls): {e}"))?;
        irc.push(listener);
    }
    if let Some(line) = tls_line {
        announce(&line);
    }
    if let Some(line) = web_line {
        announce(&line);
    }
    for (i, listener) in irc.iter().enumerate() {
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        if i < plain_irc {
            announce(&format!("natter: IRC clients at {bound}"));
        } else {
            announce(&format!("natter: IRC clients over TLS at {bound}"));
        }
    }
    let mut lab = Vec::new();
    if let Some(addr) = args.lab {
        let listener = natter_server::bind(addr, config.backlog)
            .map_err(|e| format!("cannot listen on {addr} (--lab): {e}"))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        announce(&format!("natter: the lab's client at {bound}"));
        lab.push(listener);
    }
    let mut metrics = Vec::new();
    match args.metrics.as_str() {
        "web" => {}
        "off" => natter_server::metrics::set_counting(false),
        text => {
            let addr: SocketAddr = metrics_place(text)?.parse().map_err(|_| text.to_owned())?;
            let listener = natter_server::bind(addr, config.backlog)
                .map_err(|e| format!("cannot listen on {addr} (--metrics): {e}"))?;
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            announce(&format!("natter: metrics at http://{bound}/metrics"));
            metrics.push(listener);
        }
    }
    match &config.db {
        natter_server::store::DbPath::Memory => {
            announce("natter: history kept in memory only (--db :memory:)")
        }
        path => announce(&format!("natter: history in {path}")),
    }
    let listeners = natter_server::Listeners {
        chat: listeners,
        web,
        irc,
        lab,
        metrics,
    };
    let (reload, reloads) = tokio::sync::mpsc::channel(1);
    tokio::spawn(reload_on_hangup(matches, logs, reload));
    natter_server::run_reloadable(listeners, config, shutdown, reloads)
        .await
        .map_err(|e| e.to_string())
}

/// On each SIGHUP: reads the config file (and the environment) again, as at start, and hands the new
/// settings to the server, which takes the live ones ([`natter_server::LIVE_KEYS`]); the log level
/// changes here. A key that changed but only takes effect at a restart is logged as such; a file that
/// no longer parses is logged and changes nothing.
async fn reload_on_hangup(
    mut started: clap::ArgMatches,
    logs: LogHandle,
    reload: tokio::sync::mpsc::Sender<natter_server::Config>,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            return;
        };
        while hangups.recv().await.is_some() {
            match reread(&started, &logs) {
                Ok((matches, config)) => {
                    started = matches;
                    if reload.send(config).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::error!(
                    event = "reload_failed",
                    "keeping the settings as they are: cannot reload them: {}",
                    e.lines().next().unwrap_or_default()
                ),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (started, logs, reload);
}

/// The `serve` settings as the command line, the environment and the config file give them now; logs
/// the keys that changed but wait for a restart, and sets the new log level.
fn reread(
    started: &clap::ArgMatches,
    logs: &LogHandle,
) -> Result<(clap::ArgMatches, natter_server::Config), String> {
    let matches = with_config_file(
        command_line()
            .try_get_matches_from(std::env::args_os())
            .map_err(|e| e.to_string())?,
    )?;
    let now = matches
        .subcommand_matches("serve")
        .cloned()
        .ok_or("not serving")?;
    let args = ServeArgs::from_arg_matches(&now).map_err(|e| e.to_string())?;
    let raw = |m: &clap::ArgMatches, id: &str| -> Vec<std::ffi::OsString> {
        m.get_raw(id)
            .map(|values| values.map(|v| v.to_owned()).collect())
            .unwrap_or_default()
    };
    let cli = command_line();
    let serve = cli.find_subcommand("serve").ok_or("no serve")?;
    for arg in serve.get_arguments() {
        let id = arg.get_id().as_str();
        let key = arg.get_long().unwrap_or(id);
        if config::NOT_KEYS.contains(&id) || raw(started, id) == raw(&now, id) {
            continue;
        }
        if !natter_server::LIVE_KEYS.contains(&key) && !LOG_KEYS.contains(&key) {
            tracing::warn!(
                event = "reloaded",
                key,
                "{key} changed; it takes effect when the server restarts"
            );
        }
    }
    let filter = log_filter(args.log_level.as_deref(), args.verbose)?;
    if raw(started, "log_level") != raw(&now, "log_level")
        || raw(started, "verbose") != raw(&now, "verbose")
    {
        logs.reload(filter).map_err(|e| e.to_string())?;
        tracing::info!(event = "reloaded", "changed the log level");
    }
    let data_dir = data_dir(args.data_dir.as_deref())?;
    Ok((now, settings(&args, &data_dir)?))
}

/// The keys the log level follows: changed live, here rather than in the server.
const LOG_KEYS: &[&str] = &["log-level", "verbose"];

/// The browser client's listener (`--web`) and the line that announces it: the default address is skipped
/// with a warning when taken (another natter, another program); an address asked for must work.
fn web_listener(
    asked: Option<&str>,
    backlog: u32,
    tls: bool,
) -> Result<(Vec<tokio::net::TcpListener>, Option<String>), String> {
    let addr: SocketAddr = match asked {
        Some("none") => return Ok((Vec::new(), None)),
        Some(text) => text.parse().map_err(|_| {
            format!("--web {text}: not an address (use e.g. 127.0.0.1:8080, or none)")
        })?,
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
    };
    // Beyond this machine the page is HTTPS (a password is typed into it); on loopback, plain HTTP.
    let https = !addr.ip().is_loopback();
    if https && !tls {
        return Err(format!(
            "--web {addr}: beyond this machine the browser client is served over HTTPS, and TLS is off \
             (the certificate could not be made or loaded)"
        ));
    }
    match natter_server::bind(addr, backlog) {
        Ok(listener) => {
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            let scheme = if https { "https" } else { "http" };
            let line = format!("natter: browser client at {scheme}://{bound}/");
            Ok((vec![listener], Some(line)))
        }
        Err(e) if asked.is_none() => {
            tracing::warn!(
                "not serving the browser client: cannot listen on {addr}: {e} (--web ADDR picks another)"
            );
            Ok((Vec::new(), None))
        }
        Err(e) => Err(format!("cannot listen on {addr} (--web): {e}")),
    }
}

/// A listener a flag asks for (`ADDR` or `none`): the default address is skipped with a warning when
/// taken (another natter, another program, ngIRCd); an address asked for must work.
fn optional_listener(
    flag: &str,
    asked: Option<&str>,
    default: SocketAddr,
    backlog: u32,
) -> Result<Vec<tokio::net::TcpListener>, String> {
    let addr: SocketAddr = match asked {
        Some("none") => return Ok(Vec::new()),
        Some(text) => text
            .parse()
            .map_err(|_| format!("{flag} {text}: not an address (use e.g. {default}, or none)"))?,
        None => default,
    };
    match natter_server::bind(addr, backlog) {
        Ok(listener) => Ok(vec![listener]),
        Err(e) if asked.is_none() => {
            tracing::warn!("not listening on {addr}: {e} ({flag} ADDR picks another, {flag} none turns it off)");
            Ok(Vec::new())
        }
        Err(e) => Err(format!("cannot listen on {addr} ({flag}): {e}")),
    }
}

/// `--metrics`: `web`, `off` or an address.
fn metrics_place(text: &str) -> Result<String, String> {
    match text {
        "web" | "off" => Ok(text.to_owned()),
        _ => text
            .parse::<SocketAddr>()
            .map(|_| text.to_owned())
            .map_err(|_| "not an address (use e.g. 127.0.0.1:9500, web or off)".to_owned()),
    }
}

fn seconds(value: f64, flag: &str) -> Result<std::time::Duration, String> {
    std::time::Duration::try_from_secs_f64(value)
        .map_err(|_| format!("{flag} must be a number of seconds, not {value}"))
}

/// Prints a start-up line on stdout. A closed stdout is no reason to stop a server, so errors are ignored.
fn announce(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// What changes the log level of a running server.
type LogHandle =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// Logs go to stderr (the journal, under systemd): text, or one JSON object per line. Message contents
/// are logged only with `-v`. Returns the handle SIGHUP changes the level with.
fn init_logging(
    level: Option<&str>,
    verbose: bool,
    format: LogFormat,
) -> Result<LogHandle, String> {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(log_filter(level, verbose)?);
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // Under systemd, stderr goes to the journal (which says so in JOURNAL_STREAM): each line starts with
    // its syslog priority (`<3>` for an error…), which journald takes as the entry's level, and has no
    // time of its own (the journal stamps every entry).
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    let logs = match (format, journal) {
        (LogFormat::Text, false) => logs.with_ansi(std::io::stderr().is_terminal()).boxed(),
        (LogFormat::Text, true) => logs
            .with_ansi(false)
            .event_format(Priority(tracing_subscriber::fmt::format().without_time()))
            .boxed(),
        (LogFormat::Json, false) => logs.json().flatten_event(true).boxed(),
        (LogFormat::Json, true) => logs
            .event_format(Priority(
                tracing_subscriber::fmt::format().json().flatten_event(true),
            ))
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(LastError)
        .init();
    Ok(handle)
}

/// A log line's syslog priority first (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug), for the
/// journal; then the line as `F` formats it.
struct Priority<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for Priority<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            tracing::Level::ERROR => "<3>",
            tracing::Level::WARN => "<4>",
            tracing::Level::INFO => "<6>",
            _ => "<7>",
        };
        writer.write_str(priority)?;
        self.0.format_event(ctx, writer, event)
    }
}

/// Hands every error logged to the server, for `natter status` ("last error") and the metrics.
struct LastError;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LastError {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() != tracing::Level::ERROR {
            return;
        }
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        natter_server::metrics::error_logged(message.0);
    }
}

/// `RUST_LOG` if it is set (a developer's), else `--log-level` (default `info`); message contents only
/// with `-v`.
fn log_filter(level: Option<&str>, verbose: bool) -> Result<tracing_subscriber::EnvFilter, String> {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        return Ok(filter);
    }
    let chat = if verbose { "info" } else { "off" };
    let level = level.unwrap_or("info");
    tracing_subscriber::EnvFilter::try_new(format!("{level},natter::chat={chat}"))
        .map_err(|e| format!("--log-level {level}: {e}"))
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// Completes on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when the future
/// is first polled: a SIGTERM right after the server announced itself must already be caught.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            match (term, int) {
                (Some(mut term), Some(mut int)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 18: every option of `natter join` (and of `send` and `get`, which share its connection
    /// options) has its help in every catalogue.
    #[test]
    fn every_join_option_has_a_translated_help() {
        let cli = command_line();
        for sub in ["join", "send", "get"] {
            let cmd = cli.find_subcommand(sub).unwrap();
            for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
                for lang in natter_i18n::Lang::ALL {
                    let own = format!("help-cli-{sub}-{}", arg.get_id());
                    let shared = format!("help-cli-join-{}", arg.get_id());
                    assert!(
                        natter_i18n::has(lang, &own) || natter_i18n::has(lang, &shared),
                        "{lang} lacks {own}"
                    );
                }
            }
        }
        let help = natter_i18n::with_lang(natter_i18n::Lang::ZhCn, || {
            command_line()
                .find_subcommand_mut("join")
                .unwrap()
                .render_help()
                .to_string()
        });
        assert!(help.contains("你的名字"), "{help}");
        assert_eq!(
            lang_from_args(
                ["natter", "join", "--lang", "zh-CN"]
                    .map(String::from)
                    .into_iter()
            ),
            Some(natter_i18n::Lang::ZhCn)
        );
        assert_eq!(
            lang_from_args(
                ["natter", "join", "--lang=en"]
                    .map(String::from)
                    .into_iter()
            ),
            Some(natter_i18n::Lang::En)
        );
    }
}
