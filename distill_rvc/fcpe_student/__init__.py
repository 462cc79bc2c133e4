"""A slim FCPE distilled from the shipped one (`distill-rvc teach-f0`): same network, front
end and 360 bins, fewer channels and layers, written in torchfcpe's checkpoint format.

    data.py        speech + sweeps -> log-mel and the teacher's salience, cached
    train.py       the loop: BCE on the salience, held-out F0 error and V/UV agreement, resume
    checkpoint.py  f0.pt in torchfcpe's format (load_fcpe reads it)
    teach.py       TeachF0Settings, teach_f0, format_teach_f0
"""
from .checkpoint import fcpe_checkpoint, save_fcpe
from .teach import TeachF0Result, TeachF0Settings, format_teach_f0, teach_f0

__all__ = ["TeachF0Result", "TeachF0Settings", "fcpe_checkpoint", "format_teach_f0", "save_fcpe", "teach_f0"]
