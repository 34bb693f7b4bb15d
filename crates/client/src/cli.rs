//! `natter send` and `natter get`: file transfers from a shell or a script.
//!
//! Each signs in as `natter join` does (the same key, so the same name), does its transfers on the chat
//! session's behalf, and says `exit`. What a script needs goes to stdout — one line per shared file with
//! its id, or the path a download was written to — and the exit status is 0 only when every file made
//! it, verified. On a terminal a progress bar per file is drawn on stderr; on a pipe, nothing.

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use natter_i18n::t;
use natter_proto::ClientFrame;

use crate::chat::{Chat, ChatEvent};
use crate::transfer::{self, Dest};
use crate::{ClientError, LineOptions};

/// A progress bar for one file on stderr (hidden when stderr is not a terminal).
fn bar(name: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:20!} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(natter_proto::text::neutralise(name).into_owned());
    bar
}

/// Signs in for a script: the name must be given, nothing is asked.
async fn sign_in(opts: &LineOptions) -> Result<Chat, ClientError> {
    if opts.name.as_deref().is_none_or(str::is_empty) {
        return Err(ClientError::NoName);
    }
    crate::line::register_unattended(opts).await
}

/// `natter send FILE... --room ROOM | --to NAME`.
pub async fn run_send(
    opts: LineOptions,
    files: Vec<PathBuf>,
    room: Option<String>,
    to: Option<String>,
) -> Result<(), ClientError> {
    let mut chat = sign_in(&opts).await?;
    let room = match to {
        Some(_) => None,
        None => Some(room.unwrap_or_else(|| natter_proto::LOBBY.to_owned())),
    };
    // Into the room first, if the name is not in it (the offer is refused from outside).
    if let Some(room) = &room {
        let fold = natter_proto::name::fold;
        if !chat.rooms.iter().any(|r| fold(r) == fold(room)) {
            chat.send(ClientFrame::Join { room: room.clone() }).await;
        }
    }
    let requester = chat.requester();
    let mut failed = Vec::new();
    let mut closed = false;
    for path in files {
        let name = path.display().to_string();
        let bar = bar(&name);
        let report = |done: u64, total: u64| {
            bar.set_length(total);
            bar.set_position(done);
        };
        // Chat events are read meanwhile, so the session never stalls on a full queue.
        let sending = transfer::send(&requester, &path, room.clone(), to.clone(), &report);
        tokio::pin!(sending);
        let result = loop {
            tokio::select! {
                result = &mut sending => break result,
                event = chat.next(), if !closed => closed = matches!(event, ChatEvent::Closed { .. }),
            }
        };
        bar.finish_and_clear();
        match result {
            Ok(shared) => println!("{}\t{}", shared.id, shared.name),
            Err(e) => {
                let line = t!("transfer-failed", file = name.as_str(), why = e.to_string());
                eprintln!("natter: {line}");
                failed.push(line);
            }
        }
    }
    chat.quit().await;
    match failed.len() {
        0 => Ok(()),
        n => Err(ClientError::Transfers {
            count: n,
            first: failed.swap_remove(0),
        }),
    }
}

/// `natter get ID [-o PATH]`.
pub async fn run_get(
    opts: LineOptions,
    id: u64,
    output: Option<PathBuf>,
) -> Result<(), ClientError> {
    let mut chat = sign_in(&opts).await?;
    let dest = match output {
        Some(path) => Dest::File(path),
        None => Dest::Dir(opts.downloads.clone()),
    };
    let requester = chat.requester();
    let bar = bar(&format!("#{id}"));
    let report = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let getting = transfer::get(&requester, id, &dest, &report);
    tokio::pin!(getting);
    let mut closed = false;
    let result = loop {
        tokio::select! {
            result = &mut getting => break result,
            event = chat.next(), if !closed => closed = matches!(event, ChatEvent::Closed { .. }),
        }
    };
    bar.finish_and_clear();
    chat.quit().await;
    match result {
        Ok(got) => {
            println!("{}", got.path.display());
            Ok(())
        }
        Err(e) => Err(ClientError::Transfers {
            count: 1,
            first: t!(
                "transfer-failed",
                file = format!("#{id}"),
                why = e.to_string()
            ),
        }),
    }
}
