//! What the proxy changes in a request and a response on the way through: pure functions over
//! paths and headers, tested without a network.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use uuid::Uuid;

/// The gateway's own cookies (access, refresh, CSRF) start with this; none reaches a container
/// and no container may set one.
const GATEWAY_COOKIE_PREFIX: &str = "atrium_";

/// Where a proxied path points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// `/session/<id>` without the slash: redirect to `/session/<id>/` so relative URLs resolve.
    AddSlash(Uuid),
    /// `/session/<id>/<rest>`: the container's `/<rest>`.
    Upstream { id: Uuid, path: &'a str },
    /// Not a session id: answered exactly like a session that does not exist.
    NotASession,
}

/// Splits `/session/<id>/<rest>` into the session and the container's path (`/<rest>`, still
/// percent-encoded as the client sent it).
pub fn target(path: &str) -> Target<'_> {
    let Some(rest) = path.strip_prefix("/session/") else {
        return Target::NotASession;
    };
    let (id, upstream) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i..])),
        None => (rest, None),
    };
    // Only the lowercase hyphenated form is a session's URL: one resource, one spelling.
    let Ok(parsed) = Uuid::parse_str(id) else {
        return Target::NotASession;
    };
    if parsed.hyphenated().to_string() != id {
        return Target::NotASession;
    }
    match upstream {
        Some(path) => Target::Upstream { id: parsed, path },
        None => Target::AddSlash(parsed),
    }
}

/// The prefix the gateway serves a session under.
pub fn prefix(id: Uuid) -> String {
    format!("/session/{id}")
}

/// The container's path and query for a client's path and query.
pub fn upstream_path_and_query(path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) => format!("{path}?{q}"),
        None => path.to_owned(),
    }
}

/// Headers that describe one hop's connection, never forwarded (RFC 9110 §7.6.1), plus
/// `proxy-*` and `expect` (the gateway answers `100-continue` itself).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes the hop-by-hop headers, including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in HOP_BY_HOP.iter().chain(named.iter()) {
        headers.remove(name);
    }
}

/// Facts about the client's request that the container may want (`X-Forwarded-*`).
#[derive(Debug, Clone, Default)]
pub struct Forwarded {
    pub client_ip: Option<std::net::IpAddr>,
    /// `https` when the gateway serves TLS.
    pub proto: &'static str,
    /// The `Host` the client asked for.
    pub host: Option<HeaderValue>,
    pub prefix: String,
}

/// The request headers the container gets: the client's, without the hop-by-hop ones, without
/// any credential of the client (its `Authorization`, the gateway's cookies and CSRF token) and
/// without forwarding claims the client made up; with `Host`, the session's basic auth and
/// `X-Forwarded-*` set by the gateway.
pub fn request_headers(
    client: &HeaderMap,
    authority: &HeaderValue,
    basic_auth: &HeaderValue,
    forwarded: &Forwarded,
) -> HeaderMap {
    let mut headers = client.clone();
    strip_hop_by_hop(&mut headers);
    for name in [
        header::AUTHORIZATION,
        header::HOST,
        header::EXPECT,
        header::FORWARDED,
        HeaderName::from_static("x-forwarded-for"),
        HeaderName::from_static("x-forwarded-host"),
        HeaderName::from_static("x-forwarded-proto"),
        HeaderName::from_static("x-forwarded-prefix"),
        HeaderName::from_static("x-real-ip"),
        HeaderName::from_static(atrium_service_kit::http::CSRF_HEADER),
    ] {
        headers.remove(name);
    }
    match workspace_cookies(client) {
        Some(cookies) => {
            headers.insert(header::COOKIE, cookies);
        }
        None => {
            headers.remove(header::COOKIE);
        }
    }
    headers.insert(header::HOST, authority.clone());
    headers.insert(header::AUTHORIZATION, basic_auth.clone());
    if let Some(ip) = forwarded.client_ip
        && let Ok(v) = HeaderValue::from_str(&ip.to_string())
    {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert(
        "x-forwarded-proto",
        HeaderValue::from_static(forwarded.proto),
    );
    if let Some(host) = &forwarded.host {
        headers.insert("x-forwarded-host", host.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&forwarded.prefix) {
        headers.insert("x-forwarded-prefix", v);
    }
    headers
}

/// The client's cookies without the gateway's own: the workspace's cookies still reach it.
fn workspace_cookies(headers: &HeaderMap) -> Option<HeaderValue> {
    let kept: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(n, _)| n).trim();
            !name.starts_with(GATEWAY_COOKIE_PREFIX)
        })
        .collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_str(&kept.join("; ")).ok()
}

/// The response headers the client gets: without hop-by-hop headers, without a basic-auth
/// challenge (the browser must never ask its user for the session's secret), without any cookie
/// that would overwrite the gateway's, and with redirects into the container mapped under the
/// session's prefix.
pub fn response_headers(headers: &mut HeaderMap, upstream_authority: &str, prefix: &str) {
    strip_hop_by_hop(headers);
    headers.remove(header::WWW_AUTHENTICATE);
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter(|v| {
            let name = v
                .to_str()
                .ok()
                .and_then(|s| s.split_once('=').map(|(n, _)| n.trim()));
            !name.is_some_and(|n| n.starts_with(GATEWAY_COOKIE_PREFIX))
        })
        .cloned()
        .collect();
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie);
    }
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        if let Some(location) = headers.get(&name).and_then(|v| v.to_str().ok())
            && let Some(mapped) = map_location(location, upstream_authority, prefix)
            && let Ok(v) = HeaderValue::from_str(&mapped)
        {
            headers.insert(name, v);
        }
    }
}

/// A redirect into the container (`/x` or `https://<its address>/x`) as the gateway's
/// `<prefix>/x`; `None`: leave it (relative, or somewhere else).
pub fn map_location(location: &str, upstream_authority: &str, prefix: &str) -> Option<String> {
    if location.starts_with('/') && !location.starts_with("//") {
        return Some(format!("{prefix}{location}"));
    }
    let rest = location
        .strip_prefix("https://")
        .or_else(|| location.strip_prefix("http://"))?;
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if !authority.eq_ignore_ascii_case(upstream_authority) {
        return None;
    }
    Some(match path {
        "" => format!("{prefix}/"),
        p if p.starts_with('/') => format!("{prefix}{p}"),
        p => format!("{prefix}/{p}"),
    })
}

/// `host:port` for a URI, with brackets around an IPv6 address.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Whether a request asks for a WebSocket.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"))
}

/// Whether the request's `Origin` (when it has one) is the gateway's own: the host the request
/// was sent to. Browsers send `Origin` on every cross-origin request, every POST and every
/// WebSocket handshake, so a page elsewhere cannot use a user's cookie through the proxy.
pub fn same_origin(headers: &HeaderMap, request_authority: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some(origin_authority) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or(request_authority);
    host.is_some_and(|h| h.eq_ignore_ascii_case(origin_authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0195f3a2-7c1e-7d40-9a55-3e2b1c0d4f10";

    fn id() -> Uuid {
        Uuid::parse_str(ID).expect("uuid")
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        map
    }

    #[test]
    fn session_paths_split_into_the_session_and_the_containers_path() {
        assert_eq!(
            target(&format!("/session/{ID}/")),
            Target::Upstream {
                id: id(),
                path: "/"
            }
        );
        assert_eq!(
            target(&format!("/session/{ID}/vnc/index.html")),
            Target::Upstream {
                id: id(),
                path: "/vnc/index.html"
            }
        );
        assert_eq!(
            target(&format!("/session/{ID}/a%2Fb//c")),
            Target::Upstream {
                id: id(),
                path: "/a%2Fb//c"
            }
        );
        assert_eq!(target(&format!("/session/{ID}")), Target::AddSlash(id()));
        for bad in [
            "/session/",
            "/session/nope/",
            "/session//x",
            "/sessions/0195f3a2-7c1e-7d40-9a55-3e2b1c0d4f10/",
            // Another spelling of the same id is not the session's URL.
            "/session/0195F3A27C1E7D409A553E2B1C0D4F10/",
            "/session/0195F3A2-7C1E-7D40-9A55-3E2B1C0D4F10/",
        ] {
            assert_eq!(target(bad), Target::NotASession, "{bad}");
        }
    }

    #[test]
    fn the_query_follows_the_path() {
        assert_eq!(upstream_path_and_query("/a", Some("x=1&y")), "/a?x=1&y");
        assert_eq!(upstream_path_and_query("/", None), "/");
    }

    #[test]
    fn credentials_cookies_and_hop_by_hop_headers_stay_behind() {
        let client = headers(&[
            ("authorization", "Bearer user-token"),
            ("cookie", "atrium_access=tok; theme=dark"),
            ("cookie", "atrium_csrf=c; atrium_refresh=r"),
            ("x-csrf-token", "c"),
            ("connection", "keep-alive, x-private"),
            ("x-private", "hop"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("x-forwarded-for", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("host", "gateway.example:8443"),
            ("accept", "text/html"),
            ("expect", "100-continue"),
        ]);
        let forwarded = Forwarded {
            client_ip: Some("10.1.2.3".parse().expect("ip")),
            proto: "https",
            host: client.get("host").cloned(),
            prefix: prefix(id()),
        };
        let out = request_headers(
            &client,
            &HeaderValue::from_static("172.17.0.1:32768"),
            &HeaderValue::from_static("Basic a2FzbV91c2VyOnB3"),
            &forwarded,
        );
        assert_eq!(out["authorization"], "Basic a2FzbV91c2VyOnB3");
        assert_eq!(out.get_all("authorization").iter().count(), 1);
        assert_eq!(out["host"], "172.17.0.1:32768");
        assert_eq!(out["cookie"], "theme=dark");
        assert_eq!(out.get_all("cookie").iter().count(), 1);
        assert_eq!(out["accept"], "text/html");
        assert_eq!(out["x-forwarded-for"], "10.1.2.3");
        assert_eq!(out["x-forwarded-proto"], "https");
        assert_eq!(out["x-forwarded-host"], "gateway.example:8443");
        assert_eq!(out["x-forwarded-prefix"], format!("/session/{ID}"));
        for gone in [
            "x-csrf-token",
            "connection",
            "x-private",
            "keep-alive",
            "transfer-encoding",
            "te",
            "upgrade",
            "proxy-authorization",
            "forwarded",
            "expect",
        ] {
            assert!(out.get(gone).is_none(), "{gone} was forwarded");
        }
        // Only the gateway's cookies: no Cookie header at all.
        let only_ours = headers(&[("cookie", "atrium_access=t")]);
        let out = request_headers(
            &only_ours,
            &HeaderValue::from_static("h:1"),
            &HeaderValue::from_static("Basic x"),
            &Forwarded::default(),
        );
        assert!(out.get("cookie").is_none());
    }

    #[test]
    fn responses_lose_challenges_gateway_cookies_and_hop_by_hop_headers() {
        let mut h = headers(&[
            ("www-authenticate", "Basic realm=\"kasm\""),
            ("set-cookie", "atrium_access=evil; Path=/"),
            ("set-cookie", "vnc_state=1; Path=/"),
            ("connection", "close"),
            ("transfer-encoding", "chunked"),
            ("location", "/vnc.html?autoconnect=1"),
            ("content-type", "text/html"),
        ]);
        response_headers(&mut h, "172.17.0.1:32768", &prefix(id()));
        assert!(h.get("www-authenticate").is_none());
        assert!(h.get("connection").is_none());
        assert!(h.get("transfer-encoding").is_none());
        let cookies: Vec<_> = h.get_all("set-cookie").iter().collect();
        assert_eq!(cookies, ["vnc_state=1; Path=/"]);
        assert_eq!(
            h["location"],
            format!("/session/{ID}/vnc.html?autoconnect=1")
        );
        assert_eq!(h["content-type"], "text/html");
    }

    #[test]
    fn redirects_into_the_container_stay_under_the_prefix() {
        let p = prefix(id());
        let up = "172.17.0.1:32768";
        assert_eq!(map_location("/x", up, &p), Some(format!("{p}/x")));
        assert_eq!(
            map_location("https://172.17.0.1:32768/a?b", up, &p),
            Some(format!("{p}/a?b"))
        );
        assert_eq!(
            map_location("https://172.17.0.1:32768", up, &p),
            Some(format!("{p}/"))
        );
        assert_eq!(
            map_location("https://172.17.0.1:32768?q", up, &p),
            Some(format!("{p}/?q"))
        );
        assert_eq!(map_location("https://elsewhere.example/x", up, &p), None);
        assert_eq!(map_location("//elsewhere.example/x", up, &p), None);
        assert_eq!(map_location("relative/x", up, &p), None);
    }

    #[test]
    fn ipv6_hosts_get_brackets() {
        assert_eq!(authority("10.0.0.1", 443), "10.0.0.1:443");
        assert_eq!(authority("::1", 6901), "[::1]:6901");
        assert_eq!(authority("[::1]", 6901), "[::1]:6901");
    }

    #[test]
    fn websocket_requests_are_recognised() {
        assert!(is_websocket(&headers(&[("upgrade", "WebSocket")])));
        assert!(!is_websocket(&headers(&[("upgrade", "h2c")])));
        assert!(!is_websocket(&HeaderMap::new()));
    }

    #[test]
    fn origin_must_be_the_gateway_itself() {
        let host = ("host", "gw.example:8443");
        assert!(same_origin(&headers(&[host]), None));
        assert!(same_origin(
            &headers(&[host, ("origin", "https://gw.example:8443")]),
            None
        ));
        assert!(!same_origin(
            &headers(&[host, ("origin", "https://evil.example")]),
            None
        ));
        assert!(!same_origin(&headers(&[host, ("origin", "null")]), None));
        // HTTP/2: the authority comes from the URI.
        assert!(same_origin(
            &headers(&[("origin", "https://gw.example:8443")]),
            Some("gw.example:8443")
        ));
    }
}
