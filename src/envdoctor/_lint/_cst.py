"""The planning pass of `lint --fix` (LibCST): every edit decided first, and why some are unsafe (`_rewrite`
applies them).

Beyond renaming keywords in place, the planner rewrites the old SFTTrainer shapes: a `TrainingArguments(...)`
that only flows into `SFTTrainer(args=)` becomes `SFTConfig(...)` with the moved keywords inside (`_moves`), a
removed collator becomes its config keyword, and a removed import with a same-signature replacement is renamed at
the import and at every use. Where names are bound is `_bindings`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import libcst as cst
from packaging.version import Version

from .._drift import rules
from .._matrix.model import ImportRule, Matrix
from . import imports
from ._keys import code_of, through_why
from ._moves import SFT_CONFIG, ConfigMoves, arg_of, kw
from ._reads import Key
from .engine import Issue


class Planner(ConfigMoves):
    """Read-only pass: decide every rename and move, keyed by the original nodes."""

    def __init__(self, issues: Sequence[Issue], names: dict[str, str], matrix: Matrix | None = None,
                 versions: Mapping[str, Version | None] | None = None, used: Counter[Key] | None = None,
                 replaced: Mapping[str, str] | None = None, earlier: set[str] | None = None) -> None:
        super().__init__(issues, names, matrix, versions, used, earlier)
        self.replaced = dict(replaced or {})  # removed dotted path -> its replacement name, for this file
        self.renames: dict[cst.Arg, str] = {}
        self.name_renames: dict[cst.Name, str] = {}
        self.alias_renames: dict[cst.ImportAlias, str] = {}
        self.alias_removals: set[cst.ImportAlias] = set()
        self.dropped_lines: set[cst.SimpleStatementLine] = set()
        self._skip_names: set[cst.Name] = set()  # attribute and keyword names: never renamed as variables
        self._collators: list[tuple[Issue, ImportRule, cst.ImportAlias]] = []
        self._collator_uses: Counter[str] = Counter()  # local class name -> calls rewritten
        self._collator_why: dict[str, str] = {}

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

    def _plan_collator(self, call: cst.Call) -> None:
        """`SFTTrainer(data_collator=DataCollatorForCompletionOnlyLM(...))` -> `completion_only_loss=True`."""
        for _, rule, alias in self._collators:
            local = code_of(alias.asname.name) if alias.asname else code_of(alias.name)
            if not (rule.callable and rule.via and rule.config_keyword) or not self._is(call, rule.callable):
                continue
            arg = arg_of(call, rule.via)
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
                if arg_of(call, word) is not None:
                    self._collator_why[local] = (f"{word}= says the examples are plain text, which "
                                                 f"{rule.config_keyword}=True rejects: {rule.instead}")
                    return
            config, _, why = self._target(call, "args", SFT_CONFIG, f"{rule.config_keyword}=True")
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
                           f"{issue.keyword} -> {rules.short(SFT_CONFIG)}({rule.config_keyword}=True); check: "
                           f"{rule.instead}")
            else:
                self.unfixed.append((issue, self._collator_why.get(local) or f"not every use of {local} is an "
                                            f"SFTTrainer({rule.via}=) this fix can rewrite: {rule.instead}"))
