//! Green's size at each step of a rollout, from the `steps` percentages and the
//! `max_surge_percent` bound. Pure arithmetic.

/// The sizes a rollout goes through and the extra capacity it needs at most.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepPlan {
    /// Green's size at each step, strictly increasing; the last is the target capacity.
    pub sizes: Vec<u32>,
    /// The most instances running above the target capacity during the rollout: the
    /// largest growth of one step (blue shrinks by a step's share only after it).
    pub surge: u32,
}

/// Green's sizes for `percents` of `target` (each rounded up, at least one instance;
/// steps that round to the same size are one step; the last is always 100%), with every
/// step's growth cut to `max_surge_percent` of `target` (rounded down, at least one
/// instance) by steps in between.
pub fn plan_steps(target: u32, percents: &[u32], max_surge_percent: Option<u32>) -> StepPlan {
    let mut wanted: Vec<u32> = percents
        .iter()
        .map(|p| {
            let size = (u64::from(target) * u64::from((*p).min(100))).div_ceil(100);
            u32::try_from(size).unwrap_or(target).clamp(1.min(target), target)
        })
        .collect();
    wanted.push(target);
    let max_growth =
        max_surge_percent.map_or(target, |p| ((u64::from(target) * u64::from(p)) / 100).max(1) as u32);
    let mut sizes: Vec<u32> = Vec::new();
    let mut at = 0u32;
    for size in wanted {
        while at < size {
            at = (at + max_growth.max(1)).min(size);
            sizes.push(at);
        }
    }
    if sizes.is_empty() {
        sizes.push(target);
    }
    let mut previous = 0;
    let surge = sizes
        .iter()
        .map(|s| {
            let growth = s - previous;
            previous = *s;
            growth
        })
        .max()
        .unwrap_or(0);
    StepPlan { sizes, surge }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_become_sizes() {
        assert_eq!(plan_steps(10, &[10, 50, 100], None), StepPlan { sizes: vec![1, 5, 10], surge: 5 });
        assert_eq!(plan_steps(10, &[], None), StepPlan { sizes: vec![10], surge: 10 }, "all at once");
        assert_eq!(plan_steps(3, &[10, 20], None).sizes, [1, 3], "rounded up; equal sizes are one step");
        assert_eq!(plan_steps(4, &[50], None).sizes, [2, 4], "the last step is always the full capacity");
        assert_eq!(plan_steps(1, &[10, 50, 100], None).sizes, [1]);
    }

    #[test]
    fn max_surge_splits_large_steps() {
        assert_eq!(plan_steps(10, &[], Some(25)), StepPlan { sizes: vec![2, 4, 6, 8, 10], surge: 2 });
        assert_eq!(plan_steps(10, &[10, 50, 100], Some(30)).sizes, [1, 4, 5, 8, 10]);
        assert_eq!(plan_steps(3, &[], Some(1)).sizes, [1, 2, 3], "at least one instance per step");
        let plan = plan_steps(100, &[10, 50], Some(20));
        assert!(plan.surge <= 20, "{plan:?}");
        assert_eq!(plan.sizes.last(), Some(&100));
    }
}
