//! The only code that reads the terminal: crossterm events in, [`Event`]s for the app out. (crossterm reads
//! `/dev/tty` with level-triggered polling — the `use-dev-tty` feature, see the workspace Cargo.toml.)

use crossterm::event::{EventStream, KeyEventKind, MouseEventKind};
use futures::StreamExt;

use super::app::Event;

#[derive(Default)]
pub struct TermEvents {
    stream: EventStream,
}

impl TermEvents {
    pub fn new() -> Self {
        Self {
            stream: EventStream::new(),
        }
    }

    /// The next event the app cares about; `None` when the terminal is gone. Resizes come back as
    /// `Tick`, which makes the runner redraw.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            let event = match self.stream.next().await? {
                Ok(e) => e,
                Err(_) => return None,
            };
            match event {
                crossterm::event::Event::Key(key)
                    if matches!(key.kind, KeyEventKind::Press | KeyEventKind::Repeat) =>
                {
                    return Some(Event::Key(key))
                }
                crossterm::event::Event::Paste(text) => return Some(Event::Paste(text)),
                crossterm::event::Event::Mouse(m) => match m.kind {
                    MouseEventKind::ScrollUp => return Some(Event::ScrollUp),
                    MouseEventKind::ScrollDown => return Some(Event::ScrollDown),
                    _ => {}
                },
                crossterm::event::Event::Resize(..) => return Some(Event::Tick),
                _ => {}
            }
        }
    }
}
