//! Target health as a load balancer reports it, and the one judgement the provider
//! makes of it: how many of an app's instances are healthy in every target group, and
//! which ones are not (with the load balancer's reason). The rollout's health gate, a
//! resize and the `healthy_count` a read reports all ask [`assess`].
//!
//! Pure: no I/O, no clock. `aws` returns these types, `rollout` decides with them.

/// Health of one target as the load balancer reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetHealth {
    pub instance_id: String,
    /// `healthy`, `unhealthy`, `initial`, `unused`, `draining`, `unavailable`.
    pub state: String,
    pub reason: Option<String>,
    pub description: Option<String>,
}

impl TargetHealth {
    pub fn is_healthy(&self) -> bool {
        self.state == "healthy"
    }

    /// Deregistered and waiting for its connections to drain: on its way out.
    pub fn is_draining(&self) -> bool {
        self.state == "draining"
    }
}

/// An instance that is not healthy in a target group, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unhealthy {
    pub instance_id: String,
    pub target_group: String,
    pub state: String,
    pub reason: String,
}

/// How a set of instances fares in its target groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assessment {
    /// The fewest of the instances healthy in any one target group: every group has at
    /// least this many of them healthy. All of them when there is no group.
    pub healthy: usize,
    /// Every instance that is not healthy in a group (registered or not).
    pub unhealthy: Vec<Unhealthy>,
}

/// Judges `instances` against the health each target group reports (`groups`: the
/// group's id and every target it knows).
pub fn assess<'a>(
    instances: &[String],
    groups: impl IntoIterator<Item = (&'a str, &'a [TargetHealth])>,
) -> Assessment {
    let mut assessment = Assessment { healthy: instances.len(), unhealthy: Vec::new() };
    for (group, targets) in groups {
        let mut healthy = 0;
        for instance in instances {
            match targets.iter().find(|t| &t.instance_id == instance) {
                Some(t) if t.is_healthy() => healthy += 1,
                Some(t) => assessment.unhealthy.push(Unhealthy {
                    instance_id: instance.clone(),
                    target_group: group.to_owned(),
                    state: t.state.clone(),
                    reason: [t.reason.as_deref(), t.description.as_deref()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(": "),
                }),
                None => assessment.unhealthy.push(Unhealthy {
                    instance_id: instance.clone(),
                    target_group: group.to_owned(),
                    state: "unregistered".to_owned(),
                    reason: "not registered in the target group".to_owned(),
                }),
            }
        }
        assessment.healthy = assessment.healthy.min(healthy);
    }
    assessment
}

/// Healthy instances needed out of `capacity` for `min_healthy_percent` (at least one).
pub fn required_healthy(capacity: u32, min_healthy_percent: u32) -> usize {
    let needed = (u64::from(capacity) * u64::from(min_healthy_percent)).div_ceil(100);
    usize::try_from(needed.max(1)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(id: &str, state: &str) -> TargetHealth {
        TargetHealth {
            instance_id: id.into(),
            state: state.into(),
            reason: (state != "healthy").then(|| "Target.ResponseCodeMismatch".into()),
            description: (state != "healthy").then(|| "Health checks failed with these codes: [500]".into()),
        }
    }

    #[test]
    fn the_weakest_group_decides_and_every_problem_is_named() {
        let instances = vec!["i-1".to_owned(), "i-2".to_owned()];
        let web = [target("i-1", "healthy"), target("i-2", "healthy"), target("i-old", "healthy")];
        let api = [target("i-1", "healthy"), target("i-2", "unhealthy")];
        let result = assess(&instances, [("web", &web[..]), ("api", &api[..])]);
        assert_eq!(result.healthy, 1, "api has only i-1 healthy; i-old is not one of the instances");
        assert_eq!(result.unhealthy.len(), 1);
        let problem = &result.unhealthy[0];
        assert_eq!((problem.instance_id.as_str(), problem.target_group.as_str()), ("i-2", "api"));
        assert_eq!(
            problem.reason,
            "Target.ResponseCodeMismatch: Health checks failed with these codes: [500]"
        );

        let unregistered = assess(&instances, [("web", &web[..1])]);
        assert_eq!(unregistered.healthy, 1);
        assert_eq!(unregistered.unhealthy[0].state, "unregistered");

        assert_eq!(assess(&instances, []).healthy, 2, "without target groups every instance counts");
    }
}
