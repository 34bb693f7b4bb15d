//! The web front end over real sockets: the page and its headers, and protocol v1 over a WebSocket —
//! a browser's connection and a terminal's talk in the same rooms.

mod common;

use common::{Connect, TestServer, WAIT};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A plain HTTP/1.1 GET, answered whole: (status line and headers, lower-cased; body).
async fn get(addr: std::net::SocketAddr, path: &str, extra: &str) -> (String, Vec<u8>) {
    http(addr, "GET", path, extra, b"").await
}

async fn open(addr: std::net::SocketAddr, origin: Option<&str>) -> Result<Ws, String> {
    match origin {
        Some(origin) => open_with(addr, &[("Origin", origin)]).await,
        None => open_with(addr, &[]).await,
    }
}

/// A WebSocket to `/ws` with these request headers.
async fn open_with(addr: std::net::SocketAddr, headers: &[(&str, &str)]) -> Result<Ws, String> {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    for (name, value) in headers {
        let name = axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().append(name, value.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| e.to_string())
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
            .expect("the connection open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn expect(ws: &mut Ws, ty: &str) -> Value {
    loop {
        let f = recv(ws).await;
        if f["type"] == ty {
            return f;
        }
    }
}

#[tokio::test]
async fn the_page_is_served_with_strict_headers() {
    let server = TestServer::start_web(natter_server::testing::config()).await;
    let web = server.web.unwrap();
    let (head, body) = get(web, "/", "").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: text/html"), "{head}");
    assert!(
        head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
        "{head}"
    );
    assert!(head.contains("frame-ancestors 'none'"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    let page = String::from_utf8(body).unwrap();
    assert!(page.contains(r#"<script type="module" src="app.js">"#));
    // No inline script anywhere (the CSP would refuse it anyway).
    assert_eq!(page.matches("<script").count(), 1);
    let (head, body) = get(web, "/app.js", "").await;
    assert!(
        head.contains("content-type: text/javascript")
            || head.contains("content-type: application/javascript"),
        "{head}"
    );
    assert!(String::from_utf8(body).unwrap().contains("isComposing"));
    // Cached by ETag: asked again with it, nothing is sent.
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .unwrap()
        .to_owned();
    let (head, body) = get(web, "/app.js", &format!("If-None-Match: {etag}\r\n")).await;
    assert!(head.starts_with("http/1.1 304"), "{head}");
    assert!(body.is_empty());
    let (head, _) = get(web, "/../../etc/passwd", "").await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
    // Small: the whole first load, uncompressed, is under the 80 KiB the issue allows compressed.
    let mut total = 0;
    for path in ["/", "/app.js", "/app.css", "/i18n.json"] {
        total += get(web, path, "").await.1.len();
    }
    assert!(total < 80 * 1024, "{total} bytes");
    server.shutdown().await;
}

/// A browser's WebSocket and a terminal's TCP connection are in the same room, with the same frames.
#[tokio::test]
async fn a_browser_and_a_terminal_chat_in_the_same_room() {
    let server = TestServer::start_web(natter_server::testing::config()).await;
    let web = server.web.unwrap();
    let mut terminal = server.join("alice").await;
    let mut browser = open(web, Some(&format!("http://{web}"))).await.unwrap();
    send(
        &mut browser,
        json!({"type":"hello","name":"张三","version":1}),
    )
    .await;
    let welcome = expect(&mut browser, "welcome").await;
    assert_eq!(welcome["rooms"], json!(["lobby"]));
    assert_eq!(terminal.expect("joined").await["name"], "张三");
    send(
        &mut browser,
        json!({"type":"say","text":"你好 from the browser","id":"b1"}),
    )
    .await;
    assert_eq!(expect(&mut browser, "ack").await["id"], "b1");
    let m = terminal.expect("message").await;
    assert_eq!(
        (&m["from"], &m["text"]),
        (&json!("张三"), &json!("你好 from the browser"))
    );
    terminal
        .send(json!({"type":"say","text":"<img src=x onerror=alert(1)>","id":"t1"}))
        .await;
    assert_eq!(terminal.expect("ack").await["id"], "t1");
    let m = expect(&mut browser, "message").await;
    assert_eq!(m["text"], "<img src=x onerror=alert(1)>");
    // A resend with the same id (a reload, a reconnect) is acknowledged, not delivered again.
    send(
        &mut browser,
        json!({"type":"say","text":"你好 from the browser","id":"b1"}),
    )
    .await;
    let again = expect(&mut browser, "ack").await;
    assert_eq!(again["id"], "b1");
    terminal.expect_nothing().await;
    // Bad input gets an error frame, as on TCP.
    browser
        .send(Message::Text("{not json".into()))
        .await
        .unwrap();
    assert_eq!(expect(&mut browser, "error").await["code"], "bad_frame");
    server.shutdown().await;
}

/// Another site's page cannot open a WebSocket to natter with the user's browser.
#[tokio::test]
async fn a_cross_origin_websocket_is_refused() {
    let server = TestServer::start_web(natter_server::testing::config()).await;
    let web = server.web.unwrap();
    let refused = open(web, Some("http://evil.example")).await.unwrap_err();
    assert!(refused.contains("403"), "{refused}");
    let refused = open(web, Some(&format!("http://{web}.evil.example")))
        .await
        .unwrap_err();
    assert!(refused.contains("403"), "{refused}");
    assert!(open(web, Some(&format!("http://{web}"))).await.is_ok());
    server.shutdown().await;
}

/// Beyond this machine the page is HTTPS, with the chat port's certificate (here 127.0.0.3 stands for
/// another machine's address); on loopback it stays plain HTTP.
#[tokio::test]
async fn beyond_this_machine_the_page_is_https() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = natter_server::testing::config();
    config.tls = natter_server::tls::load(&natter_server::tls::TlsSource::SelfSigned(
        dir.path().to_owned(),
    ))
    .unwrap();
    config.remote_loopback = Some("127.0.0.3".parse().unwrap());
    let server = TestServer::start_web_at(
        "127.0.0.1:0".parse().unwrap(),
        "127.0.0.3:0".parse().unwrap(),
        config,
    )
    .await;
    let web = server.web.unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new("openssl")
            .args(["s_client", "-quiet", "-connect", &web])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("openssl is installed (./test installs it)");
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(
                format!("GET / HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .unwrap();
        let out = child.wait_with_output().unwrap();
        drop(stdin);
        out
    })
    .await
    .unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.starts_with("HTTP/1.1 200"), "{out:?}");
    assert!(page.contains("<!doctype html>"), "{page}");
    // Plain HTTP there gets nothing.
    let mut plain = tokio::net::TcpStream::connect(server.web.unwrap())
        .await
        .unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut answer)).await;
    assert!(!String::from_utf8_lossy(&answer).contains("<!doctype html>"));
    server.shutdown().await;
}

/// A raw HTTP/1.1 request with a body: (status line and headers, lower-cased; body).
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> (String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut all))
        .await
        .expect("an answer")
        .unwrap();
    let split = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers");
    (
        String::from_utf8_lossy(&all[..split]).to_lowercase(),
        all[split + 4..].to_vec(),
    )
}

/// The browser's file transfers over HTTP: resumable uploads (`HEAD` → `Upload-Offset`, `PATCH` from
/// there, 409 with the server's offset when wrong, 460 on a checksum mismatch) and downloads with
/// `Range`; anything but an image is an attachment.
#[tokio::test]
async fn files_over_http_resume_both_ways() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let mut config = natter_server::testing::config();
    config.files.dir = Some(dir.path().join("files"));
    config.files.reserve = 0;
    let server = TestServer::start_web(config).await;
    let web = server.web.unwrap();
    let mut ws = open(web, None).await.unwrap();
    send(&mut ws, json!({"type":"hello","name":"web","version":1})).await;
    expect(&mut ws, "welcome").await;
    let bytes: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let sha: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    send(
        &mut ws,
        json!({"type":"offer","name":"notes.txt","size":bytes.len(),"sha256":sha,"id":"o"}),
    )
    .await;
    let token = expect(&mut ws, "upload_ready").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/files/upload/{token}");
    let (head, _) = http(
        web,
        "PATCH",
        &path,
        "Upload-Offset: 0\r\n",
        &bytes[..40_000],
    )
    .await;
    assert!(head.starts_with("http/1.1 400"), "{head}");
    let (head, _) = http(web, "HEAD", &path, "", b"").await;
    assert!(head.contains("upload-offset: 40000"), "{head}");
    let (head, _) = http(web, "PATCH", &path, "Upload-Offset: 10\r\n", &bytes[10..]).await;
    assert!(
        head.starts_with("http/1.1 409") && head.contains("upload-offset: 40000"),
        "{head}"
    );
    let (head, body) = http(
        web,
        "PATCH",
        &path,
        "Upload-Offset: 40000\r\n",
        &bytes[40_000..],
    )
    .await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let done: Value = serde_json::from_slice(&body).unwrap();
    let id = done["file"].as_u64().unwrap();
    send(&mut ws, json!({"type":"fetch","file":id,"id":"g"})).await;
    let token = expect(&mut ws, "download_ready").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (head, body) = http(web, "GET", &format!("/files/{token}"), "", b"").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-disposition: attachment; filename*=utf-8''notes.txt"),
        "{head}"
    );
    assert!(
        head.contains("content-type: application/octet-stream"),
        "{head}"
    );
    assert!(body == bytes);
    let (head, body) = http(
        web,
        "GET",
        &format!("/files/{token}"),
        "Range: bytes=99000-\r\n",
        b"",
    )
    .await;
    assert!(
        head.starts_with("http/1.1 206")
            && head.contains("content-range: bytes 99000-99999/100000"),
        "{head}"
    );
    assert!(body == bytes[99_000..]);
    // A wrong checksum: 460, and the bytes are gone.
    send(
        &mut ws,
        json!({"type":"offer","name":"x","size":3,"sha256":"0".repeat(64),"id":"o2"}),
    )
    .await;
    let token = expect(&mut ws, "upload_ready").await["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (head, _) = http(
        web,
        "PATCH",
        &format!("/files/upload/{token}"),
        "Upload-Offset: 0\r\n",
        b"abc",
    )
    .await;
    assert!(head.starts_with("http/1.1 460"), "{head}");
    let (head, _) = http(web, "GET", "/files/not-a-token", "", b"").await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
    server.shutdown().await;
}

/// A counter's value in a scrape (0 when it is not there yet).
fn counter(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// `/healthz` while the store takes writes, and `/metrics` in the Prometheus text format with what
/// `natter status` reports and what the server counted: messages stored and delivered, bytes, commit
/// latency, replays, disconnects by reason, the process's CPU.
#[tokio::test]
async fn health_and_metrics() {
    let server = TestServer::start_web(natter_server::testing::config()).await;
    let web = server.web.unwrap();
    let (head, body) = get(web, "/healthz", "").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, b"ok\n");
    // The counters are the process's (other tests' servers count too): compare before and after.
    let (_, before) = get(web, "/metrics", "").await;
    let before = String::from_utf8(before).unwrap();
    let mut alice = server.join("alice").await;
    let mut bob = server.join("bob").await;
    alice.say("counted", "1").await;
    while bob.recv().await["text"] != "counted" {}
    bob.send(json!({"type":"exit"})).await;
    while bob.recv().await["type"] != "bye" {}
    // Counted before the others are told.
    while alice.recv().await["type"] != "left" {}
    let (head, body) = get(web, "/metrics", "").await;
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    let text = String::from_utf8(body).unwrap();
    for (name, at_least) in [
        ("natter_messages_stored_total", 1.0),
        ("natter_deliveries_total", 1.0),
        ("natter_received_bytes_total", 40.0),
        ("natter_sent_bytes_total", 100.0),
        ("natter_disconnects_total{reason=\"exit\"}", 1.0),
        ("natter_store_commit_seconds_count", 1.0),
        ("natter_replay_messages_count", 2.0),
    ] {
        let grown = counter(&text, name) - counter(&before, name);
        assert!(grown >= at_least, "{name} grew by {grown}:\n{text}");
    }
    assert!(text.contains("natter_process_cpu_seconds_total "), "{text}");
    assert!(text.contains("natter_registered_users "), "{text}");
    // bob's connection may still be closing.
    assert!(text.contains("natter_connections{front_end=\"native\"} "));
    for line in ["natter_users 1", "natter_rooms 1", "natter_last_seq 1"] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    assert!(
        text.contains("natter_process_resident_memory_bytes "),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    server.shutdown().await;
}

/// `--trusted-proxy`: a WebSocket from a trusted proxy counts as the client its `X-Forwarded-For`
/// names (the right-most hop), so `--max-per-ip` holds per client; from anyone else the header is not
/// believed.
#[tokio::test]
async fn x_forwarded_for_names_the_client_only_from_a_trusted_proxy() {
    let limited = |trusted: Vec<std::net::IpAddr>| natter_server::Config {
        max_per_ip: 1,
        trusted_proxies: trusted,
        ..natter_server::testing::config()
    };
    let server = TestServer::start_web(limited(vec!["127.0.0.1".parse().unwrap()])).await;
    let web = server.web.unwrap();
    let from =
        |client: &'static str| async move { open_with(web, &[("X-Forwarded-For", client)]).await };
    let mut one = from("203.0.113.7").await.unwrap();
    send(&mut one, json!({"type":"hello","name":"one","version":1})).await;
    expect(&mut one, "welcome").await;
    // Another client through the same proxy is let in; the same client again is over its limit.
    let mut two = from("198.51.100.1, 203.0.113.8").await.unwrap();
    send(&mut two, json!({"type":"hello","name":"two","version":1})).await;
    expect(&mut two, "welcome").await;
    let again = from("203.0.113.7").await;
    assert!(
        again.is_err_and(|e| e.contains("503")),
        "one client, one connection"
    );
    server.shutdown().await;

    // Not a trusted proxy: the header is the client's own word, and both come from 127.0.0.1.
    let server = TestServer::start_web(limited(Vec::new())).await;
    let web = server.web.unwrap();
    let _one = open_with(web, &[("X-Forwarded-For", "203.0.113.7")])
        .await
        .unwrap();
    let other = open_with(web, &[("X-Forwarded-For", "203.0.113.8")]).await;
    assert!(other.is_err_and(|e| e.contains("503")));
    server.shutdown().await;
}
