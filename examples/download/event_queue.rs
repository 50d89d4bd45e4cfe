//! [`EventQueue`]: events from callbacks, handled in order and never one
//! inside another.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

/// Events posted from libuv and uvcurl callbacks. The first `post` on the
/// stack handles them, in order, until none is left; one posted while an
/// event is being handled (its handler started a transfer whose failure
/// completes at once, say) waits for its turn instead of running inside it.
pub struct EventQueue<E> {
    events: RefCell<VecDeque<E>>,
    handling: Cell<bool>,
}

impl<E> Default for EventQueue<E> {
    fn default() -> EventQueue<E> {
        EventQueue {
            events: RefCell::new(VecDeque::new()),
            handling: Cell::new(false),
        }
    }
}

impl<E> EventQueue<E> {
    /// Queues `event`, then handles the queue with `handle` unless a `post`
    /// further up the stack is doing so (it gets to this one).
    pub fn post(&self, event: E, mut handle: impl FnMut(E)) {
        self.events.borrow_mut().push_back(event);
        if self.handling.replace(true) {
            return;
        }
        loop {
            let next = self.events.borrow_mut().pop_front();
            let Some(event) = next else { break };
            handle(event);
        }
        self.handling.set(false);
    }
}

#[cfg(test)]
mod tests {
    use super::EventQueue;
    use std::cell::RefCell;

    #[test]
    fn an_event_posted_while_one_is_handled_waits_its_turn() {
        let queue = EventQueue::default();
        let seen = RefCell::new(Vec::new());
        let handle = |n: u32| {
            seen.borrow_mut().push(format!("start {n}"));
            if n == 1 {
                queue.post(2, |_| panic!("handled inside event 1"));
            }
            seen.borrow_mut().push(format!("end {n}"));
        };
        queue.post(1, handle);
        assert_eq!(*seen.borrow(), ["start 1", "end 1", "start 2", "end 2"]);
    }
}
