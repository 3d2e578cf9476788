"""The planning pass of `lint --fix` (LibCST): every edit decided first, and why some are unsafe (`_rewrite`
applies them).

Beyond renaming keywords in place, the planner rewrites the old SFTTrainer shapes: a `TrainingArguments(...)`
that only flows into `SFTTrainer(args=)` becomes `SFTConfig(...)` with the moved keywords inside, a removed
collator becomes its config keyword, and a removed import with a same-signature replacement is renamed at the
import and at every use.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Mapping, Sequence

import libcst as cst
from packaging.version import Version

from .._drift import rules
from .._matrix.model import ImportRule, Matrix
from . import finder, imports
from ._keys import Edits, code_of, field_why, through_why
from ._reads import Key
from .engine import Issue

_LITERALS = (cst.Integer, cst.Float, cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)
_NO_SPACE = cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""), whitespace_after=cst.SimpleWhitespace(""))
_SFT_CONFIG = "trl.SFTConfig"
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
    return cst.Arg(keyword=cst.Name(name), value=value, equal=_NO_SPACE)


class Planner(Edits):
    """Read-only pass: decide every rename and move, keyed by the original nodes."""

    def __init__(self, issues: Sequence[Issue], names: dict[str, str], matrix: Matrix | None = None,
                 versions: Mapping[str, Version | None] | None = None, used: Counter[Key] | None = None,
                 replaced: Mapping[str, str] | None = None, earlier: set[str] | None = None) -> None:
        super().__init__(issues)
        self.names = names
        self.matrix = matrix
        self.versions = versions or {}
        self.used: Counter[Key] = used or Counter()
        self.replaced = dict(replaced or {})  # removed dotted path -> its replacement name, for this file
        self.earlier = earlier or set()  # names earlier notebook cells bind (they exist when this cell runs)
        self.renames: dict[cst.Arg, str] = {}
        self.additions: dict[cst.Call, list[cst.Arg]] = {}
        self.converts: dict[cst.Call, cst.BaseExpression] = {}  # TrainingArguments(...) -> this func
        self.kept: dict[cst.Call, list[cst.Arg]] = {}  # the base defaults written out, after the additions
        self.new_configs: dict[cst.Call, tuple[str, cst.Call]] = {}  # call without via= -> (via, the new config)
        self.name_renames: dict[cst.Name, str] = {}
        self.alias_renames: dict[cst.ImportAlias, str] = {}
        self.alias_removals: set[cst.ImportAlias] = set()
        self.dropped_lines: set[cst.SimpleStatementLine] = set()
        self.merges: dict[cst.ImportFrom, list[str]] = {}  # `from trl import ...` that gets SFTConfig
        self.new_imports: list[tuple[str, str]] = []  # (module, name) imported on a new line
        self.assigned: dict[Key, list[cst.BaseExpression]] = {}  # variable -> every value bound to it so far
        self.bound_at: dict[Key, int] = {}  # variable -> line of its first binding
        self.statement_of: dict[Key, cst.SimpleStatementLine] = {}  # variable -> the one-statement line binding it
        self.module_consts: set[str] = set()
        self.functions: dict[str, cst.FunctionDef] = {}  # the module's own functions, by name
        self._scopes: list[int] = []  # lines of the defs we are in
        self._line: cst.SimpleStatementLine | None = None
        self._skip_names: set[cst.Name] = set()  # attribute and keyword names: never renamed as variables
        self._from: dict[str, cst.ImportFrom] = {}  # module -> its first module-level `from module import ...`
        self._collators: list[tuple[Issue, ImportRule, cst.ImportAlias]] = []
        self._collator_uses: Counter[str] = Counter()  # local class name -> calls rewritten
        self._collator_why: dict[str, str] = {}
        self._call_scope: dict[cst.Call, int] = {}

    @property
    def _scope(self) -> int:
        return self._scopes[-1] if self._scopes else 0

    def _var(self, name: str, scope: int | None = None) -> Key:
        """The variable a name means in a scope (the current one by default): local if bound there, else global."""
        scope = self._scope if scope is None else scope
        return (scope, name) if (scope, name) in self.assigned else (0, name)

    def _values(self, name: str, scope: int | None = None) -> list[cst.BaseExpression]:
        return self.assigned.get(self._var(name, scope), [])

    # bindings, to know when `args=cfg` names exactly one `cfg = SFTConfig(...)`
    def _bind(self, name: str, value: cst.BaseExpression, line: int) -> None:
        self.assigned.setdefault((self._scope, name), []).append(value)
        self.bound_at.setdefault((self._scope, name), line)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if not self._scopes:
            self.functions[node.name.value] = node
        self._bind(node.name.value, node.name, self._pos(node.name)[0])
        line = self._pos(node.name)[0]  # the `def` line, as `ast` numbers the function's scope
        self._scopes.append(line)
        for p in [*node.params.params, *node.params.kwonly_params, *node.params.posonly_params]:
            self._bind(p.name.value, p.name, line)

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self._scopes.pop()

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        self._line = node

    def visit_Assign(self, node: cst.Assign) -> None:
        line = self._pos(node)[0]
        for t in node.targets:
            if isinstance(t.target, cst.Name):
                self._bind(t.target.value, node.value, line)
                if self._line is not None and len(self._line.body) == 1:
                    self.statement_of[(self._scope, t.target.value)] = self._line
                if not self._scopes and isinstance(node.value, _LITERALS):
                    self.module_consts.add(t.target.value)
            else:  # tuple targets etc.: the name is bound, but not to something we can read
                for n in _names_in(t.target):
                    self._bind(n, t.target, line)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        issue = self.by_pos.get(self._pos(node.target))
        if issue is not None and isinstance(node.target, cst.Name) and issue.keyword == node.target.value:
            self.unfixed.append((issue, field_why(issue)))
        if isinstance(node.target, cst.Name):
            self._bind(node.target.value, node.value or node.target, self._pos(node)[0])

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        for n in _names_in(node.target):
            self._bind(n, node.target, self._pos(node)[0])

    def visit_For(self, node: cst.For) -> None:
        for n in _names_in(node.target):
            self._bind(n, node.target, self._pos(node)[0])

    # removed imports: renamed where a replacement exists, the collator where its call is rewritten
    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar) or node.relative:
            return
        module = code_of(node.module) if node.module else ""
        if not self._scopes:
            self._from.setdefault(module, node)
        for alias in node.names:
            issue = self.by_pos.get(self._pos(alias.name))
            if issue is None or not imports.is_import_issue(issue):
                continue
            rule = imports.rule_for(self.matrix, module, issue.keyword) if self.matrix else None
            if rule is not None and rule.replacement:
                self.alias_renames[alias] = rule.replacement
                self.fixed.append(issue)
            elif rule is not None and rule.config_keyword:
                self._collators.append((issue, rule, alias))
            else:
                self.unfixed.append((issue, f"no drop-in replacement: {rule.instead if rule else issue.reason}"))

    def visit_Attribute(self, node: cst.Attribute) -> None:
        self._skip_names.add(node.attr)
        issue = self.by_pos.get(self._pos(node.attr))
        if issue is None or not imports.is_import_issue(issue):
            return
        if issue.new:
            self.name_renames[node.attr] = issue.new
            self.fixed.append(issue)
        else:
            rule = imports.rule_for(self.matrix, issue.callable, issue.keyword) if self.matrix else None
            self.unfixed.append((issue, f"no drop-in replacement: {rule.instead if rule else issue.reason}"))

    def visit_Arg(self, node: cst.Arg) -> None:
        if node.keyword is not None:
            self._skip_names.add(node.keyword)

    def visit_ImportAlias(self, node: cst.ImportAlias) -> None:
        if isinstance(node.name, cst.Name):
            self._skip_names.add(node.name)

    def visit_Name(self, node: cst.Name) -> None:
        if node in self._skip_names:
            return
        path = self.names.get(node.value)
        if path is not None and path in self.replaced and path.rsplit(".", 1)[-1] == node.value:
            self.name_renames[node] = self.replaced[path]  # `from peft import old` then old(...): every use

    def visit_Call(self, node: cst.Call) -> None:
        self._call_scope[node] = self._scope
        keywords = {a.keyword.value for a in node.args if a.keyword is not None}
        moved: list[tuple[cst.Arg, Issue]] = []
        for arg in node.args:
            if arg.keyword is None:
                continue
            issue = self.by_pos.get(self._pos(arg))
            if issue is None or issue.keyword != arg.keyword.value or imports.is_import_issue(issue):
                continue
            if issue.new is None:
                self._drop(issue, arg, keywords)
            elif issue.target is None:
                if issue.new in keywords:
                    self.unfixed.append((issue, f"both `{issue.keyword}` and `{issue.new}` are given; keep one"))
                else:
                    self.renames[arg] = issue.new
                    self.fixed.append(issue)
            elif issue.through:  # dict(max_seq_length=...) that reaches SFTTrainer(**kw): not this call's keyword
                self.unfixed.append((issue, through_why(issue)))
            else:
                moved.append((arg, issue))
        if moved:
            self._plan_moves(node, moved)
        self._plan_collator(node)

    def _plan_moves(self, call: cst.Call, moved: list[tuple[cst.Arg, Issue]]) -> None:
        via, target = moved[0][1].via or "", moved[0][1].target or ""
        config, by_name, why = self._target(call, via, target, f"{moved[0][1].new}=...")
        if config is None:
            for _, issue in moved:
                self.unfixed.append((issue, why))
            return
        present = {a.keyword.value for a in config.args if a.keyword is not None}
        holder = _arg(call, via)
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
        holder = _arg(call, via)
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

    def _plan_collator(self, call: cst.Call) -> None:
        """`SFTTrainer(data_collator=DataCollatorForCompletionOnlyLM(...))` -> `completion_only_loss=True`."""
        for _, rule, alias in self._collators:
            local = code_of(alias.asname.name) if alias.asname else code_of(alias.name)
            if not (rule.callable and rule.via and rule.config_keyword) or not self._is(call, rule.callable):
                continue
            arg = _arg(call, rule.via)
            if arg is None:
                continue
            value, line = arg.value, None
            if isinstance(value, cst.Name) and len(self._values(value.value)) == 1 \
                    and self.used[self._var(value.value)] == 1:
                line, value = self.statement_of.get(self._var(value.value)), self._values(value.value)[0]
                if line is None:
                    continue
            if not (isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value == local):
                continue
            for word in ("formatting_func", "dataset_text_field"):
                if _arg(call, word) is not None:
                    self._collator_why[local] = (f"{word}= says the examples are plain text, which "
                                                 f"{rule.config_keyword}=True rejects: {rule.instead}")
                    return
            config, _, why = self._target(call, "args", _SFT_CONFIG, f"{rule.config_keyword}=True")
            if config is None:
                self._collator_why[local] = why
                return
            if any(a.keyword is not None and a.keyword.value == "dataset_text_field" for a in config.args):
                self._collator_why[local] = (f"dataset_text_field= says the examples are plain text, which "
                                             f"{rule.config_keyword}=True rejects: {rule.instead}")
                return
            self.removals.add(arg)
            if line is not None:
                self.dropped_lines.add(line)
            if not any(a.keyword is not None and a.keyword.value == rule.config_keyword for a in config.args):
                self.additions.setdefault(config, []).append(kw(rule.config_keyword, cst.Name("True")))
            self._collator_uses[local] += 1

    def leave_Module(self, original_node: cst.Module) -> None:
        self._collators_done()
        self._account()

    def _collators_done(self) -> None:
        for issue, rule, alias in self._collators:
            local = code_of(alias.asname.name) if alias.asname else code_of(alias.name)
            done = self._collator_uses[local]
            if not done and self.used[(0, local)] <= 0:  # imported, never used: the import alone fails
                self.alias_removals.add(alias)
                self.fixed.append(issue)
                self._note(issue.line, issue.col, issue.callable, issue.keyword, "",
                           f"{issue.keyword} was imported but not used: the import is removed")
            elif done and done == self.used[(0, local)]:
                self.alias_removals.add(alias)
                self.fixed.append(issue)
                self._note(issue.line, issue.col, issue.callable, issue.keyword, f"{rule.config_keyword}=True",
                           f"{issue.keyword} -> {rules.short(_SFT_CONFIG)}({rule.config_keyword}=True); check: "
                           f"{rule.instead}")
            else:
                self.unfixed.append((issue, self._collator_why.get(local) or f"not every use of {local} is an "
                                            f"SFTTrainer({rule.via}=) this fix can rewrite: {rule.instead}"))

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
        if isinstance(value, _LITERALS):
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


def _arg(call: cst.Call, keyword: str) -> cst.Arg | None:
    return next((a for a in call.args if a.keyword is not None and a.keyword.value == keyword), None)


def _names_in(node: cst.CSTNode) -> list[str]:
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, cst.Tuple | cst.List):
        return [n for e in node.elements for n in _names_in(e.value)]
    return []
