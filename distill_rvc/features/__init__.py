"""The inputs RVC feeds its synthesizer: content features, F0 and coarse pitch, from audio.

    load_audio(path, sr) -> [N]                  any WAV/FLAC/OGG/MP3, mono float32 at sr
    condition_audio(audio_16k) -> [N]            RVC's input conditioning (peak 0.95, 48 Hz high-pass)
    write_wav(path, audio, sr)                   atomic 16-bit or float WAV
    load_content_encoder(path) -> ContentEncoder .extract(audio_16k, "v1"|"v2") -> [T, C] at 50 Hz
    extract_f0(audio_16k, "harvest"|"dio"|"rmvpe"|"fcpe", rmvpe_path=..., fcpe_path=...) -> [N // 160 + 1] Hz
    coarse_pitch(f0) -> [T] ints 1..255;  transpose_f0(f0, semitones)

Heavy libraries (soundfile, soxr, scipy, librosa, pyworld) are imported inside the
functions that use them, so importing this package stays light.
"""
from .audio import check_audio, condition_audio, highpass, load_audio, resample, write_wav
from .content import ContentEncoder, load_content_encoder
from .fcpe import FCPE, load_fcpe
from .pitch import F0_METHODS, coarse_pitch, extract_f0, transpose_f0
from .rmvpe import RMVPE, load_rmvpe

__all__ = ["ContentEncoder", "F0_METHODS", "FCPE", "RMVPE", "check_audio", "coarse_pitch", "condition_audio", "extract_f0",
           "highpass", "load_audio", "load_content_encoder", "load_fcpe", "load_rmvpe", "resample", "transpose_f0", "write_wav"]
