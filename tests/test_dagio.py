"""JSON round-trip and every validation error of the foundation issue (each names the offending node/field)."""

import json

import numpy as np
import pytest
from hypothesis import given

from dagsim import dagio
from dagsim.dag import ReasoningDAG
from dagsim.errors import ValidationError
from dagsim.marginals import answer_marginal, count_traces
from tests.strategies import reasoning_dags, tasks


def _base():
    return {"format": "dagsim/v1", "root": "s",
            "edges": [{"from": "s", "to": "a", "p": 0.5}, {"from": "s", "to": "b", "p": 0.5},
                      {"from": "a", "to": "x", "p": 1.0}, {"from": "b", "to": "x", "p": 0.3},
                      {"from": "b", "to": "y", "p": 0.7}],
            "answers": {"x": "12", "y": "7"}, "reward": {"12": 1.0},
            "constraints": [{"answers": ["7"], "op": "<=", "bound": 0.05}]}


def test_valid_file_loads(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(_base()))
    dag = dagio.load(path)
    assert dag.answers == ("7", "12")
    assert np.allclose(answer_marginal(dag), [0.35, 0.65])
    assert dag.reward.tolist() == [0.0, 1.0]
    assert dag.constraints[0].coef.tolist() == [1.0, 0.0] and dag.constraints[0].bound == 0.05


@given(reasoning_dags())
def test_json_round_trip(dag):
    again = dagio.from_json(json.loads(json.dumps(dagio.dag_to_json(dag))))
    assert again.answers == dag.answers
    assert set(again.edges_named()) == set(dag.edges_named())
    assert np.array_equal(again.reward, dag.reward) and again.has_reward == dag.has_reward
    # Node order may change (it is re-derived from the file), so sums may differ in the last ulp.
    assert np.abs(answer_marginal(again) - answer_marginal(dag)).max() <= 1e-14
    assert count_traces(again) == count_traces(dag)


@given(tasks())
def test_task_round_trip(task):
    again = dagio.from_json(json.loads(json.dumps(dagio.task_to_json(task))))
    assert again.answers == task.answers
    assert np.allclose(again.weights, task.weights)
    for v, w in zip(task.views, again.views):
        assert np.allclose(answer_marginal(v), answer_marginal(w), atol=1e-15)


def _mutate(fn):
    obj = _base()
    fn(obj)
    return obj


CASES = {
    "cycle": (lambda o: o["edges"].append({"from": "a", "to": "s2", "p": 0.0}) or o["edges"].extend(
        [{"from": "s2", "to": "a2", "p": 1.0}, {"from": "a2", "to": "s2", "p": 1.0}]), r"cycle: node '(s2|a2)'"),
    "unreachable": (lambda o: o["edges"].append({"from": "orphan", "to": "x", "p": 1.0}),
                    r"node 'orphan' is unreachable from the root 's'"),
    "leaf without answer": (lambda o: o["answers"].pop("y"), r"leaf 'y' has no answer"),
    "answer on internal": (lambda o: o["answers"].update({"a": "3"}), r"node 'a' has an answer .* not a leaf"),
    "bad sum": (lambda o: o["edges"][0].update({"p": 0.6}), r"outgoing probabilities of node 's' sum to 1.1"),
    "negative p": (lambda o: o["edges"][3].update({"p": -0.3}), r"edges\[3\] \(b -> x\): .*>= 0, got -0.3"),
    "nan p": (lambda o: o["edges"][3].update({"p": float("nan")}), r"edges\[3\].*got nan"),
    "inf p": (lambda o: o["edges"][3].update({"p": float("inf")}), r"edges\[3\].*got inf"),
    "string p": (lambda o: o["edges"][3].update({"p": "0.3"}), r"edges\[3\].*must be a number"),
    "duplicate edge": (lambda o: o["edges"].append({"from": "a", "to": "x", "p": 0.0}), r"duplicate edge a -> x"),
    "unknown format": (lambda o: o.update({"format": "dagsim/v9"}), r"unknown format version 'dagsim/v9'"),
    "missing format": (lambda o: o.pop("format"), r"missing field 'format'"),
    "empty graph": (lambda o: o.update({"edges": []}), r"empty graph"),
    "missing edge field": (lambda o: o["edges"][1].pop("to"), r"edges\[1\]: expected an object with"),
    "unknown reward label": (lambda o: o.update({"reward": {"99": 1.0}}), r"reward: unknown answer label '99'"),
    "bad constraint op": (lambda o: o["constraints"][0].update({"op": "<"}), r"constraints\[0\]\.op"),
    "unknown constraint label": (lambda o: o["constraints"][0].update({"answers": ["5"]}),
                                 r"constraints\[0\]\.answers: unknown answer label '5'"),
    "answers on unknown node": (lambda o: o["answers"].update({"ghost": "1"}), r"node 'ghost' does not appear"),
    "root with parent": (lambda o: o["edges"].extend([{"from": "r0", "to": "s", "p": 1.0}]),
                         r"unreachable from the root|incoming edge"),
    "unknown field": (lambda o: o.update({"edgez": []}), r"unknown field\(s\) \['edgez'\]"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_validation_errors_name_the_culprit(case, tmp_path):
    mutate, pattern = CASES[case]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_mutate(mutate)))
    with pytest.raises(ValidationError, match=pattern):
        dagio.load(path)


def test_malformed_json_and_missing_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "dagsim/v1", "root": ')
    with pytest.raises(ValidationError, match=r"malformed JSON at line 1"):
        dagio.load(path)
    with pytest.raises(ValidationError, match="no such file"):
        dagio.load(tmp_path / "nope.json")


def test_task_validation(tmp_path):
    view = _base()
    view.pop("reward")
    view.pop("constraints")
    task = {"format": "dagsim-task/v1", "views": [view, view], "weights": [0.5, 0.6], "reward": {"12": 1.0}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(task))
    with pytest.raises(ValidationError, match=r"'weights' sum to 1.1"):
        dagio.load(path)
    task["weights"] = [0.5, 0.5]
    task["views"][1] = dict(view, edges=view["edges"][:-1] + [{"from": "b", "to": "y", "p": 0.6}])
    path.write_text(json.dumps(task))
    with pytest.raises(ValidationError, match=r"views\[1\]: .*node 'b' sum to 0.(9|89)"):
        dagio.load(path)


def test_dag_is_immutable():
    dag = ReasoningDAG.from_edges("s", [("s", "a", 1.0)], {"a": "1"})
    with pytest.raises(ValueError):
        dag.edge_prob[0] = 0.5
    with pytest.raises(AttributeError):
        dag.name = "x"


def test_zero_probability_branch_keeps_answer_with_zero_mass():
    dag = ReasoningDAG.from_edges("s", [("s", "a", 1.0), ("s", "b", 0.0)], {"a": "1", "b": "2"})
    assert answer_marginal(dag).tolist() == [1.0, 0.0]
