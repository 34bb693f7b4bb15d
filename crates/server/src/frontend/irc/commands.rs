//! What each IRC command asks: registration, then the commands of a registered client.

use natter_i18n::tl;
use natter_proto::{ClientFrame, RoomName, ServerFrame};

use super::wire::{is_irc_nick, mask_matches, name_of, nick_of, room_of, Line};
use super::{Cap, Ident, Irc, Pending, Reply, CAPS};
use crate::frontend::Input;

impl Irc {
    /// Before registration: NICK, USER, PASS, CAP, PING and QUIT; the rest is 451.
    pub(super) fn register(&mut self, line: &Line, reply: &mut Reply) -> Input {
        match line.command.as_str() {
            "CAP" => {
                self.cap(line, reply);
                if line.param(0).eq_ignore_ascii_case("END") {
                    self.negotiating = false;
                    return self.hello();
                }
                Input::Nothing
            }
            "NICK" => {
                let nick = line.param(0);
                if nick.is_empty() {
                    reply.num("431", &[&reply.t("irc-no-nickname")]);
                    return Input::Nothing;
                }
                if !is_irc_nick(nick) || name_of(nick).is_none() {
                    reply.num("432", &[nick, &reply.t("irc-erroneous-nick")]);
                    return Input::Nothing;
                }
                self.nick = Some(nick.to_owned());
                self.state().asked = Some(nick.to_owned());
                self.hello()
            }
            "USER" => {
                if line.params.len() < 4 || line.param(3).is_empty() {
                    reply.num("461", &["USER", &reply.t("irc-not-enough-params")]);
                    return Input::Nothing;
                }
                let user: String = line
                    .param(0)
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                    .take(16)
                    .collect();
                let user = if user.is_empty() { "user".into() } else { user };
                self.user = Some((user.clone(), line.param(3).to_owned()));
                self.state().user = (user, line.param(3).to_owned());
                self.hello()
            }
            "PASS" => {
                self.pass = line.params.first().map(|p| (*p).to_owned());
                Input::Nothing
            }
            "PING" => {
                self.pong(line, reply);
                Input::Nothing
            }
            "PONG" => Input::Nothing,
            "AUTHENTICATE" => {
                self.authenticate(line, reply);
                Input::Nothing
            }
            "QUIT" => Input::Frame(ClientFrame::Exit { text: None }),
            _ => {
                reply.num("451", &[&reply.t("irc-not-registered")]);
                Input::Nothing
            }
        }
    }

    /// A `hello` once NICK and USER are in and CAP negotiation (if any) has ended.
    fn hello(&mut self) -> Input {
        let (Some(nick), Some(_), false) = (&self.nick, &self.user, self.negotiating) else {
            return Input::Nothing;
        };
        let Some(name) = name_of(nick) else {
            return Input::Nothing;
        };
        Input::Frame(ClientFrame::Hello {
            name,
            version: natter_proto::VERSION,
            resume_after: None,
            // IRC clients manage their channels themselves: they `JOIN #lobby`.
            lobby: false,
            rooms: false,
            key: None,
            password: self.pass.clone(),
        })
    }

    fn pong(&self, line: &Line, reply: &mut Reply) {
        let server = reply.server.clone();
        match line.params.first() {
            None => reply.num("409", &[&reply.t("irc-no-origin")]),
            Some(token) => {
                let mut out = format!(":{server} PONG {server}");
                super::push_params(&mut out, &[token]);
                reply.raw(out);
            }
        }
    }

    /// `CAP LS|LIST|REQ|END`.
    fn cap(&mut self, line: &Line, reply: &mut Reply) {
        let server = reply.server.clone();
        let nick = reply.nick.clone();
        let sub = line.param(0).to_ascii_uppercase();
        match sub.as_str() {
            "LS" => {
                if !self.ident_known() {
                    self.negotiating = true;
                }
                if line.param(1).parse::<u32>().is_ok_and(|v| v >= 302) {
                    // 302 clients get cap-notify implicitly.
                    let mut state = self.state();
                    let caps = state.caps | Cap::CapNotify as u32;
                    state.set_caps(caps);
                }
                let v302 = line.param(1).parse::<u32>().is_ok_and(|v| v >= 302);
                let list: Vec<&str> = CAPS
                    .iter()
                    .map(|(c, n)| match c {
                        // 302 clients learn the mechanisms (and limits) with the cap.
                        Cap::Sasl if v302 => "sasl=PLAIN",
                        Cap::Multiline if v302 => "draft/multiline=max-bytes=4096,max-lines=100",
                        _ => *n,
                    })
                    .collect();
                reply.raw(format!(":{server} CAP {nick} LS :{}", list.join(" ")));
            }
            "LIST" => {
                let caps = self.state().caps;
                let list: Vec<&str> = CAPS
                    .iter()
                    .filter(|(c, _)| caps & *c as u32 != 0)
                    .map(|(_, n)| *n)
                    .collect();
                reply.raw(format!(":{server} CAP {nick} LIST :{}", list.join(" ")));
            }
            "REQ" => {
                if !self.ident_known() {
                    self.negotiating = true;
                }
                let asked = line.param(1);
                let mut add = 0u32;
                let mut remove = 0u32;
                let mut ok = !asked.trim().is_empty();
                for word in asked.split_whitespace() {
                    let (minus, name) = match word.strip_prefix('-') {
                        Some(n) => (true, n),
                        None => (false, word),
                    };
                    match CAPS.iter().find(|(_, n)| *n == name) {
                        Some((cap, _)) if minus => remove |= *cap as u32,
                        Some((cap, _)) => add |= *cap as u32,
                        None => ok = false,
                    }
                }
                let verb = if ok {
                    let mut state = self.state();
                    let caps = (state.caps | add) & !remove;
                    state.set_caps(caps);
                    "ACK"
                } else {
                    "NAK"
                };
                reply.raw(format!(":{server} CAP {nick} {verb} :{}", asked.trim()));
            }
            "END" => {}
            _ => reply.num("410", &[line.param(0), &reply.t("irc-invalid-cap")]),
        }
    }

    /// Changes what this connection's user said about themselves (away, real name, `+i`): a new entry
    /// in the [`super::Directory`], remembered as this connection's.
    fn change_ident(&mut self, name: &str, ident: &Ident, change: impl FnOnce(&mut Ident)) {
        let mut changed = ident.clone();
        change(&mut changed);
        let entry = self.shared.irc.set(name, changed);
        self.state().ident = Some((name.to_owned(), entry));
    }

    /// SASL PLAIN (RFC 4616): the credentials become the `hello`'s password. Whether they are right is
    /// known only when the `hello` is answered; a wrong one is then `904`, and registration can go on
    /// as a guest under another name.
    fn authenticate(&mut self, line: &Line, reply: &mut Reply) {
        let server = reply.server.clone();
        let arg = line.param(0);
        if arg == "*" {
            self.sasl = false;
            reply.num("906", &[&reply.t("irc-sasl-aborted")]);
            return;
        }
        if !self.sasl {
            if arg.eq_ignore_ascii_case("PLAIN") {
                self.sasl = true;
                reply.raw("AUTHENTICATE +".to_owned());
            } else {
                reply.num("908", &["PLAIN", &reply.t("irc-sasl-mechanisms")]);
                reply.num("904", &[&reply.t("irc-sasl-failed")]);
            }
            return;
        }
        self.sasl = false;
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(arg)
            .ok()
            .and_then(|d| String::from_utf8(d).ok());
        let parts: Option<Vec<String>> =
            decoded.map(|d| d.split('\0').map(str::to_owned).collect());
        match parts.as_deref() {
            Some([_authz, account, password]) if !account.is_empty() && !password.is_empty() => {
                // The account is the name: registration signs in under it.
                self.nick = self.nick.clone().or_else(|| Some(nick_of(account)));
                self.pass = Some(password.clone());
                let nick = self.nick.clone().unwrap_or_default();
                let _ = server;
                reply.num(
                    "900",
                    &[
                        &format!(
                            "{nick}!{}@irc",
                            self.user.as_ref().map_or("user", |u| u.0.as_str())
                        ),
                        account,
                        &tl!(reply.lang, "irc-sasl-logged-in", name = account.as_str()),
                    ],
                );
                reply.num("903", &[&reply.t("irc-sasl-ok")]);
            }
            _ => reply.num("904", &[&reply.t("irc-sasl-failed")]),
        }
    }

    /// `CHATHISTORY LATEST|BEFORE|AFTER|AROUND|BETWEEN target ref [ref] limit`: `history` requests, the
    /// answer a `chathistory` batch. References are `msgid=` (natter's seq) or `timestamp=`.
    fn chathistory(&mut self, line: &Line, reply: &mut Reply, label: Option<&str>) -> Input {
        let sub = line.param(0).to_ascii_uppercase();
        let target = line.param(1).to_owned();
        let fail = |reply: &mut Reply, code: &str, text: &str| {
            let server = reply.server.clone();
            let mut out = format!(":{server} FAIL {} {code}", "CHATHISTORY");
            super::push_params(&mut out, &[&sub, &target, text]);
            reply.raw(out);
        };
        if sub == "TARGETS" {
            let times: Vec<Option<&str>> = [line.param(1), line.param(2)]
                .iter()
                .map(|r| {
                    r.strip_prefix("timestamp=")
                        .filter(|t| natter_proto::time::parse(t).is_some())
                })
                .collect();
            let limit = line.param(3).parse::<usize>().unwrap_or(0).min(100);
            let (Some(a), Some(b), true) = (times[0], times[1], limit > 0) else {
                fail(reply, "INVALID_PARAMS", &reply.t("irc-chathistory-ref"));
                return Input::Nothing;
            };
            let (after, before) = if a <= b { (a, b) } else { (b, a) };
            let id = self.next_id();
            self.state()
                .targets
                .insert(id.clone(), label.map(str::to_owned));
            return Input::Frame(ClientFrame::Conversations {
                after_ts: Some(after.to_owned()),
                before_ts: Some(before.to_owned()),
                limit: Some(limit),
                id: Some(id),
            });
        }
        let refs: Vec<&str> = match sub.as_str() {
            "LATEST" | "BEFORE" | "AFTER" | "AROUND" => vec![line.param(2)],
            "BETWEEN" => vec![line.param(2), line.param(3)],
            _ => {
                fail(
                    reply,
                    "INVALID_PARAMS",
                    &reply.t("irc-chathistory-subcommand"),
                );
                return Input::Nothing;
            }
        };
        let limit = line
            .params
            .get(refs.len() + 2)
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(0)
            .min(100);
        // A place in the log: a seq, or a time.
        #[derive(Clone)]
        enum At {
            Seq(u64),
            Time(String),
        }
        let parse = |r: &str| -> Option<At> {
            if let Some(seq) = r.strip_prefix("msgid=") {
                seq.parse().ok().map(At::Seq)
            } else {
                let ts = r.strip_prefix("timestamp=")?;
                natter_proto::time::parse(ts)?;
                Some(At::Time(ts.to_owned()))
            }
        };
        let mut at = Vec::new();
        for r in &refs {
            match (*r, sub.as_str()) {
                ("*", "LATEST") => {}
                _ => match parse(r) {
                    Some(a) => at.push(a),
                    None => {
                        fail(reply, "INVALID_PARAMS", &reply.t("irc-chathistory-ref"));
                        return Input::Nothing;
                    }
                },
            }
        }
        if limit == 0 {
            fail(reply, "INVALID_PARAMS", &reply.t("irc-chathistory-limit"));
            return Input::Nothing;
        }
        let (room, with) = match room_of(&target) {
            Some(room) => match RoomName::parse_lenient(room) {
                Ok(r) => (Some(r.to_string()), None),
                Err(_) => {
                    fail(reply, "INVALID_TARGET", &reply.t("irc-no-such-channel"));
                    return Input::Nothing;
                }
            },
            None => match name_of(&target) {
                Some(name) => (None, Some(name)),
                None => {
                    fail(reply, "INVALID_TARGET", &reply.t("irc-no-such-nick"));
                    return Input::Nothing;
                }
            },
        };
        // One request, or two for AROUND (the older half with the reference, the newer half).
        struct Part {
            after: Option<At>,
            before: Option<At>,
            newest: bool,
            limit: usize,
        }
        let parts: Vec<Part> = match (sub.as_str(), at.as_slice()) {
            ("LATEST", []) => vec![Part {
                after: None,
                before: None,
                newest: true,
                limit,
            }],
            ("LATEST", [a]) => vec![Part {
                after: Some(a.clone()),
                before: None,
                newest: true,
                limit,
            }],
            ("BEFORE", [a]) => vec![Part {
                after: None,
                before: Some(a.clone()),
                newest: true,
                limit,
            }],
            ("AFTER", [a]) => vec![Part {
                after: Some(a.clone()),
                before: None,
                newest: false,
                limit,
            }],
            ("AROUND", [a]) => {
                let newer = limit / 2;
                // The older half includes the reference itself.
                let older_before = match a {
                    At::Seq(s) => At::Seq(s + 1),
                    At::Time(t) => At::Time(
                        natter_proto::time::parse(t)
                            .map(|t| natter_proto::time::wire_ms(t.as_millisecond() + 1))
                            .unwrap_or_else(|| t.clone()),
                    ),
                };
                let mut parts = vec![Part {
                    after: None,
                    before: Some(older_before),
                    newest: true,
                    limit: limit - newer,
                }];
                if newer > 0 {
                    parts.push(Part {
                        after: Some(a.clone()),
                        before: None,
                        newest: false,
                        limit: newer,
                    });
                }
                parts
            }
            ("BETWEEN", [a, b]) => {
                let forward = match (a, b) {
                    (At::Seq(x), At::Seq(y)) => x < y,
                    (At::Time(x), At::Time(y)) => x < y,
                    _ => true,
                };
                let (lo, hi) = if forward { (a, b) } else { (b, a) };
                vec![Part {
                    after: Some(lo.clone()),
                    before: Some(hi.clone()),
                    newest: !forward,
                    limit,
                }]
            }
            _ => {
                fail(reply, "INVALID_PARAMS", &reply.t("irc-chathistory-ref"));
                return Input::Nothing;
            }
        };
        let id = self.next_id();
        self.state().history.insert(
            id.clone(),
            super::HistoryPending {
                target: target.clone(),
                subcommand: sub.clone(),
                label: label.map(str::to_owned),
                parts: parts.len() as u8,
                messages: Vec::new(),
            },
        );
        let frames = parts
            .into_iter()
            .map(|p| {
                let seq = |a: &Option<At>| match a {
                    Some(At::Seq(s)) => Some(*s),
                    _ => None,
                };
                let ts = |a: &Option<At>| match a {
                    Some(At::Time(t)) => Some(t.clone()),
                    _ => None,
                };
                ClientFrame::History {
                    room: room.clone(),
                    before: seq(&p.before),
                    limit: Some(p.limit),
                    after: seq(&p.after),
                    with: with.clone(),
                    newest: Some(p.newest),
                    id: Some(id.clone()),
                    after_ts: ts(&p.after),
                    before_ts: ts(&p.before),
                }
            })
            .collect();
        Input::Frames(frames)
    }

    /// `BATCH +ref draft/multiline target` … `BATCH -ref`: the batch's lines are one natter message.
    fn batch(&mut self, line: &Line, reply: &mut Reply, label: Option<&str>) -> Input {
        let reference = line.param(0);
        if let Some(reference) = reference.strip_prefix('+') {
            if line.param(1) != "draft/multiline" || line.param(2).is_empty() {
                let server = reply.server.clone();
                let mut out = format!(":{server} FAIL {} {}", "BATCH", "UNKNOWN_TYPE");
                super::push_params(&mut out, &[line.param(1), &reply.t("irc-unknown-command")]);
                reply.raw(out);
                return Input::Nothing;
            }
            self.multiline = Some(super::Multiline {
                reference: reference.to_owned(),
                target: line.param(2).to_owned(),
                text: String::new(),
                notice: false,
                label: label.map(str::to_owned),
            });
            return Input::Nothing;
        }
        let Some(open) = self
            .multiline
            .take()
            .filter(|o| reference.strip_prefix('-') == Some(o.reference.as_str()))
        else {
            return Input::Nothing;
        };
        if open.text.is_empty() || open.text.len() > super::MULTILINE_BYTES {
            let server = reply.server.clone();
            let mut out = format!(":{server} FAIL {} {}", "BATCH", "MULTILINE_INVALID");
            super::push_params(&mut out, &[&reply.t("irc-input-too-long")]);
            reply.raw(out);
            return Input::Nothing;
        }
        let body: String = open
            .text
            .split('\n')
            .filter_map(to_natter_text)
            .collect::<Vec<_>>()
            .join("\n");
        let label = open.label.as_deref();
        self.send_text(
            open.notice,
            &open.target,
            (&open.text, body),
            Default::default(),
            label,
            reply,
        )
    }

    /// A `moderate` frame, remembered by its id so that a refusal names the channel.
    fn moderate(
        &mut self,
        room: &str,
        action: &str,
        name: Option<String>,
        text: Option<&str>,
        on: Option<bool>,
    ) -> ClientFrame {
        let id = self.next_id();
        self.state().pending.insert(
            id.clone(),
            Pending {
                echo: false,
                notice: false,
                target: format!("#{room}"),
                text: String::new(),
                label: None,
                tags: Default::default(),
            },
        );
        ClientFrame::Moderate {
            room: room.to_owned(),
            action: action.to_owned(),
            name,
            text: text.map(str::to_owned),
            minutes: None,
            on,
            id: Some(id),
        }
    }

    fn ident_known(&self) -> bool {
        self.state().ident.is_some()
    }

    fn next_id(&mut self) -> String {
        self.next_id += 1;
        format!("irc{:x}.{}", self.id_prefix, self.next_id)
    }

    /// A registered client's command.
    pub(super) fn command(&mut self, line: &Line, reply: &mut Reply, label: Option<&str>) -> Input {
        if let Some(open) = self.multiline.as_mut() {
            let tag = |name: &str| {
                line.tags.and_then(|t| {
                    t.split(';')
                        .find(|kv| kv.split_once('=').map_or(*kv, |(k, _)| k) == name)
                })
            };
            let batch = tag("batch")
                .and_then(|kv| kv.split_once('='))
                .map(|(_, v)| v);
            if batch == Some(open.reference.as_str())
                && matches!(line.command.as_str(), "PRIVMSG" | "NOTICE")
            {
                if !open.text.is_empty() && tag("draft/multiline-concat").is_none() {
                    open.text.push('\n');
                }
                open.text.push_str(line.param(1));
                open.notice = line.command == "NOTICE";
                return Input::Nothing;
            }
        }
        match line.command.as_str() {
            "PING" => self.pong(line, reply),
            "PONG" => {}
            "CAP" => self.cap(line, reply),
            "NICK" => reply.num("447", &[&reply.t("irc-no-nick-change")]),
            "USER" | "PASS" => reply.num("462", &[&reply.t("irc-no-reregister")]),
            "PRIVMSG" | "NOTICE" => return self.privmsg(line, reply, label),
            "JOIN" => return self.join(line, reply),
            "PART" => return self.part(line, reply),
            "QUIT" => {
                let text = line.params.first().map(|t| (*t).to_owned());
                return Input::Frame(ClientFrame::Exit { text });
            }
            "NAMES" => self.names(line, reply),
            "WHO" => self.who(line, reply),
            "WHOIS" => self.whois(line, reply),
            "TOPIC" => return self.topic(line, reply),
            "MODE" => return self.mode(line, reply),
            "KICK" => {
                let (channel, nick) = (line.param(0), line.param(1));
                let (Some(room), Some(name)) = (room_of(channel), name_of(nick)) else {
                    reply.num("461", &["KICK", &reply.t("irc-not-enough-params")]);
                    return Input::Nothing;
                };
                let reason = line.params.get(2).copied();
                return Input::Frame(self.moderate(room, "kick", Some(name), reason, None));
            }
            "INVITE" => {
                let (nick, channel) = (line.param(0), line.param(1));
                let (Some(room), Some(name)) = (room_of(channel), name_of(nick)) else {
                    reply.num("461", &["INVITE", &reply.t("irc-not-enough-params")]);
                    return Input::Nothing;
                };
                if self.shared.hub.user(&name).is_none() {
                    reply.num("401", &[nick, &reply.t("irc-no-such-nick")]);
                    return Input::Nothing;
                }
                reply.num("341", &[nick, channel]);
                return Input::Frame(self.moderate(room, "invite", Some(name), None, None));
            }
            "LIST" => self.list(reply),
            "LUSERS" => self.lusers(reply),
            "MOTD" => self.motd(reply),
            "AWAY" => return self.away(line, reply),
            "SETNAME" => return self.setname(line, reply),
            "ISON" => {
                let on: Vec<&str> = line
                    .params
                    .iter()
                    .flat_map(|p| p.split(' '))
                    .filter(|n| name_of(n).is_some_and(|n| self.shared.hub.user(&n).is_some()))
                    .collect();
                reply.num("303", &[&on.join(" ")]);
            }
            "USERHOST" => {
                let found: Vec<String> = line
                    .params
                    .iter()
                    .filter_map(|n| {
                        let (name, _, _) = self.shared.hub.user(&name_of(n)?)?;
                        Some(format!(
                            "{}=+{}",
                            nick_of(name.as_str()),
                            self.userhost(name.as_str())
                        ))
                    })
                    .collect();
                reply.num("302", &[&found.join(" ")]);
            }
            "CHATHISTORY" => return self.chathistory(line, reply, label),
            "BATCH" => return self.batch(line, reply, label),
            "TAGMSG" => return self.tagmsg(line, reply, label),
            "AUTHENTICATE" => reply.num("907", &[&reply.t("irc-sasl-already")]),
            "VERSION" => reply.num(
                "351",
                &[
                    concat!("natter-", env!("CARGO_PKG_VERSION")),
                    &reply.server.clone(),
                    &reply.t("irc-version"),
                ],
            ),
            "" => {}
            other => {
                let other = other.to_owned();
                reply.num("421", &[&other, &reply.t("irc-unknown-command")]);
            }
        }
        Input::Nothing
    }

    /// `user@host` of an online name: an IRC user's own username; natter's other users are `natter`.
    /// natter never shows addresses: IRC users' host is `irc`, everyone else's `natter`.
    pub(super) fn userhost(&self, name: &str) -> String {
        userhost(&self.shared.irc, name)
    }

    fn privmsg(&mut self, line: &Line, reply: &mut Reply, label: Option<&str>) -> Input {
        let notice = line.command == "NOTICE";
        let command = line.command.as_str();
        let (targets, text) = (line.param(0), line.param(1));
        if targets.is_empty() {
            if !notice {
                reply.num(
                    "411",
                    &[&tl!(reply.lang, "irc-no-recipient", command = command)],
                );
            }
            return Input::Nothing;
        }
        if line.params.len() < 2 || text.is_empty() {
            if !notice {
                reply.num("412", &[&reply.t("irc-no-text")]);
            }
            return Input::Nothing;
        }
        // A text that could not be relayed to IRC clients in one line (source included) is refused
        // rather than cut or split: `417`.
        // The source is `nick!user@irc` (this connection's own USER): measured, not looked up.
        let source = reply.nick.len() + 1 + self.state().user.0.len() + "@irc".len();
        let longest_target = targets.split(',').map(str::len).max().unwrap_or(0);
        if 1 + source + 1 + command.len() + 1 + longest_target + 2 + text.len() + 2 > 512 {
            if !notice {
                reply.num("417", &[&reply.t("irc-input-too-long")]);
            }
            return Input::Nothing;
        }
        let body = to_natter_text(text);
        let Some(body) = body else {
            // A CTCP request other than ACTION (VERSION, PING, …): natter's users cannot answer it.
            return Input::Nothing;
        };
        let tags = line.client_tags();
        self.send_text(notice, targets, (text, body), tags, label, reply)
    }

    /// A text (one line, or a multiline batch's lines joined) to up to four targets: `say`/`whisper`
    /// frames, each remembered for its echo or its error. `text`: as the client sent it, and as natter
    /// text.
    fn send_text(
        &mut self,
        notice: bool,
        targets: &str,
        (text, body): (&str, String),
        tags: natter_proto::frame::Tags,
        label: Option<&str>,
        reply: &mut Reply,
    ) -> Input {
        let mut frames = Vec::new();
        for target in targets.split(',').take(4) {
            let id = self.next_id();
            let frame = if let Some(room) = room_of(target) {
                let exists =
                    RoomName::parse_lenient(room).is_ok_and(|r| self.shared.hub.room_exists(&r));
                if !exists {
                    if !notice {
                        reply.num("403", &[target, &reply.t("irc-no-such-channel")]);
                    }
                    continue;
                }
                ClientFrame::Say {
                    tags: tags.clone(),
                    notice,
                    text: body.clone(),
                    room: Some(room.to_owned()),
                    id: Some(id.clone()),
                }
            } else {
                let Some(name) = name_of(target) else {
                    if !notice {
                        reply.num("401", &[target, &reply.t("irc-no-such-nick")]);
                    }
                    continue;
                };
                ClientFrame::Whisper {
                    tags: tags.clone(),
                    notice,
                    to: name,
                    text: body.clone(),
                    id: Some(id.clone()),
                }
            };
            self.state().pending.insert(
                id,
                Pending {
                    echo: true,
                    notice,
                    target: target.to_owned(),
                    text: text.to_owned(),
                    label: label.filter(|_| !targets.contains(',')).map(str::to_owned),
                    tags: tags.clone(),
                },
            );
            frames.push(frame);
        }
        Input::Frames(frames)
    }

    /// `TAGMSG target` with client tags: a natter `signal` (relayed, not stored).
    fn tagmsg(&mut self, line: &Line, reply: &mut Reply, label: Option<&str>) -> Input {
        let target = line.param(0);
        let tags = line.client_tags();
        if target.is_empty() || tags.is_empty() {
            return Input::Nothing;
        }
        let (room, to) = match room_of(target) {
            Some(room) => (Some(room.to_owned()), None),
            None => match name_of(target) {
                Some(name) => (None, Some(name)),
                None => {
                    reply.num("401", &[target, &reply.t("irc-no-such-nick")]);
                    return Input::Nothing;
                }
            },
        };
        let id = self.next_id();
        self.state().pending.insert(
            id.clone(),
            Pending {
                echo: true,
                notice: true, // never answered with an error, like a NOTICE
                target: target.to_owned(),
                text: String::new(),
                label: label.map(str::to_owned),
                tags: tags.clone(),
            },
        );
        Input::Frame(ClientFrame::Signal {
            room,
            to,
            tags,
            id: Some(id),
        })
    }

    fn join(&mut self, line: &Line, reply: &mut Reply) -> Input {
        let channels = line.param(0);
        if channels.is_empty() {
            reply.num("461", &["JOIN", &reply.t("irc-not-enough-params")]);
            return Input::Nothing;
        }
        if channels == "0" {
            let me = name_of(&reply.nick).unwrap_or_default();
            let rooms = self.shared.hub.user(&me).map(|u| u.1).unwrap_or_default();
            return Input::Frames(
                rooms
                    .into_iter()
                    .map(|room| ClientFrame::Leave {
                        room: room.to_string(),
                        text: None,
                    })
                    .collect(),
            );
        }
        let mut frames = Vec::new();
        for channel in channels.split(',') {
            match room_of(channel).map(RoomName::parse_lenient) {
                Some(Ok(room)) => frames.push(ClientFrame::Join {
                    room: room.to_string(),
                }),
                _ => reply.num("403", &[channel, &reply.t("irc-no-such-channel")]),
            }
        }
        Input::Frames(frames)
    }

    fn part(&mut self, line: &Line, reply: &mut Reply) -> Input {
        let channels = line.param(0);
        if channels.is_empty() {
            reply.num("461", &["PART", &reply.t("irc-not-enough-params")]);
            return Input::Nothing;
        }
        let me = name_of(&reply.nick).unwrap_or_default();
        let mine = self.shared.hub.user(&me).map(|u| u.1).unwrap_or_default();
        let text = line.params.get(1).map(|t| (*t).to_owned());
        let mut frames = Vec::new();
        for channel in channels.split(',') {
            let room = room_of(channel).and_then(|r| RoomName::parse_lenient(r).ok());
            match room {
                Some(room) if mine.contains(&room) => frames.push(ClientFrame::Leave {
                    room: room.to_string(),
                    text: text.clone(),
                }),
                Some(room) if self.exists(&room) => {
                    reply.num("442", &[channel, &reply.t("irc-not-on-channel")])
                }
                _ => reply.num("403", &[channel, &reply.t("irc-no-such-channel")]),
            }
        }
        Input::Frames(frames)
    }

    /// Whether a room has anyone in it (natter's rooms exist while someone is in them).
    fn exists(&self, room: &RoomName) -> bool {
        self.shared.hub.room_exists(room)
    }

    /// A room's members and operators, if anyone is in it.
    fn members(&self, room: &RoomName) -> Option<(Vec<String>, Vec<String>)> {
        match self.shared.hub.who(Some(room.as_str())) {
            Ok(ServerFrame::Users { names, ops, .. }) if !names.is_empty() => Some((names, ops)),
            _ => None,
        }
    }

    fn names(&mut self, line: &Line, reply: &mut Reply) {
        let channels = line.param(0);
        if channels.is_empty() {
            reply.num("366", &["*", &reply.t("irc-end-of-names")]);
            return;
        }
        for channel in channels.split(',') {
            let room = room_of(channel).and_then(|r| RoomName::parse_lenient(r).ok());
            if let Some((names, ops)) = room.as_ref().and_then(|r| self.members(r)) {
                let caps = self.state().caps;
                for chunk in names_lines(&names, &ops, caps, &self.shared.irc) {
                    reply.num(
                        "353",
                        &["=", &format!("#{}", room_name(room.as_ref())), &chunk],
                    );
                }
            }
        }
        // One end for the whole list, as it was asked.
        reply.num("366", &[channels, &reply.t("irc-end-of-names")]);
    }

    fn who(&mut self, line: &Line, reply: &mut Reply) {
        let mask = line.param(0);
        let mask = if mask.is_empty() { "*" } else { mask };
        // WHOX: `WHO mask %fields[,token]`.
        let whox = line
            .params
            .get(1)
            .and_then(|f| f.strip_prefix('%'))
            .map(|f| match f.split_once(',') {
                Some((fields, token)) => (fields.to_owned(), token.to_owned()),
                None => (f.to_owned(), String::new()),
            });
        let mut rows: Vec<(String, Option<String>, bool)> = Vec::new(); // name, channel, op
        if let Some(room) = room_of(mask) {
            if let Ok(ServerFrame::Users {
                room, names, ops, ..
            }) = self.shared.hub.who(Some(room))
            {
                for name in names {
                    let op = ops.contains(&name);
                    rows.push((name, Some(format!("#{room}")), op));
                }
            }
        } else {
            let me = name_of(&reply.nick).unwrap_or_default();
            let my_rooms = self.shared.hub.user(&me).map(|u| u.1).unwrap_or_default();
            let exact = name_of(mask).and_then(|n| self.shared.hub.user(&n));
            let names: Vec<String> = match exact {
                Some((name, _, _)) => vec![name.to_string()],
                None => self
                    .shared
                    .hub
                    .online()
                    .into_iter()
                    .map(|n| n.to_string())
                    .filter(|n| {
                        let seen = self.shared.irc.seen(n);
                        if seen.ident.as_ref().is_some_and(|i| i.invisible) {
                            let theirs = self.shared.hub.user(n).map(|u| u.1).unwrap_or_default();
                            if !theirs.iter().any(|r| my_rooms.contains(r)) {
                                return false;
                            }
                        }
                        let nick = nick_of(n);
                        let (user, host) = (seen.user.as_str(), seen.host);
                        mask_matches(mask, &nick)
                            || mask_matches(mask, user)
                            || mask_matches(mask, &seen.realname)
                            || mask_matches(mask, host)
                            || mask_matches(mask, &format!("{nick}!{user}@{host}"))
                    })
                    .collect(),
            };
            for name in names {
                // The first channel they are in, with their status there.
                let first = self
                    .shared
                    .hub
                    .user(&name)
                    .and_then(|u| u.1.first().cloned());
                let (channel, op) = match first {
                    Some(room) => match self.shared.hub.who(Some(room.as_str())) {
                        Ok(ServerFrame::Users { room, ops, .. }) => {
                            (Some(format!("#{room}")), ops.contains(&name))
                        }
                        _ => (None, false),
                    },
                    None => (None, false),
                };
                rows.push((name, channel, op));
            }
        }
        let server = reply.server.clone();
        for (name, channel, op) in rows {
            let super::Seen {
                user,
                host,
                realname: real,
                ident,
            } = self.shared.irc.seen(&name);
            let nick = nick_of(&name);
            let away = ident.as_ref().is_some_and(|i| i.away.is_some());
            let flags = format!(
                "{}{}",
                if away { "G" } else { "H" },
                if op { "@" } else { "" }
            );
            let chan = channel.unwrap_or_else(|| "*".into());
            match &whox {
                None => reply.num(
                    "352",
                    &[
                        &chan,
                        &user,
                        host,
                        &server,
                        &nick,
                        &flags,
                        &format!("0 {real}"),
                    ],
                ),
                Some((fields, token)) => {
                    let mut params: Vec<String> = Vec::new();
                    for f in fields.chars() {
                        let value = match f {
                            't' => token.clone(),
                            'c' => chan.clone(),
                            'u' => user.clone(),
                            'i' => "255.255.255.255".into(),
                            'h' => host.into(),
                            's' => server.clone(),
                            'n' => nick.clone(),
                            'f' => flags.clone(),
                            'd' => "0".into(),
                            'l' => "0".into(),
                            'a' => "0".into(),
                            'o' => "n/a".into(),
                            'r' => real.clone(),
                            _ => continue,
                        };
                        params.push(value);
                    }
                    let refs: Vec<&str> = params.iter().map(String::as_str).collect();
                    reply.num("354", &refs);
                }
            }
        }
        reply.num("315", &[mask, &reply.t("irc-end-of-who")]);
    }

    fn whois(&mut self, line: &Line, reply: &mut Reply) {
        let nick = line.params.last().copied().unwrap_or("");
        if nick.is_empty() {
            reply.num("431", &[&reply.t("irc-no-nickname")]);
            return;
        }
        let Some((name, rooms, owner)) = name_of(nick).and_then(|n| self.shared.hub.user(&n))
        else {
            reply.num("401", &[nick, &reply.t("irc-no-such-nick")]);
            reply.num("318", &[nick, &reply.t("irc-end-of-whois")]);
            return;
        };
        let nick = nick_of(name.as_str());
        let super::Seen {
            user,
            host,
            realname: real,
            ident,
        } = self.shared.irc.seen(name.as_str());
        reply.num("311", &[&nick, &user, host, "*", &real]);
        if !rooms.is_empty() {
            let list: Vec<String> = rooms.iter().map(|r| format!("#{r}")).collect();
            reply.num("319", &[&nick, &list.join(" ")]);
        }
        let server = reply.server.clone();
        reply.num("312", &[&nick, &server, "natter"]);
        if owner {
            reply.num("330", &[&nick, name.as_str(), &reply.t("irc-logged-in-as")]);
        }
        if let Some(away) = ident.as_ref().and_then(|i| i.away.clone()) {
            reply.num("301", &[&nick, &away]);
        }
        reply.num("318", &[&nick, &reply.t("irc-end-of-whois")]);
    }

    fn topic(&mut self, line: &Line, reply: &mut Reply) -> Input {
        let channel = line.param(0);
        let Some(room) = room_of(channel).and_then(|r| RoomName::parse_lenient(r).ok()) else {
            if channel.is_empty() {
                reply.num("461", &["TOPIC", &reply.t("irc-not-enough-params")]);
            } else {
                reply.num("403", &[channel, &reply.t("irc-no-such-channel")]);
            }
            return Input::Nothing;
        };
        if !self.exists(&room) {
            reply.num("403", &[channel, &reply.t("irc-no-such-channel")]);
            return Input::Nothing;
        }
        match line.params.get(1) {
            Some(text) => {
                Input::Frame(self.moderate(room.as_str(), "topic", None, Some(text), None))
            }
            None => {
                match self.shared.hub.topic_frame(&room) {
                    Some(frame @ ServerFrame::Topic { topic: Some(_), .. }) => {
                        topic_lines(&frame, reply)
                    }
                    _ => reply.num("331", &[channel, &reply.t("irc-no-topic")]),
                }
                Input::Nothing
            }
        }
    }

    fn mode(&mut self, line: &Line, reply: &mut Reply) -> Input {
        let target = line.param(0);
        let Some(room) = room_of(target) else {
            // User modes: only `+i` (invisible to WHO masks).
            let me = name_of(&reply.nick).unwrap_or_default();
            if name_of(target).is_some_and(|n| n.to_lowercase() == me.to_lowercase()) {
                let ident = self.state().ident.clone();
                let Some((name, ident)) = ident else {
                    return Input::Nothing;
                };
                match line.params.get(1).copied() {
                    None => reply.num("221", &[if ident.invisible { "+i" } else { "+" }]),
                    Some(change @ ("+i" | "-i")) => {
                        let invisible = change == "+i";
                        if invisible != ident.invisible {
                            self.change_ident(&name, &ident, |i| i.invisible = invisible);
                            let nick = reply.nick.clone();
                            reply.raw(format!(":{nick} MODE {nick} :{change}"));
                        }
                    }
                    Some(_) => reply.num("501", &[&reply.t("irc-unknown-mode-flag")]),
                }
            } else if target.is_empty() {
                reply.num("461", &["MODE", &reply.t("irc-not-enough-params")]);
            } else {
                reply.num("502", &[&reply.t("irc-no-mode-for-others")]);
            }
            return Input::Nothing;
        };
        let Some(room) = RoomName::parse_lenient(room)
            .ok()
            .filter(|r| self.exists(r))
        else {
            reply.num("403", &[target, &reply.t("irc-no-such-channel")]);
            return Input::Nothing;
        };
        let Some(modes) = line.params.get(1) else {
            let (invite_only, moderated) = match self.shared.hub.topic_frame(&room) {
                Some(ServerFrame::Topic {
                    invite_only,
                    moderated,
                    ..
                }) => (invite_only, moderated),
                _ => (false, false),
            };
            // `+u` (auditorium): a room too big to announce joins and parts.
            let limit = self.shared.config().announce_limit;
            let big = self
                .members(&room)
                .is_some_and(|(names, _)| names.len() > limit);
            let modes = format!(
                "+nt{}{}{}",
                if invite_only { "i" } else { "" },
                if moderated { "m" } else { "" },
                if big { "u" } else { "" }
            );
            reply.num("324", &[target, &modes]);
            return Input::Nothing;
        };
        let mut args = line.params.iter().skip(2);
        let mut on = true;
        let mut frames = Vec::new();
        for c in modes.chars() {
            let action = match c {
                '+' => {
                    on = true;
                    continue;
                }
                '-' => {
                    on = false;
                    continue;
                }
                'o' => {
                    if on {
                        "op"
                    } else {
                        "deop"
                    }
                }
                'v' => {
                    if on {
                        "voice"
                    } else {
                        "devoice"
                    }
                }
                'b' => {
                    if on {
                        "ban"
                    } else {
                        "unban"
                    }
                }
                'i' | 'm' => {
                    let action = if c == 'i' { "invite_only" } else { "moderated" };
                    frames.push(self.moderate(room.as_str(), action, None, None, Some(on)));
                    continue;
                }
                'n' | 't' => continue, // always on in natter
                other => {
                    reply.num(
                        "472",
                        &[&other.to_string(), &reply.t("irc-unknown-mode-char")],
                    );
                    continue;
                }
            };
            let Some(arg) = args.next() else {
                if c == 'b' {
                    reply.num("368", &[target, &reply.t("irc-end-of-bans")]);
                }
                continue;
            };
            // A ban mask names a nick: `nick`, `nick!*@*`.
            let nick = arg.split('!').next().unwrap_or(arg);
            let Some(name) = name_of(nick) else {
                reply.num("401", &[nick, &reply.t("irc-no-such-nick")]);
                continue;
            };
            frames.push(self.moderate(room.as_str(), action, Some(name), None, None));
        }
        Input::Frames(frames)
    }

    fn list(&mut self, reply: &mut Reply) {
        reply.num("321", &["Channel", &reply.t("irc-list-header")]);
        if let ServerFrame::Rooms { rooms } = self.shared.hub.rooms_frame() {
            for room in rooms {
                let name = RoomName::parse_lenient(&room.name).ok();
                let topic = name
                    .and_then(|r| self.shared.hub.topic_frame(&r))
                    .and_then(|t| match t {
                        ServerFrame::Topic { topic, .. } => topic,
                        _ => None,
                    })
                    .unwrap_or_default();
                reply.num(
                    "322",
                    &[
                        &format!("#{}", room.name),
                        &room.members.to_string(),
                        &topic,
                    ],
                );
            }
        }
        reply.num("323", &[&reply.t("irc-end-of-list")]);
    }

    fn lusers(&mut self, reply: &mut Reply) {
        let (users, rooms, _) = self.shared.hub.counts();
        let lang = reply.lang;
        let max = self.shared.config().max_clients;
        let (u, m) = (users.to_string(), max.to_string());
        reply.num("251", &[&tl!(lang, "irc-lusers-users", users = users)]);
        reply.num("252", &["0", &reply.t("irc-lusers-ops")]);
        reply.num(
            "254",
            &[&rooms.to_string(), &reply.t("irc-lusers-channels")],
        );
        reply.num("255", &[&tl!(lang, "irc-lusers-me", users = users)]);
        let local = tl!(lang, "irc-local-users", users = users, max = max);
        reply.num("265", &[&u, &m, &local]);
        let global = tl!(lang, "irc-global-users", users = users, max = max);
        reply.num("266", &[&u, &m, &global]);
    }

    pub(super) fn motd(&mut self, reply: &mut Reply) {
        motd(&self.shared.config().irc, reply);
    }

    fn away(&mut self, line: &Line, reply: &mut Reply) -> Input {
        let Some((name, ident)) = self.state().ident.clone() else {
            return Input::Nothing;
        };
        let away = line
            .params
            .first()
            .filter(|t| !t.is_empty())
            .map(|t| (*t).to_owned());
        let now_away = away.is_some();
        let text = away.clone().unwrap_or_default();
        self.change_ident(&name, &ident, |i| i.away = away);
        if now_away {
            reply.num("306", &[&reply.t("irc-now-away")]);
        } else {
            reply.num("305", &[&reply.t("irc-back")]);
        }
        self.tell_channels(&name, AWAY_TAG, text)
    }

    /// `SETNAME :real name` (the setname cap): a new real name, told to the channels.
    fn setname(&mut self, line: &Line, reply: &mut Reply) -> Input {
        let Some((name, ident)) = self.state().ident.clone() else {
            return Input::Nothing;
        };
        let real = line.param(0);
        if real.is_empty() || real.len() > 100 {
            let server = reply.server.clone();
            let mut out = format!(":{server} FAIL {} {}", "SETNAME", "INVALID_REALNAME");
            super::push_params(&mut out, &[&reply.t("irc-not-enough-params")]);
            reply.raw(out);
            return Input::Nothing;
        }
        self.change_ident(&name, &ident, |i| i.realname = real.to_owned());
        if self.state().has(Cap::Setname) {
            let nick = reply.nick.clone();
            let mut out = format!(":{nick}!{} SETNAME", self.userhost(&name));
            super::push_params(&mut out, &[real]);
            reply.raw(out);
        }
        self.tell_channels(&name, SETNAME_TAG, real.to_owned())
    }

    /// A change the IRC users who share a channel with `name` hear of (away-notify, setname): a
    /// `signal` to each of the user's rooms, with `tag` set to `value` (natter's clients ignore it).
    fn tell_channels(&mut self, name: &str, tag: &str, value: String) -> Input {
        let rooms = self.shared.hub.user(name).map(|u| u.1).unwrap_or_default();
        let frames: Vec<ClientFrame> = rooms
            .into_iter()
            .map(|room| ClientFrame::Signal {
                room: Some(room.to_string()),
                to: None,
                tags: [(tag.to_owned(), value.clone())].into(),
                id: None,
            })
            .collect();
        Input::Frames(frames)
    }
}

/// The signal tag that carries an AWAY change to the channels (away-notify).
pub(super) const AWAY_TAG: &str = "+natter/away";
/// The signal tag that carries a SETNAME to the channels.
pub(super) const SETNAME_TAG: &str = "+natter/setname";

/// The name of a room for display in IRC (`lobby`), from a parsed name.
fn room_name(room: Option<&RoomName>) -> String {
    room.map(ToString::to_string).unwrap_or_default()
}

/// A room's topic as IRC gives it: `332`, and `333` (who set it, when) when natter knows.
pub(super) fn topic_lines(frame: &ServerFrame, reply: &mut Reply) {
    let ServerFrame::Topic {
        room,
        topic: Some(topic),
        set_by,
        set_at,
        ..
    } = frame
    else {
        return;
    };
    if topic.is_empty() {
        return;
    }
    let channel = format!("#{room}");
    reply.num("332", &[&channel, topic]);
    let at = set_at
        .as_deref()
        .and_then(natter_proto::time::parse)
        .map(|t| t.as_second());
    if let (Some(by), Some(at)) = (set_by, at) {
        reply.num("333", &[&channel, &nick_of(by), &at.to_string()]);
    }
}

/// `user@host` of a name (see [`Irc::userhost`]).
pub(super) fn userhost(directory: &super::Directory, name: &str) -> String {
    let seen = directory.seen(name);
    format!("{}@{}", seen.user, seen.host)
}

/// The MOTD numerics (375/372/376), or 422 without one.
pub(super) fn motd(config: &super::IrcConfig, reply: &mut Reply) {
    match &config.motd {
        Some(text) => {
            let server = reply.server.clone();
            reply.num(
                "375",
                &[&tl!(reply.lang, "irc-motd-start", server = server.as_str())],
            );
            for line in text.lines() {
                reply.num("372", &[&format!("- {line}")]);
            }
            reply.num("376", &[&reply.t("irc-motd-end")]);
        }
        None => reply.num("422", &[&reply.t("irc-no-motd")]),
    }
}

/// The 353 parameter lists for a room's members: `@` before operators (all prefixes with multi-prefix —
/// natter has only `@`), `nick!user@host` with userhost-in-names; at most ~400 bytes each.
pub(super) fn names_lines(
    names: &[String],
    ops: &[String],
    caps: u32,
    directory: &super::Directory,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for name in names {
        let mut entry = String::new();
        if ops.contains(name) {
            entry.push('@');
        }
        entry.push_str(&nick_of(name));
        if caps & Cap::UserhostInNames as u32 != 0 {
            entry.push('!');
            entry.push_str(&userhost(directory, name));
        }
        if !current.is_empty() && current.len() + entry.len() + 1 > 400 {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&entry);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// An IRC message text as natter text: formatting codes (bold, colour, …) removed, a CTCP ACTION as
/// `/me …`. `None` for any other CTCP request, which natter's users cannot answer.
pub(super) fn to_natter_text(text: &str) -> Option<String> {
    let (text, action) = match text.strip_prefix('\u{1}') {
        Some(ctcp) => {
            let ctcp = ctcp.strip_suffix('\u{1}').unwrap_or(ctcp);
            match ctcp.strip_prefix("ACTION ") {
                Some(action) => (action, true),
                None => return None,
            }
        }
        None => (text, false),
    };
    let mut out = String::with_capacity(text.len() + 4);
    if action {
        out.push_str("/me ");
    }
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{2}' | '\u{1d}' | '\u{1f}' | '\u{1e}' | '\u{11}' | '\u{16}' | '\u{f}' => {}
            '\u{3}' => {
                // ^C, up to two digits, optionally `,` and up to two more.
                for _ in 0..2 {
                    if chars.peek().is_some_and(char::is_ascii_digit) {
                        chars.next();
                    }
                }
                let mut ahead = chars.clone();
                if ahead.next() == Some(',') && ahead.peek().is_some_and(char::is_ascii_digit) {
                    chars.next();
                    for _ in 0..2 {
                        if chars.peek().is_some_and(char::is_ascii_digit) {
                            chars.next();
                        }
                    }
                }
            }
            c if natter_proto::text::is_forbidden(c) => {}
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irc_formatting_is_dropped_and_actions_become_me() {
        assert_eq!(
            to_natter_text("\u{2}bold\u{2} \u{3}4,12red\u{3}").as_deref(),
            Some("bold red")
        );
        assert_eq!(
            to_natter_text("\u{1}ACTION waves\u{1}").as_deref(),
            Some("/me waves")
        );
        assert_eq!(to_natter_text("\u{1}VERSION\u{1}"), None);
        assert_eq!(to_natter_text("你好").as_deref(), Some("你好"));
    }
}
