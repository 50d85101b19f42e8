//! The binary's allocator: a bump arena in .bss, then musl's malloc.
//!
//! A runway command lives for milliseconds and allocates a few hundred KiB
//! in all. musl's malloc hands freed groups back with munmap and maps new
//! ones, and every fresh page faults; in a `run` that was a tenth of the
//! time. Here allocation is a pointer bump, freeing the newest block
//! rolls the pointer back (most frees are of short-lived temporaries), and
//! growing the newest block happens in place. Commands that run for long
//! (`events`, a foreground `run`) fall back to the system allocator once
//! the arena is used up, so the memory never freed is bounded by its size.
//!
//! Threads (a pull's parallel downloads, the registry server's workers)
//! share it safely: the arena's whole state is one atomic word (the first
//! free byte and the newest block's start), changed only by
//! compare-and-swap, so two threads never get the same bytes. A cloned
//! child has its own copy of the arena, as of its own heap.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const SIZE: usize = 1 << 20;
/// No newest block that can be freed back or grown in place.
const NONE: u64 = u32::MAX as u64;

#[repr(C, align(4096))]
struct Space(UnsafeCell<[u8; SIZE]>);

// SAFETY: handed out in disjoint pieces (see `Arena`).
unsafe impl Sync for Space {}

static SPACE: Space = Space(UnsafeCell::new([0; SIZE]));

pub struct Arena {
    /// `last << 32 | next`: `next` is the offset of the first free byte,
    /// `last` where the newest live block starts (the only one that can
    /// be freed back or grown in place), or NONE.
    state: AtomicU64,
}

fn pack(last: u64, next: usize) -> u64 {
    last << 32 | next as u64
}

fn unpack(s: u64) -> (u64, usize) {
    (s >> 32, (s & 0xffff_ffff) as usize)
}

impl Arena {
    pub const fn new() -> Self {
        Arena {
            state: AtomicU64::new(NONE << 32),
        }
    }

    fn base() -> usize {
        SPACE.0.get() as usize
    }

    fn offset_of(ptr: *mut u8) -> Option<usize> {
        let p = ptr as usize;
        let b = Self::base();
        (p >= b && p < b + SIZE).then(|| p - b)
    }

    /// Replaces the state with `f(last, next)` unless `f` says no; the
    /// state `f` accepted.
    fn update(&self, mut f: impl FnMut(u64, usize) -> Option<u64>) -> Option<u64> {
        let mut cur = self.state.load(Relaxed);
        loop {
            let (last, next) = unpack(cur);
            let new = f(last, next)?;
            match self.state.compare_exchange_weak(cur, new, Relaxed, Relaxed) {
                Ok(_) => return Some(new),
                Err(seen) => cur = seen,
            }
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let b = Self::base();
        let got = self.update(|_, next| {
            let start = (b + next).next_multiple_of(layout.align()) - b;
            let end = start.checked_add(layout.size()).filter(|&e| e <= SIZE)?;
            Some(pack(start as u64, end))
        });
        match got {
            Some(s) => (b + unpack(s).0 as usize) as *mut u8,
            // SAFETY: same contract as ours.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match Self::offset_of(ptr) {
            // The newest block rolls the arena back; any other stays
            // until the process ends.
            Some(off) => {
                self.update(|last, _| (last == off as u64).then(|| pack(NONE, off)));
            }
            // SAFETY: not ours, so System's.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(off) = Self::offset_of(ptr) else {
            // SAFETY: not ours, so System's.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        let grown = self.update(|last, _| {
            let end = off.checked_add(new_size).filter(|&e| e <= SIZE)?;
            (last == off as u64).then(|| pack(last, end))
        });
        if grown.is_some() || new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: layout and new_size come from the caller's contract.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as alloc.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are valid for the smaller size, and
            // distinct (the old one is not the newest, or did not fit).
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bumps_frees_newest_and_grows_in_place() {
        // The test binary allocates with the system allocator, so SPACE is
        // this test's alone; a fresh Arena hands it out from offset 0.
        let a = Arena::new();
        unsafe {
            let l8 = Layout::from_size_align(8, 8).unwrap();
            let p = a.alloc(l8);
            assert_eq!(Arena::offset_of(p), Some(0));
            let q = a.alloc(l8);
            assert_eq!(Arena::offset_of(q), Some(8));
            // Grow the newest in place.
            let q2 = a.realloc(q, l8, 64);
            assert_eq!(q2, q);
            // Growing an older one moves it.
            let p2 = a.realloc(p, l8, 16);
            assert_eq!(Arena::offset_of(p2), Some(72));
            a.dealloc(p2, Layout::from_size_align(16, 8).unwrap());
            assert_eq!(unpack(a.state.load(Relaxed)), (NONE, 72));
            // Too big: the system's.
            let big = Layout::from_size_align(SIZE * 2, 8).unwrap();
            let s = a.alloc(big);
            assert!(!s.is_null() && Arena::offset_of(s).is_none());
            a.dealloc(s, big);
        }
        // Threads at once (in this one test: SPACE is shared by every
        // Arena): no two get overlapping bytes, frees and growth included.
        let a = std::sync::Arc::new(Arena::new());
        let ts: Vec<_> = (0..4u8)
            .map(|t| {
                let a = a.clone();
                std::thread::spawn(move || unsafe {
                    let l = Layout::from_size_align(64, 8).unwrap();
                    let mut kept = Vec::new();
                    for i in 0..1000 {
                        let p = a.alloc(l);
                        std::ptr::write_bytes(p, t, 64);
                        if i % 3 == 0 {
                            a.dealloc(p, l);
                        } else if i % 3 == 1 {
                            let q = a.realloc(p, l, 128);
                            std::ptr::write_bytes(q, t, 128);
                            kept.push((q as usize, 128));
                        } else {
                            kept.push((p as usize, 64));
                        }
                    }
                    kept
                })
            })
            .enumerate()
            .collect();
        let mut all = Vec::new();
        for (t, h) in ts {
            for (p, n) in h.join().unwrap() {
                let b = unsafe { std::slice::from_raw_parts(p as *const u8, n) };
                assert!(
                    b.iter().all(|&x| x == t as u8),
                    "block of thread {t} overwritten"
                );
                all.push((p, n));
            }
        }
        all.sort();
        for w in all.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "overlap: {w:?}");
        }
    }
}
