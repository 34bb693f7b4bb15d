//! The IRC front end (issue 15): IRC clients and natter's own clients in the same rooms, over real
//! sockets. PING/PONG is the barrier: the server answers lines in order, so a PONG proves everything
//! sent before it was handled.

mod common;

use std::net::SocketAddr;

use common::{Connect, TestServer, WAIT};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// A raw IRC client that sees the lines as sent.
struct Irc {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    pings: u32,
}

impl Irc {
    async fn connect(addr: SocketAddr) -> Self {
        let (read, writer) = TcpStream::connect(addr).await.unwrap().into_split();
        Self {
            reader: BufReader::new(read),
            writer,
            pings: 0,
        }
    }

    /// Connects and registers as `nick` with `caps`, returning the lines up to the end of the MOTD.
    async fn register(addr: SocketAddr, nick: &str, caps: &[&str]) -> (Self, Vec<String>) {
        let mut c = Self::connect(addr).await;
        if !caps.is_empty() {
            c.send("CAP LS 302").await;
            c.send(&format!("CAP REQ :{}", caps.join(" "))).await;
        }
        c.send(&format!("NICK {nick}")).await;
        c.send(&format!("USER {nick} 0 * :{nick} the tester")).await;
        if !caps.is_empty() {
            c.send("CAP END").await;
        }
        let mut lines = Vec::new();
        loop {
            let line = c.line().await;
            let end = line.contains(" 422 ") || line.contains(" 376 ");
            lines.push(line);
            if end {
                return (c, lines);
            }
        }
    }

    async fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        let read = tokio::time::timeout(WAIT, self.reader.read_line(&mut line));
        let n = read.await.expect("a line within the wait").unwrap();
        assert!(n > 0, "connection closed");
        assert!(line.ends_with("\r\n"), "IRC lines end in CRLF: {line:?}");
        line.trim_end().to_owned()
    }

    /// Every line before the answer to a PING sent now.
    async fn sync(&mut self) -> Vec<String> {
        self.pings += 1;
        let token = format!("sync{}", self.pings);
        self.send(&format!("PING {token}")).await;
        let mut before = Vec::new();
        loop {
            let line = self.line().await;
            if line.contains(" PONG ") && line.ends_with(&token) {
                return before;
            }
            before.push(line);
        }
    }
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

/// An IRC user, a native user and a plain-text user in one room: joins, names, Chinese and English
/// both ways, private messages, a part with its words and a quit.
#[tokio::test]
async fn irc_and_native_users_talk_in_one_room() {
    let server = TestServer::start_irc(natter_server::testing::config()).await;
    let irc = server.irc.unwrap();
    let mut alice = server.join("alice").await; // native, in the lobby
    let (mut bob, welcome) = Irc::register(irc, "bob", &[]).await;
    assert!(welcome[0].starts_with(":natter 001 bob "), "{welcome:?}");
    assert!(has(&welcome, "CHANTYPES=#") && has(&welcome, "UTF8ONLY"));
    // Not put in the lobby: IRC clients join their channels themselves.
    assert!(!has(&bob.sync().await, "JOIN"));
    bob.send("JOIN #lobby").await;
    let joined = bob.sync().await;
    assert_eq!(joined[0], ":bob!bob@irc JOIN #lobby", "{joined:?}");
    assert!(joined[1].contains(" 353 bob = #lobby :") && joined[1].contains("alice"));
    assert!(joined[2].contains(" 366 bob #lobby "));
    let seen = alice.sync().await;
    assert!(seen
        .iter()
        .any(|f| f["type"] == "joined" && f["name"] == "bob"));

    // English and Chinese, both ways.
    alice.say("hello bob, 你好", "1").await;
    let lines = bob.sync().await;
    assert_eq!(
        lines,
        vec![":alice!natter@natter PRIVMSG #lobby :hello bob, 你好"]
    );
    bob.send("PRIVMSG #lobby :你好 alice, \u{2}bold\u{2}").await;
    bob.sync().await;
    let m = alice.expect("message").await;
    assert_eq!(
        (m["from"].as_str(), m["text"].as_str()),
        (Some("bob"), Some("你好 alice, bold"))
    );

    // A multi-line natter message is several IRC lines.
    alice.say("one\ntwo", "2").await;
    assert_eq!(
        bob.sync().await,
        vec![
            ":alice!natter@natter PRIVMSG #lobby :one",
            ":alice!natter@natter PRIVMSG #lobby :two"
        ]
    );

    // Private messages both ways.
    bob.send("PRIVMSG alice :psst").await;
    bob.sync().await;
    let m = alice.expect("message").await;
    assert_eq!(
        (m["to"].as_str(), m["text"].as_str()),
        (Some("alice"), Some("psst"))
    );
    alice
        .send(json!({"type":"whisper","to":"bob","text":"悄悄话","id":"3"}))
        .await;
    alice.expect("ack").await;
    assert_eq!(
        bob.sync().await,
        vec![":alice!natter@natter PRIVMSG bob :悄悄话"]
    );

    // Someone who is not there.
    bob.send("PRIVMSG nobody :x").await;
    let lines = bob.sync().await;
    assert!(lines[0].contains(" 401 bob nobody "), "{lines:?}");

    // A plain-text user (nc) joins the lobby and talks.
    let mut carol = tokio::io::BufReader::new(TcpStream::connect(server.addr).await.unwrap());
    carol
        .get_mut()
        .write_all(b"carol\nhi from nc\n")
        .await
        .unwrap();
    let lines = bob.sync().await;
    // Joins and messages arrive in order; a PING may overtake the plain user's line, so wait for it.
    let mut all = lines;
    while !has(&all, "PRIVMSG #lobby :hi from nc") {
        all.push(bob.line().await);
    }
    assert!(has(&all, ":carol!natter@natter JOIN #lobby"));

    // Parting words and a quit reach everyone.
    bob.send("PART #lobby :see you").await;
    assert_eq!(bob.sync().await, vec![":bob!bob@irc PART #lobby :see you"]);
    let left = alice.sync().await;
    let left = left.iter().find(|f| f["type"] == "left").unwrap();
    assert_eq!(
        (left["reason"].as_str(), left["text"].as_str()),
        (Some("leave"), Some("see you"))
    );
    bob.send("JOIN #lobby").await;
    bob.sync().await;
    alice.sync().await;
    bob.send("QUIT :gone fishing").await;
    assert_eq!(bob.line().await, "ERROR :Closing link");
    let left = alice.expect("left").await;
    assert_eq!(left["text"], "gone fishing");
    server.shutdown().await;
}

/// What IRC forbids in a nick is mapped, reversibly; a nick natter cannot take is refused with 432, a
/// name in use with 433, and registration waits for CAP END.
#[tokio::test]
async fn nicks_map_to_names_and_registration_follows_irc() {
    let server = TestServer::start_irc(natter_server::testing::config()).await;
    let irc = server.irc.unwrap();
    let mut dotted = server.connect().await;
    dotted.hello("john.doe").await;
    let (mut zhang, _) = Irc::register(irc, "张三", &[]).await;
    zhang.send("JOIN #lobby").await;
    let lines = zhang.sync().await;
    assert!(has(&lines, "john|doe"), "{lines:?}");
    dotted.sync().await;
    zhang.send("PRIVMSG john|doe :hi").await;
    zhang.sync().await;
    let m = dotted.expect("message").await;
    assert_eq!(
        (m["from"].as_str(), m["to"].as_str()),
        (Some("张三"), Some("john.doe"))
    );
    // A name that starts with a digit is `\`1984` on IRC.
    let (mut digits, _) = Irc::register(irc, "`1984", &[]).await;
    digits.send("WHOIS `1984").await;
    let lines = digits.sync().await;
    assert!(lines[0].contains(" 311 `1984 `1984 "), "{lines:?}");
    let mut native = server.connect().await;
    native
        .send(json!({"type":"hello","name":"1984","version":1}))
        .await;
    assert_eq!(native.expect("error").await["code"], "name_taken");

    let mut c = Irc::connect(irc).await;
    c.send("NICK a[b]").await;
    assert!(c.line().await.contains(" 432 * a[b] "));
    c.send("NICK 张三").await;
    c.send("USER x 0 * :x").await;
    assert!(c.line().await.contains(" 433 * 张三 "));
    // Held by CAP negotiation until CAP END.
    c.send("CAP LS 302").await;
    let ls = c.line().await;
    assert!(
        ls.contains(" CAP * LS :") && ls.contains("server-time"),
        "{ls}"
    );
    c.send("NICK wang").await;
    c.send("PING early").await;
    assert!(c.line().await.ends_with("PONG natter early"));
    c.send("CAP REQ :server-time bogus").await;
    assert!(c.line().await.contains(" CAP * NAK :server-time bogus"));
    c.send("CAP REQ :server-time echo-message").await;
    assert!(c
        .line()
        .await
        .contains(" CAP * ACK :server-time echo-message"));
    c.send("CAP END").await;
    assert!(c.line().await.contains(" 001 wang "));
    // echo-message with server-time: the sender sees its own message, stamped.
    c.send("JOIN #lobby").await;
    c.sync().await;
    c.send("PRIVMSG #lobby :echo").await;
    let lines = c.sync().await;
    assert!(
        lines[0].starts_with("@time=") && lines[0].ends_with(":wang!x@irc PRIVMSG #lobby :echo"),
        "{lines:?}"
    );
    server.shutdown().await;
}

/// Operators: a guest who creates a channel is its operator while it lives; TOPIC and MODE work
/// through natter's moderation, and what they do reaches natter's clients as room events.
#[tokio::test]
async fn channel_operators_set_topics_and_modes() {
    let server = TestServer::start_irc(natter_server::testing::config()).await;
    let irc = server.irc.unwrap();
    let (mut op, _) = Irc::register(irc, "op", &[]).await;
    op.send("JOIN #club").await;
    let lines = op.sync().await;
    assert!(
        lines[1].contains(" 353 op = #club ") && lines[1].ends_with("@op"),
        "{lines:?}"
    );
    let mut alice = server.join("alice").await;
    alice.send(json!({"type":"join","room":"club"})).await;
    alice.sync().await;
    op.sync().await;
    op.send("TOPIC #club :话题 topic").await;
    let lines = op.sync().await;
    assert_eq!(lines, vec![":op!op@irc TOPIC #club :话题 topic"]);
    let event = alice.expect("message").await;
    assert_eq!(event["event"]["kind"], "topic");
    op.send("MODE #club +v alice").await;
    assert!(has(&op.sync().await, ":op!op@irc MODE #club +v alice"));
    op.send("TOPIC #club").await;
    assert!(op.sync().await[0].contains(" 332 op #club :话题 topic"));
    let (mut guest, _) = Irc::register(irc, "guest", &[]).await;
    guest.send("JOIN #club").await;
    let lines = guest.sync().await;
    assert!(has(&lines, " 332 guest #club :话题 topic"), "{lines:?}");
    guest.send("TOPIC #club :mine").await;
    assert!(guest.sync().await[0].contains(" 482 guest #club "));
    guest.send("WHO #club").await;
    let lines = guest.sync().await;
    assert!(
        has(
            &lines,
            " 352 guest #club op irc natter op H@ :0 op the tester"
        ),
        "{lines:?}"
    );
    assert!(has(
        &lines,
        " 352 guest #club natter natter natter alice H :0 alice"
    ));
    op.send("KICK #club guest :bye").await;
    op.sync().await;
    assert!(has(&guest.sync().await, "KICK #club guest bye"));
    server.shutdown().await;
}

/// The IRC port keeps the chat port's limits: a client that does not register in time, one that
/// floods, and one over the connection limit are told why in IRC's own words (`ERROR`) and closed; the
/// others are not disturbed.
#[tokio::test]
async fn the_irc_port_keeps_the_limits() {
    let config = natter_server::Config {
        hello_timeout: std::time::Duration::from_millis(500),
        flood_burst: 2,
        flood_rate: 1.0,
        max_recvq: 2048,
        max_clients: 3,
        ..natter_server::testing::config()
    };
    let server = TestServer::start_irc(config).await;
    let irc = server.irc.unwrap();
    // Registration is a burst of lines, counted but not paced.
    let (mut calm, _) = Irc::register(irc, "calm", &["server-time", "message-tags"]).await;
    calm.send("JOIN #lobby").await;
    calm.sync().await;
    let mut silent = Irc::connect(irc).await;
    // A third connection fills the server; the fourth is refused in IRC's words.
    let (mut flood, _) = Irc::register(irc, "flood", &[]).await;
    let mut refused = Irc::connect(irc).await;
    let line = refused.line().await;
    assert!(line.starts_with("ERROR :"), "{line}");
    // Silent past the registration timeout.
    let line = silent.line().await;
    assert!(line.starts_with("ERROR :"), "{line}");
    // A flood: paced first, then cut when its backlog passes --max-recvq.
    let burst: String = (0..200)
        .map(|i| format!("PRIVMSG #lobby :{i} {}\r\n", "x".repeat(40)))
        .collect();
    flood.send(burst.trim_end()).await;
    let mut cut = false;
    for _ in 0..50 {
        let line = flood.line().await;
        if line.starts_with("ERROR :") {
            cut = true;
            break;
        }
    }
    assert!(cut, "the flooder was not cut off");
    // The others are fine.
    let lines = calm.sync().await;
    assert!(lines.iter().all(|l| !l.contains("PRIVMSG")), "{lines:?}");
    server.shutdown().await;
}

/// An IRC client that reconnects gets what it missed through CHATHISTORY (natter's history), and its
/// private conversation the same way.
#[tokio::test]
async fn a_reconnecting_irc_client_catches_up_with_chathistory() {
    let server = TestServer::start_irc(natter_server::testing::config()).await;
    let irc = server.irc.unwrap();
    let caps = ["batch", "server-time", "message-tags", "draft/chathistory"];
    let mut alice = server.join("alice").await;
    let (mut bob, welcome) = Irc::register(irc, "bob", &caps).await;
    assert!(has(&welcome, "MSGREFTYPES=msgid,timestamp"));
    bob.send("JOIN #lobby").await;
    bob.sync().await;
    alice.sync().await;
    alice.say("one", "1").await;
    let seen = bob.sync().await;
    let last: u64 = seen[0]
        .split(['=', ';'])
        .nth(1)
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no msgid: {seen:?}"));
    drop(bob);
    alice.expect("left").await;
    alice.say("two", "2").await;
    alice.say("三", "3").await;
    alice
        .send(json!({"type":"whisper","to":"bob","text":"psst","id":"4"}))
        .await;
    alice.expect("error").await; // bob is away: a guest gets no private messages kept
    let (mut bob, _) = Irc::register(irc, "bob", &caps).await;
    bob.send("JOIN #lobby").await;
    bob.sync().await;
    alice.sync().await;
    bob.send(&format!("CHATHISTORY AFTER #lobby msgid={last} 50"))
        .await;
    let lines = bob.sync().await;
    assert!(
        lines[0].contains(" BATCH +") && lines[0].ends_with(" chathistory #lobby"),
        "{lines:?}"
    );
    let texts: Vec<&str> = lines[1..lines.len() - 1]
        .iter()
        .map(|l| l.rsplit(" :").next().unwrap())
        .collect();
    assert_eq!(texts, ["two", "三"], "{lines:?}");
    assert!(lines[1].starts_with("@batch=") && lines[1].contains("msgid="));
    // LATEST with a limit, and a channel one is not in.
    bob.send("CHATHISTORY LATEST #lobby * 1").await;
    let lines = bob.sync().await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[1].ends_with(":三"));
    bob.send("CHATHISTORY LATEST #elsewhere * 10").await;
    let lines = bob.sync().await;
    assert!(
        lines[0].contains("FAIL CHATHISTORY INVALID_TARGET LATEST #elsewhere"),
        "{lines:?}"
    );
    // Private messages since bob signed in, as a conversation.
    alice
        .send(json!({"type":"whisper","to":"bob","text":"悄悄","id":"5"}))
        .await;
    alice.expect("ack").await;
    bob.sync().await;
    bob.send("CHATHISTORY LATEST alice * 10").await;
    let lines = bob.sync().await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[1].ends_with(":alice!natter@natter PRIVMSG bob :悄悄"),
        "{lines:?}"
    );
    // TARGETS: the conversations with activity in a window, the latest last.
    let window = "timestamp=2020-01-01T00:00:00.000Z timestamp=2262-01-01T00:00:00.000Z";
    bob.send(&format!("CHATHISTORY TARGETS {window} 10")).await;
    let lines = bob.sync().await;
    assert!(
        lines[0].ends_with(" draft/chathistory-targets"),
        "{lines:?}"
    );
    assert!(
        lines[1].contains(" CHATHISTORY TARGETS #lobby "),
        "{lines:?}"
    );
    assert!(
        lines[2].contains(" CHATHISTORY TARGETS alice "),
        "{lines:?}"
    );
    server.shutdown().await;
}

/// A room over the announce limit is an auditorium for IRC clients: no joins and parts, NAMES on join
/// lists only yourself (with a NOTICE of the count), `MODE` says `+u`, and WHO still lists everyone.
#[tokio::test]
async fn big_rooms_look_like_auditorium_channels() {
    let config = natter_server::Config {
        announce_limit: 2,
        ..natter_server::testing::config()
    };
    let server = TestServer::start_irc(config).await;
    let irc = server.irc.unwrap();
    let _a = server.join("a1").await;
    let _b = server.join("b2").await;
    let _c = server.join("c3").await;
    let (mut dave, welcome) = Irc::register(irc, "dave", &[]).await;
    assert!(has(&welcome, "CHANMODES=b,,,imntu"));
    dave.send("JOIN #lobby").await;
    let lines = dave.sync().await;
    assert!(
        lines[1].contains(" 353 dave = #lobby ") && lines[1].ends_with("dave"),
        "{lines:?}"
    );
    assert!(lines[2].contains("NOTICE #lobby :4 members"), "{lines:?}");
    dave.send("MODE #lobby").await;
    assert!(dave.sync().await[0].contains(" 324 dave #lobby +ntu"));
    dave.send("WHO #lobby").await;
    let lines = dave.sync().await;
    assert_eq!(
        lines.iter().filter(|l| l.contains(" 352 ")).count(),
        4,
        "{lines:?}"
    );
    // Nobody's arrival is announced.
    let _e = server.join("e5").await;
    assert!(!has(&dave.sync().await, "JOIN"));
    server.shutdown().await;
}

/// TAGMSG is a natter `signal`: relayed at once to clients that take tags (natter's clients get the
/// frame), never stored, never shown to IRC clients without message-tags; client tags on a PRIVMSG are
/// relayed and kept with it.
#[tokio::test]
async fn tagmsg_is_a_signal_and_client_tags_travel_with_messages() {
    let server = TestServer::start_irc(natter_server::testing::config()).await;
    let irc = server.irc.unwrap();
    let mut alice = server.join("alice").await;
    let (mut tags, _) = Irc::register(irc, "tags", &["message-tags", "echo-message"]).await;
    let (mut plain, _) = Irc::register(irc, "plain", &[]).await;
    for c in [&mut tags, &mut plain] {
        c.send("JOIN #lobby").await;
        c.sync().await;
    }
    alice.sync().await;
    tags.sync().await; // plain's join
    tags.send("@+typing=active TAGMSG #lobby").await;
    let echo = tags.sync().await;
    assert!(
        echo[0].contains(";+typing=active") && echo[0].ends_with("TAGMSG #lobby"),
        "{echo:?}"
    );
    let signal = alice.expect("signal").await;
    assert_eq!(
        (signal["from"].as_str(), signal["tags"]["+typing"].as_str()),
        (Some("tags"), Some("active"))
    );
    assert!(
        plain.sync().await.is_empty(),
        "no TAGMSG without message-tags"
    );
    tags.send("@+draft/reply=1;other=x PRIVMSG #lobby :re")
        .await;
    tags.sync().await;
    let m = alice.expect("message").await;
    assert_eq!(m["tags"], json!({"+draft/reply":"1"}));
    assert_eq!(
        plain.sync().await,
        vec![":tags!tags@irc PRIVMSG #lobby :re"]
    );
    alice
        .send(json!({"type":"history","room":"lobby","limit":10}))
        .await;
    let history = alice.expect("history").await;
    let kept: Vec<&Value> = history["messages"].as_array().unwrap().iter().collect();
    assert_eq!(kept.len(), 1, "the signal is not in history: {kept:?}");
    assert_eq!(kept[0]["tags"], json!({"+draft/reply":"1"}));
    server.shutdown().await;
}

/// account-tag and extended-join: an owned name's lines carry its account; a guest's do not.
#[tokio::test]
async fn owners_lines_carry_their_account() {
    let server = TestServer::start_irc(natter_server::testing::config()).await;
    let irc = server.irc.unwrap();
    let (mut watcher, _) = Irc::register(irc, "watcher", &["account-tag", "extended-join"]).await;
    watcher.send("JOIN #lobby").await;
    watcher.sync().await;
    let mut owner = server.connect().await;
    owner.hello_owned("alice", 1).await;
    owner.sync().await;
    let mut guest = server.join("bob").await;
    let joins = watcher.sync().await;
    assert!(
        has(&joins, ":alice!natter@natter JOIN #lobby alice alice"),
        "{joins:?}"
    );
    assert!(
        has(&joins, ":bob!natter@natter JOIN #lobby * bob"),
        "{joins:?}"
    );
    owner.say("mine", "1").await;
    guest.sync().await;
    guest.say("anyone's", "2").await;
    let lines = watcher.sync().await;
    assert_eq!(
        lines,
        vec![
            "@account=alice :alice!natter@natter PRIVMSG #lobby :mine",
            ":bob!natter@natter PRIVMSG #lobby :anyone's"
        ]
    );
    server.shutdown().await;
}

/// away-notify and setname: an IRC user's AWAY and SETNAME reach the IRC users who share a channel and
/// asked for them — once, however many channels they share.
#[tokio::test]
async fn away_and_setname_reach_those_who_asked() {
    let server = TestServer::start_irc(natter_server::testing::config()).await;
    let irc = server.irc.unwrap();
    let (mut told, _) = Irc::register(irc, "told", &["away-notify", "setname"]).await;
    let (mut untold, _) = Irc::register(irc, "untold", &[]).await;
    let (mut mover, _) = Irc::register(irc, "mover", &["setname"]).await;
    for c in [&mut told, &mut untold, &mut mover] {
        c.send("JOIN #lobby,#two").await;
        c.sync().await;
    }
    told.sync().await;
    untold.sync().await;
    mover.send("AWAY :lunch 午饭").await;
    assert!(mover.sync().await[0].contains(" 306 mover "));
    assert_eq!(told.sync().await, vec![":mover!mover@irc AWAY :lunch 午饭"]);
    mover.send("AWAY").await;
    assert!(mover.sync().await[0].contains(" 305 mover "));
    assert_eq!(told.sync().await, vec![":mover!mover@irc AWAY"]);
    mover.send("SETNAME :Mover Two").await;
    assert_eq!(
        mover.sync().await,
        vec![":mover!mover@irc SETNAME :Mover Two"]
    );
    assert_eq!(
        told.sync().await,
        vec![":mover!mover@irc SETNAME :Mover Two"]
    );
    assert!(untold.sync().await.is_empty());
    told.send("WHOIS mover").await;
    assert!(told.sync().await[0].ends_with(":Mover Two"));
    server.shutdown().await;
}

/// draft/multiline: a batch of lines is one natter message, and a multi-line natter message is a batch
/// for clients that asked (separate lines for the others).
#[tokio::test]
async fn multiline_batches_are_one_message() {
    let server = TestServer::start_irc(natter_server::testing::config()).await;
    let irc = server.irc.unwrap();
    let mut alice = server.join("alice").await;
    let caps = ["draft/multiline", "batch", "echo-message"];
    let (mut writer, welcome) = Irc::register(irc, "writer", &caps).await;
    assert!(!welcome.is_empty());
    let (mut old, _) = Irc::register(irc, "old", &[]).await;
    for c in [&mut writer, &mut old] {
        c.send("JOIN #lobby").await;
        c.sync().await;
    }
    writer.sync().await;
    alice.sync().await;
    writer.send("BATCH +b1 draft/multiline #lobby").await;
    writer.send("@batch=b1 PRIVMSG #lobby :first line").await;
    writer.send("@batch=b1 PRIVMSG #lobby :second ").await;
    writer
        .send("@batch=b1;draft/multiline-concat PRIVMSG #lobby :half")
        .await;
    writer.send("BATCH -b1").await;
    let echo = writer.sync().await;
    assert!(
        echo[0].contains(" BATCH +") && echo[0].ends_with("draft/multiline #lobby"),
        "{echo:?}"
    );
    assert_eq!(echo.len(), 4, "{echo:?}");
    let m = alice.expect("message").await;
    assert_eq!(m["text"], "first line\nsecond half");
    assert_eq!(
        old.sync().await,
        vec![
            ":writer!writer@irc PRIVMSG #lobby :first line",
            ":writer!writer@irc PRIVMSG #lobby :second half"
        ]
    );
    server.shutdown().await;
}

/// An IRC client that stops reading is cut as too slow (its outbox full) — its room sees it leave with
/// the reason — and nobody else waits for it.
#[tokio::test]
async fn a_stalled_irc_client_is_cut_and_blocks_nobody() {
    let config = natter_server::Config {
        max_outbox: 16 * 1024,
        ..natter_server::testing::config()
    };
    let server = TestServer::start_irc(config).await;
    let irc = server.irc.unwrap();
    let mut alice = server.join("alice").await;
    // A small receive window, so the stall reaches the server's outbox quickly.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(irc).await.unwrap();
    let (read, mut stalled) = stream.into_split();
    stalled
        .write_all(b"NICK stalled\r\nUSER s 0 * :S\r\nJOIN #lobby\r\n")
        .await
        .unwrap();
    let joined = alice.expect("joined").await;
    assert_eq!(joined["name"], "stalled");
    // alice talks; the stalled client reads nothing. Every message is acked at once all the same.
    let text = "x".repeat(1000);
    let mut cut = false;
    for i in 0..8000 {
        alice
            .send(json!({"type":"say","text":text,"id":i.to_string()}))
            .await;
        loop {
            let f = alice.recv().await;
            if f["type"] == "left" && f["name"] == "stalled" {
                assert_eq!(f["reason"], "too_slow", "{f}");
                cut = true;
                continue;
            }
            if f["type"] == "ack" {
                break;
            }
        }
        if cut {
            break;
        }
    }
    assert!(cut, "the stalled IRC client was never cut");
    drop(read);
    server.shutdown().await;
}
