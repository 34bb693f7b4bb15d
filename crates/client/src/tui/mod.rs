//! The full-screen terminal client (`natter join` on a terminal).
//!
//! The layout of the house, as in tiny and the ratatui templates:
//! * [`app`] — pure state with `update(event) -> effects`;
//! * [`ui`] — drawing only (`impl Widget for &App`);
//! * [`event`] — the only code that reads the terminal;
//! * this module — the runner: owns the terminal and the chat session, feeds events to the app, carries
//!   out its effects, and redraws when something changed — at most once per frame, so a flood of
//!   messages costs one redraw per frame, not one per message. Idle, it sleeps.

pub mod app;
pub mod event;
pub mod ui;

use std::io::Write;
use std::time::{Duration, Instant};

use crossterm::{cursor, event as cevent, execute, terminal};
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;

use crate::chat::{Chat, ChatEvent, Closed};
use crate::ClientError;
use app::{App, Conn, Effect, Event, Options};

/// Shortest time between two redraws (about 30 per second at most).
const FRAME: Duration = Duration::from_millis(33);

/// Most chat events taken in one go before the screen gets a chance to redraw and keys to be read.
const BURST: usize = 2000;

/// Raw mode, alternate screen, bracketed paste and mouse reporting while alive; all undone on drop, and
/// by the panic hook if the program panics.
struct Screen;

fn restore() {
    let mut out = std::io::stdout();
    let _ = execute!(
        out,
        cevent::DisableMouseCapture,
        cevent::DisableBracketedPaste,
        terminal::LeaveAlternateScreen,
        cursor::Show
    );
    let _ = terminal::disable_raw_mode();
}

impl Screen {
    fn enter() -> std::io::Result<Self> {
        terminal::enable_raw_mode()?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cevent::EnableBracketedPaste,
            cevent::EnableMouseCapture
        )?;
        Ok(Screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

/// Runs the TUI on a registered session until the user quits or the session ends.
pub async fn run(
    mut chat: Chat,
    server: &str,
    options: Options,
    downloads: std::path::PathBuf,
) -> Result<(), ClientError> {
    let term_err = |e: std::io::Error| ClientError::Terminal(e.to_string());
    let screen = Screen::enter().map_err(term_err)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout())).map_err(term_err)?;
    let mut app = App::new(&chat.name, server, &chat.rooms, options);
    if let Some(line) = crate::first_use_notice(server, &chat.trust) {
        app.notice(line);
    }
    let mut events = event::TermEvents::new();
    let mut outcome: Option<(Closed, usize)> = None;
    let mut dirty = true;
    let mut last_draw = Instant::now() - FRAME;
    let mut quitting = false;
    let mut ending = crate::signals::Ending::new();
    let mut transfers = crate::transfer::Transfers::new(chat.requester());
    loop {
        if dirty && last_draw.elapsed() >= FRAME {
            terminal
                .draw(|frame| {
                    frame.render_widget(&app, frame.area());
                    frame.set_cursor_position(app.cursor(frame.area()));
                })
                .map_err(term_err)?;
            dirty = false;
            last_draw = Instant::now();
        }
        let reconnecting = matches!(app.conn, Conn::Reconnecting { .. });
        let effects = tokio::select! {
            input = events.next() => match input {
                Some(e) => app.update(e),
                None => vec![Effect::Quit],
            },
            first = chat.next() => {
                let mut effects = Vec::new();
                let mut next = Some(first);
                let mut taken = 0;
                while let Some(ev) = next {
                    if let ChatEvent::Closed { why, unsent } = &ev {
                        outcome = Some((why.clone(), unsent.len()));
                    }
                    effects.extend(app.update(Event::Chat(ev)));
                    taken += 1;
                    next = if taken < BURST { chat.try_next() } else { None };
                }
                effects
            },
            // A redraw is due (the frame limit held it back).
            _ = tokio::time::sleep_until((last_draw + FRAME).into()), if dirty => Vec::new(),
            // The reconnect countdown in the status bar.
            _ = tokio::time::sleep(Duration::from_millis(500)), if reconnecting => Vec::new(),
            done = transfers.next() => {
                if let Some((name, event)) = done {
                    app.transferred(&name, &event);
                }
                Vec::new()
            },
            // SIGTERM, SIGHUP, SIGINT: leave as /quit does, so the terminal is put back.
            _ = ending.recv() => vec![Effect::Quit],
        };
        dirty = true;
        for effect in effects {
            match effect {
                Effect::Say { local, room, text } => {
                    let id = chat.say(&room, &text).await;
                    app.bind(local, id);
                }
                Effect::Whisper { local, to, text } => {
                    let id = chat.whisper(&to, &text).await;
                    app.bind(local, id);
                }
                Effect::Send(frame) => chat.send(frame).await,
                Effect::Upload { path, room, to } => transfers.upload(path, room, to),
                Effect::Download(id) => transfers.download(id, downloads.clone()),
                Effect::Cancel => {
                    let cancelled = transfers.cancel_all();
                    if cancelled.is_empty() {
                        app.notice(natter_i18n::t!("transfer-none"));
                    }
                    for name in cancelled {
                        app.notice(natter_i18n::t!(
                            "transfer-cancelled",
                            file = natter_proto::text::neutralise(&name).as_ref()
                        ));
                    }
                }
                Effect::Bell => {
                    let _ = std::io::stdout().write_all(b"\x07");
                }
                Effect::Quit => quitting = true,
            }
        }
        app.transfers = transfers.lines();
        if quitting {
            transfers.cancel_all();
            chat.quit().await;
            while outcome.is_none() {
                if let ChatEvent::Closed { why, unsent } = chat.next().await {
                    outcome = Some((why, unsent.len()));
                }
            }
            break;
        }
        if app.quit {
            break;
        }
    }
    drop(terminal);
    drop(screen);
    if let Some(words) = &app.farewell {
        for line in words.lines() {
            eprintln!("natter: {}", natter_proto::text::neutralise(line));
        }
    }
    match outcome {
        Some((Closed::GaveUp(reason), _)) => Err(ClientError::GaveUp(reason)),
        Some((Closed::Exit, n)) if n > 0 => Err(ClientError::Unconfirmed(n)),
        _ => Ok(()),
    }
}
