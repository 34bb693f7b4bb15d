//! The browser client in a real Chromium (Debian's `chromium`, headless, driven through `chromedriver`;
//! `./test` installs both): browser pages and a terminal client chatting in Chinese and English, Enter
//! during an IME composition, hostile text, a reload with a message whose acknowledgement was lost, and the
//! README's screenshots. A missing browser fails these tests; it never skips them.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Client, Connect, TestServer, WAIT};
use fantoccini::{key::Key, Locator};
use serde_json::{json, Value};

/// `chromedriver` on a free loopback port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn driver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver (Debian package chromium-driver; ./test installs it)");
    let deadline = Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// A headless Chromium window of `width`×`height`, in English.
async fn browser(driver: &Driver, width: u32, height: u32) -> fantoccini::Client {
    browser_in(driver, width, height, "en-US").await
}

/// A headless Chromium window of `width`×`height` whose user speaks `lang`.
async fn browser_in(driver: &Driver, width: u32, height: u32, lang: &str) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     format!("--window-size={width},{height}"), format!("--lang={lang}")],
            "prefs": {"intl.accept_languages": lang},
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let page = fantoccini::ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session");
    // The window's size includes what is not page: grow it until the page itself is the size asked for.
    let inner = page
        .execute("return [window.innerWidth, window.innerHeight]", vec![])
        .await
        .unwrap();
    let (w, h) = (
        inner[0].as_u64().unwrap_or(0),
        inner[1].as_u64().unwrap_or(0),
    );
    let (dw, dh) = (
        u64::from(width).saturating_sub(w),
        u64::from(height).saturating_sub(h),
    );
    if dw > 0 || dh > 0 {
        page.set_window_size(width + dw as u32, height + dh as u32)
            .await
            .unwrap();
    }
    page
}

/// Evaluates `script` (a function body) in the page until it returns true.
async fn until(page: &fantoccini::Client, script: &str, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        if page.execute(script, vec![]).await.unwrap() == Value::Bool(true) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The test configuration, keeping files in `dir`.
fn with_files(dir: &tempfile::TempDir) -> natter_server::Config {
    let mut config = natter_server::testing::config();
    config.files.dir = Some(dir.path().join("files"));
    config.files.reserve = 0;
    config
}

/// Opens the page and signs in as `name`.
async fn sign_in(page: &fantoccini::Client, url: &str, name: &str) {
    page.goto(url).await.unwrap();
    page.find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys(name)
        .await
        .unwrap();
    page.find(Locator::Css("#signin button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        page,
        "return !document.getElementById('chat').hidden",
        "the chat",
    )
    .await;
}

async fn type_line(page: &fantoccini::Client, text: &str) {
    let input = page.find(Locator::Id("input")).await.unwrap();
    input.send_keys(text).await.unwrap();
    input.send_keys(&Key::Enter.to_string()).await.unwrap();
}

fn log_contains(text: &str) -> String {
    format!(
        "return document.getElementById('log').textContent.includes({})",
        json!(text)
    )
}

/// Asserts no message reached the terminal (presence and its own acks may have).
async fn no_message(terminal: &mut Client) {
    let frames = terminal.sync().await;
    assert!(
        frames.iter().all(|f| f["type"] != "message"),
        "unexpected: {frames:?}"
    );
}

/// The next message the terminal client gets (skipping presence).
async fn next_message(terminal: &mut Client) -> Value {
    loop {
        let f = terminal.recv().await;
        if f["type"] == "message" {
            return f;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_and_a_terminal_chat_and_nothing_is_lost_or_doubled() {
    let server = TestServer::start_web(natter_server::testing::config()).await;
    let url = format!("http://{}/", server.web.unwrap());
    let driver = driver().await;
    let mut terminal = server.join("终端").await;
    let zhang = browser(&driver, 1280, 800).await;
    let lee = browser(&driver, 1280, 800).await;
    sign_in(&zhang, &url, "张三").await;
    sign_in(&lee, &url, "lee").await;

    // Chinese and English both ways.
    type_line(&zhang, "你好，大家！").await;
    let m = next_message(&mut terminal).await;
    assert_eq!(
        (&m["from"], &m["text"]),
        (&json!("张三"), &json!("你好，大家！"))
    );
    until(&lee, &log_contains("你好，大家！"), "lee to see 张三").await;
    terminal
        .send(json!({"type":"say","text":"hello from the terminal","id":"t1"}))
        .await;
    until(
        &zhang,
        &log_contains("hello from the terminal"),
        "the terminal's line",
    )
    .await;
    until(
        &lee,
        &log_contains("hello from the terminal"),
        "the terminal's line",
    )
    .await;
    // Acknowledged: no longer marked as sending.
    until(
        &zhang,
        "return !document.querySelector('.msg.pending')",
        "the ack",
    )
    .await;

    // Hostile text is shown as text.
    terminal
        .send(
            json!({"type":"say","text":"<img src=x onerror=\"document.title='pwned'\">","id":"t2"}),
        )
        .await;
    until(&zhang, &log_contains("<img src=x"), "the hostile line").await;
    let injected = zhang
        .execute(
            "return document.querySelectorAll('#log img').length",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(injected, json!(0));
    assert_ne!(zhang.title().await.unwrap(), "pwned");

    // IME: an Enter that ends a composition chooses characters; it never sends.
    zhang
        .execute(
            "const i = document.getElementById('input'); i.value = '拼音';
             i.dispatchEvent(new CompositionEvent('compositionstart', {bubbles: true}));
             i.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', isComposing: true, bubbles: true, cancelable: true}));
             i.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', keyCode: 229, bubbles: true, cancelable: true}));
             i.dispatchEvent(new CompositionEvent('compositionend', {bubbles: true, data: '拼音'}));
             // Safari's committing Enter comes just after compositionend, with isComposing false.
             i.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true, cancelable: true}));
             return i.value;",
            vec![],
        )
        .await
        .unwrap();
    no_message(&mut terminal).await;
    // A real Enter afterwards sends what was composed.
    tokio::time::sleep(Duration::from_millis(100)).await;
    zhang
        .find(Locator::Id("input"))
        .await
        .unwrap()
        .send_keys(&Key::Enter.to_string())
        .await
        .unwrap();
    assert_eq!(next_message(&mut terminal).await["text"], "拼音");

    // A reload with a message whose ack never came: sent again with its id, delivered exactly once.
    for _ in 0..2 {
        // `before` marks the page before the reload, so the wait below cannot be satisfied by it.
        lee.execute(
            "localStorage.setItem('natter.outbox', JSON.stringify([{id: 'lost-ack-1', room: 'lobby', to: null, text: 'exactly once'}]));
             window.before = true;
             location.reload();",
            vec![],
        )
        .await
        .unwrap();
        until(&lee, "return window.before === undefined && document.readyState === 'complete' && !document.getElementById('chat').hidden && !document.querySelector('.msg.pending') && localStorage.getItem('natter.outbox') === '[]'", "the resend's ack").await;
    }
    assert_eq!(next_message(&mut terminal).await["text"], "exactly once");
    no_message(&mut terminal).await;
    until(
        &lee,
        "return localStorage.getItem('natter.outbox') === '[]'",
        "an empty outbox",
    )
    .await;

    zhang.close().await.unwrap();
    lee.close().await.unwrap();
    server.shutdown().await;
}

/// The server is stopped and started again on the same ports: the page comes back by itself and shows
/// what it missed, with no gap and nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_is_survived_without_a_click() {
    let dir = tempfile::tempdir().unwrap();
    let config = || {
        let mut config = natter_server::testing::config();
        config.db = natter_server::store::DbPath::File(dir.path().join("natter.db"));
        config
    };
    let server = TestServer::start_web(config()).await;
    let (chat, web) = (server.addr, server.web.unwrap());
    let driver = driver().await;
    let page = browser(&driver, 1280, 800).await;
    sign_in(&page, &format!("http://{web}/"), "页面").await;
    let mut terminal = server.join("terminal").await;
    terminal
        .send(json!({"type":"say","text":"before the restart","id":"1"}))
        .await;
    until(&page, &log_contains("before the restart"), "the first line").await;
    drop(terminal);
    server.shutdown().await;
    until(
        &page,
        "return !document.getElementById('banner').hidden",
        "the reconnecting banner",
    )
    .await;
    // The browser goes offline too (as far as the page can tell): after its next try it says so, and
    // waits for the network instead of counting down.
    page.execute(
        "window.online = false; Object.defineProperty(navigator, 'onLine', {get: () => window.online, configurable: true});",
        vec![],
    )
    .await
    .unwrap();
    until(
        &page,
        "return document.getElementById('banner').textContent.startsWith('offline')",
        "the offline banner",
    )
    .await;

    let server = TestServer::start_web_at(chat, web, config()).await;
    // Back online: the page reconnects at once.
    page.execute(
        "window.online = true; window.dispatchEvent(new Event('online'));",
        vec![],
    )
    .await
    .unwrap();
    let mut terminal = server.join("terminal").await;
    terminal
        .send(json!({"type":"say","text":"after the restart","id":"2"}))
        .await;
    until(
        &page,
        &log_contains("after the restart"),
        "the line sent while it was away",
    )
    .await;
    until(
        &page,
        "return document.getElementById('banner').hidden",
        "the banner to go",
    )
    .await;
    let count = |text: &str| {
        format!(
            "return [...document.querySelectorAll('#log .msg')].filter(m => m.textContent.includes({})).length",
            json!(text)
        )
    };
    for text in ["before the restart", "after the restart"] {
        assert_eq!(
            page.execute(&count(text), vec![]).await.unwrap(),
            json!(1),
            "{text}"
        );
    }
    page.close().await.unwrap();
    server.shutdown().await;
}

/// A file shared from the page (its file button) arrives byte-exact at a terminal client, and an image a
/// terminal client shares is shown in the page, byte-exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_shared_in_the_page_reaches_a_terminal_and_back() {
    use sha2::Digest;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_web(with_files(&dir)).await;
    let url = format!("http://{}/", server.web.unwrap());
    let driver = driver().await;
    let page = browser(&driver, 1280, 800).await;
    sign_in(&page, &url, "网页").await;
    let mut terminal = server.join("终端").await;
    let bytes: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let path = dir.path().join("实验报告.bin");
    std::fs::write(&path, &bytes).unwrap();
    page.find(Locator::Id("file"))
        .await
        .unwrap()
        .send_keys(path.to_str().unwrap())
        .await
        .unwrap();
    let m = next_message(&mut terminal).await;
    assert_eq!(m["file"]["name"], "实验报告.bin");
    let id = m["file"]["id"].as_u64().unwrap();
    // The terminal downloads it on a transfer connection.
    terminal
        .send(json!({"type":"fetch","file":id,"id":"f"}))
        .await;
    let ready = loop {
        let f = terminal.recv().await;
        if f["id"] == "f" {
            break f;
        }
    };
    let mut stream =
        tokio::io::BufReader::new(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    let request = json!({"type":"download","token":ready["token"],"offset":0});
    stream
        .get_mut()
        .write_all(format!("{request}\n").as_bytes())
        .await
        .unwrap();
    let mut head = String::new();
    stream.read_line(&mut head).await.unwrap();
    let mut got = Vec::new();
    stream.read_to_end(&mut got).await.unwrap();
    assert!(got == bytes, "the page's upload arrived different");

    // And back: a terminal shares an image; the page shows it, and its bytes are the terminal's.
    let image: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    let sha: String = sha2::Sha256::digest(&image)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    terminal
        .send(json!({"type":"offer","name":"photo.png","size":image.len(),"sha256":sha,"id":"o"}))
        .await;
    let ready = loop {
        let f = terminal.recv().await;
        if f["id"] == "o" && f["type"] == "upload_ready" {
            break f;
        }
    };
    let mut up =
        tokio::io::BufReader::new(tokio::net::TcpStream::connect(server.addr).await.unwrap());
    let request = json!({"type":"upload","token":ready["token"]});
    up.get_mut()
        .write_all(format!("{request}\n").as_bytes())
        .await
        .unwrap();
    let mut line = String::new();
    up.read_line(&mut line).await.unwrap();
    up.get_mut().write_all(&image).await.unwrap();
    line.clear();
    up.read_line(&mut line).await.unwrap();
    assert!(line.contains("uploaded"), "{line}");
    until(
        &page,
        "return !!document.querySelector('img.preview[src]')",
        "the image's preview",
    )
    .await;
    let seen = page
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const img = document.querySelector('img.preview[src]');
             fetch(img.src).then(r => r.arrayBuffer()).then(b => crypto.subtle.digest('SHA-256', b))
               .then(h => done([...new Uint8Array(h)].map(x => x.toString(16).padStart(2, '0')).join('')));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(seen, json!(sha));
    page.close().await.unwrap();
    server.shutdown().await;
}

/// The browser keeps a key of its own (WebCrypto Ed25519 in IndexedDB): the name it first signed in
/// with is its own, it comes back after a reload, and another browser cannot take it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_is_kept_for_the_browser_that_took_it() {
    let server = TestServer::start_web(natter_server::testing::config()).await;
    let url = format!("http://{}/", server.web.unwrap());
    let driver = driver().await;
    let mine = browser(&driver, 1280, 800).await;
    sign_in(&mine, &url, "主人").await;
    // The server knows the name as owned: a terminal guest cannot take it either.
    let mut guest = server.connect().await;
    guest
        .send(json!({"type":"hello","name":"主人","version":1}))
        .await;
    assert_eq!(guest.expect("error").await["code"], "name_owned");
    mine.close().await.unwrap();
    let other = browser(&driver, 1280, 800).await;
    other.goto(&url).await.unwrap();
    other
        .find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("主人")
        .await
        .unwrap();
    other
        .find(Locator::Css("#signin button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &other,
        "return document.getElementById('signin-error').textContent.includes('主人')",
        "the refusal",
    )
    .await;
    other.close().await.unwrap();
    server.shutdown().await;
}

/// Older history comes when the conversation is scrolled to its top.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrolling_up_loads_older_history() {
    let mut config = natter_server::testing::config();
    config.replay = 5;
    let server = TestServer::start_web(config).await;
    let url = format!("http://{}/", server.web.unwrap());
    let mut bob = server.join("bob").await;
    for i in 0..30 {
        bob.send(json!({"type":"say","text":format!("line number {i:02}"),"id":format!("{i}")}))
            .await;
    }
    bob.sync().await;
    let driver = driver().await;
    let page = browser(&driver, 1280, 800).await;
    sign_in(&page, &url, "reader").await;
    until(&page, &log_contains("line number 29"), "the replay").await;
    let shown = page
        .execute(&log_contains("line number 20"), vec![])
        .await
        .unwrap();
    assert_eq!(shown, json!(false), "only the last 5 are replayed");
    // Scrolled to the top (the log made short enough to scroll) until the oldest line is there: each
    // page of history asked for when the top is reached.
    let scroll_to_top = format!(
        "const log = document.getElementById('log'); log.style.height = '60px';
         log.scrollTop = 1; log.scrollTop = 0; log.dispatchEvent(new Event('scroll'));
         {}",
        log_contains("line number 00")
    );
    until(&page, &scroll_to_top, "the oldest line").await;
    page.close().await.unwrap();
    server.shutdown().await;
}

/// Files dropped onto the conversation or pasted into the input are shared; a mention or a private
/// message while the tab is hidden raises a desktop notification (once the user allowed them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_pastes_and_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_web(with_files(&dir)).await;
    let url = format!("http://{}/", server.web.unwrap());
    let driver = driver().await;
    let page = browser(&driver, 1280, 800).await;
    sign_in(&page, &url, "dropper").await;
    let mut terminal = server.join("watcher").await;
    // A drop and a paste, as the browser delivers them: events carrying files.
    page.execute(
        "const file = (name, text) => new File([text], name, {type: 'text/plain'});
         const drop = new DataTransfer(); drop.items.add(file('dropped.txt', 'from a drop'));
         document.getElementById('log').dispatchEvent(new DragEvent('drop', {dataTransfer: drop, bubbles: true, cancelable: true}));
         const paste = new DataTransfer(); paste.items.add(file('pasted.txt', 'from a paste'));
         document.getElementById('input').dispatchEvent(new ClipboardEvent('paste', {clipboardData: paste, bubbles: true, cancelable: true}));",
        vec![],
    )
    .await
    .unwrap();
    let mut names = vec![
        next_message(&mut terminal).await["file"]["name"]
            .as_str()
            .unwrap()
            .to_owned(),
        next_message(&mut terminal).await["file"]["name"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    names.sort();
    assert_eq!(names, ["dropped.txt", "pasted.txt"]);
    // Notifications: allowed, the tab hidden; the page's Notification records what it was asked to show.
    page.execute(
        "window.shown = [];
         window.Notification = class { constructor(title, options) { window.shown.push(title + ': ' + options.body); } };
         window.Notification.permission = 'granted';
         Object.defineProperty(document, 'hidden', {get: () => true});",
        vec![],
    )
    .await
    .unwrap();
    terminal
        .send(json!({"type":"say","text":"no one in particular","id":"1"}))
        .await;
    terminal
        .send(json!({"type":"say","text":"dropper, look at this","id":"2"}))
        .await;
    terminal
        .send(json!({"type":"whisper","to":"dropper","text":"psst","id":"3"}))
        .await;
    until(
        &page,
        "return window.shown.length === 2",
        "two notifications",
    )
    .await;
    let shown = page.execute("return window.shown", vec![]).await.unwrap();
    assert_eq!(
        shown,
        json!([
            "watcher — #lobby: dropper, look at this",
            "watcher — watcher: psst"
        ])
    );
    page.close().await.unwrap();
    server.shutdown().await;
}

/// 10,000 messages as fast as the server sends them: all arrive, the page keeps at most 500 rows in its
/// document (so a long conversation costs the same as a short one), and it keeps drawing meanwhile — the
/// longest gap between frames is printed for the README (measured, not asserted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_ten_thousand_messages() {
    let server = TestServer::start_web(natter_server::testing::config()).await;
    let url = format!("http://{}/", server.web.unwrap());
    let driver = driver().await;
    let page = browser(&driver, 1280, 800).await;
    sign_in(&page, &url, "reader").await;
    page.execute(
        "window.gaps = []; let last = performance.now();
         const tick = (now) => { window.gaps.push(now - last); last = now; requestAnimationFrame(tick); };
         requestAnimationFrame(tick);",
        vec![],
    )
    .await
    .unwrap();
    let mut flood = server.join("flood").await;
    let started = Instant::now();
    for i in 0..10_000 {
        flood
            .send(json!({"type":"say","text":format!("flood message {i:05}"),"id":format!("{i}")}))
            .await;
    }
    until(
        &page,
        &log_contains("flood message 09999"),
        "the last message",
    )
    .await;
    let took = started.elapsed();
    let rows = page
        .execute(
            "return document.querySelectorAll('#log .msg').length",
            vec![],
        )
        .await
        .unwrap();
    assert!(rows.as_u64().unwrap() <= 500, "{rows} rows in the document");
    let worst = page
        .execute("return Math.max(...window.gaps.slice(1))", vec![])
        .await
        .unwrap();
    eprintln!("10,000 messages shown in {took:?}; the longest gap between frames {worst} ms");
    page.close().await.unwrap();
    server.shutdown().await;
}

/// What the page shows of a conversation: unread counts and mention marks on the others, the member
/// list, the topic, `HH:MM` stamps with the full one on hover, names in stable colours; and it is usable
/// with the keyboard alone (the input has the focus after signing in; Tab completes names).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_counts_mentions_members_topic_and_stamps() {
    let server = TestServer::start_web(natter_server::testing::config()).await;
    let url = format!("http://{}/", server.web.unwrap());
    // bob owns his name, so the room he opens is his and he may set its topic.
    let mut bob = server.connect().await;
    bob.hello_owned("bob", 7).await;
    bob.send(json!({"type":"join","room":"rust"})).await;
    bob.send(json!({"type":"moderate","room":"rust","action":"topic","text":"borrowck help"}))
        .await;
    bob.sync().await;
    let driver = driver().await;
    let page = browser(&driver, 1280, 800).await;
    sign_in(&page, &url, "carol").await;
    type_line(&page, "/join rust").await;
    until(
        &page,
        "return document.getElementById('topic').textContent === 'borrowck help'",
        "the topic",
    )
    .await;
    until(
        &page,
        "return document.getElementById('members').textContent.includes('bob')",
        "the member list",
    )
    .await;
    // Tab completes a member's name at the start of the line.
    page.execute("document.getElementById('input').focus()", vec![])
        .await
        .unwrap();
    let input = page.find(Locator::Id("input")).await.unwrap();
    input.send_keys("bo").await.unwrap();
    input.send_keys(&Key::Tab.to_string()).await.unwrap();
    assert_eq!(
        page.execute("return document.getElementById('input').value", vec![])
            .await
            .unwrap(),
        json!("bob: ")
    );
    page.execute("document.getElementById('input').value = ''", vec![])
        .await
        .unwrap();
    // Back in the lobby, #rust gets two messages, one of them a mention: counted, and marked.
    page.execute("[...document.querySelectorAll('.conv')][0].click()", vec![])
        .await
        .unwrap();
    bob.send(json!({"type":"say","room":"rust","text":"anyone?","id":"1"}))
        .await;
    bob.send(json!({"type":"say","room":"rust","text":"carol: you around?","id":"2"}))
        .await;
    until(
        &page,
        "const u = document.querySelector('.conv .unread'); return !!u && u.textContent === '2' && u.classList.contains('mention')",
        "the unread count and the mention mark",
    )
    .await;
    page.execute("[...document.querySelectorAll('.conv')][1].click()", vec![])
        .await
        .unwrap();
    until(
        &page,
        &log_contains("carol: you around?"),
        "the #rust conversation",
    )
    .await;
    let stamp = page
        .execute(
            "const t = document.querySelector('#log .msg time'); return [t.textContent, t.title, getComputedStyle(document.querySelector('#log .msg .from')).color]",
            vec![],
        )
        .await
        .unwrap();
    let (short, full) = (stamp[0].as_str().unwrap(), stamp[1].as_str().unwrap());
    assert_eq!(short.len(), 5, "{short}");
    assert!(full.len() == 19 && full.contains(short), "{full}");
    assert!(
        page.execute("return !document.querySelector('.conv .unread')", vec![])
            .await
            .unwrap()
            == json!(true)
    );
    page.close().await.unwrap();
    server.shutdown().await;
}

/// In a real browser, a page of another origin (here `localhost` instead of `127.0.0.1`: another origin to
/// the browser) cannot open natter's WebSocket; natter's own page can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_another_origin_cannot_open_the_websocket() {
    let server = TestServer::start_web(natter_server::testing::config()).await;
    let web = server.web.unwrap();
    let driver = driver().await;
    let page = browser(&driver, 800, 600).await;
    let try_socket = format!(
        "const done = arguments[arguments.length - 1];
         const ws = new WebSocket('ws://127.0.0.1:{}/ws');
         ws.onopen = () => done('open'); ws.onerror = () => done('refused');",
        web.port()
    );
    page.goto(&format!("http://localhost:{}/", web.port()))
        .await
        .unwrap();
    assert_eq!(
        page.execute_async(&try_socket, vec![]).await.unwrap(),
        json!("refused")
    );
    page.goto(&format!("http://127.0.0.1:{}/", web.port()))
        .await
        .unwrap();
    assert_eq!(
        page.execute_async(&try_socket, vec![]).await.unwrap(),
        json!("open")
    );
    page.close().await.unwrap();
    server.shutdown().await;
}

/// A browser whose user reads Chinese gets the page in Chinese, from natter's catalogues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_speaks_chinese_to_a_chinese_browser() {
    let server = TestServer::start_web(natter_server::testing::config()).await;
    let url = format!("http://{}/", server.web.unwrap());
    let driver = driver().await;
    let page = browser_in(&driver, 1280, 800, "zh-CN").await;
    page.goto(&url).await.unwrap();
    until(
        &page,
        "return document.querySelector('#signin button').textContent === '加入'",
        "the Chinese page",
    )
    .await;
    assert_eq!(
        page.execute("return document.documentElement.lang", vec![])
            .await
            .unwrap(),
        json!("zh-CN")
    );
    sign_in(&page, &url, "王五").await;
    let placeholder = page
        .execute(
            "return document.getElementById('input').placeholder",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(placeholder, json!("消息——输入 /help 查看命令"));
    // Errors too, from the catalogue: a message to nobody.
    type_line(&page, "/msg 不存在 你好").await;
    until(&page, &log_contains("这里没有叫"), "the Chinese error").await;
    // The page's own switch: `/lang en` (or the sign-in form's), remembered.
    type_line(&page, "/lang en").await;
    until(
        &page,
        "return document.getElementById('input').placeholder.startsWith('Message')",
        "the English page",
    )
    .await;
    page.refresh().await.unwrap();
    until(
        &page,
        "return document.querySelector('#signin button').textContent === 'Join'",
        "English after a reload",
    )
    .await;
    page.close().await.unwrap();
    server.shutdown().await;
}

/// The README's screenshots, at a laptop's size and a phone's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_for_the_readme() {
    let server = TestServer::start_web(natter_server::testing::config()).await;
    let url = format!("http://{}/", server.web.unwrap());
    let driver = driver().await;
    let mut bob = server.join("bob").await;
    bob.send(json!({"type":"join","room":"rust"})).await;
    bob.sync().await;
    for (i, text) in [
        "morning! the build is green again ✅",
        "张三, did the upload of the lab report work?",
        "see https://example.org/natter for the notes",
    ]
    .iter()
    .enumerate()
    {
        bob.send(json!({"type":"say","text":text,"id":format!("s{i}")}))
            .await;
    }
    bob.sync().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    for (width, height) in [(1280, 800), (375, 700)] {
        let page = browser(&driver, width, height).await;
        // Each window is another browser, with a key of its own: the phone is 李四's.
        let me = if width > 1000 { "张三" } else { "李四" };
        sign_in(&page, &url, me).await;
        until(
            &page,
            &log_contains("see https://example.org"),
            "the history",
        )
        .await;
        if width > 1000 {
            type_line(&page, "好的，谢谢！上传成功了。").await;
        }
        until(&page, &log_contains("上传成功了"), "张三's line").await;
        until(
            &page,
            "return !document.querySelector('.msg.pending')",
            "the ack",
        )
        .await;
        let png = page.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        std::fs::write(root.join(format!("web-{width}x{height}.png")), png).unwrap();
        page.close().await.unwrap();
    }
    server.shutdown().await;
}
