//! A small profiler for finding the next bottleneck: forward time per layer (measured by the
//! containers that run them) and backward time per layer (each recorded op remembers the layer
//! that was running when it was created). Off unless enabled; `nabla bench --profile` prints it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static ENABLED: AtomicBool = AtomicBool::new(false);
static TABLE: Mutex<BTreeMap<String, Entry>> = Mutex::new(BTreeMap::new());

thread_local! {
    static SCOPE: RefCell<Option<std::sync::Arc<str>>> = const { RefCell::new(None) };
}

/// Accumulated time of one layer (or op).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Entry {
    pub forward: Duration,
    pub backward: Duration,
    pub forward_calls: usize,
    pub backward_calls: usize,
}

pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn is_enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Runs `f` as layer `name`: its time counts as that layer's forward time, and the ops it
/// records charge their backward time to it.
pub fn scope<R>(name: &str, f: impl FnOnce() -> R) -> R {
    if !is_enabled() {
        return f();
    }
    // Nested scopes get paths ("features/0: Conv2d(…)"); a parent's time includes its children's.
    let full = match SCOPE.with(|s| s.borrow().clone()) {
        Some(parent) => format!("{parent}/{name}"),
        None => name.to_string(),
    };
    let label: std::sync::Arc<str> = full.as_str().into();
    let previous = SCOPE.with(|s| s.replace(Some(label)));
    let t = std::time::Instant::now();
    let r = f();
    let elapsed = t.elapsed();
    SCOPE.with(|s| *s.borrow_mut() = previous);
    let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let e = table.entry(full).or_default();
    e.forward += elapsed;
    e.forward_calls += 1;
    r
}

/// The layer running now, if profiling.
pub(crate) fn current_scope() -> Option<std::sync::Arc<str>> {
    if !is_enabled() {
        return None;
    }
    SCOPE.with(|s| s.borrow().clone())
}

pub(crate) fn add_backward(name: &str, d: Duration) {
    let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    let e = table.entry(name.to_string()).or_default();
    e.backward += d;
    e.backward_calls += 1;
}

/// The accumulated table, emptied.
pub fn take_report() -> Vec<(String, Entry)> {
    std::mem::take(&mut *TABLE.lock().unwrap_or_else(|e| e.into_inner()))
        .into_iter()
        .collect()
}
