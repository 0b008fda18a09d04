"""benchmarks/accuracy.py prints measured rows apart from cited ones (no data set needed)."""
import importlib.util

from tests.helpers import ROOT


def _module():
    spec = importlib.util.spec_from_file_location("accuracy_benchmark", ROOT / "benchmarks" / "accuracy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_table_separates_measured_reference_and_cited_rows(capsys):
    bench = _module()
    row = {
        "variant": "full", "preset": "ngrams", "in_scope_accuracy": 0.9271, "threshold": 0.28,
        "threshold_in_scope_accuracy": 0.8962, "threshold_oos_recall": 0.864, "threshold_joint_accuracy": 0.8911,
        "train_seconds": 49.4, "model_bytes": 25_700_000, "latency_ms": 0.63,
    }
    bench.print_table([row], [{"variant": "full", "in_scope_accuracy": 0.928, "train_seconds": 6.5}])
    lines = capsys.readouterr().out.splitlines()
    assert lines[2] == "| full | legacy-assistant `ngrams` (measured) | 92.7 | 89.6 | 86.4 | 89.1 | 0.28 | 49.4 | 25.7 | 0.63 |"
    assert "(measured, reference only) | 92.8 |" in lines[3]
    assert "cited, not measured here" in lines[4]
    cited = lines[5:]
    assert len(cited) == len(bench.CITED) == 6
    assert all("Larson et al. 2019, Table 2" in line and "measured)" not in line for line in cited)
    assert "| BERT (Larson et al. 2019, Table 2) | 96.9 |" in cited[-1]
