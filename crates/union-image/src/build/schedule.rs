//! Building many plans: nested bases first, identical images once, bounded concurrency.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use futures_util::{FutureExt, StreamExt};

use super::{BuildAllOptions, BuildError, BuildReporter, Builder, ExistenceCheck, Outcome};
use crate::dockerfile::BuildPlan;

impl Builder {
    /// Check, build and push one plan (its nested base must be done already).
    async fn build_one(
        &self,
        plan: &BuildPlan,
        options: &BuildAllOptions,
        existence: &dyn ExistenceCheck,
        reporter: &dyn BuildReporter,
    ) -> Result<Outcome, BuildError> {
        let image = plan.image_name.as_str();
        if !(options.force || plan.force) && existence.exists(image).await? {
            return Ok(Outcome::Exists);
        }
        let start = Instant::now();
        self.build(plan, reporter).await?;
        let pushed = options.push && plan.push;
        if pushed {
            self.push(plan, reporter).await?;
        }
        Ok(Outcome::Built {
            pushed,
            duration: start.elapsed(),
        })
    }

    /// Build every plan and its nested bases: identical images (same name) once, bases before
    /// the images on them, at most `options.concurrency` at a time. Results are in first-seen
    /// order, bases included; an image whose base failed is not attempted.
    pub async fn build_all(
        &self,
        plans: &[BuildPlan],
        options: &BuildAllOptions,
        existence: &dyn ExistenceCheck,
        reporter: &dyn BuildReporter,
    ) -> Vec<(String, Result<Outcome, BuildError>)> {
        let (levels, order) = levels(plans);
        let mut results: HashMap<String, Result<Outcome, BuildError>> = HashMap::new();
        let concurrency = options.concurrency.max(1);
        for level in levels {
            let failed: HashSet<String> = results
                .iter()
                .filter(|(_, r)| r.is_err())
                .map(|(k, _)| k.clone())
                .collect();
            let runnable: Vec<&BuildPlan> = level
                .into_iter()
                .filter(|p| {
                    let base_failed = p
                        .base
                        .as_deref()
                        .is_some_and(|b| failed.contains(&b.image_name));
                    if base_failed {
                        let err = BuildError::Build {
                            image: p.image_name.clone(),
                            message: format!(
                                "its base image {} could not be built",
                                p.base.as_deref().unwrap().image_name
                            ),
                        };
                        reporter.finished(&p.image_name, Err(&err));
                        results.insert(p.image_name.clone(), Err(err));
                    }
                    !base_failed
                })
                .collect();
            let done: Vec<(String, Result<Outcome, BuildError>)> =
                futures_util::stream::iter(runnable.into_iter().map(|p| {
                    async move {
                        reporter.started(&p.image_name);
                        let r = self.build_one(p, options, existence, reporter).await;
                        reporter.finished(&p.image_name, r.as_ref());
                        (p.image_name.clone(), r)
                    }
                    .boxed()
                }))
                .buffer_unordered(concurrency)
                .collect()
                .await;
            results.extend(done);
        }
        order
            .into_iter()
            .filter_map(|name| results.remove(name).map(|r| (name.to_string(), r)))
            .collect()
    }
}

/// The plans and their nested bases by level (a base is one level below the image built on it),
/// each image once, and the images in first-seen order, bases first.
fn levels(plans: &[BuildPlan]) -> (Vec<Vec<&BuildPlan>>, Vec<&str>) {
    let mut levels: Vec<Vec<&BuildPlan>> = Vec::new();
    let mut level_of: HashMap<&str, usize> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    fn depth(p: &BuildPlan) -> usize {
        p.base.as_deref().map(|b| depth(b) + 1).unwrap_or(0)
    }
    fn visit<'a>(
        p: &'a BuildPlan,
        levels: &mut Vec<Vec<&'a BuildPlan>>,
        level_of: &mut HashMap<&'a str, usize>,
        order: &mut Vec<&'a str>,
    ) {
        if let Some(b) = p.base.as_deref() {
            visit(b, levels, level_of, order);
        }
        if level_of.contains_key(p.image_name.as_str()) {
            return;
        }
        let d = depth(p);
        if levels.len() <= d {
            levels.resize_with(d + 1, Vec::new);
        }
        levels[d].push(p);
        level_of.insert(&p.image_name, d);
        order.push(&p.image_name);
    }
    for p in plans {
        visit(p, &mut levels, &mut level_of, &mut order);
    }
    (levels, order)
}
