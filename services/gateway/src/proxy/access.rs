//! Who may reach which session's container, and where it is: remembered briefly so a proxied
//! request costs no gRPC call, and forgotten at once when the session stops running.
//!
//! - A *grant* (a session and a credential's fingerprint) comes from `GetSession` called with the
//!   caller's own credential (the session-manager decides who may see a session: its owner and
//!   holders of `sessions.view`). It is trusted for [`GRANT_TTL`], then asked again.
//! - An [`Upstream`] (the container's address, the per-session basic-auth secret from
//!   `GetSessionSecret`, a connection pool of its own) lives while the session runs and is used.
//!   One `WatchSession` stream under the gateway's identity follows each; when the session leaves
//!   the running state (deleting, deleted, failed, paused, stopped…) the upstream is dropped and
//!   its [`Upstream::ended`] token closes every proxied connection of the session. While that
//!   stream is broken, grants are not trusted: every request asks `GetSession` again.
//! - An upstream unused for [`UPSTREAM_IDLE`] with no open connection is dropped, and its watch
//!   stream ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use atrium_proto::session::v1::{self as pb, DesiredState, ObservedState};
use atrium_service_kit::auth::Credential;
use atrium_service_kit::http::HttpError;
use base64::Engine as _;
use http::{HeaderValue, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Digest as _;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use uuid::Uuid;

use atrium_proto::policy::v1::setting_value::Kind;

use crate::backends::Backends;
use crate::proxy::rewrite;

/// How long a caller's right to a session is trusted without asking the session-manager.
pub const GRANT_TTL: Duration = Duration::from_secs(10);
/// An upstream with no request and no open connection for this long is forgotten.
pub const UPSTREAM_IDLE: Duration = Duration::from_secs(60);
/// Idle pooled connections to a container close after this long.
const POOL_IDLE: Duration = Duration::from_secs(30);
/// How often a watch checks whether its upstream went idle.
const IDLE_CHECK: Duration = Duration::from_secs(5);

pub type HttpClient = Client<HttpsConnector<HttpConnector>, axum::body::Body>;

/// A running session's container, as the proxy reaches it.
pub struct Upstream {
    pub id: Uuid,
    /// `host:port` of the container's 6901.
    pub authority: String,
    pub authority_header: HeaderValue,
    pub host: String,
    pub port: u16,
    /// `Basic base64(username:password)`, marked sensitive.
    pub basic_auth: HeaderValue,
    /// This session's own pool: its connections are never shared with another session (a
    /// container's host port may be reused by the next one) and close when it is dropped.
    pub client: HttpClient,
    /// Fires when the session stops running (or the upstream is forgotten): every proxied
    /// connection of the session ends.
    pub ended: CancellationToken,
    /// Credential fingerprint → trusted until, and that caller's own idle limit.
    grants: Mutex<HashMap<[u8; 32], Grant>>,
    /// The watch stream is live: a change of state would have reached us.
    watched: AtomicBool,
    /// Milliseconds since `Access::epoch` of the last request.
    last_used: AtomicU64,
    open: AtomicUsize,
}

/// A caller's right to a session, as remembered.
#[derive(Debug, Clone, Copy)]
struct Grant {
    until: Instant,
    /// The caller's effective `idle_disconnect`, when they have one.
    idle: Option<Duration>,
}

impl Upstream {
    /// The caller's idle limit (`Some(None)`: none of their own) while their grant is fresh.
    fn granted(&self, fingerprint: &[u8; 32], now: Instant) -> Option<Option<Duration>> {
        if !self.watched.load(Ordering::Acquire) || self.ended.is_cancelled() {
            return None;
        }
        self.grants
            .lock()
            .ok()
            .and_then(|g| g.get(fingerprint).copied())
            .filter(|grant| grant.until > now)
            .map(|grant| grant.idle)
    }

    fn grant(&self, fingerprint: [u8; 32], now: Instant, idle: Option<Duration>) {
        if let Ok(mut grants) = self.grants.lock() {
            if grants.len() >= 64 {
                grants.retain(|_, grant| grant.until > now);
            }
            grants.insert(
                fingerprint,
                Grant {
                    until: now + GRANT_TTL,
                    idle,
                },
            );
        }
    }

    /// Counts an open connection until the guard drops.
    pub fn open(self: &Arc<Self>) -> OpenGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        OpenGuard(self.clone())
    }

    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

/// One open proxied connection (a WebSocket, a response body being streamed).
pub struct OpenGuard(Arc<Upstream>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The session-manager's answer for a caller and a session.
pub struct Access {
    backends: Backends,
    connector: HttpsConnector<HttpConnector>,
    upstreams: Mutex<HashMap<Uuid, Arc<Upstream>>>,
    epoch: Instant,
}

/// A fingerprint of a credential (grants are per credential, not per user: a narrower API key
/// of the same user gets its own answer).
pub fn fingerprint(credential: &Credential) -> [u8; 32] {
    let mut hash = sha2::Sha256::new();
    match credential {
        Credential::Bearer(t) => {
            hash.update(b"bearer\0");
            hash.update(t.as_bytes());
        }
        Credential::ApiKey { id, secret } => {
            hash.update(b"apikey\0");
            hash.update(id.as_bytes());
            hash.update(b"\0");
            hash.update(secret.as_bytes());
        }
    }
    hash.finalize().into()
}

/// Whether a session in this state is proxied; `Err` says how to answer otherwise.
pub fn check_state(session: &pb::Session) -> Result<(), HttpError> {
    let desired = DesiredState::try_from(session.desired_state).unwrap_or_default();
    let observed = ObservedState::try_from(session.observed_state).unwrap_or_default();
    if desired == DesiredState::Deleted
        || matches!(
            observed,
            ObservedState::Deleting | ObservedState::Deleted | ObservedState::Failed
        )
    {
        // Gone, or going: exactly as if it never existed.
        return Err(HttpError::not_found("session"));
    }
    if desired == DesiredState::Running && observed == ObservedState::Running {
        return Ok(());
    }
    let state = observed
        .as_str_name()
        .trim_start_matches("OBSERVED_STATE_")
        .to_ascii_lowercase();
    Err(HttpError::new(
        StatusCode::CONFLICT,
        "failed_precondition",
        format!("session is {state}: only a running session can be opened"),
    ))
}

/// Whether a watched session still is one the proxy serves.
fn still_running(session: &pb::Session) -> bool {
    session.desired_state == DesiredState::Running as i32
        && session.observed_state == ObservedState::Running as i32
}

/// A session-manager refusal as the proxy answers it: whatever means "you may not see it" is the
/// same 404 as a session that does not exist.
fn refusal(status: tonic::Status) -> HttpError {
    match status.code() {
        Code::NotFound | Code::PermissionDenied | Code::InvalidArgument => {
            HttpError::not_found("session")
        }
        _ => status.into(),
    }
}

impl Access {
    pub fn new(backends: Backends, connector: HttpsConnector<HttpConnector>) -> Self {
        Self {
            backends,
            connector,
            upstreams: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The session's upstream, if `credential` may reach it, and the caller's own idle limit
    /// (their effective `idle_disconnect`, if they have one): from memory when a fresh grant is
    /// there, else from the session-manager and policy.
    pub async fn upstream(
        self: &Arc<Self>,
        id: Uuid,
        credential: &Credential,
    ) -> Result<(Arc<Upstream>, Option<Duration>), HttpError> {
        let fingerprint = fingerprint(credential);
        let now = Instant::now();
        let known = self.upstreams.lock().ok().and_then(|m| m.get(&id).cloned());
        if let Some(upstream) = &known
            && let Some(idle) = upstream.granted(&fingerprint, now)
        {
            upstream.last_used.store(self.now_ms(), Ordering::Relaxed);
            return Ok((upstream.clone(), idle));
        }
        // Asked with the caller's credential: the session-manager decides who sees it.
        let mut sessions = self.backends.session(credential)?;
        let (session, idle) = tokio::join!(
            sessions.get_session(pb::GetSessionRequest {
                session_id: id.to_string(),
            }),
            self.idle_disconnect(credential),
        );
        let session = session.map_err(refusal)?.into_inner();
        check_state(&session)?;
        let port = u16::try_from(session.port).unwrap_or(0);
        let upstream = match known {
            Some(u) if !u.ended.is_cancelled() && u.host == session.host && u.port == port => u,
            _ => self.connect(id).await?,
        };
        upstream.grant(fingerprint, now, idle);
        upstream.last_used.store(self.now_ms(), Ordering::Relaxed);
        Ok((upstream, idle))
    }

    /// The caller's effective `idle_disconnect` (minutes; 0 or unset: none), asked of policy
    /// with their own credential. Not knowing it is no reason to refuse the session: the
    /// gateway's own idle timeout still applies.
    async fn idle_disconnect(&self, credential: &Credential) -> Option<Duration> {
        let mut policy = self.backends.policy(credential).ok()?;
        let effective = match policy
            .resolve_effective_policy(atrium_proto::policy::v1::ResolveEffectivePolicyRequest {
                user_id: String::new(),
            })
            .await
        {
            Ok(answer) => answer.into_inner(),
            Err(status) => {
                tracing::debug!(%status, "proxy: the caller's idle_disconnect is unknown");
                return None;
            }
        };
        let minutes = effective
            .settings
            .iter()
            .find(|s| s.name == "idle_disconnect")
            .and_then(|s| s.value.as_ref())
            .and_then(|v| match v.kind {
                Some(Kind::FloatValue(f)) => Some(f),
                Some(Kind::IntValue(i)) => Some(i as f64),
                _ => None,
            })?;
        idle_limit(minutes)
    }

    /// Reads the session's secret and address under the gateway's identity, and starts watching
    /// the session (unless another request just did).
    async fn connect(self: &Arc<Self>, id: Uuid) -> Result<Arc<Upstream>, HttpError> {
        let secret = self
            .backends
            .session_as_gateway()
            .get_session_secret(pb::SessionRef {
                session_id: id.to_string(),
            })
            .await
            .map_err(refusal)?
            .into_inner();
        let port = u16::try_from(secret.port).ok().filter(|p| *p != 0);
        let (Some(port), false) = (port, secret.host.is_empty()) else {
            return Err(HttpError::not_found("session"));
        };
        let authority = rewrite::authority(&secret.host, port);
        let authority_header = HeaderValue::from_str(&authority)
            .map_err(|_| HttpError::new(StatusCode::BAD_GATEWAY, "upstream", "bad address"))?;
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", secret.username, secret.password));
        let mut basic_auth = HeaderValue::from_str(&format!("Basic {encoded}"))
            .map_err(|_| HttpError::new(StatusCode::BAD_GATEWAY, "upstream", "bad secret"))?;
        basic_auth.set_sensitive(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(64)
            .build(self.connector.clone());
        let fresh = Arc::new(Upstream {
            id,
            authority,
            authority_header,
            host: secret.host,
            port,
            basic_auth,
            client,
            ended: CancellationToken::new(),
            grants: Mutex::new(HashMap::new()),
            watched: AtomicBool::new(false),
            last_used: AtomicU64::new(self.now_ms()),
            open: AtomicUsize::new(0),
        });
        let Ok(mut upstreams) = self.upstreams.lock() else {
            return Err(HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            ));
        };
        if let Some(existing) = upstreams.get(&id)
            && !existing.ended.is_cancelled()
            && existing.host == fresh.host
            && existing.port == fresh.port
        {
            return Ok(existing.clone());
        }
        if let Some(old) = upstreams.insert(id, fresh.clone()) {
            // Moved (a resume on another port): the old address's connections end.
            old.ended.cancel();
        }
        drop(upstreams);
        tokio::spawn(watch(Arc::downgrade(self), fresh.clone()));
        Ok(fresh)
    }

    /// Forgets `upstream` (not a newer one of the same session) and ends its connections.
    fn forget(&self, upstream: &Arc<Upstream>) {
        if let Ok(mut upstreams) = self.upstreams.lock()
            && upstreams
                .get(&upstream.id)
                .is_some_and(|u| Arc::ptr_eq(u, upstream))
        {
            upstreams.remove(&upstream.id);
        }
        upstream.ended.cancel();
    }

    fn idle(&self, upstream: &Upstream) -> bool {
        let last = upstream.last_used.load(Ordering::Relaxed);
        upstream.open_connections() == 0
            && self.now_ms().saturating_sub(last) >= millis(UPSTREAM_IDLE)
    }

    /// How many sessions the proxy holds an upstream for (tests, metrics).
    pub fn upstream_count(&self) -> usize {
        self.upstreams.lock().map(|m| m.len()).unwrap_or(0)
    }
}

/// `idle_disconnect` minutes as a limit: none for 0 (or nonsense).
pub fn idle_limit(minutes: f64) -> Option<Duration> {
    (minutes.is_finite() && minutes > 0.0)
        .then(|| Duration::try_from_secs_f64(minutes * 60.0).ok())
        .flatten()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Follows the session until it stops running, the upstream goes idle or the gateway drops its
/// state; reconnects (with grants distrusted meanwhile) when the stream breaks.
async fn watch(access: Weak<Access>, upstream: Arc<Upstream>) {
    let id = upstream.id;
    let mut backoff = Duration::from_millis(100);
    let mut check = tokio::time::interval(IDLE_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let Some(strong) = access.upgrade() else {
            return upstream.ended.cancel();
        };
        let mut sessions = strong.backends.session_as_gateway();
        drop(strong);
        let opened = tokio::select! {
            () = upstream.ended.cancelled() => return,
            opened = sessions.watch_session(pb::GetSessionRequest { session_id: id.to_string() }) => opened,
        };
        let mut stream = match opened {
            Ok(s) => s.into_inner(),
            Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {
                return end(&access, &upstream);
            }
            Err(status) => {
                tracing::warn!(session_id = %id, error = %status, "proxy: watching the session failed; retrying");
                tokio::select! {
                    () = upstream.ended.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        loop {
            tokio::select! {
                () = upstream.ended.cancelled() => return,
                _ = check.tick() => {
                    let Some(strong) = access.upgrade() else {
                        return upstream.ended.cancel();
                    };
                    if strong.idle(&upstream) {
                        return strong.forget(&upstream);
                    }
                }
                message = stream.message() => match message {
                    Ok(Some(session)) if still_running(&session) => {
                        upstream.watched.store(true, Ordering::Release);
                        backoff = Duration::from_millis(100);
                    }
                    // Not running any more, or the stream ended (the session reached a final
                    // state).
                    Ok(_) => return end(&access, &upstream),
                    Err(status) => {
                        upstream.watched.store(false, Ordering::Release);
                        tracing::warn!(session_id = %id, error = %status, "proxy: session watch broke; reconnecting");
                        break;
                    }
                },
            }
        }
        upstream.watched.store(false, Ordering::Release);
        tokio::select! {
            () = upstream.ended.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn end(access: &Weak<Access>, upstream: &Arc<Upstream>) {
    match access.upgrade() {
        Some(access) => access.forget(upstream),
        None => upstream.ended.cancel(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_disconnect_minutes_become_a_limit_and_zero_means_none() {
        assert_eq!(idle_limit(20.0), Some(Duration::from_secs(1200)));
        assert_eq!(idle_limit(0.5), Some(Duration::from_secs(30)));
        assert_eq!(idle_limit(0.0), None);
        assert_eq!(idle_limit(-1.0), None);
        assert_eq!(idle_limit(f64::NAN), None);
        assert_eq!(idle_limit(f64::INFINITY), None);
        assert_eq!(idle_limit(1e300), None);
    }

    fn session(desired: DesiredState, observed: ObservedState) -> pb::Session {
        pb::Session {
            desired_state: desired as i32,
            observed_state: observed as i32,
            ..Default::default()
        }
    }

    #[test]
    fn only_a_running_session_is_proxied_and_an_ending_one_is_not_found() {
        assert!(check_state(&session(DesiredState::Running, ObservedState::Running)).is_ok());
        for (desired, observed) in [
            (DesiredState::Deleted, ObservedState::Running),
            (DesiredState::Deleted, ObservedState::Deleting),
            (DesiredState::Running, ObservedState::Deleted),
            (DesiredState::Running, ObservedState::Failed),
        ] {
            let e = check_state(&session(desired, observed)).expect_err("refused");
            assert_eq!(
                e,
                HttpError::not_found("session"),
                "{desired:?} {observed:?}"
            );
        }
        for (desired, observed, word) in [
            (DesiredState::Running, ObservedState::Starting, "starting"),
            (DesiredState::Paused, ObservedState::Paused, "paused"),
            (DesiredState::Paused, ObservedState::Running, "running"),
            (DesiredState::Stopped, ObservedState::Stopped, "stopped"),
        ] {
            let e = check_state(&session(desired, observed)).expect_err("refused");
            assert_eq!(e.status, StatusCode::CONFLICT);
            assert!(e.message.contains(word), "{}", e.message);
        }
    }

    #[test]
    fn refusals_that_would_reveal_a_session_are_not_found() {
        let nf = HttpError::not_found("session");
        assert_eq!(refusal(tonic::Status::not_found("session x")), nf);
        assert_eq!(refusal(tonic::Status::permission_denied("not yours")), nf);
        assert_eq!(refusal(tonic::Status::invalid_argument("id")), nf);
        assert_eq!(
            refusal(tonic::Status::unavailable("down")).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn fingerprints_differ_per_credential() {
        let a = fingerprint(&Credential::Bearer("t".into()));
        let b = fingerprint(&Credential::Bearer("u".into()));
        let k = fingerprint(&Credential::ApiKey {
            id: "t".into(),
            secret: String::new(),
        });
        assert_ne!(a, b);
        assert_ne!(a, k);
        assert_eq!(a, fingerprint(&Credential::Bearer("t".into())));
    }
}
