//! Can the cluster pull the task images? An image the cluster cannot pull fails every task with
//! ErrImagePull / ImagePullBackOff, usually because it was pushed to a private repository.
//! Neither pyflyte nor union checks; we ask each image's registry for its manifest the way a
//! node without credentials would (anonymously), or with the user's own credentials when they
//! say the cluster has an image pull secret (we cannot read the secret itself).

use union_registry::{ImageReference, ImageStatus, RegistryClient, RegistryError};

/// How to check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullCheck {
    /// Refuse to register when an image is not pullable (`--require-pullable-images`).
    pub require: bool,
    /// The cluster has a pull secret (`--image-pull-secret`): check with local credentials.
    pub with_credentials: bool,
}

/// An image the cluster would fail to pull, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpullable {
    pub image: String,
    pub reason: String,
}

/// Check each image; images whose registry cannot be asked at all (offline, unknown host) are
/// not reported: nothing is known about them.
pub async fn check(images: &[String], how: PullCheck) -> Vec<Unpullable> {
    let mut builder = RegistryClient::builder();
    if !how.with_credentials {
        builder = builder.anonymous();
    }
    let Ok(client) = builder.build() else {
        return Vec::new();
    };
    // All at once: one round trip (and a token request) per registry, not per image in turn.
    let checks = images.iter().map(|image| {
        let client = &client;
        async move {
            let reference = ImageReference::parse(image).ok()?;
            let reason = match client.check(&reference).await {
                ImageStatus::Exists { .. } => return None,
                ImageStatus::Missing => format!("{} has no such image", reference.registry()),
                ImageStatus::Unknown {
                    reason: RegistryError::AuthenticationRequired { host },
                } => format!("{host} refuses to serve it without credentials"),
                ImageStatus::Unknown {
                    reason: RegistryError::CredentialsRefused { host },
                } => format!("{host} refuses your credentials for it"),
                ImageStatus::Unknown { .. } => return None,
            };
            Some(Unpullable {
                image: image.clone(),
                reason,
            })
        }
    });
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// What to tell the user about one image.
pub fn message(u: &Unpullable, how: PullCheck) -> String {
    let fix = if how.with_credentials {
        "check that the image exists and that the pull secret holds credentials for its registry"
    } else {
        "make the repository public, or give the cluster an image pull secret for it (then pass --image-pull-secret NAME)"
    };
    format!(
        "the cluster cannot pull {} ({}): its tasks would fail with ErrImagePull / ImagePullBackOff; {fix}",
        u.image, u.reason
    )
}
