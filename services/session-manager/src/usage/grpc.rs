//! [`UsageGate`] over billing-usage's gRPC API, dialled lazily with this service's identity
//! (mutual TLS), every call under a timeout.

use async_trait::async_trait;
use atrium_proto::usage::v1 as usage_pb;
use atrium_proto::usage::v1::usage_service_client::UsageServiceClient;
use atrium_service_kit::client::Dialer;
use atrium_service_kit::telemetry::OutgoingInterceptor;

use super::{CHECK_TIMEOUT, DELIVER_TIMEOUT, DeliveryError, Unavailable, UsageGate, UsageVerdict};
use crate::peers::Intercepted;

/// [`UsageGate`] over billing-usage's gRPC API, with this service's identity.
pub struct GrpcUsage {
    client: UsageServiceClient<Intercepted>,
}

impl GrpcUsage {
    /// Dials lazily: the session-manager starts while billing-usage is away.
    pub fn new(endpoint: &str, dialer: &Dialer) -> anyhow::Result<Self> {
        let channel = dialer
            .clone()
            .request_timeout(DELIVER_TIMEOUT)
            .lazy(endpoint)
            .map_err(|e| anyhow::anyhow!("usage.endpoint: {e:#}"))?;
        Ok(Self {
            client: UsageServiceClient::with_interceptor(channel, OutgoingInterceptor::new(None)?),
        })
    }
}

fn unavailable(
    call: &str,
    outcome: Result<tonic::Status, tokio::time::error::Elapsed>,
) -> Unavailable {
    Unavailable(match outcome {
        Ok(status) => format!("{call}: {:?}: {}", status.code(), status.message()),
        Err(_) => format!("{call}: no answer in time"),
    })
}

/// The batch index of the event an InvalidArgument names (`events[3].zone_id` → 3).
fn rejected_event(status: &tonic::Status) -> Option<usize> {
    if status.code() != tonic::Code::InvalidArgument {
        return None;
    }
    let field = atrium_service_kit::error::error_detail(status)?.field;
    field
        .strip_prefix("events[")?
        .split_once(']')?
        .0
        .parse()
        .ok()
}

#[async_trait]
impl UsageGate for GrpcUsage {
    async fn check(&self, user_id: &str) -> Result<UsageVerdict, Unavailable> {
        let mut client = self.client.clone();
        let call = client.check_usage(usage_pb::CheckUsageRequest {
            user_id: user_id.to_owned(),
        });
        match tokio::time::timeout(CHECK_TIMEOUT, call).await {
            Ok(Ok(answer)) => Ok(answer.into_inner().into()),
            Ok(Err(status)) => Err(unavailable("CheckUsage", Ok(status))),
            Err(elapsed) => Err(unavailable("CheckUsage", Err(elapsed))),
        }
    }

    async fn deliver(&self, events: Vec<usage_pb::SessionEvent>) -> Result<(), DeliveryError> {
        let mut client = self.client.clone();
        let call = client.ingest_events(usage_pb::IngestEventsRequest { events });
        match tokio::time::timeout(DELIVER_TIMEOUT, call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(status)) => match rejected_event(&status) {
                Some(index) => Err(DeliveryError::Rejected {
                    index,
                    reason: status.message().to_owned(),
                }),
                None => Err(unavailable("IngestEvents", Ok(status)).into()),
            },
            Err(elapsed) => Err(unavailable("IngestEvents", Err(elapsed)).into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test]
    async fn an_unreachable_billing_is_unavailable_not_an_error() {
        let grpc = GrpcUsage::new("http://127.0.0.1:1", &Dialer::plaintext()).expect("dial");
        let started = Instant::now();
        let e = grpc.check("u1").await.expect_err("nobody answers");
        assert!(e.0.starts_with("CheckUsage: "), "{e}");
        assert!(grpc.deliver(Vec::new()).await.is_err());
        assert!(started.elapsed() < CHECK_TIMEOUT + DELIVER_TIMEOUT);
        assert!(GrpcUsage::new("billing:7005", &Dialer::plaintext()).is_err());
    }
}
