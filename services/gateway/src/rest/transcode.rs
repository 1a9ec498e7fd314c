//! JSON ↔ protobuf for `/api/v1`: a request's path parameters, query and JSON body become the
//! RPC's request message (through the descriptors, never hand-written per route), the call goes
//! to the service with the caller's credential, and the answer comes back as JSON in the
//! proto3 JSON mapping with the proto's own (snake_case) field names.

use std::sync::LazyLock;

use atrium_service_kit::auth::Credential;
use atrium_service_kit::http::HttpError;
use bytes::Buf;
use http::StatusCode;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, ReflectMessage, SerializeOptions, Value,
};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

/// Every Atrium message and service, from the descriptor set the proto crate embeds.
pub static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    match DescriptorPool::decode(atrium_proto::FILE_DESCRIPTOR_SET) {
        Ok(pool) => pool,
        // The set is produced by the build from our own protos: decoding it cannot fail
        // unless the build is broken, and every test would say so.
        Err(e) => panic!("the embedded descriptor set does not decode: {e}"),
    }
});

/// JSON as answered: proto field names, numbers as numbers, defaults included.
pub const OUTPUT: SerializeOptions = SerializeOptions::new()
    .use_proto_field_name(true)
    .stringify_64_bit_integers(false)
    .skip_default_fields(false);

/// The method `package.Service/Method`, e.g. `atrium.identity.v1.IdentityService/GetUser`.
pub fn method(path: &str) -> Option<MethodDescriptor> {
    let (service, method) = path.split_once('/')?;
    POOL.get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)
}

/// Parses a JSON body into a message of type `descriptor`; errors name the field.
pub fn from_json(descriptor: MessageDescriptor, body: &[u8]) -> Result<DynamicMessage, HttpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DynamicMessage::new(descriptor));
    }
    let mut json = serde_json::Deserializer::from_slice(body);
    let options = DeserializeOptions::new().deny_unknown_fields(true);
    let mut track = serde_path_to_error::Track::new();
    let message = DynamicMessage::deserialize_with_options(
        descriptor,
        serde_path_to_error::Deserializer::new(&mut json, &mut track),
        &options,
    );
    let message = match message {
        Ok(m) => m,
        Err(e) => {
            let path = track.path().to_string();
            let field = if path == "." { String::new() } else { path };
            return Err(HttpError::invalid(
                field,
                clean_serde_message(&e.to_string()),
            ));
        }
    };
    json.end()
        .map_err(|e| HttpError::invalid("", format!("body: {e}")))?;
    Ok(message)
}

/// Drops serde_json's "at line 1 column 7" for a one-line body; keeps the rest.
fn clean_serde_message(message: &str) -> String {
    message
        .rsplit_once(" at line ")
        .map(|(m, _)| m.to_owned())
        .unwrap_or_else(|| message.to_owned())
}

/// The message as JSON.
pub fn to_json(message: &DynamicMessage) -> serde_json::Value {
    message
        .serialize_with_options(serde_json::value::Serializer, &OUTPUT)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "a response does not serialize to JSON");
            serde_json::Value::Null
        })
}

/// Sets `path` (dotted: `page.page_size`) in `message` from its text form, creating parent
/// messages as needed. Repeated fields gain one element per call.
pub fn set_text(message: &mut DynamicMessage, path: &str, text: &str) -> Result<(), HttpError> {
    let mut target = message;
    let mut parts = path.split('.').peekable();
    while let Some(name) = parts.next() {
        let field = target
            .descriptor()
            .get_field_by_name(name)
            .ok_or_else(|| HttpError::invalid(path, "no such parameter"))?;
        if parts.peek().is_none() {
            let value = parse_scalar(&field, text).map_err(|m| HttpError::invalid(path, m))?;
            if field.is_list() {
                match target.get_field_mut(&field) {
                    Value::List(items) => items.push(value),
                    _ => return Err(HttpError::invalid(path, "not a list")),
                }
            } else {
                target.set_field(&field, value);
            }
            return Ok(());
        }
        if !matches!(field.kind(), Kind::Message(_)) || field.is_list() || field.is_map() {
            return Err(HttpError::invalid(path, "no such parameter"));
        }
        target = match target.get_field_mut(&field) {
            Value::Message(m) => m,
            _ => return Err(HttpError::invalid(path, "no such parameter")),
        };
    }
    Err(HttpError::invalid(path, "no such parameter"))
}

fn parse_scalar(field: &FieldDescriptor, text: &str) -> Result<Value, String> {
    let number = |what: &str| format!("must be {what}, not {text:?}");
    Ok(match field.kind() {
        Kind::String => Value::String(text.to_owned()),
        Kind::Bool => match text {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(number("true or false")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(text.parse().map_err(|_| number("an integer"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(text.parse().map_err(|_| number("an integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => {
            Value::U32(text.parse().map_err(|_| number("a non-negative integer"))?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            Value::U64(text.parse().map_err(|_| number("a non-negative integer"))?)
        }
        Kind::Double => Value::F64(text.parse().map_err(|_| number("a number"))?),
        Kind::Float => Value::F32(text.parse().map_err(|_| number("a number"))?),
        Kind::Enum(e) => {
            let found = e.get_value_by_name(text).or_else(|| {
                // Short forms: `running` for OBSERVED_STATE_RUNNING.
                let upper = text.to_ascii_uppercase();
                e.values().find(|v| {
                    v.name()
                        .strip_suffix(upper.as_str())
                        .is_some_and(|prefix| prefix.ends_with('_'))
                })
            });
            match found {
                Some(v) => Value::EnumNumber(v.number()),
                None => {
                    return Err(format!(
                        "must be one of {}",
                        e.values()
                            .map(|v| v.name().to_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
            let at = chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|_| number("an RFC 3339 time such as 2026-01-31T12:00:00Z"))?;
            let mut ts = DynamicMessage::new(m);
            ts.set_field_by_name("seconds", Value::I64(at.timestamp()));
            ts.set_field_by_name("nanos", Value::I32(at.timestamp_subsec_nanos() as i32));
            Value::Message(ts)
        }
        Kind::Bytes | Kind::Message(_) => return Err("cannot be given as a parameter".into()),
    })
}

/// A tonic codec for dynamic messages of known types.
#[derive(Clone)]
pub struct DynamicCodec {
    output: MessageDescriptor,
}

impl DynamicCodec {
    pub fn new(output: MessageDescriptor) -> Self {
        Self { output }
    }
}

impl Codec for DynamicCodec {
    type Encode = DynamicMessage;
    type Decode = DynamicMessage;
    type Encoder = DynamicEncoder;
    type Decoder = DynamicCodec;

    fn encoder(&mut self) -> Self::Encoder {
        DynamicEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        self.clone()
    }
}

pub struct DynamicEncoder;

impl Encoder for DynamicEncoder {
    type Item = DynamicMessage;
    type Error = tonic::Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.reserve(item.encoded_len());
        item.encode(dst)
            .map_err(|e| tonic::Status::internal(format!("encode: {e}")))
    }
}

impl Decoder for DynamicCodec {
    type Item = DynamicMessage;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        let bytes = src.copy_to_bytes(src.remaining());
        DynamicMessage::decode(self.output.clone(), bytes)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("decode: {e}")))
    }
}

fn grpc_request(
    message: DynamicMessage,
    credential: Option<&Credential>,
) -> Result<tonic::Request<DynamicMessage>, HttpError> {
    let mut request = tonic::Request::new(message);
    atrium_service_kit::telemetry::inject_context(request.metadata_mut());
    if let Some(credential) = credential {
        let value = credential.header_value().parse().map_err(|_| {
            HttpError::unauthenticated("authorization: the credential has characters not allowed")
        })?;
        request.metadata_mut().insert("authorization", value);
    }
    Ok(request)
}

fn grpc_path(method: &MethodDescriptor) -> Result<http::uri::PathAndQuery, HttpError> {
    format!("/{}/{}", method.parent_service().full_name(), method.name())
        .parse()
        .map_err(|_| HttpError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "bad method"))
}

async fn ready(channel: Channel) -> Result<tonic::client::Grpc<Channel>, HttpError> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| {
        HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("service unavailable: {e}"),
        )
    })?;
    Ok(grpc)
}

/// Calls a unary method with the caller's credential; a read (or a keepalive) is tried again
/// when the service is briefly unavailable.
pub async fn unary(
    channel: Channel,
    method: &MethodDescriptor,
    message: DynamicMessage,
    credential: Option<&Credential>,
) -> Result<DynamicMessage, HttpError> {
    let path = grpc_path(method)?;
    let attempts = if atrium_service_kit::client::is_idempotent(method.name()) {
        atrium_service_kit::client::IDEMPOTENT_ATTEMPTS
    } else {
        1
    };
    let codec = DynamicCodec::new(method.output());
    let response = atrium_service_kit::client::retry_idempotent(attempts, || {
        let request = grpc_request(message.clone(), credential);
        let (channel, path, codec) = (channel.clone(), path.clone(), codec.clone());
        async move {
            let request = request.map_err(|e| tonic::Status::unauthenticated(e.message))?;
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unavailable(format!("service unavailable: {e}")))?;
            grpc.unary(request, path, codec).await
        }
    })
    .await?;
    Ok(response.into_inner())
}

/// Calls a server-streaming method with the caller's credential.
pub async fn server_stream(
    channel: Channel,
    method: &MethodDescriptor,
    message: DynamicMessage,
    credential: Option<&Credential>,
) -> Result<tonic::Streaming<DynamicMessage>, HttpError> {
    let request = grpc_request(message, credential)?;
    let path = grpc_path(method)?;
    let mut grpc = ready(channel).await?;
    let response = grpc
        .server_streaming(request, path, DynamicCodec::new(method.output()))
        .await?;
    Ok(response.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(name: &str) -> MessageDescriptor {
        POOL.get_message_by_name(name).expect(name)
    }

    #[test]
    fn bodies_parse_and_errors_name_the_field() {
        let d = descriptor("atrium.session.v1.RequestSessionRequest");
        let m = from_json(
            d.clone(),
            br#"{"workspace_id": "w1", "options": {"environment": {"A": "b"}}}"#,
        )
        .expect("parses");
        assert_eq!(to_json(&m)["workspace_id"], "w1");
        let e = from_json(d.clone(), br#"{"options": {"zone_id": 5}}"#).expect_err("type");
        assert_eq!(e.field, "options.zone_id", "{e}");
        let e = from_json(d.clone(), br#"{"nope": 1}"#).expect_err("unknown");
        assert!(e.message.contains("nope"), "{e}");
        assert!(from_json(d.clone(), b"{").is_err());
        assert!(from_json(d.clone(), b"[]").is_err());
        assert!(from_json(d, b"{} {}").is_err());
    }

    #[test]
    fn parameters_set_nested_fields_enums_and_times() {
        let mut m = DynamicMessage::new(descriptor("atrium.session.v1.ListSessionsRequest"));
        set_text(&mut m, "page.page_size", "5").expect("page size");
        set_text(&mut m, "observed_state", "running").expect("short enum");
        set_text(&mut m, "all_users", "true").expect("bool");
        let json = to_json(&m);
        assert_eq!(json["page"]["page_size"], 5);
        assert_eq!(json["observed_state"], "OBSERVED_STATE_RUNNING");
        assert!(set_text(&mut m, "page.page_size", "-1").is_err());
        assert!(set_text(&mut m, "observed_state", "flying").is_err());
        assert_eq!(
            set_text(&mut m, "nope", "1").expect_err("unknown").field,
            "nope"
        );
        let mut audit =
            DynamicMessage::new(descriptor("atrium.identity.v1.ListAuditEventsRequest"));
        set_text(&mut audit, "since", "2026-01-31T12:00:00Z").expect("time");
        assert_eq!(to_json(&audit)["since"], "2026-01-31T12:00:00Z");
    }
}
