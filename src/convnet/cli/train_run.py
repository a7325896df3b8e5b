"""convnet-train's run: which checkpoint it writes (a new run folder by default, the same one when
-f continues a run, --save-path's file, or nothing with --no-save), how it names it on its first
and last lines, and what -f keeps of the run it continues."""

import argparse
import os
from typing import Callable, List, Optional, Set

from .. import runs

# Kept from the run that -f continues unless the command line gives them, so that resuming trains
# the same run on the same data. The training options are the checkpoint's TrainOptions (command
# line name: field); the data options are its options["data"].
TRAINING_OPTIONS = {"epochs": "epochs", "mini": "batch_size", "test_freq": "test_freq",
                    "test_batches": "test_batches",
                    "lr_schedule": "lr_schedule", "lr_patience": "lr_patience",
                    "lr_max_drops": "lr_max_drops", "lr_step": "lr_step", "lr_gamma": "lr_gamma",
                    "multiview_test": "multiview"}
# The files and how they are read; replaced as a whole when the command line names other data.
DATA_OPTIONS = ("data_path", "data_provider", "train_range", "test_range", "inner_size",
                "crop_border", "no_flip", "color_noise", "skip_bad_images", "classes")
# The synthetic set is made from these (and the seed, which also orders the batches).
SYNTHETIC_OPTIONS = ("synthetic_classes", "synthetic_train_size", "synthetic_test_size", "seed")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def given_options(build_parser: Callable[[], argparse.ArgumentParser], argv) -> Set[str]:
    """The options the command line states, whatever their values (a default is not stated)."""
    parser, unset = build_parser(), object()
    # argparse fills in defaults only for names the namespace lacks, so a name still unset
    # afterwards was not on the command line.
    names = vars(parser.parse_args([]))
    parsed = parser.parse_args(argv, argparse.Namespace(**{name: unset for name in names}))
    return {name for name, value in vars(parsed).items() if value is not unset}


def data_options(args) -> dict:
    """What a checkpoint keeps of how the data was made."""
    options = {k: getattr(args, k) for k in DATA_OPTIONS + SYNTHETIC_OPTIONS}
    if options["data_path"]:
        options["data_path"] = os.path.abspath(options["data_path"])
    return options


def keep_run_options(args, given: Set[str], saved: dict, data_info: Optional[dict],
                     defaults: argparse.Namespace) -> List[str]:
    """Sets args to the options of the run being continued where the command line does not give
    them. Returns lines saying what was kept (where it differs from the defaults) and what the
    command line changed."""
    kept = {cli: saved[field] for cli, field in TRAINING_OPTIONS.items() if field in saved}
    # Checkpoints from before options["data"] kept only real data's options, in the net.
    data = saved.get("data") or (data_info or {}).get("options") or {}
    if {"data_path", "data_provider"} & given:
        data = {k: v for k, v in data.items() if k not in DATA_OPTIONS}
    kept.update((k, v) for k, v in data.items() if hasattr(args, k))
    from_run, changed = [], []
    for name, value in kept.items():
        if name in given:
            if getattr(args, name) != value:
                changed.append(f"{flag(name)} {getattr(args, name)} (the run had {value})")
            continue
        setattr(args, name, value)
        if value != getattr(defaults, name, None):
            from_run.append(f"{flag(name)} {value}")
    lines = []
    if from_run:
        lines.append("the run's options, kept: " + ", ".join(from_run))
    if changed:
        lines.append("changed from the run: " + ", ".join(changed))
    return lines


def save_target(args, continued: Optional[str], layers_path, start: float) -> Optional[str]:
    """The checkpoint file this run writes, or None with --no-save. continued: the checkpoint
    of the run -f continues (written back to unless --save-path says otherwise)."""
    if args.no_save:
        return None
    if args.save_path:
        return runs.checkpoint_path(args.save_path)
    if continued:
        return continued
    return os.path.join(runs.new_run_folder(args.runs_dir, layers_path, start), runs.CHECKPOINT)


def first_line(target: Optional[str], continued: Optional[str]) -> str:
    if target is None:
        return "not saving this run (--no-save): no checkpoint, log or history is written"
    where = runs.where(target)
    files = (f"{runs.CHECKPOINT}, {runs.LOG}, {runs.HISTORY}" if runs.folder_of(target) else
             f"log {runs.companion(target, runs.LOG)}, "
             f"history {runs.companion(target, runs.HISTORY)}")
    if continued and os.path.abspath(continued) == os.path.abspath(target):
        return f"continuing the run in {where} ({files})"
    if continued:
        return f"continuing the run of {runs.where(continued)}, saving it in {where} ({files})"
    if runs.folder_of(target):
        return f"run folder {where} ({files})"
    return f"saving the run to {where} ({files})"


def last_line(target: Optional[str]) -> str:
    if target is None:
        return "not saved (--no-save)"
    where = runs.where(target)
    return (f"saved {where} (test it again: convnet-train -f {where} --test-only; continue it: "
            f"convnet-train -f {where} --epochs N)")
