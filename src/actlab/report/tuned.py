"""The report's "Tuned comparison" section: how a tuned study (study/tuning.py) chose
each group's configuration, and the trials behind the choice.

The final tables of the report hold the final runs only; this section says what the
protocol was (the same space and budget for every group, selection on validation,
fresh seeds for the finals: the tuning ruleset of AlgoPerf, Dahl et al. 2023), what
each group selected with its mean validation metric, where a selection lies on the edge
of the space (the space may be too narrow there), and draws every trial.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from actlab.report import figures
from actlab.report.document import Section
from actlab.report.sections import ReportWriter, register_section
from actlab.study.phases import tuning_state
from actlab.study.plan import Study
from actlab.study.tuning import configuration_text

if TYPE_CHECKING:
    from actlab.report.build import Report

SHORT = {"train.optimizer.lr": "lr", "train.optimizer.weight_decay": "weight_decay"}


@register_section("tuned", order=15)
def tuned_comparison(r: Report, w: ReportWriter) -> list[Section]:
    """Per tuned study: the protocol, the selection per group, the trials drawn."""
    sections = []
    for name, document in r.specs.items():
        if not document.get("tune"):
            continue
        study = Study.model_validate(document)
        assert study.tune is not None
        tune = study.tune
        states = tuning_state(r.store, study)
        section = Section(f"Tuned comparison: {name}")
        space = "; ".join(f"{SHORT.get(axis, axis)} in {_values(values)}"
                          for axis, values in tune.space.items())
        per = ", ".join(SHORT.get(a, a) for a in study.tuned_axes()) or "none"
        trials = len(tune.configurations())
        section.paragraphs.append(
            f"Every group (model, dataset and {per}) was tuned within the same budget: "
            f"{trials} trial{'s' if trials != 1 else ''} ({tune.method}) over {space}, each "
            f"on the tuning seeds {_seeds(tune.seed_list)}. A group's configuration is the "
            f"one with the best mean {tune.select} over its trials' seeds (ties go to the "
            "smaller value); its final runs use the fresh seeds "
            f"{_seeds(study.seed_list)}. Selection never sees a test metric, and the trials "
            "enter no other table of this report (the tuning ruleset of AlgoPerf, Dahl et "
            "al. 2023).")
        rows, edges = [], []
        for state in states:
            chosen = state.selection
            rows.append({
                "group": state.group,
                "trials finished": f"{state.finished}/{state.trials}",
                "selected": configuration_text(chosen.configuration) if chosen else "not decided",
                f"mean {tune.select}": chosen.metric if chosen else float("nan"),
                "on the edge": ", ".join(SHORT.get(a, a) for a in chosen.edges)
                if chosen and chosen.edges else "",
            })
            if chosen and chosen.edges:
                edges.append(f"{state.group} ({', '.join(SHORT.get(a, a) for a in chosen.edges)})")
        section.add(w.table(f"{name}-selections", "Selected configuration per group",
                            f"The configuration each group selected on {tune.select} (mean "
                            "over its tuning seeds) and how many of its trials finished.",
                            frame=pd.DataFrame(rows)))
        if tune.method == "halving":
            rungs = ", ".join(f"{kept} at {epochs} epoch{'s' if epochs != 1 else ''}"
                              for kept, epochs in tune.rungs(study.group_epochs(
                                  states[0].group)))
            stops = "; ".join(
                f"{state.group}: " + ", ".join(f"{text} after {epochs}" for text, epochs
                                              in state.stopped)
                for state in states if state.stopped)
            section.paragraphs.append(
                f"Successive halving (Jamieson & Talwalkar 2016; eta = {tune.eta}) trained "
                f"the trials rung by rung ({rungs}), each rung keeping the best 1/{tune.eta} "
                f"on {tune.select}. Stopped early (configuration after epochs): "
                f"{stops or 'none yet'}.")
        if edges:
            section.paragraphs.append(
                "Selected on the edge of the search space, where a better value may lie "
                f"outside it: {'; '.join(edges)}. Widen the space there to be sure.")
        section.items += _trial_figure(r, w, study, states)
        if tune.shared:
            _rankings(r, w, study, section)
        sections.append(section)
    return sections


def _rankings(r: Report, w: ReportWriter, study: Study, section: Section) -> None:
    """Tuned finals and shared-configuration runs side by side per task: the mean
    metric and rank of each cell, Kendall's tau between the two rankings, and the cells
    whose difference to the baseline cell is significant in one setting only."""
    from scipy.stats import kendalltau, wilcoxon

    metric = r.metric
    shared_values = configuration_text(study.shared_configuration())
    tuned = r.runs[r.runs["status"] == "completed"]
    shared = r.shared[r.shared["status"] == "completed"]
    if tuned.empty or shared.empty or metric not in shared:
        return
    cells = [c for c in ("act", "init") if c in r.cell] or ["act"]
    sign = 1.0 if r.higher_is_better else -1.0
    def means(frame: pd.DataFrame, model: str, dataset: str) -> pd.DataFrame:
        part = frame[(frame["model"] == model) & (frame["dataset"] == dataset)]
        return part.groupby(cells, sort=False)[metric].agg(["mean", "std", "count"])

    for (model, dataset), _ in tuned.groupby(["model", "dataset"], sort=False):
        a, b = means(tuned, model, dataset), means(shared, model, dataset)
        both = pd.merge(a, b, left_index=True, right_index=True,
                        suffixes=("_tuned", "_shared"))
        if len(both) < 2:
            continue
        both["rank_tuned"] = (-sign * both["mean_tuned"]).rank(method="min").astype(int)
        both["rank_shared"] = (-sign * both["mean_shared"]).rank(method="min").astype(int)
        tau = kendalltau(both["rank_tuned"], both["rank_shared"]).statistic
        table = pd.DataFrame({
            "cell": [" / ".join(map(str, k if isinstance(k, tuple) else (k,)))
                     for k in both.index],
            f"tuned {metric}": [f"{m * r.scale:.2f} ± {sd * r.scale:.2f} (n={n})" for m, sd, n
                                in zip(both["mean_tuned"], both["std_tuned"].fillna(0),
                                       both["count_tuned"], strict=True)],
            "rank tuned": both["rank_tuned"].to_numpy(),
            f"shared {metric}": [f"{m * r.scale:.2f} ± {sd * r.scale:.2f} (n={n})" for m, sd, n
                                 in zip(both["mean_shared"], both["std_shared"].fillna(0),
                                        both["count_shared"], strict=True)],
            "rank shared": both["rank_shared"].to_numpy(),
        })
        section.add(w.table(f"{study.name}-{model}-{dataset}-rankings",
                            f"Tuned vs shared ({model}, {dataset})",
                            f"Final {metric} of each cell at its group's selection and at "
                            f"the shared configuration ({shared_values}), mean ± std over "
                            "the final seeds, with the rank of each.", frame=table))
        moved = [row["cell"] for _, row in table.iterrows()
                 if row["rank tuned"] != row["rank shared"]]
        changed = _significance_changes(tuned, shared, model, dataset, cells, metric,
                                        wilcoxon)
        sentence = (f"{model} on {dataset}: Kendall's tau between the two rankings is "
                    f"{tau:.2f}; ")
        sentence += (f"tuning changed the rank of {', '.join(moved)}" if moved
                     else "tuning changed no rank")
        sentence += (f"; it changed the significance (Wilcoxon, p < 0.05) of the difference "
                     f"to the first cell for {', '.join(changed)}." if changed else
                     "; no cell's significance (Wilcoxon, p < 0.05) against the first cell "
                     "changed.")
        section.paragraphs.append(sentence)


def _significance_changes(tuned: pd.DataFrame, shared: pd.DataFrame, model: str,
                          dataset: str, cells: list[str], metric: str, wilcoxon) -> list[str]:
    """Cells whose paired-by-seed difference to the first cell is significant at 0.05 in
    one setting and not in the other."""
    def significant(frame: pd.DataFrame) -> dict[str, bool]:
        part = frame[(frame["model"] == model) & (frame["dataset"] == dataset)]
        table = part.pivot_table(index="seed", columns=cells, values=metric)
        if table.shape[1] < 2:
            return {}
        base = table.iloc[:, 0]
        found = {}
        for column in table.columns[1:]:
            pairs = pd.concat([base, table[column]], axis=1).dropna()
            differences = pairs.iloc[:, 1] - pairs.iloc[:, 0]
            name = " / ".join(map(str, column if isinstance(column, tuple) else (column,)))
            found[name] = bool(len(pairs) >= 2 and differences.abs().sum() > 0
                               and wilcoxon(differences).pvalue < 0.05)
        return found

    a, b = significant(tuned), significant(shared)
    return [name for name in a if name in b and a[name] != b[name]]


def _trial_figure(r: Report, w: ReportWriter, study: Study, states: list) -> list:
    """Validation metric against the first numeric tuned axis, every trial a point."""
    assert study.tune is not None
    axis = next((a for a, v in study.tune.space.items()
                 if not isinstance(v, list) or all(isinstance(x, int | float) for x in v)), None)
    if axis is None:
        return []
    results = r.store.results(study.name, study.tune.select)
    points = []
    for spec in study.expand():
        if spec.run_id in results and results[spec.run_id][1] == results[spec.run_id][1]:
            points.append({"group": study.group_of(spec),
                           "x": study.configuration_of(spec)[axis],
                           "value": results[spec.run_id][1]})
    if not points:
        return []
    selected = {s.group: s.selection.configuration[axis] for s in states if s.selection}
    frame = pd.DataFrame(points)
    frame.loc[:, "group"] = [g.split(", ")[-1] for g in frame["group"]]
    selected = {g.split(", ")[-1]: v for g, v in selected.items()}
    scale = 100.0 if study.tune.select.endswith("acc") else 1.0
    figure = figures.tuning_trials(frame, "x", study.tune.select, r.colours, selected, scale)
    figure.axes[0].set_xlabel(SHORT.get(axis, axis))
    return [w.fig(figure, f"{study.name}-tuning-trials",
                  f"{study.tune.select} of every tuning trial",
                  f"Each point is one trial run (a configuration on one tuning seed); lines: "
                  f"the mean over seeds per group; circled: the selected "
                  f"{SHORT.get(axis, axis)}.")]


def _values(values: object) -> str:
    if isinstance(values, list):
        return "{" + ", ".join(f"{v:g}" if isinstance(v, float) else str(v)
                               for v in values) + "}"
    return str(values)


def _seeds(seeds: list[int]) -> str:
    return ", ".join(map(str, seeds)) if len(seeds) <= 6 else f"{seeds[0]}..{seeds[-1]}"
