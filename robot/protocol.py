"""Wire protocol between a robot-side Franka server and its clients (ZeroMQ REQ/REP, msgpack).

One request is one ZeroMQ message holding one msgpack map; the server answers every request with one map.
The full description, with examples, is in docs/deployment.md. Summary:

request  {"cmd": <str>, "id": <int, optional, echoed>, "token": <str, when the server has one>, ...fields}
reply    {"ok": true,  "id": ..., ...result}      or      {"ok": false, "id": ..., "error": {"code", "message"}}

cmd        fields                                   result
ping       -                                        version, backend, limits
observe    images: bool (default true)              obs
step       action: 7 numbers (DROID delta)          applied (7), limited (list of limit names), obs (no images),
                                                     handled_s
gripper    position: number in [0, 1] (closedness)  applied (number), limited, handled_s
home       -                                        obs (no images), steps, handled_s
stop       -                                        obs (no images)

Requests are validated completely before anything moves. Values outside the *domain* of a field (a non-finite
number, a translation beyond 1 m, an Euler angle beyond pi, a gripper value outside [0, 1]) are refused with
`out_of_range`; values inside the domain but beyond the server's safety limits are clipped by `robot.safety`,
and the reply lists which limits acted.
"""
from __future__ import annotations

import hmac
import math
from dataclasses import dataclass

import msgpack
import numpy as np

PROTOCOL_VERSION = 1
COMMANDS = ("ping", "observe", "step", "gripper", "home", "stop")
MAX_REQUEST_BYTES = 4096  # a step request is ~100 bytes; anything near this limit is not ours
MAX_TRANSLATION_DOMAIN = 1.0  # metres per step; larger values are a units bug, never a command
MAX_ROTATION_DOMAIN = math.pi  # radians per Euler component

# Fields every request may carry, then the extra fields of each command.
_COMMON_FIELDS = {"cmd", "id", "token"}
_COMMAND_FIELDS = {
    "ping": set(),
    "observe": {"images"},
    "step": {"action"},
    "gripper": {"position"},
    "home": set(),
    "stop": set(),
}

# Error codes (stable strings clients can branch on).
MALFORMED = "malformed"  # not a single msgpack map of acceptable size
UNKNOWN_COMMAND = "unknown_command"
BAD_FIELD = "bad_field"  # missing, unknown or wrongly typed field
OUT_OF_RANGE = "out_of_range"
UNAUTHORIZED = "unauthorized"
RATE_LIMITED = "rate_limited"
BUSY = "busy"  # 'home' while a motion is still running
ROBOT_ERROR = "robot_error"  # the backend failed while executing a valid command


class ProtocolError(ValueError):
    """A request that must be refused; `code` is one of the error codes above."""

    def __init__(self, code: str, message: str, request_id: int | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    cmd: str
    id: int | None = None
    action: np.ndarray | None = None  # float64 [7] for "step"
    position: float | None = None  # for "gripper"
    images: bool = True  # for "observe"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite_number(value, field: str, request_id) -> float:
    if not _is_number(value):
        raise ProtocolError(BAD_FIELD, f"field '{field}': expected a number, got {type(value).__name__}", request_id)
    try:
        number = float(value)
    except OverflowError:  # msgpack ints up to 2**64 do not all fit a float
        raise ProtocolError(OUT_OF_RANGE, f"field '{field}': {value} does not fit a float", request_id) from None
    if not math.isfinite(number):
        raise ProtocolError(OUT_OF_RANGE, f"field '{field}': expected a finite number, got {number}", request_id)
    return number


def _parse_action(value, request_id) -> np.ndarray:
    if not isinstance(value, (list, tuple)) or len(value) != 7:
        shape = f"{type(value).__name__} of length {len(value)}" if isinstance(value, (list, tuple)) else type(value).__name__
        raise ProtocolError(BAD_FIELD, f"field 'action': expected a list of 7 numbers, got {shape}", request_id)
    action = np.array([_finite_number(v, f"action[{i}]", request_id) for i, v in enumerate(value)])
    bounds = [MAX_TRANSLATION_DOMAIN] * 3 + [MAX_ROTATION_DOMAIN] * 3 + [1.0]
    for i, (v, bound) in enumerate(zip(action, bounds)):
        if abs(v) > bound:
            raise ProtocolError(
                OUT_OF_RANGE, f"field 'action[{i}]': expected a value in [-{bound:.4g}, {bound:.4g}], got {v!r}",
                request_id)
    return action


def decode_request(frames: list[bytes], token: str | None = None) -> Request:
    """Validate one received ZeroMQ message (its frames) and return the request it holds.

    Raises ProtocolError for anything that must not be executed. Never raises anything else.
    """
    if len(frames) != 1:
        raise ProtocolError(MALFORMED, f"expected a single-frame message, got {len(frames)} frames")
    raw = frames[0]
    if len(raw) > MAX_REQUEST_BYTES:
        raise ProtocolError(MALFORMED, f"request of {len(raw)} bytes exceeds the limit of {MAX_REQUEST_BYTES}")
    try:
        message = msgpack.unpackb(raw, raw=False, strict_map_key=True)
    except Exception as exc:  # noqa: BLE001  msgpack raises many types on hostile bytes; all mean "malformed"
        raise ProtocolError(MALFORMED, f"not a msgpack message ({type(exc).__name__}: {exc})") from None
    if not isinstance(message, dict):
        raise ProtocolError(MALFORMED, f"expected a msgpack map, got {type(message).__name__}")

    request_id = message.get("id")
    if request_id is not None and (not isinstance(request_id, int) or isinstance(request_id, bool)
                                   or not 0 <= request_id < 2**63):
        raise ProtocolError(BAD_FIELD, f"field 'id': expected an integer in [0, 2**63), got {request_id!r}")

    if token is not None:
        given = message.get("token")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), token.encode()):
            raise ProtocolError(UNAUTHORIZED, "field 'token': missing or wrong shared secret", request_id)

    cmd = message.get("cmd")
    if not isinstance(cmd, str):
        raise ProtocolError(BAD_FIELD, f"field 'cmd': expected a string, got {type(cmd).__name__}", request_id)
    if cmd not in _COMMAND_FIELDS:
        raise ProtocolError(UNKNOWN_COMMAND, f"field 'cmd': expected one of {list(COMMANDS)}, got {cmd!r}", request_id)
    unknown = set(message) - _COMMON_FIELDS - _COMMAND_FIELDS[cmd]
    if unknown:
        raise ProtocolError(BAD_FIELD, f"unknown field(s) {sorted(map(str, unknown))} for cmd '{cmd}'", request_id)

    if cmd == "step":
        if "action" not in message:
            raise ProtocolError(BAD_FIELD, "field 'action': missing (cmd 'step' needs 7 numbers)", request_id)
        return Request(cmd, request_id, action=_parse_action(message["action"], request_id))
    if cmd == "gripper":
        if "position" not in message:
            raise ProtocolError(BAD_FIELD, "field 'position': missing (cmd 'gripper' needs a number)", request_id)
        position = _finite_number(message["position"], "position", request_id)
        if not 0.0 <= position <= 1.0:
            raise ProtocolError(OUT_OF_RANGE, f"field 'position': expected a value in [0, 1], got {position!r}",
                                request_id)
        return Request(cmd, request_id, position=position)
    if cmd == "observe":
        images = message.get("images", True)
        if not isinstance(images, bool):
            raise ProtocolError(BAD_FIELD, f"field 'images': expected a bool, got {type(images).__name__}", request_id)
        return Request(cmd, request_id, images=images)
    return Request(cmd, request_id)


def encode_request(cmd: str, request_id: int | None = None, token: str | None = None, **fields) -> bytes:
    message = {"cmd": cmd, **fields}
    if request_id is not None:
        message["id"] = request_id
    if token is not None:
        message["token"] = token
    return msgpack.packb(message, use_bin_type=True)


def ok_reply(request_id: int | None, **result) -> bytes:
    return msgpack.packb({"ok": True, "id": request_id, **result}, use_bin_type=True)


def error_reply(request_id: int | None, code: str, message: str) -> bytes:
    return msgpack.packb({"ok": False, "id": request_id, "error": {"code": code, "message": message}},
                         use_bin_type=True)


def decode_reply(raw: bytes) -> dict:
    reply = msgpack.unpackb(raw, raw=False)
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise ProtocolError(MALFORMED, f"reply is not a map with a bool 'ok' field: {str(reply)[:200]}")
    return reply


def pack_image(image: np.ndarray) -> dict:
    image = np.ascontiguousarray(image, dtype=np.uint8)
    return {"shape": list(image.shape), "dtype": "uint8", "data": image.tobytes()}


def unpack_image(packed: dict) -> np.ndarray:
    shape = tuple(packed["shape"])
    if packed.get("dtype") != "uint8" or len(shape) != 3 or shape[2] != 3:
        raise ProtocolError(MALFORMED, f"image: expected uint8 [H, W, 3], got {packed.get('dtype')} {shape}")
    return np.frombuffer(packed["data"], dtype=np.uint8).reshape(shape).copy()  # writable, like a rendered frame


def pack_observation(obs: dict, images: bool = True) -> dict:
    """Observation dict (rgb/state/joints, optional other *_rgb images) -> msgpack-friendly map."""
    packed = {"state": [float(v) for v in obs["state"]], "joints": [float(v) for v in obs["joints"]]}
    if images:
        packed["images"] = {k: pack_image(v) for k, v in obs.items() if k == "rgb" or k.endswith("_rgb")}
    return packed


def unpack_observation(packed: dict) -> dict:
    obs = {"state": np.asarray(packed["state"], dtype=np.float64),
           "joints": np.asarray(packed["joints"], dtype=np.float64)}
    for name, image in packed.get("images", {}).items():
        obs[name] = unpack_image(image)
    return obs
