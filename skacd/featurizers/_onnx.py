"""ONNX Runtime encoders (``precision="onnx-float32"`` and ``"onnx-int8"``).

The only onnxruntime import. The frozen encoder is exported to ONNX once per
process and configuration and batches run in an
:class:`onnxruntime.InferenceSession` on the CPU. With ``"onnx-int8"`` its
weights are first quantised to int8 with ONNX Runtime's dynamic quantisation
(``MatMul``/``Gemm`` weights per output channel; activations quantised on the
fly, per batch). Unlike torch's ``quantize_dynamic``, which leaves the
attention projections of open_clip's ``nn.MultiheadAttention`` in float32,
every weight matrix of the transformer is quantised. Convolutions stay
float32 (ONNX Runtime's dynamic ``ConvInteger`` was several times slower and
changed EfficientNet-Lite2 features to a cosine of 0.86).

Needs the ``onnx`` extra: ``pip install 'skacd[onnx]'`` (``onnxruntime`` and
``onnx``; torch's exporter may also want ``onnxscript``).
"""

import os
import tempfile
import warnings

import numpy as np
import torch

from .._logging import quiet_library_logs

__all__ = ["OnnxModule", "onnx_module"]

INSTALL_HINT = (
    "precision='onnx-float32' or 'onnx-int8' needs ONNX Runtime and onnx: pip "
    "install 'skacd[onnx]' (or pip install onnxruntime onnx)."
)


def _import_onnxruntime():
    try:
        import onnx  # noqa: F401
        import onnxruntime
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from None
    return onnxruntime, quantize_dynamic, QuantType


class OnnxModule(torch.nn.Module):
    """An ``nn.Module`` whose forward runs an ONNX Runtime session on the CPU.

    Takes and returns float32 CPU tensors; holds no torch parameters, so
    ``eval()``, ``requires_grad_`` and ``to("cpu")`` are no-ops.

    Parameters
    ----------
    model_bytes : bytes
        The serialised ONNX model.
    output_dim : int
        Width of the output.
    num_threads : int or None, default=None
        ONNX Runtime intra-op threads; ``None`` uses torch's thread count.
    """

    def __init__(self, model_bytes, output_dim, num_threads=None):
        super().__init__()
        onnxruntime, _, _ = _import_onnxruntime()
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = num_threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = (
            onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        )
        # Idle ONNX Runtime threads would otherwise spin after each batch,
        # taking the cores that decode the next batch (skacd alternates the
        # two on small CPUs).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(
            model_bytes, options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name
        self.output_dim = int(output_dim)
        self.model_size = len(model_bytes)

    def forward(self, x):
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        (out,) = self.session.run(None, {self.input_name: array})
        return torch.from_numpy(out)

    def __getstate__(self):  # pragma: no cover - encoders are never pickled
        raise TypeError("ONNX Runtime encoders are not picklable; they are rebuilt.")


def _export(module, example, path):
    """Export ``module`` to ONNX at ``path`` with a dynamic batch axis."""
    # nn.MultiheadAttention takes a fused "fast path" (which has no ONNX
    # export) when no parameter requires grad, as in a frozen encoder; the
    # trace must see the plain path, so the flags are raised while exporting.
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(True)
        with torch.enable_grad():
            _export_traced(module, example, path)
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _export_traced(module, example, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter
        kwargs = dict(
            input_names=["pixels"],
            output_names=["features"],
            dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}},
            opset_version=17,
        )
        try:
            torch.onnx.export(module, (example,), path, dynamo=False, **kwargs)
        except TypeError:  # torch < 2.5 has no dynamo argument
            torch.onnx.export(module, (example,), path, **kwargs)


def onnx_module(module, input_shape, *, quantize=True, op_types=("MatMul", "Gemm")):
    """Export a frozen float32 encoder to ONNX Runtime, its weights in int8.

    Parameters
    ----------
    module : torch.nn.Module
        The encoder, in eval mode, on the CPU.
    input_shape : tuple of int
        ``(channels, height, width)`` of one preprocessed image.
    quantize : bool, default=True
        Quantise the weights of ``op_types`` to int8; ``False`` keeps the
        float32 model.
    op_types : tuple of str, default=("MatMul", "Gemm")
        ONNX operators whose weights are quantised.

    Returns
    -------
    module : OnnxModule
    """
    _, quantize_dynamic, QuantType = _import_onnxruntime()
    import onnx

    module = module.eval().cpu()
    example = torch.zeros((2, *input_shape), dtype=torch.float32)
    with torch.inference_mode():
        output_dim = module(example).shape[-1]
    with tempfile.TemporaryDirectory(prefix="skacd-onnx-") as tmp:
        fp32 = os.path.join(tmp, "encoder.onnx")
        int8 = os.path.join(tmp, "encoder.int8.onnx")
        _export(module, example, fp32)
        if not quantize:
            with open(fp32, "rb") as fh:
                return OnnxModule(fh.read(), output_dim)
        # onnxruntime.quantization logs advice through the root logger.
        with warnings.catch_warnings(), quiet_library_logs("onnxruntime"):
            warnings.simplefilter("ignore")
            quantize_dynamic(
                fp32,
                int8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=list(op_types),
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        with open(int8, "rb") as fh:
            data = fh.read()
    return OnnxModule(data, output_dim)
