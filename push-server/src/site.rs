//! What push-server serves: the demo page, the browser client and the wire
//! protocol, on one port.

use std::convert::Infallible;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use push_core::Channels;
use push_tower::client::{self, StaticFile};
use push_tower::router::Router;
use push_tower::{PushBody, ResponseFuture};

/// The demo page: one column per browser technique, each subscribed with
/// `push.js` alone, side by side, and a form to publish text or a file.
pub const DEMO_PAGE: &str = include_str!("../assets/demo.html");

/// The demo page at `/`, the browser client ([`client::SCRIPT`]) at
/// `/client/push.js`, and everything else to the wire protocol's router.
///
/// ```
/// use http::Request;
/// use push_core::{Hub, HubConfig};
/// use push_server::Site;
/// use push_tower::{Config, Push};
/// use tower::ServiceExt;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let push = Push::new(Hub::new(HubConfig::default()), Config::default());
/// let site = Site::new(push.router());
/// let page = site.clone().oneshot(Request::get("/").body(String::new()).unwrap()).await.unwrap();
/// assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
/// let script = site.clone().oneshot(Request::get("/client/push.js").body(String::new()).unwrap());
/// assert_eq!(script.await.unwrap().headers()["content-type"], "text/javascript; charset=utf-8");
/// let health = site.oneshot(Request::get("/healthz").body(String::new()).unwrap()).await.unwrap();
/// assert_eq!(health.status(), 200);
/// # });
/// ```
pub struct Site<C = push_core::Hub> {
    router: Router<C>,
    page: StaticFile,
    script: StaticFile,
}

impl<C> Clone for Site<C> {
    fn clone(&self) -> Self {
        Site {
            router: self.router.clone(),
            page: self.page.clone(),
            script: self.script.clone(),
        }
    }
}

impl<C: Channels> Site<C> {
    /// The site in front of `router`.
    pub fn new(router: Router<C>) -> Self {
        Site {
            router,
            page: StaticFile::new(DEMO_PAGE.as_bytes(), "text/html; charset=utf-8"),
            script: client::script(),
        }
    }
}

impl<C, B> tower_service::Service<Request<B>> for Site<C>
where
    C: Channels,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<PushBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        match request.uri().path() {
            "/" => self.page.call(request),
            "/client/push.js" => self.script.call(request),
            _ => self.router.call(request),
        }
    }
}

impl<C> std::fmt::Debug for Site<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("router", &self.router)
            .finish()
    }
}
