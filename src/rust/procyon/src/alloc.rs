//! The module's global allocator: the system allocator, except that a failed allocation is
//! reported to the host before the module aborts, so the caller learns why the call trapped.

use crate::rt::sys;
use std::alloc::{GlobalAlloc, Layout, System};

pub(crate) struct ReportingAllocator;

unsafe impl GlobalAlloc for ReportingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        checked(System.alloc(layout), layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        checked(System.alloc_zeroed(layout), layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        checked(System.realloc(ptr, layout, new_size), new_size)
    }
}

fn checked(ptr: *mut u8, size: usize) -> *mut u8 {
    if ptr.is_null() {
        report_failure(size);
    }
    ptr
}

/// Formats without allocating: there is no memory left to allocate from.
fn report_failure(size: usize) {
    const PREFIX: &[u8] = b"out of memory: an allocation of ";
    const SUFFIX: &[u8] = b" bytes failed";
    let mut message = [0u8; 80];
    message[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 20];
    let mut count = 0;
    let mut rest = size;
    loop {
        digits[count] = b'0' + (rest % 10) as u8;
        count += 1;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let mut end = PREFIX.len();
    for digit in digits[..count].iter().rev() {
        message[end] = *digit;
        end += 1;
    }
    message[end..end + SUFFIX.len()].copy_from_slice(SUFFIX);
    end += SUFFIX.len();
    unsafe { sys::panic(message.as_ptr(), end, [].as_ptr(), 0, 0) }
}
