"""The featurizers quiet open_clip's and ONNX Runtime's log records only."""

import importlib.util
import logging
import os
from collections import OrderedDict

import numpy as np
import pytest
from sklearn.base import clone

from skacd._logging import quiet_library_logs

needs_onnxruntime = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None
    or importlib.util.find_spec("onnx") is None,
    reason="the onnx extra (onnxruntime, onnx) is not installed",
)


def _root_state():
    root = logging.getLogger()
    return root.level, list(root.handlers), list(root.filters)


def _from_package(records, package):
    directory = os.path.dirname(importlib.util.find_spec(package).origin)
    return [r for r in records if os.path.abspath(r.pathname).startswith(directory)]


def test_quiet_library_logs_drops_only_the_library_records(caplog):
    from skacd.featurizers._open_clip import _open_clip

    open_clip = _open_clip()
    with caplog.at_level(logging.INFO):
        before = _root_state()
        with quiet_library_logs("open_clip"):
            assert _root_state()[:2] == before[:2]  # level and handlers
            logging.info("the user's own info")
            logging.getLogger("user.app").warning("the user's own warning")
            open_clip.create_model("skacd-tiny-ViT", pretrained=None)
            logging.error("an error always passes")
        assert _root_state() == before
        inside = list(caplog.records)
        caplog.clear()
        open_clip.create_model("skacd-tiny-ViT", pretrained=None)  # noisy again
    messages = [r.getMessage() for r in inside]
    assert "the user's own info" in messages
    assert "the user's own warning" in messages
    assert "an error always passes" in messages
    assert _from_package(inside, "open_clip") == []
    assert any("No pretrained weights" in r.getMessage()
               for r in _from_package(caplog.records, "open_clip"))


def test_random_clip_weights_leave_the_root_logger_alone(tiny_clip, caplog,
                                                          monkeypatch):
    from skacd.featurizers import _encoder
    from skacd.featurizers._open_clip import _open_clip

    open_clip = _open_clip()
    create_model = open_clip.create_model

    def create_model_while_the_user_logs(*args, **kwargs):
        # Another thread of the user's program logging while the model is built.
        logging.warning("the user's own warning")
        return create_model(*args, **kwargs)

    monkeypatch.setattr(open_clip, "create_model", create_model_while_the_user_logs)
    monkeypatch.setattr(_encoder, "_ENCODER_CACHE", OrderedDict())
    with caplog.at_level(logging.WARNING):
        before = _root_state()
        clone(tiny_clip).fit()
        assert _root_state() == before
    assert _from_package(caplog.records, "open_clip") == []
    assert [r.getMessage() for r in caplog.records] == ["the user's own warning"]


@needs_onnxruntime
def test_onnx_int8_quantisation_advice_is_quiet(tiny_clip, caplog, monkeypatch):
    from skacd.featurizers import _encoder

    monkeypatch.setattr(_encoder, "_ENCODER_CACHE", OrderedDict())
    images = np.random.RandomState(0).randint(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    with caplog.at_level(logging.WARNING):
        before = _root_state()
        clone(tiny_clip).set_params(precision="onnx-int8").fit_transform(images)
        assert _root_state() == before
        logging.warning("the user's own warning")
    assert _from_package(caplog.records, "onnxruntime") == []
    assert [r.getMessage() for r in caplog.records] == ["the user's own warning"]


def test_records_of_a_library_child_logger_are_dropped_too(tmp_path, monkeypatch,
                                                            caplog):
    package = tmp_path / "noisy_library"
    package.mkdir()
    (package / "__init__.py").write_text(
        "import logging\n\n\ndef speak():\n"
        "    logging.getLogger('noisy_library.sub').info('library noise')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import noisy_library

    with caplog.at_level(logging.INFO):
        with quiet_library_logs("noisy_library"):
            noisy_library.speak()
            logging.getLogger("user.sub").info("the user's own info")
        inside = [r.getMessage() for r in caplog.records]
        caplog.clear()
        noisy_library.speak()
    assert inside == ["the user's own info"]
    assert [r.getMessage() for r in caplog.records] == ["library noise"]
