"""What ``xformer compare`` trains: its options (``CompareConfig``) and, per domain, the transformer and
the classic baselines as ``xformer train`` experiments (``entries``), all with the same core, trainer,
budget and seed; ``METRIC``: the number each domain's models are ranked by (always on the test split:
the validation split picks each run's best checkpoint, the test split is scored once)."""
from __future__ import annotations

import difflib
import math
import os
import shlex
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..train.distributed import pick_device


DOMAINS = ("text", "images", "series", "seq2seq", "classify")
DEFAULT_DOMAINS = ("text", "images", "series")
IMAGE_DATASETS = ("digits", "mnist", "fashion_mnist", "cifar10")
METRIC = {"text": ("test_bits_per_character", "min"), "images": ("test_accuracy", "max"),
          "series": ("test_mse", "min"), "seq2seq": ("test_token_accuracy", "max"),
          "classify": ("test_accuracy", "max")}
DATA_FIELDS = {"text": "text_data", "images": "image_data", "series": "series_data",
               "classify": "classify_data"}  # seq2seq's data is built in


@dataclass
class CompareConfig:
    """What ``xformer compare`` runs. ``steps`` per trained model; ``seconds`` caps each run's time too.
    ``seeds``: every trained model is run with seeds 0 .. seeds-1; ``budgets`` (steps) or ``budget_seconds``:
    every trained model is trained from scratch at each budget (default: the one budget ``steps``)."""

    domains: list[str] = field(default_factory=lambda: list(DEFAULT_DOMAINS))
    steps: int = 1000
    seconds: float | None = None
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 128
    batch_size: int = 32
    text_data: list[str] | None = None
    series_data: str | None = None
    image_data: str | None = None
    classify_data: list[str] | None = None  # a training file and, optionally, its test file
    input_len: int = 96
    horizon: int = 24
    seed: int = 0
    seeds: int = 1
    budgets: list[int] | None = None
    budget_seconds: list[float] | None = None
    device: str = "auto"

    def __post_init__(self):
        if self.image_data is not None and self.image_data not in IMAGE_DATASETS:
            _check_image_folder(self.image_data)  # as the user gave it: the line shows their spelling
        # the data paths absolute, as a run records them: a compare started in one directory resumes from any other
        self.text_data = None if self.text_data is None else [_absolute(p) for p in self.text_data]
        self.classify_data = None if self.classify_data is None else [_absolute(p) for p in self.classify_data]
        self.series_data = None if self.series_data is None else _absolute(self.series_data)
        if self.image_data is not None and self.image_data not in IMAGE_DATASETS:
            self.image_data = _absolute(self.image_data)
        _check_domains(self.domains)
        for domain, name in DATA_FIELDS.items():  # a file given for a domain left out would be silently unread
            if getattr(self, name) is not None and domain not in self.domains:
                option, chosen = f"--{name.replace('_', '-')}", ",".join(self.domains)
                raise ConfigError(f"{option} is data for the {domain} domain, which --domains {chosen} leaves out; "
                                  f"give --domains {chosen},{domain} (or drop {option})")
        for option, value, low in (("--steps", self.steps, 1), ("--d-model", self.d_model, 1),
                                   ("--layers", self.n_layers, 1), ("--heads", self.n_heads, 1),
                                   ("--d-ff", self.d_ff, 1), ("--batch-size", self.batch_size, 1),
                                   ("--seed", self.seed, 0), ("--seeds", self.seeds, 1),
                                   ("--input-len", self.input_len, 1), ("--horizon", self.horizon, 1)):
            if value < low:
                raise ConfigError(f"{option} must be >= {low}, got {value}")
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):  # inf: no cap at all
            raise ConfigError(f"--seconds takes a finite number of seconds > 0 (e.g. 600), got {_word(self.seconds)}")
        pick_device(self.device, "--device")  # an absent GPU is refused before anything is trained
        if self.seed >= 2 ** 32:
            raise ConfigError(f"--seed must be below 2**32, got {self.seed}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"--d-model {self.d_model} must be divisible by --heads {self.n_heads}")
        if self.budgets is not None and self.budget_seconds is not None:
            raise ConfigError("give --budgets (steps) or --budget-seconds, not both")
        if self.seconds is not None and self.budget_seconds is not None:  # schedule() would drop --seconds
            raise ConfigError("give --seconds (one cap for every run) or --budget-seconds (a budget each), not both")
        for option, values in (("--budgets", self.budgets), ("--budget-seconds", self.budget_seconds)):
            if values is not None and (not values or len(set(values)) != len(values)
                                       or not all(_is_budget(option, v) for v in values)):
                raise ConfigError(f"{option} takes {BUDGETS[option]}, got {','.join(map(_word, values)) or 'nothing'}")
        if "series" in self.domains and self.input_len < 16:
            raise ConfigError(f"--input-len must be >= 16 (one 16-step patch), got {self.input_len}")
        if self.classify_data is not None and not 1 <= len(self.classify_data) <= 2:
            raise ConfigError(f"--classify-data takes a training file and, optionally, its test file; got "
                              f"{len(self.classify_data)} files")

    def command(self, out: str | Path) -> str:
        """The ``xformer compare`` command line that runs this configuration into ``out`` (the options that differ
        from their defaults), for the report: what produced its numbers, to cite and to run again."""
        words = ["xformer", "compare"]
        for name, option in OPTIONS:
            value, default = getattr(self, name), 2 * self.d_model if name == "d_ff" else DEFAULTS[name]
            if value is None or value == default:
                continue
            if name in ("text_data", "classify_data"):  # files: a word each
                words += [option, *map(_word, value)]
            else:  # domains and budgets: one word, separated by commas
                words += [option, ",".join(map(_word, value)) if isinstance(value, list) else _word(value)]
        return " ".join([*words, "--out", shlex.quote(str(out))])

    def schedule(self) -> list[tuple[int, float | None]]:
        """The budgets, in order, as (steps, seconds cap): ``budgets`` with ``seconds``, or ``steps`` with each
        of ``budget_seconds``, or the one budget (``steps``, ``seconds``)."""
        if self.budget_seconds:
            return [(self.steps, s) for s in sorted(self.budget_seconds)]
        return [(b, self.seconds) for b in sorted(self.budgets or [self.steps])]

    def at(self, steps: int, seconds: float | None, seed: int) -> "CompareConfig":
        """This configuration with one budget and one seed (what ``entries`` reads)."""
        return replace(self, steps=steps, seconds=seconds, seed=seed)


OPTIONS = [("domains", "--domains"), ("steps", "--steps"), ("seconds", "--seconds"), ("d_model", "--d-model"),
           ("n_layers", "--layers"), ("n_heads", "--heads"), ("d_ff", "--d-ff"), ("batch_size", "--batch-size"),
           ("text_data", "--text-data"), ("image_data", "--image-data"), ("series_data", "--series-data"),
           ("classify_data", "--classify-data"), ("input_len", "--input-len"), ("horizon", "--horizon"),
           ("seed", "--seed"), ("seeds", "--seeds"), ("budgets", "--budgets"), ("budget_seconds", "--budget-seconds"),
           ("device", "--device")]  # CompareConfig's fields and the options of xformer compare that set them
DEFAULTS = {f.name: f.default_factory() if f.default_factory is not MISSING else f.default
            for f in fields(CompareConfig)}


def _word(value) -> str:
    return f"{value:g}" if isinstance(value, float) else shlex.quote(str(value))


def _absolute(path: str) -> str:
    return os.path.abspath(os.path.expanduser(str(path)))


BUDGETS = {"--budgets": "distinct positive numbers of steps, whole and separated by commas (e.g. 250,1000,4000)",
           "--budget-seconds": "distinct positive numbers of seconds, finite and separated by commas (e.g. 60,300)"}


def _is_budget(option: str, value) -> bool:
    whole = option == "--budget-seconds" or (isinstance(value, int) and not isinstance(value, bool))
    return whole and math.isfinite(value) and value > 0


def _check_domains(domains: list[str]) -> None:
    if not domains:
        raise ConfigError(f"--domains names no domain; give some of {', '.join(DOMAINS)}, separated by commas")
    unknown = [d for d in domains if d not in DOMAINS]
    if unknown:
        close = [m for d in unknown for m in difflib.get_close_matches(d.lower(), DOMAINS, n=1)]
        raise ConfigError(f"--domains: unknown domain(s) {unknown}{f' (did you mean {close[0]}?)' if close else ''}; "
                          f"choose from {', '.join(DOMAINS)}, separated by commas")
    twice = next((d for d in domains if domains.count(d) > 1), None)
    if twice is not None:  # a typo, most likely: each domain is trained (and reported) once whatever the count
        raise ConfigError(f"--domains names {twice} twice; give each domain once: --domains "
                          f"{','.join(dict.fromkeys(domains))}")


def data_files(cfg: CompareConfig) -> list[tuple[str, str]]:
    """(option, path) of each data file or folder ``cfg`` names (a built-in image set's name is none)."""
    given = [("--text-data", p) for p in cfg.text_data or []] + [("--classify-data", p) for p in
                                                                   cfg.classify_data or []]
    images = [("--image-data", cfg.image_data)] if cfg.image_data not in (None, *IMAGE_DATASETS) else []
    return given + ([("--series-data", cfg.series_data)] if cfg.series_data is not None else []) + images


def check_data_files(cfg: CompareConfig) -> None:
    """The data files of ``cfg`` each there, and of its kind (before ``run_comparison`` writes anything). A folder
    of text files is what xformer train reads as data.args.files=[FOLDER] (its .txt files); the others are files."""
    for option, path in [item for item in data_files(cfg) if item[0] != "--image-data"]:
        if option != "--text-data" and Path(path).is_dir():
            raise ConfigError(f"{option} {path} is a folder; {_files_in(option, Path(path))}")
        if not Path(path).exists():
            raise ConfigError(f"{option} {path}: data file not found" + (
                " (a pattern no file matches: the shell passes it on as it is)" if any(c in str(path) for c in "*?[")
                else ""))
        if not Path(path).is_file() and not Path(path).is_dir():  # <(zcat x.gz): every run reads the data again
            raise ConfigError(f"{option} {path} is a pipe or a device, which can be read only once; save the data "
                              "to a file and give its path")


def _files_in(option: str, folder: Path) -> str:
    """The fix for a folder given where files are wanted, with the folder's own files where it has them."""
    if option == "--series-data":
        tables = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".csv", ".parquet"))
        return f"give one CSV or Parquet file in it, e.g. --series-data {tables[0] if tables else folder / 'FILE.csv'}"
    train = sorted(folder.glob("*_TRAIN.*"))  # a UCR archive's folder: NAME_TRAIN.tsv and NAME_TEST.tsv
    test = sorted(folder.glob(f"*_TEST{train[0].suffix}")) if train else []
    shown = " ".join(map(str, [*train[:1], *test[:1]])) or f"{folder / 'NAME_TRAIN.tsv'} {folder / 'NAME_TEST.tsv'}"
    return f"give its training file and, optionally, its test file, e.g. --classify-data {shown}"


def _check_image_folder(choice: str) -> None:
    wanted = f"give a folder with train/<class>/ images (and val/, test/) or one of {', '.join(IMAGE_DATASETS)}"
    folder = Path(choice).expanduser()
    if folder.is_dir() and (folder / "train").is_dir():
        return
    if folder.is_dir():
        raise ConfigError(f"--image-data {choice} holds no train/ folder; {wanted}")
    if folder.exists():
        raise ConfigError(f"--image-data {choice} is a file; {wanted}")
    close = f" (did you mean {choice.lower()}?)" if choice.lower() in IMAGE_DATASETS else ""
    raise ConfigError(f"--image-data {choice}: no such folder{close}; {wanted}")


@dataclass
class Entry:
    """One model of a domain: a recipe for ``train_run``, or an untrained baseline (``trained=False``)."""

    domain: str
    name: str
    kind: str  # "transformer" | "baseline"
    experiment: dict[str, Any]
    trained: bool = True


def _core(cfg: CompareConfig, **extra) -> dict:
    return {"d_model": cfg.d_model, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "d_ff": cfg.d_ff,
            "dropout": 0.0, **extra}


def _train(cfg: CompareConfig, lr: float) -> dict:
    return {"steps": cfg.steps, "batch_size": cfg.batch_size, "lr": lr, "warmup_steps": max(1, cfg.steps // 10),
            "schedule": "cosine", "min_lr": lr / 10, "eval_every": max(1, cfg.steps // 4),
            "log_every": max(1, min(10, cfg.steps // 10)), "keep_last": 1, "seed": cfg.seed, "device": cfg.device,
            "max_seconds": cfg.seconds}


def entries(cfg: CompareConfig) -> list[Entry]:
    """The models of each chosen domain, transformer first."""
    out = []
    if "text" in cfg.domains:
        data = {"name": "text_lm", "args": {"files": cfg.text_data, "tokenizer": "char", "block_size": 64,
                                            "val_fraction": 0.1, "test_fraction": 0.1}}
        train = _train(cfg, 3e-3)
        out.append(Entry("text", "GPT (decoder)", "transformer", {
            "model": {"architecture": "decoder", "core": _core(cfg), "tokenizer": {"name": "text"},
                      "head": {"name": "causal_lm"}}, "data": data, "train": train}))
        width = {"embed_dim": cfg.d_model, "hidden_dim": 2 * cfg.d_model}
        for name, label in (("ngram_lm", "n-gram MLP LM (Bengio 2003)"), ("rnn_lm", "RNN LM"),
                            ("lstm_lm", "LSTM LM")):
            out.append(Entry("text", label, "baseline", {
                "model": {"baseline": {"name": name, "args": dict(width)}}, "data": data, "train": train}))
    if "images" in cfg.domains:
        data, patch = image_data(cfg.image_data)
        train = _train(cfg, 3e-3)
        out.append(Entry("images", "ViT (encoder)", "transformer", {
            "model": {"architecture": "encoder", "core": _core(cfg),
                      "tokenizer": {"name": "image_patches", "args": {"patch_size": patch}},
                      "head": {"name": "classification", "args": {"pool": "cls"}}}, "data": data, "train": train}))
        for name, label in (("mlp", "MLP"), ("cnn", "CNN")):
            out.append(Entry("images", label, "baseline", {
                "model": {"baseline": {"name": name, "args": {}}}, "data": data, "train": train}))
    if "series" in cfg.domains:
        data = {"name": "csv_series", "args": {"path": cfg.series_data, "input_len": cfg.input_len,
                                               "horizon": cfg.horizon}}
        train = _train(cfg, 1e-3)
        out.append(Entry("series", "PatchTST (encoder)", "transformer", {
            "model": {"architecture": "encoder", "core": _core(cfg),
                      "tokenizer": {"name": "series_patches", "args": {"patch_len": 16, "stride": 8}},
                      "head": {"name": "forecast"}}, "data": data, "train": train}))
        for name, label in (("dlinear", "DLinear"), ("rlinear", "RLinear"), ("lstm_forecaster", "LSTM forecaster")):
            out.append(Entry("series", label, "baseline", {
                "model": {"baseline": {"name": name, "args": {}}}, "data": data, "train": train}))
        period = min(24, cfg.input_len)
        for name, label, args in (("last_value", "last value", {}),
                                  ("seasonal_naive", f"seasonal naive ({period})", {"period": period})):
            out.append(Entry("series", label, "baseline", {
                "model": {"baseline": {"name": name, "args": args}}, "data": data, "train": train}, trained=False))
    if "seq2seq" in cfg.domains:
        data = {"name": "reverse_digits", "args": {"n_train": 20000, "min_len": 4, "max_len": 8}}
        train = _train(cfg, 3e-3)
        out.append(Entry("seq2seq", "Transformer (encoder-decoder)", "transformer", {
            "model": {"architecture": "encoder-decoder", "core": _core(cfg), "tokenizer": {"name": "seq2seq_text"},
                      "head": {"name": "causal_lm"}}, "data": data, "train": train}))
        out.append(Entry("seq2seq", "LSTM encoder-decoder + Bahdanau attention", "baseline", {
            "model": {"baseline": {"name": "lstm_seq2seq", "args": {"embed_dim": cfg.d_model,
                                                                    "hidden_dim": cfg.d_model}}},
            "data": data, "train": train}))
    if "classify" in cfg.domains:
        data = classify_data(cfg.classify_data)
        train = _train(cfg, 1e-3)
        out.append(Entry("classify", "PatchTST classifier (encoder)", "transformer", {
            "model": {"architecture": "encoder", "core": _core(cfg),
                      "tokenizer": {"name": "series_patches", "args": {"patch_len": 8, "stride": 4, "revin": False}},
                      "head": {"name": "classification", "args": {"pool": "mean"}}}, "data": data, "train": train}))
        for name, label in (("fcn", "FCN (Wang et al. 2017)"), ("resnet1d", "ResNet (Wang et al. 2017)")):
            out.append(Entry("classify", label, "baseline", {
                "model": {"baseline": {"name": name, "args": {}}}, "data": data, "train": train}))
    return out


def classify_data(files: list[str] | None) -> dict:
    """The classify domain's data config: the generated Synthetic Control Chart set, or a UCR .tsv/.txt, .ts or
    .npz training file (stratified 80/20 test split) and, optionally, its own test file."""
    args: dict[str, Any] = {"val_fraction": 0.1}
    if files:
        args["path"] = str(files[0])
        if len(files) > 1:
            args["test_path"] = str(files[1])
    return {"name": "series_classification", "args": args}


def image_data(choice: str | None) -> tuple[dict, int]:
    """The images domain's data config and the ViT's patch size: digits (8x8, patches of 2), a named
    torchvision dataset read from ./data (28x28 or 32x32, patches of 4), or an image folder (resized to
    32x32 RGB, patches of 4)."""
    if choice is None or choice == "digits":
        return {"name": "digits", "args": {}}, 2
    if choice in IMAGE_DATASETS:
        return {"name": choice, "args": {}}, 4
    return {"name": "image_folder", "args": {"root": str(choice), "image_size": 32}}, 4


__all__ = ["CompareConfig", "check_data_files", "DATA_FIELDS", "DOMAINS",
           "DEFAULT_DOMAINS", "METRIC", "Entry", "entries", "image_data",
           "classify_data", "IMAGE_DATASETS"]
