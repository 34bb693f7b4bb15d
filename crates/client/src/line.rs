//! The line-mode client behind `natter join`.
//!
//! On a terminal, typing happens in natter's own small line editor ([`crate::editor`]): incoming lines are
//! printed above the prompt, which is then redrawn with the half-typed line — the lab client's "text
//! printed over what I am typing" bug cannot happen. From a script (stdin or stdout not
//! a terminal) it reads stdin line by line and prints plain lines to stdout.
//!
//! Your own messages are printed when the server acknowledges them, so what you see is what was sent.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use crossterm::event::EventStream;
use futures::StreamExt;
use natter_proto::command::{self, Command, HELP};
use natter_proto::frame::ByeReason;
use natter_proto::{ClientFrame, ErrorCode, ServerFrame, LOBBY};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

use crate::display;
use crate::editor::{self, Action, Editor};
use crate::net::{Connection, NetEvent};
use crate::ClientError;

/// How long quitting waits for the server's `bye`.
const BYE_WAIT: Duration = Duration::from_secs(1);

/// Options of `natter join`.
#[derive(Debug, Clone)]
pub struct LineOptions {
    /// `host:port` of the server.
    pub server: String,
    /// The name to use; asked for (or read from the first stdin line) when absent.
    pub name: Option<String>,
    /// Use plain stdin/stdout even on a terminal.
    pub force_plain: bool,
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
            let _ = editor.show_prompt(prompt);
        }
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

    fn print(&mut self, line: &str) {
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

/// A message sent but not yet acknowledged.
struct Pending {
    room: Option<String>,
    to: Option<String>,
    text: String,
}

/// The line client's state between events.
struct Client {
    me: String,
    /// Where plain text goes.
    room: String,
    /// Rooms we are in, in the order joined.
    rooms: Vec<String>,
    pending: HashMap<String, Pending>,
    next_id: u64,
}

/// What the main loop should do after an event.
enum Step {
    Continue,
    Quit,
}

/// Runs `natter join` in line mode until the user quits (Ok) or something fails (Err).
pub async fn run_line_mode(opts: LineOptions) -> Result<(), ClientError> {
    let interactive =
        !opts.force_plain && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mut conn = Connection::connect(&opts.server).await?;
    let mut term = if interactive {
        Term::tty()?
    } else {
        Term::pipe()
    };

    let Some(me) = register(&mut conn, &mut term, opts.name, interactive).await? else {
        return quit(&mut conn, &mut term, None).await;
    };
    term.print(&format!(
        "* connected to {} as {me}. Type to chat; /help lists commands; /quit or exit leaves.",
        opts.server
    ));
    let mut client = Client {
        me,
        room: LOBBY.to_owned(),
        rooms: Vec::new(),
        pending: HashMap::new(),
        next_id: 1,
    };
    loop {
        term.request(&client.prompt());
        tokio::select! {
            input = term.next() => match input {
                Input::Line(line) => {
                    if let Step::Quit = client.typed(&line, &conn, &mut term).await? {
                        break;
                    }
                }
                Input::Eof | Input::Interrupted => break,
            },
            event = conn.next() => client.received(event, &mut term)?,
        }
    }
    quit(&mut conn, &mut term, Some(&mut client)).await
}

/// Sends `hello` until a name is accepted. `None` means the user gave up (Ctrl-C/Ctrl-D at the prompt).
async fn register(
    conn: &mut Connection,
    term: &mut Term,
    mut name: Option<String>,
    interactive: bool,
) -> Result<Option<String>, ClientError> {
    loop {
        let candidate = match name.take() {
            Some(n) => n,
            None => {
                term.request("Your name: ");
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
        conn.send(ClientFrame::Hello {
            name: candidate,
            version: natter_proto::VERSION,
            resume_after: None,
        })
        .await?;
        loop {
            match conn.next().await {
                NetEvent::Frame(ServerFrame::Welcome { name, .. }) => return Ok(Some(name)),
                NetEvent::Frame(ServerFrame::Error { code, message, .. })
                    if matches!(
                        code,
                        ErrorCode::InvalidName
                            | ErrorCode::NameTaken
                            | ErrorCode::UnsupportedVersion
                    ) =>
                {
                    if !interactive || code == ErrorCode::UnsupportedVersion {
                        return Err(ClientError::NameRejected(message));
                    }
                    term.print(&format!("! {message}"));
                    break;
                }
                NetEvent::Frame(_) | NetEvent::Unreadable(_) => {}
                NetEvent::Closed => return Err(ClientError::ConnectionLost),
            }
        }
    }
}

/// Sends `exit` and waits (briefly) for `bye`, showing whatever arrives meanwhile.
async fn quit(
    conn: &mut Connection,
    term: &mut Term,
    mut client: Option<&mut Client>,
) -> Result<(), ClientError> {
    if conn.send(ClientFrame::Exit).await.is_err() {
        return Ok(());
    }
    let _ = tokio::time::timeout(BYE_WAIT, async {
        loop {
            match conn.next().await {
                NetEvent::Frame(ServerFrame::Bye { .. }) | NetEvent::Closed => return,
                event => {
                    if let Some(c) = client.as_deref_mut() {
                        let _ = c.received(event, term);
                    }
                }
            }
        }
    })
    .await;
    if let Some(c) = client {
        for p in c.pending.values() {
            term.print(&format!(
                "! not confirmed by the server before quitting: {}",
                p.text
            ));
        }
    }
    Ok(())
}

impl Client {
    fn prompt(&self) -> String {
        format!("#{}> ", self.room)
    }

    /// Acts on one typed line.
    async fn typed(
        &mut self,
        line: &str,
        conn: &Connection,
        term: &mut Term,
    ) -> Result<Step, ClientError> {
        let frame = match command::parse(line) {
            Command::Nothing => return Ok(Step::Continue),
            Command::Quit => return Ok(Step::Quit),
            Command::Say(text) => self.track(Some(self.room.clone()), None, text),
            Command::Msg { text, .. } if text.is_empty() => {
                term.print("usage: /msg NAME TEXT");
                return Ok(Step::Continue);
            }
            Command::Msg { to, text } => self.track(None, Some(to), text),
            Command::Join(room) => ClientFrame::Join { room },
            Command::Leave(room) => ClientFrame::Leave {
                room: room.unwrap_or_else(|| self.room.clone()),
            },
            Command::Who(room) => ClientFrame::Who {
                room: Some(room.unwrap_or_else(|| self.room.clone())),
            },
            Command::Rooms => ClientFrame::Rooms,
            Command::Help => {
                for (cmd, what) in HELP {
                    term.print(&format!("  {cmd:<16} {what}"));
                }
                return Ok(Step::Continue);
            }
            Command::Usage(usage) => {
                term.print(&format!("usage: {usage}"));
                return Ok(Step::Continue);
            }
            Command::Unknown(cmd) => {
                term.print(&format!("! unknown command {cmd}; /help lists them"));
                return Ok(Step::Continue);
            }
        };
        conn.send(frame).await?;
        Ok(Step::Continue)
    }

    /// Remembers a send until its ack, and builds its frame.
    fn track(&mut self, room: Option<String>, to: Option<String>, text: String) -> ClientFrame {
        let id = self.next_id.to_string();
        self.next_id += 1;
        self.pending.insert(
            id.clone(),
            Pending {
                room: room.clone(),
                to: to.clone(),
                text: text.clone(),
            },
        );
        match to {
            Some(to) => ClientFrame::Whisper {
                to,
                text,
                id: Some(id),
            },
            None => ClientFrame::Say {
                text,
                room,
                id: Some(id),
            },
        }
    }

    /// Shows one network event.
    fn received(&mut self, event: NetEvent, term: &mut Term) -> Result<(), ClientError> {
        let frame = match event {
            NetEvent::Frame(f) => f,
            NetEvent::Unreadable(why) => {
                term.print(&format!(
                    "! unreadable frame from the server skipped: {why}"
                ));
                return Ok(());
            }
            NetEvent::Closed => return Err(ClientError::ConnectionLost),
        };
        let line = match frame {
            ServerFrame::Message(m) => display::message(&m),
            ServerFrame::Ack { id, ts, .. } => match id.and_then(|id| self.pending.remove(&id)) {
                Some(p) => display::own(&ts, &self.me, p.room.as_deref(), p.to.as_deref(), &p.text),
                None => return Ok(()),
            },
            ServerFrame::Joined { room, name, .. } => {
                if name == self.me {
                    self.rooms.retain(|r| !r.eq_ignore_ascii_case(&room));
                    self.rooms.push(room.clone());
                    self.room = room.clone();
                }
                display::joined(&room, &name, &self.me)
            }
            ServerFrame::Left {
                room, name, reason, ..
            } => {
                if name == self.me {
                    self.rooms.retain(|r| !r.eq_ignore_ascii_case(&room));
                    if self.room.eq_ignore_ascii_case(&room) {
                        self.room = self
                            .rooms
                            .last()
                            .cloned()
                            .unwrap_or_else(|| LOBBY.to_owned());
                    }
                }
                display::left(&room, &name, reason)
            }
            ServerFrame::Users { room, names } => display::users(&room, &names),
            ServerFrame::History { messages, .. } => {
                for m in &messages {
                    term.print(&display::message(m));
                }
                return Ok(());
            }
            ServerFrame::Rooms { rooms } => display::rooms(&rooms),
            ServerFrame::Error { message, id, .. } => {
                match id.and_then(|id| self.pending.remove(&id)) {
                    Some(p) => format!(
                        "! not sent ({}): {}",
                        message,
                        natter_proto::text::neutralise(&p.text)
                    ),
                    None => format!("! {}", natter_proto::text::neutralise(&message)),
                }
            }
            ServerFrame::Bye {
                reason: ByeReason::Shutdown,
            } => {
                term.print("* the server is shutting down");
                return Err(ClientError::ServerShutdown);
            }
            ServerFrame::Bye { .. } | ServerFrame::Pong { .. } | ServerFrame::Welcome { .. } => {
                return Ok(())
            }
        };
        term.print(&line);
        Ok(())
    }
}
