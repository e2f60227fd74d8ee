//! Registry credentials for pulls and pushes, read through the registry module's one docker
//! config reader, with an ImageSpec's `registry_config` consulted before the user's config.

use std::collections::HashMap;

use bollard::auth::DockerCredentials;

use super::BuildError;
use crate::dockerfile::BuildPlan;

/// Split `repo[:tag]` into repository and tag (a `:` before the last `/` is a registry port).
pub fn split_tag(image: &str) -> (&str, &str) {
    let last_slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[last_slash..].rfind(':') {
        Some(i) => (&image[..last_slash + i], &image[last_slash + i + 1..]),
        None => (image, "latest"),
    }
}

/// The registry host of an image reference, as Docker's config keys it (`docker.io` for Hub).
pub fn registry_host(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// Credentials for `host` from the Docker config (`auths`, `credsStore`, `credHelpers`), through
/// the registry module's one reader; `None` when there are none or they cannot be read.
pub fn docker_config_credentials(host: &str) -> Option<DockerCredentials> {
    let config = union_registry::DockerConfig::load_default().ok()?;
    engine_credentials(&config, host).ok().flatten()
}

/// What the engine needs to pull from or push to `host`, from `config` (helpers included).
pub(super) fn engine_credentials(
    config: &union_registry::DockerConfig,
    host: &str,
) -> Result<Option<DockerCredentials>, union_registry::RegistryError> {
    use union_registry::Credential;
    let Some(credential) = config.credentials_for(host)? else {
        return Ok(None);
    };
    let mut creds = DockerCredentials {
        serveraddress: Some(host.to_string()),
        ..Default::default()
    };
    match credential {
        Credential::Basic { username, password } => {
            creds.username = Some(username);
            creds.password = Some(password);
        }
        Credential::IdentityToken { username, token } => {
            creds.username = username;
            creds.identitytoken = Some(token);
        }
        Credential::RegistryToken(token) => creds.registrytoken = Some(token),
    }
    Ok(Some(creds))
}

/// The docker config for a plan: its ImageSpec's `registry_config` first (envd's field: a docker
/// config file with credentials for that image's registry), then the user's.
pub(super) fn plan_config(plan: &BuildPlan) -> Result<union_registry::DockerConfig, BuildError> {
    let default =
        union_registry::DockerConfig::load_default().map_err(|e| BuildError::Credentials {
            image: plan.image_name.clone(),
            message: e.to_string(),
        })?;
    plan_config_over(plan, default)
}

fn plan_config_over(
    plan: &BuildPlan,
    default: union_registry::DockerConfig,
) -> Result<union_registry::DockerConfig, BuildError> {
    match &plan.registry_config {
        Some(file) => Ok(union_registry::DockerConfig::load_file(file)
            .map_err(|e| BuildError::Credentials {
                image: plan.image_name.clone(),
                message: e.to_string(),
            })?
            .with_fallback(default)),
        None => Ok(default),
    }
}

/// Credentials for every registry the build pulls from (the base image's), keyed by host as
/// BuildKit's session asks for them.
pub(super) fn pull_credentials(
    plan: &BuildPlan,
) -> Result<HashMap<String, DockerCredentials>, BuildError> {
    pull_credentials_from(plan, &plan_config(plan)?)
}

fn pull_credentials_from(
    plan: &BuildPlan,
    config: &union_registry::DockerConfig,
) -> Result<HashMap<String, DockerCredentials>, BuildError> {
    let mut out = HashMap::new();
    let host = registry_host(&plan.base_image);
    let creds = engine_credentials(config, host).map_err(|e| BuildError::Credentials {
        image: plan.image_name.clone(),
        message: e.to_string(),
    })?;
    if let Some(c) = creds {
        out.insert(host.to_string(), c.clone());
        if host == "docker.io" {
            // The engine asks for Docker Hub under its v1 index address.
            out.insert("https://index.docker.io/v1/".to_string(), c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_tags_and_hosts() {
        assert_eq!(
            split_tag("localhost:30000/a/b:TAG"),
            ("localhost:30000/a/b", "TAG")
        );
        assert_eq!(
            split_tag("localhost:30000/a"),
            ("localhost:30000/a", "latest")
        );
        assert_eq!(registry_host("localhost:30000/a:x"), "localhost:30000");
        assert_eq!(registry_host("ghcr.io/o/a:x"), "ghcr.io");
        assert_eq!(registry_host("user/a:x"), "docker.io");
        assert_eq!(registry_host("a:x"), "docker.io");
    }

    fn plan_from(base_image: &str, registry_config: Option<std::path::PathBuf>) -> BuildPlan {
        BuildPlan {
            spec_name: "x".into(),
            image_name: "localhost:30000/x:1".into(),
            base_image: base_image.into(),
            base: None,
            dockerfile: String::new(),
            context: crate::context::BuildContext::new(),
            secrets: Vec::new(),
            platform: "linux/amd64".into(),
            push: true,
            force: false,
            registry_config,
        }
    }

    #[test]
    fn pulls_use_the_same_reader_as_pushes_with_the_specs_registry_config_first() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user");
        std::fs::create_dir_all(&user).unwrap();
        // The user's docker config: Hub (base64 "u:p") and a private registry.
        std::fs::write(
            user.join("config.json"),
            r#"{"auths": {"https://index.docker.io/v1/": {"auth": "dTpw"},
                "ghcr.io": {"username": "gh", "password": "user-token"}}}"#,
        )
        .unwrap();
        // The ImageSpec's registry_config: another account for ghcr.io.
        let spec_config = dir.path().join("spec-registry.json");
        std::fs::write(
            &spec_config,
            r#"{"auths": {"ghcr.io": {"username": "bot", "password": "spec-token"}}}"#,
        )
        .unwrap();
        let default = || union_registry::DockerConfig::load(&user).unwrap();

        let hub = plan_from("python:3.11-slim", None);
        let creds =
            pull_credentials_from(&hub, &plan_config_over(&hub, default()).unwrap()).unwrap();
        assert_eq!(creds["docker.io"].username.as_deref(), Some("u"));
        assert_eq!(creds["docker.io"].password.as_deref(), Some("p"));

        let private = plan_from("ghcr.io/org/base:1", Some(spec_config.clone()));
        let config = plan_config_over(&private, default()).unwrap();
        let creds = pull_credentials_from(&private, &config).unwrap();
        assert_eq!(creds["ghcr.io"].username.as_deref(), Some("bot"));
        assert_eq!(creds["ghcr.io"].password.as_deref(), Some("spec-token"));
        // Registries the spec's file does not name fall back to the user's config.
        let hub_with_spec = plan_from("python:3.11-slim", Some(spec_config));
        let creds = pull_credentials_from(
            &hub_with_spec,
            &plan_config_over(&hub_with_spec, default()).unwrap(),
        )
        .unwrap();
        assert_eq!(creds["docker.io"].username.as_deref(), Some("u"));

        // A registry_config that does not exist is an error naming the file, not silence.
        let missing = plan_from("python:3.11-slim", Some(dir.path().join("nope.json")));
        let err = plan_config_over(&missing, default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.json"), "{err}");
    }
}
