"""Private extension module built from `rust/python` (pyo3). Import through `gateway.ocpp`.

The OCPP-J codec: parses WebSocket text frames into messages, validates payloads against the
official OCPP JSON schemas of the negotiated version, and serializes frames. Every bad input
raises a subclass of `OcppError` carrying the CallError code spelled as that version spells it.
"""

from array import array
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias

JsonObject: TypeAlias = dict[str, Any]
Subprotocol: TypeAlias = Literal["ocpp1.6", "ocpp2.0.1", "ocpp2.1"]

DEFAULT_MAX_FRAME_BYTES: Final[int]
"""Frames longer than this (in UTF-8 bytes) are refused before parsing."""
DEFAULT_MAX_DEPTH: Final[int]
"""Frames nested deeper than this (arrays and objects, the frame array counting as 1) are
refused."""
MAX_MESSAGE_ID_LENGTH: Final[int]
"""OCPP-J: a message id is a string of at most 36 characters."""

# Spelling of `code` on 1.6 for the kinds 1.6 lacks: RpcFrameworkError carries
# "FormationViolation"; MessageTypeNotSupported keeps "MessageTypeNotSupported" but is never
# answered (`should_reply` False). Codec errors always have empty `details`.

class OcppError(Exception):
    """A frame or payload that violates OCPP-J. Never raised for a well-formed CALLERROR."""

    code: str
    """The CallError code, spelled for the codec's version (e.g. FormationViolation on 1.6,
    FormatViolation on 2.x)."""
    message_id: str
    """The id to answer with: the frame's own id, or "-1" when it could not be read."""
    description: str
    """A short human-readable reason; at most 255 characters (2.0.1 rule)."""
    details: JsonObject
    should_reply: bool
    """False where the spec says to ignore the frame (e.g. an unknown message type on 1.6, an
    invalid CALLRESULT before 2.1, anything wrong in a 2.1 SEND): log it, send nothing. Also
    False for a malformed CALLERROR/CALLRESULTERROR with a readable id (an error is never
    answered with an error) and for errors from `validate`/`encode_*` (our own payloads)."""
    def __init__(
        self,
        description: str = "",
        code: str = "GenericError",
        message_id: str = "-1",
        details: JsonObject | None = None,
        should_reply: bool = False,
        frame: str | None = None,
    ) -> None:
        """Built by the codec; `frame` is what `error_frame()` returns when `should_reply`.
        Instances pickle with all attributes."""

    def error_frame(self) -> str | None:
        """The CALLERROR frame (type 4, or CALLRESULTERROR type 5 for a bad CALLRESULT on 2.1)
        to send back, or None when `should_reply` is False."""

class FormatViolation(OcppError):
    """Syntactically bad payload or PDU: FormationViolation (1.6) / FormatViolation (2.x)."""

class ProtocolError(OcppError):
    """Incomplete frame or wrong frame structure (e.g. missing payload)."""

class OccurrenceConstraintViolation(OcppError):
    """Missing required field or wrong number of items: OccurenceConstraintViolation (1.6) /
    OccurrenceConstraintViolation (2.x)."""

class PropertyConstraintViolation(OcppError):
    """A field with a value outside its enum, length, range, format or multiple."""

class TypeConstraintViolation(OcppError):
    """A field of the wrong JSON type."""

class ActionNotImplemented(OcppError):
    """CALL of an action unknown to the version: NotImplemented."""

class ActionNotSupported(OcppError):
    """CALL of an action known to the version but not in the codec's supported set: NotSupported."""

class RpcFrameworkError(OcppError):
    """Frame that is not a valid RPC frame (bad JSON, not an array, unreadable or too long id,
    frame over the size or depth limit). 2.x: RpcFrameworkError; 1.6 has no such code and
    uses FormationViolation. `message_id` is "-1"."""

class MessageTypeNotSupported(OcppError):
    """Unknown message type number. 2.x: MessageTypeNotSupported; 1.6: ignored
    (`should_reply` False)."""

class Call:
    """[2, id, action, payload]: a request. Message classes are immutable, compare equal
    field by field, and have a readable repr."""

    message_id: str
    action: str
    payload: JsonObject
    def __init__(self, message_id: str, action: str, payload: JsonObject) -> None: ...

class CallResult:
    """[3, id, payload]: a response. `action` is the action of the CALL it answers when the
    caller passed it in `pending`; then the payload was validated against that action's
    response schema. Otherwise `action` is None and the payload is unvalidated (a late reply or
    unknown id: log and drop)."""

    message_id: str
    action: str | None
    payload: JsonObject
    def __init__(self, message_id: str, action: str | None, payload: JsonObject) -> None: ...

class CallError:
    """[4, id, code, description, details]: the peer's error answer to one of our CALLs."""

    message_id: str
    code: str
    """As received; both spellings of the 1.6/2.x codes are accepted, and a code no version
    defines is kept as well (the peer's error is data, not ours)."""
    description: str
    details: JsonObject
    def __init__(
        self, message_id: str, code: str, description: str, details: JsonObject
    ) -> None: ...

class CallResultError:
    """[5, id, code, description, details] (OCPP 2.1): the peer could not process our
    CALLRESULT."""

    message_id: str
    code: str
    description: str
    details: JsonObject
    def __init__(
        self, message_id: str, code: str, description: str, details: JsonObject
    ) -> None: ...

class Send:
    """[6, id, action, payload] (OCPP 2.1): a request that is never answered."""

    message_id: str
    action: str
    payload: JsonObject
    def __init__(self, message_id: str, action: str, payload: JsonObject) -> None: ...

Message: TypeAlias = Call | CallResult | CallError | CallResultError | Send

class Codec:
    """An OCPP-J codec for one negotiated subprotocol. Immutable and thread-safe; one per version
    is enough for a whole gateway. Schemas are compiled lazily, once per action."""

    def __init__(
        self,
        subprotocol: Subprotocol,
        *,
        max_frame_bytes: int = ...,
        max_depth: int = ...,
        check_formats: bool = True,
        supported_actions: Iterable[str] | None = None,
    ) -> None:
        """`check_formats` validates "format": "date-time"/"uri" strings. `supported_actions`
        (None = every action of the version) decides NotSupported vs a valid CALL (it does not
        restrict `encode_*`). Raises ValueError for an unknown subprotocol, a non-positive
        limit, `max_depth` above 200 (the parser's own hard limit), or an action in
        `supported_actions` that the version does not define."""

    @property
    def subprotocol(self) -> Subprotocol: ...
    @property
    def max_frame_bytes(self) -> int: ...
    @property
    def max_depth(self) -> int: ...
    def actions(self) -> list[str]:
        """Every action the version defines (both directions), sorted."""

    def decode(self, frame: str | bytes, pending: Mapping[str, str] | None = None) -> Message:
        """Parse and validate one frame. `pending` maps the ids of our outstanding CALLs to their
        actions, so a CALLRESULT is validated against the right response schema. Raises an
        `OcppError` subclass for anything invalid; TypeError for a frame that is neither str
        nor bytes."""

    def decode_many(
        self, frames: Sequence[str | bytes], pending: Mapping[str, str] | None = None
    ) -> list[Message | OcppError]:
        """Decode a batch; each invalid frame yields its `OcppError` in place instead of raising."""

    def validate(self, action: str, payload: JsonObject, *, response: bool = False) -> None:
        """Validate a payload against the request (or response) schema of `action`. Raises the
        OcppError subclass (message_id "-1", should_reply False); ActionNotImplemented for an
        unknown action; TypeError for values that are not JSON types."""

    def encode_call(self, message_id: str, action: str, payload: JsonObject) -> str:
        """Serialize [2, id, action, payload] after validating payload against the request
        schema. Raises the OcppError subclass for an invalid payload, ActionNotImplemented for an
        unknown action, ValueError for an id that is empty or longer than 36 characters, a
        non-finite float or nesting beyond max_depth, TypeError for a value that is not
        dict/list/str/int/float/bool/None (or a non-str dict key). Output is compact JSON,
        non-ASCII text unescaped."""

    def encode_result(self, message_id: str, action: str, payload: JsonObject) -> str:
        """Serialize [3, id, payload] after validating payload against `action`'s response
        schema."""

    def encode_error(
        self,
        message_id: str,
        code: str,
        description: str = "",
        details: JsonObject | None = None,
    ) -> str:
        """Serialize [4, id, code, description, details]. `code` may be given in either
        spelling; it is written as this version spells it. The description is cut to 255
        characters. Raises ValueError for a code the version does not define."""

    def encode_send(self, message_id: str, action: str, payload: JsonObject) -> str:
        """Serialize [6, id, action, payload] (OCPP 2.1 only; ValueError otherwise)."""

# --- Load balancing (crate evgw_balancing, rust/python/src/balancing.rs) ---

BalancingNode: TypeAlias = tuple[str, str | None, tuple[float, float, float], float]
"""(id, parent id or None for the root, A limit on grid L1/L2/L3, power limit W); inf = none."""
BalancingCharger: TypeAlias = tuple[str, str, int, str, float, float, float, bool]
"""(id, node id, phases 1|3, rotation "RST".."TSR" (or "R"/"S"/"T": the grid phase of a
single-phase charger's L1), min A, max A, resolution A (whole mA), can switch 1p/3p)."""
FloatColumn: TypeAlias = Sequence[float] | Any
"""A list or tuple of floats, or any float64 buffer (array.array('d'), numpy float64)."""
IntColumn: TypeAlias = Sequence[int] | Any
"""A list or tuple of ints or bools, or any int64 / uint8 buffer (array.array('q'))."""

NOMINAL_VOLTAGE_V: Final[float]
"""230 V: P = V x I x phases."""
BALANCING_REASONS: Final[tuple[str, ...]]
"""Reason names by code: Inactive, CapBelowMinimum, StaleMeter, Paused, AtMaximum, Cap,
Saturated."""

class BalancingSolver:
    """The site load-balancing solver (crate `evgw_balancing`; algorithm and guarantees in its
    docs). Build once from the tree and the charger table; `solve` every tick with flat
    per-charger columns (index order of `charger_ids`). Bad input raises ValueError naming
    the node or charger.

    Columns may be lists or tuples (read item by item) or buffers (`array.array('d')` for
    floats, `array.array('q')` or `bytes` for ints and flags, `memoryview`s of those):
    copied in one go, the fastest input path. The solver keeps its working memory and the
    converted columns from tick to tick, so a solve allocates little beyond the result
    lists."""

    def __init__(
        self,
        nodes: Sequence[BalancingNode],
        chargers: Sequence[BalancingCharger],
        urgency_tier: float = 0.1,
    ) -> None: ...
    @property
    def node_ids(self) -> list[str]: ...
    @property
    def charger_ids(self) -> list[str]: ...
    def solve(
        self,
        active: IntColumn,
        *,
        max_current: FloatColumn | None = None,
        phases: IntColumn | None = None,
        allow_1p: IntColumn | None = None,
        priority: IntColumn | None = None,
        energy_needed_wh: FloatColumn | None = None,
        departure_s: FloatColumn | None = None,
        waited: IntColumn | None = None,
        measured: FloatColumn | None = None,
        node_max_current: FloatColumn | None = None,
        node_max_power: FloatColumn | None = None,
        node_meter: FloatColumn | None = None,
        node_meter_state: IntColumn | None = None,
    ) -> tuple[list[float], list[int], list[int], list[int], list[int]]:
        """One tick. Per charger: `active` (a session wants current), `max_current` (this
        tick's cap in A: EV, cable, OCPP/OCPI/local-API caps; inf = none), `phases` (1|3 in
        use), `allow_1p` (may fall back to 1p), `priority` (class, higher first),
        `energy_needed_wh` and `departure_s` (urgency; NaN = unknown), `waited` (rotation
        periods spent paused), `measured` (3 per charger: its own L1, L2, L3 draw in A).
        Per node: `node_max_current` (3 per node, A, inf = none), `node_max_power` (W),
        `node_meter` (3 per node, A measured per grid phase), `node_meter_state` (0 no
        meter, 1 fresh, 2 stale = fully loaded). None = defaults (inactive, no cap, 3p, class
        0, unknown urgency, no meters).

        Returns (setpoints A, phases used, reason codes (see BALANCING_REASONS), reason node
        index or -1, reason limit: 0-2 = L1-L3, 3 = power, -1 = none)."""
    def solve_detailed(
        self,
        active: IntColumn,
        *,
        max_current: FloatColumn | None = None,
        phases: IntColumn | None = None,
        allow_1p: IntColumn | None = None,
        priority: IntColumn | None = None,
        energy_needed_wh: FloatColumn | None = None,
        departure_s: FloatColumn | None = None,
        waited: IntColumn | None = None,
        measured: FloatColumn | None = None,
        node_max_current: FloatColumn | None = None,
        node_max_power: FloatColumn | None = None,
        node_meter: FloatColumn | None = None,
        node_meter_state: IntColumn | None = None,
    ) -> tuple[
        list[float],
        list[int],
        list[int],
        list[int],
        list[int],
        list[int],
        list[float],
        list[float],
        list[float],
        list[float],
    ]:
        """As `solve`, plus: admission rank (-1 = not ranked), urgency, the unrounded
        max-min fair value, node capacities and node loads (4 per node: A on L1, L2, L3,
        then W)."""
    def time_solve(
        self,
        active: IntColumn,
        *,
        repeats: int,
        max_current: FloatColumn | None = None,
        phases: IntColumn | None = None,
        allow_1p: IntColumn | None = None,
        priority: IntColumn | None = None,
        energy_needed_wh: FloatColumn | None = None,
        departure_s: FloatColumn | None = None,
        waited: IntColumn | None = None,
        measured: FloatColumn | None = None,
        node_max_current: FloatColumn | None = None,
        node_max_power: FloatColumn | None = None,
        node_meter: FloatColumn | None = None,
        node_meter_state: IntColumn | None = None,
    ) -> list[float]:
        """A benchmark aid: converts the columns once (as `solve`), then times `repeats`
        solves inside Rust with the buffers reused; returns each solve's time in ns (the
        Rust solver alone, without the per-call conversion)."""
    def describe(self, reason: int, node: int, limit: int) -> str:
        """The explanation of one result, e.g. 'paused: no headroom at node "board2" phase
        L2'."""

class BalancingTick:
    """One tick's columns for a `BalancingSolver`, allocated once as `array.array` objects
    (float64 'd', int64 'q') and reused tick after tick: the caller writes the inputs in
    place (`tick.max_current[i] = 16.0`, `tick.active[:] = array('q', ...)`; the lengths must
    stay), `solve()` reads them and writes the results into the output arrays. The same
    inputs, meanings and results as `BalancingSolver.solve`, without building five result
    lists per tick (the fastest path through the binding). Starts at `solve`'s defaults:
    inactive, no cap, 3p, no 1p fallback, class 0, unknown urgency (NaN), not waited,
    nothing measured, no node limits (inf), no meters (state 0)."""

    def __init__(self, solver: BalancingSolver) -> None: ...
    @property
    def solver(self) -> BalancingSolver: ...
    # Inputs, one item per charger (`measured`: 3 per charger) or per node (3 per node for
    # `node_max_current` and `node_meter`); see `BalancingSolver.solve`.
    @property
    def active(self) -> array[int]: ...
    @property
    def max_current(self) -> array[float]: ...
    @property
    def phases(self) -> array[int]: ...
    @property
    def allow_1p(self) -> array[int]: ...
    @property
    def priority(self) -> array[int]: ...
    @property
    def energy_needed_wh(self) -> array[float]: ...
    @property
    def departure_s(self) -> array[float]: ...
    @property
    def waited(self) -> array[int]: ...
    @property
    def measured(self) -> array[float]: ...
    @property
    def node_max_current(self) -> array[float]: ...
    @property
    def node_max_power(self) -> array[float]: ...
    @property
    def node_meter(self) -> array[float]: ...
    @property
    def node_meter_state(self) -> array[int]: ...
    # Outputs of the last `solve()`, one per charger: the five lists `solve` returns.
    @property
    def setpoints(self) -> array[float]: ...
    @property
    def phases_used(self) -> array[int]: ...
    @property
    def reasons(self) -> array[int]: ...
    @property
    def reason_nodes(self) -> array[int]: ...
    @property
    def reason_limits(self) -> array[int]: ...
    def solve(self) -> None:
        """Solve from the input arrays as they are now; write the output arrays. Raises
        ValueError as `BalancingSolver.solve` does, or when a column's length changed."""

# ---------------------------------------------------------------- Modbus register decoding

RegisterLayoutValue: TypeAlias = tuple[str, int, str, int, str, float, bool]
"""`(name, offset, type, count, word_order, scale, hex)`: one value of a `RegisterLayout`.
`type` is a `RegisterType` value ("u16" … "f64", "string"), `count` its registers (the type's
width, or the string's length), `word_order` "big" or "little", `hex` True for an integer
shown as lowercase hex (RFID tags)."""

class RegisterLayout:
    """A compiled block layout: the values one Modbus read request returns, with
    `scaled_value`'s semantics (raw x scale, integers kept at scale 1, hex format, strings up to
    the first NUL, NaN and infinities refused). Decoding errors raise
    `gateway.modbus.registers.RegisterDecodeError` (a `ChargerUnavailable`) naming the value."""

    def __init__(self, values: Iterable[RegisterLayoutValue]) -> None:
        """Raises `ValueError` for a bad layout (unknown type or word order, a count that does
        not fit the type, a value past register 65535, a non-finite scale, hex on a
        non-integer type, a name given twice) and `TypeError` for a malformed tuple."""
    @property
    def names(self) -> tuple[str, ...]:
        """The value names, in layout order."""
    @property
    def block_len(self) -> int:
        """Registers a block needs: the end of the value reaching furthest."""
    def __len__(self) -> int: ...
    def decode(self, words: Iterable[int]) -> dict[str, int | float | str]:
        """Decode one block of 16-bit words (longer blocks are fine) into `{name: value}`."""
    def decode_many(self, blocks: Iterable[Iterable[int]]) -> list[dict[str, int | float | str]]:
        """Decode many blocks with this layout; all or nothing (the error names the block's
        index)."""
