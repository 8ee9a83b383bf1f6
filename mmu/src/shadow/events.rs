//! Shadow-page events for the `mmu` trace: what the cache did (create, zap, unsync,
//! sync, write flooding, recycling, root switches), recorded only while a consumer has
//! turned the log on ([`ShadowMmu::set_event_log`]) and taken out with
//! [`ShadowMmu::take_events`]. Off, each recording point costs one predictable branch;
//! none sits on the translation hit path.

use super::page::SpId;
use super::role::Role;
use super::ShadowMmu;
use crate::addr::Gfn;

/// Events kept between two [`ShadowMmu::take_events`]; later ones are counted only.
pub const EVENT_LOG_LIMIT: usize = 4096;

/// One shadow-page event (the names follow KVM's `kvm_mmu_*` tracepoints where they
/// exist).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ShadowEvent {
    /// A shadow page was created for the guest table at `gfn` seen with `role`
    /// (`kvm_mmu_get_page` with `created`).
    Create {
        /// The new page.
        sp: SpId,
        /// The guest table's frame.
        gfn: Gfn,
        /// Its role.
        role: Role,
    },
    /// A shadow page was removed (`kvm_mmu_prepare_zap_page`).
    Zap {
        /// The page.
        sp: SpId,
        /// The guest table's frame.
        gfn: Gfn,
        /// Its role.
        role: Role,
    },
    /// Every shadow page became obsolete at once (`kvm_mmu_zap_all_fast`).
    ZapAll {
        /// The new generation (`mmu_valid_gen`).
        generation: u64,
    },
    /// A guest write made a leaf shadow page unsync (`kvm_mmu_unsync_page`).
    Unsync {
        /// The page.
        sp: SpId,
        /// The guest table's frame.
        gfn: Gfn,
    },
    /// An unsync page was resynchronised with its guest table (`kvm_mmu_sync_page`).
    Sync {
        /// The page.
        sp: SpId,
        /// The guest table's frame.
        gfn: Gfn,
        /// Shadow entries that changed.
        updated: u32,
    },
    /// A table written repeatedly without being used is zapped (`kvm_mmu_write_flooding`
    /// in KVM's `detect_write_flooding`); a `Zap` follows.
    WriteFlooding {
        /// The page.
        sp: SpId,
        /// The guest table's frame.
        gfn: Gfn,
        /// Emulated writes counted.
        writes: u8,
    },
    /// The least recently used page is recycled at the page bound; a `Zap` follows.
    Recycle {
        /// The page.
        sp: SpId,
    },
    /// Translation switched to another root (a new CR3 value, paging mode or nested
    /// context).
    RootSwitch {
        /// The CR3 value of the new root.
        cr3: u64,
        /// The root shadow page.
        sp: SpId,
        /// Its role.
        role: Role,
        /// The root was still cached (a fast CR3 switch); else it was created.
        cached: bool,
    },
}

/// The event log of one cache.
#[derive(Clone, Debug, Default)]
pub(super) struct EventLog {
    on: bool,
    events: Vec<ShadowEvent>,
    dropped: u64,
}

impl ShadowMmu {
    /// Starts (or stops) recording [`ShadowEvent`]s.
    pub fn set_event_log(&mut self, on: bool) {
        self.events.on = on;
        if !on {
            self.events.events = Vec::new();
        }
    }

    /// The events recorded since the last call, oldest first, and how many were dropped
    /// beyond [`EVENT_LOG_LIMIT`].
    pub fn take_events(&mut self) -> (Vec<ShadowEvent>, u64) {
        (std::mem::take(&mut self.events.events), std::mem::take(&mut self.events.dropped))
    }

    /// Whether recorded events are waiting.
    #[inline]
    pub fn has_events(&self) -> bool {
        !self.events.events.is_empty() || self.events.dropped != 0
    }

    /// Records `e` if the log is on.
    #[inline]
    pub(super) fn note(&mut self, e: ShadowEvent) {
        if self.events.on {
            self.note_slow(e);
        }
    }

    #[cold]
    fn note_slow(&mut self, e: ShadowEvent) {
        if self.events.events.len() < EVENT_LOG_LIMIT {
            self.events.events.push(e);
        } else {
            self.events.dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{GuestMemory, MemoryMap};
    use crate::paging::{Access, AccessKind, PagingMode, WalkConfig};
    use crate::Gva;

    /// A 4-level table mapping linear 0 to frame 0x5000: PML4 0x1000, PDPT 0x2000,
    /// PD 0x3000, PT 0x4000.
    fn tables() -> (GuestMemory, WalkConfig) {
        let mut mem = GuestMemory::new(MemoryMap::flat(1 << 20)).unwrap();
        mem.write_u64(crate::Gpa(0x1000), 0x2000 | 7);
        mem.write_u64(crate::Gpa(0x2000), 0x3000 | 7);
        mem.write_u64(crate::Gpa(0x3000), 0x4000 | 7);
        mem.write_u64(crate::Gpa(0x4000), 0x5000 | 7);
        let cfg = WalkConfig {
            mode: PagingMode::Long4,
            cr3: 0x1000,
            wp: true,
            pse: true,
            nxe: true,
            smep: false,
            smap: false,
            pke: false,
            pkru: 0,
            pdptes: None,
            maxphyaddr: 36,
        };
        (mem, cfg)
    }

    const READ: Access = Access { kind: AccessKind::Read, user: false, smap_override: false };

    #[test]
    fn nothing_is_recorded_while_off() {
        let (mut mem, cfg) = tables();
        let mut s = ShadowMmu::new(64);
        s.translate(&mut mem, &cfg, Gva(0), READ).unwrap();
        assert_eq!(s.take_events(), (vec![], 0));
    }

    #[test]
    fn create_root_switch_unsync_and_sync() {
        let (mut mem, cfg) = tables();
        let mut s = ShadowMmu::new(64);
        s.set_event_log(true);
        s.translate(&mut mem, &cfg, Gva(0), READ).unwrap();
        let (ev, dropped) = s.take_events();
        assert_eq!(dropped, 0);
        let created: Vec<u64> = ev
            .iter()
            .filter_map(|e| match e {
                ShadowEvent::Create { gfn, .. } => Some(gfn.0),
                _ => None,
            })
            .collect();
        assert_eq!(created, [1, 2, 3, 4], "{ev:?}");
        assert!(
            matches!(ev[1], ShadowEvent::RootSwitch { cr3: 0x1000, cached: false, .. }),
            "{ev:?}"
        );
        // A write to the page table makes its shadow unsync; MOV CR3 syncs it.
        mem.write_u64(crate::Gpa(0x4000), 0x6000 | 7);
        s.guest_write(&mem, crate::Gpa(0x4000), 8);
        s.new_cr3(0x1000, false);
        s.translate(&mut mem, &cfg, Gva(0), READ).unwrap();
        let (ev, _) = s.take_events();
        assert!(matches!(ev[0], ShadowEvent::Unsync { gfn: Gfn(4), .. }), "{ev:?}");
        assert!(
            ev.iter().any(|e| matches!(e, ShadowEvent::Sync { gfn: Gfn(4), updated: 1, .. })),
            "{ev:?}"
        );
    }

    /// KVM's `detect_write_flooding`: a non-leaf table written
    /// `WRITE_FLOODING_THRESHOLD` times without a translation using it is zapped.
    #[test]
    fn write_flooding_then_zap() {
        let (mut mem, cfg) = tables();
        let mut s = ShadowMmu::new(64);
        s.set_event_log(true);
        s.translate(&mut mem, &cfg, Gva(0), READ).unwrap();
        let _ = s.take_events();
        for _ in 0..super::super::WRITE_FLOODING_THRESHOLD {
            mem.write_u64(crate::Gpa(0x3008), 0);
            s.guest_write(&mem, crate::Gpa(0x3008), 8);
        }
        let (ev, _) = s.take_events();
        let at = ev
            .iter()
            .position(|e| matches!(e, ShadowEvent::WriteFlooding { gfn: Gfn(3), writes: 3, .. }))
            .unwrap_or_else(|| panic!("{ev:?}"));
        assert!(matches!(ev[at + 1], ShadowEvent::Zap { gfn: Gfn(3), .. }), "{ev:?}");
    }
}
