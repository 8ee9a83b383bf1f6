//! hvsim's address translation crate: typed guest addresses, guest physical memory and
//! the page walkers.
//!
//! The shadow page cache (KVM's `kvm_mmu_page` design) is built on these pieces; see
//! `../shared/docs/architecture.md`, "The shadow MMU".
#![forbid(unsafe_code)]

pub mod addr;
pub mod ept;
pub mod memory;
pub mod npt;
pub mod paging;
pub mod shadow;

pub use addr::{Gfn, Gpa, Gva, PAGE_SHIFT, PAGE_SIZE};
pub use memory::{GuestMemory, MemoryError, MemoryMap, Region, RegionKind};
