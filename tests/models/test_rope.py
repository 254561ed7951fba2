"""3-D RoPE: the documented formula (tiling quirk included), token subsets, unrotated dims."""

import math

import torch

from vjepa_ac.models.modules import apply_rope, rope_axis_dims, rope_table, split_token_ids


def _rope_oracle(x, t, i, j):
    """Element-by-element statement of the official rotation for one head vector per token.

    Per axis of s dims: omega_k = 10000^(-k/(s/2)), angles = pos*[omega_0..omega_{s/2-1}] tiled twice,
    y[2m] = -x[2m+1], y[2m+1] = x[2m], out = x*cos + y*sin; dims past 3*s are untouched.
    """
    n, d = x.shape
    s = rope_axis_dims(d)
    out = x.clone().double()
    for token in range(n):
        for axis, pos in enumerate((t[token], i[token], j[token])):
            for m in range(s):
                k = m % (s // 2)
                angle = float(pos) * 10000 ** (-k / (s / 2))
                dim = axis * s + m
                partner = -x[token, dim + 1] if m % 2 == 0 else x[token, dim - 1]
                out[token, dim] = x[token, dim] * math.cos(angle) + partner * math.sin(angle)
    return out


def test_axis_split_sizes():
    assert [rope_axis_dims(d) for d in (64, 80, 88, 32, 24, 16)] == [20, 26, 28, 10, 8, 4]


def test_rotation_follows_the_documented_formula():
    head_dim, h, w = 22, 3, 4  # s = 6 per axis, 4 dims unrotated
    ids = torch.arange(2 * h * w)
    t, i, j = split_token_ids(ids, h, w)
    assert torch.equal(ids, t * h * w + i * w + j)
    x = torch.randn(len(ids), head_dim)
    ours = apply_rope(x, rope_table(t, i, j, head_dim))
    torch.testing.assert_close(ours.double(), _rope_oracle(x, t, i, j), atol=1e-5, rtol=0)
    assert torch.equal(ours[:, 18:], x[:, 18:])  # trailing dims are bit-exactly untouched


def test_tiling_differs_from_interleaved_frequencies():
    # The quirk matters: an interleaved (textbook) frequency layout gives different outputs.
    x = torch.randn(5, 12)
    t = torch.arange(5)
    zeros = torch.zeros(5, dtype=torch.long)
    tiled = apply_rope(x, rope_table(t, zeros, zeros, 12))
    s = rope_axis_dims(12)
    omega = 10000 ** (-torch.arange(s // 2) / (s / 2))
    ang = (t[:, None] * omega).repeat_interleave(2, dim=-1)
    ang = torch.cat([ang, torch.zeros(5, 12 - s)], dim=-1)
    interleaved = apply_rope(x, (ang.cos(), ang.sin()))
    assert not torch.allclose(tiled, interleaved, atol=1e-3)


def test_subset_positions_equal_full_sequence_then_gather():
    head_dim, grid = 20, (2, 3, 4)
    n = grid[0] * grid[1] * grid[2]
    x = torch.randn(2, 3, n, head_dim)  # [B, heads, N, d]
    full = apply_rope(x, rope_table(*split_token_ids(torch.arange(n), *grid[1:]), head_dim))
    keep = torch.stack([torch.randperm(n)[:9], torch.randperm(n)[:9]])  # per-sample, unsorted
    sub_x = torch.gather(x, 2, keep[:, None, :, None].expand(-1, 3, -1, head_dim))
    sub = apply_rope(sub_x, rope_table(*split_token_ids(keep, *grid[1:]), head_dim))
    expected = torch.gather(full, 2, keep[:, None, :, None].expand(-1, 3, -1, head_dim))
    torch.testing.assert_close(sub, expected, atol=0, rtol=0)
