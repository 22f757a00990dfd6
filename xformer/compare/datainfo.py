"""What data each domain of ``xformer compare`` was trained and scored on, for the report's header:
name, source (file path or where it comes from), split rule, and the number of items in each split."""
from __future__ import annotations

from .experiments import CompareConfig


def _size(dataset) -> int | None:
    return None if dataset is None else len(dataset)


def describe_data(domain: str, cfg: CompareConfig, data) -> dict:
    """{"name", "source", "split", "item", "sizes": {"train", "val", "test"}} of one domain's DataBundle."""
    sizes = {split: _size(getattr(data, split, None)) for split in ("train", "val", "test")}
    if domain == "text":
        files = cfg.text_data
        info = {"name": ", ".join(p.rsplit("/", 1)[-1] for p in files) if files
                else "Python Language Reference (character level)",
                "source": ", ".join(files) if files else "pydoc_data.topics, bundled with CPython",
                "split": "by position: first 80% train, next 10% validation, last 10% test",
                "item": "windows of 64 characters (train: every offset; val/test: each character scored once)"}
    elif domain == "images":
        choice = cfg.image_data or "digits"
        named = {"digits": ("scikit-learn 8x8 digits", "sklearn.datasets.load_digits (1797 images, 10 classes)"),
                 "mnist": ("MNIST", "./data/MNIST/raw"), "fashion_mnist": ("Fashion-MNIST", "./data/FashionMNIST/raw"),
                 "cifar10": ("CIFAR-10", "./data/cifar-10-batches-py")}
        name, source = named.get(choice, (choice.rstrip("/").rsplit("/", 1)[-1], f"image folder {choice}"))
        split = ("stratified 80/20 train/test (random_state 0), 10% of train held out for validation"
                 if choice == "digits" else "official train/test, stratified 10% of train for validation"
                 if choice in named else "the folder's train/ (val/ or 10% of train) and test/")
        info = {"name": name, "source": source, "split": split,
                "item": "one image" + ("" if choice == "digits" else " (folders: resized to 32x32 RGB)")}
    elif domain == "series":
        path = cfg.series_data
        info = {"name": path.rsplit("/", 1)[-1] if path else "generated hourly series (3 channels)",
                "source": path or "xformer.data.series.synthetic_frame (daily + weekly seasonality, trend, noise)",
                "split": "by time: 70% train, 10% validation, 20% test",
                "item": f"one window: {cfg.input_len} steps in, {cfg.horizon} steps out, every channel"}
    elif domain == "classify":
        files = cfg.classify_data or []
        info = {"name": files[0].rsplit("/", 1)[-1] if files else "Synthetic Control Chart (6 classes)",
                "source": " + ".join(files) if files else "generated from its definition (Alcock & Manolopoulos "
                "1999; xformer.data.series_classification.synthetic_control, 100 series a class, seed 0)",
                "split": ("the given test file; stratified 10% of the training file for validation" if len(files) > 1
                          else "stratified 80/20 train/test (random_state 0), 10% of train held out for validation"),
                "item": _series_item(data)}
    else:
        info = {"name": "reverse digits", "source": "generated (xformer.data.synthetic.reverse_digits, seeds 0/1/2)",
                "split": "independent draws for train, validation and test",
                "item": "a sequence of 4-8 digits and its reverse"}
    info["sizes"] = sizes
    return info


def _series_item(data) -> str:
    """A classify item: one labelled series, its length and channels read from the training split."""
    x = data.train[0]["inputs"]
    length, channels = x.shape
    classes = data.model_args.get("head", {}).get("n_classes")
    return (f"one series of {length} steps, {channels} channel{'s' * (channels != 1)}, and its class"
            + (f" (of {classes})" if classes else ""))


__all__ = ["describe_data"]
