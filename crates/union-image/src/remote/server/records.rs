//! The builds this server ran, recorded in `<data dir>/image-builds.json`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// File (in the data dir) recording the builds.
pub const RECORD_FILE: &str = "image-builds.json";

/// One build this server ran, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// The fully-qualified image.
    pub image: String,
    /// The image as the build was asked for (`target_image`, maybe without a registry).
    #[serde(default)]
    pub target: String,
    /// The spec's name.
    pub spec_name: String,
    /// `building`, `built`, `failed` or `cancelled`.
    pub status: String,
    /// Unix seconds.
    pub started_at: u64,
    /// Unix seconds, when finished.
    #[serde(default)]
    pub finished_at: Option<u64>,
    /// The error, when failed.
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RecordFile {
    builds: Vec<BuildRecord>,
}

/// The builds recorded in `<data dir>/image-builds.json`.
#[derive(Debug)]
pub(super) struct Records {
    path: PathBuf,
    data: Mutex<RecordFile>,
}

impl Records {
    pub(super) fn open(dir: &Path) -> Records {
        let path = dir.join(RECORD_FILE);
        let data = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Records {
            path,
            data: Mutex::new(data),
        }
    }

    fn save(&self, data: &RecordFile) {
        // Best effort: a record that cannot be written must not fail a build.
        let tmp = self.path.with_extension("json.tmp");
        if let Ok(bytes) = serde_json::to_vec_pretty(data) {
            if std::fs::write(&tmp, bytes).is_ok() {
                let _ = std::fs::rename(&tmp, &self.path);
            }
        }
    }

    pub(super) fn start(&self, image: &str, target: &str, spec_name: &str) -> usize {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        data.builds.push(BuildRecord {
            image: image.to_string(),
            target: target.to_string(),
            spec_name: spec_name.to_string(),
            status: "building".into(),
            started_at: now(),
            finished_at: None,
            error: None,
        });
        self.save(&data);
        data.builds.len() - 1
    }

    pub(super) fn finish(&self, index: usize, status: &str, error: Option<String>) {
        let mut data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = data.builds.get_mut(index) {
            r.status = status.to_string();
            r.finished_at = Some(now());
            r.error = error;
        }
        self.save(&data);
    }

    /// Every build recorded so far.
    pub(super) fn all(&self) -> Vec<BuildRecord> {
        self.data
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .builds
            .clone()
    }

    /// The fully-qualified image of the latest successful build asked for as `name` (or
    /// whose fully-qualified name is `name`).
    pub(super) fn built(&self, name: &str) -> Option<String> {
        let data = self.data.lock().unwrap_or_else(|p| p.into_inner());
        data.builds
            .iter()
            .rev()
            .find(|r| r.status == "built" && (r.target == name || r.image == name))
            .map(|r| r.image.clone())
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
