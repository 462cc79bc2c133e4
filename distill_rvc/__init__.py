"""distill-rvc: distil, prune and export slim students of RVC voice models.

Public API (every CLI command is a thin layer over these):
    load_model(path) -> Synthesizer      read any supported model file
    save_model(model, path)              write RVC's format (or the project format, as .drvc.pt)
    Synthesizer, SynthConfig             the model and its typed architecture
    DistillRVCError                      user-facing errors

The commands, each as x(inputs, XSettings(...)) -> XResult and format_x(result) -> the text the
CLI prints:
    inspect(path)                                 what a model file is, where it loads, its memory
    prepare(audio_dir, out, hubert)               recordings -> a training cache
    import_rvc_logs(exp_dir, out)                 an RVC logs/<exp> folder -> a training cache
    teach(teacher, data, out)                     distil a student
    teach_many(voices, out)                       distil many voices in turn, resumable (a VOICES.toml)
    teach_encoder(hubert, audio, out)             distil a small student of the content encoder
    teach_f0(audio, out)                          distil a slim FCPE (F0) student, in torchfcpe's format
    prune(model, out)                             prune a model's channels
    compare(teacher, student, audio, hubert, out) the student beside the teacher: report.md/json
    convert(model, hubert, src, dst)              wav -> wav in the model's voice
    export_onnx(model, out)                       ONNX for real-time clients, parity-checked
    export_encoder(hubert, out)                   a content encoder as ONNX fp32/int8, parity-checked
    open_encoder(path) -> FeatureEncoder          any content encoder: hubert_base.pt, encoder .onnx, distilled .pt
    bench(models)                                 speed side by side

`convert` and `bench` here are the functions; their modules are distill_rvc.convert and
distill_rvc.bench (import names from them with `from distill_rvc.convert import ...`), and
the same holds for `compare` and `prune` and their packages.
"""
__version__ = "0.1.0"

from .bench import BenchResult, BenchSettings, bench, format_bench
from .checkpoint import load_model, read_checkpoint, save_model
from .compare import CompareResult, CompareSettings, compare, format_compare
from .config import SynthConfig, rvc_config
from .convert import ConvertResult, ConvertSettings, convert, format_convert
from .data.prepare import PrepareResult, PrepareSettings, format_prepare, prepare
from .data.rvc_logs import ImportRVCLogsResult, ImportRVCLogsSettings, format_import_rvc_logs, import_rvc_logs
from .distill.teach import TeachResult, TeachSettings, format_teach, teach
from .encoder import (TeachEncoderResult, TeachEncoderSettings, format_teach_encoder, load_encoder,
                      teach_encoder)
from .errors import DistillRVCError
from .fcpe_student import TeachF0Result, TeachF0Settings, format_teach_f0, teach_f0
from .inspect_model import InspectResult, InspectSettings, format_inspect, inspect
from .models import Synthesizer
from .features.encoders import FeatureEncoder, open_encoder
from .onnx.encoder import ExportEncoderResult, ExportEncoderSettings, export_encoder, format_export_encoder
from .onnx.export import ExportResult, ExportSettings, export_onnx, format_export
from .prune import PruneReport, PruneSettings, format_prune, prune
from .queue import TeachManyResult, TeachManySettings, format_teach_many, teach_many

__all__ = [
    "DistillRVCError", "SynthConfig", "Synthesizer", "load_model", "read_checkpoint", "rvc_config", "save_model",
    "InspectResult", "InspectSettings", "format_inspect", "inspect",
    "PrepareResult", "PrepareSettings", "format_prepare", "prepare",
    "ImportRVCLogsResult", "ImportRVCLogsSettings", "format_import_rvc_logs", "import_rvc_logs",
    "TeachResult", "TeachSettings", "format_teach", "teach",
    "TeachManyResult", "TeachManySettings", "format_teach_many", "teach_many",
    "TeachEncoderResult", "TeachEncoderSettings", "format_teach_encoder", "teach_encoder", "load_encoder",
    "TeachF0Result", "TeachF0Settings", "format_teach_f0", "teach_f0",
    "PruneReport", "PruneSettings", "format_prune", "prune",
    "CompareResult", "CompareSettings", "compare", "format_compare",
    "ConvertResult", "ConvertSettings", "convert", "format_convert",
    "ExportResult", "ExportSettings", "export_onnx", "format_export",
    "ExportEncoderResult", "ExportEncoderSettings", "export_encoder", "format_export_encoder",
    "FeatureEncoder", "open_encoder",
    "BenchResult", "BenchSettings", "bench", "format_bench",
]
