//! Replays: what a session sends from history — on `hello` (the recent messages of each room and of private
//! messages, or with `resume_after` everything missed), on `join`, and on `history` requests.
//!
//! Replays are read while the outbox is *held* (rule 5 in ARCHITECTURE.md) and queued with
//! [`Outbox::push_paced`](crate::outbox::Outbox::push_paced), which waits for the client to read rather
//! than overflowing its outbox.

use natter_proto::frame::Message;
use natter_proto::{ErrorCode, Name, RoomName, ServerFrame};

use crate::hub::room_args;

use super::Session;
use crate::store::{Scope, StoreError};

/// Most messages a resume replays per history read.
const RESUME_CHUNK: usize = 500;

/// Largest `limit` a history page may ask for.
pub const MAX_HISTORY_PAGE: usize = 500;

impl Session {
    /// `hello`: register, then replay — the recent history of each room and of private messages, or with
    /// `resume_after` every message missed since — and only then let live traffic through.
    pub(super) async fn hello(
        &mut self,
        name: &str,
        version: u32,
        resume_after: Option<u64>,
        lobby: bool,
    ) {
        if version != natter_proto::VERSION {
            let args =
                natter_proto::error_args!(supported = natter_proto::VERSION, version = version);
            self.error(ErrorCode::UnsupportedVersion, args, None);
            return;
        }
        let hub = self.shared.hub.clone();
        let registration = match hub.reserve(name, &self.outbox) {
            Ok(r) => r,
            Err(refusal) => {
                self.outbox.send(refusal.frame(None));
                return;
            }
        };
        let me = registration.name().clone();
        self.me = Some(registration);
        let remembered = match hub.remembered_rooms(&me).await {
            Ok(rooms) => rooms,
            Err(e) => {
                tracing::error!("{}: cannot register {me}: {e}", self.peer);
                self.leave(None);
                self.outbox.release(0, None);
                self.error(
                    ErrorCode::ServerError,
                    natter_proto::error_args!(what = "rooms"),
                    None,
                );
                return;
            }
        };
        let registered = hub.seat(&me, remembered, lobby);
        tracing::info!("{} is now {me}", self.peer);
        match resume_after {
            Some(after) => {
                self.resume(&me, &registered.rooms, after, registered.watermark)
                    .await
            }
            None => {
                for room in &registered.rooms {
                    let tail = self
                        .tail(Scope::Room(room.key().to_owned()), registered.watermark)
                        .await;
                    self.replay_history(Some(room.to_string()), tail).await;
                }
                let tail = self
                    .tail(Scope::Private(me.key().to_owned()), registered.watermark)
                    .await;
                self.replay_history(None, tail).await;
            }
        }
        self.outbox.release(registered.watermark, None);
    }

    /// After a `join` that put us in `room`: its recent history up to `watermark`, then the held live
    /// traffic of the room (what the replay covered is dropped from it).
    pub(super) async fn joined(&self, room: &RoomName, watermark: u64) {
        let tail = self
            .tail(Scope::Room(room.key().to_owned()), watermark)
            .await;
        self.replay_history(Some(room.to_string()), tail).await;
        self.outbox.release(watermark, Some(&room.to_string()));
    }

    /// The last `replay` messages of a scope at or below the watermark.
    async fn tail(&self, scope: Scope, watermark: u64) -> Result<Vec<Message>, StoreError> {
        let limit = self.shared.config.replay;
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.shared
            .history
            .page(scope, watermark.saturating_add(1), limit)
            .await
    }

    async fn replay_history(
        &self,
        room: Option<String>,
        messages: Result<Vec<Message>, StoreError>,
    ) {
        let frame = match messages {
            Ok(messages) => ServerFrame::History { room, messages },
            Err(e) => {
                tracing::error!("history read failed: {e}");
                ServerFrame::error(
                    ErrorCode::ServerError,
                    natter_proto::error_args!(what = "history"),
                    None,
                )
            }
        };
        self.outbox.push_paced(frame, self.stall()).await;
    }

    /// Replays, in seq order, every message after `after` (up to the watermark) that `me` may see.
    async fn resume(&self, me: &Name, rooms: &[RoomName], after: u64, watermark: u64) {
        let history = &self.shared.history;
        match history.oldest_seq().await {
            Ok(oldest) => {
                let oldest = oldest.unwrap_or(watermark + 1);
                if after.saturating_add(1) < oldest && after < watermark {
                    self.outbox
                        .push_paced(ServerFrame::history_gap(oldest, after), self.stall())
                        .await;
                }
            }
            Err(e) => tracing::error!("history read failed: {e}"),
        }
        let keys: Vec<String> = rooms.iter().map(|r| r.key().to_owned()).collect();
        let mut cursor = after;
        while cursor < watermark {
            let chunk = history
                .missed(
                    me.key().to_owned(),
                    keys.clone(),
                    cursor,
                    watermark,
                    RESUME_CHUNK,
                )
                .await;
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    tracing::error!("resume read failed: {e}");
                    self.outbox
                        .push_paced(
                            ServerFrame::error(
                                ErrorCode::ServerError,
                                natter_proto::error_args!(what = "history"),
                                None,
                            ),
                            self.stall(),
                        )
                        .await;
                    return;
                }
            };
            let full = chunk.len() == RESUME_CHUNK;
            for message in chunk {
                cursor = message.seq;
                if !self
                    .outbox
                    .push_paced(ServerFrame::Message(message), self.stall())
                    .await
                {
                    return;
                }
            }
            if !full {
                break;
            }
        }
    }

    /// `history`: one page of older messages from a room you are in, or of your private messages.
    pub(super) async fn history_page(
        &self,
        me: &Name,
        room: Option<String>,
        before: Option<u64>,
        limit: Option<usize>,
    ) {
        let scope = match &room {
            Some(raw) => match RoomName::parse_lenient(raw) {
                Ok(room) if self.shared.hub.is_member(me, &room) => {
                    Scope::Room(room.key().to_owned())
                }
                Ok(room) => {
                    return self.error(
                        ErrorCode::NotInRoom,
                        natter_proto::error_args!(room = format!("#{room}")),
                        None,
                    )
                }
                Err(e) => return self.error(ErrorCode::InvalidRoom, room_args(raw, &e), None),
            },
            None => Scope::Private(me.key().to_owned()),
        };
        let before = before.unwrap_or(u64::MAX);
        let limit = limit
            .unwrap_or(self.shared.config.replay.max(1))
            .min(MAX_HISTORY_PAGE);
        let page = self.shared.history.page(scope, before, limit).await;
        self.replay_history(room, page).await;
    }
}
