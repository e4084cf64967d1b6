//! What HTTP streams and TCP connections share: a context on one VM, stepped under the
//! plugin's lock, observed as an [`Outcome`], ended exactly once (also when dropped).

use std::marker::PhantomData;

use crate::engine::vm::Vm;
use crate::flows;
use crate::outcome::{CallbackCost, Outcome};
use crate::plugin::{Inner, Plugin};
use crate::state::StreamState;
use crate::sync::lock;

/// How one kind of stream is created, read and ended.
pub(crate) trait StreamKind {
    /// Creates the context (and runs its opening callbacks).
    fn create(vm: &mut Vm) -> u32;
    /// Fills the outcome from the live stream state.
    fn fill(state: &StreamState, outcome: &mut Outcome);
    /// Ends the stream and returns its final state.
    fn finish(vm: &mut Vm, context: u32) -> Option<StreamState>;
}

/// A stream context on one VM of a plugin.
pub(crate) struct Handle<'p, K: StreamKind> {
    pub(crate) plugin: &'p Plugin,
    pub(crate) worker: usize,
    pub(crate) context: u32,
    finished: Option<Outcome>,
    kind: PhantomData<K>,
}

impl<'p, K: StreamKind> Handle<'p, K> {
    pub(crate) fn open(plugin: &'p Plugin, worker: usize) -> Self {
        let mut inner = plugin.lock();
        let worker = worker.min(inner.workers - 1);
        let context = K::create(&mut inner.vms[worker]);
        inner.pump();
        Handle {
            plugin,
            worker,
            context,
            finished: None,
            kind: PhantomData,
        }
    }

    /// Runs one step on the stream's VM, then delivers queue notifications.
    pub(crate) fn step(&mut self, f: impl FnOnce(&mut Vm, u32)) {
        let mut inner = self.plugin.lock();
        f(&mut inner.vms[self.worker], self.context);
        inner.pump();
    }

    /// Reads the live stream state.
    pub(crate) fn with_state<R>(&self, f: impl FnOnce(&StreamState) -> R) -> Option<R> {
        let mut inner = self.plugin.lock();
        inner.vms[self.worker]
            .state()
            .proxy
            .streams
            .get(&self.context)
            .map(f)
    }

    /// Delivers every pending callout response of the stream's VM, in due order.
    pub(crate) fn deliver_callouts(&mut self) {
        let mut inner = self.plugin.lock();
        while flows::deliver_calls(&mut inner.vms[self.worker], true) > 0 {
            inner.pump();
        }
    }

    pub(crate) fn outcome(&mut self) -> Outcome {
        if let Some(done) = &self.finished {
            return done.clone();
        }
        let mut inner = self.plugin.lock();
        let mut outcome = Outcome::default();
        collect_journal(&mut inner, self.worker, self.context, &mut outcome, false);
        if let Some(state) = inner.vms[self.worker]
            .state()
            .proxy
            .streams
            .get(&self.context)
        {
            K::fill(state, &mut outcome);
        }
        outcome
    }

    pub(crate) fn end(&mut self) -> Outcome {
        if let Some(done) = &self.finished {
            return done.clone();
        }
        let mut inner = self.plugin.lock();
        let state = K::finish(&mut inner.vms[self.worker], self.context);
        inner.pump();
        let mut outcome = Outcome::default();
        collect_journal(&mut inner, self.worker, self.context, &mut outcome, true);
        if let Some(state) = state {
            K::fill(&state, &mut outcome);
        }
        self.finished = Some(outcome.clone());
        outcome
    }
}

impl<K: StreamKind> Drop for Handle<'_, K> {
    fn drop(&mut self) {
        if self.finished.is_none() && !std::thread::panicking() {
            self.end();
        }
    }
}

/// Moves (or, with `take == false`, copies) this context's logs, costs and callouts from
/// the VM's journal into the outcome, with a snapshot of the plugin's metrics.
fn collect_journal(
    inner: &mut Inner,
    worker: usize,
    context: u32,
    outcome: &mut Outcome,
    take: bool,
) {
    let journal = &mut inner.vms[worker].state().proxy.journal;
    let mine = |c: &u32| *c == context;
    if take {
        let (logs, rest): (Vec<_>, Vec<_>) = journal.logs.drain(..).partition(|(c, _)| mine(c));
        journal.logs = rest;
        outcome.logs = logs.into_iter().map(|(_, e)| e).collect();
        let (costs, rest): (Vec<_>, Vec<_>) =
            journal.costs.drain(..).partition(|(c, _, _)| mine(c));
        journal.costs = rest;
        outcome.costs = costs
            .into_iter()
            .map(|(_, callback, instructions)| CallbackCost {
                callback,
                instructions,
            })
            .collect();
        let (callouts, rest): (Vec<_>, Vec<_>) =
            journal.callouts.drain(..).partition(|(c, _)| mine(c));
        journal.callouts = rest;
        outcome.callouts = callouts.into_iter().map(|(_, c)| c).collect();
        let (grpc, rest): (Vec<_>, Vec<_>) =
            journal.grpc_calls.drain(..).partition(|(c, _)| mine(c));
        journal.grpc_calls = rest;
        outcome.grpc_calls = grpc.into_iter().map(|(_, c)| c).collect();
    } else {
        outcome.logs = journal
            .logs
            .iter()
            .filter(|(c, _)| mine(c))
            .map(|(_, e)| e.clone())
            .collect();
        outcome.costs = journal
            .costs
            .iter()
            .filter(|(c, _, _)| mine(c))
            .map(|(_, callback, instructions)| CallbackCost {
                callback,
                instructions: *instructions,
            })
            .collect();
        outcome.callouts = journal
            .callouts
            .iter()
            .filter(|(c, _)| mine(c))
            .map(|(_, c)| c.clone())
            .collect();
        outcome.grpc_calls = journal
            .grpc_calls
            .iter()
            .filter(|(c, _)| mine(c))
            .map(|(_, c)| c.clone())
            .collect();
    }
    let metrics = lock(&inner.shared.metrics);
    outcome.metrics = metrics
        .entries
        .iter()
        .map(|m| {
            (
                m.name.clone(),
                if m.samples.is_empty() {
                    m.value
                } else {
                    m.samples.len() as u64
                },
            )
        })
        .collect();
}
