//! EVENTINJ and EXITINTINFO: the event format of APM Vol. 2 §15.20 "Event Injection"
//! (Figure 15-4 "EVENTINJ Field"); EXITINTINFO (§15.7.2 "Intercepts During IDT
//! Interrupt Delivery") uses the same layout.
//!
//! Bits 7:0 VECTOR, 10:8 TYPE, 11 EV (push an error code), 31 V (valid), 63:32 ERRORCODE.
//! "Injecting an exception (TYPE = 3) with vectors 2 or 255 is not allowed"; an event
//! the processor cannot deliver makes VMRUN fail with VMEXIT_INVALID (§15.5.1 "illegal
//! event injection").

use crate::vmcb::bits::{
    EVENTINJ_ERRORCODE, EVENTINJ_EV, EVENTINJ_TYPE, EVENTINJ_V, EVENTINJ_VECTOR,
};
use crate::vmcb::event_type;

/// APM reference for this module.
pub const REFERENCE: &str = "APM Vol. 2 §15.20 \"Event Injection\"";

/// The TYPE field of an event (open: reserved encodings are kept, not lost).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub enum EventType {
    /// 0: external or virtual interrupt (INTR).
    Intr,
    /// 2: NMI.
    Nmi,
    /// 3: exception (fault or trap).
    Exception,
    /// 4: software interrupt (INTn).
    SoftwareInt,
    /// 1, 5, 6, 7: reserved.
    Reserved(u8),
}

impl EventType {
    /// Decodes the 3-bit TYPE field.
    pub const fn from_bits(t: u8) -> EventType {
        match t & 7 {
            event_type::INTR => EventType::Intr,
            event_type::NMI => EventType::Nmi,
            event_type::EXCEPTION => EventType::Exception,
            event_type::SOFTWARE_INT => EventType::SoftwareInt,
            r => EventType::Reserved(r),
        }
    }

    /// The 3-bit TYPE field.
    pub const fn bits(self) -> u8 {
        match self {
            EventType::Intr => event_type::INTR,
            EventType::Nmi => event_type::NMI,
            EventType::Exception => event_type::EXCEPTION,
            EventType::SoftwareInt => event_type::SOFTWARE_INT,
            EventType::Reserved(r) => r & 7,
        }
    }
}

/// One event in EVENTINJ/EXITINTINFO format.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Hash)]
pub struct Event {
    /// VECTOR (bits 7:0).
    pub vector: u8,
    /// TYPE (bits 10:8).
    pub kind: EventType,
    /// EV (bit 11): push `error_code`.
    pub has_error_code: bool,
    /// V (bit 31).
    pub valid: bool,
    /// ERRORCODE (bits 63:32).
    pub error_code: u32,
}

impl Event {
    /// Decodes a raw EVENTINJ/EXITINTINFO value (reserved bits 30:12 are ignored).
    pub const fn decode(raw: u64) -> Event {
        Event {
            vector: EVENTINJ_VECTOR.get(raw) as u8,
            kind: EventType::from_bits(EVENTINJ_TYPE.get(raw) as u8),
            has_error_code: EVENTINJ_EV.get(raw) != 0,
            valid: EVENTINJ_V.get(raw) != 0,
            error_code: EVENTINJ_ERRORCODE.get(raw) as u32,
        }
    }

    /// Encodes the event.
    pub const fn encode(&self) -> u64 {
        let mut v = EVENTINJ_VECTOR.set(0, self.vector as u64);
        v = EVENTINJ_TYPE.set(v, self.kind.bits() as u64);
        v = EVENTINJ_EV.set(v, self.has_error_code as u64);
        v = EVENTINJ_V.set(v, self.valid as u64);
        EVENTINJ_ERRORCODE.set(v, self.error_code as u64)
    }

    /// A valid event of `kind` and `vector`, with an error code if `error_code` is `Some`.
    pub const fn new(kind: EventType, vector: u8, error_code: Option<u32>) -> Event {
        let (has_error_code, error_code) = match error_code {
            Some(e) => (true, e),
            None => (false, 0),
        };
        Event { vector, kind, has_error_code, valid: true, error_code }
    }
}

/// Why an EVENTINJ value cannot be injected.
#[derive(Copy, Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum EventInjError {
    /// TYPE is 1, 5, 6 or 7.
    #[error("EVENTINJ.TYPE {0} is reserved")]
    ReservedType(u8),
    /// TYPE = 3 with vector 2 (NMI is type 2, not an exception).
    #[error("EVENTINJ injects vector 2 as an exception (NMI is TYPE 2)")]
    ExceptionVectorNmi,
    /// TYPE = 3 with a vector that is no exception (reserved vectors and vectors >= 32).
    #[error("EVENTINJ injects vector {0} as an exception, which is not an exception vector")]
    ExceptionVectorReserved(u8),
    /// TYPE = 2 with a vector other than 2.
    #[error("EVENTINJ injects an NMI with vector {0} (NMI is vector 2)")]
    NmiVector(u8),
}

/// The exception vectors AMD64 defines (APM Vol. 2 §8.2, Table 8-1 "Interrupt Vector
/// Source and Cause"): bit n set when vector n is an exception. Vector 2 is NMI (an
/// interrupt, not an exception); 9, 15, 20, 22-27 and 31 are reserved.
pub const EXCEPTION_VECTORS: u32 = (1 << 0) // #DE
    | (1 << 1) // #DB
    | (1 << 3) // #BP
    | (1 << 4) // #OF
    | (1 << 5) // #BR
    | (1 << 6) // #UD
    | (1 << 7) // #NM
    | (1 << 8) // #DF
    | (1 << 10) // #TS
    | (1 << 11) // #NP
    | (1 << 12) // #SS
    | (1 << 13) // #GP
    | (1 << 14) // #PF
    | (1 << 16) // #MF
    | (1 << 17) // #AC
    | (1 << 18) // #MC
    | (1 << 19) // #XF
    | (1 << 21) // #CP
    | (1 << 28) // #HV
    | (1 << 29) // #VC
    | (1 << 30); // #SX

/// The NMI vector.
pub const NMI_VECTOR: u8 = 2;

/// Checks an EVENTINJ value for VMRUN: `Ok(None)` if V is clear (nothing to inject),
/// `Ok(Some(event))` for a deliverable event, `Err` for an event VMRUN rejects with
/// VMEXIT_INVALID.
pub fn validate(raw: u64) -> Result<Option<Event>, EventInjError> {
    let e = Event::decode(raw);
    if !e.valid {
        return Ok(None);
    }
    match e.kind {
        EventType::Reserved(t) => Err(EventInjError::ReservedType(t)),
        EventType::Exception if e.vector == NMI_VECTOR => Err(EventInjError::ExceptionVectorNmi),
        EventType::Exception if e.vector >= 32 || EXCEPTION_VECTORS & (1 << e.vector) == 0 => {
            Err(EventInjError::ExceptionVectorReserved(e.vector))
        }
        EventType::Nmi if e.vector != NMI_VECTOR => Err(EventInjError::NmiVector(e.vector)),
        _ => Ok(Some(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let e = Event::new(EventType::Exception, 14, Some(0xDEAD_BEEF));
        let raw = e.encode();
        assert_eq!(raw, 0xDEAD_BEEF_0000_0000 | 1 << 31 | 1 << 11 | 3 << 8 | 14);
        assert_eq!(Event::decode(raw), e);
        // Reserved bits 30:12 are ignored on decode.
        assert_eq!(Event::decode(raw | 0x7FFF_F000), e);
    }

    #[test]
    fn invalid_bit_clear_injects_nothing() {
        assert_eq!(validate(0), Ok(None));
        assert_eq!(validate(5 << 8 | 0x20), Ok(None));
    }

    #[test]
    fn deliverable_events() {
        for (kind, vector, err) in [
            (EventType::Intr, 0x20, None),
            (EventType::Nmi, 2, None),
            (EventType::Exception, 13, Some(0)),
            (EventType::Exception, 6, None),
            (EventType::SoftwareInt, 0x80, None),
            (EventType::SoftwareInt, 2, None),
        ] {
            let e = Event::new(kind, vector, err);
            assert_eq!(validate(e.encode()), Ok(Some(e)));
        }
    }

    #[test]
    fn impossible_events() {
        let v = |t: u64, vec: u64| validate(1 << 31 | t << 8 | vec);
        for t in [1, 5, 6, 7] {
            assert_eq!(v(t, 0x20), Err(EventInjError::ReservedType(t as u8)));
        }
        assert_eq!(v(3, 2), Err(EventInjError::ExceptionVectorNmi));
        for vec in [9, 15, 20, 22, 27, 31, 32, 255] {
            assert_eq!(v(3, vec), Err(EventInjError::ExceptionVectorReserved(vec as u8)));
        }
        assert_eq!(v(2, 3), Err(EventInjError::NmiVector(3)));
    }

    #[test]
    fn exception_vector_table() {
        assert_eq!(EXCEPTION_VECTORS.count_ones(), 21);
        assert_eq!(EXCEPTION_VECTORS & (1 << NMI_VECTOR), 0);
    }
}
