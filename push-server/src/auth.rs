//! push-server's built-in authorization: a shared secret that publishers
//! (and whoever closes channels) send as a bearer token, and, optionally,
//! signed tokens (JWT, HMAC-SHA256, with an expiry) naming the channels a
//! subscriber may read.
//!
//! A token travels as `Authorization: Bearer <token>` or, for the clients
//! that cannot set headers (a browser's `EventSource` and `WebSocket`), as
//! `?token=<token>`. Read tokens carry the claims `exp` (required, seconds
//! since the Unix epoch) and `channels`: names, or prefixes ending in `*`
//! (`"room-*"`), or `"*"` for every channel.
//!
//! ```
//! use jsonwebtoken::{encode, EncodingKey, Header};
//! use push_server::auth::{ReadClaims, TokenAuth};
//!
//! let auth = TokenAuth::new(Some("publish-secret".into()), Some(b"signing-key".to_vec()));
//! let claims = ReadClaims { exp: 4_102_444_800, channels: vec!["room-*".into()] };
//! let token = encode(&Header::default(), &claims, &EncodingKey::from_secret(b"signing-key")).unwrap();
//! assert!(auth.may_read(&token, "room-7").is_ok());
//! assert!(auth.may_read(&token, "news").is_err());
//! ```

use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use push_core::wire::WireError;
use push_tower::authorize::{Access, Authorize, Decision};
use serde::{Deserialize, Serialize};

/// The claims of a read token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadClaims {
    /// When the token expires, in seconds since the Unix epoch.
    pub exp: u64,
    /// The channels it may read: names, prefixes ending in `*`, or `*`.
    pub channels: Vec<String>,
}

impl ReadClaims {
    /// Whether the claims name `channel`.
    pub fn names(&self, channel: &str) -> bool {
        self.channels
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => channel.starts_with(prefix),
                None => pattern == channel,
            })
    }
}

/// The built-in [`Authorize`]: with a publish token, publishing and closing
/// need it; with a signing key, reading (subscribing with any technique,
/// reading an event, describing a channel) needs a read token naming the
/// channel, or the publish token. Without either, that side is open.
#[derive(Clone)]
pub struct TokenAuth {
    publish_token: Option<String>,
    read_key: Option<(DecodingKey, Validation)>,
}

impl TokenAuth {
    /// Publishing guarded by `publish_token`, reading by tokens signed with
    /// `read_key` (HS256); `None` leaves that side open.
    pub fn new(publish_token: Option<String>, read_key: Option<Vec<u8>>) -> Self {
        let read_key = read_key.map(|key| {
            let mut validation = Validation::new(Algorithm::HS256);
            validation.set_required_spec_claims(&["exp"]);
            (DecodingKey::from_secret(&key), validation)
        });
        TokenAuth {
            publish_token,
            read_key,
        }
    }

    /// What it guards, in a sentence for the server's log.
    pub fn describe(&self) -> &'static str {
        match (self.publish_token.is_some(), self.read_key.is_some()) {
            (true, true) => "publishing needs the publish token, reading a read token",
            (true, false) => "publishing needs the publish token; reading is open",
            (false, true) => "reading needs a read token; publishing is open",
            (false, false) => "publishing and reading are open",
        }
    }

    /// Whether `token` is the publish token; compared in constant time.
    fn is_publish_token(&self, token: &str) -> bool {
        self.publish_token.as_deref().is_some_and(|secret| {
            secret.len() == token.len()
                && secret
                    .bytes()
                    .zip(token.bytes())
                    .fold(0u8, |differs, (a, b)| differs | (a ^ b))
                    == 0
        })
    }

    /// Checks that `token` is a read token, valid now, naming `channel`.
    ///
    /// # Errors
    ///
    /// `401 unauthorized` for a token that is malformed, badly signed or
    /// expired (or when no signing key is set), `403 forbidden` for a valid
    /// one that does not name `channel`.
    pub fn may_read(&self, token: &str, channel: &str) -> Result<(), WireError> {
        let Some((key, validation)) = &self.read_key else {
            return Err(WireError::unauthorized(
                "this server takes no read tokens; send the publish token",
            ));
        };
        let claims = jsonwebtoken::decode::<ReadClaims>(token, key, validation)
            .map_err(|error| {
                WireError::unauthorized(match error.kind() {
                    ErrorKind::ExpiredSignature => {
                        "the read token has expired; get a new one and reconnect with your cursor"
                    }
                    ErrorKind::InvalidSignature => "the read token's signature does not match",
                    ErrorKind::MissingRequiredClaim(_) => {
                        "the read token has no `exp` claim; tokens must expire"
                    }
                    _ => "the read token is not a JWT signed with HS256 carrying `exp` and `channels`",
                })
            })?
            .claims;
        if claims.names(channel) {
            Ok(())
        } else {
            Err(WireError::forbidden(format!(
                "the read token does not name the channel `{channel}`; ask for one that does"
            )))
        }
    }

    fn decide(&self, access: &Access<'_>) -> Result<(), WireError> {
        let token = access.bearer_token();
        let guarded = if access.action().is_read() {
            self.read_key.is_some()
        } else {
            self.publish_token.is_some()
        };
        if !guarded {
            return Ok(());
        }
        let Some(token) = token else {
            return Err(WireError::unauthorized(if access.action().is_read() {
                "reading this server's channels needs a read token: send `Authorization: Bearer <token>` or `?token=<token>`"
            } else {
                "publishing and closing need the publish token: send `Authorization: Bearer <token>`"
            }));
        };
        if self.is_publish_token(&token) {
            return Ok(());
        }
        if access.action().is_read() {
            self.may_read(&token, access.channel().as_str())
        } else if self.read_key.is_some()
            && self.may_read(&token, access.channel().as_str()).is_ok()
        {
            Err(WireError::forbidden(
                "a read token may only read; publishing and closing need the publish token",
            ))
        } else {
            Err(WireError::unauthorized(
                "the token is not the publish token; publishing and closing need it",
            ))
        }
    }
}

impl Authorize for TokenAuth {
    fn authorize(&self, access: &Access<'_>) -> Decision {
        self.decide(access).into()
    }
}

impl fmt::Debug for TokenAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The secrets stay out of logs.
        f.debug_struct("TokenAuth")
            .field("publish_token", &self.publish_token.is_some())
            .field("read_tokens", &self.read_key.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_name_channels_by_name_prefix_or_all() {
        let claims = ReadClaims {
            exp: 0,
            channels: vec!["news".into(), "room-*".into()],
        };
        assert!(claims.names("news"));
        assert!(!claims.names("newsroom"));
        assert!(claims.names("room-"));
        assert!(claims.names("room-12"));
        assert!(!claims.names("rooms"));
        let every = ReadClaims {
            exp: 0,
            channels: vec!["*".into()],
        };
        assert!(every.names("anything"));
    }

    #[test]
    fn the_publish_token_must_match_exactly() {
        let auth = TokenAuth::new(Some("secret".into()), None);
        assert!(auth.is_publish_token("secret"));
        assert!(!auth.is_publish_token("secreT"));
        assert!(!auth.is_publish_token("secret "));
        assert!(!auth.is_publish_token(""));
        assert!(!TokenAuth::new(None, None).is_publish_token(""));
    }

    #[test]
    fn debug_shows_no_secret() {
        let auth = TokenAuth::new(Some("hunter2".into()), Some(b"key".to_vec()));
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
