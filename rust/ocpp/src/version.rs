//! The negotiated OCPP version.

use std::fmt;

/// An OCPP-J version, as negotiated by WebSocket subprotocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// `ocpp1.6`, with the security whitepaper messages.
    V16,
    /// `ocpp2.0.1`.
    V201,
    /// `ocpp2.1`, which adds CALLRESULTERROR (5) and SEND (6).
    V21,
}

impl Version {
    /// All versions, oldest first.
    pub const ALL: [Version; 3] = [Version::V16, Version::V201, Version::V21];

    /// The version of a WebSocket subprotocol name, if it is one we speak.
    pub fn from_subprotocol(name: &str) -> Option<Version> {
        match name {
            "ocpp1.6" => Some(Version::V16),
            "ocpp2.0.1" => Some(Version::V201),
            "ocpp2.1" => Some(Version::V21),
            _ => None,
        }
    }

    /// The WebSocket subprotocol name.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Version::V16 => "ocpp1.6",
            Version::V201 => "ocpp2.0.1",
            Version::V21 => "ocpp2.1",
        }
    }

    /// Whether message types 5 (CALLRESULTERROR) and 6 (SEND) exist.
    pub fn has_send(self) -> bool {
        self == Version::V21
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.subprotocol())
    }
}
