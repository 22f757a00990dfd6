"""Any transformer run to ONNX (``torch.onnx.export``, the torch.export-based exporter), checked against PyTorch.

The graph takes the batch tensors the model reads and returns its outputs, by name:

    tokenizer                      inputs (dims marked * are dynamic)                 outputs
    text (GPT)                     input_ids, attention_mask (batch*, tokens*) int64  logits
    bert_text (BERT)               input_ids, token_type_ids, attention_mask (batch*, tokens*) int64
                                                                                      logits (+ nsp_logits)
    seq2seq_text                   src_ids, src_mask (batch*, source*), input_ids, attention_mask (batch*,
                                   tokens*) int64                                     logits
    image_patches, image_conv      images (batch*, C, H, W) float32                   logits
    series_patches, series_steps   inputs (batch*, L, C) float32                      prediction (+ quantiles)

Every text graph takes the masks (1 = a real token), so rows of different lengths share a batch: a GPT's
prompts left-padded (positions count the real tokens, as ``xformer generate`` batches them), an
encoder-decoder's sources and targets right-padded (as its training batches). After writing, the graph is
run with onnxruntime on new inputs (another batch size, another length, one row padded) and compared with
the PyTorch model: the largest absolute difference per output is returned. Without onnxruntime only
``onnx.checker`` validates the file (and says so).
"""
from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from .support import CannotExport, describe, need

INPUTS = {"text": ("input_ids", "attention_mask"), "bert_text": ("input_ids", "token_type_ids", "attention_mask"),
          "seq2seq_text": ("src_ids", "input_ids", "src_mask", "attention_mask"),
          "image_patches": ("images",), "image_conv": ("images",), "image_hybrid": ("images",),
          "series_patches": ("inputs",), "series_steps": ("inputs",)}
OUTPUTS = ("logits", "nsp_logits", "prediction", "quantiles")
OPSET = 18


class _Graph(nn.Module):
    """The model as a function of positional tensors (ONNX graphs have no dict inputs)."""

    def __init__(self, model: nn.Module, inputs: tuple[str, ...], outputs: tuple[str, ...]):
        super().__init__()
        self.model, self.inputs, self.outputs = model, inputs, outputs

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        out = self.model(dict(zip(self.inputs, tensors)))
        return tuple(out[name] for name in self.outputs)


def check_onnx_exportable(model) -> None:
    need("onnx", "--format onnx")
    need("onnxscript", "--format onnx (torch.onnx's exporter)")
    config = model.config
    if config.baseline is not None:
        raise CannotExport(f"cannot export to ONNX: the model is {describe(config)}; --format onnx covers the "
                           "transformer runs (tokenizer, core, head)")
    if config.tokenizer.name not in INPUTS:
        raise CannotExport(f"cannot export to ONNX: no input layout for the {config.tokenizer.name!r} tokenizer "
                           f"(known: {', '.join(INPUTS)})")


def example_inputs(model, batch: int, length: int, generator: torch.Generator) -> dict[str, Tensor]:
    """Random inputs of the shapes the model reads (``length`` tokens for text, capped at its positions)."""
    tok = model.config.tokenizer
    args = tok.args
    if tok.name in ("image_patches", "image_conv", "image_hybrid"):
        size = args.get("image_size", 224 if tok.name == "image_patches" else 32)
        h, w = (size, size) if isinstance(size, int) else size
        return {"images": torch.randn(batch, args.get("channels", 3), h, w, generator=generator)}
    if tok.name in ("series_patches", "series_steps"):
        return {"inputs": torch.randn(batch, args["input_len"], args["n_channels"], generator=generator)}
    n = min(length, args.get("max_positions", 1024))
    ids = lambda: torch.randint(0, args["vocab_size"], (batch, n), generator=generator)  # noqa: E731
    if tok.name == "bert_text":
        mask = torch.ones(batch, n, dtype=torch.long)
        mask[0, n // 2 + 1:] = 0  # one padded row: the graph must honour the mask
        types = torch.zeros(batch, n, dtype=torch.long)
        types[:, n // 2:] = 1
        return {"input_ids": ids(), "token_type_ids": types, "attention_mask": mask}
    if tok.name == "seq2seq_text":  # right-padded, as the training batches: one row's source and target shorter
        src, target = ids(), ids()[:, : max(1, n - 1)]
        return {"src_ids": src, "input_ids": target, "src_mask": _padded(src, right=True),
                "attention_mask": _padded(target, right=True)}
    tokens = ids()
    return {"input_ids": tokens, "attention_mask": _padded(tokens, right=False)}  # a prompt left-padded


def _padded(ids: Tensor, right: bool) -> Tensor:
    """A mask of ones but for row 0, whose last (``right``) or first half of the tokens is padding."""
    mask = torch.ones_like(ids)
    cut = ids.shape[1] // 2
    if right:
        mask[0, ids.shape[1] - cut:] = 0
    else:
        mask[0, :cut] = 0
    return mask


def _dynamic_shapes(inputs: dict[str, Tensor], max_positions: int) -> tuple:
    """One spec per positional input: the batch is dynamic; so is the length of token tensors (BERT's three
    share one)."""
    from torch.export import Dim

    batch, lengths = Dim("batch", min=1, max=65536), {}
    specs = []
    for name, t in inputs.items():
        if t.dtype == torch.long:
            length = "source" if name.startswith("src_") else "tokens"
            lengths.setdefault(length, Dim(length, min=2, max=max_positions))
            specs.append({0: batch, 1: lengths[length]})
        else:
            specs.append({0: batch})
    return (tuple(specs),)  # forward(*tensors): one positional group


def _outputs(model, inputs: dict[str, Tensor]) -> tuple[str, ...]:
    with torch.no_grad():
        out = model(dict(inputs))
    return tuple(name for name in OUTPUTS if isinstance(out.get(name), Tensor))


# what a graph alone does not say: the class names of its logits, how its inputs are made (image transform, a
# series' training statistics, the vocabulary and max_length of a text): copied beside model.onnx from the run
RUN_FILES = ("classes.json", "preprocess.json", "series_scaler.json", "data.json")


def copy_run_files(run: Path | None, folder: Path, preprocess: dict | None = None) -> list[str]:
    """Copy the run's ``RUN_FILES`` and its tokenizer/ folder (without the Hugging Face source it was imported
    from) into ``folder``; the names copied. ``preprocess``: the image transform of a run that predates
    preprocess.json (implied by its config.yaml, as predict reads it), written as the file it lacks."""
    import json
    import shutil

    if run is None:
        return []
    copied = [name for name in RUN_FILES if (run / name).is_file()]
    for name in copied:
        shutil.copy2(run / name, folder / name)
    if preprocess is not None and "preprocess.json" not in copied:
        (folder / "preprocess.json").write_text(json.dumps(preprocess, indent=1) + "\n", encoding="utf-8")
        copied.append("preprocess.json")
    if (run / "tokenizer").is_dir():
        shutil.copytree(run / "tokenizer", folder / "tokenizer", ignore=shutil.ignore_patterns("hf_source"))
        copied.append("tokenizer/")
    return copied


def export_onnx(model, path: str | Path, run: Path | None = None, preprocess: dict | None = None) -> dict:
    """Write ``model`` (eval mode, on the CPU) to ``path`` and check it; a dict of inputs, outputs and the check.
    ``run``: its folder, whose files that say how to feed the graph and read it are copied beside it
    (``copy_run_files``, with ``preprocess``)."""
    check_onnx_exportable(model)
    path = Path(path)
    model = model.eval().cpu()
    g = torch.Generator().manual_seed(0)
    inputs = example_inputs(model, 2, 8, g)
    names = tuple(inputs)
    outputs = _outputs(model, inputs)
    graph = _Graph(model, names, outputs).eval()
    max_positions = model.config.tokenizer.args.get("max_positions", 1024)
    big = sum(p.numel() * p.element_size() for p in model.parameters()) > 1.5 * 2**30  # the 2 GB protobuf limit
    log = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(log), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, tuple(inputs.values()), str(path), input_names=list(names),
                              output_names=list(outputs), dynamic_shapes=_dynamic_shapes(inputs, max_positions),
                              opset_version=OPSET, dynamo=True, external_data=big, verbose=False)
    except OSError:  # the file could not be written (a missing folder, a full disk): not the model's fault
        raise
    except Exception as e:  # the exporter's errors are long reports; keep the line that names the cause
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        summary = [i for i, line in enumerate(lines) if line.startswith("## Exception summary")]
        first = lines[summary[0] + 1] if summary and summary[0] + 1 < len(lines) else (lines or [type(e).__name__])[0]
        raise CannotExport(f"cannot export to ONNX: torch.onnx failed on {describe(model.config)}: {first}") from None
    dims = {n: [spec[i].__name__ if i in spec else t.shape[i] for i in range(t.dim())]  # dynamic: its name
            for (n, t), spec in zip(inputs.items(), _dynamic_shapes(inputs, max_positions)[0])}
    report = {"file": path.name, "inputs": dims, "outputs": list(outputs), "opset": OPSET}
    report.update(check_graph(model, path, names, outputs))
    report["run_files"] = copy_run_files(run, path.parent, preprocess)
    return report


def check_graph(model, path: Path, names: tuple[str, ...], outputs: tuple[str, ...]) -> dict:
    """Run the ONNX graph on fresh inputs (batch 3, length 5) and compare with PyTorch: {"checked_with",
    "max_abs_diff": {output: float}}; without onnxruntime, ``onnx.checker`` only."""
    onnx = need("onnx", "--format onnx")
    onnx.checker.check_model(str(path), full_check=True)
    try:
        import onnxruntime
    except ImportError:
        return {"checked_with": "onnx.checker only (onnxruntime is not installed: pip install \"xformer[onnx]\" "
                                "to run the graph against PyTorch)"}
    inputs = example_inputs(model, 3, 5, torch.Generator().manual_seed(1))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(list(outputs), {n: inputs[n].numpy() for n in names})
    with torch.no_grad():
        want = model(dict(inputs))
    diffs = {name: float((torch.from_numpy(g) - want[name]).abs().max()) for name, g in zip(outputs, got)}
    return {"checked_with": f"onnxruntime {onnxruntime.__version__}", "check_inputs": {
        n: list(t.shape) for n, t in inputs.items()}, "max_abs_diff": diffs}


__all__ = ["INPUTS", "OUTPUTS", "check_onnx_exportable", "example_inputs", "export_onnx", "check_graph"]
