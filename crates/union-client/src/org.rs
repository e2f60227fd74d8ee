//! The organization on every request, as union's `OrgInterceptor` puts it there
//! (`union/_interceptor.py`): metadata `x-user-active-org: <org>` and `x-request-id: u-<20
//! letters>`, and `org` (or `organization`) set on the request and on every sub-message that is
//! present, in lists and map values too.
//!
//! Done once, on the encoded request, with the message types from flyteidl's own descriptors and
//! union's (`cloudidl.imagebuilder`): every call of every client gets it, including ones added
//! later, without a list of fields to keep up to date.

use std::sync::OnceLock;

use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage as _, Value,
};

fn pool() -> Option<&'static DescriptorPool> {
    static POOL: OnceLock<Option<DescriptorPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut pool = DescriptorPool::decode(union_idl::FLYTEIDL_DESCRIPTOR_SET).ok()?;
        // union's image builder service too; without it (cannot happen with the committed
        // sets), flyteidl's calls are still stamped.
        let flyteidl_only = pool.clone();
        match pool.decode_file_descriptor_set(union_idl::UNION_DESCRIPTOR_SET) {
            Ok(()) => Some(pool),
            Err(_) => Some(flyteidl_only),
        }
    })
    .as_ref()
}

/// The request type of the gRPC method at `path` (`/pkg.Service/Method`), if it is flyteidl's or
/// union's image builder's.
fn input_of(path: &str) -> Option<MessageDescriptor> {
    let (service, method) = path.trim_start_matches('/').split_once('/')?;
    let svc = pool()?.get_service_by_name(service)?;
    let m = svc.methods().find(|m| m.name() == method)?;
    Some(m.input())
}

fn stamp(msg: &mut DynamicMessage, org: &str) {
    for name in ["org", "organization"] {
        if let Some(f) = msg.descriptor().get_field_by_name(name) {
            if matches!(f.kind(), prost_reflect::Kind::String) && !f.is_list() {
                msg.set_field(&f, Value::String(org.to_string()));
            }
        }
    }
    for (_, value) in msg.fields_mut() {
        stamp_value(value, org);
    }
}

fn stamp_value(v: &mut Value, org: &str) {
    match v {
        Value::Message(m) => stamp(m, org),
        Value::List(items) => items.iter_mut().for_each(|i| stamp_value(i, org)),
        Value::Map(map) => map.values_mut().for_each(|i| stamp_value(i, org)),
        _ => {}
    }
}

/// `body`, a gRPC request body (frames of a 1-byte flag, a 4-byte length and a message), with
/// the org set in each uncompressed message; unchanged when the method is not flyteidl's or a
/// message does not decode.
pub(crate) fn stamp_body(path: &str, body: &[u8], org: &str) -> Option<Vec<u8>> {
    let desc = input_of(path)?;
    let mut out = Vec::with_capacity(body.len() + 64);
    let mut rest = body;
    while !rest.is_empty() {
        if rest.len() < 5 || rest[0] != 0 {
            return None;
        }
        let len = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
        let frame = rest.get(5..5 + len)?;
        let mut msg = DynamicMessage::decode(desc.clone(), frame).ok()?;
        stamp(&mut msg, org);
        let bytes = prost::Message::encode_to_vec(&msg);
        out.push(0);
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(&bytes);
        rest = &rest[5 + len..];
    }
    Some(out)
}

/// `u-` and 20 random letters, as union makes its request ids.
pub(crate) fn request_id() -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).expect("the OS random source");
    let s: String = bytes
        .iter()
        .map(|b| LETTERS[*b as usize % LETTERS.len()] as char)
        .collect();
    format!("u-{s}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use union_idl::flyteidl::{admin, core};

    fn framed(m: &impl prost::Message) -> Vec<u8> {
        let b = m.encode_to_vec();
        let mut out = vec![0];
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(&b);
        out
    }

    #[test]
    fn org_goes_on_every_present_identifier_as_unions_interceptor_puts_it() {
        let id = core::Identifier {
            resource_type: core::ResourceType::Task as i32,
            project: "p".into(),
            domain: "d".into(),
            name: "t".into(),
            version: "v".into(),
            ..Default::default()
        };
        let req = admin::TaskCreateRequest {
            id: Some(id.clone()),
            spec: Some(admin::TaskSpec {
                template: Some(core::TaskTemplate {
                    id: Some(id),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        };
        let out = stamp_body(
            "/flyteidl.service.AdminService/CreateTask",
            &framed(&req),
            "acme",
        )
        .unwrap();
        let back = admin::TaskCreateRequest::decode(&out[5..]).unwrap();
        assert_eq!(back.id.as_ref().unwrap().org, "acme");
        let tmpl = back.spec.unwrap().template.unwrap();
        assert_eq!(tmpl.id.unwrap().org, "acme");
        // Absent sub-messages stay absent (union walks ListFields: set fields only).
        assert!(tmpl.metadata.is_none());

        let req = admin::ExecutionCreateRequest {
            project: "p".into(),
            ..Default::default()
        };
        let out = stamp_body(
            "/flyteidl.service.AdminService/CreateExecution",
            &framed(&req),
            "acme",
        )
        .unwrap();
        assert_eq!(
            admin::ExecutionCreateRequest::decode(&out[5..])
                .unwrap()
                .org,
            "acme"
        );
        // union's image builder: `organization`.
        let req = union_idl::cloudidl::imagebuilder::GetImageRequest {
            id: Some(union_idl::cloudidl::imagebuilder::ImageIdentifier { name: "a:b".into() }),
            ..Default::default()
        };
        let out = stamp_body(
            "/cloudidl.imagebuilder.ImageService/GetImage",
            &framed(&req),
            "acme",
        )
        .unwrap();
        let back = union_idl::cloudidl::imagebuilder::GetImageRequest::decode(&out[5..]).unwrap();
        assert_eq!(back.organization, "acme");
        assert_eq!(back.id.unwrap().name, "a:b");
        // Neither flyteidl's nor union's: left alone.
        assert!(stamp_body("/union.x.Y/Z", &framed(&req), "acme").is_none());
        assert!(request_id().starts_with("u-") && request_id().len() == 22);
    }
}
