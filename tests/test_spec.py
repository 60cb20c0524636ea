"""One encoder spec grammar for the CLI, the evaluation and detector files."""

import pytest

from skacd import CLIPFeaturizer, TimmFeaturizer
from skacd.cli import main
from skacd.evaluation import make_featurizer
from skacd.featurizers import from_spec, to_spec
from skacd.featurizers._spec import parse_spec

# Every form, in canonical spelling, with the parameters it sets.
FORMS = [
    ("efficientnet_lite2", TimmFeaturizer, {"model_name": "efficientnet_lite2"}),
    ("efficientnet_lite0", TimmFeaturizer, {"model_name": "efficientnet_lite0"}),
    ("timm:efficientnet_lite0:none", TimmFeaturizer, {"pretrained": False}),
    ("timm:resnet18", TimmFeaturizer, {"model_name": "resnet18", "pretrained": True}),
    ("timm:vit_small_patch14_dinov2.lvd142m", TimmFeaturizer,
     {"model_name": "vit_small_patch14_dinov2.lvd142m"}),
    ("timm:resnet18:none", TimmFeaturizer, {"pretrained": False}),
    ("timm:resnet18:/m/r.pth", TimmFeaturizer, {"checkpoint_path": "/m/r.pth"}),
    ("timm:resnet18:/m/a:b.pth", TimmFeaturizer, {"checkpoint_path": "/m/a:b.pth"}),
    ("timm:resnet18:C:\\models\\r.pth", TimmFeaturizer,
     {"checkpoint_path": "C:\\models\\r.pth"}),
    ("timm:resnet18:./none", TimmFeaturizer, {"checkpoint_path": "./none"}),
    ("clip:ViT-L-14:openai", CLIPFeaturizer,
     {"model_name": "ViT-L-14", "pretrained": "openai", "weights_tag": None}),
    ("clip:ViT-B-32:laion2b_s34b_b79k", CLIPFeaturizer,
     {"pretrained": "laion2b_s34b_b79k"}),
    ("clip:skacd-tiny-ViT:none", CLIPFeaturizer, {"pretrained": None}),
    ("clip:skacd-tiny-ViT:skacd_test:none", CLIPFeaturizer,
     {"pretrained": None, "weights_tag": "skacd_test"}),
    ("clip:ViT-L-14:/m/w.safetensors", CLIPFeaturizer,
     {"pretrained": "/m/w.safetensors", "weights_tag": None}),
    ("clip:ViT-L-14:/m/a:b.bin", CLIPFeaturizer, {"pretrained": "/m/a:b.bin"}),
    ("clip:ViT-L-14:C:\\models\\w.bin", CLIPFeaturizer,
     {"pretrained": "C:\\models\\w.bin", "weights_tag": None}),
    ("clip:ViT-L-14:C:/models/w.bin", CLIPFeaturizer,
     {"pretrained": "C:/models/w.bin"}),
    ("clip:ViT-L-14:./w:v2.bin", CLIPFeaturizer, {"pretrained": "./w:v2.bin"}),
    ("clip:ViT-L-14:laion2b_s32b_b82k:/m/w.bin", CLIPFeaturizer,
     {"pretrained": "/m/w.bin", "weights_tag": "laion2b_s32b_b82k"}),
    ("clip:ViT-L-14:openai:C:\\m\\a:b.bin", CLIPFeaturizer,
     {"pretrained": "C:\\m\\a:b.bin", "weights_tag": "openai"}),
]


@pytest.mark.parametrize("spec, cls, params", FORMS, ids=[f[0] for f in FORMS])
def test_every_form_round_trips(spec, cls, params):
    featurizer = from_spec(spec, device="cpu", batch_size=3)
    assert type(featurizer) is cls
    assert featurizer.device == "cpu" and featurizer.batch_size == 3
    for key, value in params.items():
        assert featurizer.get_params()[key] == value
    assert to_spec(featurizer) == spec
    assert from_spec(to_spec(featurizer)).get_params() == from_spec(spec).get_params()


@pytest.mark.parametrize("spec, cls, params", FORMS, ids=[f[0] for f in FORMS])
def test_the_evaluation_reads_the_same_grammar(spec, cls, params):
    featurizer = make_featurizer(spec, device="cpu", batch_size=3, num_workers=0)
    assert featurizer.get_params() == from_spec(
        spec, device="cpu", batch_size=3, num_workers=0).get_params()
    assert to_spec(featurizer) == spec


def test_shorthands_and_paths_that_need_care():
    assert to_spec(from_spec("clip:ViT-L-14")) == "clip:ViT-L-14:openai"
    assert from_spec("clip:ViT-L-14:NONE").pretrained is None
    # A relative path that would read as TAG:PATH, or as "none", is written with ./
    spec = to_spec(CLIPFeaturizer("ViT-L-14", "weights:v2.bin"))
    assert spec == "clip:ViT-L-14:./weights:v2.bin"
    assert to_spec(CLIPFeaturizer("ViT-L-14", "w:v2.bin")) == "clip:ViT-L-14:w:v2.bin"
    assert to_spec(TimmFeaturizer("resnet18", "none")) == "timm:resnet18:./none"
    assert to_spec(CLIPFeaturizer("ViT-L-14", "none")) == "clip:ViT-L-14:./none"
    # ... and "weights:v2.bin" itself is a tag and a file, as documented.
    assert parse_spec("clip:ViT-L-14:weights:v2.bin")[1]["weights_tag"] == "weights"


@pytest.mark.parametrize("spec, match", [
    ("resnet", "expected 'efficientnet_lite2'"),
    ("clip:", "expected"),
    ("vit:ViT-L-14", "expected"),
    ("clip:hf-hub:laion/CLIP-ViT-L-14", "hf-hub: model schema is not supported"),
    ("timm:local-dir:/m/vit", "local-dir: model schema is not supported"),
])
def test_bad_specs_are_refused_clearly(spec, match):
    with pytest.raises(ValueError, match=match):
        from_spec(spec)


def test_a_spec_does_not_take_its_own_parameters_twice():
    with pytest.raises(TypeError, match=r"sets \['pretrained'\] itself"):
        from_spec("clip:ViT-L-14:openai", pretrained="x")


def test_the_cli_refuses_a_bad_spec_as_a_usage_error(capsys):
    assert main(["fit", "--data", "x", "-o", "d.skacd", "--encoder", "clip:"]) == 2
    assert "expected 'efficientnet_lite2'" in capsys.readouterr().err
