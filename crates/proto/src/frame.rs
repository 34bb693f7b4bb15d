//! The frames of protocol v1: one JSON object per line, told apart by `"type"`.
//!
//! PROTOCOL.md is the specification; this module is its executable form. Unknown fields are ignored on
//! input (serde's default), optional fields are left out on output when empty.

use bytes::Bytes;
use natter_i18n::Lang;
use serde::{Deserialize, Serialize};

/// A frame sent by a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// `{"type":"hello","name":"alice","version":1}` — register. Must come first (only `ping` and `exit` may precede it).
    Hello {
        name: String,
        #[serde(default = "default_version")]
        version: u32,
        /// Resume: replay every message after this seq that you may see, then continue live.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume_after: Option<u64>,
        /// `false`: do not put me in the lobby (for big servers, where everyone in one room is a storm of
        /// join announcements). Rooms joined before are restored either way.
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        lobby: bool,
        /// `false`: start in no room — the rooms you were in are not entered again (IRC clients join
        /// their channels themselves). They stay remembered for a later `hello` without it.
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        rooms: bool,
        /// Your public key (Ed25519, base64url): own the name, or prove you own it (see
        /// [`crate::auth`]). Without it you are a guest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// The name's password: sign in as its owner from a device without its key (with `key` too,
        /// that key is added to the name's keys). Only over TLS or from this machine.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
    },
    /// `{"type":"set_password","password":"…"}` — set or change your name's password. A guest whose name
    /// nobody owns comes to own it this way.
    SetPassword { password: String },
    /// `{"type":"forget_me"}` — forget your name's account and everything private of it (you stay on as
    /// a guest). Clients ask the user to confirm first.
    ForgetMe,
    /// `{"type":"moderate","room":"rust","action":"kick","name":"bob","text":"spam"}` — a room operator's
    /// action: `op`, `deop`, `voice`, `devoice`, `kick`, `ban`, `unban`, `mute` (`minutes`), `unmute`,
    /// `invite`, `topic` (`text`), `invite_only` and `moderated` (`on`).
    Moderate {
        room: String,
        action: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        minutes: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        on: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// `{"type":"status"}` — how the server is doing (allowed before `hello`, like `ping`).
    Status,
    /// `{"type":"block","name":"bob"}` — refuse bob's private messages (owners only).
    Block { name: String },
    /// `{"type":"unblock","name":"bob"}` — take them again.
    Unblock { name: String },
    /// `{"type":"prove","signature":"…"}` — the answer to a `challenge`: the signature of
    /// [`crate::auth::challenge_message`] with the key given in `hello`.
    Prove { signature: String },
    /// `{"type":"say","text":"…","room":"lobby","id":"7"}` — a message to a room (default `lobby`).
    Say {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// A notice: a message no program should answer automatically (IRC's NOTICE).
        #[serde(default, skip_serializing_if = "is_false")]
        notice: bool,
        /// Client tags (IRCv3's client-only tags: `{"+draft/reply":"41"}`), relayed and kept with the
        /// message; names start with `+`.
        #[serde(default, skip_serializing_if = "Tags::is_empty")]
        tags: Tags,
    },
    /// `{"type":"whisper","to":"bob","text":"…","id":"8"}` — a private message.
    Whisper {
        to: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// As for `say`.
        #[serde(default, skip_serializing_if = "is_false")]
        notice: bool,
        /// As for `say`.
        #[serde(default, skip_serializing_if = "Tags::is_empty")]
        tags: Tags,
    },
    /// `{"type":"signal","room":"rust","tags":{"+typing":"active"},"id":"9"}` — a message without text,
    /// not stored (typing notifications, reactions; IRC's TAGMSG): relayed at once to the room's members
    /// (or to `to`, who must be online); you get it back as the acknowledgement.
    Signal {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        tags: Tags,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// `{"type":"conversations","after_ts":"…","before_ts":"…","limit":50,"id":"c1"}` — your rooms and
    /// private conversations with a message between the two times, by the time of the latest.
    Conversations {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_ts: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before_ts: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// `{"type":"join","room":"rust"}` — join a room, creating it if needed.
    Join { room: String },
    /// `{"type":"leave","room":"rust","text":"bye"}` — leave a room (`text`: a parting word the
    /// members see, optional).
    Leave {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// `{"type":"who","room":"lobby"}` — list a room's members (default `lobby`).
    Who {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
    },
    /// `{"type":"rooms"}` — list the rooms.
    Rooms,
    /// `{"type":"history","room":"lobby","before":120,"limit":50}` — page backwards through a room's
    /// history (or, without `room`, your private messages).
    History {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
        /// Only messages after this seq (with `before`: between the two).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        /// Without `room`: only the private messages between you and this name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// Which end of a range longer than `limit` to send: the newest messages (default, unless only
        /// `after` is given) or the oldest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        newest: Option<bool>,
        /// Echoed in the answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Only messages stored after this time (RFC 3339), as `after` is a seq.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_ts: Option<String>,
        /// Only messages stored before this time (RFC 3339).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before_ts: Option<String>,
    },
    /// `{"type":"ping","id":"x"}` — answered by `pong` with the same id.
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// `{"type":"exit"}` — the lab's exit request; answered by `bye`, then the server closes. `text`: a
    /// parting word your rooms see, optional.
    Exit {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// `{"type":"offer","name":"report.pdf","size":2516582,"sha256":"…","room":"lobby","id":"9"}` — share
    /// a file with a room (or with `to`, privately). Answered by `upload_ready` with a token for a transfer
    /// connection (PROTOCOL.md §7); once the server has the whole file, verified, it appears as a message.
    Offer {
        name: String,
        size: u64,
        sha256: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// `{"type":"fetch","file":17,"id":"10"}` — download a shared file: answered by `download_ready`.
    Fetch {
        file: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// `{"type":"pong","id":"s1"}` — the answer to a server's `ping`.
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
}

fn default_version() -> u32 {
    crate::VERSION
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

/// The `type` values a client may send; anything else is `unknown_type`.
pub const CLIENT_TYPES: &[&str] = &[
    "hello",
    "prove",
    "set_password",
    "forget_me",
    "moderate",
    "status",
    "block",
    "unblock",
    "say",
    "whisper",
    "signal",
    "conversations",
    "join",
    "leave",
    "who",
    "rooms",
    "history",
    "ping",
    "pong",
    "exit",
    "offer",
    "fetch",
];

/// Why a client frame could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFrame {
    pub code: ErrorCode,
    /// The placeholders of the code's text (`reason`, `detail`, `kind`).
    pub args: ErrorArgs,
    /// The frame's `id`, when it had a readable one, so the client can match the error to its request.
    pub id: Option<String>,
}

impl BadFrame {
    /// The `error` frame that answers it.
    pub fn frame(self) -> ServerFrame {
        ServerFrame::error(self.code, self.args, self.id)
    }
}

impl ClientFrame {
    /// Parses one frame (without its newline). Never panics; every failure is classified into a stable code.
    pub fn parse(bytes: &[u8]) -> Result<Self, BadFrame> {
        match serde_json::from_slice::<ClientFrame>(bytes) {
            Ok(frame) => Ok(frame),
            Err(err) => Err(classify(bytes, err)),
        }
    }
}

/// The slow path: work out which error code a frame that failed to parse deserves.
fn classify(bytes: &[u8], err: serde_json::Error) -> BadFrame {
    let bad = |args: ErrorArgs, id: Option<String>| BadFrame {
        code: ErrorCode::BadFrame,
        args,
        id,
    };
    if std::str::from_utf8(bytes).is_err() {
        return bad(crate::error_args!(reason = "utf8"), None);
    }
    let value: serde_json::Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            return bad(
                crate::error_args!(reason = "json", detail = e.to_string()),
                None,
            )
        }
    };
    let Some(obj) = value.as_object() else {
        return bad(crate::error_args!(reason = "object"), None);
    };
    let id = obj.get("id").and_then(|v| v.as_str()).map(str::to_owned);
    match obj.get("type").and_then(|t| t.as_str()) {
        None => bad(crate::error_args!(reason = "no_type"), id),
        Some(t) if !CLIENT_TYPES.contains(&t) => BadFrame {
            code: ErrorCode::UnknownType,
            args: crate::error_args!(kind = format!("{t:?}")),
            id,
        },
        Some(t) => bad(
            crate::error_args!(
                reason = "fields",
                kind = format!("{t:?}"),
                detail = err.to_string()
            ),
            id,
        ),
    }
}

/// A chat message as delivered: to a room (`room` set) or private (`to` set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Server-wide sequence number, strictly increasing.
    pub seq: u64,
    /// Server time, RFC 3339 UTC with milliseconds.
    pub ts: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// For an ordinary message what was said; for a room event (`event` set) the event in English
    /// words, for clients that do not know events.
    pub text: String,
    /// A room event rather than something said: a topic set, a kick, a ban, … (PROTOCOL.md §4 *Rooms
    /// have owners*). Stored and replayed like messages, so everyone sees who did what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<Box<RoomEvent>>,
    /// A shared file (`text` is then its English wording, for clients that do not know files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Box<crate::file::FileInfo>>,
    /// Sent as a notice (`say`/`whisper` with `notice`): shown like a message, answered by no program.
    #[serde(default, skip_serializing_if = "is_false")]
    pub notice: bool,
    /// The client tags it was sent with.
    #[serde(default, skip_serializing_if = "Tags::is_empty")]
    pub tags: Tags,
}

/// Client tags: names (starting with `+`) to values, as IRCv3's client-only message tags.
pub type Tags = std::collections::BTreeMap<String, String>;

/// Most bytes of client tags on one message (names, values and separators, as IRC counts them).
pub const MAX_TAGS: usize = 4094;

/// One entry of a `conversations` answer: a room or a person, and the time of the latest message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<String>,
    pub ts: String,
}

/// A relayed `signal` (see [`ClientFrame::Signal`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signal {
    pub sid: String,
    pub ts: String,
    pub from: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// What a room event did. `kind` names the action (as `moderate` does); `name` is whom it concerned, `text`
/// a topic or reason, `minutes` a mute's length, `on` a setting's new value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEvent {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<bool>,
}

/// One entry of a `rooms` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub name: String,
    pub members: usize,
}

/// A frame sent by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        name: String,
        version: u32,
        rooms: Vec<String>,
        last_seq: u64,
        /// You proved you own the name (a `hello` with `key`); absent or false: you are a guest.
        #[serde(default, skip_serializing_if = "is_false")]
        owner: bool,
    },
    /// The answer to a `hello` with `key`: sign this nonce (see [`crate::auth`]) and send `prove`.
    Challenge {
        nonce: String,
    },
    /// Your `set_password` took effect (and you own your name).
    PasswordSet,
    /// Your `forget_me` took effect: the name is nobody's, its private history is gone, you are a guest.
    Forgotten,
    /// Your `block`/`unblock` of `name` took effect.
    Blocked {
        name: String,
        on: bool,
    },
    /// Boxed: a message is the largest frame, and every queued item is as big as the largest frame.
    Message(Box<Message>),
    /// The answer to `conversations`: oldest latest activity first.
    Conversations {
        conversations: Vec<ConversationInfo>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// A `signal` relayed: `sid` identifies it (the same for every recipient); to its sender it comes back
    /// with the request's `id`.
    Signal(Box<Signal>),
    Ack {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        seq: u64,
        ts: String,
    },
    Joined {
        room: String,
        name: String,
        ts: String,
    },
    Left {
        room: String,
        name: String,
        ts: String,
        reason: LeftReason,
        /// The parting word of a `leave` or `exit` that had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// A room's members. In a room too big to list on every join (more members than the server's
    /// announce limit), the list sent on `join`/`hello` is empty and `count` says how many there are;
    /// `who` always lists everyone.
    Users {
        room: String,
        names: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<usize>,
        /// Which of `names` are the room's operators (its owner included) — shown as `@name`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        ops: Vec<String>,
    },
    /// The answer to `status`.
    Status {
        /// natter's version.
        version: String,
        uptime_s: u64,
        /// Open connections by front end (`native`, `plain`, …).
        connections: std::collections::BTreeMap<String, usize>,
        /// Names signed in, and rooms with someone in them.
        users: usize,
        rooms: usize,
        /// The highest seq so far: how many messages the server has stored.
        last_seq: u64,
        /// The history database's size on disk (absent for `:memory:`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        db_bytes: Option<u64>,
        /// The last error the server logged, with when (RFC 3339); absent when there was none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_error: Option<LastError>,
    },
    /// A room's topic and settings, sent with `users` when you join (and to `who`) if it has any.
    Topic {
        room: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<String>,
        /// Who set the topic, and when (RFC 3339), when the server knows.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set_by: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set_at: Option<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        invite_only: bool,
        #[serde(default, skip_serializing_if = "is_false")]
        moderated: bool,
    },
    Rooms {
        rooms: Vec<RoomInfo>,
    },
    /// Earlier messages, oldest first: a room's (with `room`) or your private ones (without).
    History {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        messages: Vec<Message>,
        /// In an owner's private replay on `hello`: messages after this seq came while none of their
        /// sessions was there — new to them (clients show them as unread).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new_after: Option<u64>,
        /// The `with` of the request this answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<String>,
        /// The `id` of the request this answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    Pong {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    /// The server has not heard from you for a while: answer with `pong` (any frame will do).
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
    },
    Error {
        code: ErrorCode,
        /// English text for people, from the catalogue; clients show their own text for `code` and
        /// `args` and fall back to this for codes they do not know.
        message: String,
        /// The placeholders of the code's text (a name, a room, a limit, a reason word); see PROTOCOL.md.
        #[serde(default, skip_serializing_if = "ErrorArgs::is_empty")]
        args: ErrorArgs,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// With `history_gap`: the oldest seq the server still has.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        oldest: Option<u64>,
    },
    Bye {
        reason: ByeReason,
    },
    /// The answer to `offer`: send the file on a transfer connection with `token`, from `offset` (what
    /// the server already has of this upload). With `file`, it is already shared (a retry of an upload
    /// that completed): nothing to send.
    UploadReady {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        token: String,
        offset: u64,
        size: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<u64>,
    },
    /// The answer to `fetch`: download it on a transfer connection with `token`.
    DownloadReady {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        token: String,
        /// Boxed: every frame is as big as the largest, and this one is rare.
        file: Box<crate::file::FileInfo>,
    },
    /// Transfer connection: the server has `offset` bytes of the upload; send the rest.
    UploadAt {
        offset: u64,
    },
    /// Transfer connection: the whole file arrived, its SHA-256 matched, and it is shared as message
    /// `file` (its seq).
    Uploaded {
        file: u64,
    },
    /// Transfer connection: the file's bytes from `offset` to `size` follow this line, raw.
    Sending {
        file: u64,
        offset: u64,
        size: u64,
        sha256: String,
    },
}

impl ServerFrame {
    /// Encodes the frame as one JSON line, ready for the wire.
    pub fn encode(&self) -> Bytes {
        let mut buf = serde_json::to_vec(self).expect("server frames always serialize");
        buf.push(b'\n');
        Bytes::from(buf)
    }

    /// An `error` frame: its `message` is the code's English text with `args` filled in.
    pub fn error(code: ErrorCode, args: ErrorArgs, id: Option<String>) -> Self {
        ServerFrame::Error {
            code,
            message: error_text(Lang::En, code, &args, ""),
            args,
            id,
            oldest: None,
        }
    }
}

impl ServerFrame {
    /// `history_gap`: a resume reaches back past the oldest message kept.
    pub fn history_gap(oldest: u64, after: u64) -> Self {
        let mut frame = ServerFrame::error(
            ErrorCode::HistoryGap,
            crate::error_args!(oldest = oldest, after = after),
            None,
        );
        if let ServerFrame::Error { oldest: o, .. } = &mut frame {
            *o = Some(oldest);
        }
        frame
    }
}

/// The placeholders of an error's text: names to strings or numbers (see PROTOCOL.md §5).
pub type ErrorArgs = serde_json::Map<String, serde_json::Value>;

/// Builds [`ErrorArgs`]: `error_args!(name = "bob", max = 100)`.
#[macro_export]
macro_rules! error_args {
    ($($name:ident = $value:expr),* $(,)?) => {{
        #[allow(unused_mut)]
        let mut args = $crate::frame::ErrorArgs::new();
        $(args.insert(stringify!($name).to_owned(), $crate::serde_json::Value::from($value));)*
        args
    }};
}

/// What an error means, for a person reading `lang`: the catalogue's text for `code` with `args` filled
/// in. The server's `message` is used for a code this build does not know, or when `args` lack a
/// placeholder the text needs (an older server). Text from the network is neutralised.
pub fn error_text(lang: Lang, code: ErrorCode, args: &ErrorArgs, message: &str) -> String {
    let id = format!("error-{}", code.as_str());
    let args: Vec<(&str, natter_i18n::Arg)> = args
        .iter()
        .filter_map(|(name, value)| {
            let value = match value {
                serde_json::Value::String(s) => {
                    natter_i18n::Arg::Text(crate::text::neutralise(s).into_owned())
                }
                serde_json::Value::Number(n) => natter_i18n::Arg::Number(n.as_f64()?),
                _ => return None,
            };
            Some((name.as_str(), value))
        })
        .collect();
    match (code, natter_i18n::text_checked(lang, &id, &args)) {
        (ErrorCode::Unknown, _) | (_, None) => crate::text::neutralise(message).into_owned(),
        (_, Some(text)) => text,
    }
}

impl ClientFrame {
    /// A `history` request for one page backwards: `room`'s (or your private messages), before `before`.
    pub fn history_page(room: Option<String>, before: Option<u64>, limit: Option<usize>) -> Self {
        ClientFrame::History {
            room,
            before,
            limit,
            after: None,
            with: None,
            newest: None,
            id: None,
            after_ts: None,
            before_ts: None,
        }
    }

    /// Encodes the frame as one JSON line, ready for the wire.
    pub fn encode(&self) -> Bytes {
        let mut buf = serde_json::to_vec(self).expect("client frames always serialize");
        buf.push(b'\n');
        Bytes::from(buf)
    }
}

/// Stable error codes. Clients match on these; the human `message` may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not UTF-8, not JSON, not an object, no `type`, or a field missing or of the wrong type.
    BadFrame,
    /// Longer than the server's maximum frame; skipped up to its newline.
    FrameTooLarge,
    /// A `type` the server does not know.
    UnknownType,
    /// Anything but `hello`, `ping` or `exit` before `hello`.
    NotRegistered,
    /// A second `hello` on a registered connection.
    AlreadyRegistered,
    /// `hello` with a protocol version this server does not speak.
    UnsupportedVersion,
    /// A user name that breaks the naming rules.
    InvalidName,
    /// The name is owned and this `hello` did not prove it: the owner's key, or (later) a password.
    NameOwned,
    /// A `prove` whose signature does not match the challenge, or that came without one.
    BadProof,
    /// A wrong password (or a name that has none); `try_again_in` says how many seconds the next try
    /// from this address must wait.
    BadPassword,
    /// Too many wrong passwords from this address: wait `try_again_in` seconds.
    TryAgainLater,
    /// A password over a connection that is neither TLS nor from this machine: refused unread.
    Insecure,
    /// `set_password` with a password that is too short or too long.
    WeakPassword,
    /// The server takes only TLS from other machines (`--require-tls`); the connection is closed.
    TlsRequired,
    /// The name (`what`: `name`) or your address (`address`: the connection is closed) is banned.
    Banned,
    /// The person you whispered to does not take your whispers.
    Blocked,
    /// Not allowed to you (`what` says which request): a guest cannot block, a non-op cannot kick.
    Forbidden,
    /// You may not speak in the room: muted (`until`), or it is moderated and you have no voice.
    Muted,
    /// The room is invite-only and you are not invited.
    InviteOnly,
    /// Someone else has this name (ignoring case).
    NameTaken,
    /// A whisper to a name nobody has.
    NoSuchUser,
    /// Saying to, or leaving, a room you are not in.
    NotInRoom,
    /// A room name that breaks the naming rules.
    InvalidRoom,
    /// Empty text, text with control characters, or text over the limit.
    InvalidText,
    /// Your outbox overflowed because you did not read; you are disconnected.
    TooSlow,
    /// The server failed to handle a valid request (e.g. could not store the message); retrying may work.
    ServerError,
    /// `resume_after` reaches back further than the history kept; `oldest` says where it starts.
    HistoryGap,
    /// You sent more than the server will queue for you (or too much before `hello`); you are disconnected.
    ExcessFlood,
    /// No `hello` within the registration deadline; you are disconnected.
    RegistrationTimeout,
    /// Nothing heard from you (not even a `pong`) for too long; you are disconnected.
    IdleTimeout,
    /// The server has as many connections as it accepts; try later.
    ServerFull,
    /// Your address has as many connections as the server accepts from one address.
    TooManyConnections,
    /// `join` when you are already in as many rooms as the server allows one user.
    TooManyRooms,
    /// A file over the server's `max` bytes per file.
    FileTooBig,
    /// Sharing this file would pass a quota: yours (`what`: `user`) or the server's (`server`); `limit` in bytes.
    QuotaExceeded,
    /// The server's disk has no room for the file; chat goes on.
    StorageFull,
    /// No shared file has this id (`file`), or not one you may see.
    NoSuchFile,
    /// The file (`file`) was shared, but the server no longer keeps it.
    FileExpired,
    /// The uploaded bytes do not have the offered SHA-256; the upload was discarded.
    BadChecksum,
    /// A transfer connection's token is unknown or expired: ask again (`offer`, `fetch`).
    UnknownTransfer,
    /// This server does not keep files.
    FilesOff,
    /// A code from a newer server that this build does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::NotRegistered => "not_registered",
            ErrorCode::AlreadyRegistered => "already_registered",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::NameOwned => "name_owned",
            ErrorCode::BadProof => "bad_proof",
            ErrorCode::BadPassword => "bad_password",
            ErrorCode::TryAgainLater => "try_again_later",
            ErrorCode::Insecure => "insecure",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::TlsRequired => "tls_required",
            ErrorCode::Banned => "banned",
            ErrorCode::Blocked => "blocked",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Muted => "muted",
            ErrorCode::InviteOnly => "invite_only",
            ErrorCode::NameTaken => "name_taken",
            ErrorCode::NoSuchUser => "no_such_user",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::InvalidText => "invalid_text",
            ErrorCode::TooSlow => "too_slow",
            ErrorCode::ServerError => "server_error",
            ErrorCode::HistoryGap => "history_gap",
            ErrorCode::ExcessFlood => "excess_flood",
            ErrorCode::RegistrationTimeout => "registration_timeout",
            ErrorCode::IdleTimeout => "idle_timeout",
            ErrorCode::ServerFull => "server_full",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::FileTooBig => "file_too_big",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::StorageFull => "storage_full",
            ErrorCode::NoSuchFile => "no_such_file",
            ErrorCode::FileExpired => "file_expired",
            ErrorCode::BadChecksum => "bad_checksum",
            ErrorCode::UnknownTransfer => "unknown_transfer",
            ErrorCode::FilesOff => "files_off",
            ErrorCode::Unknown => "unknown",
        }
    }
}

/// Every code a server sends (all but [`ErrorCode::Unknown`]).
pub const ALL_CODES: &[ErrorCode] = &[
    ErrorCode::BadFrame,
    ErrorCode::FrameTooLarge,
    ErrorCode::UnknownType,
    ErrorCode::NotRegistered,
    ErrorCode::AlreadyRegistered,
    ErrorCode::UnsupportedVersion,
    ErrorCode::InvalidName,
    ErrorCode::NameOwned,
    ErrorCode::BadProof,
    ErrorCode::BadPassword,
    ErrorCode::TryAgainLater,
    ErrorCode::Insecure,
    ErrorCode::WeakPassword,
    ErrorCode::TlsRequired,
    ErrorCode::Banned,
    ErrorCode::Blocked,
    ErrorCode::Forbidden,
    ErrorCode::Muted,
    ErrorCode::InviteOnly,
    ErrorCode::NameTaken,
    ErrorCode::NoSuchUser,
    ErrorCode::NotInRoom,
    ErrorCode::InvalidRoom,
    ErrorCode::InvalidText,
    ErrorCode::TooSlow,
    ErrorCode::ServerError,
    ErrorCode::HistoryGap,
    ErrorCode::ExcessFlood,
    ErrorCode::RegistrationTimeout,
    ErrorCode::IdleTimeout,
    ErrorCode::ServerFull,
    ErrorCode::TooManyConnections,
    ErrorCode::TooManyRooms,
    ErrorCode::FileTooBig,
    ErrorCode::QuotaExceeded,
    ErrorCode::StorageFull,
    ErrorCode::NoSuchFile,
    ErrorCode::FileExpired,
    ErrorCode::BadChecksum,
    ErrorCode::UnknownTransfer,
    ErrorCode::FilesOff,
];

/// Why someone left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    /// They sent `leave` for this room.
    Leave,
    /// They sent `exit` (or quit their client).
    Exit,
    /// Their connection closed without `exit`.
    Disconnect,
    /// They were cut off for not reading.
    TooSlow,
    /// Nothing was heard from them for too long (a vanished or frozen client).
    Timeout,
    /// They sent too much, too fast.
    ExcessFlood,
    /// A room operator kicked them out (they may come back).
    Kicked,
    /// A room operator banned them from the room.
    Banned,
    /// A reason from a newer server.
    #[serde(other)]
    Other,
}

impl LeftReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LeftReason::Leave => "leave",
            LeftReason::Exit => "exit",
            LeftReason::Disconnect => "disconnect",
            LeftReason::TooSlow => "too_slow",
            LeftReason::Timeout => "timeout",
            LeftReason::ExcessFlood => "excess_flood",
            LeftReason::Kicked => "kicked",
            LeftReason::Banned => "banned",
            LeftReason::Other => "other",
        }
    }
}

/// The last error a server logged (`status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastError {
    pub at: String,
    pub text: String,
}

/// Why the server is closing the connection after `bye`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ByeReason {
    /// The client asked to exit.
    Exit,
    /// The server is shutting down.
    Shutdown,
    #[serde(other)]
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code has a text in every catalogue; the English one is the frame's `message`.
    #[test]
    fn every_error_code_has_a_text_in_every_language() {
        use natter_i18n::Lang;
        for code in ALL_CODES {
            for lang in Lang::ALL {
                assert!(
                    natter_i18n::has(lang, &format!("error-{}", code.as_str())),
                    "{lang} has no text for {}",
                    code.as_str()
                );
            }
        }
        let frame = ServerFrame::error(ErrorCode::NoSuchUser, error_args!(name = "张三"), None);
        let ServerFrame::Error { message, args, .. } = &frame else {
            unreachable!()
        };
        assert_eq!(message, "nobody called 张三 is here");
        assert_eq!(
            error_text(Lang::ZhCn, ErrorCode::NoSuchUser, args, message),
            "这里没有叫 张三 的人"
        );
        // An older server's error without args, and a code from a newer server: its own message.
        assert_eq!(
            error_text(
                Lang::ZhCn,
                ErrorCode::NoSuchUser,
                &ErrorArgs::new(),
                "old text"
            ),
            "old text"
        );
        assert_eq!(
            error_text(
                Lang::ZhCn,
                ErrorCode::Unknown,
                &ErrorArgs::new(),
                "new \u{1b}text"
            ),
            "new \u{fffd}text"
        );
    }

    fn parse(s: &str) -> Result<ClientFrame, BadFrame> {
        ClientFrame::parse(s.as_bytes())
    }

    #[test]
    fn parses_the_documented_examples() {
        assert_eq!(
            parse(r#"{"type":"hello","name":"alice","version":1}"#).unwrap(),
            ClientFrame::Hello {
                name: "alice".into(),
                version: 1,
                resume_after: None,
                lobby: true,
                rooms: true,
                key: None,
                password: None,
            }
        );
        assert_eq!(
            parse(r#"{"type":"say","text":"hi","room":"lobby","id":"7"}"#).unwrap(),
            ClientFrame::Say {
                tags: Default::default(),
                notice: false,
                text: "hi".into(),
                room: Some("lobby".into()),
                id: Some("7".into())
            }
        );
        assert_eq!(parse(r#"{"type":"rooms"}"#).unwrap(), ClientFrame::Rooms);
        assert_eq!(
            parse(r#"{"type":"exit"}"#).unwrap(),
            ClientFrame::Exit { text: None }
        );
        assert_eq!(
            parse(r#"{"type":"leave","room":"a","text":"bye"}"#).unwrap(),
            ClientFrame::Leave {
                room: "a".into(),
                text: Some("bye".into())
            }
        );
    }

    #[test]
    fn ignores_unknown_fields_and_defaults_version() {
        assert_eq!(
            parse(r#"{"type":"hello","name":"bob","colour":"red"}"#).unwrap(),
            ClientFrame::Hello {
                name: "bob".into(),
                version: 1,
                resume_after: None,
                lobby: true,
                rooms: true,
                key: None,
                password: None,
            }
        );
    }

    #[test]
    fn classifies_bad_frames() {
        let code = |s: &str| parse(s).unwrap_err().code;
        assert_eq!(code("not json"), ErrorCode::BadFrame);
        assert_eq!(code("[1,2]"), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"name":"x"}"#), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":"say"}"#), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":"say","text":5}"#), ErrorCode::BadFrame);
        assert_eq!(code(r#"{"type":"dance"}"#), ErrorCode::UnknownType);
        assert_eq!(
            ClientFrame::parse(b"{\"type\":\"say\",\"text\":\"\xff\"}")
                .unwrap_err()
                .code,
            ErrorCode::BadFrame
        );
    }

    #[test]
    fn bad_frames_keep_their_id() {
        let err = parse(r#"{"type":"say","id":"42"}"#).unwrap_err();
        assert_eq!(err.id.as_deref(), Some("42"));
    }

    #[test]
    fn server_frames_match_the_spec() {
        let f = ServerFrame::Message(Box::new(Message {
            tags: Default::default(),
            notice: false,
            seq: 3,
            ts: "2026-11-25T16:38:57.123Z".into(),
            room: Some("lobby".into()),
            from: "alice".into(),
            to: None,
            text: "hi".into(),
            event: None,
            file: None,
        }));
        assert_eq!(
            std::str::from_utf8(&f.encode()).unwrap(),
            "{\"type\":\"message\",\"seq\":3,\"ts\":\"2026-11-25T16:38:57.123Z\",\"room\":\"lobby\",\"from\":\"alice\",\"text\":\"hi\"}\n"
        );
        let e = ServerFrame::error(ErrorCode::NameTaken, error_args!(name = "bob"), None);
        assert_eq!(
            std::str::from_utf8(&e.encode()).unwrap(),
            "{\"type\":\"error\",\"code\":\"name_taken\",\"message\":\"the name bob is taken\",\"args\":{\"name\":\"bob\"}}\n"
        );
        let b = ServerFrame::Bye {
            reason: ByeReason::Shutdown,
        };
        assert_eq!(
            std::str::from_utf8(&b.encode()).unwrap(),
            "{\"type\":\"bye\",\"reason\":\"shutdown\"}\n"
        );
    }

    #[test]
    fn codes_match_their_wire_names() {
        for code in [
            ErrorCode::BadFrame,
            ErrorCode::FrameTooLarge,
            ErrorCode::NotInRoom,
            ErrorCode::TooSlow,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn unknown_codes_and_reasons_from_newer_servers_still_parse() {
        let f: ServerFrame =
            serde_json::from_str(r#"{"type":"error","code":"brand_new","message":"m"}"#).unwrap();
        assert!(matches!(
            f,
            ServerFrame::Error {
                code: ErrorCode::Unknown,
                ..
            }
        ));
    }

    mod roundtrip {
        use super::super::*;
        use crate::codec::FrameCodec;
        use bytes::BytesMut;
        use proptest::prelude::*;
        use tokio_util::codec::Decoder;

        fn text() -> impl Strategy<Value = String> {
            // Any Unicode, including newlines, quotes and control characters: JSON must escape them.
            any::<String>()
        }

        fn opt() -> impl Strategy<Value = Option<String>> {
            proptest::option::of(text())
        }

        fn client_frame() -> impl Strategy<Value = ClientFrame> {
            prop_oneof![
                (
                    text(),
                    any::<u32>(),
                    any::<Option<u64>>(),
                    any::<bool>(),
                    any::<bool>(),
                    opt(),
                    opt()
                )
                    .prop_map(
                        |(name, version, resume_after, lobby, rooms, key, password)| {
                            ClientFrame::Hello {
                                name,
                                version,
                                resume_after,
                                lobby,
                                rooms,
                                key,
                                password,
                            }
                        }
                    ),
                text().prop_map(|password| ClientFrame::SetPassword { password }),
                text().prop_map(|signature| ClientFrame::Prove { signature }),
                (
                    opt(),
                    any::<Option<u64>>(),
                    any::<Option<usize>>(),
                    any::<Option<u64>>(),
                    opt(),
                    any::<Option<bool>>()
                )
                    .prop_map(|(room, before, limit, after, with, newest)| {
                        ClientFrame::History {
                            room,
                            before,
                            limit,
                            after,
                            with,
                            newest,
                            id: None,
                            after_ts: None,
                            before_ts: None,
                        }
                    }),
                (text(), opt(), opt()).prop_map(|(text, room, id)| ClientFrame::Say {
                    tags: Default::default(),
                    notice: false,
                    text,
                    room,
                    id
                }),
                (text(), text(), opt()).prop_map(|(to, text, id)| ClientFrame::Whisper {
                    tags: Default::default(),
                    notice: false,
                    to,
                    text,
                    id
                }),
                text().prop_map(|room| ClientFrame::Join { room }),
                (text(), opt()).prop_map(|(room, text)| ClientFrame::Leave { room, text }),
                opt().prop_map(|room| ClientFrame::Who { room }),
                Just(ClientFrame::Rooms),
                opt().prop_map(|id| ClientFrame::Ping { id }),
                opt().prop_map(|id| ClientFrame::Pong { id }),
                opt().prop_map(|text| ClientFrame::Exit { text }),
            ]
        }

        fn server_frame() -> impl Strategy<Value = ServerFrame> {
            prop_oneof![
                (any::<u64>(), text(), opt(), text(), opt(), text()).prop_map(
                    |(seq, ts, room, from, to, text)| {
                        ServerFrame::Message(Box::new(Message {
                            tags: Default::default(),
                            notice: false,
                            seq,
                            ts,
                            room,
                            from,
                            to,
                            text,
                            event: None,
                            file: None,
                        }))
                    }
                ),
                (opt(), any::<u64>(), text()).prop_map(|(id, seq, ts)| ServerFrame::Ack {
                    id,
                    seq,
                    ts
                }),
                (text(), text(), text()).prop_map(|(room, name, ts)| ServerFrame::Joined {
                    room,
                    name,
                    ts
                }),
                (text(), prop::collection::vec(text(), 0..5)).prop_map(|(room, names)| {
                    ServerFrame::Users {
                        room,
                        names,
                        count: None,
                        ops: Vec::new(),
                    }
                }),
                (text(), opt(), any::<Option<u64>>(), opt()).prop_map(
                    |(message, id, oldest, arg)| {
                        ServerFrame::Error {
                            code: ErrorCode::HistoryGap,
                            message,
                            args: arg.map(|a| error_args!(name = a)).unwrap_or_default(),
                            id,
                            oldest,
                        }
                    }
                ),
                (
                    opt(),
                    prop::collection::vec((any::<u64>(), text(), text()), 0..4)
                )
                    .prop_map(|(room, ms)| {
                        let messages = ms
                            .into_iter()
                            .map(|(seq, from, text)| Message {
                                tags: Default::default(),
                                notice: false,
                                seq,
                                ts: "t".into(),
                                room: room.clone(),
                                from,
                                to: None,
                                text,
                                event: None,
                                file: None,
                            })
                            .collect();
                        ServerFrame::History {
                            room,
                            messages,
                            new_after: None,
                            with: None,
                            id: None,
                        }
                    }),
                opt().prop_map(|id| ServerFrame::Pong { id }),
                opt().prop_map(|id| ServerFrame::Ping { id }),
                (
                    text(),
                    prop::collection::vec(text(), 0..4),
                    any::<u64>(),
                    any::<bool>()
                )
                    .prop_map(|(name, rooms, last_seq, owner)| {
                        ServerFrame::Welcome {
                            name,
                            version: 1,
                            rooms,
                            last_seq,
                            owner,
                        }
                    }),
                text().prop_map(|nonce| ServerFrame::Challenge { nonce }),
                Just(ServerFrame::PasswordSet),
                (text(), text(), text()).prop_map(|(room, name, ts)| ServerFrame::Left {
                    room,
                    name,
                    ts,
                    reason: LeftReason::Timeout,
                    text: None,
                }),
                prop::collection::vec((text(), any::<u32>()), 0..4).prop_map(|rs| {
                    ServerFrame::Rooms {
                        rooms: rs
                            .into_iter()
                            .map(|(name, m)| RoomInfo {
                                name,
                                members: m as usize,
                            })
                            .collect(),
                    }
                }),
                Just(ServerFrame::Bye {
                    reason: ByeReason::Shutdown
                }),
            ]
        }

        fn decode_one(wire: &[u8]) -> Vec<u8> {
            let mut codec = FrameCodec::new(usize::MAX / 4);
            let mut buf = BytesMut::from(wire);
            let frame = codec.decode(&mut buf).unwrap().unwrap().unwrap();
            assert!(buf.is_empty(), "one frame is exactly one line");
            frame.to_vec()
        }

        proptest! {
            #[test]
            fn client_frames_round_trip_through_the_codec(frame in client_frame()) {
                let line = decode_one(&frame.encode());
                prop_assert_eq!(ClientFrame::parse(&line).unwrap(), frame);
            }

            #[test]
            fn server_frames_round_trip_through_the_codec(frame in server_frame()) {
                let line = decode_one(&frame.encode());
                prop_assert_eq!(serde_json::from_slice::<ServerFrame>(&line).unwrap(), frame);
            }
        }
    }
}
