//! The tower layer that authenticates every gRPC request before it reaches a handler.

use std::collections::HashSet;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use tonic::body::Body;
use tower::{Layer, Service};

use super::{Authenticator, Credential, Principal};
use crate::error::ApiError;
use crate::tls::PeerInfo;

/// Paths that anyone may call: health, reflection, and what a service declares public.
#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Authenticator,
    public: Arc<HashSet<String>>,
}

impl AuthLayer {
    /// `public_methods` are full gRPC paths (`/atrium.identity.v1.IdentityService/Login`).
    pub fn new(
        authenticator: Authenticator,
        public_methods: impl IntoIterator<Item = String>,
    ) -> Self {
        Self {
            authenticator,
            public: Arc::new(public_methods.into_iter().collect()),
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    layer: AuthLayer,
}

fn always_public(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.")
}

impl<S> Service<http::Request<Body>> for AuthService<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<Body>) -> Self::Future {
        // The clone is not ready; take the ready one and leave the clone behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let path = request.uri().path();
            let peer_service = request
                .extensions()
                .get::<PeerInfo>()
                .and_then(|peer| peer.service);
            let public = always_public(path) || layer.public.contains(path);
            let credential = match request.headers().get(http::header::AUTHORIZATION) {
                None => None,
                Some(value) => match value.to_str().ok().and_then(Credential::parse) {
                    Some(c) => Some(c),
                    None if public => None,
                    None => {
                        return Ok(reject(ApiError::Unauthenticated(
                            "authorization metadata must be `Bearer <token>` or `ApiKey <id>:<secret>`"
                                .into(),
                        )));
                    }
                },
            };
            match credential {
                // A credential in the call wins over the connection's certificate: a service
                // may forward a user's token and act as that user.
                Some(credential) => match layer.authenticator.authenticate(&credential).await {
                    Ok(principal) => {
                        request.extensions_mut().insert(principal);
                    }
                    // A public call with a stale credential still goes through, anonymously.
                    Err(_) if public => {}
                    Err(error) => return Ok(reject(error)),
                },
                // A service proven by its client certificate, within its row of the table.
                None => match peer_service {
                    Some(service) if service.may_call(path) => {
                        request.extensions_mut().insert(Principal::Service(service));
                    }
                    None | Some(_) if public => {}
                    Some(service) => {
                        return Ok(reject(ApiError::PermissionDenied(format!(
                            "service {service} may not call {path}"
                        ))));
                    }
                    None => {
                        return Ok(reject(ApiError::Unauthenticated(
                            "authentication required".into(),
                        )));
                    }
                },
            }
            inner.call(request).await
        })
    }
}

fn reject(error: ApiError) -> http::Response<Body> {
    tonic::Status::from(error).into_http()
}
