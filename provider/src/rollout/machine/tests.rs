use super::*;
use proptest::prelude::*;

fn settings(groups: &[&str], required: usize) -> Settings {
    Settings {
        target_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        required_healthy: required,
        drain: Duration::from_secs(1),
    }
}

fn blue() -> Blue {
    Blue { fleet_id: "sfr-blue".into(), instances: vec!["i-b1".into(), "i-b2".into()] }
}

fn health(group: &str, states: &[(&str, &str)]) -> Observation {
    Observation::Health {
        instances: states.iter().map(|(i, _)| (*i).to_owned()).collect(),
        by_group: BTreeMap::from([(
            group.to_owned(),
            states
                .iter()
                .map(|(i, s)| TargetHealth {
                    instance_id: (*i).into(),
                    state: (*s).into(),
                    reason: (*s != "healthy").then(|| "Target.ResponseCodeMismatch".into()),
                    description: None,
                })
                .collect(),
        )]),
    }
}

fn fulfilled(instances: &[&str]) -> Observation {
    Observation::GreenStatus {
        state: FleetState::Open,
        instances: instances.iter().map(|i| (*i).to_owned()).collect(),
        fulfilled: true,
        error: None,
    }
}

#[test]
fn happy_rollout_switches_after_green_is_healthy() {
    let mut r = Rollout::new(settings(&["tg"], 2), Some(blue()));
    assert_eq!(r.next_action(), Action::RequestGreen);
    r.observe(Observation::GreenRequested { fleet_id: "sfr-green".into() });
    assert_eq!(r.next_action(), Action::PollGreen { fleet_id: "sfr-green".into() });
    r.observe(fulfilled(&["i-g1", "i-g2"]));
    assert_eq!(r.next_action(), Action::Register { instances: vec!["i-g1".into(), "i-g2".into()] });
    r.observe(Observation::Registered);
    r.observe(health("tg", &[("i-g1", "healthy"), ("i-g2", "initial")]));
    assert_eq!(r.next_action(), Action::PollHealth { fleet_id: "sfr-green".into() }, "1/2 is not enough");
    r.observe(health("tg", &[("i-g1", "healthy"), ("i-g2", "healthy")]));
    assert_eq!(r.next_action(), Action::Deregister { instances: vec!["i-b1".into(), "i-b2".into()] });
    r.observe(Observation::Deregistered);
    assert_eq!(r.next_action(), Action::WaitDrain(Duration::from_secs(1)));
    r.observe(Observation::DrainDone);
    assert_eq!(r.next_action(), Action::Cancel { fleet_id: "sfr-blue".into() });
    r.observe(Observation::Cancelled { fleet_id: "sfr-blue".into() });
    assert_eq!(
        r.next_action(),
        Action::Finish(Outcome::Switched {
            fleet_id: "sfr-green".into(),
            instances: vec!["i-g1".into(), "i-g2".into()]
        })
    );
}

#[test]
fn unhealthy_green_times_out_and_rolls_back_naming_each_instance() {
    let mut r = Rollout::new(settings(&["tg"], 2), Some(blue()));
    r.observe(Observation::GreenRequested { fleet_id: "sfr-green".into() });
    r.observe(fulfilled(&["i-g1", "i-g2"]));
    r.observe(Observation::Registered);
    r.observe(health("tg", &[("i-g1", "unhealthy"), ("i-g2", "healthy")]));
    r.observe(Observation::DeadlinePassed);
    assert_eq!(r.next_action(), Action::Deregister { instances: vec!["i-g1".into(), "i-g2".into()] });
    r.observe(Observation::Deregistered);
    assert_eq!(r.next_action(), Action::Cancel { fleet_id: "sfr-green".into() });
    r.observe(Observation::Cancelled { fleet_id: "sfr-green".into() });
    let Action::Finish(Outcome::RolledBack { failure }) = r.next_action() else { panic!("rolled back") };
    let text = failure.to_string();
    assert!(text.contains("i-g1 unhealthy in tg: Target.ResponseCodeMismatch"), "{text}");
    assert!(!text.contains("i-g2"), "healthy instances are not blamed: {text}");
}

#[test]
fn fleet_error_fails_fast_with_aws_reason() {
    let mut r = Rollout::new(settings(&["tg"], 1), None);
    r.observe(Observation::GreenRequested { fleet_id: "sfr-green".into() });
    r.observe(Observation::GreenStatus {
        state: FleetState::Open,
        instances: vec![],
        fulfilled: false,
        error: Some("iamFleetRoleInvalid: the fleet role is not valid".into()),
    });
    assert_eq!(r.next_action(), Action::Cancel { fleet_id: "sfr-green".into() }, "nothing registered yet");
    r.observe(Observation::Cancelled { fleet_id: "sfr-green".into() });
    let Action::Finish(Outcome::RolledBack { failure }) = r.next_action() else { panic!("rolled back") };
    assert!(failure.to_string().contains("iamFleetRoleInvalid"), "{failure}");
}

#[test]
fn reclaimed_instance_is_replaced_not_blamed() {
    let mut r = Rollout::new(settings(&["tg"], 2), None);
    r.observe(Observation::GreenRequested { fleet_id: "sfr-green".into() });
    r.observe(fulfilled(&["i-g1", "i-g2"]));
    r.observe(Observation::Registered);
    // i-g2 vanished from the fleet: Spot took it back.
    r.observe(health("tg", &[("i-g1", "healthy")]));
    assert_eq!(r.next_action(), Action::PollGreen { fleet_id: "sfr-green".into() });
    r.observe(fulfilled(&["i-g1", "i-g3"]));
    assert_eq!(r.next_action(), Action::Register { instances: vec!["i-g1".into(), "i-g3".into()] });
    r.observe(Observation::Registered);
    r.observe(health("tg", &[("i-g1", "healthy"), ("i-g3", "healthy")]));
    assert!(matches!(r.next_action(), Action::Finish(Outcome::Switched { .. })));
}

#[test]
fn stop_after_green_is_healthy_completes_the_switch() {
    let mut r = Rollout::new(settings(&["tg"], 1), Some(blue()));
    r.observe(Observation::GreenRequested { fleet_id: "sfr-green".into() });
    r.observe(fulfilled(&["i-g1"]));
    r.observe(Observation::Registered);
    r.observe(health("tg", &[("i-g1", "healthy")]));
    r.observe(Observation::Deregistered);
    r.observe(Observation::StopRequested);
    assert_eq!(r.next_action(), Action::Cancel { fleet_id: "sfr-blue".into() });
}

#[test]
fn required_healthy_rounds_up() {
    assert_eq!(required_healthy(2, 100), 2);
    assert_eq!(required_healthy(3, 50), 2);
    assert_eq!(required_healthy(10, 0), 1, "at least one healthy instance");
    assert_eq!(required_healthy(1, 100), 1);
}

/// What the world answers when the machine acts; `Chaos` values perturb it.
#[derive(Clone, Debug)]
enum Chaos {
    Nothing,
    NotYetFulfilled,
    FleetError,
    FleetClosed,
    Unhealthy,
    Reclaim,
    Stop,
    Deadline,
    RequestFails,
}

fn chaos() -> impl Strategy<Value = Chaos> {
    prop_oneof![
        6 => Just(Chaos::Nothing),
        2 => Just(Chaos::NotYetFulfilled),
        1 => Just(Chaos::FleetError),
        1 => Just(Chaos::FleetClosed),
        3 => Just(Chaos::Unhealthy),
        2 => Just(Chaos::Reclaim),
        1 => Just(Chaos::Stop),
        1 => Just(Chaos::Deadline),
        1 => Just(Chaos::RequestFails),
    ]
}

#[derive(Default, Debug)]
struct World {
    /// fleet id -> instances; removed when cancelled.
    open: BTreeMap<String, Vec<String>>,
    requested: Vec<String>,
    cancelled: Vec<String>,
    deregistered: Vec<String>,
    next_instance: u32,
    /// What the world last told the machine: green fulfilled, green all healthy.
    green_fulfilled: bool,
    green_reported_healthy: bool,
}

impl World {
    fn instances(&mut self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| {
                self.next_instance += 1;
                format!("i-{}", self.next_instance)
            })
            .collect()
    }
}

fn run(with_blue: bool, groups: usize, capacity: usize, script: Vec<Chaos>) -> (World, Outcome, Rollout) {
    let group_names: Vec<String> = (0..groups).map(|g| format!("tg{g}")).collect();
    let mut world = World::default();
    let blue = with_blue.then(|| {
        let instances = world.instances(capacity);
        world.open.insert("sfr-blue".into(), instances.clone());
        Blue { fleet_id: "sfr-blue".into(), instances }
    });
    let settings = Settings {
        target_groups: group_names.clone(),
        required_healthy: capacity,
        drain: Duration::from_millis(10),
    };
    let mut rollout = Rollout::new(settings, blue);
    // After the script, the deadline passes once and the world cooperates.
    let mut script = script.into_iter().chain(std::iter::once(Chaos::Deadline));
    for _step in 0..10_000 {
        let chaos = script.next().unwrap_or(Chaos::Nothing);
        let action = rollout.next_action();
        let observation = match (&action, &chaos) {
            (Action::Finish(outcome), _) => return (world, outcome.clone(), rollout),
            // Stop and deadline arrive between actions, as the runner checks them.
            (_, Chaos::Stop) => Observation::StopRequested,
            (_, Chaos::Deadline) => Observation::DeadlinePassed,
            (Action::RequestGreen, Chaos::RequestFails) => {
                Observation::RequestFailed { reason: "nope".into() }
            }
            (Action::RequestGreen, _) => {
                let id = format!("sfr-green{}", world.requested.len());
                let instances = world.instances(capacity);
                world.open.insert(id.clone(), instances);
                world.requested.push(id.clone());
                Observation::GreenRequested { fleet_id: id }
            }
            (Action::PollGreen { fleet_id }, c) => {
                let instances = world.open.get(fleet_id).cloned();
                match (instances, c) {
                    (None, _) | (_, Chaos::FleetClosed) => {
                        world.open.remove(fleet_id);
                        world.cancelled.push(fleet_id.clone());
                        Observation::GreenStatus {
                            state: FleetState::Closed,
                            instances: vec![],
                            fulfilled: false,
                            error: None,
                        }
                    }
                    (Some(instances), Chaos::FleetError) => Observation::GreenStatus {
                        state: FleetState::Open,
                        instances,
                        fulfilled: false,
                        error: Some("capacity-not-available".into()),
                    },
                    (Some(instances), Chaos::NotYetFulfilled) => Observation::GreenStatus {
                        state: FleetState::Open,
                        instances,
                        fulfilled: false,
                        error: None,
                    },
                    (Some(instances), _) => {
                        world.green_fulfilled = true;
                        Observation::GreenStatus {
                            state: FleetState::Open,
                            instances,
                            fulfilled: true,
                            error: None,
                        }
                    }
                }
            }
            (Action::Register { .. }, _) => Observation::Registered,
            (Action::PollHealth { fleet_id }, c) => {
                let Some(mut instances) = world.open.get(fleet_id).cloned() else {
                    continue;
                };
                if matches!(c, Chaos::Reclaim) && !instances.is_empty() {
                    instances.remove(0);
                    let fresh = world.instances(1);
                    let mut replaced = instances.clone();
                    replaced.extend(fresh);
                    world.open.insert(fleet_id.clone(), replaced);
                }
                let state = if matches!(c, Chaos::Unhealthy) { "unhealthy" } else { "healthy" };
                world.green_reported_healthy = state == "healthy" && !matches!(c, Chaos::Reclaim);
                let by_group = group_names
                    .iter()
                    .map(|g| {
                        (
                            g.clone(),
                            instances
                                .iter()
                                .map(|i| TargetHealth {
                                    instance_id: i.clone(),
                                    state: state.into(),
                                    reason: None,
                                    description: None,
                                })
                                .collect(),
                        )
                    })
                    .collect();
                Observation::Health { instances, by_group }
            }
            (Action::Deregister { instances }, _) => {
                if instances.iter().any(|i| world.open.get("sfr-blue").is_some_and(|b| b.contains(i))) {
                    assert!(
                        world.green_reported_healthy,
                        "blue deregistered before green was reported healthy"
                    );
                }
                world.deregistered.extend(instances.iter().cloned());
                Observation::Deregistered
            }
            (Action::WaitDrain(_), _) => Observation::DrainDone,
            (Action::Cancel { fleet_id }, _) => {
                if fleet_id == "sfr-blue" {
                    let gate_passed = if group_names.is_empty() {
                        world.green_fulfilled
                    } else {
                        world.green_reported_healthy
                    };
                    assert!(gate_passed, "blue cancelled before green was healthy");
                }
                world.open.remove(fleet_id);
                world.cancelled.push(fleet_id.clone());
                Observation::Cancelled { fleet_id: fleet_id.clone() }
            }
        };
        rollout.observe(observation);
    }
    panic!("rollout did not finish in 10,000 steps: {rollout:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn every_rollout_ends_with_exactly_one_serving_fleet(
        with_blue in any::<bool>(),
        groups in 0usize..3,
        capacity in 1usize..4,
        script in proptest::collection::vec(chaos(), 0..40),
    ) {
        let (world, outcome, _) = run(with_blue, groups, capacity, script);
        // Every fleet requested is serving or cancelled; nothing else is open.
        let serving: Vec<&String> = world.open.keys().collect();
        match &outcome {
            Outcome::Switched { fleet_id, instances } => {
                prop_assert_eq!(serving, vec![fleet_id], "only green serves");
                prop_assert!(world.requested.contains(fleet_id));
                prop_assert_eq!(&world.open[fleet_id], instances, "state names green's current instances");
                prop_assert!(!world.deregistered.iter().any(|i| instances.contains(i)), "green stays registered");
            }
            Outcome::RolledBack { .. } => {
                if with_blue {
                    prop_assert_eq!(serving, vec!["sfr-blue"], "blue still serves");
                    prop_assert!(!world.deregistered.iter().any(|i| world.open["sfr-blue"].contains(i)),
                        "blue untouched on rollback");
                } else {
                    prop_assert!(serving.is_empty(), "a failed first deploy leaves nothing: {:?}", serving);
                }
            }
        }
        for fleet in &world.requested {
            prop_assert!(world.open.contains_key(fleet) || world.cancelled.contains(fleet),
                "fleet {} neither serving nor cancelled", fleet);
        }
    }
}
