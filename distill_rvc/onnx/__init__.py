"""ONNX for the real-time clients, one concept a file:

    interface.py  the format boundary: the wokada/rvc signatures, input roles, dtypes, metadata
    runtime.py    onnxruntime: sessions, feeding a graph by role, deterministic variants, OrtBackend
    export.py     trace, tidy, opset 17/18, simplify; export_onnx(model, out, ExportSettings)
    card.py       the model card NAME.json written beside each NAME.onnx
    parity.py     the exported graph vs torch (CPU and CUDA providers) and the onnxruntime/torch latency
"""
from .export import ExportResult, ExportSettings, export_onnx, format_export
from .parity import check_parity

__all__ = ["ExportResult", "ExportSettings", "check_parity", "export_onnx", "format_export"]
