//! Drawing only: `impl Widget for &App`. Reads the state, never changes it (except remembering the page
//! height for PgUp/PgDn), never touches the terminal directly — so screens can be snapshot-tested with
//! ratatui's `TestBackend`.
//!
//! Text is laid out by display width (`editor::width`): a CJK character takes two columns and is never
//! split across rows; combining marks take none. Everything from the network passes through `neutralise`.

use natter_i18n::t;
use std::time::Instant;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use natter_proto::text::neutralise;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget};

use super::app::{App, Conn, Conv, EntryKind, SendState, Stamps};
use crate::editor::{shown, width};

const SIDEBAR: u16 = 18;
const MEMBERS: u16 = 18;
/// Narrower than this, the side panels are hidden and the status bar drops the server's address.
const NARROW: u16 = 50;

/// Stable colours for names: the same name always gets the same one.
const NAME_COLOURS: [Color; 10] = [
    Color::Cyan,
    Color::Green,
    Color::Magenta,
    Color::Blue,
    Color::LightRed,
    Color::LightGreen,
    Color::LightMagenta,
    Color::LightBlue,
    Color::LightCyan,
    Color::Yellow,
];

pub fn name_colour(name: &str) -> Color {
    // FNV-1a: stable across runs and platforms (std's hasher is randomly seeded).
    let mut h: u32 = 0x811c_9dc5;
    for b in name.to_lowercase().bytes() {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    NAME_COLOURS[h as usize % NAME_COLOURS.len()]
}

/// The screen's regions.
pub struct Areas {
    pub sidebar: Rect,
    /// The topic line above a room's conversation, when it has one.
    pub topic: Option<Rect>,
    pub messages: Rect,
    pub members: Option<Rect>,
    pub status: Rect,
    pub input: Rect,
    /// The transfers in progress, a line each, above the status bar (empty when there are none).
    pub transfers: Rect,
}

pub fn areas(app: &App, area: Rect) -> Areas {
    let shown = app.transfers.len().min(MAX_TRANSFER_LINES) as u16;
    let [body, transfers, status, input] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(shown),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let show_members = app.show_members
        && matches!(app.current().key, super::app::ConvKey::Room(_))
        && body.width > SIDEBAR + MEMBERS + 20;
    // Below NARROW columns the conversation list gives its room to the messages (Alt-1..9 and Ctrl-N/P
    // still switch; the status bar names the current one).
    let sidebar_width = if body.width < NARROW {
        0
    } else {
        SIDEBAR.min(body.width / 3)
    };
    let [sidebar, rest] =
        Layout::horizontal([Constraint::Length(sidebar_width), Constraint::Min(1)]).areas(body);
    let (messages, members) = if show_members {
        let [m, mem] =
            Layout::horizontal([Constraint::Min(1), Constraint::Length(MEMBERS)]).areas(rest);
        (m, Some(mem))
    } else {
        (rest, None)
    };
    // A room with a topic shows it in a line above its conversation.
    let (topic, messages) = match app.current().topic {
        Some(_) if messages.height > 2 => {
            let [t, m] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(messages);
            (Some(t), m)
        }
        _ => (None, messages),
    };
    Areas {
        sidebar,
        topic,
        messages,
        members,
        status,
        input,
        transfers,
    }
}

/// At most this many transfers get a line of their own; more are summed up in the last.
const MAX_TRANSFER_LINES: usize = 3;

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let a = areas(self, area);
        self.render_sidebar(a.sidebar, buf);
        self.render_transfers(a.transfers, buf);
        if let (Some(area), Some(topic)) = (a.topic, &self.current().topic) {
            let line = Line::styled(
                format!(" {}", neutralise(topic)),
                Style::default().add_modifier(Modifier::BOLD),
            );
            Paragraph::new(line).render(area, buf);
        }
        self.render_messages(a.messages, buf);
        if let Some(m) = a.members {
            self.render_members(m, buf);
        }
        self.render_status(a.status, buf);
        self.render_input(a.input, buf);
    }
}

/// A run of text in one style, to be wrapped.
struct Piece {
    text: String,
    style: Style,
}

fn piece(text: impl Into<String>, style: Style) -> Piece {
    Piece {
        text: text.into(),
        style,
    }
}

/// Wraps styled pieces into rows of at most `cols` display columns; continuation rows (and the rows after a
/// newline in the text) start with `indent` spaces. Wide characters move whole to the next row.
fn wrap(pieces: Vec<Piece>, cols: usize, indent: usize) -> Vec<Line<'static>> {
    let cols = cols.max(1);
    let indent = if indent * 2 >= cols { 0 } else { indent };
    // Every character with its style and width; rows are cut from this.
    let cells: Vec<(char, Style, usize)> = pieces
        .iter()
        .flat_map(|p| p.text.chars().map(move |c| (c, p.style, width(c))))
        .collect();
    let mut rows: Vec<Vec<(char, Style)>> = vec![Vec::new()];
    let mut col = 0;
    // Where the current row may be cut: right after its last space (the space is dropped), or before a
    // wide character (CJK text has no spaces and may break anywhere).
    let mut cut: Option<usize> = None;
    let new_row = |rows: &mut Vec<Vec<(char, Style)>>| {
        let mut row = Vec::new();
        row.extend(std::iter::repeat_n((' ', Style::default()), indent));
        rows.push(row);
    };
    for &(c, style, w) in &cells {
        if c == '\n' {
            new_row(&mut rows);
            col = indent;
            cut = None;
            continue;
        }
        if col + w > cols {
            let row = rows.last_mut().expect("a row");
            let carried: Vec<(char, Style)> = match cut {
                // Move the unfinished word to the next row (dropping the space it follows).
                Some(at) if at > indent => {
                    let rest = row.split_off(at);
                    if row.last().is_some_and(|&(c, _)| c == ' ') {
                        row.pop();
                    }
                    rest
                }
                _ => Vec::new(),
            };
            new_row(&mut rows);
            let row = rows.last_mut().expect("a row");
            col = indent + carried.iter().map(|&(c, _)| width(c)).sum::<usize>();
            let starts_empty = carried.is_empty();
            row.extend(carried);
            cut = None;
            if c == ' ' && starts_empty {
                continue; // a row never starts with the space it was cut at
            }
        }
        let row = rows.last_mut().expect("a row");
        if w > 1 {
            cut = Some(row.len());
        }
        row.push((shown(c), style));
        col += w;
        if c == ' ' || w > 1 {
            cut = Some(row.len());
        }
    }
    rows.into_iter()
        .map(|row| {
            let mut spans: Vec<Span<'static>> = Vec::new();
            let mut run = String::new();
            let mut run_style = None;
            for (c, style) in row {
                if run_style.is_some_and(|s| s != style) {
                    spans.push(Span::styled(
                        std::mem::take(&mut run),
                        run_style.unwrap_or_default(),
                    ));
                }
                run_style = Some(style);
                run.push(c);
            }
            if !run.is_empty() {
                spans.push(Span::styled(run, run_style.unwrap_or_default()));
            }
            Line::from(spans)
        })
        .collect()
}

fn local_date(ts: Timestamp) -> jiff::civil::Date {
    ts.to_zoned(TimeZone::system()).date()
}

fn stamp(ts: Option<Timestamp>, stamps: Stamps) -> String {
    let Some(ts) = ts else {
        return String::new();
    };
    let zoned = ts.to_zoned(TimeZone::system());
    match stamps {
        Stamps::Short => zoned.strftime("[%H:%M:%S] ").to_string(),
        Stamps::Full => zoned.strftime("[%Y-%m-%d %H:%M:%S] ").to_string(),
    }
}

impl App {
    /// Every row of a conversation at `cols` columns.
    pub fn rows(&self, conv: &Conv, cols: usize) -> Vec<Line<'static>> {
        (0..conv.entries.len())
            .flat_map(|i| self.entry_rows(conv, i, cols))
            .collect()
    }

    /// The newest entries of a conversation, newest first, with their rows: enough for at least `need`
    /// rows (fewer if the conversation is shorter). Only the entries that can be seen are laid out, so a
    /// long scrollback costs nothing per frame.
    fn last_entries(
        &self,
        conv: &Conv,
        cols: usize,
        need: usize,
    ) -> Vec<(usize, Vec<Line<'static>>)> {
        let mut chunks = Vec::new();
        let mut count = 0;
        for i in (0..conv.entries.len()).rev() {
            let rows = self.entry_rows(conv, i, cols);
            count += rows.len();
            chunks.push((i, rows));
            if count >= need {
                break;
            }
        }
        chunks
    }

    /// The rows of entry `i`: a day separator if the date changed since the entry before, then the entry.
    fn entry_rows(&self, conv: &Conv, i: usize, cols: usize) -> Vec<Line<'static>> {
        let dim = Style::default().fg(Color::DarkGray);
        let e = &conv.entries[i];
        let mut rows = Vec::new();
        if let (Some(ts), Stamps::Short, Some(prev)) = (
            e.ts,
            self.options.stamps,
            i.checked_sub(1).and_then(|p| conv.entries[p].ts),
        ) {
            let date = local_date(ts);
            if local_date(prev) != date {
                rows.push(Line::styled(format!("── {date} ──"), dim));
            }
        }
        let when = stamp(e.ts, self.options.stamps);
        let indent = width_of(&when);
        let pieces = match &e.kind {
            EntryKind::Message {
                from,
                text,
                own,
                state,
                mention,
            } => {
                let name_style = if *own {
                    Style::default()
                        .fg(Color::White)
                        .add_modifier(Modifier::BOLD)
                } else {
                    Style::default().fg(name_colour(from))
                };
                let text_style = match (state, mention) {
                    (SendState::Pending, _) => dim,
                    (SendState::Failed(_), _) => Style::default().fg(Color::Red),
                    (_, true) => Style::default()
                        .fg(Color::Yellow)
                        .add_modifier(Modifier::BOLD),
                    _ => Style::default(),
                };
                let mut pieces = vec![
                    piece(when, dim),
                    piece(neutralise(from).into_owned(), name_style),
                    piece(": ", Style::default()),
                    piece(neutralise(text).into_owned(), text_style),
                ];
                match state {
                    SendState::Pending => {
                        pieces.push(piece(format!(" {}", t!("msg-sending")), dim))
                    }
                    SendState::Failed(reason) => pieces.push(piece(
                        format!(
                            " {}",
                            t!("msg-not-sent", reason = neutralise(reason).as_ref())
                        ),
                        Style::default().fg(Color::Red),
                    )),
                    SendState::Sent => {}
                }
                pieces
            }
            EntryKind::File { from, info } => {
                let shared = natter_proto::text::describe_file(
                    natter_i18n::lang(),
                    info,
                    natter_proto::file::SLASH_GET,
                );
                let style = match info.expired {
                    true => dim,
                    false => Style::default().fg(Color::Cyan),
                };
                vec![
                    piece(when, dim),
                    piece(
                        neutralise(from).into_owned(),
                        Style::default().fg(name_colour(from)),
                    ),
                    piece(format!(" {shared}"), style),
                ]
            }
            EntryKind::Presence { text, .. } => {
                vec![piece(when, dim), piece(neutralise(text).into_owned(), dim)]
            }
            EntryKind::Info(text) => vec![
                piece(when, dim),
                piece(
                    format!("* {}", neutralise(text)),
                    Style::default().fg(Color::Gray),
                ),
            ],
            EntryKind::Error(text) => vec![
                piece(when, dim),
                piece(
                    format!("! {}", neutralise(text)),
                    Style::default().fg(Color::Red),
                ),
            ],
        };
        rows.extend(wrap(pieces, cols, indent));
        rows
    }

    fn render_sidebar(&self, area: Rect, buf: &mut Buffer) {
        let block = Block::default()
            .borders(Borders::RIGHT)
            .border_style(Style::default().fg(Color::DarkGray));
        let inner = block.inner(area);
        block.render(area, buf);
        let lines: Vec<Line> = self
            .convs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut text = format!("{} {}", i + 1, neutralise(&c.key.label()));
                if c.unread > 0 {
                    text.push_str(&format!(" ({})", c.unread));
                }
                if c.mention {
                    text.push_str(" !");
                }
                let style = if i == self.current {
                    Style::default().add_modifier(Modifier::REVERSED)
                } else if c.mention {
                    Style::default()
                        .fg(Color::Yellow)
                        .add_modifier(Modifier::BOLD)
                } else if c.unread > 0 {
                    Style::default().add_modifier(Modifier::BOLD)
                } else {
                    Style::default()
                };
                Line::styled(text, style)
            })
            .collect();
        Paragraph::new(lines).render(inner, buf);
    }

    fn render_messages(&self, area: Rect, buf: &mut Buffer) {
        let height = area.height as usize;
        self.page.set(height);
        let conv = self.current();
        let entries = self.last_entries(conv, area.width as usize, height + self.scroll);
        // The newest file line on screen: Enter on an empty input line fetches it.
        let total: usize = entries.iter().map(|(_, rows)| rows.len()).sum();
        let scrolled = self.scroll.min(total.saturating_sub(height));
        let mut below = 0;
        let mut in_view = None;
        for (i, rows) in &entries {
            let bottom = below;
            below += rows.len();
            let visible = below > scrolled && bottom < scrolled + height;
            if let (true, EntryKind::File { info, .. }) = (visible, &conv.entries[*i].kind) {
                in_view = Some(info.id);
                break;
            }
        }
        self.file_in_view.set(in_view);
        let rows: Vec<Line> = entries
            .into_iter()
            .rev()
            .flat_map(|(_, rows)| rows)
            .collect();
        let scroll = self.scroll.min(rows.len().saturating_sub(height));
        let end = rows.len() - scroll;
        let start = end.saturating_sub(height);
        // Newest at the bottom, like every chat window.
        let visible: Vec<Line> = rows[start..end].to_vec();
        let top = area.y + (height - visible.len()) as u16;
        Paragraph::new(visible).render(
            Rect {
                y: top,
                height: (end - start) as u16,
                ..area
            },
            buf,
        );
    }

    fn render_members(&self, area: Rect, buf: &mut Buffer) {
        let block = Block::default()
            .borders(Borders::LEFT)
            .border_style(Style::default().fg(Color::DarkGray));
        let inner = block.inner(area);
        block.render(area, buf);
        let mut names = self.current().members.clone();
        names.sort_by_key(|n| n.to_lowercase());
        let mut lines = vec![Line::styled(
            t!("members-here", count = names.len()),
            Style::default().fg(Color::DarkGray),
        )];
        let ops = &self.current().ops;
        lines.extend(names.iter().map(|n| {
            // Operators first-glance: `@name`, as IRC clients show them.
            let mark = if ops.contains(n) { "@" } else { "" };
            Line::styled(
                format!("{mark}{}", neutralise(n)),
                Style::default().fg(name_colour(n)),
            )
        }));
        Paragraph::new(lines).render(inner, buf);
    }

    fn render_transfers(&self, area: Rect, buf: &mut Buffer) {
        if area.height == 0 {
            return;
        }
        let shown = area.height as usize;
        let mut lines: Vec<Line> = self
            .transfers
            .iter()
            .take(shown)
            .map(|t| {
                Line::styled(
                    format!(" {}", neutralise(t)),
                    Style::default().fg(Color::Cyan),
                )
            })
            .collect();
        if self.transfers.len() > shown {
            let more = format!(" … +{}", self.transfers.len() - shown + 1);
            lines[shown - 1] = Line::styled(more, Style::default().fg(Color::Cyan));
        }
        Paragraph::new(lines).render(area, buf);
    }

    fn render_status(&self, area: Rect, buf: &mut Buffer) {
        let (state, colour) = match &self.conn {
            Conn::Connected => (t!("status-connected"), Color::Green),
            Conn::Reconnecting { .. } => {
                let secs = self
                    .reconnect_in(Instant::now())
                    .map_or(0, |d| d.as_secs() + 1);
                (t!("status-reconnecting", secs = secs), Color::Yellow)
            }
            Conn::Offline(why) => (t!("status-offline", why = why), Color::Red),
        };
        let pending = self.sending().len();
        let bar = Style::default().bg(Color::DarkGray).fg(Color::White);
        // Narrow: the server's address goes first, so what matters still fits.
        let server = if area.width < NARROW {
            String::new()
        } else {
            format!(" {} │", self.server)
        };
        let mut spans = vec![
            Span::styled(
                format!(
                    "{server} {} │ {} │ ",
                    neutralise(&self.me),
                    neutralise(&self.current().key.label())
                ),
                bar,
            ),
            Span::styled(state, bar.fg(colour).add_modifier(Modifier::BOLD)),
        ];
        if pending > 0 {
            spans.push(Span::styled(
                format!(" │ {}", t!("sending", count = pending)),
                bar,
            ));
        }
        if self.scroll > 0 {
            spans.push(Span::styled(format!(" │ {}", t!("status-scrolled")), bar));
        }
        buf.set_style(area, bar);
        Paragraph::new(Line::from(spans)).render(area, buf);
    }

    /// The prompt, the part of the input that fits (whole characters only: a wide character is never cut
    /// in half), and the cursor's column in the input row.
    fn input_view(&self, cols: usize) -> (String, String, usize) {
        if let Some(secret) = &self.secret {
            // Nothing of a password is shown, not even its length.
            let prompt = match secret {
                crate::tui::app::Secret::New => t!("prompt-new-password"),
                crate::tui::app::Secret::Again(_) => t!("prompt-new-password-again"),
            };
            let prompt = format!("{prompt} ");
            let cursor = width_of(&prompt);
            return (prompt, String::new(), cursor);
        }
        let prompt = format!("{}> ", neutralise(&self.current().key.label()));
        let before = self.input.width_before_cursor();
        let room = cols.saturating_sub(width_of(&prompt) + 1).max(1);
        let hscroll = before.saturating_sub(room);
        let mut skipped = 0;
        let visible: String = self
            .input
            .text()
            .chars()
            .skip_while(|&c| {
                let skip = skipped < hscroll;
                if skip {
                    skipped += width(c);
                }
                skip
            })
            .map(shown)
            .collect();
        let cursor = width_of(&prompt) + before - skipped;
        (prompt, visible, cursor)
    }

    fn render_input(&self, area: Rect, buf: &mut Buffer) {
        if let Some(paste) = &self.paste {
            let n = paste.lines().count();
            let text = t!("paste-confirm", count = n);
            Paragraph::new(Line::styled(text, Style::default().fg(Color::Yellow)))
                .render(area, buf);
            return;
        }
        let (prompt, visible, _) = self.input_view(area.width as usize);
        let line = Line::from(vec![
            Span::styled(prompt, Style::default().fg(Color::Cyan)),
            Span::raw(visible),
        ]);
        Paragraph::new(line).render(area, buf);
    }

    /// Where the terminal cursor goes: right after the character before the input cursor.
    pub fn cursor(&self, area: Rect) -> (u16, u16) {
        let a = areas(self, area);
        let (_, _, x) = self.input_view(a.input.width as usize);
        (
            a.input.x + (x as u16).min(a.input.width.saturating_sub(1)),
            a.input.y,
        )
    }
}

fn width_of(s: &str) -> usize {
    s.chars().map(width).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::ChatEvent;
    use crate::tui::app::{Event, Options};
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use natter_proto::frame::Message;
    use natter_proto::ServerFrame;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;

    const TS: &str = "2026-11-25T16:38:57.123Z";

    fn app() -> App {
        let mut a = App::new(
            "张三",
            "127.0.0.1:5500",
            &["lobby".into()],
            Options::default(),
        );
        a.show_members = false;
        a
    }

    fn msg(seq: u64, room: Option<&str>, from: &str, to: Option<&str>, text: &str) -> Event {
        Event::Chat(ChatEvent::Frame(ServerFrame::Message(Box::new(Message {
            tags: Default::default(),
            notice: false,
            seq,
            ts: TS.into(),
            room: room.map(Into::into),
            from: from.into(),
            to: to.map(Into::into),
            text: text.into(),
            event: None,
            file: None,
        }))))
    }

    /// Draws the app and returns the screen as text (a wide character counts once) and the cursor.
    fn draw(app: &App, cols: u16, rows: u16) -> (Vec<String>, (u16, u16)) {
        let mut terminal = Terminal::new(TestBackend::new(cols, rows)).unwrap();
        let mut cursor = (0, 0);
        terminal
            .draw(|f| {
                f.render_widget(app, f.area());
                cursor = app.cursor(f.area());
            })
            .unwrap();
        let buf = terminal.backend().buffer();
        let screen = (0..rows)
            .map(|y| {
                let mut line = String::new();
                let mut x = 0;
                while x < cols {
                    let cell = &buf[(x, y)];
                    line.push_str(cell.symbol());
                    x += width_of(cell.symbol()).max(1) as u16;
                }
                line.trim_end().to_owned()
            })
            .collect();
        (screen, cursor)
    }

    /// Types `line` and presses Enter; what the Enter asked for.
    fn submit(a: &mut App, line: &str) -> Vec<crate::tui::app::Effect> {
        for c in line.chars() {
            a.update(Event::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            )));
        }
        a.update(Event::Key(KeyEvent::new(
            KeyCode::Enter,
            KeyModifiers::NONE,
        )))
    }

    fn stamp_short() -> String {
        stamp(natter_proto::time::parse(TS), Stamps::Short)
    }

    #[test]
    fn chinese_wraps_at_the_border_without_half_characters() {
        let mut a = app();
        let text: String = "一二三四五六七八九十".repeat(3);
        a.update(msg(1, Some("lobby"), "bob", None, &text));
        // 54 columns: 18 for the room list, 36 for messages.
        let (screen, _) = draw(&a, 54, 6);
        let pane = areas(&a, Rect::new(0, 0, 54, 6)).messages;
        assert_eq!(pane.width, 36);
        let pane: Vec<String> = screen[..4]
            .iter()
            .map(|l| l.chars().skip(pane.x as usize).collect())
            .collect();
        let stamp = stamp_short();
        let indent = " ".repeat(stamp.chars().count());
        // "[HH:MM:SS] bob: " takes 16 columns, leaving 20 for 10 characters; continuation rows have
        // 36 - 11 = 25 columns: 12 characters (24 columns), never 12 and a half.
        assert_eq!(pane[1], format!("{stamp}bob: 一二三四五六七八九十"));
        assert_eq!(pane[2], format!("{indent}一二三四五六七八九十一二"));
        assert_eq!(pane[3], format!("{indent}三四五六七八九十"));
        assert_eq!(pane[0], "");
    }

    /// Issue 11, friction 17: in a 40x10 window the messages get the whole width, lines wrap at word
    /// boundaries (no word split, no row starting with a space), and the status bar keeps what matters.
    #[test]
    fn a_narrow_window_wraps_words_and_gives_the_messages_room() {
        let mut a = app();
        let text = "the quick brown fox jumps over the lazy dog again and again";
        a.update(msg(1, Some("lobby"), "bob", None, text));
        let (screen, _) = draw(&a, 40, 10);
        let pane = areas(&a, Rect::new(0, 0, 40, 10));
        assert_eq!(pane.sidebar.width, 0, "the list of conversations is hidden");
        assert_eq!(pane.messages.width, 40);
        let rows: Vec<&str> = screen
            .iter()
            .map(|l| l.trim_end())
            .filter(|l| !l.is_empty())
            .collect();
        let words: Vec<&str> = text.split(' ').collect();
        let stamp = stamp_short();
        let mut shown = Vec::new();
        let indent = " ".repeat(stamp.chars().count());
        for row in rows.iter().take_while(|r| !r.contains("connected")) {
            let body = match row.strip_prefix(stamp.as_str()) {
                Some(first) => first.strip_prefix("bob: ").unwrap_or(first),
                None => row.strip_prefix(indent.as_str()).unwrap_or(row),
            };
            assert!(!body.starts_with(' '), "a row starts with a space: {row:?}");
            shown.extend(body.split_whitespace());
        }
        assert_eq!(shown, words, "every word whole, in order: {screen:?}");
        let status = screen.iter().find(|l| l.contains("connected")).unwrap();
        assert!(
            status.contains("张三") && status.contains("#lobby"),
            "{status:?}"
        );
    }

    /// Issue 18: the status bar, `/help` and a reconnect notice in both languages, in the same 80 columns
    /// (snapshots, with every `[HH:MM:SS]` stamp masked: notes are stamped with the time they are made).
    #[test]
    fn snapshots_in_english_and_chinese() {
        use natter_i18n::{with_lang, Lang};
        let screen = |lang| {
            with_lang(lang, || {
                let mut a = app();
                let left = |reason| {
                    Event::Chat(ChatEvent::Frame(ServerFrame::Left {
                        room: "lobby".into(),
                        name: "bob".into(),
                        ts: TS.into(),
                        reason,
                        text: None,
                    }))
                };
                a.update(left(natter_proto::LeftReason::Disconnect));
                a.update(Event::Chat(ChatEvent::Frame(ServerFrame::Joined {
                    room: "lobby".into(),
                    name: "bob".into(),
                    ts: TS.into(),
                })));
                a.update(left(natter_proto::LeftReason::Timeout));
                submit(&mut a, "/help");
                a.update(Event::Chat(ChatEvent::Reconnecting {
                    delay: std::time::Duration::from_millis(4_900),
                    attempt: 2,
                }));
                draw(&a, 80, 50).0
            })
        };
        let masked = |rows: Vec<String>| -> Vec<String> {
            rows.into_iter()
                .map(|row| match (row.find("│["), row.find("│── ")) {
                    (Some(at), _) if row[at..].get(12..13) == Some("]") => {
                        format!("{}│[--:--:--]{}", &row[..at], &row[at + 13..])
                    }
                    (_, Some(at)) => format!("{}│── YYYY-MM-DD ──", &row[..at]),
                    _ => row,
                })
                .collect()
        };
        let expect =
            |rows: &[&str]| -> Vec<String> { rows.iter().map(|r| r.to_string()).collect() };
        let english = masked(screen(Lang::En));
        let chinese = masked(screen(Lang::ZhCn));
        for rows in [&english, &chinese] {
            for row in rows.iter() {
                assert!(width_of(row) <= 80, "{row:?} is wider than the window");
            }
        }
        assert_eq!(
            english,
            expect(&[
                "1 #lobby         │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │[--:--:--] ↻ bob reconnected to #lobby",
                "                 │[--:--:--] ← bob left #lobby (timed out)",
                "                 │── YYYY-MM-DD ──",
                "                 │[--:--:--] * /msg NAME TEXT     send a private message",
                "                 │[--:--:--] * /join ROOM         join (or create) a room and",
                "                 │           make it current",
                "                 │[--:--:--] * /leave [ROOM]      leave a room (default: the",
                "                 │           current one)",
                "                 │[--:--:--] * /who [ROOM]        list a room's members",
                "                 │[--:--:--] * /rooms             list rooms",
                "                 │[--:--:--] * /history           show older messages of the",
                "                 │           current room",
                "                 │[--:--:--] * /lang en|zh-CN     switch the language natter",
                "                 │           speaks to you",
                "                 │[--:--:--] * /password          set a password for your name,",
                "                 │           to sign in from other devices",
                "                 │[--:--:--] * /block NAME        refuse someone's private",
                "                 │           messages (/unblock NAME takes them again)",
                "                 │[--:--:--] * /forget-me         forget your name and your",
                "                 │           private history on this server",
                "                 │[--:--:--] * /kick NAME …       room operators: /op /deop",
                "                 │           /voice /devoice /kick /ban /unban /mute /unmute",
                "                 │           /invite NAME, /topic TEXT, /invite-only on|off,",
                "                 │           /moderated on|off",
                "                 │[--:--:--] * /help              this list",
                "                 │[--:--:--] * /quit or exit      leave the chat",
                "                 │[--:--:--] * //text             say text that starts with '/'",
                "                 │[--:--:--] * /clear             clear this conversation's",
                "                 │           window",
                "                 │[--:--:--] * Alt-1..9 Ctrl-N/P  switch conversation",
                "                 │[--:--:--] * PgUp/PgDn, wheel   scroll; End follows live",
                "                 │           messages",
                "                 │[--:--:--] * F2                 show or hide the member list",
                "                 │[--:--:--] * Tab                complete a name or command",
                "                 │[--:--:--] * /send PATH         share a file with this",
                "                 │           conversation (Tab completes the path)",
                "                 │[--:--:--] * /get N             download shared file N into",
                "                 │           your downloads folder",
                "                 │[--:--:--] * /cancel            stop the transfers in progress",
                " 127.0.0.1:5500 │ 张三 │ #lobby │ reconnecting in 5s",
                "#lobby>",
            ])
        );
        assert_eq!(
            chinese,
            expect(&[
                "1 #lobby         │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │",
                "                 │[--:--:--] ↻ bob 重新连接到 #lobby",
                "                 │[--:--:--] ← bob 离开了 #lobby（超时）",
                "                 │── YYYY-MM-DD ──",
                "                 │[--:--:--] * /msg 名字 内容     发送私聊消息",
                "                 │[--:--:--] * /join 房间         加入（或创建）房间并设为当前房",
                "                 │           间",
                "                 │[--:--:--] * /leave [房间]      离开房间（默认：当前房间）",
                "                 │[--:--:--] * /who [房间]        列出房间成员",
                "                 │[--:--:--] * /rooms             列出房间",
                "                 │[--:--:--] * /history           显示当前房间更早的消息",
                "                 │[--:--:--] * /lang en|zh-CN     切换 natter 对你使用的语言",
                "                 │[--:--:--] * /password          为你的名字设置密码，以便在其他",
                "                 │           设备上登录",
                "                 │[--:--:--] * /block 名字        拒收某人的私聊（/unblock 名字",
                "                 │           重新接收）",
                "                 │[--:--:--] * /forget-me         在本服务器上忘掉你的名字和私聊",
                "                 │           历史",
                "                 │[--:--:--] * /kick 名字 …       房间管理员：/op /deop /voice",
                "                 │           /devoice /kick /ban /unban /mute /unmute /invite 名",
                "                 │           字，/topic 文字，/invite-only on|off，/moderated",
                "                 │           on|off",
                "                 │[--:--:--] * /help              显示本列表",
                "                 │[--:--:--] * /quit 或 exit      退出聊天",
                "                 │[--:--:--] * //文字             发送以 '/' 开头的文字",
                "                 │[--:--:--] * /clear             清空此对话窗口",
                "                 │[--:--:--] * Alt-1..9 Ctrl-N/P  切换对话",
                "                 │[--:--:--] * PgUp/PgDn、滚轮    滚动；End 回到最新消息",
                "                 │[--:--:--] * F2                 显示或隐藏成员列表",
                "                 │[--:--:--] * Tab                补全名字或命令",
                "                 │[--:--:--] * /send 路径         把文件分享到当前对话（Tab 补全",
                "                 │           路径）",
                "                 │[--:--:--] * /get 编号          把编号为 N 的共享文件下载到你",
                "                 │           的下载文件夹",
                "                 │[--:--:--] * /cancel            停止正在进行的传输",
                " 127.0.0.1:5500 │ 张三 │ #lobby │ 5 秒后重连",
                "#lobby>",
            ])
        );
    }

    /// Issue 12: a room's operators are marked `@name` in the member list, and its topic is a line above
    /// the conversation; a kick reads as who did what, in the user's language.
    #[test]
    fn operators_topic_and_room_events_show() {
        let mut a = app();
        a.show_members = true;
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::Users {
            room: "lobby".into(),
            names: vec!["alice".into(), "bob".into()],
            count: None,
            ops: vec!["alice".into()],
        })));
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::Topic {
            set_by: None,
            set_at: None,
            room: "lobby".into(),
            topic: Some("今天的话题".into()),
            invite_only: false,
            moderated: false,
        })));
        let kick = natter_proto::frame::RoomEvent {
            kind: "kick".into(),
            name: Some("bob".into()),
            text: Some("spam".into()),
            minutes: None,
            on: None,
        };
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::Message(
            Box::new(Message {
                tags: Default::default(),
                notice: false,
                seq: 1,
                ts: TS.into(),
                room: Some("lobby".into()),
                from: "alice".into(),
                to: None,
                text: "kicked bob (spam)".into(),
                event: Some(Box::new(kick)),
                file: None,
            }),
        ))));
        let (screen, _) = natter_i18n::with_lang(natter_i18n::Lang::ZhCn, || draw(&a, 80, 8));
        let all = screen.join("\n");
        assert!(screen[0].contains("今天的话题"), "{all}");
        assert!(all.contains("@alice") && !all.contains("@bob"), "{all}");
        // Rendered when it arrived, in the language then (English here).
        assert!(all.contains("* alice kicked bob (spam)"), "{all}");
    }

    #[test]
    fn the_cursor_sits_right_after_cjk_input() {
        let mut a = app();
        for c in "你好".chars() {
            a.update(Event::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            )));
        }
        let (screen, cursor) = draw(&a, 60, 8);
        assert_eq!(screen[7], "#lobby> 你好");
        // "#lobby> " is 8 columns, each character 2: the cursor is in column 12.
        assert_eq!(cursor, (12, 7));
        a.update(Event::Key(KeyEvent::new(KeyCode::Left, KeyModifiers::NONE)));
        assert_eq!(draw(&a, 60, 8).1, (10, 7));
    }

    #[test]
    fn own_messages_show_pending_until_acknowledged() {
        let mut a = app();
        submit(&mut a, "hi");
        a.bind(1, "x".into());
        let (screen, _) = draw(&a, 70, 6);
        assert!(screen[3].ends_with("张三: hi …sending"), "{screen:?}");
        assert!(screen[4].contains("1 sending…"), "{screen:?}");
        a.update(Event::Chat(ChatEvent::Sent {
            message: crate::chat::Outgoing {
                id: "x".into(),
                room: Some("lobby".into()),
                to: None,
                text: "hi".into(),
            },
            seq: 3,
            ts: TS.into(),
        }));
        let (screen, _) = draw(&a, 70, 6);
        let x = areas(&a, Rect::new(0, 0, 70, 6)).messages.x as usize;
        assert_eq!(
            screen[3].chars().skip(x).collect::<String>(),
            format!("{}张三: hi", stamp_short())
        );
        assert!(!screen[4].contains("sending"));
    }

    #[test]
    fn the_room_list_shows_unread_counts_and_mentions() {
        let mut a = app();
        a.update(msg(1, None, "bob", Some("张三"), "psst"));
        a.update(msg(2, None, "bob", Some("张三"), "张三 look"));
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::Joined {
            room: "rust".into(),
            name: "张三".into(),
            ts: TS.into(),
        })));
        a.update(Event::Key(KeyEvent::new(
            KeyCode::Char('1'),
            KeyModifiers::ALT,
        )));
        let (screen, _) = draw(&a, 60, 6);
        assert!(screen[0].starts_with("1 #lobby"), "{screen:?}");
        assert!(screen[1].starts_with("2 @bob (2) !"), "{screen:?}");
        assert!(screen[2].starts_with("3 #rust"), "{screen:?}");
        assert!(
            screen[4].contains("127.0.0.1:5500 │ 张三 │ #lobby │ connected"),
            "{screen:?}"
        );
    }

    #[test]
    fn control_characters_from_the_network_never_reach_the_screen() {
        let mut a = app();
        a.update(msg(1, Some("lobby"), "bob", None, "\u{1b}[2Jgotcha\u{7}"));
        let (screen, _) = draw(&a, 60, 4);
        assert!(screen[1].ends_with("bob: �[2Jgotcha�"), "{screen:?}");
    }

    #[test]
    fn day_separators_and_member_list() {
        let mut a = app();
        a.show_members = true;
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::Users {
            count: None,
            room: "lobby".into(),
            names: vec!["bob".into(), "张三".into()],
            ops: Vec::new(),
        })));
        a.update(Event::Chat(ChatEvent::Frame(ServerFrame::History {
            room: Some("lobby".into()),
            messages: vec![
                Message {
                    tags: Default::default(),
                    notice: false,
                    seq: 1,
                    ts: "2026-11-23T12:00:00Z".into(),
                    room: Some("lobby".into()),
                    from: "bob".into(),
                    to: None,
                    text: "old".into(),
                    event: None,
                    file: None,
                },
                Message {
                    tags: Default::default(),
                    notice: false,
                    seq: 2,
                    ts: "2026-11-25T12:00:00Z".into(),
                    room: Some("lobby".into()),
                    from: "bob".into(),
                    to: None,
                    text: "new".into(),
                    event: None,
                    file: None,
                },
            ],
            new_after: None,
            with: None,
            id: None,
        })));
        let (screen, _) = draw(&a, 80, 7);
        let text = screen.join("\n");
        let day = local_date(natter_proto::time::parse("2026-11-25T12:00:00Z").unwrap());
        assert!(text.contains(&format!("── {day} ──")), "{text}");
        assert!(screen[0].ends_with("│2 here"), "{screen:?}");
        assert!(screen[1].ends_with("│bob"), "{screen:?}");
    }

    fn file(seq: u64, from: &str, name: &str, size: u64) -> Event {
        Event::Chat(ChatEvent::Frame(ServerFrame::Message(Box::new(Message {
            tags: Default::default(),
            notice: false,
            seq,
            ts: TS.into(),
            room: Some("lobby".into()),
            from: from.into(),
            to: None,
            text: natter_proto::file::fallback_text(name, size, seq),
            event: None,
            file: Some(Box::new(natter_proto::file::FileInfo {
                id: seq,
                name: name.into(),
                size,
                mime: "application/pdf".into(),
                sha256: "0".repeat(64),
                expired: false,
            })),
        }))))
    }

    /// Issue 13: a shared file reads as who shared what, how big, and how to get it; transfers in
    /// progress get a line each above the status bar; Enter on an empty line fetches the file on screen
    /// (the newest one shown, so scrolling up reaches older ones).
    #[test]
    fn files_show_with_how_to_get_them_and_enter_fetches_the_one_on_screen() {
        let mut a = app();
        a.update(file(7, "bob", "report.pdf", 2_516_582));
        for i in 0..30 {
            a.update(msg(8 + i, Some("lobby"), "bob", None, &format!("line {i}")));
        }
        a.update(file(40, "bob", "报告.pdf", 300));
        a.transfers = vec!["↑ photo.jpg 45% 12.0 MiB/s 3 s left".into()];
        let (screen, _) = draw(&a, 80, 12);
        let text = screen.join("\n");
        assert!(
            text.contains("bob shared 报告.pdf (300 B) — /get 40"),
            "{text}"
        );
        assert_eq!(
            screen[9], " ↑ photo.jpg 45% 12.0 MiB/s 3 s left",
            "{screen:?}"
        );
        let enter = Event::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(
            a.update(enter.clone()),
            vec![crate::tui::app::Effect::Download(40)]
        );
        // Scrolled up to the first file: Enter gets that one.
        a.scroll = 35;
        let (screen, _) = draw(&a, 80, 12);
        assert!(screen
            .join("\n")
            .contains("bob shared report.pdf (2.4 MiB) — /get 7"));
        assert_eq!(
            a.update(enter.clone()),
            vec![crate::tui::app::Effect::Download(7)]
        );
        // No file on screen: Enter does nothing.
        a.scroll = 15;
        draw(&a, 80, 12);
        assert_eq!(a.update(enter), vec![]);
        // In Chinese.
        let (screen, _) = natter_i18n::with_lang(natter_i18n::Lang::ZhCn, || {
            a.scroll = 0;
            draw(&a, 80, 12)
        });
        assert!(
            screen
                .join("\n")
                .contains("bob 分享了 报告.pdf（300 B）— /get 40"),
            "{screen:?}"
        );
    }

    #[test]
    fn send_get_and_cancel_become_transfers_of_the_current_conversation() {
        let mut a = app();
        let typed = submit;
        assert_eq!(
            typed(&mut a, "/send /tmp/a b.txt"),
            vec![crate::tui::app::Effect::Upload {
                path: "/tmp/a b.txt".into(),
                room: Some("lobby".into()),
                to: None
            }]
        );
        assert_eq!(
            typed(&mut a, "/get 12"),
            vec![crate::tui::app::Effect::Download(12)]
        );
        assert_eq!(
            typed(&mut a, "/cancel"),
            vec![crate::tui::app::Effect::Cancel]
        );
        typed(&mut a, "/msg bob");
        assert_eq!(
            typed(&mut a, "/send x"),
            vec![crate::tui::app::Effect::Upload {
                path: "x".into(),
                room: None,
                to: Some("bob".into())
            }]
        );
        // Tab completes the path after /send.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("holiday.jpg"), b"").unwrap();
        for c in format!("/send {}/hol", dir.path().display()).chars() {
            a.update(Event::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            )));
        }
        a.update(Event::Key(KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE)));
        assert_eq!(
            a.input.text(),
            format!("/send {}/holiday.jpg", dir.path().display())
        );
    }
}
