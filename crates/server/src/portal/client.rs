//! Which client a request counts against for the per-client limits of sign-in: the peer, or
//! the client a trusted proxy names.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use crate::state::AppState;

/// The client a request counts against for the per-client limits: the peer's address, or,
/// when the peer is a proxy `[portal] trusted_proxies` names, the nearest address in
/// `X-Forwarded-For` that is not one; an IPv6 client by its /64 network, since one host
/// holds a whole /64. Unspecified when the server was not given the peer (a test calling the
/// router directly).
pub(crate) struct ClientAddr(pub(crate) IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let proxies = &state.vault.inventory().portal;
        Ok(ClientAddr(client_of(peer, &parts.headers, |ip| {
            proxies.trusts(ip)
        })))
    }
}

fn client_of(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: impl Fn(IpAddr) -> bool,
) -> IpAddr {
    let Some(mut ip) = peer else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    if trusted(ip) {
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|h| h.trim().parse().ok())
            .collect();
        for hop in hops.into_iter().rev() {
            ip = hop;
            if !trusted(hop) {
                break;
            }
        }
    }
    network(ip)
}

/// An address as the limits count it: IPv4 as it is, IPv6 by its /64.
fn network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(
                u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
            )),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn the_client_behind_trusted_proxies() {
        let check = |peer: &str, xff: &[&str], expect: &str| {
            let mut h = HeaderMap::new();
            for x in xff {
                h.append("x-forwarded-for", HeaderValue::from_str(x).unwrap());
            }
            let trusted = |ip: IpAddr| ["10.0.0.1", "10.0.0.2"].contains(&ip.to_string().as_str());
            let got = client_of(Some(peer.parse().unwrap()), &h, trusted);
            assert_eq!(got.to_string(), expect, "{peer} {xff:?}");
        };
        // Not from a proxy: the header is anyone's to send, and is ignored.
        check("203.0.113.9", &["198.51.100.1"], "203.0.113.9");
        // From a proxy: the nearest hop that is not one.
        check("10.0.0.1", &["198.51.100.1"], "198.51.100.1");
        check(
            "10.0.0.1",
            &["6.6.6.6, 198.51.100.1, 10.0.0.2"],
            "198.51.100.1",
        );
        check("10.0.0.1", &["6.6.6.6", "198.51.100.1"], "198.51.100.1");
        // A proxy that names no client: the proxy.
        check("10.0.0.1", &[], "10.0.0.1");
        check("10.0.0.1", &["not an address"], "10.0.0.1");
        // IPv6 by its /64; v4-mapped as IPv4.
        check("2001:db8:1:2:aaaa::1", &[], "2001:db8:1:2::");
        check("::ffff:192.0.2.7", &[], "192.0.2.7");
    }
}
