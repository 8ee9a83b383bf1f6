//! The CPUID models (`--cpu intel|amd`): vendor strings, leaf ranges, topology, address
//! sizes, and the rule that a model advertises nothing hvsim does not implement (SDM Vol.
//! 2A "CPUID"; APM Vol. 3 Appendix E "Obtaining Processor Information Via the CPUID
//! Instruction").

use hvsim::cpu::access::MAXPHYADDR;
use hvsim::cpuid::{models, Cpuid, Feature, Topology};
use hvsim::machine::CATCH_ALL;
use hvsim::{GuestMode, Machine, MachineConfig, StopReason, Vendor};
use iced_x86::code_asm::*;

const VENDORS: [Vendor; 2] = [Vendor::Intel, Vendor::Amd];
const EAX: usize = 0;
const EBX: usize = 1;
const ECX: usize = 2;
const EDX: usize = 3;

/// What hvsim implements, written out independently of the feature table: (leaf,
/// register, bit, what implements it). A model advertising anything else fails.
const IMPLEMENTED: &[(u32, usize, u8, &str)] = &[
    (1, EDX, 2, "DE: cpu/debug.rs I/O breakpoints, CR4.DE"),
    (1, EDX, 3, "PSE: mmu/src/paging.rs 32-bit 4-MiB pages"),
    (1, EDX, 4, "TSC: exec/msr_access.rs RDTSC"),
    (1, EDX, 5, "MSR: exec/msr_access.rs RDMSR/WRMSR"),
    (1, EDX, 6, "PAE: mmu/src/paging.rs PAE mode"),
    (1, EDX, 8, "CX8: exec/atomic.rs CMPXCHG8B"),
    (1, EDX, 9, "APIC: devices/src/lapic, wired in machine/platform.rs"),
    (1, ECX, 5, "VMX: src/nested/vmx (Intel model)"),
    (1, EDX, 11, "SEP: exec/fast_syscall.rs SYSENTER/SYSEXIT"),
    (1, EDX, 12, "MTRR: cpu/msr.rs MTRR MSRs"),
    (1, EDX, 13, "PGE: CR4.PGE (TLB flushes may drop global entries too)"),
    (1, EDX, 15, "CMOV: exec/setcc_cmov.rs"),
    (1, EDX, 16, "PAT: cpu/msr.rs IA32_PAT"),
    (1, EDX, 17, "PSE-36: mmu/src/paging.rs"),
    (1, EDX, 19, "CLFSH: exec/cache_hint.rs CLFLUSH"),
    (1, ECX, 3, "MONITOR: exec/monitor.rs MONITOR/MWAIT, leaf 5"),
    (1, ECX, 13, "CX16: exec/atomic.rs CMPXCHG16B"),
    (1, ECX, 17, "PCID: cpu/tlb.rs PCID tags, exec/system.rs CR4.PCIDE and CR3 bit 63"),
    (1, ECX, 21, "x2APIC: devices lapic/x2apic.rs via exec/msr_access.rs"),
    (1, ECX, 22, "MOVBE: exec/mov.rs"),
    (1, ECX, 23, "POPCNT: exec/bit.rs"),
    (1, ECX, 24, "TSC-deadline: devices lapic timer, IA32_TSC_DEADLINE in exec/msr_access.rs"),
    (1, ECX, 30, "RDRAND: exec/random.rs"),
    (7, EBX, 1, "TSC_ADJUST: exec/msr_access.rs (Intel)"),
    (7, EBX, 7, "SMEP: mmu/src/paging.rs"),
    (7, EBX, 10, "INVPCID: exec/paging_insns.rs"),
    (7, EBX, 18, "RDSEED: exec/random.rs"),
    (7, EBX, 20, "SMAP: mmu/src/paging.rs, exec/paging_insns.rs STAC/CLAC"),
    (7, EBX, 23, "CLFLUSHOPT: exec/cache_hint.rs"),
    (7, EBX, 24, "CLWB: exec/cache_hint.rs"),
    (7, ECX, 2, "UMIP: exec/system.rs SGDT/SIDT/SLDT/SMSW/STR at CPL > 0"),
    (7, ECX, 3, "PKU: mmu/src/paging.rs protection keys, exec/paging_insns.rs RDPKRU/WRPKRU"),
    (7, ECX, 16, "LA57: mmu/src/paging.rs 5-level paging"),
    (7, ECX, 22, "RDPID: exec/msr_access.rs"),
    (0x8000_0001, ECX, 0, "LAHF/SAHF in 64-bit mode: exec/flagops.rs"),
    (0x8000_0001, ECX, 2, "SVM: src/nested/svm (AMD)"),
    (0x8000_0001, ECX, 5, "LZCNT/ABM: exec/bit.rs"),
    (0x8000_0001, ECX, 8, "PREFETCHW: exec/misc.rs (NOP)"),
    (0x8000_0001, EDX, 11, "SYSCALL: exec/fast_syscall.rs"),
    (0x8000_0001, EDX, 20, "NX: mmu/src/paging.rs"),
    (0x8000_0001, EDX, 26, "1-GiB pages: mmu/src/paging.rs"),
    (0x8000_0001, EDX, 27, "RDTSCP: exec/msr_access.rs"),
    (0x8000_0001, EDX, 29, "LM: long mode"),
    (0x8000_000A, EDX, 0, "nested paging: src/nested/svm/npt.rs"),
    (0x8000_000A, EDX, 3, "NRIP save: src/nested/svm/vmexit.rs"),
    (0x8000_000A, EDX, 5, "VMCB clean bits: src/nested/svm/clean_bits.rs"),
    (0x8000_000A, EDX, 6, "flush by ASID: TLB_CONTROL in src/nested/svm/vmrun.rs"),
    (0x8000_000A, EDX, 7, "decode assists: src/nested/svm/intercepts.rs"),
    (0x8000_000A, EDX, 10, "pause filter: src/nested/svm/intercepts.rs"),
    (0x8000_000A, EDX, 12, "pause filter threshold: src/nested/svm/intercepts.rs"),
];

/// AMD repeats these leaf-1 EDX bits in 80000001h:EDX (APM Vol. 3 Appendix E,
/// CPUID Fn8000_0001_EDX): FPU..APIC (0-9), MTRR..PSE36 (12-17), MMX (23), FXSR (24).
const AMD_MIRRORED: [u8; 18] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 23, 24];

/// The registers that hold only feature flags: (leaf, subleaf, registers).
const FEATURE_REGS: &[(u32, u32, &[usize])] = &[
    (1, 0, &[ECX, EDX]),
    (6, 0, &[EAX, EBX, ECX, EDX]),
    (7, 0, &[EBX, ECX, EDX]),
    (7, 1, &[EAX, EBX, ECX, EDX]),
    (0xD, 0, &[EAX, EBX, ECX, EDX]),
    (0xD, 1, &[EAX, EBX, ECX, EDX]),
    (0x8000_0001, 0, &[ECX, EDX]),
    (0x8000_0007, 0, &[EAX, EBX, ECX, EDX]),
    (0x8000_000A, 0, &[EDX]),
];

fn implemented(vendor: Vendor, leaf: u32, reg: usize, bit: u8) -> bool {
    IMPLEMENTED.iter().any(|&(l, r, b, _)| (l, r, b) == (leaf, reg, bit))
        || (vendor == Vendor::Amd
            && leaf == 0x8000_0001
            && reg == EDX
            && AMD_MIRRORED.contains(&bit)
            && implemented(vendor, 1, EDX, bit))
}

fn vendor_string(r: [u32; 4]) -> String {
    let mut s = Vec::new();
    for w in [r[EBX], r[EDX], r[ECX]] {
        s.extend_from_slice(&w.to_le_bytes());
    }
    String::from_utf8(s).unwrap()
}

// The consistency rule of the brief: every bit either model advertises is in the
// independent allow-list of implemented features.
#[test]
fn advertised_features_are_implemented() {
    for v in VENDORS {
        let model = Cpuid::new(v);
        for &(leaf, sub, regs) in FEATURE_REGS {
            let r = model.query(leaf, sub);
            for &reg in regs {
                for bit in 0..32u8 {
                    if r[reg] >> bit & 1 != 0 {
                        assert!(
                            implemented(v, leaf, reg, bit),
                            "{v:?} advertises leaf {leaf:#x}.{sub} reg {reg} bit {bit}"
                        );
                    }
                }
            }
        }
    }
}

// And the converse for the table: every feature a model advertises appears in CPUID
// where the feature table says, and the pending features do not.
#[test]
fn model_feature_sets_show_in_cpuid() {
    for v in VENDORS {
        let model = Cpuid::new(v);
        for f in hvsim::cpuid::FEATURES {
            let at = f.at;
            let bit = model.query(at.leaf, at.subleaf)[at.reg as usize] >> at.bit & 1;
            assert_eq!(bit == 1, model.has(f.feature), "{v:?} {}", f.name);
        }
        for f in models::pending(v).iter() {
            assert!(!model.has(f), "{v:?}: pending {f:?} is advertised");
        }
    }
    // VMX is implemented on the Intel model, SVM on the AMD model
    // (APM Vol. 3 Appendix E, CPUID Fn8000_000A).
    let intel = Cpuid::new(Vendor::Intel).with(Feature::Vmx);
    assert_eq!(intel.query(1, 0)[ECX] >> 5 & 1, 1, "CPUID.1:ECX.VMX");
    let amd = Cpuid::new(Vendor::Amd);
    assert_eq!(amd.query(0x8000_0001, 0)[ECX] >> 2 & 1, 1, "CPUID.80000001H:ECX.SVM");
    let svm = amd.query(0x8000_000A, 0);
    assert_eq!(
        (svm[EAX], svm[EBX], svm[EDX]),
        (1, hvsim::cpuid::SVM_ASIDS, hvsim::nested::svm::FEATURES_EDX)
    );
    let mut no_svm = Cpuid::new(Vendor::Amd);
    no_svm.set_feature(Feature::Svm, false);
    assert_eq!(no_svm.query(0x8000_000A, 0), [0; 4], "no SVM: no SVM leaf");
}

#[test]
fn vendor_strings_and_leaf_ranges() {
    let intel = Cpuid::new(Vendor::Intel);
    let amd = Cpuid::new(Vendor::Amd);
    assert_eq!(vendor_string(intel.query(0, 0)), "GenuineIntel");
    assert_eq!(vendor_string(amd.query(0, 0)), "AuthenticAMD");
    assert_eq!(vendor_string(amd.query(0x8000_0000, 0)), "AuthenticAMD");
    assert_eq!(intel.query(0, 0)[EAX], 0x1F);
    assert_eq!(amd.query(0, 0)[EAX], 0xD);
    assert_eq!(intel.query(0x8000_0000, 0)[EAX], 0x8000_0008);
    assert_eq!(amd.query(0x8000_0000, 0)[EAX], 0x8000_000A);
    // SDM: a leaf above both maxima returns the highest basic leaf on Intel.
    for leaf in [0x20, 0x4000_0000, 0x8000_0009, 0xFFFF_FFFF] {
        assert_eq!(intel.query(leaf, 1), intel.query(0x1F, 1), "{leaf:#x}");
        assert_eq!(amd.query(leaf, 1), [0; 4], "{leaf:#x}");
    }
    // AMD's 80000001h: the signature and the mirrored leaf-1 EDX bits; Intel has neither.
    let (i1, a1) = (intel.query(0x8000_0001, 0), amd.query(0x8000_0001, 0));
    assert_eq!(i1[EAX], 0);
    assert_eq!(a1[EAX], amd.query(1, 0)[EAX]);
    let pse_tsc_cmov = 1 << 3 | 1 << 4 | 1 << 15;
    assert_eq!(a1[EDX] & pse_tsc_cmov, pse_tsc_cmov);
    assert_eq!(i1[EDX] & pse_tsc_cmov, 0);
    // Brand strings.
    for (model, want) in [(intel, "hvsim Intel-like CPU model"), (amd, "hvsim AMD-like CPU model")]
    {
        let mut b = Vec::new();
        for leaf in 0x8000_0002..=0x8000_0004 {
            for w in model.query(leaf, 0) {
                b.extend_from_slice(&w.to_le_bytes());
            }
        }
        let end = b.iter().position(|&c| c == 0).unwrap();
        assert_eq!(std::str::from_utf8(&b[..end]).unwrap(), want);
    }
}

// SDM Vol. 2A "CPUID" leaf 0BH/1FH and SDM Vol. 3A §10.9 "Topology Identification":
// one logical processor per package by default; the values follow `Cpuid::topology`.
#[test]
fn topology_leaves() {
    for v in VENDORS {
        let model = Cpuid::new(v);
        assert_eq!(model.query(0xB, 0), [0, 1, 0x100, 0]);
        assert_eq!(model.query(0xB, 1), [0, 1, 0x201, 0]);
        assert_eq!(model.query(0xB, 2), [0, 0, 2, 0]);
        assert_eq!(model.query(1, 0)[EBX] >> 24, 0, "initial APIC ID");
    }
    let mut m = Cpuid::new(Vendor::Intel);
    m.topology = Topology { apic_id: 13, threads_per_core: 2, cores_per_package: 4 };
    assert_eq!(m.query(0xB, 0), [1, 2, 0x100, 13]);
    assert_eq!(m.query(0xB, 1), [3, 8, 0x201, 13]);
    assert_eq!(m.query(0x1F, 1), [3, 8, 0x201, 13]);
    assert_eq!(m.query(1, 0)[EBX] >> 16, 13 << 8 | 8);
    let mut a = Cpuid::new(Vendor::Amd);
    a.topology = m.topology;
    assert_eq!(a.query(0x8000_0008, 0)[ECX], 7 | 3 << 12, "NC and ApicIdCoreIdSize");
}

// CPUID.80000008H:EAX[7:0] must be the MAXPHYADDR the page walker enforces: a PDE with
// bit MAXPHYADDR set is a reserved-bit #PF (error code bit 3), SDM Vol. 3A §5.7
// "Page-Fault Exceptions".
#[test]
fn address_sizes_match_the_page_walker() {
    for v in VENDORS {
        let sizes = Cpuid::new(v).query(0x8000_0008, 0)[EAX];
        assert_eq!(sizes & 0xFF, u32::from(MAXPHYADDR), "{v:?}");
        assert_eq!(sizes >> 8 & 0xFF, 57, "{v:?}: linear bits with LA57");
        let without = Cpuid::new(v);
        let mut without = without;
        without.set_feature(Feature::La57, false);
        assert_eq!(without.query(0x8000_0008, 0)[EAX] >> 8 & 0xFF, 48, "{v:?}: without LA57");
    }
    let phys = Cpuid::new(Vendor::Intel).query(0x8000_0008, 0)[EAX] & 0xFF;
    let mut a = CodeAssembler::new(64).unwrap();
    a.mov(rax, qword_ptr(0x20_0000u64)).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(0x1000).unwrap();
    let mut m = Machine::new(&MachineConfig { mem_size: 4 << 20, ..Default::default() }).unwrap();
    m.set_exception_catch(CATCH_ALL);
    m.load(0x1000, &code).unwrap();
    m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();
    // The PDE mapping 2 MiB-4 MiB is the second entry of the first PD (setup area + 0x3000).
    let pde_at = hvsim_mmu::Gpa(m.setup_area() + 0x3000 + 8);
    let pde = m.mem.read_u64(pde_at);
    m.mem.write_u64(pde_at, pde | 1 << phys);
    let r = m.run(Some(10));
    match r.reason {
        StopReason::Exception { exception, .. } => {
            assert_eq!(exception.vector, 14, "{r}");
            assert_ne!(exception.error_code.unwrap() & 8, 0, "RSVD: {r}");
        }
        other => panic!("{other:?}"),
    }
}

// The CPUID instruction returns the model's values (EAX, EBX, ECX, EDX from EAX/ECX,
// upper halves cleared in 64-bit mode).
#[test]
fn cpuid_instruction_reads_the_model() {
    let mut a = CodeAssembler::new(64).unwrap();
    a.mov(rax, 0xFFFF_FFFF_0000_0007u64).unwrap();
    a.mov(rcx, 0xFFFF_FFFF_0000_0000u64).unwrap();
    a.cpuid().unwrap();
    a.hlt().unwrap();
    let code = a.assemble(0x1000).unwrap();
    for v in VENDORS {
        let cfg = MachineConfig { mem_size: 1 << 20, vendor: v, ..Default::default() };
        let mut m = Machine::new(&cfg).unwrap();
        m.set_exception_catch(CATCH_ALL);
        m.load(0x1000, &code).unwrap();
        m.enter_mode(GuestMode::Long64, 0x1000, 0x8000).unwrap();
        let r = m.run(Some(10));
        assert!(matches!(r.reason, StopReason::Halted { .. }), "{r}");
        let want = Cpuid::new(v).query(7, 0);
        let got = [m.cpu.gpr[0], m.cpu.gpr[3], m.cpu.gpr[1], m.cpu.gpr[2]];
        assert_eq!(got, want.map(u64::from), "{v:?}");
        assert_ne!(want[EBX], 0);
    }
}

// SDM Vol. 2B "MOV—Move to/from Control Registers": "#GP(0) If an attempt is made to write
// a 1 to any reserved bit in CR4"; a CR4 bit whose feature the model does not advertise is
// reserved (SDM Vol. 3A §2.5 "Control Registers"). Each feature-gated bit faults with its
// feature off and is accepted with it on (32-bit protected mode without paging, where no
// other CR4 rule applies; PCIDE needs IA-32e mode and VMXE/SMXE belong to VMX/SMX).
#[test]
fn cr4_bits_follow_the_model() {
    use hvsim::cpu::regs::cr4;
    let write_cr4 = |bit: u64, feature: Feature, on: bool| {
        let mut a = CodeAssembler::new(32).unwrap();
        a.mov(eax, bit as u32).unwrap();
        a.mov(cr4, eax).unwrap();
        a.hlt().unwrap();
        let code = a.assemble(0x1000).unwrap();
        let mut m = Machine::new(&MachineConfig::default()).unwrap();
        m.set_exception_catch(CATCH_ALL);
        m.cpuid.set_feature(feature, on);
        m.load(0x1000, &code).unwrap();
        m.enter_mode(GuestMode::Protected32, 0x1000, 0x8000).unwrap();
        let r = m.run(Some(10));
        (Machine::exception_of(&r).map(|e| (e.vector, e.error_code)), m.cpu.cr4)
    };
    for &(bit, feature) in hvsim::cpuid::CR4_FEATURES {
        let Some(f) = feature else { continue };
        if matches!(bit, cr4::PCIDE | cr4::VMXE | cr4::SMXE) {
            continue;
        }
        assert_eq!(write_cr4(bit, f, false), (Some((13, Some(0))), 0), "{bit:#x} without {f:?}");
        assert_eq!(write_cr4(bit, f, true), (None, bit), "{bit:#x} with {f:?}");
    }
    for v in VENDORS {
        let valid = Cpuid::new(v).cr4_valid_bits();
        for bit in [cr4::SMXE, cr4::OSXSAVE, cr4::OSFXSR, cr4::FSGSBASE, cr4::MCE] {
            assert_eq!(valid & bit, 0, "{v:?}: CR4 bit {bit:#x} of an absent feature");
        }
        // CR4.VMXE exists exactly where VMX is advertised (the Intel model).
        assert_eq!(valid & cr4::VMXE != 0, v == Vendor::Intel, "{v:?}: CR4.VMXE");
        for bit in [cr4::DE, cr4::PAE, cr4::PGE, cr4::PCIDE, cr4::SMEP, cr4::SMAP, cr4::PKE] {
            assert_eq!(valid & bit, bit, "{v:?}: CR4 bit {bit:#x}");
        }
    }
}
