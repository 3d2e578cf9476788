"""Keywords that moved into a config, for `lint --fix`'s planner: find the config call a trainer's `args=` (or
a model's `quantization_config=`) receives, rewrite a base-class config into the one that takes the keywords
(`TrainingArguments(...)` -> `SFTConfig(...)`, with the base defaults the new one overrides written out), or add
the config where the call has none."""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Mapping, Sequence

import libcst as cst
from packaging.version import Version

from .._drift import rules
from .._matrix.model import Matrix
from . import finder
from ._bindings import LITERALS, Bindings
from ._keys import code_of
from ._reads import Key
from .engine import Issue

_NO_SPACE = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
SFT_CONFIG = "trl.SFTConfig"
_TRAINING_ARGUMENTS = "transformers.TrainingArguments"
# The TrainingArguments defaults that TRL's configs override (trl==1.16.0: trl/trainer/base_config.py L55, L62,
# L68 and trl/trainer/sft_config.py L140; the SFTConfig docstring lists them). SFTTrainer converts a
# TrainingArguments with its own values (sft_trainer.py L654-L659), so an old script trained with these: a
# rewrite into SFTConfig(...) writes them out, or the learning rate, logging, checkpointing and precision change.
KEPT_DEFAULTS: tuple[tuple[str, str], ...] = (
    ("learning_rate", "5e-05"), ("logging_steps", "500"), ("gradient_checkpointing", "False"), ("bf16", "False"))


def dotted(node: cst.BaseExpression, names: dict[str, str]) -> str | None:
    """The imported dotted path a LibCST expression names: the `ast` finder's answer for the same source."""
    if not isinstance(node, cst.Name | cst.Attribute):
        return None
    return finder.dotted(ast.parse(f"({code_of(node)})", mode="eval").body, names)  # parenthesised: may span lines


def kw(name: str, value: cst.BaseExpression) -> cst.Arg:
    """`name=value`, written as a keyword argument is (no spaces around `=`)."""
    return cst.Arg(keyword=cst.Name(name), value=value, equal=_NO_SPACE)


class ConfigMoves(Bindings):
    """The moves planned so far: keywords added to configs, configs converted or created, imports they need."""

    def __init__(self, issues: Sequence[Issue], names: dict[str, str], matrix: Matrix | None,
                 versions: Mapping[str, Version | None] | None, used: Counter[Key] | None,
                 earlier: set[str] | None) -> None:
        super().__init__(issues)
        self.names = names
        self.matrix = matrix
        self.versions = versions or {}
        self.used: Counter[Key] = used or Counter()
        self.earlier = earlier or set()  # names earlier notebook cells bind (they exist when this cell runs)
        self.additions: dict[cst.Call, list[cst.Arg]] = {}
        self.converts: dict[cst.Call, cst.BaseExpression] = {}  # TrainingArguments(...) -> this func
        self.kept: dict[cst.Call, list[cst.Arg]] = {}  # the base defaults written out, after the additions
        self.new_configs: dict[cst.Call, tuple[str, cst.Call]] = {}  # call without via= -> (via, the new config)
        self.merges: dict[cst.ImportFrom, list[str]] = {}  # `from trl import ...` that gets SFTConfig
        self.new_imports: list[tuple[str, str]] = []  # (module, name) imported on a new line
        self._from: dict[str, cst.ImportFrom] = {}  # module -> its first module-level `from module import ...`
        self._call_scope: dict[cst.Call, int] = {}

    def _plan_moves(self, call: cst.Call, moved: list[tuple[cst.Arg, Issue]]) -> None:
        via, target = moved[0][1].via or "", moved[0][1].target or ""
        config, by_name, why = self._target(call, via, target, f"{moved[0][1].new}=...")
        if config is None:
            for _, issue in moved:
                self.unfixed.append((issue, why))
            return
        present = {a.keyword.value for a in config.args if a.keyword is not None}
        holder = arg_of(call, via)
        for arg, issue in moved:
            if issue.new in present or issue.keyword in present:
                self.unfixed.append((issue, f"{rules.short(target)}(...) already sets `{issue.new}`; "
                                            f"delete one of the two"))
            elif by_name and not self._safe(arg.value, config):
                self.unfixed.append((issue, f"the value `{code_of(arg.value)}` may not exist where "
                                            f"{code_of(holder.value) if holder else via} is built; move it by hand"))
            else:
                self.removals.add(arg)
                self.additions.setdefault(config, []).append(kw(issue.new or issue.keyword, arg.value))
                self.fixed.append(issue)

    def _target(self, call: cst.Call, via: str, target: str, show: str) -> tuple[cst.Call | None, bool, str]:
        """The `target(...)` call that `via=` of `call` receives (a base-class call rewritten into it), or why not."""
        holder = arg_of(call, via)
        if holder is None:
            return self._new_config(call, via, target, show)
        config, by_name = self._config_call(holder.value, target)
        if config is not None:
            return config, by_name, ""
        base = next((b for b in rules.INHERITS.get(target, ()) if self._config_call(holder.value, b)[0]), None)
        if base is None:
            return None, False, (f"{via}={code_of(holder.value)} is not a {rules.short(target)}(...) built once in "
                                 f"this file; move it into that config by hand")
        config, by_name = self._config_call(holder.value, base)
        assert config is not None
        name = code_of(holder.value)
        reads = self.used[self._var(name)] if isinstance(holder.value, cst.Name) else 0
        if by_name and reads > 1:
            return None, False, (f"{via}={name} is a {rules.short(base)} that is also used elsewhere ({reads} "
                                 f"reads): build it as {rules.short(target)}(...) with {show} yourself (it takes "
                                 f"every {rules.short(base)} keyword; SFTConfig's defaults differ)")
        why = self._convert(config, base, target)
        return (None, False, why) if why else (config, by_name, "")

    def _new_config(self, call: cst.Call, via: str, target: str, show: str) -> tuple[cst.Call | None, bool, str]:
        """A call without `via=` gets `via=Target(...)` for the keywords moved there.

        `from_pretrained(..., load_in_4bit=True)` gets `quantization_config=BitsAndBytesConfig(load_in_4bit=True)`.
        `SFTTrainer(model, ...)` gets `args=SFTConfig(output_dir="tmp_trainer", ...)`: old TRL handed args=None
        to transformers' Trainer, which built TrainingArguments(output_dir="tmp_trainer") (transformers/trainer.py:
        `output_dir = "tmp_trainer"`), while today's SFTTrainer builds an SFTConfig with its own defaults; so the
        new config writes out the old folder and TrainingArguments' defaults.
        """
        if call in self.new_configs and self.new_configs[call][0] == via:
            return self.new_configs[call][1], False, ""
        if call in self.new_configs:
            return None, False, f"there is no {via}= to put it in; pass {via}={rules.short(target)}(..., {show})"
        positional = [a for a in call.args if a.keyword is None]
        trainer_config = _TRAINING_ARGUMENTS in rules.INHERITS.get(target, ())
        if (trainer_config and len(positional) > 1) or any(a.star for a in call.args):  # args= may be positional
            return None, False, f"there is no {via}= to put it in; pass {via}={rules.short(target)}(..., {show})"
        func = self._local(target)
        if func is None:
            return None, False, f"{rules.short(target)} is bound to something else in this file; pass {via}= by hand"
        config = cst.Call(func=func, args=[kw("output_dir", cst.SimpleString('"tmp_trainer"'))] if trainer_config
                          else [])
        self.new_configs[call] = (via, config)
        line, col = self._pos(call)
        if trainer_config:
            kept = self._keep_defaults(config, target, set())
            self._note(line, col, self._is_what(call), via, rules.short(target),
                       f"{via}= was not given: added {via}={rules.short(target)}(output_dir=\"tmp_trainer\", ...), "
                       f"the folder and the TrainingArguments defaults ({', '.join(kept)}) an old trainer used")
        return config, False, ""

    def _is_what(self, call: cst.Call) -> str:
        path = dotted(call.func, self.names)
        return rules.normalize(path) if path else code_of(call.func)

    def _keep_defaults(self, config: cst.Call, target: str, present: set[str]) -> list[str]:
        kept: list[str] = []
        for keyword, value in KEPT_DEFAULTS:
            name = (rules.final_name(self.matrix, target, keyword, self.versions) if self.matrix else None) or keyword
            if keyword not in present and name not in present:
                self.kept.setdefault(config, []).append(kw(name, cst.parse_expression(value)))
                kept.append(f"{name}={value}")
        return kept

    def _convert(self, config: cst.Call, base: str, target: str) -> str:
        """Plan `Base(...)` -> `Target(...)`, writing out the base defaults the target overrides; '' or why not."""
        if config in self.converts:
            return ""
        func = self._local(target)
        if func is None:
            return (f"{rules.short(target)} is bound to something else in this file; build the config as "
                    f"trl.{rules.short(target)}(...) by hand")
        self.converts[config] = func
        present = {a.keyword.value for a in config.args if a.keyword is not None}
        kept: list[str] = []
        if not any(a.star == "**" for a in config.args):  # **kwargs may set them: a second value is a TypeError
            kept = self._keep_defaults(config, target, present)
        line, col = self._pos(config)
        note = (f"{rules.short(base)}(...) -> {rules.short(target)}(...), which takes the keywords moved out of the "
                f"trainer" + (f"; {rules.short(base)}'s defaults written out where "
                                                     f"{rules.short(target)}'s differ: {', '.join(kept)} (delete "
                                                     f"them to take {rules.short(target)}'s)" if kept else ""))
        self._note(line, col, base, rules.short(base), rules.short(target), note)
        return ""

    def _local(self, target: str) -> cst.BaseExpression | None:
        """How this file names `target`: an imported name, `trl.SFTConfig` through `import trl`, or a new import."""
        module, name = target.rsplit(".", 1)
        simple = [k for k, v in self.names.items() if rules.normalize(v) == target and "." not in k]
        if simple:
            return cst.Name(simple[0])
        mod = [k for k, v in self.names.items() if v == module]
        if mod:
            return cst.Attribute(value=cst.Name(mod[0]), attr=cst.Name(name))
        if (0, name) in self.assigned or name in self.names:
            return None
        if module in self._from:
            self.merges.setdefault(self._from[module], []).append(name)
        else:
            self.new_imports.append((module, name))
        self.names[name] = target
        return cst.Name(name)

    def _config_call(self, value: cst.BaseExpression, target: str) -> tuple[cst.Call | None, bool]:
        """The target's constructor call that `via=` receives: inline, one `name = Target(...)` earlier, or what a
        function of this file called only there returns (`args = make_args()` ... `return TrainingArguments(...)`)."""
        if isinstance(value, cst.Name):
            bound = self._values(value.value)
            if len(bound) != 1 or not isinstance(bound[0], cst.Call):
                return None, False
            value, by_name = bound[0], True
        else:
            by_name = False
        if not isinstance(value, cst.Call):
            return None, False
        if self._is(value, target):
            return value, by_name
        return self._returned(value, target), True

    def _returned(self, call: cst.Call, target: str) -> cst.Call | None:
        """`f()` of a module-level `def f(): ... return Target(...)` (or `x = Target(...)` ... `return x`)."""
        fn = self.functions.get(call.func.value) if isinstance(call.func, cst.Name) else None
        if fn is None or self.used[(0, fn.name.value)] != 1 or not isinstance(fn.body, cst.IndentedBlock):
            return None
        returns = [s for line in fn.body.body if isinstance(line, cst.SimpleStatementLine)
                   for s in line.body if isinstance(s, cst.Return)]
        if len(returns) != 1 or returns[0].value is None:
            return None
        value = returns[0].value
        scope = self._pos(fn.name)[0]
        if isinstance(value, cst.Name):
            bound = self.assigned.get((scope, value.value), [])
            if len(bound) != 1 or self.used[(scope, value.value)] != 1:
                return None
            value = bound[0]
        return value if isinstance(value, cst.Call) and self._is(value, target) else None

    def _is(self, call: cst.Call, target: str) -> bool:
        path = dotted(call.func, self.names)
        return path is not None and rules.normalize(path) == target

    def _safe(self, value: cst.BaseExpression, config: cst.Call) -> bool:
        """Whether `value` means the same where `config` is built: a constant, or a name bound once before it."""
        if isinstance(value, LITERALS):
            return True
        if isinstance(value, cst.UnaryOperation):
            return self._safe(value.expression, config)
        if isinstance(value, cst.Attribute):  # script_args.max_seq_length
            return isinstance(value.value, cst.Name | cst.Attribute) and self._safe(value.value, config)
        if not isinstance(value, cst.Name):
            return False
        if value.value in ("True", "False", "None"):
            return True
        here, there = self._var(value.value), self._var(value.value, self._call_scope.get(config, 0))
        if here == there == (0, value.value) and here not in self.assigned and value.value in self.earlier:
            return True  # bound by an earlier notebook cell, not rebound in this one
        if here != there or len(self.assigned.get(here, [])) != 1:
            return False  # another variable (or none) of that name where the config is built
        if here[0] == 0 and value.value in self.module_consts:
            return True
        return self.bound_at[here] < self._pos(config)[0]


def arg_of(call: cst.Call, keyword: str) -> cst.Arg | None:
    return next((a for a in call.args if a.keyword is not None and a.keyword.value == keyword), None)
