//! Where a client that opens a connection of its own subscribes: the
//! WebSocket client and the HTTP/2 server-push client speak to the socket
//! themselves, past [`HttpClient`](crate::HttpClient)'s pool.

use http::Uri;
use tokio::net::TcpStream;

use crate::transport::OpenError;

/// One subscription's target, taken from the base URL.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Target {
    /// `host:port` of the base URL, the port 80 when it has none.
    pub(super) authority: String,
    /// The base URL's path prefix, without a trailing `/` (empty for none).
    pub(super) prefix: String,
    /// The prefix, `/channels/{channel}/{segment}` and the query.
    pub(super) path: String,
}

impl Target {
    /// The target of `segment` of `channel` under `base`, asking `query`.
    ///
    /// # Errors
    ///
    /// [`OpenError::Failed`] when `base` is not an `http://` URL with a host:
    /// these clients speak cleartext HTTP/1.1 and h2c only.
    pub(super) fn new(
        base: &str,
        channel: &str,
        segment: &str,
        query: &str,
    ) -> Result<Target, OpenError> {
        let uri: Uri = base
            .parse()
            .map_err(|e| OpenError::Failed(format!("bad base URL {base}: {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(OpenError::Failed(format!(
                "this client speaks cleartext HTTP/1.1 and h2c: the base URL must be http://, not {base}"
            )));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| OpenError::Failed(format!("base URL without a host: {base}")))?;
        let authority = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(80)
        );
        let prefix = uri.path().trim_end_matches('/').to_owned();
        let mut path = format!("{prefix}/channels/{channel}/{segment}");
        if !query.is_empty() {
            path.push('?');
            path.push_str(query);
        }
        Ok(Target {
            authority,
            prefix,
            path,
        })
    }

    /// The target as a URL of `scheme`.
    pub(super) fn url(&self, scheme: &str) -> String {
        format!("{scheme}://{}{}", self.authority, self.path)
    }

    /// A TCP connection to the target, with Nagle's algorithm off.
    ///
    /// # Errors
    ///
    /// [`OpenError::Failed`] when the connection cannot be made.
    pub(super) async fn connect(&self) -> Result<TcpStream, OpenError> {
        let failed = |e: std::io::Error| {
            OpenError::Failed(format!("cannot connect to {}: {e}", self.authority))
        };
        let stream = TcpStream::connect(&self.authority).await.map_err(failed)?;
        stream.set_nodelay(true).map_err(failed)?;
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(base: &str, query: &str) -> Result<Target, OpenError> {
        Target::new(base, "news", "ws", query)
    }

    #[test]
    fn target_is_the_base_with_its_prefix_and_the_query() {
        let t = target("http://127.0.0.1:8080", "").unwrap();
        assert_eq!(t.authority, "127.0.0.1:8080");
        assert_eq!(t.prefix, "");
        assert_eq!(t.url("ws"), "ws://127.0.0.1:8080/channels/news/ws");
        let t = target("http://example.com/push/", "after=e-3").unwrap();
        assert_eq!(t.authority, "example.com:80");
        assert_eq!(t.prefix, "/push");
        assert_eq!(
            t.url("http"),
            "http://example.com:80/push/channels/news/ws?after=e-3"
        );
        let t = target("http://[::1]:9000/a/b", "from=earliest").unwrap();
        assert_eq!(t.authority, "[::1]:9000");
        assert_eq!(t.path, "/a/b/channels/news/ws?from=earliest");
        let t = Target::new("http://h:1", "c", "push", "").unwrap();
        assert_eq!(t.path, "/channels/c/push");
    }

    #[test]
    fn only_cleartext_http_bases() {
        for base in [
            "https://example.com",
            "ws://example.com",
            "example.com",
            "/push",
        ] {
            assert!(
                matches!(target(base, ""), Err(OpenError::Failed(_))),
                "{base}"
            );
        }
    }
}
