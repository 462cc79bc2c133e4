"""Distillation: turn a trained RVC teacher into a slim student under a memory budget.

    recipes.py       recipe TOML -> validated dataclasses (student widths, optimisation, losses, budget)
    student.py       the student's SynthConfig from teacher + recipe; init from the teacher's weights
    spectral.py      RVC's log-mel and STFT magnitudes (torch.stft + librosa's mel filterbank)
    discriminator.py a small multi-period discriminator for the optional adversarial term
    losses.py        output, prior, latent, decoder-feature, adversarial and ground-truth terms
    batches.py       deterministic training batches from the dataset cache (exact resume)
    trainer.py       the training loop and its session (AMP, accumulation, OOM back-off)
    train_state.py   a run's checkpoints: interval, atomic save, resume, stopping on SIGINT/SIGTERM
    evaluate.py      the held-out evaluation: log-mel L1, student vs teacher
    planner.py       peak training memory from one traced step on fake tensors (`distill-rvc plan`, `recipes`)
    tb.py            TensorBoard logging (scalars, audio, mel images, hparams)
    student_features.py  `teach --encoder`: the student's own content features, computed once per run
    teach.py         `teach()`: recipe + teacher file + dataset -> runs/NAME/<teacher>_<recipe>.pth

Importing this package imports nothing heavy; each module pulls in what it needs.
"""
