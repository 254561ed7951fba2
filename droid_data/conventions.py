"""DROID / V-JEPA 2-AC state and action conventions, for numpy arrays and torch tensors alike.

state  = [x, y, z, rx, ry, rz, gripper]     xyz in metres (robot base frame), orientation as *extrinsic*
                                            Euler angles 'xyz' (scipy lowercase) in radians, gripper
                                            closedness in [0, 1] (0 open, 1 closed).
action = [xyz_{t+1} - xyz_t, euler_xyz(R_{t+1} R_t^T), g_{t+1} - g_t]
                                            the rotation delta is left-multiplied (expressed in the base frame).

`integrate_actions` is the exact inverse of `pose_diffs` (R_{t+1} = R(delta) R_t, gripper clipped to [0, 1]
after every step). Every function keeps the input's array type, dtype and device, broadcasts over any leading
batch dimensions and never loops over time or samples in Python: integration is a parallel prefix scan
(log2(T) vectorised steps) over rotation matrices and over clipped gripper updates.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = [
    "euler_xyz_to_matrix",
    "integrate_actions",
    "matrix_to_euler_xyz",
    "pose_diffs",
    "to_camera_frame",
]


def _backend(x):
    """Return (module, array): torch for tensors, numpy otherwise (array-likes are converted to numpy).

    Only functions both modules share by name and `axis=` keyword are used, so one code path serves both.
    """
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            x = x.to(torch.get_default_dtype())
        return torch, x
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return np, x


def _check_last_dim(x, size: int, name: str):
    if x.ndim < 1 or x.shape[-1] != size:
        raise ValueError(f"{name}: expected shape [..., {size}], got {tuple(x.shape)}")


def _transpose(m):
    return m.swapaxes(-1, -2)


def euler_xyz_to_matrix(euler):
    """Extrinsic 'xyz' Euler angles [..., 3] (radians) -> rotation matrices [..., 3, 3].

    Equals scipy's ``Rotation.from_euler('xyz', euler).as_matrix()``, i.e. R = Rz(c) Ry(b) Rx(a).
    """
    xp, euler = _backend(euler)
    _check_last_dim(euler, 3, "euler")
    a, b, c = euler[..., 0], euler[..., 1], euler[..., 2]
    sa, ca, sb, cb, sc, cc = xp.sin(a), xp.cos(a), xp.sin(b), xp.cos(b), xp.sin(c), xp.cos(c)
    rows = [
        [cb * cc, sa * sb * cc - ca * sc, ca * sb * cc + sa * sc],
        [cb * sc, sa * sb * sc + ca * cc, ca * sb * sc - sa * cc],
        [-sb, sa * cb, ca * cb],
    ]
    return xp.stack([xp.stack(row, axis=-1) for row in rows], axis=-2)


def matrix_to_euler_xyz(matrix):
    """Rotation matrices [..., 3, 3] -> extrinsic 'xyz' Euler angles [..., 3] in radians.

    Ranges: rx, rz in [-pi, pi], ry in [-pi/2, pi/2] (scipy's). Near gimbal lock (|ry| -> pi/2) the yaw is
    taken from the well-conditioned first column and the roll is solved *given* that yaw, so the
    returned angles always reproduce the matrix; at exact lock the yaw is 0.
    """
    xp, m = _backend(matrix)
    if m.ndim < 2 or tuple(m.shape[-2:]) != (3, 3):
        raise ValueError(f"matrix: expected shape [..., 3, 3], got {tuple(m.shape)}")
    # m = Rz(c) Ry(b) Rx(a): first column = [cb cc, cb sc, -sb].
    c = xp.arctan2(m[..., 1, 0], m[..., 0, 0])
    b = xp.arctan2(-m[..., 2, 0], xp.hypot(m[..., 0, 0], m[..., 1, 0]))
    # Rz(c)^T m = Ry(b) Rx(a), whose middle row is [0, ca, -sa].
    sc, cc = xp.sin(c), xp.cos(c)
    ca = cc * m[..., 1, 1] - sc * m[..., 0, 1]
    sa = sc * m[..., 0, 2] - cc * m[..., 1, 2]
    a = xp.arctan2(sa, ca)
    return xp.stack([a, b, c], axis=-1)


def pose_diffs(states):
    """States [..., T, 7] -> actions [..., T-1, 7] (DROID / V-JEPA 2-AC ``poses_to_diffs``).

    ``a_t = [xyz_{t+1} - xyz_t, euler_xyz(R_{t+1} R_t^T), g_{t+1} - g_t]``.
    """
    xp, states = _backend(states)
    _check_last_dim(states, 7, "states")
    if states.ndim < 2:
        raise ValueError(f"states: expected shape [..., T, 7], got {tuple(states.shape)}")
    rot = euler_xyz_to_matrix(states[..., 3:6])
    delta_rot = rot[..., 1:, :, :] @ _transpose(rot[..., :-1, :, :])
    return xp.concatenate(
        [
            states[..., 1:, 0:3] - states[..., :-1, 0:3],
            matrix_to_euler_xyz(delta_rot),
            states[..., 1:, 6:7] - states[..., :-1, 6:7],
        ],
        axis=-1,
    )


def _inclusive_scan(xp, elements: tuple, combine, axis: int):
    """Hillis-Steele prefix scan along `axis`: out[i] = e[i] (+) e[i-1] (+) ... (+) e[0].

    `combine(newer, older)` must be associative. log2(T) vectorised steps, no loop over elements.
    """
    length = elements[0].shape[axis]
    shift = 1
    while shift < length:

        def take(x, start, stop):
            index = [slice(None)] * x.ndim
            index[axis % x.ndim] = slice(start, stop)
            return x[tuple(index)]

        newer = tuple(take(e, shift, None) for e in elements)
        older = tuple(take(e, 0, length - shift) for e in elements)
        merged = combine(newer, older)
        elements = tuple(xp.concatenate([take(e, 0, shift), m], axis=axis) for e, m in zip(elements, merged))
        shift *= 2
    return elements


def _compose_rotations(newer, older):
    # Rotations are left-multiplied: applying `older` first, then `newer`.
    return (newer[0] @ older[0],)


def _compose_clipped_shifts(xp):
    # A gripper step is f(g) = clip(g + s, lo, hi). Such maps are closed under composition:
    # newer(older(g)) = clip(g + s1 + s2, clip(lo1 + s2, lo2, hi2), clip(hi1 + s2, lo2, hi2)).
    def combine(newer, older):
        s2, lo2, hi2 = newer
        s1, lo1, hi1 = older
        lo = xp.minimum(xp.maximum(lo1 + s2, lo2), hi2)
        hi = xp.minimum(xp.maximum(hi1 + s2, lo2), hi2)
        return s1 + s2, lo, hi

    return combine


def integrate_actions(state, actions):
    """State [..., 7] and actions [..., T, 7] -> states [..., T+1, 7]; row 0 is `state`.

    Inverse of `pose_diffs`: ``xyz_{t+1} = xyz_t + dxyz``, ``R_{t+1} = R(deuler) R_t``,
    ``g_{t+1} = clip(g_t + dg, 0, 1)`` (clipped after every step, as the official planner does).
    Leading dimensions of `state` and `actions` broadcast against each other.
    """
    xp, actions = _backend(actions)
    state = _as_like(state, actions)
    _check_last_dim(state, 7, "state")
    _check_last_dim(actions, 7, "actions")
    if actions.ndim < 2:
        raise ValueError(f"actions: expected shape [..., T, 7], got {tuple(actions.shape)}")
    batch = np.broadcast_shapes(tuple(state.shape[:-1]), tuple(actions.shape[:-2]))
    state = _broadcast_to(state, (*batch, 7))
    actions = _broadcast_to(actions, (*batch, actions.shape[-2], 7))
    first = state[..., None, :]
    if actions.shape[-2] == 0:
        return first + 0 * first  # a copy, never an alias of the input

    xyz = first[..., 0:3] + xp.cumsum(actions[..., 0:3], axis=-2)

    (delta_prefix,) = _inclusive_scan(xp, (euler_xyz_to_matrix(actions[..., 3:6]),), _compose_rotations, -3)
    rot0 = euler_xyz_to_matrix(state[..., 3:6])[..., None, :, :]
    euler = matrix_to_euler_xyz(delta_prefix @ rot0)

    shift = actions[..., 6]
    shifts, lows, highs = _inclusive_scan(
        xp, (shift, xp.full_like(shift, 0.0), xp.full_like(shift, 1.0)), _compose_clipped_shifts(xp), -1
    )
    gripper = xp.minimum(xp.maximum(state[..., 6:7] + shifts, lows), highs)[..., None]

    later = xp.concatenate([xyz, euler, gripper], axis=-1)
    return xp.concatenate([first, later], axis=-2)


def _as_like(x, reference):
    """Convert `x` to the array type, dtype and device of `reference`."""
    if isinstance(reference, torch.Tensor):
        return torch.as_tensor(x, dtype=reference.dtype, device=reference.device)
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=reference.dtype)


def _broadcast_to(x, shape):
    if isinstance(x, torch.Tensor):
        return x.expand(shape)
    return np.broadcast_to(x, shape)


def to_camera_frame(states, extrinsics):
    """Express states [..., T, 7] in the camera frame given camera extrinsics [..., T, 6] (xyz + Euler xyz).

    ``T_cam = inv(E_t) T_ee,t`` with both 4x4 poses built from xyz + Euler xyz (the official loader's
    ``camera_frame`` option); the gripper is unchanged. Extrinsics broadcast against the states, so a
    single [6] camera pose applies to every step.
    """
    xp, states = _backend(states)
    extrinsics = _as_like(extrinsics, states)
    _check_last_dim(states, 7, "states")
    _check_last_dim(extrinsics, 6, "extrinsics")
    cam_rot_t = _transpose(euler_xyz_to_matrix(extrinsics[..., 3:6]))
    xyz = (cam_rot_t @ (states[..., 0:3] - extrinsics[..., 0:3])[..., None])[..., 0]
    euler = matrix_to_euler_xyz(cam_rot_t @ euler_xyz_to_matrix(states[..., 3:6]))
    batch = xyz.shape[:-1]
    return xp.concatenate([xyz, euler, _broadcast_to(states[..., 6:7], (*batch, 1))], axis=-1)
