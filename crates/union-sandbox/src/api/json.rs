//! Protobuf JSON in and out, as grpc-gateway writes it for flyteadmin: proto field names
//! (`workflow_execution_id`), enums by name, 64-bit integers as strings, well-known types in
//! their JSON forms (RFC 3339 timestamps, `"1.5s"` durations). Messages go through their
//! descriptors (flyteidl's committed descriptor set), so every message type works without a
//! serde derive on the generated code.

use std::sync::OnceLock;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use tonic::{Code, Status};

fn pool() -> &'static DescriptorPool {
    static POOL: OnceLock<DescriptorPool> = OnceLock::new();
    POOL.get_or_init(|| {
        // The set is built into the binary and checked by union-idl's tests.
        DescriptorPool::decode(union_idl::FLYTEIDL_DESCRIPTOR_SET)
            .expect("flyteidl's descriptor set decodes")
    })
}

/// `message` (of protobuf type `full_name`, e.g. `flyteidl.admin.Execution`) as JSON.
pub fn to_json<M: prost::Message>(message: &M, full_name: &str) -> Result<Vec<u8>, Status> {
    let descriptor = pool()
        .get_message_by_name(full_name)
        .ok_or_else(|| Status::internal(format!("no message type `{full_name}`")))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| Status::internal(format!("cannot re-read a `{full_name}`: {e}")))?;
    let options = SerializeOptions::new().use_proto_field_name(true);
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::new(&mut out);
    dynamic
        .serialize_with_options(&mut serializer, &options)
        .map_err(|e| Status::internal(format!("cannot write a `{full_name}` as JSON: {e}")))?;
    Ok(out)
}

/// A request body of protobuf type `full_name`, in protobuf JSON (either field-name style; an
/// empty body is the empty message).
pub fn from_json<M: prost::Message + Default>(body: &[u8], full_name: &str) -> Result<M, Status> {
    let descriptor = pool()
        .get_message_by_name(full_name)
        .ok_or_else(|| Status::internal(format!("no message type `{full_name}`")))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(M::default());
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let dynamic = DynamicMessage::deserialize(descriptor, &mut de)
        .and_then(|m| de.end().map(|()| m))
        .map_err(|e| {
            Status::invalid_argument(format!("the body is not a `{full_name}` in JSON: {e}"))
        })?;
    M::decode(dynamic.encode_to_vec().as_slice())
        .map_err(|e| Status::internal(format!("cannot convert a `{full_name}`: {e}")))
}

/// A successful answer: `message` as JSON.
pub fn reply<M: prost::Message>(result: Result<M, Status>, full_name: &str) -> Response {
    match result.and_then(|m| to_json(&m, full_name)) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(status) => error(&status),
    }
}

/// A failed call as grpc-gateway answers it: the HTTP status its code maps to, and
/// `{"code": <grpc code>, "message": ..., "details": []}`.
pub fn error(status: &Status) -> Response {
    let http = match status.code() {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = serde_json::json!({
        "code": status.code() as i32,
        "message": status.message(),
        "details": [],
    });
    (
        http,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use union_idl::flyteidl::admin::ExecutionCreateRequest;
    use union_idl::flyteidl::core::{literal, primitive, scalar, Literal, Primitive, Scalar};

    #[test]
    fn round_trips_with_proto_field_names_and_64_bit_strings() {
        let mut req = ExecutionCreateRequest {
            project: "p".into(),
            ..Default::default()
        };
        let lit = Literal {
            value: Some(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Primitive(Primitive {
                    value: Some(primitive::Value::Integer(1 << 40)),
                })),
            }))),
            ..Default::default()
        };
        req.inputs
            .get_or_insert_with(Default::default)
            .literals
            .insert("n".into(), lit);
        let json = to_json(&req, "flyteidl.admin.ExecutionCreateRequest").unwrap();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(
            text.contains(r#""integer":"1099511627776""#),
            "64-bit as string: {text}"
        );
        let back: ExecutionCreateRequest =
            from_json(&json, "flyteidl.admin.ExecutionCreateRequest").unwrap();
        assert_eq!(back, req);
        let camel: ExecutionCreateRequest = from_json(
            br#"{"project":"p","spec":{"launchPlan":{"name":"lp"}}}"#,
            "flyteidl.admin.ExecutionCreateRequest",
        )
        .unwrap();
        assert_eq!(camel.spec.unwrap().launch_plan.unwrap().name, "lp");
    }

    #[test]
    fn bad_bodies_are_invalid_arguments_naming_the_type() {
        let err = from_json::<ExecutionCreateRequest>(
            br#"{"project": 3}"#,
            "flyteidl.admin.ExecutionCreateRequest",
        )
        .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("ExecutionCreateRequest"));
        assert_eq!(error(&err).status(), StatusCode::BAD_REQUEST);
    }
}
