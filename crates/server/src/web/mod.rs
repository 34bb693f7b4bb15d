//! The web front end: the browser client's page, and a WebSocket that carries protocol v1.
//!
//! `natter serve --web ADDR` serves, from assets embedded in the binary (`crates/server/web/`), the page
//! at `/` with its script and style, and at `/ws` a WebSocket whose text messages are protocol v1 frames,
//! one JSON frame per message. The WebSocket is bridged to a byte stream — each message in becomes one
//! line, each line out one message — and a session runs over it exactly as over TCP: the same front end
//! (native JSON), hub, rooms, history, flood control, limits and timeouts. A browser user and a terminal
//! user are the same to the hub.
//!
//! Security: every response carries a strict Content-Security-Policy (scripts only from this origin, no
//! inline script, no eval, no framing), `X-Content-Type-Options: nosniff` and `Referrer-Policy:
//! no-referrer`; the WebSocket upgrade is refused when a browser's `Origin` is not this server's own
//! (no cross-site WebSocket hijacking); a WebSocket message is limited to the chat port's frame size.
//! The page inserts everything from the network as text, never as HTML.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use natter_proto::{ErrorCode, ServerFrame};

use crate::session::Shared;
use crate::Limits;

/// The page's files, in the binary (also in debug builds: tests see what users get).
#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Assets;

/// Every response's security headers.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; \
     connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[derive(Clone)]
struct Web {
    shared: Arc<Shared>,
    limits: Arc<Limits>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// Serves the page and the WebSocket on `listener` until `shutdown`.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    limits: Arc<Limits>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let web = Web {
        shared,
        limits,
        shutdown: shutdown.clone(),
        tracker,
    };
    let app = Router::new()
        .route("/", get(index))
        .route("/ws", get(socket))
        .route("/i18n.json", get(texts))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/i18n/error", get(error_text))
        .route(
            "/files/upload/{token}",
            axum::routing::patch(upload).head(upload_offset),
        )
        .route("/files/{token}", get(download))
        .route("/{*path}", get(asset))
        .with_state(web.clone());
    // Beyond this machine the page is HTTPS, with the chat port's certificate.
    let config = &web.shared.config();
    let on_loopback = listener
        .local_addr()
        .is_ok_and(|a| a.ip().is_loopback() && Some(a.ip()) != config.remote_loopback);
    if let (Some(tls), false) = (web.shared.config().tls.clone(), on_loopback) {
        return serve_https(listener, app, tls, web.shutdown, web.tracker).await;
    }
    let served = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await;
    if let Err(e) = served {
        tracing::error!("the web front end stopped: {e}");
    }
}

/// The page and its WebSocket over TLS: each accepted connection's handshake, then HTTP/1.1 (with
/// upgrades, for the WebSocket) over it.
async fn serve_https(
    listener: TcpListener,
    app: Router,
    tls: crate::tls::Tls,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("web: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let app = app.clone().layer(axum::Extension(ConnectInfo(peer)));
        let acceptor = tls.acceptor.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let handshake =
                tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream));
            let Ok(Ok(secure)) = handshake.await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(secure), service)
                .with_upgrades();
            tokio::select! {
                _ = connection => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

/// `GET /healthz`: 200 while the store's writer takes commands (a request through it is answered within
/// two seconds), 503 otherwise — for a load balancer or a service monitor.
async fn healthz(State(web): State<Web>) -> Response {
    secured(health_response(&web.shared).await)
}

/// The answer of `/healthz`, on the web listener and on `--metrics ADDR`.
async fn health_response(shared: &Arc<Shared>) -> Response {
    let probe = natter_proto::Name::new("healthz").expect("a valid name");
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        shared.hub.remembered_rooms(&probe),
    )
    .await;
    match answered {
        Ok(Ok(_)) => (StatusCode::OK, "ok\n").into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the store is not taking writes\n",
        )
            .into_response(),
    }
}

/// `--metrics ADDR`: `/metrics` and `/healthz` on a listener of their own (for a monitoring network), plain
/// HTTP.
pub(crate) async fn serve_metrics(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(shared): State<Arc<Shared>>| async move { metrics_response(&shared).await }),
        )
        .route(
            "/healthz",
            get(|State(shared): State<Arc<Shared>>| async move { health_response(&shared).await }),
        )
        .with_state(shared);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await;
    if let Err(e) = served {
        tracing::error!("the metrics listener stopped: {e}");
    }
}

/// `GET /metrics`: the Prometheus text format ([`crate::metrics`]); 404 with `--metrics off` or
/// `--metrics ADDR` (then it is served there).
async fn metrics(State(web): State<Web>) -> Response {
    if !web.shared.config().metrics_on_web {
        return secured(StatusCode::NOT_FOUND.into_response());
    }
    secured(metrics_response(&web.shared).await)
}

/// The metrics as an HTTP response, for the web listener and for `--metrics ADDR`.
pub(crate) async fn metrics_response(shared: &Arc<Shared>) -> Response {
    let Some(text) = crate::metrics::render(shared).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// `HEAD /files/upload/TOKEN`: how much of the upload the server has (`Upload-Offset`), to resume from.
async fn upload_offset(State(web): State<Web>, Path(token): Path<String>) -> Response {
    let offset = web
        .shared
        .files
        .as_ref()
        .and_then(|files| crate::files::transfer::upload_offset(files, &token));
    let Some(offset) = offset else {
        return secured(StatusCode::NOT_FOUND.into_response());
    };
    secured(with_offset(StatusCode::NO_CONTENT.into_response(), offset))
}

/// `PATCH /files/upload/TOKEN` with `Upload-Offset: N` and the file's bytes from N: the browser's
/// transfer connection (the core of the tus protocol: 409 and the server's offset when N is not where
/// the upload stands, 460 when the SHA-256 does not match). The answer is the transfer connection's last
/// frame, as JSON.
async fn upload(
    State(web): State<Web>,
    Path(token): Path<String>,
    request: axum::extract::Request,
) -> Response {
    let offset = request
        .headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let Some(offset) = offset else {
        return secured((StatusCode::BAD_REQUEST, "Upload-Offset is missing").into_response());
    };
    let body = request
        .into_body()
        .into_data_stream()
        .map(|chunk| chunk.map_err(std::io::Error::other));
    let body = tokio_util::io::StreamReader::new(body);
    use crate::files::transfer::{upload_http, HttpUpload};
    let ended = upload_http(&web.shared, &token, offset, body, &web.shutdown).await;
    let (status, frame, have) = match ended {
        HttpUpload::Shared(file) => (StatusCode::OK, ServerFrame::Uploaded { file }, None),
        HttpUpload::WrongOffset(have) => (
            StatusCode::CONFLICT,
            ServerFrame::UploadAt { offset: have },
            Some(have),
        ),
        HttpUpload::Incomplete(have) => (
            StatusCode::BAD_REQUEST,
            ServerFrame::UploadAt { offset: have },
            Some(have),
        ),
        HttpUpload::Refused(frame) => {
            let status = match &frame {
                ServerFrame::Error {
                    code: ErrorCode::BadChecksum,
                    ..
                } => StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
                ServerFrame::Error {
                    code: ErrorCode::UnknownTransfer,
                    ..
                } => StatusCode::NOT_FOUND,
                ServerFrame::Error {
                    code: ErrorCode::StorageFull,
                    ..
                } => StatusCode::INSUFFICIENT_STORAGE,
                _ => StatusCode::BAD_REQUEST,
            };
            (status, frame, None)
        }
    };
    let response = (status, axum::Json(frame)).into_response();
    secured(match have {
        Some(have) => with_offset(response, have),
        None => response,
    })
}

/// A response saying how much of an upload the server has (tus's `Upload-Offset`).
fn with_offset(mut response: Response, offset: u64) -> Response {
    response
        .headers_mut()
        .insert("upload-offset", HeaderValue::from(offset));
    response
}

/// `GET /files/TOKEN`: a shared file (from a `fetch`'s token), with `Range: bytes=N-` to resume. Images
/// are shown inline; anything else is an attachment, never rendered by the browser.
async fn download(
    State(web): State<Web>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let opened = match web.shared.files.as_ref() {
        Some(files) => crate::files::transfer::open_download(files, &token).await,
        None => None,
    };
    let Some((info, mut file)) = opened else {
        return secured(
            (
                StatusCode::NOT_FOUND,
                "no such file, or the link has expired",
            )
                .into_response(),
        );
    };
    let start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|start| *start <= info.size);
    if let Some(start) = start {
        use tokio::io::AsyncSeekExt;
        if file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
            return secured(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
    }
    let from = start.unwrap_or(0);
    use tokio::io::AsyncReadExt;
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file.take(info.size - from),
        crate::files::transfer::CHUNK,
    ));
    let mut response = body.into_response();
    let h = response.headers_mut();
    let image = info.mime.starts_with("image/") && info.mime != "image/svg+xml";
    let content_type = if image {
        info.mime.as_str()
    } else {
        "application/octet-stream"
    };
    if let Ok(value) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, value);
    }
    let encoded: String = info
        .name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let disposition = format!(
        "{}; filename*=UTF-8''{encoded}",
        if image { "inline" } else { "attachment" }
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, value);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size - from));
    if let Some(start) = start {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let range = format!(
            "bytes {start}-{}/{}",
            info.size.saturating_sub(1),
            info.size
        );
        if let Ok(value) = HeaderValue::from_str(&range) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    secured(response)
}

/// The page's words, from the catalogues: the texts for the language the page asks for (`?lang=`,
/// from the browser's languages), placeholders left as `{name}` for the page to fill.
const TEXTS: &[&str] = &[
    "web-name",
    "web-password",
    "web-password-hint",
    "web-join",
    "web-message",
    "web-send",
    "web-sending",
    "web-not-sent",
    "web-reconnecting",
    "web-connecting",
    "web-members",
    "web-help",
    "web-unknown-command",
    "web-usage-msg",
    "web-file",
    "web-file-expired",
    "web-conversations",
    "web-messages",
    "web-attach",
    "web-download",
    "web-uploading",
    "web-upload-failed",
    "web-language",
    "web-language-auto",
    "web-offline",
];

async fn texts(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let lang = asked_lang(&query);
    let holes: Vec<(&str, natter_i18n::Arg)> = [
        "reason", "secs", "count", "room", "command", "file", "size", "id", "why",
    ]
    .into_iter()
    .map(|name| (name, natter_i18n::Arg::Text(format!("{{{name}}}"))))
    .collect();
    let texts: serde_json::Map<String, serde_json::Value> = TEXTS
        .iter()
        .map(|id| {
            let text = natter_i18n::text(lang, id, &holes);
            (id.to_string(), serde_json::Value::String(text))
        })
        .collect();
    let mut response = axum::Json(texts).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secured(response)
}

/// The language a request's `?lang=` asks for (English by default).
fn asked_lang(query: &std::collections::HashMap<String, String>) -> natter_i18n::Lang {
    query
        .get("lang")
        .and_then(|l| natter_i18n::Lang::parse(l))
        .unwrap_or(natter_i18n::Lang::En)
}

/// `GET /i18n/error?lang=zh-CN&code=name_taken&args={"name":"bob"}`: an error frame's text in the page's
/// language, from the same catalogue entry a terminal client uses (so a selector on an argument picks the
/// same words). Unknown codes fall back to `message`.
async fn error_text(
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
) -> Response {
    let lang = asked_lang(&query);
    let code: ErrorCode = query
        .get("code")
        .and_then(|c| serde_json::from_value(serde_json::Value::String(c.clone())).ok())
        .unwrap_or(ErrorCode::Unknown);
    let args: natter_proto::frame::ErrorArgs = query
        .get("args")
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or_default();
    let message = query.get("message").map_or("", String::as_str);
    let text = natter_proto::frame::error_text(lang, code, &args, message);
    secured(axum::Json(serde_json::json!({ "text": text })).into_response())
}

async fn index(headers: HeaderMap) -> Response {
    file("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    file(&path, &headers)
}

/// An embedded file, with its ETag (a `304` when the browser has it) and the security headers.
fn file(path: &str, request: &HeaderMap) -> Response {
    let Some(found) = Assets::get(path) else {
        return secured((StatusCode::NOT_FOUND, "not found").into_response());
    };
    let etag = format!(
        "\"{}\"",
        natter_proto::file::hex(&found.metadata.sha256_hash()[..12])
    );
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mime = mime_guess::from_path(path).first_or_octet_stream();
        let mut response = found.data.into_owned().into_response();
        if let Ok(value) = HeaderValue::from_str(mime.as_ref()) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    // Asked again every time, answered with 304 while unchanged: a new natter's page is never stale.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    secured(response)
}

fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Whether a WebSocket upgrade comes from this server's own page: a browser always says where the page
/// that opens a WebSocket came from (`Origin`), and it must be this host. A program that is no browser
/// sends no `Origin` and is let in (it could connect to the chat port anyway).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = origin.to_str().ok().and_then(|o| {
        o.strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
    });
    matches!((origin, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

async fn socket(
    State(web): State<Web>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers) {
        tracing::info!(
            event = "refused",
            reason = "cross_origin",
            "{peer}: WebSocket from another site's page ({:?}); refused",
            headers.get(header::ORIGIN)
        );
        crate::metrics::refused("cross_origin");
        return secured((StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response());
    }
    let config = web.shared.config();
    // Behind a trusted HTTP proxy, the client is the one it names.
    let peer = match config.trusted_proxies.contains(&peer.ip()) {
        true => {
            let forwarded = headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok());
            match crate::proxy::forwarded_for(forwarded, &config.trusted_proxies) {
                Some(client) => SocketAddr::new(client, 0),
                None => peer,
            }
        }
        false => peer,
    };
    if web.shared.hub.is_banned_address(peer.ip()) {
        tracing::info!(event = "refused", reason = "banned", peer = %peer, "refused {peer}: banned");
        crate::metrics::refused("banned");
        return secured((StatusCode::FORBIDDEN, "banned").into_response());
    }
    let admission = match web.limits.admit(peer.ip(), &config) {
        Ok(admission) => admission,
        Err(code) => {
            crate::metrics::refused(code.as_str());
            return secured(
                (StatusCode::SERVICE_UNAVAILABLE, code.as_str().to_owned()).into_response(),
            );
        }
    };
    // Messages as long as the chat port's frames (and a little for the newline's absence); a bounded
    // write buffer, as the outbox bounds what waits for a slow reader.
    let limit = config.max_frame + 1;
    let tracker = web.tracker.clone();
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .max_write_buffer_size(config.max_outbox)
        .on_upgrade(move |ws| tracker.track_future(bridge(ws, peer, web, admission)))
}

/// Runs a session over the WebSocket: messages in become lines, lines out become messages.
async fn bridge(ws: WebSocket, peer: SocketAddr, web: Web, admission: crate::Admission) {
    tracing::info!("web connection from {peer}");
    let (session_side, bridge_side) = tokio::io::duplex(64 * 1024);
    let (from_session, mut to_session) = tokio::io::split(bridge_side);
    let (mut sink, mut stream) = ws.split();
    let inbound = async move {
        while let Some(Ok(message)) = stream.next().await {
            let text = match message {
                WsMessage::Text(text) => text,
                WsMessage::Close(_) => break,
                // Frames are text; anything else is not protocol v1.
                WsMessage::Binary(_) => break,
                WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            };
            if to_session.write_all(text.as_bytes()).await.is_err()
                || to_session.write_all(b"\n").await.is_err()
            {
                break;
            }
        }
        let _ = to_session.shutdown().await;
    };
    let outbound = async move {
        let mut lines = tokio::io::BufReader::new(from_session);
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            match lines.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                line.pop();
            }
            // The session writes UTF-8 JSON (or UTF-8 text); a line that is not is not sent. A long one
            // (a page of history) is sent whole, as on TCP.
            let Ok(text) = std::str::from_utf8(&line) else {
                continue;
            };
            if sink.send(WsMessage::Text(text.into())).await.is_err() {
                break;
            }
        }
        let _ = sink.send(WsMessage::Close(None)).await;
    };
    let session = crate::session::serve_stream(
        crate::transport::Stream(session_side),
        peer,
        web.shared.clone(),
        web.shutdown.clone(),
        Instant::now(),
        (false, crate::session::Kind::Chat),
        admission,
    );
    tokio::join!(inbound, outbound, session);
}
