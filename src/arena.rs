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
//! runway has no threads; the atomics only make the type Sync. A cloned
//! child has its own copy of the arena, as of its own heap.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

const SIZE: usize = 1 << 20;

#[repr(C, align(4096))]
struct Space(UnsafeCell<[u8; SIZE]>);

// SAFETY: handed out in disjoint pieces (see `Arena`).
unsafe impl Sync for Space {}

static SPACE: Space = Space(UnsafeCell::new([0; SIZE]));

pub struct Arena {
    /// Offset of the first free byte.
    next: AtomicUsize,
    /// Offset where the newest live block starts: the only one that can
    /// be freed back or grown in place.
    last: AtomicUsize,
}

impl Arena {
    pub const fn new() -> Self {
        Arena {
            next: AtomicUsize::new(0),
            last: AtomicUsize::new(usize::MAX),
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
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let next = self.next.load(Relaxed);
        let b = Self::base();
        let start = (b + next).next_multiple_of(layout.align()) - b;
        match start.checked_add(layout.size()) {
            Some(end) if end <= SIZE => {
                self.next.store(end, Relaxed);
                self.last.store(start, Relaxed);
                (b + start) as *mut u8
            }
            // SAFETY: same contract as ours.
            _ => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match Self::offset_of(ptr) {
            Some(off) => {
                if off == self.last.load(Relaxed) {
                    self.next.store(off, Relaxed);
                    self.last.store(usize::MAX, Relaxed);
                }
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
        if off == self.last.load(Relaxed) {
            if let Some(end) = off.checked_add(new_size).filter(|&e| e <= SIZE) {
                self.next.store(end, Relaxed);
                return ptr;
            }
        } else if new_size <= layout.size() {
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
            assert_eq!(a.next.load(Relaxed), 72);
            // Too big: the system's.
            let big = Layout::from_size_align(SIZE * 2, 8).unwrap();
            let s = a.alloc(big);
            assert!(!s.is_null() && Arena::offset_of(s).is_none());
            a.dealloc(s, big);
        }
    }
}
