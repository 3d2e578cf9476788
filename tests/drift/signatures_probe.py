"""Print, as JSON, what the installed transformers/TRL accept: __init__ keywords, defaults, from_pretrained source.

Run by test_drift_matrix.py in the dev environment and in the older pair's venv; the test judges the
drift matrix's rename rules against this, for the versions that are really installed.
"""

from __future__ import annotations

import inspect
import json
import sys


def describe(cls: type) -> dict[str, object]:
    params = inspect.signature(cls.__init__).parameters
    return {
        "params": sorted(n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)),
        "var_kw": any(p.kind is p.VAR_KEYWORD for p in params.values()),
        "defaults": {n: repr(p.default) for n, p in params.items() if p.default is not inspect.Parameter.empty},
        # decorators such as @deprecate_kwarg("tokenizer", ...) accept names the signature does not show
        "init_source": inspect.getsource(cls.__init__)[:4000] if not _generated(cls) else "",
    }


def _generated(cls: type) -> bool:
    """Dataclass __init__s are generated and have no source."""
    try:
        inspect.getsource(cls.__init__)
    except (OSError, TypeError):
        return True
    return False


def main() -> dict[str, object]:
    import transformers
    import trl
    from transformers import BitsAndBytesConfig, PreTrainedModel, Trainer, TrainingArguments
    from trl import SFTConfig, SFTTrainer

    return {
        "versions": {"transformers": transformers.__version__, "trl": trl.__version__},
        "classes": {
            "transformers.TrainingArguments": describe(TrainingArguments),
            "transformers.Trainer": describe(Trainer),
            "transformers.BitsAndBytesConfig": describe(BitsAndBytesConfig),
            "trl.SFTConfig": describe(SFTConfig),
            "trl.SFTTrainer": describe(SFTTrainer),
        },
        "from_pretrained_source": inspect.getsource(PreTrainedModel.from_pretrained.__func__),
    }


if __name__ == "__main__":
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        json.dump(main(), f)
