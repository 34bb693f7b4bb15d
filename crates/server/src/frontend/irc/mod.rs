//! The IRC front end (`natter serve --irc ADDR`): irssi, WeeChat, bots and phone apps become natter
//! clients.
//!
//! Like the plain-text front end it translates what its clients send into [`ClientFrame`]s and renders
//! the hub's items as its own lines; the hub does not know. `#lobby` is the lobby, `#rust` the room
//! `rust`, `PRIVMSG nick` a private message. IRC's questions about the present (NAMES, WHO, WHOIS, LIST,
//! LUSERS, TOPIC and MODE queries) are answered here from the hub's state, read-only; everything that
//! changes something (registration, messages, JOIN, PART, QUIT, TOPIC and MODE changes, KICK, INVITE)
//! is a frame, carried out by the session as any client's is.
//!
//! What only IRC has — a username, a real name, an away message — lives in the [`Directory`] the IRC
//! connections share, keyed by natter name. PROTOCOL.md §9 documents the mapping.

mod commands;
mod render;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::{FrontEnd, Input, Render};
use crate::session::Shared;
use wire::Line;

/// What an IRC user said about themselves that natter has no field for. One per connected IRC name.
#[derive(Debug, Clone)]
pub struct Ident {
    pub user: String,
    pub realname: String,
    pub away: Option<String>,
    /// User mode `+i`: left out of `WHO` masks for those who share no channel with them.
    pub invisible: bool,
}

/// The IRC users online, by folded natter name: their [`Ident`].
#[derive(Default)]
pub struct Directory {
    users: RwLock<HashMap<String, Arc<Ident>>>,
}

/// How a name looks to IRC clients (WHO, WHOIS, sources): an IRC user's own username and real name on
/// host `irc`; natter's other users `natter@natter`, their name as real name. natter never shows
/// addresses.
pub struct Seen {
    pub user: String,
    pub host: &'static str,
    pub realname: String,
    /// The directory's entry, for an IRC user.
    pub ident: Option<Arc<Ident>>,
}

impl Directory {
    /// How `name` looks to IRC clients.
    pub fn seen(&self, name: &str) -> Seen {
        match self.get(name) {
            Some(ident) => Seen {
                user: ident.user.clone(),
                host: "irc",
                realname: ident.realname.clone(),
                ident: Some(ident),
            },
            None => Seen {
                user: "natter".into(),
                host: "natter",
                realname: name.to_owned(),
                ident: None,
            },
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Ident>> {
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.get(&natter_proto::name::fold(name)).cloned()
    }

    fn set(&self, name: &str, ident: Ident) -> Arc<Ident> {
        let ident = Arc::new(ident);
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        users.insert(natter_proto::name::fold(name), ident.clone());
        ident
    }

    /// Forgets `name`'s entry if it is still `ident` (a later connection may have replaced it).
    fn remove(&self, name: &str, ident: &Arc<Ident>) {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let key = natter_proto::name::fold(name);
        if users.get(&key).is_some_and(|i| Arc::ptr_eq(i, ident)) {
            users.remove(&key);
        }
    }
}

/// The IRC front end's settings (`--irc-server-name`, `--irc-motd`).
#[derive(Debug, Clone)]
pub struct IrcConfig {
    /// The server's name in 001/004/PONG and as the source of its numerics.
    pub server_name: Arc<str>,
    /// The message of the day, line by line (`None`: 422, no MOTD).
    pub motd: Option<String>,
}

impl Default for IrcConfig {
    fn default() -> Self {
        Self {
            server_name: "natter".into(),
            motd: None,
        }
    }
}

/// IRCv3 capabilities natter offers, one bit each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Cap {
    MessageTags = 1,
    ServerTime = 1 << 1,
    EchoMessage = 1 << 2,
    LabeledResponse = 1 << 3,
    Batch = 1 << 4,
    CapNotify = 1 << 5,
    MultiPrefix = 1 << 6,
    UserhostInNames = 1 << 7,
    ExtendedJoin = 1 << 8,
    AccountTag = 1 << 9,
    AwayNotify = 1 << 12,
    Setname = 1 << 13,
    Multiline = 1 << 14,
    Chathistory = 1 << 10,
    Sasl = 1 << 11,
}

/// Every capability with its name, in the order `CAP LS` lists them.
const CAPS: &[(Cap, &str)] = &[
    (Cap::AccountTag, "account-tag"),
    (Cap::AwayNotify, "away-notify"),
    (Cap::Batch, "batch"),
    (Cap::CapNotify, "cap-notify"),
    (Cap::Chathistory, "draft/chathistory"),
    (Cap::Multiline, "draft/multiline"),
    (Cap::EchoMessage, "echo-message"),
    (Cap::ExtendedJoin, "extended-join"),
    (Cap::LabeledResponse, "labeled-response"),
    (Cap::MessageTags, "message-tags"),
    (Cap::MultiPrefix, "multi-prefix"),
    (Cap::Sasl, "sasl"),
    (Cap::ServerTime, "server-time"),
    (Cap::Setname, "setname"),
    (Cap::UserhostInNames, "userhost-in-names"),
];

/// Opens a labeled response (followed by the label and a newline): the renderer gathers what follows.
const OPEN: &str = "\u{1}natter-open-label ";
/// Closes it: the renderer sends what it gathered as one labeled line, a labeled batch, or `ACK`.
const CLOSE: &str = "\u{1}natter-close-label";

/// What the translating half and the rendering half of one connection share.
#[derive(Default)]
struct State {
    /// The caps again, readable without the lock: the renderer's hot path (a room message) reads only
    /// these. Written with `caps`, under the lock.
    caps_seen: Arc<std::sync::atomic::AtomicU32>,
    /// The nick registered (numerics say `*` before).
    nick: Option<String>,
    /// The nick asked for last (before registration: for 432 and 433).
    asked: Option<String>,
    caps: u32,
    /// Messages sent and not yet acked, by the `id` given them: what to echo, or which error to give.
    pending: HashMap<String, Pending>,
    /// What USER said: username and real name.
    user: (String, String),
    /// Once welcomed: the name and the entry this connection put in the [`Directory`].
    ident: Option<(String, Arc<Ident>)>,
    /// CHATHISTORY requests waiting for their `history` answers, by id.
    history: HashMap<String, HistoryPending>,
    /// CHATHISTORY TARGETS waiting for their `conversations` answer: the label, by id.
    targets: HashMap<String, Option<String>>,
}

/// A CHATHISTORY request on its way: what to call the batch, and the parts still to come.
struct HistoryPending {
    target: String,
    subcommand: String,
    label: Option<String>,
    parts: u8,
    messages: Vec<natter_proto::frame::Message>,
}

impl State {
    fn has(&self, cap: Cap) -> bool {
        self.caps & cap as u32 != 0
    }

    /// Changes the caps (and their lock-free copy).
    fn set_caps(&mut self, caps: u32) {
        self.caps = caps;
        self.caps_seen
            .store(caps, std::sync::atomic::Ordering::Relaxed);
    }

    fn nick(&self) -> &str {
        self.nick.as_deref().unwrap_or("*")
    }
}

/// A PRIVMSG or NOTICE on its way through the store.
struct Pending {
    /// A PRIVMSG or NOTICE (echoed with echo-message); otherwise a channel request (TOPIC, MODE, KICK).
    echo: bool,
    notice: bool,
    target: String,
    text: String,
    label: Option<String>,
    /// The client tags it was sent with (echoed with it).
    tags: natter_proto::frame::Tags,
}

/// The most bytes of a multiline batch (announced with the cap).
pub(super) const MULTILINE_BYTES: usize = 4096;

/// A `draft/multiline` batch being received.
struct Multiline {
    reference: String,
    target: String,
    text: String,
    notice: bool,
    label: Option<String>,
}

/// One IRC connection's translating half.
pub struct Irc {
    shared: Arc<Shared>,
    state: Arc<Mutex<State>>,
    /// Registration: what NICK, USER and PASS said, and whether CAP negotiation holds it back.
    nick: Option<String>,
    user: Option<(String, String)>,
    pass: Option<String>,
    /// SASL PLAIN: `AUTHENTICATE PLAIN` came, its credentials are next.
    sasl: bool,
    /// A multiline batch being received.
    multiline: Option<Multiline>,
    negotiating: bool,
    /// The `id`s of this connection's messages: a random prefix and a counter. natter acknowledges a
    /// repeated id from the same name without storing the message again (exactly-once resume), so the
    /// ids of two connections under one name must never meet.
    id_prefix: u64,
    next_id: u64,
}

impl Irc {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            state: Arc::default(),
            nick: None,
            user: None,
            pass: None,
            sasl: false,
            multiline: None,
            negotiating: false,
            id_prefix: rand_core::RngCore::next_u64(&mut rand_core::OsRng),
            next_id: 0,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn server(&self) -> Arc<str> {
        self.shared.config().irc.server_name.clone()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Irc {
    fn drop(&mut self) {
        if let Some((name, ident)) = self.state().ident.take() {
            self.shared.irc.remove(&name, &ident);
        }
    }
}

impl FrontEnd for Irc {
    fn translate(&mut self, line: &[u8], registered: bool) -> Input {
        let text = String::from_utf8_lossy(line);
        let Some(line) = Line::parse(&text) else {
            return Input::Nothing;
        };
        let label = line.label().map(str::to_owned);
        let lang = self.shared.config().lang;
        let mut reply = Reply::new(&self.server(), self.state().nick().to_owned(), lang);
        // Client tags may take 4094 bytes, the rest of a line 510: longer is refused whole, never cut.
        let (tags, rest) = match text.strip_prefix('@') {
            Some(tagged) => tagged.split_once(' ').unwrap_or((tagged, "")),
            None => ("", &*text),
        };
        if tags.len() > 4094 || rest.trim_end_matches(['\r', '\n']).len() > 510 {
            reply.num("417", &[&reply.t("irc-input-too-long")]);
            return Input::Notice(reply.finish(None, false).unwrap_or_default());
        }
        let input = if registered {
            self.command(&line, &mut reply, label.as_deref())
        } else {
            self.register(&line, &mut reply)
        };
        let labeled = self.state().has(Cap::LabeledResponse);
        let label = label.filter(|_| labeled);
        // A labeled command carried out by the session: its answers are gathered by the renderer
        // between two markers (a PRIVMSG's label rides on its echo instead).
        let one_target = !line.param(0).contains(',');
        let own_label = match line.command.as_str() {
            "PRIVMSG" | "NOTICE" | "TAGMSG" => one_target,
            "CHATHISTORY" => true,
            _ => false,
        };
        if let (Some(label), false) = (&label, own_label) {
            let frames = match input {
                Input::Frame(frame) => vec![frame],
                Input::Frames(frames) => frames,
                _ => Vec::new(),
            };
            if frames.is_empty() {
                return Input::Notice(labeled_response(&self.server(), label, &reply.lines));
            }
            let lines = reply.finish(None, false).unwrap_or_default();
            return Input::Wrapped(format!("{OPEN}{label}\n{lines}"), frames, CLOSE.to_owned());
        }
        let answer = reply.finish(label.as_deref(), labeled);
        match (input, answer) {
            (Input::Nothing, Some(lines)) => Input::Notice(lines),
            (Input::Frame(frame), Some(lines)) => Input::Both(lines, vec![frame]),
            (Input::Frames(frames), Some(lines)) => Input::Both(lines, frames),
            (input, _) => input,
        }
    }

    fn renderer(&self) -> Box<dyn Render> {
        Box::new(render::IrcRender::new(
            self.shared.clone(),
            self.state.clone(),
        ))
    }

    fn name(&self) -> &'static str {
        "irc"
    }

    fn pinged_when_idle(&self) -> bool {
        true
    }
}

/// Lines answered directly (without the hub), collected while a command is translated.
struct Reply {
    server: String,
    nick: String,
    /// The language of the texts (the server's `--lang`).
    lang: natter_i18n::Lang,
    lines: Vec<String>,
}

impl Reply {
    fn new(server: &str, nick: String, lang: natter_i18n::Lang) -> Self {
        Self {
            server: server.to_owned(),
            nick,
            lang,
            lines: Vec::new(),
        }
    }

    /// A text from the catalogue.
    fn t(&self, id: &str) -> String {
        natter_i18n::text(self.lang, id, &[])
    }

    /// `:server NNN nick params…` — the last parameter gets a `:` when it needs one.
    fn num(&mut self, numeric: &str, params: &[&str]) {
        let mut line = format!(":{} {numeric} {}", self.server, self.nick);
        push_params(&mut line, params);
        self.lines.push(line);
    }

    /// A line from the server with no nick in it.
    fn raw(&mut self, line: String) {
        self.lines.push(line);
    }

    /// The lines, with `label` on them (one line: tagged; several: a labeled batch; none: nothing here).
    fn finish(self, label: Option<&str>, labeled: bool) -> Option<String> {
        if self.lines.is_empty() {
            return None;
        }
        if let Some(label) = label.filter(|_| labeled) {
            return Some(labeled_response(&self.server, label, &self.lines));
        }
        let mut out = String::new();
        for line in &self.lines {
            out.push_str(line);
            out.push_str("\r\n");
        }
        Some(out)
    }
}

/// The answer to a labeled request (labeled-response): no line is an `ACK`, one line carries the label,
/// more are a `labeled-response` batch (a batch already inside, such as chathistory's, stays as it is).
fn labeled_response(server: &str, label: &str, lines: &[String]) -> String {
    match lines {
        [] => format!("@label={label} :{server} ACK\r\n"),
        [line] => match line.strip_prefix('@') {
            Some(tags) => format!("@label={label};{tags}\r\n"),
            None => format!("@label={label} {line}\r\n"),
        },
        _ => {
            let id = format!("L{label}").replace(|c: char| !c.is_ascii_alphanumeric(), "-");
            let mut out = format!("@label={label} :{server} BATCH +{id} labeled-response\r\n");
            for line in lines {
                match line.strip_prefix('@') {
                    Some(tags) if !tags.starts_with("batch=") => {
                        out.push_str(&format!("@batch={id};{tags}\r\n"))
                    }
                    Some(_) => out.push_str(&format!("{line}\r\n")),
                    None => out.push_str(&format!("@batch={id} {line}\r\n")),
                }
            }
            out.push_str(&format!(":{server} BATCH -{id}\r\n"));
            out
        }
    }
}

/// Appends IRC parameters: the last one after `:` when it is empty, has a space or starts with `:`.
fn push_params(line: &mut String, params: &[&str]) {
    for (i, param) in params.iter().enumerate() {
        line.push(' ');
        let last = i + 1 == params.len();
        if last && (param.is_empty() || param.contains(' ') || param.starts_with(':')) {
            line.push(':');
        }
        line.push_str(param);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Outgoing;
    use proptest::prelude::*;

    /// What a hostile or broken IRC client may send never panics either half: each line is translated
    /// (before and after registration) and whatever it asks is rendered.
    #[test]
    fn any_line_is_translated_and_rendered_without_panicking() {
        let core = crate::Core::start(crate::testing::config()).unwrap();
        let irc = std::cell::RefCell::new(Irc::new(core.shared.clone()));
        let render = std::cell::RefCell::new(irc.borrow().renderer());
        let commands = prop::sample::select(vec![
            "NICK",
            "USER",
            "PASS",
            "CAP",
            "JOIN",
            "PART",
            "PRIVMSG",
            "NOTICE",
            "TOPIC",
            "MODE",
            "KICK",
            "INVITE",
            "WHO",
            "WHOIS",
            "NAMES",
            "LIST",
            "CHATHISTORY",
            "AUTHENTICATE",
            "AWAY",
            "QUIT",
            "PING",
            "ISON",
            "USERHOST",
            "LUSERS",
            "MOTD",
            "X",
        ]);
        let line = (
            proptest::option::of("[a-z=;+\\\\ ]{0,20}"),
            commands,
            prop::collection::vec("[#a-zA-Z0-9`|\\[\\]张*=:,.\\-+ \u{1}\u{3}]{0,12}", 0..6),
        )
            .prop_map(|(tags, command, params)| {
                let tags = tags.map(|t| format!("@{t} ")).unwrap_or_default();
                format!("{tags}{command} {}", params.join(" "))
            });
        let mut runner = proptest::test_runner::TestRunner::default();
        runner
            .run(&(line, any::<bool>()), |(line, registered)| {
                let mut out = Vec::new();
                let mut render = render.borrow_mut();
                let input = irc.borrow_mut().translate(line.as_bytes(), registered);
                let rendered = match input {
                    Input::Notice(text) | Input::Both(text, _) => Some(text),
                    Input::Wrapped(open, _, close) => {
                        render.render(&Outgoing::Notice(open), &mut out);
                        Some(close)
                    }
                    _ => None,
                };
                if let Some(text) = rendered {
                    render.render(&Outgoing::Notice(text), &mut out);
                }
                Ok(())
            })
            .unwrap();
        // And the frames natter sends render for any state.
        for frame in [
            natter_proto::ServerFrame::error(
                natter_proto::ErrorCode::NotInRoom,
                Default::default(),
                Some("x".into()),
            ),
            natter_proto::ServerFrame::Users {
                room: "r".into(),
                names: vec![],
                count: Some(5),
                ops: vec![],
            },
        ] {
            let mut out = Vec::new();
            render.borrow_mut().render(&Outgoing::new(frame), &mut out);
        }
    }
}
