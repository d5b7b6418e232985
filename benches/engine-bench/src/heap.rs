//! A global allocator that can count the heap bytes a piece of code leaves allocated: used to
//! report how much memory each engine's compiled set holds. Outside a measurement it costs one
//! relaxed atomic load per allocation, the same for every engine.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

pub struct Counting;

static TRACKING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn add(delta: isize) {
    if TRACKING.load(Relaxed) {
        let live = LIVE.fetch_add(delta, Relaxed) + delta;
        if delta > 0 {
            PEAK.fetch_max(live, Relaxed);
        }
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            add(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        add(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            add(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Heap use of a piece of code: what it left allocated, and the most it had allocated at once.
pub struct HeapUse {
    pub retained: isize,
    pub peak: isize,
}

/// Runs `f` (single-threaded) and returns its result with its heap use.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, HeapUse) {
    LIVE.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    TRACKING.store(true, Relaxed);
    let out = f();
    TRACKING.store(false, Relaxed);
    (
        out,
        HeapUse {
            retained: LIVE.load(Relaxed),
            peak: PEAK.load(Relaxed),
        },
    )
}
