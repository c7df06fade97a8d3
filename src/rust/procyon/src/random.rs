//! `ctx.rng()`: random numbers for a call, from a generator the host seeds with its operating
//! system's randomness (not from the call's timestamp, which callers could predict).

use crate::rt::sys;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use std::cell::RefCell;

/// The random number generator of one call (`ctx.rng()`); use it through `rand::Rng`:
/// `ctx.rng().gen_range(1..=6)`. Seeded from the host on first use.
pub struct CallRng {
    inner: RefCell<Option<StdRng>>,
}

impl CallRng {
    pub(crate) fn new() -> Self {
        CallRng { inner: RefCell::new(None) }
    }

    fn with<R>(&self, use_it: impl FnOnce(&mut StdRng) -> R) -> R {
        let mut inner = self.inner.borrow_mut();
        let rng = inner.get_or_insert_with(|| {
            let mut seed = [0u8; 32];
            unsafe { sys::random_seed(seed.as_mut_ptr()) };
            StdRng::from_seed(seed)
        });
        use_it(rng)
    }
}

impl RngCore for &CallRng {
    fn next_u32(&mut self) -> u32 {
        self.with(|rng| rng.next_u32())
    }

    fn next_u64(&mut self) -> u64 {
        self.with(|rng| rng.next_u64())
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.with(|rng| rng.fill_bytes(dest))
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.with(|rng| rng.try_fill_bytes(dest))
    }
}
