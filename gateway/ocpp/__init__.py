"""OCPP-J: the codec (re-exported from the `gateway._core` extension), the sans-I/O RPC core,
the asyncio WebSocket connection, and the per-version station adapters (`gateway.ocpp.v16`)."""

from typing import Any, Literal, TypeAlias

from gateway._core import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_FRAME_BYTES,
    MAX_MESSAGE_ID_LENGTH,
    ActionNotImplemented,
    ActionNotSupported,
    Call,
    CallError,
    CallResult,
    CallResultError,
    Codec,
    FormatViolation,
    MessageTypeNotSupported,
    OccurrenceConstraintViolation,
    OcppError,
    PropertyConstraintViolation,
    ProtocolError,
    RpcFrameworkError,
    Send,
    TypeConstraintViolation,
)

# Type aliases exist only in the extension's stub; these are the same, at run time.
JsonObject: TypeAlias = dict[str, Any]
Subprotocol: TypeAlias = Literal["ocpp1.6", "ocpp2.0.1", "ocpp2.1"]
Message: TypeAlias = Call | CallResult | CallError | CallResultError | Send

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_FRAME_BYTES",
    "MAX_MESSAGE_ID_LENGTH",
    "ActionNotImplemented",
    "ActionNotSupported",
    "Call",
    "CallError",
    "CallResult",
    "CallResultError",
    "Codec",
    "FormatViolation",
    "JsonObject",
    "Message",
    "MessageTypeNotSupported",
    "OccurrenceConstraintViolation",
    "OcppError",
    "PropertyConstraintViolation",
    "ProtocolError",
    "RpcFrameworkError",
    "Send",
    "Subprotocol",
    "TypeConstraintViolation",
]
