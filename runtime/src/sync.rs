//! Locking shared by every part of the runtime that keeps state across threads.

use std::sync::Mutex;

/// Locks a mutex, recovering the data if another thread panicked while holding it (a test
/// failing on one thread must not poison the cache for the others).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
