//! Requests for the sandbox's API tests: ids, task templates, workflows and launch plans as
//! flytekit registers them, and a minimal HTTP/1.1 client for the signed blob URLs.

use std::io::{Read, Write};
use std::net::TcpStream;

use union_idl::flyteidl::admin::{
    LaunchPlanCreateRequest, LaunchPlanSpec, TaskCreateRequest, TaskSpec, WorkflowCreateRequest,
    WorkflowSpec,
};
use union_idl::flyteidl::core::{
    self, binding_data, literal_type, node, task_node, task_template, workflow_node, Binding,
    BindingData, Container, Identifier, LiteralType, Node, OutputReference, Parameter,
    ParameterMap, ResourceType, TaskNode, TaskTemplate, TypedInterface, Variable, VariableMap,
    WorkflowNode, WorkflowTemplate,
};

pub const PROJECT: &str = "flytesnacks";
pub const DOMAIN: &str = "development";

pub fn id(rt: ResourceType, name: &str, version: &str) -> Identifier {
    Identifier {
        resource_type: rt as i32,
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        name: name.into(),
        version: version.into(),
        org: String::new(),
    }
}

fn int_type() -> LiteralType {
    LiteralType {
        r#type: Some(literal_type::Type::Simple(core::SimpleType::Integer as i32)),
        ..Default::default()
    }
}

fn vars(names: &[&str]) -> VariableMap {
    VariableMap {
        variables: names
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    Variable {
                        r#type: Some(int_type()),
                        description: n.to_string(),
                        ..Default::default()
                    },
                )
            })
            .collect(),
    }
}

/// An `int a, int b -> int o0` python task running `image`.
pub fn task_template(name: &str, version: &str, image: &str) -> TaskTemplate {
    TaskTemplate {
        id: Some(id(ResourceType::Task, name, version)),
        r#type: "python-task".into(),
        interface: Some(TypedInterface {
            inputs: Some(vars(&["a", "b"])),
            outputs: Some(vars(&["o0"])),
        }),
        target: Some(task_template::Target::Container(Container {
            image: image.into(),
            args: vec![
                "pyflyte-execute".into(),
                "--inputs".into(),
                "{{.input}}".into(),
            ],
            ..Default::default()
        })),
        ..Default::default()
    }
}

pub fn create_task(name: &str, version: &str, image: &str) -> TaskCreateRequest {
    TaskCreateRequest {
        id: Some(id(ResourceType::Task, name, version)),
        spec: Some(TaskSpec {
            template: Some(task_template(name, version, image)),
            description: None,
        }),
    }
}

fn promise(node_id: &str, var: &str) -> BindingData {
    BindingData {
        value: Some(binding_data::Value::Promise(OutputReference {
            node_id: node_id.into(),
            var: var.into(),
            attr_path: vec![],
        })),
        union: None,
    }
}

/// A workflow `(a, b) -> o0` calling `task` twice (n0, then n1 on n0's output) and, optionally,
/// a launch plan node.
pub fn workflow_template(
    name: &str,
    version: &str,
    task: &Identifier,
    lp: Option<&Identifier>,
) -> WorkflowTemplate {
    let task_node = |nid: &str, a: BindingData| Node {
        id: nid.into(),
        inputs: vec![
            Binding {
                var: "a".into(),
                binding: Some(a),
            },
            Binding {
                var: "b".into(),
                binding: Some(promise("start-node", "b")),
            },
        ],
        target: Some(node::Target::TaskNode(TaskNode {
            reference: Some(task_node::Reference::ReferenceId(task.clone())),
            overrides: None,
        })),
        ..Default::default()
    };
    let mut nodes = vec![
        task_node("n0", promise("start-node", "a")),
        task_node("n1", promise("n0", "o0")),
    ];
    if let Some(lp) = lp {
        nodes.push(Node {
            id: "n2".into(),
            upstream_node_ids: vec!["n1".into()],
            target: Some(node::Target::WorkflowNode(WorkflowNode {
                reference: Some(workflow_node::Reference::LaunchplanRef(lp.clone())),
            })),
            ..Default::default()
        });
    }
    WorkflowTemplate {
        id: Some(id(ResourceType::Workflow, name, version)),
        interface: Some(TypedInterface {
            inputs: Some(vars(&["a", "b"])),
            outputs: Some(vars(&["o0"])),
        }),
        nodes,
        outputs: vec![Binding {
            var: "o0".into(),
            binding: Some(promise("n1", "o0")),
        }],
        ..Default::default()
    }
}

pub fn create_workflow(name: &str, version: &str, task: &Identifier) -> WorkflowCreateRequest {
    WorkflowCreateRequest {
        id: Some(id(ResourceType::Workflow, name, version)),
        spec: Some(WorkflowSpec {
            template: Some(workflow_template(name, version, task, None)),
            sub_workflows: vec![],
            description: None,
        }),
    }
}

pub fn create_launch_plan(
    name: &str,
    version: &str,
    workflow: &Identifier,
) -> LaunchPlanCreateRequest {
    let default_b = Parameter {
        var: Some(Variable {
            r#type: Some(int_type()),
            description: "b".into(),
            ..Default::default()
        }),
        behavior: None,
    };
    LaunchPlanCreateRequest {
        id: Some(id(ResourceType::LaunchPlan, name, version)),
        spec: Some(LaunchPlanSpec {
            workflow_id: Some(workflow.clone()),
            default_inputs: Some(ParameterMap {
                parameters: [("b".to_string(), default_b)].into_iter().collect(),
            }),
            ..Default::default()
        }),
    }
}

/// A plain HTTP/1.1 request (Connection: close); returns (status, body).
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Vec<u8>) {
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = TcpStream::connect(host).expect("connect http");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).expect("write request");
    stream.write_all(body).expect("write body");
    let mut resp = Vec::new();
    stream.read_to_end(&mut resp).expect("read response");
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("http header end");
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut payload = resp[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        payload = dechunk(&payload);
    }
    (status, payload)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[eol + 2..eol + 2 + size]);
        data = &data[eol + 2 + size + 2..];
    }
    out
}
