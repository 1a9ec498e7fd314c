//! The OpenAPI 3.1 document of `/api/v1`, generated from the route table and the protobuf
//! descriptors (the same ones the transcoder uses), never written by hand.

use std::collections::{BTreeMap, BTreeSet};

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value, json};

use super::routes::{Body, LoginAction, ROUTES, Route, Serve};
use super::transcode::method;

/// The operation id: the RPC's method name, with the route's path words where several routes
/// share a method name.
pub fn operation_id(route: &Route) -> String {
    let name = route.rpc.rsplit('/').next().unwrap_or(route.rpc);
    let shared = ROUTES
        .iter()
        .filter(|r| r.rpc.rsplit('/').next() == Some(name))
        .count()
        > 1;
    if !shared {
        return name.to_owned();
    }
    let words: Vec<&str> = route
        .path
        .trim_start_matches("/api/v1/")
        .split('/')
        .filter(|s| !s.starts_with('{'))
        .collect();
    format!("{name}_{}", words.join("_").replace('-', "_"))
}

/// The document.
pub fn document() -> Value {
    let mut schemas = Schemas::default();
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for route in ROUTES.iter() {
        let Some(m) = method(route.rpc) else { continue };
        let input = m.input();
        let mut parameters = Vec::new();
        let mut path_fields = BTreeSet::new();
        for param in route.params() {
            let field = route.field_of(param);
            path_fields.insert(field.to_owned());
            let schema = field_at(&input, field)
                .map(|f| schemas.scalar(&f))
                .unwrap_or_else(|| json!({"type": "string"}));
            parameters.push(json!({
                "name": param, "in": "path", "required": true, "schema": schema,
            }));
        }
        if route.body == Body::None {
            for (name, field) in query_fields(&input, "", 0) {
                if path_fields.contains(&name) {
                    continue;
                }
                let mut schema = schemas.scalar(&field);
                if field.is_list() {
                    schema = json!({"type": "array", "items": schema});
                }
                parameters.push(json!({
                    "name": name, "in": "query", "required": false, "schema": schema,
                    "description": doc(&field),
                }));
            }
        }
        if let Serve::Login(LoginAction::Login) = route.serve {
            parameters.push(json!({
                "name": "cookie", "in": "query", "required": false,
                "schema": {"type": "boolean", "default": true},
                "description": "false: answer the tokens in the body and set no cookies (for programs)",
            }));
        }
        let mut operation = json!({
            "operationId": operation_id(route),
            "summary": route.summary,
            "tags": [route.tag],
            "parameters": parameters,
            "responses": responses(route, &mut schemas, &m.output()),
        });
        if !route.authenticated() {
            operation["security"] = json!([]);
        }
        let body_schema = match route.body {
            Body::None => None,
            Body::All => Some(schemas.reference(&input, &path_fields)),
            Body::Field(name) => match input.get_field_by_name(name).map(|f| f.kind()) {
                Some(Kind::Message(d)) => {
                    let nested: BTreeSet<String> = path_fields
                        .iter()
                        .filter_map(|p| p.strip_prefix(&format!("{name}.")).map(str::to_owned))
                        .collect();
                    Some(schemas.reference(&d, &nested))
                }
                _ => None,
            },
        };
        if let Some(schema) = body_schema {
            operation["requestBody"] = json!({
                "required": false,
                "content": {"application/json": {"schema": schema}},
            });
        }
        paths
            .entry(route.path.to_owned())
            .or_default()
            .insert(route.method.as_str().to_ascii_lowercase(), operation);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Atrium API",
            "version": "v1",
            "description": "JSON over Atrium's services. Errors are {\"error\": {\"code\", \"message\", \"field\"}}. Browsers sign in with POST /api/v1/login and send the atrium_csrf cookie's value in X-CSRF-Token on every state change; programs send Authorization: Bearer <token> or ApiKey <id>:<secret>.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.finish(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                    "description": "An access token; API keys go in the same header as `ApiKey <id>:<secret>` (or HTTP Basic id:secret)"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": atrium_service_kit::http::ACCESS_COOKIE},
            },
        },
        "security": [{"bearer": []}, {"cookie": []}],
    })
}

fn responses(route: &Route, schemas: &mut Schemas, output: &MessageDescriptor) -> Value {
    let error = json!({"$ref": "#/components/schemas/Error"});
    let ok = match route.serve {
        Serve::Stream => json!({
            "description": "Server-Sent Events: each `data:` line is one JSON message",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }),
        _ => json!({
            "description": "OK",
            "content": {"application/json": {"schema": schemas.reference(output, &BTreeSet::new())}},
        }),
    };
    let mut responses = json!({
        "200": ok,
        "400": {"description": "A field is invalid (named in error.field)", "content": {"application/json": {"schema": error}}},
        "404": {"description": "Not found", "content": {"application/json": {"schema": error}}},
        "default": {"description": "Error", "content": {"application/json": {"schema": error}}},
    });
    if route.authenticated() {
        responses["401"] = json!({"description": "Not signed in", "content": {"application/json": {"schema": error}}});
        responses["403"] = json!({"description": "Not allowed (or CSRF header missing)", "content": {"application/json": {"schema": error}}});
    }
    responses
}

/// The scalar fields that may be given in a query string: top-level ones and one level into
/// sub-messages (`page.page_size`).
fn query_fields(
    desc: &MessageDescriptor,
    prefix: &str,
    depth: usize,
) -> Vec<(String, FieldDescriptor)> {
    let mut out = Vec::new();
    for field in desc.fields() {
        let name = format!("{prefix}{}", field.name());
        match field.kind() {
            Kind::Message(m) if m.full_name() != "google.protobuf.Timestamp" => {
                if depth == 0 && !field.is_list() && !field.is_map() {
                    out.extend(query_fields(&m, &format!("{name}."), depth + 1));
                }
            }
            Kind::Bytes => {}
            _ if field.is_map() => {}
            _ => out.push((name, field)),
        }
    }
    out
}

fn field_at(desc: &MessageDescriptor, path: &str) -> Option<FieldDescriptor> {
    let mut desc = desc.clone();
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = desc.get_field_by_name(part)?;
        if parts.peek().is_none() {
            return Some(field);
        }
        match field.kind() {
            Kind::Message(d) => desc = d,
            _ => return None,
        }
    }
    None
}

/// The comment above a field in its .proto, if any.
fn doc(field: &FieldDescriptor) -> String {
    let proto = field.parent_file().file_descriptor_proto().clone();
    let Some(info) = proto.source_code_info else {
        return String::new();
    };
    let path = field.path();
    info.location
        .iter()
        .find(|l| l.path == path)
        .and_then(|l| l.leading_comments.clone())
        .map(|c| c.trim().replace('\n', " "))
        .unwrap_or_default()
}

/// Component schemas for every message a route reaches.
#[derive(Default)]
struct Schemas {
    done: BTreeMap<String, Value>,
}

impl Schemas {
    /// A `$ref` to the message's schema (`omit`: fields set from the path, left out of the
    /// body schema, which then gets its own component).
    fn reference(&mut self, desc: &MessageDescriptor, omit: &BTreeSet<String>) -> Value {
        let top: BTreeSet<String> = omit.iter().filter(|f| !f.contains('.')).cloned().collect();
        let name = if top.is_empty() {
            desc.full_name().to_owned()
        } else {
            format!(
                "{}.body_without_{}",
                desc.full_name(),
                top.iter().cloned().collect::<Vec<_>>().join("_")
            )
        };
        if !self.done.contains_key(&name) {
            self.done.insert(name.clone(), Value::Null);
            let schema = self.message(desc, &top);
            self.done.insert(name.clone(), schema);
        }
        json!({"$ref": format!("#/components/schemas/{name}")})
    }

    fn message(&mut self, desc: &MessageDescriptor, omit: &BTreeSet<String>) -> Value {
        if let Some(wk) = well_known(desc.full_name()) {
            return wk;
        }
        let mut properties = Map::new();
        for field in desc.fields() {
            if omit.contains(field.name()) {
                continue;
            }
            let mut schema = if field.is_map() {
                let value = match field.kind() {
                    Kind::Message(entry) => entry
                        .get_field_by_name("value")
                        .map(|v| self.field(&v))
                        .unwrap_or_else(|| json!({})),
                    _ => json!({}),
                };
                json!({"type": "object", "additionalProperties": value})
            } else if field.is_list() {
                json!({"type": "array", "items": self.field(&field)})
            } else {
                self.field(&field)
            };
            let description = doc(&field);
            if !description.is_empty() && schema.get("$ref").is_none() {
                schema["description"] = json!(description);
            }
            properties.insert(field.name().to_owned(), schema);
        }
        json!({"type": "object", "properties": properties, "additionalProperties": false})
    }

    fn field(&mut self, field: &FieldDescriptor) -> Value {
        match field.kind() {
            Kind::Message(m) => match well_known(m.full_name()) {
                Some(schema) => schema,
                None => self.reference(&m, &BTreeSet::new()),
            },
            _ => self.scalar(field),
        }
    }

    fn scalar(&mut self, field: &FieldDescriptor) -> Value {
        match field.kind() {
            Kind::String => json!({"type": "string"}),
            Kind::Bool => json!({"type": "boolean"}),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                json!({"type": "integer", "format": "int32"})
            }
            Kind::Uint32 | Kind::Fixed32 => {
                json!({"type": "integer", "minimum": 0, "maximum": u32::MAX})
            }
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                json!({"type": "integer", "format": "int64"})
            }
            Kind::Uint64 | Kind::Fixed64 => json!({"type": "integer", "minimum": 0}),
            Kind::Double | Kind::Float => json!({"type": "number"}),
            Kind::Bytes => json!({"type": "string", "contentEncoding": "base64"}),
            Kind::Enum(e) => json!({
                "type": "string",
                "enum": e.values().map(|v| v.name().to_owned()).collect::<Vec<_>>(),
            }),
            Kind::Message(m) => {
                well_known(m.full_name()).unwrap_or_else(|| json!({"type": "object"}))
            }
        }
    }

    fn finish(mut self) -> Value {
        self.done.insert(
            "Error".into(),
            json!({
                "type": "object",
                "required": ["error"],
                "properties": {"error": {
                    "type": "object",
                    "required": ["code", "message", "field"],
                    "properties": {
                        "code": {"type": "string", "description": "invalid_field, not_found, permission_denied, unauthenticated, csrf, resource_exhausted, …"},
                        "message": {"type": "string"},
                        "field": {"type": "string", "description": "The request field at fault, or empty"},
                    },
                }},
            }),
        );
        Value::Object(self.done.into_iter().collect())
    }
}

fn well_known(name: &str) -> Option<Value> {
    match name {
        "google.protobuf.Timestamp" => Some(json!({"type": "string", "format": "date-time"})),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_covers_every_route_and_resolves_every_reference() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        for route in ROUTES.iter() {
            let op = &doc["paths"][route.path][route.method.as_str().to_ascii_lowercase()];
            assert_eq!(op["operationId"], operation_id(route), "{}", route.path);
        }
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for piece in text.split("#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap_or_default();
            assert!(schemas.contains_key(name), "dangling $ref {name}");
        }
        let list = &doc["paths"]["/api/v1/sessions"]["get"]["parameters"];
        let names: Vec<&str> = list
            .as_array()
            .expect("params")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            names.contains(&"page.page_size") && names.contains(&"all_users"),
            "{names:?}"
        );
        // The workspace id comes from the path, not the body.
        let update = &doc["paths"]["/api/v1/workspaces/{workspace_id}"]["put"];
        let body_ref = update["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .expect("ref");
        let body = &schemas[body_ref.trim_start_matches("#/components/schemas/")];
        assert!(body["properties"].get("id").is_none(), "{body}");
    }
}
