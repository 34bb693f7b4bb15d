//! The line-mode client behind `natter join`.
//!
//! On a terminal, typing happens in natter's own small line editor ([`crate::editor`]): incoming lines are
//! printed above the prompt, which is then redrawn with the half-typed line — the lab client's "text
//! printed over what I am typing" bug cannot happen. From a script (stdin or stdout not
//! a terminal) it reads stdin line by line and prints plain lines to stdout.
//!
//! Your own messages are printed when the server acknowledges them, so what you see is what was sent.

use std::io::{IsTerminal, Write};

use crossterm::event::EventStream;
use futures::StreamExt;
use natter_i18n::t;
use natter_proto::command::{self, Command};
use natter_proto::frame::ByeReason;
use natter_proto::text::neutralise;
use natter_proto::{ClientFrame, ServerFrame, LOBBY};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use crate::chat::{Chat, ChatEvent, ChatOptions, Closed};
use crate::display;
use crate::editor::{self, Action, Editor};
use crate::ClientError;

/// Reconnect attempts before a script (stdin not a terminal) gives up; people at a terminal wait forever.
const RECONNECT_ATTEMPTS_UNATTENDED: u32 = 8;

/// Options of `natter join`.
#[derive(Debug, Clone)]
pub struct LineOptions {
    /// `host:port` of the server.
    pub server: String,
    /// The name to use; asked for (or read from the first stdin line) when absent.
    pub name: Option<String>,
    /// Use plain stdin/stdout even on a terminal.
    pub force_plain: bool,
    /// Full-screen display options.
    pub tui: crate::tui::app::Options,
    /// How long connecting and the server's answer may take (`--timeout`).
    pub answer_timeout: std::time::Duration,
    /// Where the key that owns your name is kept ([`crate::identity`]); `None`: join as a guest.
    pub data_dir: Option<std::path::PathBuf>,
    /// TLS, and the certificates trusted before.
    pub tls: crate::tls::TlsOptions,
    /// Where `/get` puts files (`--downloads`).
    pub downloads: std::path::PathBuf,
}

/// One thing the person (or script) did.
#[derive(Debug)]
enum Input {
    Line(String),
    /// Ctrl-D, or the end of piped input.
    Eof,
    /// Ctrl-C.
    Interrupted,
}

/// Where lines come from and go to.
enum Term {
    /// Our own line editor on a raw-mode terminal: messages print above the prompt.
    Tty { editor: Editor, events: EventStream },
    /// stdin lines in, stdout lines out.
    Pipe { inputs: mpsc::Receiver<Input> },
}

impl Term {
    fn tty() -> Result<Self, ClientError> {
        let editor = Editor::new().map_err(|e| ClientError::Terminal(e.to_string()))?;
        Ok(Term::Tty {
            editor,
            events: EventStream::new(),
        })
    }

    fn pipe() -> Self {
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            loop {
                let input = tokio::select! {
                    line = lines.next_line() => match line {
                        Ok(Some(line)) => Input::Line(line),
                        _ => Input::Eof,
                    },
                    _ = tokio::signal::ctrl_c() => Input::Interrupted,
                };
                let last = !matches!(input, Input::Line(_));
                if tx.send(input).await.is_err() || last {
                    return;
                }
            }
        });
        Term::Pipe { inputs: rx }
    }

    /// Shows the prompt for the next line (a no-op for pipes, which just stream).
    fn request(&mut self, prompt: &str) {
        if let Term::Tty { editor, .. } = self {
            editor.secret = false;
            let _ = editor.show_prompt(prompt);
        }
    }

    /// Asks for a password: what is typed is not shown, and not kept in the line history.
    async fn secret(&mut self, prompt: &str) -> Input {
        if let Term::Tty { editor, .. } = self {
            editor.secret = true;
            let _ = editor.show_prompt(prompt);
        }
        let input = self.next().await;
        if let Term::Tty { editor, .. } = self {
            editor.secret = false;
            editor.buf.forget_last();
            let _ = editor.hide_prompt();
        }
        input
    }

    /// The next line, Ctrl-D or Ctrl-C. Cancel-safe: a half-typed line stays in the editor.
    async fn next(&mut self) -> Input {
        match self {
            Term::Tty { editor, events } => loop {
                let Some(Ok(event)) = events.next().await else {
                    return Input::Eof;
                };
                match editor::apply(&mut editor.buf, &event) {
                    Action::Submit(line) => {
                        // The line reappears, stamped, once the server has acknowledged it.
                        let _ = editor.redraw();
                        return Input::Line(line);
                    }
                    Action::Eof => return Input::Eof,
                    Action::Interrupt => return Input::Interrupted,
                    Action::Edited => {
                        let _ = editor.redraw();
                    }
                }
            },
            Term::Pipe { inputs } => inputs.recv().await.unwrap_or(Input::Eof),
        }
    }

    /// Clears the screen (a terminal only: a script's output is kept whole).
    fn clear(&mut self) {
        if let Term::Tty { editor, .. } = self {
            let _ = editor.clear_screen();
        }
    }

    /// Prints a line. Whatever it quotes from the server, it is neutralised here once more: this is the
    /// one door to the terminal, so no escape sequence gets through it by any path.
    fn print(&mut self, line: &str) {
        let line = &*natter_proto::text::neutralise(line);
        match self {
            Term::Tty { editor, .. } => {
                let _ = editor.print_above(line);
            }
            Term::Pipe { .. } => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
    }
}

/// The line client's state between events.
struct Client {
    chat: Chat,
    me: String,
    /// Where plain text goes.
    room: String,
    /// Rooms we are in, in the order joined.
    rooms: Vec<String>,
    /// The room a `/join` asked for: its `joined` makes it the current room. Other `joined`s of our own
    /// (the server putting us back in our rooms after a reconnect) leave the current room alone.
    joining: Option<String>,
    /// Messages typed but not yet confirmed by the server (shown in the prompt).
    pending: usize,
    /// Messages the server refused, and the first reason: a script then exits non-zero.
    refused: usize,
    first_refusal: Option<String>,
    /// Lines come from a script (stdin is not a terminal).
    script: bool,
    outage: Outage,
    /// Rooms `/history` was asked for, answer pending: an empty answer is said, not silent.
    asked_history: Vec<String>,
    /// The previous line was `/forget-me`: this one confirms it if it is `/forget-me` again.
    forget_armed: bool,
    /// Files being shared and downloaded; on a terminal their progress is part of the prompt (a bar
    /// drawn beside the line editor would fight it for the cursor — the lab's own bug).
    transfers: crate::transfer::Transfers,
    downloads: std::path::PathBuf,
}

/// An outage is reported when it starts and when it ends — not once per reconnect attempt; on a
/// terminal the prompt shows the attempt meanwhile.
#[derive(Default)]
struct Outage {
    attempt: Option<u32>,
}

impl Outage {
    /// The line to print for a reconnect attempt, if any.
    fn reconnecting(&mut self, attempt: u32) -> Option<String> {
        let first = self.attempt.is_none();
        self.attempt = Some(attempt);
        first.then(|| format!("* {}", t!("connection-lost")))
    }

    /// The line to print once connected again.
    fn reconnected(&mut self) -> String {
        self.attempt = None;
        format!("* {}", t!("reconnected-catching-up"))
    }
}

/// What the main loop should do after an event.
enum Step {
    Continue,
    Quit,
}

/// Runs `natter join`: the full-screen client on a terminal, line mode with `--plain` or from a script.
pub async fn run_join(opts: LineOptions) -> Result<(), ClientError> {
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if terminal && !opts.force_plain {
        let chat = {
            let mut term = Term::tty()?;
            match register(&opts, &mut term, true).await? {
                Some(chat) => chat,
                None => return Ok(()),
            }
        }; // the prompt's terminal settings are undone here, before the full screen starts
        return crate::tui::run(chat, &opts.server, opts.tui.clone(), opts.downloads.clone()).await;
    }
    run_line_mode(opts, terminal).await
}

/// Signs in without asking anything (`natter send`, `natter get`): the name comes from the options, a
/// refusal is an error.
pub(crate) async fn register_unattended(opts: &LineOptions) -> Result<Chat, ClientError> {
    // Nothing to read: stdin stays the script's.
    let (_, inputs) = mpsc::channel(1);
    let mut term = Term::Pipe { inputs };
    register(opts, &mut term, false)
        .await?
        .ok_or(ClientError::NoName)
}

/// Line mode until the user quits (Ok) or something fails (Err).
async fn run_line_mode(opts: LineOptions, interactive: bool) -> Result<(), ClientError> {
    let mut term = if interactive {
        Term::tty()?
    } else {
        Term::pipe()
    };

    let Some(chat) = register(&opts, &mut term, interactive).await? else {
        return Ok(());
    };
    term.print(&format!(
        "* {}",
        t!("connected", server = &opts.server, name = &chat.name)
    ));
    let mut client = Client {
        transfers: crate::transfer::Transfers::new(chat.requester()),
        downloads: opts.downloads.clone(),
        me: chat.name.clone(),
        rooms: chat.rooms.clone(),
        room: LOBBY.to_owned(),
        chat,
        joining: None,
        pending: 0,
        refused: 0,
        first_refusal: None,
        script: !interactive,
        outage: Outage::default(),
        asked_history: Vec::new(),
        forget_armed: false,
    };
    let mut ending = crate::signals::Ending::new();
    loop {
        term.request(&client.prompt());
        tokio::select! {
            // SIGTERM, SIGHUP, SIGINT: leave as /quit does (the terminal is put back on the way out).
            _ = ending.recv(), if !client.script => break,
            input = term.next() => match input {
                Input::Line(line) => {
                    if let Step::Quit = client.typed(&line, &mut term).await {
                        break;
                    }
                }
                Input::Eof | Input::Interrupted => break,
            },
            event = client.chat.next() => client.received(event, &mut term)?,
            done = client.transfers.next() => client.transferred(done, &mut term),
        }
    }
    // A script waits for its transfers: their lines are what it ran for.
    while client.script && !client.transfers.is_empty() {
        tokio::select! {
            done = client.transfers.next() => client.transferred(done, &mut term),
            event = client.chat.next() => client.received(event, &mut term)?,
        }
    }
    // Say goodbye while showing, as they come, the acks and messages that arrive meanwhile (a script's
    // lines can take seconds to be confirmed under flood control); then report anything unconfirmed.
    let quitting = client.chat.quit_later();
    tokio::pin!(quitting);
    let mut asked = false;
    loop {
        tokio::select! {
            _ = &mut quitting, if !asked => asked = true,
            event = client.chat.next() => {
                if let ChatEvent::Closed { .. } = event {
                    return client.received(event, &mut term);
                }
                client.received(event, &mut term)?;
            }
        }
    }
}

/// Asks for (or takes) a name until the server accepts one. `None`: the user gave up at the prompt.
async fn register(
    opts: &LineOptions,
    term: &mut Term,
    interactive: bool,
) -> Result<Option<Chat>, ClientError> {
    let mut name = opts.name.clone();
    let mut password = None;
    let key = match opts
        .data_dir
        .as_deref()
        .map(crate::identity::load_or_create)
    {
        Some(Ok(key)) => Some(std::sync::Arc::new(key)),
        Some(Err(e)) => {
            // Still usable, as a guest: the name is not kept for you.
            let dir = opts.data_dir.as_deref().unwrap_or(std::path::Path::new(""));
            let why = t!(
                "key-unusable",
                dir = dir.display().to_string(),
                why = e.to_string()
            );
            eprintln!("natter: {why}");
            None
        }
        None => None,
    };
    loop {
        let candidate = match name.take() {
            Some(n) => n,
            None => {
                term.request(&format!("{} ", t!("prompt-name")));
                match term.next().await {
                    Input::Line(line) => line.trim().to_owned(),
                    Input::Eof | Input::Interrupted if interactive => return Ok(None),
                    Input::Eof | Input::Interrupted => return Err(ClientError::NoName),
                }
            }
        };
        if candidate.is_empty() {
            if interactive {
                continue;
            }
            return Err(ClientError::NoName);
        }
        let mut options = ChatOptions::new(opts.server.clone(), candidate.clone());
        if !interactive {
            // A script should not wait forever for a server that is gone.
            options.backoff.attempts = Some(RECONNECT_ATTEMPTS_UNATTENDED);
        }
        options.answer_timeout = opts.answer_timeout;
        options.key = key.clone();
        options.password = password.take();
        options.tls = opts.tls.clone();
        // Ctrl-C works while connecting too: a key in raw mode on a terminal, the signal for a script.
        let connecting = Chat::connect(options);
        tokio::pin!(connecting);
        let connected = loop {
            tokio::select! {
                connected = &mut connecting => break connected,
                input = term.next(), if interactive => {
                    if matches!(input, Input::Interrupted | Input::Eof) {
                        return Ok(None);
                    }
                }
                _ = tokio::signal::ctrl_c(), if !interactive => return Err(ClientError::Interrupted),
            }
        };
        match connected {
            Ok(chat) => {
                if let Some(line) = crate::first_use_notice(&opts.server, &chat.trust) {
                    match interactive {
                        true => term.print(&format!("* {line}")),
                        // A script's stdout is its messages: this goes where notices for people go.
                        false => eprintln!("natter: {line}"),
                    }
                }
                return Ok(Some(chat));
            }
            Err(ClientError::NameRejected(message)) if interactive => {
                term.print(&format!("! {message}"))
            }
            // Someone owns the name — maybe you, from another device: its password gets you in (and
            // makes this device's key one of the name's keys).
            Err(ClientError::NameOwned(message)) if interactive => {
                term.print(&format!("! {message}"));
                let prompt = format!("{} ", t!("prompt-password", name = &candidate));
                match term.secret(&prompt).await {
                    Input::Line(line) if !line.is_empty() => {
                        password = Some(line);
                        name = Some(candidate);
                    }
                    Input::Line(_) => {}
                    Input::Eof | Input::Interrupted => return Ok(None),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

impl Client {
    fn prompt(&self) -> String {
        let mut state = Vec::new();
        if self.pending > 0 {
            state.push(t!("sending", count = self.pending));
        }
        if let Some(attempt) = self.outage.attempt {
            state.push(t!("reconnecting-attempt", attempt = attempt));
        }
        state.extend(self.transfers.lines());
        match state.is_empty() {
            true => format!("#{}> ", self.room),
            false => format!("#{} ({})> ", self.room, state.join(", ")),
        }
    }

    /// Acts on one typed line.
    async fn typed(&mut self, line: &str, term: &mut Term) -> Step {
        // `/forget-me` counts only right after another `/forget-me` (the first one warns).
        let armed = std::mem::take(&mut self.forget_armed);
        let frame = match command::parse(line) {
            Command::ForgetMe if !armed => {
                self.forget_armed = true;
                term.print(&format!("! {}", t!("forget-me-confirm")));
                return Step::Continue;
            }
            Command::ForgetMe => ClientFrame::ForgetMe,
            cmd @ (Command::Moderate { .. } | Command::Block { .. }) => {
                match cmd.room_or_block_request(&self.room) {
                    Some(frame) => frame,
                    None => return Step::Continue,
                }
            }
            Command::Nothing => return Step::Continue,
            Command::Quit => return Step::Quit,
            Command::Say(text) => {
                let room = self.room.clone();
                self.chat.say(&room, &text).await;
                self.pending += 1;
                return Step::Continue;
            }
            Command::Msg { text, .. } if text.is_empty() => {
                term.print(&format!("! {}", t!("usage", usage = t!("usage-msg"))));
                return Step::Continue;
            }
            Command::Msg { to, text } => {
                self.chat.whisper(&to, &text).await;
                self.pending += 1;
                return Step::Continue;
            }
            Command::Join(room) => {
                let wanted = room.strip_prefix('#').unwrap_or(&room).to_owned();
                match self.rooms.iter().find(|r| same_room(r, &wanted)) {
                    // Already in it: it becomes the current room now (the server only lists its members).
                    Some(r) => self.room = r.clone(),
                    // A new room becomes current at once — a script's next line goes there, whenever
                    // the server's answer comes — unless its name cannot be a room's.
                    None if natter_proto::RoomName::parse_lenient(&wanted).is_ok() => {
                        self.room = wanted.clone();
                        self.joining = Some(wanted);
                    }
                    None => {}
                }
                ClientFrame::Join { room }
            }
            Command::Leave(room) => ClientFrame::Leave {
                room: room.unwrap_or_else(|| self.room.clone()),
                text: None,
            },
            Command::Who(room) => ClientFrame::Who {
                room: Some(room.unwrap_or_else(|| self.room.clone())),
            },
            Command::Rooms => ClientFrame::Rooms,
            Command::History => {
                self.asked_history.push(self.room.clone());
                ClientFrame::history_page(Some(self.room.clone()), None, None)
            }
            Command::Clear => {
                term.clear();
                return Step::Continue;
            }
            Command::Send(path) => {
                let room = self.room.clone();
                self.transfers
                    .upload(crate::transfer::expand_home(&path), Some(room), None);
                return Step::Continue;
            }
            Command::Get(id) => {
                self.transfers.download(id, self.downloads.clone());
                return Step::Continue;
            }
            Command::Cancel => {
                let cancelled = self.transfers.cancel_all();
                if cancelled.is_empty() {
                    term.print(&format!("* {}", t!("transfer-none")));
                }
                for name in cancelled {
                    term.print(&format!(
                        "* {}",
                        t!("transfer-cancelled", file = neutralise(&name).as_ref())
                    ));
                }
                return Step::Continue;
            }
            Command::Help => {
                for line in display::help(crate::transfer::HELP) {
                    term.print(&format!("  {line}"));
                }
                return Step::Continue;
            }
            Command::Password(Some(password)) => ClientFrame::SetPassword { password },
            Command::Password(None) => {
                let first = term
                    .secret(&format!("{} ", t!("prompt-new-password")))
                    .await;
                let again = match first {
                    Input::Line(ref line) if !line.is_empty() => {
                        term.secret(&format!("{} ", t!("prompt-new-password-again")))
                            .await
                    }
                    _ => return Step::Continue,
                };
                match (first, again) {
                    (Input::Line(a), Input::Line(b)) if a == b => {
                        ClientFrame::SetPassword { password: a }
                    }
                    _ => {
                        term.print(&format!("! {}", t!("password-mismatch")));
                        return Step::Continue;
                    }
                }
            }
            Command::Lang(tag) => {
                term.print(&match crate::switch_lang(tag.as_deref()) {
                    Ok(said) => format!("* {said}"),
                    Err(said) => format!("! {said}"),
                });
                return Step::Continue;
            }
            Command::Usage(usage) => {
                term.print(&format!("! {}", t!("usage", usage = t!(usage))));
                return Step::Continue;
            }
            Command::Unknown(cmd) => {
                term.print(&format!("! {}", t!("unknown-command", command = cmd)));
                return Step::Continue;
            }
        };
        self.chat.send(frame).await;
        Step::Continue
    }

    /// Says how a transfer ended (a `None`: only its progress moved, which the prompt shows).
    fn transferred(&mut self, done: Option<(String, crate::transfer::Event)>, term: &mut Term) {
        if let Some((name, event)) = done {
            let (line, failed) = crate::transfer::describe(&name, &event);
            if failed {
                self.refused += 1;
                self.first_refusal.get_or_insert_with(|| line.clone());
                term.print(&format!("! {line}"));
            } else {
                term.print(&format!("* {line}"));
            }
        }
    }

    /// Shows one event from the chat session.
    fn received(&mut self, event: ChatEvent, term: &mut Term) -> Result<(), ClientError> {
        let line = match event {
            ChatEvent::Frame(frame) => match self.frame(frame, term) {
                Some(line) => line,
                None => return Ok(()),
            },
            ChatEvent::Sent { message, ts, .. } => {
                self.pending = self.pending.saturating_sub(1);
                display::own(
                    &ts,
                    &self.me,
                    message.room.as_deref(),
                    message.to.as_deref(),
                    &message.text,
                )
            }
            ChatEvent::Refused {
                message, reason, ..
            } => {
                self.pending = self.pending.saturating_sub(1);
                self.refused += 1;
                self.first_refusal
                    .get_or_insert_with(|| neutralise(&reason).into_owned());
                format!(
                    "! {}",
                    t!(
                        "not-sent",
                        reason = neutralise(&reason).as_ref(),
                        text = neutralise(&message.text).as_ref()
                    )
                )
            }
            ChatEvent::Reconnecting { attempt, .. } => match self.outage.reconnecting(attempt) {
                Some(line) => line,
                None => return Ok(()),
            },
            ChatEvent::Reconnected { rooms } => {
                self.rooms = rooms;
                self.outage.reconnected()
            }
            ChatEvent::Closed { why, unsent } => {
                for m in &unsent {
                    let text = t!("not-sent-unconfirmed", text = neutralise(&m.text).as_ref());
                    if self.script {
                        // What a script's caller must know goes where errors go.
                        eprintln!("natter: {text}");
                    } else {
                        term.print(&format!("! {text}"));
                    }
                }
                return match why {
                    // A script must not look successful when something it said was not sent.
                    Closed::Exit if unsent.is_empty() && self.script && self.refused > 0 => {
                        Err(ClientError::Refused {
                            count: self.refused,
                            first: self.first_refusal.take().unwrap_or_default(),
                        })
                    }
                    Closed::Exit if unsent.is_empty() => {
                        term.print(&format!("* {}", t!("bye")));
                        Ok(())
                    }
                    Closed::Exit => Err(ClientError::Unconfirmed(unsent.len())),
                    Closed::GaveUp(reason) => Err(ClientError::GaveUp(reason)),
                };
            }
        };
        term.print(&line);
        Ok(())
    }

    /// The line for one server frame, or `None` to show nothing.
    fn frame(&mut self, frame: ServerFrame, term: &mut Term) -> Option<String> {
        Some(match frame {
            ServerFrame::Message(m) => display::message(&m, &self.me),
            ServerFrame::Joined { room, name, .. } => {
                if name == self.me {
                    self.rooms.retain(|r| !same_room(r, &room));
                    self.rooms.push(room.clone());
                    if self.joining.as_deref().is_some_and(|j| same_room(j, &room)) {
                        self.joining = None;
                        self.room = room.clone();
                    }
                }
                display::joined(&room, &name, &self.me)
            }
            ServerFrame::Left {
                room, name, reason, ..
            } => {
                if name == self.me {
                    self.rooms.retain(|r| !same_room(r, &room));
                    if same_room(&self.room, &room) {
                        self.room = self
                            .rooms
                            .last()
                            .cloned()
                            .unwrap_or_else(|| LOBBY.to_owned());
                    }
                }
                display::left(&room, &name, reason)
            }
            ServerFrame::Users {
                room,
                count: Some(count),
                ..
            } => display::member_count(&room, count),
            ServerFrame::Users { room, names, .. } => display::users(&room, &names),
            ServerFrame::Rooms { rooms } => display::rooms(&rooms),
            ServerFrame::History {
                messages,
                room,
                new_after,
                ..
            } => {
                let asked = room.as_deref().is_some_and(|r| {
                    let at = self.asked_history.iter().position(|a| same_room(a, r));
                    at.map(|at| self.asked_history.remove(at)).is_some()
                });
                if asked && messages.is_empty() {
                    return Some(format!("* {}", display::no_earlier(room.as_deref())));
                }
                let new = messages
                    .iter()
                    .filter(|m| new_after.is_some_and(|after| m.seq > after) && m.from != self.me)
                    .count();
                if new > 0 {
                    term.print(&format!("* {}", t!("new-while-away", count = new)));
                }
                for m in &messages {
                    term.print(&display::message(m, &self.me));
                }
                return None;
            }
            ServerFrame::Error {
                code,
                message,
                args,
                ..
            } => format!("! {}", display::error(code, &args, &message)),
            ServerFrame::Bye {
                reason: ByeReason::Shutdown,
            } => format!("* {}", t!("server-shutting-down")),
            ServerFrame::PasswordSet => format!("* {}", t!("password-set")),
            ServerFrame::Forgotten => format!("* {}", t!("forgotten")),
            ServerFrame::Topic {
                room,
                topic: Some(topic),
                ..
            } => format!(
                "* {}",
                t!(
                    "topic-is",
                    room = display::room_tag(&room),
                    topic = neutralise(&topic).as_ref()
                )
            ),
            ServerFrame::Topic { .. } => return None,
            ServerFrame::Blocked { name, on } => {
                let name = neutralise(&name);
                match on {
                    true => format!("* {}", t!("blocked-on", name = name.as_ref())),
                    false => format!("* {}", t!("blocked-off", name = name.as_ref())),
                }
            }
            ServerFrame::Bye { .. }
            | ServerFrame::Ping { .. }
            | ServerFrame::Pong { .. }
            | ServerFrame::Signal(_)
            | ServerFrame::Conversations { .. }
            | ServerFrame::Welcome { .. }
            | ServerFrame::Challenge { .. }
            | ServerFrame::Status { .. }
            | ServerFrame::UploadReady { .. }
            | ServerFrame::DownloadReady { .. }
            | ServerFrame::UploadAt { .. }
            | ServerFrame::Uploaded { .. }
            | ServerFrame::Sending { .. }
            | ServerFrame::Ack { .. } => return None,
        })
    }
}

/// Whether two room names are the same room (the server's folding rule).
fn same_room(a: &str, b: &str) -> bool {
    natter_proto::name::fold(a) == natter_proto::name::fold(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 11, friction 15: an outage prints one line when it starts and one when it ends, however
    /// many attempts it takes.
    #[test]
    fn an_outage_is_reported_once_not_per_attempt() {
        let mut outage = Outage::default();
        let lines: Vec<_> = (1..=5).filter_map(|a| outage.reconnecting(a)).collect();
        assert_eq!(lines, ["* connection lost; reconnecting…"]);
        assert_eq!(outage.attempt, Some(5));
        assert!(outage.reconnected().starts_with("* reconnected"));
        assert_eq!(
            outage.reconnecting(1).as_deref(),
            Some("* connection lost; reconnecting…")
        );
    }
}
