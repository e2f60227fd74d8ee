//! Entities as discovery reports them: plain data, no Python handles.

use serde::{Deserialize, Serialize};

/// What kind of Flyte entity a Python object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Task,
    Workflow,
    LaunchPlan,
}

impl EntityKind {
    /// The word users see ("task", "workflow", "launch plan").
    pub fn label(self) -> &'static str {
        match self {
            EntityKind::Task => "task",
            EntityKind::Workflow => "workflow",
            EntityKind::LaunchPlan => "launch plan",
        }
    }
}

/// One input of an entity's interface, as `pyflyte run` offers it on the command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Input {
    pub name: String,
    /// The Python type as text, e.g. `int`, `list[int]`, `Optional[str]`, `calc.Point`.
    #[serde(rename = "type")]
    pub type_text: String,
    /// The default value as text (JSON for structured values), when there is one.
    pub default: Option<String>,
    pub required: bool,
    /// A bool input is a `--name/--no_name` switch, as in pyflyte.
    pub is_bool: bool,
    #[serde(default)]
    pub description: String,
}

/// One output of an entity's interface.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Output {
    pub name: String,
    #[serde(rename = "type")]
    pub type_text: String,
}

/// The typed interface of a task, workflow or launch plan.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Interface {
    pub inputs: Vec<Input>,
    pub outputs: Vec<Output>,
}

/// A task's `container_image`: an image reference, or an ImageSpec with every field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ContainerImage {
    /// `container_image="repo/name:tag"` (possibly a `{{.image.x.fqn}}` template).
    Image { uri: String },
    /// `container_image=ImageSpec(...)`: every dataclass field by name, in declaration order,
    /// plus `_is_force_push`. Nested `base_image` specs are nested objects of the same shape.
    Spec {
        spec: serde_json::Map<String, serde_json::Value>,
    },
}

/// A task, workflow or launch plan found after importing the user's modules.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entity {
    pub kind: EntityKind,
    /// Flyte name: `<module>.<function>` for tasks and workflows, the given name for launch plans.
    pub name: String,
    /// The module it is bound in at top level, when it is.
    pub module: Option<String>,
    /// The attribute name it is bound to in `module` (what `union run FILE ENTITY` accepts).
    pub attr: Option<String>,
    pub doc: Option<String>,
    pub interface: Interface,
    pub container_image: Option<ContainerImage>,
    pub task_type: Option<String>,
    /// For a launch plan: the name of its workflow.
    pub workflow: Option<String>,
}
