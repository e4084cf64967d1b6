//! The bookkeeping every host call in flight shares, whatever it speaks: HTTP callouts
//! ([`Call`](crate::Call)), gRPC calls and gRPC streams.
//!
//! The host names each call by a token and answers it with callbacks on the context that
//! made it. The SDK keeps one slot per call in a thread-local [`Table`] (a VM is
//! single-threaded), fills the slot when an answer arrives, and the adapter then polls the
//! waiting future again: no waker is registered, because host callbacks are the only events
//! that can make progress. A future dropped before its answer (the stream ended) frees its
//! slot, so a late answer finds none and is ignored.

use crate::error::{Error, Result};
use std::cell::RefCell;
use std::fmt;
use std::task::Poll;
use std::thread::LocalKey;

/// What a [`Table`] keeps for one call: it knows the token the host named the call by.
pub(crate) trait Slot: 'static {
    fn token(&self) -> u32;
}

/// The slots of one kind of call: what a [`Table`] points at.
pub(crate) type Slots<S> = RefCell<Vec<S>>;

/// The calls of one kind in flight in this VM (a `thread_local!` of [`Slots`]), by token.
pub(crate) struct Table<S: 'static>(pub(crate) &'static LocalKey<Slots<S>>);

impl<S> Clone for Table<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Table<S> {}

impl<S: Slot> Table<S> {
    /// Starts keeping `slot` for its call.
    pub(crate) fn insert(self, slot: S) {
        self.0.with(|slots| slots.borrow_mut().push(slot));
    }

    /// Runs `f` on the slot of `token`; `None` when no call holds that token (any more).
    /// `f` must not use the table.
    pub(crate) fn with<R>(self, token: u32, f: impl FnOnce(&mut S) -> R) -> Option<R> {
        self.0.with(|slots| {
            slots
                .borrow_mut()
                .iter_mut()
                .find(|s| s.token() == token)
                .map(f)
        })
    }

    /// Frees the slot of `token` and returns it, if `done` says its call is over.
    pub(crate) fn take(self, token: u32, done: impl Fn(&S) -> bool) -> Option<S> {
        self.0.with(|slots| {
            let mut slots = slots.borrow_mut();
            let at = slots.iter().position(|s| s.token() == token && done(s))?;
            Some(slots.swap_remove(at))
        })
    }

    /// Frees the slot of `token`, if there is one. For `Drop`, which may run while the
    /// thread's locals are torn down, when there is nothing left to free.
    pub(crate) fn forget(self, token: u32) {
        let _ = self
            .0
            .try_with(|slots| slots.borrow_mut().retain(|s| s.token() != token));
    }

    /// Frees the slot of `token` and returns it, if there is one: [`Self::forget`] for a
    /// caller that needs what the slot held.
    #[cfg(feature = "grpc")]
    pub(crate) fn remove(self, token: u32) -> Option<S> {
        self.0
            .try_with(|slots| {
                let mut slots = slots.borrow_mut();
                let at = slots.iter().position(|s| s.token() == token)?;
                Some(slots.swap_remove(at))
            })
            .ok()
            .flatten()
    }
}

/// The answer type of a kind of call that gets one answer (an HTTP callout's
/// [`CallResponse`](crate::CallResponse), a gRPC unary call's response): where calls of that
/// kind are kept, and what stops one nobody waits for.
pub(crate) trait Unary: Sized + 'static {
    /// The calls of this kind in flight.
    const TABLE: Table<UnarySlot<Self>>;
    /// The error of a poll after the future completed, naming the public future.
    const POLLED_AFTER_DONE: &'static str;

    /// Stops call `token` in the host when its future is dropped before the answer; a host
    /// error is ignored (there is no one left to tell). Some calls cannot be stopped.
    fn cancel(_token: u32) {}
}

/// A call with one answer: the longest answer it accepts, and the answer once it arrived.
pub(crate) struct UnarySlot<T> {
    token: u32,
    max: usize,
    answer: Option<Result<T>>,
}

/// The pending answer of one call, inside the public future ([`CallFuture`](crate::CallFuture),
/// a gRPC unary call's future).
pub(crate) struct UnaryFuture<T: Unary> {
    state: State,
    answer: std::marker::PhantomData<T>,
}

#[derive(Debug)]
enum State {
    InFlight(u32),
    /// Already resolved, or refused at dispatch (the error is handed out once).
    Done(Option<Error>),
}

impl<T: 'static> Slot for UnarySlot<T> {
    fn token(&self) -> u32 {
        self.token
    }
}

impl<T: Unary> fmt::Debug for UnaryFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.state.fmt(f)
    }
}

impl<T: Unary> UnaryFuture<T> {
    /// The future of a call the host took (`Ok(token)`; its answer may be up to `max` bytes)
    /// or refused (the `Err`, which the first poll hands out).
    pub(crate) fn new(dispatched: Result<u32>, max: usize) -> Self {
        let state = match dispatched {
            Ok(token) => {
                T::TABLE.insert(UnarySlot {
                    token,
                    max,
                    answer: None,
                });
                State::InFlight(token)
            }
            Err(err) => State::Done(Some(err)),
        };
        UnaryFuture {
            state,
            answer: std::marker::PhantomData,
        }
    }

    /// The answer once it arrived, which frees the call's slot.
    pub(crate) fn poll(&mut self) -> Poll<Result<T>> {
        match &mut self.state {
            State::InFlight(token) => {
                let token = *token;
                match T::TABLE.take(token, |s| s.answer.is_some()) {
                    Some(UnarySlot {
                        answer: Some(answer),
                        ..
                    }) => {
                        self.state = State::Done(None);
                        Poll::Ready(answer)
                    }
                    _ => Poll::Pending,
                }
            }
            State::Done(err) => Poll::Ready(Err(err
                .take()
                .unwrap_or_else(|| Error::msg(T::POLLED_AFTER_DONE)))),
        }
    }
}

impl<T: Unary> Drop for UnaryFuture<T> {
    fn drop(&mut self) {
        if let State::InFlight(token) = self.state {
            // Nobody waits any more (the stream ended): free the slot so a late answer is
            // ignored, and stop the call where the host can.
            T::TABLE.forget(token);
            T::cancel(token);
        }
    }
}

/// Records the answer to call `token` if a future still waits for it; `read` reads it from
/// the host, given the call's limit. Returns whether one waited, so the caller knows
/// whether polling can make progress.
pub(crate) fn deliver<T: Unary>(token: u32, read: impl FnOnce(usize) -> Result<T>) -> bool {
    // `read` calls the host, which only allocates (through this module's allocator), so the
    // table may stay borrowed meanwhile.
    T::TABLE
        .with(token, |s| s.answer = Some(read(s.max)))
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A kind of call whose cancellations are recorded, to see what a dropped future does.
    #[derive(Debug, PartialEq)]
    struct Answer(&'static str);

    thread_local! {
        static ANSWERS: Slots<UnarySlot<Answer>> = const { RefCell::new(Vec::new()) };
        static CANCELLED: Cell<Option<u32>> = const { Cell::new(None) };
    }

    impl Unary for Answer {
        const TABLE: Table<UnarySlot<Self>> = Table(&ANSWERS);
        const POLLED_AFTER_DONE: &'static str = "Answer polled after it completed";

        fn cancel(token: u32) {
            CANCELLED.set(Some(token));
        }
    }

    fn held() -> usize {
        ANSWERS.with(|slots| slots.borrow().len())
    }

    /// Clears what an earlier test left: on wasm32-wasip1 every test runs on one thread.
    fn fresh() {
        ANSWERS.with(|slots| slots.borrow_mut().clear());
        CANCELLED.set(None);
    }

    #[test]
    fn an_answer_is_handed_out_once_and_frees_its_slot() {
        fresh();
        let mut future = UnaryFuture::<Answer>::new(Ok(7), 10);
        assert!(future.poll().is_pending());
        // The reader is given the call's limit; an answer for another token finds no one.
        assert!(!deliver(8, |_| Ok(Answer("stray"))));
        assert!(deliver(7, |max| Ok(Answer(if max == 10 {
            "yes"
        } else {
            "no"
        }))));
        assert_eq!(
            future.poll().map(|r| r.unwrap()),
            Poll::Ready(Answer("yes"))
        );
        assert_eq!(held(), 0);
        let again = future.poll().map(|r| r.unwrap_err().to_string());
        assert_eq!(
            again,
            Poll::Ready("Answer polled after it completed".into())
        );
        drop(future);
        assert_eq!(CANCELLED.get(), None, "a finished call is not cancelled");
    }

    #[test]
    fn a_future_dropped_before_its_answer_cancels_and_a_late_answer_is_ignored() {
        fresh();
        let future = UnaryFuture::<Answer>::new(Ok(3), 10);
        drop(future);
        assert_eq!((held(), CANCELLED.get()), (0, Some(3)));
        assert!(!deliver(3, |_| Ok(Answer("late"))));
        assert_eq!(held(), 0);
    }

    #[test]
    fn a_refused_call_resolves_to_its_error_and_keeps_no_slot() {
        fresh();
        let mut future = UnaryFuture::<Answer>::new(Err(Error::msg("unknown cluster")), 10);
        assert_eq!(held(), 0);
        let first = future.poll().map(|r| r.unwrap_err().to_string());
        assert_eq!(first, Poll::Ready("unknown cluster".into()));
        drop(future);
        assert_eq!(CANCELLED.get(), None);
    }

    #[test]
    fn a_table_finds_updates_and_frees_slots_by_token() {
        struct Item(u32, u8);
        impl Slot for Item {
            fn token(&self) -> u32 {
                self.0
            }
        }
        thread_local! {
            static ITEMS: Slots<Item> = const { RefCell::new(Vec::new()) };
        }
        let table = Table(&ITEMS);
        table.insert(Item(1, 10));
        table.insert(Item(2, 20));
        assert_eq!(table.with(2, |i| std::mem::replace(&mut i.1, 21)), Some(20));
        assert_eq!(table.with(9, |i| i.1), None);
        let done = |i: &Item| i.1 == 21;
        assert!(table.take(1, done).is_none(), "kept while not done");
        assert_eq!(table.take(2, done).map(|i| i.1), Some(21));
        assert_eq!(table.take(1, |_| true).map(|i| i.1), Some(10));
        table.insert(Item(3, 30));
        table.forget(3);
        table.forget(3); // nothing left to free: no panic
        assert_eq!(ITEMS.with(|items| items.borrow().len()), 0);
    }
}
