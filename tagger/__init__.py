"""The shared core: labels, the Label Studio export format, the model folder, metrics and
inference. It imports neither `train` nor `eval`: training stands on it, evaluation on both.

`from tagger import Tagger` loads a trained model folder and tags sentences with it.
"""

__all__ = ["Tagger"]


def __getattr__(name: str):
    # Lazily, so that `import tagger.labels` does not load torch and transformers.
    if name == "Tagger":
        from tagger.predictor import Tagger
        return Tagger
    raise AttributeError(f"module 'tagger' has no attribute {name!r}")
