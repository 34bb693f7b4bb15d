//! The lab's own client (issue 15): a client written here that sends exactly what the report's Windows
//! program sends — the name with no newline, then each message as two sends (timestamp, text), and
//! `exit_request` — talks with a natter client, an IRC client and a browser (WebSocket) in the lobby. The lab's protocol has
//! no framing, so its sends are also glued and split here on purpose.

mod common;

use std::time::Duration;

use common::{Connect, TestServer, WAIT};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The lab client's timestamp, as its getTime() made it.
const TS: &str = "2023-10-20 15:21:46";

/// Reads one send of the server (the lab's server sent each message in one send; these are small
/// enough to arrive in one read on loopback) and checks it ends a message.
async fn recv(lab: &mut TcpStream) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, lab.read(&mut buf))
        .await
        .expect("a message within the wait")
        .unwrap();
    buf.truncate(n);
    buf
}

/// The pause after which natter takes a piece as complete, and a little more: the lab client's user
/// typing the next line.
async fn typing() {
    tokio::time::sleep(natter_server::lab::QUIET + Duration::from_millis(200)).await;
}

#[tokio::test]
async fn the_lab_client_talks_with_natter_and_irc_users() {
    let server = TestServer::start_irc(natter_server::testing::config()).await;
    let mut alice = server.join("alice").await;
    // The name, split in two sends (TCP may deliver it so), no newline.
    let mut lab = TcpStream::connect(server.lab.unwrap()).await.unwrap();
    lab.write_all(b"f").await.unwrap();
    lab.write_all(b"ei").await.unwrap();
    // alice sees fei arrive: the name was taken whole once the line went quiet.
    let joined = alice.expect("joined").await;
    assert_eq!(joined["name"], "fei");

    // A message as two sends: the timestamp, then the text.
    lab.write_all(TS.as_bytes()).await.unwrap();
    lab.write_all(b"er").await.unwrap();
    let m = alice.expect("message").await;
    assert_eq!(
        (m["from"].as_str(), m["text"].as_str()),
        (Some("fei"), Some("er"))
    );

    // alice answers in Chinese: the lab client gets the lab server's line, in one send, no newline.
    alice.say("你好 fei", "1").await;
    let line = String::from_utf8(recv(&mut lab).await).unwrap();
    assert!(
        line.starts_with("Server: [ ")
            && line.ends_with(" ] Received message from client: alice message: 你好 fei"),
        "{line:?}"
    );
    assert!(!line.ends_with('\n'));

    // Two messages glued in one read, bracketed timestamps as the report's output shows them.
    typing().await;
    lab.write_all(format!("[ {TS} ]one[ {TS} ]two").as_bytes())
        .await
        .unwrap();
    let texts: Vec<String> = [alice.expect("message").await, alice.expect("message").await]
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["one", "two"]);

    // An IRC user in the lobby sees the lab user, and the lab user sees them.
    let irc_addr = server.irc.unwrap();
    let mut irc = TcpStream::connect(irc_addr).await.unwrap();
    irc.write_all(
        b"NICK wang\r\nUSER wang 0 * :Wang\r\nJOIN #lobby\r\nPRIVMSG #lobby :hi from irc\r\n",
    )
    .await
    .unwrap();
    let line = String::from_utf8(recv(&mut lab).await).unwrap();
    assert!(
        line.ends_with("Received message from client: wang message: hi from irc"),
        "{line:?}"
    );
    alice.expect("joined").await;
    alice.expect("message").await;

    // A browser user (the page's WebSocket) in the same lobby.
    let web = server.web.unwrap();
    let mut request = format!("ws://{web}/ws").into_client_request().unwrap();
    let origin = format!("http://{web}").parse().unwrap();
    request.headers_mut().insert("Origin", origin);
    let (mut browser, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let hello = r#"{"type":"hello","name":"page","version":1}"#;
    browser.send(Message::Text(hello.into())).await.unwrap();
    let say = r#"{"type":"say","text":"hi from the browser","id":"1"}"#;
    browser.send(Message::Text(say.into())).await.unwrap();
    let line = String::from_utf8(recv(&mut lab).await).unwrap();
    assert!(
        line.ends_with("Received message from client: page message: hi from the browser"),
        "{line:?}"
    );
    typing().await;
    lab.write_all(TS.as_bytes()).await.unwrap();
    lab.write_all("给浏览器".as_bytes()).await.unwrap();
    let heard = loop {
        let message = tokio::time::timeout(WAIT, browser.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            let frame: serde_json::Value = serde_json::from_str(&text).unwrap();
            if frame["type"] == "message" && frame["from"] == "fei" {
                break frame;
            }
        }
    };
    assert_eq!(heard["text"], "给浏览器");

    // The exit request: confirmed by its echo, then the connection closes.
    typing().await;
    lab.write_all(TS.as_bytes()).await.unwrap();
    lab.write_all(b"exit_request").await.unwrap();
    assert_eq!(recv(&mut lab).await, b"exit_request");
    assert!(
        recv(&mut lab).await.is_empty(),
        "closed after the confirmation"
    );
    let left = loop {
        let f = alice.recv().await;
        if f["type"] == "left" && f["name"] == "fei" {
            break f;
        }
    };
    assert_eq!(left["reason"], "exit");
    server.shutdown().await;
}

/// A Chinese Windows console sends GBK: natter decodes it, and answers that connection in GBK.
#[tokio::test]
async fn gbk_in_gbk_out() {
    let server = TestServer::start_irc(natter_server::testing::config()).await;
    let mut alice = server.join("alice").await;
    let mut lab = TcpStream::connect(server.lab.unwrap()).await.unwrap();
    let gbk = |s: &str| encoding_rs::GBK.encode(s).0.into_owned();
    lab.write_all(&gbk("张三")).await.unwrap();
    assert_eq!(alice.expect("joined").await["name"], "张三");
    typing().await;
    lab.write_all(TS.as_bytes()).await.unwrap();
    lab.write_all(&gbk("大家好")).await.unwrap();
    let m = alice.expect("message").await;
    assert_eq!(
        (m["from"].as_str(), m["text"].as_str()),
        (Some("张三"), Some("大家好"))
    );
    alice.say("欢迎", "1").await;
    let bytes = recv(&mut lab).await;
    let (text, _, bad) = encoding_rs::GBK.decode(&bytes);
    assert!(
        !bad && std::str::from_utf8(&bytes).is_err(),
        "GBK, not UTF-8"
    );
    assert!(
        text.ends_with("Received message from client: alice message: 欢迎"),
        "{text}"
    );
    server.shutdown().await;
}
