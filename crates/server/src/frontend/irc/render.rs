//! The writer's half of the IRC front end: natter's frames as IRC lines.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use natter_proto::frame::{ByeReason, Message};
use natter_proto::{ErrorCode, LeftReason, ServerFrame};

use super::commands::{motd, names_lines, userhost};
use super::wire::{escape_tag, nick_of, pieces};
use super::{lock, push_params, Cap, Reply, State};
use crate::frontend::Render;
use crate::outbox::Outgoing;
use crate::session::Shared;

/// What a line carries besides its time and msgid: the label of the request it answers, the client
/// tags of the message.
#[derive(Default, Clone, Copy)]
struct Extra<'a> {
    label: Option<&'a str>,
    client: Option<&'a natter_proto::frame::Tags>,
    /// Whose line it is, for `account-tag`.
    from: Option<&'a str>,
}

/// A room message's IRC lines, by tag mode (none; `time`; `msgid` and `time`; each again with
/// `account`): the same for every recipient with those caps, so kept with the shared item.
#[derive(Default)]
struct RoomLines([std::sync::OnceLock<bytes::Bytes>; 6]);

/// Room for a message's text in one line: 512 bytes less `:source COMMAND target :` and the line end
/// (tags do not count), and never less than [`TEXT_ROOM`].
fn text_room(source: &str, command: &str, target: &str) -> usize {
    let overhead = 1 + source.len() + 1 + command.len() + 1 + target.len() + 2 + 2;
    512usize.saturating_sub(overhead).max(TEXT_ROOM)
}

/// The least room a message's text gets in one line (for a very long source and target).
const TEXT_ROOM: usize = 200;

pub(super) struct IrcRender {
    shared: Arc<Shared>,
    state: Arc<Mutex<State>>,
    /// The last QUIT shown (name, time): natter says `left` once per shared room, IRC says QUIT once.
    last_quit: Option<(String, String)>,
    /// A labeled response being gathered: its label and lines.
    gathering: Option<(String, Vec<String>)>,
    /// The last AWAY/SETNAME shown (name, what): told once per shared channel, shown once.
    last_change: Option<(String, String)>,
    /// The connection's caps, read without the state's lock.
    caps: Arc<std::sync::atomic::AtomicU32>,
}

impl IrcRender {
    pub(super) fn new(shared: Arc<Shared>, state: Arc<Mutex<State>>) -> Self {
        let caps = lock(&state).caps_seen.clone();
        Self {
            caps,
            shared,
            state,
            last_quit: None,
            gathering: None,
            last_change: None,
        }
    }

    fn server(&self) -> Arc<str> {
        self.shared.config().irc.server_name.clone()
    }

    /// The account a name is signed in to: the name itself when it is owned (only its owner can be
    /// online under it), for `account-tag` and `extended-join`.
    fn account<'a>(&self, name: &'a str) -> Option<&'a str> {
        self.shared
            .hub
            .is_owned(&natter_proto::name::fold(name))
            .then_some(name)
    }

    /// `nick!user@host` of a name.
    fn source(&self, name: &str) -> String {
        format!("{}!{}", nick_of(name), userhost(&self.shared.irc, name))
    }
}

impl Render for IrcRender {
    fn render(&mut self, item: &Outgoing, out: &mut Vec<u8>) {
        let mut text = String::new();
        match item {
            Outgoing::Notice(notice) => {
                if let Some(rest) = notice.strip_prefix(super::OPEN) {
                    let (label, lines) = rest.split_once('\n').unwrap_or((rest, ""));
                    let lines = lines.lines().map(str::to_owned).collect();
                    self.gathering = Some((label.to_owned(), lines));
                    return;
                }
                if notice == super::CLOSE {
                    if let Some((label, lines)) = self.gathering.take() {
                        out.extend_from_slice(
                            super::labeled_response(&self.server(), &label, &lines).as_bytes(),
                        );
                    }
                    return;
                }
                text.push_str(notice);
            }
            Outgoing::Raw(bytes) => return out.extend_from_slice(bytes),
            Outgoing::Frame {
                frame: ServerFrame::Message(m),
                cache,
                ..
            } if m.room.is_some()
                && m.event.is_none()
                && !(m.text.contains('\n')
                    && self.caps.load(std::sync::atomic::Ordering::Relaxed)
                        & Cap::Multiline as u32
                        != 0) =>
            {
                // A room message looks the same to every IRC client with the same tags: rendered once.
                let caps = self.caps.load(std::sync::atomic::Ordering::Relaxed);
                let has = |cap: Cap| caps & cap as u32 != 0;
                let mode = usize::from(has(Cap::ServerTime) || has(Cap::MessageTags))
                    + usize::from(has(Cap::MessageTags))
                    + 3 * usize::from(has(Cap::AccountTag));
                let rendered = cache.get_or_init(|| Box::new(RoomLines::default()));
                match rendered.downcast_ref::<RoomLines>() {
                    Some(lines) => {
                        let bytes = lines.0[mode].get_or_init(|| self.room_lines(m, mode));
                        match &mut self.gathering {
                            Some((_, gathered)) => gathered
                                .extend(String::from_utf8_lossy(bytes).lines().map(str::to_owned)),
                            None => out.extend_from_slice(bytes),
                        }
                        return;
                    }
                    None => self.frame(&ServerFrame::Message(m.clone()), &mut text),
                }
            }
            Outgoing::Frame { frame, .. } => self.frame(frame, &mut text),
        }
        match &mut self.gathering {
            Some((_, lines)) => lines.extend(text.lines().map(str::to_owned)),
            None => out.extend_from_slice(text.as_bytes()),
        }
    }
}

impl IrcRender {
    fn frame(&mut self, frame: &ServerFrame, out: &mut String) {
        let server = self.server().to_owned();
        let mut state = lock(&self.state);
        let nick = state.nick().to_owned();
        match frame {
            ServerFrame::Welcome { name, .. } => {
                let nick = nick_of(name);
                let lang = self.shared.config().lang;
                state.nick = Some(nick.clone());
                // From now on others see this user's username and real name.
                let (user, realname) = state.user.clone();
                let ident = self.shared.irc.set(
                    name,
                    super::Ident {
                        user,
                        realname,
                        away: None,
                        invisible: false,
                    },
                );
                state.ident = Some((name.clone(), ident));
                let mut reply = Reply::new(&server, nick.clone(), self.shared.config().lang);
                let version = concat!("natter-", env!("CARGO_PKG_VERSION"));
                reply.num(
                    "001",
                    &[&natter_i18n::tl!(lang, "irc-welcome", nick = nick.as_str())],
                );
                reply.num(
                    "002",
                    &[&natter_i18n::tl!(
                        lang,
                        "irc-your-host",
                        server = &*server,
                        version = version
                    )],
                );
                reply.num("003", &[&reply.t("irc-created")]);
                reply.num("004", &[&server, version, "i", "bimnostv", "bov"]);
                let config = &self.shared.config();
                let isupport = [
                    "AWAYLEN=300".to_owned(),
                    "CASEMAPPING=ascii".into(),
                    "CHANLIMIT=#:".to_owned() + &config.max_rooms.to_string(),
                    "CHANMODES=b,,,imntu".into(),
                    "CHANNELLEN=33".into(),
                    "CHANTYPES=#".into(),
                    "CHATHISTORY=100".into(),
                    "ELIST=".into(),
                    "LINELEN=512".into(),
                    "MODES=4".into(),
                    "MSGREFTYPES=msgid,timestamp".into(),
                    format!("NETWORK={server}"),
                    "NICKLEN=32".into(),
                    "PREFIX=(ov)@+".into(),
                    "STATUSMSG=".into(),
                    "TARGMAX=PRIVMSG:4,NOTICE:4,JOIN:,PART:,NAMES:".into(),
                    "TOPICLEN=".to_owned() + &crate::moderation::MAX_TOPIC.to_string(),
                    "UTF8ONLY".into(),
                    "WHOX".into(),
                ];
                let supported = reply.t("irc-isupport");
                for chunk in isupport.chunks(12) {
                    let mut params: Vec<&str> = chunk.iter().map(String::as_str).collect();
                    params.push(&supported);
                    reply.num("005", &params);
                }
                motd(&self.shared.config().irc, &mut reply);
                push_reply(reply, out);
            }
            ServerFrame::Message(m) => self.message(m, &state, out),
            ServerFrame::Ack { id, seq, ts } => {
                let Some(pending) = id.as_ref().and_then(|id| state.pending.remove(id)) else {
                    return;
                };
                let me = super::wire::name_of(&nick).unwrap_or_default();
                let command = if pending.notice { "NOTICE" } else { "PRIVMSG" };
                // natter does not deliver a message to yourself back to you (the ack says it is
                // stored); IRC does, so the delivery is shown here — unlabeled.
                let to_me = pending.echo && pending.target.eq_ignore_ascii_case(&nick);
                if to_me {
                    let source = self.source(&me);
                    let (target, text) = (&pending.target, &pending.text);
                    let echo = state.has(Cap::EchoMessage);
                    // Without an echo to carry it, the delivery carries the label.
                    let label = pending
                        .label
                        .as_deref()
                        .filter(|_| !echo && state.has(Cap::LabeledResponse));
                    let (ts, seq) = (Some(ts.as_str()), Some(*seq));
                    let extra = Extra {
                        label,
                        client: Some(&pending.tags),
                        from: Some(&me),
                    };
                    self.line(&state, out, ts, seq, extra, &source, command, target, text);
                    if !echo {
                        return;
                    }
                }
                if pending.echo && state.has(Cap::EchoMessage) {
                    let label = pending
                        .label
                        .as_deref()
                        .filter(|_| state.has(Cap::LabeledResponse));
                    let extra = Extra {
                        label,
                        client: Some(&pending.tags),
                        from: Some(&me),
                    };
                    self.line(
                        &state,
                        out,
                        Some(ts),
                        Some(*seq),
                        extra,
                        &self.source(&me),
                        command,
                        &pending.target,
                        &pending.text,
                    );
                } else if let Some(label) =
                    pending.label.filter(|_| state.has(Cap::LabeledResponse))
                {
                    let _ = write!(out, "@label={label} :{server} ACK\r\n");
                }
            }
            ServerFrame::Signal(signal)
                if signal.tags.contains_key(super::commands::AWAY_TAG)
                    || signal.tags.contains_key(super::commands::SETNAME_TAG) =>
            {
                // An IRC user's AWAY or SETNAME, told once per shared channel: shown once.
                let (tag, cap, command) = if signal.tags.contains_key(super::commands::AWAY_TAG) {
                    (super::commands::AWAY_TAG, Cap::AwayNotify, "AWAY")
                } else {
                    (super::commands::SETNAME_TAG, Cap::Setname, "SETNAME")
                };
                let value = signal.tags.get(tag).cloned().unwrap_or_default();
                let key = (signal.from.to_lowercase(), format!("{command} {value}"));
                // Your own change was answered already (305/306, your SETNAME).
                let yours = nick_of(&signal.from).eq_ignore_ascii_case(&nick);
                if yours || !state.has(cap) || self.last_change.as_ref() == Some(&key) {
                    return;
                }
                self.last_change = Some(key);
                let mut line = format!(":{} {command}", self.source(&signal.from));
                if !value.is_empty() {
                    push_params(&mut line, &[&value]);
                }
                let _ = write!(out, "{line}\r\n");
            }
            ServerFrame::Signal(signal) => {
                let mine = signal.id.as_ref().and_then(|id| state.pending.remove(id));
                let target = match (&signal.room, &signal.to) {
                    (Some(room), _) => format!("#{room}"),
                    (None, Some(to)) => nick_of(to),
                    (None, None) => return,
                };
                let label = match &mine {
                    Some(_) if !state.has(Cap::EchoMessage) => {
                        if let Some(label) = mine
                            .and_then(|p| p.label)
                            .filter(|_| state.has(Cap::LabeledResponse))
                        {
                            let _ = write!(out, "@label={label} :{server} ACK\r\n");
                        }
                        return;
                    }
                    Some(pending) => pending
                        .label
                        .as_deref()
                        .filter(|_| state.has(Cap::LabeledResponse)),
                    None => None,
                };
                // Only clients that take message tags see TAGMSG at all.
                if !state.has(Cap::MessageTags) {
                    return;
                }
                let (sid, ts) = (Some(signal.sid.as_str()), Some(signal.ts.as_str()));
                let extra = Extra {
                    label,
                    client: Some(&signal.tags),
                    from: Some(&signal.from),
                };
                let source = self.source(&signal.from);
                // To yourself: the delivery too, unlabeled (as for a PRIVMSG).
                if signal.id.is_some() && target.eq_ignore_ascii_case(&nick) {
                    let tags = self.tag_prefix(
                        state.caps,
                        sid,
                        ts,
                        Extra {
                            label: None,
                            ..extra
                        },
                    );
                    let _ = write!(out, "{tags}:{source} TAGMSG {target}\r\n");
                }
                let tags = self.tag_prefix(state.caps, sid, ts, extra);
                let _ = write!(out, "{tags}:{source} TAGMSG {target}\r\n");
            }
            ServerFrame::Joined { room, name, .. } => {
                let source = self.source(name);
                if state.has(Cap::ExtendedJoin) {
                    let real = self
                        .shared
                        .irc
                        .get(name)
                        .map_or_else(|| name.clone(), |i| i.realname.clone());
                    let account = self.account(name).unwrap_or("*");
                    let mut line = format!(":{source} JOIN #{room} {account}");
                    push_params(&mut line, &[&real]);
                    let _ = write!(out, "{line}\r\n");
                } else {
                    let _ = write!(out, ":{source} JOIN #{room}\r\n");
                }
            }
            ServerFrame::Users {
                room,
                names,
                count,
                ops,
            } => {
                let mut reply = Reply::new(&server, nick.clone(), self.shared.config().lang);
                let channel = format!("#{room}");
                if names.is_empty() && count.is_some() {
                    // Too big to list (natter's announce limit): like an auditorium (+u) channel,
                    // the joiner sees themselves; WHO lists everyone.
                    reply.num("353", &["=", &channel, &nick]);
                    let text = natter_i18n::tl!(
                        reply.lang,
                        "irc-big-room",
                        count = count.unwrap_or_default(),
                        channel = channel.as_str()
                    );
                    reply.raw(format!(":{server} NOTICE {channel} :{text}"));
                } else {
                    for chunk in names_lines(names, ops, state.caps, &self.shared.irc) {
                        reply.num("353", &["=", &channel, &chunk]);
                    }
                }
                reply.num("366", &[&channel, &reply.t("irc-end-of-names")]);
                push_reply(reply, out);
            }
            ServerFrame::Topic { .. } => {
                let mut reply = Reply::new(&server, nick.clone(), self.shared.config().lang);
                super::commands::topic_lines(frame, &mut reply);
                push_reply(reply, out);
            }
            ServerFrame::Left {
                room,
                name,
                ts,
                reason,
                text,
            } => {
                let source = self.source(name);
                let mine = super::wire::name_of(&nick)
                    .is_some_and(|me| me.to_lowercase() == name.to_lowercase());
                match reason {
                    LeftReason::Leave => {
                        let mut line = format!(":{source} PART #{room}");
                        if let Some(text) = text {
                            push_params(&mut line, &[text]);
                        }
                        let _ = write!(out, "{line}\r\n");
                    }
                    // A kick reaches the others as its event (a KICK from the operator).
                    LeftReason::Kicked if !mine => {}
                    LeftReason::Kicked | LeftReason::Banned => {
                        let mut line = format!(":{server} KICK #{room} {}", nick_of(name));
                        push_params(&mut line, &[text.as_deref().unwrap_or(reason.as_str())]);
                        let _ = write!(out, "{line}\r\n");
                    }
                    _ if mine => {}
                    _ => {
                        let key = (name.to_lowercase(), ts.clone());
                        if self.last_quit.as_ref() == Some(&key) {
                            return;
                        }
                        self.last_quit = Some(key);
                        let lang = self.shared.config().lang;
                        let t = |id: &str| natter_i18n::text(lang, id, &[]);
                        let why = match (reason, text) {
                            (_, Some(text)) => {
                                natter_i18n::tl!(lang, "irc-quit", text = text.as_str())
                            }
                            (LeftReason::Exit, None) => "Quit".into(),
                            (LeftReason::Timeout, None) => t("irc-ping-timeout"),
                            (LeftReason::TooSlow, None) => t("irc-sendq"),
                            (LeftReason::ExcessFlood, None) => t("irc-excess-flood"),
                            _ => t("irc-connection-closed"),
                        };
                        let mut line = format!(":{source} QUIT");
                        push_params(&mut line, &[&why]);
                        let _ = write!(out, "{line}\r\n");
                    }
                }
            }
            ServerFrame::Ping { .. } => {
                let _ = write!(out, "PING :{server}\r\n");
            }
            ServerFrame::Pong { id } => {
                let _ = write!(
                    out,
                    ":{server} PONG {server} :{}\r\n",
                    id.as_deref().unwrap_or("")
                );
            }
            ServerFrame::Bye { reason } => {
                let why = natter_i18n::text(
                    self.shared.config().lang,
                    match reason {
                        ByeReason::Shutdown => "irc-shutting-down",
                        _ => "irc-closing-link",
                    },
                    &[],
                );
                let _ = write!(out, "ERROR :{why}\r\n");
            }
            ServerFrame::History {
                messages,
                id: Some(id),
                ..
            } => {
                let Some(pending) = state.history.get_mut(id) else {
                    return;
                };
                pending.messages.extend(messages.iter().cloned());
                pending.parts = pending.parts.saturating_sub(1);
                if pending.parts > 0 {
                    return;
                }
                if let Some(mut done) = state.history.remove(id) {
                    done.messages.sort_by_key(|m| m.seq);
                    done.messages.dedup_by_key(|m| m.seq);
                    self.history_batch(&done, &state, out);
                }
            }
            ServerFrame::Conversations {
                conversations,
                id: Some(id),
            } => {
                let Some(label) = state.targets.remove(id) else {
                    return;
                };
                let label = label
                    .filter(|_| state.has(Cap::LabeledResponse))
                    .map(|l| format!("@label={l} "))
                    .unwrap_or_default();
                let batch = format!("t{id}").replace(|c: char| !c.is_ascii_alphanumeric(), "-");
                let _ = write!(
                    out,
                    "{label}:{server} BATCH +{batch} draft/chathistory-targets\r\n"
                );
                // IRC's words, joined: two capitalised words in one literal would read as prose to the
                // catalogue check.
                let verb = ["CHATHISTORY", "TARGETS"].join(" ");
                for c in conversations {
                    let target = match (&c.room, &c.with) {
                        (Some(room), _) => format!("#{room}"),
                        (None, Some(with)) => nick_of(with),
                        (None, None) => continue,
                    };
                    let ts = &c.ts;
                    let _ = write!(out, "@batch={batch} :{server} {verb} {target} {ts}\r\n");
                }
                let _ = write!(out, ":{server} BATCH -{batch}\r\n");
            }
            ServerFrame::Error {
                code,
                args,
                id,
                message,
                ..
            } => {
                if let Some(history) = id.as_ref().and_then(|id| state.history.remove(id)) {
                    let text = natter_proto::frame::error_text(
                        self.shared.config().lang,
                        *code,
                        args,
                        message,
                    );
                    let mut line = format!(":{server} FAIL {} {}", "CHATHISTORY", "INVALID_TARGET");
                    push_params(&mut line, &[&history.subcommand, &history.target, &text]);
                    let _ = write!(out, "{line}\r\n");
                    return;
                }
                let pending = id.as_ref().and_then(|id| state.pending.remove(id));
                if pending.as_ref().is_some_and(|p| p.notice) {
                    return; // NOTICE is never answered with an error
                }
                let arg = |k: &str| {
                    args.get(k)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned()
                };
                let mut reply = Reply::new(&server, nick.clone(), self.shared.config().lang);
                let target = pending.as_ref().map(|p| p.target.clone());
                let room = arg("room");
                let room = if room.is_empty() {
                    target.clone().unwrap_or_default()
                } else {
                    room
                };
                let text =
                    natter_proto::frame::error_text(natter_i18n::Lang::En, *code, args, message);
                match code {
                    ErrorCode::NameTaken | ErrorCode::NameOwned if state.nick.is_none() => {
                        reply.num("433", &[state.asked.as_deref().unwrap_or("*"), &text]);
                    }
                    ErrorCode::InvalidName if state.nick.is_none() => {
                        reply.num("432", &[state.asked.as_deref().unwrap_or("*"), &text])
                    }
                    ErrorCode::BadPassword | ErrorCode::Insecure => reply.num("464", &[&text]),
                    ErrorCode::NoSuchUser | ErrorCode::InvalidName => {
                        let who = target.unwrap_or_else(|| nick_of(&arg("name")));
                        reply.num("401", &[&who, &reply.t("irc-no-such-nick")]);
                    }
                    ErrorCode::NotInRoom if target.is_some() => {
                        reply.num("404", &[&room, &reply.t("irc-cannot-send")])
                    }
                    ErrorCode::NotInRoom => {
                        reply.num("442", &[&room, &reply.t("irc-not-on-channel")])
                    }
                    ErrorCode::Muted => reply.num("404", &[&room, &text]),
                    ErrorCode::InvalidRoom => {
                        reply.num("403", &[&room, &reply.t("irc-no-such-channel")])
                    }
                    ErrorCode::Banned => reply.num("474", &[&room, &text]),
                    ErrorCode::InviteOnly => reply.num("473", &[&room, &text]),
                    ErrorCode::TooManyRooms => reply.num("405", &[&room, &text]),
                    ErrorCode::Forbidden => reply.num("482", &[&room, &text]),
                    ErrorCode::Blocked => reply.num("404", &[&room, &text]),
                    ErrorCode::InvalidText => reply.num("417", &[&text]),
                    ErrorCode::ExcessFlood
                    | ErrorCode::RegistrationTimeout
                    | ErrorCode::IdleTimeout
                    | ErrorCode::TooSlow
                    | ErrorCode::ServerFull
                    | ErrorCode::TooManyConnections => {
                        reply.raw(format!("ERROR :{text}"));
                    }
                    _ => reply.raw(format!(
                        ":{server} FAIL * {} :{text}",
                        code.as_str().to_ascii_uppercase()
                    )),
                }
                push_reply(reply, out);
            }
            // Answers natter's own clients ask for; the IRC front end asks none of them.
            _ => {}
        }
    }

    /// A natter message as IRC lines (one per line of its text, long ones cut).
    fn message(&self, m: &Message, state: &State, out: &mut String) {
        let me_nick = state.nick();
        let command = if m.notice { "NOTICE" } else { "PRIVMSG" };
        let (command, target) = match (&m.room, &m.to) {
            (Some(room), _) => (command, format!("#{room}")),
            // A private message: to me, or (another session of mine sent it) from me to them.
            (None, Some(to)) => {
                let to_nick = nick_of(to);
                if to_nick.eq_ignore_ascii_case(me_nick) {
                    (command, me_nick.to_owned())
                } else {
                    (command, to_nick)
                }
            }
            (None, None) => return,
        };
        let source = self.source(&m.from);
        if let Some(event) = &m.event {
            match event.kind.as_str() {
                "topic" => {
                    let mut line = self.tags(state, Some(&m.ts), Some(m.seq), Extra::default());
                    let _ = write!(line, ":{source} TOPIC {target}");
                    push_params(&mut line, &[event.text.as_deref().unwrap_or("")]);
                    let _ = write!(out, "{line}\r\n");
                    return;
                }
                "op" | "deop" | "voice" | "devoice" | "ban" | "unban" | "invite_only"
                | "moderated" => {
                    let (sign, letter) = match (event.kind.as_str(), event.on) {
                        ("op", _) => ('+', 'o'),
                        ("deop", _) => ('-', 'o'),
                        ("voice", _) => ('+', 'v'),
                        ("devoice", _) => ('-', 'v'),
                        ("ban", _) => ('+', 'b'),
                        ("unban", _) => ('-', 'b'),
                        ("invite_only", on) => (if on == Some(false) { '-' } else { '+' }, 'i'),
                        (_, on) => (if on == Some(false) { '-' } else { '+' }, 'm'),
                    };
                    let mut line = self.tags(state, Some(&m.ts), Some(m.seq), Extra::default());
                    let _ = write!(line, ":{source} MODE {target} {sign}{letter}");
                    if let Some(name) = &event.name {
                        let _ = write!(line, " {}", nick_of(name));
                        if letter == 'b' {
                            line.push_str("!*@*");
                        }
                    }
                    let _ = write!(out, "{line}\r\n");
                    return;
                }
                "kick" => {
                    if let Some(name) = &event.name {
                        let mut line = self.tags(state, Some(&m.ts), Some(m.seq), Extra::default());
                        let _ = write!(line, ":{source} KICK {target} {}", nick_of(name));
                        push_params(&mut line, &[event.text.as_deref().unwrap_or(&event.kind)]);
                        let _ = write!(out, "{line}\r\n");
                    }
                    return;
                }
                _ => {}
            }
            self.line(
                state,
                out,
                Some(&m.ts),
                Some(m.seq),
                Extra::default(),
                &source,
                "NOTICE",
                &target,
                &m.text,
            );
            return;
        }
        let text = match m.text.strip_prefix("/me ") {
            Some(action) => format!("\u{1}ACTION {action}\u{1}"),
            None => m.text.clone(),
        };
        let extra = Extra {
            label: None,
            client: Some(&m.tags),
            from: Some(&m.from),
        };
        self.line(
            state,
            out,
            Some(&m.ts),
            Some(m.seq),
            extra,
            &source,
            command,
            &target,
            &text,
        );
    }

    /// A room message's lines for a tag mode (see [`RoomLines`]).
    fn room_lines(&self, m: &Message, mode: usize) -> bytes::Bytes {
        // The caps a tag mode stands for.
        let mut caps = 0;
        if mode % 3 >= 1 {
            caps |= Cap::ServerTime as u32;
        }
        if mode % 3 == 2 {
            caps |= Cap::MessageTags as u32;
        }
        if mode >= 3 {
            caps |= Cap::AccountTag as u32;
        }
        let extra = Extra {
            label: None,
            client: Some(&m.tags),
            from: Some(&m.from),
        };
        let tags = self.tag_prefix(caps, Some(&m.seq.to_string()), Some(&m.ts), extra);
        let source = self.source(&m.from);
        let target = format!("#{}", m.room.as_deref().unwrap_or_default());
        let text = match m.text.strip_prefix("/me ") {
            Some(action) => format!("\u{1}ACTION {action}\u{1}"),
            None => m.text.clone(),
        };
        let command = if m.notice { "NOTICE" } else { "PRIVMSG" };
        let mut out = String::new();
        for piece in pieces(&text, text_room(&source, command, &target)) {
            let _ = write!(out, "{tags}:{source} {command} {target} :{piece}\r\n");
        }
        bytes::Bytes::from(out)
    }

    /// A CHATHISTORY answer: its messages in a `chathistory` batch (room events are left out: natter
    /// does not offer event playback).
    fn history_batch(&self, done: &super::HistoryPending, state: &State, out: &mut String) {
        let server = self.server();
        let batch = format!("h{}", done.messages.first().map_or(0, |m| m.seq));
        let label = done
            .label
            .as_deref()
            .filter(|_| state.has(Cap::LabeledResponse))
            .map(|l| format!("@label={l} "))
            .unwrap_or_default();
        let batched = state.has(Cap::Batch);
        if batched {
            let _ = write!(
                out,
                "{label}:{server} BATCH +{batch} chathistory {}\r\n",
                done.target
            );
        }
        for m in done.messages.iter().filter(|m| m.event.is_none()) {
            let mut lines = String::new();
            self.message(m, state, &mut lines);
            for line in lines.lines() {
                if batched {
                    // The batch tag joins the line's tags.
                    match line.strip_prefix('@') {
                        Some(rest) => {
                            let _ = write!(out, "@batch={batch};{rest}\r\n");
                        }
                        None => {
                            let _ = write!(out, "@batch={batch} {line}\r\n");
                        }
                    }
                } else {
                    let _ = write!(out, "{line}\r\n");
                }
            }
        }
        if batched {
            let _ = write!(out, ":{server} BATCH -{batch}\r\n");
        }
    }

    /// The tags a line gets for this client: `time` (server-time), `msgid` (message-tags), `label`.
    fn tags(&self, state: &State, ts: Option<&str>, seq: Option<u64>, extra: Extra<'_>) -> String {
        let msgid = seq.map(|seq| seq.to_string());
        self.tag_prefix(state.caps, msgid.as_deref(), ts, extra)
    }

    /// The tags a line gets for a client with `caps` (with its trailing space; empty for none):
    /// `label`, `account` (account-tag), `msgid` (message-tags), `time` (server-time or message-tags),
    /// then the client tags (message-tags). Every line natter writes with tags is made here.
    fn tag_prefix(
        &self,
        caps: u32,
        msgid: Option<&str>,
        ts: Option<&str>,
        extra: Extra<'_>,
    ) -> String {
        let has = |cap: Cap| caps & cap as u32 != 0;
        let mut tags = String::new();
        let mut add = |tag: &str, value: &str| {
            tags.push(if tags.is_empty() { '@' } else { ';' });
            tags.push_str(tag);
            tags.push('=');
            escape_tag(value, &mut tags);
        };
        if let Some(label) = extra.label {
            add("label", label);
        }
        if let (Some(from), true) = (extra.from, has(Cap::AccountTag)) {
            if let Some(account) = self.account(from) {
                add("account", account);
            }
        }
        if let (Some(msgid), true) = (msgid, has(Cap::MessageTags)) {
            add("msgid", msgid);
        }
        if let (Some(ts), true) = (ts, has(Cap::ServerTime) || has(Cap::MessageTags)) {
            add("time", ts);
        }
        // Client tags go to clients that take message tags.
        if let (Some(client), true) = (extra.client, has(Cap::MessageTags)) {
            for (name, value) in client {
                add(name, value);
            }
        }
        if !tags.is_empty() {
            tags.push(' ');
        }
        tags
    }

    /// `PRIVMSG`/`NOTICE` lines for a text.
    #[allow(clippy::too_many_arguments)]
    fn line(
        &self,
        state: &State,
        out: &mut String,
        ts: Option<&str>,
        seq: Option<u64>,
        extra: Extra<'_>,
        source: &str,
        command: &str,
        target: &str,
        text: &str,
    ) {
        let tags = self.tags(state, ts, seq, extra);
        let room = text_room(source, command, target);
        if text.contains('\n') && state.has(Cap::Multiline) {
            // One message of several lines: a draft/multiline batch, the tags on its opening line.
            let id = format!("ml{}", seq.unwrap_or_default());
            let _ = write!(
                out,
                "{tags}:{source} BATCH +{id} draft/multiline {target}\r\n"
            );
            for line in text.split('\n') {
                let cut = pieces(line, room);
                if cut.is_empty() {
                    let _ = write!(out, "@batch={id} :{source} {command} {target} :\r\n");
                }
                for (i, piece) in cut.iter().enumerate() {
                    let concat = if i > 0 { ";draft/multiline-concat" } else { "" };
                    let _ = write!(
                        out,
                        "@batch={id}{concat} :{source} {command} {target} :{piece}\r\n"
                    );
                }
            }
            let _ = write!(out, ":{source} BATCH -{id}\r\n");
            return;
        }
        for piece in pieces(text, room) {
            let _ = write!(out, "{tags}:{source} {command} {target} :{piece}\r\n");
        }
    }
}

fn push_reply(reply: Reply, out: &mut String) {
    if let Some(lines) = reply.finish(None, false) {
        out.push_str(&lines);
    }
}
