"""Intermediate-layer features (``layers=``, ``pooling=``) of both featurizers."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone

from skacd import CLIPFeaturizer, TimmFeaturizer
from skacd.featurizers._layers import block_of


@pytest.fixture(scope="module")
def images():
    rng = np.random.RandomState(0)
    return rng.randint(0, 256, (4, 72, 60, 3), dtype=np.uint8)


def _timm(**params):
    return TimmFeaturizer("efficientnet_lite0", device="cpu", num_workers=0, **params)


def _clip(**params):
    return CLIPFeaturizer(
        "skacd-tiny-ViT", pretrained=None, device="cpu", num_workers=0, **params
    )


def _hooked_stage_outputs(featurizer, images, stages):
    """Outputs of ``model.blocks[i]`` in timm's own full forward pass, by hooks."""
    import timm

    reference = clone(featurizer).set_params(layers=None).fit()
    encoder = reference._get_encoder()
    model = encoder.module
    outputs = {}
    handles = [
        model.blocks[i].register_forward_hook(
            lambda m, a, out, i=i: outputs.__setitem__(i, out.detach())
        )
        for i in stages
    ]
    try:
        from PIL import Image

        pixels = torch.stack(
            [encoder.preprocess(Image.fromarray(im)) for im in images]
        )
        with torch.inference_mode():
            embedding = model(pixels.contiguous(memory_format=torch.channels_last))
    finally:
        for handle in handles:
            handle.remove()
    assert timm  # the model is timm's
    return outputs, embedding


@pytest.mark.parametrize("pooling", ["mean", "mean_std", "std"])
def test_timm_stages_equal_timms_own_forward_pass(images, pooling):
    featurizer = _timm(layers=[0, 2, 3, "embedding"], pooling=pooling)
    features = featurizer.fit_transform(images)
    outputs, embedding = _hooked_stage_outputs(featurizer, images, [0, 2, 3])
    expected = []
    for i in (0, 2, 3):
        flat = outputs[i].float().flatten(2)
        stats = {"mean": flat.mean(2), "std": flat.std(2, correction=0)}
        expected += [stats[s] for s in pooling.split("_")]
    expected.append(embedding)
    assert_allclose(features, torch.cat(expected, dim=1).numpy(), rtol=1e-4, atol=1e-5)


def test_timm_truncated_network_gives_the_full_pass_features(images):
    truncated = _timm(layers=[0, 1, 2, 3])
    full = _timm(layers=[0, 1, 2, 3, "embedding"])
    early = truncated.fit_transform(images)
    assert_array_equal(early, full.fit_transform(images)[:, : early.shape[1]])
    # The pruned model no longer holds the stages after stage 3 nor the head.
    model = truncated._get_encoder().module.model
    assert len(model.blocks) == 4
    assert not hasattr(model, "conv_head") or isinstance(
        model.conv_head, torch.nn.Identity
    )


def test_embedding_only_equals_the_default_features(images):
    default = _timm().fit_transform(images)
    assert_array_equal(_timm(layers=["embedding"]).fit_transform(images), default)


def test_timm_column_names_and_blocks(images):
    featurizer = _timm(layers=[1, 3, "embedding"]).fit()
    names = featurizer.get_feature_names_out()
    assert featurizer.n_features_out_ == names.size == 2 * (24 + 80) + 1280
    assert names[0] == "stage1_mean0" and names[24] == "stage1_std0"
    assert names[48] == "stage3_mean0" and names[-1] == "embedding1279"
    assert [b for b in dict.fromkeys(block_of(n) for n in names)] == [
        "stage1",
        "stage3",
        "embedding",
    ]


def test_clip_blocks_equal_open_clips_forward_intermediates(images):
    featurizer = _clip(layers=[0, 1, "embedding"], pooling="cls_mean", normalize=False)
    features = featurizer.fit_transform(images)
    plain = _clip(normalize=False).fit()
    encoder = plain._get_encoder()
    from PIL import Image

    pixels = torch.stack([encoder.preprocess(Image.fromarray(im)) for im in images])
    with torch.inference_mode():
        tokens = []
        visual = encoder.module
        x = visual._embeds(pixels)
        for block in visual.transformer.resblocks:
            x = block(x)
            tokens.append(x)
        embedding = visual(pixels)
    expected = []
    for t in tokens:
        expected += [t[:, 0], t[:, 1:].mean(1)]
    expected.append(embedding)
    assert_allclose(features, torch.cat(expected, 1).numpy(), rtol=1e-4, atol=1e-5)
    names = featurizer.get_feature_names_out()
    assert names[0] == "block0_cls0" and names[64] == "block0_mean0"
    assert names[-1] == "embedding31"


def test_clip_normalize_applies_to_the_embedding_columns_only(images):
    featurizer = _clip(layers=[1, "embedding"])
    features = featurizer.fit_transform(images)
    raw = _clip(layers=[1, "embedding"], normalize=False).fit_transform(images)
    assert_array_equal(features[:, :64], raw[:, :64])
    assert_allclose(np.linalg.norm(features[:, 64:], axis=1), 1.0, rtol=1e-5)


def test_clip_truncation_gives_the_full_pass_features(images):
    truncated = _clip(layers=[0]).fit_transform(images)
    full = _clip(layers=[0, 1]).fit_transform(images)
    assert_array_equal(truncated, full[:, :64])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"layers": [0, 0]}, "each layer once"),
        ({"layers": [-1]}, "non-negative"),
        ({"layers": ["head"]}, "non-negative layer indices"),
        ({"layers": [9]}, "stages 0 to 6"),
        ({"layers": [0], "pooling": "cls"}, "CLS token"),
        ({"layers": [0], "pooling": "max"}, "pooling must be"),
    ],
)
def test_bad_layers_and_pooling_name_the_parameter(images, params, match):
    with pytest.raises(ValueError, match=match):
        _timm(**params).fit_transform(images[:1])


def test_layers_and_pooling_are_part_of_the_cache_key(images, tmp_path):
    from skacd.cache import FeatureCache

    cache = FeatureCache(tmp_path / "cache")
    mean = _timm(layers=[0], pooling="mean", cache=cache).fit_transform(images)
    both = _timm(layers=[0], pooling="mean_std", cache=cache).fit_transform(images)
    assert mean.shape == (4, 16) and both.shape == (4, 32)
    again = _timm(layers=[0], pooling="mean", cache=cache)
    result = again.fit().featurize(images)
    assert result.n_cached == 4
    assert_array_equal(result.features, mean)


def test_crop_pct_sets_the_resize():
    lite2 = TimmFeaturizer("efficientnet_lite2", device="cpu")
    text = repr(clone(lite2).set_params(crop_pct=1.0).fit()._get_encoder().preprocess)
    assert "Resize(size=260" in text and "CenterCrop(size=(260, 260))" in text
    default = repr(lite2.fit()._get_encoder().preprocess)
    assert "Resize(size=292" in default  # 260 / 0.89: the model's own config


def test_resnet_clip_tower_reads_pooled_stage_maps(images):
    # open_clip's ModifiedResNet takes output_extra_tokens like a ViT but gives
    # (B, C, H, W) maps, and has no prune_intermediate_layers.
    def resnet(**params):
        return CLIPFeaturizer(
            "skacd-tiny-RN", pretrained=None, device="cpu", num_workers=0, **params
        )

    early = resnet(layers=[0, 1])
    X_early = early.fit_transform(images)
    names = early.get_feature_names_out()
    assert X_early.shape == (len(images), len(names))
    assert {block_of(name) for name in names} == {"block0", "block1"}
    assert any("_std" in name for name in names)  # maps: mean_std pooling
    both = resnet(layers=[0, 1, "embedding"])
    X_both = both.fit_transform(images)
    assert_allclose(X_both[:, : X_early.shape[1]], X_early, rtol=1e-5, atol=1e-6)
    assert_allclose(
        X_both[:, X_early.shape[1]:], resnet().fit_transform(images), rtol=1e-5,
        atol=1e-6,
    )
