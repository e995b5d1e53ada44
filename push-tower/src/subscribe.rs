//! The subscribe step, the one place a request becomes a start position and
//! a subscription: the query, `Last-Event-ID` and their precedence are read
//! and every error is found before any stream starts.

use http::{HeaderMap, Request};
use push_core::wire::WireError;
use push_core::{ChannelName, Channels, Start};

use crate::request::{self, Query};

/// A checked request to subscribe: the channel and where to start.
#[derive(Debug)]
pub(crate) struct Subscribe {
    channel: ChannelName,
    start: Start,
}

impl Subscribe {
    /// Reads the start position of `request`: `Last-Event-ID` > `?after=` >
    /// `?from=earliest` > now.
    pub(crate) fn from_request<B>(
        channel: ChannelName,
        request: &Request<B>,
    ) -> Result<Self, WireError> {
        Self::with_query(channel, request.headers(), Query::parse(request.uri())?)
    }

    /// As [`Subscribe::from_request`], with the query already parsed.
    pub(crate) fn with_query(
        channel: ChannelName,
        headers: &HeaderMap,
        query: Query,
    ) -> Result<Self, WireError> {
        let start = request::start(headers, &query)?;
        Ok(Subscribe { channel, start })
    }

    /// Subscribes on `channels`; a refusal (`cursor_ahead`, the cap on
    /// channels, a failing store) is a wire error, still before any stream.
    pub(crate) async fn on<C: Channels>(&self, channels: &C) -> Result<C::Subscription, WireError> {
        channels
            .subscribe(&self.channel, self.start)
            .await
            .map_err(WireError::from)
    }
}
