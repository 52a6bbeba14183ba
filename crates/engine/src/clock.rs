//! The clock is injected: the server reads the system clock, `simulate` and tests a simulated one.

use std::sync::{Arc, Mutex};

use jiff::Timestamp;

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that moves only when told to.
#[derive(Clone)]
pub struct SimClock(Arc<Mutex<Timestamp>>);

impl SimClock {
    pub fn new(start: Timestamp) -> SimClock {
        SimClock(Arc::new(Mutex::new(start)))
    }

    pub fn set(&self, now: Timestamp) {
        *self.0.lock().expect("clock lock") = now;
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}
