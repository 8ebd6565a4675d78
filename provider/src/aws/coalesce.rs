//! One mechanism for every read that many resources of a Terraform run share.
//!
//! A [`Coalescer`] answers lookups by key from a fetch function, and
//! - shares a call among everyone asking for the same key while it is in flight;
//! - in [`Mode::Batched`], gathers the keys asked for while a call is in flight into the
//!   next call (one `DescribeImages` for many AMI ids); in [`Mode::PerKey`], starts one
//!   call per key at once (one `DescribeTargetHealth` per target group);
//! - remembers answers for a time to live; errors are not remembered.
//!
//! Every coalescer is made by a [`Registry`], and [`Registry::forget_all`] drops what
//! all of them remember: a new shared read is one line in `reads.rs`, and none can be
//! left out when the provider changes something.

use super::AwsError;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// What a fetch returns: the value of each key it found (a key it did not find has none).
pub type Found<K, V> = Result<HashMap<K, V>, AwsError>;

type Fetch<K, V> = dyn Fn(Vec<K>) -> BoxFuture<'static, Found<K, V>> + Send + Sync;

type Answer<V> = Result<Option<V>, AwsError>;

/// How keys are fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One call at a time; keys asked for meanwhile go together into the next call.
    Batched,
    /// A call per key, at once.
    PerKey,
}

pub struct Coalescer<K, V> {
    name: &'static str,
    mode: Mode,
    ttl: Duration,
    fetch: Box<Fetch<K, V>>,
    state: Mutex<State<K, V>>,
}

struct State<K, V> {
    /// Bumped by `forget`: answers of calls started before it are handed out but not kept.
    epoch: u64,
    known: HashMap<K, (Instant, Option<V>)>,
    /// Calls in flight, by key and the epoch they started in: who waits for them.
    in_flight: HashMap<(K, u64), Vec<oneshot::Sender<Answer<V>>>>,
    /// Batched mode: keys for the next call, and whether a call is in flight.
    next: HashMap<K, Vec<oneshot::Sender<Answer<V>>>>,
    busy: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K, V> Coalescer<K, V>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(name: &'static str, mode: Mode, ttl: Duration, fetch: Box<Fetch<K, V>>) -> Self {
        let state = State {
            epoch: 0,
            known: HashMap::new(),
            in_flight: HashMap::new(),
            next: HashMap::new(),
            busy: false,
        };
        Self { name, mode, ttl, fetch, state: Mutex::new(state) }
    }

    /// The value of `key`; `None` when the fetch did not find it.
    pub async fn get(self: &Arc<Self>, key: K) -> Answer<V> {
        let answer = {
            let mut state = lock(&self.state);
            if let Some((at, value)) = state.known.get(&key)
                && at.elapsed() < self.ttl
            {
                return Ok(value.clone());
            }
            let (tx, rx) = oneshot::channel();
            let epoch = state.epoch;
            match state.in_flight.get_mut(&(key.clone(), epoch)) {
                // A call started since the last `forget` answers this key: share it.
                Some(waiters) => waiters.push(tx),
                None => match self.mode {
                    Mode::PerKey => {
                        state.in_flight.insert((key.clone(), epoch), vec![tx]);
                        tokio::spawn(Arc::clone(self).call(vec![key], epoch));
                    }
                    Mode::Batched => {
                        state.next.entry(key).or_default().push(tx);
                        if !state.busy {
                            state.busy = true;
                            tokio::spawn(Arc::clone(self).drive());
                        }
                    }
                },
            }
            rx
        };
        // The call runs in its own task: a caller that goes away does not cancel it.
        answer.await.unwrap_or_else(|_| Err(AwsError::plain(self.name, "the shared read was abandoned")))
    }

    /// Batched mode: calls for whatever waits, until nothing does.
    async fn drive(self: Arc<Self>) {
        loop {
            let (keys, epoch) = {
                let mut state = lock(&self.state);
                if state.next.is_empty() {
                    state.busy = false;
                    return;
                }
                let epoch = state.epoch;
                let batch = std::mem::take(&mut state.next);
                let keys: Vec<K> = batch.keys().cloned().collect();
                for (key, waiters) in batch {
                    state.in_flight.insert((key, epoch), waiters);
                }
                (keys, epoch)
            };
            Arc::clone(&self).call(keys, epoch).await;
        }
    }

    /// Fetches `keys` and answers everyone waiting for them.
    async fn call(self: Arc<Self>, keys: Vec<K>, epoch: u64) {
        let result = (self.fetch)(keys.clone()).await;
        let mut state = lock(&self.state);
        let keep = state.epoch == epoch;
        for key in keys {
            let answer = match &result {
                Ok(found) => Ok(found.get(&key).cloned()),
                Err(e) => Err(e.clone()),
            };
            if keep && let Ok(value) = &answer {
                state.known.insert(key.clone(), (Instant::now(), value.clone()));
            }
            for waiter in state.in_flight.remove(&(key, epoch)).unwrap_or_default() {
                let _ = waiter.send(answer.clone());
            }
        }
    }
}

/// Dropping what a coalescer remembers, whatever its keys and values.
trait Forget: Send + Sync {
    fn forget(&self);
}

impl<K, V> Forget for Coalescer<K, V>
where
    K: Send + Sync,
    V: Send + Sync,
{
    fn forget(&self) {
        let mut state = lock(&self.state);
        state.epoch += 1;
        state.known.clear();
    }
}

/// Makes coalescers and forgets for all of them.
pub struct Registry {
    ttl: Duration,
    members: Vec<Arc<dyn Forget>>,
}

/// A coalescer that remembers nothing: a call is shared only by those who ask for its
/// key while it is in flight, so every answer is at least as new as the call it came
/// from; in [`Mode::Batched`] the keys asked for meanwhile go into the next call. Not
/// part of a [`Registry`]: there is nothing to forget.
pub fn in_flight_only<K, V, F>(name: &'static str, mode: Mode, fetch: F) -> Arc<Coalescer<K, V>>
where
    K: Clone + Eq + Hash + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    F: Fn(Vec<K>) -> BoxFuture<'static, Found<K, V>> + Send + Sync + 'static,
{
    Arc::new(Coalescer::new(name, mode, Duration::ZERO, Box::new(fetch)))
}

impl Registry {
    /// Coalescers made here remember answers for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, members: Vec::new() }
    }

    /// A coalescer named `name` (in errors) that fetches with `fetch`.
    pub fn coalescer<K, V, F>(&mut self, name: &'static str, mode: Mode, fetch: F) -> Arc<Coalescer<K, V>>
    where
        K: Clone + Eq + Hash + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: Fn(Vec<K>) -> BoxFuture<'static, Found<K, V>> + Send + Sync + 'static,
    {
        let coalescer = Arc::new(Coalescer::new(name, mode, self.ttl, Box::new(fetch)));
        self.members.push(coalescer.clone());
        coalescer
    }

    /// Drops everything every coalescer remembers; calls in flight still answer those
    /// who asked before, but what they bring is not kept.
    pub fn forget_all(&self) {
        for member in &self.members {
            member.forget();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fetch that records every call's keys, takes 100 ms and knows keys below 100.
    fn recording(
        calls: Arc<Mutex<Vec<Vec<u32>>>>,
    ) -> impl Fn(Vec<u32>) -> BoxFuture<'static, Found<u32, String>> {
        move |mut keys: Vec<u32>| {
            keys.sort_unstable();
            lock(&calls).push(keys.clone());
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(keys.into_iter().filter(|k| *k < 100).map(|k| (k, format!("v{k}"))).collect())
            }
            .boxed()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_only_shares_a_call_while_it_runs_and_remembers_nothing() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let listing = in_flight_only("listing", Mode::PerKey, recording(calls.clone()));
        // Three asks while the first call runs share it.
        let (a, b, c) = tokio::join!(listing.get(7), listing.get(7), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            listing.get(7).await
        });
        assert_eq!(
            [a.ok().flatten(), b.ok().flatten(), c.ok().flatten()],
            [Some("v7".to_owned()), Some("v7".to_owned()), Some("v7".to_owned())]
        );
        assert_eq!(lock(&calls).len(), 1);
        // Asked again once it has answered: a new call, at once.
        assert_eq!(listing.get(7).await.ok().flatten().as_deref(), Some("v7"));
        assert_eq!(lock(&calls).len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn batched_keys_share_calls_and_answers_are_remembered() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut registry = Registry::new(Duration::from_secs(10));
        let images = registry.coalescer("describing AMIs", Mode::Batched, recording(calls.clone()));
        // The first key starts a call; the three that arrive while it is in flight go
        // together into the next one; a repeat of the first key joins the first call.
        let (a, b, c, d, again) = tokio::join!(
            images.get(1),
            async {
                tokio::task::yield_now().await;
                images.get(2).await
            },
            async {
                tokio::task::yield_now().await;
                images.get(3).await
            },
            async {
                tokio::task::yield_now().await;
                images.get(200).await
            },
            async {
                tokio::task::yield_now().await;
                images.get(1).await
            },
        );
        assert_eq!(*lock(&calls), [vec![1], vec![2, 3, 200]]);
        assert_eq!(a.ok().flatten().as_deref(), Some("v1"));
        assert_eq!(again.ok().flatten().as_deref(), Some("v1"));
        assert_eq!((b.ok().flatten(), c.ok().flatten()), (Some("v2".into()), Some("v3".into())));
        assert_eq!(d.ok(), Some(None), "a key the fetch did not find has no value");
        // Remembered, also that 200 does not exist: no further call.
        assert_eq!(images.get(3).await.ok().flatten().as_deref(), Some("v3"));
        assert_eq!(images.get(200).await.ok(), Some(None));
        assert_eq!(lock(&calls).len(), 2);
        // Until the time to live has passed.
        tokio::time::sleep(Duration::from_secs(11)).await;
        assert_eq!(images.get(3).await.ok().flatten().as_deref(), Some("v3"));
        assert_eq!(lock(&calls).len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn per_key_calls_start_at_once() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut registry = Registry::new(Duration::from_secs(10));
        let health = registry.coalescer("describing target health", Mode::PerKey, recording(calls.clone()));
        let started = Instant::now();
        let (a, b, a2) = tokio::join!(health.get(1), health.get(2), health.get(1));
        assert_eq!(started.elapsed(), Duration::from_millis(100), "the two calls ran side by side");
        assert_eq!(lock(&calls).len(), 2, "the same key shares its call");
        assert!(a.is_ok() && b.is_ok() && a2.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn forgetting_drops_answers_and_the_answers_of_calls_in_flight() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let mut registry = Registry::new(Duration::from_secs(10));
        let fleets = registry.coalescer("listing Spot Fleets", Mode::PerKey, recording(calls.clone()));
        let images = registry.coalescer("describing AMIs", Mode::Batched, recording(calls.clone()));
        fleets.get(1).await.ok();
        images.get(1).await.ok();
        registry.forget_all();
        fleets.get(1).await.ok();
        images.get(1).await.ok();
        assert_eq!(lock(&calls).len(), 4, "every coalescer of the registry forgot");

        // A call in flight when the provider changes something answers who asked
        // before, but a read after the change gets a call of its own.
        let (before, after) = tokio::join!(fleets.get(5), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            registry.forget_all();
            fleets.get(5).await
        });
        assert!(before.is_ok() && after.is_ok());
        assert_eq!(lock(&calls).len(), 6);
        fleets.get(5).await.ok();
        assert_eq!(lock(&calls).len(), 6, "the newer call's answer is kept");
    }

    #[tokio::test(start_paused = true)]
    async fn errors_reach_every_waiter_and_are_not_remembered() {
        let attempts = Arc::new(AtomicUsize::new(0));
        let counter = attempts.clone();
        let mut registry = Registry::new(Duration::from_secs(10));
        let flaky = registry.coalescer("listing things", Mode::Batched, move |_keys: Vec<u32>| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                if n == 0 {
                    Err(AwsError::plain("listing things", "throttled"))
                } else {
                    Ok(HashMap::from([(1, "one".to_owned())]))
                }
            }
            .boxed()
        });
        let (a, b) = tokio::join!(flaky.get(1), flaky.get(1));
        assert!(a.is_err() && b.is_err(), "both waited for the failed call");
        assert_eq!(flaky.get(1).await.ok().flatten().as_deref(), Some("one"));
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }
}
