"""Solid textures on demand (texnets.volumes): blocks computed on their own assemble into the one-shot
volume (voxel for voxel on the exact path, to float rounding on the fast path), other seeds and samples
differ, hashed noise windows agree where they overlap, and a volume streamed to .npy equals the in-memory
one, with a preview of its centre slices."""
import numpy as np
import torch

from helpers import calibrated_net
from texnets.generators import SolidTextureNet
from texnets.volumes import block_noise, generate_block, generate_volume, slice_preview, volume_to_uint8


def test_a_volume_assembled_from_eight_blocks_equals_the_one_shot_volume_voxel_for_voxel():
    # 128³ in one call against eight 64³ blocks computed on their own, at an unaligned origin. With
    # exact=True (native convolutions) the floats agree to ~1e-6 and the uint8 volumes are identical.
    net = calibrated_net(scales=6, channel_step=2)
    origin = (-37, 5, 1001)
    whole = generate_block(net, origin, (128, 128, 128), seed=3, exact=True)
    assembled = torch.empty_like(whole)
    for z in (0, 64):
        for y in (0, 64):
            for x in (0, 64):
                assembled[..., z:z + 64, y:y + 64, x:x + 64] = generate_block(
                    net, (origin[0] + z, origin[1] + y, origin[2] + x), (64, 64, 64), seed=3, exact=True)
    torch.testing.assert_close(assembled, whole, rtol=0, atol=5e-6)
    assert np.array_equal(volume_to_uint8(assembled[0]), volume_to_uint8(whole[0]))
    assert whole.clamp(0, 1).std() > 0.05   # a textured volume, not a constant that would trivially agree


def test_blocks_agree_to_float_rounding_on_the_fast_path_and_seeds_differ():
    net = calibrated_net(scales=6)
    whole = generate_block(net, (3, -17, 8), (32, 32, 32), seed=1)
    assembled = torch.empty_like(whole)
    for z in (0, 16):
        for y in (0, 16):
            for x in (0, 16):
                assembled[..., z:z + 16, y:y + 16, x:x + 16] = generate_block(
                    net, (3 + z, -17 + y, 8 + x), (16, 16, 16), seed=1)
    # oneDNN's blocking depends on the block's shape: float rounding differs, nothing more.
    torch.testing.assert_close(assembled, whole, rtol=0, atol=5e-5)
    assert np.abs(volume_to_uint8(assembled[0]).astype(int) - volume_to_uint8(whole[0])).max() <= 1
    other_seed = generate_block(net, (3, -17, 8), (32, 32, 32), seed=2)
    other_sample = generate_block(net, (3, -17, 8), (32, 32, 32), seed=1, samples=[1])
    assert (other_seed - whole).abs().mean() > 0.01
    assert (other_sample - whole).abs().mean() > 0.01


def test_hashed_noise_windows_agree_where_they_overlap():
    net = SolidTextureNet(scales=3)
    noise_a, _ = block_noise(net, (0, 0, 0), (8, 8, 8), seed=4)
    noise_b, _ = block_noise(net, (4, 4, 4), (8, 8, 8), seed=4)
    # Level 0 windows start 4 voxels before each block: b's window is a's shifted by 4.
    assert torch.equal(noise_a[0][..., 4:, 4:, 4:], noise_b[0][..., :-4, :-4, :-4])


def test_streamed_npy_equals_the_in_memory_volume_and_the_preview_holds_its_centre_slices(tmp_path):
    net = calibrated_net()
    size = (20, 24, 28)   # blocks of 16 do not divide it
    in_memory = generate_volume(net, size, origin=(5, 6, 7), seed=2, block=16)
    streamed = generate_volume(net, size, origin=(5, 6, 7), seed=2, block=16, path=tmp_path / "v.npy")
    on_disk = np.load(tmp_path / "v.npy")
    assert on_disk.shape == (20, 24, 28, 3) and on_disk.dtype == np.uint8
    assert np.array_equal(on_disk, in_memory["volume"])
    assert not list(tmp_path.glob(".*tmp"))
    slices = streamed["slices"]
    assert np.array_equal(slices["z"], on_disk[10]) and np.array_equal(slices["y"], on_disk[:, 12])
    assert np.array_equal(slices["x"], on_disk[:, :, 14])
    preview = slice_preview(slices)
    assert preview.shape == (3, 24, 24 + 28 + 28 + 2 * 4)
