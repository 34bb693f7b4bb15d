//! Plain-text mode: `nc` and `telnet` users in the same rooms as native clients.

mod common;

use common::{Connect, TestServer};
use serde_json::json;

/// `[YYYY-MM-DD HH:MM:SS] ` — the lab's stamp.
fn strip_stamp(line: &str) -> &str {
    let b = line.as_bytes();
    assert!(
        line.len() > 22 && b[0] == b'[' && b[20] == b']' && b[21] == b' ',
        "no stamp in {line:?}"
    );
    let stamp = &line[1..20];
    for (i, c) in stamp.chars().enumerate() {
        match i {
            4 | 7 => assert_eq!(c, '-', "{line}"),
            10 => assert_eq!(c, ' ', "{line}"),
            13 | 16 => assert_eq!(c, ':', "{line}"),
            _ => assert!(c.is_ascii_digit(), "{line}"),
        }
    }
    &line[22..]
}

#[tokio::test]
async fn nc_users_chat_with_native_users_both_ways() {
    let server = TestServer::start().await;
    let mut alice = server.join("alice").await;
    let mut nc = server.connect().await;

    nc.send_raw(b"carol\r\n").await; // telnet sends CRLF
    assert!(nc
        .recv_line()
        .await
        .unwrap()
        .starts_with("* Welcome, carol!"));
    assert_eq!(nc.recv_line().await.unwrap(), "* carol joined");
    assert_eq!(nc.recv_line().await.unwrap(), "* in #lobby: alice, carol");
    assert_eq!(alice.expect("joined").await["name"], "carol");

    // Native → plain, in the lab's format.
    alice.say("hi carol 你好", "1").await;
    assert_eq!(
        strip_stamp(&nc.recv_line().await.unwrap()),
        "alice: hi carol 你好"
    );

    // Plain → native.
    nc.send_raw(b"hello from nc\n").await;
    let m = alice.expect("message").await;
    assert_eq!(
        (m["from"].as_str(), m["text"].as_str(), m["room"].as_str()),
        (Some("carol"), Some("hello from nc"), Some("lobby"))
    );

    // Whispers both ways.
    nc.send_raw(b"/msg alice just you\n").await;
    let m = alice.expect("message").await;
    assert_eq!(
        (m["to"].as_str(), m["text"].as_str()),
        (Some("alice"), Some("just you"))
    );
    alice
        .send(json!({"type":"whisper","to":"carol","text":"back at you","id":"2"}))
        .await;
    alice.expect("ack").await;
    assert_eq!(
        strip_stamp(&nc.recv_line().await.unwrap()),
        "alice → you: back at you"
    );

    // Multi-line text is indented so it cannot pass for another message.
    alice.say("two\nlines", "3").await;
    assert_eq!(strip_stamp(&nc.recv_line().await.unwrap()), "alice: two");
    assert_eq!(nc.recv_line().await.unwrap(), "    lines");

    // Bad text gets a readable error line and reaches nobody.
    nc.send_raw(b"bad \x1b[2J escape\n").await;
    assert!(nc.recv_line().await.unwrap().starts_with("! "));
    alice.expect_nothing().await;

    // exit leaves, with a goodbye.
    nc.send_raw(b"exit\n").await;
    assert_eq!(nc.recv_line().await.unwrap(), "* Bye!");
    assert_eq!(nc.recv_line().await, None);
    let l = alice.expect("left").await;
    assert_eq!(
        (l["name"].as_str(), l["reason"].as_str()),
        (Some("carol"), Some("exit"))
    );
}

#[tokio::test]
async fn a_taken_name_is_asked_again() {
    let server = TestServer::start().await;
    let _bob = server.join("bob").await;
    let mut nc = server.connect().await;
    nc.send_raw(b"BOB\n").await;
    let line = nc.recv_line().await.unwrap();
    assert!(
        line.starts_with("! ") && line.ends_with("Type another name:"),
        "{line}"
    );
    nc.send_raw(b"bad name\n").await;
    assert!(nc
        .recv_line()
        .await
        .unwrap()
        .ends_with("Type another name:"));
    nc.send_raw(b"bobby\n").await;
    assert!(nc
        .recv_line()
        .await
        .unwrap()
        .starts_with("* Welcome, bobby!"));
}

#[tokio::test]
async fn plain_users_see_joins_leaves_and_help() {
    let server = TestServer::start().await;
    let mut nc = server.connect().await;
    nc.send_raw(b"dave\n").await;
    for _ in 0..3 {
        nc.recv_line().await.unwrap();
    }
    let mut eve = server.join("eve").await;
    assert_eq!(nc.recv_line().await.unwrap(), "* eve joined");
    eve.send(json!({"type":"exit"})).await;
    assert_eq!(nc.recv_line().await.unwrap(), "* eve left");
    nc.send_raw(b"/help\n").await;
    assert!(nc.recv_line().await.unwrap().starts_with("* Type a line"));
    nc.send_raw(b"/quit\n").await;
    loop {
        match nc.recv_line().await {
            Some(line) if line == "* Bye!" => break,
            Some(_) => continue,
            None => panic!("closed without bye"),
        }
    }
    assert_eq!(nc.recv_line().await, None);
}

/// Issue 12: `nc` users are guests, and a guest's private messages are nobody's history — the next
/// person to use the name (the reproduction: bob's reply to 张三 was readable by whoever said 张三 next)
/// sees neither what 张三 whispered nor what was whispered to 张三, by replay or by `/history`.
#[tokio::test]
async fn the_next_guest_with_a_name_sees_none_of_its_private_messages() {
    let server = TestServer::start().await;
    let mut bob = server.join("bob").await;
    let mut nc = server.connect().await;
    nc.send_raw("张三\n/msg bob 你好 bob\n".as_bytes()).await;
    bob.expect("joined").await;
    bob.expect("message").await;
    bob.send(json!({"type":"whisper","to":"张三","text":"my password is hunter2","id":"w"}))
        .await;
    bob.expect("ack").await;
    nc.send_raw(b"exit\n").await;
    let _ = nc.read_to_end().await;
    let mut again = server.connect().await;
    again.send_raw("张三\n/history\n/quit\n".as_bytes()).await;
    let seen = String::from_utf8(again.read_to_end().await).unwrap();
    assert!(seen.contains("Welcome, 张三"), "{seen}");
    assert!(!seen.contains("hunter2"), "{seen}");
    assert!(!seen.contains("你好 bob"), "{seen}");
}

/// Issue 11, friction 18: a person behind `nc` who says nothing is told what to type after a moment —
/// and a client that speaks at once (every test above) never sees that line.
#[tokio::test]
async fn a_silent_nc_user_is_told_what_to_type() {
    let server = TestServer::start().await;
    let mut nc = server.connect().await;
    let line = nc.recv_line().await.unwrap();
    assert!(
        line.starts_with("* This is a natter chat server. Type your name"),
        "{line}"
    );
    nc.send_raw(b"dora\n").await;
    assert!(nc
        .recv_line()
        .await
        .unwrap()
        .starts_with("* Welcome, dora!"));
}

/// Issue 18: an `nc` user switches with `/lang zh-CN` and natter speaks Chinese to them from then on —
/// help, presence, errors — while names and message text stay as typed; `/lang en` switches back.
#[tokio::test]
async fn lang_switches_what_natter_says_to_an_nc_user() {
    let server = TestServer::start().await;
    let mut nc = server.connect().await;
    nc.send_raw(b"dave\n").await;
    assert!(nc
        .recv_line()
        .await
        .unwrap()
        .starts_with("* Welcome, dave!"));
    nc.send_raw(b"/lang zh-CN\n/help\n").await;
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.contains("//")) {
        lines.push(nc.recv_line().await.unwrap());
    }
    let said = lines.join("\n");
    assert!(said.contains("* natter 现在对你说中文"), "{said}");
    assert!(said.contains("* 输入一行文字即在 #lobby 发言"), "{said}");
    assert!(said.contains("/msg 名字 内容"), "{said}");
    assert!(said.contains("发送私聊消息"), "{said}");
    assert!(!said.contains("send a private message"), "{said}");
    let mut eve = server.join("eve").await;
    assert_eq!(nc.recv_line().await.unwrap(), "* eve 加入了");
    nc.send_raw("/msg 无名氏 你好\n".as_bytes()).await;
    assert_eq!(
        nc.recv_line().await.unwrap(),
        "! 这里没有叫 \"无名氏\" 的人"
    );
    eve.send(json!({"type":"say","text":"hello 你好"})).await;
    assert!(nc.recv_line().await.unwrap().ends_with("] eve: hello 你好"));
    nc.send_raw(b"/lang klingon\n/lang en\n/help\n").await;
    assert_eq!(
        nc.recv_line().await.unwrap(),
        "! natter 只会 en 和 zh-CN；没有 klingon"
    );
    assert_eq!(
        nc.recv_line().await.unwrap(),
        "* natter speaks English to you now"
    );
    assert!(nc.recv_line().await.unwrap().starts_with("* Type a line"));
}

/// Issue 18: `natter serve --lang zh-CN` greets silent connections and welcomes `nc` users in Chinese.
#[tokio::test]
async fn the_servers_language_greets_and_welcomes() {
    let server = TestServer::start_with(natter_server::Config {
        lang: natter_i18n::Lang::ZhCn,
        ..natter_server::testing::config()
    })
    .await;
    let mut nc = server.connect().await;
    assert_eq!(
        nc.recv_line().await.unwrap(),
        "* 这是一个 natter 聊天服务器。输入你的名字并按回车（natter 自己的客户端：natter join）。"
    );
    nc.send_raw("张三\n".as_bytes()).await;
    assert!(nc.recv_line().await.unwrap().starts_with("* 欢迎，张三！"));
}

/// Issue 12: an `nc` user owns their name by setting a password, and is asked for it when they come back
/// (a wrong one is said, and asked again).
#[tokio::test]
async fn an_nc_user_owns_a_name_with_a_password() {
    let server = TestServer::start().await;
    let mut nc = server.connect().await;
    nc.send_raw(b"carol\n").await;
    assert!(nc
        .recv_line()
        .await
        .unwrap()
        .starts_with("* Welcome, carol!"));
    nc.send_raw("/password 好长的密码 1234\n".as_bytes()).await;
    let mut line = nc.recv_line().await.unwrap();
    while !line.starts_with("* your password is set") {
        line = nc.recv_line().await.unwrap();
    }
    nc.send_raw(b"exit\n").await;
    let _ = nc.read_to_end().await;

    let mut again = server.connect().await;
    again.send_raw(b"carol\n").await;
    let asked = again.recv_line().await.unwrap();
    assert!(
        asked.contains("If it is yours, type its password"),
        "{asked}"
    );
    again.send_raw(b"not it at all\n").await;
    let wrong = again.recv_line().await.unwrap();
    assert!(wrong.starts_with("! wrong password"), "{wrong}");
    again.send_raw("好长的密码 1234\n".as_bytes()).await;
    assert!(again
        .recv_line()
        .await
        .unwrap()
        .starts_with("* Welcome, carol!"));
}
