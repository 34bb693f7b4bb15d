//! Behind a reverse proxy (`--trusted-proxy ADDR`): whose connection is it really?
//!
//! A TCP proxy (HAProxy, nginx's `stream`, a cloud load balancer) in front of the chat or IRC port
//! starts each connection with a PROXY protocol header (version 1, text, or 2, binary) naming the client
//! it carries; an HTTP proxy in front of the browser client adds the client to `X-Forwarded-For`. Both
//! are believed only from the addresses given as trusted proxies — from anyone else they would let a
//! client choose the address its limits, bans and throttles are counted under. A connection from a
//! trusted proxy must start with the header (as with nginx's `proxy_protocol` or HAProxy's
//! `accept-proxy`): one without it is closed.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use ppp::{v1, v2, HeaderResult};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The longest version 1 header.
const V1_MAX: usize = 107;

/// The most bytes of addresses and TLVs a version 2 header may carry here.
const MAX_HEADER: usize = 4096;

/// Why a proxied connection was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no PROXY protocol header in time")]
    TimedOut,
    #[error("not a PROXY protocol header")]
    NotAHeader,
    #[error("the connection closed: {0}")]
    Io(#[from] std::io::Error),
}

/// The header's bytes, and not one more (what follows is the client's, read by its session): version 1
/// is a line (`PROXY …\r\n`, at most 107 bytes), version 2 a 16-byte start that gives the length of
/// the rest.
async fn read_header(stream: &mut TcpStream) -> Result<Vec<u8>, ProxyError> {
    let mut header = vec![stream.read_u8().await?];
    match header[0] {
        b'P' => {
            while header.len() < V1_MAX && !header.ends_with(b"\r\n") {
                header.push(stream.read_u8().await?);
            }
        }
        b'\r' => {
            header.resize(16, 0);
            stream.read_exact(&mut header[1..]).await?;
            let rest = usize::from(u16::from_be_bytes([header[14], header[15]]));
            if rest > MAX_HEADER {
                return Err(ProxyError::NotAHeader);
            }
            header.resize(16 + rest, 0);
            stream.read_exact(&mut header[16..]).await?;
        }
        _ => return Err(ProxyError::NotAHeader),
    }
    Ok(header)
}

/// Reads the PROXY protocol header at the start of `stream` (no byte more) and returns the client it
/// names; the proxy itself (`peer`) for a header that names none (`UNKNOWN`, version 2's `LOCAL`: the
/// proxy's own health checks).
pub async fn client_of(
    stream: &mut TcpStream,
    peer: SocketAddr,
    deadline: Instant,
) -> Result<SocketAddr, ProxyError> {
    let read = async {
        let header = read_header(stream).await?;
        match HeaderResult::parse(&header) {
            HeaderResult::V1(Ok(h)) => Ok(match h.addresses {
                v1::Addresses::Tcp4(a) => SocketAddr::from((a.source_address, a.source_port)),
                v1::Addresses::Tcp6(a) => SocketAddr::from((a.source_address, a.source_port)),
                v1::Addresses::Unknown => peer,
            }),
            HeaderResult::V2(Ok(h)) => Ok(match (h.command, h.addresses) {
                (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                    SocketAddr::from((a.source_address, a.source_port))
                }
                (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                    SocketAddr::from((a.source_address, a.source_port))
                }
                _ => peer,
            }),
            _ => Err(ProxyError::NotAHeader),
        }
    };
    tokio::time::timeout_at(deadline.into(), read)
        .await
        .map_err(|_| ProxyError::TimedOut)?
}

/// The client behind a trusted HTTP proxy: the right-most address in `X-Forwarded-For` that is not a
/// trusted proxy itself (what the proxies appended; anything left of it the client may have written).
/// `None` when there is no such address.
pub fn forwarded_for<'a>(
    headers: impl Iterator<Item = &'a str>,
    trusted: &[IpAddr],
) -> Option<IpAddr> {
    let hops: Vec<&str> = headers.flat_map(|h| h.split(',')).collect();
    hops.iter()
        .rev()
        .map(|hop| hop.trim().parse::<IpAddr>())
        .find(|hop| !matches!(hop, Ok(ip) if trusted.contains(ip)))
        .and_then(Result::ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_takes_the_right_most_hop_no_trusted_proxy_added() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let trusted = [proxy];
        let client = |h: &[&str]| forwarded_for(h.iter().copied(), &trusted);
        assert_eq!(client(&["203.0.113.7"]), "203.0.113.7".parse().ok());
        // What the client wrote itself (on the left) is not believed.
        assert_eq!(
            client(&["1.2.3.4, 203.0.113.7"]),
            "203.0.113.7".parse().ok()
        );
        assert_eq!(
            client(&["1.2.3.4", "203.0.113.7, 10.0.0.1"]),
            "203.0.113.7".parse().ok()
        );
        assert_eq!(client(&["2001:db8::1"]), "2001:db8::1".parse().ok());
        assert_eq!(client(&[]), None);
        assert_eq!(client(&["10.0.0.1"]), None);
        assert_eq!(client(&["garbage, 10.0.0.1"]), None);
    }
}
