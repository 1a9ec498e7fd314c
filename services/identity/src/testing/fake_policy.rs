//! A stand-in for the policy service in identity's tests: it answers the calls identity makes
//! (effective permissions, effective policy, user lifecycle) from a table the test controls, and
//! `Unimplemented` for everything else. Routing by path (rather than implementing the generated
//! trait) keeps it independent of policy's other RPCs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use atrium_proto::policy::v1 as ppb;
use atrium_service_kit::Shutdown;
use atrium_service_kit::auth::Rights;
use futures::future::BoxFuture;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};

/// What the fake knows about one user.
#[derive(Debug, Clone)]
pub struct FakeUser {
    pub rights: Rights,
    pub require_2fa: bool,
    pub allow_2fa_self_enrollment: bool,
    pub allow_totp_2fa: bool,
}

impl Default for FakeUser {
    fn default() -> Self {
        // The catalogue defaults.
        FakeUser {
            rights: Rights::default(),
            require_2fa: false,
            allow_2fa_self_enrollment: false,
            allow_totp_2fa: true,
        }
    }
}

/// A running fake policy service. Cheap to clone; stops with its [`Shutdown`].
#[derive(Clone, Default)]
pub struct FakePolicy {
    users: Arc<Mutex<HashMap<String, FakeUser>>>,
    /// When set, every call fails with Unavailable (policy down).
    down: Arc<std::sync::atomic::AtomicBool>,
}

impl FakePolicy {
    /// Serves on an ephemeral port until `shutdown` fires.
    pub async fn start(shutdown: Shutdown) -> anyhow::Result<(FakePolicy, SocketAddr)> {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let fake = FakePolicy::default();
        let service = FakePolicyService(fake.clone());
        // Like the real policy service: TLS with policy's certificate from the test CA.
        let tls = atrium_service_kit::testing::tls_for(atrium_service_kit::auth::ServiceId::Policy)
            .server("policy")?;
        tokio::spawn(async move {
            let incoming = atrium_service_kit::tls::incoming(listener, tls);
            let served = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, async move { shutdown.wait().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "fake policy server failed");
            }
        });
        Ok((fake, addr))
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, FakeUser>) -> R) -> R {
        f(&mut self.users.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Sets a user's effective rights.
    pub fn set_rights(&self, user_id: &str, rights: Rights) {
        self.with(|users| users.entry(user_id.to_owned()).or_default().rights = rights);
    }

    /// Changes a user's effective settings.
    pub fn update(&self, user_id: &str, f: impl FnOnce(&mut FakeUser)) {
        self.with(|users| f(users.entry(user_id.to_owned()).or_default()));
    }

    pub fn rights(&self, user_id: &str) -> Rights {
        self.with(|users| {
            users
                .get(user_id)
                .map(|u| u.rights.clone())
                .unwrap_or_default()
        })
    }

    /// Whether some user is an administrator (the bootstrap admin has been reported).
    pub fn has_administrator(&self) -> bool {
        self.with(|users| users.values().any(|u| u.rights.administrator))
    }

    /// Makes every call fail with Unavailable (or answer again).
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    fn check_up(&self) -> Result<(), Status> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            Err(Status::unavailable("fake policy is down"))
        } else {
            Ok(())
        }
    }

    fn permissions(&self, user_id: &str) -> Result<ppb::EffectivePermissions, Status> {
        self.check_up()?;
        let rights = self.rights(user_id);
        let permissions = if rights.administrator {
            atrium_service_kit::auth::permissions::all()
                .map(str::to_owned)
                .collect()
        } else {
            rights.permissions.iter().cloned().collect()
        };
        Ok(ppb::EffectivePermissions {
            user_id: user_id.to_owned(),
            administrator: rights.administrator,
            permissions,
        })
    }

    fn policy(&self, user_id: &str) -> Result<ppb::EffectivePolicy, Status> {
        self.check_up()?;
        let user = self.with(|users| users.get(user_id).cloned().unwrap_or_default());
        let flag = |name: &str, value: bool| ppb::EffectiveSetting {
            name: name.to_owned(),
            value: Some(ppb::SettingValue {
                kind: Some(ppb::setting_value::Kind::BoolValue(value)),
            }),
            is_default: false,
        };
        Ok(ppb::EffectivePolicy {
            user_id: user_id.to_owned(),
            settings: vec![
                flag("require_2fa", user.require_2fa),
                flag("allow_2fa_self_enrollment", user.allow_2fa_self_enrollment),
                flag("allow_totp_2fa", user.allow_totp_2fa),
            ],
        })
    }

    fn lifecycle(&self, created: bool, req: &ppb::UserLifecycleRequest) -> Result<(), Status> {
        self.check_up()?;
        self.with(|users| {
            if created {
                let user = users.entry(req.user_id.clone()).or_default();
                if req.administrator {
                    user.rights = Rights::all();
                }
            } else {
                users.remove(&req.user_id);
            }
        });
        Ok(())
    }
}

#[derive(Clone)]
struct FakePolicyService(FakePolicy);

impl NamedService for FakePolicyService {
    const NAME: &'static str = "atrium.policy.v1.PolicyService";
}

/// Runs one unary method with the prost codec.
fn unary<Req, Resp>(
    request: http::Request<Body>,
    handler: impl Fn(Req) -> Result<Resp, Status> + Clone + Send + Sync + 'static,
) -> BoxFuture<'static, Result<http::Response<Body>, Infallible>>
where
    Req: prost::Message + Default + Send + 'static,
    Resp: prost::Message + Send + 'static,
{
    let method = tower::service_fn(move |req: Request<Req>| {
        let handler = handler.clone();
        async move { handler(req.into_inner()).map(Response::new) }
    });
    Box::pin(async move {
        let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<Resp, Req>::default());
        Ok(grpc.unary(method, request).await)
    })
}

impl tower::Service<http::Request<Body>> for FakePolicyService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let fake = self.0.clone();
        let method = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        match method.as_str() {
            "GetEffectivePermissions" => {
                unary(request, move |r: ppb::GetEffectivePermissionsRequest| {
                    fake.permissions(&r.user_id)
                })
            }
            "ResolveEffectivePolicy" => {
                unary(request, move |r: ppb::ResolveEffectivePolicyRequest| {
                    fake.policy(&r.user_id)
                })
            }
            "UserCreated" => unary(request, move |r: ppb::UserLifecycleRequest| {
                fake.lifecycle(true, &r)
                    .map(|()| ppb::UserLifecycleResponse {})
            }),
            "UserDeleted" => unary(request, move |r: ppb::UserLifecycleRequest| {
                fake.lifecycle(false, &r)
                    .map(|()| ppb::UserLifecycleResponse {})
            }),
            _ => Box::pin(async move {
                Ok(
                    Status::unimplemented(format!("the fake policy does not answer {method}"))
                        .into_http(),
                )
            }),
        }
    }
}

/// Stops the fake policy server when dropped.
pub struct FakePolicyGuard(Shutdown);

impl Drop for FakePolicyGuard {
    fn drop(&mut self) {
        self.0.trigger();
    }
}

/// Starts identity wired to a fake policy service (`policy_endpoint` set), and waits until the
/// bootstrap administrator has reached it through the outbox.
pub async fn start_identity_with_policy(
    backend: atrium_service_kit::testing::Backend,
    tweak: impl FnOnce(&mut crate::IdentityConfig),
) -> anyhow::Result<(super::TestIdentity, FakePolicy, FakePolicyGuard)> {
    let shutdown = Shutdown::new();
    let (fake, addr) = FakePolicy::start(shutdown.clone()).await?;
    let identity = super::TestIdentity::start_with(backend, |config| {
        config.policy_endpoint = Some(format!("https://{addr}"));
        config.permissions_cache_ttl_ms = 0;
        tweak(config);
    })
    .await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !fake.has_administrator() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the bootstrap administrator never reached the fake policy"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok((identity, fake, FakePolicyGuard(shutdown)))
}
